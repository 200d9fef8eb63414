// input: the first stage of every chain.
//
// Purpose: turn the worker's single parse of each frame (PacketMeta::parse, which includes the
//          IPv4 header validation of RFC 1812 5.2.2 and the martian checks of 5.3.7) into
//          outcomes, so that every later stage can trust the header.
// Edges:   next (valid IPv4), punt/arp (ARP for the management lcore), drop.
// State:   none.
// Drops:   one reason per malformed or unsupported frame kind (kDropNames), so `nfctl show
//          drops` tells an operator exactly what arrived.
// Also trims Ethernet padding, so that later stages see the IP datagram's own length.
// A burst of valid IPv4 frames (the common case) moves on whole, without a per-packet branch
// tree.
#pragma once

#include <array>
#include <string_view>

#include "nf/core/stage.h"

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
    if (in.clean) [[likely]] {
      out.next_all(in);
      return;
    }
    for (uint16_t i = 0; i < in.n; ++i) classify(in.pkts[i], out);
  }

 private:
  static void classify(rte_mbuf* m, Emit& out) {
    const PacketMeta& md = meta(m);
    switch (md.parse) {
      case ParseStatus::kOk: {
        const uint32_t frame = md.l3_off + md.l3_len;
        if (m->pkt_len > frame) rte_pktmbuf_trim(m, static_cast<uint16_t>(m->pkt_len - frame));
        out.next(m);
        return;
      }
      case ParseStatus::kArp:
        out.punt(m, PuntReason::kArp);
        return;
      case ParseStatus::kRunt:
        out.drop(m, kRunt);
        return;
      case ParseStatus::kNotForUs:
        out.drop(m, kNotForUs);
        return;
      case ParseStatus::kBadArp:
        out.drop(m, kBadArp);
        return;
      case ParseStatus::kIpv6:
        out.drop(m, kIpv6);
        return;
      case ParseStatus::kVlan:
        out.drop(m, kVlan);
        return;
      case ParseStatus::kUnknownEthertype:
        out.drop(m, kUnknownEthertype);
        return;
      case ParseStatus::kIpTruncated:
        out.drop(m, kIpTruncated);
        return;
      case ParseStatus::kIpBadVersion:
        out.drop(m, kIpBadVersion);
        return;
      case ParseStatus::kIpBadIhl:
        out.drop(m, kIpBadIhl);
        return;
      case ParseStatus::kIpBadLength:
        out.drop(m, kIpBadLength);
        return;
      case ParseStatus::kOversized:
        out.drop(m, kOversized);
        return;
      case ParseStatus::kIpBadChecksum:
        out.drop(m, kIpBadChecksum);
        return;
      case ParseStatus::kMartianSource:
        out.drop(m, kMartianSource);
        return;
      case ParseStatus::kMartianDestination:
        out.drop(m, kMartianDestination);
        return;
      case ParseStatus::kCount:
        break;
    }
    out.drop(m, kUnknownEthertype);  // unreachable: every status is handled above
  }
};

}  // namespace nf::ip4
