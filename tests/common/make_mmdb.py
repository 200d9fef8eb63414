#!/usr/bin/python3
"""A small MaxMind DB writer (format spec v2.0), for test data only.

Writes a binary search tree with 24-bit records (IPv6 tree with IPv4 at ::/96, or an IPv4
tree), the 16-byte data section separator, a deduplicated data section (maps, UTF-8 strings,
uint16/uint32/uint64, arrays) and the metadata after b"\\xab\\xcd\\xefMaxMind.com".
Networks must not overlap. Pure Python 3, no packages.

  make_mmdb.py [--ipv4] [OUT]     writes the nf test database (default tests/data/geo-test.mmdb)

Regenerate the committed file with:  /usr/bin/python3 tests/common/make_mmdb.py
"""

import ipaddress
import os
import struct
import sys
import time

RECORD_SIZE = 24
METADATA_MARKER = b"\xab\xcd\xefMaxMind.com"

# (CIDR, data) for the nf test database. 10.10.0.0/24 and the TEST-NETs are the nf lab's
# client and GSLB networks (config/lab.conf).
def _country(cc, continent, **extra):
    d = {"continent": {"code": continent}, "country": {"iso_code": cc}}
    d.update(extra)
    return d


TEST_NETWORKS = [
    ("10.10.0.0/25", _country("DE", "EU")),
    ("10.10.0.128/25", _country("US", "NA")),
    ("192.0.2.0/24", _country("BR", "SA")),
    ("198.51.100.0/24", _country("JP", "AS")),  # JP unmapped in the tests: continent AS
    # Two adjacent /25s, same country but different records: merge into 203.0.113.0/24.
    ("203.0.113.0/25", _country("DE", "EU")),
    ("203.0.113.128/25", _country("DE", "EU", city={"names": {"en": "Berlin"}})),
    # Only registered_country (like GeoLite2's satellite/anycast entries).
    ("100.64.0.0/16", {"registered_country": {"iso_code": "US"}}),
    # Neither the country nor the continent mapped in the tests: no region.
    ("172.16.0.0/12", _country("FR", "EU")),
    # Four /26s, two regions: 10.20.0.0/25 (west) and 10.20.0.128/25 (east) after merging.
    ("10.20.0.0/26", _country("DE", "EU")),
    ("10.20.0.64/26", _country("DE", "EU")),
    ("10.20.0.128/26", _country("US", "NA")),
    ("10.20.0.192/26", _country("US", "NA")),
    # IPv6 only; invisible to an IPv4 walk.
    ("2001:db8::/32", _country("DE", "EU")),
]


# ---- data section encoding (spec: "Data Section Format") ----

T_POINTER, T_UTF8, T_DOUBLE, T_BYTES, T_UINT16, T_UINT32, T_MAP = 1, 2, 3, 4, 5, 6, 7
T_INT32, T_UINT64, T_UINT128, T_ARRAY = 8, 9, 10, 11


class Uint16(int):
    pass


class Uint32(int):
    pass


class Uint64(int):
    pass


def _control(typ, size):
    if size < 29:
        first, tail = size, b""
    elif size < 29 + 256:
        first, tail = 29, bytes([size - 29])
    elif size < 285 + 65536:
        first, tail = 30, struct.pack(">H", size - 285)
    else:
        first, tail = 31, struct.pack(">I", size - 65821)[1:]
    if typ <= 7:
        return bytes([(typ << 5) | first]) + tail
    return bytes([first, typ - 7]) + tail  # extended type


def _uint(typ, value, width):
    raw = value.to_bytes(width, "big").lstrip(b"\0")
    return _control(typ, len(raw)) + raw


def encode(value):
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return _control(T_UTF8, len(raw)) + raw
    if isinstance(value, Uint16):
        return _uint(T_UINT16, value, 2)
    if isinstance(value, Uint64):
        return _uint(T_UINT64, value, 8)
    if isinstance(value, (Uint32, int)) and not isinstance(value, bool):
        return _uint(T_UINT32, value, 4)
    if isinstance(value, dict):
        out = _control(T_MAP, len(value))
        for k in sorted(value):
            out += encode(str(k)) + encode(value[k])
        return out
    if isinstance(value, list):
        return _control(T_ARRAY, len(value)) + b"".join(encode(v) for v in value)
    raise TypeError("cannot encode %r" % (value,))


