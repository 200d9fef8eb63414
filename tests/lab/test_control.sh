#!/usr/bin/env bash
# Lab test: the control socket and reload guards.
#
#   tests/lab/test_control.sh        (as root, with the lab up: tests/lab/lab up)
#
# - The socket is mode 0600.
# - Clients that connect and never send (or never finish) a request cannot stall the management
#   lcore: with three of them hanging, `nfctl ping` still answers within 3 s and ARP and ICMP
#   from the appliance keep working.
# - A reload that would need bigger packet buffers than nf allocated at start (MTU 9000) is
#   refused with the reason, and the generation does not move.
# - An unknown and an incomplete command are refused with a helpful message; unique prefixes work.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LAB_CONF=/etc/nf/lab.conf
SOCK=/run/nf/nf.sock
CLIENT=(ip netns exec nfl-client)
WORK=$(mktemp -d /tmp/nf-test-control.XXXXXX)
HOLDERS=()
cleanup() {
  for p in "${HOLDERS[@]}"; do kill "$p" 2>/dev/null; done
  nfctl reload "$LAB_CONF" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
nfctl ping >/dev/null 2>&1 || { echo "nf does not answer: is the lab up?" >&2; exit 1; }

mode=$(stat -c %a "$SOCK")
if [ "$mode" = 600 ]; then ok "control socket mode $mode"; else bad "control socket mode $mode, want 600"; fi

# Three clients that connect and then say nothing for 10 s.
for _ in 1 2 3; do
  /usr/bin/python3 -c "
import socket, time
s = socket.socket(socket.AF_UNIX); s.connect('$SOCK'); time.sleep(10)" &
  HOLDERS+=($!)
done
sleep 0.3
start=$(date +%s%N)
pong=$(timeout 10 "$NFCTL" ping 2>&1)
took_ms=$(( ($(date +%s%N) - start) / 1000000 ))
if [ "$pong" = pong ] && [ "$took_ms" -lt 3000 ]; then
  ok "nfctl ping answered in ${took_ms} ms with 3 silent clients connected"
else
  bad "nfctl ping with 3 silent clients: '$pong' after ${took_ms} ms"
fi
if "${CLIENT[@]}" ping -c 3 -i 0.2 -W 2 10.20.0.11 > "$WORK/ping.txt" 2>&1; then
  ok "traffic through nf meanwhile: $(grep -o '[0-9]* received' "$WORK/ping.txt")"
else
  bad "traffic through nf meanwhile: $(tail -2 "$WORK/ping.txt")"
fi
if "${CLIENT[@]}" ping -c 2 -i 0.2 -W 2 10.10.0.1 > "$WORK/ping2.txt" 2>&1; then
  ok "the appliance answers ICMP echo meanwhile"
else
  bad "ICMP echo to 10.10.0.1 meanwhile: $(tail -2 "$WORK/ping2.txt")"
fi
for p in "${HOLDERS[@]}"; do kill "$p" 2>/dev/null; done
HOLDERS=()

gen() { nfctl show lcores | grep -o 'generation [0-9]*' | head -1 | awk '{print $2}'; }
g0=$(gen)
sed '0,/name = "srv";/s//name = "srv";\n    mtu = 9000;/' "$LAB_CONF" > "$WORK/jumbo.conf"
if out=$(nfctl reload "$WORK/jumbo.conf" 2>&1); then
  bad "reload with mtu 9000 was accepted: $out"
elif echo "$out" | grep -q 'ports\[1\].mtu: MTU 9000 needs larger packet buffers'; then
  ok "reload with mtu 9000 refused: $(echo "$out" | tail -1)"
else
  bad "reload with mtu 9000 refused, but not for the buffers: $out"
fi
if [ "$(gen)" = "$g0" ]; then ok "generation stays $g0"; else bad "generation moved $g0 -> $(gen)"; fi

if out=$(nfctl show nonsense 2>&1); then bad "unknown command accepted"; elif echo "$out" | grep -q 'unknown command'; then
  ok "unknown command refused: $out"
else bad "unknown command: $out"; fi
if out=$(nfctl show 2>&1); then bad "incomplete 'show' accepted: $out"; elif echo "$out" | grep -q 'incomplete command; could be: "show ports"'; then
  ok "incomplete 'show' lists the choices: $out"
else bad "incomplete 'show': $out"; fi
if out=$(nfctl sh rou 2>&1) && echo "$out" | grep -q '10.20.0.0/24'; then ok "unique prefixes work ('sh rou')"; else bad "'sh rou': $out"; fi

echo "test_control: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
