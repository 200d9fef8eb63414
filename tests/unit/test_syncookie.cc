// SYN cookies (nf/lb/syncookie.h): SipHash-2-4 against the reference vectors, cookie round
// trips, every way a cookie must fail (tuple, ack, age, key rotation), and the SYN-ACK built
// in place, read back field by field with a checksum written here, not DPDK's.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <unordered_set>
#include <vector>

#include "nf/lb/syncookie.h"

namespace nf::test {
namespace {

using lb::SipKey;
using lb::SynCookies;

// The reference implementation's vectors: key 00 01 .. 0f, message 00 01 .. (len - 1) for
// len = 0..63, output as the little-endian reading of the 8 result bytes.
constexpr uint64_t kSipVectors[64] = {
    0x726FDB47DD0E0E31, 0x74F839C593DC67FD, 0x0D6C8009D9A94F5A, 0x85676696D7FB7E2D,
    0xCF2794E0277187B7, 0x18765564CD99A68D, 0xCBC9466E58FEE3CE, 0xAB0200F58B01D137,
    0x93F5F5799A932462, 0x9E0082DF0BA9E4B0, 0x7A5DBBC594DDB9F3, 0xF4B32F46226BADA7,
    0x751E8FBC860EE5FB, 0x14EA5627C0843D90, 0xF723CA908E7AF2EE, 0xA129CA6149BE45E5,
    0x3F2ACC7F57C29BDB, 0x699AE9F52CBE4794, 0x4BC1B3F0968DD39C, 0xBB6DC91DA77961BD,
    0xBED65CF21AA2EE98, 0xD0F2CBB02E3B67C7, 0x93536795E3A33E88, 0xA80C038CCD5CCEC8,
    0xB8AD50C6F649AF94, 0xBCE192DE8A85B8EA, 0x17D835B85BBB15F3, 0x2F2E6163076BCFAD,
    0xDE4DAAACA71DC9A5, 0xA6A2506687956571, 0xAD87A3535C49EF28, 0x32D892FAD841C342,
    0x7127512F72F27CCE, 0xA7F32346F95978E3, 0x12E0B01ABB051238, 0x15E034D40FA197AE,
    0x314DFFBE0815A3B4, 0x027990F029623981, 0xCADCD4E59EF40C4D, 0x9ABFD8766A33735C,
    0x0E3EA96B5304A7D0, 0xAD0C42D6FC585992, 0x187306C89BC215A9, 0xD4A60ABCF3792B95,
    0xF935451DE4F21DF2, 0xA9538F0419755787, 0xDB9ACDDFF56CA510, 0xD06C98CD5C0975EB,
    0xE612A3CB9ECBA951, 0xC766E62CFCADAF96, 0xEE64435A9752FE72, 0xA192D576B245165A,
    0x0A8787BF8ECB74B2, 0x81B3E73D20B49B6F, 0x7FA8220BA3B2ECEA, 0x245731C13CA42499,
    0xB78DBFAF3A8D83BD, 0xEA1AD565322A1A0B, 0x60E61C23A3795013, 0x6606D7E446282B93,
    0x6CA4ECB15C5F91E1, 0x9F626DA15C9625F3, 0xE51B38608EF25F57, 0x958A324CEB064572,
};
constexpr SipKey kRefKey{0x0706050403020100ULL, 0x0F0E0D0C0B0A0908ULL};

TEST(SynCookieSipHash, ReferenceVectors) {
  uint8_t msg[64];
  for (int i = 0; i < 64; ++i) msg[i] = static_cast<uint8_t>(i);
  for (size_t len = 0; len < 64; ++len)
    EXPECT_EQ(lb::siphash24(kRefKey, msg, len), kSipVectors[len]) << "length " << len;
  // The paper's own example (Appendix A): 15 bytes.
  EXPECT_EQ(lb::siphash24(kRefKey, msg, 15), 0xa129ca6149be45e5ULL);
}

TEST(SynCookieSipHash, WordFormEqualsByteForm) {
  // The cookie code feeds whole words; they must be the little-endian message bytes.
  uint8_t msg[64];
  for (int i = 0; i < 64; ++i) msg[i] = static_cast<uint8_t>(i);
  for (size_t words = 0; words < 8; ++words) {  // lengths 0, 8, .., 56
    lb::SipState s(kRefKey);
    for (size_t w = 0; w < words; ++w) {
      uint64_t v = 0;
      for (int b = 0; b < 8; ++b) v |= static_cast<uint64_t>(msg[w * 8 + b]) << (8 * b);
      s.absorb(v);
    }
    EXPECT_EQ(s.finish(words * 8), kSipVectors[words * 8]) << words << " words";
  }
}

TEST(SynCookieMss, LargestTableValueNotAboveTheClients) {
  EXPECT_EQ(lb::mss_index(0), 0u);
  EXPECT_EQ(lb::mss_index(100), 0u);  // below 536: 536 (every host accepts it)
  for (uint32_t i = 0; i < 8; ++i) {
    EXPECT_EQ(lb::mss_index(lb::kMssTable[i]), i);
    EXPECT_EQ(lb::mss_index(static_cast<uint16_t>(lb::kMssTable[i] + 1)), i);
    if (i > 0) {
      EXPECT_EQ(lb::mss_index(static_cast<uint16_t>(lb::kMssTable[i] - 1)), i - 1);
    }
  }
  EXPECT_EQ(lb::mss_index(1459), 5u);  // 1440
  EXPECT_EQ(lb::mss_index(1452), 5u);  // PPPoE: 1440
  EXPECT_EQ(lb::mss_index(65535), 7u);
}

constexpr uint64_t kHz = 1000;  // a millisecond clock
constexpr uint64_t kPeriod = lb::kCookiePeriodSeconds * kHz;
constexpr SipKey kKeyA{0x0123456789abcdefULL, 0xfedcba9876543210ULL};
constexpr SipKey kKeyB{0x1111111122222222ULL, 0x3333333344444444ULL};
constexpr SipKey kKeyC{0x5555555566666666ULL, 0x7777777788888888ULL};

struct Tuple {
  uint32_t saddr, daddr;
  uint16_t sport, dport;
  uint32_t isn;
  uint16_t mss;
};

std::vector<Tuple> random_tuples(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<Tuple> v(n);
  for (Tuple& t : v) {
    t.saddr = rng();
    t.daddr = rng();
    t.sport = static_cast<uint16_t>(rng() | 1);
    t.dport = static_cast<uint16_t>(rng() | 1);
    t.isn = rng();
    t.mss = static_cast<uint16_t>(rng() % 10000);
  }
  return v;
}

uint16_t expected_mss(uint16_t client) {
  return lb::kMssTable[lb::mss_index(client)];
}

std::optional<uint16_t> check(const SynCookies& c, const Tuple& t, uint32_t cookie, uint64_t now) {
  return c.check(t.saddr, t.daddr, t.sport, t.dport, t.isn, cookie, now);
}
uint32_t make(const SynCookies& c, const Tuple& t, uint64_t now) {
  return c.make(t.saddr, t.daddr, t.sport, t.dport, t.isn, t.mss, now);
}

TEST(SynCookie, RoundTripManyTuplesAndMss) {
  const SynCookies c(kKeyA, kHz);
  const uint64_t now = 1'000'000'007;
  std::unordered_set<uint32_t> seen;
  int mss_counts[8] = {};
  for (const Tuple& t : random_tuples(20000, 1)) {
    const uint32_t k = make(c, t, now);
    seen.insert(k);
    const auto mss = check(c, t, k, now);
    ASSERT_TRUE(mss.has_value()) << t.saddr << " " << t.sport << " mss " << t.mss;
    EXPECT_EQ(*mss, expected_mss(t.mss));
    mss_counts[lb::mss_index(t.mss)]++;
    // Still valid through the next counter step.
    EXPECT_EQ(check(c, t, k, now + kPeriod), expected_mss(t.mss));
  }
  for (int n : mss_counts) EXPECT_GT(n, 0);  // every table entry went through a cookie
  // 20000 cookies of 32 pseudo-random bits: a birthday collision is expected 0.05 times.
  EXPECT_GE(seen.size(), 19999u);
  // Every table MSS exactly, on one tuple.
  const Tuple t0{0x0a000001, 0x0a000002, 40000, 80, 12345, 0};
  for (uint16_t m : lb::kMssTable) {
    Tuple t = t0;
    t.mss = m;
    EXPECT_EQ(check(c, t, make(c, t, now), now), m);
  }
}

TEST(SynCookie, SameSynSameCookieWithinAStep) {
  // A retransmitted SYN gets the same SYN-ACK: nothing random per call.
  const SynCookies c(kKeyA, kHz);
  const Tuple t{0xc0000201, 0xcb007101, 50000, 443, 0xdeadbeef, 1460};
  const uint64_t base = 100 * kPeriod;
  EXPECT_EQ(make(c, t, base), make(c, t, base + kPeriod - 1));
  EXPECT_NE(make(c, t, base), make(c, t, base + kPeriod));
}

TEST(SynCookie, WrongTupleFails) {
  const SynCookies c(kKeyA, kHz);
  const uint64_t now = 77 * kPeriod + 5;
  int accepted = 0, tried = 0;
  for (const Tuple& t : random_tuples(2000, 2)) {
    const uint32_t k = make(c, t, now);
    ASSERT_TRUE(check(c, t, k, now).has_value());
    for (int bit = 0; bit < 32; bit += 5) {
      Tuple u = t;
      u.saddr ^= 1u << bit;
      accepted += check(c, u, k, now).has_value();
      u = t;
      u.daddr ^= 1u << bit;
      accepted += check(c, u, k, now).has_value();
      u = t;
      u.isn ^= 1u << bit;
      accepted += check(c, u, k, now).has_value();
      tried += 3;
    }
    for (int bit = 0; bit < 16; bit += 3) {
      Tuple u = t;
      u.sport ^= static_cast<uint16_t>(1u << bit);
      accepted += check(c, u, k, now).has_value();
      u = t;
      u.dport ^= static_cast<uint16_t>(1u << bit);
      accepted += check(c, u, k, now).has_value();
      tried += 2;
    }
    // Reversed direction (a reply-direction packet must not pass as the client's ACK).
    Tuple r{t.daddr, t.saddr, t.dport, t.sport, t.isn, t.mss};
    accepted += check(c, r, k, now).has_value();
    ++tried;
  }
  EXPECT_EQ(tried, 2000 * (7 * 3 + 6 * 2 + 1));
  EXPECT_EQ(accepted, 0);
}

TEST(SynCookie, WrongAckFails) {
  const SynCookies c(kKeyA, kHz);
  const uint64_t now = 12 * kPeriod;
  int accepted = 0;
  for (const Tuple& t : random_tuples(2000, 3)) {
    const uint32_t k = make(c, t, now);
    for (int bit = 0; bit < 32; ++bit) accepted += check(c, t, k ^ (1u << bit), now).has_value();
    accepted += check(c, t, k + 1, now).has_value();  // ack_seq not decremented
    accepted += check(c, t, k - 1, now).has_value();
    // Another MSS index in the same counter step: the MAC covers the index.
    for (uint32_t d = 1; d < 8; ++d) accepted += check(c, t, k + (d << 24), now).has_value();
  }
  EXPECT_EQ(accepted, 0);
  // Blind guesses for one connection: each passes with probability 2^-27 (see the header);
  // 2^18 of them with this fixed sequence pass none.
  const Tuple t{0x0a000001, 0x0a000002, 40000, 80, 999, 1460};
  std::mt19937 rng(4);
  int forged = 0;
  for (int i = 0; i < (1 << 18); ++i) forged += check(c, t, rng(), now).has_value();
  EXPECT_EQ(forged, 0);
}

TEST(SynCookie, ExpiresAfterTwoCounterSteps) {
  const SynCookies c(kKeyA, kHz);
  EXPECT_EQ(c.period_ticks(), 64'000u);
  const Tuple t{0x0a000001, 0x0a000002, 40000, 80, 4242, 1400};
  const uint64_t step = 1000;  // counter value at creation
  // Made on the last tick of a step: valid through the end of the next step, not a tick more.
  const uint64_t made = (step + 1) * kPeriod - 1;
  const uint32_t k = make(c, t, made);
  EXPECT_EQ(check(c, t, k, made), 1400);
  EXPECT_EQ(check(c, t, k, made + 1), 1400);                  // next step
  EXPECT_EQ(check(c, t, k, (step + 2) * kPeriod - 1), 1400);  // its last tick
  EXPECT_FALSE(check(c, t, k, (step + 2) * kPeriod).has_value());
  EXPECT_FALSE(check(c, t, k, (step + 5) * kPeriod).has_value());
  // From the future (the clock of the checker behind by a step): refused.
  EXPECT_FALSE(check(c, t, k, step * kPeriod - 1).has_value());
  // 32 steps later the counter's low 5 bits are the same again: the MAC over the whole
  // counter still refuses it.
  EXPECT_FALSE(check(c, t, k, made + 32 * kPeriod).has_value());
  EXPECT_FALSE(check(c, t, k, made + 33 * kPeriod).has_value());
  // Made on the first tick of a step: the same two steps.
  const uint32_t k2 = make(c, t, step * kPeriod);
  EXPECT_EQ(check(c, t, k2, (step + 2) * kPeriod - 1), 1400);
  EXPECT_FALSE(check(c, t, k2, (step + 2) * kPeriod).has_value());
  // A TSC-rate clock: the same rule in its own ticks.
  const uint64_t tsc = 2'600'000'000ULL;
  const SynCookies ct(kKeyA, tsc);
  const uint32_t k3 = make(ct, t, 10 * 64 * tsc);
  EXPECT_EQ(check(ct, t, k3, 12 * 64 * tsc - 1), 1400);
  EXPECT_FALSE(check(ct, t, k3, 12 * 64 * tsc).has_value());
}

TEST(SynCookie, ValidAcrossOneKeyRotationOnly) {
  SynCookies c(kKeyA, kHz);
  const uint64_t now = 5 * kPeriod;
  const auto tuples = random_tuples(500, 5);
  std::vector<uint32_t> old_cookies;
  for (const Tuple& t : tuples) old_cookies.push_back(make(c, t, now));
  EXPECT_FALSE(c.has_previous());

  // Another key never accepts them.
  const SynCookies other(kKeyB, kHz);
  for (size_t i = 0; i < tuples.size(); ++i)
    EXPECT_FALSE(check(other, tuples[i], old_cookies[i], now).has_value());

  c.rotate(kKeyB);
  EXPECT_TRUE(c.has_previous());
  std::vector<uint32_t> b_cookies;
  for (size_t i = 0; i < tuples.size(); ++i) {
    EXPECT_EQ(check(c, tuples[i], old_cookies[i], now), expected_mss(tuples[i].mss));
    b_cookies.push_back(make(c, tuples[i], now));
    EXPECT_NE(b_cookies[i], old_cookies[i]);  // made with the new key
    EXPECT_EQ(check(c, tuples[i], b_cookies[i], now), expected_mss(tuples[i].mss));
  }
  c.rotate(kKeyC);
  int old_accepted = 0;
  for (size_t i = 0; i < tuples.size(); ++i) {
    old_accepted += check(c, tuples[i], old_cookies[i], now).has_value();  // two rotations ago
    EXPECT_EQ(check(c, tuples[i], b_cookies[i], now), expected_mss(tuples[i].mss));
  }
  EXPECT_EQ(old_accepted, 0);
  // The previous key's cookies still age out like the current one's.
  EXPECT_FALSE(check(c, tuples[0], b_cookies[0], now + 2 * kPeriod).has_value());
}

// ---- SYN-ACK ----

// RFC 1071 sum over big-endian 16-bit words, written independently of DPDK's.
uint32_t sum16(const uint8_t* p, size_t n, uint32_t acc = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) acc += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n & 1) acc += static_cast<uint32_t>(p[n - 1] << 8);
  return acc;
}
uint16_t fold(uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(acc);
}
uint16_t rd16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
uint32_t rd32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | p[3];
}
void wr16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void wr32(uint8_t* p, uint32_t v) {
  wr16(p, static_cast<uint16_t>(v >> 16));
  wr16(p + 2, static_cast<uint16_t>(v));
}

