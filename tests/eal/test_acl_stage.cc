// The acl and acl_out stages (pipelines/acl/acl_stage.h) on golden frames: first match in
// configuration order, port ranges, per-port and per-direction sets, default actions, per-rule
// counters per worker, fragments, malformed datagrams, bursts mixing ports, handed-over
// packets counted once, reload sharing of unchanged sets, and `show acl`. EAL suite: rte_acl
// and rte_lpm need EAL memory.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "nf/runtime/snapshot.h"
#include "pipelines/acl/acl_stage.h"
#include "tests/common/fake_mbuf.h"
#include "tests/common/lb_frames.h"

namespace nf::test {
namespace {

using acl::AclStage;

const MacAddr kServerMac{{0x02, 0, 0, 0, 0x0b, 0x0b}};
constexpr uint16_t kLan = 0, kSrv = 1, kWan = 2;

// Three ports; a static route via a gateway (10.20.0.9, adjacency slot 5, not resolved);
// 10.20.0.11 resolved (slot 3, port srv); every other srv host unresolved (glean).
const char* const kBase = R"(
lcores = { management = 0; workers = [1, 2]; };
ports = ( { name = "lan"; device = "net_null0"; addresses = ["10.10.0.1/24"]; },
          { name = "srv"; device = "net_null1"; addresses = ["10.20.0.1/24"]; },
          { name = "wan"; device = "net_null2"; addresses = ["203.0.113.1/24"]; } );
routes = ( { prefix = "192.0.2.0/24"; via = "10.20.0.9"; } );
pipeline = [ "input", "acl", "acl_out", "ip4_forward" ];
)";

std::vector<uint8_t> tcp(const char* src, const char* dst, uint16_t sport, uint16_t dport) {
  L4Spec s;
  s.src = ip4(src);
  s.dst = ip4(dst);
  s.sport = sport;
  s.dport = dport;
  return l4_frame(s);
}
std::vector<uint8_t> udp(const char* src, const char* dst, uint16_t sport, uint16_t dport) {
  L4Spec s;
  s.proto = 17;
  s.src = ip4(src);
  s.dst = ip4(dst);
  s.sport = sport;
  s.dport = dport;
  return l4_frame(s);
}
// Recomputes the header checksum after byte surgery on the IPv4 header.
std::vector<uint8_t> fix(std::vector<uint8_t> f) {
  wr16(&f[24], 0);
  wr16(&f[24], ip_cksum(&f[14]));
  return f;
}

class AclStageTest : public ::testing::Test {
 protected:
  // Loads kBase + `acl_group` and builds the snapshot the stages read.
  void load(const std::string& acl_group, const acl::Runtime* previous = nullptr,
            uint64_t generation = 1) {
    const std::string text = kBase + acl_group;
    LoadResult r = load_config("t.conf", &text);
    ASSERT_TRUE(std::holds_alternative<Config>(r)) << format_errors(std::get<1>(r));
    cfg_ = std::get<Config>(r);
    if (!snap_.fib) {
      snap_.adj = &adj_;
      snap_.nb_ports = 3;
      for (uint16_t p = 0; p < 3; ++p) snap_.ports[p] = PortView::make(kPortMac, 1500);
      snap_.min_mtu = 1500;
      snap_.rib = build_rib(cfg_, [](uint32_t, uint16_t) { return 5u; });
      std::string err;
      static int n = 0;
      snap_.fib = Fib::create("t_acl_" + std::to_string(n++), snap_.rib, 64, nullptr, err);
      ASSERT_TRUE(snap_.fib) << err;
      adj_.publish(3, kServerMac, kSrv);
      ASSERT_EQ(snap_.fib->add({ip4("10.20.0.11"), 32}, nh::make(nh::kAdj, 3)), 0);
    }
    std::string err;
    auto rt = acl::build_runtime(cfg_, previous, 2, generation, &err);
    ASSERT_TRUE(rt) << err;
    rt->gateway_ports = acl::gateway_ports(cfg_, snap_.rib);
    snap_.acl = rt;
    rt_ = rt.get();
  }

