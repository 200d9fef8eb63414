// PAT port allocation (nf/lb/port_alloc.h): the split of a range among workers, exhaustion,
// quarantine, reservations for static PAT, and two workers allocating at once on two threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <thread>
#include <vector>

#include "nf/lb/port_alloc.h"

namespace nf::test {
namespace {

using lb::PortAllocator;
using lb::PortPool;
using lb::PortSplit;

TEST(PortAllocSplit, OwnerIndexAndSharesForEveryPort) {
  const unsigned worker_counts[] = {1, 2, 3, 4, 5, 7, 8, 12, 16, 64, 1000, 65535};
  const std::pair<uint16_t, uint16_t> ranges[] = {{1, 65535},     {1024, 65535}, {1000, 1099},
                                                  {40001, 40001}, {0, 10},       {61000, 65534}};
  for (unsigned w : worker_counts) {
    for (auto [lo, hi] : ranges) {
      const PortSplit s(lo, hi, w);
      std::vector<uint32_t> next_index(w, 0);
      uint32_t total = 0;
      for (uint32_t p = 0; p <= 65535; ++p) {
        const auto port = static_cast<uint16_t>(p);
        ASSERT_EQ(s.owner(port), p % w) << "port " << p << " workers " << w;
        if (!s.in_range(port)) continue;
        ASSERT_NE(p, 0u);  // port 0 is never in a share
        const unsigned o = s.owner(port);
        if (next_index[o] == 0) {
          ASSERT_EQ(s.first(o), p);
        }
        // Indexes of a share run 0, 1, 2, ... in port order.
        ASSERT_EQ(s.index(port), next_index[o]) << "port " << p << " workers " << w;
        next_index[o]++;
        total++;
      }
      const uint32_t lo1 = lo == 0 ? 1 : lo;
      EXPECT_EQ(total, hi - lo1 + 1u);
      uint32_t mn = UINT32_MAX, mx = 0;
      for (unsigned k = 0; k < w; ++k) {
        EXPECT_EQ(s.share_size(k), next_index[k]);
        if (next_index[k] == 0) {
          EXPECT_EQ(s.first(k), 0);
        }
        mn = std::min(mn, next_index[k]);
        mx = std::max(mx, next_index[k]);
      }
      EXPECT_LE(mx - mn, 1u) << "shares differ by more than one port";
    }
  }
}

// Allocates until alloc() returns 0.
std::vector<uint16_t> drain(PortPool& p, uint64_t now) {
  std::vector<uint16_t> v;
  for (uint16_t port; (port = p.alloc(now)) != 0;) v.push_back(port);
  return v;
}

TEST(PortAllocPool, EveryAllocatedPortIsOwnedByItsWorker) {
  for (unsigned workers : {1u, 3u, 4u, 6u}) {
    const PortSplit split(1024, 65535, workers);
    std::set<uint16_t> all;
    for (unsigned w = 0; w < workers; ++w) {
      PortPool pool(split, w, 0, /*seed=*/w + 1);
      EXPECT_EQ(pool.size(), split.share_size(w));
      const auto got = drain(pool, 0);
      EXPECT_EQ(got.size(), split.share_size(w));
      EXPECT_EQ(pool.in_use(), got.size());
      for (uint16_t p : got) {
        ASSERT_EQ(split.owner(p), w);
        ASSERT_TRUE(pool.owns(p));
        ASSERT_TRUE(pool.is_allocated(p));
        ASSERT_TRUE(all.insert(p).second) << "port " << p << " handed out twice";
      }
    }
    // Together the workers cover the range exactly.
    EXPECT_EQ(all.size(), 65535u - 1024 + 1);
    EXPECT_EQ(*all.begin(), 1024);
    EXPECT_EQ(*all.rbegin(), 65535);
  }
}

TEST(PortAllocPool, ExhaustionReturnsZeroAndCounts) {
  const PortSplit split(1000, 1099, 4);
  PortPool pool(split, 2, 0);
  EXPECT_EQ(pool.size(), 25u);
  const auto got = drain(pool, 0);
  ASSERT_EQ(got.size(), 25u);
  // Seed 0: ascending, every 4th port from 1002.
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], 1002 + 4 * i);
  EXPECT_EQ(pool.counters().allocs, 25u);
  EXPECT_EQ(pool.counters().exhausted, 1u);  // the call that ended drain()
  EXPECT_EQ(pool.alloc(5), 0);
  EXPECT_EQ(pool.counters().exhausted, 2u);
  EXPECT_EQ(pool.counters().quarantined, 0u);  // nothing waiting: truly exhausted
  EXPECT_EQ(pool.in_use(), 25u);
  // One back, one out again.
  EXPECT_TRUE(pool.release(1050, 6));
  EXPECT_EQ(pool.alloc(6), 1050);
  EXPECT_EQ(pool.alloc(6), 0);
  EXPECT_EQ(pool.counters().exhausted, 3u);
}

