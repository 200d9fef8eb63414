// Internet checksum helpers that the data plane needs beyond rte_ipv4_cksum().
#pragma once

#include <rte_ip.h>

#include <cstdint>
#include <cstring>

namespace nf {

// Decrement TTL and patch the header checksum incrementally (RFC 1624 eqn. 3), so forwarding
// never re-sums the header. The one's-complement sum is byte-order independent (RFC 1071), so
// the update works on the wire-order word: read little-endian, the TTL is the low byte of the
// (TTL, protocol) word and decrementing it subtracts 1, i.e. ~m + m' = 0xfffe.
static_assert(RTE_BYTE_ORDER == RTE_LITTLE_ENDIAN, "ipv4_dec_ttl assumes a little-endian host");
inline void ipv4_dec_ttl(rte_ipv4_hdr* ip) {
  ip->time_to_live--;
  uint32_t sum = static_cast<uint16_t>(~ip->hdr_checksum) + 0xfffeu;
  sum = (sum & 0xffff) + (sum >> 16);
  ip->hdr_checksum = static_cast<uint16_t>(~sum);
}

// True when the IPv4 header (with options) sums to 0xffff. The option-less header, nearly every
// packet, is summed as five 32-bit words with end-around carry instead of the generic loop.
inline bool ipv4_cksum_ok(const rte_ipv4_hdr* ip) {
  const uint32_t hlen = (ip->version_ihl & 0xf) * 4u;
  if (hlen == sizeof(rte_ipv4_hdr)) [[likely]] {
    // Straight from the packet in three loads (no copy through the stack).
    const auto* p = reinterpret_cast<const uint8_t*>(ip);
    uint64_t a, b;
    uint32_t c;
    std::memcpy(&a, p, 8);
    std::memcpy(&b, p + 8, 8);
    std::memcpy(&c, p + 16, 4);
    uint64_t sum = (a & 0xffffffff) + (a >> 32) + (b & 0xffffffff) + (b >> 32) + c;
    sum = (sum & 0xffffffff) + (sum >> 32);
    uint32_t s32 = static_cast<uint32_t>(sum);
    s32 = (s32 & 0xffff) + (s32 >> 16);
    s32 = (s32 & 0xffff) + (s32 >> 16);
    return s32 == 0xffff;
  }
  return rte_raw_cksum(ip, hlen) == 0xffff;
}

}  // namespace nf
