#include "nf/lb/flow_table.h"

#include <rte_hash_crc.h>
#include <rte_prefetch.h>
#include <sys/mman.h>

#include <new>
#include <stdexcept>

#include "nf/lb/tcp_state.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace nf::lb {
namespace {

constexpr uint32_t kSeedBucket = 0x6e666c31;
constexpr uint32_t kSeedSig = 0x6e666c32;
constexpr size_t kHuge = size_t{2} << 20;

uint32_t make_ref(uint32_t idx, unsigned dir) {
  return ((idx + 1) << 1) | dir;
}

// Multiply-shift range reduction (Lemire): uniform over [0, n) without a division.
uint32_t reduce(uint32_t h, uint32_t n) {
  return static_cast<uint32_t>((uint64_t{h} * n) >> 32);
}

}  // namespace

uint64_t FlowTable::hash(const FlowKey& k) {
  uint64_t w[2];
  std::memcpy(w, &k, sizeof w);
  // Two chains over the words in opposite orders: (u X + v, v X + u) with X = x^64 mod P is
  // invertible, so bucket and signature bits are independent functions of the key.
  const uint32_t a = rte_hash_crc_8byte(w[1], rte_hash_crc_8byte(w[0], kSeedBucket));
  const uint32_t b = rte_hash_crc_8byte(w[0], rte_hash_crc_8byte(w[1], kSeedSig));
  return uint64_t{a} | (uint64_t{b} << 32);
}

inline FlowTable::Where FlowTable::primary(uint64_t h) const {
  Where w;
  w.sig = static_cast<uint16_t>(h >> 48);
  w.sig += static_cast<uint16_t>(w.sig == 0);  // 0 marks a free slot
  w.b1 = reduce(static_cast<uint32_t>(h), nbuckets_);
  w.b2 = w.b1;  // not known yet
  return w;
}

inline FlowTable::Where FlowTable::where(uint64_t h) const {
  Where w = primary(h);
  w.b2 = alt_bucket(w.b1, w.sig);
  return w;
}

// F(sig) - b mod n: applying it twice gives b back, so either bucket finds the other.
inline uint32_t FlowTable::alt_bucket(uint32_t b, uint16_t sig) const {
  const uint32_t f = reduce(sig * 0x9e3779b1u, nbuckets_);
  return f >= b ? f - b : f + nbuckets_ - b;
}

namespace {

// Bit i set when slot i holds `sig` (sig 0: the free slots).
template <typename B>
inline unsigned match(const B& b, uint16_t sig) {
#if defined(__SSE2__)
  const __m128i s = _mm_load_si128(reinterpret_cast<const __m128i*>(b.sig));
  const __m128i eq = _mm_cmpeq_epi16(s, _mm_set1_epi16(static_cast<int16_t>(sig)));
  return static_cast<unsigned>(_mm_movemask_epi8(_mm_packs_epi16(eq, _mm_setzero_si128())));
#else
  unsigned m = 0;
  for (unsigned i = 0; i < FlowTable::kSlots; ++i) m |= unsigned{b.sig[i] == sig} << i;
  return m;
#endif
}

struct Mapped {
  void* base;
  size_t len;
  void* aligned;
};

// Anonymous memory on a 2 MiB boundary, asked for as transparent huge pages (the index and
// pool are read at random: 4 KiB pages would miss the TLB on nearly every access), and
// touched here so the faults happen now rather than on the fast path.
Mapped map_region(size_t bytes) {
  const size_t len = (bytes + kHuge - 1) / kHuge * kHuge + kHuge;
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  const uintptr_t a = (reinterpret_cast<uintptr_t>(p) + kHuge - 1) & ~(uintptr_t{kHuge} - 1);
  void* aligned = reinterpret_cast<void*>(a);
  (void)madvise(aligned, len - kHuge, MADV_HUGEPAGE);  // advisory: plain pages work too
  std::memset(aligned, 0, bytes);
  return Mapped{p, len, aligned};
}

}  // namespace

