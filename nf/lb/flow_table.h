// The per-worker flow table of the L4 load balancer and router NAT: connection records
// indexed by their 5-tuple in each direction, looked up in bursts with prefetching.
//
// Theory of operation
// -------------------
// One table per worker lcore, used by that lcore only: no locks, no atomics. Both directions
// of a NAT flow must reach the worker that owns it (RSS / rte_flow steering or a handoff ring,
// the stage's business). Counters are plain integers the management lcore may read racily.
//
// Memory. The record pool (capacity x 64 B), the free stack (capacity x 4 B) and the index
// are allocated once in the constructor (mmap, 2 MiB aligned, MADV_HUGEPAGE, and touched so
// page faults happen there and not on the fast path; the pages land on the NUMA node of the
// constructing thread). Nothing is allocated afterwards.
//
// Records. A FlowRecord is one cache line: the keys it is indexed under (key[0] client->VIP,
// key[1] the reply as it reaches the appliance after NAT; DSR flows have key[0] only), the
// expiry, and the stage's fields (service, real, NAT address and port, TCP state, flags,
// packet count, aux). The table owns keys, expiry and nkeys; insert() zeroes the rest.
//
// Index. CRC32C (rte_hash_crc.h) of the 16-byte key in two chains: h1 = crc(lo, hi) picks the
// primary bucket by multiply-shift range reduction (any bucket count, not only powers of two),
// h2 = crc(hi, lo) gives a 16-bit signature (never 0, which marks a free slot). A bucket is
// one cache line of 8 (signature, reference) slots; a reference is (record index + 1) << 1 |
// direction. The alternate bucket is F(sig) - b mod nbuckets, an involution computable from
// the slot alone, so a resident entry can be moved without rehashing its key (cuckoo hashing,
// Pagh and Rodler 2001; the layout follows MemC3 / rte_hash: signatures in the bucket, keys
// out of line). Insert puts the entry in its primary bucket while that has room, else in the
// other one, and counts it in the primary's `spill` (a slot bit `away` marks it, so moves
// keep the count right); when both are full a breadth-first search (at most kBfsNodes
// buckets expanded, paths of at most kBfsDepth moves, no bucket twice on a path) finds a
// chain of moves ending in a free slot. With 8-way buckets and two choices the index fills to
// about 99 % of its slots before an insert fails (the tests assert > 95 %); the automatic size
// keeps 2 x capacity entries (every flow with both keys) under 90 % of the slots, so the
// record pool, not the index, is what runs out. Primary first (as rte_hash) rather than the
// emptier bucket: at the loads a flow table runs at, most primaries never spill, so most
// lookups read one bucket line instead of two.
//
// Lookup (lookup_bulk, up to 64 keys): stage 1 hashes every key and prefetches its primary
// bucket, stage 2 matches signatures (SSE2, 8 slots at once), prefetches the first candidate
// record and, for a primary that spilled, the other bucket, which stage 2b then matches;
// stage 3 compares full keys; a dead record found there is released and reported as a miss.
// Cost per key: one bucket line (two when its primary spilled) and one record line; a miss
// touches no record unless a 16-bit signature collides (about 8 in 65536 per bucket
// searched).
//
// Time. `now` is a uint64 in ticks of the caller's choosing (the stage passes TSC cycles or
// milliseconds) and every timeout is in the same unit. A record is alive while now < expire
// and dead from now >= expire on: a flow touched with timeout T at time t is found at
// t + T - 1 and gone at t + T. A dead record is released when a lookup, an insert of one of its
// keys, or sweep() meets it; until then it occupies its slot. sweep(now, budget) looks at
// `budget` records from a rotating cursor (the stage calls it once per burst), so a table of
// C records is scanned completely every C / budget bursts; the dead ones it finds are
// released in groups with their buckets prefetched together.
//
// Full table. insert() fails (nullptr, counted in insert_full) when the pool is empty or the
// index has no room; it never evicts a live flow. The stage then forwards statelessly by
// consistent hash (DSR) or answers with SYN cookies (NAT). A failing insert costs the two
// key hashes and a look into their buckets (the client key's were just fetched by the
// lookup that missed): it must still return a flow created earlier in the same burst.
// Adversarial keys: CRC32C is linear, so a sender who controls source addresses and ports can
// craft keys that share both buckets. Then only those keys fail to insert (after a bounded
// search); lookups still read two buckets at most. The stage's SYN-flood fallback covers it.
//
// Pointers. A FlowRecord* stays valid until the record is erased or released as expired;
// use one `now` per burst so a record returned by lookup_bulk is not released by a later call
// in the same burst.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace nf::lb {

enum FlowKind : uint8_t {
  kFlowConn = 0,     // a connection 5-tuple
  kFlowPersist = 1,  // persistence: this client -> this real (src = client, ports 0)
};

