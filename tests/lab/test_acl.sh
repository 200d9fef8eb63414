#!/usr/bin/env bash
# Lab test: the acl and acl_out stages (config group `acl`) with real traffic from nfl-client.
#
#   tests/lab/test_acl.sh        (as root, with the lab up: tests/lab/lab up)
#
# The lab's configuration has no ACL: the test restarts nf on a copy of the running
# configuration with "acl" after "input" and "acl_out" before "ip4_forward" in the pipeline
# (the pipeline cannot change by reload), changes the sets by reload, and restarts nf on its
# built-in configuration at the end (also on failure). Packets are counted exactly: scapy in
# nfl-client sends a known number of TCP SYNs (no retransmissions, unlike curl), and nothing
# else in the lab sends TCP port 80 from lan to srv2/srv3 while the test runs.
#  0. Both stages are in `nfctl show stages`; `nfctl show acl` lists the two sets.
#  1. in set on "lan", rule "deny-srv3-web" (deny tcp to 10.20.0.13 port 80): curl from
#     nfl-client to srv1 and srv2 answers, curl to srv3 fails; ping to srv3 still answers (the
#     rule has a port); 20 SYNs to srv3:80 raise the rule's count and acl.acl_deny by exactly
#     20; 20 SYNs to srv1:80 (from 10.10.0.99) raise the default's count by exactly 20 and the
#     rule's by 0.
#  2. out set on "srv", permit before deny: rule 1 permits 10.10.0.96/28 to srv2:80, rule 2
#     denies everyone else to srv2:80. 15 SYNs from 10.10.0.99 count on rule 1 only; 15 SYNs
#     from 10.10.0.120 count on rule 2 only (acl_out.acl_deny + 15). (Scapy's SYNs come from
#     unused addresses: the client's kernel would answer srv2's SYN-ACKs with RSTs, which the
#     out set counts too; nf's ARP for .99 and .120 goes unanswered.)
#  3. Reload with the two srv rules swapped (deny first): curl to srv2 now fails and 15 SYNs
#     from 10.10.0.99 count on the deny rule. The unchanged lan set kept its counters (same
#     numbers as before the reload, same "since generation"); the changed srv set starts at 0.
#  4. A reload with an invalid rule is rejected and changes nothing: counters and verdicts stay.
#  5. The health checks (nf's own traffic to the servers' port 80) stayed up throughout: the
#     out set does not filter what nf originates.
# Prints a summary; exits non-zero on any failure. ~40 s (two nf restarts).
# shellcheck source=tests/lab/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"  # also: set -uo pipefail, HERE, T_START

CLIENT=(ip netns exec nfl-client)
RESTARTED=0

need_lab
WORK=$(mktemp -d /tmp/nf-test-acl.XXXXXX)

