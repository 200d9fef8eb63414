#!/usr/bin/python3
"""The lab servers' side of nf's DSR modes, one process per server namespace (tests/lab/lab).

    srv_helper.py --name nfl-srv1 --tun decap0 --udp 10.30.0.20:7

IP-in-IP decapsulation. nf's `ipip` mode sends the client's packets to the real inside an outer
IPv4 header (RFC 2003, protocol 4). The lab's kernel has no ipip module, so nothing would take
them: this helper reads them from a raw IPPROTO_IPIP socket (the kernel hands every locally
addressed protocol-4 datagram, outer header included, to such a socket, and sends no protocol
unreachable while one is open), checks the outer header and writes the inner datagram to a TUN
device in the same namespace. The kernel then receives the inner packet as if it had arrived on
that device: its destination, the VIP, is on lo, so the server's socket answers from the VIP
and the answer leaves by the DSR return path (policy routing via nfl-rtr), never through nf.
The TUN device needs rp_filter off (the client is not routed through it); the lab sets that.
Like a real tunnel endpoint (RFC 2003 section 3.1), a fragmented outer datagram is reassembled
by the kernel before the raw socket sees it, and an inner datagram that is not IPv4 is dropped.

UDP name service. A socket on the UDP DSR VIP answers every datagram with the server's name
(like the HTTP servers' index pages), from the VIP, over the same return path.

Counts (decapsulated, refused, udp) are printed on SIGUSR1 and at exit, for debugging.
"""
import argparse
import fcntl
import os
import select
import signal
import socket
import struct
import sys

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IPPROTO_IPIP = 4

counts = {"decapsulated": 0, "refused": 0, "udp": 0}


def report(*_):
    print(" ".join(f"{k} {v}" for k, v in counts.items()), file=sys.stderr, flush=True)


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def inner_of(pkt):
    """The inner IPv4 datagram of an IP-in-IP datagram (outer header included), or None."""
    if len(pkt) < 20 or pkt[0] >> 4 != 4:
        return None
    ihl = (pkt[0] & 0x0F) * 4
    total = struct.unpack_from("!H", pkt, 2)[0]
    if ihl < 20 or pkt[9] != IPPROTO_IPIP or total > len(pkt) or total < ihl + 20:
        return None
    inner = pkt[ihl:total]
    if inner[0] >> 4 != 4 or struct.unpack_from("!H", inner, 2)[0] > len(inner):
        return None
    return inner


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True, help="what the UDP service answers")
    ap.add_argument("--tun", help="TUN device to create and re-inject decapsulated packets into")
    ap.add_argument("--udp", help="VIP:port of the UDP name service")
    a = ap.parse_args()

    signal.signal(signal.SIGUSR1, report)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    readers = {}
    tun = None
    if a.tun:
        tun = open_tun(a.tun)
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_IPIP)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        readers[raw.fileno()] = ("ipip", raw)
    if a.udp:
        host, port = a.udp.rsplit(":", 1)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind((host, int(port)))
        readers[udp.fileno()] = ("udp", udp)
    print(f"srv_helper {a.name}: ready", file=sys.stderr, flush=True)
    reply = (a.name + "\n").encode()
    try:
        while True:
            try:
                ready, _, _ = select.select(list(readers), [], [])
            except InterruptedError:
                continue
            for fd in ready:
                kind, s = readers[fd]
                if kind == "ipip":
                    inner = inner_of(s.recv(65535))
                    if inner is None:
                        counts["refused"] += 1
                        continue
                    os.write(tun, inner)
                    counts["decapsulated"] += 1
                else:
                    _, peer = s.recvfrom(2048)
                    s.sendto(reply, peer)
                    counts["udp"] += 1
    finally:
        report()


if __name__ == "__main__":
    main()