struct SynSpec {
  uint32_t src = 0xc6336407, dst = 0xcb00710a;  // 198.51.100.7 -> 203.0.113.10
  uint16_t sport = 51515, dport = 443;
  uint32_t isn = 0xffffffff;      // ack = isn + 1 wraps to 0
  uint8_t ip_opt_len = 0;         // multiple of 4
  std::vector<uint8_t> tcp_opts;  // multiple of 4
  uint8_t flags = 0x02;
  uint16_t frag = 0;
  uint8_t proto = 6;
  size_t payload = 0;
  size_t pad = 0;  // bytes after the datagram (Ethernet padding)
};

std::vector<uint8_t> build_syn(const SynSpec& s) {
  const size_t ihl = 20 + s.ip_opt_len, thl = 20 + s.tcp_opts.size();
  const size_t tlen = ihl + thl + s.payload;
  std::vector<uint8_t> b(tlen + s.pad, 0xee);
  uint8_t* ip = b.data();
  std::memset(ip, 0, tlen);
  ip[0] = static_cast<uint8_t>(0x40 | ihl / 4);
  ip[1] = 0xb8;  // DSCP EF: not copied into the answer
  wr16(ip + 2, static_cast<uint16_t>(tlen));
  wr16(ip + 4, 0x1234);
  wr16(ip + 6, s.frag);
  ip[8] = 57;
  ip[9] = s.proto;
  wr32(ip + 12, s.src);
  wr32(ip + 16, s.dst);
  for (size_t i = 20; i < ihl; ++i) ip[i] = 1;  // NOP options
  wr16(ip + 10, static_cast<uint16_t>(~fold(sum16(ip, ihl))));
  uint8_t* tcp = ip + ihl;
  wr16(tcp, s.sport);
  wr16(tcp + 2, s.dport);
  wr32(tcp + 4, s.isn);
  wr32(tcp + 8, 0x55555555);  // garbage ack field in a SYN
  tcp[12] = static_cast<uint8_t>((thl / 4) << 4);
  tcp[13] = s.flags;
  wr16(tcp + 14, 29200);
  if (!s.tcp_opts.empty()) std::memcpy(tcp + 20, s.tcp_opts.data(), s.tcp_opts.size());
  for (size_t i = 0; i < s.payload; ++i) tcp[thl + i] = static_cast<uint8_t>(i);
  return b;
}

