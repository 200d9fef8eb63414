// The rte_lpm FIB agrees with the reference RIB lookup, and neighbour /32s come and go.
#include <gtest/gtest.h>

#include <rte_rcu_qsbr.h>
#include "tests/common/config_helpers.h"

#include <random>

#include "nf/route/fib.h"
#include "nf/runtime/rcu.h"

namespace nf {
namespace {

Config load(const std::string& text) {
  return test::load_valid(text);
}

const char* kConf = R"(
lcores = { management = 0; workers = [1]; };
ports = ( { name = "lan"; device = "net_null0"; addresses = ["10.10.0.1/24"]; },
          { name = "srv"; device = "net_null1"; addresses = ["10.20.0.1/24", "172.16.0.1/30"]; } );
routes = ( { prefix = "0.0.0.0/0"; via = "10.10.0.254"; },
           { prefix = "192.0.2.0/24"; via = "10.20.0.9"; },
           { prefix = "192.0.2.128/25"; blackhole = true; },
           { prefix = "10.20.0.64/26"; via = "10.20.0.2"; },
           { prefix = "203.0.113.7/32"; via = "10.20.0.3"; } );
)";

TEST(Fib, AgreesWithReferenceLookup) {
  Config c = load(kConf);
  uint32_t next = 1;
  auto rib = build_rib(c, [&](uint32_t, uint16_t) { return next++; });
  std::string err;
  auto fib = Fib::create("t_fib_agree", rib, 16, nullptr, err);
  ASSERT_TRUE(fib) << err;
  std::mt19937 rng(1);
  std::vector<uint32_t> probes;
  for (const RibEntry& e : rib) {  // every edge of every prefix, and around it
    probes.push_back(e.prefix.addr);
    probes.push_back(e.prefix.broadcast());
    probes.push_back(e.prefix.addr - 1);
    probes.push_back(e.prefix.broadcast() + 1);
  }
  for (int i = 0; i < 100000; ++i) probes.push_back(rng());
  for (int i = 0; i < 10000; ++i) probes.push_back(0x0a140000 | (rng() & 0xff));
  for (uint32_t a : probes) {
    uint32_t got;
    auto want = rib_lookup(rib, a);
    int rc = fib->lookup(a, got);
    ASSERT_EQ(rc == 0, want.has_value()) << format_ipv4(a);
    if (want) {
      ASSERT_EQ(got, *want) << format_ipv4(a);
    }
  }
  // Bulk lookup gives the same answers.
  uint32_t res[32];
  fib->lookup_bulk(probes.data(), res, 32);
  for (int i = 0; i < 32; ++i) {
    auto want = rib_lookup(rib, probes[i]);
    EXPECT_EQ((res[i] & RTE_LPM_LOOKUP_SUCCESS) != 0, want.has_value());
    if (want) {
      EXPECT_EQ(res[i] & 0xffffff, *want);
    }
  }
}

TEST(Fib, NeighbourHostRoutesWithRcu) {
  Config c = load(kConf);
  auto rib = build_rib(c, [](uint32_t, uint16_t) { return 1u; });
  Rcu rcu(1);
  std::string err;
  auto fib = Fib::create("t_fib_rcu", rib, 1024, rcu.qsbr(), err);
  ASSERT_TRUE(fib) << err;
  uint32_t nhv;
  ASSERT_EQ(fib->lookup(*parse_ipv4("10.20.0.50"), nhv), 0);
  EXPECT_EQ(nh::type(nhv), nh::kGlean);
  for (uint32_t h = 2; h < 250; ++h)
    ASSERT_EQ(fib->add({0x0a140000 | h, 32}, nh::make(nh::kAdj, 100 + h)), 0);
  ASSERT_EQ(fib->lookup(*parse_ipv4("10.20.0.50"), nhv), 0);
  EXPECT_EQ(nhv, nh::make(nh::kAdj, 150));
  // The /26 route still wins over the connected /24 but loses to a host /32.
  ASSERT_EQ(fib->lookup(*parse_ipv4("10.20.0.70"), nhv), 0);
  EXPECT_EQ(nhv, nh::make(nh::kAdj, 170));
  for (uint32_t h = 2; h < 250; ++h) ASSERT_EQ(fib->del({0x0a140000 | h, 32}), 0);
  ASSERT_EQ(fib->lookup(*parse_ipv4("10.20.0.50"), nhv), 0);
  EXPECT_EQ(nh::type(nhv), nh::kGlean);
  ASSERT_EQ(fib->lookup(*parse_ipv4("10.20.0.70"), nhv), 0);
  EXPECT_EQ(nhv, nh::make(nh::kAdj, 1));  // back to the /26 gateway
}

}  // namespace
}  // namespace nf
