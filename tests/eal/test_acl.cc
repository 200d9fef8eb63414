// The rte_acl classifier (nf/acl/acl.h): first-match order, every prefix length, protocol and
// port edges, ICMP and later fragments against port rules, IP options through normalise(),
// rule validation, and 1000 random rules against a linear reference matcher.
#include <gtest/gtest.h>

#include <rte_acl.h>
#include <rte_cycles.h>
#include <rte_malloc.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include "nf/acl/acl.h"

namespace nf::acl {
namespace {

constexpr uint32_t ip(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return (uint32_t{a} << 24) | (uint32_t{b} << 16) | (uint32_t{c} << 8) | d;
}

Prefix pfx(uint32_t addr, uint8_t len) {
  Prefix p{addr, len};
  p.addr &= p.mask();
  return p;
}

Rule rule(Action a, Prefix src, Prefix dst, int proto = kAnyProto, PortRange sport = {},
          PortRange dport = {}, std::string name = {}) {
  Rule r;
  r.action = a;
  r.src = src;
  r.dst = dst;
  r.proto = proto;
  r.sport = sport;
  r.dport = dport;
  r.name = std::move(name);
  return r;
}

std::shared_ptr<const Classifier> must_build(const std::vector<Rule>& rules,
                                             Action def = Action::kDeny) {
  std::string err;
  auto c = Classifier::build(rules, &err, def);
  EXPECT_TRUE(c) << err;
  return c;
}

// An IPv4 datagram: 20-byte header plus `options` bytes of NOPs, then `l4` bytes whose first
// four are the given ports (whatever the protocol: an ICMP header is type/code/checksum there).
std::vector<uint8_t> datagram(uint8_t proto, uint32_t src, uint32_t dst, uint16_t sport,
                              uint16_t dport, uint16_t frag = 0, uint8_t options = 0,
                              uint16_t l4 = 8) {
  const uint32_t hlen = 20u + options;
  std::vector<uint8_t> b(hlen + l4, 0);
  b[0] = static_cast<uint8_t>(0x40 | (hlen / 4));
  b[2] = static_cast<uint8_t>((hlen + l4) >> 8);
  b[3] = static_cast<uint8_t>(hlen + l4);
  b[4] = 0xab;  // identification: must not disturb the fragment test
  b[5] = 0xcd;
  b[6] = static_cast<uint8_t>(frag >> 8);
  b[7] = static_cast<uint8_t>(frag);
  b[8] = 64;
  b[9] = proto;
  for (int i = 0; i < 4; ++i) {
    b[12 + i] = static_cast<uint8_t>(src >> (24 - 8 * i));
    b[16 + i] = static_cast<uint8_t>(dst >> (24 - 8 * i));
  }
  std::fill(b.begin() + 20, b.begin() + hlen, uint8_t{1});  // NOP options
  if (l4 >= 4) {
    b[hlen] = static_cast<uint8_t>(sport >> 8);
    b[hlen + 1] = static_cast<uint8_t>(sport);
    b[hlen + 2] = static_cast<uint8_t>(dport >> 8);
    b[hlen + 3] = static_cast<uint8_t>(dport);
  }
  return b;
}

uint32_t on_raw(const Classifier& c, const std::vector<uint8_t>& pkt) {
  const uint8_t* p = pkt.data();
  uint32_t r = 99;
  c.classify(&p, 1, &r);
  return r;
}

uint32_t on_tuple(const Classifier& c, uint8_t proto, uint32_t src, uint32_t dst, uint16_t sport,
                  uint16_t dport, bool later_fragment = false) {
  return c.classify_one(Tuple::make(proto, src, dst, sport, dport, later_fragment));
}

// The semantics of acl.h written the obvious way: the first rule whose every field matches.
uint32_t reference(const std::vector<Rule>& rules, const Tuple& t) {
  const uint32_t src = rte_be_to_cpu_32(t.src_be), dst = rte_be_to_cpu_32(t.dst_be);
  const uint16_t sport = rte_be_to_cpu_16(t.sport_be), dport = rte_be_to_cpu_16(t.dport_be);
  const bool later = t.frag_be != 0;
  for (size_t i = 0; i < rules.size(); ++i) {
    const Rule& r = rules[i];
    if (!r.src.contains(src) || !r.dst.contains(dst)) continue;
    if (r.proto != kAnyProto && r.proto != t.proto) continue;
    if (r.has_ports()) {
      if (t.proto != kProtoTcp && t.proto != kProtoUdp) continue;
      if (later) continue;
      if (!r.sport.contains(sport) || !r.dport.contains(dport)) continue;
    }
    return static_cast<uint32_t>(i + 1);
  }
  return 0;
}

const Prefix kAny{};

TEST(AclBuild, EmptyRuleSetMatchesNothing) {
  auto c = must_build({}, Action::kPermit);
  ASSERT_TRUE(c);
  EXPECT_STREQ(c->algorithm(), "none");
  EXPECT_EQ(c->name(), "");
  std::vector<Tuple> ts;
  for (uint32_t i = 0; i < 40; ++i)
    ts.push_back(Tuple::make(static_cast<uint8_t>(i * 7), i * 0x01010101u, ~i, i, i * 3));
  std::vector<const Tuple*> ptrs;
  for (const Tuple& t : ts) ptrs.push_back(&t);
  std::vector<uint32_t> out(ptrs.size(), 77);
  c->classify(ptrs.data(), static_cast<uint32_t>(ptrs.size()), out.data());
  for (uint32_t r : out) EXPECT_EQ(r, 0u);
  EXPECT_EQ(c->action(0), Action::kPermit);
  EXPECT_EQ(c->default_action(), Action::kPermit);
}

TEST(AclBuild, RejectsInvalidRulesNamingThem) {
  struct Case {
    Rule r;
    const char* want;  // a substring of the message
  };
  Rule ok = rule(Action::kPermit, kAny, kAny, kProtoTcp, {}, {80, 80}, "ok");
  std::vector<Case> cases;
  {
    Rule r = ok;
    r.name = "src33";
    r.src = Prefix{0x0a000000, 33};
    cases.push_back({r, "source prefix length 33 is over 32"});
  }
  {
    Rule r = ok;
    r.name = "dst40";
    r.dst = Prefix{0, 40};
    cases.push_back({r, "destination prefix length 40 is over 32"});
  }
  {
    Rule r = ok;
    r.name = "hostbits";
    r.src = Prefix{ip(10, 1, 2, 3), 8};
    cases.push_back({r, "source 10.1.2.3/8 has host bits set"});
  }
  {
    Rule r = ok;
    r.name = "backwards";
    r.dport = {2000, 1000};
    cases.push_back({r, "destination port range 2000-1000 is empty"});
  }
  {
    Rule r = ok;
    r.name = "sbackwards";
    r.sport = {5, 4};
    cases.push_back({r, "source port range 5-4 is empty"});
  }
  {
    Rule r = ok;
    r.name = "proto256";
    r.proto = 256;
    cases.push_back({r, "protocol 256 is not 0..255"});
  }
  {
    Rule r = ok;
    r.name = "protoneg";
    r.proto = -2;
    cases.push_back({r, "protocol -2 is not 0..255"});
  }
  {
    Rule r = ok;
    r.name = "icmpports";
    r.proto = kProtoIcmp;
    cases.push_back({r, "ports need protocol tcp, udp or any, not 1"});
  }
  for (const Case& k : cases) {
    // The bad rule third, after two valid ones: the message names it by position and name.
    std::vector<Rule> rules{ok, ok, k.r};
    std::string err;
    auto c = Classifier::build(rules, &err);
    EXPECT_FALSE(c) << k.r.name;
    EXPECT_NE(err.find("acl rule #3 (" + k.r.name + "): "), std::string::npos) << err;
    EXPECT_NE(err.find(k.want), std::string::npos) << err;
  }
  // Without a name the position alone identifies it; a null error pointer is allowed.
  Rule bad = ok;
  bad.name.clear();
  bad.src.len = 99;
  std::string err;
  EXPECT_FALSE(Classifier::build(std::vector<Rule>{bad}, &err));
  EXPECT_EQ(err, "acl rule #1: source prefix length 99 is over 32");
  EXPECT_FALSE(Classifier::build(std::vector<Rule>{bad}, nullptr));
  // The boundaries themselves are valid.
  Rule edge = rule(Action::kDeny, pfx(ip(1, 2, 3, 4), 32), kAny, 255);
  EXPECT_TRUE(Classifier::build(std::vector<Rule>{edge}, &err)) << err;
  edge.proto = 0;
  EXPECT_TRUE(Classifier::build(std::vector<Rule>{edge}, &err)) << err;
}

// rte_acl_create() hands back an existing context of the same name, so each Classifier needs
// its own: two live classifiers with different rules must not answer for each other, and a
// destroyed one must leave no context behind.
TEST(AclBuild, ContextsAreUniqueAndFreed) {
  const uint32_t a = ip(10, 0, 0, 1), b = ip(10, 0, 0, 2);
  auto ca = must_build({rule(Action::kPermit, pfx(a, 32), kAny)});
  auto cb = must_build(
      {rule(Action::kDeny, kAny, kAny, kProtoUdp), rule(Action::kPermit, pfx(b, 32), kAny)});
  ASSERT_TRUE(ca && cb);
  EXPECT_NE(ca->name(), cb->name());
  EXPECT_EQ(on_tuple(*ca, kProtoTcp, a, 0, 1, 2), 1u);
  EXPECT_EQ(on_tuple(*ca, kProtoTcp, b, 0, 1, 2), 0u);
  EXPECT_EQ(on_tuple(*cb, kProtoTcp, a, 0, 1, 2), 0u);
  EXPECT_EQ(on_tuple(*cb, kProtoTcp, b, 0, 1, 2), 2u);
  EXPECT_EQ(on_tuple(*cb, kProtoUdp, b, 0, 1, 2), 1u);
  const std::string name = ca->name();
  ASSERT_NE(rte_acl_find_existing(name.c_str()), nullptr);
  ca.reset();
  EXPECT_EQ(rte_acl_find_existing(name.c_str()), nullptr);
  EXPECT_EQ(on_tuple(*cb, kProtoTcp, b, 0, 1, 2), 2u);
}

TEST(AclMatch, FirstMatchWins) {
  const Prefix broad = pfx(ip(10, 0, 0, 0), 8), narrow = pfx(ip(10, 1, 0, 0), 16);
  const uint32_t in_narrow = ip(10, 1, 2, 3), in_broad = ip(10, 2, 0, 1), outside = ip(11, 0, 0, 1);
  {
    // A broad permit before a narrow deny: the deny is shadowed.
    auto c = must_build({rule(Action::kPermit, broad, kAny), rule(Action::kDeny, narrow, kAny)},
                        Action::kDeny);
    ASSERT_TRUE(c);
    EXPECT_EQ(on_tuple(*c, kProtoTcp, in_narrow, 0, 1, 2), 1u);
    EXPECT_EQ(on_tuple(*c, kProtoTcp, in_broad, 0, 1, 2), 1u);
    EXPECT_EQ(on_tuple(*c, kProtoTcp, outside, 0, 1, 2), 0u);
    EXPECT_EQ(c->action(1), Action::kPermit);
    EXPECT_EQ(c->action(0), Action::kDeny);
  }
  {
    // The narrow deny first: it wins inside its prefix, the permit decides the rest.
    auto c = must_build({rule(Action::kDeny, narrow, kAny), rule(Action::kPermit, broad, kAny)},
                        Action::kDeny);
    ASSERT_TRUE(c);
    EXPECT_EQ(on_tuple(*c, kProtoTcp, in_narrow, 0, 1, 2), 1u);
    EXPECT_EQ(c->action(1), Action::kDeny);
    EXPECT_EQ(on_tuple(*c, kProtoTcp, in_broad, 0, 1, 2), 2u);
    EXPECT_EQ(c->action(2), Action::kPermit);
    EXPECT_EQ(on_tuple(*c, kProtoTcp, outside, 0, 1, 2), 0u);
  }
  {
    // Order, not specificity: an exact 5-tuple rule listed after a broad one never wins, even
    // behind a run of unrelated rules.
    std::vector<Rule> rules;
    for (int i = 0; i < 20; ++i)
      rules.push_back(rule(Action::kDeny, pfx(ip(192, 0, 2, static_cast<uint8_t>(i)), 32), kAny));
    rules.push_back(rule(Action::kPermit, pfx(ip(10, 0, 0, 0), 8), kAny, kProtoTcp));
    rules.push_back(rule(Action::kDeny, pfx(ip(10, 9, 9, 9), 32), pfx(ip(10, 8, 8, 8), 32),
                         kProtoTcp, {1, 1}, {2, 2}));
    auto c = must_build(rules);
    ASSERT_TRUE(c);
    EXPECT_EQ(on_tuple(*c, kProtoTcp, ip(10, 9, 9, 9), ip(10, 8, 8, 8), 1, 2), 21u);
    EXPECT_EQ(on_tuple(*c, kProtoUdp, ip(10, 9, 9, 9), ip(10, 8, 8, 8), 1, 2), 0u);
    EXPECT_EQ(on_tuple(*c, kProtoUdp, ip(192, 0, 2, 7), 0, 1, 2), 8u);
  }
}

TEST(AclMatch, PrefixLengthsZeroTo32OnBothAddresses) {
  std::mt19937 rng(7);
  for (int field = 0; field < 2; ++field) {
    for (uint8_t len = 0; len <= 32; ++len) {
      const Prefix p = pfx(rng(), len);
      const Rule r = field == 0 ? rule(Action::kDeny, p, kAny) : rule(Action::kDeny, kAny, p);
      auto c = must_build({r});
      ASSERT_TRUE(c);
      const uint32_t other = rng();  // the address not under test: anything matches it
      auto probe = [&](uint32_t a) {
        return field == 0 ? on_tuple(*c, kProtoUdp, a, other, 5, 6)
                          : on_tuple(*c, kProtoUdp, other, a, 5, 6);
      };
      SCOPED_TRACE(format_prefix(p) + (field == 0 ? " as source" : " as destination"));
      EXPECT_EQ(probe(p.addr), 1u);
      EXPECT_EQ(probe(p.broadcast()), 1u);
      EXPECT_EQ(probe(p.addr | (rng() & ~p.mask())), 1u);
      if (len == 0) continue;
      // Just outside on both sides, and the last network bit flipped.
      if (p.addr != 0) {
        EXPECT_EQ(probe(p.addr - 1), 0u);
      }
      if (p.broadcast() != 0xffffffffu) {
        EXPECT_EQ(probe(p.broadcast() + 1), 0u);
      }
      EXPECT_EQ(probe(p.addr ^ (1u << (32 - len))), 0u);
      EXPECT_EQ(probe(~p.addr), 0u);
    }
  }
}

TEST(AclMatch, ProtocolAnyVsExact) {
  auto c = must_build({rule(Action::kPermit, kAny, pfx(ip(10, 0, 0, 1), 32), kProtoTcp),
                       rule(Action::kPermit, kAny, pfx(ip(10, 0, 0, 1), 32), 47),
                       rule(Action::kDeny, kAny, pfx(ip(10, 0, 0, 1), 32), kAnyProto),
                       rule(Action::kDeny, kAny, pfx(ip(10, 0, 0, 2), 32), 0),
                       rule(Action::kDeny, kAny, pfx(ip(10, 0, 0, 2), 32), 255)});
  ASSERT_TRUE(c);
  const uint32_t d1 = ip(10, 0, 0, 1), d2 = ip(10, 0, 0, 2);
  EXPECT_EQ(on_tuple(*c, kProtoTcp, 1, d1, 1, 2), 1u);
  EXPECT_EQ(on_tuple(*c, 47, 1, d1, 0, 0), 2u);
  for (int p : {0, kProtoIcmp, kProtoUdp, 46, 48, 132, 255})
    EXPECT_EQ(on_tuple(*c, static_cast<uint8_t>(p), 1, d1, 1, 2), 3u) << p;
  EXPECT_EQ(on_tuple(*c, 0, 1, d2, 0, 0), 4u);
  EXPECT_EQ(on_tuple(*c, 255, 1, d2, 0, 0), 5u);
  for (int p : {1, 6, 17, 254}) EXPECT_EQ(on_tuple(*c, static_cast<uint8_t>(p), 1, d2, 0, 0), 0u);
}

TEST(AclMatch, PortRangeEdges) {
  const uint32_t d = ip(10, 0, 0, 1);
  auto c = must_build({
      rule(Action::kPermit, kAny, kAny, kProtoTcp, {}, {1000, 2000}, "range"),
      rule(Action::kPermit, kAny, kAny, kProtoUdp, {}, {53, 53}, "single"),
      rule(Action::kPermit, kAny, kAny, kProtoUdp, {0, 0}, {}, "sport0"),
      rule(Action::kPermit, kAny, kAny, kProtoUdp, {65535, 65535}, {}, "sport65535"),
      rule(Action::kPermit, kAny, kAny, kAnyProto, {1024, 65535}, {443, 443}, "anyproto"),
      rule(Action::kDeny, kAny, kAny, kProtoTcp, {}, {}, "full"),
  });
  ASSERT_TRUE(c);
  EXPECT_EQ(on_tuple(*c, kProtoTcp, 1, d, 7, 999), 6u);
  EXPECT_EQ(on_tuple(*c, kProtoTcp, 1, d, 7, 1000), 1u);
  EXPECT_EQ(on_tuple(*c, kProtoTcp, 1, d, 7, 1500), 1u);
  EXPECT_EQ(on_tuple(*c, kProtoTcp, 1, d, 7, 2000), 1u);
  EXPECT_EQ(on_tuple(*c, kProtoTcp, 1, d, 7, 2001), 6u);
  // The "range" rule is TCP only.
  EXPECT_EQ(on_tuple(*c, kProtoUdp, 1, d, 7, 1500), 0u);
  EXPECT_EQ(on_tuple(*c, kProtoUdp, 1, d, 7, 52), 0u);
  EXPECT_EQ(on_tuple(*c, kProtoUdp, 1, d, 7, 53), 2u);
  EXPECT_EQ(on_tuple(*c, kProtoUdp, 1, d, 7, 54), 0u);
  EXPECT_EQ(on_tuple(*c, kProtoUdp, 1, d, 0, 9), 3u);
  EXPECT_EQ(on_tuple(*c, kProtoUdp, 1, d, 1, 9), 0u);
  EXPECT_EQ(on_tuple(*c, kProtoUdp, 1, d, 65535, 9), 4u);
  EXPECT_EQ(on_tuple(*c, kProtoUdp, 1, d, 65534, 9), 0u);
  // Any protocol with ports: TCP and UDP, both edges of the source range.
  EXPECT_EQ(on_tuple(*c, kProtoUdp, 1, d, 1024, 443), 5u);
  EXPECT_EQ(on_tuple(*c, kProtoUdp, 1, d, 1023, 443), 0u);
  EXPECT_EQ(on_tuple(*c, kProtoTcp, 1, d, 65535, 443), 5u);
  EXPECT_EQ(on_tuple(*c, kProtoTcp, 1, d, 1023, 443), 6u);
  EXPECT_EQ(on_tuple(*c, kProtoUdp, 1, d, 1024, 442), 0u);
  EXPECT_EQ(on_tuple(*c, kProtoUdp, 1, d, 1024, 444), 0u);
  // 0-65535 on both is no port constraint: the extreme ports and a later fragment match.
  EXPECT_EQ(on_tuple(*c, kProtoTcp, 1, d, 0, 0), 6u);
  EXPECT_EQ(on_tuple(*c, kProtoTcp, 1, d, 65535, 65535), 6u);
  EXPECT_EQ(on_tuple(*c, kProtoTcp, 1, d, 0, 0, true), 6u);
}

TEST(AclMatch, IcmpNeverMatchesPortRule) {
  const uint32_t d = ip(10, 0, 0, 1);
  // Ranges that cover every port an ICMP echo request (type 8, code 0) would show at 20..23.
  auto c = must_build({rule(Action::kDeny, kAny, kAny, kAnyProto, {0, 65535}, {0, 65534}),
                       rule(Action::kPermit, kAny, kAny, kProtoIcmp)});
  ASSERT_TRUE(c);
  const auto echo = datagram(kProtoIcmp, 1, d, 0x0800, 0x1234);
  EXPECT_EQ(on_raw(*c, echo), 2u);
  EXPECT_EQ(on_tuple(*c, kProtoIcmp, 1, d, 0, 0), 2u);
  Tuple t;
  ASSERT_TRUE(normalise(echo.data(), static_cast<uint32_t>(echo.size()), &t));
  EXPECT_EQ(t.sport_be, 0);
  EXPECT_EQ(t.dport_be, 0);
  EXPECT_EQ(c->classify_one(t), 2u);
  // The same bytes as TCP or UDP do match the port rule.
  EXPECT_EQ(on_raw(*c, datagram(kProtoTcp, 1, d, 0x0800, 0x1234)), 1u);
  EXPECT_EQ(on_raw(*c, datagram(kProtoUdp, 1, d, 0x0800, 0x1234)), 1u);
  // And the protocol other than TCP/UDP with the same bytes falls through to the default.
  EXPECT_EQ(on_raw(*c, datagram(132, 1, d, 0x0800, 0x1234)), 0u);
}

TEST(AclMatch, LaterFragmentsSkipPortRulesButMatchPortless) {
  const uint32_t d = ip(10, 0, 0, 1);
  auto c = must_build({rule(Action::kDeny, kAny, kAny, kProtoTcp, {}, {80, 80}, "deny-80"),
                       rule(Action::kPermit, kAny, kAny, kProtoTcp, {}, {0, 79}, "low"),
                       rule(Action::kPermit, kAny, pfx(d, 32), kProtoTcp, {}, {}, "tcp-to-d")});
  ASSERT_TRUE(c);
  // First fragments (offset 0, with or without MF / DF) carry the header: the port rule sees it.
  for (uint16_t flags : {0x0000, 0x2000, 0x4000})
    EXPECT_EQ(on_raw(*c, datagram(kProtoTcp, 1, d, 5, 80, flags)), 1u) << flags;
  // Later fragments whose payload happens to read as port 80 (or 0): only port-less rules.
  for (uint16_t frag : {0x0001, 0x2001, 0x00ff, 0x0100, 0x1000, 0x1fff, 0x3fff}) {
    SCOPED_TRACE(frag);
    const auto pkt = datagram(kProtoTcp, 1, d, 5, 80, frag);
    EXPECT_EQ(on_raw(*c, pkt), 3u);
    EXPECT_EQ(on_raw(*c, datagram(kProtoTcp, 1, d, 0, 0, frag)), 3u);
    EXPECT_EQ(on_raw(*c, datagram(kProtoTcp, 1, ip(10, 0, 0, 2), 5, 80, frag)), 0u);
    Tuple t;
    ASSERT_TRUE(normalise(pkt.data(), static_cast<uint32_t>(pkt.size()), &t));
    EXPECT_EQ(t.sport_be, 0);
    EXPECT_EQ(t.dport_be, 0);
    EXPECT_NE(t.frag_be, 0);
    EXPECT_EQ(c->classify_one(t), 3u);
  }
  EXPECT_EQ(on_tuple(*c, kProtoTcp, 1, d, 0, 0, true), 3u);
  EXPECT_EQ(on_tuple(*c, kProtoTcp, 1, d, 0, 0, false), 2u);
}

TEST(AclNormalise, IpOptionsFindThePorts) {
  const uint32_t s = ip(192, 0, 2, 1), d = ip(10, 0, 0, 1);
  auto c = must_build({rule(Action::kDeny, kAny, kAny, kProtoUdp, {}, {53, 53}),
                       rule(Action::kPermit, kAny, kAny, kProtoUdp, {}, {257, 257})});
  ASSERT_TRUE(c);
  for (uint8_t opt : {4, 8, 20, 40}) {
    SCOPED_TRACE(opt);
    // NOP options read as ports 257/257 at a fixed offset; the real destination port is 53.
    const auto pkt = datagram(kProtoUdp, s, d, 1234, 53, 0, opt);
    Tuple t;
    ASSERT_TRUE(normalise(pkt.data(), static_cast<uint32_t>(pkt.size()), &t));
    EXPECT_EQ(t.proto, kProtoUdp);
    EXPECT_EQ(rte_be_to_cpu_32(t.src_be), s);
    EXPECT_EQ(rte_be_to_cpu_32(t.dst_be), d);
    EXPECT_EQ(rte_be_to_cpu_16(t.sport_be), 1234);
    EXPECT_EQ(rte_be_to_cpu_16(t.dport_be), 53);
    EXPECT_EQ(t.frag_be, 0);
    EXPECT_EQ(c->classify_one(t), 1u);
    EXPECT_EQ(on_raw(*c, pkt), 2u);  // why the stage must not pass such headers raw
  }
  // Without options, raw and normalised agree.
  const auto plain = datagram(kProtoUdp, s, d, 1234, 53);
  Tuple t;
  ASSERT_TRUE(normalise(plain.data(), static_cast<uint32_t>(plain.size()), &t));
  EXPECT_EQ(c->classify_one(t), 1u);
  EXPECT_EQ(on_raw(*c, plain), 1u);
}

TEST(AclNormalise, RejectsWhatCannotBeClassified) {
  Tuple t;
  const auto good = datagram(kProtoTcp, 1, 2, 3, 4);
  const auto n = static_cast<uint32_t>(good.size());
  ASSERT_TRUE(normalise(good.data(), n, &t));
  EXPECT_FALSE(normalise(good.data(), 19, &t));  // shorter than a header
  auto v6 = good;
  v6[0] = 0x65;
  EXPECT_FALSE(normalise(v6.data(), n, &t));
  auto ihl4 = good;
  ihl4[0] = 0x44;
  EXPECT_FALSE(normalise(ihl4.data(), n, &t));
  auto ihl15 = good;
  ihl15[0] = 0x4f;  // 60-byte header in 28 bytes
  EXPECT_FALSE(normalise(ihl15.data(), n, &t));
  auto tlen_short = good;
  tlen_short[2] = 0;
  tlen_short[3] = 19;  // total length below the header
  EXPECT_FALSE(normalise(tlen_short.data(), n, &t));
  // A TCP/UDP first fragment without room for the ports (RFC 1858 tiny fragment), whether the
  // data or the total length is what is short.
  const auto tiny = datagram(kProtoTcp, 1, 2, 3, 4, 0x2000, 0, 3);
  EXPECT_FALSE(normalise(tiny.data(), static_cast<uint32_t>(tiny.size()), &t));
  EXPECT_FALSE(normalise(good.data(), 23, &t));
  auto padded = datagram(kProtoUdp, 1, 2, 3, 4, 0, 0, 0);
  padded.resize(40, 0xee);  // Ethernet padding after a 20-byte total length: not ports
  EXPECT_FALSE(normalise(padded.data(), static_cast<uint32_t>(padded.size()), &t));
  // The exact minimum is accepted; a short ICMP or a short later fragment needs no ports.
  EXPECT_TRUE(normalise(good.data(), 24, &t));
  EXPECT_EQ(rte_be_to_cpu_16(t.dport_be), 4);
  const auto icmp = datagram(kProtoIcmp, 1, 2, 3, 4, 0, 0, 0);
  EXPECT_TRUE(normalise(icmp.data(), static_cast<uint32_t>(icmp.size()), &t));
  const auto frag = datagram(kProtoTcp, 1, 2, 3, 4, 0x0003, 0, 0);
  EXPECT_TRUE(normalise(frag.data(), static_cast<uint32_t>(frag.size()), &t));
  EXPECT_EQ(rte_be_to_cpu_16(t.frag_be), 3);
}

// Random rules with a bias towards overlap, so that first-match order decides often.
std::vector<Rule> random_rules(std::mt19937& rng, size_t n) {
  std::vector<Rule> rules;
  // Only sources may be /0: a rule wild in every field would shadow all rules after it.
  auto prefix = [&](bool may_be_any) {
    const uint32_t r = rng() % 10;
    uint8_t len;
    if (r == 0 && may_be_any)
      len = 0;
    else if (r == 0)
      len = static_cast<uint8_t>(1 + rng() % 7);  // 1..7
    else if (r < 4)
      len = static_cast<uint8_t>(8 + rng() % 9);  // 8..16
    else
      len = static_cast<uint8_t>(16 + rng() % 17);  // 16..32
    // Addresses from a small pool of /8s so prefixes overlap each other and the probes.
    return pfx((static_cast<uint32_t>(10 + rng() % 4) << 24) | (rng() & 0x00ffffffu), len);
  };
  auto ports = [&]() -> PortRange {
    switch (rng() % 6) {
      case 0:
      case 1:
        return {};
      case 2: {
        const auto p = static_cast<uint16_t>(rng() % 1100);
        return {p, p};
      }
      case 3:  // from 0: the ports of a later fragment's tuple would fall inside
        return {0, static_cast<uint16_t>(rng() % 1100)};
      default: {
        auto a = static_cast<uint16_t>(rng()), b = static_cast<uint16_t>(rng());
        if (a > b) std::swap(a, b);
        return {a, b};
      }
    }
  };
  for (size_t i = 0; i < n; ++i) {
    Rule r;
    r.action = rng() % 2 ? Action::kPermit : Action::kDeny;
    r.src = prefix(true);
    r.dst = prefix(false);
    static constexpr int kProtos[] = {kAnyProto, kAnyProto,  kProtoTcp, kProtoTcp,
                                      kProtoUdp, kProtoIcmp, 47};
    r.proto = kProtos[rng() % std::size(kProtos)];
    if (r.proto == kAnyProto || r.proto == kProtoTcp || r.proto == kProtoUdp) {
      r.sport = rng() % 3 == 0 ? ports() : PortRange{};
      r.dport = ports();
    }
    rules.push_back(r);
  }
  return rules;
}

// Tuples that often fall inside some rule's prefixes and ranges, and sometimes nowhere.
std::vector<Tuple> random_tuples(std::mt19937& rng, const std::vector<Rule>& rules, size_t n) {
  std::vector<Tuple> out;
  out.reserve(n);
  auto inside = [&](const Prefix& p) { return p.addr | (rng() & ~p.mask()); };
  auto port_in = [&](const PortRange& r) {
    switch (rng() % 5) {  // both edges and just outside them, or anywhere inside
      case 0:
        return r.lo;
      case 1:
        return r.hi;
      case 2:
        return static_cast<uint16_t>(r.lo == 0 ? 0 : r.lo - 1);
      case 3:
        return static_cast<uint16_t>(r.hi == 65535 ? 65535 : r.hi + 1);
      default:
        return static_cast<uint16_t>(r.lo + rng() % (uint32_t{r.hi} - r.lo + 1));
    }
  };
  for (size_t i = 0; i < n; ++i) {
    static constexpr uint8_t kProtos[] = {kProtoTcp,  kProtoTcp, kProtoUdp, kProtoUdp,
                                          kProtoIcmp, 47,        132};
    const uint8_t proto = kProtos[rng() % std::size(kProtos)];
    const bool later = rng() % 20 == 0;
    if (rng() % 8 == 0) {
      out.push_back(Tuple::make(proto, rng(), rng(), static_cast<uint16_t>(rng()),
                                static_cast<uint16_t>(rng()), later));
      continue;
    }
    const Rule& r = rules[rng() % rules.size()];
    out.push_back(Tuple::make(proto, inside(r.src), inside(r.dst), port_in(r.sport),
                              port_in(r.dport), later));
  }
  return out;
}

TEST(AclRandom, ThousandRulesAgreeWithLinearReference) {
  std::mt19937 rng(2024);
  const auto rules = random_rules(rng, 1000);
  auto c = must_build(rules);
  ASSERT_TRUE(c);
  const auto tuples = random_tuples(rng, rules, 100000);
  std::vector<const Tuple*> ptrs;
  for (const Tuple& t : tuples) ptrs.push_back(&t);
  std::vector<uint32_t> got(tuples.size());
  // Bursts of 32 as the stage calls it, plus one odd-sized tail.
  for (size_t i = 0; i < ptrs.size(); i += 32) {
    const auto k = static_cast<uint32_t>(std::min<size_t>(32, ptrs.size() - i));
    c->classify(ptrs.data() + i, k, got.data() + i);
  }
  std::vector<uint32_t> hits(rules.size() + 1, 0);
  size_t mismatches = 0;
  for (size_t i = 0; i < tuples.size(); ++i) {
    const uint32_t want = reference(rules, tuples[i]);
    ++hits[want];
    if (got[i] != want && ++mismatches <= 10)
      ADD_FAILURE() << "tuple " << i << ": rte_acl " << got[i] << ", reference " << want;
  }
  EXPECT_EQ(mismatches, 0u);
  // The probes exercised the classifier: many distinct rules and the no-match case decided.
  const auto decided = std::count_if(hits.begin() + 1, hits.end(), [](uint32_t h) { return h; });
  EXPECT_GT(decided, 250);
  EXPECT_GT(hits[0], 1000u);
  EXPECT_LT(hits[0], 90000u);
}

// classify() is read-only: lcores share one Classifier. Two threads classifying the same
// tuples at once must both get the reference answers.
TEST(AclThreads, ConcurrentClassifyAgrees) {
  std::mt19937 rng(5);
  const auto rules = random_rules(rng, 200);
  auto c = must_build(rules);
  ASSERT_TRUE(c);
  const auto tuples = random_tuples(rng, rules, 20000);
  std::vector<uint32_t> want;
  for (const Tuple& t : tuples) want.push_back(reference(rules, t));
  std::atomic<size_t> bad{0};
  auto worker = [&]() {
    std::vector<uint32_t> got(32);
    for (int round = 0; round < 20; ++round) {
      for (size_t i = 0; i + 32 <= tuples.size(); i += 32) {
        const Tuple* p[32];
        for (int k = 0; k < 32; ++k) p[k] = &tuples[i + k];
        c->classify(p, 32, got.data());
        for (int k = 0; k < 32; ++k)
          if (got[k] != want[i + k]) bad.fetch_add(1, std::memory_order_relaxed);
      }
    }
  };
  std::thread t1(worker), t2(worker);
  t1.join();
  t2.join();
  EXPECT_EQ(bad.load(), 0u);
}

// Not a test of correctness beyond the reference check: prints the classify cost per packet
// for bursts of 32 with 10 and 1000 random rules (two rule sets each), for every method this CPU
// runs. The machine may be shared, so each figure is the minimum and the median over 300 windows of
// 4096 packets. Run by hand: eal-tests --gtest_filter='AclPerf*' --gtest_also_run_disabled_tests
TEST(AclPerf, DISABLED_ClassifyCostPerPacket) {
  static constexpr struct {
    enum rte_acl_classify_alg alg;
    const char* name;
  } kAlgs[] = {{RTE_ACL_CLASSIFY_SCALAR, "scalar"},
               {RTE_ACL_CLASSIFY_SSE, "sse"},
               {RTE_ACL_CLASSIFY_AVX2, "avx2"},
               {RTE_ACL_CLASSIFY_AVX512X16, "avx512x16"},
               {RTE_ACL_CLASSIFY_AVX512X32, "avx512x32"}};
  const double ns_per_cycle = 1e9 / static_cast<double>(rte_get_tsc_hz());
  auto report = [&](const char* what, std::vector<double> w) {
    std::sort(w.begin(), w.end());
    printf("  %-22s min %6.1f  median %6.1f TSC cycles/pkt  (%5.1f / %5.1f ns)\n", what, w[0],
           w[w.size() / 2], w[0] * ns_per_cycle, w[w.size() / 2] * ns_per_cycle);
  };
  for (const auto& [nrules, seed] :
       {std::pair{10u, 4u}, std::pair{10u, 99u}, std::pair{1000u, 4u}, std::pair{1000u, 99u}}) {
    std::mt19937 rng(seed);
    const auto rules = random_rules(rng, nrules);
    rte_malloc_socket_stats before{}, after{};
    rte_malloc_get_socket_stats(0, &before);
    const uint64_t b0 = rte_rdtsc_precise();
    auto c = must_build(rules);
    const double build_ms = static_cast<double>(rte_rdtsc_precise() - b0) * ns_per_cycle / 1e6;
    ASSERT_TRUE(c);
    rte_malloc_get_socket_stats(0, &after);
    const auto tuples = random_tuples(rng, rules, 4096);
    std::vector<const Tuple*> ptrs;
    for (const Tuple& t : tuples) ptrs.push_back(&t);
    for (const Tuple& t : tuples) ASSERT_EQ(c->classify_one(t), reference(rules, t));
    printf("%u rules (seed %u): build %.1f ms, %.0f KiB of EAL heap, method %s\n", nrules, seed,
           build_ms,
           static_cast<double>(after.heap_allocsz_bytes - before.heap_allocsz_bytes) / 1024,
           c->algorithm());
    uint32_t out[32];
    auto measure = [&](auto&& burst) {
      std::vector<double> w;
      for (int r = 0; r < 301; ++r) {
        const uint64_t t0 = rte_rdtsc_precise();
        for (size_t i = 0; i + 32 <= ptrs.size(); i += 32) burst(ptrs.data() + i);
        const uint64_t t1 = rte_rdtsc_precise();
        if (r > 0) w.push_back(static_cast<double>(t1 - t0) / static_cast<double>(ptrs.size()));
      }
      return w;
    };
    report("Classifier::classify",
           measure([&](const Tuple* const* p) { c->classify(p, 32, out); }));
    // Every method on the same context through rte_acl_classify_alg.
    rte_acl_ctx* ctx = rte_acl_find_existing(c->name().c_str());
    ASSERT_NE(ctx, nullptr);
    for (const auto& a : kAlgs) {
      auto** data =
          const_cast<const uint8_t**>(reinterpret_cast<const uint8_t* const*>(ptrs.data()));
      if (rte_acl_classify_alg(ctx, data, out, 32, 1, a.alg) != 0) {
        printf("  %-22s not available\n", a.name);
        continue;
      }
      report(a.name, measure([&](const Tuple* const* p) {
               rte_acl_classify_alg(
                   ctx, const_cast<const uint8_t**>(reinterpret_cast<const uint8_t* const*>(p)),
                   out, 32, 1, a.alg);
             }));
    }
  }
  // normalise() on a raw datagram, for the stage's budget.
  const auto pkt = datagram(kProtoTcp, ip(10, 1, 2, 3), ip(10, 3, 2, 1), 1000, 80);
  Tuple t{};
  volatile uint32_t sink = 0;
  std::vector<double> w;
  for (int r = 0; r < 300; ++r) {
    const uint64_t t0 = rte_rdtsc_precise();
    for (int i = 0; i < 4096; ++i) {
      normalise(pkt.data(), static_cast<uint32_t>(pkt.size()), &t);
      sink = sink + t.dport_be;
    }
    w.push_back(static_cast<double>(rte_rdtsc_precise() - t0) / 4096);
  }
  report("normalise", w);
}

}  // namespace
}  // namespace nf::acl
