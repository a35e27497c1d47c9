#!/usr/bin/python3
"""small_writes_relay.py - a TCP relay on 127.0.0.1 in front of Dovecot's POP3 that
makes it look like the small POP3 servers (popa3d, solid-pop3d) for case 8 of
bench/run.sh: no CAPA (answered -ERR, so a client cannot know about PIPELINING),
and every line the server sends goes to the client in its own send(2), with Nagle
on, as those servers write. Prints "port N", runs until killed.
  small_writes_relay.py LISTEN_PORT TARGET_PORT
"""
import socket
import sys
import threading


def client_to_server(client, server, lock):
    buf = b""
    while True:
        data = client.recv(65536)
        if not data:
            server.shutdown(socket.SHUT_WR)
            return
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip().upper() == b"CAPA":
                # answered here, as a server without CAPA does (clients send CAPA
                # alone, after the greeting, so no reply of the server is pending)
                with lock:
                    client.sendall(b"-ERR unknown command\r\n")
                continue
            server.sendall(line + b"\n")


def server_to_client(server, client, lock):
    buf = b""
    while True:
        data = server.recv(65536)
        if not data:
            client.shutdown(socket.SHUT_WR)
            return
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            with lock:
                client.sendall(line + b"\n")  # one line, one send(2)


def handle(client, target):
    try:
        server = socket.create_connection(("127.0.0.1", target))
    except OSError:
        client.close()
        return
    lock = threading.Lock()
    a = threading.Thread(target=client_to_server, args=(client, server, lock), daemon=True)
    b = threading.Thread(target=server_to_client, args=(server, client, lock), daemon=True)
    a.start()
    b.start()
    a.join()
    b.join()
    client.close()
    server.close()


def main():
    listen, target = int(sys.argv[1]), int(sys.argv[2])
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", listen))
    s.listen(64)
    print("port", s.getsockname()[1], flush=True)
    while True:
        c, _ = s.accept()
        threading.Thread(target=handle, args=(c, target), daemon=True).start()


if __name__ == "__main__":
    main()
