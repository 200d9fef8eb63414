#!/usr/bin/python3
# Lab test: DHCP protocol details of nf's server, with hand-made packets (scapy).
#
#   tests/lab/test_dhcp.py        (as root, with the lab up: tests/lab/lab up)
#
# Creates namespace nfl-dh-py on nfl-br0 and speaks DHCP from there, each scenario as its own
# client (its own MAC as Ethernet source and chaddr, 02:dd:00:00:01:xx), and as a relay from
# nfl-client. Checked, with every reply's IP and UDP checksums:
#   - reply addressing (RFC 2131 4.1): broadcast flag set -> OFFER and ACK to
#     ff:ff:ff:ff:ff:ff / 255.255.255.255; flag clear -> to chaddr's MAC at IP yiaddr;
#   - options as configured: mask 255.255.255.0, router and DNS 10.10.0.1, domain
#     lab.example, lease 3600, T1 1800, T2 3150, server id 10.10.0.1; the lease is bound in
#     `nfctl show leases`;
#   - rebind: REQUEST broadcast with ciaddr and no server id -> ACK (unicast to ciaddr), and
#     the lease's expiry in nf moves;
#   - decline: DECLINE of the bound address -> `show leases` says declined; the client's next
#     DISCOVER is offered another address (the test then releases the quarantined one with
#     `nfctl release`, so that repeated runs do not use up the pool);
#   - INFORM from a statically configured 10.10.0.120 -> ACK to it with the options, ciaddr
#     echoed, yiaddr 0 and no lease time (nor T1/T2);
#   - NAK: INIT-REBOOT REQUEST for 192.168.77.5 (outside the subnet) -> NAK, broadcast even
#     though the client did not set the broadcast flag;
#   - relay: DISCOVER from nfl-client as a relay (giaddr 10.10.0.100, hops 1, option 82 with a
#     circuit and a remote id) -> OFFER to 10.10.0.100:67 from the relayed pool
#     (10.128.0.10-10.143.255.250, mask 255.240.0.0, router 10.128.0.1) with option 82 echoed
#     byte for byte; REQUEST -> ACK likewise; RELEASE through the relay -> released.
# Removes its namespace and gives back its leases on exit. ~10 s; exits 0 on pass.
import ctypes
import os
import re
import signal
import subprocess
import sys
import time

from scapy.all import conf, sendp, sniff
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

NS = "nfl-dh-py"
NF_IP = "10.10.0.1"
BCAST_MAC = "ff:ff:ff:ff:ff:ff"
RELAY_IP = "10.10.0.100"
OPT82 = (b"\x01\x0enfl-dh-py/eth7"            # circuit id
         b"\x02\x06\x02\xdd\x00\x00\x01\x10")  # remote id
PRL = [1, 3, 6, 15, 51, 54, 58, 59]

results = []
leases_to_release = set()
libc = ctypes.CDLL("libc.so.6", use_errno=True)
CLONE_NEWNET = 0x40000000
ROOT_NS_FD = os.open("/proc/self/ns/net", os.O_RDONLY)


def log(msg):
    print(msg, flush=True)


def record(name, ok, detail=""):
    results.append((name, bool(ok), detail))
    log(f"  [{'PASS' if ok else 'FAIL'}] {name}{': ' + detail if detail else ''}")
    return ok


def run(*cmd, check=False):
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=30)
    if check and r.returncode:
        raise RuntimeError(f"{' '.join(cmd)}: rc {r.returncode}: {r.stdout}{r.stderr}")
    return r


def nfctl(*args):
    r = run("nfctl", *args)
    return r.returncode, r.stdout + r.stderr


def enter(ns):
    """Moves this (single-threaded) process into network namespace `ns` (None: the root one)."""
    fd = ROOT_NS_FD if ns is None else os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns({ns})")
    finally:
        if ns is not None:
            os.close(fd)
    conf.ifaces.reload()


def lease(addr):
    """(mac, state, expires_in) from `nfctl show leases <addr>`, or None."""
    _, out = nfctl("show", "leases", addr)
    for line in out.splitlines():
        f = line.split()
        if f and f[0] == addr:
            return f[1], f[2], int(f[3])
    return None


def wait_state(addr, state, secs=3.0):
    end = time.time() + secs
    while True:
        cur = lease(addr)
        if (cur and cur[1] == state) or time.time() > end:
            return cur
        time.sleep(0.1)


