// The per-worker flow table (nf/lb/flow_table.h): both directions of a NAT flow, duplicate
// and conflicting inserts, the expiry boundary (alive while now < expire), touch / limit,
// sweep (only dead records, bounded by its budget), capacity (the pool bounds an auto-sized
// table; an undersized index fills past 95 % of its slots before an insert fails), erase,
// lookup_bulk against single lookups, and 100 k random operations against a std::unordered_map
// model that mirrors every release rule and counter.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <unordered_map>
#include <vector>

#include "nf/lb/flow_table.h"

namespace nf::test {
namespace {

using lb::FlowKey;
using lb::FlowRecord;
using lb::FlowTable;
using lb::Hit;

constexpr uint8_t kTcp = 6;
constexpr uint32_t kVip = 0xc0000201;

// Client -> VIP key of flow i, and the reply key (real -> NAT address) of flow i. Values
// are opaque to the table, so host order is fine here.
FlowKey ck(uint32_t i) {
  return FlowKey::conn(0x0a000000 + i, kVip, static_cast<uint16_t>(1024 + (i & 0x7fff)), 80, kTcp,
                       3);
}
FlowKey rk(uint32_t i) {
  return FlowKey::conn(0x0a640000 + (i & 15), 0xc6336400 + (i >> 16), 8080,
                       static_cast<uint16_t>(i), kTcp, 3);
}

struct KeyHash {
  size_t operator()(const FlowKey& k) const {
    uint64_t w[2];
    std::memcpy(w, &k, sizeof w);
    return static_cast<size_t>((w[0] * 0x9e3779b97f4a7c15ull) ^ (w[1] * 0xc2b2ae3d27d4eb4full));
  }
};

TEST(FlowTable, KeyLayoutIsSixteenBytesWithKinds) {
  const FlowKey c = FlowKey::conn(1, 2, 3, 4, kTcp, 9);
  uint8_t raw[16];
  std::memcpy(raw, &c, 16);
  EXPECT_EQ(raw[12], kTcp);
  EXPECT_EQ(raw[13], lb::kFlowConn);
  const FlowKey p = FlowKey::persist(1, 9);
  EXPECT_EQ(p.kind, lb::kFlowPersist);
  EXPECT_EQ(p.sport, 0);
  EXPECT_EQ(p.dport, 0);
  EXPECT_FALSE(p == FlowKey::conn(1, 0, 0, 0, 0, 9));  // the kind alone separates them
  EXPECT_TRUE(p == FlowKey::persist(1, 9));
}

TEST(FlowTable, InsertAndLookupBothDirections) {
  FlowTable t(1024);
  const FlowKey k0 = ck(7);
  const FlowKey k1 = rk(7);
  FlowRecord* r = t.insert(k0, &k1, 100, 50);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->nkeys, 2);
  EXPECT_TRUE(r->key[0] == k0);
  EXPECT_TRUE(r->key[1] == k1);
  EXPECT_EQ(r->expire, 150u);
  EXPECT_EQ(r->service, 0);
  EXPECT_EQ(r->tcp_state, 0);
  EXPECT_EQ(r->packets, 0u);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.index_used(), 2u);

  Hit h = t.lookup(k0, 120);
  EXPECT_EQ(h.rec, r);
  EXPECT_EQ(h.dir, 0);
  h = t.lookup(k1, 120);
  EXPECT_EQ(h.rec, r);
  EXPECT_EQ(h.dir, 1);
  EXPECT_EQ(t.lookup(ck(8), 120).rec, nullptr);
  EXPECT_EQ(t.lookup(rk(8), 120).rec, nullptr);
  EXPECT_EQ(t.counters().lookups, 4u);
  EXPECT_EQ(t.counters().hits, 2u);
  EXPECT_EQ(t.counters().inserts, 1u);

