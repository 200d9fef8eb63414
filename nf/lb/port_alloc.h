// Source-port allocation for dynamic PAT and full NAT, without locks between workers.
//
// Theory of operation
// -------------------
// A new translated flow needs a port (an ICMP query: an identifier) on an external address.
// Each worker owns a disjoint share of every external address's range [lo, hi], so it
// allocates without a lock or an atomic, and the owner of a port is computable from the port
// alone: a reply that RSS delivers to another worker's queue is handed to owner(port), the
// only worker whose flow table holds that flow.
//
// Split rule: port p belongs to worker p mod W (W = workers). Why interleaving and not blocks:
//   - every share is spread over the whole range and the shares differ by at most one port,
//     whatever lo, hi and W are;
//   - with W a power of two the owner is the low log2(W) bits of the port, which a NIC can
//     match with one rte_flow rule per worker (destination address + destination port under
//     mask W - 1 -> that worker's queue), the way DPVS steers full-NAT replies. With other W
//     no mask expresses the split and replies go through the software handoff;
//   - blocks would need the range aligned to a power of two per worker to be a mask match.
// owner() and the index of a port in its share use a precomputed reciprocal (exact for every
// 16-bit port and divisor), not a division. Port 0 is never handed out (0 means "none").
//
// PortPool is one worker's share of one (external address, protocol). Its ports sit in a FIFO
// ring, each with the time it may be reused: alloc() takes the head, release() appends at the
// tail with ready = now + quarantine. The quarantine is TIME_WAIT-like: late packets of the
// old flow must not reach a new flow that took its port (2 s is a common NAT choice for UDP;
// TCP may want longer). It is one value per pool and `now` never goes back on a worker, so the
// ring is ordered by ready time: if the head is not ready, no port is, and alloc() returns 0.
// (Were `now` to go back, a port would only wait longer, never less.) Both operations are
// O(1); FIFO order also reuses the least recently freed port (LRU), which maximises the time
// between two uses of a port. The initial order is a seeded random permutation (seed 0:
// ascending), so the external ports of new flows are not predictable (RFC 6056).
//
// Reservation: ports used by static PAT (port forwards) are reserved on the pool that owns
// them and never allocated. A reserved port still in the ring is dropped lazily when it reaches
// the head (each such entry costs one extra step once), so reserve() is O(1) too. A reserved
// port that is allocated at the time stays with its flow and is not returned to the ring.
//
// Memory: 11 bytes per port (state byte, ring slot: 2-byte index + 8-byte ready time), so one
// external address with the full 1..65535 range costs 704 KiB per protocol summed over all
// workers, a W-th of that on each worker. Everything is allocated at construction.
//
// Time: `now` and the quarantine are in ticks of the caller's clock (TSC on the workers, or
// milliseconds), the same unit as the flow table's. A port is ready when now >= ready.
// A pool is used by one worker only; none of it is thread-safe and none of it needs to be.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace nf::lb {

// How [lo, hi] is split among `workers`: port p belongs to worker p mod workers.
class PortSplit {
 public:
  // lo == 0 is treated as 1, workers == 0 as 1; lo > hi is an empty range.
  PortSplit(uint16_t lo, uint16_t hi, unsigned workers);

  unsigned workers() const { return workers_; }
  uint16_t lo() const { return lo_; }
  uint16_t hi() const { return hi_; }
  bool in_range(uint16_t port) const { return port >= lo_ && port <= hi_ && lo_ <= hi_; }

  // The worker that allocated (or would allocate) `port`; port mod workers.
  unsigned owner(uint16_t port) const { return port - div(port) * workers_; }
  // Ports of `worker` in the range, and the first of them (0 when none).
  uint32_t share_size(unsigned worker) const;
  uint16_t first(unsigned worker) const;
  // Position of an in-range `port` in its owner's share (ports of a share are `workers`
  // apart, so it is the distance in multiples of workers from the share's first port).
  uint32_t index(uint16_t port) const {
    return div(port) - lo_div_ - (owner(port) < lo_mod_ ? 1u : 0u);
  }

 private:
  // floor(n / workers_) for n < 2^16 as (n * m) >> 32 with m = ceil(2^32 / workers_): the
  // error term n * (m * workers_ - 2^32) stays below 2^32 for 16-bit n and divisors.
  uint32_t div(uint32_t n) const { return static_cast<uint32_t>((n * recip_) >> 32); }

  uint16_t lo_, hi_;
  unsigned workers_;
  uint64_t recip_;
  uint32_t lo_div_, lo_mod_;  // lo / workers, lo mod workers
};

