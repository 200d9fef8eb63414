#include <gtest/gtest.h>

#include <random>

#include "nf/net/addr.h"
#include "nf/net/checksum.h"

namespace nf {
namespace {

TEST(Addr, ParsesAndRejects) {
  EXPECT_EQ(parse_ipv4("10.20.0.11"), 0x0a14000bu);
  EXPECT_EQ(parse_ipv4("255.255.255.255"), 0xffffffffu);
  for (const char* bad :
       {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.4 ", "a.b.c.d", "1..2.3"})
    EXPECT_FALSE(parse_ipv4(bad)) << bad;
  auto p = parse_prefix("192.0.2.0/24");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->addr, 0xc0000200u);
  EXPECT_EQ(p->len, 24);
  EXPECT_FALSE(parse_prefix("192.0.2.1/24"));  // host bits
  EXPECT_FALSE(parse_prefix("192.0.2.0/33"));
  EXPECT_TRUE(parse_prefix("0.0.0.0/0"));
  auto ia = parse_ifaddr("10.10.0.1/24");
  ASSERT_TRUE(ia);
  EXPECT_EQ(ia->prefix().addr, 0x0a0a0000u);
  EXPECT_EQ(ia->prefix().broadcast(), 0x0a0a00ffu);
  auto m = parse_mac("02:00:0a:ff:10:01");
  ASSERT_TRUE(m);
  EXPECT_EQ(format_mac(*m), "02:00:0a:ff:10:01");
  EXPECT_FALSE(parse_mac("02:00:0a:ff:10"));
  EXPECT_FALSE(parse_mac("02-00-0a-ff-10-01"));
  EXPECT_EQ(MacAddr::from_u64(m->to_u64()), *m);
}

TEST(Addr, Overlap) {
  Prefix a{0x0a000000, 8}, b{0x0a0a0000, 24}, c{0x0b000000, 8};
  EXPECT_TRUE(a.overlaps(b));
  EXPECT_TRUE(b.overlaps(a));
  EXPECT_FALSE(a.overlaps(c));
  EXPECT_TRUE(Prefix{}.overlaps(c));  // default route overlaps everything
}

// The incremental TTL update must equal a full recomputation for every header.
TEST(Checksum, TtlDecrementMatchesRecompute) {
  std::mt19937 rng(7);
  for (int i = 0; i < 200000; ++i) {
    alignas(8) uint8_t buf[20];
    for (auto& x : buf) x = static_cast<uint8_t>(rng());
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(buf);
    ip->version_ihl = 0x45;
    ip->time_to_live = static_cast<uint8_t>(2 + rng() % 254);
    ip->hdr_checksum = 0;
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    ASSERT_TRUE(ipv4_cksum_ok(ip));
    ipv4_dec_ttl(ip);
    ASSERT_TRUE(ipv4_cksum_ok(ip)) << "iteration " << i;
  }
}

// The fast option-less path of ipv4_cksum_ok agrees with the generic sum on any bytes.
TEST(Checksum, FastVerifyAgreesWithGeneric) {
  std::mt19937 rng(11);
  for (int i = 0; i < 200000; ++i) {
    alignas(8) uint8_t buf[20];
    for (auto& x : buf) x = static_cast<uint8_t>(rng());
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(buf);
    ip->version_ihl = 0x45;
    if (i % 2) {  // half valid, half random checksums
      ip->hdr_checksum = 0;
      ip->hdr_checksum = rte_ipv4_cksum(ip);
    }
    ASSERT_EQ(ipv4_cksum_ok(ip), rte_raw_cksum(ip, 20) == 0xffff) << i;
  }
}

}  // namespace
}  // namespace nf
