#!/usr/bin/env bash
# Lab test: router NAT (config/lab.conf, group nat) between the inside networks and nfl-inet,
# the lab's "internet" (198.51.100.100 on port "wan", no route to 10/8).
#
#   tests/lab/test_nat.sh        (as root, with the lab up: tests/lab/lab up)
#
# Requests carry a query string unique to this run, which the HTTP access logs record with the
# client address the server saw.
#  0. The nat stage is in `nfctl show stages`; `nfctl show nat` lists both port forwards and
#     the PAT rule.
#  1. Port forward 198.51.100.1:8001 -> 10.20.0.11:80: curl from nfl-inet gets "nfl-srv1", and
#     srv1's access log has the request from 198.51.100.100 (a forward keeps the client's
#     address).
#  2. Port forward 198.51.100.1:20022 -> 10.20.0.11:22: a one-shot TCP listener started in
#     nfl-srv1 on port 22 sends a line unique to this run; nfl-inet reads it through 20022.
#  3. Dynamic PAT: curl from nfl-client to http://198.51.100.100/ gets "inet", and nfl-inet's
#     access log shows the client as 198.51.100.1 (translated).
#  4. `nfctl show nat` counted the sessions: new_static >= 2 and new_dyn >= 1 more than before.
#  5. ICMP: nfl-client pings 198.51.100.100 (echo through PAT by identifier); a UDP datagram
#     from nfl-client to 198.51.100.100:9 (nothing listens) gets nfl-inet's port unreachable
#     translated back, so the client's socket sees ECONNREFUSED.
#  6. Unsolicited: a connection from nfl-inet to 198.51.100.1:15000 (inside the PAT range,
#     no session) fails and nat.nat_no_session increases; nfl-inet still cannot reach
#     10.20.0.11 directly (no route: only NAT connects it).
#  7. No nat.* drop reason other than nat_no_session increased over the run.
# Prints a summary; exits non-zero on any failure. ~10 s.
# shellcheck source=tests/lab/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"  # also: set -uo pipefail, HERE, T_START

INET=(ip netns exec nfl-inet)
SRV1=(ip netns exec nfl-srv1)
EXT=198.51.100.1
INET_ADDR=198.51.100.100
TAG=natt$$x$(date +%s)

need_lab
ip netns list | grep -q '^nfl-inet' || { echo "no nfl-inet namespace: is the lab up?" >&2; exit 1; }

# "name count" for every nat.* drop reason of `nfctl show drops` (none listed: all zero).
nat_drops() { nfctl show drops | awk '$1 ~ /^nat\./ {print $1, $2}' | sort; }
nat_drop() { nfctl show drops | awk -v r="nat.$1" '$1 == r {print $2; f = 1} END {if (!f) print 0}'; }
# `nfctl show nat`'s per-worker counters, summed, by column name.
nat_counter() {
  nfctl show nat 2>/dev/null | awk -v c="$1" '$1 == "worker" {for (i = 1; i <= NF; i++) col[$i] = i; on = 1; next}
    on && $1 ~ /^[0-9]+$/ {n += $col[c]} END {print n + 0}'
}