// 16 bytes with no padding, compared and hashed as two 64-bit words. Addresses and ports are
// in network byte order as on the wire; zone (service or VRF id) in host order.
struct FlowKey {
  uint32_t src = 0;
  uint32_t dst = 0;
  uint16_t sport = 0;
  uint16_t dport = 0;
  uint8_t proto = 0;
  uint8_t kind = kFlowConn;
  uint16_t zone = 0;

  static FlowKey conn(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint8_t proto,
                      uint16_t zone = 0) {
    return FlowKey{src, dst, sport, dport, proto, kFlowConn, zone};
  }
  // A connection key as it comes off the wire, written as two 8-byte words: `addrs` is the
  // IPv4 header's source and destination (bytes 12..19) and `ports` the L4 header's first four
  // bytes, both as loaded from the packet. A burst's keys are read back whole right after they
  // are written; a key assembled field by field (five narrow stores) and then copied cannot be
  // store-forwarded and stalls about 15 cycles a packet.
  static void store_conn(FlowKey* to, uint64_t addrs, uint32_t ports, uint8_t proto) {
    static_assert(std::endian::native == std::endian::little, "the word layout below");
    const uint64_t w1 = ports | uint64_t{proto} << 32;  // kind kFlowConn (0), zone 0
    std::memcpy(reinterpret_cast<unsigned char*>(to), &addrs, 8);
    std::memcpy(reinterpret_cast<unsigned char*>(to) + 8, &w1, 8);
  }
  static FlowKey persist(uint32_t client, uint16_t service) {
    return FlowKey{client, 0, 0, 0, 0, kFlowPersist, service};
  }
  bool operator==(const FlowKey& o) const {
    uint64_t a[2];
    uint64_t b[2];
    std::memcpy(a, this, 16);
    std::memcpy(b, &o, 16);
    return ((a[0] ^ b[0]) | (a[1] ^ b[1])) == 0;
  }
};
static_assert(sizeof(FlowKey) == 16);
static_assert(std::has_unique_object_representations_v<FlowKey>, "FlowKey must have no padding");

struct alignas(64) FlowRecord {
  FlowKey key[2];     // table: [0] client -> VIP, [1] reply after NAT (zero when nkeys == 1)
  uint64_t expire;    // table: dead when now >= expire
  uint32_t nat_addr;  // stage fields from here on (zeroed by insert)
  uint16_t nat_port;
  uint16_t service;
  uint16_t real;
  uint8_t tcp_state;  // nf/lb/tcp_state.h byte
  uint8_t flags;
  uint32_t packets;
  uint32_t aux;   // stage-defined (e.g. a TCP sequence offset)
  uint8_t nkeys;  // table: 0 = free, 1 = key[0] only, 2 = both
  uint8_t reserved[3];
};
static_assert(sizeof(FlowRecord) == 64);

struct Hit {
  FlowRecord* rec;  // nullptr: miss (or expired)
  uint8_t dir;      // which key matched: 0 = key[0], 1 = key[1]
};

struct FlowCounters {
  uint64_t lookups;
  uint64_t hits;
  uint64_t inserts;          // records created
  uint64_t insert_existing;  // insert() found key 0 alive and returned its record
  uint64_t insert_full;      // no free record, or no room in the index
  uint64_t insert_conflict;  // key 1 belongs to another live flow (or equals key 0)
  uint64_t expired;          // released because dead (lookup, insert or sweep)
  uint64_t erased;           // released by erase()
  uint64_t moves;            // cuckoo displacements
};

class FlowTable {
 public:
  static constexpr unsigned kBulkMax = 64;
  static constexpr unsigned kSlots = 8;  // per bucket
  static constexpr unsigned kBfsNodes = 64;
  static constexpr unsigned kBfsDepth = 4;
  static constexpr uint32_t kMaxCapacity = 1u << 30;

  // capacity: records (flows). buckets: index size; 0 = enough for 2 keys per flow at <= 90 %
  // load. Throws std::bad_alloc (or std::invalid_argument for capacity 0 or > kMaxCapacity).
  explicit FlowTable(uint32_t capacity, uint32_t buckets = 0);
  ~FlowTable();
  FlowTable(const FlowTable&) = delete;
  FlowTable& operator=(const FlowTable&) = delete;

  // n <= kBulkMax per call is the intended use; larger n is processed in chunks.
  void lookup_bulk(const FlowKey* keys, unsigned n, uint64_t now, Hit* out);
  Hit lookup(const FlowKey& k, uint64_t now) {
    Hit h;
    lookup_bulk(&k, 1, now, &h);
    return h;
  }

  // Creates a flow under k0 (and k1 when not null) alive until now + timeout. If k0 is already
  // a live flow's key[0], returns that record unchanged (*existed = true). Returns nullptr when
  // full, or when k1 equals k0 or is a live key of another flow (conflict), or k0 is a live
  // flow's key[1].
  FlowRecord* insert(const FlowKey& k0, const FlowKey* k1, uint64_t now, uint64_t timeout,
                     bool* existed = nullptr);

