// SYN cookies for NAT services under a SYN flood or with a full flow table (RFC 4987 3.6).
//
// Theory of operation
// -------------------
// When the flow table cannot take a new flow, a NAT service answers a SYN itself with a
// SYN-ACK whose sequence number (the cookie) carries everything needed to recognise the
// client's final ACK later, so nothing is stored per SYN. The layout follows Linux
// (net/ipv4/syncookies.c, itself after D. J. Bernstein): a keyed hash of the connection masks
// a small time counter, an MSS index and a MAC.
//
//   mask   = SipHash-2-4(key; saddr, daddr, sport, dport, client ISN)          low 32 bits
//   mac    = SipHash-2-4(key; saddr, daddr, sport, dport, client ISN,
//                        counter * 8 + mss index)                             low 24 bits
//   cookie = ((counter mod 32) << 27 | mss index << 24 | mac) + mask          (mod 2^32)
//
// Adding the mask makes the whole cookie unpredictable to anyone who did not see the SYN-ACK
// (the server ISN stays as random as RFC 6528 wants), and the MAC covers the full counter and
// the MSS index, so a client cannot stretch a cookie's life or pick another table entry.
// Both hashes share their first two message words, so one SipHash state absorbs them once
// and forks (the messages differ in length, which SipHash mixes in: separate domains).
//
// Time: counter = now / (64 s in ticks of `now`); `now` is the caller's clock, in the unit it
// gave the constructor as ticks per second (TSC for the workers, 1000 for milliseconds).
// check() accepts a cookie made in the current step or the one before (kCookieMaxAge = 2, as
// Linux's MAX_SYNCOOKIE_AGE with 60 s steps): a cookie lives between 64 and 128 s. Counter
// values from the future, or older, are rejected before the MAC is computed.
//
// Secrets: the caller seeds the 128-bit key (from a CSPRNG) and may rotate it; the object
// keeps the current and the previous key, and check() tries both, so cookies handed out just
// before a rotation still complete. A cookie from two rotations ago fails. An invalid cookie
// costs the mask hash per key tried, and the MAC only when its decoded counter is in range
// (2 times in 32), so an ACK flood is no dearer to check than a valid ACK.
//
// Strength: a forged ACK passes with probability 2^-24 (MAC) x 2/32 (counter) per key tried,
// i.e. 2^-27 with two keys. As in Linux, the result is a state the attacker could also have
// created with an honest handshake from that address; it is not an authentication.
//
// MSS: eight values (kMssTable); make() encodes the largest that is <= the client's MSS
// (536 when the SYN has no MSS option or a smaller one: RFC 1122 4.2.2.6 makes 536 the
// default every host accepts). check() returns that table value.
// Not encoded (the SYN-ACK does not offer them): window scaling, SACK-permitted, timestamps
// and ECN. Connections completed from a cookie therefore run with a 64 KiB window and no SACK;
// Linux recovers these from the timestamp option, which this appliance does not send.
//
// Thread safety: make() and check() are const and touch only the object, so workers may share
// one read-only SynCookies (e.g. in the RCU snapshot). rotate() mutates: do it on a copy and
// publish the copy. Nothing here allocates, locks or reads a clock.
//
// The SYN-ACK builder works on a plain byte view of the received IPv4 datagram (no mbuf): it
// validates the SYN, rewrites the buffer in place into the answer (addresses and ports swapped,
// seq = cookie, ack = client ISN + 1, only an MSS option, TTL 64, DF, both checksums computed
// in full) and returns the new IP total length, or 0 when the input is not a plain SYN it can
// answer. The Ethernet header is the stage's business, and so is what follows a valid ACK:
// opening the connection to the real and shifting sequence numbers by (cookie - the real's
// ISN) on every later packet, as a SYN proxy (DPVS) does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

namespace nf::lb {

// ---- SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012) ----

struct SipKey {
  uint64_t k0 = 0, k1 = 0;  // the 16 key bytes read as two little-endian words
  bool operator==(const SipKey&) const = default;
};

// The SipHash state, for callers that hash whole 64-bit words: absorb() takes one message
// word (the little-endian reading of 8 message bytes), finish() the total message length in
// bytes (a multiple of 8 here). siphash24() below is the byte-oriented form.
class SipState {
 public:
  explicit SipState(const SipKey& k)
      : v0_(k.k0 ^ 0x736f6d6570736575ULL),
        v1_(k.k1 ^ 0x646f72616e646f6dULL),
        v2_(k.k0 ^ 0x6c7967656e657261ULL),
        v3_(k.k1 ^ 0x7465646279746573ULL) {}

  void absorb(uint64_t m) {
    v3_ ^= m;
    round();
    round();
    v0_ ^= m;
  }
  // `tail` holds the message bytes after the last whole word (fewer than 8), little-endian.
  uint64_t finish(uint64_t total_len, uint64_t tail = 0) {
    absorb(tail | (total_len << 56));
    v2_ ^= 0xff;
    round();
    round();
    round();
    round();
    return v0_ ^ v1_ ^ v2_ ^ v3_;
  }