def opts(p):
    d = {}
    for o in p[DHCP].options:
        if isinstance(o, tuple):
            d[o[0]] = o[1] if len(o) == 2 else list(o[1:])
    return d


def mac_bytes(mac):
    return bytes.fromhex(mac.replace(":", "")) + b"\0" * 10


def checksums_ok(p):
    ip, udp = p[IP], p[UDP]
    raw_ip = IP(bytes(ip))
    del raw_ip.chksum
    del raw_ip[UDP].chksum
    again = IP(bytes(raw_ip))
    return ip.chksum == again.chksum and (udp.chksum == 0 or udp.chksum == again[UDP].chksum)


class Client:
    """One DHCP client on eth0 of the current namespace, with its own MAC."""
    xid_next = 0x6e660000

    def __init__(self, mac, iface="eth0"):
        self.mac, self.iface = mac, iface

    def frame(self, mtype, *, flags=0, ciaddr="0.0.0.0", src="0.0.0.0", dst="255.255.255.255",
              eth_dst=BCAST_MAC, extra=(), giaddr="0.0.0.0", hops=0, sport=68, eth_src=None):
        Client.xid_next += 1
        self.xid = Client.xid_next
        return (Ether(src=eth_src or self.mac, dst=eth_dst) / IP(src=src, dst=dst)
                / UDP(sport=sport, dport=67)
                / BOOTP(op=1, xid=self.xid, flags=flags, ciaddr=ciaddr, giaddr=giaddr, hops=hops,
                        chaddr=mac_bytes(self.mac))
                / DHCP(options=[("message-type", mtype), *extra, ("param_req_list", PRL), "end"]))

    def send(self, frame, timeout=2.0):
        """Sends `frame` and returns the first BOOTREPLY with its xid (None after `timeout`)."""
        s = conf.L2listen(iface=self.iface)
        try:
            sendp(frame, iface=self.iface, verbose=False)
            got = sniff(opened_socket=s, timeout=timeout, count=1,
                        lfilter=lambda p: BOOTP in p and p[BOOTP].op == 2 and p[BOOTP].xid == self.xid)
        finally:
            s.close()
        return got[0] if got else None


def addressing(p):
    return f"{p[Ether].src} -> {p[Ether].dst}, {p[IP].src}:{p[UDP].sport} -> {p[IP].dst}:{p[UDP].dport}"


def in_range(a, lo, hi):
    n = lambda x: int.from_bytes(bytes(int(i) for i in x.split(".")), "big")
    return n(lo) <= n(a) <= n(hi)


