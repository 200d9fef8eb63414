// GSLB answers (nf/dns/engine.h): every policy through select_members() and through
// answer(), with health slots turned up and down, the ECS scope of geo answers (RFC 7871) and
// the all-members-down fallbacks. The RNG is the engine's own deterministic State, so the
// distribution checks cannot flake.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "nf/dns/engine.h"
#include "tests/common/dns_frames.h"

namespace nf::test {
namespace {

using dns::Policy;

class GslbTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(lab.errors.empty()) << lab.errors.front(); }
  // select_members() once: the addresses (as text) and the scope; {"SERVFAIL"} for -1.
  std::vector<std::string> pick(const char* name, uint32_t geo_addr = 0, int max = 64,
                                uint8_t* scope_out = nullptr) {
    uint32_t out[64];
    uint8_t scope = 0xff;
    const int n =
        dns::select_members(*lab.view, lab.g(name), lab.env, geo_addr, lab.st, out, max, scope);
    if (scope_out) *scope_out = scope;
    if (n < 0) return {"SERVFAIL"};
    std::vector<std::string> r;
    for (int i = 0; i < n; ++i) r.push_back(format_ipv4(out[i]));
    return r;
  }
  // The A records of answer() for a name, as text.
  std::vector<std::string> answer_addrs(const char* name, DnsAnswer* full = nullptr,
                                        uint32_t client = DnsLab::ip("192.0.2.10"),
                                        const DnsQuery* base = nullptr) {
    DnsQuery q = base ? *base : DnsQuery{};
    q.name = name;
    q.type = dns::type::A;
    const DnsAnswer a = lab.ask(q, client);
    EXPECT_EQ(a.error, "");
    if (full) *full = a;
    std::vector<std::string> r;
    for (const DnsRr& rr : a.answer)
      if (rr.type == dns::type::A) r.push_back(rr.rdata);
    return r;
  }
  DnsLab lab;
};

TEST_F(GslbTest, RoundRobinCoversAllMembersEvenly) {
  std::map<std::string, int> seen;
  for (int i = 0; i < 300; ++i) {
    const auto r = pick("www.lab.example.");
    ASSERT_EQ(r.size(), 1u);
    seen[r[0]]++;
  }
  EXPECT_EQ(seen, (std::map<std::string, int>{
                      {"10.20.0.11", 100}, {"10.20.0.12", 100}, {"10.20.0.13", 100}}));
  // Through answer(): owner is the query name, TTL the GSLB's, AA set.
  seen.clear();
  for (int i = 0; i < 30; ++i) {
    DnsAnswer a;
    const auto r = answer_addrs("WWW.lab.example", &a);
    ASSERT_EQ(r.size(), 1u);
    seen[r[0]]++;
    EXPECT_TRUE(a.aa);
    EXPECT_EQ(a.answer[0].owner, "WWW.lab.example.");
    EXPECT_EQ(a.answer[0].ttl, 30u);
  }
  EXPECT_EQ(seen.size(), 3u);
  for (auto& [k, v] : seen) EXPECT_EQ(v, 10) << k;
  // A member down is skipped; the others still share evenly.
  lab.set_up("10.20.0.12", false);
  seen.clear();
  for (int i = 0; i < 200; ++i) seen[pick("www.lab.example.")[0]]++;
  EXPECT_EQ(seen, (std::map<std::string, int>{{"10.20.0.11", 100}, {"10.20.0.13", 100}}));
  EXPECT_EQ(lab.c.gslb, 30u);
}

TEST_F(GslbTest, WeightedFollowsTheWeights) {
  constexpr int kN = 30000;
  std::map<std::string, int> seen;
  for (int i = 0; i < kN; ++i) seen[pick("weighted.lab.example.")[0]]++;
  const std::map<std::string, double> p = {
      {"10.20.1.1", 1.0 / 6}, {"10.20.1.2", 2.0 / 6}, {"10.20.1.3", 3.0 / 6}};
  ASSERT_EQ(seen.size(), 3u);
  for (const auto& [addr, pr] : p) {
    const double mean = kN * pr;
    const double sigma = std::sqrt(kN * pr * (1 - pr));
    EXPECT_LT(std::fabs(seen[addr] - mean), 4 * sigma) << addr << " " << seen[addr];
  }
  // Weight 0 is never chosen while another member is up.
  std::set<std::string> drained;
  for (int i = 0; i < 1000; ++i) drained.insert(pick("drained.lab.example.")[0]);
  EXPECT_EQ(drained, std::set<std::string>{"10.20.5.2"});
  // The weighted member down: the drained members that are up beat it, in turn.
  lab.set_up("10.20.5.2", false);
  std::map<std::string, int> turns;
  for (int i = 0; i < 100; ++i) turns[pick("drained.lab.example.")[0]]++;
  EXPECT_EQ(turns, (std::map<std::string, int>{{"10.20.5.1", 50}, {"10.20.5.3", 50}}));
  // Everything down: all members (all_down = all), weights again.
  lab.set_up("10.20.5.1", false);
  lab.set_up("10.20.5.3", false);
  EXPECT_EQ(pick("drained.lab.example."), std::vector<std::string>{"10.20.5.2"});
}