  struct Result {
    std::vector<std::string> outcome;  // per packet: "next" or "drop"
    StageCounters c{};
    std::vector<rte_mbuf*> next;  // in emitted order
  };
  // One burst through one stage on worker `worker`.
  Result run(bool out_stage, std::vector<FakeMbuf*> pkts, uint16_t worker = 0) {
    AclStage stage(out_stage, worker);
    auto emit = std::make_unique<Emit>();
    emit->set_nb_ports(3);
    Burst b;
    b.n = static_cast<uint16_t>(pkts.size());
    for (size_t i = 0; i < pkts.size(); ++i) b.pkts[i] = pkts[i]->mbuf();
    Result res;
    StageCtx ctx{&snap_, 0, worker};
    emit->begin_stage(&res.c);
    stage.process(b, ctx, *emit);
    emit->end_stage();
    const Burst& nb = emit->next_burst();
    res.next.assign(nb.pkts, nb.pkts + nb.n);
    for (FakeMbuf* p : pkts) {
      bool passed = std::find(res.next.begin(), res.next.end(), p->mbuf()) != res.next.end();
      res.outcome.push_back(passed ? "next" : "drop");
    }
    uint64_t drops = 0;
    for (uint64_t d : res.c.drops) drops += d;
    EXPECT_EQ(res.c.next + drops, pkts.size()) << "conservation";
    EXPECT_EQ(res.c.drop, drops);
    return res;
  }
  // One frame received on `port`: "next", "drop:acl_deny" or "drop:acl_malformed".
  std::string one(bool out_stage, const std::vector<uint8_t>& frame, uint16_t port,
                  uint16_t worker = 0) {
    FakeMbuf fm(frame, port);
    fm.parse(kPortMac);
    if (meta(fm.mbuf()).parse != ParseStatus::kOk) return "not-ip";
    const std::vector<uint8_t> before = fm.bytes();
    Result r = run(out_stage, {&fm}, worker);
    EXPECT_EQ(fm.bytes(), before) << "the stage never writes a packet";
    if (r.c.next == 1) return "next";
    for (size_t i = 0; i < AclStage::kDropCount; ++i)
      if (r.c.drops[i]) return "drop:" + std::string(AclStage::kDropNames[i]);
    return "?";
  }
  // Matches summed over workers: slot 0 the default, k rule k - 1.
  std::vector<uint64_t> counts(bool out, uint16_t port) const {
    const acl::SetRt* s = (out ? rt_->out : rt_->in)[port];
    std::vector<uint64_t> v;
    for (uint32_t k = 0; k < s->slots; ++k) v.push_back(s->matches(k));
    return v;
  }

  Config cfg_;
  AdjTable adj_{16};
  Snapshot snap_;
  const acl::Runtime* rt_ = nullptr;
};

TEST_F(AclStageTest, FirstMatchInOrderAndPerRuleCounters) {
  load(R"(acl = { sets = ( { port = "lan"; rules = (
    { action = "permit"; name = "admin-web"; src = "10.10.0.100"; dst = "10.20.0.13";
      protocol = "tcp"; dport = 80; },
    { action = "deny"; name = "srv3"; dst = "10.20.0.13"; },
    { action = "deny"; name = "telnet"; protocol = "tcp"; dport = 23; }
  ); } ); };)");
  EXPECT_EQ(one(false, tcp("10.10.0.100", "10.20.0.13", 40000, 80), kLan), "next");
  EXPECT_EQ(one(false, tcp("10.10.0.101", "10.20.0.13", 40000, 80), kLan), "drop:acl_deny");
  EXPECT_EQ(one(false, tcp("10.10.0.100", "10.20.0.13", 40000, 22), kLan), "drop:acl_deny");
  // Rule 2 precedes rule 3: telnet to srv3 is counted by rule 2 only.
  EXPECT_EQ(one(false, tcp("10.10.0.100", "10.20.0.13", 40000, 23), kLan), "drop:acl_deny");
  EXPECT_EQ(one(false, tcp("10.10.0.100", "10.20.0.12", 40000, 23), kLan), "drop:acl_deny");
  EXPECT_EQ(one(false, tcp("10.10.0.100", "10.20.0.12", 40000, 80), kLan), "next");
  EXPECT_EQ(one(false, icmp_echo_frame(ip4("10.10.0.100"), ip4("10.20.0.13"), 8, 1, 1, 8), kLan),
            "drop:acl_deny");
  EXPECT_EQ(counts(false, kLan), (std::vector<uint64_t>{1, 1, 4, 1}));
}

