// A worker lcore: run to completion over one RX queue of every port.
//
// Loop: for each port, receive a burst, parse each frame once into PacketMeta, run the stage
// chain, hand punts to the management ring, free drops, transmit full TX buffers; then take
// what the management lcore injected; drain partial TX buffers every tx_drain_us; report a
// quiescent state (RCU) and reload the snapshot pointer. Nothing on this path allocates,
// locks or makes a system call.
#pragma once

#include <rte_ring.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "nf/core/stage.h"
#include "nf/runtime/rcu.h"
#include "nf/runtime/snapshot.h"

namespace nf::glue {
class Ports;
}

namespace nf {

// Written by the worker only; read (racily, 64-bit aligned) by the management lcore.
struct alignas(64) WorkerCounters {
  StageCounters stages[kMaxStages];
  StageCounters polled[kMaxStages];  // what stages emitted from poll() (their own packets)
  struct alignas(64) Port {
    uint64_t rx;
    uint64_t tx;
    uint64_t tx_refused;  // the PMD did not take them: freed
  } ports[kMaxPorts];
  uint64_t punt_by_reason[static_cast<int>(PuntReason::kCount)];
  uint64_t punt_ring_full;
  uint64_t commit_ring_full;  // the journal fell behind: those ACKs were not sent
  uint64_t handoff_ring_full;
  uint64_t handoffs_received;
  uint64_t durable_sent;  // packets released by the journal and transmitted
  uint64_t injected;
  uint64_t chain_end;  // left the last stage with `next`: dropped
  uint64_t loops;
  uint64_t busy_loops;
  uint64_t busy_cycles;  // from the end of the previous loop to the end of a busy one
  uint64_t snapshot_generation;
};

struct WorkerSetup {
  uint16_t id;  // worker index == RX/TX queue index == RCU reader id
  uint32_t lcore;
  const glue::Ports* ports;
  std::vector<std::unique_ptr<Stage>> chain;
  rte_ring* punt_ring;                   // worker -> management (SP/SC)
  rte_ring* inject_ring;                 // management -> worker (SP/SC); mbufs carry meta.out_port
  rte_ring* commit_ring = nullptr;       // worker -> durable writer (Emit::commit), SP/SC
  rte_ring* durable_ring = nullptr;      // durable writer -> worker: transmit on meta.out_port
  rte_ring* handoff_in = nullptr;        // other workers -> this one (MP/SC)
  std::vector<rte_ring*> handoff_rings;  // every worker's handoff_in, by worker id
  Rcu* rcu;
  const Published<Snapshot>* snapshot;
  const std::atomic<bool>* stop;
  uint64_t drain_tsc;
  uint32_t idle_sleep_us = 0;  // 0: poll without pause (the default)
};

class Worker {
 public:
  explicit Worker(WorkerSetup s);
  int run();  // the lcore entry point
  const WorkerCounters& counters() const { return c_; }
  uint16_t id() const { return s_.id; }
  uint32_t lcore() const { return s_.lcore; }

  // One burst through the chain and Emit's flush, without ethdev RX.
  void process_burst(Burst& b, StageCtx& ctx);
  static constexpr uint32_t kTimedEvery = 16;  // stage cycles are measured on 1 burst in 16
  void flush_port(uint16_t port);
  void flush_all();
  void poll_stages(StageCtx& ctx);
  void flush_side_outputs();
  void transmit_as_marked(rte_mbuf* const* pkts, unsigned n);

 private:
  WorkerSetup s_;
  WorkerCounters c_{};
  Emit emit_;
  uint16_t nb_ports_;
  uint32_t bursts_ = 0;
  uint32_t max_frame_[kMaxPorts];
  std::vector<size_t> pollers_;  // chain indexes of stages that want poll()
};

}  // namespace nf
