#!/usr/bin/python3
"""report.py - turn bench/run.sh's results.csv, idle.csv (case 5, when run) and
meta.txt (in OUT) into results.md (tables, ratios, the issue's bars) and
chart.gp + chart*.dat for gnuplot (results.png; cases 1-4 and 6). Only runs
marked ok count; failed runs are listed.
  report.py OUT
"""
import csv
import os
import statistics
import sys

TOOLS = ["popgate-before", "popgate", "fetchmail", "getmail6", "mpop", "refclient", "smtp-source",
         "popgate-milter-unix", "popgate-milter-inet"]  # the last two: bench/run.sh, goal 0
PEERS = ["fetchmail", "getmail6", "mpop"]  # "best peer"; refclient and smtp-source are limits
DELIVERY = {
    "popgate": "SMTP, own session (sink / Postfix reinjection port)",
    "popgate-before": "popgate's binaries of another revision (BENCH_BEFORE_BUILD), the same configuration",
    "fetchmail": "SMTP (`smtphost 127.0.0.1/PORT`)",
    "getmail6": "MDA_external `msmtp` (one fork + SMTP session per message)",
    "mpop": "`delivery mda` `msmtp` (one fork + SMTP session per message)",
    "refclient": "bench/refclient.py: poplib + smtplib, one SMTP session",
    "smtp-source": "Postfix's own load generator (`smtp-source -d -s ACCOUNTS -m N -l SIZE`) straight "
                   "to the reinjection listener, no POP3 (cases 2 and 3 only): the MTA's ceiling on "
                   "this machine, not a peer; checked by the maildir count only",
    "popgate-milter-unix": "as popgate, with popgate-milter in Postfix's smtpd_milters on a unix socket",
    "popgate-milter-inet": "as popgate, with popgate-milter in Postfix's smtpd_milters on inet:PORT@127.0.0.1",
}


def load(out):
    meta = {}
    with open(os.path.join(out, "meta.txt")) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                meta[k] = v
    with open(os.path.join(out, "results.csv")) as f:
        rows = list(csv.DictReader(f))
    idle = []
    if os.path.exists(os.path.join(out, "idle.csv")):
        with open(os.path.join(out, "idle.csv")) as f:
            idle = list(csv.DictReader(f))
    return meta, rows, idle


def kb_max(rows, key):
    """The largest of a kB column over rows, in MiB; None when no row has it (a
    results.csv from before bench/privmem.py, or a run it did not sample)."""
    v = [int(r[key]) for r in rows if (r.get(key) or "").isdigit() and int(r[key]) > 0]
    return max(v) / 1024.0 if v else None


def mib(v):
    return f"{v:.2f}" if v is not None else "n/a"


def summarize(rows):
    """{(case, tool): stats} over the ok runs."""
    by = {}
    for r in rows:
        by.setdefault((r["case"], r["tool"]), []).append(r)
    stats = {}
    for key, runs in by.items():
        ok = [r for r in runs if r["ok"] == "1"]
        s = {"runs": len(runs), "ok": len(ok), "failed": [r for r in runs if r["ok"] != "1"]}
        if ok:
            rate = [int(r["messages"]) / float(r["wall_s"]) for r in ok]
            mbs = [int(r["octets"]) / 1e6 / float(r["wall_s"]) for r in ok]
            s.update(
                messages=int(ok[0]["messages"]), accounts=int(ok[0]["accounts"]),
                rate_min=min(rate), rate_med=statistics.median(rate), rate_max=max(rate),
                mbs_med=statistics.median(mbs),
                wall_med=statistics.median(float(r["wall_s"]) for r in ok),
                cpu_med=statistics.median(float(r["user_s"]) + float(r["sys_s"]) for r in ok),
                rss_max=max(int(r["maxrss_kb"]) for r in ok) / 1024.0,
                priv_max=kb_max(ok, "private_kb"), file_max=kb_max(ok, "file_kb"),
                load=",".join(r["load1"] for r in ok))
        stats[key] = s
    return stats