TEST_F(AclStageTest, PortRangeBoundaries) {
  load(R"(acl = { sets = ( { port = "lan"; rules = (
    { action = "deny"; protocol = "udp"; dport = "1000-2000"; },
    { action = "deny"; protocol = "tcp"; sport = "5000-5001"; dport = 443; }
  ); } ); };)");
  EXPECT_EQ(one(false, udp("10.10.0.100", "10.20.0.11", 9, 999), kLan), "next");
  EXPECT_EQ(one(false, udp("10.10.0.100", "10.20.0.11", 9, 1000), kLan), "drop:acl_deny");
  EXPECT_EQ(one(false, udp("10.10.0.100", "10.20.0.11", 9, 2000), kLan), "drop:acl_deny");
  EXPECT_EQ(one(false, udp("10.10.0.100", "10.20.0.11", 9, 2001), kLan), "next");
  // A TCP segment to the UDP range: the protocol decides first.
  EXPECT_EQ(one(false, tcp("10.10.0.100", "10.20.0.11", 9, 1500), kLan), "next");
  EXPECT_EQ(one(false, tcp("10.10.0.100", "10.20.0.11", 4999, 443), kLan), "next");
  EXPECT_EQ(one(false, tcp("10.10.0.100", "10.20.0.11", 5000, 443), kLan), "drop:acl_deny");
  EXPECT_EQ(one(false, tcp("10.10.0.100", "10.20.0.11", 5001, 443), kLan), "drop:acl_deny");
  EXPECT_EQ(one(false, tcp("10.10.0.100", "10.20.0.11", 5002, 443), kLan), "next");
  EXPECT_EQ(one(false, tcp("10.10.0.100", "10.20.0.11", 5000, 444), kLan), "next");
  EXPECT_EQ(counts(false, kLan), (std::vector<uint64_t>{6, 2, 2}));
}

TEST_F(AclStageTest, SetsArePerPortAndDefaultsApply) {
  load(R"(acl = { sets = (
    { port = "lan"; default = "deny"; rules = (
        { action = "permit"; src = "10.10.0.0/24"; } ); },
    { port = "wan"; rules = ( { action = "deny"; src = "10.10.0.0/24"; } ); }
  ); };)");
  // lan: only its own subnet may enter; the default (deny) counts the rest.
  EXPECT_EQ(one(false, tcp("10.10.0.7", "10.20.0.11", 1, 2), kLan), "next");
  EXPECT_EQ(one(false, tcp("198.51.100.7", "10.20.0.11", 1, 2), kLan), "drop:acl_deny");
  EXPECT_EQ(one(false, udp("198.51.100.8", "10.20.0.11", 1, 2), kLan), "drop:acl_deny");
  // wan: the lan subnet arriving there is spoofed; everything else passes by default.
  EXPECT_EQ(one(false, tcp("10.10.0.7", "10.20.0.11", 1, 2), kWan), "drop:acl_deny");
  EXPECT_EQ(one(false, tcp("198.51.100.7", "10.20.0.11", 1, 2), kWan), "next");
  // srv has no set: nothing is classified, nothing counted.
  EXPECT_EQ(one(false, tcp("198.51.100.7", "10.20.0.11", 1, 2), kSrv), "next");
  EXPECT_EQ(rt_->in[kSrv], nullptr);
  EXPECT_EQ(counts(false, kLan), (std::vector<uint64_t>{2, 1}));
  EXPECT_EQ(counts(false, kWan), (std::vector<uint64_t>{1, 1}));
  // The in sets are not the acl_out stage's business.
  EXPECT_FALSE(rt_->has_out);
  EXPECT_EQ(one(true, tcp("198.51.100.7", "10.20.0.11", 1, 2), kLan), "next");
  EXPECT_EQ(counts(false, kLan), (std::vector<uint64_t>{2, 1}));
}

