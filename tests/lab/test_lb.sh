#!/usr/bin/env bash
# Lab test: the L4 load balancer (config/lab.conf, group lb) with real clients in nfl-client.
#
#   tests/lab/test_lb.sh        (as root, with the lab up: tests/lab/lab up; needs wrk)
#
# Every request carries a query string unique to this run (/?<tag>-<check>-<n>), which the
# servers' access logs (/run/nf/lab/http-srvN.log) record with the client address they saw:
# that tells our requests from the health checks' (GET /) and from earlier runs', so counts are
# exact. curl requests use client ports of their own (see PORT below), never wrk's.
#  0. The lb stage is in `nfctl show stages`; every lb real is up; the health probes reach
#     the servers from 10.20.0.1, not from 10.20.0.2, which config/lab.conf keeps for full NAT.
#  1. NAT, weighted round robin (10.30.0.10): 30 curl requests all succeed; the body and the
#     access log agree on which server answered each; the servers see 10.10.0.100. With one
#     worker each server gets exactly 10 (smooth WRR with equal weights is a strict rotation);
#     with W workers each worker has its own cursor and gives each server floor or ceil of a
#     third of its flows, so a server may be off by less than 2W/3 (W = 2: 9..11).
#  2. Full NAT, Maglev (10.30.0.11): 60 requests from 60 distinct client ports all succeed and
#     reach all three servers (a fair hash misses one with p = 3 x (2/3)^60 = 8e-11); the
#     servers log 10.20.0.2 (the service's snat) as the client of every one.
#  3. Persistence (10.30.0.12, round robin + 60 s persistence): 10 requests reach one server
#     (round robin alone would rotate them over three).
#  4. wrk -t1 -c8 -d3s against 10.30.0.10: no socket errors, no non-2xx answers; the servers
#     logged at least what wrk counted (at most one in-flight request per connection more),
#     and their counts are within 10 % of each other. (wrk: installed by tests/lab/prepare-host.)
#  5. After 1-4: `nfctl show stages` has the lb stage, which saw the traffic and dropped and
#     replied to none of it; `nfctl show drops` has no lb.* reason that increased; `nfctl show
#     lb` counted the new flows and no table_full or flood.
#  6. Health drain: the HTTP server in nfl-srv2 stopped; `nfctl show health` has "lb web real
#     10.20.0.12" DOWN (and `nfctl show lb` down) within fall x interval + timeout (the
#     check's values, read from the running configuration) + 2 s. Then a new connection that
#     reuses the 4-tuple of a flow that ended on srv2 just before (nf still holds that flow in
#     TIME_WAIT) goes to another real, and 30 requests all succeed with none on srv2. The
#     server restarted: UP within rise x interval + timeout + 2 s, and 30 requests reach it
#     again. No lb.* drop reason increased over the whole run either.
#  7. ICMP: the VIP answers ping; UDP to the every-port UDP service (nothing listens) gets the
#     real's port unreachable translated back (the client's socket sees ECONNREFUSED).
# The HTTP servers are restarted on exit (trap), so later tests find them up.
# Prints a summary; exits non-zero on any failure. ~20 s.
# shellcheck source=tests/lab/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"  # also: set -uo pipefail, HERE, T_START

NAT=10.30.0.10
FULLNAT=10.30.0.11
STICKY=10.30.0.12
SNAT=10.20.0.2
TAG=lbt$$x$(date +%s)  # marks this run's requests in the access logs
MARGIN_MS=2000         # scheduling slack of the management lcore and of our 250 ms polling

need_lab www

# ---- the lab's HTTP servers: tests/lab/lib.sh ----------------------------------------------
trap restore_http EXIT
trap 'exit 130' INT TERM

# ---- what nf reports (and lb_*: tests/lab/lib.sh) ------------------------------------------
# The lb rows of `nfctl show health` ("lb <service> real <address>  <address>  <check> ...").
lb_health_row() { nfctl show health | grep -E "^lb $1 real $2 "; }
lb_state_is() { [[ "$(lb_health_row "$1" "$2")" == *" $3 "* ]]; }
# The line of real $2 under service $1 in `nfctl show lb`.
lb_real_row() {
  nfctl show lb 2>/dev/null | awk -v s="$1" -v a="$2" '/^service / {on = ($2 == s ":")} on && $1 == a'
}
# The running configuration on one line, comments removed.
conf_flat() { nfctl show config | sed 's/#.*//' | tr '\n' ' '; }