class PortPool {
 public:
  struct Counters {
    uint64_t allocs = 0;
    uint64_t releases = 0;
    uint64_t exhausted = 0;     // alloc() returned 0 (quarantined ones included)
    uint64_t quarantined = 0;   // ... of which because the free ports were all in quarantine
    uint64_t bad_releases = 0;  // release() of a port not ours or not allocated
  };

  // `worker`'s share of split's range; ports wait `quarantine` ticks after release().
  PortPool(const PortSplit& split, unsigned worker, uint64_t quarantine, uint64_t seed = 0);

  // A free port of this share whose quarantine is over, or 0 (counted) when there is none.
  uint16_t alloc(uint64_t now) {
    while (count_ != 0) {
      const uint32_t i = ring_idx_[head_];
      uint8_t& st = state_[i];
      if (st & kReserved) [[unlikely]] {  // reserved while waiting: drop the entry
        st &= ~kInRing;
        pop();
        continue;
      }
      if (ring_ready_[head_] > now) {
        ++c_.exhausted;
        ++c_.quarantined;
        return 0;
      }
      pop();
      st = kAllocated;
      ++in_use_;
      ++c_.allocs;
      return static_cast<uint16_t>(first_ + i * split_.workers());
    }
    ++c_.exhausted;
    return 0;
  }

  // Gives `port` back; usable again from now + quarantine. False (counted, nothing changes)
  // when the port is not this pool's or not allocated.
  bool release(uint16_t port, uint64_t now);

  // Static PAT: `port` is never handed out while reserved. False when not this pool's port.
  bool reserve(uint16_t port);
  // Ends a reservation; the port becomes allocatable after the quarantine.
  bool unreserve(uint16_t port, uint64_t now);

  bool owns(uint16_t port) const { return split_.in_range(port) && split_.owner(port) == worker_; }
  bool is_allocated(uint16_t port) const {
    return owns(port) && (state_[split_.index(port)] & kAllocated);
  }
  bool is_reserved(uint16_t port) const {
    return owns(port) && (state_[split_.index(port)] & kReserved);
  }

  uint32_t size() const { return size_; }      // ports in this share
  uint32_t in_use() const { return in_use_; }  // allocated now
  const Counters& counters() const { return c_; }
  const PortSplit& split() const { return split_; }
  unsigned worker() const { return worker_; }
  size_t memory_bytes() const { return size_ * (sizeof(uint8_t) + sizeof(uint16_t) + 8u); }

 private:
  static constexpr uint8_t kInRing = 1, kAllocated = 2, kReserved = 4;

  void pop() {
    head_ = head_ + 1 == size_ ? 0 : head_ + 1;
    --count_;
  }
  void push(uint32_t idx, uint64_t ready);

  PortSplit split_;
  unsigned worker_;
  uint32_t first_;  // the share's first port
  uint64_t quarantine_;
  uint32_t size_;
  uint32_t head_ = 0, count_ = 0, in_use_ = 0;
  std::unique_ptr<uint8_t[]> state_;        // per index: kInRing | kAllocated | kReserved
  std::unique_ptr<uint16_t[]> ring_idx_;    // FIFO of share indexes, capacity size_
  std::unique_ptr<uint64_t[]> ring_ready_;  // ready time of each ring slot
  Counters c_;
};

enum class PatProto : uint8_t { kTcp = 0, kUdp = 1, kIcmp = 2 };
inline constexpr size_t kPatProtos = 3;

// One worker's pools: every external address x {TCP, UDP, ICMP}, all with the same range and
// split. Addresses are referred to by their index in the configuration.
class PortAllocator {
 public:
  struct Config {
    uint16_t lo = 1024, hi = 65535;
    unsigned workers = 1;
    uint64_t quarantine[kPatProtos] = {0, 0, 0};  // TCP, UDP, ICMP, in ticks
    uint64_t seed = 0;                            // 0: ascending initial order
  };
  PortAllocator(const Config& cfg, size_t n_addrs, unsigned worker);

  PortPool& pool(size_t addr, PatProto p) { return pools_[addr * kPatProtos + size_t(p)]; }
  const PortPool& pool(size_t addr, PatProto p) const {
    return pools_[addr * kPatProtos + size_t(p)];
  }
  // Reserves on this worker's pool if it owns the port; false when another worker does (the
  // configuration code calls it on every worker's allocator).
  bool reserve(size_t addr, PatProto p, uint16_t port) { return pool(addr, p).reserve(port); }

  const PortSplit& split() const { return split_; }
  unsigned owner(uint16_t port) const { return split_.owner(port); }
  size_t addresses() const { return pools_.size() / kPatProtos; }
  size_t memory_bytes() const;

 private:
  PortSplit split_;
  std::vector<PortPool> pools_;
};

}  // namespace nf::lb