  // The stage's fields survive lookups; a DSR flow is indexed under key[0] only.
  r->real = 5;
  r->nat_port = 4242;
  EXPECT_EQ(t.lookup(k1, 121).rec->real, 5);
  FlowRecord* d = t.insert(ck(9), nullptr, 100, 50);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->nkeys, 1);
  EXPECT_EQ(t.lookup(ck(9), 120).rec, d);
  EXPECT_EQ(t.lookup(FlowKey{}, 120).rec, nullptr);  // its zero key[1] is not indexed
  EXPECT_EQ(t.index_used(), 3u);
}

TEST(FlowTable, DuplicateInsertReturnsTheExistingFlow) {
  FlowTable t(64);
  const FlowKey k0 = ck(1);
  const FlowKey k1 = rk(1);
  bool existed = true;
  FlowRecord* r = t.insert(k0, &k1, 10, 100, &existed);
  ASSERT_NE(r, nullptr);
  EXPECT_FALSE(existed);
  r->real = 3;
  // A second packet of the same new flow in the burst: same record, untouched.
  const FlowKey other = rk(2);
  EXPECT_EQ(t.insert(k0, &other, 20, 5, &existed), r);
  EXPECT_TRUE(existed);
  EXPECT_EQ(r->expire, 110u);
  EXPECT_EQ(r->real, 3);
  EXPECT_TRUE(r->key[1] == k1);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.index_used(), 2u);
  EXPECT_EQ(t.counters().insert_existing, 1u);
  EXPECT_EQ(t.lookup(other, 20).rec, nullptr);

  // Conflicts: a reply key owned by another live flow, a reply key equal to the client key,
  // and a client key that is a live flow's reply key.
  const FlowKey k2 = ck(2);
  EXPECT_EQ(t.insert(k2, &k1, 20, 100), nullptr);
  EXPECT_EQ(t.insert(k2, &k2, 20, 100), nullptr);
  EXPECT_EQ(t.insert(k1, nullptr, 20, 100), nullptr);
  EXPECT_EQ(t.counters().insert_conflict, 3u);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.lookup(k2, 20).rec, nullptr);

  // Once the flow is dead, inserting its key creates a fresh record.
  FlowRecord* n = t.insert(k0, nullptr, 110, 100, &existed);
  ASSERT_NE(n, nullptr);
  EXPECT_FALSE(existed);
  EXPECT_EQ(n->real, 0);
  EXPECT_EQ(n->nkeys, 1);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.counters().expired, 1u);
  EXPECT_EQ(t.lookup(k1, 110).rec, nullptr);  // the dead flow's reply key went with it
  // ... and a dead flow holding a wanted reply key gives it up.
  const FlowKey k3 = ck(3);
  const FlowKey k4 = ck(4);
  const FlowKey r4 = rk(4);
  ASSERT_NE(t.insert(k3, &r4, 110, 10), nullptr);
  FlowRecord* m = t.insert(k4, &r4, 120, 10);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(t.lookup(r4, 121).rec, m);
  EXPECT_EQ(t.lookup(k3, 121).rec, nullptr);
  EXPECT_EQ(t.counters().expired, 2u);
}

TEST(FlowTable, ExpiryBoundaryAliveWhileNowBeforeExpire) {
  FlowTable t(64);
  FlowRecord* r = t.insert(ck(1), nullptr, 100, 50);
  ASSERT_NE(r, nullptr);
  ASSERT_EQ(r->expire, 150u);
  EXPECT_EQ(t.lookup(ck(1), 149).rec, r);
  EXPECT_EQ(t.counters().expired, 0u);
  EXPECT_EQ(t.lookup(ck(1), 150).rec, nullptr);  // now == expire: dead
  EXPECT_EQ(t.counters().expired, 1u);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.index_used(), 0u);

  // Same rule for sweep.
  ASSERT_NE(t.insert(ck(2), nullptr, 100, 50), nullptr);
  EXPECT_EQ(t.sweep(149, 64), 0u);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.sweep(150, 64), 1u);
  EXPECT_EQ(t.size(), 0u);

  // A timeout of 0 creates a record that is already dead; UINT64_MAX never expires.
  ASSERT_NE(t.insert(ck(3), nullptr, 100, 0), nullptr);
  EXPECT_EQ(t.lookup(ck(3), 100).rec, nullptr);
  FlowRecord* forever = t.insert(ck(4), nullptr, 100, UINT64_MAX);
  ASSERT_NE(forever, nullptr);
  EXPECT_EQ(forever->expire, UINT64_MAX);
  EXPECT_EQ(t.lookup(ck(4), UINT64_MAX - 1).rec, forever);
}

