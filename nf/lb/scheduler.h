// Schedulers of the L4 load balancer: which real gets a new flow.
//
// Theory of operation
// -------------------
// A virtual service has a pool of reals. Its state is split in two so that workers share
// nothing mutable:
//   Pool        immutable, built off the fast path (configuration load) and shared by every
//               worker through the snapshot: the reals' identities and weights and the
//               weighted Maglev table (nf/lb/maglev.h).
//   PoolCursor  one per (worker, pool), touched only by its worker: the round-robin position,
//               the smooth-WRR current weights and the least-connections counts. No atomics
//               and no locks; each worker balances its own share of the flows (RSS spreads
//               flows evenly over workers, so per-worker balance is global balance).
// pick() runs once per new flow, not per packet (established flows hit the flow table): no
// allocation, no virtual call, one switch on the algorithm.
//
// Algorithms:
//   kRoundRobin          the next eligible real after the last one picked
//   kWeightedRoundRobin  nginx's smooth weighted round robin: every eligible real adds its
//                        weight to its current weight, the largest wins and gives back the
//                        total. From a reset cursor, with health unchanged, every period of
//                        sum(w) picks gives each real exactly w of them, spread out rather
//                        than in bursts (5:1:1 -> a a b a c a a). O(N): about 2.5 cycles
//                        per real (100 reals: 260 cycles, BM_Pick).
//   kLeastConn           weighted least connections (IPVS wlc without the inactive term):
//                        the smallest active/weight, compared by cross-multiplication. Ties
//                        go to the first candidate after the previous pick, so equal reals
//                        alternate even if the caller never reports opens. O(N), about 3
//                        cycles per real (100 reals: 285 cycles with open and close).
//   kSourceHash          Maglev over a hash of the source address (hash_source_v4/v6): one
//                        client sticks to one real, and when a real fails only its clients
//                        move (Maglev::lookup_up probes past it without a rebuild).
//   kMaglev              Maglev over the flow's 5-tuple hash.
// Eligible = weight > 0 (weight 0 drains: existing flows stay in the flow table, no new
// ones) and up (the caller's health flags, one byte per real, filled from the health
// monitor's slots). kNone when no real is eligible.
//
// Least connections counts only what the caller reports with on_open()/on_close() on the
// cursor of the worker that owns the flow. Counts saturate at 0 and ignore out-of-range
// indices, so a stale close cannot write outside the cursor. rebind() carries the counts of
// reals that survive a reload (matched by identity) into the new pool; a flow opened before
// the reload must then be closed under its real's new index (Pool::find() of its identity),
// or it miscounts the real that now has its old index.
//
// Every pool also has the Maglev table, so a service whose flow table is full or under a SYN
// flood can place flows statelessly (stateless()): the same flow maps to the same real on every
// packet, on every worker and on every load balancer with the same configuration.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "nf/lb/maglev.h"

namespace nf::lb {

enum class Algo : uint8_t { kRoundRobin, kWeightedRoundRobin, kLeastConn, kSourceHash, kMaglev };

const char* algo_name(Algo a);  // "rr", "wrr", "lc", "sh", "maglev"
// Accepts algo_name()'s spellings, "wlc", and the configuration's round_robin,
// weighted_round_robin, least_conn, source_hash. False if unknown.
bool parse_algo(std::string_view s, Algo& out);

// The source-address hash of kSourceHash. Fixed seeds: every load balancer maps a client the
// same way.
constexpr uint64_t hash_source_v4(uint32_t addr) {
  return mix64(uint64_t{addr} ^ 0x73726334'00000000ULL);
}
uint64_t hash_source_v6(const uint8_t addr[16]);

class PoolCursor;

struct Real {
  uint64_t id;      // stable identity (real_id_v4/v6 of its address and port)
  uint32_t weight;  // 0 = drain
};

class Pool {
 public:
  // Off the fast path (allocates). table_min: the Maglev table's minimum size (maglev_size());
  // 0 sizes it by 100 x reals only, to save memory on small pools. False if there are more
  // than kMaxBackends reals or the table would exceed kMaxTableSize.
  bool build(Algo algo, std::span<const Real> reals, uint32_t table_min = kDefaultTableMin);

  Algo algo() const { return algo_; }
  uint32_t size() const { return n_; }
  uint64_t id(uint32_t i) const { return ids_[i]; }
  uint32_t weight(uint32_t i) const { return weights_[i]; }
  const Maglev& maglev() const { return maglev_; }
  // The index of the real with this identity, kNone if absent. O(log N); for reloads.
  uint16_t find(uint64_t id) const;

  // Stateless placement (flow table full, SYN flood, DSR without state): Maglev over the
  // source hash for kSourceHash pools, over the flow hash otherwise. up: one byte per real.
  uint16_t stateless(const uint8_t* up, uint64_t flow_hash, uint64_t src_hash) const {
    return maglev_.lookup_up(algo_ == Algo::kSourceHash ? src_hash : flow_hash, up);
  }

 private:
  friend uint16_t pick(const Pool&, PoolCursor&, std::span<const uint8_t>, uint64_t, uint64_t);
  std::vector<uint64_t> ids_;
  std::vector<uint32_t> weights_;
  std::vector<std::pair<uint64_t, uint16_t>> by_id_;  // sorted (id, index)
  Maglev maglev_;
  uint32_t n_ = 0;
  Algo algo_ = Algo::kRoundRobin;
};

class PoolCursor {
 public:
  // Sizes the cursor for pool and zeroes it. Allocates: configuration time only.
  void reset(const Pool& pool);
  // After a reload on the owning worker: the cursor of `from` becomes one for `to`, keeping
  // the active counts of reals whose identity is in both. Allocates; once per reload.
  void rebind(const Pool& from, const Pool& to);

  void on_open(uint16_t real) {
    if (real < n_) ++active_[real];
  }
  void on_close(uint16_t real) {
    if (real < n_ && active_[real] > 0) --active_[real];
  }
  uint32_t active(uint16_t real) const { return real < n_ ? active_[real] : 0; }
  uint32_t size() const { return n_; }

 private:
  friend uint16_t pick(const Pool&, PoolCursor&, std::span<const uint8_t>, uint64_t, uint64_t);
  std::vector<int64_t> current_;  // smooth WRR current weights
  std::vector<uint32_t> active_;  // least connections
  uint32_t n_ = 0;
  uint32_t next_ = 0;  // rr: next real to try; lc: where the next scan starts
};

// The real for a new flow, or kNone if none is eligible (or cursor/up do not fit the pool:
// up needs pool.size() entries, cursor must have been reset for a pool of that size).
// flow_hash: the 5-tuple hash (kMaglev); src_hash: hash_source_v4/v6 (kSourceHash).
uint16_t pick(const Pool& pool, PoolCursor& cursor, std::span<const uint8_t> up, uint64_t flow_hash,
              uint64_t src_hash);

}  // namespace nf::lb
