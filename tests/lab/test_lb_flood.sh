#!/usr/bin/env bash
# Lab test: a spoofed SYN flood against the NAT service 10.30.0.10:80 while a long transfer
# through it goes on.
#
#   tests/lab/test_lb_flood.sh      (as root, with the lab up: tests/lab/lab up)
#
# The lab's syn_flood_rate (config/lab.conf: the default, 50,000 per worker) is more than this
# host can flood and is kept so for the other tests (test_lb.sh's wrk opens a new connection
# per request, about a thousand a second). This test reloads the running configuration with
# lb.syn_flood_rate = 1000 (nfctl check, nfctl reload) and reloads the original on exit.
#  0. nf answers; the lb stage is running; every real of service web is up; the reload with
#     syn_flood_rate = 1000 is applied (nfctl show config has it).
#  1. A 24 MiB file of random bytes, the same in the three servers' web roots, is fetched from
#     http://10.30.0.10/ by curl --limit-rate 1600k (about 16 s): the transfer is established
#     through nf's flow table before the flood starts (checked: its flow is counted in
#     new_flows, no cookie sent yet) and runs across the whole flood.
#  2. From t = 2 s, for 10 s, nfl-client sends spoofed SYNs (a raw socket, IP_HDRINCL): 10,000
#     a second from 20,000 distinct sources in 198.18.0.0/15 and random ports, to
#     10.30.0.10:80, ten times the lab's syn_flood_rate. nf answers each with a SYN-ACK
#     carrying a SYN cookie back out of port lan (the client's kernel drops those: not its
#     addresses) and keeps no state for them.
#  3. During the flood, 10 new curl requests from nfl-client to http://10.30.0.10/ all succeed
#     (HTTP 200, a server's name as body): each handshake is completed by nf on a cookie and
#     proxied to a real (SYN proxy).
#  4. The long transfer completes: curl exits 0, the size and SHA-256 match the file.
#  5. `nfctl show lb` (summed over workers, by column name): floods +1 or more; cookies_sent
#     grew by at least half of the SYNs sent (the rest may be lost on the way: nf's TAP ports
#     and the client's socket buffers are not a NIC); cookies_ok and proxied grew by at least
#     the 10 requests of 3; new_flows grew by at most syn_flood_rate per worker (+ 50):
#     only the flood's first second creates flows, the guard's window after a flooded one is a
#     flood from its start, so the other 90 % of the SYNs left no state; `nfctl show drops`
#     has no lb.lb_table_full and no lb.lb_flood.
#  6. After the flood (2.5 s: its last window and the one after it over), a new request is a
#     plain new flow again (new_flows +1, cookies_ok unchanged).
# Prints a summary; exits non-zero on any failure. ~25 s.
# shellcheck source=tests/lab/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"  # also: set -uo pipefail, HERE, T_START

VIP=10.30.0.10
TAG=flood$$x$(date +%s)
FILE=$TAG.bin
SIZE_MB=24
RATE=1600k
FLOOD_PPS=10000
FLOOD_SECS=10
WORK=$(mktemp -d /tmp/nf-lb-flood.XXXXXX)

need_lab www

