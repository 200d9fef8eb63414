// The load balancer's shared, immutable view of its configuration: services, their pools of
// reals (with Maglev tables built), the VIP lookup, and where each real's health is published.
//
// Built by the management lcore for every configuration snapshot (lb::build_runtime) and read
// by every worker's lb stage without locks; a reload builds a new one and publishes it with
// the snapshot (RCU), so a worker sees either the old or the new set of services, never a mix.
// Per-worker mutable scheduling state (round-robin positions, least-connection counts) lives in
// the stage, not here.
//
// Ownership of flows between workers: a flow belongs to the worker whose index equals the
// client-side port modulo the number of workers (the client's source port for NAT and DSR,
// the allocated source port for full NAT, which each worker only takes from its own share:
// nf/lb/port_alloc.h). Both directions of a flow can compute it from the packet alone, so a
// packet that arrives on another worker's queue is handed to the owner (Emit::handoff).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "config/config.h"
#include "nf/lb/port_alloc.h"
#include "nf/lb/scheduler.h"
#include "nf/lb/tcp_state.h"

namespace nf::health {
struct Slot;
}

namespace nf::lb {

inline constexpr uint32_t kNoHealthSlot = UINT32_MAX;

struct RealRt {
  uint32_t addr = 0;  // host order
  uint16_t port = 0;  // 0: keep the packet's destination port
  uint32_t weight = 0;
  uint32_t slot = kNoHealthSlot;  // health slot; kNoHealthSlot: no check, always up
  uint32_t encap_src = 0;         // ipip: outer source (an address of the port facing the real)
};

struct ServiceRt {
  uint16_t id = 0;  // index in Runtime::services
  std::string name;
  uint32_t vip = 0;
  uint8_t proto = 6;
  uint16_t port = 0;
  LbMode mode = LbMode::kNat;
  LbOnDown on_down = LbOnDown::kKeep;
  uint64_t persist_tsc = 0;  // 0: no persistence
  uint8_t dscp = 0;
  uint16_t mss_clamp = 0;          // 0: none (ipip: derived from the MTU at build)
  std::vector<uint32_t> snat;      // full NAT sources, host order
  std::vector<uint16_t> snat_idx;  // their indexes in Runtime::snat_addrs (port pools)
  std::vector<RealRt> reals;
  Pool pool;
};

// (VIP, protocol, port) -> service; port 0 entries serve every port. Open addressing over a
// power-of-two array at most half full: one or two probes for the services a box has.
class VipMap {
 public:
  void build(std::span<const ServiceRt> services);
  // The service for a packet to vip:port (host order), or -1.
  int find(uint32_t vip, uint8_t proto, uint16_t port) const {
    const int s = find_exact(vip, proto, port);
    return s >= 0 ? s : find_exact(vip, proto, 0);
  }
  bool is_vip(uint32_t addr) const;  // any service on this address (ARP, ICMP echo)

 private:
  struct Entry {
    uint32_t vip;
    uint16_t port;
    uint8_t proto;  // 0: empty
    uint8_t pad;
    int32_t service;
  };
  static uint32_t hash(uint32_t vip, uint8_t proto, uint16_t port);
  int find_exact(uint32_t vip, uint8_t proto, uint16_t port) const {
    if (mask_ == 0) return -1;
    for (uint32_t i = hash(vip, proto, port) & mask_;; i = (i + 1) & mask_) {
      const Entry& e = table_[i];
      if (e.proto == 0) return -1;
      if (e.vip == vip && e.port == port && e.proto == proto) return e.service;
    }
  }
  std::vector<Entry> table_;
  std::vector<uint32_t> vips_;  // sorted, unique
  uint32_t mask_ = 0;
};

// Addresses of the reals of NAT and full-NAT services: a packet from one that misses this
// worker's flow table may be a reply whose flow another worker owns. (By address only: other
// traffic from a real costs at most one handoff, and services on every port need no port.)
class AddrSet {
 public:
  void build(std::span<const uint32_t> addrs);
  bool contains(uint32_t addr) const {
    if (mask_ == 0) return false;
    for (uint32_t i = static_cast<uint32_t>(mix64(addr)) & mask_;; i = (i + 1) & mask_) {
      if (table_[i] == 0) return false;
      if (table_[i] == addr) return true;
    }
  }

 private:
  std::vector<uint32_t> table_;  // 0 = empty (0.0.0.0 is never a real)
  uint32_t mask_ = 0;
};

// What one worker changes while it schedules: built with the runtime, so a reload allocates
// nothing on the worker; touched only by its worker. A reload starts cursors afresh (least
// connection counts restart from the flows opened after it) and gives full NAT a fresh port
// pool: a port still held by a flow of the previous generation is caught by the flow table
// (its reply key exists) and the next port is tried.
struct WorkerState {
  std::vector<PoolCursor> cursors;       // per service
  std::vector<std::vector<uint8_t>> up;  // per service and real: health, read once per burst
  std::vector<uint64_t> up_burst;        // per service: the burst `up` was last read in
  std::unique_ptr<PortAllocator> ports;  // full NAT source ports of this worker's share
};

struct Runtime {
  std::vector<ServiceRt> services;
  std::vector<uint32_t> snat_addrs;          // every full NAT source, once
  mutable std::vector<WorkerState> workers;  // [worker]
  VipMap vips;
  AddrSet nat_reals;
  const health::Slot* slots = nullptr;  // the monitor's; null: every real is up
  Timeouts timeouts{};                  // in TSC ticks
  uint64_t tsc_hz = 0;
  uint32_t syn_flood_rate = 0;  // new flows per second and worker before the table is spared
  uint32_t max_flows = 0;       // per worker
  uint64_t generation = 0;      // changes with every build: stages rebind their cursors
};

// A health target the runtime needs: the management lcore registers it with the monitor and
// passes back the slot of each, in order (kNoHealthSlot when it has no check).
struct HealthNeed {
  uint32_t addr;
  std::string check;
  std::string label;
};
std::vector<HealthNeed> health_needs(const LbConfig& c);

// Builds the runtime. `slots_of_needs` are the slots for health_needs(c), in order; `ports` the
// configuration's ports (ipip sources). Returns nullptr with a message on failure (a pool too
// large for a Maglev table).
std::shared_ptr<const Runtime> build_runtime(const Config& c,
                                             std::span<const uint32_t> slots_of_needs,
                                             const health::Slot* slots, uint64_t tsc_hz,
                                             uint16_t workers, uint64_t generation,
                                             std::string* error);

}  // namespace nf::lb
