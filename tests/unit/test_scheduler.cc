// Schedulers (nf/lb/scheduler.h): the exact sequences of round robin and smooth weighted round
// robin, least connections following opens, closes and weights, source-hash stickiness and
// spread, and the rules every algorithm shares: a down or drained (weight 0) real gets no new
// flow, all down gives kNone. Random inputs come from seeded generators.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "nf/lb/scheduler.h"

namespace nf::lb {
namespace {

constexpr Algo kAllAlgos[] = {Algo::kRoundRobin, Algo::kWeightedRoundRobin, Algo::kLeastConn,
                              Algo::kSourceHash, Algo::kMaglev};

std::vector<Real> make_reals(const std::vector<uint32_t>& weights) {
  std::vector<Real> r;
  for (size_t i = 0; i < weights.size(); ++i)
    r.push_back({real_id_v4(0x0a000101 + static_cast<uint32_t>(i), 80), weights[i]});
  return r;
}

struct Fixture {
  Pool pool;
  PoolCursor cursor;
  std::vector<uint8_t> up;

  Fixture(Algo algo, const std::vector<uint32_t>& weights) {
    EXPECT_TRUE(pool.build(algo, make_reals(weights)));
    cursor.reset(pool);
    up.assign(weights.size(), 1);
  }
  uint16_t pick(uint64_t flow_hash = 0, uint64_t src_hash = 0) {
    return lb::pick(pool, cursor, up, flow_hash, src_hash);
  }
  // n picks as letters 'a' + index ('-' for kNone).
  std::string sequence(int n) {
    std::string s;
    for (int i = 0; i < n; ++i) {
      const uint16_t r = pick();
      s += r == kNone ? '-' : static_cast<char>('a' + r);
    }
    return s;
  }
};

TEST(SchedulerRoundRobin, CyclesExactly) {
  Fixture f(Algo::kRoundRobin, {1, 1, 1, 1});
  EXPECT_EQ(f.sequence(12), "abcdabcdabcd");
}

TEST(SchedulerRoundRobin, IgnoresWeightsButSkipsDownAndDrained) {
  Fixture f(Algo::kRoundRobin, {5, 1, 0, 2});
  EXPECT_EQ(f.sequence(6), "abdabd");
  f.up[1] = 0;
  EXPECT_EQ(f.sequence(4), "adad");
  f.up[1] = 1;
  EXPECT_EQ(f.sequence(3), "abd");
}

TEST(SchedulerWrr, SmoothFiveOneOne) {
  Fixture f(Algo::kWeightedRoundRobin, {5, 1, 1});
  // nginx's interleaving, period 7, not "aaaaabc". Cyclically a run of 3 a's is unavoidable
  // (5 a's, 2 separators); this order has runs of 2 within a period and 4 across the seam.
  EXPECT_EQ(f.sequence(21), "aabacaaaabacaaaabacaa");
}

TEST(SchedulerWrr, ExactPerPeriodAndNeverFarFromTheIdealShare) {
  // For random weight sets: over a period of W = sum(w) picks each real gets exactly w, and
  // after every prefix of k picks no real is 1.5 picks or more away from k * w / W. (Measured:
  // 1.00 on these sets, 1.14 the worst in a search of 4,000 others; smooth WRR can exceed 1.
  // A bursty WRR is up to w * (1 - w / W) away.)
  std::mt19937_64 rng(21);
  double worst = 0;
  for (int trial = 0; trial < 200; ++trial) {
    const size_t n = 2 + rng() % 15;
    std::vector<uint32_t> w(n);
    for (uint32_t& x : w) x = 1 + static_cast<uint32_t>(rng() % 50);
    Fixture f(Algo::kWeightedRoundRobin, w);
    uint64_t total = 0;
    for (uint32_t x : w) total += x;
    std::vector<uint64_t> count(n, 0);
    for (uint64_t k = 1; k <= total; ++k) {
      const uint16_t r = f.pick();
      ASSERT_LT(r, n);
      ++count[r];
      for (size_t i = 0; i < n; ++i) {
        const double ideal = static_cast<double>(k * w[i]) / static_cast<double>(total);
        worst = std::max(worst, std::fabs(static_cast<double>(count[i]) - ideal));
      }
    }
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(count[i], w[i]) << "trial " << trial;
  }
  EXPECT_LT(worst, 1.5);
}

TEST(SchedulerWrr, DownRealsShareGoesToTheOthersByWeight) {
  Fixture f(Algo::kWeightedRoundRobin, {1, 2, 3, 0});
  f.up[0] = 0;
  const std::string s = f.sequence(50);  // 10 periods of 2 + 3
  EXPECT_EQ(std::count(s.begin(), s.end(), 'a'), 0);
  EXPECT_EQ(std::count(s.begin(), s.end(), 'b'), 20);
  EXPECT_EQ(std::count(s.begin(), s.end(), 'c'), 30);
  EXPECT_EQ(std::count(s.begin(), s.end(), 'd'), 0);  // weight 0
}

TEST(SchedulerLeastConn, PicksTheLeastLoaded) {
  Fixture f(Algo::kLeastConn, {1, 1, 1});
  for (int i = 0; i < 5; ++i) f.cursor.on_open(0);
  for (int i = 0; i < 2; ++i) f.cursor.on_open(1);
  for (int i = 0; i < 7; ++i) f.cursor.on_open(2);
  EXPECT_EQ(f.pick(), 1);
  // Filling up as the caller reports each open: 1 until it reaches 5, then 0 and 1 alternate.
  std::string s;
  for (int i = 0; i < 7; ++i) {
    const uint16_t r = f.pick();
    f.cursor.on_open(r);
    s += static_cast<char>('a' + r);
  }
  EXPECT_EQ(s, "bbbabab");
  EXPECT_EQ(f.cursor.active(0), 7u);
  EXPECT_EQ(f.cursor.active(1), 7u);
  EXPECT_EQ(f.cursor.active(2), 7u);
}

TEST(SchedulerLeastConn, RespectsWeights) {
  Fixture f(Algo::kLeastConn, {1, 3, 2});
  for (int i = 0; i < 600; ++i) f.cursor.on_open(f.pick());
  EXPECT_EQ(f.cursor.active(0), 100u);
  EXPECT_EQ(f.cursor.active(1), 300u);
  EXPECT_EQ(f.cursor.active(2), 200u);
}

TEST(SchedulerLeastConn, FollowsOnClose) {
  Fixture f(Algo::kLeastConn, {1, 1, 1});
  for (int i = 0; i < 30; ++i) f.cursor.on_open(f.pick());
  ASSERT_EQ(f.cursor.active(2), 10u);
  for (int i = 0; i < 3; ++i) f.cursor.on_close(2);
  for (int i = 0; i < 3; ++i) {
    const uint16_t r = f.pick();
    EXPECT_EQ(r, 2);
    f.cursor.on_open(r);
  }
  EXPECT_EQ(f.cursor.active(2), 10u);
}

TEST(SchedulerLeastConn, TiesAlternateWithoutOpens) {
  Fixture f(Algo::kLeastConn, {2, 2, 2});
  EXPECT_EQ(f.sequence(9), "abcabcabc");
}

TEST(SchedulerLeastConn, CountsSaturateAndIgnoreUnknownReals) {
  Fixture f(Algo::kLeastConn, {1, 1});
  f.cursor.on_close(0);  // never opened
  EXPECT_EQ(f.cursor.active(0), 0u);
  f.cursor.on_open(7);  // not in this pool (e.g. a flow from before a reload)
  f.cursor.on_close(kNone);
  EXPECT_EQ(f.cursor.active(7), 0u);
  f.cursor.on_open(1);
  EXPECT_EQ(f.pick(), 0);
}

TEST(SchedulerLeastConn, DownAndDrainedGetNothing) {
  Fixture f(Algo::kLeastConn, {1, 0, 1, 1});
  f.up[3] = 0;
  for (int i = 0; i < 20; ++i) f.cursor.on_open(f.pick());
  EXPECT_EQ(f.cursor.active(0), 10u);
  EXPECT_EQ(f.cursor.active(1), 0u);
  EXPECT_EQ(f.cursor.active(2), 10u);
  EXPECT_EQ(f.cursor.active(3), 0u);
}

TEST(SchedulerSourceHash, OneClientOneReal) {
  Fixture f(Algo::kSourceHash, {1, 1, 1, 1, 1});
  const uint64_t src = hash_source_v4(0xc0000207);  // 192.0.2.7
  std::mt19937_64 rng(31);
  const uint16_t first = f.pick(rng(), src);
  ASSERT_NE(first, kNone);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(f.pick(rng(), src), first);  // any port, any flow
}

TEST(SchedulerSourceHash, RandomClientsSpreadEvenly) {
  Fixture f(Algo::kSourceHash, {1, 1, 1, 1, 1});
  std::mt19937 rng(32);
  constexpr int kClients = 100'000;
  std::vector<int> count(5, 0);
  for (int i = 0; i < kClients; ++i) ++count[f.pick(0, hash_source_v4(rng()))];
  double chi2 = 0;
  const double e = kClients / 5.0;
  for (int c : count) {
    EXPECT_NEAR(c, e, 0.05 * e);
    chi2 += (c - e) * (c - e) / e;
  }
  EXPECT_LT(chi2, 18.47);  // 4 degrees of freedom, p = 0.001
}

TEST(SchedulerSourceHash, SequentialClientsSpreadEvenly) {
  // One /16 of clients, addresses in order: the hash must not keep their structure.
  Fixture f(Algo::kSourceHash, {1, 1, 1, 1});
  std::vector<int> count(4, 0);
  for (uint32_t a = 0; a < 65536; ++a) ++count[f.pick(0, hash_source_v4(0x0a140000 + a))];
  for (int c : count) EXPECT_NEAR(c, 16384, 0.05 * 16384);
}

TEST(SchedulerSourceHash, DownRealLosesOnlyItsClients) {
  Fixture f(Algo::kSourceHash, {1, 1, 1, 1, 1});
  std::mt19937 rng(33);
  std::vector<uint64_t> clients(20'000);
  for (uint64_t& c : clients) c = hash_source_v4(rng());
  std::vector<uint16_t> before;
  for (uint64_t c : clients) before.push_back(f.pick(0, c));
  f.up[2] = 0;
  size_t moved = 0;
  for (size_t i = 0; i < clients.size(); ++i) {
    const uint16_t r = f.pick(0, clients[i]);
    ASSERT_NE(r, 2);
    ASSERT_NE(r, kNone);
    if (before[i] != 2) {
      ASSERT_EQ(r, before[i]);
    } else {
      ++moved;
    }
  }
  EXPECT_NEAR(static_cast<double>(moved) / clients.size(), 0.2, 0.02);
  f.up[2] = 1;  // back: everyone returns to where they were
  for (size_t i = 0; i < clients.size(); ++i) ASSERT_EQ(f.pick(0, clients[i]), before[i]);
}

TEST(SchedulerSourceHash, WeightZeroDrainsAndFewOthersMove) {
  Fixture f(Algo::kSourceHash, {1, 1, 1, 1, 1});
  Fixture drained(Algo::kSourceHash, {1, 1, 0, 1, 1});
  std::mt19937 rng(34);
  size_t others = 0;
  size_t moved = 0;
  for (int i = 0; i < 100'000; ++i) {
    const uint64_t c = hash_source_v4(rng());
    const uint16_t a = f.pick(0, c);
    const uint16_t b = drained.pick(0, c);
    ASSERT_NE(b, 2);
    if (a != 2) {
      ++others;
      moved += a != b;
    }
  }
  // A rebuild, unlike a failure, may move a few of the others' clients (Maglev; measured
  // 0.12 % here).
  EXPECT_LT(static_cast<double>(moved) / static_cast<double>(others), 0.015);
}

TEST(SchedulerMaglev, FlowHashFollowsWeightsAndIgnoresSource) {
  Fixture f(Algo::kMaglev, {1, 2, 3});
  std::mt19937_64 rng(41);
  std::vector<int> count(3, 0);
  constexpr int kN = 120'000;
  for (int i = 0; i < kN; ++i) {
    const uint64_t h = rng();
    const uint16_t r = f.pick(h, 1);
    ASSERT_EQ(f.pick(h, 2), r);  // same flow from "another source": same real
    ++count[r];
  }
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(count[i], kN * (i + 1) / 6.0, 0.05 * kN * (i + 1) / 6);
}

TEST(SchedulerAll, DownAndDrainedRealsNeverGetANewFlow) {
  for (Algo a : kAllAlgos) {
    Fixture f(a, {1, 0, 2, 1});
    f.up[3] = 0;
    std::mt19937_64 rng(51);
    for (int i = 0; i < 5000; ++i) {
      const uint16_t r = f.pick(rng(), rng());
      ASSERT_TRUE(r == 0 || r == 2) << algo_name(a) << " gave " << r;
      f.cursor.on_open(r);
    }
  }
}

TEST(SchedulerAll, AllDownOrDrainedGivesNone) {
  for (Algo a : kAllAlgos) {
    Fixture f(a, {1, 1, 1});
    std::fill(f.up.begin(), f.up.end(), 0);
    for (uint64_t h = 0; h < 100; ++h) ASSERT_EQ(f.pick(h * 0x9e3779b97f4a7c15ULL, h), kNone);
    Fixture d(a, {0, 0, 0});
    for (uint64_t h = 0; h < 100; ++h) ASSERT_EQ(d.pick(h * 0x9e3779b97f4a7c15ULL, h), kNone);
    Fixture e(a, {});
    EXPECT_EQ(e.pick(1, 1), kNone) << algo_name(a);
  }
}

TEST(SchedulerAll, MisfittingCursorOrHealthGivesNone) {
  Fixture f(Algo::kRoundRobin, {1, 1, 1});
  Pool other;
  ASSERT_TRUE(other.build(Algo::kRoundRobin, make_reals({1, 1})));
  PoolCursor small;
  small.reset(other);
  EXPECT_EQ(pick(f.pool, small, f.up, 0, 0), kNone);
  const uint8_t two[2] = {1, 1};
  EXPECT_EQ(pick(f.pool, f.cursor, two, 0, 0), kNone);
  EXPECT_EQ(f.pick(), 0);
}

TEST(SchedulerCursor, RebindKeepsCountsOfSurvivingReals) {
  const auto old_reals = make_reals({1, 1, 1});
  Pool a;
  ASSERT_TRUE(a.build(Algo::kLeastConn, old_reals));
  PoolCursor c;
  c.reset(a);
  for (int i = 0; i < 4; ++i) c.on_open(0);
  for (int i = 0; i < 5; ++i) c.on_open(1);
  for (int i = 0; i < 6; ++i) c.on_open(2);
  // Reload: real 1 removed, a new real first, real 2 and real 0 swapped.
  std::vector<Real> new_reals = {{real_id_v4(0x0a0001ff, 80), 1}, old_reals[2], old_reals[0]};
  Pool b;
  ASSERT_TRUE(b.build(Algo::kLeastConn, new_reals));
  c.rebind(a, b);
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c.active(0), 0u);
  EXPECT_EQ(c.active(1), 6u);
  EXPECT_EQ(c.active(2), 4u);
  const uint8_t up[3] = {1, 1, 1};
  EXPECT_EQ(pick(b, c, up, 0, 0), 0);
  // A flow opened on old real 2 closes under its new index.
  EXPECT_EQ(b.find(old_reals[2].id), 1);
  EXPECT_EQ(b.find(old_reals[0].id), 2);
  EXPECT_EQ(b.find(old_reals[1].id), kNone);
  c.on_close(b.find(old_reals[2].id));
  EXPECT_EQ(c.active(1), 5u);
}

TEST(SchedulerPool, StatelessPlacementUsesTheAlgorithmsKey) {
  Pool sh;
  Pool rr;
  ASSERT_TRUE(sh.build(Algo::kSourceHash, make_reals({1, 1, 1, 1})));
  ASSERT_TRUE(rr.build(Algo::kRoundRobin, make_reals({1, 1, 1, 1})));
  const uint8_t up[4] = {1, 1, 1, 1};
  std::mt19937_64 rng(61);
  for (int i = 0; i < 1000; ++i) {
    const uint64_t flow = rng();
    const uint64_t src = rng();
    ASSERT_EQ(sh.stateless(up, flow, src), sh.maglev().lookup(src));
    ASSERT_EQ(rr.stateless(up, flow, src), rr.maglev().lookup(flow));
  }
  EXPECT_EQ(sh.maglev().size(), 65537u);
  Pool small;
  ASSERT_TRUE(small.build(Algo::kMaglev, make_reals({1, 1, 1}), 0));
  EXPECT_EQ(small.maglev().size(), 307u);
}

TEST(SchedulerNames, ParseWhatIsPrinted) {
  for (Algo a : kAllAlgos) {
    Algo back = Algo::kMaglev;
    ASSERT_TRUE(parse_algo(algo_name(a), back)) << algo_name(a);
    EXPECT_EQ(back, a);
  }
  Algo x = Algo::kRoundRobin;
  EXPECT_TRUE(parse_algo("wlc", x));
  EXPECT_EQ(x, Algo::kLeastConn);
  EXPECT_TRUE(parse_algo("weighted_round_robin", x));
  EXPECT_EQ(x, Algo::kWeightedRoundRobin);
  EXPECT_TRUE(parse_algo("source_hash", x));
  EXPECT_EQ(x, Algo::kSourceHash);
  EXPECT_FALSE(parse_algo("random", x));
  EXPECT_FALSE(parse_algo("", x));
}

}  // namespace
}  // namespace nf::lb
