#!/usr/bin/env bash
# Lab test: nf's DHCP server with real clients (dhclient, udhcpc, dhcpcd) and perfdhcp.
#
#   tests/lab/test_dhcp.sh        (as root, with the lab up: tests/lab/lab up)
#
# Three client namespaces on nfl-br0 (nfl-dh-dhc, nfl-dh-udh, nfl-dh-dcd, fixed MACs
# 02:dd:00:00:00:01..03), each with tcpdump on its eth0, run one client each, in parallel:
#
#  1. bind: each client gets an address from 10.10.0.150-199 and configures it (the hook
#     scripts below do what the distribution scripts would, minus hostname/NTP/resolvconf:
#     address, default route, and resolv.conf data into the test directory; dhcpcd configures
#     the interface itself). Checked: `ip addr`, default route via 10.10.0.1, resolv data,
#     ping 10.10.0.1 and 10.20.0.11 (across nf), `nfctl show leases <ip>` bound to the MAC,
#     and the options (router, DNS 10.10.0.1, domain lab.example, lease 3600, T1 1800,
#     T2 3150) both in the client's hook environment and in the captured ACK.
#  2. release (dhclient -r, udhcpc -R + SIGTERM, dhcpcd SIGALRM): `show leases <ip>` says
#     released.
#  3. bind again from scratch asking for a 20 s lease (the test reloads a copy of the lab
#     configuration with min_lease_time = 10 in pool "lan"): the capture shows a DISCOVER
#     and the same address comes back; T1/T2 are 10/17. At T1 each client renews: the
#     capture shows a REQUEST unicast to 10.10.0.1 (nf's MAC) with ciaddr set and no server
#     id, an ACK unicast back to the client, and the lease's expiry in nf moved (dhclient
#     and dhcpcd renew at T1 +-3 s; busybox udhcpc times renewals itself, ignoring option 58).
#  4. perfdhcp as a relay from nfl-client (giaddr 10.10.0.100, unicast to 10.10.0.1):
#     <1% drops, ACK counter in `nfctl show dhcp` grew by what perfdhcp received.
#  5. perfdhcp "directly": kea's perfdhcp always fills giaddr with its own address and
#     listens on port 67 (TestControl::setDefaults4), so it cannot be a plain client; the
#     closest is broadcasting (no server argument: 255.255.255.255; -B sets SO_BROADCAST on
#     its socket, not the BOOTP broadcast flag) from a namespace whose address is inside the
#     relay prefix (nfl-dh-pd, 10.10.0.101/24), so nf answers giaddr:67. Checked the same
#     way, plus that the captured DISCOVERs were link and IP broadcasts.
#
# Everything the test made (namespaces, processes, files) is removed on exit, its leases are
# released and /etc/nf/lab.conf is reloaded (NF_TEST_KEEP=1 keeps the captures and logs).
# Prints a summary; exits non-zero on any failure. ~45 s.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LAB_CONF=/etc/nf/lab.conf
IP=$(command -v ip)
WORK=$(mktemp -d /tmp/nf-test-dhcp.XXXXXX)
CLIENTS=(dhc udh dcd)
declare -A NAME=([dhc]=dhclient [udh]=udhcpc [dcd]=dhcpcd)
declare -A MAC=([dhc]=02:dd:00:00:00:01 [udh]=02:dd:00:00:00:02 [dcd]=02:dd:00:00:00:03)
declare -A PID=()    # client processes we started
declare -A TPID=()   # tcpdump per client
declare -A ADDR=()   # address bound in phase 1
PD_NS=nfl-dh-pd
PD_MAC=02:dd:00:00:00:04
START=$(date +%s)

ns_of() { echo "nfl-dh-$1"; }
in_ns() { local ns=$1; shift; "$IP" netns exec "$ns" "$@"; }