TEST_F(GslbTest, FailoverTakesTheFirstUp) {
  EXPECT_EQ(pick("failover.lab.example."), std::vector<std::string>{"10.20.2.1"});
  EXPECT_EQ(pick("failover.lab.example."), std::vector<std::string>{"10.20.2.1"});
  lab.set_up("10.20.2.1", false);
  EXPECT_EQ(pick("failover.lab.example."), std::vector<std::string>{"10.20.2.2"});
  lab.set_up("10.20.2.2", false);
  EXPECT_EQ(answer_addrs("failover.lab.example"), std::vector<std::string>{"10.20.2.3"});
  lab.set_up("10.20.2.1", true);
  EXPECT_EQ(pick("failover.lab.example."), std::vector<std::string>{"10.20.2.1"});
}

TEST_F(GslbTest, LowestRttPicksTheFastestKnown) {
  lab.set_rtt("10.20.3.1", 900);
  lab.set_rtt("10.20.3.2", 0);  // unknown: last
  lab.set_rtt("10.20.3.3", 400);
  EXPECT_EQ(pick("fast.lab.example."), std::vector<std::string>{"10.20.3.3"});
  lab.set_up("10.20.3.3", false);
  EXPECT_EQ(pick("fast.lab.example."), std::vector<std::string>{"10.20.3.1"});
  lab.set_rtt("10.20.3.2", 100);
  EXPECT_EQ(answer_addrs("fast.lab.example"), std::vector<std::string>{"10.20.3.2"});
}

TEST_F(GslbTest, GeoByClientAndEcs) {
  uint8_t scope = 0;
  EXPECT_EQ(pick("geo.lab.example.", DnsLab::ip("192.0.2.77"), 64, &scope),
            std::vector<std::string>{"10.30.0.1"});
  EXPECT_EQ(scope, 24);
  EXPECT_EQ(pick("geo.lab.example.", DnsLab::ip("198.51.100.1"), 64, &scope),
            std::vector<std::string>{"10.30.0.2"});
  EXPECT_EQ(pick("geo.lab.example.", DnsLab::ip("203.0.113.200"), 64, &scope),
            std::vector<std::string>{"10.30.0.3"});
  EXPECT_EQ(scope, 24);
  // 10/8 is eu, 10.99/16 inside it is us: the more specific wins, with its own scope; close
  // to it the /8's answer is only valid for the block that does not touch the /16.
  EXPECT_EQ(pick("geo.lab.example.", DnsLab::ip("10.99.1.1"), 64, &scope),
            std::vector<std::string>{"10.30.0.2"});
  EXPECT_EQ(scope, 16);
  EXPECT_EQ(pick("geo.lab.example.", DnsLab::ip("10.98.1.1"), 64, &scope),
            std::vector<std::string>{"10.30.0.1"});
  EXPECT_EQ(scope, 16);  // 10.98.0.0/15 would include 10.99/16
  EXPECT_EQ(pick("geo.lab.example.", DnsLab::ip("10.1.1.1"), 64, &scope),
            std::vector<std::string>{"10.30.0.1"});
  EXPECT_EQ(scope, 10);  // 10.0.0.0/10 lies wholly in 10/8 outside 10.99/16
  // The region's member down: another member answers.
  lab.set_up("10.30.0.1", false);
  const auto r = pick("geo.lab.example.", DnsLab::ip("192.0.2.77"));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_NE(r[0], "10.30.0.1");
  lab.set_up("10.30.0.1", true);

  // Through answer(): the source address decides, unless ECS says otherwise.
  DnsQuery e;
  e.edns = true;
  EXPECT_EQ(answer_addrs("geo.lab.example", nullptr, DnsLab::ip("203.0.113.9"), &e),
            std::vector<std::string>{"10.30.0.3"});
  e.ecs = true;
  e.ecs_addr = DnsLab::ip("198.51.100.0");
  e.ecs_source = 24;
  DnsAnswer a;
  EXPECT_EQ(answer_addrs("geo.lab.example", &a, DnsLab::ip("203.0.113.9"), &e),
            std::vector<std::string>{"10.30.0.2"});
  EXPECT_TRUE(a.ecs);
  EXPECT_EQ(a.ecs_source, 24);
  EXPECT_EQ(a.ecs_scope, 24);
  e.ecs_addr = DnsLab::ip("10.99.0.0");
  e.ecs_source = 16;
  EXPECT_EQ(answer_addrs("geo.lab.example", &a, DnsLab::ip("203.0.113.9"), &e),
            std::vector<std::string>{"10.30.0.2"});
  EXPECT_EQ(a.ecs_scope, 16);
  // ECS with SOURCE 0 (RFC 7871 7.1.2: no subnet to use) and IPv6 ECS: the source address
  // decides and the answer is valid for any subnet, scope 0.
  e.ecs_source = 0;
  EXPECT_EQ(answer_addrs("geo.lab.example", &a, DnsLab::ip("203.0.113.9"), &e),
            std::vector<std::string>{"10.30.0.3"});
  EXPECT_EQ(a.ecs_scope, 0);
  e.ecs_family = 2;
  e.ecs_source = 48;
  EXPECT_EQ(answer_addrs("geo.lab.example", &a, DnsLab::ip("203.0.113.9"), &e),
            std::vector<std::string>{"10.30.0.3"});
  EXPECT_EQ(a.ecs_family, 2);
  EXPECT_EQ(a.ecs_scope, 0);
  e.ecs_family = 1;
  // Non-geo GSLB answers carry scope 0.
  e.ecs_addr = DnsLab::ip("198.51.100.0");
  e.ecs_source = 24;
  answer_addrs("www.lab.example", &a, DnsLab::ip("203.0.113.9"), &e);
  EXPECT_TRUE(a.ecs);
  EXPECT_EQ(a.ecs_scope, 0);
}

