// Router NAT's shared, immutable view of its configuration (the `nat` group): port forwards,
// dynamic PAT rules, the egress decision for new outbound sessions, timeouts, and each
// worker's PAT port pools.
//
// Theory of operation
// -------------------
// Built by the management lcore for every configuration snapshot (nat::build_runtime) and read
// by every worker's nat stage without locks (pipelines/nat/nat_stage.h); a reload builds a new
// one and publishes it with the snapshot (RCU). Sessions live in the stage's per-worker flow
// table and keep their translation in their record, so a session opened under an older
// runtime goes on working after a reload; only its PAT port does not go back to the new
// runtime's pools (the table refuses a port still held, and the stage tries another).
//
// Egress. Dynamic PAT applies to packets that leave through the rule's port, which only a
// route lookup tells. The snapshot's FIB (rte_lpm) needs the EAL and answers with adjacencies,
// not ports, until ARP has resolved the next hop; so the runtime keeps its own small
// longest-prefix table of "which port does this destination leave by", built from the same
// configuration the RIB is (connected prefixes, static routes by their gateway's connected
// port; local addresses and blackholes leave by no port). It is consulted only for a packet
// from an inside prefix that matched no session: once per new session, not per packet of one.
// It agrees with ip4_forward's FIB except for neighbour /32s, which never change the port.
//
// Ownership between workers: the nf/lb/port_alloc.h split (port p belongs to worker p mod W).
// A dynamic session belongs to the worker of the inside host's source port (ICMP: the echo
// identifier), which allocates the external port from its own share, so the reply's
// destination port names the same worker. A port-forward session belongs to the worker of the
// outside client's source port, which is also the reply's destination port.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "nf/core/stage.h"
#include "nf/lb/flow_table.h"
#include "nf/lb/port_alloc.h"
#include "nf/lb/tcp_state.h"

namespace nf::nat {

// A longest-prefix match from destination to egress port, over the few prefixes a router's
// configuration has: one sorted array per prefix length, searched longest first.
class EgressMap {
 public:
  static constexpr int kNoPort = -1;  // local, blackhole or no route
  void build(const Config& c);
  int lookup(uint32_t addr) const;

 private:
  struct Level {
    uint8_t len;
    std::vector<std::pair<uint32_t, int>> prefixes;  // (network, port), sorted
  };
  std::vector<Level> levels_;  // longest first
};

// What one worker changes: its share of every rule's ports (TCP, UDP, ICMP identifiers).
struct WorkerState {
  std::vector<std::unique_ptr<lb::PortAllocator>> ports;  // per rule
};

struct Runtime {
  std::vector<NatStatic> statics;  // as configured (config/lb_config.h)
  std::vector<NatDynamic> rules;
  std::vector<std::string> port_names;  // Config::ports' names, for `show nat`
  EgressMap egress;
  lb::Timeouts timeouts{};  // in ticks of tsc_hz
  uint64_t tsc_hz = 0;
  uint64_t generation = 0;
  mutable std::vector<WorkerState> workers;

  // The port forward listening on (addr, proto, port), or -1.
  int find_static(uint32_t addr, uint8_t proto, uint16_t port) const {
    return find(ext_keys_, key(addr, proto, port));
  }
  // The port forward whose server is (to, proto, to_port), or -1.
  int find_target(uint32_t to, uint8_t proto, uint16_t to_port) const {
    return find(target_keys_, key(to, proto, to_port));
  }
  // Whether some rule's inside prefixes hold `src` (whatever the packet's egress).
  bool inside(uint32_t src) const {
    for (const NatDynamic& r : rules)
      for (const Prefix& p : r.inside)
        if (p.contains(src)) return true;
    return false;
  }
  // The rule for a new outbound session from `src` to `dst`: the first whose inside prefixes
  // hold src and whose port is dst's egress; -1 if none.
  int rule_for(uint32_t src, uint32_t dst) const;
  // The rule whose external address is `addr` and PAT range holds `port`; -1 if none.
  int rule_of_external(uint32_t addr, uint16_t port) const {
    for (size_t i = 0; i < rules.size(); ++i)
      if (rules[i].addr == addr && port >= rules[i].port_lo && port <= rules[i].port_hi)
        return static_cast<int>(i);
    return -1;
  }
  // An address port forwards or PAT rules translate to or from.
  bool is_external(uint32_t addr) const;

  void index_statics();  // after `statics` is filled

 private:
  static uint64_t key(uint32_t a, uint8_t proto, uint16_t port) {
    return uint64_t{a} << 24 | uint64_t{proto} << 16 | port;
  }
  static int find(const std::vector<std::pair<uint64_t, int>>& v, uint64_t k);
  std::vector<std::pair<uint64_t, int>> ext_keys_;     // sorted
  std::vector<std::pair<uint64_t, int>> target_keys_;  // sorted
};

// Builds the runtime for `workers` workers (nullptr when the nat stage is not configured).
std::shared_ptr<const Runtime> build_runtime(const Config& c, uint64_t tsc_hz, uint16_t workers,
                                             uint64_t generation);

struct alignas(64) NatWorkerCounters {
  uint64_t sessions;     // table records in use after the last burst (sessions and mappings)
  uint64_t new_static;   // port-forward sessions opened
  uint64_t new_dynamic;  // dynamic PAT sessions opened
  uint64_t mappings;     // endpoint mappings (an external port) created
  uint64_t out_hits;     // packets of a session in its opening direction
  uint64_t in_hits;      // ... in the reply direction
  uint64_t handoffs;
  uint64_t icmp_translated;  // ICMP errors about a session, translated
};

// Where the management lcore reads each worker's counters and table from (`show nat`).
struct StatsTable {
  const NatWorkerCounters* counters[kMaxWorkers] = {};
  const lb::FlowTable* tables[kMaxWorkers] = {};
};

// The text of `show nat`: rules, port forwards, port use per worker, counters.
std::string show(const Runtime* rt, const StatsTable* stats, size_t workers);

}  // namespace nf::nat
