#!/usr/bin/env bash
# Lab test: no DHCPACK that reached the wire is forgotten when nf dies (kill -9), and a torn
# journal tail is cut at start without losing a lease.
#
#   tests/lab/test_dhcp_crash.sh        (as root, with the lab up: tests/lab/lab up)
#
# nf writes an ACK's lease record with write + fdatasync before the ACK may leave
# (nf/dhcp/service.h). Two rounds, each:
#   - tcpdump captures every frame on nfl-client's eth0 to a pcap;
#   - perfdhcp relays from nfl-client (giaddr 10.10.0.100: the relayed pool) at 300
#     exchanges/s for 8 s, 20000 simulated clients whose MACs start with a random base (so
#     that every lease it gets is new: the test checks that none was bound before);
#   - after 3 s, while ACKs are flowing, nf is killed with SIGKILL, and restarted with
#     `tests/lab/lab restart-nf` (perfdhcp keeps sending through the outage);
#   - round 2 only: before the restart, a partial record's worth of garbage (77 bytes, less
#     than one 128-byte record) is appended to the newest /var/lib/nf/lab/dhcp/journal.*; nf
#     must start, cut it and say so in `nfctl show dhcp` ("77 torn bytes cut");
#   - after the restart the workers hold at least as many bound leases as the journal lists
#     (`show dhcp` vs `show leases`);
#   - every DHCPACK in the capture (tshark: dhcp.option.dhcp == 5) must have its lease in
#     `nfctl show leases <yiaddr>`: bound, to the ACK's chaddr. After round 2 the ACKs of both
#     rounds are checked (the torn tail and the second crash lose nothing of round 1);
#   - no ACKed address was bound to another client before the round (no address given twice:
#     nf once aged its first 256 restored leases away at every start, because a worker's
#     first loop ran its stages with TSC 0, and handed those addresses out again).
# Prints the counts (ACKs on the wire, leases found, lost: must be 0). kill -9 tests the order
# "durable, then ACK" against a process crash; it cannot test the disk's own write cache.
# ~45 s. Leaves nf running with the lab configuration; removes its files.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"

JOURNAL=/var/lib/nf/lab/dhcp
PIDFILE=/run/nf/lab/nf.pid
WORK=$(mktemp -d /tmp/nf-test-dhcp-crash.XXXXXX)
RATE=300
SECS=8
KILL_AFTER=3
TORN=77
BGPIDS=()
START=$(date +%s)