TEST(FlowTable, TouchExtendsAndLimitNeverDoes) {
  FlowTable t(64);
  FlowRecord* r = t.insert(ck(1), nullptr, 0, 10);
  ASSERT_NE(r, nullptr);
  t.touch(r, 8, 10);
  EXPECT_EQ(r->expire, 18u);
  EXPECT_EQ(t.lookup(ck(1), 15).rec, r);  // would have been dead at 10 without the touch
  t.limit(r, 15, 100);
  EXPECT_EQ(r->expire, 18u);
  t.limit(r, 15, 2);
  EXPECT_EQ(r->expire, 17u);
  EXPECT_EQ(t.lookup(ck(1), 16).rec, r);
  EXPECT_EQ(t.lookup(ck(1), 17).rec, nullptr);
}

TEST(FlowTable, RefreshWritesOnlyWhenTheExpiryMovesByMoreThanASixtyFourth) {
  FlowTable t(64);
  FlowRecord* r = t.insert(ck(1), nullptr, 0, 6400);
  ASSERT_NE(r, nullptr);
  t.refresh(r, 100, 6400);  // 6500 is within 6400 / 64 of 6400: left alone
  EXPECT_EQ(r->expire, 6400u);
  t.refresh(r, 101, 6400);  // 6501 is 101 past it: written
  EXPECT_EQ(r->expire, 6501u);
  t.refresh(r, 200, 64);  // a shorter timeout moves the expiry earlier: always written
  EXPECT_EQ(r->expire, 264u);
  t.refresh(r, 200, 6400);  // a longer one (SYN_SENT -> ESTABLISHED) later: written
  EXPECT_EQ(r->expire, 6600u);
  EXPECT_EQ(t.lookup(ck(1), 6599).rec, r);
  EXPECT_EQ(t.lookup(ck(1), 6600).rec, nullptr);
}

TEST(FlowTable, PacedSweepVisitsTheTableOncePerPeriod) {
  FlowTable t(1000);
  for (uint32_t i = 0; i < 1000; ++i) ASSERT_NE(t.insert(ck(i), nullptr, 0, 10), nullptr);
  // Period 1000 ticks for 1000 records: one record a tick, at most kSweepMax per call.
  EXPECT_EQ(t.sweep_paced(10, 1000), 10u);  // ticks 0..10: records 0..9, all dead at 10
  EXPECT_EQ(t.sweep_paced(10, 1000), 0u);   // no time passed
  EXPECT_EQ(t.sweep_paced(15, 1000), 5u);
  EXPECT_EQ(t.sweep_paced(1000, 1000), FlowTable::kSweepMax);  // 985 due: capped, forgiven
  EXPECT_EQ(t.sweep_paced(1001, 1000), 1u);
  EXPECT_EQ(t.size(), 1000u - FlowTable::kSweepMax - 16);
  // Steady calls release everything within about one period.
  uint64_t now = 1001;
  while (t.size() > 0 && now < 3000) t.sweep_paced(now += 10, 1000);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_LE(now, 2100u);
}