restart_nf() {  # [config]: nf must not inherit our descriptors (a held lock, a pipe)
  (
    for fd in /proc/$BASHPID/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null
    if [ -n "${1:-}" ]; then exec env NF_LAB_CONFIG="$1" "$HERE/lab" restart-nf; fi
    exec env -u NF_LAB_CONFIG "$HERE/lab" restart-nf
  ) > "$WORK/restart.log" 2>&1
}
cleanup() {
  if [ "$RESTARTED" = 1 ]; then
    restart_nf || { echo "WARNING: tests/lab/lab restart-nf failed:" >&2; cat "$WORK/restart.log" >&2; }
  fi
  if [ -n "${NF_TEST_KEEP:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- what nf reports -------------------------------------------------------------------------
# acl_count <port> <in|out> <rule index|->: the matches `nfctl show acl` gives that row.
acl_count() {
  nfctl show acl | awk -v set="$1 $2" -v row="$3" '
    $1 == "set" {cur = $2 " " substr($3, 1, length($3) - 1); next}
    cur == set && $1 == row {print $3; found = 1}
    END {if (!found) print "none"}'
}
acl_since() {  # the generation the set's counters started at
  nfctl show acl | awk -v set="$1 $2" '$1 == "set" && $2 " " substr($3, 1, length($3) - 1) == set {
    print $NF}'
}
drop_count() {  # <stage.reason>: its `nfctl show drops` count (0 when not listed)
  nfctl show drops | awk -v r="$1" '$1 == r {print $2; f = 1} END {if (!f) print 0}'
}
# syns <count> <dst> [src]: exactly <count> TCP SYNs to <dst>:80 from nfl-client, each from its
# own source port, at 1 ms intervals (no retransmissions).
syns() {
  "${CLIENT[@]}" /usr/bin/python3 - "$@" <<'PY' 2>"$WORK/scapy.err"
import sys
from scapy.all import IP, TCP, conf, send
conf.verb = 0
n, dst = int(sys.argv[1]), sys.argv[2]
src = sys.argv[3] if len(sys.argv) > 3 else None
ip = IP(dst=dst, src=src) if src else IP(dst=dst)
send([ip / TCP(sport=30000 + i, dport=80, flags="S", seq=1000 + i) for i in range(n)],
     inter=0.001)
PY
}
curl_() { "${CLIENT[@]}" curl -s --max-time "${2:-3}" "http://$1/" 2>/dev/null; }
# delta <name> <before> <after> <want>
delta() {
  if [ "$3" != none ] && [ "$2" != none ] && [ $(($3 - $2)) = "$4" ]; then
    ok "$1: +$4"
  else
    bad "$1: expected +$4, got $2 -> $3"
  fi
}

# ---- configurations ---------------------------------------------------------------------------
nfctl show config > "$WORK/base.conf"
grep -q '^pipeline = \[ "input", ' "$WORK/base.conf" || { echo "unexpected pipeline line" >&2; exit 1; }
grep -q '^acl = ' "$WORK/base.conf" && { echo "the running configuration has an acl group" >&2; exit 1; }
sed -i -e 's/^pipeline = \[ "input", /pipeline = [ "input", "acl", /' \
       -e 's/"ip4_forward" \];/"acl_out", "ip4_forward" ];/' "$WORK/base.conf"
# make_conf <file> <srv out rules>
make_conf() {
  cp "$WORK/base.conf" "$1"
  cat >> "$1" <<EOF

acl = {
  sets = (
    { port = "lan";
      rules = (
        { action = "deny"; name = "deny-srv3-web"; dst = "10.20.0.13"; protocol = "tcp"; dport = 80; }
      ); },
    { port = "srv"; direction = "out";
      rules = (
$2
      ); }
  );
};
EOF
}
PERMIT='        { action = "permit"; name = "clients-srv2"; src = "10.10.0.96/28"; dst = "10.20.0.12"; protocol = "tcp"; dport = 80; }'
DENY='        { action = "deny"; name = "srv2-web"; dst = "10.20.0.12"; protocol = "tcp"; dport = 80; }'
make_conf "$WORK/a.conf" "$PERMIT,
$DENY"
make_conf "$WORK/b.conf" "$DENY,
$PERMIT"
make_conf "$WORK/bad.conf" "$DENY,
        { action = \"deny\"; protocol = \"tcp\"; dport = \"90-80\"; }"

# The installed nf (the one restart-nf starts) must know the acl stages.
if ! /usr/local/bin/nf --check "$WORK/a.conf" > "$WORK/check.out" 2>&1; then
  echo "the installed nf refuses the ACL configuration:" >&2; cat "$WORK/check.out" >&2; exit 1
fi

echo "== acl: restarting nf on $WORK/a.conf"
RESTARTED=1
if ! restart_nf "$WORK/a.conf"; then
  cat "$WORK/restart.log" >&2
  bad "nf did not start on the ACL configuration"
  exit 1
fi
poll 15 bash -c "ip netns exec nfl-client curl -s --max-time 1 http://10.20.0.11/ | grep -q nfl-srv1" ||
  bad "srv1 not reachable 15 s after the restart"

# ---- 0 ------------------------------------------------------------------------------------------
st=$(nfctl show stages | awk '{print $2}')
if grep -qx acl <<<"$st" && grep -qx acl_out <<<"$st"; then ok "show stages has acl and acl_out"
else bad "show stages lacks acl/acl_out: $(tr '\n' ' ' <<<"$st")"; fi
n=$(nfctl show acl | grep -c '^set ')
[ "$n" = 2 ] && ok "show acl lists 2 sets" || { bad "show acl lists $n sets"; nfctl show acl; }

# ---- 1 ------------------------------------------------------------------------------------------
echo "== 1. in set on lan: deny tcp to 10.20.0.13 port 80"
[ "$(curl_ 10.20.0.11)" = nfl-srv1 ] && ok "curl srv1 answers" || bad "curl srv1 failed"
[ "$(curl_ 10.20.0.12)" = nfl-srv2 ] && ok "curl srv2 answers (permitted by the out set)" ||
  bad "curl srv2 failed"
b_rule=$(acl_count lan in 1)
if out=$(curl_ 10.20.0.13 2); then bad "curl srv3 answered: $out"; else ok "curl srv3 blocked"; fi
[ "$(acl_count lan in 1)" -gt "$b_rule" ] 2>/dev/null && ok "the blocked curl counted on deny-srv3-web" ||
  bad "the blocked curl was not counted ($b_rule -> $(acl_count lan in 1))"
"${CLIENT[@]}" ping -c 2 -i 0.2 -W 2 10.20.0.13 >/dev/null 2>&1 && ok "ping srv3 still answers" ||
  bad "ping srv3 failed"
b_rule=$(acl_count lan in 1); b_def=$(acl_count lan in -); b_drop=$(drop_count acl.acl_deny)
syns 20 10.20.0.13 || bad "scapy failed: $(cat "$WORK/scapy.err")"
sleep 0.5
delta "deny-srv3-web after 20 SYNs to srv3:80" "$b_rule" "$(acl_count lan in 1)" 20
delta "acl.acl_deny after 20 SYNs to srv3:80" "$b_drop" "$(drop_count acl.acl_deny)" 20
b_rule=$(acl_count lan in 1); b_def=$(acl_count lan in -)
syns 20 10.20.0.11 10.10.0.99 || bad "scapy failed: $(cat "$WORK/scapy.err")"
sleep 0.5
delta "deny-srv3-web after 20 SYNs to srv1:80" "$b_rule" "$(acl_count lan in 1)" 0
delta "lan's default (permit) after the same SYNs" "$b_def" "$(acl_count lan in -)" 20

# ---- 2 ------------------------------------------------------------------------------------------
echo "== 2. out set on srv: permit 10.10.0.96/28 -> srv2:80, then deny srv2:80"
b1=$(acl_count srv out 1); b2=$(acl_count srv out 2); b_drop=$(drop_count acl_out.acl_deny)
syns 15 10.20.0.12 10.10.0.99 || bad "scapy failed: $(cat "$WORK/scapy.err")"
sleep 0.5
delta "clients-srv2 (permit, rule 1) after 15 SYNs from 10.10.0.99" "$b1" "$(acl_count srv out 1)" 15
delta "srv2-web (deny, rule 2) after the same SYNs" "$b2" "$(acl_count srv out 2)" 0
b1=$(acl_count srv out 1); b2=$(acl_count srv out 2)
syns 15 10.20.0.12 10.10.0.120 || bad "scapy failed: $(cat "$WORK/scapy.err")"
sleep 0.5
delta "clients-srv2 after 15 SYNs from 10.10.0.120 (outside the /28)" "$b1" "$(acl_count srv out 1)" 0
delta "srv2-web after the same SYNs" "$b2" "$(acl_count srv out 2)" 15
delta "acl_out.acl_deny over part 2" "$b_drop" "$(drop_count acl_out.acl_deny)" 15

# ---- 3 ------------------------------------------------------------------------------------------
echo "== 3. reload with the srv rules swapped: deny before permit"
lan_rule=$(acl_count lan in 1); lan_since=$(acl_since lan in)
if nfctl reload "$WORK/b.conf" > "$WORK/reload.out" 2>&1; then ok "reload b.conf"
else bad "reload b.conf: $(cat "$WORK/reload.out")"; fi
[ "$(acl_count lan in 1)" = "$lan_rule" ] && [ "$(acl_since lan in)" = "$lan_since" ] &&
  ok "unchanged lan set kept its counters ($lan_rule, since generation $lan_since)" ||
  bad "lan set counters changed: $lan_rule -> $(acl_count lan in 1), since $lan_since -> $(acl_since lan in)"
[ "$(acl_count srv out 1)" = 0 ] && [ "$(acl_count srv out 2)" = 0 ] &&
  ok "changed srv set starts from zero" || { bad "srv set counters not reset"; nfctl show acl; }
if out=$(curl_ 10.20.0.12 2); then bad "curl srv2 answered after the swap: $out"
else ok "curl srv2 blocked by the deny now first"; fi
b1=$(acl_count srv out 1); b2=$(acl_count srv out 2)
syns 15 10.20.0.12 10.10.0.99 || bad "scapy failed: $(cat "$WORK/scapy.err")"
sleep 0.5
delta "srv2-web (now rule 1) after 15 SYNs from 10.10.0.99" "$b1" "$(acl_count srv out 1)" 15
delta "clients-srv2 (now rule 2)" "$b2" "$(acl_count srv out 2)" 0

# ---- 4 ------------------------------------------------------------------------------------------
echo "== 4. an invalid reload changes nothing"
b1=$(acl_count srv out 1); gen=$(acl_since srv out)
if nfctl reload "$WORK/bad.conf" > "$WORK/reload.out" 2>&1; then bad "bad.conf was accepted"
elif grep -q 'acl.sets\[1\].rules\[1\].dport' "$WORK/reload.out"; then ok "bad.conf rejected, naming acl.sets[1].rules[1].dport"
else bad "bad.conf rejected without naming the setting: $(cat "$WORK/reload.out")"; fi
[ "$(acl_count srv out 1)" = "$b1" ] && [ "$(acl_since srv out)" = "$gen" ] &&
  ok "counters unchanged by the rejected reload" || bad "counters changed by the rejected reload"
if out=$(curl_ 10.20.0.12 2); then bad "curl srv2 answered after the rejected reload"
else ok "srv2 still blocked"; fi

# ---- 5 ------------------------------------------------------------------------------------------
echo "== 5. nf's own traffic is not filtered"
ups=$(nfctl show health | grep -E '10\.20\.0\.1[23] ' | grep -c ' UP ')
[ "$ups" -ge 2 ] && ok "health checks of srv2/srv3 up ($ups rows) although their port 80 is denied to clients" ||
  { bad "health checks of srv2/srv3 not up"; nfctl show health | grep -E '10\.20\.0\.1[23] '; }

echo "== stage costs (nfctl show stages: worker, stage, calls, packets, cycles/packet)"
nfctl show stages | awk '$2 == "acl" || $2 == "acl_out" {print "  " $1, $2, $3, $4, $5}'

echo "== restoring nf's built-in configuration"
RESTARTED=0
restart_nf || bad "restart on the built-in configuration failed: $(cat "$WORK/restart.log")"
nfctl show stages | awk '{print $2}' | grep -qx acl && bad "acl stage still running after restore" ||
  ok "built-in configuration restored"

summary test_acl
