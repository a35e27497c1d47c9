#!/usr/bin/python3
"""refclient.py - the bare reference mover of bench/run.sh (the "limit" column):
POP3 in, SMTP out, nothing else. Per account: one POP3 and one SMTP session,
sequential RETR, the message handed over in one write, DELE after the 250,
QUIT. No state, no filters, no spool: what a fetcher costs at the least.
  refclient.py POP3HOST POP3PORT SMTPHOST SMTPPORT RCPT USER:PASSWORD...
"""
import poplib
import smtplib
import sys


def move(pop_host, pop_port, smtp, rcpt, user, password):
    pop = poplib.POP3(pop_host, pop_port, timeout=60)
    pop.user(user)
    pop.pass_(password)
    count, _ = pop.stat()
    for n in range(1, count + 1):
        _, lines, _ = pop.retr(n)
        smtp.sendmail("bench@popgate.test", [rcpt], b"\r\n".join(lines) + b"\r\n")
        pop.dele(n)  # sendmail returned: the MTA said 250
    pop.quit()
    return count


def main():
    if len(sys.argv) < 7:
        sys.exit(__doc__)
    pop_host, pop_port, smtp_host, smtp_port, rcpt = sys.argv[1:6]
    smtp = smtplib.SMTP(smtp_host, int(smtp_port), local_hostname="localhost", timeout=60)
    smtp.ehlo()
    total = 0
    for account in sys.argv[6:]:
        user, password = account.split(":", 1)
        total += move(pop_host, int(pop_port), smtp, rcpt, user, password)
    smtp.quit()
    print(f"refclient: {total} messages moved")


if __name__ == "__main__":
    main()
