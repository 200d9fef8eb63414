#!/usr/bin/env bash
# DHCP across a reload that reshapes the pool: every existing lease is kept (and renews), new
# clients get addresses from the new ranges only, and the old configuration comes back.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lab/lib.sh
. "$HERE/lib.sh"
LAB_CONF=/etc/nf/lab.conf
WORK=$(mktemp -d /tmp/nf-dr.XXXXXX)
NS=(nfl-dr1 nfl-dr2)

check() {  # check <description> <1|0> <detail shown on failure>
  if [ "$2" = 1 ]; then ok "$1"; else bad "$1"; echo "$3" | sed 's/^/      /' | head -20; fi
}
cleanup() {
  for ns in "${NS[@]}"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
    ip link del "$ns-br" 2>/dev/null
  done
  nfctl reload "$LAB_CONF" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

attach() {
  ip netns add "$1"
  ip link add "$1-br" type veth peer name eth0 netns "$1"
  ip link set "$1-br" master nfl-br0 up
  ip netns exec "$1" ip link set lo up
  ip netns exec "$1" ip link set eth0 address "$2" up
}
lease() {  # lease <ns>: runs udhcpc once, prints the address it got
  ip netns exec "$1" timeout 20 udhcpc -i eth0 -n -q -t 4 -T 2 -s /bin/true 2>&1 |
    grep -o 'lease of [0-9.]*' | awk '{print $3}'
}
state() { nfctl show leases "$1" | awk -v a="$1" '$1 == a {print $3}'; }
expires() { nfctl show leases "$1" | awk -v a="$1" '$1 == a {print $4}'; }

attach "${NS[0]}" 02:dd:7e:00:00:01
attach "${NS[1]}" 02:dd:7e:00:00:02
a=$(lease "${NS[0]}")
check "a client binds ${a:-nothing} from the lab pool" "$([ -n "$a" ] && echo 1 || echo 0)" "$(nfctl show dhcp)"

# The reshaped pool: 10.10.0.180-199 only, and the client's address explicitly excluded.
awk -v a="$a" '
  /ranges = \[ "10.10.0.150-10.10.0.199" \];/ {
    print "      ranges = [ \"10.10.0.180-10.10.0.199\" ];"
    print "      exclude = [ \"" a "\" ];"
    next }
  { print }' "$LAB_CONF" > "$WORK/reshaped.conf"
out=$(nfctl reload "$WORK/reshaped.conf" 2>&1)
check "reload with the range cut to 10.10.0.180-199 and $a excluded" "$([ $? = 0 ] && echo 1 || echo 0)" "$out"
check "the lease on $a is still bound after the reload" "$([ "$(state "$a")" = bound ] && echo 1 || echo 0)" \
  "$(nfctl show leases "$a")"
sleep 2
before=$(expires "$a")
b=$(lease "${NS[0]}")   # the same client again: INIT-REBOOT/SELECTING for its address
check "the client renews $a (got ${b:-nothing})" "$([ "$b" = "$a" ] && echo 1 || echo 0)" "$(nfctl show leases "$a")"
after=$(expires "$a")
check "its expiry moved forward ($before -> $after s left)" \
  "$([ -n "$before" ] && [ -n "$after" ] && [ "$after" -gt "$before" ] && echo 1 || echo 0)" "$(nfctl show leases "$a")"
c=$(lease "${NS[1]}")
in_new=0
[[ "$c" =~ ^10\.10\.0\.([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -ge 180 ] && [ "${BASH_REMATCH[1]}" -le 199 ] && in_new=1
check "a new client gets ${c:-nothing}, from the new range" "$in_new" "$(nfctl show dhcp)"

out=$(nfctl reload "$LAB_CONF" 2>&1)
check "reload back to the lab configuration" "$([ $? = 0 ] && echo 1 || echo 0)" "$out"
check "both leases survive it ($a: $(state "$a"), $c: $(state "$c"))" \
  "$([ "$(state "$a")" = bound ] && [ "$(state "$c")" = bound ] && echo 1 || echo 0)" "$(nfctl show leases)"
for x in "$a" "$c"; do [ -n "$x" ] && nfctl release "$x" >/dev/null 2>&1; done

echo "test_dhcp_reload: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
