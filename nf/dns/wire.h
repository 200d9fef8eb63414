// DNS messages on the wire: the query parser the answer path runs for every packet, and the
// header constants both directions share.
//
// Theory of operation
// -------------------
// parse_query() reads a whole query message once (RFC 1035 4.1): header, the one question,
// then every record after it, looking for the OPT pseudo-record (RFC 6891 6.1.1: it may be
// anywhere in ADDITIONAL, and there must be at most one) and, inside it, EDNS Client Subnet
// (RFC 7871 6). While it walks the question name it writes a lower-cased copy and hashes it
// with CRC32C, so the zone lookup needs no second pass over the name (RFC 4343: matching is
// case-insensitive; the answer keeps the query's own spelling because the question section is
// sent back as received).
//
// It never reads past `len`. The outcome decides what kind of answer is possible:
//   kDrop     too short for a header, or a response (QR=1): answering could start a loop
//   kFormErr  the header is readable but the rest is not (RFC 1035 4.1.1 FORMERR)
//   kNotImp   an opcode other than QUERY (RFC 1035 4.1.1 NOTIMP)
//   kOk       a question we can look up
// A query name given with a compression pointer is FORMERR: there is nothing earlier in a
// query for it to point at.
#pragma once

#include <rte_hash_crc.h>

#include <cstdint>
#include <cstring>

namespace nf::dns {

inline constexpr uint16_t kHeaderLen = 12;
inline constexpr uint16_t kPort = 53;
inline constexpr uint16_t kMinUdpSize = 512;  // RFC 1035 4.2.1, and any EDNS size below it

namespace rcode {
inline constexpr uint8_t kNoError = 0, kFormErr = 1, kServFail = 2, kNxDomain = 3, kNotImp = 4,
                         kRefused = 5;
inline constexpr uint16_t kBadVers = 16;  // extended (RFC 6891 9): upper 8 bits go in the OPT TTL
}  // namespace rcode

// Header flag bits of the second 16-bit word (host order).
namespace flag {
inline constexpr uint16_t kQr = 0x8000, kAa = 0x0400, kTc = 0x0200, kRd = 0x0100, kRa = 0x0080,
                          kCd = 0x0010, kOpcodeMask = 0x7800;
}

inline constexpr uint16_t kOptDo = 0x8000;     // DNSSEC OK, echoed (RFC 3225 3)
inline constexpr uint16_t kOptionEcs = 8;      // RFC 7871 6
inline constexpr uint16_t kOptionCookie = 10;  // RFC 7873 (read but not answered yet)

enum class ParseStatus : uint8_t { kOk, kDrop, kFormErr, kNotImp };

struct Query {
  uint16_t id;
  uint16_t flags;  // as received (RD and CD are copied to the answer)
  uint16_t qtype;
  uint16_t qclass;
  uint16_t qname_len;     // wire length of the question name (at offset 12)
  uint16_t question_end;  // offset just past QTYPE/QCLASS
  uint32_t hash;          // CRC32C of lname
  // EDNS (RFC 6891).
  bool edns;
  bool do_bit;
  uint8_t edns_version;
  uint16_t udp_size;  // client's advertised payload size (>= 512 when edns)
  // EDNS Client Subnet (RFC 7871), when present and well-formed.
  bool ecs;
  uint8_t ecs_source;    // SOURCE PREFIX-LENGTH
  uint16_t ecs_family;   // 1 = IPv4, 2 = IPv6
  uint8_t ecs_addr_len;  // bytes of address sent (ceil(source / 8))
  uint8_t ecs_addr[16];
  uint8_t lname[256];  // the question name in lower case, wire format
};

inline uint16_t rd16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
inline uint32_t rd32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | p[3];
}
inline void wr16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void wr32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// rte_hash_crc()'s algorithm with memcpy loads: names (and their suffixes) sit at any byte
// offset, and rte_hash_crc() dereferences them as uint64_t (UBSan: misaligned load).
inline uint32_t name_hash(const uint8_t* lname, size_t len) {
  uint32_t h = 0x6e662d64;
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t v;
    std::memcpy(&v, lname + i, 8);
    h = rte_hash_crc_8byte(v, h);
  }
  if (len & 4) {
    uint32_t v;
    std::memcpy(&v, lname + i, 4);
    h = rte_hash_crc_4byte(v, h);
    i += 4;
  }
  if (len & 2) {
    uint16_t v;
    std::memcpy(&v, lname + i, 2);
    h = rte_hash_crc_2byte(v, h);
    i += 2;
  }
  if (len & 1) h = rte_hash_crc_1byte(lname[i], h);
  return h;
}

// Skips a possibly compressed name in a message; returns the offset after it, or 0 on error.
inline uint32_t skip_name(const uint8_t* msg, uint32_t len, uint32_t off) {
  uint32_t total = 0;
  while (off < len) {
    const uint8_t l = msg[off];
    if (l == 0) return off + 1;
    if ((l & 0xc0) == 0xc0) return off + 2 <= len ? off + 2 : 0;
    if (l & 0xc0) return 0;  // 0x40/0x80 label types are obsolete (RFC 6891 5)
    total += l + 1u;
    if (total > 254) return 0;
    off += l + 1u;
  }
  return 0;
}