# Client ports (tests/lab/lib.sh): the block moves every 2 s and comes back after 200 s; nf
# holds a closed flow for TIME_WAIT 10 s, FIN_WAIT up to 120 s: wrk's thousands of ephemeral
# ports wrap around within seconds, and a test run right after another would reuse the
# previous run's ports. (Whether a reused 4-tuple is scheduled anew is check 6's "reuse".)
client_ports 2

WORKERS=$(lb_workers)
TOL=$(( 2 * WORKERS / 3 ))  # see 1. in the header

# ---- start from a healthy lab ----------------------------------------------------------------
restore_http
if [ "$WORKERS" -ge 1 ]; then ok "nfctl show stages has the lb stage ($WORKERS worker(s))"
else bad "nfctl show stages has no lb stage"; nfctl show stages | sed 's/^/      /'; fi
if poll 10 all_lb_up; then ok "start: every real of every lb service is up (nfctl show lb)"
else bad "start: not every lb real is UP"; nfctl show health | grep -E '^(target|lb )' | sed 's/^/      /'; fi
# config/lab.conf gives port "srv" 10.20.0.2 for full NAT alone, "so its ports never meet those
# of the health checks' kernel sockets on 10.20.0.1": the checks (GET /) must come from .1.
hc_src() {  # the sources of each server's last two health probes
  local i
  for i in 1 2 3; do grep -h '"GET / HTTP' "$RUN/http-srv$i.log" 2>/dev/null | tail -n 2; done |
    awk '{print $1}' | sort -u | tr '\n' ' ' | sed 's/ $//'
}
hc_seen() { [ -n "$(hc_src)" ]; }
poll 3 hc_seen
if [ "$(hc_src)" = 10.20.0.1 ]; then ok "health checks reach the servers from 10.20.0.1, not the full NAT address"
else bad "health checks reach the servers from '$(hc_src)', want 10.20.0.1 (10.20.0.2 is full NAT's)"; fi
DROPS0=$(lb_drops)
LBC0=$(lb_counters)
read -r P0 N0 R0 U0 D0 H0 C0 <<<"$(lb_stage)"

# ---- 1. NAT, weighted round robin --------------------------------------------------------------
answered nat $NAT 30
if near "$C1" 10 $TOL && near "$C2" 10 $TOL && near "$C3" 10 $TOL; then
  ok "nat: weighted round robin (1:1:1) gave srv1/srv2/srv3 $C1/$C2/$C3 (10 each, +-$TOL with $WORKERS worker(s))"
else bad "nat: srv1/srv2/srv3 got $C1/$C2/$C3, want 10 each +-$TOL ($WORKERS worker(s))"; fi
if agree nat "$RES"; then ok "nat: each request is in the access log of the server that answered it"
else bad "nat: bodies and access logs disagree"; fi
src=$(sources nat)
if [ "$src" = "$CLIENT_ADDR" ]; then ok "nat: the servers saw the client's own address $src"
else bad "nat: the servers saw '$src', want $CLIENT_ADDR"; fi

# ---- 2. full NAT, Maglev -------------------------------------------------------------------------
answered fullnat $FULLNAT 60
ports=$(awk '$4 == 200 {print $3}' <<<"$RES" | sort -u | wc -l)
if [ "$ports" = 60 ]; then ok "fullnat: from 60 distinct client ports"
else bad "fullnat: only $ports distinct client ports"; fi
if [ "$C1" -ge 1 ] && [ "$C2" -ge 1 ] && [ "$C3" -ge 1 ]; then ok "fullnat: Maglev reached all three servers: $C1/$C2/$C3"
else bad "fullnat: Maglev did not reach every server: $C1/$C2/$C3"; fi
if agree fullnat "$RES"; then ok "fullnat: each request is in the access log of the server that answered it"
else bad "fullnat: bodies and access logs disagree"; fi
src=$(sources fullnat)
if [ "$src" = "$SNAT" ]; then ok "fullnat: the servers saw the snat address $src as the client"
else bad "fullnat: the servers saw '$src', want $SNAT"; fi