TEST(PortAllocPool, ReleasedPortReturnsOnlyAfterTheQuarantine) {
  const uint64_t q = 2000;  // e.g. 2 s on a millisecond clock
  const PortSplit split(2000, 2009, 2);
  PortPool pool(split, 1, q);
  ASSERT_EQ(drain(pool, 0).size(), 5u);  // 2001 2003 2005 2007 2009
  EXPECT_TRUE(pool.release(2005, 100));
  EXPECT_TRUE(pool.release(2001, 150));
  EXPECT_FALSE(pool.is_allocated(2005));
  EXPECT_EQ(pool.alloc(100), 0);
  EXPECT_EQ(pool.alloc(100 + q - 1), 0);  // one tick early
  EXPECT_EQ(pool.counters().quarantined, 2u);
  EXPECT_EQ(pool.counters().exhausted, 3u);  // drain's last call + these two
  EXPECT_EQ(pool.alloc(100 + q), 2005);      // ready when now - released >= quarantine
  EXPECT_EQ(pool.alloc(100 + q), 0);         // 2001 was released later
  EXPECT_EQ(pool.alloc(150 + q), 2001);
  EXPECT_EQ(pool.in_use(), 5u);
  EXPECT_EQ(pool.counters().releases, 2u);
}

TEST(PortAllocPool, FreedPortsAreReusedLeastRecentlyFreedFirst) {
  const PortSplit split(5000, 5099, 1);
  PortPool pool(split, 0, 0);
  std::vector<uint16_t> first;
  for (int i = 0; i < 10; ++i) first.push_back(pool.alloc(0));
  EXPECT_EQ(first.front(), 5000);
  EXPECT_TRUE(pool.release(5003, 1));
  EXPECT_TRUE(pool.release(5001, 2));
  // The 90 never-used ports come first, then 5003, then 5001.
  const auto rest = drain(pool, 10);
  ASSERT_EQ(rest.size(), 92u);
  EXPECT_EQ(rest[0], 5010);
  EXPECT_EQ(rest[89], 5099);
  EXPECT_EQ(rest[90], 5003);
  EXPECT_EQ(rest[91], 5001);
}

TEST(PortAllocPool, ReservedPortsAreNeverAllocated) {
  const PortSplit split(1, 65535, 2);
  PortPool pool(split, 1, 50, /*seed=*/99);
  // Static PAT forwards on this worker's ports (odd), one of another worker's (even).
  const std::set<uint16_t> reserved = {1, 22, 80 + 1, 443, 8081, 65535};
  for (uint16_t p : reserved) EXPECT_EQ(pool.reserve(p), p % 2 == 1) << p;
  EXPECT_TRUE(pool.is_reserved(443));
  EXPECT_FALSE(pool.is_reserved(22));
  auto got = drain(pool, 0);
  EXPECT_EQ(got.size(), pool.size() - 5);
  for (uint16_t p : got) ASSERT_EQ(reserved.count(p), 0u) << p;

  // Reserving a port that is in use: its flow keeps it, the release does not free it.
  const uint16_t busy = got[100];
  EXPECT_TRUE(pool.reserve(busy));
  EXPECT_TRUE(pool.release(busy, 10));
  for (uint16_t p : got) {
    if (p != busy) {
      ASSERT_TRUE(pool.release(p, 10));
    }
  }
  auto again = drain(pool, 10 + 50);
  EXPECT_EQ(again.size(), pool.size() - 6);
  EXPECT_EQ(std::count(again.begin(), again.end(), busy), 0);
  for (uint16_t p : again) ASSERT_EQ(reserved.count(p), 0u) << p;

  // The forward goes away: the port comes back after the quarantine.
  EXPECT_TRUE(pool.unreserve(443, 100));
  EXPECT_EQ(pool.alloc(149), 0);
  EXPECT_EQ(pool.alloc(150), 443);
  EXPECT_EQ(pool.alloc(150), 0);
}