// A Linux-like SYN's options: MSS, SACK-permitted, timestamps, NOP, window scale.
std::vector<uint8_t> linux_opts(uint16_t mss) {
  return {2,
          4,
          static_cast<uint8_t>(mss >> 8),
          static_cast<uint8_t>(mss),
          4,
          2,
          8,
          10,
          0,
          1,
          2,
          3,
          0,
          0,
          0,
          0,
          1,
          3,
          3,
          7};
}

// Reads the answer back, checking every field and both checksums.
void expect_synack(const std::vector<uint8_t>& b, size_t n, const SynSpec& s, uint32_t cookie,
                   const lb::SynAckOptions& o) {
  ASSERT_EQ(n, 44u);
  ASSERT_GE(b.size(), n);
  const uint8_t* ip = b.data();
  EXPECT_EQ(ip[0], 0x45);
  EXPECT_EQ(ip[1], 0);  // TOS
  EXPECT_EQ(rd16(ip + 2), 44);
  EXPECT_EQ(rd16(ip + 4), o.ip_id);
  EXPECT_EQ(rd16(ip + 6), 0x4000);  // DF, no fragment
  EXPECT_EQ(ip[8], 64);
  EXPECT_EQ(ip[9], 6);
  EXPECT_EQ(rd32(ip + 12), s.dst);
  EXPECT_EQ(rd32(ip + 16), s.src);
  EXPECT_EQ(fold(sum16(ip, 20)), 0xffff) << "IPv4 header checksum";
  const uint8_t* tcp = ip + 20;
  EXPECT_EQ(rd16(tcp), s.dport);
  EXPECT_EQ(rd16(tcp + 2), s.sport);
  EXPECT_EQ(rd32(tcp + 4), cookie);
  EXPECT_EQ(rd32(tcp + 8), s.isn + 1);
  EXPECT_EQ(tcp[12], 0x60);  // 24 bytes, reserved bits clear
  EXPECT_EQ(tcp[13], 0x12);  // SYN|ACK and nothing else (no ECE: ECN is not offered)
  EXPECT_EQ(rd16(tcp + 14), o.window);
  EXPECT_EQ(rd16(tcp + 18), 0);  // urgent pointer
  EXPECT_EQ(tcp[20], 2);
  EXPECT_EQ(tcp[21], 4);
  EXPECT_EQ(rd16(tcp + 22), o.mss);
  // Pseudo-header: source, destination, zero + protocol, TCP length.
  uint32_t acc = sum16(ip + 12, 8);
  acc += 6;
  acc += 24;
  EXPECT_EQ(fold(sum16(tcp, 24, acc)), 0xffff) << "TCP checksum";
}