TEST(FlowTable, SweepFreesOnlyExpiredAndRespectsBudget) {
  FlowTable t(1000);
  for (uint32_t i = 0; i < 100; ++i) {
    const FlowKey k1 = rk(i);
    ASSERT_NE(t.insert(ck(i), &k1, 0, i % 2 ? 500 : 50), nullptr);
  }
  ASSERT_EQ(t.size(), 100u);
  // A fresh table hands out records 0, 1, 2...: the first 10 hold flows 0..9, 5 of them dead.
  EXPECT_EQ(t.sweep(100, 10), 5u);
  EXPECT_EQ(t.size(), 95u);
  EXPECT_EQ(t.lookup(ck(10), 100).rec, nullptr);  // dead, released by this lookup, not sweep
  EXPECT_EQ(t.counters().expired, 6u);
  // Records 10..14: 10 was just released by the lookup, 12 and 14 are dead.
  EXPECT_EQ(t.sweep(100, 5), 2u);
  EXPECT_EQ(t.size(), 92u);
  // Records 15..999: the dead flows 16, 18, ..., 98.
  EXPECT_EQ(t.sweep(100, 985), 42u);
  // Every live flow is still there in both directions; every dead one is gone.
  for (uint32_t i = 0; i < 100; ++i) {
    const bool alive = i % 2;
    EXPECT_EQ(t.lookup(ck(i), 100).rec != nullptr, alive) << i;
    EXPECT_EQ(t.lookup(rk(i), 100).rec != nullptr, alive) << i;
  }
  EXPECT_EQ(t.size(), 50u);
  EXPECT_EQ(t.index_used(), 100u);
  // A budget larger than the table checks each record once.
  EXPECT_EQ(t.sweep(500, 5000), 50u);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.index_used(), 0u);
}

TEST(FlowTable, AutoSizedTableIsBoundByItsPool) {
  constexpr uint32_t kCap = 50'000;
  FlowTable t(kCap);
  uint32_t n = 0;
  for (;; ++n) {
    const FlowKey k1 = rk(n);
    if (!t.insert(ck(n), &k1, 0, 1000)) break;
  }
  EXPECT_EQ(n, kCap);
  EXPECT_EQ(t.counters().insert_full, 1u);
  EXPECT_EQ(t.size(), kCap);
  EXPECT_EQ(t.index_used(), 2u * kCap);
  EXPECT_LE(static_cast<double>(t.index_used()) / static_cast<double>(t.index_slots()), 0.9);
  // A full table still finds everything, in bulk.
  std::vector<FlowKey> keys;
  for (uint32_t i = 0; i < kCap; ++i) {
    keys.push_back(ck(i));
    keys.push_back(rk(i));
  }
  std::vector<Hit> hits(keys.size());
  for (size_t i = 0; i < keys.size(); i += 64)
    t.lookup_bulk(&keys[i], static_cast<unsigned>(std::min<size_t>(64, keys.size() - i)), 10,
                  &hits[i]);
  for (size_t i = 0; i < keys.size(); ++i) {
    ASSERT_NE(hits[i].rec, nullptr) << i;
    ASSERT_EQ(hits[i].dir, i % 2) << i;
    ASSERT_TRUE(hits[i].rec->key[i % 2] == keys[i]) << i;
  }
  // Full means fail, never evict.
  const FlowKey extra = rk(kCap);
  EXPECT_EQ(t.insert(ck(kCap), &extra, 20, 1000), nullptr);
  EXPECT_EQ(t.counters().insert_full, 2u);
  EXPECT_EQ(t.counters().expired + t.counters().erased, 0u);
  EXPECT_NE(t.lookup(ck(0), 20).rec, nullptr);
}

