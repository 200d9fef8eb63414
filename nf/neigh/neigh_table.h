// Neighbour (ARP) table of the management lcore.
//
// Theory of operation
// -------------------
// Owned by the management lcore only; workers never touch it. What workers see is its
// publication: an adjacency slot (AdjTable, one atomic 64-bit word: valid | port | MAC) and a
// /32 route to that slot in the FIB. Resolution follows RFC 826 and the Linux state machine
// in spirit:
//
//   INCOMPLETE --reply--> REACHABLE --reachable_ms--> PROBE --reply--> REACHABLE
//        |                                              |
//        +--`probes` unanswered---> (deleted, or FAILED for gateways and statics)
//
// A packet whose next hop is unresolved is punted by a worker and queued here (bounded per
// entry and in total; the oldest is dropped first). When the reply arrives the queue is sent;
// when resolution fails each queued packet gets ICMP host unreachable (RFC 1812 4.3.3.1).
// PROBE entries stay published, so traffic keeps flowing while they are re-confirmed by
// unicast requests. Slots of deleted entries are reused only after an RCU grace period, so a
// worker holding the old /32 result never sends to a recycled MAC.
//
// Time is injected (milliseconds) and every side effect goes through NeighActions, which is
// what makes the table testable without EAL. Actions may call back into the table (an ICMP
// error for a dropped packet is itself routed, and may need this very neighbour): every
// method leaves the table consistent before it runs an action on a queue it has taken.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "nf/net/addr.h"

namespace nf {

class NeighActions {
 public:
  virtual ~NeighActions() = default;
  // ARP request for `target`; unicast to `dst` when non-null (probing), broadcast otherwise.
  virtual void send_request(uint16_t port, uint32_t target, const MacAddr* dst) = 0;
  virtual void publish(uint32_t slot, uint32_t ip, const MacAddr& mac, uint16_t port) = 0;
  virtual void unpublish(uint32_t slot, uint32_t ip) = 0;
  virtual void transmit(void* pkt, uint16_t port, const MacAddr& dst) = 0;
  virtual void unreachable(void* pkt) = 0;  // resolution failed: ICMP error, then free
  virtual void discard(void* pkt) = 0;      // queue overflow: free, counted
  virtual uint64_t grace_start() = 0;
  virtual bool grace_done(uint64_t token) = 0;
};

enum class NeighState : uint8_t { kIncomplete, kReachable, kProbe, kFailed, kStatic };
const char* neigh_state_name(NeighState s);

struct NeighView {
  uint32_t ip;
  uint16_t port;
  MacAddr mac;
  NeighState state;
  uint32_t slot;
  bool gateway;
  uint32_t queued;
  uint64_t age_ms;  // since last confirmation
};

struct NeighStats {
  uint64_t requests_sent = 0;
  uint64_t resolved = 0;
  uint64_t failed = 0;
  uint64_t queue_dropped = 0;
  uint64_t table_full = 0;
  uint64_t evicted = 0;
};

class NeighTable {
 public:
  NeighTable(const NeighbourParams& p, uint32_t nslots, NeighActions& act);

  // A worker could not forward `pkt` to next hop `ip` on `port`.
  void resolve(uint32_t ip, uint16_t port, void* pkt, uint64_t now_ms);
  // An ARP packet from (ip, mac) on port. `create` when RFC 826 allows adding a new entry
  // (the request targeted one of our addresses, or it is a reply to us).
  void learn(uint32_t ip, const MacAddr& mac, uint16_t port, bool create, uint64_t now_ms);
  void tick(uint64_t now_ms);

  // Configuration sync (start and every reload): the gateways the FIB refers to, the static
  // entries, and which addresses are still connected. Returns slots for `gateways` in order.
  std::vector<uint32_t> sync(const std::vector<std::pair<uint32_t, uint16_t>>& gateways,
                             const std::vector<StaticNeighbour>& statics, const Config& cfg,
                             uint64_t now_ms);
  uint32_t slot_of(uint32_t ip) const;  // UINT32_MAX if none
  // The address a slot was allocated for (0 if free): what a route to that slot resolves.
  uint32_t ip_of_slot(uint32_t slot) const { return slot < slot_ip_.size() ? slot_ip_[slot] : 0; }
  // Slots freed by sync() may still be named by the FIB that is running until the new snapshot
  // is published: they are held until then, and only then start their grace period.
  void release_held();

  std::vector<NeighView> list(uint64_t now_ms) const;
  const NeighStats& stats() const { return stats_; }
  uint32_t pending_total() const { return pending_total_; }
  void set_params(const NeighbourParams& p) { p_ = p; }

 private:
  struct Entry {
    uint32_t ip;
    uint16_t port;
    MacAddr mac;
    NeighState state;
    uint32_t slot;
    uint64_t confirmed_ms;
    uint64_t next_ms;  // next request or state change
    uint32_t sent;     // requests sent in the current round
    bool gateway;
    bool published;
    std::deque<void*> pending;
  };

  Entry* create(uint32_t ip, uint16_t port, uint64_t now_ms);
  void remove(uint32_t ip);
  void set_resolved(Entry& e, const MacAddr& mac, uint64_t now_ms);
  void fail(Entry& e, uint64_t now_ms);
  void flush_pending(Entry& e, bool send);
  void reclaim();

  NeighbourParams p_;
  NeighActions& act_;
  std::unordered_map<uint32_t, Entry> entries_;
  std::vector<uint32_t> free_slots_;
  std::vector<std::pair<uint32_t, uint64_t>> retiring_;  // slot, grace token
  std::vector<uint32_t> held_;                           // freed during sync(), see release_held
  std::vector<uint32_t> slot_ip_;
  bool holding_ = false;
  uint32_t pending_total_ = 0;
  NeighStats stats_;
};

}  // namespace nf