# http_check <namespace> <url> <body> <log> <client>: curl from the namespace gets <body>, and
# the server's access log has the request (this run's query string) from <client>.
http_check() {
  local ns=$1 url=$2 want=$3 log=$4 client=$5 body
  body=$(ip netns exec "$ns" curl -s -m 5 "$url")
  if [ "$body" = "$want" ]; then ok "curl $url from $ns answered \"$want\""
  else bad "curl $url from $ns: '$body'"; fi
  local query=${url#*\?}
  if grep -q "^$client .*GET /?$query " "$log"; then ok "$(basename "$log" .log) saw $client"
  else bad "$log has no request $query from $client: $(grep -F "$query" "$log")"; fi
}

LISTENER_PID=
cleanup() { [ -n "$LISTENER_PID" ] && kill "$LISTENER_PID" 2>/dev/null; }
trap cleanup EXIT

DROPS0=$(nat_drops)
STATIC0=$(nat_counter new_static)
DYN0=$(nat_counter new_dyn)
NOSESS0=$(nat_drop nat_no_session)

echo "== 0. the stage and its configuration"
if nfctl show stages | awk '$2 == "nat"' | grep -q .; then ok "nat stage in the pipeline"
else bad "nat stage missing from show stages"; fi
SHOW=$(nfctl show nat)
if grep -q "forward tcp $EXT:8001 -> 10.20.0.11:80" <<<"$SHOW" &&
   grep -q "forward tcp $EXT:20022 -> 10.20.0.11:22" <<<"$SHOW" &&
   grep -q "^dynamic .* via port wan -> $EXT ports 10000-19999" <<<"$SHOW"; then
  ok "show nat lists both forwards and the PAT rule"
else
  bad "show nat: $SHOW"
fi

echo "== 1. port forward $EXT:8001 -> srv1:80 from nfl-inet"
http_check nfl-inet "http://$EXT:8001/?$TAG-fwd" nfl-srv1 "$RUN/http-srv1.log" "$INET_ADDR"

echo "== 2. port forward $EXT:20022 -> srv1:22"
LINE="hello-$TAG"
"${SRV1[@]}" /usr/bin/python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 22)); s.listen(1); s.settimeout(10)
c, _ = s.accept(); c.sendall((sys.argv[1] + "\n").encode()); c.close()' "$LINE" &
LISTENER_PID=$!
sleep 0.3
GOT=$("${INET[@]}" /usr/bin/python3 -c '
import socket
s = socket.create_connection(("198.51.100.1", 20022), timeout=5)
print(s.makefile().readline().strip())' 2>&1)
if [ "$GOT" = "$LINE" ]; then ok "nfl-inet read srv1's port 22 listener through $EXT:20022"
else bad "through $EXT:20022: '$GOT'"; fi
wait "$LISTENER_PID" 2>/dev/null
LISTENER_PID=

echo "== 3. dynamic PAT: nfl-client -> nfl-inet"
http_check nfl-client "http://$INET_ADDR/?$TAG-pat" inet "$RUN/http-inet.log" "$EXT"

echo "== 4. show nat counted the sessions"
STATIC1=$(nat_counter new_static)
DYN1=$(nat_counter new_dyn)
if [ $((STATIC1 - STATIC0)) -ge 2 ] && [ $((DYN1 - DYN0)) -ge 1 ]; then
  ok "new_static +$((STATIC1 - STATIC0)), new_dyn +$((DYN1 - DYN0))"
else
  bad "new_static +$((STATIC1 - STATIC0)) (want >= 2), new_dyn +$((DYN1 - DYN0)) (want >= 1)"
fi
if [ "$(nat_counter sessions)" -ge 1 ]; then ok "sessions in the table: $(nat_counter sessions)"
else bad "show nat has no session"; fi

echo "== 5. ICMP through PAT"
if "${CLIENT[@]}" ping -c 2 -i 0.2 -W 2 "$INET_ADDR" >/dev/null 2>&1; then
  ok "nfl-client pings $INET_ADDR"
else
  bad "ping $INET_ADDR from nfl-client"
fi
GOT=$("${CLIENT[@]}" /usr/bin/python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
s.connect(("198.51.100.100", 9))
try:
    s.send(b"x"); s.recv(100); print("answer")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("timeout")' 2>&1)
if [ "$GOT" = refused ]; then ok "UDP to $INET_ADDR:9: port unreachable translated back (ECONNREFUSED)"
else bad "UDP to $INET_ADDR:9: $GOT"; fi

echo "== 6. unsolicited inbound"
if "${INET[@]}" timeout 3 bash -c "exec 3<>/dev/tcp/$EXT/15000" 2>/dev/null; then
  bad "a connection to $EXT:15000 (PAT range, no session) succeeded"
else
  ok "a connection to $EXT:15000 fails"
fi
NOSESS1=$(nat_drop nat_no_session)
if [ "$NOSESS1" -gt "$NOSESS0" ]; then ok "nat.nat_no_session +$((NOSESS1 - NOSESS0))"
else bad "nat.nat_no_session did not increase ($NOSESS0 -> $NOSESS1)"; fi
if "${INET[@]}" timeout 3 bash -c "exec 3<>/dev/tcp/10.20.0.11/80" 2>/dev/null; then
  bad "nfl-inet reached 10.20.0.11 directly: the lab's isolation is broken"
else
  ok "nfl-inet cannot reach 10.20.0.11 without NAT"
fi

echo "== 7. drops"
CHANGED=$(join -a2 <(echo "$DROPS0") <(nat_drops) |
  awk '$1 != "nat.nat_no_session" && (NF == 2 || $3 > $2) {print $1}')
if [ -z "$CHANGED" ]; then ok "no other nat.* drop reason increased"
else bad "nat drops increased: $CHANGED"; fi

summary test_nat
