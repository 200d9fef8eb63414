#!/usr/bin/env bash
# Lab test: basic forwarding and the appliance's own answers, seen from nfl-client.
#
#   tests/lab/test_forwarding.sh        (as root, with the lab up: tests/lab/lab up)
#
# Checks: ping (3 each) and HTTP to 10.20.0.11-13 through nf, each body naming its server;
# ARP replies for 10.10.0.1 (with the MAC `nfctl show ports` reports for port lan); ICMP echo
# to both appliance addresses; ICMP time exceeded from 10.10.0.1 for TTL 1; ICMP destination
# net unreachable for 192.0.2.1 (no route); afterwards stages input and ip4_forward have
# non-zero packet counters that grew during the test. Runs in ~10 s; exits 0 on pass.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLIENT=(ip netns exec nfl-client)
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT

die()  { echo "test_forwarding: FAIL: $*" >&2; exit 1; }

# stage_col <stage> <column>: the column summed over workers (the "all" line is skipped).
stage_col() {
  nfctl show stages | awk -v s="$1" -v c="$2" '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    $2 == s && $1 != "all" { n += $(col[c]) }
    END { print n + 0 }'
}

[ "$(id -u)" = 0 ] || die "run as root"
ip netns list | grep -qw nfl-client || die "namespace nfl-client is missing: is the lab up? (tests/lab/lab up)"
nfctl ping >/dev/null 2>&1 || die "nf does not answer nfctl ping: is the lab up? (tests/lab/lab status)"
# Does any route of the running configuration cover 192.0.2.1 (the "no route" probe)?
covers_probe() {
  nfctl show routes | awk '
    function ip2n(s,  a) { split(s, a, "."); return ((a[1] * 256 + a[2]) * 256 + a[3]) * 256 + a[4] }
    NR > 1 && split($1, p, "/") == 2 {
      span = 2 ^ (32 - p[2])
      if (int(ip2n(p[1]) / span) == int(ip2n("192.0.2.1") / span)) found = 1
    }
    END { exit !found }'
}
if covers_probe; then
  nfctl show routes
  die "precondition: the running configuration routes 192.0.2.1 (see above); the test needs the lab" \
      "configuration (nfctl reload /etc/nf/lab.conf)"
fi

LAN_MAC=$(nfctl show ports | awk '/^port [0-9]+ "lan"/ { getline; print $2; exit }')
[ -n "$LAN_MAC" ] || die "cannot read the MAC of port lan from nfctl show ports"
IN0=$(stage_col input packets)
FWD0=$(stage_col ip4_forward packets)
echo "nf port lan mac $LAN_MAC; stage packets before: input $IN0, ip4_forward $FWD0"

echo "forwarding through nf to the servers:"
for i in 1 2 3; do
  ip=10.20.0.1$i
  "${CLIENT[@]}" timeout 15 ping -n -c 3 -i 0.2 -W 2 "$ip" >"$OUT" 2>&1
  rx=$(grep -oE '[0-9]+ received' "$OUT" | grep -oE '^[0-9]+')
  if [ "${rx:-0}" = 3 ]; then ok "ping $ip: 3/3 replies ($(grep -o 'rtt.*' "$OUT"))"
  else bad "ping $ip: ${rx:-0}/3 replies: $(tr '\n' ' ' <"$OUT")"; fi

  body=$("${CLIENT[@]}" curl -s --max-time 5 "http://$ip/" 2>&1)
  rc=$?
  if [ $rc = 0 ] && [ "$body" = "nfl-srv$i" ]; then ok "curl http://$ip/ -> '$body'"
  else bad "curl http://$ip/: rc $rc, body '$body' (want 'nfl-srv$i')"; fi
done

echo "the appliance itself:"
"${CLIENT[@]}" timeout 15 arping -c 3 -w 5 -I eth0 10.10.0.1 >"$OUT" 2>&1
n=$(grep -c "reply from 10.10.0.1 \[${LAN_MAC^^}\]" "$OUT")
if [ "$n" = 3 ]; then ok "arping 10.10.0.1: 3 replies from $LAN_MAC"
else bad "arping 10.10.0.1: $n/3 replies from [${LAN_MAC^^}]: $(tr '\n' ' ' <"$OUT")"; fi

for ip in 10.10.0.1 10.20.0.1; do
  "${CLIENT[@]}" timeout 15 ping -n -c 3 -i 0.2 -W 2 "$ip" >"$OUT" 2>&1
  rx=$(grep -oE '[0-9]+ received' "$OUT" | grep -oE '^[0-9]+')
  if [ "${rx:-0}" = 3 ]; then ok "ping $ip (appliance address): 3/3 replies"
  else bad "ping $ip (appliance address): ${rx:-0}/3 replies: $(tr '\n' ' ' <"$OUT")"; fi
done

"${CLIENT[@]}" timeout 15 ping -n -c 3 -i 0.2 -W 2 -t 1 10.20.0.11 >"$OUT" 2>&1
n=$(grep -c "From 10.10.0.1 icmp_seq=[0-9]* Time to live exceeded" "$OUT")
if [ "$n" = 3 ]; then ok "ping -t 1 10.20.0.11: 3x 'Time to live exceeded' from 10.10.0.1"
else bad "ping -t 1 10.20.0.11: $n/3 'Time to live exceeded' from 10.10.0.1: $(tr '\n' ' ' <"$OUT")"; fi

"${CLIENT[@]}" timeout 15 ping -n -c 3 -i 0.2 -W 2 192.0.2.1 >"$OUT" 2>&1
n=$(grep -c "From 10.10.0.1 icmp_seq=[0-9]* Destination Net Unreachable" "$OUT")
if [ "$n" = 3 ]; then ok "ping 192.0.2.1 (no route): 3x 'Destination Net Unreachable' from 10.10.0.1"
else bad "ping 192.0.2.1 (no route): $n/3 'Destination Net Unreachable' from 10.10.0.1: $(tr '\n' ' ' <"$OUT")"; fi

echo "stage counters:"
IN1=$(stage_col input packets)
FWD1=$(stage_col ip4_forward packets)
for s in "input $IN0 $IN1" "ip4_forward $FWD0 $FWD1"; do
  set -- $s
  if [ "$3" -gt 0 ] && [ "$3" -gt "$2" ]; then ok "stage $1: packets $3 (+$(($3 - $2)) during this test)"
  else bad "stage $1: packets $3 (was $2): want non-zero and growing"; fi
done
nfctl show stages | sed 's/^/    /'

echo
echo "test_forwarding: $PASS passed, $FAIL failed"
for f in "${FAILED[@]}"; do echo "  FAILED: $f"; done
[ "$FAIL" = 0 ]