TEST(PortAllocPool, ReservationWhileQueuedAndUnreservedBeforeTheTurn) {
  const PortSplit split(100, 109, 1);
  PortPool pool(split, 0, 0);
  EXPECT_TRUE(pool.reserve(103));
  EXPECT_TRUE(pool.unreserve(103, 0));  // still queued: must not be queued twice
  const auto got = drain(pool, 0);
  EXPECT_EQ(got, (std::vector<uint16_t>{100, 101, 102, 103, 104, 105, 106, 107, 108, 109}));
  for (uint16_t p : got) EXPECT_TRUE(pool.release(p, 1));
  EXPECT_EQ(drain(pool, 1).size(), 10u);
}

TEST(PortAllocPool, BadReleasesAreRefusedAndCounted) {
  const PortSplit split(1000, 1999, 2);
  PortPool pool(split, 0, 0);
  const uint16_t p = pool.alloc(0);
  ASSERT_EQ(p, 1000);
  EXPECT_FALSE(pool.release(1001, 0));  // the other worker's
  EXPECT_FALSE(pool.release(999, 0));   // out of range
  EXPECT_FALSE(pool.release(1002, 0));  // ours, never allocated
  EXPECT_TRUE(pool.release(p, 0));
  EXPECT_FALSE(pool.release(p, 0));  // twice
  EXPECT_EQ(pool.counters().bad_releases, 4u);
  EXPECT_EQ(pool.counters().releases, 1u);
  EXPECT_EQ(pool.in_use(), 0u);
  // The double release did not queue the port twice: exactly the share comes out.
  EXPECT_EQ(drain(pool, 0).size(), 500u);
}

TEST(PortAllocPool, SeededOrderIsAPermutation) {
  const PortSplit split(1024, 65535, 4);
  PortPool plain(split, 3, 0, 0), a(split, 3, 0, 7), b(split, 3, 0, 8);
  const auto p = drain(plain, 0), x = drain(a, 0), y = drain(b, 0);
  EXPECT_TRUE(std::is_sorted(p.begin(), p.end()));
  EXPECT_NE(x, p);
  EXPECT_NE(x, y);
  auto xs = x, ys = y;
  std::sort(xs.begin(), xs.end());
  std::sort(ys.begin(), ys.end());
  EXPECT_EQ(xs, p);
  EXPECT_EQ(ys, p);
  // Not merely rotated: consecutive picks are far apart on average.
  uint64_t gap = 0;
  for (size_t i = 1; i < x.size(); ++i) gap += static_cast<uint64_t>(std::abs(x[i] - x[i - 1]));
  EXPECT_GT(gap / (x.size() - 1), 10000u);
}

TEST(PortAllocPool, PortZeroIsNeverHandedOut) {
  const PortSplit split(0, 7, 2);
  PortPool w0(split, 0, 0);
  EXPECT_EQ(drain(w0, 0), (std::vector<uint16_t>{2, 4, 6}));
  EXPECT_FALSE(w0.reserve(0));
}

TEST(PortAllocPool, MemoryIsElevenBytesPerPort) {
  const PortSplit split(1, 65535, 1);
  const PortPool pool(split, 0, 0);
  EXPECT_EQ(pool.memory_bytes(), 65535u * 11);
  lb::PortAllocator::Config cfg;
  cfg.lo = 1;
  cfg.hi = 65535;
  cfg.workers = 4;
  const PortAllocator a(cfg, 2, 1);
  // 2 addresses x 3 protocols x 16384 ports of worker 1, plus the objects themselves.
  EXPECT_GE(a.memory_bytes(), 6u * 16384 * 11);
  EXPECT_LT(a.memory_bytes(), 6u * 16384 * 11 + 4096);
}

