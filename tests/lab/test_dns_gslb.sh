#!/usr/bin/env bash
# Lab test: the GSLB names of config/lab.conf answer by their policies (all members healthy).
#
#   tests/lab/test_dns_gslb.sh        (as root, with the lab up: tests/lab/lab up)
#
#  - www (round_robin, 3 answers): every answer holds exactly 10.20.0.11-13, and over repeated
#    queries (dig and kdig) the order rotates: each server comes first at some point;
#  - weighted (1:2:3, one answer): 3000 queries from one paced Python socket loop in nfl-client
#    (below the RRL limit of 2000/s) count .11/.12/.13 within 5 sigma of 500/1000/1500 each,
#    and the chi-square statistic (2 degrees of freedom) stays below 40 (p < 2e-9 to flake
#    for a fair 1:2:3 draw);
#  - backup (failover): 10.20.0.11, the first healthy member; fast (lowest_rtt): one member.
# Needs all three lab servers healthy (waits up to 10 s for `nfctl show dns` to say so).
# Prints a summary; exits non-zero on any failure. ~15 s.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lab/lib.sh
. "$HERE/lib.sh"

SERVER=10.10.0.1
CLIENT=(ip netns exec nfl-client)
WORK=$(mktemp -d /tmp/nf-test-gslb.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
for _ in $(seq 40); do nfctl ping >/dev/null 2>&1 && break; sleep 0.25; done  # nf may be starting
nfctl ping >/dev/null 2>&1 || { echo "nf does not answer: is the lab up?" >&2; exit 1; }

dig_()  { "${CLIENT[@]}" timeout 30 dig  @$SERVER +norec +time=2 +tries=3 "$@" 2>&1; }
kdig_() { "${CLIENT[@]}" timeout 30 kdig @$SERVER +norec +time=2 +retry=2 "$@" 2>&1; }
addrs() { grep -E '^[0-9]+(\.[0-9]+){3}$' <<<"$1" | tr '\n' ' ' | sed 's/ $//'; }

# All nine gslb member lines up (the lab's servers were not stopped by an earlier test).
all_up() { [ "$(nfctl show dns | grep -cE '^ +10\.20\.0\.1[123] .* up \(check')" = 15 ]; }
for _ in $(seq 20); do all_up && break; sleep 0.5; done
if all_up; then ok "all GSLB members are up"; else bad "GSLB members not all up"; nfctl show dns; fi

# ---- www: round robin over the three servers ----------------------------------------------
firsts=""; orders=""; every=1
for i in $(seq 12); do
  if [ $((i % 2)) = 0 ]; then out=$(dig_ +short www.lab.example A); else out=$(kdig_ +short www.lab.example A); fi
  a=$(addrs "$out")
  [ "$(tr ' ' '\n' <<<"$a" | sort | tr '\n' ' ')" = "10.20.0.11 10.20.0.12 10.20.0.13 " ] || {
    every=0; echo "      query $i: '$a'"; }
  firsts+="${a%% *} "; orders+="$a|"
done
if [ $every = 1 ]; then ok "www: 12 answers (dig and kdig), each exactly 10.20.0.11, .12 and .13"
else bad "www: not every answer holds the three servers"; fi
nfirst=$(tr ' ' '\n' <<<"$firsts" | grep . | sort -u | wc -l)
norder=$(tr '|' '\n' <<<"$orders" | grep . | sort -u | wc -l)
if [ "$nfirst" = 3 ]; then ok "www rotates: each server came first ($norder distinct orders over 12 queries)"
else bad "www does not rotate: first addresses over 12 queries: $firsts"; fi

# ---- weighted: 3000 answers, 1:2:3 ---------------------------------------------------------
"${CLIENT[@]}" /usr/bin/python3 - "$SERVER" weighted.lab.example 3000 > "$WORK/weighted.txt" 2>&1 <<'PY'
import random, socket, struct, sys, time
server, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])

def query(qid):
    q = b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"
    return struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0) + q + struct.pack("!HH", 1, 1)

def skip(msg, off):
    while True:
        l = msg[off]
        if l == 0: return off + 1
        if l & 0xC0 == 0xC0: return off + 2
        off += l + 1

