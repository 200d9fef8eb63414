#!/usr/bin/python3
# Lab test: configuration reloads under traffic.
#
#   tests/lab/test_reload.py        (as root, with the lab up: tests/lab/lab up)
#
# While nfl-client pings 10.20.0.11 through nf every 2 ms (2500 echo requests), the test
# applies 10 `nfctl reload`s alternating two valid copies of /etc/nf/lab.conf (they differ in
# the gateway of a static route for 192.0.2.0/24) and 4 SIGHUPs (which reload the file last
# given to nfctl). It asserts: no echo lost (2500/2500), every reload succeeded, the snapshot
# generation advanced by exactly the number of reloads, the workers run the last snapshot and
# the expected file is running. Then two bad files (an overlapping prefix, a syntax error) are
# reloaded: nfctl must exit 1 with `file:line:` naming the offending line, the generation must
# not move, and traffic must still flow. Finally the lab configuration is reloaded again
# (/etc/nf/lab.conf), also on failure. Runs in ~10 s; exits 0 on pass.
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

LAB_CONF = "/etc/nf/lab.conf"
NF_PID_FILE = "/run/nf/lab/nf.pid"
PINGS = 2500
INTERVAL = "0.002"
NFCTL_RELOADS = 10
SIGHUP_AFTER = {2, 4, 6, 8}  # a SIGHUP after these nfctl reloads (1-based)

results = []


def log(msg):
    print(msg, flush=True)


def record(name, ok, detail):
    results.append((name, ok, detail))
    log(f"  [{'PASS' if ok else 'FAIL'}] {name}: {detail}")


def die(msg):
    log(f"test_reload: FAIL: {msg}")
    sys.exit(1)


def nfctl(*args):
    r = subprocess.run(["nfctl", *args], capture_output=True, text=True, timeout=20)  # the lab host may be busy
    return r.returncode, r.stdout, r.stderr


def generation():
    rc, out, err = nfctl("show", "lcores")
    m = re.search(r"snapshot generation (\d+)", out)
    if rc != 0 or not m:
        raise RuntimeError(f"nfctl show lcores: rc {rc}: {out}{err}")
    return int(m.group(1))


def worker_generations():
    _, out, _ = nfctl("show", "lcores")
    return [int(g) for g in re.findall(r"^worker .*? generation (\d+)", out, re.M)]


def running_file():
    _, out, _ = nfctl("show", "config")
    m = re.match(r"# (.*) \(generation (\d+)\)", out)
    return (m.group(1), int(m.group(2))) if m else (None, None)


def mgmt(name):
    _, out, _ = nfctl("show", "management")
    m = re.search(rf"^{name}\s+(\d+)", out, re.M)
    return int(m.group(1)) if m else -1


def fwd_tx():
    _, out, _ = nfctl("show", "stages")
    return sum(int(l.split()[6]) for l in out.splitlines()[1:]
               if len(l.split()) == 12 and l.split()[1] == "ip4_forward" and l.split()[0] not in ("all", "own"))


def ping3():
    r = subprocess.run(["ip", "netns", "exec", "nfl-client", "ping", "-n", "-q", "-c", "3", "-i", "0.2", "-W", "2",
                        "10.20.0.11"], capture_output=True, text=True, timeout=20)
    m = re.search(r"(\d+) received", r.stdout)
    return int(m.group(1)) if m else 0


def line_of(path, needle):
    for i, l in enumerate(open(path), 1):
        if needle in l:
            return i
    raise RuntimeError(f"{needle!r} not in {path}")


