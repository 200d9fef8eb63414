#!/usr/bin/env bash
# DHCP with two workers: lease ownership by client hash and the handoff between workers.
#
# The lab's nf has one worker (its TAP ports have one queue here), so this starts a second,
# separate nf with two workers on a net_af_packet port (two queues, kernel fanout) over a
# veth into namespace nfl-hw. All of perfdhcp's relayed requests (one 4-tuple) and all direct
# clients' broadcasts land on one queue, so the worker that receives them must hand every
# client owned by the other worker over. Checks: perfdhcp completes its exchanges, both
# workers commit ACKs, packets were handed off, every ACKed address is a distinct durable
# lease, and a direct client (udhcpc) gets a lease too.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lab/lib.sh
. "$HERE/lib.sh"

# check <description> <1|0> <detail shown on failure>
check() {
  if [ "$2" = 1 ]; then ok "$1"; else bad "$1"; echo "$3" | sed 's/^/      /' | head -40; fi
}
summary_and_exit() {
  echo "test_dhcp_workers: $PASS passed, $FAIL failed"
  [ "$FAIL" = 0 ]
  exit $?
}

WORK=$(mktemp -d /tmp/nf-hw.XXXXXX)
SOCK=/run/nf/hw.sock
NS=nfl-hw
PID=

cleanup() {
  [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && sleep 1 && kill -KILL "$PID" 2>/dev/null
  for p in $(ip netns pids $NS 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  ip netns del $NS 2>/dev/null
  ip link del nfl-hw0 2>/dev/null
  rm -rf "$WORK" "$SOCK"
}
trap cleanup EXIT

ip netns add $NS
ip link add nfl-hw0 type veth peer name eth0 netns $NS
ip link set nfl-hw0 up
ethtool -K nfl-hw0 rx off tx off tso off gso off gro off >/dev/null 2>&1
sysctl -qw net.ipv6.conf.nfl-hw0.disable_ipv6=1
ip netns exec $NS sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec $NS ip link set lo up
ip netns exec $NS ip addr add 10.77.0.100/24 dev eth0
ip netns exec $NS ip link set eth0 up
ip netns exec $NS ethtool -K eth0 rx off tx off tso off gso off gro off >/dev/null 2>&1

cat > "$WORK/nf.conf" <<EOF
lcores = { management = 0; workers = [ 1, 2 ]; worker_idle_sleep_us = 20; };
mempool = { mbufs = 16383; cache = 256; };
ports = ( { name = "lan"; device = "net_af_packet9,iface=nfl-hw0"; mac = "02:6e:66:77:00:01";
            addresses = [ "10.77.0.1/24" ]; } );
pipeline = [ "input", "dhcp", "ip4_forward" ];
control = { socket = "$SOCK"; };
dhcp = {
  journal = "$WORK/dhcp";
  client_rate = 0;
  pools = (
    { name = "direct"; interface = "lan"; ranges = [ "10.77.0.150-10.77.0.199" ]; },
    { name = "relayed"; relay = "10.77.0.96/28"; subnet = "10.99.0.0/16";
      ranges = [ "10.99.0.10-10.99.255.250" ]; }
  );
};
EOF
setsid /usr/local/bin/nf --config "$WORK/nf.conf" >"$WORK/nf.log" 2>&1 </dev/null &
PID=$!
ok=0
for _ in $(seq 100); do
  NF_SOCKET=$SOCK nfctl ping >/dev/null 2>&1 && { ok=1; break; }
  kill -0 $PID 2>/dev/null || break
  sleep 0.1
done
check "second nf with 2 workers started" "$ok" "$(tail -3 "$WORK/nf.log")"
[ $ok = 1 ] || summary_and_exit
ctl() { NF_SOCKET=$SOCK nfctl "$@"; }
workers=$(ctl show lcores | grep -c '^worker')
check "nf runs 2 workers" "$([ "$workers" = 2 ] && echo 1 || echo 0)" "$(ctl show lcores)"

out=$(ip netns exec $NS perfdhcp -4 -l 10.77.0.100 -r 400 -R 4000 -p 5 -W 1000000 10.77.0.1 2>&1)
sent=$(echo "$out" | awk '/^sent packets:/ {n++; if (n == 2) print $3}')
recv=$(echo "$out" | awk '/^received packets:/ {n++; if (n == 2) print $3}')
sent=${sent:-0}; recv=${recv:-0}
check "perfdhcp (relay) through 2 workers: $recv of $sent REQUESTs ACKed" \
  "$([ "$sent" -gt 1000 ] && [ $((sent - recv)) -le $((sent / 100)) ] && echo 1 || echo 0)" "$out"

stages=$(ctl show stages)
commits=$(echo "$stages" | awk '$2 == "dhcp" && $1 ~ /^[0-9]+$/ {print $1 ":" $11}')
both=$(echo "$stages" | awk '$2 == "dhcp" && $1 ~ /^[0-9]+$/ && $11 > 0' | wc -l)
check "both workers committed ACKs (worker:commits $commits)" "$([ "$both" = 2 ] && echo 1 || echo 0)" "$stages"
handed=$(ctl show dhcp | awk -F': ' '/handed to the owning worker/ {print $2}')
check "requests handed to the owning worker: ${handed:-0}" \
  "$([ "${handed:-0}" -gt 100 ] && echo 1 || echo 0)" "$(ctl show dhcp)"
received=$(ctl show lcores; ctl show stages | head -1)
leases=$(ctl show leases | awk '$3 == "bound"' | wc -l)
distinct=$(ctl show leases | awk '$3 == "bound" {print $1}' | sort -u | wc -l)
check "every ACK is a durable, distinct lease ($leases bound, $distinct distinct, $recv ACKs)" \
  "$([ "$leases" -ge "$recv" ] && [ "$leases" = "$distinct" ] && echo 1 || echo 0)" "$received"

if ip netns exec $NS timeout 20 udhcpc -i eth0 -n -q -t 4 -T 2 -s /bin/true >"$WORK/udhcpc" 2>&1; then
  got=$(grep -o 'lease of [0-9.]*' "$WORK/udhcpc" | awk '{print $3}')
  check "a direct client (udhcpc broadcast) gets $got from the direct pool" \
    "$(case $got in 10.77.0.1[5-9]?) echo 1 ;; *) echo 0 ;; esac)" "$(cat "$WORK/udhcpc")"
else
  check "a direct client (udhcpc broadcast) gets a lease" 0 "$(cat "$WORK/udhcpc")"
fi
drops=$(ctl show drops)
check "no ring overflowed (commit, handoff)" \
  "$(echo "$drops" | grep -q 'ring_full' && echo 0 || echo 1)" "$drops"
summary_and_exit
