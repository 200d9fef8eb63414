#!/usr/bin/env bash
# Lab test: nf's authoritative DNS answers real clients (dig and kdig) correctly.
#
#   tests/lab/test_dns.sh        (as root, with the lab up: tests/lab/lab up)
#
# From nfl-client to 10.10.0.1, over UDP unless said otherwise, with dig AND kdig:
#  - every record type of config/zones/lab.example.zone and the reverse zone: SOA, NS, A,
#    AAAA, CNAME chain (chain -> alias -> srv1, all in one answer), MX, TXT, SRV, CAA, PTR
#    (dig -x 10.20.0.11); the aa flag on each;
#  - NXDOMAIN and NODATA with the zone's SOA in AUTHORITY; REFUSED for a zone nf does not
#    serve; a referral for x.sub.lab.example (no aa, NS in AUTHORITY, glue in ADDITIONAL);
#    wildcard synthesis (foo.wild) and its limit (x.deep.wild is NXDOMAIN, RFC 4592);
#  - ANY is answered with one HINFO "RFC8482"; EDNS: an OPT comes back, +bufsize works,
#    version 1 gets BADVERS; without EDNS big.lab.example TXT is truncated (TC) and dig's
#    retry over TCP gets all 10 records; +tcp works directly;
#  - the question's case is kept in the question and the answer (dig WwW.LaB.ExAmPlE);
#  - geo GSLB with EDNS Client Subnet (kdig +subnet): 192.0.2.0/24 -> 10.20.0.13 with scope 24,
#    the client's own address 10.10.0.100 -> 10.20.0.11, 10.10.0.200/32 -> 10.20.0.12, and a
#    name that does not depend on the client gets scope 0;
#  - `nfctl show dns` counters moved by what the test sent.
# Prints a summary; exits non-zero on any failure. ~10 s.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lab/lib.sh
. "$HERE/lib.sh"

SERVER=10.10.0.1
CLIENT=(ip netns exec nfl-client)

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
for _ in $(seq 40); do nfctl ping >/dev/null 2>&1 && break; sleep 0.25; done  # nf may be starting
nfctl ping >/dev/null 2>&1 || { echo "nf does not answer: is the lab up?" >&2; exit 1; }
for t in dig kdig; do command -v $t >/dev/null || { echo "$t is not installed" >&2; exit 1; }; done
# geo answers depend on the members' health: after a (re)start give the checks time to rise.
members_up() { [ "$(nfctl show dns | grep -cE '^ +10\.20\.0\.1[123] .* up \(check')" = 15 ]; }
for _ in $(seq 40); do members_up && break; sleep 0.25; done

# Queries retry on timeouts (a loaded VM can lose a datagram); none ask for recursion.
dig_()  { "${CLIENT[@]}" timeout 30 dig  @$SERVER +norec +time=2 +tries=3 "$@" 2>&1; }
kdig_() { "${CLIENT[@]}" timeout 30 kdig @$SERVER +norec +time=2 +retry=2 "$@" 2>&1; }

# Parsing both tools' text output.
status_of() { grep -oE 'status: [A-Z]+' <<<"$1" | head -1 | awk '{print $2}'; }
flags_of()  { grep -iE '^;; flags:' <<<"$1" | head -1 | sed -E 's/^;; [Ff]lags: *//; s/;.*//'; }
has_flag()  { [[ " $(flags_of "$1") " == *" $2 "* ]]; }
# section <output> <ANSWER|AUTHORITY|ADDITIONAL>: its records, one per line, blanks squeezed.
section() {
  awk -v s=";; $2 SECTION:" '
    index($0, s) == 1 { on = 1; next }
    on && /^$/ { on = 0 }
    on && !/^;/ { gsub(/[ \t]+/, " "); sub(/ $/, ""); print }' <<<"$1"
}
count_rr() { section "$1" "$2" | grep -c . ; }