# ---- search tree ----

class _Node:
    __slots__ = ("kids", "number")

    def __init__(self):
        self.kids = [None, None]  # None (empty), _Node, or ("data", offset)
        self.number = 0


def _bits(net, ip_version):
    if net.version == 4 and ip_version == 6:
        # IPv4 networks live at ::/96 (::a.b.c.d), where libmaxminddb looks them up.
        addr, plen, width = int(net.network_address), net.prefixlen + 96, 128
    else:
        addr, plen, width = int(net.network_address), net.prefixlen, net.max_prefixlen
    return [(addr >> (width - 1 - i)) & 1 for i in range(plen)]


def build(networks, ip_version=6, database_type="nf-test-Country", build_epoch=None):
    """networks: [(cidr, data)]. Returns the database bytes."""
    data = b""
    offsets = {}  # encoded record -> offset in the data section (deduplicated)
    root = _Node()
    for cidr, record in networks:
        net = ipaddress.ip_network(cidr)
        if net.version == 6 and ip_version == 4:
            raise ValueError("%s: IPv6 network in an IPv4 database" % cidr)
        enc = encode(record)
        if enc not in offsets:
            offsets[enc] = len(data)
            data += enc
        bits = _bits(net, ip_version)
        if not bits:
            raise ValueError("%s: a zero-length network is not supported" % cidr)
        node = root
        for b in bits[:-1]:
            kid = node.kids[b]
            if kid is None:
                kid = node.kids[b] = _Node()
            elif not isinstance(kid, _Node):
                raise ValueError("%s overlaps another network" % cidr)
            node = kid
        if node.kids[bits[-1]] is not None:
            raise ValueError("%s overlaps another network" % cidr)
        node.kids[bits[-1]] = ("data", offsets[enc])

    # Number the nodes breadth first; the root is node 0.
    order, queue = [], [root]
    while queue:
        n = queue.pop(0)
        n.number = len(order)
        order.append(n)
        queue.extend(k for k in n.kids if isinstance(k, _Node))
    node_count = len(order)

    def record(kid):
        if kid is None:
            return node_count  # empty
        if isinstance(kid, _Node):
            return kid.number
        return node_count + 16 + kid[1]  # data: past the 16-byte separator

    tree = bytearray()
    for n in order:
        for kid in n.kids:
            v = record(kid)
            if v >= 1 << RECORD_SIZE:
                raise ValueError("database too large for 24-bit records")
            tree += v.to_bytes(3, "big")

    metadata = {
        "binary_format_major_version": Uint16(2),
        "binary_format_minor_version": Uint16(0),
        "build_epoch": Uint64(int(time.time()) if build_epoch is None else build_epoch),
        "database_type": database_type,
        "description": {"en": "nf unit test database (tests/common/make_mmdb.py)"},
        "ip_version": Uint16(ip_version),
        "languages": ["en"],
        "node_count": Uint32(node_count),
        "record_size": Uint16(RECORD_SIZE),
    }
    return bytes(tree) + b"\0" * 16 + data + METADATA_MARKER + encode(metadata)


def main(argv):
    ip_version = 6
    args = [a for a in argv[1:]]
    if "--ipv4" in args:
        args.remove("--ipv4")
        ip_version = 4
    here = os.path.dirname(os.path.abspath(__file__))
    out = args[0] if args else os.path.normpath(os.path.join(here, "..", "data", "geo-test.mmdb"))
    nets = [(c, d) for c, d in TEST_NETWORKS if ip_version == 6 or ":" not in c]
    # A fixed build_epoch keeps the committed file reproducible.
    db = build(nets, ip_version=ip_version, build_epoch=1700000000)
    with open(out, "wb") as f:
        f.write(db)
    print("%s: %d bytes, ip_version %d" % (out, len(db), ip_version))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
