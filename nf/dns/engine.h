// The answer engine: one DNS query in, one answer out, from a compiled View (zone.h). Used by
// the UDP stage on the workers (pipelines/dns/dns_stage.h) and by the TCP server on the
// management lcore (nf/dns/tcp_server.h), so both transports answer from the same data.
//
// Theory of operation
// -------------------
// answer() works in place: the buffer holds the query, and the answer is written over it.
// The header and question stay where they are (the question keeps the query's spelling, RFC
// 4343), the prepared sections are copied after the question, and an OPT record closes the
// message when the query had one (RFC 6891 7).
//
//   exact name          its Blob for the type; CNAME chains are already in it
//   below a delegation  the referral (AA clear, NS + glue)
//   no such name        the closest encloser's wildcard (RFC 4592 3.3.1) or NXDOMAIN + SOA
//   no such type        NODATA: NOERROR, SOA in AUTHORITY (RFC 2308 2.2)
//   ANY                 one synthesised HINFO (RFC 8482 4.2)
//   GSLB name, type A   addresses chosen now by the name's policy (select_members())
//   not in our zones    REFUSED
// Errors: FORMERR (unreadable question, bad OPT or ECS), NOTIMP (opcode), BADVERS (EDNS
// version > 0, RFC 6891 6.1.3), REFUSED (class other than IN, zone transfers).
// A UDP answer larger than the client's limit (512 without EDNS, else its size capped at
// udp_max) is sent as header + question + OPT with TC set, and the client retries over TCP
// (RFC 7766 5; RFC 2181 9: no partial RRsets).
//
// GSLB policies choose among members that are up (health slot) and not drained (weight 0):
//   round_robin   rotate through them, `answers` at a time
//   weighted      `answers` distinct picks, each with probability weight / remaining weight
//   failover      the first `answers` in configured order (active/backup)
//   geo           members of the client's region (ECS address if sent, RFC 7871 7.1.1,
//                 else the source), round robin; other members if none of those is up.
//                 The ECS SCOPE is the geo map's prefix length at that address.
//   lowest_rtt    the `answers` members with the lowest health-check RTT
// When none is up: all members (all_down = all), the backup list, or SERVFAIL. Non-geo
// answers carry ECS scope 0 (RFC 7871 7.2.1: valid for every client).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "nf/dns/wire.h"
#include "nf/dns/zone.h"

namespace nf::health {
struct Slot;
}

namespace nf::dns {

struct Env {
  const View* view = nullptr;
  const health::Slot* slots = nullptr;       // health published by the monitor; null = all up
  const uint32_t* slot_of_target = nullptr;  // View::targets index -> slot
  uint16_t udp_max = 1232;                   // largest UDP answer we send (DNS flag day 2020)
};

struct Counters {
  uint64_t queries;
  uint64_t noerror;
  uint64_t nodata;  // NOERROR without an answer
  uint64_t nxdomain;
  uint64_t referral;
  uint64_t refused;
  uint64_t formerr;
  uint64_t notimp;
  uint64_t servfail;
  uint64_t badvers;
  uint64_t truncated;
  uint64_t edns;
  uint64_t ecs;
  uint64_t any;
  uint64_t gslb;
  uint64_t gslb_all_down;
  uint64_t dropped;  // not answerable (responses, runts)
};

// What the snapshot carries for the responder: the compiled data, where its health comes
// from, and the transport settings. Built by the management lcore on every (re)load.
struct Runtime {
  std::shared_ptr<const View> view;
  std::vector<uint32_t> slot_of_target;  // View::targets -> health slot
  const health::Slot* slots = nullptr;
  std::vector<uint32_t> listen;  // addresses answered on (host order)
  uint16_t udp_max = 1232;
  uint32_t rrl_rate = 0;  // responses per second per prefix and worker; 0 = off
  uint32_t rrl_slip = 2;
  uint32_t rrl_mask = 0xffffff00u;
  std::vector<uint32_t> rrl_exempt;  // (prefix, mask) pairs
  Env env() const {
    Env e;
    e.view = view.get();
    e.slots = slots;
    e.slot_of_target = slot_of_target.data();
    e.udp_max = udp_max;
    return e;
  }
  bool listens(uint32_t a) const {
    for (uint32_t l : listen)
      if (l == a) return true;
    return false;
  }
  bool exempt(uint32_t a) const {
    for (size_t i = 0; i + 1 < rrl_exempt.size(); i += 2)
      if ((a & rrl_exempt[i + 1]) == rrl_exempt[i]) return true;
    return false;
  }
};

// Counters of one answering thread (a worker's stage, or the TCP server), read by `show dns`.
struct alignas(64) ThreadCounters {
  Counters c;
  uint64_t rrl_dropped;
  uint64_t rrl_slipped;
};
struct StatsTable {
  ThreadCounters workers[16];
  ThreadCounters tcp;
};

// Per-thread policy state (round robin position, random numbers): never shared.
struct State {
  uint64_t rng = 0x9e3779b97f4a7c15ull;
  uint32_t rr = 0;
  uint64_t next() {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
  }
};

// `msg` holds a query of `len` bytes in a buffer of `cap` bytes; the answer replaces it.
// Returns the answer's length, or 0 when nothing may be sent. `client` is the source address
// (host order); `tcp` lifts the size limit to 65535.
uint32_t answer(uint8_t* msg, uint32_t len, uint32_t cap, bool tcp, uint32_t client, const Env& env,
                State& st, Counters& c);

// Cuts a finished answer back to header + question (+ OPT when the query had EDNS) with TC
// set: what response rate limiting "slips" instead of the answer (RFC 7766 5 retry over TCP).
uint32_t truncate_answer(uint8_t* msg, uint32_t len);

// The GSLB choice alone (tests, benchmarks): writes up to `max` addresses, returns how many,
// or -1 for SERVFAIL. `scope` gets the ECS scope (0 unless the policy is geo).
int select_members(const View& v, const Gslb& g, const Env& env, uint32_t geo_addr, State& st,
                   uint32_t* out, int max, uint8_t& scope);

}  // namespace nf::dns