FlowTable::FlowTable(uint32_t capacity, uint32_t buckets) {
  if (capacity == 0 || capacity > kMaxCapacity)
    throw std::invalid_argument("flow table capacity out of range");
  if (buckets == 0) {
    // 2 keys per flow at <= 90 % of 8 slots per bucket.
    const uint64_t entries = uint64_t{capacity} * 2;
    buckets = static_cast<uint32_t>((entries * 10 + kSlots * 9 - 1) / (kSlots * 9));
  }
  capacity_ = capacity;
  nbuckets_ = buckets < 2 ? 2 : buckets;
  const size_t sizes[3] = {size_t{capacity_} * sizeof(FlowRecord),
                           size_t{nbuckets_} * sizeof(Bucket), size_t{capacity_} * 4};
  void* ptrs[3] = {};
  try {
    for (int i = 0; i < 3; ++i) {
      const Mapped m = map_region(sizes[i]);
      regions_[i] = Region{m.base, m.len};
      ptrs[i] = m.aligned;
    }
  } catch (...) {
    for (Region& r : regions_)
      if (r.base) munmap(r.base, r.len);
    throw;
  }
  recs_ = static_cast<FlowRecord*>(ptrs[0]);
  buckets_ = static_cast<Bucket*>(ptrs[1]);
  free_ = static_cast<uint32_t*>(ptrs[2]);
  // Pops hand out records 0, 1, 2...: a young table's flows sit together in memory.
  for (uint32_t i = 0; i < capacity_; ++i) free_[i] = capacity_ - 1 - i;
  free_top_ = capacity_;
}

FlowTable::~FlowTable() {
  for (Region& r : regions_)
    if (r.base) munmap(r.base, r.len);
}

uint32_t FlowTable::find(const FlowKey& k, const Where& w) const {
  // An entry away from its primary bucket is counted in the primary's spill.
  const Bucket* bs[2] = {&buckets_[w.b1], &buckets_[w.b2]};
  const int nb = w.b1 == w.b2 || bs[0]->spill == 0 ? 1 : 2;
  for (int i = 0; i < nb; ++i) {
    for (unsigned m = match(*bs[i], w.sig); m; m &= m - 1) {
      const uint32_t ref = bs[i]->ref[__builtin_ctz(m)];
      if (rec_of(ref)->key[ref & 1] == k) return ref;
    }
  }
  return 0;
}

bool FlowTable::index_add(const Where& w, uint32_t ref) {
  Bucket& p = buckets_[w.b1];
  const unsigned f1 = match(p, 0);
  const unsigned f2 = w.b2 == w.b1 ? 0 : match(buckets_[w.b2], 0);
  uint32_t b = 0;
  unsigned slot = 0;
  // The primary bucket while it has room: a lookup reads the other bucket only when the
  // primary has spilled, so most lookups cost one bucket line, not two.
  if (f1) {
    b = w.b1;
    slot = __builtin_ctz(f1);
  } else if (f2) {
    b = w.b2;
    slot = __builtin_ctz(f2);
  } else if (!make_room(w, b, slot)) {
    return false;
  }
  place(b, slot, w.sig, ref, b != w.b1, w.b1);
  ++index_used_;
  return true;
}

// Puts an entry into a free slot; `away` when b is not the entry's primary bucket, which
// then counts it in its spill.
inline void FlowTable::place(uint32_t b, unsigned slot, uint16_t sig, uint32_t ref, bool away,
                             uint32_t primary) {
  Bucket& bk = buckets_[b];
  bk.sig[slot] = sig;
  bk.ref[slot] = ref;
  const auto bit = static_cast<uint8_t>(1u << slot);
  if (away) {
    bk.away |= bit;
    ++buckets_[primary].spill;
  } else {
    bk.away &= static_cast<uint8_t>(~bit);
  }
}

