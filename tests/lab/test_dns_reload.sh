#!/usr/bin/env bash
# Lab test: zone reloads under query load lose no query.
#
#   tests/lab/test_dns_reload.sh        (as root, with the lab up: tests/lab/lab up)
#
# A copy of config/lab.conf and config/zones/ goes to a temporary directory (the zone path in
# the configuration is relative to the file's directory). While dnsperf in nfl-client keeps a
# steady 800 queries/s on 10.10.0.1 for 14 s (below the lab's RRL limit of 2000/s per /24):
#  - 5 times: the zone's serial is bumped and a record new<i> A 10.20.0.5<i> added, and
#    `nfctl reload <copy>` is accepted; right after, dig sees new<i> and the new serial;
#  - once: a zone with a bad IPv4 address in an A record is rejected, the message names the
#    zone file and the line; the previous zone keeps answering (serial and new5 unchanged);
#  then dnsperf reports "Queries lost: 0" and only NOERROR/NXDOMAIN answers.
# Afterwards nf goes back to its built-in configuration: `nfctl reload` cannot (it reloads the
# last file given), so the test restarts nf (tests/lab/lab restart-nf, also on failure) and
# waits until the GSLB members are up again.
# Prints a summary; exits non-zero on any failure. ~35 s.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
# shellcheck source=tests/lab/lib.sh
. "$HERE/lib.sh"

SERVER=10.10.0.1
CLIENT=(ip netns exec nfl-client)
SERIAL0=2026112101
RELOADED=0
PERF_PID=

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
for _ in $(seq 40); do nfctl ping >/dev/null 2>&1 && break; sleep 0.25; done  # nf may be starting
nfctl ping >/dev/null 2>&1 || { echo "nf does not answer: is the lab up?" >&2; exit 1; }
command -v dnsperf >/dev/null || { echo "dnsperf is not installed" >&2; exit 1; }
WORK=$(mktemp -d /tmp/nf-test-dnsreload.XXXXXX)

dig_() { "${CLIENT[@]}" timeout 20 dig @$SERVER +norec +time=2 +tries=3 "$@" 2>&1; }
serial() { dig_ +short lab.example SOA | awk '{print $3}'; }
members_up() { [ "$(nfctl show dns | grep -cE '^ +10\.20\.0\.1[123] .* up \(check')" = 15 ]; }