check() {  # check <description> <condition result 0|1> <output shown on failure>
  if [ "$2" = 0 ]; then ok "$1"; else bad "$1"; sed 's/^/      /' <<<"$3" | head -30; fi
}
t() { "$@" >/dev/null 2>&1; echo $?; }  # run a test command, print its status

counter() {  # counter <show dns text> <regex with one number before a word>: the number
  grep -oE "$2" <<<"$1" | head -1 | grep -oE '[0-9]+' | head -1
}

before=$(nfctl show dns)

# ---- every record type, with both tools ---------------------------------------------------
# name type regex-for-answer expected-answer-count
CASES=(
  "lab.example SOA ^lab\.example\. [0-9]+ IN SOA ns1\.lab\.example\. hostmaster\.lab\.example\. 2026112101 3600 600 604800 60$ 1"
  "lab.example NS ^lab\.example\. [0-9]+ IN NS ns1\.lab\.example\.$ 1"
  "srv2.lab.example A ^srv2\.lab\.example\. 300 IN A 10\.20\.0\.12$ 1"
  "mail.lab.example AAAA ^mail\.lab\.example\. 300 IN AAAA 2001:db8:20::25$ 1"
  "v6.lab.example AAAA ^v6\.lab\.example\. 300 IN AAAA 2001:db8:20::11$ 1"
  "alias.lab.example CNAME ^alias\.lab\.example\. 300 IN CNAME srv1\.lab\.example\.$ 1"
  "lab.example MX ^lab\.example\. 300 IN MX 10 mail\.lab\.example\.$ 1"
  "lab.example TXT ^lab\.example\. 300 IN TXT \"v=spf1 -all\"$ 1"
  "_http._tcp.lab.example SRV ^_http\._tcp\.lab\.example\. 300 IN SRV 20 40 80 srv2\.lab\.example\.$ 2"
  "lab.example CAA ^lab\.example\. 300 IN CAA 0 issue \"letsencrypt\.org\"$ 1"
)
for tool in dig kdig; do
  for c in "${CASES[@]}"; do
    read -r name type rest <<<"$c"
    want=${rest% *}; n=${rest##* }
    out=$(${tool}_ "$name" "$type")
    ans=$(section "$out" ANSWER)
    good=1
    [ "$(status_of "$out")" = NOERROR ] && has_flag "$out" aa && grep -qE "$want" <<<"$ans" &&
      [ "$(count_rr "$out" ANSWER)" = "$n" ] && good=0
    check "$tool $name $type: NOERROR, aa, $n record(s) incl. $(grep -m1 -oE "IN $type .*" <<<"$ans" | sed 's/\\//g')" \
      $good "$out"
  done

  # The CNAME chain in one answer, in order.
  out=$(${tool}_ chain.lab.example A)
  ans=$(section "$out" ANSWER | awk '{print $1, $4, $5}')
  exp=$'chain.lab.example. CNAME alias.lab.example.\nalias.lab.example. CNAME srv1.lab.example.\nsrv1.lab.example. A 10.20.0.11'
  check "$tool chain.lab.example A: chain -> alias -> srv1 -> 10.20.0.11 in one answer, aa" \
    "$([ "$ans" = "$exp" ] && has_flag "$out" aa; echo $?)" "$out"

  # PTR from the inline reverse zone.
  if [ $tool = dig ]; then out=$(dig_ -x 10.20.0.11); else out=$(kdig_ -x 10.20.0.11); fi
  check "$tool -x 10.20.0.11: PTR srv1.lab.example., aa" \
    "$([ "$(status_of "$out")" = NOERROR ] && has_flag "$out" aa &&
       section "$out" ANSWER | grep -qE '^11\.0\.20\.10\.in-addr\.arpa\. 300 IN PTR srv1\.lab\.example\.$'; echo $?)" "$out"

  # Negative answers carry the SOA (with the negative TTL, 60) in AUTHORITY.
  soa_re='^lab\.example\. 60 IN SOA ns1\.lab\.example\. hostmaster\.lab\.example\. 2026112101 '
  out=$(${tool}_ nope.lab.example A)
  check "$tool nope.lab.example: NXDOMAIN, aa, no answer, SOA in AUTHORITY" \
    "$([ "$(status_of "$out")" = NXDOMAIN ] && has_flag "$out" aa && [ "$(count_rr "$out" ANSWER)" = 0 ] &&
       section "$out" AUTHORITY | grep -qE "$soa_re"; echo $?)" "$out"
  out=$(${tool}_ srv1.lab.example AAAA)
  check "$tool srv1.lab.example AAAA: NODATA (NOERROR, aa, no answer, SOA in AUTHORITY)" \
    "$([ "$(status_of "$out")" = NOERROR ] && has_flag "$out" aa && [ "$(count_rr "$out" ANSWER)" = 0 ] &&
       section "$out" AUTHORITY | grep -qE "$soa_re"; echo $?)" "$out"

  out=$(${tool}_ example.com A)
  check "$tool example.com: REFUSED, no aa" \
    "$([ "$(status_of "$out")" = REFUSED ] && ! has_flag "$out" aa; echo $?)" "$out"

  out=$(${tool}_ x.sub.lab.example A)
  check "$tool x.sub.lab.example: referral (NOERROR, no aa, NS in AUTHORITY, glue 10.10.0.53)" \
    "$([ "$(status_of "$out")" = NOERROR ] && ! has_flag "$out" aa && [ "$(count_rr "$out" ANSWER)" = 0 ] &&
       section "$out" AUTHORITY | grep -qE '^sub\.lab\.example\. 300 IN NS ns\.sub\.lab\.example\.$' &&
       section "$out" ADDITIONAL | grep -qE '^ns\.sub\.lab\.example\. 300 IN A 10\.10\.0\.53$'; echo $?)" "$out"

  out=$(${tool}_ foo.wild.lab.example A)
  check "$tool foo.wild.lab.example: wildcard A 10.20.0.99 under the query name, aa" \
    "$([ "$(status_of "$out")" = NOERROR ] && has_flag "$out" aa &&
       [ "$(section "$out" ANSWER)" = "foo.wild.lab.example. 300 IN A 10.20.0.99" ]; echo $?)" "$out"
  out=$(${tool}_ x.deep.wild.lab.example A)
  check "$tool x.deep.wild.lab.example: NXDOMAIN (deep.wild exists, so no wildcard)" \
    "$([ "$(status_of "$out")" = NXDOMAIN ] && section "$out" AUTHORITY | grep -qE "$soa_re"; echo $?)" "$out"

  # (dig 9.18 sends ANY over TCP unless told otherwise: +notcp keeps this on UDP.)
  if [ $tool = dig ]; then out=$(dig_ +notcp lab.example ANY); else out=$(kdig_ lab.example ANY); fi
  check "$tool lab.example ANY: one HINFO \"RFC8482\" (RFC 8482)" \
    "$([ "$(status_of "$out")" = NOERROR ] && [ "$(count_rr "$out" ANSWER)" = 1 ] &&
       section "$out" ANSWER | grep -qE '^lab\.example\. [0-9]+ IN HINFO "RFC8482" ""$'; echo $?)" "$out"

  # TCP directly.
  out=$(${tool}_ +tcp srv3.lab.example A)
  check "$tool +tcp srv3.lab.example: A 10.20.0.13 over TCP" \
    "$([ "$(status_of "$out")" = NOERROR ] && grep -qE '\(TCP\)' <<<"$out" &&
       section "$out" ANSWER | grep -qE '^srv3\.lab\.example\. 300 IN A 10\.20\.0\.13$'; echo $?)" "$out"
  out=$(${tool}_ +tcp big.lab.example TXT)
  check "$tool +tcp big.lab.example TXT: all 10 records" \
    "$([ "$(count_rr "$out" ANSWER)" = 10 ]; echo $?)" "$out"

  # Mixed case comes back as asked, in the question and in the answer (a GSLB and a zone
  # name). kdig lowercases the name it sends, so only dig can ask this.
  [ $tool = dig ] || continue
  for name in WwW.LaB.ExAmPlE SrV1.lAb.EXAMPLE; do
    out=$(${tool}_ "$name" A)
    q=$(grep -E "^;+ *$name\.[[:space:]]" <<<"$out")
    names=$(section "$out" ANSWER | awk '{print $1}' | sort -u)
    check "$tool $name: question and answer keep the case ($(section "$out" ANSWER | wc -l) records)" \
      "$([ -n "$q" ] && [ "$names" = "$name." ]; echo $?)" "$out"
  done