nf_pid() { cat "$PIDFILE" 2>/dev/null; }
restart_nf() { env -u NF_LAB_CONFIG "$HERE/lab" restart-nf > "$WORK/restart.log" 2>&1; }
cleanup() {
  local p
  for p in "${BGPIDS[@]}"; do kill -INT "$p" 2>/dev/null; done
  sleep 0.3
  for p in "${BGPIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  if ! nfctl ping >/dev/null 2>&1; then
    echo "nf is not answering: restarting it" >&2
    restart_nf || cat "$WORK/restart.log" >&2
  fi
  if [ -n "${NF_TEST_KEEP:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
nfctl ping >/dev/null 2>&1 || { echo "nf does not answer: is the lab up?" >&2; exit 1; }
if ! kill -0 "$(nf_pid)" 2>/dev/null; then echo "no live nf pid in $PIDFILE: is the lab up?" >&2; exit 1; fi
[ -d "$JOURNAL" ] || { echo "no journal directory $JOURNAL" >&2; exit 1; }

acks_sent() { nfctl show dhcp 2>/dev/null | awk '$1 == "sent:" { for (i = 1; i < NF; i++) if ($i == "ack") print $(i + 1) }'; }

# check_acks <label> <kill time or -> <pcap...>: every ACK on the wire has its lease, bound to
# its chaddr. All of them are looked up in one `nfctl show leases` listing (with ~10^5 leases
# in the journal one `show leases <ip>` takes ~15 ms); those ACKed in the last second before
# the kill, the ones a crash could catch between sync and send, also one by one with
# `nfctl show leases <ip>`.
check_acks() {
  local label=$1 t_kill=$2; shift 2
  local f wire lost window=0 wlost=0 ip mac line st lmac
  : > "$WORK/acks.txt"
  for f in "$@"; do
    tshark -r "$f" -Y 'dhcp.option.dhcp == 5' -T fields -E separator=' ' -E occurrence=f \
      -e frame.time_epoch -e dhcp.ip.your -e dhcp.hw.mac_addr 2>/dev/null >> "$WORK/acks.txt"
  done
  # The last ACK for an address is what must hold (perfdhcp may repeat a client).
  awk '{t[$2] = $1; m[$2] = $3} END {for (a in m) print t[a], a, m[a]}' "$WORK/acks.txt" | sort -n > "$WORK/acks.uniq"
  nfctl show leases > "$WORK/leases.txt"
  awk 'NR == FNR {if ($3 == "bound") b[$1] = $2; next}
       {if (b[$2] != $3) print $2, $3, "->", ($2 in b) ? "bound to " b[$2] : "not bound"}' \
    "$WORK/leases.txt" "$WORK/acks.uniq" > "$WORK/lost.txt"
  wire=$(wc -l < "$WORK/acks.uniq")
  lost=$(wc -l < "$WORK/lost.txt")
  if [ "$t_kill" != - ]; then
    while read -r _ ip mac; do
      window=$((window + 1))
      line=$(nfctl show leases "$ip" | awk -v a="$ip" '$1 == a')
      read -r _ lmac st _ <<<"$line"
      if [ "$st" != bound ] || [ "$lmac" != "$mac" ]; then
        wlost=$((wlost + 1))
        echo "$ip $mac -> show leases $ip: ${line:-no lease}" >> "$WORK/lost.txt"
      fi
    done < <(awk -v k="$t_kill" '$1 >= k - 1 && $1 <= k' "$WORK/acks.uniq")
  fi
  echo "  $label: ACKs on the wire $(wc -l < "$WORK/acks.txt") ($wire addresses); leases found bound to the ACK's chaddr $((wire - lost)); lost $lost"
  [ "$t_kill" = - ] || echo "  $label: ACKed in the last second before the kill: $window, each checked with 'nfctl show leases <ip>': lost $wlost"
  if [ "$lost" = 0 ] && [ "$wlost" = 0 ] && [ "$wire" -gt 0 ]; then
    ok "$label: all $wire ACKed leases are bound after the crash (lost 0)"
  else
    bad "$label: $((lost + wlost)) of $wire ACKed leases missing after the crash: $(head -5 "$WORK/lost.txt" | tr '\n' ';')"
  fi
}

# round <n> <torn: 0|1>
round() {
  local n=$1 torn=$2 tpid ppid pid a0 a1 newest size0 size1 report
  local extra=""
  [ "$torn" = 1 ] && extra="; a torn journal tail of $TORN bytes before the restart"
  echo "== round $n: perfdhcp relay at $RATE/s for $SECS s from nfl-client; kill -9 nf after $KILL_AFTER s$extra"
  ip netns exec nfl-client tcpdump -i eth0 -n -U -s 0 -B 16384 -w "$WORK/round$n.pcap" > /dev/null 2> "$WORK/tcpdump$n.log" &
  tpid=$!; BGPIDS+=("$tpid")
  sleep 1
  a0=$(acks_sent)
  # Clients nobody has seen: a random MAC base per round (perfdhcp varies the last two octets).
  local base; base=$(printf '02:cc:%02x:%02x:00:00' $((RANDOM % 256)) $((RANDOM % 256)))
  nfctl show leases > "$WORK/before$n.txt"
  ip netns exec nfl-client timeout $((SECS + 30)) perfdhcp -4 -l eth0 -r $RATE -R 20000 -p $SECS \
    -b "mac=$base" 10.10.0.1 > "$WORK/perf$n.txt" 2>&1 &
  ppid=$!; BGPIDS+=("$ppid")
  sleep $KILL_AFTER
  a1=$(acks_sent)
  pid=$(nf_pid)
  kill -KILL "$pid"
  T_KILL=$(date +%s.%N)
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then bad "round $n: nf (pid $pid) survived SIGKILL"; return; fi
  echo "  killed nf (pid $pid) with SIGKILL; it had sent $((a1 - a0)) ACKs in this round by then"
  if [ "$((a1 - a0))" -gt 50 ]; then ok "round $n: nf was serving when killed ($((a1 - a0)) ACKs in $KILL_AFTER s)"
  else bad "round $n: nf was not serving when killed (ACKs $a0 -> $a1)"; fi
  if [ "$torn" = 1 ]; then
    newest=$(ls "$JOURNAL"/journal.* 2>/dev/null | sort | tail -1)
    size0=$(stat -c %s "$newest")
    { printf 'NFL1torn'; head -c $((TORN - 8)) /dev/urandom; } >> "$newest"
    size1=$(stat -c %s "$newest")
    echo "  appended $((size1 - size0)) garbage bytes to $newest ($size0 -> $size1 bytes; records are 128 bytes)"
  fi
  if restart_nf && nfctl ping >/dev/null 2>&1; then
    ok "round $n: nf restarted (pid $(nf_pid)) $(awk -v t="$T_KILL" -v n="$(date +%s.%N)" 'BEGIN {printf "%.1f", n - t}') s after the kill"
  else
    bad "round $n: nf did not restart: $(tail -5 "$WORK/restart.log" | tr '\n' ' ')"
    return
  fi
  report=$(nfctl show dhcp | grep -A3 '^recovery:')
  echo "  nfctl show dhcp after the restart:"; sed 's/^/    /' <<<"$report"
  if [ "$torn" = 1 ]; then
    local cut; cut=$(awk '/^recovery:/ { for (i = 1; i < NF; i++) if ($(i + 1) == "torn") print $i }' <<<"$report")
    if [ "$cut" = "$TORN" ] && grep -q "$(basename "$newest"): torn tail of $TORN bytes" <<<"$report"; then
      ok "round $n: recovery reports the torn tail: $cut torn bytes cut from $(basename "$newest")"
    else
      bad "round $n: recovery should report $TORN torn bytes cut from $(basename "$newest"): $report"
    fi
    if [ "$(stat -c %s "$newest")" = "$size0" ]; then ok "round $n: $(basename "$newest") cut back to $size0 bytes"
    else bad "round $n: $(basename "$newest") is $(stat -c %s "$newest") bytes, want $size0"; fi
    if awk '/^recovery:/ && / 0 damaged records skipped/ {f = 1} END {exit !f}' <<<"$report"; then
      ok "round $n: no record reported damaged (the garbage was only a tail)"
    else bad "round $n: damaged records reported: $report"; fi
  fi
  wait "$ppid" 2>/dev/null
  sleep 1  # the last replies
  # With the load over: what the workers hold must cover what the journal says is bound
  # (read in that order: a lease expiring in between only lowers the second number).
  local mem listed
  mem=$(nfctl show dhcp | awk '$1 == "leases:" && $2 == "bound" {sub(",", "", $3); print $3}')
  listed=$(nfctl show leases | awk '$3 == "bound"' | wc -l)
  if [ -n "$mem" ] && [ "$mem" -ge "$listed" ]; then
    ok "round $n: after recovery and the load the workers hold $mem bound leases, the journal lists $listed"
  else
    bad "round $n: after recovery and the load the workers hold ${mem:-?} bound leases but the journal lists $listed bound"
  fi
  kill -INT "$tpid" 2>/dev/null; wait "$tpid" 2>/dev/null
  local drops; drops=$(grep -o '[0-9]* packets dropped by kernel' "$WORK/tcpdump$n.log")
  echo "  tcpdump: $(grep -o '[0-9]* packets captured' "$WORK/tcpdump$n.log"), ${drops:-? dropped by kernel}"
  if [ "${drops%% *}" = 0 ]; then ok "round $n: the capture is complete (0 packets dropped by the kernel)"
  else bad "round $n: tcpdump lost packets ($drops): the check below could miss ACKs"; fi
  awk '/Statistics for: DISCOVER-OFFER/ {s = "DISCOVER-OFFER"} /Statistics for: REQUEST-ACK/ {s = "REQUEST-ACK"}
       /^sent packets:/ {sent = $3} /^received packets:/ {print "  perfdhcp " s ": sent " sent ", received " $3}' "$WORK/perf$n.txt"
  echo "  nf ACKs since the restart: $(acks_sent)"
  check_acks "round $n" "$T_KILL" "$WORK/round$n.pcap"
  # The clients are new, so every address they were ACKed must have been free before the
  # round: one that was bound to another client was given out twice. (This also makes sure
  # the check above is about leases this round created.)
  awk 'NR == FNR {if ($3 == "bound") b[$1] = $2; next} ($2 in b) {print $2, "ACKed to", $3, "but bound to", b[$2], "before"}' \
    "$WORK/before$n.txt" "$WORK/acks.uniq" > "$WORK/twice$n.txt"
  if [ ! -s "$WORK/twice$n.txt" ]; then
    ok "round $n: all $(wc -l < "$WORK/acks.uniq") ACKed addresses were free before the round (clients $base + random): none given twice"
  else
    bad "round $n: $(wc -l < "$WORK/twice$n.txt") ACKed addresses were bound to another client before the round: $(head -3 "$WORK/twice$n.txt" | tr '\n' ';')"
  fi
}

round 1 0
round 2 1
echo "== after both crashes: the ACKs of round 1 and 2 together"
check_acks "rounds 1+2" - "$WORK/round1.pcap" "$WORK/round2.pcap"

echo
echo "test_dhcp_crash: $PASS passed, $FAIL failed ($(( $(date +%s) - START )) s)"
for f in "${FAILED[@]}"; do echo "  FAILED: $f"; done
[ "$FAIL" = 0 ]