TEST(SynCookieSynAck, BuiltInPlaceAndReadsBack) {
  const SynCookies c(kKeyA, kHz);
  const uint64_t now = 3 * kPeriod + 17;
  SynSpec s;
  s.ip_opt_len = 4;  // IP options: the TCP header moves up in the answer
  s.tcp_opts = linux_opts(1452);
  s.payload = 5;  // TFO-style data in the SYN is ignored (the client sends it again)
  s.pad = 3;
  auto b = build_syn(s);

  lb::SynInfo info{};
  ASSERT_TRUE(lb::parse_syn(b.data(), b.size(), info));
  EXPECT_EQ(info.saddr, s.src);
  EXPECT_EQ(info.daddr, s.dst);
  EXPECT_EQ(info.sport, s.sport);
  EXPECT_EQ(info.dport, s.dport);
  EXPECT_EQ(info.isn, s.isn);
  EXPECT_EQ(info.mss, 1452);

  const lb::SynAckOptions o{1400, 29200, 0xbeef};
  const size_t n = lb::answer_syn(c, b.data(), b.size(), now, o);
  const uint32_t cookie = c.make(s.src, s.dst, s.sport, s.dport, s.isn, 1452, now);
  expect_synack(b, n, s, cookie, o);

  // The client's ACK: seq = isn + 1, ack = cookie + 1; check() gets them minus one.
  const uint32_t ack_seq = rd32(b.data() + 20 + 4) + 1;
  const uint32_t seq = rd32(b.data() + 20 + 8);
  EXPECT_EQ(c.check(s.src, s.dst, s.sport, s.dport, seq - 1, ack_seq - 1, now + kPeriod), 1440);

  // build_synack with a given cookie writes the same answer.
  auto b2 = build_syn(s);
  EXPECT_EQ(lb::build_synack(b2.data(), b2.size(), cookie, o), 44u);
  EXPECT_TRUE(std::equal(b.begin(), b.begin() + 44, b2.begin()));
}

