// Internet checksum helpers that the data plane needs beyond rte_ipv4_cksum().
#pragma once

#include <rte_ip.h>

#include <cstdint>

namespace nf {

// Decrement TTL and patch the header checksum incrementally (RFC 1624 eqn. 3), so forwarding
// never re-sums the header. The TTL sits in the high byte of its 16-bit word, hence 0x0100.
inline void ipv4_dec_ttl(rte_ipv4_hdr* ip) {
  ip->time_to_live--;
  uint32_t sum = static_cast<uint16_t>(~rte_be_to_cpu_16(ip->hdr_checksum)) + 0xfeffu;  // + ~0x0100
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  ip->hdr_checksum = rte_cpu_to_be_16(static_cast<uint16_t>(~sum));
}

// True when the IPv4 header (with options) sums to 0xffff.
inline bool ipv4_cksum_ok(const rte_ipv4_hdr* ip) {
  const uint32_t hlen = (ip->version_ihl & 0xf) * 4u;
  return rte_raw_cksum(ip, hlen) == 0xffff;
}

}  // namespace nf
