// input: the first stage of every chain.
//
// Purpose: turn the structural parse (PacketMeta, filled by the worker on receive) into
// outcomes, and finish IPv4 header validation (RFC 1812 5.2.2, 5.3.7) so that every later
// stage can trust the header.
// Edges:   next (valid IPv4), punt/arp (ARP for the management lcore), drop.
// State:   none.
// Drops:   one reason per malformed or unsupported frame kind (kDropNames), so `nfctl show
//          drops` tells an operator exactly what arrived.
// Also trims Ethernet padding, so that later stages see the IP datagram's own length.
#pragma once

#include <array>
#include <string_view>

#include "nf/core/stage.h"
#include "nf/net/addr.h"
#include "nf/net/checksum.h"

namespace nf::ip4 {

class InputStage final : public Stage {
 public:
  enum Drop : uint8_t {
    kRunt,
    kNotForUs,
    kBadArp,
    kIpv6,
    kVlan,
    kUnknownEthertype,
    kIpTruncated,
    kIpBadVersion,
    kIpBadIhl,
    kIpBadLength,
    kOversized,
    kIpBadChecksum,
    kMartianSource,
    kMartianDestination,
    kDropCount
  };
  static constexpr std::array<std::string_view, kDropCount> kDropNames = {
      "runt",           "not_for_us",         "bad_arp",      "ipv6",
      "vlan",           "unknown_ethertype",  "ip_truncated", "ip_bad_version",
      "ip_bad_ihl",     "ip_bad_length",      "oversized",    "ip_bad_checksum",
      "martian_source", "martian_destination"};

  void process(Burst& in, const StageCtx& /*ctx*/, Emit& out) noexcept override {
    for (uint16_t i = 0; i < in.n; ++i) {
      rte_mbuf* m = in.pkts[i];
      PacketMeta& md = meta(m);
      if (md.parse == ParseStatus::kOk) [[likely]] {
        auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr*, md.l3_off);
        if (!ipv4_cksum_ok(ip)) [[unlikely]] {
          out.drop(m, kIpBadChecksum);
          continue;
        }
        const uint32_t src = rte_be_to_cpu_32(ip->src_addr);
        const uint32_t dst = rte_be_to_cpu_32(ip->dst_addr);
        if (is_martian_source(src)) [[unlikely]] {
          out.drop(m, kMartianSource);
          continue;
        }
        const uint8_t dtop = static_cast<uint8_t>(dst >> 24);
        if (dtop == 0 || dtop == 127) [[unlikely]] {
          out.drop(m, kMartianDestination);
          continue;
        }
        const uint32_t frame = md.l3_off + md.l3_len;
        if (m->pkt_len > frame) rte_pktmbuf_trim(m, static_cast<uint16_t>(m->pkt_len - frame));
        out.next(m);
        continue;
      }
      switch (md.parse) {
        case ParseStatus::kArp:
          out.punt(m, PuntReason::kArp);
          break;
        case ParseStatus::kRunt:
          out.drop(m, kRunt);
          break;
        case ParseStatus::kNotForUs:
          out.drop(m, kNotForUs);
          break;
        case ParseStatus::kBadArp:
          out.drop(m, kBadArp);
          break;
        case ParseStatus::kIpv6:
          out.drop(m, kIpv6);
          break;
        case ParseStatus::kVlan:
          out.drop(m, kVlan);
          break;
        case ParseStatus::kIpTruncated:
          out.drop(m, kIpTruncated);
          break;
        case ParseStatus::kIpBadVersion:
          out.drop(m, kIpBadVersion);
          break;
        case ParseStatus::kIpBadIhl:
          out.drop(m, kIpBadIhl);
          break;
        case ParseStatus::kIpBadLength:
          out.drop(m, kIpBadLength);
          break;
        case ParseStatus::kOversized:
          out.drop(m, kOversized);
          break;
        default:
          out.drop(m, kUnknownEthertype);
          break;
      }
    }
  }
};

}  // namespace nf::ip4