done

# ---- EDNS ----------------------------------------------------------------------------------
out=$(dig_ lab.example SOA)
check "dig (EDNS by default): OPT in the reply, version 0, udp 1232" \
  "$(grep -qE '^; EDNS: version: 0, flags:.*; udp: 1232' <<<"$out"; echo $?)" "$out"
out=$(kdig_ +edns lab.example SOA)
check "kdig +edns: OPT in the reply, version 0, UDP size 1232" \
  "$(grep -qE '^;; Version: 0; flags: ?; UDP size: 1232 B' <<<"$out"; echo $?)" "$out"
out=$(kdig_ lab.example SOA)
check "kdig without EDNS: no OPT in the reply" "$(! grep -q 'EDNS PSEUDOSECTION' <<<"$out"; echo $?)" "$out"
out=$(dig_ +bufsize=4096 big.lab.example TXT)
check "dig +bufsize=4096 big.lab.example TXT: all 10 over UDP, not truncated" \
  "$([ "$(count_rr "$out" ANSWER)" = 10 ] && ! has_flag "$out" tc && grep -qE '\(UDP\)' <<<"$out"; echo $?)" "$out"
out=$(kdig_ +bufsize=1232 big.lab.example TXT)
check "kdig +bufsize=1232 big.lab.example TXT: all 10 over UDP" \
  "$([ "$(count_rr "$out" ANSWER)" = 10 ] && ! has_flag "$out" tc && grep -qE '\(UDP\)' <<<"$out"; echo $?)" "$out"
