#!/usr/bin/env bash
# Lab test: health checks drive the GSLB answers (config/lab.conf: check http80, interval 1 s,
# timeout 0.5 s, rise 2, fall 2).
#
#   tests/lab/test_dns_health.sh        (as root, with the lab up: tests/lab/lab up)
#
# Stops and restarts the lab's HTTP servers (python3 -m http.server in nfl-srv1..3):
#  1. srv2 stopped: within fall x interval (+ slack: polled for up to 8 s) www answers drop
#     10.20.0.12, `nfctl show health` has it DOWN with an error, `nfctl show dns` marks it
#     down, weighted never answers .12, backup stays 10.20.0.11.
#  2. srv2 restarted (exactly as tests/lab/lab starts it): within rise x interval it is back in
#     www and UP.
#  3. srv1 stopped: backup fails over to 10.20.0.12, www drops .11; then srv2 stopped too:
#     backup moves to 10.20.0.13.
#  4. srv3 stopped as well (all down): backup (all_down = servfail) answers SERVFAIL, www
#     (all_down = all) answers all three; the "all down" counter moves.
#  5. all restarted: www has all three again and backup is 10.20.0.11.
# The servers are always restarted on exit (trap), so later tests find them up.
# Prints a summary; exits non-zero on any failure. ~30 s.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lab/lib.sh
. "$HERE/lib.sh"

SERVER=10.10.0.1
CLIENT=(ip netns exec nfl-client)
RUN=/run/nf/lab
WAIT=8   # seconds to wait for a transition that should take interval x rise/fall (2 s)

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
for _ in $(seq 40); do nfctl ping >/dev/null 2>&1 && break; sleep 0.25; done  # nf may be starting
nfctl ping >/dev/null 2>&1 || { echo "nf does not answer: is the lab up?" >&2; exit 1; }
[ -d "$RUN/www/srv1" ] || { echo "$RUN/www missing: is the lab up?" >&2; exit 1; }

dig_() { "${CLIENT[@]}" timeout 20 dig @$SERVER +norec +time=1 +tries=3 "$@" 2>&1; }
www()    { dig_ +short www.lab.example A | grep -E '^[0-9.]+$' | sort | tr '\n' ' ' | sed 's/ $//'; }
backup() { dig_ +short backup.lab.example A | grep -E '^[0-9.]+$' | tr '\n' ' ' | sed 's/ $//'; }
status_of() { grep -oE 'status: [A-Z]+' <<<"$1" | head -1 | awk '{print $2}'; }
# Rows: target (the GSLB names sharing the probe, comma-separated), address, check, state, ...
health_row() { nfctl show health | awk -v a="10.20.0.1$1" '$1 ~ /(^|,)www\.lab\.example\.(,|$)/ && $2 == a'; }

trap restore_http EXIT
trap 'exit 130' INT TERM

www_is() { [ "$(www)" = "$1" ]; }
backup_is() { [ "$(backup)" = "$1" ]; }
state_is() { [[ "$(health_row "$1")" == *" $2 "* ]]; }
all_up() { [ "$(nfctl show health | awk '$1 ~ /(^|,)www\.lab\.example\.(,|$)/' | grep -c ' UP ')" = 3 ]; }

# ---- start from a healthy lab ------------------------------------------------------------------
restore_http
if poll 10 all_up && www_is "10.20.0.11 10.20.0.12 10.20.0.13"; then
  ok "start: the three HTTP servers are UP and in www"
else
  bad "start: not all servers up"; nfctl show health | sed 's/^/      /'
fi

# ---- 1. srv2 down ----------------------------------------------------------------------------
stop_http 2
if [ -z "$(http_pids 2)" ]; then ok "stopped the HTTP server in nfl-srv2"; else bad "could not stop nfl-srv2's server"; fi
if poll $WAIT www_is "10.20.0.11 10.20.0.13"; then
  ok "www drops 10.20.0.12 after ${WAITED} ms (fall 2 x 1 s): $(www)"
else
  bad "www still '$(www)' ${WAITED} ms after srv2 stopped"
fi
if poll 4 state_is 2 DOWN; then
  row=$(health_row 2 | sed -E 's/[[:space:]]+[^[:space:]]+$//')  # without the history column
  if ! [[ "$row" =~ [[:space:]]-$ ]]; then ok "nfctl show health: 10.20.0.12 DOWN, with an error: $row"
  else bad "nfctl show health: 10.20.0.12 DOWN but no error: $(health_row 2)"; fi
else
  bad "nfctl show health: 10.20.0.12 not DOWN: $(health_row 2)"