TEST(FlowTable, IndexFillsPastNinetyFivePercentBeforeFailing) {
  for (const uint32_t seed : {0u, 1u, 2u}) {
    constexpr uint32_t kBuckets = 1000;
    FlowTable t(20'000, kBuckets);  // 8000 slots, far more records than slots
    ASSERT_EQ(t.index_slots(), 8000u);
    std::mt19937 rng(seed);
    std::vector<FlowKey> in;
    for (;;) {
      const FlowKey k = FlowKey::conn(rng(), rng(), static_cast<uint16_t>(rng()), 443, kTcp);
      if (!t.insert(k, nullptr, 0, 1000)) break;
      in.push_back(k);
    }
    const double fill = static_cast<double>(in.size()) / 8000.0;
    EXPECT_GE(fill, 0.95) << "seed " << seed;
    EXPECT_LT(in.size(), 8000u);
    EXPECT_EQ(t.counters().insert_full, 1u);
    EXPECT_GT(t.counters().moves, 0u);
    EXPECT_EQ(t.index_used(), in.size());
    EXPECT_EQ(t.size(), in.size());
    for (const FlowKey& k : in) ASSERT_NE(t.lookup(k, 1).rec, nullptr);
    // Erasing one flow makes room for it again.
    const FlowKey mid = in[in.size() / 2];
    t.erase(t.lookup(mid, 1).rec);
    EXPECT_EQ(t.lookup(mid, 1).rec, nullptr);
    EXPECT_NE(t.insert(mid, nullptr, 2, 1000), nullptr);
    std::printf("[ index fill seed %u: %zu / 8000 slots = %.2f %%, %llu moves ]\n", seed, in.size(),
                100.0 * fill, static_cast<unsigned long long>(t.counters().moves));
  }
}

TEST(FlowTable, EraseThenReinsert) {
  FlowTable t(16);
  const FlowKey k0 = ck(1);
  const FlowKey k1 = rk(1);
  FlowRecord* r = t.insert(k0, &k1, 0, 100);
  ASSERT_NE(r, nullptr);
  t.erase(r);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.index_used(), 0u);
  EXPECT_EQ(t.counters().erased, 1u);
  EXPECT_EQ(t.lookup(k0, 1).rec, nullptr);
  EXPECT_EQ(t.lookup(k1, 1).rec, nullptr);
  t.erase(r);  // already free: nothing happens
  EXPECT_EQ(t.counters().erased, 1u);
  EXPECT_EQ(t.size(), 0u);
  FlowRecord* again = t.insert(k0, &k1, 2, 100);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again, r);  // LIFO free list: the record just freed, still in cache
  EXPECT_EQ(t.lookup(k1, 3).rec, again);
  EXPECT_EQ(t.lookup(k1, 3).dir, 1);
  // Every record can be taken, freed and taken again.
  for (int round = 0; round < 3; ++round) {
    std::vector<FlowRecord*> rs;
    for (uint32_t i = 100; i < 115; ++i) rs.push_back(t.insert(ck(i), nullptr, 3, 100));
    for (FlowRecord* x : rs) ASSERT_NE(x, nullptr);
    EXPECT_EQ(t.insert(ck(200), nullptr, 3, 100), nullptr);
    for (FlowRecord* x : rs) t.erase(x);
    EXPECT_EQ(t.size(), 1u);
  }
}

// The owner's hook runs once for every record the table frees, whichever path frees it,
// while the record still holds its keys; never for live flows or free records.
TEST(FlowTable, ReleaseHookSeesEveryReleaseOnce) {
  FlowTable t(64);
  struct Seen {
    std::vector<uint32_t> src;  // key[0].src of each released record
    std::vector<unsigned> nkeys;
  } seen;
  t.set_release_hook(
      [](void* ctx, FlowRecord* r) {
        auto* s = static_cast<Seen*>(ctx);
        s->src.push_back(r->key[0].src);
        s->nkeys.push_back(r->nkeys);
      },
      &seen);
  const FlowKey ra = rk(1);
  FlowRecord* a = t.insert(ck(1), &ra, 0, 100);  // erased
  ASSERT_NE(a, nullptr);
  ASSERT_NE(t.insert(ck(2), nullptr, 0, 10), nullptr);   // dead, met by a lookup
  ASSERT_NE(t.insert(ck(3), nullptr, 0, 10), nullptr);   // dead, met by an insert
  ASSERT_NE(t.insert(ck(4), nullptr, 0, 10), nullptr);   // dead, met by sweep
  ASSERT_NE(t.insert(ck(5), nullptr, 0, 100), nullptr);  // alive throughout
  t.erase(a);
  t.erase(a);  // free already: no second call
  EXPECT_EQ(t.lookup(ck(2), 20).rec, nullptr);
  ASSERT_NE(t.insert(ck(3), nullptr, 20, 100), nullptr);
  EXPECT_EQ(t.sweep(20, 64), 1u);
  EXPECT_EQ(seen.src, (std::vector<uint32_t>{ck(1).src, ck(2).src, ck(3).src, ck(4).src}));
  EXPECT_EQ(seen.nkeys, (std::vector<unsigned>{2, 1, 1, 1}));
  EXPECT_EQ(t.size(), 2u);  // flow 5 and the new flow 3
}