restart_nf() {  # back to the built-in configuration; nf must not inherit our descriptors
  (
    for fd in /proc/$BASHPID/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null
    exec env -u NF_LAB_CONFIG "$HERE/lab" restart-nf
  ) > "$WORK/restart.log" 2>&1
}
cleanup() {
  [ -n "$PERF_PID" ] && kill "$PERF_PID" 2>/dev/null
  if [ "$RELOADED" = 1 ]; then
    restart_nf || { echo "WARNING: tests/lab/lab restart-nf failed:" >&2; cat "$WORK/restart.log" >&2; }
    for _ in $(seq 60); do members_up && break; sleep 0.25; done
  fi
  if [ -n "${NF_TEST_KEEP:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cp "$TOP/config/lab.conf" "$WORK/lab.conf"
cp -r "$TOP/config/zones" "$WORK/zones"
# The lab configuration names the installed zone file; this copy uses its own.
sed -i 's|"/etc/nf/zones/|"zones/|' "$WORK/lab.conf"
ZONE=$WORK/zones/lab.example.zone
cp "$ZONE" "$WORK/zone.orig"
grep -q "$SERIAL0 ; serial" "$ZONE" || { echo "unexpected zone file (no '$SERIAL0 ; serial')" >&2; exit 1; }
if [ "$(serial)" = $SERIAL0 ]; then ok "running zone serial $SERIAL0"
else bad "running zone serial '$(serial)', want $SERIAL0 (built-in configuration?)"; fi

# ---- the load -------------------------------------------------------------------------------
{
  for n in srv1 srv2 srv3 mail ns1; do echo "$n.lab.example A"; done
  echo "lab.example SOA"; echo "lab.example MX"; echo "www.lab.example A"
  echo "weighted.lab.example A"; echo "_http._tcp.lab.example SRV"
  for i in 1 2 3 4 5; do echo "new$i.lab.example A"; done   # NXDOMAIN until added
} > "$WORK/queries.txt"
"${CLIENT[@]}" dnsperf -s $SERVER -d "$WORK/queries.txt" -l 14 -Q 800 -c 1 -t 5 \
  > "$WORK/dnsperf.txt" 2>&1 &
PERF_PID=$!
sleep 2

# ---- 5 reloads, each adding a record -----------------------------------------------------------
gen_before=$(nfctl show management | awk '$1 == "reloads" {print $2}')
for i in 1 2 3 4 5; do
  s=$((SERIAL0 + i))
  sed -i -E "s/^([[:space:]]*)[0-9]+ ; serial/\1$s ; serial/" "$ZONE"
  echo "new$i        IN A    10.20.0.5$i" >> "$ZONE"
  out=$(nfctl reload "$WORK/lab.conf" 2>&1); rc=$?
  RELOADED=1
  if [ $rc = 0 ] && [[ "$out" == reloaded* ]]; then ok "reload $i accepted: $out"
  else bad "reload $i: rc $rc: $out"; fi
  a=$(dig_ +short new$i.lab.example A)
  got_serial=$(serial)
  if [ "$a" = "10.20.0.5$i" ] && [ "$got_serial" = $s ]; then ok "new$i.lab.example A $a, serial $got_serial"
  else bad "after reload $i: new$i -> '$a', serial '$got_serial' (want 10.20.0.5$i, $s)"; fi
  sleep 1.2
done
nfctl show dns | grep -q "lab.example. .*serial $((SERIAL0 + 5)), " &&
  ok "nfctl show dns: lab.example. serial $((SERIAL0 + 5))" ||
  bad "nfctl show dns: $(nfctl show dns | grep '^  lab.example.')"
gen_after=$(nfctl show management | awk '$1 == "reloads" {print $2}')
if [ -n "$gen_before" ] && [ "$((gen_after - gen_before))" = 5 ]; then ok "nfctl show management: reloads +5"
else bad "nfctl show management: reloads $gen_before -> $gen_after"; fi

# ---- a broken zone is rejected --------------------------------------------------------------------
cp "$ZONE" "$WORK/zone.good"
sed -i -E "s/^([[:space:]]*)[0-9]+ ; serial/\1$((SERIAL0 + 6)) ; serial/" "$ZONE"
echo "broken      IN A    10.20.0.300" >> "$ZONE"
line=$(wc -l < "$ZONE")
out=$(nfctl reload "$WORK/lab.conf" 2>&1); rc=$?
if [ $rc != 0 ] && grep -q "lab.example.zone" <<<"$out" && grep -qE "(:$line\b|line $line\b)" <<<"$out"; then
  ok "a zone with 'A 10.20.0.300' is rejected naming the file and line $line: $(grep -m1 zone <<<"$out")"
else
  bad "broken zone reload: rc $rc, want failure naming lab.example.zone line $line"; echo "$out" | sed 's/^/      /'
fi
a=$(dig_ +short new5.lab.example A); got_serial=$(serial)
if [ "$a" = 10.20.0.55 ] && [ "$got_serial" = $((SERIAL0 + 5)) ]; then
  ok "the previous zone still answers (new5 $a, serial $got_serial)"
else bad "after the rejected reload: new5 '$a', serial '$got_serial'"; fi
out=$(dig_ broken.lab.example A)
if grep -q 'status: NXDOMAIN' <<<"$out"; then ok "broken.lab.example is NXDOMAIN (not loaded)"
else bad "broken.lab.example: $(grep -o 'status: [A-Z]*' <<<"$out")"; fi

# ---- dnsperf: nothing lost ----------------------------------------------------------------------
wait "$PERF_PID"; PERF_PID=
sent=$(awk '/Queries sent:/ {print $3}' "$WORK/dnsperf.txt")
done_=$(awk '/Queries completed:/ {print $3}' "$WORK/dnsperf.txt")
lost=$(awk '/Queries lost:/ {print $3}' "$WORK/dnsperf.txt")
codes=$(awk '/Response codes:/ {sub(/.*Response codes: */, ""); print}' "$WORK/dnsperf.txt")
if [ -n "$sent" ] && [ "$sent" -gt 5000 ] && [ "$lost" = 0 ] && [ "$sent" = "$done_" ]; then
  ok "dnsperf during the 6 reloads: $sent sent, $done_ completed, Queries lost: $lost"
else
  bad "dnsperf: sent '$sent' completed '$done_' lost '$lost'"; sed 's/^/      /' "$WORK/dnsperf.txt"
fi
if [ -n "$codes" ] && ! grep -qvE '^(NOERROR|NXDOMAIN) ' <<<"$(tr ',' '\n' <<<"$codes" | sed 's/^ *//')"; then
  ok "dnsperf response codes: $codes"
else bad "dnsperf response codes: '$codes'"; fi

# ---- back to the built-in configuration -----------------------------------------------------------
cp "$WORK/zone.orig" "$ZONE"
if restart_nf && nfctl ping >/dev/null 2>&1; then ok "nf restarted with its built-in configuration"
else bad "tests/lab/lab restart-nf failed"; sed 's/^/      /' "$WORK/restart.log"; fi
RELOADED=0
for _ in $(seq 60); do members_up && break; sleep 0.25; done
if members_up; then ok "GSLB members up again after the restart"; else bad "GSLB members not up after the restart"; fi
got_serial=$(serial); a=$(dig_ new1.lab.example A)
if [ "$got_serial" = $SERIAL0 ] && grep -q 'status: NXDOMAIN' <<<"$a"; then
  ok "built-in zone back: serial $SERIAL0, new1 is NXDOMAIN"
else bad "after the restart: serial '$got_serial', new1 $(grep -o 'status: [A-Z]*' <<<"$a")"; fi
first=$(nfctl show config | head -1)
if [[ "$first" == "# <built-in lab> "* ]]; then ok "nfctl show config: $first"
else bad "nfctl show config: '$first', want the built-in configuration"; fi

echo
echo "test_dns_reload: $PASS passed, $FAIL failed"
for f in "${FAILED[@]}"; do echo "  failed: $f"; done
[ "$FAIL" = 0 ]