fi
if nfctl show dns | grep -qiE '^ +10\.20\.0\.12 .* down \(check http80'; then ok "nfctl show dns marks 10.20.0.12 down"
else bad "nfctl show dns does not mark 10.20.0.12 down"; nfctl show dns | sed 's/^/      /'; fi
seen=$("${CLIENT[@]}" bash -c 'for i in $(seq 30); do dig @10.10.0.1 +norec +time=1 +tries=3 +short weighted.lab.example A; done' | sort | uniq -c | tr -s ' \n' ' ')
if [[ "$seen" != *10.20.0.12* ]] && [[ "$seen" == *10.20.0.13* ]]; then ok "weighted: 30 answers without 10.20.0.12 ($seen)"
else bad "weighted with srv2 down: $seen"; fi
if backup_is 10.20.0.11; then ok "backup still 10.20.0.11"; else bad "backup '$(backup)', want 10.20.0.11"; fi

# ---- 2. srv2 back ------------------------------------------------------------------------------
start_http 2
if [ -n "$(http_pids 2)" ]; then ok "restarted the HTTP server in nfl-srv2"; else bad "could not restart nfl-srv2's server"; fi
if poll $WAIT www_is "10.20.0.11 10.20.0.12 10.20.0.13"; then
  ok "www has 10.20.0.12 again after ${WAITED} ms (rise 2 x 1 s)"
else
  bad "www still '$(www)' ${WAITED} ms after srv2 restarted"
fi
if poll 4 state_is 2 UP; then ok "nfctl show health: 10.20.0.12 UP"; else bad "10.20.0.12 not UP: $(health_row 2)"; fi

# ---- 3. failover ---------------------------------------------------------------------------------
stop_http 1
if poll $WAIT backup_is 10.20.0.12; then ok "srv1 stopped: backup fails over to 10.20.0.12 after ${WAITED} ms"
else bad "srv1 stopped: backup '$(backup)' after ${WAITED} ms, want 10.20.0.12"; fi
if www_is "10.20.0.12 10.20.0.13"; then ok "srv1 stopped: www is 10.20.0.12 10.20.0.13"
else bad "srv1 stopped: www '$(www)'"; fi
stop_http 2
if poll $WAIT backup_is 10.20.0.13; then ok "srv1 and srv2 stopped: backup moves to 10.20.0.13 after ${WAITED} ms"
else bad "srv1 and srv2 stopped: backup '$(backup)' after ${WAITED} ms, want 10.20.0.13"; fi
if www_is "10.20.0.13"; then ok "srv1 and srv2 stopped: www is 10.20.0.13 alone"; else bad "www '$(www)', want 10.20.0.13"; fi

# ---- 4. all down -----------------------------------------------------------------------------------
alldown_before=$(nfctl show dns | grep -oE '\(all down [0-9]+\)' | grep -oE '[0-9]+')
stop_http 3
servfail() { [ "$(status_of "$(dig_ backup.lab.example A)")" = SERVFAIL ]; }
if poll $WAIT servfail; then ok "all stopped: backup (all_down = servfail) answers SERVFAIL after ${WAITED} ms"
else bad "all stopped: backup still $(status_of "$(dig_ backup.lab.example A)") after ${WAITED} ms"; fi
if poll 4 state_is 3 DOWN && state_is 1 DOWN && state_is 2 DOWN; then ok "nfctl show health: all three DOWN"
else bad "not all DOWN"; nfctl show health | sed 's/^/      /'; fi
out=$(dig_ www.lab.example A)
if [ "$(status_of "$out")" = NOERROR ] && www_is "10.20.0.11 10.20.0.12 10.20.0.13"; then
  ok "all stopped: www (all_down = all) answers all three"
else bad "all stopped: www $(status_of "$out") '$(www)'"; fi
alldown_after=$(nfctl show dns | grep -oE '\(all down [0-9]+\)' | grep -oE '[0-9]+')
if [ -n "$alldown_before" ] && [ "${alldown_after:-0}" -gt "$alldown_before" ]; then
  ok "nfctl show dns: gslb all down $alldown_before -> $alldown_after"
else bad "nfctl show dns: gslb all down '$alldown_before' -> '$alldown_after'"; fi

# ---- 5. all back ---------------------------------------------------------------------------------
restore_http
if poll $WAIT all_up; then ok "all restarted: nfctl show health has all three UP after ${WAITED} ms"
else bad "not all UP"; nfctl show health | sed 's/^/      /'; fi
if poll 4 backup_is 10.20.0.11; then ok "all restarted: backup is 10.20.0.11 again"
else bad "all restarted: backup '$(backup)'"; fi
if www_is "10.20.0.11 10.20.0.12 10.20.0.13"; then ok "all restarted: www has all three"
else bad "all restarted: www '$(www)'"; fi

echo
echo "test_dns_health: $PASS passed, $FAIL failed"
for f in "${FAILED[@]}"; do echo "  failed: $f"; done
[ "$FAIL" = 0 ]
