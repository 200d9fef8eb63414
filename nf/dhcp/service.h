// The DHCP service: what the DHCP stages of all workers share, and the journal thread.
//
// Theory of operation
// -------------------
// Lease state is owned per worker: worker w's DHCP stage holds the Shard for the clients whose
// key hashes to w. Broadcasts and a relay's packets all arrive on one RSS queue, so the stage
// hands a packet whose client belongs elsewhere to the owner's handoff ring (software
// dispatch, as RSS cannot look into chaddr); with one worker nothing moves. Addresses are
// claimed in the shared bitmap (pool.h), so shards never need to agree on anything else.
//
// Durability: a stage never writes a file. An ACK is built in place, its LeaseRecord is put
// in the mbuf's tailroom, and the mbuf goes to the worker's commit ring. The journal thread
// (one, not an lcore: it sleeps in fdatasync) drains every commit ring, appends all the
// records it found with one write and one fdatasync (group commit: the longer a sync takes,
// the more records the next one carries), and only then passes the ACKs to each worker's
// durable ring, which the worker transmits like any other packet. A crash before the sync
// loses only ACKs that never left; nothing a client has seen is ever lost.
#pragma once

#include <rte_mbuf.h>
#include <rte_ring.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "nf/dhcp/journal.h"
#include "nf/dhcp/pool.h"
#include "nf/dhcp/server.h"

namespace nf::dhcp {

// Where a committed packet's record travels: in the tailroom, 8-byte aligned.
inline LeaseRecord* record_area(rte_mbuf* m) {
  auto p = reinterpret_cast<uintptr_t>(rte_pktmbuf_mtod(m, char*) + m->data_len);
  p = (p + 7) & ~uintptr_t{7};
  auto* end = static_cast<char*>(m->buf_addr) + m->buf_len;
  if (reinterpret_cast<char*>(p) + sizeof(LeaseRecord) > end) return nullptr;
  return reinterpret_cast<LeaseRecord*>(p);
}

// The DHCP stage's counters, read racily by the control socket.
struct alignas(64) StageStats {
  uint64_t by_type[9];  // requests by message type
  uint64_t handed_off;
  uint64_t operator_releases;
};

struct JournalStats {
  uint64_t batches;
  uint64_t records;
  uint64_t max_batch;
  uint64_t acks_released;
  uint64_t errors;        // write or sync failures: those ACKs were never sent
  uint64_t durable_full;  // a worker's durable ring was full: ACK not sent
  uint64_t sync_ns_total;
};

class Service {
 public:
  Service(std::shared_ptr<const Config> cfg, uint16_t workers);
  ~Service();

  // Recovers the journal; the report is logged by the caller. "" or an error.
  std::string open();
  const RecoveryReport& recovery() const { return report_; }
  // Creates the rings and starts the journal thread, pinned to `cpu` (-1: anywhere).
  std::string start(int cpu);
  void stop();

  AddrBlocks& blocks() { return blocks_; }
  uint16_t workers() const { return workers_; }
  const DhcpConfig& params() const { return cfg_->dhcp; }
  // The records recovered for worker w's shard, oldest first (consumed by its stage).
  std::vector<LeaseRecord> take_recovered(uint16_t w);

  rte_ring* commit_ring(uint16_t w) const { return commit_[w]; }
  rte_ring* durable_ring(uint16_t w) const { return durable_[w]; }
  rte_ring* command_ring(uint16_t w) const { return command_[w]; }

  // Each stage registers what the control socket may read.
  void attach(uint16_t w, const Shard* s, const StageStats* st);

  // Control socket.
  std::string show_leases(const std::string& filter) const;
  std::string show_stats() const;
  bool release(const std::string& what, std::string& out);

 private:
  void run();

  std::shared_ptr<const Config> cfg_;
  uint16_t workers_;
  AddrBlocks blocks_;
  Journal journal_;
  RecoveryReport report_;
  std::vector<std::vector<LeaseRecord>> recovered_;
  std::vector<rte_ring*> commit_, durable_, command_;
  std::vector<const Shard*> shards_;
  std::vector<const StageStats*> stage_stats_;
  JournalStats js_{};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace nf::dhcp
