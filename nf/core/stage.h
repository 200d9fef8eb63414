// The stage interface every network function plugs into.
//
// Theory of operation
// -------------------
// A worker lcore receives a burst from a port, parses each frame once into PacketMeta, and
// hands the burst to the first stage of its chain. A stage is called once per burst (one
// indirect call) and runs an inline per-packet loop. Each packet leaves a stage with exactly
// one outcome, recorded in the Emit sink (begin_stage() before the call, end_stage() after):
//
//   next(m)          continue to the next stage of the chain
//   tx(m, port)      transmit on a port (buffered; drained every burst or timer tick)
//   reply(m)         transmit on the port it arrived on (answers built in place: DHCP, DNS)
//   punt(m, reason)  hand to the management lcore (ARP, ICMP errors, unresolved next hop)
//   drop(m, reason)  free, counted under the stage's named reason
//   commit(m)        hand to a durable writer; the packet leaves only after its record is on
//                    disk (DHCP ACKs: see nf/dhcp/service.h)
//   handoff(m, w)    give to worker w, which owns the packet's state (software dispatch where
//                    RSS cannot see the key, e.g. DHCP's chaddr)
//
// Emit only records; it makes no DPDK call, so stages run unchanged in unit tests with fake
// mbufs. The worker flushes Emit after the chain: TX buffers to ethdev, punts to the ring,
// drops to rte_pktmbuf_free_bulk. Counters are per lcore and plain (single writer); the
// management lcore reads them. The invariant tests check is conservation: for every stage,
// in == next + tx + reply + punt + sum(drops).
//
// State: a stage object exists per worker lcore (so it may keep per-lcore tables); shared
// configuration comes from the immutable Snapshot in StageCtx, which the worker loads once per
// burst and which stays valid until the worker reports a quiescent state.
#pragma once

#include <rte_mbuf.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "nf/net/packet_meta.h"

namespace nf {

inline constexpr uint16_t kMaxBurst = 32;
inline constexpr uint16_t kMaxPorts = 8;
inline constexpr uint16_t kMaxStages = 8;
inline constexpr uint16_t kMaxDropReasons = 24;
inline constexpr uint16_t kMaxWorkers = 16;
inline constexpr uint16_t kTxBufCap = 2 * kMaxBurst;  // flushed at >= kMaxBurst after each chain

struct Burst {
  uint16_t n = 0;
  // Set by the worker when every packet parsed as a valid, unpadded IPv4 datagram, so the
  // input stage can pass the burst on without looking at each packet again.
  bool clean = false;
  rte_mbuf* pkts[kMaxBurst];
};

// Metadata lives in the mbuf private area, reserved by the mempool (drivers-glue).
inline PacketMeta& meta(rte_mbuf* m) {
  return *static_cast<PacketMeta*>(rte_mbuf_to_priv(m));
}

struct alignas(64) StageCounters {
  uint64_t calls;
  uint64_t pkts;
  uint64_t cycles;      // TSC cycles spent in the stage, over the timed bursts only
  uint64_t timed_pkts;  // packets of the timed bursts: cycles / timed_pkts = cycles/packet
  uint64_t next;
  uint64_t tx;
  uint64_t reply;
  uint64_t punt;
  uint64_t drop;
  uint64_t commit;
  uint64_t handoff;
  uint64_t drops[kMaxDropReasons];
};

struct Snapshot;

struct StageCtx {
  const Snapshot* snap;
  uint64_t now_tsc;
  uint16_t worker;  // 0..N-1
};

// The outcome sink of one worker. Stages call its inline methods; the worker drains it.
class Emit {
 public:
  struct TxBuf {
    uint16_t n;
    rte_mbuf* pkts[kTxBufCap];
  };

  // Starts a stage: its `next` packets go to the buffer the previous stage did not fill.
  // Outcome totals are taken as buffer deltas in end_stage(), so the per-packet calls below
  // touch no counter (except per-reason drops and replies, which are rare).
  void begin_stage(StageCounters* c) {
    cur_ = c;
    out_ ^= 1;
    bufs_[out_].n = 0;
    bufs_[out_].clean = false;
    punt0_ = punt_.n;
    drop0_ = drop_.n;
    reply0_ = replies_;
    commit0_ = commit_.n;
    handoff0_ = handoffs_;
    tx0_ = tx_total();
  }
  void end_stage() {
    const uint64_t tx = tx_total() - tx0_;
    const uint64_t reply = replies_ - reply0_;
    cur_->next += bufs_[out_].n;
    cur_->punt += punt_.n - punt0_;
    cur_->drop += drop_.n - drop0_;
    cur_->reply += reply;
    cur_->tx += tx - reply;
    cur_->commit += commit_.n - commit0_;
    cur_->handoff += handoffs_ - handoff0_;
  }
  void next(rte_mbuf* m) {
    Burst& b = bufs_[out_];
    b.pkts[b.n++] = m;
  }
  void tx(rte_mbuf* m, uint16_t port) { to_port(m, port); }
  // The same for a whole batch (pkts[i] to ports[i]), appended run by run. Stages that
  // transmit most of a burst collect locally and call this once: a per-packet tx() has to
  // read and write the buffer's count in memory, which packet writes may alias.
  void tx_batch(rte_mbuf* const* pkts, const uint16_t* ports, uint16_t n) {
    uint16_t i = 0;
    while (i < n) {
      const uint16_t p = ports[i];
      uint16_t j = static_cast<uint16_t>(i + 1);
      while (j < n && ports[j] == p) ++j;
      TxBuf& b = tx_[p];
      std::copy(pkts + i, pkts + j, b.pkts + b.n);
      b.n = static_cast<uint16_t>(b.n + (j - i));
      i = j;
    }
  }
  void reply(rte_mbuf* m) {
    replies_++;
    to_port(m, m->port);
  }
  void punt(rte_mbuf* m, PuntReason r) {
    meta(m).punt = r;
    punt_.pkts[punt_.n++] = m;
  }
  void commit(rte_mbuf* m) { commit_.pkts[commit_.n++] = m; }
  void handoff(rte_mbuf* m, uint16_t worker) {
    handoffs_++;
    handoff_pending_ = true;
    Burst& b = handoff_[worker];
    b.pkts[b.n++] = m;
  }
  void drop(rte_mbuf* m, uint8_t reason) {
    cur_->drops[reason]++;
    drop_.pkts[drop_.n++] = m;
  }

