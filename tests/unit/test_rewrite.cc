// Packet rewrites of the load balancer and NAT (nf/lb/rewrite.h). Every packet is built byte by
// byte here, with checksums from the reference below (big-endian words, one byte at a time,
// written without the code under test), and most cases compare the rewritten packet with the
// packet built directly with the new values: that checks every changed field, every unchanged
// byte and the exact checksum values at once. Edge values of one's-complement arithmetic
// (a checksum of 0x0000 before or after, RFC 1624 section 3) are forced by searching a payload
// word or the IP identifier. Truncations are run on buffers of exactly the truncated size, so
// the ASan build catches a read past the view.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "nf/lb/rewrite.h"

namespace nf::lb {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint32_t kClient = 0xc0000207;  // 192.0.2.7
constexpr uint32_t kVip = 0xcb007101;     // 203.0.113.1
constexpr uint32_t kReal = 0x0a010005;    // 10.1.0.5
constexpr uint32_t kLocal = 0x0a0100fe;   // 10.1.0.254, the LB's full-NAT source
constexpr uint32_t kRouter = 0x0a0200fd;  // 10.2.0.253, sends the ICMP errors

// ---- reference arithmetic --------------------------------------------------------------------

uint16_t get16(const Bytes& b, size_t off) {
  return static_cast<uint16_t>(b[off] << 8 | b[off + 1]);
}
uint32_t get32(const Bytes& b, size_t off) {
  return static_cast<uint32_t>(get16(b, off)) << 16 | get16(b, off + 2);
}
void put16(Bytes& b, size_t off, uint16_t v) {
  b[off] = static_cast<uint8_t>(v >> 8);
  b[off + 1] = static_cast<uint8_t>(v);
}
void put32(Bytes& b, size_t off, uint32_t v) {
  put16(b, off, static_cast<uint16_t>(v >> 16));
  put16(b, off + 2, static_cast<uint16_t>(v));
}

// Sum of big-endian 16-bit words; an odd last byte is the high byte of a zero-padded word.
uint64_t ref_sum(const uint8_t* p, size_t n, uint64_t acc = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) acc += static_cast<uint64_t>(p[i]) << 8 | p[i + 1];
  if (n % 2 == 1) acc += static_cast<uint64_t>(p[n - 1]) << 8;
  return acc;
}
uint16_t ref_finish(uint64_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(~acc);
}
size_t ihl_of(const Bytes& p, size_t off = 0) {
  return (p[off] & 0xfu) * 4u;
}

// The IPv4 header checksum of the header at `off`, recomputed with its field taken as zero.
uint16_t ref_ip_cksum(const Bytes& p, size_t off = 0) {
  Bytes h(p.begin() + off, p.begin() + off + ihl_of(p, off));
  put16(h, 10, 0);
  return ref_finish(ref_sum(h.data(), h.size()));
}

size_t l4_cksum_off(uint8_t proto) {
  return proto == kProtoTcp ? 16 : proto == kProtoUdp ? 6 : 2;
}

// The L4 checksum of the whole (unfragmented) datagram at `off`, over `tlen` bytes of it:
// TCP and UDP with the pseudo-header, ICMP without; a computed UDP zero is 0xffff (RFC 768).
uint16_t ref_l4_cksum(const Bytes& p, size_t off = 0, size_t tlen = 0) {
  if (tlen == 0) tlen = get16(p, off + 2);
  const size_t ihl = ihl_of(p, off);
  const uint8_t proto = p[off + 9];
  Bytes seg(p.begin() + off + ihl, p.begin() + off + tlen);
  put16(seg, l4_cksum_off(proto), 0);
  uint64_t acc = 0;
  if (proto != kProtoIcmp) {
    acc = ref_sum(&p[off + 12], 8);
    acc += proto;
    acc += seg.size();
  }
  const uint16_t c = ref_finish(ref_sum(seg.data(), seg.size(), acc));
  return proto == kProtoUdp && c == 0 ? 0xffff : c;
}

// A checksum is valid when everything it covers, itself included, sums to 0xffff: true for
// either representation of zero, which is what a receiver checks.
bool ip_sum_valid(const Bytes& p, size_t off = 0) {
  uint64_t acc = ref_sum(&p[off], ihl_of(p, off));
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return acc == 0xffff;
}
bool l4_sum_valid(const Bytes& p) {
  const size_t ihl = ihl_of(p), tlen = get16(p, 2);
  uint64_t acc = 0;
  if (p[9] != kProtoIcmp) acc = ref_sum(&p[12], 8) + p[9] + (tlen - ihl);
  acc = ref_sum(&p[ihl], tlen - ihl, acc);
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return acc == 0xffff;
}

// Both checksums of an unfragmented packet equal the full recomputation.
::testing::AssertionResult checksums_exact(const Bytes& p) {
  if (get16(p, 10) != ref_ip_cksum(p))
    return ::testing::AssertionFailure()
           << "IP checksum " << std::hex << get16(p, 10) << " want " << ref_ip_cksum(p);
  const uint8_t proto = p[9];
  const size_t co = ihl_of(p) + l4_cksum_off(proto);
  if (proto == kProtoUdp && get16(p, co) == 0) return ::testing::AssertionSuccess();
  if (get16(p, co) != ref_l4_cksum(p))
    return ::testing::AssertionFailure()
           << "L4 checksum " << std::hex << get16(p, co) << " want " << ref_l4_cksum(p);
  return ::testing::AssertionSuccess();
}

// ---- packets ---------------------------------------------------------------------------------

struct Spec {
  uint8_t proto = kProtoTcp;
  uint32_t src = kClient, dst = kVip;
  uint16_t sport = 40000, dport = 80;  // ICMP echo: sport is the identifier
  uint8_t tos = 0;
  uint16_t ip_id = 0x1234;
  uint16_t frag = 0;  // flags and offset, host order
  uint8_t ttl = 64;
  uint8_t ip_opts = 0;  // bytes of IP options (NOPs), a multiple of 4
  Bytes tcp_opts;       // raw TCP option bytes, padded with EOL to a multiple of 4
  uint8_t tcp_flags = 0x18;
  uint8_t icmp_type = 8;
  Bytes payload;
  bool udp_no_cksum = false;
};

Bytes build(const Spec& s) {
  Bytes l4;
  switch (s.proto) {
    case kProtoTcp: {
      const size_t opt = (s.tcp_opts.size() + 3) / 4 * 4;
      l4.assign(20 + opt, 0);
      put16(l4, 0, s.sport);
      put16(l4, 2, s.dport);
      put32(l4, 4, 0x01020304);
      put32(l4, 8, 0xa0b0c0d0);
      l4[12] = static_cast<uint8_t>((20 + opt) / 4 << 4);
      l4[13] = s.tcp_flags;
      put16(l4, 14, 64240);
      std::copy(s.tcp_opts.begin(), s.tcp_opts.end(), l4.begin() + 20);
      break;
    }
    case kProtoUdp:
      l4.assign(8, 0);
      put16(l4, 0, s.sport);
      put16(l4, 2, s.dport);
      put16(l4, 4, static_cast<uint16_t>(8 + s.payload.size()));
      break;
    default:  // ICMP echo
      l4.assign(8, 0);
      l4[0] = s.icmp_type;
      put16(l4, 4, s.sport);
      put16(l4, 6, 7);
      break;
  }
  l4.insert(l4.end(), s.payload.begin(), s.payload.end());
  const size_t ihl = 20 + s.ip_opts;
  Bytes p(ihl, 0);
  p[0] = static_cast<uint8_t>(0x40 | ihl / 4);
  p[1] = s.tos;
  put16(p, 2, static_cast<uint16_t>(ihl + l4.size()));
  put16(p, 4, s.ip_id);
  put16(p, 6, s.frag);
  p[8] = s.ttl;
  p[9] = s.proto;
  put32(p, 12, s.src);
  put32(p, 16, s.dst);
  std::fill(p.begin() + 20, p.end(), 1);  // NOP options
  p.insert(p.end(), l4.begin(), l4.end());
  const size_t co = ihl + l4_cksum_off(s.proto);
  put16(p, co, s.proto == kProtoUdp && s.udp_no_cksum ? 0 : ref_l4_cksum(p));
  put16(p, 10, ref_ip_cksum(p));
  return p;
}