drop_namespaces() {  # this test's namespaces (and whatever still runs in them)
  local c p ns
  for ns in $(for c in "${CLIENTS[@]}"; do ns_of "$c"; done) $PD_NS; do
    "$IP" netns list 2>/dev/null | awk '{print $1}' | grep -qx "$ns" || continue
    for p in $("$IP" netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    "$IP" netns del "$ns" 2>/dev/null
  done
}
cleanup() {
  local c m
  for c in "${!PID[@]}"; do kill -TERM "${PID[$c]}" 2>/dev/null; done
  for c in "${!TPID[@]}"; do kill -INT "${TPID[$c]}" 2>/dev/null; done
  sleep 0.3
  drop_namespaces
  # Leases of our fixed MACs that are still bound go back to the pool.
  for m in "${MAC[@]}"; do
    nfctl show leases "$m" 2>/dev/null | awk '$3 == "bound" {print $1}' | while read -r a; do
      nfctl release "$a" >/dev/null 2>&1
    done
  done
  nfctl reload "$LAB_CONF" >/dev/null 2>&1 || echo "WARNING: could not reload $LAB_CONF" >&2
  if [ -n "${NF_TEST_KEEP:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
nfctl ping >/dev/null 2>&1 || { echo "nf does not answer: is the lab up?" >&2; exit 1; }
"$IP" link show nfl-br0 >/dev/null 2>&1 || { echo "no bridge nfl-br0: is the lab up?" >&2; exit 1; }
for t in dhclient udhcpc dhcpcd perfdhcp tshark tcpdump; do
  command -v $t >/dev/null || { echo "missing tool: $t" >&2; exit 1; }
done

drop_namespaces  # left over by an interrupted run
NF_MAC=$(nfctl show ports | awk '/^port 0 /{p=1} p && $1 == "mac" { print $2; exit }')

# ---- helpers ------------------------------------------------------------------------------
wait_for() {  # wait_for <seconds> <command...>: polls every 0.2 s
  local end=$(( $(date +%s%N) + $1 * 1000000000 )); shift
  while ! "$@" 2>/dev/null; do
    [ "$(date +%s%N)" -lt "$end" ] || return 1
    sleep 0.2
  done
}
# A namespace on nfl-br0 with a fixed MAC (like veth_to_bridge in tests/lab/lab, no address).
make_ns() {  # make_ns <ns> <mac> [addr/len]
  local ns=$1 mac=$2 addr=${3:-}
  "$IP" netns add "$ns" || return 1
  "$IP" link add "$ns-br" type veth peer name eth0 netns "$ns" || return 1
  "$IP" link set "$ns-br" master nfl-br0 up
  ethtool -K "$ns-br" rx off tx off tso off gso off gro off >/dev/null 2>&1
  sysctl -qw "net.ipv6.conf.$ns-br.disable_ipv6=1" 2>/dev/null
  in_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
  in_ns "$ns" "$IP" link set lo up
  in_ns "$ns" "$IP" link set eth0 address "$mac"
  in_ns "$ns" ethtool -K eth0 rx off tx off tso off gso off gro off >/dev/null 2>&1
  [ -z "$addr" ] || in_ns "$ns" "$IP" addr add "$addr" dev eth0
  in_ns "$ns" "$IP" link set eth0 up
}
# The hook script of client $1 logs every event's environment to $WORK/$1.env ("@@ <reason>"
# lines separate events) and configures the interface the way the stock scripts would.
make_hook() {
  local c=$1 f=$WORK/hook-$1.sh
  cat > "$f" <<EOF
#!/bin/sh
# test_dhcp.sh hook for ${NAME[$c]}
D=$WORK/$c
R=\${reason:-\$1}
{ echo "@@ \$R \$(date +%s.%N)"; env | sort; } >> \$D.env
resolv() { { [ -z "\$2" ] || echo "search \$2"; for s in \$1; do echo "nameserver \$s"; done; } > \$D.resolv; }
case "${NAME[$c]}:\$R" in
  dhclient:BOUND|dhclient:RENEW|dhclient:REBIND|dhclient:REBOOT)
    $IP addr replace "\$new_ip_address/\$new_subnet_mask" dev "\$interface"
    $IP route replace default via "\${new_routers%% *}" dev "\$interface"
    resolv "\$new_domain_name_servers" "\$new_domain_name" ;;
  dhclient:EXPIRE|dhclient:FAIL|dhclient:RELEASE|dhclient:STOP)
    $IP addr flush dev "\$interface"; rm -f \$D.resolv ;;
  udhcpc:bound|udhcpc:renew)
    $IP addr replace "\$ip/\$mask" dev "\$interface"
    $IP route replace default via "\${router%% *}" dev "\$interface"
    resolv "\$dns" "\$domain" ;;
  udhcpc:deconfig)
    $IP addr flush dev "\$interface"; rm -f \$D.resolv ;;
  dhcpcd:BOUND|dhcpcd:RENEW|dhcpcd:REBIND|dhcpcd:REBOOT)
    resolv "\$new_domain_name_servers" "\$new_domain_name" ;;   # dhcpcd configures the rest
  dhcpcd:RELEASE|dhcpcd:EXPIRE|dhcpcd:STOP|dhcpcd:NAK)
    rm -f \$D.resolv ;;