out=$(dig_ +bufsize=512 +ignore big.lab.example TXT)
check "dig +bufsize=512 +ignore big.lab.example TXT: truncated (TC) over UDP" \
  "$(has_flag "$out" tc; echo $?)" "$out"
out=$(dig_ +edns=1 +noednsnegotiation lab.example SOA)
check "dig +edns=1: BADVERS, with an OPT of version 0" \
  "$([ "$(status_of "$out")" = BADVERS ] && grep -qE '^; EDNS: version: 0' <<<"$out"; echo $?)" "$out"
out=$(kdig_ +edns=1 lab.example SOA)
check "kdig +edns=1: BADVERS" "$([ "$(status_of "$out")" = BADVERS ]; echo $?)" "$out"

# Truncation without EDNS, and dig's retry over TCP.
out=$(dig_ +noedns +ignore big.lab.example TXT)
check "dig +noedns +ignore big.lab.example TXT: TC set, no answer records (over 512 bytes)" \
  "$(has_flag "$out" tc && [ "$(count_rr "$out" ANSWER)" = 0 ]; echo $?)" "$out"
out=$(dig_ +noedns big.lab.example TXT)
check "dig +noedns big.lab.example TXT: 'Truncated, retrying in TCP mode', then all 10 TXT over TCP" \
  "$(grep -q 'Truncated, retrying in TCP mode' <<<"$out" && grep -qE '\(TCP\)' <<<"$out" &&
     [ "$(count_rr "$out" ANSWER)" = 10 ] &&
     [ "$(section "$out" ANSWER | grep -cE '^big\.lab\.example\. 300 IN TXT "[0-9]123456789')" = 10 ]; echo $?)" "$out"
out=$(kdig_ +ignore big.lab.example TXT)
check "kdig +ignore (no EDNS) big.lab.example TXT: TC set, no answer records" \
  "$(has_flag "$out" tc && [ "$(count_rr "$out" ANSWER)" = 0 ]; echo $?)" "$out"
out=$(kdig_ big.lab.example TXT)
check "kdig (no EDNS) big.lab.example TXT: retried over TCP, all 10 records" \
  "$(grep -qE '\(TCP\)' <<<"$out" && [ "$(count_rr "$out" ANSWER)" = 10 ]; echo $?)" "$out"

# ---- ECS and geo ---------------------------------------------------------------------------
ecs_of() { grep -oE 'CLIENT-SUBNET: [0-9./]+' <<<"$1" | head -1 | awk '{print $2}'; }
a_of() { section "$1" ANSWER | awk '$4 == "A" {print $5}' | tr '\n' ' ' | sed 's/ $//'; }
out=$(kdig_ +subnet=192.0.2.0/24 geo.lab.example A)
check "kdig +subnet=192.0.2.0/24 geo: 10.20.0.13 (south), ECS scope 24 ($(ecs_of "$out"))" \
  "$([ "$(a_of "$out")" = 10.20.0.13 ] && [ "$(ecs_of "$out")" = 192.0.2.0/24/24 ]; echo $?)" "$out"
out=$(dig_ +subnet=192.0.2.0/24 geo.lab.example A)
check "dig +subnet=192.0.2.0/24 geo: 10.20.0.13, ECS scope 24" \
  "$([ "$(a_of "$out")" = 10.20.0.13 ] && grep -qE 'CLIENT-SUBNET: 192\.0\.2\.0/24/24' <<<"$out"; echo $?)" "$out"
for tool in dig kdig; do
  out=$(${tool}_ geo.lab.example A)
  check "$tool geo from 10.10.0.100 (10.10.0.0/25, west), no ECS: 10.20.0.11" \
    "$([ "$(a_of "$out")" = 10.20.0.11 ]; echo $?)" "$out"
done
out=$(kdig_ +subnet=10.10.0.200/32 geo.lab.example A)
check "kdig +subnet=10.10.0.200/32 geo (east): 10.20.0.12 ($(ecs_of "$out"))" \
  "$([ "$(a_of "$out")" = 10.20.0.12 ] && [[ "$(ecs_of "$out")" == 10.10.0.200/32/* ]]; echo $?)" "$out"
out=$(kdig_ +subnet=192.0.2.0/24 srv1.lab.example A)
check "kdig +subnet=192.0.2.0/24 srv1 (not geo): 10.20.0.11, ECS scope 0 ($(ecs_of "$out"))" \
  "$([ "$(a_of "$out")" = 10.20.0.11 ] && [ "$(ecs_of "$out")" = 192.0.2.0/24/0 ]; echo $?)" "$out"

# ---- counters ------------------------------------------------------------------------------
after=$(nfctl show dns)
moved() {  # moved <label> <regex> <at least>
  local b a
  b=$(counter "$before" "$2"); a=$(counter "$after" "$2")
  if [ -n "$b" ] && [ -n "$a" ] && [ $((a - b)) -ge "$3" ]; then
    ok "nfctl show dns: $1 $b -> $a (+$((a - b)), at least +$3)"
  else
    bad "nfctl show dns: $1 '$b' -> '$a' (want at least +$3)"
  fi
}
moved "udp queries" 'udp \(all workers\): [0-9]+ queries' 50
moved "udp answers" '[0-9]+ answers' 20
moved "nxdomain" '[0-9]+ nxdomain' 4
moved "nodata" '[0-9]+ nodata' 2
moved "referrals" '[0-9]+ referrals' 2
moved "refused" '[0-9]+ refused' 2
moved "badvers" '[0-9]+ badvers' 2
moved "truncated" 'truncated [0-9]+' 4
moved "edns" 'edns [0-9]+' 10
moved "ecs" 'ecs [0-9]+' 4
moved "any" 'any [0-9]+' 2
moved "gslb" 'gslb [0-9]+' 6
moved "tcp queries" 'tcp: [0-9]+ queries' 6

echo
echo "test_dns: $PASS passed, $FAIL failed"
for f in "${FAILED[@]}"; do echo "  failed: $f"; done
[ "$FAIL" = 0 ]