TEST_F(AclStageTest, OutSetsApplyByEgressPort) {
  load(R"(acl = { sets = (
    { port = "srv"; direction = "out"; rules = (
        { action = "deny"; protocol = "tcp"; dport = 80; } ); }
  ); };)");
  ASSERT_TRUE(rt_->has_out);
  ASSERT_FALSE(rt_->has_in);
  // Resolved neighbour (adjacency port srv), unresolved connected host (glean), unresolved
  // gateway of a static route (its port from the route): all leave through srv.
  EXPECT_EQ(one(true, tcp("10.10.0.100", "10.20.0.11", 40000, 80), kLan), "drop:acl_deny");
  EXPECT_EQ(one(true, tcp("10.10.0.100", "10.20.0.50", 40000, 80), kLan), "drop:acl_deny");
  EXPECT_EQ(one(true, tcp("10.10.0.100", "192.0.2.77", 40000, 80), kLan), "drop:acl_deny");
  EXPECT_EQ(one(true, tcp("10.10.0.100", "10.20.0.11", 40000, 81), kLan), "next");
  // Leaving through lan or wan, to the appliance itself, or with no route: not srv's set.
  EXPECT_EQ(one(true, tcp("10.20.0.11", "10.10.0.100", 80, 80), kSrv), "next");
  EXPECT_EQ(one(true, tcp("10.20.0.11", "203.0.113.9", 80, 80), kSrv), "next");
  EXPECT_EQ(one(true, tcp("10.10.0.100", "10.20.0.1", 40000, 80), kLan), "next");
  EXPECT_EQ(one(true, tcp("10.10.0.100", "198.18.0.1", 40000, 80), kLan), "next");
  // The ingress port does not matter for an out set: srv to srv is filtered too.
  EXPECT_EQ(one(true, tcp("10.20.0.12", "10.20.0.11", 40000, 80), kSrv), "drop:acl_deny");
  // The in stage ignores out sets.
  EXPECT_EQ(one(false, tcp("10.10.0.100", "10.20.0.11", 40000, 80), kLan), "next");
  EXPECT_EQ(counts(true, kSrv), (std::vector<uint64_t>{1, 4}));
}

TEST_F(AclStageTest, OutSetLetsExpiringPacketsReachIcmpTimeExceeded) {
  load(R"(acl = { sets = ( { port = "srv"; direction = "out"; default = "deny"; } ); };)");
  L4Spec s;
  s.src = ip4("10.10.0.100");
  s.dst = ip4("10.20.0.11");
  s.ttl = 1;
  EXPECT_EQ(one(true, l4_frame(s), kLan), "next");  // ip4_forward punts it: ttl_exceeded
  s.ttl = 2;
  EXPECT_EQ(one(true, l4_frame(s), kLan), "drop:acl_deny");
  EXPECT_EQ(counts(true, kSrv), (std::vector<uint64_t>{1}));
}

TEST_F(AclStageTest, RouteByMetaIsTheEgressKey) {
  load(R"(acl = { sets = ( { port = "srv"; direction = "out"; default = "deny"; } ); };)");
  // L2 DSR: the header keeps the VIP (routed nowhere here); the lb stage routes by the meta
  // destination, which is what acl_out must use too.
  FakeMbuf fm(tcp("10.10.0.100", "10.30.0.10", 40000, 80), kLan);
  fm.parse(kPortMac);
  EXPECT_EQ(run(true, {&fm}).outcome, std::vector<std::string>{"next"});
  fm.reset(tcp("10.10.0.100", "10.30.0.10", 40000, 80), kLan);
  fm.parse(kPortMac);
  meta(fm.mbuf()).ip_dst = ip4("10.20.0.11");
  meta(fm.mbuf()).flags |= meta_flags::kRouteByMeta;
  EXPECT_EQ(run(true, {&fm}).outcome, std::vector<std::string>{"drop"});
}