esac
exit 0
EOF
  chmod 0755 "$f"
}
# ev <client> <reason regex> <var>: the variable in the last event whose reason matches.
ev() {
  awk -v re="^($2)\$" -v var="$3=" '/^@@ /{inb = ($2 ~ re); next}
    inb && index($0, var) == 1 {val = substr($0, length(var) + 1)} END {print val}' "$WORK/$1.env" 2>/dev/null
}
ev_count() { grep -cE "^@@ ($2) " "$WORK/$1.env" 2>/dev/null || true; }
# Every DHCP packet of a capture, one line each:
#   time|type|eth.src|eth.dst|ip.src|ip.dst|ciaddr|yiaddr|server_id|bcast|lease|t1|t2|router|dns|domain|chaddr
rows() {
  tshark -r "$1" -Y dhcp -T fields -E separator='|' -E occurrence=f -e frame.time_epoch \
    -e dhcp.option.dhcp -e eth.src -e eth.dst -e ip.src -e ip.dst -e dhcp.ip.client -e dhcp.ip.your \
    -e dhcp.option.dhcp_server_id -e dhcp.flags.bc -e dhcp.option.ip_address_lease_time \
    -e dhcp.option.renewal_time_value -e dhcp.option.rebinding_time_value -e dhcp.option.router \
    -e dhcp.option.domain_name_server -e dhcp.option.domain_name -e dhcp.hw.mac_addr 2>/dev/null
}
# The rows of client $1's own exchanges (chaddr is its MAC: the bridge floods the others'
# broadcasts into every capture).
cap_rows() { sleep 0.3; rows "$WORK/$1.pcap" | awk -F'|' -v m="${MAC[$1]}" '$17 == m'; }
lease_field() {  # lease_field <ip> <column>: from `nfctl show leases <ip>` (2 mac, 3 state, 4 expires_in)
  nfctl show leases "$1" | awk -v a="$1" -v col="$2" '$1 == a { print $col }'
}
expiry_of() { local e; e=$(lease_field "$1" 4); [ -n "$e" ] && echo $(( $(date +%s) + e )); }
in_pool() { [[ "$1" =~ ^10\.10\.0\.([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -ge 150 ] && [ "${BASH_REMATCH[1]}" -le 199 ]; }
hex_u32() { [ -n "$1" ] && echo $((16#$1)); }
check() {  # check <description> <command...>
  local what=$1; shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}

start_client() {  # start_client <c> <lease-wish or "">: in the background; PID[c] is the client
  local c=$1 lt=$2 ns; ns=$(ns_of "$1")
  case $c in
    dhc)
      {
        echo "timeout 20; initial-interval 1; backoff-cutoff 2;"
        echo "request subnet-mask, broadcast-address, routers, domain-name, domain-name-servers,"
        echo "        dhcp-lease-time, dhcp-renewal-time, dhcp-rebinding-time;"
        [ -z "$lt" ] || echo "send dhcp-lease-time $lt;"
      } > "$WORK/dhclient.conf"
      # dhclient returns once bound (or failed) and leaves its daemon behind (pid file).
      "$IP" netns exec "$ns" dhclient -4 -v -1 -cf "$WORK/dhclient.conf" -pf "$WORK/dhc.pid" \
        -lf "$WORK/dhc.leases" -sf "$WORK/hook-dhc.sh" eth0 >> "$WORK/dhc.log" 2>&1 &
      ;;
    udh)
      "$IP" netns exec "$ns" udhcpc -f -R -n -t 10 -T 1 -i eth0 -s "$WORK/hook-udh.sh" -O 58 -O 59 \
        ${lt:+-x lease:$lt} >> "$WORK/udh.log" 2>&1 &
      PID[$c]=$!
      ;;
    dcd)
      cat > "$WORK/dhcpcd.conf" <<'EOF'
ipv4only
noarp
noipv4ll
nodelay
option domain_name_servers, domain_name, routers, subnet_mask
option dhcp_lease_time, dhcp_renewal_time, dhcp_rebinding_time
EOF
      # dhcpcd keeps its pid file, control socket and lease in /run/dhcpcd and
      # /var/lib/dhcpcd: give it private empty ones (a mount namespace of its own).
      "$IP" netns exec "$ns" unshare -m --propagation private sh -c \
        "mount -t tmpfs nfl-dh /run && mkdir -p /run/dhcpcd && mount -t tmpfs nfl-dh /var/lib/dhcpcd &&
         exec dhcpcd -4 -B -t 20 -f $WORK/dhcpcd.conf -c $WORK/hook-dcd.sh ${lt:+-l $lt} eth0" \
        >> "$WORK/dcd.log" 2>&1 &
      PID[$c]=$!
      ;;
  esac
}
bound_addr() {  # the address on the client's eth0, if any
  in_ns "$(ns_of "$1")" "$IP" -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1 | head -1
}
has_addr() { [ -n "$(bound_addr "$1")" ]; }

# ---- set-up -------------------------------------------------------------------------------
echo "== set-up: namespaces $(for c in "${CLIENTS[@]}"; do printf '%s ' "$(ns_of "$c")"; done)on nfl-br0; nf at $NF_MAC"
awk '{print} /lease_time = 3600;/ && !done {print "      min_lease_time = 10;  # test_dhcp.sh: clients may ask for 20 s"; done = 1}' \
  "$LAB_CONF" > "$WORK/short.conf"
if out=$(nfctl reload "$WORK/short.conf" 2>&1); then ok "reloaded a copy of the lab config with min_lease_time = 10 for pool lan"
else bad "reload $WORK/short.conf: $out"; fi
for c in "${CLIENTS[@]}"; do
  make_ns "$(ns_of "$c")" "${MAC[$c]}" || { bad "cannot create namespace $(ns_of "$c")"; exit 1; }
  make_hook "$c"
  "$IP" netns exec "$(ns_of "$c")" tcpdump -i eth0 -n -U -s 0 -w "$WORK/$c.pcap" 'udp port 67 or udp port 68' \
    > /dev/null 2>&1 &
  TPID[$c]=$!
done
sleep 1  # tcpdump attached

# ---- 1. bind ------------------------------------------------------------------------------
echo "== 1. dhclient, udhcpc and dhcpcd bind (default lease)"
for c in "${CLIENTS[@]}"; do start_client "$c" ""; done
for c in "${CLIENTS[@]}"; do
  if wait_for 25 has_addr "$c" && wait_for 5 test -s "$WORK/$c.resolv"; then
    ADDR[$c]=$(bound_addr "$c")
  else
    bad "${NAME[$c]}: no address configured on eth0 within 25 s ($(tail -3 "$WORK/$c.log" | tr '\n' ' '))"
    ADDR[$c]=
  fi
done
[ -f "$WORK/dhc.pid" ] && PID[dhc]=$(cat "$WORK/dhc.pid")

for c in "${CLIENTS[@]}"; do
  n=${NAME[$c]} a=${ADDR[$c]} ns=$(ns_of "$c")
  [ -n "$a" ] || continue
  check "$n: bound $a, inside 10.10.0.150-199" in_pool "$a"
  pfx=$(in_ns "$ns" "$IP" -4 -o addr show dev eth0 | awk '{print $4}')
  check "$n: ip addr shows $pfx on eth0 (want $a/24)" test "$pfx" = "$a/24"
  rt=$(in_ns "$ns" "$IP" route show default | head -1)
  check "$n: default route '$rt' (via 10.10.0.1)" grep -q '^default via 10.10.0.1 dev eth0' <<<"$rt"
  res=$(tr '\n' ';' < "$WORK/$c.resolv")
  check "$n: resolv data '$res' (search lab.example; nameserver 10.10.0.1)" \
    test "$res" = "search lab.example;nameserver 10.10.0.1;"
  if in_ns "$ns" ping -n -c 2 -i 0.2 -W 2 10.10.0.1 >/dev/null 2>&1; then ok "$n: pings 10.10.0.1"
  else bad "$n: ping 10.10.0.1 failed"; fi
  if in_ns "$ns" ping -n -c 2 -i 0.2 -W 2 10.20.0.11 >/dev/null 2>&1; then ok "$n: pings 10.20.0.11 across nf (default route)"
  else bad "$n: ping 10.20.0.11 failed"; fi
  line=$(nfctl show leases "$a" | awk -v a="$a" '$1 == a')
  exp_in=$(awk '{print $4}' <<<"$line")
  check "$n: nfctl show leases $a: '$line' (bound to ${MAC[$c]}, ~3600 s left)" \
    test "$(awk '{print $2, $3}' <<<"$line")" = "${MAC[$c]} bound" -a "${exp_in:-0}" -ge 3500 -a "${exp_in:-0}" -le 3600
  # Options as the client saw them (its hook environment).
  case $c in
    dhc|dcd)
      env_opts="$(ev "$c" 'BOUND' new_routers) $(ev "$c" 'BOUND' new_domain_name_servers) $(ev "$c" 'BOUND' new_domain_name) $(ev "$c" 'BOUND' new_dhcp_lease_time) $(ev "$c" 'BOUND' new_dhcp_renewal_time) $(ev "$c" 'BOUND' new_dhcp_rebinding_time) $(ev "$c" 'BOUND' new_subnet_mask)" ;;
    udh)
      env_opts="$(ev udh bound router) $(ev udh bound dns) $(ev udh bound domain) $(ev udh bound lease) $(hex_u32 "$(ev udh bound opt58)") $(hex_u32 "$(ev udh bound opt59)") $(ev udh bound subnet)" ;;
  esac
  check "$n: options in its hook env: router dns domain lease T1 T2 mask = $env_opts" \
    test "$env_opts" = "10.10.0.1 10.10.0.1 lab.example 3600 1800 3150 255.255.255.0"
  # And on the wire: the ACK that bound it.
  ack=$(cap_rows "$c" | awk -F'|' -v a="$a" '$2 == 5 && $8 == a' | tail -1)
  wire=$(awk -F'|' '{print $14, $15, $16, $11, $12, $13, $9}' <<<"$ack")
  check "$n: captured ACK: router dns domain lease T1 T2 server-id = $wire" \
    test "$wire" = "10.10.0.1 10.10.0.1 lab.example 3600 1800 3150 10.10.0.1"
done

# ---- 2. release ---------------------------------------------------------------------------
echo "== 2. release"
if [ -n "${ADDR[dhc]}" ]; then
  in_ns "$(ns_of dhc)" dhclient -4 -r -cf "$WORK/dhclient.conf" -pf "$WORK/dhc.pid" -lf "$WORK/dhc.leases" \
    -sf "$WORK/hook-dhc.sh" eth0 >> "$WORK/dhc.log" 2>&1
fi
[ -n "${PID[udh]:-}" ] && kill -TERM "${PID[udh]}" 2>/dev/null   # -R: release on exit
[ -n "${PID[dcd]:-}" ] && kill -ALRM "${PID[dcd]}" 2>/dev/null   # dhcpcd: release and exit
for c in "${CLIENTS[@]}"; do
  [ -n "${PID[$c]:-}" ] && { wait_for 5 bash -c "! kill -0 ${PID[$c]}" || kill -KILL "${PID[$c]}" 2>/dev/null; }
  unset "PID[$c]"
done
for c in "${CLIENTS[@]}"; do
  a=${ADDR[$c]}
  [ -n "$a" ] || continue
  wait_for 3 test "$(lease_field "$a" 3)" = released
  st=$(nfctl show leases "$a" | awk -v a="$a" '$1 == a')
  check "${NAME[$c]}: after its RELEASE, nfctl show leases $a: '$st'" test "$(awk '{print $3}' <<<"$st")" = released
done
rm -f "$WORK/dhc.leases" "$WORK/dhc.pid"  # next dhclient starts with a DISCOVER, not INIT-REBOOT

# ---- 3. bind again with a 20 s lease; renew at T1 ------------------------------------------
echo "== 3. bind again (asking for a 20 s lease): same address; renew by unicast at T1 (10 s)"
T_REBIND=$(date +%s.%N)
for c in "${CLIENTS[@]}"; do start_client "$c" 20; done
declare -A E1=() A2=()
for c in "${CLIENTS[@]}"; do
  A2[$c]=
  if wait_for 25 has_addr "$c"; then A2[$c]=$(bound_addr "$c"); E1[$c]=$(expiry_of "${A2[$c]}"); fi
done
[ -f "$WORK/dhc.pid" ] && PID[dhc]=$(cat "$WORK/dhc.pid")
for c in "${CLIENTS[@]}"; do
  n=${NAME[$c]} a=${ADDR[$c]} b=${A2[$c]}
  [ -n "$a" ] || continue
  r=$(cap_rows "$c" | awk -F'|' -v t="$T_REBIND" '$1 > t')
  # The capture is read while tcpdump still writes it: on a loaded machine, read it again
  # rather than fail on a file that has not caught up yet.
  for _ in 1 2 3; do
    awk -F'|' -v a="$a" '$2 == 5 && $8 == a' <<<"$r" | grep -q . && break
    sleep 1
    r=$(cap_rows "$c" | awk -F'|' -v t="$T_REBIND" '$1 > t')
  done
  disc=$(awk -F'|' '$2 == 1' <<<"$r" | wc -l)
  offer=$(awk -F'|' '$2 == 2 {print $8; exit}' <<<"$r")
  check "$n: after release, DISCOVER ($disc seen) -> OFFER $offer -> bound $b: the same address as before ($a)" \
    test "$disc" -ge 1 -a "$offer" = "$a" -a "$b" = "$a"
  ack=$(awk -F'|' -v a="$a" '$2 == 5 && $8 == a' <<<"$r" | head -1)
  check "$n: ACK for the 20 s wish: lease T1 T2 = $(awk -F'|' '{print $11, $12, $13}' <<<"$ack") (want 20 10 17)" \
    test "$(awk -F'|' '{print $11, $12, $13}' <<<"$ack")" = "20 10 17"
done
for c in "${CLIENTS[@]}"; do
  [ -n "${A2[$c]}" ] || continue
  case $c in dhc|dcd) re=RENEW ;; udh) re=renew ;; esac
  wait_for 20 test "$(ev_count "$c" "$re")" -ge 1
