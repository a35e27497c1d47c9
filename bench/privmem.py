#!/usr/bin/python3
"""privmem.py - run COMMAND (bench/run.sh: /usr/bin/time around the tool) and sample
the memory of its child, the tool's main process, from /proc/PID/smaps_rollup every
INTERVAL_MS until COMMAND exits; write the peaks to OUT as one line of key=value
(kB) and exit with COMMAND's status (128 + signal when it was killed).
  privmem.py OUT INTERVAL_MS COMMAND...
  PRIVMEM_SMAPS=FILE privmem.py ...   also copy /proc/PID/smaps (every mapping) to FILE
                                      whenever private rose 64 kB above the last copy
  privmem.py --by-mapping FILE        private and file kB per mapping of such a copy

What is sampled: the process COMMAND forks (with /usr/bin/time, the tool itself;
`env VAR=... tool` execs, same PID), all its threads (one address space); not the
tool's own children (msmtp under getmail6 and mpop). This process is COMMAND's parent,
so /usr/bin/time does not count its CPU; its start-up comes before time's clock.

Per sample, from smaps_rollup:
  private = Private_Dirty + max(0, Anonymous - Private_Dirty)
          = max(Private_Dirty, Anonymous)
    Private_Dirty: written pages that only this process maps: heap, malloc arenas,
    thread stacks, the relocated data of the libraries (copy-on-write, so anonymous
    pages too), dirty pages of a shared file mapping no one else maps (SQLite's -shm).
    Anonymous pages are Private_Dirty unless shared with a forked child (Shared_Dirty)
    or clean after a swap-in; smaps_rollup does not split Anonymous by those, so the
    anonymous pages not already counted are taken as what Anonymous exceeds
    Private_Dirty by. With no fork and no swap (popgated) private = Private_Dirty.
  file = Rss - private: the file pages mapped, clean (the shared libraries' code and
    read-only data, the executable, locale files), whether or not another process maps
    them too (Shared_Clean + Private_Clean); the kernel can drop and re-read them.
Peaks: private_kb is the largest private of any sample (anon_kb and pdirty_kb are of
that sample), file_kb the largest file part, rss_kb the largest Rss.
"""
import os
import subprocess
import sys
import time

FIELDS = ("Rss", "Private_Dirty", "Anonymous")


def child_of(ppid):
    """The PID of a child of ppid, or None."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses
        rest = stat[stat.rfind(b")") + 2:].split()
        if len(rest) > 1 and int(rest[1]) == ppid:
            return int(d)
    return None


def rollup(pid):
    """{field: kB} of one read of smaps_rollup, or None once the process is gone.
    Opened anew each time: an open file keeps the address space it was opened on,
    and the child replaces its own when it execs the tool."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb", buffering=0) as f:
            text = f.read(4096)
    except OSError:
        return None
    v = {}
    for line in text.split(b"\n"):
        k, _, rest = line.partition(b":")
        k = k.decode()
        if k in FIELDS:
            v[k] = int(rest.split()[0])
    return v if len(v) == len(FIELDS) else None


def by_mapping(path):
    """Sum a /proc/PID/smaps copy by mapping name: private (as above, per mapping) and
    file kB, largest private first."""
    rows, name, v = {}, None, {}

    def flush():
        if name is not None and len(v) == len(FIELDS):
            private = max(v["Private_Dirty"], v["Anonymous"])
            r = rows.setdefault(name, [0, 0, 0])
            r[0] += private
            r[1] += v["Rss"] - private
            r[2] += 1
    with open(path) as f:
        for line in f:
            head = line.split()
            if head and "-" in head[0] and not head[0].endswith(":"):
                flush()
                # unnamed: thread stacks (8 MiB), malloc arenas (parts of 64 MiB): by size
                lo, hi = (int(x, 16) for x in head[0].split("-"))
                name, v = (head[5] if len(head) > 5 else f"[anon {(hi - lo) >> 10} kB {head[1]}]"), {}
            elif head and head[0].rstrip(":") in FIELDS:
                v[head[0].rstrip(":")] = int(head[1])
    flush()
    print(f"{'private kB':>10} {'file kB':>8} {'maps':>4}  mapping")
    for n, (p, fl, c) in sorted(rows.items(), key=lambda kv: -kv[1][0]):
        print(f"{p:10d} {fl:8d} {c:4d}  {n}")
    print(f"{sum(r[0] for r in rows.values()):10d} {sum(r[1] for r in rows.values()):8d}       total")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--by-mapping":
        by_mapping(sys.argv[2])
        return
    if len(sys.argv) < 4:
        sys.exit("usage: privmem.py OUT INTERVAL_MS COMMAND...")
    out, interval = sys.argv[1], int(sys.argv[2]) / 1000.0
    proc = subprocess.Popen(sys.argv[3:])
    peak = {"private_kb": 0, "anon_kb": 0, "pdirty_kb": 0, "file_kb": 0, "rss_kb": 0, "samples": 0}
    pid = None
    smaps, copied = os.environ.get("PRIVMEM_SMAPS"), -1
    while proc.poll() is None:
        if pid is None:
            pid = child_of(proc.pid)
        if pid is not None:
            v = rollup(pid)
            if v:
                private = max(v["Private_Dirty"], v["Anonymous"])
                peak["samples"] += 1
                if private > peak["private_kb"]:
                    peak.update(private_kb=private, anon_kb=v["Anonymous"], pdirty_kb=v["Private_Dirty"])
                peak["file_kb"] = max(peak["file_kb"], v["Rss"] - private)
                peak["rss_kb"] = max(peak["rss_kb"], v["Rss"])
                if smaps and private >= copied + 64:
                    try:
                        with open(f"/proc/{pid}/smaps", "rb") as f:
                            text = f.read()
                        with open(smaps, "wb") as f:
                            f.write(text)
                        copied = private
                    except OSError:
                        pass
        time.sleep(interval if pid is not None else 0.002)
    with open(out, "w") as f:
        f.write(" ".join(f"{k}={v}" for k, v in peak.items()) + f" pid={pid}\n")
    rc = proc.returncode
    sys.exit(128 - rc if rc < 0 else rc)


if __name__ == "__main__":
    main()