def case_title(case, s):
    any_s = next((v for (c, _), v in s.items() if c == case and "messages" in v), None)
    if not any_s:
        return f"case {case}"
    n, a = any_s["messages"], any_s["accounts"]
    return {
        "1": f"1 account, {n} messages -> counting sink",
        "2": f"1 account, {n} messages -> Postfix",
        "3": f"{a} accounts x {n // a} messages -> Postfix (in parallel for popgate: workers = {a})",
        "4": f"1 account, {n} large messages -> counting sink",
        "6": f"1 account, {n} messages -> counting sink, POP3 server 50 ms round trip away (delaying relay)",
        "8": f"1 account, {n} messages -> counting sink, POP3 server without CAPA writing line by line "
             "(small_writes_relay.py)",
    }.get(case, f"case {case}")


def idle_section(md, idle):
    """Case 5: one row per run (each run takes BENCH_IDLE_SECONDS)."""
    if not idle:
        return
    r0 = idle[0]
    md.append(f"## Case 5: {r0['accounts']} accounts with empty mailboxes, polled every "
              f"{r0['interval_s']} s for {r0['seconds']} s\n")
    md.append("CPU % of one core = (utime + stime) delta from /proc/PID/stat / wall time of the window, "
              "which starts `warmup` s after the daemon (popgated: its start-up left out; its first polls come "
              "8-10 s after start, inside the window; fetchmail polls at once, its window starts at 0) and ends "
              "just before SIGTERM; \"incl. start-up\" counts from the start. Peak RSS = VmHWM just before "
              "SIGTERM. Polls: popgated's own count (its `scheduler:` line, else its `poll:` lines), Dovecot's "
              "logins of these accounts, expected = accounts x (seconds / interval). Lateness: popgated's "
              "`scheduler:` line at SIGTERM (n/a when it logs none). Max gap: the longest time between two "
              "logins of one account in Dovecot's log (1 s resolution); first login: seconds from the start "
              "to the first login (Dovecot's clock).\n")
    md.append("| tool | run | ok | CPU % (window) | CPU % incl. start-up | CPU s | peak RSS MiB | polls / expected | "
              "Dovecot logins | accounts polled | failed logins | poll errors | max lateness ms | p99 lateness ms | "
              "polls > 2 s late | max gap s | first login s | load1 at start |")
    md.append("|" + " --- |" * 18)
    for r in idle:
        md.append(f"| {r['tool']} | {r['run']} | {'yes' if r['ok'] == '1' else '**no**'} | "
                  f"**{float(r['cpu_pct']):.2f}** | {float(r['cpu_all_pct']):.2f} | {r['cpu_s']} | "
                  f"{int(r['peak_rss_kb']) / 1024.0:.1f} | {r['polls']} / {r['expected_polls']} | {r['logins']} | "
                  f"{r['accounts_polled']} / {r['accounts']} | {r['failed_logins']} | {r['poll_errors']} | "
                  f"{r['late_max_ms']} | {r['late_p99_ms']} | {r['late_over_2s']} | {r['max_gap_s']} | {r['first_login_s']} | {r['load1']} |")
    for r in idle:
        if r["ok"] != "1":
            md.append(f"\nfailed run: {r['tool']} run {r['run']}: {r['problem']}")
    md.append("")


# Goal 4 of issue 20: "flat in the message size" = case 4 (10 MB messages) minus case 1
# (4 KB) at most FLAT_MIB; one case-4 message held whole would add 10 MiB.
PRIVATE_MIB, FLAT_MIB = 4.0, 1.0


