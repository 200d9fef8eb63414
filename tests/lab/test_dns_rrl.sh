#!/usr/bin/env bash
# Lab test: DNS response rate limiting (config/lab.conf: 2000 responses/s per /24 and worker,
# slip 2: of the responses over the limit every 2nd goes out truncated, the others are dropped).
#
#   tests/lab/test_dns_rrl.sh        (as root, with the lab up: tests/lab/lab up)
#
#  - a Python UDP socket in nfl-client sends 20000 queries for srv1.lab.example A as fast as it
#    can (reading replies without blocking, receive buffer 16 MB): fewer replies than queries
#    come back, some of them truncated (TC=1, no answer records), some full answers;
#  - `nfctl show dns`: the rrl dropped and slipped counters grew;
#  - 2 s later normal queries (dig) are answered in full again.
# Prints a summary; exits non-zero on any failure. ~10 s.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lab/lib.sh
. "$HERE/lib.sh"

SERVER=10.10.0.1
CLIENT=(ip netns exec nfl-client)
N=20000
WORK=$(mktemp -d /tmp/nf-test-rrl.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
for _ in $(seq 40); do nfctl ping >/dev/null 2>&1 && break; sleep 0.25; done  # nf may be starting
nfctl ping >/dev/null 2>&1 || { echo "nf does not answer: is the lab up?" >&2; exit 1; }

rrl() { nfctl show dns | grep -oE "[0-9]+ $1" | head -1 | awk '{print $1}'; }
dig_() { "${CLIENT[@]}" timeout 20 dig @$SERVER +norec +time=2 +tries=3 "$@" 2>&1; }

# Rate limiting must be on with the lab's numbers (not a benchmark's configuration).
line=$(nfctl show dns | grep -E '^ *rrl:')
if [[ "$line" == *"2000/s per /24"*"slip 2"* ]]; then ok "rrl configured: ${line# *}"
else bad "rrl not configured as in config/lab.conf: '$line'"; fi

# Quiet first: the limit is per second, start with a full allowance.
sleep 1.1
drop0=$(rrl dropped); slip0=$(rrl slipped)

"${CLIENT[@]}" /usr/bin/python3 - "$SERVER" srv1.lab.example "$N" > "$WORK/burst.txt" 2>&1 <<'PY'
import socket, struct, sys, time
server, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
qname = b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE (root)
except OSError:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
s.connect((server, 53))
s.setblocking(False)
replies = answers = truncated = other = 0

def drain():
    global replies, answers, truncated, other
    while True:
        try:
            msg = s.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except ConnectionRefusedError:
            continue
        replies += 1
        _, flags, _, an, _, _ = struct.unpack("!HHHHHH", msg[:12])
        if flags & 0x0200 and an == 0:
            truncated += 1
        elif flags & 0x000F == 0 and an > 0:
            answers += 1
        else:
            other += 1

start = time.monotonic()
sent = 0
while sent < n:
    q = struct.pack("!HHHHHH", sent & 0xFFFF, 0, 1, 0, 0, 0) + qname + b"\x00\x01\x00\x01"
    try:
        s.send(q)
        sent += 1
    except (BlockingIOError, InterruptedError):
        drain()
        time.sleep(0.0005)
        continue
    if sent % 32 == 0:
        drain()
took = time.monotonic() - start
last = time.monotonic()
while time.monotonic() - last < 1.0:  # until no reply for 1 s
    before = replies
    drain()
    if replies != before:
        last = time.monotonic()
    time.sleep(0.01)
print("sent %d in %.2f s (%.0f/s) replies %d answers %d truncated %d other %d"
      % (sent, took, sent / took, replies, answers, truncated, other))
PY
sed 's/^/      /' "$WORK/burst.txt"
res=$(grep '^sent' "$WORK/burst.txt")
get() { grep -oE "$1 [0-9]+" <<<"$res" | awk '{print $2}'; }
sent=$(get sent); replies=$(get replies); answers=$(get answers); truncated=$(get truncated); other=$(get other)
if [ "${sent:-0}" = $N ]; then ok "burst: $N queries sent ($(grep -oE '\([0-9]+/s\)' <<<"$res"))"
else bad "burst: sent '$sent' of $N"; fi
if [ -n "$replies" ] && [ "$replies" -lt "$sent" ]; then ok "fewer replies than queries: $replies of $sent"
else bad "replies '$replies' not fewer than $sent queries"; fi
if [ "${truncated:-0}" -gt 0 ]; then ok "$truncated replies truncated (TC=1, no answer: RRL slip)"
else bad "no truncated replies"; fi
if [ "${answers:-0}" -gt 0 ]; then ok "$answers full answers within the limit"
else bad "no full answers at all"; fi
if [ "${other:-1}" = 0 ]; then ok "no other replies"; else bad "$other unexpected replies (error rcode or TC with answers)"; fi

drop1=$(rrl dropped); slip1=$(rrl slipped)
if [ -n "$drop0" ] && [ "${drop1:-0}" -gt "$drop0" ]; then ok "nfctl show dns: rrl dropped $drop0 -> $drop1 (+$((drop1 - drop0)))"
else bad "nfctl show dns: rrl dropped '$drop0' -> '$drop1'"; fi
if [ -n "$slip0" ] && [ "${slip1:-0}" -gt "$slip0" ]; then
  ok "nfctl show dns: rrl slipped $slip0 -> $slip1 (+$((slip1 - slip0)); client saw $truncated)"
else bad "nfctl show dns: rrl slipped '$slip0' -> '$slip1'"; fi

# ---- afterwards: normal service ---------------------------------------------------------------------
sleep 2
good=0
for _ in 1 2 3; do
  out=$(dig_ srv1.lab.example A)
  if grep -q 'status: NOERROR' <<<"$out" && ! grep -qE '^;; flags:[^;]* tc' <<<"$out" &&
     grep -qE '^srv1\.lab\.example\.[[:space:]]+300[[:space:]]+IN[[:space:]]+A[[:space:]]+10\.20\.0\.11$' <<<"$out"; then
    good=1; break
  fi
  sleep 1
done
if [ $good = 1 ]; then ok "after the burst: dig srv1.lab.example answers 10.20.0.11 in full"
else bad "after the burst: dig srv1.lab.example"; echo "$out" | sed 's/^/      /'; fi
n_ok=0
for i in $(seq 10); do
  [ "$(dig_ +short srv$((i % 3 + 1)).lab.example A)" = "10.20.0.1$((i % 3 + 1))" ] && n_ok=$((n_ok + 1))
done
if [ $n_ok = 10 ]; then ok "10 more queries answered"; else bad "only $n_ok of 10 queries answered after the burst"; fi

echo
echo "test_dns_rrl: $PASS passed, $FAIL failed"
for f in "${FAILED[@]}"; do echo "  failed: $f"; done
[ "$FAIL" = 0 ]