// Breadth-first search for a chain of moves from a full candidate bucket to a free slot,
// then the moves from the free end back, so every intermediate state is a valid index.
bool FlowTable::make_room(const Where& w, uint32_t& bucket, unsigned& slot) {
  struct Node {
    uint32_t bucket;
    int16_t parent;  // -1: a candidate bucket of the new key
    uint8_t pslot;   // the slot in the parent bucket whose entry moves into this bucket
    uint8_t depth;   // moves from a root to here
  };
  Node q[kBfsNodes];
  unsigned tail = 0;
  q[tail++] = Node{w.b1, -1, 0, 0};
  if (w.b2 != w.b1) q[tail++] = Node{w.b2, -1, 0, 0};
  for (unsigned head = 0; head < tail; ++head) {
    const Node nd = q[head];
    const Bucket& from = buckets_[nd.bucket];
    uint32_t alts[kSlots];
    for (unsigned s = 0; s < kSlots; ++s) {
      alts[s] = alt_bucket(nd.bucket, from.sig[s]);
      rte_prefetch0(&buckets_[alts[s]]);
    }
    for (unsigned s = 0; s < kSlots; ++s) {
      const uint32_t a = alts[s];
      if (a == nd.bucket) continue;
      bool on_path = false;
      for (int i = static_cast<int>(head); i >= 0; i = q[i].parent)
        if (q[i].bucket == a) on_path = true;
      if (on_path) continue;
      const unsigned fm = match(buckets_[a], 0);
      if (fm) {
        uint32_t dst_b = a;
        unsigned dst_s = __builtin_ctz(fm);
        int src = static_cast<int>(head);
        unsigned src_s = s;
        for (;;) {
          // An entry at home moves away (its home spills); one away moves home.
          const uint32_t sbi = q[src].bucket;
          Bucket& sb = buckets_[sbi];
          const auto bit = static_cast<uint8_t>(1u << src_s);
          const bool was_away = (sb.away & bit) != 0;
          if (was_away) --buckets_[dst_b].spill;
          place(dst_b, dst_s, sb.sig[src_s], sb.ref[src_s], !was_away, sbi);
          sb.sig[src_s] = 0;
          sb.ref[src_s] = 0;
          sb.away &= static_cast<uint8_t>(~bit);
          ++c_.moves;
          if (q[src].parent < 0) {
            bucket = q[src].bucket;
            slot = src_s;
            return true;
          }
          dst_b = q[src].bucket;
          dst_s = src_s;
          src_s = q[src].pslot;
          src = q[src].parent;
        }
      }
      if (nd.depth + 1u < kBfsDepth && tail < kBfsNodes)
        q[tail++] = Node{a, static_cast<int16_t>(head), static_cast<uint8_t>(s),
                         static_cast<uint8_t>(nd.depth + 1)};
    }
  }
  return false;
}

void FlowTable::index_remove(const Where& w, uint32_t ref) {
  for (const uint32_t b : {w.b1, w.b2}) {
    Bucket& bk = buckets_[b];
    for (unsigned m = match(bk, w.sig); m; m &= m - 1) {
      const unsigned s = __builtin_ctz(m);
      if (bk.ref[s] == ref) {
        const auto bit = static_cast<uint8_t>(1u << s);
        if (bk.away & bit) --buckets_[b == w.b1 ? w.b2 : w.b1].spill;
        bk.sig[s] = 0;
        bk.ref[s] = 0;
        bk.away &= static_cast<uint8_t>(~bit);
        --index_used_;
        return;
      }
    }
  }
}

inline void FlowTable::prefetch_buckets(const Where& w) const {
  rte_prefetch0(&buckets_[w.b1]);
  rte_prefetch0(&buckets_[w.b2]);
}

void FlowTable::prefetch(const FlowKey& k) const {
  rte_prefetch0(&buckets_[where(hash(k)).b1]);
}

