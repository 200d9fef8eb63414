# shellcheck shell=bash disable=SC2034  # (sourced: the variables it sets are the tests')
# Shared by the shell lab tests (sourced): result counting and an nfctl that cannot hang.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)  # tests/lab
T_START=$(date +%s%N)
# The lab's fixed names (tests/lab/lab): the client namespace, its address, the run directory.
CLIENT=(ip netns exec nfl-client)
CLIENT_ADDR=10.10.0.100
RUN=/run/nf/lab
PASS=0
FAIL=0
FAILED=()
NFCTL=$(command -v nfctl || echo /usr/local/bin/nfctl)
nfctl() { timeout 20 "$NFCTL" "$@"; }  # never hang a test if nf stops answering
# summary <test name>: the last line of a test (its status: fails when any check did).
summary() {
  local f
  echo
  echo "$1: $PASS passed, $FAIL failed ($(( ($(date +%s%N) - T_START) / 1000000 )) ms)"
  for f in "${FAILED[@]}"; do echo "  failed: $f"; done
  [ "$FAIL" = 0 ]
}
ok()  { PASS=$((PASS + 1)); echo "  [PASS] $*"; }
bad() { FAIL=$((FAIL + 1)); FAILED+=("$*"); echo "  [FAIL] $*"; }

# ---- the lab's HTTP servers in nfl-srv1..3 (tests/lab/lab starts them; on every address: the
# servers' own and the DSR VIPs on lo) ----------------------------------------------------------
http_pids() {  # the HTTP server(s) running in nfl-srv<i>
  local p
  for p in $(ip netns pids "nfl-srv$1" 2>/dev/null); do
    tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q 'http.server 80' && echo "$p"
  done
}
stop_http() {
  local p
  for p in $(http_pids "$1"); do kill -TERM "$p" 2>/dev/null; done
  for _ in $(seq 50); do [ -z "$(http_pids "$1")" ] && return 0; sleep 0.1; done
  for p in $(http_pids "$1"); do kill -KILL "$p" 2>/dev/null; done
  sleep 0.2
}
start_http() {  # as tests/lab/lab (lab_servers) does, without our other open descriptors
  local i=$1
  [ -n "$(http_pids "$i")" ] && return 0
  (
    for fd in /proc/$BASHPID/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null
    ip netns exec "nfl-srv$i" setsid /usr/bin/python3 -m http.server 80 --bind 0.0.0.0 \
      --directory "$RUN/www/srv$i" >"$RUN/http-srv$i.log" 2>&1 < /dev/null &
  )
  for _ in $(seq 50); do
    ip netns exec "nfl-srv$i" bash -c "exec 3<>/dev/tcp/10.20.0.1$i/80" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "WARNING: the HTTP server in nfl-srv$i does not answer" >&2
}
restore_http() {  # every server running again (tests trap this on exit)
  local i
  for i in 1 2 3; do start_http "$i"; done
}
# poll <seconds> <command...>: true as soon as the command is; WAITED = the time it took (ms).
poll() {
  local limit=$1 start; start=$(date +%s%N); shift
  while :; do
    if "$@"; then WAITED=$(( ($(date +%s%N) - start) / 1000000 )); return 0; fi
    [ $(( ($(date +%s%N) - start) / 1000000000 )) -ge "$limit" ] && break
    sleep 0.25
  done
  WAITED=$(( ($(date +%s%N) - start) / 1000000 ))
  return 1
}