TEST(PortAllocAllocator, PoolsPerAddressAndProtocolAreIndependent) {
  PortAllocator::Config cfg;
  cfg.lo = 10000;
  cfg.hi = 10011;
  cfg.workers = 3;
  cfg.quarantine[0] = 120;  // TCP
  cfg.quarantine[1] = 2;    // UDP
  cfg.quarantine[2] = 1;    // ICMP
  PortAllocator a(cfg, 2, 2);
  EXPECT_EQ(a.addresses(), 2u);
  auto& tcp0 = a.pool(0, lb::PatProto::kTcp);
  auto& udp0 = a.pool(0, lb::PatProto::kUdp);
  auto& tcp1 = a.pool(1, lb::PatProto::kTcp);
  EXPECT_EQ(drain(tcp0, 0), (std::vector<uint16_t>{10001, 10004, 10007, 10010}));
  EXPECT_EQ(drain(udp0, 0).size(), 4u);  // TCP took nothing from UDP
  EXPECT_EQ(drain(tcp1, 0).size(), 4u);  // nor from the other address
  // The protocol's own quarantine.
  EXPECT_TRUE(tcp0.release(10004, 0));
  EXPECT_TRUE(udp0.release(10004, 0));
  EXPECT_EQ(udp0.alloc(2), 10004);
  EXPECT_EQ(tcp0.alloc(2), 0);
  EXPECT_EQ(tcp0.alloc(120), 10004);
  // reserve() on every worker's allocator: only the owner takes it.
  EXPECT_FALSE(a.reserve(1, lb::PatProto::kUdp, 10000));  // 10000 % 3 == 1
  EXPECT_TRUE(a.reserve(1, lb::PatProto::kUdp, 10001));
  EXPECT_EQ(a.owner(10000), 1u);
  // A seeded configuration gives each pool its own order.
  cfg.seed = 42;
  cfg.hi = 60000;
  PortAllocator r(cfg, 1, 0);
  EXPECT_NE(drain(r.pool(0, lb::PatProto::kTcp), 0), drain(r.pool(0, lb::PatProto::kUdp), 0));
}

TEST(PortAllocThreads, TwoWorkersAllocateConcurrentlyWithoutALock) {
  // Each thread is a worker with its own allocator for the same external address; they share
  // nothing mutable. Run under ASan/UBSan too (tests/run-all); TSan would flag any sharing.
  PortAllocator::Config cfg;
  cfg.lo = 1024;
  cfg.hi = 65535;
  cfg.workers = 2;
  cfg.quarantine[1] = 3;
  cfg.seed = 5;
  PortAllocator w0(cfg, 1, 0), w1(cfg, 1, 1);
  std::vector<uint16_t> got[2];
  auto run = [&got](PortAllocator* a, int id) {
    lb::PortPool& p = a->pool(0, lb::PatProto::kUdp);
    uint64_t now = 0;
    std::vector<uint16_t> held;
    // Churn: allocate everything, free half, let time pass, allocate again.
    for (int round = 0; round < 4; ++round) {
      for (uint16_t port; (port = p.alloc(now)) != 0;) {
        held.push_back(port);
        got[id].push_back(port);
      }
      for (size_t i = 0; i < held.size(); i += 2) p.release(held[i], now);
      std::vector<uint16_t> keep;
      for (size_t i = 1; i < held.size(); i += 2) keep.push_back(held[i]);
      held.swap(keep);
      now += 3;
    }
  };
  std::thread t0(run, &w0, 0), t1(run, &w1, 1);
  t0.join();
  t1.join();
  std::set<uint16_t> s0(got[0].begin(), got[0].end()), s1(got[1].begin(), got[1].end());
  EXPECT_EQ(s0.size(), 32256u);  // every port of the share came out at least once
  EXPECT_EQ(s1.size(), 32256u);
  for (uint16_t p : s0) ASSERT_EQ(p % 2, 0) << p;
  for (uint16_t p : s1) ASSERT_EQ(p % 2, 1) << p;
  std::vector<uint16_t> both;
  std::set_intersection(s0.begin(), s0.end(), s1.begin(), s1.end(), std::back_inserter(both));
  EXPECT_TRUE(both.empty());
  // Four rounds: the full share, then three times the half freed the round before.
  for (int id = 0; id < 2; ++id) EXPECT_EQ(got[id].size(), 32256u + 3 * 16128) << id;
  EXPECT_EQ(w0.pool(0, lb::PatProto::kUdp).in_use(), 16128u);
  EXPECT_EQ(w1.pool(0, lb::PatProto::kUdp).in_use(), 16128u);
}

}  // namespace
}  // namespace nf::test
