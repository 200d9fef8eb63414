#!/usr/bin/python3
"""Writes the load balancer harness's input (perf/run-lb): N distinct flows to one VIP:port,
one packet each, in a random order (fixed seed: the same file every time).

    gen_lb_pcap.py OUT.pcap [--count 1048576] --dst-mac 02:70:63:61:70:00
                            [--vip 10.30.0.10] [--port 5000] [--proto udp|tcp]

  udp  64-byte frames (IP total length 50, no Ethernet padding, as perf/e2e/gen_pcap.py).
  tcp  66-byte SYNs: TCP header of 32 bytes with MSS 1460, window scale 7, SACK permitted.
Flow i comes from 172.16.0.0 + i / 16, source port 1024 + 16 * ((i / 16) mod 4000) + i mod 16
(the scheme of perf/micro/bench_lb.cc): 16 flows per client, 65536 clients per 1 M flows.
TTL 64, no options, DF clear, valid IPv4 and UDP/TCP checksums; dst MAC = nf's input port.

The pcap is written by hand (struct, classic libpcap format, microsecond timestamps): scapy
would take minutes for a million frames; this takes seconds. Writes OUT atomically.
"""
import argparse
import ipaddress
import os
import random
import struct
import sys

PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # LINKTYPE_ETHERNET


def fold(s: int) -> int:
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def words(b: bytes) -> int:
    if len(b) % 2:
        b += b"\0"
    return sum(struct.unpack("!%dH" % (len(b) // 2), b))


def mac(s: str) -> bytes:
    b = bytes(int(x, 16) for x in s.split(":"))
    if len(b) != 6:
        raise argparse.ArgumentTypeError("not a MAC address: " + s)
    return b


def flow_src(i: int) -> int:
    return 0xAC100000 + (i >> 4)


def flow_sport(i: int) -> int:
    return 1024 + 16 * ((i >> 4) % 4000) + (i & 15)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--count", type=int, default=1 << 20)
    ap.add_argument("--dst-mac", type=mac, required=True)
    ap.add_argument("--src-mac", type=mac, default=mac("02:00:00:00:10:01"))
    ap.add_argument("--vip", default="10.30.0.10")
    ap.add_argument("--port", type=int, default=5000)
    ap.add_argument("--proto", choices=("udp", "tcp"), default="udp")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if not 1 <= a.count <= (1 << 24):
        ap.error("--count wants 1 .. 16777216 (the source scheme stays out of martian space)")
    vip = int(ipaddress.IPv4Address(a.vip))
    tcp = a.proto == "tcp"
    proto = 6 if tcp else 17
    l4len = 32 if tcp else 30
    iplen = 20 + l4len
    flen = 14 + iplen

    # The frame with its per-flow fields (source address, source port, both checksums) zero;
    # the checksums are the template's constant sum plus the flow's words.
    eth = a.dst_mac + a.src_mac + b"\x08\x00"
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, iplen, 1, 0, 64, proto, 0, b"\0" * 4,
                     vip.to_bytes(4, "big"))
    if tcp:
        opts = bytes([2, 4, 0x05, 0xB4, 1, 3, 3, 7, 1, 1, 4, 2])
        l4 = struct.pack("!HHIIBBHHH", 0, a.port, 0x12345678, 0, (32 // 4) << 4, 0x02, 64240, 0,
                         0) + opts
        ck_off = 14 + 20 + 16
    else:
        payload = bytes(range(8, l4len))
        l4 = struct.pack("!HHHH", 0, a.port, l4len, 0) + payload
        ck_off = 14 + 20 + 6
    tmpl = eth + ip + l4
    assert len(tmpl) == flen
    ip_base = words(ip)
    # L4 checksum: pseudo header (source added per flow) + the segment (source port per flow).
    l4_base = words(vip.to_bytes(4, "big")) + proto + l4len + words(l4)

    order = list(range(a.count))
    random.Random(a.seed).shuffle(order)
    rec = 16 + flen
    buf = bytearray(len(PCAP_HEADER) + rec * a.count)
    buf[: len(PCAP_HEADER)] = PCAP_HEADER
    rechdr = struct.Struct("<IIII")
    o = len(PCAP_HEADER)
    for n, i in enumerate(order):
        src = flow_src(i)
        sport = flow_sport(i)
        sw = (src >> 16) + (src & 0xFFFF)
        rechdr.pack_into(buf, o, n // 1000000, n % 1000000, flen, flen)
        f = o + 16
        buf[f: f + flen] = tmpl
        struct.pack_into("!H", buf, f + 24, 0xFFFF - fold(ip_base + sw))
        struct.pack_into("!I", buf, f + 26, src)
        struct.pack_into("!H", buf, f + 34, sport)
        ck = 0xFFFF - fold(l4_base + sw + sport)
        struct.pack_into("!H", buf, f + ck_off, ck if (ck or tcp) else 0xFFFF)
        o += rec

    # Spot checks: a frame's checksums verify from scratch.
    for n in (0, a.count // 2, a.count - 1):
        f = len(PCAP_HEADER) + n * rec + 16
        fr = bytes(buf[f: f + flen])
        seg = fr[34:]
        pseudo = fr[26:34] + struct.pack("!HH", proto, l4len)
        if fold(words(fr[14:34])) != 0xFFFF or fold(words(pseudo + seg)) != 0xFFFF:
            print("gen_lb_pcap: internal error: bad checksum in frame %d" % n, file=sys.stderr)
            return 1

    tmp = "%s.tmp.%d" % (a.out, os.getpid())
    with open(tmp, "wb") as fh:
        fh.write(buf)
    os.replace(tmp, a.out)
    print("gen_lb_pcap: wrote %d %s frames of %d bytes (%d distinct flows to %s:%d) to %s"
          % (a.count, "TCP SYN" if tcp else "UDP", flen, a.count, a.vip, a.port, a.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
