#!/usr/bin/env bash
# Lab test: gratuitous ARP and ARP for an address added by reload.
#
#   tests/lab/test_garp.sh        (as root, with the lab up: tests/lab/lab up)
#
# Reloads a copy of /etc/nf/lab.conf whose port "lan" also has 10.10.0.2/24. Checks, with
# tcpdump in nfl-client, that nf announces the new address with gratuitous ARP (sender and
# target 10.10.0.2, from the port's MAC; arp.gratuitous_count = 3 by default, one a second),
# and none for 10.10.0.1 (unchanged); then that arping and ping to 10.10.0.2 are answered.
# Restores the lab configuration on exit.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LAB_CONF=/etc/nf/lab.conf
CLIENT=(ip netns exec nfl-client)
WORK=$(mktemp -d /tmp/nf-test-garp.XXXXXX)
TCPDUMP_PID=
restore() {
  [ -n "$TCPDUMP_PID" ] && kill "$TCPDUMP_PID" 2>/dev/null
  nfctl reload "$LAB_CONF" >/dev/null 2>&1 || echo "WARNING: could not reload $LAB_CONF" >&2
  rm -rf "$WORK"
}
trap restore EXIT

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
nfctl ping >/dev/null 2>&1 || { echo "nf does not answer: is the lab up?" >&2; exit 1; }

LAN_MAC=$(nfctl show ports | awk '/^port 0 /{p=1} p && $1 == "mac" { print $2; exit }')
sed 's|addresses = \[ "10.10.0.1/24" \];|addresses = [ "10.10.0.1/24", "10.10.0.2/24" ];|' "$LAB_CONF" > "$WORK/two.conf"
grep -q '10.10.0.2/24' "$WORK/two.conf" || { echo "could not derive the test config" >&2; exit 1; }

# nf announces its addresses for a few seconds after it starts: let that finish first.
garp_sent() { nfctl show management | awk '$1 == "gratuitous_arp_sent" { print $2 }'; }
prev=$(garp_sent)
for _ in $(seq 10); do
  sleep 1.2
  now=$(garp_sent)
  [ "$now" = "$prev" ] && break
  prev=$now
done

"${CLIENT[@]}" tcpdump -i eth0 -nn -e -l arp > "$WORK/arp.txt" 2>/dev/null &
TCPDUMP_PID=$!
sleep 1
gen0=$(nfctl show lcores | grep -o 'generation [0-9]*' | head -1 | awk '{print $2}')
if r=$(nfctl reload "$WORK/two.conf"); then ok "reload adding 10.10.0.2/24: $r"; else bad "reload: $r"; fi
sleep 3.5  # three announcements, one a second
kill "$TCPDUMP_PID" 2>/dev/null
wait "$TCPDUMP_PID" 2>/dev/null
TCPDUMP_PID=

# tcpdump -e prints e.g. "<mac> > ff:ff:ff:ff:ff:ff, ethertype ARP ..., Request who-has 10.10.0.2
# (ff:ff:ff:ff:ff:ff) tell 10.10.0.2, length 28" for a gratuitous request.
garps=$(grep -c "^[^ ]* *$LAN_MAC > ff:ff:ff:ff:ff:ff.*who-has 10.10.0.2 .*tell 10.10.0.2," "$WORK/arp.txt")
if [ "$garps" -ge 3 ]; then
  ok "gratuitous ARP for 10.10.0.2 from $LAN_MAC: $garps seen"
else
  bad "gratuitous ARP for 10.10.0.2: $garps seen, want 3 (capture: $(tr '\n' '|' < "$WORK/arp.txt"))"
fi
old=$(grep -c "who-has 10.10.0.1 .*tell 10.10.0.1," "$WORK/arp.txt")
if [ "$old" = 0 ]; then ok "no gratuitous ARP for the unchanged 10.10.0.1"; else bad "$old gratuitous ARP for 10.10.0.1"; fi
gen1=$(nfctl show lcores | grep -o 'generation [0-9]*' | head -1 | awk '{print $2}')
if [ "$gen1" = $((gen0 + 1)) ]; then ok "snapshot generation $gen0 -> $gen1"; else bad "generation $gen0 -> $gen1"; fi

if "${CLIENT[@]}" arping -c 2 -w 3 -I eth0 10.10.0.2 > "$WORK/arping.txt" 2>&1 && grep -qi "$LAN_MAC" "$WORK/arping.txt"; then
  ok "arping 10.10.0.2 answered by $LAN_MAC"
else
  bad "arping 10.10.0.2: $(cat "$WORK/arping.txt")"
fi
if "${CLIENT[@]}" ping -c 2 -i 0.2 -W 2 10.10.0.2 > "$WORK/ping.txt" 2>&1; then
  ok "ping 10.10.0.2: $(grep -o '[0-9]* received' "$WORK/ping.txt")"
else
  bad "ping 10.10.0.2: $(tail -2 "$WORK/ping.txt")"
fi

echo "test_garp: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