# ---- 3. persistence ------------------------------------------------------------------------------
take 10; res=$(requests $STICKY 10 sticky)
good=$(awk '$4 == 200 && $2 ~ /^nfl-srv[123]$/' <<<"$res" | wc -l)
servers=$(awk '$4 == 200 {print $2}' <<<"$res" | sort -u | tr '\n' ' ' | sed 's/ $//')
if [ "$good" = 10 ]; then ok "persistence: 10 of 10 requests to $STICKY answered 200"
else bad "persistence: $good of 10 requests to $STICKY answered 200"; fi
if [ "$(wc -w <<<"$servers")" = 1 ]; then ok "persistence: all 10 reached $servers (round robin would rotate)"
else bad "persistence: the requests reached '$servers', want one server"; fi
if agree sticky "$res" && [ "$(sources sticky)" = "$CLIENT_ADDR" ]; then
  ok "persistence: the access log of $servers has the 10, from $CLIENT_ADDR"
else bad "persistence: access logs disagree (client addresses '$(sources sticky)')"; fi

# ---- 4. wrk --------------------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
  bad "wrk is not installed (tests/lab/prepare-host installs it)"
else
  out=$("${CLIENT[@]}" wrk -t1 -c8 -d3s "http://$NAT/?$TAG-wrk-0" 2>&1)
  total=$(grep -oE '^ *[0-9]+ requests in' <<<"$out" | grep -oE '[0-9]+' | head -1)
  sock=$(grep -E 'Socket errors:' <<<"$out" | grep -oE '[0-9]+' | awk '{s += $1} END {print s + 0}')
  non2xx=$(grep -E 'Non-2xx' <<<"$out" | grep -oE '[0-9]+$')
  read -r w1 w2 w3 <<<"$(log_lines wrk | count3)"
  logged=$((w1 + w2 + w3))
  if [ -n "$total" ] && [ "$total" -ge 100 ] && [ "${sock:-0}" = 0 ] && [ "${non2xx:-0}" = 0 ]; then
    ok "wrk: $total requests in 3 s ($(grep -oE 'Requests/sec: *[0-9.]+' <<<"$out" | grep -oE '[0-9.]+$')/s), 0 socket errors, 0 non-2xx"
  else
    bad "wrk: requests '${total:-?}', socket errors ${sock:-0}, non-2xx ${non2xx:-0}"; sed 's/^/      /' <<<"$out"
  fi
  if [ -n "$total" ] && [ "$logged" -ge "$total" ] && [ "$logged" -le $((total + 8)) ]; then
    ok "wrk: the servers logged $logged requests (wrk counted $total, 8 connections may have one more in flight)"
  else bad "wrk: the servers logged $logged requests, wrk counted '${total:-?}'"; fi
  max=$w1; min=$w1
  for w in $w2 $w3; do [ "$w" -gt "$max" ] && max=$w; [ "$w" -lt "$min" ] && min=$w; done
  if [ "$min" -gt 0 ] && [ $((10 * max)) -le $((11 * min)) ]; then
    ok "wrk: srv1/srv2/srv3 served $w1/$w2/$w3, within 10 % of each other"
  else bad "wrk: srv1/srv2/srv3 served $w1/$w2/$w3, not within 10 % of each other"; fi
fi

# ---- 5. stages and drops over the good path --------------------------------------------------------
read -r P1 N1 R1 U1 D1 H1 C1 <<<"$(lb_stage)"
DROPS1=$(lb_drops)
dp=$((P1 - P0))
reqs=$((30 + 60 + 10 + ${logged:-0}))
cyc=$(awk -v c0="$C0" -v c1="$C1" -v p="$dp" 'BEGIN {if (p > 0) printf "%.0f", (c1 - c0) / p; else print "?"}')
if [ "$dp" -ge $((6 * reqs)) ] && [ $((D1 - D0)) = 0 ] && [ $((R1 - R0)) = 0 ] && [ $((U1 - U0)) = 0 ] &&
   [ $((N1 - N0 + H1 - H0)) = "$dp" ]; then
  ok "nfctl show stages: lb passed on all $dp packets of $reqs connections (next $((N1 - N0)), handoff $((H1 - H0)); drop, reply, punt 0; ~$cyc cycles/packet)"