Bytes fill(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

// Sets payload bytes [0, 2) to the word that makes the L4 checksum of build(s) equal `want`.
bool force_l4_cksum(Spec& s, uint16_t want) {
  for (uint32_t w = 0; w <= 0xffff; ++w) {
    s.payload[0] = static_cast<uint8_t>(w >> 8);
    s.payload[1] = static_cast<uint8_t>(w);
    const Bytes p = build(s);
    if (get16(p, ihl_of(p) + l4_cksum_off(s.proto)) == want) return true;
  }
  return false;
}
// The same with the IP identifier for the header checksum.
bool force_ip_cksum(Spec& s, uint16_t want) {
  for (uint32_t id = 0; id <= 0xffff; ++id) {
    s.ip_id = static_cast<uint16_t>(id);
    if (get16(build(s), 10) == want) return true;
  }
  return false;
}

// ---- 1. one's-complement primitives ----------------------------------------------------------

// RFC 1624 section 3's example: the sum of the other header words is 0xcd7a and a word
// changes from 0x5555 to 0x3285, so the recomputed checksum is ~0xffff = 0x0000 (RFC 1141's
// update would give 0xffff).
TEST(RewriteChecksum, Rfc1624Example) {
  EXPECT_EQ(ref_finish(0xcd7a + 0x5555), 0xdd2f);
  EXPECT_EQ(ref_finish(0xcd7a + 0x3285), 0x0000);
  EXPECT_EQ(csum::replace16(0xdd2f, 0x5555, 0x3285), 0x0000);
  EXPECT_EQ(csum::replace16(0x0000, 0x3285, 0x5555), 0xdd2f);
  // A word that does not change leaves a checksum that is not 0xffff unchanged.
  EXPECT_EQ(csum::replace16(0x1234, 0xabcd, 0xabcd), 0x1234);
  EXPECT_EQ(csum::fold(0x1fffeull), 0xffff);
  EXPECT_EQ(csum::fold(0xffffffffffffull), 0xffff);
}

TEST(RewriteChecksum, HeaderFromScratchMatchesReference) {
  std::mt19937 rng(11);
  for (int i = 0; i < 1000; ++i) {
    Bytes h = fill(20, rng());
    h[0] = 0x45;
    put16(h, 10, 0);
    const uint16_t c = csum::ipv4_hdr20(h.data());
    uint8_t le[2];
    std::memcpy(le, &c, 2);  // stored as it sits in memory
    ASSERT_EQ(static_cast<uint16_t>(le[0] << 8 | le[1]), ref_ip_cksum(h)) << i;
  }
}

// ---- 2. NAT ----------------------------------------------------------------------------------

TEST(RewriteNat, TcpDestination) {
  Spec s;
  s.tcp_opts = {1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2};  // NOP NOP timestamps
  s.payload = fill(333, 1);                            // odd length
  Bytes p = build(s);
  const Bytes before = p;
  ASSERT_EQ(nat_dst(p.data(), static_cast<uint32_t>(p.size()), kReal, 8080), RewriteStatus::kOk);
  EXPECT_EQ(get32(p, 16), kReal);
  EXPECT_EQ(get16(p, 22), 8080);
  s.dst = kReal;
  s.dport = 8080;
  EXPECT_EQ(p, build(s));
  EXPECT_TRUE(checksums_exact(p));
  EXPECT_EQ(get32(p, 12), kClient);
  EXPECT_EQ(get16(p, 20), 40000);
  EXPECT_TRUE(std::equal(p.begin() + 24, p.begin() + 36, before.begin() + 24));  // seq .. win
  EXPECT_NE(get16(p, 36), get16(before, 36));                                    // TCP checksum
  EXPECT_NE(get16(p, 10), get16(before, 10));                                    // IP checksum
}

TEST(RewriteNat, TcpSourceWithIpOptions) {
  Spec s;
  s.ip_opts = 8;
  s.payload = fill(100, 2);
  Bytes p = build(s);
  ASSERT_EQ(nat_src(p.data(), static_cast<uint32_t>(p.size()), kLocal, 61000), RewriteStatus::kOk);
  EXPECT_EQ(get32(p, 12), kLocal);
  EXPECT_EQ(get16(p, 28), 61000);  // the L4 header starts after the 28-byte IP header
  EXPECT_EQ(get16(p, 30), 80);
  s.src = kLocal;
  s.sport = 61000;
  EXPECT_EQ(p, build(s));
  EXPECT_TRUE(checksums_exact(p));
}

TEST(RewriteNat, UdpBothDirectionsOddLength) {
  for (size_t n : {0u, 1u, 7u, 512u, 1471u}) {
    Spec s;
    s.proto = kProtoUdp;
    s.sport = 5353;
    s.dport = 53;
    s.payload = fill(n, static_cast<uint32_t>(n));
    Bytes p = build(s);
    ASSERT_EQ(nat_dst(p.data(), static_cast<uint32_t>(p.size()), kReal, 5300), RewriteStatus::kOk);
    ASSERT_EQ(nat_src(p.data(), static_cast<uint32_t>(p.size()), kLocal, 1024), RewriteStatus::kOk);
    EXPECT_EQ(get32(p, 12), kLocal);
    EXPECT_EQ(get32(p, 16), kReal);
    EXPECT_EQ(get16(p, 20), 1024);
    EXPECT_EQ(get16(p, 22), 5300);
    s.src = kLocal;
    s.dst = kReal;
    s.sport = 1024;
    s.dport = 5300;
    EXPECT_EQ(p, build(s)) << n;
    EXPECT_TRUE(checksums_exact(p)) << n;
  }
}

// RFC 768: zero means the sender computed none; it must stay zero, not become a wrong sum.
TEST(RewriteNat, UdpZeroChecksumStaysZero) {
  Spec s;
  s.proto = kProtoUdp;
  s.udp_no_cksum = true;
  s.payload = fill(21, 3);
  Bytes p = build(s);
  ASSERT_EQ(get16(p, 26), 0);
  ASSERT_EQ(nat_dst(p.data(), static_cast<uint32_t>(p.size()), kReal, 53), RewriteStatus::kOk);
  EXPECT_EQ(get16(p, 26), 0);
  EXPECT_EQ(get32(p, 16), kReal);
  EXPECT_EQ(get16(p, 10), ref_ip_cksum(p));
  s.dst = kReal;
  s.dport = 53;
  EXPECT_EQ(p, build(s));
}

// A UDP datagram whose new checksum computes to zero must carry 0xffff (RFC 768).
TEST(RewriteNat, UdpComputedZeroIsSentAsFfff) {
  Spec after;
  after.proto = kProtoUdp;
  after.dst = kReal;
  after.dport = 8053;
  after.payload = fill(30, 4);
  ASSERT_TRUE(force_l4_cksum(after, 0xffff));  // only a computed zero is stored as 0xffff
  Spec before = after;
  before.dst = kVip;
  before.dport = 53;
  Bytes p = build(before);
  ASSERT_NE(get16(p, 26), 0xffff);
  ASSERT_EQ(nat_dst(p.data(), static_cast<uint32_t>(p.size()), kReal, 8053), RewriteStatus::kOk);
  EXPECT_EQ(get16(p, 26), 0xffff);
  EXPECT_EQ(p, build(after));
  EXPECT_TRUE(l4_sum_valid(p));
}

// TCP checksums at the edges of one's-complement arithmetic, before and after the rewrite.
TEST(RewriteNat, TcpChecksumZeroEdges) {
  // After: the full recomputation of the new packet gives 0x0000.
  Spec after;
  after.dst = kReal;
  after.dport = 8080;
  after.payload = fill(41, 5);
  ASSERT_TRUE(force_l4_cksum(after, 0x0000));
  Spec before = after;
  before.dst = kVip;
  before.dport = 80;
  Bytes p = build(before);
  ASSERT_NE(get16(p, 36), 0);
  ASSERT_EQ(nat_dst(p.data(), static_cast<uint32_t>(p.size()), kReal, 8080), RewriteStatus::kOk);
  EXPECT_EQ(get16(p, 36), 0x0000);
  EXPECT_EQ(p, build(after));

  // Before: the original carries 0x0000 and the rewrite must not turn it into garbage.
  Spec b2 = before;
  ASSERT_TRUE(force_l4_cksum(b2, 0x0000));
  p = build(b2);
  ASSERT_EQ(get16(p, 36), 0);
  ASSERT_EQ(nat_dst(p.data(), static_cast<uint32_t>(p.size()), kReal, 8080), RewriteStatus::kOk);
  Spec a2 = b2;
  a2.dst = kReal;
  a2.dport = 8080;
  EXPECT_EQ(p, build(a2));
  EXPECT_TRUE(checksums_exact(p));

  // A sender that wrote zero as 0xffff (valid, the other representation): still valid after.
  p = build(b2);
  put16(p, 36, 0xffff);
  ASSERT_TRUE(l4_sum_valid(p));
  ASSERT_EQ(nat_dst(p.data(), static_cast<uint32_t>(p.size()), kReal, 8080), RewriteStatus::kOk);
  EXPECT_TRUE(l4_sum_valid(p));
  EXPECT_EQ(get16(p, 36), ref_l4_cksum(p));
}

TEST(RewriteNat, IpChecksumZeroEdges) {
  Spec after;
  after.proto = kProtoUdp;
  after.dst = kReal;
  after.payload = fill(10, 6);
  ASSERT_TRUE(force_ip_cksum(after, 0x0000));
  Spec before = after;
  before.dst = kVip;
  Bytes p = build(before);
  ASSERT_EQ(nat_dst(p.data(), static_cast<uint32_t>(p.size()), kReal, before.dport),
            RewriteStatus::kOk);
  EXPECT_EQ(get16(p, 10), 0x0000);
  EXPECT_EQ(p, build(after));
  // And from a header checksum of 0x0000 to the new one.
  p = build(after);
  ASSERT_EQ(nat_dst(p.data(), static_cast<uint32_t>(p.size()), kVip, before.dport),
            RewriteStatus::kOk);
  EXPECT_EQ(p, build(before));
  EXPECT_TRUE(checksums_exact(p));
}

TEST(RewriteNat, IcmpEchoIdentifier) {
  Spec s;
  s.proto = kProtoIcmp;
  s.sport = 0x4242;  // identifier
  s.payload = fill(56, 7);
  Bytes p = build(s);
  // Request: client -> VIP becomes LB -> real with a new identifier (full NAT).
  ASSERT_EQ(nat_icmp_id(p.data(), static_cast<uint32_t>(p.size()), Side::kSrc, kLocal, 0x0101),
            RewriteStatus::kOk);
  ASSERT_EQ(nat_dst(p.data(), static_cast<uint32_t>(p.size()), kReal, 0x0101), RewriteStatus::kOk);
  EXPECT_EQ(get32(p, 12), kLocal);
  EXPECT_EQ(get32(p, 16), kReal);
  EXPECT_EQ(get16(p, 24), 0x0101);
  EXPECT_EQ(get16(p, 26), 7);  // sequence untouched
  s.src = kLocal;
  s.dst = kReal;
  s.sport = 0x0101;
  EXPECT_EQ(p, build(s));
  EXPECT_TRUE(checksums_exact(p));
  // Echo reply back: real -> LB becomes VIP -> client with the client's identifier.
  Spec r;
  r.proto = kProtoIcmp;
  r.icmp_type = 0;
  r.src = kReal;
  r.dst = kLocal;
  r.sport = 0x0101;
  r.payload = fill(57, 8);
  p = build(r);
  ASSERT_EQ(nat_src(p.data(), static_cast<uint32_t>(p.size()), kVip, 0x0101), RewriteStatus::kOk);
  ASSERT_EQ(nat_icmp_id(p.data(), static_cast<uint32_t>(p.size()), Side::kDst, kClient, 0x4242),
            RewriteStatus::kOk);
  r.src = kVip;
  r.dst = kClient;
  r.sport = 0x4242;
  EXPECT_EQ(p, build(r));
  EXPECT_TRUE(checksums_exact(p));
}

TEST(RewriteNat, RejectsAndLeavesPacketUnchanged) {
  struct Case {
    const char* what;
    Bytes p;
    size_t len;
    RewriteStatus want;
  };
  std::vector<Case> cases;
  Spec tcp;
  tcp.payload = fill(10, 9);
  const Bytes good = build(tcp);
  cases.push_back({"shorter than an IP header", good, 19, RewriteStatus::kTruncated});
  cases.push_back({"TCP header cut at its checksum", good, 20 + 17, RewriteStatus::kTruncated});
  Bytes b = good;
  b[0] = 0x65;
  cases.push_back({"version 6", b, b.size(), RewriteStatus::kMalformed});
  b = good;
  b[0] = 0x44;
  cases.push_back({"IHL 4", b, b.size(), RewriteStatus::kMalformed});
  b = good;
  b[0] = 0x4f;
  cases.push_back({"IHL past the view", b, 40, RewriteStatus::kTruncated});
  b = good;
  b[9] = 47;
  cases.push_back({"GRE", b, b.size(), RewriteStatus::kUnsupported});
  Spec udp;
  udp.proto = kProtoUdp;
  cases.push_back({"UDP header cut", build(udp), 27, RewriteStatus::kTruncated});
  Spec err;
  err.proto = kProtoIcmp;
  err.icmp_type = 3;
  cases.push_back({"ICMP error", build(err), build(err).size(), RewriteStatus::kUnsupported});
  Spec tiny = tcp;  // RFC 1858: a first fragment carrying only 8 bytes of TCP
  tiny.frag = 0x2000;
  cases.push_back({"tiny first fragment", build(tiny), 28, RewriteStatus::kTruncated});
  for (const Case& c : cases) {
    std::unique_ptr<uint8_t[]> buf(new uint8_t[c.len]);
    std::memcpy(buf.get(), c.p.data(), c.len);
    EXPECT_EQ(nat_dst(buf.get(), static_cast<uint32_t>(c.len), kReal, 1), c.want) << c.what;
    EXPECT_EQ(nat_src(buf.get(), static_cast<uint32_t>(c.len), kReal, 1), c.want) << c.what;
    EXPECT_EQ(std::memcmp(buf.get(), c.p.data(), c.len), 0) << c.what;
  }
  Bytes p = good;
  EXPECT_EQ(nat_icmp_id(p.data(), static_cast<uint32_t>(p.size()), Side::kDst, kReal, 1),
            RewriteStatus::kUnsupported);
  EXPECT_EQ(p, good);
  EXPECT_EQ(nat_dst(nullptr, 0, kReal, 1), RewriteStatus::kTruncated);
}

// A fragmented UDP datagram: the first fragment gets address, port and L4 checksum, the later
// one address and IP checksum only; reassembled, the datagram must be exactly the datagram
// built with the new destination.
TEST(RewriteNat, FragmentsReassembleToTranslatedDatagram) {
  for (uint8_t proto : {kProtoUdp, kProtoTcp}) {
    Spec s;
    s.proto = proto;
    s.payload = fill(101, 10);
    const Bytes whole = build(s);
    const size_t first_l4 = 32;  // a multiple of 8
    auto frag = [&](size_t from, size_t n, bool more) {
      Bytes f(whole.begin(), whole.begin() + 20);
      f.insert(f.end(), whole.begin() + 20 + from, whole.begin() + 20 + from + n);
      put16(f, 2, static_cast<uint16_t>(f.size()));
      put16(f, 6, static_cast<uint16_t>((more ? 0x2000 : 0) | from / 8));
      put16(f, 10, ref_ip_cksum(f));
      return f;
    };
    Bytes f1 = frag(0, first_l4, true);
    Bytes f2 = frag(first_l4, whole.size() - 20 - first_l4, false);
    const Bytes f2_before = f2;
    ASSERT_EQ(nat_dst(f1.data(), static_cast<uint32_t>(f1.size()), kReal, 8080),
              RewriteStatus::kOk);
    ASSERT_EQ(nat_dst(f2.data(), static_cast<uint32_t>(f2.size()), kReal, 8080),
              RewriteStatus::kAddrOnly);
    EXPECT_EQ(get32(f2, 16), kReal);
    EXPECT_EQ(get16(f2, 10), ref_ip_cksum(f2));
    EXPECT_EQ(get16(f1, 10), ref_ip_cksum(f1));
    EXPECT_TRUE(std::equal(f2.begin() + 20, f2.end(), f2_before.begin() + 20));  // payload
    Bytes re(f1.begin(), f1.begin() + 20);
    re.insert(re.end(), f1.begin() + 20, f1.end());
    re.insert(re.end(), f2.begin() + 20, f2.end());
    Spec t = s;
    t.dst = kReal;
    t.dport = 8080;
    const Bytes want = build(t);
    EXPECT_TRUE(std::equal(re.begin() + 20, re.end(), want.begin() + 20, want.end()))
        << "proto " << int(proto);
    EXPECT_EQ(get16(re, 20 + l4_cksum_off(proto)), ref_l4_cksum(want));
  }
}

// ---- 3. DSCP ---------------------------------------------------------------------------------

TEST(RewriteDscp, EveryCodepointKeepsEcn) {
  for (int ecn = 0; ecn < 4; ++ecn) {
    for (int dscp = 0; dscp < 64; ++dscp) {
      Spec s;
      s.proto = kProtoUdp;
      s.tos = static_cast<uint8_t>(0xb8 | ecn);  // EF plus the ECN field
      s.ip_opts = dscp % 2 ? 4 : 0;
      Bytes p = build(s);
      set_dscp(p.data(), static_cast<uint8_t>(dscp));
      ASSERT_EQ(p[1], dscp << 2 | ecn);
      ASSERT_EQ(get16(p, 10), ref_ip_cksum(p));
      s.tos = p[1];
      ASSERT_EQ(p, build(s));
    }
  }
}

// ---- 4. IP in IP -----------------------------------------------------------------------------

Bytes encapsulated(const Bytes& inner) {
  Bytes b(20 + inner.size(), 0xaa);
  std::copy(inner.begin(), inner.end(), b.begin() + 20);
  return b;
}

TEST(RewriteIpip, OuterHeaderFields) {
  // DF alone, nothing, a first fragment (MF), a later fragment: only DF reaches the outer.
  for (uint16_t frag : {0x4000, 0x0000, 0x2000, 0x2005}) {
    const bool df = frag == 0x4000;
    Spec s;
    s.tos = 0x2a | 0x01;  // AF11 with ECT(1)
    s.frag = frag;
    s.ttl = 3;
    s.payload = fill(1460, 11);
    const Bytes inner = build(s);
    ASSERT_EQ(inner.size(), 1500u);
    Bytes b = encapsulated(inner);
    IpipOuter o;
    o.src = 0x0a0000fe;
    o.dst = kReal;
    o.id = 0xbeef;
    o.ttl = 64;
    // 1520 > a 1500 MTU: reporting the length is all; the stage decides (frag-needed if DF).
    ASSERT_EQ(encap_ipip(b.data(), static_cast<uint32_t>(inner.size()), o), 1520u);
    EXPECT_EQ(b[0], 0x45);
    EXPECT_EQ(b[1], s.tos);
    EXPECT_EQ(get16(b, 2), 1520);
    EXPECT_EQ(get16(b, 4), 0xbeef);
    EXPECT_EQ(get16(b, 6), df ? 0x4000 : 0);
    EXPECT_EQ(b[8], 64);
    EXPECT_EQ(b[9], 4);
    EXPECT_EQ(get32(b, 12), 0x0a0000feu);
    EXPECT_EQ(get32(b, 16), kReal);
    EXPECT_EQ(get16(b, 10), ref_ip_cksum(b));
    EXPECT_TRUE(std::equal(b.begin() + 20, b.end(), inner.begin(), inner.end()));
  }
}

TEST(RewriteIpip, DscpOverrideKeepsInnerEcn) {
  Spec s;
  s.tos = 0x03;  // CE
  const Bytes inner = build(s);
  Bytes b = encapsulated(inner);
  IpipOuter o;
  o.dst = kReal;
  o.dscp = 46;
  ASSERT_EQ(encap_ipip(b.data(), static_cast<uint32_t>(inner.size()), o), inner.size() + 20);
  EXPECT_EQ(b[1], 46 << 2 | 3);
  EXPECT_EQ(get16(b, 10), ref_ip_cksum(b));
}

TEST(RewriteIpip, RejectsWhatIsNotAnIpv4Datagram) {
  const Bytes inner = build(Spec{});
  Bytes b = encapsulated(inner);
  const Bytes before = b;
  IpipOuter o;
  EXPECT_EQ(encap_ipip(b.data(), 19, o), 0u);
  EXPECT_EQ(encap_ipip(b.data(), 65516, o), 0u);  // 65536 with the outer header
  b[20] = 0x60;
  EXPECT_EQ(encap_ipip(b.data(), static_cast<uint32_t>(inner.size()), o), 0u);
  b[20] = before[20];
  EXPECT_EQ(b, before);
}

TEST(RewriteIpip, DecapRoundTripAndRejects) {
  Spec s;
  s.payload = fill(77, 12);
  const Bytes inner = build(s);
  IpipOuter o;
  o.src = kLocal;
  o.dst = kReal;
  o.id = 7;
  Bytes good = encapsulated(inner);
  ASSERT_EQ(encap_ipip(good.data(), static_cast<uint32_t>(inner.size()), o), good.size());
  {
    Bytes b = good;
    const auto v = decap_ipip(b.data(), static_cast<uint32_t>(b.size()));
    ASSERT_EQ(v.data(), b.data() + 20);
    ASSERT_EQ(v.size(), inner.size());
    EXPECT_TRUE(std::equal(v.begin(), v.end(), inner.begin(), inner.end()));
  }
  {  // an outer header with options and Ethernet-style trailing padding
    Bytes b(24, 1);
    b.insert(b.end(), inner.begin(), inner.end());
    std::copy(good.begin(), good.begin() + 20, b.begin());
    b[0] = 0x46;
    put16(b, 2, static_cast<uint16_t>(b.size()));
    put16(b, 10, ref_ip_cksum(b));
    b.resize(b.size() + 3, 0);
    const auto v = decap_ipip(b.data(), static_cast<uint32_t>(b.size()));
    EXPECT_EQ(v.data(), b.data() + 24);
    EXPECT_EQ(v.size(), inner.size());
  }
  enum Fix { kNone, kOuter, kInner };
  struct Bad {
    const char* what;
    size_t off;
    uint8_t val;
    Fix fix;  // which header checksum to make right again, so only `what` is wrong
  };
  const Bad bad[] = {
      {"not protocol 4", 9, 6, kOuter},
      {"outer checksum", 10, 0x00, kNone},
      {"outer MF", 6, 0x20, kOuter},
      {"outer offset", 7, 0x01, kOuter},
      {"outer length > view", 2, 0x7f, kOuter},
      {"outer IHL 4", 0, 0x44, kOuter},
      {"inner version", 20, 0x65, kInner},
      {"inner IHL 4", 20, 0x44, kInner},
      {"inner length", 22, 0x01, kInner},
      {"inner checksum", 30, 0x00, kNone},
  };
  for (const Bad& x : bad) {
    Bytes b = good;
    ASSERT_NE(b[x.off], x.val) << x.what;
    b[x.off] = x.val;
    if (x.fix == kOuter) put16(b, 10, ref_ip_cksum(b));
    if (x.fix == kInner) {  // over the 20 bytes the inner header has, whatever its IHL says
      put16(b, 30, 0);
      put16(b, 30, ref_finish(ref_sum(&b[20], 20)));
    }
    EXPECT_TRUE(decap_ipip(b.data(), static_cast<uint32_t>(b.size())).empty()) << x.what;
  }
  for (size_t n = 0; n < good.size(); ++n) {
    std::unique_ptr<uint8_t[]> buf(new uint8_t[n]);
    std::memcpy(buf.get(), good.data(), n);
    EXPECT_TRUE(decap_ipip(buf.get(), static_cast<uint32_t>(n)).empty()) << n;
  }
}

// ---- 5. MSS clamping -------------------------------------------------------------------------

struct MssCase {
  const char* what;
  Bytes opts;
  Bytes want_opts;  // empty: unchanged
  uint8_t flags = 0x02;
};

TEST(RewriteMss, OptionLayouts) {
  const std::vector<MssCase> cases = {
      {"MSS first", {2, 4, 0x05, 0xb4, 1, 3, 3, 7}, {2, 4, 0x05, 0x78, 1, 3, 3, 7}},
      {"after one NOP (odd offset)",
       {1, 2, 4, 0x23, 0x28, 1, 1, 0},
       {1, 2, 4, 0x05, 0x78, 1, 1, 0}},
      {"after SACK-permitted and window scale (odd)",
       {4, 2, 3, 3, 7, 2, 4, 0x05, 0xb4, 0, 0, 0},
       {4, 2, 3, 3, 7, 2, 4, 0x05, 0x78, 0, 0, 0}},
      {"after timestamps",
       {1, 1, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0, 2, 4, 0xff, 0xff},
       {1, 1, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0, 2, 4, 0x05, 0x78}},
      {"SYN-ACK", {2, 4, 0x05, 0xb4}, {2, 4, 0x05, 0x78}, 0x12},
      {"two MSS options, both clamped",
       {2, 4, 0x05, 0xb4, 1, 2, 4, 0x06, 0x00, 0, 0, 0},
       {2, 4, 0x05, 0x78, 1, 2, 4, 0x05, 0x78, 0, 0, 0}},
      {"MSS of wrong length skipped, the next clamped",
       {2, 3, 0x10, 2, 4, 0x05, 0xb4, 0},
       {2, 3, 0x10, 2, 4, 0x05, 0x78, 0}},
      {"clamped MSS before a malformed option",
       {2, 4, 0x05, 0xb4, 8, 40, 0, 0},
       {2, 4, 0x05, 0x78, 8, 40, 0, 0}},
      {"already small", {2, 4, 0x02, 0x18}, {}},
      {"equal to the clamp", {2, 4, 0x05, 0x78}, {}},
      {"not a SYN", {2, 4, 0x05, 0xb4}, {}, 0x10},
      {"no MSS", {1, 1, 4, 2}, {}},
      {"EOL before MSS", {0, 2, 4, 0x05, 0xb4, 0, 0, 0}, {}},
      {"length 0 before MSS", {3, 0, 2, 4, 0x05, 0xb4, 0, 0}, {}},
      {"length 1 before MSS", {3, 1, 2, 4, 0x05, 0xb4, 0, 0}, {}},
      {"option past the header before MSS", {3, 9, 2, 4, 0x05, 0xb4, 0, 0}, {}},
      {"MSS running past the header", {1, 1, 2, 4}, {}},
      {"kind with no length byte at the end", {1, 1, 1, 2}, {}},
  };
  for (const MssCase& c : cases) {
    for (size_t payload : {0u, 1u}) {  // a SYN with one byte of data: odd segment length
      Spec s;
      s.tcp_flags = c.flags;
      s.tcp_opts = c.opts;
      s.payload = fill(payload, 13);
      Bytes p = build(s);
      const Bytes before = p;
      const bool changed = clamp_mss(p.data() + 20, static_cast<uint32_t>(p.size() - 20), 1400);
      EXPECT_EQ(changed, !c.want_opts.empty()) << c.what;
      if (c.want_opts.empty()) {
        EXPECT_EQ(p, before) << c.what;
        continue;
      }
      s.tcp_opts = c.want_opts;
      EXPECT_EQ(p, build(s)) << c.what;
      EXPECT_TRUE(checksums_exact(p)) << c.what;
    }
  }
}

TEST(RewriteMss, HeaderBoundsAndChecksumEdge) {
  Spec s;
  s.tcp_flags = 0x02;
  s.tcp_opts = {2, 4, 0x05, 0xb4};
  Bytes p = build(s);
  const Bytes before = p;
  p[32] = 0xf0;  // data offset 60 > the 24 bytes there
  EXPECT_FALSE(clamp_mss(p.data() + 20, 24, 1400));
  p[32] = 0x40;  // data offset 16 < 20
  EXPECT_FALSE(clamp_mss(p.data() + 20, 24, 1400));
  p = before;
  EXPECT_FALSE(clamp_mss(p.data() + 20, 19, 1400));
  EXPECT_FALSE(clamp_mss(p.data() + 20, 23, 1400));  // options cut by the view
  EXPECT_EQ(p, before);
  EXPECT_FALSE(clamp_mss(nullptr, 0, 1400));

  // The new TCP checksum is 0x0000.
  Spec after = s;
  after.tcp_opts = {2, 4, 0x05, 0x78};
  after.payload = {0, 0};
  ASSERT_TRUE(force_l4_cksum(after, 0x0000));
  Spec big = after;
  big.tcp_opts = {2, 4, 0x05, 0xb4};
  p = build(big);
  ASSERT_TRUE(clamp_mss(p.data() + 20, static_cast<uint32_t>(p.size() - 20), 1400));
  EXPECT_EQ(get16(p, 36), 0x0000);
  EXPECT_EQ(p, build(after));
  // The old TCP checksum is 0x0000.
  big.tcp_opts = {2, 4, 0x05, 0xff};
  ASSERT_TRUE(force_l4_cksum(big, 0x0000));
  p = build(big);
  ASSERT_EQ(get16(p, 36), 0x0000);
  ASSERT_TRUE(clamp_mss(p.data() + 20, static_cast<uint32_t>(p.size() - 20), 1400));
  Spec small = big;
  small.tcp_opts = {2, 4, 0x05, 0x78};
  EXPECT_EQ(p, build(small));
  EXPECT_TRUE(checksums_exact(p));
}

// ---- 6. ICMP errors --------------------------------------------------------------------------

// An ICMP error from `from` to `to` quoting the first `quote` bytes of `pkt`; `word` is the
// second 32-bit word of the ICMP header (next-hop MTU, pointer, RFC 4884 length).
Bytes icmp_error(uint8_t type, uint8_t code, uint32_t from, uint32_t to, const Bytes& pkt,
                 size_t quote, uint32_t word = 0, const Bytes& extra = {}) {
  Spec s;
  s.proto = kProtoIcmp;
  s.src = from;
  s.dst = to;
  s.tos = 0xc0;
  s.ttl = 255;
  s.payload.assign(pkt.begin(), pkt.begin() + quote);
  s.payload.insert(s.payload.end(), extra.begin(), extra.end());
  Bytes p = build(s);
  p[20] = type;
  p[21] = code;
  put32(p, 24, word);
  put16(p, 22, ref_l4_cksum(p));
  return p;
}

// The full-NAT picture: the client sent `orig` (client -> VIP), the LB sent `xlat` (local ->
// real) and a router between the LB and the real answers with an error about `xlat`. The
// rewrite must give the error the client would get had it talked to the real directly: outer
// router -> client, quoting `orig`.
struct FullNat {
  Spec orig, xlat;
  explicit FullNat(uint8_t proto, size_t payload, uint32_t seed) {
    orig.proto = proto;
    orig.sport = proto == kProtoIcmp ? 0x4242 : 40000;
    orig.dport = proto == kProtoIcmp ? 0x4242 : 443;
    orig.frag = 0x4000;
    orig.payload = fill(payload, seed);
    xlat = orig;
    xlat.src = kLocal;
    xlat.dst = kReal;
    xlat.sport = proto == kProtoIcmp ? 0x0777 : 61000;
    xlat.dport = proto == kProtoIcmp ? 0x0777 : 8443;
  }
  IcmpErrorNat back() const {
    IcmpErrorNat n;
    n.outer_src = kRouter;
    n.outer_dst = orig.src;
    n.src = orig.src;
    n.dst = orig.dst;
    n.sport = orig.sport;
    n.dport = orig.dport;
    return n;
  }
};

TEST(RewriteIcmpError, ParseReportsTheQuotedFlow) {
  FullNat f(kProtoTcp, 100, 14);
  const Bytes x = build(f.xlat);
  const Bytes err = icmp_error(3, 4, kRouter, kLocal, x, 28, 1400);
  IcmpErrorInfo e;
  ASSERT_EQ(parse_icmp_error(err.data(), static_cast<uint32_t>(err.size()), e), RewriteStatus::kOk);
  EXPECT_EQ(e.type, 3);
  EXPECT_EQ(e.code, 4);
  EXPECT_EQ(e.mtu, 1400);
  EXPECT_EQ(e.proto, kProtoTcp);
  EXPECT_EQ(e.outer_src, kRouter);
  EXPECT_EQ(e.outer_dst, kLocal);
  EXPECT_EQ(e.src, kLocal);  // our packet: its source is the translated side
  EXPECT_EQ(e.dst, kReal);
  EXPECT_EQ(e.sport, 61000);
  EXPECT_EQ(e.dport, 8443);
  EXPECT_EQ(e.inner_off, 28);
  EXPECT_EQ(e.inner_hlen, 20);
  EXPECT_EQ(e.inner_avail, 28);
  EXPECT_FALSE(e.l4_cksum);  // 8 bytes of TCP do not reach its checksum

  const Bytes ttl = icmp_error(11, 0, kRouter, kLocal, x, x.size());
  ASSERT_EQ(parse_icmp_error(ttl.data(), static_cast<uint32_t>(ttl.size()), e), RewriteStatus::kOk);
  EXPECT_EQ(e.type, 11);
  EXPECT_EQ(e.mtu, 0);
  EXPECT_EQ(e.inner_avail, x.size());
  EXPECT_TRUE(e.l4_cksum);
}

// Quoted lengths from the RFC 792 minimum to the whole datagram, each protocol: the result is
// byte for byte the error built directly around the client's own packet.
TEST(RewriteIcmpError, FullNatRestoresTheClientsPacket) {
  struct Case {
    uint8_t proto;
    size_t payload, quote;  // quote 0: the whole datagram
  };
  const Case cases[] = {
      {kProtoTcp, 100, 28},  {kProtoTcp, 100, 40}, {kProtoTcp, 100, 0}, {kProtoTcp, 101, 0},
      {kProtoTcp, 0, 0},     {kProtoUdp, 60, 28},  {kProtoUdp, 61, 0},  {kProtoUdp, 0, 0},
      {kProtoUdp, 600, 548}, {kProtoIcmp, 56, 28}, {kProtoIcmp, 57, 0},
  };
  for (const Case& c : cases) {
    FullNat f(c.proto, c.payload, static_cast<uint32_t>(c.payload + c.quote));
    const Bytes o = build(f.orig), x = build(f.xlat);
    const size_t q = c.quote ? c.quote : x.size();
    for (uint8_t type : {3, 11, 12}) {
      const uint32_t word = type == 3 ? 1400 : type == 12 ? 0x08000000 : 0;
      Bytes err = icmp_error(type, type == 3 ? 4 : 0, kRouter, kLocal, x, q, word);
      ASSERT_EQ(rewrite_icmp_error(err.data(), static_cast<uint32_t>(err.size()), f.back()),
                RewriteStatus::kOk)
          << int(c.proto) << " " << q;
      const Bytes want = icmp_error(type, type == 3 ? 4 : 0, kRouter, kClient, o, q, word);
      EXPECT_EQ(err, want) << "proto " << int(c.proto) << " quote " << q << " type " << int(type);
      EXPECT_EQ(get16(err, 10), ref_ip_cksum(err));
      EXPECT_EQ(get16(err, 22), ref_l4_cksum(err));
      EXPECT_EQ(get16(err, 38), ref_ip_cksum(err, 28));
      EXPECT_TRUE(ip_sum_valid(err, 28));
    }
  }
}

// A quote ending inside the TCP checksum: the half that is there stays as quoted (nobody can
// check it), everything else is translated and the ICMP checksum is exact.
TEST(RewriteIcmpError, PartialL4ChecksumLeftAsQuoted) {
  FullNat f(kProtoTcp, 50, 15);
  const Bytes o = build(f.orig), x = build(f.xlat);
  Bytes err = icmp_error(3, 1, kRouter, kLocal, x, 20 + 17);
  ASSERT_EQ(rewrite_icmp_error(err.data(), static_cast<uint32_t>(err.size()), f.back()),
            RewriteStatus::kOk);
  EXPECT_EQ(err[28 + 36], x[36]);  // the one quoted byte of the TCP checksum
  EXPECT_TRUE(std::equal(err.begin() + 28, err.begin() + 28 + 36, o.begin()));
  EXPECT_EQ(get16(err, 22), ref_l4_cksum(err));
  EXPECT_EQ(get32(err, 16), kClient);
  EXPECT_EQ(get16(err, 10), ref_ip_cksum(err));
}

TEST(RewriteIcmpError, UdpZeroChecksumStaysZeroInside) {
  FullNat f(kProtoUdp, 33, 16);
  f.orig.udp_no_cksum = f.xlat.udp_no_cksum = true;
  const Bytes o = build(f.orig), x = build(f.xlat);
  Bytes err = icmp_error(3, 3, kReal, kLocal, x, x.size());
  IcmpErrorNat n = f.back();
  n.outer_src = kVip;  // the real itself says port unreachable: it appears as the VIP
  ASSERT_EQ(rewrite_icmp_error(err.data(), static_cast<uint32_t>(err.size()), n),
            RewriteStatus::kOk);
  EXPECT_EQ(get16(err, 28 + 26), 0);
  EXPECT_EQ(err, icmp_error(3, 3, kVip, kClient, o, o.size()));
}

// Half NAT (destination only): the error about real -> client traffic the LB source-translated
// back to VIP -> client arrives for the VIP; the outer destination becomes the real.
TEST(RewriteIcmpError, HalfNatOuterSourceKept) {
  Spec reply;  // as the real sent it
  reply.src = kReal;
  reply.dst = kClient;
  reply.sport = 8443;
  reply.dport = 40000;
  reply.payload = fill(20, 17);
  Spec out = reply;  // as the LB sent it
  out.src = kVip;
  out.sport = 443;
  const Bytes r = build(reply), x = build(out);
  Bytes err = icmp_error(11, 0, kRouter, kVip, x, 28);
  IcmpErrorInfo e;
  ASSERT_EQ(parse_icmp_error(err.data(), static_cast<uint32_t>(err.size()), e), RewriteStatus::kOk);
  IcmpErrorNat n;
  n.outer_src = e.outer_src;
  n.outer_dst = kReal;
  n.src = kReal;
  n.dst = e.dst;
  n.sport = 8443;
  n.dport = e.dport;
  ASSERT_EQ(rewrite_icmp_error(err.data(), static_cast<uint32_t>(err.size()), n),
            RewriteStatus::kOk);
  EXPECT_EQ(err, icmp_error(11, 0, kRouter, kReal, r, 28));
}

// RFC 4884: the quoted datagram ends at the length field; the extension after it is not part
// of it and is not touched.
TEST(RewriteIcmpError, Rfc4884ExtensionNotTreatedAsQuote) {
  FullNat f(kProtoUdp, 200, 18);
  const Bytes o = build(f.orig), x = build(f.xlat);
  const Bytes ext = fill(12, 19);
  Bytes err = icmp_error(11, 0, kRouter, kLocal, x, 128, 0x00200000, ext);  // 32 words
  IcmpErrorInfo e;
  ASSERT_EQ(parse_icmp_error(err.data(), static_cast<uint32_t>(err.size()), e), RewriteStatus::kOk);
  EXPECT_EQ(e.inner_avail, 128);
  ASSERT_EQ(rewrite_icmp_error(err.data(), static_cast<uint32_t>(err.size()), f.back()),
            RewriteStatus::kOk);
  EXPECT_EQ(err, icmp_error(11, 0, kRouter, kClient, o, 128, 0x00200000, ext));
}

TEST(RewriteIcmpError, RejectsMalformedAndTruncated) {
  FullNat f(kProtoTcp, 40, 20);
  const Bytes x = build(f.xlat);
  const Bytes good = icmp_error(3, 1, kRouter, kLocal, x, 28);
  struct Case {
    const char* what;
    Bytes p;
    RewriteStatus want;
  };
  std::vector<Case> cases;
  auto patched = [&](size_t off, uint8_t v) {
    Bytes b = good;
    b[off] = v;
    return b;
  };
  cases.push_back({"echo request, not an error", patched(20, 8), RewriteStatus::kUnsupported});
  cases.push_back({"redirect", patched(20, 5), RewriteStatus::kUnsupported});
  cases.push_back({"outer not ICMP", patched(9, 17), RewriteStatus::kUnsupported});
  cases.push_back({"outer MF", patched(6, 0x20), RewriteStatus::kUnsupported});
  cases.push_back({"outer later fragment", patched(7, 0x10), RewriteStatus::kUnsupported});
  cases.push_back({"inner version 6", patched(28, 0x65), RewriteStatus::kMalformed});
  cases.push_back({"inner IHL 4", patched(28, 0x44), RewriteStatus::kMalformed});
  cases.push_back({"inner IHL past the quote", patched(28, 0x46), RewriteStatus::kTruncated});
  cases.push_back({"inner total length < IHL + 8", patched(31, 27), RewriteStatus::kMalformed});
  cases.push_back({"inner GRE", patched(37, 47), RewriteStatus::kUnsupported});
  cases.push_back({"inner later fragment", patched(35, 0x01), RewriteStatus::kUnsupported});
  cases.push_back({"RFC 4884 length below IHL + 8", patched(25, 1), RewriteStatus::kTruncated});
  Bytes short_quote = icmp_error(3, 1, kRouter, kLocal, x, 27);
  cases.push_back({"7 bytes of L4", short_quote, RewriteStatus::kTruncated});
  FullNat fe(kProtoIcmp, 8, 21);
  Bytes about_error = build(fe.xlat);
  about_error[20] = 3;  // an error about an ICMP error is never sent (RFC 1122 3.2.2)
  cases.push_back({"error about an error", icmp_error(3, 1, kRouter, kLocal, about_error, 28),
                   RewriteStatus::kUnsupported});
  for (const Case& c : cases) {
    Bytes p = c.p;
    IcmpErrorInfo e;
    EXPECT_EQ(parse_icmp_error(p.data(), static_cast<uint32_t>(p.size()), e), c.want) << c.what;
    EXPECT_EQ(rewrite_icmp_error(p.data(), static_cast<uint32_t>(p.size()), f.back()), c.want)
        << c.what;
    EXPECT_EQ(p, c.p) << c.what;
  }
  // Every truncation of a valid error, in a buffer of exactly that size.
  for (size_t n = 0; n < good.size(); ++n) {
    std::unique_ptr<uint8_t[]> buf(new uint8_t[n]);
    std::memcpy(buf.get(), good.data(), n);
    IcmpErrorInfo e;
    EXPECT_EQ(parse_icmp_error(buf.get(), static_cast<uint32_t>(n), e), RewriteStatus::kTruncated)
        << n;
    EXPECT_EQ(rewrite_icmp_error(buf.get(), static_cast<uint32_t>(n), f.back()),
              RewriteStatus::kTruncated)
        << n;
    EXPECT_EQ(std::memcmp(buf.get(), good.data(), n), 0);
  }
}

// ---- 7. randomized ---------------------------------------------------------------------------

// 10,000 random packets (TCP, UDP, ICMP echo; random IP and TCP options, odd and even lengths,
// zero UDP checksums, random TOS and identifiers) and a random rewrite each: the incremental
// result must equal the packet built from scratch with the new values, checksums included.
TEST(RewriteRandom, IncrementalEqualsFullRecomputation) {
  std::mt19937 rng(20240521);
  auto u = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
  int counts[6] = {};
  for (int iter = 0; iter < 10000; ++iter) {
    Spec s;
    const uint8_t protos[] = {kProtoTcp, kProtoUdp, kProtoIcmp};
    s.proto = protos[u(3)];
    s.src = rng();
    s.dst = rng();
    s.sport = static_cast<uint16_t>(rng());
    s.dport = static_cast<uint16_t>(rng());
    s.tos = static_cast<uint8_t>(rng());
    s.ip_id = static_cast<uint16_t>(rng());
    s.ttl = static_cast<uint8_t>(rng());
    s.frag = u(2) ? 0x4000 : 0;
    s.ip_opts = static_cast<uint8_t>(4 * u(11));
    s.icmp_type = u(2) ? 8 : 0;
    s.udp_no_cksum = u(10) == 0;
    s.payload = fill(u(400), rng());
    size_t mss_at = 0;
    if (s.proto == kProtoTcp) {
      s.tcp_flags = u(2) ? 0x02 : 0x12;
      const size_t lead = u(9);  // NOPs before the MSS: both parities
      s.tcp_opts.assign(lead, 1);
      mss_at = 20 + lead + 2;
      const uint16_t mss = static_cast<uint16_t>(rng());
      s.tcp_opts.insert(s.tcp_opts.end(),
                        {2, 4, static_cast<uint8_t>(mss >> 8), static_cast<uint8_t>(mss)});
      if (u(2)) s.tcp_opts.insert(s.tcp_opts.end(), {4, 2, 3, 3, static_cast<uint8_t>(u(15))});
    }
    Bytes p = build(s);
    const auto len = static_cast<uint32_t>(p.size());
    const size_t ihl = 20 + s.ip_opts;
    const uint32_t a = rng();
    const auto port = static_cast<uint16_t>(rng());
    const int op = static_cast<int>(u(s.proto == kProtoTcp ? 6 : 5));
    ++counts[op];
    switch (op) {
      case 0:
        ASSERT_EQ(nat_dst(p.data(), len, a, port), RewriteStatus::kOk);
        s.dst = a;
        if (s.proto == kProtoIcmp)
          s.sport = port;
        else
          s.dport = port;
        break;
      case 1:
        ASSERT_EQ(nat_src(p.data(), len, a, port), RewriteStatus::kOk);
        s.src = a;
        s.sport = port;
        break;
      case 2: {
        const uint8_t d = static_cast<uint8_t>(u(64));
        set_dscp(p.data(), d);
        s.tos = static_cast<uint8_t>(d << 2 | (s.tos & 3));
        break;
      }
      case 3: {  // source then destination, as full NAT does
        ASSERT_EQ(nat_src(p.data(), len, a, port), RewriteStatus::kOk);
        ASSERT_EQ(nat_dst(p.data(), len, ~a, static_cast<uint16_t>(~port)), RewriteStatus::kOk);
        s.src = a;
        s.dst = ~a;
        s.sport = port;
        if (s.proto != kProtoIcmp) s.dport = static_cast<uint16_t>(~port);
        if (s.proto == kProtoIcmp) s.sport = static_cast<uint16_t>(~port);
        break;
      }
      case 4: {  // encapsulate, then check the inner is intact and the outer exact
        Bytes b = encapsulated(p);
        IpipOuter o;
        o.src = a;
        o.dst = ~a;
        o.id = port;
        o.ttl = static_cast<uint8_t>(rng());
        ASSERT_EQ(encap_ipip(b.data(), len, o), len + 20);
        ASSERT_EQ(get16(b, 10), ref_ip_cksum(b));
        ASSERT_EQ(b[1], s.tos);
        ASSERT_EQ(get16(b, 6), s.frag);
        const auto v = decap_ipip(b.data(), static_cast<uint32_t>(b.size()));
        ASSERT_EQ(v.size(), p.size());
        ASSERT_TRUE(std::equal(v.begin(), v.end(), p.begin(), p.end()));
        break;
      }
      case 5: {
        const auto max = static_cast<uint16_t>(rng());
        const uint16_t mss = get16(p, ihl + mss_at);
        const bool changed = clamp_mss(p.data() + ihl, len - static_cast<uint32_t>(ihl), max);
        ASSERT_EQ(changed, mss > max);
        if (changed) {
          s.tcp_opts[mss_at - 20] = static_cast<uint8_t>(max >> 8);
          s.tcp_opts[mss_at - 19] = static_cast<uint8_t>(max);
        }
        break;
      }
    }
    ASSERT_EQ(p, build(s)) << "iteration " << iter << " op " << op << " proto " << int(s.proto);
    ASSERT_TRUE(checksums_exact(p)) << iter;
  }
  for (int c : {0, 1, 2, 3, 4, 5}) EXPECT_GT(counts[c], 300) << c;
}

// Random bytes where the headers are, in buffers of exactly the view's size: no function reads
// or writes outside it (the ASan build checks), and a rejected packet is never modified.
TEST(RewriteRandom, GarbageNeverEscapesTheView) {
  std::mt19937 rng(99);
  FullNat f(kProtoTcp, 60, 22);
  const Bytes x = build(f.xlat);
  const Bytes seeds[] = {icmp_error(3, 4, kRouter, kLocal, x, 28, 1400),
                         icmp_error(11, 0, kRouter, kLocal, x, x.size()), x};
  int ok = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    Bytes p = seeds[iter % 3];
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k)
      p[rng() % std::min<size_t>(p.size(), 60)] = static_cast<uint8_t>(rng());
    const size_t n = rng() % (p.size() + 1);
    std::unique_ptr<uint8_t[]> buf(new uint8_t[n]);
    std::memcpy(buf.get(), p.data(), n);
    const auto len = static_cast<uint32_t>(n);
    const Bytes before(buf.get(), buf.get() + n);
    IcmpErrorInfo e;
    const RewriteStatus ps = parse_icmp_error(buf.get(), len, e);
    const RewriteStatus rs = rewrite_icmp_error(buf.get(), len, f.back());
    ASSERT_EQ(ps, rs);
    if (rs != RewriteStatus::kOk) {
      ASSERT_TRUE(std::equal(before.begin(), before.end(), buf.get())) << iter;
    } else {
      ++ok;
    }
    std::memcpy(buf.get(), p.data(), n);
    const RewriteStatus ns = nat_dst(buf.get(), len, kReal, 1);
    if (ns != RewriteStatus::kOk && ns != RewriteStatus::kAddrOnly) {
      ASSERT_TRUE(std::equal(before.begin(), before.end(), buf.get())) << iter;
    }
    if (n > 20) {
      std::memcpy(buf.get(), p.data(), n);
      clamp_mss(buf.get() + 20, len - 20, 536);
    }
    std::memcpy(buf.get(), p.data(), n);
    (void)decap_ipip(buf.get(), len);
  }
  EXPECT_GT(ok, 100);  // some mutated errors are still valid and get rewritten
}

TEST(RewriteStatusNames, AllNamed) {
  EXPECT_STREQ(rewrite_status_name(RewriteStatus::kOk), "ok");
  EXPECT_STREQ(rewrite_status_name(RewriteStatus::kAddrOnly), "addr_only");
  EXPECT_STREQ(rewrite_status_name(RewriteStatus::kUnsupported), "unsupported");
}

}  // namespace
}  // namespace nf::lb