def lan_options_ok(o, lease_time=3600):
    want = {"subnet_mask": "255.255.255.0", "router": NF_IP, "name_server": NF_IP,
            "domain": b"lab.example", "server_id": NF_IP}
    if lease_time:
        want |= {"lease_time": lease_time, "renewal_time": lease_time // 2,
                 "rebinding_time": lease_time * 7 // 8}
    bad = {k: (o.get(k), v) for k, v in want.items() if o.get(k) != v}
    return not bad, bad


def dora(c, flags, label):
    """DISCOVER -> OFFER -> REQUEST -> ACK for client `c`; returns (offer, ack)."""
    offer = c.send(c.frame("discover", flags=flags))
    if not record(f"{label}: OFFER received", offer is not None and opts(offer).get("message-type") == 2,
                  addressing(offer) if offer else "no reply in 2 s"):
        return None, None
    y = offer[BOOTP].yiaddr
    ack = c.send(c.frame("request", flags=flags,
                         extra=[("server_id", NF_IP), ("requested_addr", y)]))
    record(f"{label}: ACK for {y}", ack is not None and opts(ack).get("message-type") == 5
           and ack[BOOTP].yiaddr == y, addressing(ack) if ack else "no reply in 2 s")
    if ack is not None:
        leases_to_release.add(y)
    return offer, ack


def main():
    if os.geteuid() != 0:
        log("test_dhcp: run as root")
        return 1
    if nfctl("ping")[0] != 0:
        log("test_dhcp: nf does not answer nfctl ping: is the lab up?")
        return 1
    _, ports = nfctl("show", "ports")
    m = re.search(r'^port 0 .*?\n\s+mac (\S+)', ports, re.M)
    nf_mac = m.group(1) if m else None
    r = run("ip", "-n", "nfl-client", "-o", "link", "show", "eth0")
    m = re.search(r"link/ether (\S+)", r.stdout)
    relay_mac = m.group(1) if m else None
    if not nf_mac or not relay_mac:
        log(f"test_dhcp: cannot find nf's MAC ({nf_mac}) or nfl-client's ({relay_mac})")
        return 1

    # The namespace (like veth_to_bridge in tests/lab/lab, without an address).
    drop_namespace()  # left over by an interrupted run
    run("ip", "netns", "add", NS, check=True)
    run("ip", "link", "add", f"{NS}-br", "type", "veth", "peer", "name", "eth0", "netns", NS, check=True)
    run("ip", "link", "set", f"{NS}-br", "master", "nfl-br0", "up", check=True)
    for cmd in (["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"], ["ip", "link", "set", "lo", "up"],
                ["ip", "link", "set", "eth0", "address", "02:dd:00:00:01:00"], ["ip", "link", "set", "eth0", "up"]):
        run("ip", "netns", "exec", NS, *cmd, check=True)
    run("ip", "netns", "exec", NS, "ethtool", "-K", "eth0", "rx", "off", "tx", "off")
    time.sleep(0.5)
    enter(NS)

    # ---- reply addressing and options --------------------------------------------------------
    log("== reply addressing (RFC 2131 4.1) and options")
    c1 = Client("02:dd:00:00:01:01")
    offer, ack = dora(c1, 0x8000, "broadcast flag set")
    for what, p in (("OFFER", offer), ("ACK", ack)):
        if p is None:
            continue
        record(f"broadcast flag set: {what} to ff:ff:ff:ff:ff:ff / 255.255.255.255:68 from {nf_mac} {NF_IP}:67",
               p[Ether].dst == BCAST_MAC and p[IP].dst == "255.255.255.255" and p[UDP].dport == 68
               and p[Ether].src == nf_mac and p[IP].src == NF_IP and p[UDP].sport == 67
               and p[BOOTP].flags & 0x8000, addressing(p))
        good, bad = lan_options_ok(opts(p))
        record(f"broadcast flag set: {what} options (mask, router, DNS, domain, lease 3600, T1 1800, "
               f"T2 3150, server id)", good, f"wrong: {bad}" if bad else "as configured")
        record(f"broadcast flag set: {what} IP and UDP checksums", checksums_ok(p))
    if ack is not None:
        y1 = ack[BOOTP].yiaddr
        record(f"broadcast flag set: {y1} inside 10.10.0.150-199", in_range(y1, "10.10.0.150", "10.10.0.199"))
        cur = wait_state(y1, "bound")
        record(f"nfctl show leases {y1}: bound to {c1.mac}", cur and cur[0] == c1.mac and cur[1] == "bound"
               and 3590 <= cur[2] <= 3600, str(cur))

    c2 = Client("02:dd:00:00:01:02")
    offer, ack = dora(c2, 0, "broadcast flag clear")
    for what, p in (("OFFER", offer), ("ACK", ack)):
        if p is None:
            continue
        y = p[BOOTP].yiaddr
        record(f"broadcast flag clear: {what} unicast to chaddr {c2.mac} at yiaddr {y}:68",
               p[Ether].dst == c2.mac and p[IP].dst == y and p[UDP].dport == 68 and p[Ether].src == nf_mac,
               addressing(p))
        record(f"broadcast flag clear: {what} IP and UDP checksums", checksums_ok(p))

    # ---- rebind ------------------------------------------------------------------------------------
    log("== rebind: REQUEST broadcast with ciaddr, no server id")
    if ack is not None:
        y2 = ack[BOOTP].yiaddr
        before, t_before = lease(y2), time.time()
        time.sleep(3)  # so that the new expiry is visibly later (nf shows whole seconds)
        reb = c2.send(c2.frame("request", src=y2, ciaddr=y2))
        ok = reb is not None and opts(reb).get("message-type") == 5 and reb[BOOTP].yiaddr == y2
        record(f"rebind of {y2}: ACK", ok, addressing(reb) if reb else "no reply in 2 s")
        if reb is not None:
            record(f"rebind of {y2}: ACK unicast to ciaddr (eth {c2.mac}, IP {y2}), ciaddr echoed, lease 3600",
                   reb[Ether].dst == c2.mac and reb[IP].dst == y2 and reb[BOOTP].ciaddr == y2
                   and opts(reb).get("lease_time") == 3600, addressing(reb))
        after, t_after = lease(y2), time.time()
        if before and after:
            moved = (t_after + after[2]) - (t_before + before[2])
            record(f"rebind of {y2}: expiry in nf moved", after[1] == "bound" and moved >= 2,
                   f"expires_in {before[2]} s, then {after[2]} s {t_after - t_before:.1f} s later: "
                   f"expiry {moved:+.1f} s")
        else:
            record(f"rebind of {y2}: lease shown before and after", False, f"{before} / {after}")

    # ---- decline -----------------------------------------------------------------------------------
    log("== decline")
    c3 = Client("02:dd:00:00:01:03")
    _, ack = dora(c3, 0, "decline client")
    if ack is not None:
        y3 = ack[BOOTP].yiaddr
        reply = c3.send(c3.frame("decline", extra=[("server_id", NF_IP), ("requested_addr", y3)]), timeout=1.0)
        record(f"DECLINE of {y3}: no reply", reply is None, addressing(reply) if reply else "")
        cur = wait_state(y3, "declined")
        record(f"nfctl show leases {y3}: declined", cur and cur[1] == "declined", str(cur))
        offer = c3.send(c3.frame("discover"))
        z = offer[BOOTP].yiaddr if offer is not None else None
        record(f"next DISCOVER from {c3.mac}: offered another address", offer is not None and z != y3
               and in_range(z, "10.10.0.150", "10.10.0.199"), f"offered {z}, declined {y3}")
        # The quarantine would hold the address for a day: give it back.
        rc, out = nfctl("release", y3)
        cur = lease(y3)
        record(f"nfctl release {y3} (declined) frees it", rc == 0 and cur and cur[1] == "released",
               f"{out.strip()}; now {cur}")

    # ---- INFORM ------------------------------------------------------------------------------------
    log("== INFORM from a statically configured 10.10.0.120")
    c4 = Client("02:dd:00:00:01:04")
    inf = c4.send(c4.frame("inform", src="10.10.0.120", ciaddr="10.10.0.120", dst=NF_IP, eth_dst=nf_mac))
    if record("INFORM: ACK", inf is not None and opts(inf).get("message-type") == 5,
              addressing(inf) if inf else "no reply in 2 s"):
        o = opts(inf)
        good, bad = lan_options_ok(o, lease_time=0)
        record("INFORM: ACK has the options (mask, router, DNS, domain, server id)", good, f"wrong: {bad}" if bad else "")
        record("INFORM: no lease time, T1 or T2; yiaddr 0; ciaddr echoed",
               not {"lease_time", "renewal_time", "rebinding_time"} & o.keys()
               and inf[BOOTP].yiaddr == "0.0.0.0" and inf[BOOTP].ciaddr == "10.10.0.120",
               f"yiaddr {inf[BOOTP].yiaddr}, ciaddr {inf[BOOTP].ciaddr}, options {sorted(o)}")
        record("INFORM: ACK unicast to 10.10.0.120:68 at the client's MAC",
               inf[IP].dst == "10.10.0.120" and inf[Ether].dst == c4.mac and inf[UDP].dport == 68, addressing(inf))
        record("INFORM: IP and UDP checksums", checksums_ok(inf))

    # ---- NAK ---------------------------------------------------------------------------------------
    log("== NAK: INIT-REBOOT for an address outside the subnet")
    c5 = Client("02:dd:00:00:01:05")
    nak = c5.send(c5.frame("request", extra=[("requested_addr", "192.168.77.5")]))
    if record("INIT-REBOOT REQUEST for 192.168.77.5: NAK", nak is not None and opts(nak).get("message-type") == 6,
              (addressing(nak) + f", message type {opts(nak).get('message-type')}") if nak else "no reply in 2 s"):
        o = opts(nak)
        record("NAK broadcast (ff:ff:ff:ff:ff:ff, 255.255.255.255:68) although the flag was clear",
               nak[Ether].dst == BCAST_MAC and nak[IP].dst == "255.255.255.255" and nak[UDP].dport == 68,
               addressing(nak))
        record("NAK: server id 10.10.0.1, yiaddr 0, no lease time", o.get("server_id") == NF_IP
               and nak[BOOTP].yiaddr == "0.0.0.0" and "lease_time" not in o, f"options {sorted(o)}")

    # ---- relay -------------------------------------------------------------------------------------
    log(f"== relay: nfl-client ({RELAY_IP}, {relay_mac}) relays with option 82")
    enter("nfl-client")
    c6 = Client("02:dd:00:00:01:10")
    relay = dict(src=RELAY_IP, dst=NF_IP, eth_dst=nf_mac, eth_src=relay_mac, giaddr=RELAY_IP, hops=1, sport=67)
    offer = c6.send(c6.frame("discover", extra=[("relay_agent_information", OPT82)], **relay))
    if record("relayed DISCOVER: OFFER", offer is not None and opts(offer).get("message-type") == 2,
              addressing(offer) if offer else "no reply in 2 s"):
        o = opts(offer)
        y = offer[BOOTP].yiaddr
        record(f"relayed OFFER to the relay {RELAY_IP}:67 at {relay_mac}, giaddr kept",
               offer[IP].dst == RELAY_IP and offer[UDP].dport == 67 and offer[Ether].dst == relay_mac
               and offer[BOOTP].giaddr == RELAY_IP, addressing(offer))
        record(f"relayed OFFER {y} from the relayed pool 10.128.0.10-10.143.255.250",
               in_range(y, "10.128.0.10", "10.143.255.250"))
        record("relayed OFFER: mask 255.240.0.0, router 10.128.0.1, DNS 10.10.0.1, lease 3600",
               o.get("subnet_mask") == "255.240.0.0" and o.get("router") == "10.128.0.1"
               and o.get("name_server") == NF_IP and o.get("lease_time") == 3600, str(o))
        raw = bytes(offer[DHCP])
        echoed = o.get("relay_agent_information")
        last = [x for x in offer[DHCP].options if isinstance(x, tuple)][-1][0]
        record("relayed OFFER: option 82 echoed unchanged (and last)", echoed == OPT82 and last == "relay_agent_information",
               f"sent {OPT82.hex()}, got {echoed.hex() if isinstance(echoed, bytes) else echoed}; "
               f"last option {last}; {len(raw)} option bytes")
        record("relayed OFFER: IP and UDP checksums", checksums_ok(offer))
        ack = c6.send(c6.frame("request", extra=[("server_id", NF_IP), ("requested_addr", y),
                                                 ("relay_agent_information", OPT82)], **relay))
        ok = ack is not None and opts(ack).get("message-type") == 5 and ack[BOOTP].yiaddr == y
        record(f"relayed REQUEST: ACK for {y} to {RELAY_IP}:67 with option 82 echoed", ok and ack[IP].dst == RELAY_IP
               and ack[UDP].dport == 67 and opts(ack).get("relay_agent_information") == OPT82,
               addressing(ack) if ack else "no reply in 2 s")
        if ok:
            leases_to_release.add(y)
            cur = wait_state(y, "bound")
            record(f"nfctl show leases {y}: bound to {c6.mac}", cur and cur[:2] == (c6.mac, "bound"), str(cur))
            rel = c6.send(c6.frame("release", ciaddr=y, extra=[("server_id", NF_IP)], **relay), timeout=0.5)
            cur = wait_state(y, "released")
            record(f"relayed RELEASE of {y}: no reply, released", rel is None and cur and cur[1] == "released", str(cur))
    enter(None)
    return 0


def cleanup():
    try:
        enter(None)
    except OSError:
        pass
    for a in sorted(leases_to_release):
        cur = lease(a)
        if cur and cur[1] in ("bound", "declined"):
            nfctl("release", a)
    drop_namespace()


def drop_namespace():
    if not os.path.exists(f"/run/netns/{NS}"):
        return
    for pid in run("ip", "netns", "pids", NS).stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (OSError, ValueError):
            pass
    run("ip", "netns", "del", NS)


if __name__ == "__main__":
    def _on_signal(signum, _frame):
        raise SystemExit(f"test_dhcp: interrupted by signal {signum}")

    signal.signal(signal.SIGTERM, _on_signal)
    t0 = time.time()
    rc = 1
    try:
        rc = main()
    except Exception as e:  # a crash is a failure, with its reason
        record("test ran to the end", False, f"{type(e).__name__}: {e}")
    finally:
        cleanup()
    failed = [r for r in results if not r[1]]
    log(f"\ntest_dhcp.py: {len(results) - len(failed)} passed, {len(failed)} failed ({time.time() - t0:.0f} s)")
    for name, _, detail in failed:
        log(f"  FAILED: {name}: {detail}")
    sys.exit(1 if failed or rc else 0)
