#!/usr/bin/python3
"""fill.py - put COUNT messages of about SIZE octets straight into a Dovecot
maildir (DIR/new), for bench/run.sh. Message-IDs carry TAG so that every run
has its own and the sink can count distinct ones. Prints the octets written.
  fill.py DIR COUNT SIZE TAG
"""
import os
import sys


def main():
    maildir, count, size, tag = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    line = (b"The quick brown fox jumps over the lazy dog; popgate bench filler text 0123456789.\n")
    total = 0
    for n in range(count):
        head = (f"Return-Path: <sender{n % 50}@example.org>\n"
                f"From: Sender {n % 50} <sender{n % 50}@example.org>\n"
                f"To: bench@popgate.test\n"
                f"Subject: bench message {n} of {count}\n"
                f"Date: Sat, 28 Nov 2026 12:00:00 +0000\n"
                f"Message-ID: <{tag}.{n}@bench.popgate.test>\n"
                f"MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n").encode()
        body_len = max(0, size - len(head))
        body = line * (body_len // len(line)) + b"x" * (body_len % len(line) - 1 if body_len % len(line) else 0) + (b"\n" if body_len % len(line) else b"")
        data = head + body
        name = f"{tag}.{n:06d}.bench"
        path = os.path.join(maildir, "tmp", name)
        with open(path, "wb") as f:
            f.write(data)
        os.chown(path, 65534, 65534)
        os.rename(path, os.path.join(maildir, "new", name))
        total += len(data)
    print(total)


if __name__ == "__main__":
    main()
