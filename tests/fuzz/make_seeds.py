#!/usr/bin/env python3
# make_seeds.py - writes the seed corpora of tests/fuzz/corpus/<target>/: every
# hostile case of issue 21 (a 70 000-character display name, two From fields,
# a Latin-1 display name, a null sender with bounces refused, a Message-ID with
# ESC/BEL, forged status= fields) and normal cases, in the input layout each
# target reads (see the comment at the top of tests/fuzz/<target>_fuzzer.cpp).
# Run it after changing a layout; the files are committed. Findings are added
# by hand as corpus/<target>/finding-*, never by this script.
import base64
import hashlib
import hmac
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("latin-1")  # one character, one byte: see u()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def u(text):
    """UTF-8 text as one character per byte (the scripts' strings are bytes, "\xfc" is Latin-1)."""
    return text.encode("utf-8").decode("latin-1")


def crlf(text):
    return text.replace("\n", "\r\n")


# --- mail headers: message_rewriter (2 seed bytes + message), screen (1 flag byte + message)
BODY = "\nHello.\n.\n..dot\n"
messages = {
    # issue 21, the hostile cases
    "from-70000-char-display-name": 'From: "' + "A" * 70000 + '" <x@spam.example>\nSubject: big\n' + BODY,
    "two-from-fields": "From: a@ok.example\nFrom: x@spam.example\nSubject: two\n" + BODY,
    "latin1-display-name": "From: J\xfcrgen <a@ok.example>\nSubject: latin-1\n" + BODY,
    "null-sender": "Return-Path: <>\nSubject: bounce\n" + BODY,
    "message-id-esc-bel": "From: a@ok.example\nMessage-ID: <esc\x1b[31mRED\x1b[0m\x07@x>\n" + BODY,
    "message-id-forged-fields": "From: a@ok.example\nMessage-ID: <m@ok.example> status=delivered account=other\n" + BODY,
    # the forms a blocked sender may take (issue 21 item 7)
    "folded-from": "From: Spammer\n <x@spam.example>\n" + BODY,
    "encoded-word-from": "From: =?utf-8?b?SsO8cmdlbg==?= <x@SPAM.example>\n" + BODY,
    "comment-from": "From: x(comment)@spam.example (Spammer)\n" + BODY,
    "quoted-local-part": 'From: "x y"@spam.example\n' + BODY,
    "group-from": "From: Team: a@ok.example, x@sub.spam.example;\n" + BODY,
    "obsolete-route": "From: <@relay.example:x@spam.example>\n" + BODY,
    "idn-u-label": u("From: x@b\u00fccher.example\n") + BODY,
    "smtputf8-local-part": u("From: j\u00fcrgen@ok.example\n") + BODY,
    "broken-utf8-comment": "From: a@ok.example (\xc3\x28 broken)\n" + BODY,
    "seventeen-froms": "".join("From: a%d@ok.example\n" % i for i in range(17)) + BODY,
    "return-path-spam": "Return-Path: <x@spam.example>\nFrom: a@ok.example\n" + BODY,
    "bad-return-path": "Return-Path: <x@@spam.example>\nFrom: a@ok.example\n" + BODY,
    "empty-from": "From:\nSubject: none\n" + BODY,
    "undisclosed-group": "From: undisclosed-recipients:;\n" + BODY,
    "nul-in-from": "From: a@ok.example\x00x@spam.example\n" + BODY,
    "nul-in-body": "From: a@ok.example\n\nbody\x00with NUL\n",
    # the rewriter's own cases
    "forged-x-popgate-id": "X-Popgate-Id: v1 a=other u=eA m=00000000000000000000000000000000\n"
                           "X-POPGATE-Other: x\n continued\nFrom: a@ok.example\n" + BODY,
    "x-popgate-oversized": "X-Popgate-Big: " + "b" * 70000 + "\nFrom: a@ok.example\n" + BODY,
    "received-loop": "".join("Received: from a by b (popgate) with POP3 id 1;\n\tdate\n" for _ in range(4))
                     + "From: a@ok.example\n" + BODY,
    "no-header-section": "just a body line\nFrom: x@spam.example\n",
    "space-before-colon": "From : x@spam.example\nSubject : s\n" + BODY,
    "bare-cr": "From: a@ok.example\rFrom: x@spam.example\r\r" + BODY,
    "no-final-newline": "From: x@spam.example",
    "normal": "Return-Path: <a@ok.example>\nFrom: Alice <a@ok.example>\nTo: b@example.org\n"
              "Subject: hello\nMessage-ID: <1@ok.example>\nDate: Thu, 3 Dec 2026 12:00:00 +0000\n" + BODY,
}
for name, text in messages.items():
    for style, conv in (("crlf", crlf), ("lf", lambda t: t)):
        if style == "lf" and name not in ("normal", "two-from-fields", "folded-from", "nul-in-from"):
            continue
        msg = conv(text)
        write("message_rewriter", name + "-" + style, "\x05\x01" + msg)
        for flags in ((0, 3) if len(msg) < 1000 else (1,)):
            # bit 0: allow list (only ok.example); bit 1: bounces allowed
            write("screen", "%s-%s-%d" % (name, style, flags), chr(flags) + msg)

