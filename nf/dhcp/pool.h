// The DHCP server's view of its configuration, as the worker lcores read it.
//
// A View is built off the fast path from a validated Config (on start and on every reload),
// published inside the Snapshot, and never changes after that. It holds each pool with its
// pre-encoded option run and the address ranges it allocates from.
//
// Which address is in use is not part of a View: it lives in AddrBlocks, one bit per address,
// in /24 blocks that exist for the life of the process and are shared by every worker. A
// worker claims an address with an atomic fetch_or and frees it with fetch_and, so two lease
// shards can never hand out the same address, with no lock and no message between them, and a
// reload that reshapes the pools cannot lose track of an address that is leased.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.h"

namespace nf::dhcp {

struct Block {
  std::atomic<uint64_t> w[4];  // bit i: address (block base + i) is in use
};

// The bit for one address; blocks are never freed, so a Lease may keep this.
struct AddrBit {
  Block* block = nullptr;
  uint32_t addr = 0;
  bool claim() const {
    const uint64_t m = uint64_t{1} << (addr & 63);
    return !(block->w[(addr & 0xff) >> 6].fetch_or(m, std::memory_order_acq_rel) & m);
  }
  void release() const {
    block->w[(addr & 0xff) >> 6].fetch_and(~(uint64_t{1} << (addr & 63)),
                                           std::memory_order_acq_rel);
  }
  bool taken() const {
    return block->w[(addr & 0xff) >> 6].load(std::memory_order_acquire) >> (addr & 63) & 1;
  }
};

// Owns every Block. get() runs off the fast path (view build, lease recovery).
class AddrBlocks {
 public:
  Block* get(uint32_t addr) {
    std::lock_guard<std::mutex> g(mu_);
    auto& b = blocks_[addr >> 8];
    if (!b) {
      b = std::make_unique<Block>();
      for (auto& w : b->w) w.store(0, std::memory_order_relaxed);
    }
    return b.get();
  }
  AddrBit bit(uint32_t addr) { return {get(addr), addr}; }

 private:
  std::mutex mu_;
  std::map<uint32_t, std::unique_ptr<Block>> blocks_;
};

struct RangeView {
  AddrRange r;
  std::vector<Block*> blocks;      // blocks[(a >> 8) - (r.first >> 8)]
  std::vector<uint64_t> excluded;  // one bit per address of the range: never given dynamically
  bool allocatable(uint32_t a) const {
    const uint32_t i = a - r.first;
    return !(excluded[i >> 6] >> (i & 63) & 1);
  }
  AddrBit bit(uint32_t a) const { return {blocks[(a >> 8) - (r.first >> 8)], a}; }
};

struct PoolView {
  std::string name;
  int port = -1;
  Prefix relay;
  Prefix subnet;
  uint32_t server_id = 0;  // interface pools: the port's address in `subnet`
  uint32_t lease_time = 0, min_lease_time = 0, max_lease_time = 0;
  std::vector<RangeView> ranges;
  const DhcpReservation* reservations = nullptr;  // into View::config
  size_t nb_reservations = 0;
  // Options by code: where in `blob` its encoded form (code, len, value) starts; -1 if unset.
  int16_t at[256];
  std::vector<uint8_t> blob;
  uint32_t size = 0;  // addresses in the ranges

  const RangeView* range_of(uint32_t a) const {
    for (const RangeView& rv : ranges)
      if (rv.r.contains(a)) return &rv;
    return nullptr;
  }
  // In a range and not excluded: may be given to a client that asks for it by name.
  bool allocatable(uint32_t a) const {
    const RangeView* rv = range_of(a);
    return rv && rv->allocatable(a);
  }
  const DhcpReservation* reservation_for_addr(uint32_t a) const {
    for (size_t i = 0; i < nb_reservations; ++i)
      if (reservations[i].address == a) return &reservations[i];
    return nullptr;
  }
};

struct View {
  std::shared_ptr<const Config> config;  // keeps the reservations alive
  DhcpConfig params;
  std::vector<PoolView> pools;
  int by_port[16];  // pool index for clients on a port, -1 if none

  // A relayed request: the pool configured for that relay, else the pool of the subnet
  // giaddr is in (RFC 2131 4.3.1: giaddr is the relay's address on the client's subnet).
  const PoolView* for_relay(uint32_t giaddr) const {
    for (const PoolView& p : pools)
      if (p.relay.len && p.relay.contains(giaddr)) return &p;
    for (const PoolView& p : pools)
      if (p.subnet.contains(giaddr)) return &p;
    return nullptr;
  }
  // The pool whose subnet holds `a` (where a lease on `a` belongs), or nullptr.
  const PoolView* for_addr(uint32_t a) const {
    for (const PoolView& p : pools)
      if (p.subnet.contains(a)) return &p;
    return nullptr;
  }
};

// Builds the view for `c` (c->dhcp must have passed validation).
std::unique_ptr<View> build_view(const std::shared_ptr<const Config>& c, AddrBlocks& blocks);

}  // namespace nf::dhcp
