#!/usr/bin/python3
"""What keeps the CPUs busy, over an interval: per-CPU busy % and the processes above a
threshold, e.g.

    cpu0 12% cpu1 100%; busy: nf[6597] 100%, clang-tidy[11794] 88%

    cpu_load.py [SECONDS] [--min PERCENT] [--exclude PID,...]

Reads /proc only. Used by perf/run-throughput to say under what load a measurement was taken.
"""
import argparse
import os
import time

HZ = os.sysconf("SC_CLK_TCK")


def cpu_times():
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                v = line.split()
                t = [int(x) for x in v[1:]]
                out[v[0]] = (sum(t), t[3] + t[4])  # total, idle + iowait
    return out


def proc_times():
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                s = f.read()
        except OSError:
            continue
        comm = s[s.index("(") + 1:s.rindex(")")]
        rest = s[s.rindex(")") + 2:].split()
        out[int(pid)] = (comm, int(rest[11]) + int(rest[12]))  # utime + stime
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("seconds", nargs="?", type=float, default=1.0)
    ap.add_argument("--min", type=float, default=20.0)
    ap.add_argument("--exclude", default="")
    a = ap.parse_args()
    skip = {int(x) for x in a.exclude.split(",") if x}
    skip.add(os.getpid())
    c0, p0, t0 = cpu_times(), proc_times(), time.monotonic()
    time.sleep(a.seconds)
    c1, p1, t1 = cpu_times(), proc_times(), time.monotonic()
    cpus = []
    total_busy = 0.0  # in % of one CPU
    for cpu in sorted(c1, key=lambda c: int(c[3:])):
        dt = c1[cpu][0] - c0[cpu][0]
        di = c1[cpu][1] - c0[cpu][1]
        pct = 100 * (1 - di / dt) if dt > 0 else 0
        total_busy += pct
        cpus.append("%s %d%%" % (cpu, round(pct)))
    busy = []
    attributed = 0.0
    for pid, (comm, t) in p1.items():
        if pid not in p0:
            continue
        pct = 100.0 * (t - p0[pid][1]) / HZ / (t1 - t0)
        attributed += pct
        if pct >= a.min and pid not in skip:
            busy.append((pct, "%s[%d] %d%%" % (comm, pid, round(pct))))
    busy.sort(reverse=True)
    other = total_busy - attributed
    if other >= a.min:  # processes that started or ended inside the interval (builds, tests)
        busy.append((other, "short-lived processes ~%d%%" % round(other)))
    print(" ".join(cpus) + "; busy: " + (", ".join(b for _, b in busy) if busy else "nothing"))


if __name__ == "__main__":
    main()