// Both keys' buckets are fetched in parallel: erasing a cold flow costs one record miss and
// one round of bucket misses, not four in a row.
void FlowTable::release(FlowRecord* r) {
  Where w[2];
  for (unsigned d = 0; d < r->nkeys; ++d) {
    w[d] = where(hash(r->key[d]));
    prefetch_buckets(w[d]);
  }
  release(r, w);
}

void FlowTable::release(FlowRecord* r, const Where* w) {
  if (hook_) hook_(hook_ctx_, r);
  const uint32_t idx = index_of(r);
  for (unsigned d = 0; d < r->nkeys; ++d) index_remove(w[d], make_ref(idx, d));
  r->nkeys = 0;
  free_[free_top_++] = idx;
  --size_;
}

void FlowTable::lookup_bulk(const FlowKey* keys, unsigned n, uint64_t now, Hit* out) {
  while (n > kBulkMax) {
    lookup_bulk(keys, kBulkMax, now, out);
    keys += kBulkMax;
    out += kBulkMax;
    n -= kBulkMax;
  }
  Where w[kBulkMax];
  uint16_t masks[kBulkMax];
  uint8_t other[kBulkMax];  // keys whose primary bucket spilled: the other one is read too
  unsigned no = 0;
  // The other bucket is computed only for a primary that spilled (most do not).
  for (unsigned i = 0; i < n; ++i) {
    w[i] = primary(hash(keys[i]));
    rte_prefetch0(&buckets_[w[i].b1]);
  }
  for (unsigned i = 0; i < n; ++i) {
    const Bucket& p = buckets_[w[i].b1];
    const unsigned m1 = match(p, w[i].sig);
    masks[i] = static_cast<uint16_t>(m1);
    if (p.spill) {
      w[i].b2 = alt_bucket(w[i].b1, w[i].sig);
      if (w[i].b2 != w[i].b1) {
        rte_prefetch0(&buckets_[w[i].b2]);
        other[no++] = static_cast<uint8_t>(i);
      }
    }
    if (m1) rte_prefetch0(rec_of(p.ref[__builtin_ctz(m1)]));
  }
  for (unsigned j = 0; j < no; ++j) {
    const unsigned i = other[j];
    const Bucket& s = buckets_[w[i].b2];
    const unsigned m2 = match(s, w[i].sig);
    if (m2 && !masks[i]) rte_prefetch0(rec_of(s.ref[__builtin_ctz(m2)]));
    masks[i] = static_cast<uint16_t>(masks[i] | (m2 << 8));
  }
  uint64_t hits = 0;
  for (unsigned i = 0; i < n; ++i) {
    out[i] = Hit{nullptr, 0};
    for (unsigned m = masks[i]; m; m &= m - 1) {
      const unsigned bit = __builtin_ctz(m);
      const uint32_t ref = buckets_[bit < kSlots ? w[i].b1 : w[i].b2].ref[bit & (kSlots - 1)];
      if (ref == 0) continue;  // released earlier in this burst (an expired duplicate key)
      FlowRecord* r = rec_of(ref);
      if (!(r->key[ref & 1] == keys[i])) continue;
      if (now >= r->expire) {
        release(r);
        ++c_.expired;
      } else {
        out[i] = Hit{r, static_cast<uint8_t>(ref & 1)};
        ++hits;
      }
      break;
    }
  }
  c_.lookups += n;
  c_.hits += hits;
}