done
for c in "${CLIENTS[@]}"; do
  n=${NAME[$c]} b=${A2[$c]}
  [ -n "$b" ] || continue
  case $c in dhc|dcd) re=RENEW ;; udh) re=renew ;; esac
  r=$(cap_rows "$c" | awk -F'|' -v t="$T_REBIND" '$1 > t')
  bound_t=$(awk -F'|' -v b="$b" '$2 == 5 && $8 == b {print $1; exit}' <<<"$r")
  # time|type|eth.src|eth.dst|ip.src|ip.dst|ciaddr|yiaddr|server_id|...
  req=$(awk -F'|' -v t="$bound_t" '$1 > t && $2 == 3' <<<"$r" | head -1)
  IFS='|' read -r rt _ _ r_edst r_src r_dst r_ci _ r_sid _ <<<"$req"
  after=$(awk -v a="${rt:-0}" -v b="${bound_t:-0}" 'BEGIN {printf "%.1f", a - b}')
  check "$n: renewed after ${after} s: REQUEST $r_src -> $r_dst, eth dst $r_edst, ciaddr $r_ci, server id '${r_sid}' (none)" \
    test -n "$req" -a "$r_src" = "$b" -a "$r_dst" = 10.10.0.1 -a "$r_edst" = "$NF_MAC" -a "$r_ci" = "$b" -a -z "$r_sid"
  if [ "$c" = udh ]; then
    echo "  [info] $n: busybox times its renewal from the lease time itself (it ignores option 58)"
  else
    check "$n: the renewal came at T1 (10 s from the ACK, +-3 s): after ${after} s" \
      awk -v x="$after" 'BEGIN {exit !(x >= 7 && x <= 13)}'
  fi
  ack=$(awk -F'|' -v t="${rt:-0}" -v b="$b" '$1 >= t && $2 == 5 && $8 == b' <<<"$r" | head -1)
  IFS='|' read -r _ _ _ k_edst _ k_dst k_ci _ _ _ k_lt _ <<<"$ack"
  check "$n: renewal ACK unicast to $k_dst (eth $k_edst), ciaddr $k_ci, lease $k_lt" \
    test -n "$ack" -a "$k_dst" = "$b" -a "$k_edst" = "${MAC[$c]}" -a "$k_ci" = "$b" -a "$k_lt" = 20
  check "$n: the client ran its $re hook ($(ev_count "$c" "$re") time(s))" test "$(ev_count "$c" "$re")" -ge 1
  e2=$(expiry_of "$b")
  check "$n: lease expiry in nf moved by $(( ${e2:-0} - ${E1[$c]:-0} )) s with the renewal (was $(( ${E1[$c]:-0} - START )) s, now $(( ${e2:-0} - START )) s after the start)" \
    test -n "$e2" -a "$(( ${e2:-0} - ${E1[$c]:-0} ))" -ge 5
