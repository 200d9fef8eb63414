// The authoritative answer engine (nf/dns/engine.h) over Views compiled from the lab zone
// (nf/dns/zone.h): every record type, negative answers (RFC 2308), CNAME chains, wildcards
// (RFC 4592), referrals, the error RCODEs, EDNS (RFC 6891) and truncation, and the DNS stage
// on golden frames. Every answer is decoded in full (tests/common/dns_frames.h), which also
// proves its compression pointers.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "nf/dns/engine.h"
#include "nf/dns/rr.h"
#include "pipelines/dns/dns_stage.h"
#include "tests/common/dns_frames.h"
#include "tests/common/fake_mbuf.h"

namespace nf::test {
namespace {

using Lines = std::vector<std::string>;
namespace rcode = dns::rcode;
namespace type = dns::type;

constexpr const char* kSoa =
    "lab.example. SOA ns1.lab.example. hostmaster.lab.example. 2026112101 3600 600 604800 60";

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  return s;
}

DnsQuery q(const char* name, uint16_t t = type::A) {
  DnsQuery x;
  x.name = name;
  x.type = t;
  return x;
}

class DnsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(lab.errors.empty()) << lab.errors.front(); }
  DnsAnswer ask(const DnsQuery& x) {
    DnsAnswer a = lab.ask(x);
    EXPECT_EQ(a.error, "") << x.name;
    EXPECT_TRUE(a.qr);
    return a;
  }
  DnsLab lab;
};