FlowRecord* FlowTable::insert(const FlowKey& k0, const FlowKey* k1, uint64_t now, uint64_t timeout,
                              bool* existed) {
  if (existed) *existed = false;
  // Primary buckets only: the other one is read when the primary spilled or is full.
  const Where w0 = where(hash(k0));
  rte_prefetch0(&buckets_[w0.b1]);
  Where w1{};
  if (k1) {
    w1 = where(hash(*k1));
    rte_prefetch0(&buckets_[w1.b1]);
  }
  if (const uint32_t ref = find(k0, w0)) {
    FlowRecord* r = rec_of(ref);
    if (now < r->expire) {
      if (ref & 1) {
        ++c_.insert_conflict;
        return nullptr;
      }
      if (existed) *existed = true;
      ++c_.insert_existing;
      return r;
    }
    release(r);
    ++c_.expired;
  }
  if (k1) {
    if (*k1 == k0) {
      ++c_.insert_conflict;
      return nullptr;
    }
    if (const uint32_t ref = find(*k1, w1)) {
      FlowRecord* r = rec_of(ref);
      if (now < r->expire) {
        ++c_.insert_conflict;
        return nullptr;
      }
      release(r);
      ++c_.expired;
    }
  }
  if (free_top_ == 0) {
    ++c_.insert_full;
    return nullptr;
  }
  const uint32_t idx = free_[free_top_ - 1];
  if (!index_add(w0, make_ref(idx, 0))) {
    ++c_.insert_full;
    return nullptr;
  }
  if (k1 && !index_add(w1, make_ref(idx, 1))) {
    index_remove(w0, make_ref(idx, 0));
    ++c_.insert_full;
    return nullptr;
  }
  --free_top_;
  FlowRecord* r = &recs_[idx];
  *r = FlowRecord{};
  r->key[0] = k0;
  if (k1) r->key[1] = *k1;
  r->nkeys = k1 ? 2 : 1;
  r->expire = expiry_after(now, timeout);
  ++size_;
  ++c_.inserts;
  return r;
}

void FlowTable::touch(FlowRecord* r, uint64_t now, uint64_t timeout) {
  r->expire = expiry_after(now, timeout);
}

void FlowTable::refresh(FlowRecord* r, uint64_t now, uint64_t timeout) {
  const uint64_t e = expiry_after(now, timeout);
  if (e < r->expire || e - r->expire > (timeout >> 6)) r->expire = e;
}

void FlowTable::limit(FlowRecord* r, uint64_t now, uint64_t timeout) {
  const uint64_t e = expiry_after(now, timeout);
  if (e < r->expire) r->expire = e;
}

void FlowTable::erase(FlowRecord* r) {
  if (r->nkeys == 0) return;
  release(r);
  ++c_.erased;
}

// Dead records are collected in groups of kBulkMax with their buckets prefetched, then
// released, so the bucket misses of a group overlap instead of following one another.
unsigned FlowTable::sweep(uint64_t now, unsigned budget) {
  if (budget > capacity_) budget = capacity_;
  unsigned freed = 0;
  while (budget > 0) {
    uint32_t dead[kBulkMax];
    Where w[kBulkMax][2];
    unsigned nd = 0;
    for (; budget > 0 && nd < kBulkMax; --budget) {
      FlowRecord* r = &recs_[cursor_];
      if (++cursor_ == capacity_) cursor_ = 0;
      if (r->nkeys == 0 || now < r->expire) continue;
      for (unsigned d = 0; d < r->nkeys; ++d) {
        w[nd][d] = where(hash(r->key[d]));
        prefetch_buckets(w[nd][d]);
      }
      dead[nd++] = index_of(r);
    }
    for (unsigned i = 0; i < nd; ++i) release(&recs_[dead[i]], w[i]);
    freed += nd;
  }
  c_.expired += freed;
  return freed;
}

unsigned FlowTable::sweep_paced(uint64_t now, uint64_t period) {
  if (now <= swept_until_) return 0;
  // Ticks per record, at least 1: a period shorter than the capacity sweeps a record a tick.
  const uint64_t per = period / capacity_ ? period / capacity_ : 1;
  const uint64_t due = (now - swept_until_) / per;
  if (due == 0) return 0;
  if (due > kSweepMax) {
    swept_until_ = now;
    return sweep(now, kSweepMax);
  }
  swept_until_ += due * per;
  return sweep(now, static_cast<unsigned>(due));
}

}  // namespace nf::lb