  // Starts fetching the index buckets of a key the caller will insert or look up soon (e.g.
  // the reply key of a new NAT flow, once the real and NAT port are chosen).
  void prefetch(const FlowKey& k) const;

  void touch(FlowRecord* r, uint64_t now, uint64_t timeout);  // expire = now + timeout
  void limit(FlowRecord* r, uint64_t now, uint64_t timeout);  // expire = min(expire, now + t)
  // touch() for the per-packet path: it writes only when the expiry would move by more than
  // timeout / 64 (or earlier), so the hits of a busy flow leave its record's cache line
  // clean and nothing has to be written back to memory for them. A flow therefore lives at
  // least 63/64 of its timeout after its last packet.
  void refresh(FlowRecord* r, uint64_t now, uint64_t timeout);
  void erase(FlowRecord* r);                      // no-op on a free record
  unsigned sweep(uint64_t now, unsigned budget);  // returns records released
  // sweep() paced by the clock rather than by the caller's calls: over any `period` ticks
  // every record is looked at once (capacity / period records per tick, at most kSweepMax
  // per call; a backlog beyond that is forgiven, not carried). A worker forwarding many
  // millions of packets per second then reads a record per hundreds of packets instead of one
  // per two, and an idle one still releases its dead flows within about a period of calls.
  static constexpr unsigned kSweepMax = 64;
  unsigned sweep_paced(uint64_t now, uint64_t period);

  uint32_t size() const { return size_; }  // records in use (live or dead but not released)
  uint32_t capacity() const { return capacity_; }
  uint32_t buckets() const { return nbuckets_; }
  uint64_t index_slots() const { return uint64_t{nbuckets_} * kSlots; }
  uint64_t index_used() const { return index_used_; }
  const FlowCounters& counters() const { return c_; }

  uint32_t index_of(const FlowRecord* r) const { return static_cast<uint32_t>(r - recs_); }
  FlowRecord* at(uint32_t i) { return &recs_[i]; }  // for iteration (nkeys == 0: free)

  // The index hash of a key: primary bucket hash (low 32 bits) and signature hash (high 32).
  static uint64_t hash(const FlowKey& k);

  // Called for every record the table frees (expiry found by lookup, insert or sweep, and
  // erase), before its keys leave the index: the owner gives back what the flow held
  // (least-connection counts, NAT ports). It must not call back into the table.
  using ReleaseHook = void (*)(void* ctx, FlowRecord* r);
  void set_release_hook(ReleaseHook fn, void* ctx) {
    hook_ = fn;
    hook_ctx_ = ctx;
  }

 private:
  struct alignas(64) Bucket {
    uint16_t sig[kSlots];
    uint32_t ref[kSlots];
    uint8_t away;  // bit s: slot s holds an entry whose primary bucket is the other one
    uint8_t pad0;
    uint16_t spill;  // entries whose primary is this bucket but which live in their other one
    uint8_t pad[12];
  };
  static_assert(sizeof(Bucket) == 64);
  struct Where {  // a key's two candidate buckets and its signature
    uint32_t b1, b2;
    uint16_t sig;
  };

  Where where(uint64_t h) const;
  Where primary(uint64_t h) const;  // b1 and sig only (b2 = b1 until computed)
  uint32_t alt_bucket(uint32_t b, uint16_t sig) const;
  uint32_t find(const FlowKey& k, const Where& w) const;  // the reference, 0 if absent
  bool index_add(const Where& w, uint32_t ref);
  bool make_room(const Where& w, uint32_t& bucket, unsigned& slot);
  void index_remove(const Where& w, uint32_t ref);
  void place(uint32_t b, unsigned slot, uint16_t sig, uint32_t ref, bool away, uint32_t primary);
  void prefetch_buckets(const Where& w) const;
  void release(FlowRecord* r);
  void release(FlowRecord* r, const Where* w);  // w: the buckets of each key
  FlowRecord* rec_of(uint32_t ref) const { return &recs_[(ref >> 1) - 1]; }

  FlowRecord* recs_ = nullptr;
  Bucket* buckets_ = nullptr;
  uint32_t* free_ = nullptr;
  uint32_t capacity_ = 0;
  uint32_t nbuckets_ = 0;
  uint32_t free_top_ = 0;
  uint32_t size_ = 0;
  uint32_t cursor_ = 0;
  uint64_t swept_until_ = 0;  // sweep_paced: the clock its records so far account for
  uint64_t index_used_ = 0;
  FlowCounters c_{};
  ReleaseHook hook_ = nullptr;
  void* hook_ctx_ = nullptr;
  struct Region {
    void* base = nullptr;
    size_t len = 0;
  };
  Region regions_[3];
};

}  // namespace nf::lb