cleanup() {
  [ -n "${FLOOD_PID:-}" ] && kill "$FLOOD_PID" 2>/dev/null
  [ -n "${CURL_PID:-}" ] && kill "$CURL_PID" 2>/dev/null
  if [ -n "${RELOADED:-}" ]; then
    nfctl reload "$WORK/orig.conf" >/dev/null || echo "WARNING: could not reload the original configuration" >&2
  fi
  rm -f "$RUN"/www/srv[123]/"$FILE"
  rm -rf "$WORK"
  restore_http
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# `nfctl show lb`'s per-worker counters summed, by column name: lb_col <name>...
lb_col() {
  nfctl show lb 2>/dev/null | awk -v names="$*" '
    $1 == "worker" {for (i = 1; i <= NF; i++) col[$i] = i; on = 1; next}
    on && $1 ~ /^[0-9]+$/ {n = split(names, want, " "); for (k = 1; k <= n; k++) s[k] += $col[want[k]]}
    END {n = split(names, want, " "); out = ""; for (k = 1; k <= n; k++) out = out (k > 1 ? " " : "") (s[k] + 0); print out}'
}
COLS="flows new_flows floods cookies_sent cookies_ok cookies_bad proxied"
drop_of() { nfctl show drops | awk -v r="$1" '$1 == r {print $2}' | head -1; }
web_up() {
  local t u
  t=$(nfctl show lb | awk '/^service / {on = ($2 == "web:")} on && $1 ~ /^10\.20\./' | wc -l)
  u=$(nfctl show lb | awk '/^service / {on = ($2 == "web:")} on && $1 ~ /^10\.20\./ && / up /' | wc -l)
  [ "$t" -gt 0 ] && [ "$t" = "$u" ]
}

# ---- 0. a healthy lab ---------------------------------------------------------------------------
restore_http
if nfctl show stages | awk '$2 == "lb"' | grep -q .; then ok "nfctl show stages has the lb stage"
else bad "nfctl show stages has no lb stage"; fi
if [ -n "$(lb_col cookies_sent)" ] && nfctl show lb | grep -qw cookies_sent; then
  ok "nfctl show lb has the SYN proxy's counters ($COLS)"
else bad "nfctl show lb has no cookies_sent column"; nfctl show lb | sed 's/^/      /'; fi
if poll 10 web_up; then ok "every real of service web ($VIP) is up"
else bad "not every real of service web is up"; nfctl show lb | sed 's/^/      /'; fi
# The running configuration with lb.syn_flood_rate = 1000 (the line replaced, or added at the
# top of the lb group).
nfctl show config >"$WORK/orig.conf"
awk '/^lb *= *\{/ {print; print "  syn_flood_rate = 1000;"; next}
     /^ *syn_flood_rate *=/ {next} {print}' "$WORK/orig.conf" >"$WORK/flood.conf"
if nfctl check "$WORK/flood.conf" >"$WORK/check.out" 2>&1 && nfctl reload "$WORK/flood.conf" >>"$WORK/check.out" 2>&1; then
  RELOADED=1
fi
flood_rate_shown() { nfctl show config | sed 's/#.*//' | grep -qE 'syn_flood_rate *= *1000;'; }
if [ -n "${RELOADED:-}" ] && poll 10 flood_rate_shown; then
  ok "reloaded the running configuration with lb.syn_flood_rate = 1000"
else bad "could not reload with lb.syn_flood_rate = 1000"; sed 's/^/      /' "$WORK/check.out" | head -5; fi

# ---- 1. the long transfer ---------------------------------------------------------------------------
head -c $((SIZE_MB << 20)) /dev/urandom >"$WORK/src.bin"
for i in 1 2 3; do cp "$WORK/src.bin" "$RUN/www/srv$i/$FILE"; done
SUM=$(sha256sum <"$WORK/src.bin" | awk '{print $1}')
# Start outside a flood window: a busy second before (the previous test's wrk) makes the next
# window a flood too, and the transfer's SYN would get a cookie.
floods_now() { lb_col floods; }
quiet_second() { local f; f=$(floods_now); sleep 1.1; [ "$(floods_now)" = "$f" ]; }
poll 15 quiet_second || echo "  (the flood guard kept tripping for 15 s)"
read -r FL0 NF0 FD0 CS0 CO0 CB0 PX0 <<<"$(lb_col "$COLS")"
TF0=$(drop_of lb.lb_table_full); FLD0=$(drop_of lb.lb_flood)
"${CLIENT[@]}" curl -s --limit-rate $RATE --max-time 90 -o "$WORK/got.bin" \
  -w '%{http_code} %{size_download}\n' "http://$VIP/$FILE" >"$WORK/curl.out" 2>"$WORK/curl.err" &
CURL_PID=$!
# Running, and past its handshake, before the flood: the first bytes are in (on a loaded host
# curl may take a while to start), then 2 s of transfer.
transfer_started() { [ "$(stat -c %s "$WORK/got.bin" 2>/dev/null || echo 0)" -gt 0 ]; }
poll 20 transfer_started
sleep 2
read -r _ NF1 _ CS1 _ _ _ <<<"$(lb_col "$COLS")"
got=$(stat -c %s "$WORK/got.bin" 2>/dev/null || echo 0)
if kill -0 "$CURL_PID" 2>/dev/null && [ "$got" -gt 0 ] && [ "$CS1" = "$CS0" ] && [ $((NF1 - NF0)) -ge 1 ]; then
  ok "transfer: $got bytes of $((SIZE_MB << 20)) after 2 s, a plain new flow (new_flows +$((NF1 - NF0)), no cookie)"
else bad "transfer: not running before the flood (got $got bytes, new_flows +$((NF1 - NF0)), cookies +$((CS1 - CS0)))"; fi

# ---- 2. the flood ---------------------------------------------------------------------------------
FD1=$(floods_now)
"${CLIENT[@]}" /usr/bin/python3 - "$VIP" "$FLOOD_PPS" "$FLOOD_SECS" >"$WORK/flood.out" 2>&1 <<'PY' &
import random, socket, struct, sys, time
vip, pps, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
dst = socket.inet_aton(vip)
rng = random.Random(5)
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
pkts = []
for i in range(20000):  # 198.18.0.0/15 (RFC 2544 benchmarking space), random ports and ISNs
    src = struct.pack("!I", 0xc6120000 | rng.randrange(1, 0x20000 - 1))
    tcp = struct.pack("!HHIIBBHHH", rng.randrange(1024, 65536), 80, rng.getrandbits(32), 0,
                      6 << 4, 0x02, 64240, 0, 0) + b"\x02\x04\x05\xb4"
    ck = csum(src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack("!H", ck) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, src, dst)
    pkts.append(ip + tcp)
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
sent = 0
t0 = time.monotonic()
while True:
    el = time.monotonic() - t0
    if el >= secs: break
    due = min(int(el * pps) + 100, int(secs * pps))
    while sent < due:
        try:
            s.sendto(pkts[sent % len(pkts)], (vip, 0))
            sent += 1
        except BlockingIOError:
            break
        except OSError:  # ENOBUFS: the queue is full for a moment
            break
    time.sleep(0.005)
print(sent)
PY
FLOOD_PID=$!
# The new connections of 3 must meet the flood: wait until nf has seen it (floods counted),
# not a fixed time (the sender may start late on a loaded host).
flood_seen() { [ "$(floods_now)" -gt "$FD1" ]; }
poll 8 flood_seen

# ---- 3. new connections during the flood -------------------------------------------------------
res=$("${CLIENT[@]}" bash -c '
  for i in $(seq 10); do
    out=$(curl -s --max-time 10 -w "|%{http_code}|%{time_total}" "http://$1/?$2-$i" 2>/dev/null) || out="ERR|000|0"
    printf "%s\n" "$(tr -d "\n" <<<"$out" | tr "|" " ")"
  done' _ "$VIP" "$TAG")
flood_alive=0; kill -0 "$FLOOD_PID" 2>/dev/null && flood_alive=1
good=$(awk '$2 == 200 && $1 ~ /^nfl-srv[123]$/' <<<"$res" | wc -l)
slow=$(awk '$2 == 200 {print $3}' <<<"$res" | sort -n | tail -1)
if [ "$good" = 10 ] && [ "$flood_alive" = 1 ]; then
  ok "during the flood: 10 of 10 new connections to $VIP answered 200 (slowest ${slow}s)"
else bad "during the flood: $good of 10 new connections answered 200 (flood still running: $flood_alive)"
  grep -v ' 200 ' <<<"$res" | head -3 | sed 's/^/      /'; fi

wait "$FLOOD_PID"; FLOOD_PID=
SENT=$(tail -1 "$WORK/flood.out")
[[ "$SENT" =~ ^[0-9]+$ ]] || { bad "the flood sender failed: $(tail -3 "$WORK/flood.out")"; SENT=0; }
read -r FL2 NF2 FD2 CS2 CO2 CB2 PX2 <<<"$(lb_col "$COLS")"

# ---- 4. the transfer survived --------------------------------------------------------------------
wait "$CURL_PID"; rc=$?; CURL_PID=
read -r code size <<<"$(cat "$WORK/curl.out")"
gotsum=$(sha256sum <"$WORK/got.bin" 2>/dev/null | awk '{print $1}')
if [ "$rc" = 0 ] && [ "$code" = 200 ] && [ "$size" = $((SIZE_MB << 20)) ] && [ "$gotsum" = "$SUM" ]; then
  ok "transfer: $SIZE_MB MiB across the flood, complete and intact (sha256 ${SUM:0:16}...)"
else bad "transfer: curl rc $rc, HTTP ${code:-?}, $size bytes of $((SIZE_MB << 20)), sha256 ${gotsum:0:16} want ${SUM:0:16}"
  sed 's/^/      /' "$WORK/curl.err" | head -3; fi

# ---- 5. what nf counted ------------------------------------------------------------------------------
dcs=$((CS2 - CS0)); dco=$((CO2 - CO0)); dpx=$((PX2 - PX0)); dfd=$((FD2 - FD0)); dcb=$((CB2 - CB0))
if [ "$SENT" -gt 0 ] && [ "$dcs" -ge $((SENT / 2)) ] && [ "$dfd" -ge 1 ]; then
  ok "nfctl show lb: $SENT spoofed SYNs sent, cookies_sent +$dcs, floods +$dfd"
else bad "nfctl show lb: $SENT SYNs sent, cookies_sent +$dcs (want >= $((SENT / 2))), floods +$dfd"; fi
if [ "$dco" -ge 10 ] && [ "$dpx" -ge 10 ]; then
  ok "nfctl show lb: cookies_ok +$dco, proxied +$dpx (the 10 connections of the flood), cookies_bad +$dcb"
else bad "nfctl show lb: cookies_ok +$dco, proxied +$dpx, want >= 10 each (cookies_bad +$dcb)"; fi
RATE_CONF=$(nfctl show config | sed 's/#.*//' | grep -oE 'syn_flood_rate *= *[0-9]+' | grep -oE '[0-9]+$' | head -1)
WORKERS=$(lb_workers)
LIMIT=$(( ${RATE_CONF:-50000} * WORKERS + 50 ))
if [ "$SENT" -gt 0 ] && [ $((NF2 - NF1)) -le "$LIMIT" ]; then
  ok "nfctl show lb: $SENT SYNs created $((NF2 - NF1)) flows (new_flows, with the 10 proxied; limit $LIMIT: syn_flood_rate ${RATE_CONF:-?} x $WORKERS worker(s) + 50); table $FL0 -> $FL2 flows"
else bad "nfctl show lb: $SENT SYNs created $((NF2 - NF1)) flows (new_flows), want at most $LIMIT"; fi
TF2=$(drop_of lb.lb_table_full); FLD2=$(drop_of lb.lb_flood)
if [ "${TF2:-0}" = "${TF0:-0}" ] && [ "${FLD2:-0}" = "${FLD0:-0}" ]; then
  ok "nfctl show drops: no lb_table_full or lb_flood drop (SYNs are answered, not dropped)"
else bad "nfctl show drops: lb_table_full ${TF0:-0} -> ${TF2:-0}, lb_flood ${FLD0:-0} -> ${FLD2:-0}"; fi

# ---- 6. after the flood ----------------------------------------------------------------------------
sleep 2.5
# and a second without a new flood window (a late SYN of the sender's socket buffer would
# start one).
poll 10 quiet_second
read -r _ NF3 _ _ CO3 _ _ <<<"$(lb_col "$COLS")"
out=$("${CLIENT[@]}" curl -s --max-time 5 -w "|%{http_code}" "http://$VIP/?$TAG-after" 2>/dev/null | tr -d '\n')
read -r _ NF4 _ _ CO4 _ _ <<<"$(lb_col "$COLS")"
if [[ "$out" == nfl-srv?"|200" ]] && [ $((NF4 - NF3)) -ge 1 ] && [ "$CO4" = "$CO3" ]; then
  ok "after the flood: a new connection is a plain new flow again (${out%|*})"
else bad "after the flood: '$out', new_flows +$((NF4 - NF3)), cookies_ok +$((CO4 - CO3))"; fi

summary test_lb_flood