// Two tables built identically; one answers 64 keys in one lookup_bulk, the other 64 single
// lookups. Hits, directions, records, and the releases of dead flows (including a dead key
// asked twice in the burst) must agree, and match the known answer.
TEST(FlowTable, LookupBulkEqualsSingleLookups) {
  FlowTable a(2048);
  FlowTable b(2048);
  for (FlowTable* t : {&a, &b}) {
    for (uint32_t i = 0; i < 500; ++i) {
      const FlowKey k1 = rk(i);
      ASSERT_NE(t->insert(ck(i), i % 3 ? &k1 : nullptr, 0, i % 4 == 0 ? 1000 : 5000), nullptr);
    }
  }
  std::vector<FlowKey> q;
  std::vector<int> want;  // -1 miss, else dir
  std::mt19937 rng(7);
  for (int i = 0; i < 60; ++i) {
    const uint32_t f = rng() % 700;  // 500..699 do not exist
    const bool reply = rng() % 2;
    q.push_back(reply ? rk(f) : ck(f));
    const bool exists = f < 500 && (!reply || f % 3 != 0);
    const bool alive = f % 4 != 0;
    want.push_back(exists && alive ? (reply ? 1 : 0) : -1);
  }
  q.push_back(ck(8));  // dead, twice
  want.push_back(-1);
  q.push_back(ck(8));
  want.push_back(-1);
  q.push_back(ck(9));  // alive, twice
  want.push_back(0);
  q.push_back(ck(9));
  want.push_back(0);
  ASSERT_EQ(q.size(), 64u);

  Hit bulk[64];
  a.lookup_bulk(q.data(), 64, 2000, bulk);
  for (size_t i = 0; i < 64; ++i) {
    const Hit s = b.lookup(q[i], 2000);
    ASSERT_EQ(bulk[i].rec == nullptr, s.rec == nullptr) << i;
    EXPECT_EQ(want[i] < 0, s.rec == nullptr) << i;
    if (s.rec) {
      EXPECT_EQ(a.index_of(bulk[i].rec), b.index_of(s.rec)) << i;
      EXPECT_EQ(bulk[i].dir, s.dir) << i;
      EXPECT_EQ(s.dir, want[i]) << i;
      EXPECT_TRUE(s.rec->key[s.dir] == q[i]) << i;
    }
  }
  EXPECT_EQ(a.size(), b.size());
  EXPECT_LT(a.size(), 500u);  // some dead flows were released
  EXPECT_EQ(a.counters().expired, b.counters().expired);
  EXPECT_EQ(a.counters().hits, b.counters().hits);
  EXPECT_EQ(a.counters().lookups, 64u);
  EXPECT_EQ(a.index_used(), b.index_used());

  // More than kBulkMax keys go through in chunks.
  std::vector<FlowKey> many;
  for (uint32_t i = 0; i < 150; ++i) many.push_back(ck(i));
  std::vector<Hit> out(150);
  a.lookup_bulk(many.data(), 150, 2000, out.data());
  for (uint32_t i = 0; i < 150; ++i) EXPECT_EQ(out[i].rec != nullptr, i % 4 != 0) << i;
}