TEST(SynCookieSynAck, MinimalSynInAMinimumEthernetFrame) {
  // 40 bytes of SYN without options, padded to the 46-byte minimum Ethernet payload: the
  // 44-byte answer fits in the padding.
  const SynCookies c(kKeyB, kHz);
  SynSpec s;
  s.pad = 6;
  auto b = build_syn(s);
  ASSERT_EQ(b.size(), 46u);
  const lb::SynAckOptions o;  // defaults: MSS 1460, window 65535
  const size_t n = lb::answer_syn(c, b.data(), b.size(), 0, o);
  const uint32_t cookie = c.make(s.src, s.dst, s.sport, s.dport, s.isn, 0, 0);
  expect_synack(b, n, s, cookie, o);
  EXPECT_EQ(c.check(s.src, s.dst, s.sport, s.dport, s.isn, cookie, 0), 536);  // no MSS option

  // Exactly 40 bytes: no room for the answer, nothing written.
  auto tight = build_syn(SynSpec{});
  const auto before = tight;
  EXPECT_EQ(lb::answer_syn(c, tight.data(), tight.size(), 0, o), 0u);
  EXPECT_EQ(tight, before);
}

TEST(SynCookieSynAck, OptionParsing) {
  lb::SynInfo info{};
  SynSpec s;
  // MSS after NOPs and window scale.
  s.tcp_opts = {1, 1, 3, 3, 7, 2, 4, 0x05, 0xb4, 0, 0, 0};
  auto b = build_syn(s);
  ASSERT_TRUE(lb::parse_syn(b.data(), b.size(), info));
  EXPECT_EQ(info.mss, 1460);
  // An MSS of 0 means "none".
  s.tcp_opts = {2, 4, 0, 0};
  b = build_syn(s);
  ASSERT_TRUE(lb::parse_syn(b.data(), b.size(), info));
  EXPECT_EQ(info.mss, 536);
  // A malformed option (length 0) ends parsing; the MSS before it counts, after it not.
  s.tcp_opts = {2, 4, 0x05, 0x00, 8, 0, 2, 4, 0x05, 0xb4, 0, 0};
  b = build_syn(s);
  ASSERT_TRUE(lb::parse_syn(b.data(), b.size(), info));
  EXPECT_EQ(info.mss, 1280);
  s.tcp_opts = {8, 0, 2, 4, 0x05, 0xb4, 0, 0};
  b = build_syn(s);
  ASSERT_TRUE(lb::parse_syn(b.data(), b.size(), info));
  EXPECT_EQ(info.mss, 536);
  // An option running past the header, and end-of-list before an MSS.
  s.tcp_opts = {1, 2, 8, 5, 0x05, 0xb4, 0, 0};  // MSS of length 8 from offset 1: past the end
  b = build_syn(s);
  ASSERT_TRUE(lb::parse_syn(b.data(), b.size(), info));
  EXPECT_EQ(info.mss, 536);
  s.tcp_opts = {0, 0, 0, 0, 2, 4, 0x05, 0xb4};
  b = build_syn(s);
  ASSERT_TRUE(lb::parse_syn(b.data(), b.size(), info));
  EXPECT_EQ(info.mss, 536);
}

