// Domain names without EAL: presentation <-> wire (escapes, origin, limits), case-insensitive
// comparison, subdomains, and the RR type/class mnemonics.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "nf/dns/name.h"
#include "nf/dns/rr.h"
#include "nf/dns/zonefile.h"

namespace nf::dns {
namespace {

using Bytes = std::vector<uint8_t>;

const Name kRoot{0};
const Name kEx{2, 'e', 'x', 0};  // "ex."

Name parse_ok(std::string_view text, const Name& origin = kRoot) {
  Name n;
  std::string err;
  EXPECT_TRUE(parse_name(text, origin, n, err)) << text << ": " << err;
  return n;
}

std::string parse_err(std::string_view text, const Name& origin = kRoot) {
  Name n{9, 9};
  std::string err;
  EXPECT_FALSE(parse_name(text, origin, n, err)) << text;
  EXPECT_EQ(n, (Name{9, 9})) << "out must be untouched on failure";
  return err;
}

TEST(DnsName, AbsoluteKeepsCase) {
  EXPECT_EQ(parse_ok("www.Lab.ex."), (Bytes{3, 'w', 'w', 'w', 3, 'L', 'a', 'b', 2, 'e', 'x', 0}));
  EXPECT_EQ(parse_ok("www.lab.ex.", kEx), parse_ok("www.lab.ex."));  // origin ignored
}

TEST(DnsName, RelativeOriginAndRoot) {
  EXPECT_EQ(parse_ok("a.b", kEx), (Bytes{1, 'a', 1, 'b', 2, 'e', 'x', 0}));
  EXPECT_EQ(parse_ok("a", kRoot), (Bytes{1, 'a', 0}));
  EXPECT_EQ(parse_ok("@", kEx), kEx);
  EXPECT_EQ(parse_ok(".", kEx), kRoot);
  EXPECT_EQ(parse_ok("*", kEx), (Bytes{1, '*', 2, 'e', 'x', 0}));
  EXPECT_EQ(parse_err("a", Name{}), "relative name with no origin");
  EXPECT_EQ(parse_err("@", Name{}), "\"@\" used with no origin");
  // The output may be the origin itself.
  Name o = kEx;
  std::string err;
  ASSERT_TRUE(parse_name("sub", o, o, err));
  EXPECT_EQ(o, (Bytes{3, 's', 'u', 'b', 2, 'e', 'x', 0}));
}

TEST(DnsName, Escapes) {
  EXPECT_EQ(parse_ok("a\\.b.ex."), (Bytes{3, 'a', '.', 'b', 2, 'e', 'x', 0}));
  EXPECT_EQ(parse_ok("\\065\\098c."), (Bytes{3, 'A', 'b', 'c', 0}));
  EXPECT_EQ(parse_ok("\\000\\255."), (Bytes{2, 0, 255, 0}));
  EXPECT_EQ(parse_ok("a\\ b."), (Bytes{3, 'a', ' ', 'b', 0}));
  EXPECT_EQ(parse_ok("a\\\\."), (Bytes{2, 'a', '\\', 0}));
  // An escaped final dot is part of the label: the name stays relative.
  EXPECT_EQ(parse_ok("a\\.", kEx), (Bytes{2, 'a', '.', 2, 'e', 'x', 0}));
  EXPECT_EQ(parse_err("a\\"), "bad escape (trailing backslash)");
  EXPECT_EQ(parse_err("\\25."), "bad escape (\\DDD needs three digits)");
  EXPECT_EQ(parse_err("\\2a5."), "bad escape (\\DDD needs three digits)");
  EXPECT_EQ(parse_err("\\256."), "bad escape (\\DDD above 255)");
}

TEST(DnsName, EmptyLabelsAndNames) {
  EXPECT_EQ(parse_err(""), "empty name");
  EXPECT_EQ(parse_err("a..b."), "empty label");
  EXPECT_EQ(parse_err(".a."), "empty label");
  EXPECT_EQ(parse_err(".."), "empty label");
}

TEST(DnsName, LabelAndNameLimits) {
  const std::string l63(63, 'a');
  const Name n = parse_ok(l63 + ".");
  ASSERT_EQ(n.size(), 65u);
  EXPECT_EQ(n[0], 63);
  EXPECT_EQ(parse_err(std::string(64, 'a') + "."), "label longer than 63 characters");
  // Three 63-octet labels and one of 61: 3 * 64 + 62 + 1 = 255 octets, the maximum.
  const std::string max = l63 + "." + l63 + "." + l63 + "." + std::string(61, 'b') + ".";
  EXPECT_EQ(parse_ok(max).size(), kMaxNameLen);
  EXPECT_EQ(parse_err(l63 + "." + l63 + "." + l63 + "." + std::string(62, 'b') + "."),
            "name longer than 255 bytes");
  // The limit counts the origin too.
  const Name origin = parse_ok(l63 + "." + l63 + "." + l63 + ".");
  EXPECT_EQ(parse_ok(std::string(61, 'b'), origin).size(), 255u);
  EXPECT_EQ(parse_err(std::string(62, 'b'), origin), "name longer than 255 bytes");
  // Very long text fails fast instead of building a huge buffer.
  EXPECT_EQ(parse_err(std::string(100000, 'a')), "label longer than 63 characters");
  EXPECT_EQ(parse_err(std::string(100000, '.')), "empty label");
}

TEST(DnsName, ToText) {
  EXPECT_EQ(name_to_text(kRoot), ".");
  EXPECT_EQ(name_to_text(Name{}), "");
  EXPECT_EQ(name_to_text(parse_ok("www.lab.example.")), "www.lab.example.");
  EXPECT_EQ(name_to_text(parse_ok("Mixed.Case.")), "Mixed.Case.");
  EXPECT_EQ(name_to_text(Name{3, 'a', '.', 'b', 0}), "a\\.b.");
  EXPECT_EQ(name_to_text(Name{4, ' ', 0, 0x7f, 0xff, 0}), "\\032\\000\\127\\255.");
  EXPECT_EQ(name_to_text(Name{7, '"', '(', ')', ';', '@', '$', '\\', 0}),
            "\\\"\\(\\)\\;\\@\\$\\\\.");
  EXPECT_EQ(name_to_text(parse_ok("*.wild.")), "*.wild.");
  // Malformed wire stops at the first bad label and never reads past the end.
  EXPECT_EQ(name_to_text(Name{1, 'a', 5, 'b'}), "a.");
  EXPECT_EQ(name_to_text(Name{1, 'a', 0xc0, 0x0c}), "a.");
}

TEST(DnsName, TextRoundTrip) {
  // Every octet value once, over two names: labels of 63 (0-62, 64-126) and {63, 127}.
  for (int half = 0; half < 2; ++half) {
    Name n;
    for (int l = 0; l < 2; ++l) {
      const int first = half * 128 + l * 64;
      n.push_back(63);
      for (int j = 0; j < 63; ++j) n.push_back(static_cast<uint8_t>(first + j));
    }
    n.insert(n.end(), {2, static_cast<uint8_t>(half * 128 + 63), 127, 0});
    EXPECT_EQ(parse_ok(name_to_text(n), kEx), n) << name_to_text(n);
  }
}

TEST(DnsName, CaseInsensitiveEqual) {
  Name a = parse_ok("WWW.Lab.Example.");
  const Name b = parse_ok("www.lab.example.");
  EXPECT_TRUE(name_equal(a, b));
  EXPECT_FALSE(name_equal(a, parse_ok("www.lab.example.com.")));
  EXPECT_FALSE(name_equal(parse_ok("ab.c."), parse_ok("a.bc.")));
  // Only ASCII letters fold: 0xC4 and 0xE4 (Latin-1 A/a umlaut) differ.
  EXPECT_FALSE(name_equal(Name{1, 0xc4, 0}, Name{1, 0xe4, 0}));
  EXPECT_FALSE(name_equal(Name{1, '@', 0}, Name{1, '`', 0}));
  to_lower(a);
  EXPECT_EQ(a, b);
  Name odd{1, 'A', 3, 'B'};  // truncated: lowers what is there, stays in bounds
  to_lower(odd);
  EXPECT_EQ(odd, (Name{1, 'a', 3, 'b'}));
}

TEST(DnsName, Subdomain) {
  const Name apex = parse_ok("lab.example.");
  EXPECT_TRUE(is_subdomain(apex, apex));
  EXPECT_TRUE(is_subdomain(parse_ok("WWW.LAB.example."), apex));
  EXPECT_TRUE(is_subdomain(parse_ok("a.b.c.lab.example."), apex));
  EXPECT_FALSE(is_subdomain(parse_ok("xlab.example."), apex));
  EXPECT_FALSE(is_subdomain(parse_ok("example."), apex));
  EXPECT_FALSE(is_subdomain(parse_ok("lab.example.com."), apex));
  EXPECT_TRUE(is_subdomain(apex, kRoot));
  EXPECT_TRUE(is_subdomain(kRoot, kRoot));
  EXPECT_FALSE(is_subdomain(Name{}, apex));
}

TEST(DnsName, LabelCountAndWireLength) {
  EXPECT_EQ(label_count(kRoot), 0);
  EXPECT_EQ(label_count(parse_ok("a.b.c.")), 3);
  EXPECT_EQ(label_count(Name{1, 'a', 9, 'b'}), 1);
  EXPECT_EQ(name_wire_length(kEx.data(), kEx.size()), 4u);
  const Bytes with_tail{2, 'e', 'x', 0, 0xff};
  EXPECT_EQ(name_wire_length(with_tail.data(), with_tail.size()), 4u);
  const Bytes pointer{1, 'a', 0xc0, 0x0c};
  EXPECT_EQ(name_wire_length(pointer.data(), pointer.size()), 0u);
  EXPECT_EQ(name_wire_length(kEx.data(), 3), 0u);
  const Name max = parse_ok(std::string(63, 'a') + "." + std::string(63, 'a') + "." +
                            std::string(63, 'a') + "." + std::string(61, 'a') + ".");
  EXPECT_EQ(name_wire_length(max.data(), max.size()), 255u);
  Bytes over(max.begin(), max.end() - 1);
  over.insert(over.end(), {1, 'a', 0});
  EXPECT_EQ(name_wire_length(over.data(), over.size()), 0u);
}

TEST(DnsName, TypeMnemonics) {
  EXPECT_EQ(type_to_text(type::A), "A");
  EXPECT_EQ(type_to_text(type::CAA), "CAA");
  EXPECT_EQ(type_to_text(65534), "TYPE65534");
  EXPECT_EQ(type_to_text(0), "TYPE0");
  EXPECT_EQ(type_from_text("aaaa"), type::AAAA);
  EXPECT_EQ(type_from_text("Srv"), type::SRV);
  EXPECT_EQ(type_from_text("TYPE65534"), uint16_t{65534});
  EXPECT_EQ(type_from_text("type1"), type::A);
  EXPECT_EQ(type_from_text("TYPE65536"), std::nullopt);
  EXPECT_EQ(type_from_text("TYPE"), std::nullopt);
  EXPECT_EQ(type_from_text("TYPE-1"), std::nullopt);
  EXPECT_EQ(type_from_text("TYPE000001"), std::nullopt);
  EXPECT_EQ(type_from_text("FOO"), std::nullopt);
  EXPECT_EQ(type_from_text(""), std::nullopt);
  EXPECT_EQ(class_from_text("in"), kClassIN);
  EXPECT_EQ(class_from_text("CLASS3"), kClassCH);
  EXPECT_EQ(class_to_text(kClassCH), "CH");
  EXPECT_EQ(class_to_text(77), "CLASS77");
  EXPECT_TRUE(is_meta_type(type::AXFR));
  EXPECT_TRUE(is_meta_type(type::OPT));
  EXPECT_FALSE(is_meta_type(type::CAA));
}

TEST(DnsName, TtlUnits) {
  EXPECT_EQ(parse_ttl("3600"), 3600u);
  EXPECT_EQ(parse_ttl("1h30m"), 5400u);
  EXPECT_EQ(parse_ttl("1W2d3H4M5s"), 604800u + 2 * 86400 + 3 * 3600 + 4 * 60 + 5);
  EXPECT_EQ(parse_ttl("1h30"), 3630u);
  EXPECT_EQ(parse_ttl("0"), 0u);
  EXPECT_EQ(parse_ttl("4294967295"), 4294967295u);
  EXPECT_EQ(parse_ttl("4294967296"), std::nullopt);
  EXPECT_EQ(parse_ttl("7102w"), std::nullopt);  // > 2^32-1 seconds
  EXPECT_EQ(parse_ttl(""), std::nullopt);
  EXPECT_EQ(parse_ttl("h"), std::nullopt);
  EXPECT_EQ(parse_ttl("1x"), std::nullopt);
  EXPECT_EQ(parse_ttl("1hh"), std::nullopt);
  EXPECT_EQ(parse_ttl("-1"), std::nullopt);
}

}  // namespace
}  // namespace nf::dns
