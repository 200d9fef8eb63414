# Shared by the shell lab tests (sourced): result counting and an nfctl that cannot hang.
PASS=0
FAIL=0
FAILED=()
NFCTL=$(command -v nfctl || echo /usr/local/bin/nfctl)
nfctl() { timeout 20 "$NFCTL" "$@"; }  # never hang a test if nf stops answering
ok()  { PASS=$((PASS + 1)); echo "  [PASS] $*"; }
bad() { FAIL=$((FAIL + 1)); FAILED+=("$*"); echo "  [FAIL] $*"; }

# ---- the lab's HTTP servers in nfl-srv1..3 (tests/lab/lab starts them) ---------------------
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
    ip netns exec "nfl-srv$i" setsid /usr/bin/python3 -m http.server 80 --bind "10.20.0.1$i" \
      --directory "${RUN:-/run/nf/lab}/www/srv$i" >"${RUN:-/run/nf/lab}/http-srv$i.log" 2>&1 < /dev/null &
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