def goal4_section(md, s):
    """Private memory and file pages per tool in cases 1 and 4, and goal 4 judged."""
    tools = [t for t in TOOLS if any(s.get((c, t), {}).get("priv_max") for c in ("1", "4"))]
    if not tools:
        return
    md.append("\n## Goal 4 of issue 20: memory that is popgate's (cases 1 and 4)\n")
    md.append("Peak private memory (Private_Dirty + max(0, Anonymous - Private_Dirty): heap, arenas, "
              "stacks, relocated library data) and peak file pages (Rss - private: shared libraries, "
              "executable) of the tool's main process, MiB, largest of the ok runs.\n")
    md.append("| tool | case 1 private | case 4 private | case 4 - case 1 | case 1 file | case 4 file | "
              "case 1 RSS | case 4 RSS |")
    md.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for t in tools:
        a, b = s.get(("1", t), {}), s.get(("4", t), {})
        d = b["priv_max"] - a["priv_max"] if a.get("priv_max") and b.get("priv_max") else None
        md.append(f"| {t} | {mib(a.get('priv_max'))} | {mib(b.get('priv_max'))} | "
                  f"{f'{d:+.2f}' if d is not None else 'n/a'} | {mib(a.get('file_max'))} | "
                  f"{mib(b.get('file_max'))} | {mib(a.get('rss_max'))} | {mib(b.get('rss_max'))} |")
    p1 = s.get(("1", "popgate"), {}).get("priv_max")
    p4 = s.get(("4", "popgate"), {}).get("priv_max")
    judged = []
    for case, v in (("1", p1), ("4", p4)):
        judged.append(f"case {case} {mib(v)} MiB" + ("" if v is None else
                      (" <= 4" if v <= PRIVATE_MIB else " **> 4**")))
    flat = None if p1 is None or p4 is None else p4 - p1
    judged.append(f"case 4 - case 1 {'n/a' if flat is None else f'{flat:+.2f}'} MiB" +
                  ("" if flat is None else (f" <= {FLAT_MIB:g}" if flat <= FLAT_MIB else f" **> {FLAT_MIB:g}**")))
    met = p1 is not None and p4 is not None and max(p1, p4) <= PRIVATE_MIB and flat <= FLAT_MIB
    md.append(f"\nGoal 4 (popgate's private memory <= {PRIVATE_MIB:g} MiB in cases 1 and 4, flat in the "
              f"message size: case 4 - case 1 <= {FLAT_MIB:g} MiB): " + "; ".join(judged) +
              (": **met**" if met else (": **not met**" if p1 is not None and p4 is not None
                                        else ": not measured (both cases needed)")))


def ratio(a, b):
    return a / b if a and b else float("nan")