TEST_F(GslbTest, AllDown) {
  lab.set_up("10.20.6.1", false);
  EXPECT_EQ(pick("sf.lab.example."), std::vector<std::string>{"SERVFAIL"});
  DnsAnswer a;
  answer_addrs("sf.lab.example", &a);
  EXPECT_EQ(a.rcode, dns::rcode::kServFail);
  EXPECT_EQ(a.qname, "sf.lab.example.");
  EXPECT_EQ(lab.c.gslb_all_down, 1u);
  lab.set_up("10.20.7.1", false);
  EXPECT_EQ(answer_addrs("bk.lab.example"), std::vector<std::string>{"192.0.2.200"});
  lab.set_up("10.20.8.1", false);
  lab.set_up("10.20.8.2", false);
  EXPECT_EQ(pick("all.lab.example."), std::vector<std::string>{"10.20.8.1"});  // failover order
  lab.set_up("10.20.8.2", true);
  EXPECT_EQ(pick("all.lab.example."), std::vector<std::string>{"10.20.8.2"});
}

TEST_F(GslbTest, AnswersNGivesDistinctAddresses) {
  std::map<std::string, int> seen;
  for (int i = 0; i < 100; ++i) {
    const auto r = answer_addrs("multi.lab.example");
    ASSERT_EQ(r.size(), 2u);
    EXPECT_NE(r[0], r[1]);
    for (const auto& x : r) seen[x]++;
  }
  EXPECT_EQ(seen.size(), 4u);
  for (auto& [k, v] : seen) EXPECT_EQ(v, 50) << k;
  // Every policy honours `answers` with distinct addresses.
  for (Policy p : {Policy::kRoundRobin, Policy::kWeighted, Policy::kFailover, Policy::kLowestRtt,
                   Policy::kGeo}) {
    auto g = DnsLab::default_gslb();
    g.push_back(DnsLab::gslb("n.lab.example.", p,
                             {DnsLab::m("10.9.0.1", 1, "eu"), DnsLab::m("10.9.0.2", 5, "eu"),
                              DnsLab::m("10.9.0.3", 2, "eu"), DnsLab::m("10.9.0.4", 1, "us")},
                             3));
    DnsLab l(true, g);
    ASSERT_TRUE(l.errors.empty());
    for (int i = 0; i < 50; ++i) {
      uint32_t out[8];
      uint8_t scope;
      const int n = dns::select_members(*l.view, l.g("n.lab.example."), l.env,
                                        DnsLab::ip("198.51.100.1"), l.st, out, 8, scope);
      const std::set<uint32_t> d(out, out + n);
      EXPECT_EQ(d.size(), static_cast<size_t>(n));
      // geo: us has one member only
      EXPECT_EQ(n, p == Policy::kGeo ? 1 : 3) << static_cast<int>(p);
    }
    // `max` caps it.
    uint32_t out[8];
    uint8_t scope;
    EXPECT_LE(dns::select_members(*l.view, l.g("n.lab.example."), l.env, 0, l.st, out, 2, scope),
              2);
  }
}

TEST_F(GslbTest, OtherTypesAtAGslbName) {
  DnsQuery q;
  q.name = "www.lab.example";
  q.type = dns::type::AAAA;
  const DnsAnswer a = lab.ask(q);
  EXPECT_EQ(a.error, "");
  EXPECT_EQ(a.rcode, dns::rcode::kNoError);
  EXPECT_TRUE(a.answer.empty());
  ASSERT_EQ(a.authority.size(), 1u);
  EXPECT_EQ(a.authority[0].type, dns::type::SOA);
}

}  // namespace
}  // namespace nf::test