TEST_F(DnsTest, EveryRecordType) {
  struct Case {
    const char* name;
    uint16_t type;
    Lines answer;
  };
  const std::vector<Case> cases = {
      {"srv1.lab.example", type::A, {"srv1.lab.example. A 10.20.0.11"}},
      {"mail.lab.example", type::AAAA, {"mail.lab.example. AAAA 2001:db8:20::25"}},
      {"lab.example", type::NS, {"lab.example. NS ns1.lab.example."}},
      {"lab.example", type::MX, {"lab.example. MX 10 mail.lab.example."}},
      {"lab.example", type::TXT, {"lab.example. TXT \"v=spf1 -all\""}},
      {"lab.example", type::CAA, {"lab.example. CAA 0 issue \"letsencrypt.org\""}},
      {"lab.example",
       type::SOA,
       {"lab.example. SOA ns1.lab.example. hostmaster.lab.example. 2026112101 3600 600 604800 "
        "60"}},
      {"_http._tcp.lab.example",
       type::SRV,
       {"_http._tcp.lab.example. SRV 10 60 80 srv1.lab.example.",
        "_http._tcp.lab.example. SRV 20 40 80 srv2.lab.example."}},
      {"1.2.0.192.in-addr.arpa", type::PTR, {"1.2.0.192.in-addr.arpa. PTR host.lab.example."}},
      {"alias.lab.example", type::CNAME, {"alias.lab.example. CNAME srv1.lab.example."}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const DnsAnswer a = ask(q(c.name, c.type));
    EXPECT_EQ(a.rcode, rcode::kNoError);
    EXPECT_TRUE(a.aa);
    EXPECT_TRUE(a.rd);  // copied
    EXPECT_EQ(a.id, 0x1234);
    EXPECT_EQ(a.qd, 1);
    EXPECT_EQ(a.qtype, c.type);
    EXPECT_EQ(DnsAnswer::lines(a.answer), c.answer);
    EXPECT_TRUE(a.authority.empty());
    for (const DnsRr& r : a.answer) EXPECT_EQ(r.rclass, dns::kClassIN);
  }
  const DnsAnswer a = ask(q("srv1.lab.example"));
  ASSERT_EQ(a.answer.size(), 1u);
  EXPECT_EQ(a.answer[0].ttl, 300u);
  EXPECT_EQ(lab.c.queries, cases.size() + 1);
  EXPECT_EQ(lab.c.noerror, cases.size() + 1);
}

TEST_F(DnsTest, NegativeAnswersCarryTheSoaWithTheNegativeTtl) {
  // RFC 2308: SOA in AUTHORITY, TTL min(SOA TTL 300, minimum 60) = 60.
  for (const char* n : {"nope.lab.example", "a.b.c.nope.lab.example", "NoPe.Lab.Example"}) {
    SCOPED_TRACE(n);
    const DnsAnswer a = ask(q(n));
    EXPECT_EQ(a.rcode, rcode::kNxDomain);
    EXPECT_TRUE(a.aa);
    EXPECT_TRUE(a.answer.empty());
    // Names compressed into the question keep its spelling (case-insensitive equal).
    ASSERT_EQ(a.authority.size(), 1u);
    EXPECT_EQ(lower(DnsAnswer::lines(a.authority)[0]), lower(kSoa));
    EXPECT_EQ(a.authority[0].ttl, 60u);
    EXPECT_EQ(a.qname, std::string(n) + ".");
  }
  for (const auto& [n, t] : std::vector<std::pair<const char*, uint16_t>>{
           {"srv1.lab.example", type::AAAA},
           {"mail.lab.example", type::TXT},
           {"_tcp.lab.example", type::A},  // an empty non-terminal exists (RFC 4592 2.2.2)
           {"wild.lab.example", type::A}}) {
    SCOPED_TRACE(n);
    const DnsAnswer a = ask(q(n, t));
    EXPECT_EQ(a.rcode, rcode::kNoError);
    EXPECT_TRUE(a.answer.empty());
    EXPECT_EQ(DnsAnswer::lines(a.authority), Lines{kSoa});
    EXPECT_EQ(a.authority[0].ttl, 60u);
  }
  // The reverse zone: min(300, 120).
  const DnsAnswer r = ask(q("9.2.0.192.in-addr.arpa", type::PTR));
  EXPECT_EQ(r.rcode, rcode::kNxDomain);
  ASSERT_EQ(r.authority.size(), 1u);
  EXPECT_EQ(r.authority[0].owner, "2.0.192.in-addr.arpa.");
  EXPECT_EQ(r.authority[0].ttl, 120u);
  EXPECT_EQ(lab.c.nxdomain, 4u);
  EXPECT_EQ(lab.c.nodata, 4u);
}

TEST_F(DnsTest, CnameChains) {
  DnsAnswer a = ask(q("chain.lab.example"));
  EXPECT_EQ(a.rcode, rcode::kNoError);
  EXPECT_EQ(DnsAnswer::lines(a.answer), (Lines{"chain.lab.example. CNAME alias.lab.example.",
                                               "alias.lab.example. CNAME srv1.lab.example.",
                                               "srv1.lab.example. A 10.20.0.11"}));
  // The chain for a type the target lacks: the CNAMEs, then NODATA's SOA.
  a = ask(q("chain.lab.example", type::AAAA));
  EXPECT_EQ(a.answer.size(), 2u);
  EXPECT_EQ(DnsAnswer::lines(a.authority), Lines{kSoa});
  // Out of zone: only the CNAME, the resolver follows it.
  a = ask(q("outside.lab.example"));
  EXPECT_EQ(DnsAnswer::lines(a.answer), Lines{"outside.lab.example. CNAME www.example.org."});
  EXPECT_TRUE(a.authority.empty());
  // A loop stops.
  a = ask(q("loop1.lab.example"));
  EXPECT_EQ(a.rcode, rcode::kNoError);
  EXPECT_EQ(DnsAnswer::lines(a.answer), (Lines{"loop1.lab.example. CNAME loop2.lab.example.",
                                               "loop2.lab.example. CNAME loop1.lab.example."}));
  // Into a delegation: the CNAME only, never an NXDOMAIN for the child's name.
  a = ask(q("tosub.lab.example"));
  EXPECT_EQ(a.rcode, rcode::kNoError);
  EXPECT_EQ(DnsAnswer::lines(a.answer), Lines{"tosub.lab.example. CNAME foo.sub.lab.example."});
  EXPECT_TRUE(a.authority.empty());
  // Mixed-case query: the first owner keeps the query's spelling.
  a = ask(q("ChAiN.LaB.eXaMpLe"));
  ASSERT_EQ(a.answer.size(), 3u);
  EXPECT_EQ(a.qname, "ChAiN.LaB.eXaMpLe.");
  EXPECT_EQ(a.answer[0].owner, "ChAiN.LaB.eXaMpLe.");
}

TEST_F(DnsTest, CnameToAGslbName) {
  for (const char* n : {"cdn.lab.example", "tocdn.lab.example", "CDN.lab.EXAMPLE"}) {
    SCOPED_TRACE(n);
    const DnsAnswer a = ask(q(n));
    EXPECT_EQ(a.rcode, rcode::kNoError);
    ASSERT_GE(a.answer.size(), 2u);
    const DnsRr& last = a.answer.back();
    EXPECT_EQ(lower(last.owner), "www.lab.example.");
    EXPECT_EQ(last.type, type::A);
    EXPECT_EQ(last.ttl, 30u);
    EXPECT_EQ(lower(a.answer[a.answer.size() - 2].rdata), "www.lab.example.");
  }
  // AAAA through the chain: the CNAME and NODATA.
  const DnsAnswer a = ask(q("cdn.lab.example", type::AAAA));
  EXPECT_EQ(DnsAnswer::lines(a.answer), Lines{"cdn.lab.example. CNAME www.lab.example."});
  EXPECT_EQ(DnsAnswer::lines(a.authority), Lines{kSoa});
}

TEST_F(DnsTest, Wildcards) {
  for (const char* n :
       {"a.wild.lab.example", "x.y.wild.lab.example", "Very-Long-Label.wild.lab.example"}) {
    SCOPED_TRACE(n);
    DnsAnswer a = ask(q(n));
    EXPECT_EQ(a.rcode, rcode::kNoError);
    EXPECT_EQ(DnsAnswer::lines(a.answer), Lines{std::string(n) + ". A 10.20.0.99"});
    a = ask(q(n, type::TXT));
    EXPECT_EQ(DnsAnswer::lines(a.answer), Lines{std::string(n) + ". TXT \"wildcard\""});
    // A type the wildcard lacks: NODATA (RFC 4592 3.3.1), SOA pointer moved correctly.
    a = ask(q(n, type::MX));
    EXPECT_EQ(a.rcode, rcode::kNoError);
    EXPECT_TRUE(a.answer.empty());
    EXPECT_EQ(DnsAnswer::lines(a.authority), Lines{kSoa});
  }
  // deep.wild exists: exact, and its children do not match *.wild.
  DnsAnswer a = ask(q("deep.wild.lab.example", type::TXT));
  EXPECT_EQ(DnsAnswer::lines(a.answer), Lines{"deep.wild.lab.example. TXT \"deep\""});
  a = ask(q("deep.wild.lab.example"));
  EXPECT_TRUE(a.answer.empty());
  EXPECT_EQ(a.rcode, rcode::kNoError);
  a = ask(q("x.deep.wild.lab.example"));
  EXPECT_EQ(a.rcode, rcode::kNxDomain);
  EXPECT_EQ(DnsAnswer::lines(a.authority), Lines{kSoa});
  // The wildcard owner itself.
  a = ask(q("*.wild.lab.example"));
  EXPECT_EQ(DnsAnswer::lines(a.answer), Lines{"*.wild.lab.example. A 10.20.0.99"});
}

TEST_F(DnsTest, Referrals) {
  for (const char* n :
       {"sub.lab.example", "foo.sub.lab.example", "ns.sub.lab.example", "a.b.c.sub.lab.example"}) {
    SCOPED_TRACE(n);
    const DnsAnswer a = ask(q(n));
    EXPECT_EQ(a.rcode, rcode::kNoError);
    EXPECT_FALSE(a.aa);
    EXPECT_TRUE(a.answer.empty());
    EXPECT_EQ(DnsAnswer::lines(a.authority), Lines{"sub.lab.example. NS ns.sub.lab.example."});
    EXPECT_EQ(DnsAnswer::lines(a.additional), Lines{"ns.sub.lab.example. A 10.10.0.53"});
  }
  EXPECT_EQ(lab.c.referral, 4u);
}

TEST_F(DnsTest, ErrorsAndRefusals) {
  // Outside our zones, other classes, zone transfers: REFUSED.
  for (const DnsQuery& x : {q("www.example.org"), q("example"), q("."),
                            q("srv1.lab.example", type::AXFR), q("srv1.lab.example", type::IXFR)}) {
    SCOPED_TRACE(x.name);
    const DnsAnswer a = ask(x);
    EXPECT_EQ(a.rcode, rcode::kRefused);
    EXPECT_EQ(a.qd, 1);
    EXPECT_EQ(a.an + a.ns + a.ar, 0);
  }
  DnsQuery ch = q("srv1.lab.example");
  ch.qclass = dns::kClassCH;
  EXPECT_EQ(ask(ch).rcode, rcode::kRefused);

  // FORMERR: header only.
  auto formerr = [&](const std::vector<uint8_t>& m) {
    const std::vector<uint8_t> r = lab.raw(m);
    DnsAnswer a;
    EXPECT_TRUE(decode_dns(r.data(), r.size(), a)) << a.error;
    EXPECT_EQ(a.rcode, rcode::kFormErr);
    EXPECT_TRUE(a.qr);
    EXPECT_EQ(a.id, 0x1234);
    EXPECT_EQ(a.qd + a.an + a.ns + a.ar, 0);
  };
  DnsQuery x = q("srv1.lab.example");
  x.qdcount = 0;
  formerr(x.build());
  x.qdcount = 2;
  formerr(x.build());
  std::vector<uint8_t> m = q("srv1.lab.example").build();
  for (size_t cut = 13; cut < m.size(); ++cut) formerr({m.begin(), m.begin() + cut});
  DnsQuery e = q("srv1.lab.example");
  e.edns = true;
  m = e.build();
  e.append_opt(m);
  m[11] = 2;  // two OPT records
  formerr(m);
  DnsQuery ecs = q("srv1.lab.example");
  ecs.edns = true;
  ecs.ecs = true;
  ecs.ecs_scope = 24;  // SCOPE must be 0 in a query
  formerr(ecs.build());
  ecs.ecs_scope = 0;
  ecs.ecs_family = 3;
  formerr(ecs.build());
  ecs.ecs_family = 1;
  ecs.ecs_source = 33;
  formerr(ecs.build());
  m = q("srv1.lab.example").build();
  m[12] = 0xc0;  // a pointer in the question
  m[13] = 0x0c;
  formerr(m);
  EXPECT_EQ(lab.c.formerr, 7u + (m.size() - 13));

  // NOTIMP for opcode 2 (STATUS), question echoed.
  x = q("srv1.lab.example");
  x.flags = 2 << 11;
  DnsAnswer a = ask(x);
  EXPECT_EQ(a.rcode, rcode::kNotImp);
  EXPECT_EQ(a.opcode, 2);
  EXPECT_EQ(a.qname, "srv1.lab.example.");
  // ... but never a question with a compression pointer (it could loop).
  m = x.build();
  m[12 + 5] = 0xc0;  // "srv1" then a pointer to itself
  m[12 + 6] = 12;
  m.resize(12 + 7);
  m.insert(m.end(), {0, 1, 0, 1});
  const std::vector<uint8_t> r = lab.raw(m);
  ASSERT_FALSE(r.empty());
  EXPECT_TRUE(decode_dns(r.data(), r.size(), a)) << a.error;
  EXPECT_EQ(a.rcode, rcode::kNotImp);

  // BADVERS: EDNS version 1, extended RCODE 16 in the OPT TTL.
  x = q("srv1.lab.example");
  x.edns = true;
  x.version = 1;
  a = ask(x);
  EXPECT_EQ(a.rcode, rcode::kBadVers);
  EXPECT_TRUE(a.opt);
  EXPECT_EQ(a.opt_version, 0);
  EXPECT_TRUE(a.answer.empty());

  // A response (QR=1) and a runt are dropped.
  x = q("srv1.lab.example");
  x.flags = 0x8000;
  EXPECT_TRUE(lab.raw(x.build()).empty());
  EXPECT_TRUE(lab.raw({0x12, 0x34, 0, 0}).empty());
  EXPECT_EQ(lab.c.dropped, 2u);
}

TEST_F(DnsTest, CaseIsKept) {
  const DnsAnswer a = ask(q("SrV1.lAb.ExAmPlE"));
  EXPECT_EQ(a.qname, "SrV1.lAb.ExAmPlE.");
  EXPECT_EQ(DnsAnswer::lines(a.answer), Lines{"SrV1.lAb.ExAmPlE. A 10.20.0.11"});
  const DnsAnswer b = ask(q("mixed.lab.example"));  // zone data "Mixed": matched insensitively
  EXPECT_EQ(DnsAnswer::lines(b.answer), Lines{"mixed.lab.example. A 10.20.0.77"});
}

TEST_F(DnsTest, AnyIsOneHinfo) {
  for (const char* n : {"lab.example", "srv1.lab.example", "a.wild.lab.example"}) {
    SCOPED_TRACE(n);
    const DnsAnswer a = ask(q(n, type::ANY));
    EXPECT_EQ(a.rcode, rcode::kNoError);
    EXPECT_EQ(DnsAnswer::lines(a.answer), Lines{std::string(n) + ". HINFO \"RFC8482\" \"\""});
  }
  EXPECT_EQ(lab.c.any, 3u);
}

TEST_F(DnsTest, Edns) {
  DnsQuery x = q("srv1.lab.example");
  x.edns = true;
  x.udp_size = 4096;
  x.do_bit = true;
  DnsAnswer a = ask(x);
  EXPECT_TRUE(a.opt);
  EXPECT_EQ(a.opt_size, 1232);  // ours, not the client's
  EXPECT_TRUE(a.do_bit);
  EXPECT_EQ(a.ar, 1);
  EXPECT_EQ(a.answer.size(), 1u);
  x.do_bit = false;
  x.udp_size = 100;  // below 512 counts as 512
  a = ask(x);
  EXPECT_FALSE(a.do_bit);
  EXPECT_EQ(a.answer.size(), 1u);
  // Errors keep the OPT too.
  x.name = "www.example.org";
  a = ask(x);
  EXPECT_EQ(a.rcode, rcode::kRefused);
  EXPECT_TRUE(a.opt);
  // NXDOMAIN with OPT.
  x.name = "nope.lab.example";
  a = ask(x);
  EXPECT_EQ(a.rcode, rcode::kNxDomain);
  EXPECT_TRUE(a.opt);
  EXPECT_EQ(a.authority.size(), 1u);
  // Static (non-GSLB) answers to ECS carry scope 0.
  x.name = "srv1.lab.example";
  x.ecs = true;
  x.ecs_addr = DnsLab::ip("198.51.100.7");
  a = ask(x);
  EXPECT_TRUE(a.ecs);
  EXPECT_EQ(a.ecs_source, 24);
  EXPECT_EQ(a.ecs_scope, 0);
}

TEST_F(DnsTest, Truncation) {
  // Without EDNS the `big` TXT RRset exceeds 512: TC, no records at all.
  DnsAnswer a = ask(q("big.lab.example", type::TXT));
  EXPECT_TRUE(a.tc);
  EXPECT_TRUE(a.aa);
  EXPECT_EQ(a.rcode, rcode::kNoError);
  EXPECT_EQ(a.an + a.ns + a.ar, 0);
  EXPECT_EQ(a.qname, "big.lab.example.");
  EXPECT_EQ(lab.c.truncated, 1u);
  // With EDNS 1232 it fits.
  DnsQuery x = q("big.lab.example", type::TXT);
  x.edns = true;
  a = ask(x);
  EXPECT_FALSE(a.tc);
  EXPECT_EQ(a.answer.size(), 10u);
  // EDNS 512: truncated, OPT kept.
  x.udp_size = 512;
  a = ask(x);
  EXPECT_TRUE(a.tc);
  EXPECT_TRUE(a.opt);
  EXPECT_TRUE(a.answer.empty());
  // TCP has no 512 limit.
  a = lab.ask(q("big.lab.example", type::TXT), DnsLab::ip("192.0.2.10"), 65535, true);
  EXPECT_FALSE(a.tc);
  EXPECT_EQ(a.answer.size(), 10u);
  // A buffer too small for the blob at all.
  a = lab.ask(x, DnsLab::ip("192.0.2.10"), 200);
  EXPECT_TRUE(a.tc);
  EXPECT_EQ(a.error, "");
}

TEST_F(DnsTest, TruncateAnswer) {
  DnsQuery x = q("_http._tcp.lab.example", type::SRV);
  x.edns = true;
  x.ecs = true;
  x.ecs_addr = DnsLab::ip("10.1.2.0");
  std::vector<uint8_t> r = lab.raw(x.build());
  const DnsAnswer full = decode_dns(r);
  ASSERT_EQ(full.answer.size(), 2u);
  const uint32_t n = dns::truncate_answer(r.data(), static_cast<uint32_t>(r.size()));
  r.resize(n);
  DnsAnswer a;
  ASSERT_TRUE(decode_dns(r.data(), r.size(), a)) << a.error;
  EXPECT_TRUE(a.tc);
  EXPECT_TRUE(a.aa);
  EXPECT_EQ(a.an + a.ns, 0);
  EXPECT_EQ(a.ar, 1);
  EXPECT_TRUE(a.opt);
  EXPECT_TRUE(a.ecs);
  EXPECT_EQ(a.qname, "_http._tcp.lab.example.");
  // Without EDNS: header and question only; garbage is left alone.
  r = lab.raw(q("nope.lab.example").build());
  r.resize(dns::truncate_answer(r.data(), static_cast<uint32_t>(r.size())));
  a = decode_dns(r);
  EXPECT_EQ(a.error, "");
  EXPECT_EQ(a.rcode, rcode::kNxDomain);
  EXPECT_EQ(r.size(), 12u + 18 + 4);
  std::vector<uint8_t> junk = {1, 2, 3};
  EXPECT_EQ(dns::truncate_answer(junk.data(), 3), 3u);
}

TEST(DnsCompile, RejectsBadZones) {
  auto compile = [](const char* text, const std::vector<dns::GslbSource>& g = {}) {
    dns::MasterParser p(DnsLab::name("t.example."), 300);
    p.feed(text, "t", 1);
    EXPECT_TRUE(p.errors().empty());
    std::vector<dns::ZoneSource> z{{DnsLab::name("t.example."), "t", 1, p.records()}};
    std::shared_ptr<dns::View> v;
    std::vector<dns::CompileError> errs;
    const bool ok = dns::compile(z, g, {}, v, errs);
    return ok ? std::string() : errs.front().message;
  };
  const char* kHead = "@ SOA ns hm 1 2 3 4 5\n@ NS ns\n";
  EXPECT_EQ(compile(kHead), "");
  EXPECT_NE(compile("@ NS ns\n").find("no SOA"), std::string::npos);
  EXPECT_NE(compile("@ SOA ns hm 1 2 3 4 5\n").find("no NS"), std::string::npos);
  EXPECT_NE(
      compile((std::string(kHead) + "a CNAME b\na A 1.2.3.4\n").c_str()).find("CNAME and other"),
      std::string::npos);
  EXPECT_NE(
      compile((std::string(kHead) + "www A 1.2.3.4\n").c_str(),
              {DnsLab::gslb("www.t.example.", dns::Policy::kRoundRobin, {DnsLab::m("1.1.1.1")})})
          .find("also has records"),
      std::string::npos);
  EXPECT_NE(
      compile(kHead, {DnsLab::gslb("www.other.", dns::Policy::kRoundRobin, {DnsLab::m("1.1.1.1")})})
          .find("none of the zones"),
      std::string::npos);
}

// The stage on golden frames: answered in place, addresses and ports swapped, checksums valid.
TEST(DnsStage, AnswersGoldenFramesInPlace) {
  DnsLab lab;
  ASSERT_TRUE(lab.errors.empty());
  auto rt = std::make_shared<dns::Runtime>();
  rt->view = lab.view;
  rt->slot_of_target = lab.slot_of_target;
  rt->slots = lab.slots.get();
  rt->listen = {DnsLab::ip("10.10.0.1")};
  Snapshot snap;
  snap.nb_ports = 1;
  snap.ports[0] = PortView::make(kPortMac, 1500);
  snap.dns = rt;
  StageEnv senv;
  dns::DnsStage stage(0, senv);
  const uint32_t client = DnsLab::ip("192.0.2.10");
  struct Fx {
    std::vector<uint8_t> frame;
    const char* outcome;
  };
  DnsQuery www = q("www.lab.example");
  DnsQuery resp = q("www.lab.example");
  resp.flags = 0x8000;
  std::vector<Fx> fx = {
      {dns_frame(www.build(), client, DnsLab::ip("10.10.0.1")), "reply"},
      {dns_frame(q("srv1.lab.example").build(), client, DnsLab::ip("10.10.0.1")), "reply"},
      {dns_frame(www.build(), client, DnsLab::ip("10.10.0.2")), "next"},  // not our address
      {dns_frame(resp.build(), client, DnsLab::ip("10.10.0.1")), "drop"},
  };
  std::vector<std::unique_ptr<FakeMbuf>> ms;
  Burst b;
  for (const Fx& f : fx) {
    ms.push_back(std::make_unique<FakeMbuf>(f.frame));
    ASSERT_TRUE(ms.back()->parse(kPortMac));
    b.pkts[b.n++] = ms.back()->mbuf();
  }
  Emit out;
  out.set_nb_ports(1);
  StageCounters sc{};
  out.begin_stage(&sc);
  stage.process(b, StageCtx{&snap, 0, 0}, out);
  out.end_stage();
  Emit::TxBuf& tx = out.txbuf(0);
  ASSERT_EQ(tx.n, 2);
  EXPECT_EQ(out.next_burst().n, 1);
  EXPECT_EQ(out.drops().n, 1);
  for (uint16_t i = 0; i < tx.n; ++i) {
    rte_mbuf* m = tx.pkts[i];
    auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr*, 14);
    auto* udp = rte_pktmbuf_mtod_offset(m, rte_udp_hdr*, 34);
    EXPECT_EQ(rte_be_to_cpu_32(ip->dst_addr), client);
    EXPECT_EQ(rte_be_to_cpu_32(ip->src_addr), DnsLab::ip("10.10.0.1"));
    EXPECT_EQ(rte_ipv4_cksum(ip), 0);  // over a header with its checksum: 0 when valid
    EXPECT_EQ(rte_be_to_cpu_16(udp->src_port), 53);
    EXPECT_EQ(rte_be_to_cpu_16(udp->dst_port), 40000);
    EXPECT_EQ(rte_ipv4_udptcp_cksum_verify(ip, udp), 0);
    EXPECT_EQ(m->data_len, 14u + rte_be_to_cpu_16(ip->total_length));
    const uint8_t* msg = reinterpret_cast<const uint8_t*>(udp + 1);
    DnsAnswer a;
    ASSERT_TRUE(decode_dns(msg, rte_be_to_cpu_16(udp->dgram_len) - 8u, a)) << a.error;
    EXPECT_EQ(a.rcode, rcode::kNoError);
    ASSERT_EQ(a.answer.size(), 1u);
  }
  EXPECT_EQ(stage.counters().c.queries, 3u);
  EXPECT_EQ(stage.counters().c.gslb, 1u);
}

}  // namespace
}  // namespace nf::test
