// Routing decisions from the RIB, checked with the reference longest-prefix match (the same
// oracle the rte_lpm FIB is compared against in tests/eal/test_fib.cc).
#include <gtest/gtest.h>

#include "tests/common/config_helpers.h"

#include "nf/route/rib.h"

namespace nf {
namespace {

Config load(const std::string& text) {
  return test::load_valid(text);
}

const char* kTwoPorts = R"(
lcores = { management = 0; workers = [1]; };
ports = ( { name = "lan"; device = "net_null0"; addresses = ["10.10.0.1/24"]; },
          { name = "srv"; device = "net_null1"; addresses = ["10.20.0.1/24", "172.16.0.1/30"]; } );
routes = ( { prefix = "0.0.0.0/0"; via = "10.10.0.254"; },
           { prefix = "192.0.2.0/24"; via = "10.20.0.9"; },
           { prefix = "192.0.2.128/25"; blackhole = true; } );
)";

TEST(Rib, DecisionsByLongestPrefix) {
  Config c = load(kTwoPorts);
  std::vector<std::pair<uint32_t, uint16_t>> asked;
  auto rib = build_rib(c, [&](uint32_t gw, uint16_t port) {
    asked.emplace_back(gw, port);
    return gw == 0x0a0a00fe ? 7u : 9u;
  });
  ASSERT_EQ(asked.size(), 2u);
  EXPECT_EQ(asked[0], std::make_pair(0x0a0a00feu, uint16_t{0}));
  EXPECT_EQ(asked[1], std::make_pair(0x0a140009u, uint16_t{1}));

  auto type_of = [&](const char* a) { return nh::type(*rib_lookup(rib, *parse_ipv4(a))); };
  auto val_of = [&](const char* a) { return nh::value(*rib_lookup(rib, *parse_ipv4(a))); };
  EXPECT_EQ(type_of("10.10.0.1"), nh::kLocal);
  EXPECT_EQ(type_of("10.10.0.255"), nh::kLocal);  // subnet broadcast
  EXPECT_EQ(type_of("10.10.0.0"), nh::kLocal);
  EXPECT_EQ(type_of("255.255.255.255"), nh::kLocal);
  EXPECT_EQ(type_of("172.16.0.1"), nh::kLocal);  // second address
  EXPECT_EQ(type_of("10.10.0.100"), nh::kGlean);
  EXPECT_EQ(val_of("10.10.0.100"), 0u);
  EXPECT_EQ(type_of("172.16.0.2"), nh::kGlean);
  EXPECT_EQ(val_of("172.16.0.2"), 1u);
  EXPECT_EQ(type_of("192.0.2.5"), nh::kAdj);
  EXPECT_EQ(val_of("192.0.2.5"), 9u);
  EXPECT_EQ(type_of("192.0.2.200"), nh::kBlackhole);  // /25 beats /24
  EXPECT_EQ(type_of("8.8.8.8"), nh::kAdj);            // default route
  EXPECT_EQ(val_of("8.8.8.8"), 7u);
}

TEST(Rib, NoDefaultMeansNoRoute) {
  Config c = load(R"(
lcores = { management = 0; workers = [1]; };
ports = ( { name = "lan"; device = "net_null0"; addresses = ["10.10.0.1/24"]; } );
)");
  auto rib = build_rib(c, [](uint32_t, uint16_t) { return 0u; });
  EXPECT_FALSE(rib_lookup(rib, *parse_ipv4("8.8.8.8")));
  EXPECT_TRUE(rib_lookup(rib, *parse_ipv4("10.10.0.7")));
}

TEST(Rib, NextHopEncodingRoundTrips) {
  for (auto t : {nh::kAdj, nh::kGlean, nh::kLocal, nh::kBlackhole}) {
    uint32_t v = nh::make(t, 0xabcde);
    EXPECT_LT(v, 1u << 24);  // rte_lpm keeps 24 bits
    EXPECT_EQ(nh::type(v), t);
    EXPECT_EQ(nh::value(v), 0xabcdeu);
  }
}

}  // namespace
}  // namespace nf