def answer_a(msg):
    _, flags, qd, an, _, _ = struct.unpack("!HHHHHH", msg[:12])
    off = 12
    for _ in range(qd): off = skip(msg, off) + 4
    out = []
    for _ in range(an):
        off = skip(msg, off)
        t, _, _, rdl = struct.unpack("!HHIH", msg[off:off + 10]); off += 10
        if t == 1: out.append(socket.inet_ntoa(msg[off:off + 4]))
        off += rdl
    return flags, out

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((server, 53))
s.settimeout(1.0)
counts, bad, retries = {}, 0, 0
next_send = time.monotonic()
for i in range(n):
    got = None
    for attempt in range(5):
        now = time.monotonic()
        if now < next_send: time.sleep(next_send - now)
        next_send = max(next_send, time.monotonic()) + 0.0012  # at most ~830 queries/s
        qid = random.getrandbits(16)
        s.send(query(qid))
        try:
            while True:
                msg = s.recv(4096)
                if struct.unpack("!H", msg[:2])[0] == qid: break
        except socket.timeout:
            retries += 1
            continue
        flags, a = answer_a(msg)
        if flags & 0x020F or len(a) != 1:  # TC (an RRL slip) or an error: ask again
            retries += 1
            time.sleep(0.05)
            continue
        got = a[0]
        break
    if got is None: bad += 1
    else: counts[got] = counts.get(got, 0) + 1
print("answers", " ".join("%s=%d" % kv for kv in sorted(counts.items())), "failed=%d retries=%d" % (bad, retries))
PY
cat "$WORK/weighted.txt" | sed 's/^/      /'
line=$(grep '^answers' "$WORK/weighted.txt")
c11=$(grep -oE '10\.20\.0\.11=[0-9]+' <<<"$line" | cut -d= -f2); c11=${c11:-0}
c12=$(grep -oE '10\.20\.0\.12=[0-9]+' <<<"$line" | cut -d= -f2); c12=${c12:-0}
c13=$(grep -oE '10\.20\.0\.13=[0-9]+' <<<"$line" | cut -d= -f2); c13=${c13:-0}
failed=$(grep -oE 'failed=[0-9]+' <<<"$line" | cut -d= -f2); failed=${failed:-3000}
others=$(grep -oE '[0-9.]+=[0-9]+' <<<"$line" | grep -vcE '^10\.20\.0\.1[123]=')
total=$((c11 + c12 + c13))
if [ "$failed" = 0 ] && [ "$total" = 3000 ] && [ "$others" = 0 ]; then
  ok "weighted: 3000 queries, 3000 single-address answers, all from the members"
else
  bad "weighted: $total member answers of 3000 (failed $failed, other addresses $others)"
fi
verdict=$(/usr/bin/python3 - "$c11" "$c12" "$c13" <<'PY'
import math, sys
c = [int(x) for x in sys.argv[1:]]
n = sum(c) or 1
p = [1 / 6, 2 / 6, 3 / 6]
chi = sum((ci - n * pi) ** 2 / (n * pi) for ci, pi in zip(c, p))
z = [(ci - n * pi) / math.sqrt(n * pi * (1 - pi)) for ci, pi in zip(c, p)]
good = chi < 40 and all(abs(x) < 5 for x in z)
print("%d shares %s, z %s, chi2 %.1f" % (good, " ".join("%.3f" % (ci / n) for ci in c),
      " ".join("%+.1f" % x for x in z), chi))
PY
)
if [ "${verdict%% *}" = 1 ]; then ok "weighted 1:2:3: .11=$c11 .12=$c12 .13=$c13: ${verdict#* }"
else bad "weighted not 1:2:3: .11=$c11 .12=$c12 .13=$c13: ${verdict#* }"; fi

# ---- backup: failover to the first healthy member; fast: one member ----------------------
for tool in dig kdig; do
  out=$(${tool}_ +short backup.lab.example A)
  if [ "$(addrs "$out")" = 10.20.0.11 ]; then ok "$tool backup.lab.example: 10.20.0.11 (first healthy member)"
  else bad "$tool backup.lab.example: '$(addrs "$out")', want 10.20.0.11"; echo "$out" | sed 's/^/      /'; fi
  out=$(${tool}_ +short fast.lab.example A)
  if [[ "$(addrs "$out")" =~ ^10\.20\.0\.1[123]$ ]]; then ok "$tool fast.lab.example: one member ($(addrs "$out"))"
  else bad "$tool fast.lab.example: '$(addrs "$out")', want one of 10.20.0.11-13"; fi
done
out=$(dig_ backup.lab.example A)
if grep -qE '^backup\.lab\.example\.[[:space:]]+10[[:space:]]+IN[[:space:]]+A[[:space:]]+10\.20\.0\.11$' <<<"$out" &&
   grep -qE 'flags: qr aa' <<<"$out"; then
  ok "backup.lab.example: TTL 10 from the gslb entry, aa"
else bad "backup.lab.example: TTL/aa"; echo "$out" | sed 's/^/      /'; fi

echo
echo "test_dns_gslb: $PASS passed, $FAIL failed"
for f in "${FAILED[@]}"; do echo "  failed: $f"; done
[ "$FAIL" = 0 ]