// 100 k random operations against a model that mirrors the table's rules: records in use
// (live or dead but not yet released), the keys indexing them, when a dead record is released
// (lookup, insert of one of its keys, sweep at the cursor), conflicts, and full.
TEST(FlowTable, RandomOperationsMatchModel) {
  constexpr uint32_t kCap = 512;
  constexpr uint32_t kPool = 3000;
  FlowTable t(kCap);
  struct MFlow {
    FlowKey k[2];
    unsigned nk;
    uint64_t expire;
  };
  std::unordered_map<FlowKey, uint32_t, KeyHash> keymap;  // key -> record index
  std::unordered_map<uint32_t, MFlow> flows;              // record index -> flow
  uint64_t m_expired = 0, m_erased = 0, m_inserts = 0, m_existing = 0, m_conflict = 0, m_full = 0,
           m_hits = 0, m_lookups = 0;
  uint32_t cursor = 0;
  size_t max_live = 0;
  uint64_t now = 1000;
  std::mt19937_64 rng(12345);
  auto pick = [&](uint64_t n) { return static_cast<uint32_t>(rng() % n); };

  auto release = [&](uint32_t idx) {
    const MFlow& f = flows.at(idx);
    for (unsigned d = 0; d < f.nk; ++d) keymap.erase(f.k[d]);
    flows.erase(idx);
  };
  // Single lookup in the model: -1 miss, else index * 2 + dir.
  auto mlookup = [&](const FlowKey& k) -> int64_t {
    ++m_lookups;
    auto it = keymap.find(k);
    if (it == keymap.end()) return -1;
    const uint32_t idx = it->second;
    const MFlow& f = flows.at(idx);
    if (now >= f.expire) {
      release(idx);
      ++m_expired;
      return -1;
    }
    ++m_hits;
    return int64_t{idx} * 2 + (f.k[0] == k ? 0 : 1);
  };
  auto any_key = [&]() -> FlowKey {
    const uint32_t r = pick(100);
    if (r < 50) return ck(pick(kPool));
    if (r < 95) return rk(pick(kPool));
    return FlowKey::persist(pick(kPool), 3);
  };

  for (int op = 0; op < 100'000; ++op) {
    const uint32_t what = pick(100);
    if (what < 35) {  // insert
      const FlowKey k0 = pick(10) == 0 ? FlowKey::persist(pick(kPool), 3) : ck(pick(kPool));
      FlowKey k1v;
      const FlowKey* k1 = nullptr;
      const uint32_t r = pick(100);
      if (r < 60) {
        k1v = rk(pick(kPool));
        k1 = &k1v;
      } else if (r < 63) {
        k1v = ck(pick(kPool));  // may collide with a client key
        k1 = &k1v;
      } else if (r < 64) {
        k1v = k0;
        k1 = &k1v;
      }
      // Long timeouts in the first half fill the table; short ones in the second drain it.
      const uint64_t timeout = 1 + pick(op < 50'000 ? 20'000 : 2'000);
      bool existed = false;
      FlowRecord* got = t.insert(k0, k1, now, timeout, &existed);
      // Model.
      enum { kNew, kExisting, kConflict } expect = kNew;
      uint32_t existing_idx = 0;
      if (auto it = keymap.find(k0); it != keymap.end()) {
        const MFlow& f = flows.at(it->second);
        if (now < f.expire) {
          expect = f.k[0] == k0 ? kExisting : kConflict;
          existing_idx = it->second;
        } else {
          release(it->second);
          ++m_expired;
        }
      }
      if (expect == kNew && k1) {
        if (*k1 == k0) {
          expect = kConflict;
        } else if (auto it = keymap.find(*k1); it != keymap.end()) {
          if (now < flows.at(it->second).expire) {
            expect = kConflict;
          } else {
            release(it->second);
            ++m_expired;
          }
        }
      }
      if (expect == kExisting) {
        ++m_existing;
        ASSERT_NE(got, nullptr) << op;
        ASSERT_TRUE(existed);
        ASSERT_EQ(t.index_of(got), existing_idx);
      } else if (expect == kConflict) {
        ++m_conflict;
        ASSERT_EQ(got, nullptr) << op;
      } else if (flows.size() == kCap) {
        ++m_full;
        ASSERT_EQ(got, nullptr) << op;
      } else {
        ASSERT_NE(got, nullptr) << op;
        ASSERT_FALSE(existed);
        const uint32_t idx = t.index_of(got);
        ASSERT_LT(idx, kCap);
        ASSERT_EQ(flows.count(idx), 0u) << "record handed out twice";
        MFlow f{{k0, k1 ? *k1 : FlowKey{}}, k1 ? 2u : 1u, now + timeout};
        flows[idx] = f;
        keymap[k0] = idx;
        if (k1) keymap[*k1] = idx;
        ++m_inserts;
        ASSERT_EQ(got->expire, now + timeout);
      }
    } else if (what < 60) {  // single lookup
      const FlowKey k = any_key();
      const Hit h = t.lookup(k, now);
      const int64_t m = mlookup(k);
      ASSERT_EQ(h.rec == nullptr, m < 0) << op;
      if (h.rec) {
        ASSERT_EQ(int64_t{t.index_of(h.rec)} * 2 + h.dir, m) << op;
      }
    } else if (what < 70) {  // bulk lookup = singles in order
      const unsigned n = 1 + pick(64);
      std::vector<FlowKey> ks(n);
      for (unsigned i = 0; i < n; ++i) ks[i] = i > 0 && pick(8) == 0 ? ks[pick(i)] : any_key();
      Hit hs[64];
      t.lookup_bulk(ks.data(), n, now, hs);
      for (unsigned i = 0; i < n; ++i) {
        const int64_t m = mlookup(ks[i]);
        ASSERT_EQ(hs[i].rec == nullptr, m < 0) << op << " " << i;
        if (hs[i].rec) {
          ASSERT_EQ(int64_t{t.index_of(hs[i].rec)} * 2 + hs[i].dir, m);
        }
      }
    } else if (what < 78) {  // erase (a free record too: a no-op)
      const uint32_t idx = pick(kCap);
      t.erase(t.at(idx));
      if (flows.count(idx)) {
        release(idx);
        ++m_erased;
      }
    } else if (what < 85) {  // touch / limit an in-use record
      const uint32_t idx = pick(kCap);
      if (auto it = flows.find(idx); it != flows.end()) {
        const uint64_t timeout = pick(3000);
        if (pick(3) == 0) {
          t.limit(t.at(idx), now, timeout);
          it->second.expire = std::min(it->second.expire, now + timeout);
        } else {
          t.touch(t.at(idx), now, timeout);
          it->second.expire = now + timeout;
        }
        ASSERT_EQ(t.at(idx)->expire, it->second.expire);
      }
    } else if (what < 92) {  // sweep
      const unsigned budget = 1 + pick(300);
      unsigned freed = 0;
      for (unsigned i = 0; i < budget; ++i) {
        const uint32_t idx = cursor;
        cursor = (cursor + 1) % kCap;
        if (auto it = flows.find(idx); it != flows.end() && now >= it->second.expire) {
          release(idx);
          ++freed;
        }
      }
      m_expired += freed;
      ASSERT_EQ(t.sweep(now, budget), freed) << op;
    } else {
      now += pick(60);
    }
    max_live = std::max<size_t>(max_live, flows.size());
    if (op % 1000 == 0 || op == 99'999) {
      ASSERT_EQ(t.size(), flows.size()) << op;
      uint64_t keys = 0;
      for (const auto& [idx, f] : flows) keys += f.nk;
      ASSERT_EQ(t.index_used(), keys) << op;
      const auto& c = t.counters();
      ASSERT_EQ(c.expired, m_expired) << op;
      ASSERT_EQ(c.erased, m_erased) << op;
      ASSERT_EQ(c.inserts, m_inserts) << op;
      ASSERT_EQ(c.insert_existing, m_existing) << op;
      ASSERT_EQ(c.insert_conflict, m_conflict) << op;
      ASSERT_EQ(c.insert_full, m_full) << op;
      ASSERT_EQ(c.hits, m_hits) << op;
      ASSERT_EQ(c.lookups, m_lookups) << op;
    }
  }
  // The run exercised every outcome.
  std::printf("[ max live %zu ]\n", max_live);
  std::printf("[ full %llu conflict %llu existing %llu expired %llu hits %llu erased %llu ]\n",
              (unsigned long long)m_full, (unsigned long long)m_conflict,
              (unsigned long long)m_existing, (unsigned long long)m_expired,
              (unsigned long long)m_hits, (unsigned long long)m_erased);
  EXPECT_GT(m_full, 100u);
  EXPECT_GT(m_conflict, 100u);
  EXPECT_GT(m_existing, 100u);
  EXPECT_GT(m_expired, 1000u);
  EXPECT_GT(m_hits, 1000u);
  EXPECT_GT(m_erased, 100u);
}

}  // namespace
}  // namespace nf::test
