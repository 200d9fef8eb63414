// The RFC 1035 master-file reader without EAL: every supported type's wire rdata, the
// owner/TTL/class omission rules, parentheses, $ORIGIN/$TTL/$INCLUDE, and located errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "nf/dns/name.h"
#include "nf/dns/rr.h"
#include "nf/dns/zonefile.h"

namespace nf::dns {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

const Name kEx{2, 'e', 'x', 0};  // "ex."

Name nm(std::string_view text) {
  Name n;
  std::string err;
  EXPECT_TRUE(parse_name(text, Name{0}, n, err)) << text << ": " << err;
  return n;
}

struct Parsed {
  std::vector<Rr> rrs;
  std::vector<std::string> errs;  // ZoneError::str()
};

Parsed parse(std::string_view text, uint32_t default_ttl = 3600) {
  MasterParser p(kEx, default_ttl);
  p.set_include_enabled(false);
  p.feed(text, "t.zone", 1);
  Parsed r{p.records(), {}};
  for (const auto& e : p.errors()) r.errs.push_back(e.str());
  return r;
}

// One record, no errors: its rdata.
Bytes rdata_of(std::string_view text, uint16_t want_type) {
  const Parsed p = parse(text);
  EXPECT_TRUE(p.errs.empty()) << text << ": " << (p.errs.empty() ? "" : p.errs[0]);
  EXPECT_EQ(p.rrs.size(), 1u) << text;
  if (p.rrs.size() != 1) return {};
  EXPECT_EQ(p.rrs[0].type, want_type) << text;
  EXPECT_EQ(p.rrs[0].rclass, kClassIN);
  return p.rrs[0].rdata;
}

// Exactly one error and no records: its "file:line: message".
std::string error_of(std::string_view text) {
  const Parsed p = parse(text);
  EXPECT_TRUE(p.rrs.empty()) << text;
  EXPECT_EQ(p.errs.size(), 1u) << text;
  return p.errs.empty() ? "" : p.errs[0];
}

class TempDir {
 public:
  TempDir() {
    dir_ = fs::path(testing::TempDir()) /
           ("zonefile-" + std::to_string(::getpid()) + "-" +
            testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string write(const std::string& rel, const std::string& text) const {
    const fs::path p = dir_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }
  std::string path(const std::string& rel) const { return (dir_ / rel).string(); }

 private:
  fs::path dir_;
};

// --- rdata wire formats ---

TEST(Zonefile, A) {
  EXPECT_EQ(rdata_of("www IN A 192.0.2.1", type::A), (Bytes{192, 0, 2, 1}));
  const Parsed p = parse("www IN A 192.0.2.1");
  EXPECT_EQ(p.rrs[0].owner, (Bytes{3, 'w', 'w', 'w', 2, 'e', 'x', 0}));
  EXPECT_EQ(p.rrs[0].ttl, 3600u);
  EXPECT_EQ(p.rrs[0].file, "t.zone");
  EXPECT_EQ(p.rrs[0].line, 1);
}

TEST(Zonefile, Aaaa) {
  EXPECT_EQ(rdata_of("v6 AAAA 2001:db8::1", type::AAAA),
            (Bytes{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}));
  EXPECT_EQ(rdata_of("v6 AAAA ::ffff:192.0.2.1", type::AAAA),
            (Bytes{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1}));
}

TEST(Zonefile, NameTypesKeepCase) {
  EXPECT_EQ(rdata_of("@ NS ns1", type::NS), (Bytes{3, 'n', 's', '1', 2, 'e', 'x', 0}));
  EXPECT_EQ(rdata_of("a CNAME Target.Other.", type::CNAME),
            (Bytes{6, 'T', 'a', 'r', 'g', 'e', 't', 5, 'O', 't', 'h', 'e', 'r', 0}));
  EXPECT_EQ(rdata_of("1 PTR @", type::PTR), kEx);
  EXPECT_EQ(rdata_of("a CNAME .", type::CNAME), (Bytes{0}));
}

TEST(Zonefile, Soa) {
  EXPECT_EQ(
      rdata_of("@ SOA ns1 host\\.master 2024010101 1h 10m 1w 30", type::SOA),
      (Bytes{3,    'n',  's', '1', 2,   'e',  'x', 0,    11,   'h',  'o',  's',  't',  '.', 'm',
             'a',  's',  't', 'e', 'r', 2,    'e', 'x',  0,    0x78, 0xa3, 0xf1, 0x75, 0,   0,
             0x0e, 0x10, 0,   0,   2,   0x58, 0,   0x09, 0x3a, 0x80, 0,    0,    0,    30}));
}

TEST(Zonefile, Mx) {
  EXPECT_EQ(rdata_of("@ MX 10 mail", type::MX),
            (Bytes{0, 10, 4, 'm', 'a', 'i', 'l', 2, 'e', 'x', 0}));
  EXPECT_EQ(rdata_of("@ MX 65535 .", type::MX), (Bytes{0xff, 0xff, 0}));
}

TEST(Zonefile, Txt) {
  EXPECT_EQ(rdata_of(R"(t TXT "hello world" plain "a\"b" "\065\;")", type::TXT),
            (Bytes{11,  'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', 5,
                   'p', 'l', 'a', 'i', 'n', 3,   'a', '"', 'b', 2,   'A', ';'}));
  EXPECT_EQ(rdata_of(R"(t TXT "")", type::TXT), (Bytes{0}));
  EXPECT_EQ(rdata_of(R"z(t TXT "semi;colon (paren)")z", type::TXT),
            (Bytes{18, 's', 'e', 'm', 'i', ';', 'c', 'o', 'l', 'o', 'n', ' ', '(', 'p', 'a', 'r',
                   'e', 'n', ')'}));
  const Bytes max = rdata_of("t TXT \"" + std::string(255, 'x') + "\"", type::TXT);
  ASSERT_EQ(max.size(), 256u);
  EXPECT_EQ(max[0], 255);
}

TEST(Zonefile, Srv) {
  EXPECT_EQ(rdata_of("_sip._udp SRV 1 2 5060 sip", type::SRV),
            (Bytes{0, 1, 0, 2, 0x13, 0xc4, 3, 's', 'i', 'p', 2, 'e', 'x', 0}));
  const Parsed p = parse("_sip._udp SRV 1 2 5060 sip");
  EXPECT_EQ(name_to_text(p.rrs[0].owner), "_sip._udp.ex.");
}

TEST(Zonefile, Caa) {
  EXPECT_EQ(
      rdata_of(R"(@ CAA 0 issue "ca.example")", type::CAA),
      (Bytes{0, 5, 'i', 's', 's', 'u', 'e', 'c', 'a', '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e'}));
  EXPECT_EQ(rdata_of(R"(@ CAA 128 tbs "")", type::CAA), (Bytes{128, 3, 't', 'b', 's'}));
}

TEST(Zonefile, Hinfo) {
  EXPECT_EQ(rdata_of(R"(h HINFO "INTEL-386" Unix)", type::HINFO),
            (Bytes{9, 'I', 'N', 'T', 'E', 'L', '-', '3', '8', '6', 4, 'U', 'n', 'i', 'x'}));
}

TEST(Zonefile, Rfc3597Generic) {
  EXPECT_EQ(rdata_of("x TYPE65534 \\# 3 abcdef", 65534), (Bytes{0xab, 0xcd, 0xef}));
  EXPECT_EQ(rdata_of("x type65534 \\# 0", 65534), Bytes{});
  EXPECT_EQ(rdata_of("x A \\# 4 C000 0201", type::A), (Bytes{192, 0, 2, 1}));
  EXPECT_EQ(rdata_of("x DS \\# ( 2\n 0102 )", type::DS), (Bytes{1, 2}));
  EXPECT_EQ(rdata_of("x NS \\# 4 02657800", type::NS), kEx);
  EXPECT_EQ(rdata_of("x TXT \\# 2 0161", type::TXT), (Bytes{1, 'a'}));
}

// --- the entry syntax ---

TEST(Zonefile, ParenthesesSpanLines) {
  const Parsed p = parse(
      "@ IN SOA ns1 hostmaster ( ; comment (with parens) inside\n"
      "   2024010101 ; serial\n"
      "\n"
      "   3600 600\n"
      "   604800 30 )  ; minimum\n"
      "www A 192.0.2.1\n");
  ASSERT_TRUE(p.errs.empty()) << p.errs[0];
  ASSERT_EQ(p.rrs.size(), 2u);
  EXPECT_EQ(p.rrs[0].type, type::SOA);
  EXPECT_EQ(p.rrs[0].line, 1);
  EXPECT_EQ(p.rrs[0].rdata.size(), 8u + 15u + 20u);  // ns1.ex. hostmaster.ex. 5 * 4
  EXPECT_EQ(p.rrs[1].line, 6);                       // lines inside the parentheses are counted
  const Parsed t = parse("t TXT ( \"a\"\n \"b\" )");
  ASSERT_EQ(t.rrs.size(), 1u);
  EXPECT_EQ(t.rrs[0].rdata, (Bytes{1, 'a', 1, 'b'}));
}

TEST(Zonefile, OwnerTtlClassOmission) {
  const Parsed p = parse(
      "a 300 IN A 10.0.0.1\n"
      "  IN 60 A 10.0.0.2\n"  // class before TTL; previous owner
      "\tA 10.0.0.3\n"        // the last explicit TTL (RFC 1035)
      "b A 10.0.0.4\n"
      "c IN A 10.0.0.5\n"
      "d 1h30m A 10.0.0.6\n"
      "; a comment does not change the owner\n"
      "   \n"
      " A 10.0.0.7\n"
      "e 7 in a 10.0.0.8\n",  // mnemonics in any case
      3600);
  ASSERT_TRUE(p.errs.empty()) << p.errs[0];
  ASSERT_EQ(p.rrs.size(), 8u);
  const std::vector<std::string> owners{"a.ex.", "a.ex.", "a.ex.", "b.ex.",
                                        "c.ex.", "d.ex.", "d.ex.", "e.ex."};
  const std::vector<uint32_t> ttls{300, 60, 60, 60, 60, 5400, 5400, 7};
  for (size_t i = 0; i < p.rrs.size(); ++i) {
    EXPECT_EQ(name_to_text(p.rrs[i].owner), owners[i]) << i;
    EXPECT_EQ(p.rrs[i].ttl, ttls[i]) << i;
    EXPECT_EQ(p.rrs[i].rdata.back(), i + 1) << i;
  }
  EXPECT_EQ(p.rrs[6].line, 9);
}

TEST(Zonefile, DefaultTtlWithoutAnyTtl) {
  const Parsed p = parse("a A 10.0.0.1\n", 1234);
  ASSERT_EQ(p.rrs.size(), 1u);
  EXPECT_EQ(p.rrs[0].ttl, 1234u);
}

TEST(Zonefile, DollarTtlBeatsLastExplicit) {
  // RFC 2308 section 4: with $TTL, records without a TTL use it, not the previous record's.
  const Parsed p = parse(
      "a A 10.0.0.1\n"
      "$TTL 1h30m\n"
      "b A 10.0.0.2\n"
      "c 50 A 10.0.0.3\n"
      "d A 10.0.0.4\n"
      "$ttl 2D\n"
      "e A 10.0.0.5\n",
      99);
  ASSERT_TRUE(p.errs.empty()) << p.errs[0];
  ASSERT_EQ(p.rrs.size(), 5u);
  EXPECT_EQ(p.rrs[0].ttl, 99u);
  EXPECT_EQ(p.rrs[1].ttl, 5400u);
  EXPECT_EQ(p.rrs[2].ttl, 50u);
  EXPECT_EQ(p.rrs[3].ttl, 5400u);
  EXPECT_EQ(p.rrs[4].ttl, 172800u);
}

TEST(Zonefile, Origin) {
  const Parsed p = parse(
      "a A 10.0.0.1\n"
      "$ORIGIN sub\n"  // relative to the current origin
      "b A 10.0.0.2\n"
      "@ NS ns\n"
      "$ORIGIN other.test.\n"
      "c CNAME d\n"
      "e.ex. A 10.0.0.3\n");
  ASSERT_TRUE(p.errs.empty()) << p.errs[0];
  ASSERT_EQ(p.rrs.size(), 5u);
  EXPECT_EQ(name_to_text(p.rrs[0].owner), "a.ex.");
  EXPECT_EQ(name_to_text(p.rrs[1].owner), "b.sub.ex.");
  EXPECT_EQ(name_to_text(p.rrs[2].owner), "sub.ex.");
  EXPECT_EQ(name_to_text(p.rrs[2].rdata), "ns.sub.ex.");
  EXPECT_EQ(name_to_text(p.rrs[3].owner), "c.other.test.");
  EXPECT_EQ(name_to_text(p.rrs[3].rdata), "d.other.test.");
  EXPECT_EQ(name_to_text(p.rrs[4].owner), "e.ex.");
}

TEST(Zonefile, StateCarriesAcrossFeeds) {
  MasterParser p(kEx, 3600);
  p.feed("$ORIGIN a.ex.", "c.conf", 10);
  p.feed("www 60 A 10.0.0.1", "c.conf", 11);
  p.feed("  TXT one", "c.conf", 12);
  p.feed("$TTL 5m", "c.conf", 13);
  p.feed("  TXT ( two", "c.conf", 14);  // parentheses must close within one feed
  p.feed(")", "c.conf", 15);
  ASSERT_EQ(p.records().size(), 2u);
  EXPECT_EQ(name_to_text(p.records()[1].owner), "www.a.ex.");
  EXPECT_EQ(p.records()[1].ttl, 60u);
  EXPECT_EQ(p.records()[1].line, 12);
  ASSERT_EQ(p.errors().size(), 2u);
  EXPECT_EQ(p.errors()[0].str(), "c.conf:14: unbalanced parenthesis");
  EXPECT_EQ(p.errors()[1].str(), "c.conf:15: unbalanced parenthesis");
  EXPECT_EQ(p.origin(), nm("a.ex."));
}

TEST(Zonefile, Include) {
  TempDir d;
  d.write("inc/part.zone",
          "@ A 10.0.0.1\n"
          "x A 10.0.0.2\n"
          "$INCLUDE deeper.zone\n"  // relative to inc/
          "  TXT in-part\n");
  d.write("inc/deeper.zone", "y TXT deep\n");
  const std::string main = d.write("main.zone",
                                   "$ORIGIN lab.test.\n"
                                   "m A 10.0.0.9\n"
                                   "$INCLUDE inc/part.zone part\n"
                                   "  TXT after\n"  // the owner reverts to m (RFC 1035 5.1)
                                   "n A 10.0.0.10\n");
  MasterParser p(kEx, 3600);
  EXPECT_TRUE(p.feed_file(main));
  ASSERT_TRUE(p.errors().empty()) << p.errors()[0].str();
  std::vector<std::string> got;
  for (const auto& r : p.records()) {
    got.push_back(name_to_text(r.owner) + " " + type_to_text(r.type) + " " +
                  fs::path(r.file).filename().string() + ":" + std::to_string(r.line));
  }
  EXPECT_EQ(got, (std::vector<std::string>{
                     "m.lab.test. A main.zone:2", "part.lab.test. A part.zone:1",
                     "x.part.lab.test. A part.zone:2", "y.part.lab.test. TXT deeper.zone:1",
                     "x.part.lab.test. TXT part.zone:4", "m.lab.test. TXT main.zone:4",
                     "n.lab.test. A main.zone:5"}));
}

TEST(Zonefile, IncludeErrors) {
  TempDir d;
  const std::string self = d.write("self.zone", "a A 10.0.0.1\n$INCLUDE self.zone\n");
  MasterParser p(kEx, 3600);
  EXPECT_FALSE(p.feed_file(self));
  EXPECT_EQ(p.records().size(), 9u);  // the file itself and 8 levels of inclusion
  ASSERT_EQ(p.errors().size(), 1u);
  EXPECT_EQ(p.errors()[0].str(), self + ":2: $INCLUDE nested more than 8 deep");

  const std::string bad = d.write("bad.zone", "a A 10.0.0.1\n\n$INCLUDE missing.zone\n");
  MasterParser q(kEx, 3600);
  EXPECT_FALSE(q.feed_file(bad));
  EXPECT_EQ(q.records().size(), 1u);
  ASSERT_EQ(q.errors().size(), 1u);
  EXPECT_EQ(q.errors()[0].str(),
            bad + ":3: cannot read \"" + d.path("missing.zone") + "\": No such file or directory");

  MasterParser r(kEx, 3600);
  EXPECT_FALSE(r.feed_file(d.path("nope.zone")));
  ASSERT_EQ(r.errors().size(), 1u);
  EXPECT_EQ(r.errors()[0].str(), d.path("nope.zone") + ": cannot read \"" + d.path("nope.zone") +
                                     "\": No such file or directory");

  MasterParser s(kEx, 3600);
  EXPECT_FALSE(s.feed_file(d.path("")));  // a directory
  ASSERT_EQ(s.errors().size(), 1u);
  EXPECT_NE(s.errors()[0].message.find("not a regular file"), std::string::npos);

  EXPECT_EQ(error_of("$INCLUDE x.zone"), "t.zone:1: $INCLUDE is not allowed here");
}

// --- errors: file, line and message ---

TEST(Zonefile, ErrorMessages) {
  EXPECT_EQ(error_of("a A 10.0.0.300"), R"(t.zone:1: bad IPv4 address "10.0.0.300" in A record)");
  EXPECT_EQ(error_of("a AAAA 2001:db8::g"),
            R"(t.zone:1: bad IPv6 address "2001:db8::g" in AAAA record)");
  EXPECT_EQ(error_of("\n\n" + std::string(64, 'a') + " A 10.0.0.1"),
            "t.zone:3: bad owner name \"" + std::string(64, 'a') +
                "\" (label longer than 63 characters)");
  EXPECT_EQ(error_of("a CH A 10.0.0.1"), "t.zone:1: class CH is not supported");
  EXPECT_EQ(error_of("a 60 CLASS4 A 10.0.0.1"), "t.zone:1: class HS is not supported");
  EXPECT_EQ(error_of("a DS 1 2 3 abcd"),
            R"(t.zone:1: unsupported type DS (use the RFC 3597 \# form))");
  EXPECT_EQ(error_of("a TYPE65534 abcd"),
            R"(t.zone:1: unsupported type TYPE65534 (use the RFC 3597 \# form))");
  EXPECT_EQ(error_of("a FOO x"), R"(t.zone:1: unknown record type "FOO")");
  EXPECT_EQ(error_of("a 1x A 10.0.0.1"), R"(t.zone:1: bad TTL "1x")");
  EXPECT_EQ(error_of("a 2147483648 A 10.0.0.1"),
            "t.zone:1: TTL 2147483648 is larger than 2147483647");
  EXPECT_EQ(error_of("$TTL 2147483648"),
            "t.zone:1: TTL 2147483648 is larger than 2147483647 in $TTL");
  EXPECT_EQ(error_of("$TTL 1y"), R"(t.zone:1: bad TTL "1y" in $TTL)");
  EXPECT_EQ(error_of("a 60 IN"), "t.zone:1: missing record type");
  EXPECT_EQ(error_of("a CNAME"), "t.zone:1: missing name in CNAME record");
  EXPECT_EQ(error_of("a A 10.0.0.1 extra"), R"(t.zone:1: trailing data "extra" in A record)");
  EXPECT_EQ(error_of("a CNAME b..c"), R"(t.zone:1: bad name "b..c" (empty label) in CNAME record)");
  EXPECT_EQ(error_of("a MX 65536 mail"), R"(t.zone:1: bad preference "65536" in MX record)");
  EXPECT_EQ(error_of("a SRV 1 2 port x"), R"(t.zone:1: bad port "port" in SRV record)");
  EXPECT_EQ(error_of("a TXT \"" + std::string(256, 'x') + "\""),
            "t.zone:1: character string longer than 255 bytes \"" + std::string(80, 'x') +
                "...\" in TXT record");
  EXPECT_EQ(error_of(R"(a TXT "bad\25")"), R"(t.zone:1: bad escape in "bad\25" in TXT record)");
  EXPECT_EQ(error_of(R"(a CAA 0 is-sue "x")"),
            R"(t.zone:1: bad tag "is-sue" (letters and digits only) in CAA record)");
  EXPECT_EQ(error_of("a CAA 256 issue x"), R"(t.zone:1: bad flags "256" in CAA record)");
  EXPECT_EQ(error_of("a HINFO cpu"), "t.zone:1: missing OS in HINFO record");
  EXPECT_EQ(error_of("a TYPE65534 \\# 4 abcdef"),
            "t.zone:1: RFC 3597 data is 3 bytes but its length says 4 in TYPE65534 record");
  EXPECT_EQ(error_of("a TYPE65534 \\# 1 zz"),
            R"(t.zone:1: bad RFC 3597 hex data "zz" in TYPE65534 record)");
  EXPECT_EQ(error_of("a TYPE65534 \\# 65536"),
            R"(t.zone:1: bad RFC 3597 length "65536" in TYPE65534 record)");
  EXPECT_EQ(error_of("a A \\# 3 c00002"), "t.zone:1: RFC 3597 data is not valid rdata in A record");
  EXPECT_EQ(error_of("a CNAME \\# 2 0161"),
            "t.zone:1: RFC 3597 data is not valid rdata in CNAME record");
  EXPECT_EQ(error_of("a AXFR \\# 0"), "t.zone:1: type AXFR cannot appear in a zone");
  EXPECT_EQ(error_of(" A 10.0.0.1"),
            "t.zone:1: no previous owner for a line starting with whitespace");
  EXPECT_EQ(error_of("$GENERATE 1-2 a$ A 10.0.0.$"), R"(t.zone:1: unknown directive "$GENERATE")");
  EXPECT_EQ(error_of("$ORIGIN"), "t.zone:1: $ORIGIN takes one domain name");
  EXPECT_EQ(error_of("$ORIGIN a..b."), R"(t.zone:1: bad $ORIGIN "a..b." (empty label))");
  EXPECT_EQ(error_of("a TXT \"open\n"), "t.zone:1: unterminated quoted string");
  EXPECT_EQ(error_of("a A \x01\xff"), R"(t.zone:1: bad IPv4 address "\001\255" in A record)");
}

TEST(Zonefile, ErrorLines) {
  // Structural errors name the line of the token, or of the entry's start.
  EXPECT_EQ(error_of("a A 10.0.0.1 )\n"), "t.zone:1: unbalanced parenthesis");
  EXPECT_EQ(error_of("\n\na SOA ns1 host (\n 1 2 3 4 5\n"), "t.zone:3: unbalanced parenthesis");
  EXPECT_EQ(error_of("a TXT ( ( x ) )"), "t.zone:1: nested parenthesis");
  EXPECT_EQ(error_of("@ SOA ns1 host (\n 1 2 3\n 2024x 5 )"),
            R"(t.zone:3: bad expire "2024x" in SOA record)");
  EXPECT_EQ(error_of("@ SOA ns1 host (\n 20x 1 2 3 4 )"),
            R"(t.zone:2: bad serial "20x" in SOA record)");
  EXPECT_EQ(error_of("@ SOA ns1 host (\n 1 2 3\n 4 )"), "t.zone:3: missing minimum in SOA record");
}

TEST(Zonefile, ContinuesAfterErrors) {
  const Parsed p = parse(
      "a A 10.0.0.1\n"
      "b A 10.0.0.256\n"
      "c ( A\n"
      "  10.0.0.3 )\n"
      "d MX x y\n"
      "e A 10.0.0.5\n"
      "  ( TXT \"x\n"
      "f A 10.0.0.6\n");
  ASSERT_EQ(p.rrs.size(), 3u);
  EXPECT_EQ(name_to_text(p.rrs[0].owner), "a.ex.");
  EXPECT_EQ(name_to_text(p.rrs[1].owner), "c.ex.");
  EXPECT_EQ(name_to_text(p.rrs[2].owner), "e.ex.");
  EXPECT_EQ(p.errs,
            (std::vector<std::string>{R"(t.zone:2: bad IPv4 address "10.0.0.256" in A record)",
                                      R"(t.zone:5: bad preference "x" in MX record)",
                                      "t.zone:7: unterminated quoted string"}));
  // The open parenthesis of line 7 swallows the rest: reported once, at the entry's start.
}

TEST(Zonefile, ErrorCap) {
  std::string text;
  for (int i = 0; i < 150; ++i) text += "a A bad\n";
  text += "z A 10.0.0.1\n";
  const Parsed p = parse(text);
  ASSERT_EQ(p.errs.size(), MasterParser::kMaxErrors);
  EXPECT_EQ(p.errs[98], R"(t.zone:99: bad IPv4 address "bad" in A record)");
  EXPECT_EQ(p.errs[99], "t.zone:100: too many errors (100), stopped reading");
  EXPECT_TRUE(p.rrs.empty());
}

TEST(Zonefile, HostileBytes) {
  // NULs, CRLF line ends, a lone backslash at the end, high bytes: no crash, sane results.
  const std::string text("a\\000b A 10.0.0.1\r\nc TXT x\\\n\xff\xfe");
  const Parsed p = parse(text);
  ASSERT_GE(p.rrs.size(), 1u);
  EXPECT_EQ(p.rrs[0].owner, (Bytes{3, 'a', 0, 'b', 2, 'e', 'x', 0}));
  EXPECT_FALSE(p.errs.empty());
}

// --- the lab's zone ---

TEST(Zonefile, LabZone) {
  MasterParser p(Name{0}, 3600);
  ASSERT_TRUE(p.feed_file(NF_SOURCE_DIR "/config/zones/lab.example.zone")) << p.errors()[0].str();
  const auto& rrs = p.records();
  ASSERT_EQ(rrs.size(), 32u);
  for (const auto& r : rrs) {
    EXPECT_EQ(r.ttl, 300u);
    EXPECT_TRUE(is_subdomain(r.owner, nm("lab.example."))) << name_to_text(r.owner);
  }
  EXPECT_EQ(rrs[0].type, type::SOA);
  EXPECT_EQ(rrs[0].owner, nm("lab.example."));
  EXPECT_EQ(rrs[0].line, 6);
  Bytes soa = nm("ns1.lab.example.");
  const Name host = nm("hostmaster.lab.example.");
  soa.insert(soa.end(), host.begin(), host.end());
  soa.insert(soa.end(), {0x78, 0xc4, 0x04, 0x65, 0,    0,    0x0e, 0x10, 0, 0,
                         0x02, 0x58, 0,    0x09, 0x3a, 0x80, 0,    0,    0, 60});
  EXPECT_EQ(rrs[0].rdata, soa);
  EXPECT_EQ(rrs[1].type, type::NS);
  EXPECT_EQ(rrs[1].line, 12);
  EXPECT_EQ(rrs[4].type, type::CAA);
  EXPECT_EQ(rrs[4].rdata.size(), 2u + 5u + 15u);
  EXPECT_EQ(rrs[7].owner, nm("mail.lab.example."));  // the omitted owner
  EXPECT_EQ(rrs[7].type, type::AAAA);
  EXPECT_EQ(rrs[14].rdata, nm("www.example.org."));  // outside CNAME
  EXPECT_EQ(rrs[15].type, type::SRV);
  EXPECT_EQ(rrs[15].owner, nm("_http._tcp.lab.example."));
  EXPECT_EQ(rrs[17].owner, nm("*.wild.lab.example."));
  EXPECT_EQ(rrs[17].rdata, (Bytes{10, 20, 0, 99}));
  size_t big = 0;
  for (const auto& r : rrs) {
    if (r.owner == nm("big.lab.example.") && r.type == type::TXT) big += r.rdata.size();
  }
  EXPECT_EQ(big, 10u * 71u);
}

}  // namespace
}  // namespace nf::dns