def main():
    if os.geteuid() != 0:
        die("run as root")
    if subprocess.run(["ip", "netns", "exec", "nfl-client", "true"], capture_output=True).returncode != 0:
        die("namespace nfl-client is missing: is the lab up? (tests/lab/lab up)")
    if nfctl("ping")[0] != 0:
        die("nf does not answer nfctl ping: is the lab up?")
    nf_pid = int(open(NF_PID_FILE).read().split()[0])
    lab = open(LAB_CONF).read()
    if "routes = ( );" not in lab:
        die(f"{LAB_CONF} has no 'routes = ( );' line to vary")

    work = tempfile.mkdtemp(prefix="nf-test-reload-")
    try:
        confs = []
        for name, gw in (("a", "10.20.0.12"), ("b", "10.20.0.13")):
            p = os.path.join(work, f"reload-{name}.conf")
            with open(p, "w") as f:
                f.write(lab.replace("routes = ( );", f'routes = ( {{ prefix = "192.0.2.0/24"; via = "{gw}"; }} );'))
            rc, out, err = nfctl("check", p)
            if rc != 0:
                die(f"nfctl check {p}: rc {rc}: {out}{err}")
            confs.append((p, gw))

        overlap = os.path.join(work, "bad-overlap.conf")
        srv_line = '    addresses = [ "10.20.0.1/24", "10.20.0.2/24" ];'
        if lab.count(srv_line) != 1:
            die(f"cannot find the srv addresses line {srv_line!r} in {LAB_CONF}")
        with open(overlap, "w") as f:
            f.write(lab.replace(srv_line, '    addresses = [ "10.20.0.1/24", "10.20.0.2/24",\n                  "10.0.0.1/8" ];'))
        syntax = os.path.join(work, "bad-syntax.conf")
        lines = lab.splitlines(keepends=True)
        lines.insert(20, "  this is not libconfig\n")  # becomes line 21
        with open(syntax, "w") as f:
            f.writelines(lines)
        bad = [("overlapping prefix 10.0.0.1/8 (overlaps 10.10.0.0/24 of port lan)", overlap,
                line_of(overlap, '"10.0.0.1/8"')),
               ("syntax error", syntax, line_of(syntax, "this is not libconfig"))]

        # ---- reloads under a 500 pps stream ---------------------------------------------------
        g0 = generation()
        reloads0 = mgmt("reloads")
        tx0 = fwd_tx()
        log(f"start: snapshot generation {g0}, running {running_file()[0]}, reloads so far {reloads0}")
        log(f"stream: ping -i {INTERVAL} -c {PINGS} 10.20.0.11 from nfl-client")
        ping = subprocess.Popen(["ip", "netns", "exec", "nfl-client", "ping", "-n", "-q", "-i", INTERVAL, "-c",
                                 str(PINGS), "-W", "2", "10.20.0.11"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(0.5)
        ok_reloads, failures, during = 0, [], True
        for k in range(1, NFCTL_RELOADS + 1):
            path, gw = confs[(k - 1) % 2]
            before = generation()
            rc, out, err = nfctl("reload", path)
            if rc == 0:
                ok_reloads += 1
            else:
                failures.append(f"nfctl reload {path}: rc {rc}: {(out + err).strip()}")
            log(f"    reload {k:2d}: nfctl reload {os.path.basename(path)} (via {gw}) -> rc {rc}, "
                f"generation {before} -> {generation()}")
            time.sleep(0.2)
            if k in SIGHUP_AFTER:
                before = generation()
                os.kill(nf_pid, signal.SIGHUP)
                end = time.time() + 3
                while time.time() < end and generation() == before:
                    time.sleep(0.05)
                g = generation()
                f, fg = running_file()
                if g == before + 1 and f == path:
                    ok_reloads += 1
                else:
                    failures.append(f"SIGHUP: generation {before} -> {g}, running {f}")
                log(f"    SIGHUP   : kill -HUP {nf_pid} -> generation {before} -> {g}, running {os.path.basename(f or '?')}")
                time.sleep(0.2)
            during = during and ping.poll() is None
        try:
            out, _ = ping.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            ping.kill()
            out, _ = ping.communicate()
        g1 = generation()
        total = NFCTL_RELOADS + len(SIGHUP_AFTER)
        m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
        sent, got = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
        txd = fwd_tx() - tx0

        record("stream kept running through every reload", during,
               f"ping was still running after the last reload: {during}")
        record("no packet lost during reloads", sent == PINGS and got == PINGS,
               f"{sent} echo requests sent, {got} replies received, {sent - got} lost "
               f"(ip4_forward tx +{txd} in nf over the stream)")
        record("every reload succeeded", ok_reloads == total and not failures,
               f"{ok_reloads}/{total} ({NFCTL_RELOADS} nfctl + {len(SIGHUP_AFTER)} SIGHUP)"
               + ("; " + "; ".join(failures) if failures else ""))
        record("generation advanced by the number of successful reloads", g1 - g0 == ok_reloads,
               f"generation {g0} -> {g1} (+{g1 - g0}), successful reloads {ok_reloads}; "
               f"show management reloads +{mgmt('reloads') - reloads0}")
        wg = worker_generations()
        record("workers run the last snapshot", bool(wg) and all(w == g1 for w in wg),
               f"management generation {g1}, workers {wg}")
        f, fg = running_file()
        last = confs[(NFCTL_RELOADS - 1) % 2][0]
        _, routes, _ = nfctl("show", "routes")
        last_gw = confs[(NFCTL_RELOADS - 1) % 2][1]
        rl = [l.strip() for l in routes.splitlines() if l.startswith("192.0.2.0/24")]
        record("the last file reloaded is running", f == last and fg == g1 and len(rl) == 1 and last_gw in rl[0],
               f"show config: {f} (generation {fg}); show routes: {rl} (want via {last_gw})")

        # ---- bad configurations -----------------------------------------------------------------
        for what, path, line in bad:
            g_before = generation()
            rejected0 = mgmt("reloads_rejected")
            crc, cout, cerr = nfctl("check", path)
            rc, out, err = nfctl("reload", path)
            g_after = generation()
            msg = (out + err).strip()
            want = f"{path}:{line}:"
            record(f"reload rejected: {what}", rc == 1 and want in msg and g_after == g_before
                   and mgmt("reloads_rejected") == rejected0 + 1 and crc == 1 and want in cout + cerr,
                   f"nfctl reload exit {rc} (want 1), nfctl check exit {crc} (want 1); message names "
                   f"'{want}': {want in msg}; generation {g_before} -> {g_after}; message: {msg!r}")
            n = ping3()
            record(f"traffic flows after the rejected reload ({what})", n == 3, f"ping 10.20.0.11: {n}/3 replies")
    finally:
        g = generation()
        rc, out, err = nfctl("reload", LAB_CONF)
        f, fg = running_file()
        record("lab configuration restored", rc == 0 and f == LAB_CONF,
               f"nfctl reload {LAB_CONF} -> rc {rc} ({(out + err).strip()}); running {f} (generation {g} -> {fg})")
        subprocess.run(["rm", "-rf", work])

    alive = os.path.exists(f"/proc/{nf_pid}")
    if not alive:
        record("nf alive", False, f"pid {nf_pid} is gone")
    failed = [r for r in results if not r[1]]
    log(f"\ntest_reload: {len(results) - len(failed)} passed, {len(failed)} failed")
    for r in failed:
        log(f"  FAILED: {r[0]}: {r[2]}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    def _on_signal(signum, _frame):
        raise SystemExit(f"test_reload: interrupted by signal {signum}")  # runs the restore in finally

    signal.signal(signal.SIGTERM, _on_signal)
    main()