# ---- preconditions ---------------------------------------------------------------------------
nf_answers() { nfctl ping >/dev/null 2>&1; }
# need_lab [www]: root, and nf answering within 10 s (it may be starting); with "www", the
# lab's web roots too. Exits the test otherwise: nothing it checks could mean anything.
need_lab() {
  [ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
  poll 10 nf_answers || { echo "nf does not answer: is the lab up?" >&2; exit 1; }
  if [ "${1:-}" = www ] && [ ! -d "$RUN/www/srv1" ]; then
    echo "$RUN/www missing: is the lab up?" >&2
    exit 1
  fi
}

# ---- what the lb stage reports ---------------------------------------------------------------
# Every real of every service in `nfctl show lb` is up.
all_lb_up() {
  local t u
  t=$(nfctl show lb | grep -cE '^  [0-9]+\.')
  u=$(nfctl show lb | grep -E '^  [0-9]+\.' | grep -c ' up ')
  [ "$t" -gt 0 ] && [ "$t" = "$u" ]
}
# "name count" for every lb.* drop reason of `nfctl show drops` (none listed: all zero).
lb_drops() { nfctl show drops | awk '$1 ~ /^lb\./ {print $1, $2}' | sort; }
# Sums over workers of the lb row of `nfctl show stages`: packets next reply punt drop handoff
# cycles (packets x cycles per packet).
lb_stage() {
  nfctl show stages | awk '$2 == "lb" {p += $4; n += $6; r += $8; u += $9; d += $10; h += $12; c += $4 * $5}
    END {printf "%d %d %d %d %d %d %.0f\n", p, n, r, u, d, h, c}'
}
# `nfctl show lb`'s per-worker counters, summed, by column name: "new_flows table_full floods".
lb_counters() {
  nfctl show lb 2>/dev/null | awk '$1 == "worker" {for (i = 1; i <= NF; i++) col[$i] = i; on = 1; next}
    on && $1 ~ /^[0-9]+$/ {n += $col["new_flows"]; t += $col["table_full"]; f += $col["floods"]}
    END {if (on) printf "%d %d %d\n", n, t, f}'
}
# How many workers run the lb stage.
lb_workers() { nfctl show stages | awk '$2 == "lb" {print $1}' | sort -u | wc -l; }

# ---- HTTP requests through a VIP and the servers' access logs ---------------------------------
# The caller sets TAG (unique to the run: it marks the run's requests in the access logs) and
# calls client_ports <seconds> once. Client ports: curl binds each request to its own port,
# from a block of 200 in 10000-29999, below the kernel's ephemeral range (32768-60999 in
# nfl-client), so no request meets wrk's ports; the block moves every <seconds> and comes back
# after 100 x <seconds>. A 4-tuple used again while nf still holds its closed flow would meet
# that flow and its old real instead of the scheduler.
client_ports() { PORT=$(( 10000 + ($(date +%s) / $1 % 100) * 200 )); }
# take <count>: the next <count> ports; FIRST is the first of them.
take() { FIRST=$PORT; PORT=$((PORT + $1)); }
# requests <vip> <count> <label>: one line per request: "<n> <body> <client port> <status>"
# (body ERR when curl failed). Request n asks for /?<tag>-<label>-<n> from port FIRST + n - 1.
requests() {
  ip netns exec nfl-client bash -c '
    for i in $(seq "$2"); do
      out=$(curl -s --max-time 5 --local-port $(($4 + i - 1)) -w "|%{local_port}|%{http_code}" \
              "http://$1/?$3-$i" 2>/dev/null) || out="ERR|0|000"
      printf "%s %s\n" "$i" "$(tr -d "\n" <<<"$out" | tr "|" " ")"
    done' _ "$1" "$2" "$TAG-$3" "$FIRST"
}
# log_lines <label>: the access-log lines of this run's requests with that label, each
# prefixed with the server that logged it: "<srvN> <client address> ... GET /?<tag>-<label>-<n> ..."
log_lines() {
  local i
  for i in 1 2 3; do
    grep -F "\"GET /?$TAG-$1-" "$RUN/http-srv$i.log" 2>/dev/null | sed "s/^/nfl-srv$i /"
  done
}
# Per-server counts "c1 c2 c3" of the server names in the first column.
count3() { awk '{c[$1]++} END {printf "%d %d %d\n", c["nfl-srv1"], c["nfl-srv2"], c["nfl-srv3"]}'; }
# agree <label> <requests output>: every successful request is in the log of the server whose
# body it got, once, and the logs hold no other request of that label. Prints mismatches.
agree() {
  local label=$1 res=$2
  local logs; logs=$(log_lines "$label" | awk '{ match($0, /GET \/\?[^ ]*/);
      q = substr($0, RSTART + 6, RLENGTH - 6); n = q; sub(/.*-/, "", n); print n, $1 }' | sort -n)
  local want; want=$(awk '$4 == 200 {print $1, $2}' <<<"$res" | sort -n)
  [ "$logs" = "$want" ] && return 0
  diff <(echo "$want") <(echo "$logs") | head -5 | sed 's/^/      /'
  return 1
}
# sources <label>: the distinct client addresses the servers logged for that label.
sources() { log_lines "$1" | awk '{print $2}' | sort -u | tr '\n' ' ' | sed 's/ $//'; }
# near <got> <want> <tolerance>
near() { [ $(($1 - $2)) -le "$3" ] && [ $(($2 - $1)) -le "$3" ]; }
# answered <label> <vip> <count> [note]: <count> requests from fresh ports (take); RES holds
# their lines, C1 C2 C3 how many each server answered; passes when every one got 200 and a
# server's name.
answered() {
  local label=$1 vip=$2 n=$3 note=${4:+ ($4)} good
  take "$n"
  RES=$(requests "$vip" "$n" "$label")
  good=$(awk '$4 == 200 && $2 ~ /^nfl-srv[123]$/' <<<"$RES" | wc -l)
  read -r C1 C2 C3 <<<"$(awk '$4 == 200 {print $2}' <<<"$RES" | count3)"
  if [ "$good" = "$n" ]; then ok "$label: $n of $n requests to $vip answered 200$note"
  else bad "$label: $good of $n requests to $vip answered 200"; grep -v ' 200$' <<<"$RES" | head -3 | sed 's/^/      /'; fi
}
# logged_from <label> <client address>: the servers' logs agree with the answers (agree) and
# saw only that client address.
logged_from() {
  if agree "$1" "$RES" && [ "$(sources "$1")" = "$2" ]; then
    ok "$1: each request is in the access log of the server that answered it, from $2"
  else bad "$1: bodies and access logs disagree (client addresses '$(sources "$1")')"; fi
}
