#!/usr/bin/env bash
# Lab test: egress MTU handling (fragmentation needed / fragmentation on the management lcore).
#
#   tests/lab/test_mtu.sh        (as root, with the lab up: tests/lab/lab up)
#
# Reloads a copy of /etc/nf/lab.conf in which port "srv" has `mtu = 1000;`, then from
# nfl-client:
#   ping -M do   -s 1300 10.20.0.11  -> "Frag needed and DF set (mtu = 1000)" from 10.10.0.1
#   ping -M dont -s 1300 -c 3 10.20.0.11 -> 3 replies: nf fragments each 1328-byte request to
#        fit MTU 1000 (checked in nfl-srv1 with tcpdump), the server reassembles and answers
#   nfctl show management: fragmented and fragments_sent grew.
# The MTU of a link is a property of the link, so nfl-srv1's eth0 gets MTU 1000 too for the
# duration of the test: its 1328-byte echo replies then leave it as fragments that fit the
# link, as they would on a real 1000-byte link (with MTU 1500 they would be 1342-byte frames
# that nf rightly refuses as input.oversized on a 1000-byte port).
# Restores on exit (also on failure): the lab configuration (nfctl reload /etc/nf/lab.conf),
# nfl-srv1's MTU, and the path-MTU caches of nfl-client and nfl-srv1. Runs in ~8 s.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LAB_CONF=/etc/nf/lab.conf
CLIENT=(ip netns exec nfl-client)
SRV1=(ip netns exec nfl-srv1)
WORK=$(mktemp -d /tmp/nf-test-mtu.XXXXXX)
OUT=$WORK/out
SRV1_MTU_OLD=
TCPDUMP_PID=
trap 'rm -rf "$WORK"' EXIT

die() { echo "test_mtu: FAIL: $*" >&2; exit 1; }

mgmt()  { nfctl show management | awk -v k="$1" '$1 == k { print $2 }'; }
drops() { nfctl show drops | awk '/^punts:/ { exit } NF == 2 && $2 ~ /^[0-9]+$/ { print $1, $2 }' | sort; }
dropdelta() {  # dropdelta <before-file> <after-file>: "name +n" for every counter that moved
  join -a1 -a2 -e 0 -o 0,1.2,2.2 "$1" "$2" | awk '$3 != $2 { printf "%s +%d ", $1, $3 - $2 }'
}

restore() {
  [ -n "$TCPDUMP_PID" ] && kill "$TCPDUMP_PID" 2>/dev/null
  local r
  r=$(nfctl reload "$LAB_CONF" 2>&1) && echo "restored: $r" || echo "WARNING: nfctl reload $LAB_CONF failed: $r" >&2
  if [ -n "$SRV1_MTU_OLD" ]; then
    "${SRV1[@]}" ip link set eth0 mtu "$SRV1_MTU_OLD" && echo "restored: nfl-srv1 eth0 mtu $SRV1_MTU_OLD"
  fi
  "${CLIENT[@]}" ip route flush cache
  "${SRV1[@]}" ip route flush cache
  rm -rf "$WORK"
}

[ "$(id -u)" = 0 ] || die "run as root"
ip netns list | grep -qw nfl-srv1 || die "namespace nfl-srv1 is missing: is the lab up? (tests/lab/lab up)"
nfctl ping >/dev/null 2>&1 || die "nf does not answer nfctl ping: is the lab up?"

CONF=$WORK/mtu1000.conf
awk '{ print } /addresses = \[ "10\.20\.0\.1\/24"/ { print "    mtu = 1000;"; n++ } END { exit n != 1 }' \
  "$LAB_CONF" >"$CONF" || die "cannot find port srv's addresses line in $LAB_CONF"
nfctl check "$CONF" >/dev/null || die "nfctl check $CONF failed"
trap restore EXIT
trap 'exit 130' INT TERM

echo "setup:"
r=$(nfctl reload "$CONF" 2>&1) || die "nfctl reload $CONF: $r"
echo "  $r"
nfctl show ports | awk '/"srv"/ { getline; print "  port srv:" $0 }'
SRV1_MTU_OLD=$("${SRV1[@]}" cat /sys/class/net/eth0/mtu)
"${SRV1[@]}" ip link set eth0 mtu 1000
"${CLIENT[@]}" ip route flush cache
echo "  nfl-srv1 eth0 mtu $SRV1_MTU_OLD -> 1000 (the srv link's MTU)"

echo "DF set, too big for port srv:"
FN0=$(nfctl show drops | awk '$1 == "frag_needed" { print $2 }')
E0=$(mgmt icmp_errors_sent)
"${CLIENT[@]}" timeout 10 ping -n -M do -s 1300 -c 1 -W 2 10.20.0.11 >"$OUT" 2>&1
FN1=$(nfctl show drops | awk '$1 == "frag_needed" { print $2 }')
E1=$(mgmt icmp_errors_sent)
if grep -q "From 10.10.0.1 icmp_seq=1 Frag needed and DF set (mtu = 1000)" "$OUT"; then
  ok "ping -M do -s 1300: 'From 10.10.0.1 ... Frag needed and DF set (mtu = 1000)'" \
     "(punt frag_needed +$((${FN1:-0} - ${FN0:-0})), icmp_errors_sent +$((E1 - E0)))"