TEST_F(AclStageTest, FragmentsAndMalformedDatagrams) {
  load(R"(acl = { sets = (
    { port = "lan"; rules = (
        { action = "deny"; name = "web"; protocol = "tcp"; dport = 80; },
        { action = "deny"; name = "host"; dst = "10.20.0.12"; } ); }
  ); };)");
  L4Spec s;
  s.src = ip4("10.10.0.100");
  s.dst = ip4("10.20.0.11");
  s.payload = 64;
  s.frag = 0x2000;  // MF, offset 0: the first fragment carries the ports
  EXPECT_EQ(one(false, l4_frame(s), kLan), "drop:acl_deny");
  s.frag = 0x0004;  // offset 32 bytes, last: no ports, the port rule cannot match
  EXPECT_EQ(one(false, l4_frame(s), kLan), "next");
  s.dst = ip4("10.20.0.12");  // but an address rule matches every fragment
  EXPECT_EQ(one(false, l4_frame(s), kLan), "drop:acl_deny");
  // RFC 1858 3.1: a first fragment holding 2 bytes of TCP (no destination port) is refused.
  std::vector<uint8_t> tiny = tcp("10.10.0.100", "10.20.0.11", 40000, 80);
  tiny.resize(14 + 22);
  wr16(&tiny[16], 22);
  wr16(&tiny[20], 0x2000);
  EXPECT_EQ(one(false, fix(tiny), kLan), "drop:acl_malformed");
  // The same truncation without fragmentation: nothing can be classified either.
  wr16(&tiny[20], 0x4000);
  EXPECT_EQ(one(false, fix(tiny), kLan), "drop:acl_malformed");
  // IP options: the ports are found after them (IHL 6).
  std::vector<uint8_t> opt = tcp("10.10.0.100", "10.20.0.11", 40000, 80);
  opt.insert(opt.begin() + 34, {1, 1, 1, 0});
  opt[14] = 0x46;
  wr16(&opt[16], static_cast<uint16_t>(opt.size() - 14));
  opt = fix(opt);
  EXPECT_EQ(one(false, opt, kLan), "drop:acl_deny");
  std::vector<uint8_t> opt81 = opt;
  wr16(&opt81[14 + 24 + 2], 81);
  EXPECT_EQ(one(false, opt81, kLan), "next");
  // web: first fragment and the options frame; host: the later fragment; default: the
  // later fragment to .11 and opt81. Malformed ones are counted by the stage, not by a rule.
  EXPECT_EQ(counts(false, kLan), (std::vector<uint64_t>{2, 2, 1}));
}

