// The one parse of a received frame into PacketMeta. Pure and inline: it reads a byte view and
// the receiving port's MAC, touches no DPDK state, and is what both the workers and the
// fuzz/unit tests call. For IPv4 it also completes the header validation of RFC 1812 5.2.2
// (version, IHL, lengths, header checksum) and 5.3.7 (martian addresses) while the header is
// in registers, so no later stage reads it again to check it. L4 checksums are left to the
// stage that consumes the L4 header.
#pragma once

#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>

#include <cstdint>
#include <cstring>

#include "nf/net/addr.h"
#include "nf/net/checksum.h"
#include "nf/net/packet_meta.h"

namespace nf {

// `max_frame` is the largest frame the port accepts (MTU + Ethernet header). Returns true when
// the frame is a valid IPv4 datagram without Ethernet padding (a "clean" frame: see Burst).
inline bool parse_frame(const uint8_t* p, uint32_t len, const MacAddr& port_mac, uint32_t max_frame,
                        PacketMeta& m) {
  m = PacketMeta{};
  if (len < sizeof(rte_ether_hdr)) [[unlikely]] {
    m.parse = ParseStatus::kRunt;
    return false;
  }
  if (len > max_frame) [[unlikely]] {
    m.parse = ParseStatus::kOversized;
    return false;
  }
  const auto* eth = reinterpret_cast<const rte_ether_hdr*>(p);
  if (eth->dst_addr.addr_bytes[0] & 1) {
    m.l2 = rte_is_broadcast_ether_addr(&eth->dst_addr) ? L2Class::kBroadcast : L2Class::kMulticast;
  } else if (std::memcmp(eth->dst_addr.addr_bytes, port_mac.b.data(), 6) != 0) [[unlikely]] {
    m.parse = ParseStatus::kNotForUs;
    return false;
  }
  m.ether_type = rte_be_to_cpu_16(eth->ether_type);
  m.l3_off = sizeof(rte_ether_hdr);
  const uint32_t l3_avail = len - sizeof(rte_ether_hdr);

  if (m.ether_type == RTE_ETHER_TYPE_IPV4) [[likely]] {
    if (l3_avail < sizeof(rte_ipv4_hdr)) [[unlikely]] {
      m.parse = ParseStatus::kIpTruncated;
      return false;
    }
    const auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(p + m.l3_off);
    const uint8_t vihl = ip->version_ihl;
    if ((vihl >> 4) != 4) [[unlikely]] {
      m.parse = ParseStatus::kIpBadVersion;
      return false;
    }
    const uint32_t hlen = (vihl & 0xf) * 4u;
    const uint32_t tlen = rte_be_to_cpu_16(ip->total_length);
    if (hlen < sizeof(rte_ipv4_hdr)) [[unlikely]] {
      m.parse = ParseStatus::kIpBadIhl;
      return false;
    }
    if (tlen < hlen) [[unlikely]] {
      m.parse = hlen > l3_avail ? ParseStatus::kIpBadIhl : ParseStatus::kIpBadLength;
      return false;
    }
    if (tlen > l3_avail) [[unlikely]] {
      m.parse = ParseStatus::kIpTruncated;
      return false;
    }
    m.l3_len = static_cast<uint16_t>(tlen);
    m.ip_proto = ip->next_proto_id;
    const uint16_t frag = rte_be_to_cpu_16(ip->fragment_offset);
    if (frag & RTE_IPV4_HDR_DF_FLAG) m.flags |= meta_flags::kDontFragment;
    if (frag & (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) m.flags |= meta_flags::kFragment;
    if (frag & RTE_IPV4_HDR_OFFSET_MASK) {
      m.flags |= meta_flags::kLaterFragment;
    } else {
      m.l4_off = static_cast<uint16_t>(m.l3_off + hlen);
    }
    if (hlen > sizeof(rte_ipv4_hdr)) m.flags |= meta_flags::kIpOptions;
    if (tlen < l3_avail) m.flags |= meta_flags::kPadded;
    if (!ipv4_cksum_ok(ip)) [[unlikely]] {
      m.parse = ParseStatus::kIpBadChecksum;
      return false;
    }
    m.ip_dst = rte_be_to_cpu_32(ip->dst_addr);
    // RFC 1122 3.2.1.3: 0.0.0.0 is a valid source while a host learns its address (a DHCP
    // client's broadcasts); any other martian source is dropped.
    if (const uint32_t src = rte_be_to_cpu_32(ip->src_addr); is_martian_source(src)) [[unlikely]] {
      if (src != 0 || m.ip_dst != 0xffffffffu) {
        m.parse = ParseStatus::kMartianSource;
        return false;
      }
    }
    const uint8_t dtop = static_cast<uint8_t>(m.ip_dst >> 24);
    // RFC 1812 5.3.7: 0/8, 127/8 and class E (240/4, but for the limited broadcast).
    if (dtop == 0 || dtop == 127 || (dtop >= 240 && m.ip_dst != 0xffffffffu)) [[unlikely]] {
      m.parse = ParseStatus::kMartianDestination;
      return false;
    }
    return tlen == l3_avail;
  }
  switch (m.ether_type) {
    case RTE_ETHER_TYPE_ARP: {
      const auto* arp = reinterpret_cast<const rte_arp_hdr*>(p + m.l3_off);
      m.parse = (l3_avail >= sizeof(rte_arp_hdr) &&
                 arp->arp_hardware == rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) &&
                 arp->arp_protocol == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) && arp->arp_hlen == 6 &&
                 arp->arp_plen == 4)
                    ? ParseStatus::kArp
                    : ParseStatus::kBadArp;
      return false;
    }
    case RTE_ETHER_TYPE_IPV6:
      m.parse = ParseStatus::kIpv6;
      return false;
    case RTE_ETHER_TYPE_VLAN:
    case RTE_ETHER_TYPE_QINQ:
      m.parse = ParseStatus::kVlan;
      return false;
    default:
      m.parse = ParseStatus::kUnknownEthertype;
      return false;
  }
}

}  // namespace nf
