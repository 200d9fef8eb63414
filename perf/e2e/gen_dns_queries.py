#!/usr/bin/env python3
"""Writes perf/e2e/dns-queries.txt, the query mix perf/run-dns sends (dnsperf cycles through it).

    perf/e2e/gen_dns_queries.py > perf/e2e/dns-queries.txt

4000 queries, shuffled with a fixed seed (the file is reproducible):
  60 % GSLB names (www 1000, weighted 500, backup 400, geo 400, fast 100; type A)
  25 % static records of lab.example. and its reverse zone (A, AAAA, SRV, MX, NS, SOA, PTR)
  10 % NXDOMAIN (random 10-letter names under lab.example.)
   5 % CNAME chains (chain -> alias -> srv1, alias -> srv1; type A)
"""
import random

rng = random.Random(20261121)
Z = "lab.example."
q = []
q += [("www." + Z, "A")] * 1000
q += [("weighted." + Z, "A")] * 500
q += [("backup." + Z, "A")] * 400
q += [("geo." + Z, "A")] * 400
q += [("fast." + Z, "A")] * 100
q += [("srv1." + Z, "A")] * 250
q += [("srv2." + Z, "A")] * 50
q += [("mail." + Z, "AAAA")] * 150
q += [("_http._tcp." + Z, "SRV")] * 150
q += [(Z, "MX")] * 100
q += [(Z, "NS")] * 100
q += [(Z, "SOA")] * 100
q += [("12.0.20.10.in-addr.arpa.", "PTR")] * 100
letters = "abcdefghijklmnopqrstuvwxyz0123456789"
q += [("".join(rng.choice(letters) for _ in range(10)) + "." + Z, "A") for _ in range(400)]
q += [("chain." + Z, "A")] * 150
q += [("alias." + Z, "A")] * 50
assert len(q) == 4000
rng.shuffle(q)
print("; perf/run-dns query mix, written by perf/e2e/gen_dns_queries.py (see there)")
for name, t in q:
    print(name, t)