else
  bad "ping -M do -s 1300: no 'Frag needed and DF set (mtu = 1000)' from 10.10.0.1: $(tr '\n' ' ' <"$OUT")"
fi
PM=$("${CLIENT[@]}" ip route get 10.20.0.11 | grep -o 'mtu [0-9]*')
echo "  nfl-client learned path MTU: '${PM:-none}'; flushing it so the next ping sends 1328-byte datagrams"
"${CLIENT[@]}" ip route flush cache

echo "DF clear, too big for port srv (nf fragments):"
F0=$(mgmt fragmented); S0=$(mgmt fragments_sent); drops >"$WORK/d0"
"${SRV1[@]}" tcpdump -Z root -U -n -s 128 -i eth0 -w "$WORK/srv1.pcap" icmp 2>"$WORK/tcpdump.err" &
TCPDUMP_PID=$!
for _ in $(seq 50); do grep -q "listening on" "$WORK/tcpdump.err" && break; sleep 0.1; done
"${CLIENT[@]}" timeout 15 ping -n -M dont -s 1300 -c 3 -i 0.3 -W 2 10.20.0.11 >"$OUT" 2>&1
sleep 0.5
kill -INT "$TCPDUMP_PID"; wait "$TCPDUMP_PID" 2>/dev/null; TCPDUMP_PID=
F1=$(mgmt fragmented); S1=$(mgmt fragments_sent); drops >"$WORK/d1"
DD=$(dropdelta "$WORK/d0" "$WORK/d1")
tcpdump -nv -r "$WORK/srv1.pcap" 2>/dev/null | grep -E '^[0-9]' >"$WORK/srv1.txt"
# requests from nf: "... id N, offset O, flags [+], proto ICMP (1), length L)"
REQ=$(awk '/proto ICMP/ { getline nx; if (nx ~ /10\.10\.0\.100 >/) print }' <(tcpdump -nv -r "$WORK/srv1.pcap" 2>/dev/null))
NFRAG=$(grep -c 'flags \[+\]\|offset [1-9]' <<<"$REQ")
MAXLEN=$(grep -o 'length [0-9]*)' <<<"$REQ" | tr -dc '0-9\n' | sort -n | tail -1)
REPL=$(tcpdump -nv -r "$WORK/srv1.pcap" 2>/dev/null | grep -c '10.20.0.11 > 10.10.0.100: ICMP echo reply')
RFRAG=$(awk '/proto ICMP/ { getline nx; if (nx ~ /10\.20\.0\.11 >/) print }' <(tcpdump -nv -r "$WORK/srv1.pcap" 2>/dev/null) |
        grep -c 'flags \[+\]\|offset [1-9]')
echo "  in nfl-srv1: $(grep -c . <<<"$REQ") IP packets of the echo requests, $NFRAG of them fragments, largest" \
     "IP length ${MAXLEN:-?}; $REPL echo replies sent, as $RFRAG fragments"
if [ "$NFRAG" -ge 6 ] && [ "${MAXLEN:-9999}" -le 1000 ]; then
  ok "nf fragmented the 3 requests to fit MTU 1000: $NFRAG fragments in nfl-srv1, none longer than $MAXLEN"
else
  bad "requests in nfl-srv1: $NFRAG fragments, largest ${MAXLEN:-?} (want >= 6 fragments, <= 1000 bytes)"
fi
if [ "$((F1 - F0))" -ge 3 ] && [ "$F1" -gt 0 ] && [ "$((S1 - S0))" -ge 6 ]; then
  ok "show management: fragmented $F1 (+$((F1 - F0))), fragments_sent $S1 (+$((S1 - S0)))"
else
  bad "show management: fragmented $F1 (+$((F1 - F0))), fragments_sent $S1 (+$((S1 - S0))) (want +3, +6)"
fi
RX=$(grep -oE '[0-9]+ received' "$OUT" | grep -oE '^[0-9]+')
if [ "${RX:-0}" = 3 ]; then
  ok "ping -M dont -s 1300 -c 3: 3/3 replies (nf drops during it: ${DD:-none})"
else
  bad "ping -M dont -s 1300 -c 3: ${RX:-0}/3 replies; nfl-srv1 sent $REPL echo replies; nf drops during it:" \
      "${DD:-none}$(grep -q 'input.oversized' <<<"$DD" && echo " -- the server's replies, sent as fragments" \
      "that fit MTU 1000, reached nf as one reassembled oversized datagram: net_af_packet's" \
      "PACKET_FANOUT_FLAG_DEFRAG makes the kernel reassemble IPv4 fragments before nf reads them")"
fi

echo
echo "test_mtu: $PASS passed, $FAIL failed"
for f in "${FAILED[@]}"; do echo "  FAILED: $f"; done
[ "$FAIL" = 0 ]