# --- address parser: the From field bodies alone
addresses = [
    '"' + "A" * 20000 + '" <x@spam.example>', "a@ok.example, x@spam.example", "J\xfcrgen <a@ok.example>",
    "<>", "", "Name <a@b>", "a@b (c)", "<@route.example:a@b>", "a . b @ c", '"a\\"b"@c', "Team: a@b, c@d;",
    "undisclosed-recipients:;", u("x@b\u00fccher.example"), "x@xn--bcher-kva.example", u("j\u00fcrgen@ok.example"),
    "x@[192.0.2.1]", "x@[IPv6:2001:db8::1]", "=?utf-8?b?SsO8cmdlbg==?= <x@spam.example>",
    "x(comment)@spam.example", "*@*.spam.example", "a@b\x00c", "<esc\x1b[31mRED\x1b[0m\x07@x>",
    "<m@ok.example> status=delivered account=other", "a@b\r\n c@d", "\"\"@example.com",
]
for i, a in enumerate(addresses):
    write("address", "seed-%02d" % i, a)

# --- IDN: 1 flag byte (bit 0: '*' labels allowed) + domain
domains = [u("b\u00fccher.example"), "xn--bcher-kva.example", "EXAMPLE.COM", "*.spam.example", "a*b.example",
           u("\u0130stanbul.example"), u("fa\u00df.de"), u("\u03c3\u03cc\u03bb\u03bf\u03c2.gr"), "xn--", "xn--a.example",
           "a..b", ".", "[192.0.2.1]", u("\uff21\uff22\uff23.example"), u("\u0661\u0662.example"), "ab--c.example",
           "-a.example", "a" * 64 + ".example", u("\u200d.example"), u("caf\u0065\u0301.example"), "\xff.example"]
for i, d in enumerate(domains):
    write("idn", "seed-%02d" % i, chr(i % 2) + d)

# --- X-Popgate-Id: key\; account\; uidl\; value, then 3 bytes read from the end
def popgate_id(key, account, uidl):
    mac = hmac.new(key.encode(), account.encode() + b"\0" + uidl.encode(), hashlib.sha256).hexdigest()[:32]
    u = base64.urlsafe_b64encode(uidl.encode()).decode().rstrip("=")
    return "v1 a=%s u=%s m=%s" % (account, u, mac)

ids = [("key", "acct", "uid-1"), ("k\x00\xff", "helpdesk", "00000001.x"), ("header-key", "a", ""),
       ("key", "bad name", "u"), ("key", "acct", "\x1b[31m")]
for i, (k, a, uid) in enumerate(ids):
    value = popgate_id(k, a, uid)
    for j, v in enumerate([value, " " + value + "\r\n", value[:-1] + "0", value.replace("v1", "v2"), "garbage"]):
        write("popgate_id", "seed-%d-%d" % (i, j),
              k.replace("\\", "\\\\") + "\\;" + a + "\\;" + uid + "\\;" + v + "\x05\x07\x00")

# --- filter compiler: structured by FuzzedDataProvider; a few shapes
import random
rnd = random.Random(21)
for i in range(12):
    write("filter_compiler", "seed-%02d" % i, bytes(rnd.getrandbits(8) for _ in range(rnd.randint(16, 200))))
write("filter_compiler", "seed-domains", u("spam.example\\;*.spam.example\\;b\u00fccher.example\\;x@spam.example\\;") +
      "ok@ok.example\\;" + "\x01\x03\x02\x01\x00\x01\x02\x03")

# --- popgate.conf
sample = open(os.path.join(HERE, "..", "..", "conf", "popgate.conf"), encoding="utf-8").read()
configs = {
    "sample": sample,
    "sample-crlf": crlf(sample),
    "small": "database.driver = sqlite\nworkers = 4\npop3.read_timeout = 90s\nallow_null_sender = no\n",
    "postgresql-without-connect": "database.driver = postgresql\n",
    "twice": "workers = 4\nworkers = 5\n",
    "unknown-key": "colour = blue\n",
    "nul-line": "workers = 4\x00\n",
    "value-with-hash-and-equals": "database.connect = host=db password=a#b\n",
    "no-equals": "workers\n",
    "long-line": "database.connect = " + "x" * 66000 + "\n",
    "escape-in-key": "\x1b[31mkey = value\n",
}
for name, text in configs.items():
    write("config", name, text)