// Reads the OPT record's RDATA (RFC 6891 6.1.2) for the options we use.
inline bool parse_opt_options(const uint8_t* p, uint32_t n, Query& q) {
  uint32_t i = 0;
  while (i < n) {
    if (n - i < 4) return false;
    const uint16_t code = rd16(p + i);
    const uint16_t olen = rd16(p + i + 2);
    i += 4;
    if (olen > n - i) return false;
    if (code == kOptionEcs) {
      // RFC 7871 6: FAMILY, SOURCE, SCOPE (must be 0 in queries), ADDRESS truncated to
      // ceil(SOURCE/8) bytes. Anything else is FORMERR (7.1.2... "MUST ... FORMERR").
      if (olen < 4 || q.ecs) return false;
      const uint16_t fam = rd16(p + i);
      const uint8_t src = p[i + 2];
      const uint8_t scope = p[i + 3];
      const uint32_t alen = olen - 4u;
      const uint32_t maxbits = fam == 1 ? 32 : fam == 2 ? 128 : 0;
      if (maxbits == 0 || src > maxbits || scope != 0 || alen != (src + 7u) / 8u) return false;
      if (alen) {
        // Bits beyond SOURCE must be zero.
        const uint8_t last = p[i + 4 + alen - 1];
        const uint8_t spare = static_cast<uint8_t>((alen * 8u - src) & 7u);
        if (spare && (last & ((1u << spare) - 1u))) return false;
      }
      q.ecs = true;
      q.ecs_family = fam;
      q.ecs_source = src;
      q.ecs_addr_len = static_cast<uint8_t>(alen);
      std::memcpy(q.ecs_addr, p + i + 4, alen);
    }
    i += olen;
  }
  return true;
}

inline ParseStatus parse_query(const uint8_t* msg, uint32_t len, Query& q) {
  if (len < kHeaderLen) return ParseStatus::kDrop;
  q.id = rd16(msg);
  q.flags = rd16(msg + 2);
  if (q.flags & flag::kQr) return ParseStatus::kDrop;
  q.edns = false;
  q.ecs = false;
  q.do_bit = false;
  q.edns_version = 0;
  q.udp_size = kMinUdpSize;
  q.qname_len = 0;
  q.question_end = kHeaderLen;
  const uint16_t qd = rd16(msg + 4);
  if ((q.flags & flag::kOpcodeMask) != 0) {
    // NOTIMP echoes the question when there is exactly one readable one.
    // Only an uncompressed name is echoed: a pointer could make the answer's question loop.
    if (qd == 1) {
      uint32_t e = kHeaderLen;
      while (e < len && msg[e] != 0 && msg[e] <= 63 && e - kHeaderLen + msg[e] + 1u < 255)
        e += msg[e] + 1u;
      if (e < len && msg[e] == 0 && e + 5 <= len) {
        q.qname_len = static_cast<uint16_t>(e + 1 - kHeaderLen);
        q.question_end = static_cast<uint16_t>(e + 5);
      }
    }
    return ParseStatus::kNotImp;
  }
  if (qd != 1) return ParseStatus::kFormErr;

  // The question name: lower-cased into lname as it is checked.
  uint32_t off = kHeaderLen;
  uint32_t o = 0;
  for (;;) {
    if (off >= len) return ParseStatus::kFormErr;
    const uint8_t l = msg[off];
    if (l == 0) {
      q.lname[o++] = 0;
      ++off;
      break;
    }
    if (l > 63) return ParseStatus::kFormErr;  // pointer or reserved label type
    if (off + 1u + l > len || o + 1u + l > 254) return ParseStatus::kFormErr;
    q.lname[o++] = l;
    const uint8_t* s = msg + off + 1;
    for (uint32_t k = 0; k < l; ++k) {
      const uint8_t c = s[k];
      q.lname[o + k] = static_cast<uint8_t>(static_cast<uint8_t>(c - 'A') < 26 ? c + 32 : c);
    }
    o += l;
    off += 1u + l;
  }
  if (off + 4 > len) return ParseStatus::kFormErr;
  q.qname_len = static_cast<uint16_t>(o);
  q.qtype = rd16(msg + off);
  q.qclass = rd16(msg + off + 2);
  off += 4;
  q.question_end = static_cast<uint16_t>(off);
  q.hash = name_hash(q.lname, o);

  // Every record after the question; only OPT matters to us.
  const uint32_t rest = uint32_t{rd16(msg + 6)} + rd16(msg + 8) + rd16(msg + 10);
  const uint32_t ar_first = uint32_t{rd16(msg + 6)} + rd16(msg + 8);
  for (uint32_t r = 0; r < rest; ++r) {
    const bool is_root = off < len && msg[off] == 0;
    const uint32_t e = skip_name(msg, len, off);
    if (!e || e + 10 > len) return ParseStatus::kFormErr;
    const uint16_t type = rd16(msg + e);
    const uint16_t rdlen = rd16(msg + e + 8);
    if (e + 10u + rdlen > len) return ParseStatus::kFormErr;
    if (type == 41) {
      // RFC 6891 6.1.1: one OPT, owner root, in ADDITIONAL only.
      if (q.edns || !is_root || r < ar_first) return ParseStatus::kFormErr;
      q.edns = true;
      const uint16_t size = rd16(msg + e + 2);
      q.udp_size = size < kMinUdpSize ? kMinUdpSize : size;
      q.edns_version = msg[e + 5];
      q.do_bit = (rd16(msg + e + 6) & kOptDo) != 0;
      if (!parse_opt_options(msg + e + 10, rdlen, q)) return ParseStatus::kFormErr;
    }
    off = e + 10u + rdlen;
  }
  return ParseStatus::kOk;
}

}  // namespace nf::dns