TEST_F(AclStageTest, MixedBurstKeepsOrderAndClassifiesEachPortOnce) {
  load(R"(acl = { sets = (
    { port = "lan"; rules = ( { action = "deny"; protocol = "udp"; dport = 53; } ); },
    { port = "wan"; rules = ( { action = "deny"; protocol = "udp"; dport = 123; } ); }
  ); };)");
  std::vector<std::unique_ptr<FakeMbuf>> own;
  std::vector<FakeMbuf*> burst;
  std::vector<std::string> want;
  for (uint16_t i = 0; i < kMaxBurst; ++i) {
    const uint16_t port = static_cast<uint16_t>(i % 3);
    const uint16_t dport = (i % 4 == 0) ? 53 : (i % 4 == 1) ? 123 : 9;
    own.push_back(std::make_unique<FakeMbuf>(udp("10.10.0.100", "10.20.0.11", 9, dport), port));
    own.back()->parse(kPortMac);
    burst.push_back(own.back().get());
    const bool denied = (port == kLan && dport == 53) || (port == kWan && dport == 123);
    want.push_back(denied ? "drop" : "next");
  }
  Result r = run(false, burst);
  EXPECT_EQ(r.outcome, want);
  std::vector<rte_mbuf*> order;
  for (size_t i = 0; i < burst.size(); ++i)
    if (want[i] == "next") order.push_back(burst[i]->mbuf());
  EXPECT_EQ(r.next, order);  // burst order, not port order
  uint64_t lan = 0, lan53 = 0, wan = 0, wan123 = 0;
  for (uint16_t i = 0; i < kMaxBurst; ++i) {
    const uint16_t port = i % 3, dport = (i % 4 == 0) ? 53 : (i % 4 == 1) ? 123 : 9;
    if (port == kLan) (dport == 53 ? lan53 : lan)++;
    if (port == kWan) (dport == 123 ? wan123 : wan)++;
  }
  EXPECT_EQ(counts(false, kLan), (std::vector<uint64_t>{lan, lan53}));
  EXPECT_EQ(counts(false, kWan), (std::vector<uint64_t>{wan, wan123}));
  EXPECT_EQ(r.c.drops[AclStage::kDeny], lan53 + wan123);

  // The same packets handed to another worker re-enter the chain: not classified again.
  std::vector<FakeMbuf*> again;
  for (size_t i = 0; i < burst.size(); ++i)
    if (want[i] == "next") again.push_back(burst[i]);
  Result r2 = run(false, again, 1);
  EXPECT_EQ(r2.c.next, again.size());
  EXPECT_EQ(counts(false, kLan), (std::vector<uint64_t>{lan, lan53}));
}

TEST_F(AclStageTest, CountersArePerWorkerAndSummedByShow) {
  load(R"(acl = { sets = ( { port = "lan"; rules = (
    { action = "deny"; name = "no-ssh"; protocol = "tcp"; dport = 22; } ); } ); };)");
  EXPECT_EQ(one(false, tcp("10.10.0.100", "10.20.0.11", 1, 22), kLan, 0), "drop:acl_deny");
  EXPECT_EQ(one(false, tcp("10.10.0.100", "10.20.0.11", 1, 22), kLan, 1), "drop:acl_deny");
  EXPECT_EQ(one(false, tcp("10.10.0.100", "10.20.0.11", 1, 80), kLan, 1), "next");
  const acl::SetRt& s = *rt_->in[kLan];
  EXPECT_EQ(s.row(0)[1], 1u);
  EXPECT_EQ(s.row(1)[1], 1u);
  EXPECT_EQ(s.row(0)[0], 0u);
  EXPECT_EQ(s.row(1)[0], 1u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(s.row(0)) % 64, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(s.row(1)) - reinterpret_cast<uintptr_t>(s.row(0)), 64u);
  const std::string alg = s.cls->algorithm();
  EXPECT_EQ(acl::show(rt_), "set lan in: default permit, 1 rules, classify " + alg +
                                ", counting since generation 1\n"
                                "      #  action         matches  rule\n"
                                "      1  deny                 2  no-ssh (line 9)\n"
                                "      -  permit               1  default\n");
  EXPECT_EQ(acl::show(nullptr), "the acl stages are not configured\n");
}