else
  bad "nfctl show stages: lb packets +$dp (want >= $((6 * reqs))), next +$((N1 - N0)), handoff +$((H1 - H0)), reply +$((R1 - R0)), punt +$((U1 - U0)), drop +$((D1 - D0))"
  nfctl show stages | sed 's/^/      /'
fi
if [ "$DROPS1" = "$DROPS0" ]; then ok "nfctl show drops: no lb.* reason increased over checks 1-4 (${DROPS1:-none listed})"
else bad "nfctl show drops: lb.* reasons moved: '$DROPS0' -> '$DROPS1'"; fi

LBC1=$(lb_counters)
if [ -n "$LBC0" ] && [ -n "$LBC1" ]; then
  read -r nf0 tf0 fl0 <<<"$LBC0"; read -r nf1 tf1 fl1 <<<"$LBC1"
  if [ $((nf1 - nf0)) -ge 100 ] && [ "$tf1" = "$tf0" ] && [ "$fl1" = "$fl0" ]; then
    ok "nfctl show lb: $((nf1 - nf0)) new flows, table_full and floods unchanged ($tf1, $fl1)"
  else bad "nfctl show lb: new flows +$((nf1 - nf0)) (want >= 100), table_full $tf0 -> $tf1, floods $fl0 -> $fl1"; fi
else echo "  (nfctl show lb has no worker counters: not checked)"; fi

# ---- 6. health drain -----------------------------------------------------------------------------
conf=$(conf_flat)
check=$(grep -oE "vip *= *\"$NAT\"[^}]*" <<<"$conf" | grep -oE 'check *= *"[^"]+"' | grep -oE '"[^"]+"' | tr -d '"' | head -1)
blk=$(grep -oE "\\{[^{}]*name *= *\"${check:-http80}\"[^{}]*\\}" <<<"$conf" | head -1)
cval() { grep -oE "$1 *= *[0-9]+" <<<"$blk" | grep -oE '[0-9]+$'; }
interval=$(cval interval_ms); timeout_ms=$(cval timeout_ms); rise=$(cval rise); fall=$(cval fall)
if [ -n "$interval" ] && [ -n "$timeout_ms" ] && [ -n "$rise" ] && [ -n "$fall" ]; then
  ok "service web uses check ${check:-?}: interval ${interval} ms, timeout ${timeout_ms} ms, rise $rise, fall $fall"
else
  bad "could not read check '${check:-?}' of $NAT from nfctl show config"
  interval=1000; timeout_ms=500; rise=2; fall=2
fi
down_ms=$((fall * interval + timeout_ms + MARGIN_MS))
up_ms=$((rise * interval + timeout_ms + MARGIN_MS))

# A flow to srv2 that has just ended: the client port of the last of 6 per worker that srv2
# answered (smooth WRR gives each real 2 of any 6 consecutive picks of a worker).
take $((6 * WORKERS)); res=$(requests $NAT $((6 * WORKERS)) pin)
PIN=$(awk '$2 == "nfl-srv2" && $4 == 200 {p = $3} END {print p}' <<<"$res")
stop_http 2
if [ -z "$(http_pids 2)" ]; then ok "stopped the HTTP server in nfl-srv2"; else bad "could not stop nfl-srv2's server"; fi
if poll $(( (down_ms + 999) / 1000 )) lb_state_is web 10.20.0.12 DOWN && [ "$WAITED" -le "$down_ms" ]; then
  ok "drain: lb web real 10.20.0.12 DOWN after $WAITED ms (limit $fall x $interval + $timeout_ms + $MARGIN_MS ms)"
