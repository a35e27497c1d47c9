#!/usr/bin/python3
"""idle_stats.py - case 5 of bench/run.sh: what one daemon run did, from the
tool's own log and the slice of Dovecot's log written during the run.
Prints key=value lines:
  logins          successful POP3 logins of the run's accounts (Dovecot)
  accounts_polled accounts that logged in at least once
  failed_logins   Dovecot lines for refused or abandoned logins
  poll_errors     the tool's own error lines (popgated: "poll failed")
  polls           the tool's own count: popgated's scheduler line, else its
                  "poll:" lines; fetchmail -d logs nothing per empty poll: logins
  late_max_ms late_p99_ms late_over_2s   popgated's scheduler line, else n/a
  max_gap_s       longest time between two logins of one account (Dovecot's
                  timestamps have 1 s resolution)
  first_login_s   first login, seconds after the daemon was started
  idle_stats.py TOOL TOOL_LOG DOVECOT_LOG_SLICE START_EPOCH USER...
"""
import re
import sys
import time

LOGIN = re.compile(r"^(\w{3} +\d+ \d\d:\d\d:\d\d) pop3-login: Info: Login: user=<([^>]*)>")
# refused, abandoned or failed logins: none of them may happen in an idle run
FAILED = re.compile(r"auth failed|Password mismatch|unknown user|Aborted login|no auth attempts"
                    r"|Login failed|process_limit|client_limit|Connection queue full")
SCHED = re.compile(r"scheduler: polls=(\d+) late_max_ms=(\d+) late_p99_ms=(\d+) late_over_2s=(\d+)")


def stamp(text, year):
    return time.mktime(time.strptime(f"{year} {text}", "%Y %b %d %H:%M:%S"))


def main():
    if len(sys.argv) < 6:
        sys.exit(__doc__)
    tool, tool_log, dove_log, start = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    users = set(sys.argv[5:])
    year = time.localtime(start).tm_year
    seen = {}
    failed = 0
    with open(dove_log, errors="replace") as f:
        for line in f:
            m = LOGIN.match(line)
            if m and m.group(2) in users:
                seen.setdefault(m.group(2), []).append(stamp(m.group(1), year))
            elif FAILED.search(line):
                failed += 1
    logins = sum(len(v) for v in seen.values())
    gaps = [b - a for v in seen.values() for a, b in zip(v, v[1:])]
    firsts = [v[0] for v in seen.values()]

    text = open(tool_log, errors="replace").read()
    out = {"late_max_ms": "n/a", "late_p99_ms": "n/a", "late_over_2s": "n/a"}
    if tool == "popgate":
        m = SCHED.search(text)
        if m:
            out.update(polls=m.group(1), late_max_ms=m.group(2), late_p99_ms=m.group(3),
                       late_over_2s=m.group(4))
        else:
            out["polls"] = len(re.findall(r"account=\S+ poll: ", text))
        out["poll_errors"] = len(re.findall(r"poll failed", text))
    else:  # fetchmail -d logs nothing for an empty mailbox: its polls are its logins
        out["polls"] = logins
        out["poll_errors"] = len(re.findall(
            r"Authorization failure|Query status=|socket error|timeout|[Ee]rror", text))
    out.update(logins=logins, accounts_polled=len(seen), failed_logins=failed,
               max_gap_s=f"{max(gaps):.0f}" if gaps else "n/a",
               first_login_s=f"{max(0.0, min(firsts) - start):.0f}" if firsts else "n/a")
    for k in ("logins", "accounts_polled", "failed_logins", "poll_errors", "polls", "late_max_ms",
              "late_p99_ms", "late_over_2s", "max_gap_s", "first_login_s"):
        print(f"{k}={out[k]}")


if __name__ == "__main__":
    main()
