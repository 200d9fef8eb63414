#!/usr/bin/env bash
# Lab test: the L4 load balancer's direct-server-return modes (config/lab.conf, services
# web-dsr/udp-dsr 10.30.0.20, web-ipip 10.30.0.21, web-dscp 10.30.0.22) with real clients in
# nfl-client and the return path through nfl-rtr that tests/lab/lab builds.
#
#   tests/lab/test_lb_dsr.sh     (as root, with the lab up: tests/lab/lab up; needs wrk, tshark)
#
# Requests carry a query string unique to this run (/?<tag>-<mode>-<n>), which the servers'
# access logs (/run/nf/lab/http-srvN.log) record with the client address they saw, so counts
# are exact; curl uses client ports of its own (see PORT), never wrk's.
#  0. Every real of every lb service is up.
#  1. L2 DSR (10.30.0.20, round robin): 30 curl requests all answered 200 by the server the
#     access log names, which saw the client's own address 10.10.0.100; each server got 10
#     (a strict rotation with one worker; with W workers each has its own cursor: +-2W/3).
#     On nfl-br1 every frame nf sent to the VIP went to a real's MAC, addressed to the VIP.
#  2. IP-in-IP (10.30.0.21, weighted round robin 1:2:3): 60 requests all answered, 10/20/30
#     (smooth WRR repeats with period 6, so any 60 consecutive picks of one worker are exact;
#     +-W with W workers). On nfl-br1 (tshark): every packet to the VIP is protocol 4 with outer
#     source 10.20.0.1 (nf's address on "srv"), outer destination a real, inner source the
#     client and inner destination the VIP, and every SYN's MSS is clamped to 1440 (1500 - 60).
#     The servers decapsulate with tests/lab/srv_helper.py (the kernel here cannot).
#  3. DSCP (10.30.0.22, Maglev): 60 requests from 60 client ports all answered, by all three
#     servers (a fair hash misses one with p = 3 x (2/3)^60 = 8e-11). On nfl-br1 every packet
#     to port 80 with DSCP 22 is addressed to a real (not the VIP); the servers' nftables turns
#     it back into the VIP (a wrong TCP checksum after that rewrite would fail every request).
#  4. UDP over L2 DSR (10.30.0.20:7, round robin): 30 datagrams from 30 sockets all answered
#     with a server's name from the VIP; 10 each (+-2W/3).
#  5. The return path (tshark in nfl-rtr on both legs, during 1-4): every answer (source a
#     DSR VIP, to the client) entered nfl-rtr on eth1 from a server's MAC and left on eth0 to
#     the client's MAC, as many on each leg, at least one SYN-ACK per TCP request and one
#     datagram per UDP request; and nf did not carry them: its port "lan" sent fewer packets
#     over 1-4 than 1/20 of the answers (the client's ARP for its gateway is all it may send).
#  6. wrk -t1 -c8 -d3s against each of the three VIPs: no socket errors, no non-2xx, at least
#     100 requests, and the servers logged at least what wrk counted.
#  7. `nfctl show stages`: the lb stage dropped, replied to and punted none of it; no lb.*
#     drop reason increased; 1-4 made exactly 180 new flows (one per request: no 4-tuple met
#     an old flow) and no table_full or flood (wrk may trip the lab's low lb.syn_flood_rate:
#     DSR services then place new flows statelessly, which 6 shows still works).
# Prints a summary; exits non-zero on any failure. ~20 s.
# shellcheck source=tests/lab/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"  # also: set -uo pipefail, HERE, T_START

DSR=10.30.0.20
IPIP=10.30.0.21
DSCP=10.30.0.22
DSCP_VALUE=22
IPIP_MSS=1440          # config/lab.conf sets no mss_clamp: the smallest port MTU (1500) - 60
SRV_ADDR=10.20.0.1     # nf's first address on port "srv": the outer source of IP-in-IP
TAG=dsr$$x$(date +%s)  # marks this run's requests in the access logs
WORK=$(mktemp -d /tmp/nf-test-lb-dsr.XXXXXX)
CAP_PIDS=()

need_lab www
ip netns list | grep -qw nfl-rtr || { echo "namespace nfl-rtr missing: is the lab up (tests/lab/lab up)?" >&2; exit 1; }
command -v tshark >/dev/null || { echo "tshark is not installed (tests/lab/prepare-host installs it)" >&2; exit 1; }

