// Weighted Maglev lookup tables: consistent hashing of flows onto backends.
//
// Theory of operation
// -------------------
// Follows Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load Balancer"
// (NSDI 2016), section 3.4. The table has M entries, M prime. Every backend owns a permutation
// of 0..M-1 given by (offset, skip): slot_j = (offset + j * skip) mod M, with offset in [0, M)
// and skip in [1, M), so (M prime) every permutation visits every slot. Backends take turns;
// on its turn a backend claims the next slot of its permutation that is still free, until the
// table is full. A lookup is one load: table[slot(hash)].
//
// Stability. offset and skip come from hashing the backend's 64-bit identity (the caller
// derives it from the real's address and port, e.g. real_id_v4()), never from its position in
// the list, and the turn order is the order of identities, not of the caller's list. The
// table is therefore a function of {(id, weight)} and M only: reordering the configuration
// changes nothing, and two load balancers behind one ECMP group build identical tables, so a
// flow that ECMP moves between them still reaches the same backend. The hashes are fixed
// (no per-process seed) for the same reason.
//
// Weights. The paper weights backends by the relative frequency of their turns. Katran's
// MaglevHashV2 gives backend i a turn each round in which its accumulated weight reaches the
// largest weight; that costs M * max_w / sum_w rounds of N steps, i.e. up to M * N steps when
// one weight dominates. We use the same accumulator with the threshold T = sum_w / N (the mean
// weight): a backend takes floor((acc + w) / T) turns per round, so a round is about N turns
// whatever the weights and a build costs about M log M probes. With equal weights both schemes are
// plain Maglev. Shares are proportional to weights up to the last, partial round: at most
// ceil(w / T) slots per backend. Weight 0 puts a backend out of the table (drain).
//
// Failures without rebuilding. lookup_up() takes the caller's per-backend "up" flags. If the
// chosen backend is down it rehashes the flow and reads that slot, up to kProbes times; each
// read is an independent draw from the weighted mix of backends, so the flows of a dead
// backend spread over the others by weight. (The neighbouring slots would be cheaper but are
// not independent: a backend claims slots with a fixed stride; see probe().) If every draw is
// down it scans the backends in identity order from a hash-chosen start. Every flow of an up
// backend keeps its backend, because its slot still names it; that is what a worker wants
// when health changes between two rebuilds. kNone means every backend in the table is down,
// or the table is empty.
//
// Rebuild disruption. Rebuilding without one of N backends (a configuration change) moves
// that backend's flows and, as the paper reports, a small share of the others': Maglev trades
// perfect stability for balance. Measured at M = 65537 over every choice of the removed
// backend: at most 0.35 % of the other backends' slots move for N = 10, 0.51 % for N = 50,
// 0.73 % for N = 100 (tests/unit/test_maglev.cc asserts < 1.5 %).
//
// Size and memory. Entries are uint16_t backend indices into the caller's list (kNone marks an
// empty table), so a table costs 2 * M bytes: the default M = 65537 is 128 KiB, one table per
// service, L2-resident while one service is hot; 1000 backends need M >= 100,003 (195 KiB).
// maglev_size() keeps M >= 100 * N, which the paper chooses for at most about 1 % imbalance.
// M must stay the same across weight changes and health changes, since a different M
// reshuffles every flow: size it from the configured backends, not the up ones.
//
// Hash to slot. slot = (low 32 bits of hash * M) >> 32 (Lemire's multiply-shift range
// reduction; no division). The caller's hash must therefore be uniform in its low 32 bits; a
// CRC32 (rte_hash_crc) zero-extended to 64 bits is fine. The multiply-shift reads the high
// bits of that word, which is also why a NIC RSS hash (whose low bits pick the RX queue) does
// not bias the choice per worker.
#pragma once

#include <rte_prefetch.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace nf::lb {

inline constexpr uint16_t kNone = 0xffff;            // no backend
inline constexpr size_t kMaxBackends = 0xffff;       // indices 0..65534; kNone is reserved
inline constexpr uint32_t kDefaultTableMin = 65537;  // the paper's and Katran's M
inline constexpr uint32_t kMaxTableSize = 1u << 24;  // 32 MiB of uint16_t; sanity bound

// The smallest prime >= max(min, 100 * backends). 0 when that would exceed kMaxTableSize
// (more than about 167,000 backends), i.e. no valid table. Costs 2 bytes per entry.
uint32_t maglev_size(size_t backends, uint32_t min = kDefaultTableMin);

bool is_prime(uint32_t n);

// The murmur3 64-bit finaliser: a bijection that spreads every input bit over the output.
// Stable across builds and machines (tables and flow placement depend on it).
constexpr uint64_t mix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

// Stable identities of reals: the same (address, port) gives the same id everywhere.
constexpr uint64_t real_id_v4(uint32_t addr_host_order, uint16_t port) {
  return mix64((uint64_t{addr_host_order} << 16 | port) ^ 0x4c42'7634'0000'0000ULL);
}
uint64_t real_id_v6(const uint8_t addr[16], uint16_t port);

struct MaglevBackend {
  uint64_t id;      // stable identity, see real_id_v4(); distinct per backend
  uint32_t weight;  // 0 = not in the table
};

class Maglev {
 public:
  // Rehashed slots lookup_up() reads after a down backend's slot before scanning. With a
  // fraction f of the weight down, a flow reaches the scan with probability f^kProbes.
  static constexpr uint32_t kProbes = 16;

  Maglev() : table_(1, kNone) {}

  // Builds the table for `backends` (entry i of the table names backends[i]). Off the fast
  // path: allocates. False, with the table left empty, if size is not a prime in [2,
  // kMaxTableSize] or there are more than kMaxBackends backends.
  bool build(std::span<const MaglevBackend> backends, uint32_t size);

  uint32_t size() const { return size_; }
  bool empty() const { return active_.empty(); }  // no backend with weight > 0
  std::span<const uint16_t> table() const { return {table_.data(), size_}; }
  // Backends with weight > 0, in turn (identity) order.
  std::span<const uint16_t> members() const { return active_; }

  uint32_t slot(uint64_t hash) const {
    return static_cast<uint32_t>((uint64_t{static_cast<uint32_t>(hash)} * size_) >> 32);
  }
  // For bulk paths: touch the slot a few packets ahead of its lookup.
  void prefetch(uint64_t hash) const { rte_prefetch0(&table_[slot(hash)]); }
  // The backend for hash, ignoring health; kNone if the table is empty. (An unbuilt table is
  // one kNone entry with size 0, which slot() maps every hash to: no test for it here.)
  uint16_t lookup(uint64_t hash) const { return table_[slot(hash)]; }

  // The backend for hash among those with up[i] != 0 (up has one entry per backend passed to
  // build()); kNone if none of the table's backends is up. A flow whose backend is up always
  // gets it, whatever else is down.
  uint16_t lookup_up(uint64_t hash, const uint8_t* up) const {
    const uint32_t s = slot(hash);
    const uint16_t b = table_[s];
    if (b != kNone && up[b]) [[likely]]
      return b;
    return probe(hash, up);
  }

 private:
  uint16_t probe(uint64_t hash, const uint8_t* up) const;

  std::vector<uint16_t> table_;
  std::vector<uint16_t> active_;
  uint32_t size_ = 0;
};

}  // namespace nf::lb