TEST(SynCookieSynAck, BadInputsReturnZeroAndLeaveTheBuffer) {
  struct Case {
    const char* what;
    SynSpec spec;
    void (*mutate)(std::vector<uint8_t>&);
    size_t len;  // 0: the whole buffer
  };
  auto spec = [](auto f) {
    SynSpec s;
    s.pad = 16;
    f(s);
    return s;
  };
  auto none = [](std::vector<uint8_t>&) {};
  const std::vector<Case> cases = {
      {"runt", spec([](SynSpec&) {}), none, 19},
      {"shorter than the total length", spec([](SynSpec&) {}), none, 39},
      {"IPv6 version", spec([](SynSpec&) {}), [](std::vector<uint8_t>& b) { b[0] = 0x65; }, 0},
      {"IHL 4", spec([](SynSpec&) {}), [](std::vector<uint8_t>& b) { b[0] = 0x44; }, 0},
      {"IHL past the datagram", spec([](SynSpec&) {}), [](std::vector<uint8_t>& b) { b[0] = 0x4f; },
       0},
      {"total length below IP + TCP", spec([](SynSpec&) {}),
       [](std::vector<uint8_t>& b) { wr16(b.data() + 2, 39); }, 0},
      {"total length past len", spec([](SynSpec&) {}),
       [](std::vector<uint8_t>& b) { wr16(b.data() + 2, static_cast<uint16_t>(b.size() + 1)); }, 0},
      {"more fragments", spec([](SynSpec& s) { s.frag = 0x2000; }), none, 0},
      {"fragment offset", spec([](SynSpec& s) { s.frag = 0x0001; }), none, 0},
      {"UDP", spec([](SynSpec& s) { s.proto = 17; }), none, 0},
      {"TCP data offset 4", spec([](SynSpec&) {}),
       [](std::vector<uint8_t>& b) { b[20 + 12] = 0x40; }, 0},
      {"TCP header past the datagram", spec([](SynSpec&) {}),
       [](std::vector<uint8_t>& b) { b[20 + 12] = 0x60; }, 0},
      {"SYN+ACK", spec([](SynSpec& s) { s.flags = 0x12; }), none, 0},
      {"ACK", spec([](SynSpec& s) { s.flags = 0x10; }), none, 0},
      {"SYN+RST", spec([](SynSpec& s) { s.flags = 0x06; }), none, 0},
      {"SYN+FIN", spec([](SynSpec& s) { s.flags = 0x03; }), none, 0},
      {"no SYN", spec([](SynSpec& s) { s.flags = 0x08; }), none, 0},
      {"source port 0", spec([](SynSpec& s) { s.sport = 0; }), none, 0},
      {"destination port 0", spec([](SynSpec& s) { s.dport = 0; }), none, 0},
  };
  const SynCookies c(kKeyA, kHz);
  for (const Case& k : cases) {
    auto b = build_syn(k.spec);
    k.mutate(b);
    const auto before = b;
    const size_t len = k.len ? k.len : b.size();
    lb::SynInfo info{};
    EXPECT_FALSE(lb::parse_syn(b.data(), len, info)) << k.what;
    EXPECT_EQ(lb::build_synack(b.data(), len, 1, lb::SynAckOptions{}), 0u) << k.what;
    EXPECT_EQ(lb::answer_syn(c, b.data(), len, 0, lb::SynAckOptions{}), 0u) << k.what;
    EXPECT_EQ(b, before) << k.what;
  }
  // The same SYN untouched is accepted (the cases above fail for their own reason only).
  auto good = build_syn(spec([](SynSpec&) {}));
  EXPECT_EQ(lb::build_synack(good.data(), good.size(), 1, lb::SynAckOptions{}), 44u);
  // ECE|CWR (an ECN-setup SYN, RFC 3168 6.1.1) is still a SYN we answer, without ECN.
  auto ecn = build_syn(spec([](SynSpec& s) { s.flags = 0xc2; }));
  EXPECT_EQ(lb::build_synack(ecn.data(), ecn.size(), 1, lb::SynAckOptions{}), 44u);
  EXPECT_EQ(ecn[20 + 13], 0x12);
}

}  // namespace
}  // namespace nf::test