done
# Done with the clients: they release.
if [ -n "${PID[dhc]:-}" ]; then
  in_ns "$(ns_of dhc)" dhclient -4 -r -cf "$WORK/dhclient.conf" -pf "$WORK/dhc.pid" -lf "$WORK/dhc.leases" \
    -sf "$WORK/hook-dhc.sh" eth0 >> "$WORK/dhc.log" 2>&1
  unset "PID[dhc]"
fi
[ -n "${PID[udh]:-}" ] && kill -TERM "${PID[udh]}" 2>/dev/null
[ -n "${PID[dcd]:-}" ] && kill -ALRM "${PID[dcd]}" 2>/dev/null
for c in udh dcd; do
  [ -n "${PID[$c]:-}" ] && { wait_for 5 bash -c "! kill -0 ${PID[$c]}" || kill -KILL "${PID[$c]}" 2>/dev/null; unset "PID[$c]"; }
done

# ---- 4. perfdhcp as a relay from nfl-client -------------------------------------------------
acks() { nfctl show dhcp | awk '$1 == "sent:" { for (i = 1; i < NF; i++) if ($i == "ack") print $(i + 1) }'; }
perf_check() {  # perf_check <label> <output file> <acks before>
  local label=$1 f=$2 a0=$3 a1 rate do_s do_r ra_s ra_r
  a1=$(acks)
  rate=$(awk '/^Rate:/ {print $2; exit}' "$f")
  read -r do_s do_r ra_s ra_r < <(awk '
    /Statistics for: DISCOVER-OFFER/ {s = 1} /Statistics for: REQUEST-ACK/ {s = 2}
    /^sent packets:/ {sent[s] = $3} /^received packets:/ {rcvd[s] = $3}
    END {print sent[1] + 0, rcvd[1] + 0, sent[2] + 0, rcvd[2] + 0}' "$f")
  echo "  $label: $(grep -m1 '^Running:' "$f")"
  echo "  $label: rate $rate exchanges/s; DISCOVER-OFFER $do_r/$do_s, REQUEST-ACK $ra_r/$ra_s; nf ACKs $a0 -> $a1"
  local lost=$(( do_s - do_r + ra_s - ra_r )) total=$(( do_s + ra_s ))
  check "$label: $total requests, $lost unanswered (< 1%)" test "$do_s" -ge 100 -a $(( lost * 100 )) -lt "$total"
  check "$label: ACKs sent by nf grew by $(( a1 - a0 )) (>= $ra_r that perfdhcp received)" test $(( a1 - a0 )) -ge "$ra_r" -a "$ra_r" -gt 0
}
echo "== 4. perfdhcp as a relay from nfl-client (giaddr 10.10.0.100)"
a0=$(acks)
in_ns nfl-client timeout 30 perfdhcp -4 -l eth0 -r 200 -R 1000 -p 5 10.10.0.1 > "$WORK/perf-relay.txt" 2>&1
perf_check "perfdhcp relay" "$WORK/perf-relay.txt" "$a0"

echo "== 5. perfdhcp broadcasting with -B from $PD_NS (10.10.0.101, inside the relay prefix)"
make_ns "$PD_NS" "$PD_MAC" 10.10.0.101/24 || bad "cannot create namespace $PD_NS"
"$IP" netns exec "$PD_NS" tcpdump -i eth0 -n -U -s 0 -c 20 -w "$WORK/pd.pcap" 'udp port 67' > /dev/null 2>&1 &
TPID[pd]=$!
sleep 1
a0=$(acks)
in_ns "$PD_NS" timeout 30 perfdhcp -4 -l eth0 -B -r 100 -R 500 -p 3 > "$WORK/perf-direct.txt" 2>&1
perf_check "perfdhcp -B broadcast" "$WORK/perf-direct.txt" "$a0"
kill -INT "${TPID[pd]}" 2>/dev/null; wait "${TPID[pd]}" 2>/dev/null; unset "TPID[pd]"
pd=$(rows "$WORK/pd.pcap")
bc_disc=$(awk -F'|' '$2 == 1 && $4 == "ff:ff:ff:ff:ff:ff" && $6 == "255.255.255.255"' <<<"$pd" | wc -l)
all_disc=$(awk -F'|' '$2 == 1' <<<"$pd" | wc -l)
offers=$(awk -F'|' -v m="$PD_MAC" '$2 == 2 && $6 == "10.10.0.101" && $4 == m' <<<"$pd" | wc -l)
check "perfdhcp -B: $bc_disc/$all_disc captured DISCOVERs were broadcast (ff:ff:ff:ff:ff:ff, 255.255.255.255); $offers OFFERs came to giaddr 10.10.0.101:67" \
  test "$all_disc" -ge 1 -a "$bc_disc" = "$all_disc" -a "$offers" -ge 1

echo
echo "test_dhcp: $PASS passed, $FAIL failed ($(( $(date +%s) - START )) s)"
for f in "${FAILED[@]}"; do echo "  FAILED: $f"; done
[ "$FAIL" = 0 ]