else bad "drain: lb web real 10.20.0.12 not DOWN after $WAITED ms: $(lb_health_row web 10.20.0.12)"; fi
row=$(lb_real_row web 10.20.0.12)
if [[ "${row,,}" =~ [[:space:]]down[[:space:]] ]]; then ok "drain: nfctl show lb has 10.20.0.12 of web down"
else bad "drain: nfctl show lb: '$row'"; fi
# "A failed real gets no new flow": a new connection from the client port of the flow that
# ended on srv2 a few seconds ago meets that flow's record (TIME_WAIT, 10 s) and must be
# scheduled among the reals that are up, as IPVS does (conn_reuse_mode 1: a SYN that finds
# its connection in TIME_WAIT or CLOSE is scheduled anew).
if [ -n "$PIN" ]; then
  FIRST=$PIN; read -r _ body _ code <<<"$(requests $NAT 1 reuse)"
  if [ "$code" = 200 ] && [ "$body" != nfl-srv2 ]; then
    ok "reuse: a new connection from port $PIN (its previous flow went to srv2) answered by $body"
  else bad "reuse: a new connection from port $PIN (its previous flow, ended, went to srv2, now DOWN): $body $code"; fi
else bad "reuse: none of $((6 * WORKERS)) requests reached srv2"; fi
take 30; res=$(requests $NAT 30 drain)
good=$(awk '$4 == 200 && $2 ~ /^nfl-srv[123]$/' <<<"$res" | wc -l)
read -r c1 c2 c3 <<<"$(awk '$4 == 200 {print $2}' <<<"$res" | count3)"
if [ "$good" = 30 ] && [ "$c2" = 0 ] && [ "$c1" -gt 0 ] && [ "$c3" -gt 0 ] && agree drain "$res"; then
  ok "drain: 30 of 30 requests answered, none by srv2: srv1/srv2/srv3 $c1/$c2/$c3"
else bad "drain: $good of 30 answered, srv1/srv2/srv3 $c1/$c2/$c3 (want 30, srv2 0)"; fi

start_http 2
if [ -n "$(http_pids 2)" ]; then ok "restarted the HTTP server in nfl-srv2"; else bad "could not restart nfl-srv2's server"; fi
if poll $(( (up_ms + 999) / 1000 )) lb_state_is web 10.20.0.12 UP && [ "$WAITED" -le "$up_ms" ]; then
  ok "return: lb web real 10.20.0.12 UP after $WAITED ms (limit $rise x $interval + $timeout_ms + $MARGIN_MS ms)"
else bad "return: lb web real 10.20.0.12 not UP after $WAITED ms: $(lb_health_row web 10.20.0.12)"; fi
take 30; res=$(requests $NAT 30 back)
good=$(awk '$4 == 200 && $2 ~ /^nfl-srv[123]$/' <<<"$res" | wc -l)
read -r c1 c2 c3 <<<"$(awk '$4 == 200 {print $2}' <<<"$res" | count3)"
if [ "$good" = 30 ] && [ "$c2" -gt 0 ] && agree back "$res"; then
  ok "return: 30 of 30 requests answered, srv2 gets requests again: srv1/srv2/srv3 $c1/$c2/$c3"
else bad "return: $good of 30 answered, srv1/srv2/srv3 $c1/$c2/$c3 (want 30, srv2 > 0)"; fi

# 7. ICMP: a VIP answers ping; a UDP datagram to the every-port UDP service (nothing listens
#    on the servers) comes back as ICMP port unreachable translated to the VIP, which the
#    client's connected socket reports as ECONNREFUSED (the kernel matches the quoted packet).
if ip netns exec nfl-client ping -c 2 -i 0.2 -W 1 -q $NAT >/dev/null 2>&1; then
  ok "icmp: ping $NAT (a VIP) is answered"
else bad "icmp: ping $NAT (a VIP) got no answer"; fi
udp=$(ip netns exec nfl-client /usr/bin/python3 - <<'PY' 2>&1
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect(("10.30.0.10", 5353))
s.send(b"nf-lab")
try:
    s.recv(100)
    print("data")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("timeout")
PY
)
if [ "$udp" = refused ]; then
  ok "icmp: UDP to $NAT:5353 -> the real's port unreachable, translated: the client's socket is refused"
else bad "icmp: UDP to $NAT:5353: want ECONNREFUSED from a translated ICMP error, got '$udp'"; fi

DROPS2=$(lb_drops)
if [ "$DROPS2" = "$DROPS0" ]; then ok "nfctl show drops: no lb.* reason increased over the whole run"
else bad "nfctl show drops: lb.* reasons moved over the run: '$DROPS0' -> '$DROPS2'"; fi

summary test_lb
