#!/usr/bin/python3
"""Writes the throughput harness's input: N distinct 64-byte Ethernet/IPv4/UDP frames.

    gen_pcap.py OUT.pcap --count 4096 --dst-mac 02:70:63:61:70:00 --neighbours 64

Every frame is one nf must route on the fast path (no punt, no drop):
  * dst MAC = the MAC of nf's input port, src MAC a fixed unicast;
  * src IP varied over 10.10.0.0/20 hosts (10.10.0.2 .. 10.10.15.251: never .0/.1/.255);
  * dst IP spread over the static neighbours 10.20.0.10 .. 10.20.0.(10+neighbours-1);
  * TTL 64, no options, no fragment bits, valid IPv4 and UDP checksums;
  * UDP ports varied, so every frame is a distinct 5-tuple;
  * exactly 64 bytes as captured (IP total length 50, no Ethernet padding): the classic
    "64-byte packet" of DPDK tools (testpmd's --txpkts default), 68 B on the wire with FCS.

Run with Debian's /usr/bin/python3 (python3-scapy). Writes OUT atomically.
"""
import argparse
import os
import struct
import sys

from scapy.all import IP, UDP, Ether, Raw, wrpcap  # noqa: E402

FRAME = 64


def ip_checksum_ok(hdr: bytes) -> bool:
    s = sum(struct.unpack("!10H", hdr[:20]))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s == 0xFFFF


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--count", type=int, default=4096)
    ap.add_argument("--dst-mac", required=True)
    ap.add_argument("--src-mac", default="02:00:00:00:10:01")
    ap.add_argument("--neighbours", type=int, default=64)
    ap.add_argument("--first-neighbour", type=int, default=10, help="last octet of the first 10.20.0.x")
    a = ap.parse_args()
    if not 1 <= a.neighbours <= 200 or a.first_neighbour + a.neighbours > 255:
        ap.error("neighbours must fit in 10.20.0.2 .. 10.20.0.254")

    frames = []
    for i in range(a.count):
        src = "10.10.%d.%d" % ((i // 250) % 16, 2 + i % 250)
        dst = "10.20.0.%d" % (a.first_neighbour + i % a.neighbours)
        p = (Ether(dst=a.dst_mac, src=a.src_mac)
             / IP(src=src, dst=dst, ttl=64, id=i & 0xFFFF)
             / UDP(sport=1024 + i % 60000, dport=5000 + (i * 7) % 1000))
        p = p / Raw(bytes(range(FRAME - len(p))))
        raw = bytes(p)  # scapy fills lengths and checksums here
        if len(raw) != FRAME or not ip_checksum_ok(raw[14:34]) or raw[22] != 64:
            print("gen_pcap: internal error: bad frame %d" % i, file=sys.stderr)
            return 1
        frames.append(Ether(raw))

    tmp = "%s.tmp.%d" % (a.out, os.getpid())
    wrpcap(tmp, frames)
    os.replace(tmp, a.out)
    print("gen_pcap: wrote %d frames of %d bytes to %s" % (len(frames), FRAME, a.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