TEST_F(AclStageTest, ReloadKeepsUnchangedSetsAndTheirCounters) {
  const std::string a = R"(acl = { sets = (
    { port = "lan"; rules = ( { action = "deny"; protocol = "tcp"; dport = 22; } ); },
    { port = "wan"; rules = ( { action = "deny"; protocol = "tcp"; dport = 23; } ); }
  ); };)";
  load(a);
  EXPECT_EQ(one(false, tcp("10.10.0.100", "10.20.0.11", 1, 22), kLan), "drop:acl_deny");
  EXPECT_EQ(one(false, tcp("10.10.0.100", "10.20.0.11", 1, 23), kWan), "drop:acl_deny");
  auto old = snap_.acl;  // the running snapshot's runtime, as the management lcore holds it
  const acl::SetRt* old_lan = old->in[kLan];
  const acl::SetRt* old_wan = old->in[kWan];
  // Same lan set two lines lower (only line numbers change); wan's rule changes.
  std::string b = "\n\n" + a;
  b.replace(b.find("dport = 23"), 10, "dport = 24");
  load(b, old.get(), 2);
  EXPECT_EQ(rt_->in[kLan], old_lan);  // shared: the same classifier and counters
  EXPECT_NE(rt_->in[kWan], old_wan);
  EXPECT_EQ(counts(false, kLan), (std::vector<uint64_t>{0, 1}));
  EXPECT_EQ(counts(false, kWan), (std::vector<uint64_t>{0, 0}));
  EXPECT_EQ(rt_->in[kLan]->since_generation, 1u);
  EXPECT_EQ(rt_->in[kWan]->since_generation, 2u);
  EXPECT_EQ(one(false, tcp("10.10.0.100", "10.20.0.11", 1, 23), kWan), "next");
  EXPECT_EQ(one(false, tcp("10.10.0.100", "10.20.0.11", 1, 24), kWan), "drop:acl_deny");
  // The old snapshot's set for wan lives until the old runtime goes.
  EXPECT_EQ(old_wan->matches(1), 1u);
}

TEST_F(AclStageTest, NoRuntimeOrNoSetsPassesTheBurstWhole) {
  load(R"(acl = { sets = ( { port = "lan"; direction = "out"; } ); };)");
  FakeMbuf fm(tcp("10.10.0.100", "10.20.0.11", 1, 22), kLan);
  fm.parse(kPortMac);
  EXPECT_EQ(run(false, {&fm}).outcome, std::vector<std::string>{"next"});  // no in sets
  snap_.acl.reset();
  EXPECT_EQ(run(true, {&fm}).outcome, std::vector<std::string>{"next"});
}

// A measurement, not a check (run with --gtest_also_run_disabled_tests): nanoseconds per
// packet for 32-packet bursts from one port against a set of 100 port rules, in and out.
TEST_F(AclStageTest, DISABLED_Throughput) {
  std::string rules;
  for (int i = 0; i < 100; ++i)
    rules += "{ action = \"deny\"; src = \"192.0." + std::to_string(i) +
             ".0/24\"; protocol = \"tcp\"; dport = \"" + std::to_string(1000 + i) + "\"; },";
  rules.pop_back();
  load("acl = { sets = ( { port = \"lan\"; rules = ( " + rules +
       " ); }, { port = \"srv\"; direction = \"out\"; rules = ( " + rules + " ); } ); };");
  std::vector<std::unique_ptr<FakeMbuf>> own;
  Burst b;
  b.n = kMaxBurst;
  for (uint16_t i = 0; i < kMaxBurst; ++i) {
    own.push_back(std::make_unique<FakeMbuf>(
        tcp("10.10.0.100", "10.20.0.11", static_cast<uint16_t>(40000 + i), 80), kLan));
    own.back()->parse(kPortMac);
    b.pkts[i] = own.back()->mbuf();
  }
  for (bool out_stage : {false, true}) {
    AclStage stage(out_stage, 0);
    auto emit = std::make_unique<Emit>();
    emit->set_nb_ports(3);
    StageCounters c{};
    StageCtx ctx{&snap_, 0, 0};
    constexpr int kRounds = 200000;
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < kRounds; ++r) {
      for (auto& m : own) meta(m->mbuf()).flags &= static_cast<uint8_t>(~meta_flags::kAclChecked);
      emit->begin_stage(&c);
      stage.process(b, ctx, *emit);
      emit->end_stage();
    }
    const double ns =
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%s: %.1f ns/packet (%s)\n", out_stage ? "acl_out" : "acl",
                ns / (kRounds * kMaxBurst), rt_->in[kLan]->cls->algorithm());
    EXPECT_EQ(c.next, uint64_t{kRounds} * kMaxBurst);
  }
}

}  // namespace
}  // namespace nf::test