cleanup() {
  local p
  for p in "${CAP_PIDS[@]}"; do kill -INT "$p" 2>/dev/null; done
  restore_http
  if [ -n "${NF_TEST_KEEP:-}" ]; then echo "captures kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- what nf reports (lb_*: tests/lab/lib.sh) ------------------------------------------------
# Packets nf sent on port "lan" (`nfctl show ports`: "  rx N  tx N ...").
lan_tx() { nfctl show ports | awk '/^port [0-9]+ "lan"/ {p = 1; next} p && $1 == "rx" {print $4; exit}'; }
mac_of() { ip netns exec "$1" cat "/sys/class/net/$2/address"; }

# ---- requests and the access logs: tests/lab/lib.sh ----------------------------------------------
# Client ports: a block that moves every 4 s and comes back after 400 s, longer than nf keeps a
# closed TCP flow or a UDP flow (300 s), so every request of a run is a new flow for the
# scheduler. test_lb.sh uses the same range for other VIPs: no 4-tuple is shared.
client_ports 4

# ---- captures ------------------------------------------------------------------------------------
# capture <name> <netns or -> <tshark args...>: tshark in the background, text fields to
# $WORK/<name>.txt; returns once tshark says it is capturing.
capture() {
  local name=$1 ns=$2; shift 2
  local ex=(); [ "$ns" = - ] || ex=(ip netns exec "$ns")
  "${ex[@]}" tshark -l -n "$@" >"$WORK/$name.txt" 2>"$WORK/$name.err" &
  CAP_PIDS+=($!)
  # tshark loads every dissector first: seconds on a loaded 2-CPU host, so wait for it.
  cap_started() { grep -q 'Capturing on' "$WORK/$name.err" 2>/dev/null; }
  poll 60 cap_started || echo "  (tshark $name did not start: $(tr '\n' ' ' <"$WORK/$name.err"))"
}
stop_captures() {
  local p
  sleep 1  # the last answers' frames
  for p in "${CAP_PIDS[@]}"; do kill -INT "$p" 2>/dev/null; done
  for p in "${CAP_PIDS[@]}"; do wait "$p" 2>/dev/null; done
  CAP_PIDS=()
}

WORKERS=$(lb_workers)
TOL=$(( 2 * WORKERS / 3 ))  # round robin over 3 with W per-worker cursors
TOLW=$WORKERS               # smooth WRR 1:2:3, W cursors

restore_http
if poll 10 all_lb_up; then ok "start: every real of every lb service is up (nfctl show lb)"
else bad "start: not every lb real is UP"; nfctl show lb | sed 's/^/      /'; fi
for s in web-dsr udp-dsr web-ipip web-dscp; do
  nfctl show lb | grep -q "^service $s:" || bad "nfctl show lb has no service $s (config/lab.conf)"
done

CLIENT_MAC=$(mac_of nfl-client eth0)
RTR0_MAC=$(mac_of nfl-rtr eth0)
RTR1_MAC=$(mac_of nfl-rtr eth1)
declare -A SRV_OF_MAC
for i in 1 2 3; do SRV_OF_MAC[$(mac_of "nfl-srv$i" eth0)]=nfl-srv$i; done

# Start outside a flood window (lb.syn_flood_rate: a busy second before, e.g. another test's
# wrk, would place our first flows statelessly by Maglev instead of by the scheduler).
floods() { lb_counters | awk '{print $3}'; }
quiet_second() { local f; f=$(floods); sleep 1.1; [ "$(floods)" = "$f" ]; }
poll 10 quiet_second || echo "  (the flood guard kept tripping for 10 s)"
DROPS0=$(lb_drops)
LBC0=$(lb_counters)
read -r P0 N0 R0 U0 D0 H0 _ <<<"$(lb_stage)"

# What reaches the servers from nf (nfl-br1, promiscuous: every frame the bridge forwards) and
# what nfl-rtr forwards (both legs): outer and inner IP fields come comma-separated.
capture br1 - -i nfl-br1 -f "ip and (ip proto 4 or dst net 10.30.0.0/24 or (tcp dst port 80 and ip[1] & 0xfc == $((DSCP_VALUE << 2))))" \
  -T fields -E separator=' ' -e eth.dst -e ip.src -e ip.dst -e ip.proto -e ip.dsfield.dscp \
  -e tcp.flags.syn -e tcp.flags.ack -e tcp.options.mss_val
capture rtr nfl-rtr -i eth0 -i eth1 -f "ip and src net 10.30.0.0/24" \
  -T fields -E separator=' ' -e frame.interface_name -e eth.src -e eth.dst -e ip.src -e ip.dst \
  -e ip.proto -e tcp.flags.syn -e tcp.flags.ack
TX0=$(lan_tx)

# ---- 1. L2 DSR, round robin ------------------------------------------------------------------------
answered dsr $DSR 30
if near "$C1" 10 $TOL && near "$C2" 10 $TOL && near "$C3" 10 $TOL; then
  ok "dsr: round robin gave srv1/srv2/srv3 $C1/$C2/$C3 (10 each, +-$TOL with $WORKERS worker(s))"
else bad "dsr: srv1/srv2/srv3 got $C1/$C2/$C3, want 10 each +-$TOL"; fi
logged_from dsr $CLIENT_ADDR

# ---- 2. IP-in-IP, weighted round robin 1:2:3 ---------------------------------------------------------
answered ipip $IPIP 60 "decapsulated in the servers"
if near "$C1" 10 $TOLW && near "$C2" 20 $TOLW && near "$C3" 30 $TOLW; then
  ok "ipip: weighted round robin 1:2:3 gave srv1/srv2/srv3 $C1/$C2/$C3 (10/20/30, +-$TOLW)"
else bad "ipip: srv1/srv2/srv3 got $C1/$C2/$C3, want 10/20/30 +-$TOLW"; fi
logged_from ipip $CLIENT_ADDR

# ---- 3. DSCP, Maglev ---------------------------------------------------------------------------------
answered dscp $DSCP 60 "DSCP $DSCP_VALUE mapped back by nftables"
if [ "$C1" -ge 1 ] && [ "$C2" -ge 1 ] && [ "$C3" -ge 1 ]; then ok "dscp: Maglev reached all three servers: $C1/$C2/$C3"
else bad "dscp: Maglev did not reach every server: $C1/$C2/$C3"; fi
logged_from dscp $CLIENT_ADDR

# ---- 4. UDP over L2 DSR ------------------------------------------------------------------------------
take 30
udp=$("${CLIENT[@]}" /usr/bin/python3 - "$DSR" "$FIRST" <<'PY' 2>&1
import socket, sys
vip, first = sys.argv[1], int(sys.argv[2])
for i in range(30):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", first + i))
    s.settimeout(2)
    s.sendto(b"who", (vip, 7))
    try:
        data, peer = s.recvfrom(100)
        print(data.decode().strip(), peer[0], peer[1])
    except OSError:
        print("ERR - -")
    s.close()
PY
)
good=$(awk -v v=$DSR '$1 ~ /^nfl-srv[123]$/ && $2 == v && $3 == 7' <<<"$udp" | wc -l)
read -r c1 c2 c3 <<<"$(awk '{print $1}' <<<"$udp" | count3)"
if [ "$good" = 30 ]; then ok "udp: 30 of 30 datagrams to $DSR:7 answered from $DSR:7 with a server's name"
else bad "udp: $good of 30 datagrams to $DSR:7 answered from the VIP"; grep -v "^nfl-srv" <<<"$udp" | head -3 | sed 's/^/      /'; fi
if near "$c1" 10 $TOL && near "$c2" 10 $TOL && near "$c3" 10 $TOL; then
  ok "udp: round robin gave srv1/srv2/srv3 $c1/$c2/$c3 (10 each, +-$TOL)"
else bad "udp: srv1/srv2/srv3 got $c1/$c2/$c3, want 10 each +-$TOL"; fi

TX1=$(lan_tx)
LBC1=$(lb_counters)
stop_captures

# ---- what nf put on the wire (nfl-br1) ----------------------------------------------------------------
# Fields: eth.dst ip.src ip.dst ip.proto dscp syn ack mss (outer,inner where there are two).
br1=$WORK/br1.txt
is_real_mac() { [ -n "${SRV_OF_MAC[$1]:-}" ]; }
n=0; wrong=0
while read -r mac src dst proto _; do
  [ "$dst" = $DSR ] || continue
  n=$((n + 1))
  { is_real_mac "$mac" && [ "$src" = $CLIENT_ADDR ] && [ "$proto" != 4 ]; } || wrong=$((wrong + 1))
done <"$br1"
if [ "$n" -ge $((30 * 3 + 30)) ] && [ "$wrong" = 0 ]; then
  ok "dsr on the wire: $n frames from nf to $DSR on nfl-br1, every one to a real's MAC, from the client, not encapsulated"
else bad "dsr on the wire: $n frames to $DSR on nfl-br1 (want >= 120), $wrong not to a real's MAC from $CLIENT_ADDR"; head -3 "$br1" | sed 's/^/      /'; fi

read -r n bad_outer syns bad_mss <<<"$(awk -v srv=$SRV_ADDR -v vip=$IPIP -v cl=$CLIENT_ADDR -v mss=$IPIP_MSS '
  $4 ~ /^4,/ {
    n++
    split($2, s, ","); split($3, d, ",")
    if (s[1] != srv || d[1] !~ /^10\.20\.0\.1[123]$/ || s[2] != cl || d[2] != vip) bad++
    if ($6 == "1" && $7 == "0") { syns++; if ($8 != mss) badmss++ }
  }
  END {printf "%d %d %d %d\n", n, bad, syns, badmss}' "$br1")"
if [ "$n" -ge $((60 * 3)) ] && [ "$bad_outer" = 0 ]; then
  ok "ipip on the wire: $n packets of protocol 4 on nfl-br1, each outer $SRV_ADDR -> a real, inner $CLIENT_ADDR -> $IPIP"
else bad "ipip on the wire: $n protocol-4 packets (want >= 180), $bad_outer with other outer/inner addresses"
  awk '$4 ~ /^4,/' "$br1" | head -3 | sed 's/^/      /'; fi
if [ "$syns" = 60 ] && [ "$bad_mss" = 0 ]; then
  ok "ipip on the wire: all 60 SYNs carry MSS $IPIP_MSS (clamped from the client's 1460 for the 20-byte outer header)"
else bad "ipip on the wire: $syns SYNs (want 60), $bad_mss with an MSS other than $IPIP_MSS"
  awk '$4 ~ /^4,/ && $6 == "1" && $7 == "0"' "$br1" | head -3 | sed 's/^/      /'; fi

read -r n bad_dscp <<<"$(awk -v vip=$DSCP -v cl=$CLIENT_ADDR -v v=$DSCP_VALUE '
  $4 == "6" && $5 == v { n++; if ($2 != cl || $3 !~ /^10\.20\.0\.1[123]$/) bad++ }
  END {printf "%d %d\n", n, bad}' "$br1")"
to_vip=$(awk -v vip=$DSCP '$3 == vip' "$br1" | wc -l)
if [ "$n" -ge $((60 * 3)) ] && [ "$bad_dscp" = 0 ] && [ "$to_vip" = 0 ]; then
  ok "dscp on the wire: $n packets with DSCP $DSCP_VALUE on nfl-br1, each $CLIENT_ADDR -> a real's address (none to $DSCP)"
else bad "dscp on the wire: $n packets with DSCP $DSCP_VALUE (want >= 180), $bad_dscp not client -> real, $to_vip to the VIP itself"; fi

# ---- 5. the return path --------------------------------------------------------------------------------
# Fields: interface eth.src eth.dst ip.src ip.dst proto syn ack.
rtr=$WORK/rtr.txt
read -r in_n in_bad out_n out_bad synacks udp_n <<<"$(awk -v cl=$CLIENT_ADDR -v cmac="$CLIENT_MAC" \
    -v r0="$RTR0_MAC" -v r1="$RTR1_MAC" -v macs="${!SRV_OF_MAC[*]}" '
  BEGIN { split(macs, m, " "); for (k in m) srv[m[k]] = 1 }
  $5 != cl { next }
  $1 == "eth1" { i++; if (!($2 in srv) || $3 != r1) ib++ }
  $1 == "eth0" { o++; if ($2 != r0 || $3 != cmac) ob++
                 if ($6 == "6" && $7 == "1" && $8 == "1") sa++
                 if ($6 == "17") u++ }
  END { printf "%d %d %d %d %d %d\n", i, ib, o, ob, sa, u }' "$rtr")"
answers=$out_n
if [ "$in_n" -ge $((150 * 3)) ] && [ "$in_bad" = 0 ]; then
  ok "return path: $in_n answers from the VIPs entered nfl-rtr on eth1, each from a server's MAC"
else bad "return path: $in_n answers entered nfl-rtr eth1 (want >= 450), $in_bad not from a server's MAC"; head -3 "$rtr" | sed 's/^/      /'; fi
if [ "$out_n" = "$in_n" ] && [ "$out_bad" = 0 ] && [ "$synacks" -ge 150 ] && [ "$udp_n" -ge 30 ]; then
  ok "return path: all $out_n left nfl-rtr on eth0 to the client's MAC ($synacks SYN-ACKs for 150 connections, $udp_n UDP answers for 30)"
else bad "return path: $out_n left on eth0 (entered: $in_n), $out_bad not rtr -> client MAC, SYN-ACKs $synacks (want >= 150), UDP $udp_n (want >= 30)"; fi
dtx=$((TX1 - TX0))
if [ -n "$TX0" ] && [ "$answers" -gt 0 ] && [ $((dtx * 20)) -lt "$answers" ]; then
  ok "nf did not carry the answers: port lan sent $dtx packets while nfl-rtr forwarded $answers answers to the client"
else bad "port lan sent ${dtx} packets while nfl-rtr forwarded $answers answers (want < 1/20 of them)"; fi

# ---- 6. wrk --------------------------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
  bad "wrk is not installed (tests/lab/prepare-host installs it)"
else
  for m in dsr:$DSR ipip:$IPIP dscp:$DSCP; do
    mode=${m%%:*} vip=${m#*:}
    out=$("${CLIENT[@]}" wrk -t1 -c8 -d3s "http://$vip/?$TAG-wrk$mode-0" 2>&1)
    total=$(grep -oE '^ *[0-9]+ requests in' <<<"$out" | grep -oE '[0-9]+' | head -1)
    sock=$(grep -E 'Socket errors:' <<<"$out" | grep -oE '[0-9]+' | awk '{s += $1} END {print s + 0}')
    non2xx=$(grep -E 'Non-2xx' <<<"$out" | grep -oE '[0-9]+$')
    read -r w1 w2 w3 <<<"$(log_lines "wrk$mode" | count3)"
    logged=$((w1 + w2 + w3))
    if [ -n "$total" ] && [ "$total" -ge 100 ] && [ "${sock:-0}" = 0 ] && [ "${non2xx:-0}" = 0 ] &&
       [ "$logged" -ge "$total" ] && [ "$logged" -le $((total + 8)) ]; then
      ok "wrk $mode: $total requests in 3 s ($(grep -oE 'Requests/sec: *[0-9.]+' <<<"$out" | grep -oE '[0-9.]+$')/s), 0 errors, 0 non-2xx; srv1/srv2/srv3 logged $w1/$w2/$w3"
    else
      bad "wrk $mode: requests '${total:-?}', socket errors ${sock:-0}, non-2xx ${non2xx:-0}, logged $logged ($w1/$w2/$w3)"
      sed 's/^/      /' <<<"$out"
    fi
  done
fi

# ---- 7. the lb stage over the run ---------------------------------------------------------------------
read -r P1 N1 R1 U1 D1 H1 _ <<<"$(lb_stage)"
if [ $((P1 - P0)) -gt 0 ] && [ $((D1 - D0)) = 0 ] && [ $((R1 - R0)) = 0 ] && [ $((U1 - U0)) = 0 ] &&
   [ $((N1 - N0 + H1 - H0)) = $((P1 - P0)) ]; then
  ok "nfctl show stages: lb passed on all $((P1 - P0)) packets (drop, reply, punt 0)"
else bad "nfctl show stages: lb packets +$((P1 - P0)), next +$((N1 - N0)), handoff +$((H1 - H0)), reply +$((R1 - R0)), punt +$((U1 - U0)), drop +$((D1 - D0))"; fi
DROPS1=$(lb_drops)
if [ "$DROPS1" = "$DROPS0" ]; then ok "nfctl show drops: no lb.* reason increased (${DROPS1:-none listed})"
else bad "nfctl show drops: lb.* reasons moved: '$DROPS0' -> '$DROPS1'"; fi
# Over 1-4 only: wrk opens a connection per request (the servers speak HTTP/1.0), faster than
# the lab's lb.syn_flood_rate, and DSR services then place new flows statelessly, by design.
if [ -n "$LBC0" ] && [ -n "$LBC1" ]; then
  read -r nf0 tf0 fl0 <<<"$LBC0"; read -r nf1 tf1 fl1 <<<"$LBC1"
  if [ $((nf1 - nf0)) = 180 ] && [ "$tf1" = "$tf0" ] && [ "$fl1" = "$fl0" ]; then
    ok "nfctl show lb: 1-4 made exactly 180 new flows (150 TCP, 30 UDP), table_full and floods unchanged ($tf1, $fl1)"
  else bad "nfctl show lb: 1-4 made $((nf1 - nf0)) new flows (want 180), table_full $tf0 -> $tf1, floods $fl0 -> $fl1"; fi
fi

summary test_lb_dsr