  Burst& next_burst() { return bufs_[out_]; }
  // Hands the whole of `in` on to the next stage (a stage's fast path for uniform bursts).
  void next_all(const Burst& in) {
    Burst& b = bufs_[out_];
    std::copy(in.pkts, in.pkts + in.n, b.pkts + b.n);
    b.n = static_cast<uint16_t>(b.n + in.n);
  }
  Burst& punts() { return punt_; }
  Burst& commits() { return commit_; }
  // Anything for the commit or handoff rings (cleared by the worker when it flushes them).
  bool side_pending() const { return commit_.n || handoff_pending_; }
  void side_flushed() { handoff_pending_ = false; }
  Burst& handoffs(uint16_t worker) { return handoff_[worker]; }
  Burst& drops() { return drop_; }
  TxBuf& txbuf(uint16_t port) { return tx_[port]; }
  void set_nb_ports(uint16_t n) { nb_ports_ = n; }

 private:
  void to_port(rte_mbuf* m, uint16_t port) {
    TxBuf& b = tx_[port];
    b.pkts[b.n++] = m;
  }

  uint32_t tx_total() const {
    uint32_t t = 0;
    for (uint16_t p = 0; p < nb_ports_; ++p) t += tx_[p].n;
    return t;
  }

  StageCounters* cur_ = nullptr;
  Burst bufs_[2];
  uint8_t out_ = 0;
  uint16_t punt0_ = 0;
  uint16_t drop0_ = 0;
  uint32_t tx0_ = 0;
  uint64_t replies_ = 0;
  uint64_t reply0_ = 0;
  uint16_t commit0_ = 0;
  uint64_t handoffs_ = 0;
  uint64_t handoff0_ = 0;
  bool handoff_pending_ = false;
  Burst punt_;
  Burst drop_;
  uint16_t nb_ports_ = 0;
  TxBuf tx_[kMaxPorts]{};
  // Rare outcomes last, so the buffers every burst touches stay together.
  Burst commit_;
  Burst handoff_[kMaxWorkers];
};

class Stage {
 public:
  virtual ~Stage() = default;
  // Every packet of `in` must receive exactly one outcome through `out`.
  virtual void process(Burst& in, const StageCtx& ctx, Emit& out) noexcept = 0;
  // Stages with timers or work from other threads (lease aging, operator commands) say so;
  // the worker then calls poll() once per loop, busy or idle. Packets it emits are the
  // stage's own (not outcomes of received ones) and are counted apart.
  virtual bool wants_poll() const { return false; }
  virtual void poll(const StageCtx& /*ctx*/, Emit& /*out*/) noexcept {}
};

namespace dhcp {
class Service;
}
namespace dns {
struct StatsTable;
}
namespace lb {
struct StatsTable;
}
namespace nat {
struct StatsTable;
}

// What a stage may need from the runtime when it is made (services shared by all workers).
struct StageEnv {
  uint16_t workers = 1;
  dhcp::Service* dhcp = nullptr;     // journal, recovery, operator commands (none in benchmarks)
  uint32_t dhcp_max_leases = 65536;  // lease table size per worker
  rte_mempool* pool = nullptr;       // for packets a stage creates (from poll())
  uint64_t tsc_hz = 0;               // to turn StageCtx::now_tsc into time
  uint64_t tsc0 = 0;                 // TSC at unix_ms0
  int64_t unix_ms0 = 0;
  dns::StatsTable* dns_stats = nullptr;  // where the dns stage's counters are read from
  uint32_t lb_max_flows = 1u << 20;      // the lb stage's flow table size per worker
  lb::StatsTable* lb_stats = nullptr;    // where the lb stage's counters are read from
  uint32_t nat_max_sessions = 1u << 18;  // the nat stage's session table size per worker
  nat::StatsTable* nat_stats = nullptr;  // where the nat stage's counters are read from
};

// What the pipeline builder knows about a stage: its config name, its drop reason names (the
// index is the reason code passed to Emit::drop) and how to make one instance per worker.
struct StageDescriptor {
  std::string_view name;
  std::span<const std::string_view> drop_names;
  std::unique_ptr<Stage> (*make)(uint16_t worker, const StageEnv& env);
};

// The registry of built-in stages (pipelines/registry.cc).
std::span<const StageDescriptor> stage_registry();
const StageDescriptor* find_stage(std::string_view name);

}  // namespace nf