def main():
    out = sys.argv[1]
    meta, rows, idle = load(out)
    s = summarize(rows)
    cases = sorted({c for c, _ in s} | {r["case"] for r in idle})
    md = []
    md.append("# popgate vs fetchmail, getmail6, mpop: results\n")
    md.append(f"- date: {meta.get('date')}; machine: {meta.get('machine')}")
    md.append(f"- load average (1, 5, 15 min): {meta.get('load')}")
    md.append(f"- versions: popgate {meta.get('popgate')}; fetchmail {meta.get('fetchmail')}, "
              f"getmail6 {meta.get('getmail6')}, mpop {meta.get('mpop')}, msmtp {meta.get('msmtp')}, "
              f"Dovecot {meta.get('dovecot')}, Postfix {meta.get('postfix')}, Python {meta.get('python3')}")
    if meta.get("postfix_delivery"):
        md.append(f"- Postfix delivery (cases 2, 3): {meta['postfix_delivery']}")
    if idle and meta.get("idle"):
        md.append(f"- case 5: {meta['idle']}")
    md.append(f"- sizes: {meta.get('sizes')}; runs alternate tools (A B C A B C); min / median / max of "
              "the runs that passed the correctness check (receiver got each message exactly once, "
              "POP3 mailbox empty); MB = 10^6 octets of the maildir files; CPU = user + sys of the "
              "tool and its children (msmtp); RSS = largest peak RSS of the tool or one child; "
              "private = peak of Private_Dirty + max(0, Anonymous - Private_Dirty) and file = peak of "
              "Rss - private (the file pages mapped: shared libraries, executable) of the tool's main "
              f"process (not msmtp), from /proc/PID/smaps_rollup ({meta.get('mem', 'bench/privmem.py')}), "
              "largest of the runs.\n")
    for case in cases:
        if case == "5":
            idle_section(md, idle)
            continue
        md.append(f"## Case {case}: {case_title(case, s)}\n")
        md.append("| tool | ok runs | msgs/s min / median / max | MB/s | wall s | CPU s | peak RSS MiB | "
                  "private MiB | file MiB | load1 at start |")
        md.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for t in TOOLS:
            v = s.get((case, t))
            if not v:
                continue
            if "rate_med" not in v:
                md.append(f"| {t} | 0 / {v['runs']} | failed | | | | | | | |")
                continue
            md.append(f"| {t} | {v['ok']} / {v['runs']} | {v['rate_min']:.1f} / **{v['rate_med']:.1f}** / "
                      f"{v['rate_max']:.1f} | {v['mbs_med']:.2f} | {v['wall_med']:.2f} | {v['cpu_med']:.2f} | "
                      f"{v['rss_max']:.1f} | {mib(v['priv_max'])} | {mib(v['file_max'])} | {v['load']} |")
        pg = s.get((case, "popgate"), {}).get("rate_med")
        peers = [(s[(case, p)]["rate_med"], p) for p in PEERS if "rate_med" in s.get((case, p), {})]
        ref = s.get((case, "refclient"), {}).get("rate_med")
        src = s.get((case, "smtp-source"), {}).get("rate_med")
        parts = []
        if pg and peers:
            best = max(peers)
            parts.append(f"popgate / best peer ({best[1]}): **{ratio(pg, best[0]):.1f}x**")
        if pg and ref:
            parts.append(f"popgate / reference client: **{ratio(pg, ref):.2f}x**")
        if pg and src:
            parts.append(f"popgate / smtp-source (the MTA's ceiling, not a peer): **{ratio(pg, src):.2f}x**")
        for mt in ("popgate-milter-unix", "popgate-milter-inet"):  # issue Perf, goal 0
            mv = s.get((case, mt), {}).get("rate_med")
            if pg and mv:
                parts.append(f"{mt} / popgate (the milter in Postfix's path): **{ratio(mv, pg):.2f}x**")
        if parts:
            md.append("\n" + "; ".join(parts))
        for v in (s.get((case, t)) for t in TOOLS):
            for r in (v or {}).get("failed", []):
                md.append(f"\nfailed run: {r['tool']} run {r['run']}: {r['problem']}")
        md.append("")

    def med(case, tool, key="rate_med"):
        return s.get((case, tool), {}).get(key)

    md.append("## The bars of issue 9\n")
    md.append("| case | bar | measured | met |")
    md.append("| --- | --- | --- | --- |")

    def bar(case, text, value, limit, fmt="{:.2f}x", less=False, strict=False):
        if value is None or value != value:
            md.append(f"| {case} | {text} | not measured | - |")
            return
        if less:
            met = value < limit if strict else value <= limit
        else:
            met = value >= limit
        md.append(f"| {case} | {text} | {fmt.format(value)} | {'yes' if met else '**no**'} |")

    r = lambda a, b: ratio(a, b) if a and b else None
    bar(1, "popgate >= 50x fetchmail msgs/s", r(med("1", "popgate"), med("1", "fetchmail")), 50)
    bar(1, "popgate >= 1.0x reference client", r(med("1", "popgate"), med("1", "refclient")), 1.0)
    bar(2, "popgate >= 25x fetchmail msgs/s (Postfix)", r(med("2", "popgate"), med("2", "fetchmail")), 25)
    bar(2, "popgate >= 1.0x reference client (Postfix)", r(med("2", "popgate"), med("2", "refclient")), 1.0)
    bar(3, "popgate parallel >= 1.5x its single-account rate (case 2)",
        r(med("3", "popgate"), med("2", "popgate")), 1.5)
    bar(4, "popgate >= 3x mpop MB/s", r(med("4", "popgate", "mbs_med"), med("4", "mpop", "mbs_med")), 3)
    bar(4, "popgate peak RSS <= 16 MiB", med("4", "popgate", "rss_max"), 16, "{:.1f} MiB", less=True)
    d = None
    if med("4", "popgate", "rss_max") and med("1", "popgate", "rss_max"):
        d = abs(med("4", "popgate", "rss_max") - med("1", "popgate", "rss_max"))
    bar(4, "popgate RSS within 4 MiB of case 1", d, 4, "{:.1f} MiB apart", less=True)
    # case 5: the worst ok run of popgate (one run by default)
    pg_idle = [r for r in idle if r["tool"] == "popgate" and r["ok"] == "1"]
    n_idle = pg_idle[0]["accounts"] if pg_idle else "1000"
    bar(5, f"popgate, {n_idle} idle accounts: CPU < 5 % of one core",
        max((float(r["cpu_pct"]) for r in pg_idle), default=None), 5, "{:.2f} %", less=True, strict=True)
    bar(5, "popgate, idle accounts: peak RSS < 64 MiB",
        max((int(r["peak_rss_kb"]) / 1024.0 for r in pg_idle), default=None), 64, "{:.1f} MiB",
        less=True, strict=True)
    late = [int(r["late_max_ms"]) for r in pg_idle if r["late_max_ms"].isdigit()]
    if pg_idle and not late:
        md.append("| 5 | popgate, idle accounts: no poll more than 2 s late | "
                  "n/a (popgated logged no `scheduler:` line) | - |")
    else:
        bar(5, "popgate, idle accounts: no poll more than 2 s late (max lateness)",
            max(late, default=None), 2000, "{} ms", less=True)
    bar(6, "popgate >= 10x fetchmail msgs/s at 50 ms RTT", r(med("6", "popgate"), med("6", "fetchmail")), 10)
    bar(8, "popgate >= 10x fetchmail msgs/s, server writing line by line without CAPA",
        r(med("8", "popgate"), med("8", "fetchmail")), 10)
    goal4_section(md, s)
    fb = os.path.join(out, "filter_bench.txt")
    if os.path.exists(fb):
        md.append("\n## Case 7: filter micro-benchmark (bench/filter_bench)\n")
        md.append("```")
        md.append(open(fb).read().rstrip())
        md.append("```")
    md.append("\n## How each tool delivers\n")
    for t in TOOLS:
        md.append(f"- {t}: {DELIVERY[t]}")
    md.append("- receivers: the counting sink (bench/smtp_sink.cpp) in cases 1, 4, 6, 8; in cases 2 and 3 the "
              "private Postfix's reinjection listener, "
              + (meta["postfix_delivery"] if meta.get("postfix_delivery") else "delivering to a maildir"))
    if idle:
        md.append("- case 5: popgated as a daemon (`popgated --log=stderr`, accounts from accounts.d, "
                  "`workers` left at its default), stopped with SIGTERM; `fetchmail -d INTERVAL -N`, "
                  "stopped with SIGTERM; both plain POP3, no mail to deliver")
    md.append("")
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(md))

    # chart: median msgs/s per message-count case (log scale), MB/s for case 4; not case 5
    tools = [t for t in TOOLS if any((c, t) in s for c in cases)]
    rate_cases = [c for c in cases if c in ("1", "2", "3", "6")]
    with open(os.path.join(out, "chart_rate.dat"), "w") as f:
        f.write("case " + " ".join(tools) + "\n")
        for c in rate_cases:
            f.write(f"case{c} " + " ".join(f"{med(c, t) or 0:.2f}" for t in tools) + "\n")
    with open(os.path.join(out, "chart_mbs.dat"), "w") as f:
        f.write("case " + " ".join(tools) + "\n")
        if "4" in cases:
            f.write("case4 " + " ".join(f"{med('4', t, 'mbs_med') or 0:.2f}" for t in tools) + "\n")
    n = len(tools)
    plot_rate = ", ".join(f"'chart_rate.dat' using {i + 2}:xtic(1) title '{t}'" for i, t in enumerate(tools))
    plot_mbs = ", ".join(f"'chart_mbs.dat' using {i + 2}:xtic(1) title '{t}'" for i, t in enumerate(tools))
    with open(os.path.join(out, "chart.gp"), "w") as f:
        f.write(f"""# generated by bench/report.py
set terminal pngcairo size 1100,480 font 'DejaVu Sans,10'
set output 'results.png'
set multiplot layout 1,2 title "popgate bench, {meta.get('date')}: {meta.get('machine', '').split(',')[0]}, load {meta.get('load')}"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top left
set grid ytics
""")
        if rate_cases:
            f.write(f"""set logscale y
set ylabel 'messages/s (median, log scale)'
set title 'cases 1-3 and 6: 4 KB messages'
plot {plot_rate}
""")
        if not rate_cases and "4" not in cases:  # e.g. case 5 alone: an empty chart, no error
            f.write("""unset border
unset tics
unset key
set xrange [0:1]
set yrange [0:1]
set label 'no throughput case (1-4, 6) in this run' at 0.5,0.5 center
plot 2 notitle
""")
        if "4" in cases:
            f.write(f"""unset logscale y
set ylabel 'MB/s (median)'
set title 'case 4: large messages'
set yrange [0:*]
plot {plot_mbs}
""")
        f.write("unset multiplot\n")


if __name__ == "__main__":
    main()
