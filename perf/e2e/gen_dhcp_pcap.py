#!/usr/bin/python3
"""Writes a pcap of relayed DHCPDISCOVERs from distinct clients, for perf/run-dhcp-pipeline.

Each frame is what a relay agent at 10.10.0.100 sends to the server 10.10.0.1:67: giaddr
10.10.0.100, hops 1, chaddr 02:cc:xx:xx:xx:xx (one per client), a parameter request list and,
with --rapid, option 80 (RFC 4039) so that each DISCOVER is answered by a committed ACK.
Built byte by byte (no scapy): tens of thousands of frames in well under a second.
"""
import argparse
import struct


def csum(b: bytes) -> int:
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def frame(client: int, rapid: bool) -> bytes:
    mac = bytes([0x02, 0xCC]) + client.to_bytes(4, "big")
    giaddr = bytes([10, 10, 0, 100])
    bootp = bytearray(236)
    bootp[0:4] = bytes([1, 1, 6, 1])
    bootp[4:8] = (0x10000000 + client).to_bytes(4, "big")
    bootp[24:28] = giaddr
    bootp[28:34] = mac
    opts = bytes([53, 1, 1]) + bytes([55, 6, 1, 3, 6, 15, 51, 54])
    if rapid:
        opts += bytes([80, 0])
    dhcp = bytes(bootp) + bytes([0x63, 0x82, 0x53, 0x63]) + opts + bytes([255])
    dhcp += bytes(max(0, 300 - len(dhcp)))
    udp = struct.pack("!HHHH", 67, 67, 8 + len(dhcp), 0) + dhcp
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                               giaddr, bytes([10, 10, 0, 1])))
    ip[10:12] = struct.pack("!H", csum(bytes(ip)))
    eth = b"\xff" * 6 + bytes([0x02, 0x00, 0x00, 0x00, 0x10, 0x01]) + b"\x08\x00"
    return eth + bytes(ip) + udp


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--clients", type=int, default=65536)
    ap.add_argument("--rapid", action="store_true")
    a = ap.parse_args()
    with open(a.out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for c in range(a.clients):
            fr = frame(c, a.rapid)
            f.write(struct.pack("<IIII", 0, 0, len(fr), len(fr)))
            f.write(fr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