 private:
  static uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }
  void round() {
    v0_ += v1_;
    v1_ = rotl(v1_, 13);
    v1_ ^= v0_;
    v0_ = rotl(v0_, 32);
    v2_ += v3_;
    v3_ = rotl(v3_, 16);
    v3_ ^= v2_;
    v0_ += v3_;
    v3_ = rotl(v3_, 21);
    v3_ ^= v0_;
    v2_ += v1_;
    v1_ = rotl(v1_, 17);
    v1_ ^= v2_;
    v2_ = rotl(v2_, 32);
  }
  uint64_t v0_, v1_, v2_, v3_;
};

// SipHash-2-4 of `len` bytes; the 64-bit result as the reference code's little-endian output.
uint64_t siphash24(const SipKey& key, const void* data, size_t len);

// ---- Cookies ----

// 1460 Ethernet, 1440 and 1400/1360/1300 below tunnels, VPNs and PPPoE (1452 rounds to 1440),
// 1200 for small-MTU paths, 8960 a 9000-byte jumbo frame. Rounding down costs a client at most
// 8.3 % more segments from 1200 to 1460; below 1200 (rare on IPv4 paths) it falls to 536.
inline constexpr uint16_t kMssTable[8] = {536, 1200, 1300, 1360, 1400, 1440, 1460, 8960};
inline constexpr uint16_t kDefaultMss = 536;  // RFC 1122 4.2.2.6: no MSS option
inline constexpr uint32_t kCookiePeriodSeconds = 64;
inline constexpr uint32_t kCookieMaxAge = 2;  // counter steps: current and previous

// Index of the largest kMssTable entry <= mss (0 when mss is below them all).
inline uint32_t mss_index(uint16_t mss) {
  uint32_t i = 0;
  // Seven compares on a constant table: branch-free in practice, no search needed.
  for (uint32_t j = 1; j < 8; ++j) i += mss >= kMssTable[j];
  return i;
}

class SynCookies {
 public:
  // ticks_per_second: the rate of the `now` passed to make()/check() (> 0).
  SynCookies(const SipKey& secret, uint64_t ticks_per_second);

  // The current key becomes the previous one; cookies made with it keep validating until the
  // next rotation. Not safe concurrently with make()/check() on the same object.
  void rotate(const SipKey& next);

  // The cookie (our ISN) for a SYN. Addresses and ports in host byte order.
  uint32_t make(uint32_t saddr, uint32_t daddr, uint16_t sport, uint16_t dport, uint32_t client_isn,
                uint16_t client_mss, uint64_t now) const;

  // For the client's final ACK of the handshake (same direction as its SYN): client_isn is
  // the ACK's seq - 1 and cookie its ack_seq - 1. The MSS (a kMssTable value) when the cookie
  // is one of ours and at most kCookieMaxAge - 1 counter steps old, else nullopt.
  std::optional<uint16_t> check(uint32_t saddr, uint32_t daddr, uint16_t sport, uint16_t dport,
                                uint32_t client_isn, uint32_t cookie, uint64_t now) const;

  uint64_t counter(uint64_t now) const { return now / period_; }
  uint64_t period_ticks() const { return period_; }
  bool has_previous() const { return has_prev_; }

 private:
  struct Hashes {
    uint32_t mask, mac;
  };
  static Hashes hashes(const SipKey& k, uint64_t w0, uint64_t w1, uint64_t ctr, uint32_t idx);
  static std::optional<uint16_t> check_with(const SipKey& k, uint64_t w0, uint64_t w1,
                                            uint32_t cookie, uint64_t ctr);

  SipKey cur_, prev_;
  uint64_t period_;
  bool has_prev_ = false;
};

// ---- SYN parsing and the SYN-ACK ----

struct SynInfo {
  uint32_t saddr, daddr;  // host order
  uint16_t sport, dport;  // host order
  uint32_t isn;           // the client's sequence number
  uint16_t mss;           // its MSS option, kDefaultMss when absent (or 0)
};

// Validates a received IPv4 datagram as a TCP SYN we can answer and reads its connection.
// `len` is the number of bytes available at l3 (the datagram plus any Ethernet padding). It
// must be IPv4, not a fragment, TCP, the headers within the IP total length and that within
// len, flags SYN without ACK, RST or FIN, and neither port 0. IP options are allowed (and not
// echoed); TCP options are read up to the first malformed one (as Linux does). The checksums
// are not verified here: the NIC's RX offload flags or the caller do that.
bool parse_syn(const uint8_t* l3, size_t len, SynInfo& out);

struct SynAckOptions {
  uint16_t mss = 1460;      // advertised: what the path to the reals carries (less encapsulation)
  uint16_t window = 65535;  // never scaled in a SYN-ACK (RFC 7323 2.2)
  uint16_t ip_id = 0;       // the caller's IP ID counter
};
inline constexpr uint8_t kSynAckTtl = 64;
inline constexpr size_t kSynAckLen = 20 + 24;  // IPv4 without options + TCP with MSS option

// Rewrites the SYN at l3 in place into our SYN-ACK with seq = cookie. Returns the new IP total
// length (kSynAckLen), or 0 (buffer untouched) when parse_syn() refuses it or len < kSynAckLen.
size_t build_synack(uint8_t* l3, size_t len, uint32_t cookie, const SynAckOptions& o);

// parse_syn() + make() + build_synack() with one parse: the whole answer to a SYN.
size_t answer_syn(const SynCookies& cookies, uint8_t* l3, size_t len, uint64_t now,
                  const SynAckOptions& o);

}  // namespace nf::lb