# --- accounts.d/NAME.conf (secret_file "pw" exists in the target's secrets dir)
accounts = {
    "password": "server = pop.example.com\nuser = alice\nsecret_file = pw\nmailbox = alice@example.com\n",
    "full": "type = pop3\nauth = password\nserver = pop.example.com\nport = 995\nuser = alice\n"
            "security = ssl-tls\nfilter = inbound\nactive = yes\ndebug-logging = no\n"
            "mailbox = alice@example.com\ndeliver-to = a@localhost, b@localhost\npoll-interval = 5m\n"
            "keep-on-server = no\nmax-message-size = 10M\ntls-pin = " + "ab" * 32 + "\n"
            "auth-mechanism = apop\nplaintext-auth = no\ntls-min-version = 1.3\nsecret_file = pw\n",
    "none-security": "server = 192.0.2.1\nsecurity = none\nplaintext-auth = yes\nuser = u\nsecret_file = pw\n"
                     "mailbox = u@example.com\n",
    "oauth": "auth = oauth2\noauth-profile = google\nserver = pop.gmail.com\nuser = u@gmail.com\n"
             "mailbox = u@gmail.com\n",
    "secret-outside": "server = pop.example.com\nuser = a\nsecret_file = /etc/shadow\nmailbox = a@example.com\n",
    "inline-password": "server = pop.example.com\nuser = a\npassword = inline\nmailbox = a@example.com\n",
    "bad-port": "server = pop.example.com\nport = 70000\nuser = a\nsecret_file = pw\nmailbox = a@example.com\n",
    "crlf": crlf("server = pop.example.com\nuser = alice\nsecret_file = pw\nmailbox = alice@example.com\n"),
    "escape-in-value": "server = pop\x1b[31m.example.com\nuser = a\nsecret_file = pw\nmailbox = a@example.com\n",
}
for name, text in accounts.items():
    write("accounts", name, text)

# --- POP3: 1 byte (bits 0-2: how many op bytes follow; bit 3: plaintext login allowed),
# the op bytes (low 5 bits: the command, see session() in pop3_reader_fuzzer.cpp;
# bits 5-6: the message number - 1), then what the server sends.
def pop3(ops, server, plaintext=True):
    return chr(len(ops) | (8 if plaintext else 0)) + "".join(chr(o) for o in ops) + crlf(server)

GREET = "+OK ready <1896.697170952@dbc.mit.edu>\n+OK\nUSER\nUIDL\nTOP\nPIPELINING\nSASL PLAIN LOGIN\n.\n"
MSG = "From: a@ok.example\nSubject: s\n\nbody\n..stuffed\n.bad\n.\n"
sessions = {
    "login-user": pop3([1, 5], GREET + "+OK\n+OK\n+OK 2 320\n"),
    "login-apop": pop3([2], GREET + "+OK maildrop locked\n"),
    "login-plain": pop3([3], GREET + "+OK\n"),
    "login-login": pop3([4], GREET + "+ VXNlcm5hbWU6\n+ UGFzc3dvcmQ6\n+OK\n"),
    "login-auto-refused": pop3([0], GREET + "-ERR [AUTH] no\n-ERR [AUTH] no\n-ERR [AUTH] no\n"),
    "in-use": pop3([1], GREET + "+OK\n-ERR [IN-USE] locked\n"),
    "list-uidl-retr": pop3([1, 6, 8, 13], GREET + "+OK\n+OK\n+OK\n1 120\n2 200\n.\n+OK\n1 a1\n2 b2\n.\n"
                           "+OK\n" + MSG + "+OK\n" + MSG),
    "retr-size-differs": pop3([1, 11], GREET + "+OK\n+OK\n+OK\n" + MSG + "+OK 1 a1\n"),
    "retr-cut-short": pop3([1, 14 | 0x20], GREET + "+OK\n+OK\n+OK\nline\n.\nrest of message\n.\n+OK\n" + MSG
                           + "+OK 1 a1\n"),
    "bare-lf-and-dots": pop3([10], "+OK hi\n-ERR no capa\n+OK\nline\n.\n..\n...x\n.", plaintext=False)
                        .replace("\r\n", "\n"),
    "long-uidl": pop3([8], GREET + "+OK\n1 " + "u" * 300 + "\n2 x\n.\n"),
    "uidl-8bit": pop3([8], GREET + "+OK\n1 \xff\xfe\n.\n"),
    "server-reply-escapes": pop3([1], "+OK \x1b[31mhello\x07 status=delivered account=other\n+OK\n.\n"
                                 "-ERR \x1b[2J status=delivered\n"),
    "top-and-dele": pop3([12, 16, 15, 17, 18, 19], GREET + "+OK\n" + MSG + "+OK\n+OK\n+OK\n+OK\n+OK\n+OK\n+OK bye\n"),
    "stat-garbage": pop3([5, 7, 9], GREET + "+OK x y\n"),
    "xoauth2": pop3([20], GREET + "+ eyJzdGF0dXMiOiI0MDEifQ==\n-ERR [AUTH] bad token\n"),
    "no-greeting": pop3([], "garbage\n"),
}
for name, data in sessions.items():
    write("pop3_reader", name, data)
print("seeds written to", CORPUS, file=sys.stderr)
