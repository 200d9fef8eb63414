// The DHCP server's decisions (RFC 2131 sections 3, 4.3, 4.4): one lease shard per worker.
//
// Theory of operation
// -------------------
// A Shard owns the leases of the clients whose key hashes to it (ClientKey::hash() % shards;
// the stage hands every other client's packets to their owner, so each lease has exactly one
// writer and no lock). It is pure: it sees a parsed Request, the pool the request belongs to
// and the time, and answers with a Decision - which message to send, with what address and
// lease time, and which journal record must be durable before the reply leaves. It never
// touches a packet, a file or a clock of its own, so every path is unit-tested.
//
// State per lease: OFFERED (held for offer_hold seconds), BOUND (until its expiry), DECLINED
// (quarantined, detached from any client), EXPIRED (address given back, kept as a hint so a
// returning client gets the same address if nobody took it). Which addresses are in use is
// the shared bitmap of pool.h; a shard claims an address there before offering it.
//
// Tables are sized once (max_leases) and never allocate afterwards: a slab of Lease records,
// and two open-addressing indexes (by client, by address) with backward-shift deletion.
#pragma once

#include <cstdint>
#include <vector>

#include "nf/dhcp/pool.h"
#include "nf/dhcp/record.h"
#include "nf/dhcp/wire.h"

namespace nf::dhcp {

enum class LeaseState : uint8_t { kUnused = 0, kOffered, kBound, kDeclined, kExpired };
const char* state_name(LeaseState s);

struct Lease {
  uint32_t addr = 0;
  LeaseState state = LeaseState::kUnused;
  uint8_t htype = 0;
  uint8_t mac[6] = {};
  uint32_t lease_time = 0;
  int64_t expire = 0;  // Unix seconds: end of the lease, the offer hold or the quarantine
  AddrBit bit;         // valid while the address is claimed (OFFERED, BOUND, DECLINED)
  ClientKey key;
  uint8_t host_len = 0;
  char host[32] = {};
};

// Why a request got no reply (or a NAK): counted per reason by the stage.
enum class Outcome : uint8_t {
  kReply = 0,      // OFFER, ACK (maybe needing a durable record), NAK, INFORM's ACK
  kNoPool,         // no pool for this interface or relay
  kRateLimited,    // the client (or relay circuit) sent faster than client_rate
  kPoolExhausted,  // no address left to offer
  kTableFull,      // max_leases reached
  kOtherServer,    // SELECTING a different server: our offer is withdrawn
  kNotOurs,        // RENEW/REBIND/INIT-REBOOT for a lease we do not know (stay silent)
  kReleased,       // RELEASE handled (no reply by definition)
  kDeclined,       // DECLINE handled
  kIgnored,        // DECLINE/RELEASE that matches no lease of the client
  kCount
};

struct Decision {
  Outcome outcome = Outcome::kIgnored;
  uint8_t reply = 0;  // kOffer, kAck, kNak or 0 (no reply)
  uint32_t yiaddr = 0;
  uint32_t lease_time = 0;  // 0: no lease time options (INFORM, NAK)
  uint32_t server_id = 0;
  const PoolView* pool = nullptr;
  const char* hostname = nullptr;  // from a reservation
  bool rapid = false;              // ACK to a DISCOVER (RFC 4039): carries option 80
  bool record = false;             // `rec` must be durable before the reply leaves
  LeaseRecord rec{};
};

struct ShardStats {
  uint64_t offers, acks, naks, informs, releases, declines, rapid_acks;
  uint64_t expired, offers_timed_out, quarantine_ended;
  uint64_t bound;  // gauge
};

class Shard {
 public:
  Shard(uint32_t capacity, uint16_t index, uint16_t count);

  // The pool for a request that arrived on `port` (giaddr decides for relayed ones).
  static const PoolView* pool_for(const View& v, const Request& r, uint16_t port);

  // `server_addr`: the address the request was sent to (or our address on the ingress port);
  // `l2_src`: the Ethernet source (the rate limit key for clients on the link); `now_ms`:
  // Unix time in milliseconds.
  Decision handle(const View& v, const PoolView& pool, const Request& r, uint32_t server_addr,
                  const uint8_t* l2_src, int64_t now_ms);

  // After handle(): the bound lease the client left behind by moving to another address (a
  // kRelease record, so the journal agrees with the table), if any.
  bool take_left_behind(LeaseRecord& rec);

  // Ages leases (a bounded number of slots per call, so it may run on every idle loop).
  void age(int64_t now, uint32_t budget = 64);

  // Loads a recovered record (start-up, before the fast path runs).
  void restore(const LeaseRecord& r, AddrBlocks& blocks, int64_t now);

  // An operator releases `addr`: true (and a kRelease record in `rec`) if this shard held it.
  bool release_addr(uint32_t addr, int64_t now, LeaseRecord& rec);

  // The owning shard of a request: a stable hash of the client's key.
  static ClientKey key_of(const Request& r);
  uint16_t owner_of(const ClientKey& k) const {
    return static_cast<uint16_t>(count_ > 1 ? k.hash() % count_ : 0);
  }

  const ShardStats& stats() const { return st_; }
  uint32_t capacity() const { return static_cast<uint32_t>(slab_.size()); }
  uint32_t used() const { return used_; }
  const Lease* find_addr(uint32_t a) const;
  const Lease* find_client(const ClientKey& k) const;

 private:
  // Open addressing over slab indexes; `Key` tells how to compare and hash.
  struct Index {
    std::vector<uint32_t> slot;  // slab index + 1; 0 = empty
    uint32_t mask = 0;
  };
  static constexpr uint32_t kNone = UINT32_MAX;

  uint32_t find_by_client(const ClientKey& k, uint64_t h) const;
  uint32_t find_by_addr(uint32_t a) const;
  void index_client(uint32_t li);
  void unindex_client(uint32_t li);
  void index_addr(uint32_t li);
  void unindex_addr(uint32_t li);
  uint32_t alloc_slot();
  void free_slot(uint32_t li);
  uint32_t allocate(const View& v, const PoolView& p);
  bool claim(const View& v, uint32_t a, AddrBit& bit) const;
  void give_back(Lease& l, LeaseState to, int64_t now);
  void leave(Lease& l, int64_t now);  // give_back to EXPIRED, remembering a bound lease
  bool rate_ok(const View& v, const Request& r, const uint8_t* l2_src, int64_t now_ms);
  uint32_t lease_time_for(const PoolView& p, const Request& r) const;
  const DhcpReservation* reservation(const PoolView& p, const Request& r, const ClientKey& k) const;
  void fill_record(Decision& d, RecType t, const Lease& l) const;
  Decision bind(const View& v, const PoolView& p, const Request& r, uint32_t li, uint32_t sid,
                int64_t now, uint8_t reply);
  Decision nak(const PoolView& p, uint32_t sid) const;

  std::vector<Lease> slab_;
  std::vector<uint32_t> free_;
  Index by_client_, by_addr_;
  uint32_t used_ = 0;
  uint32_t hand_ = 0;  // aging clock hand
  uint16_t index_, count_;
  std::vector<uint32_t> cursor_;  // per pool: where the next dynamic search starts
  // Per-client token buckets, direct-mapped (a collision just shares a bucket).
  struct Bucket {
    uint64_t key;
    int64_t last_ms;
    double tokens;
  };
  std::vector<Bucket> buckets_;
  ShardStats st_{};
  LeaseRecord left_{};
  bool has_left_ = false;
};

}  // namespace nf::dhcp
