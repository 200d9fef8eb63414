// dhcp: the DHCPv4 server (RFC 2131, RFC 2132), answering from the worker lcores.
//
// Purpose: take DHCP requests addressed to the appliance (UDP port 67, to the limited
//          broadcast, a subnet broadcast or one of our addresses) and answer them: OFFER,
//          ACK, NAK, and the ACK to INFORM, built in place in the request's mbuf. Everything
//          else passes on untouched (a relayed request to another server is just forwarded).
// Edges:   next (not for us); reply (OFFER, NAK, INFORM's ACK, on the ingress port);
//          commit (an ACK, sent by the worker once its lease record is durable; RELEASE and
//          DECLINE records); handoff (the client's lease shard lives on another worker);
//          drop (kDropNames).
// State:   this worker's lease Shard (nf/dhcp/server.h), the shared address bitmap; the pool
//          configuration comes from the snapshot (Snapshot::dhcp), rebuilt on reload.
// Drops:   malformed messages by kind, no pool for the interface/relay, rate limited,
//          pool exhausted, lease table full, REQUESTs for another server, requests about
//          leases we do not hold (RFC 2131 4.3.2: stay silent), RELEASE/DECLINE that match
//          nothing, fragments (DHCP never needs them).
// RFC 2131 4.1 reply addressing: to the relay (giaddr:67); NAK broadcast; to ciaddr; with the
// broadcast bit set, to 255.255.255.255; else link-layer unicast to chaddr at yiaddr without
// ARP. Option 82 is echoed last (RFC 3046 2.2), option 61 echoed (RFC 6842), option 80 on a
// rapid-commit ACK (RFC 4039). The reply's UDP checksum is computed.
#pragma once

#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include <array>
#include <memory>
#include <string_view>

#include "nf/core/stage.h"
#include "nf/dhcp/server.h"
#include "nf/dhcp/service.h"
#include "nf/dhcp/wire.h"
#include "nf/runtime/snapshot.h"

namespace nf::dhcp {

class DhcpStage final : public Stage {
 public:
  enum Drop : uint8_t {
    kShort,
    kNotRequest,
    kBadHardware,
    kBadMagic,
    kBadOptions,
    kBadType,
    kFragment,
    kNoPool,
    kRateLimited,
    kPoolExhausted,
    kTableFull,
    kOtherServer,
    kNotOurs,
    kIgnored,
    kNoRoom,
    kDropCount
  };
  static constexpr std::array<std::string_view, kDropCount> kDropNames = {
      "dhcp_short",        "dhcp_not_request",    "dhcp_bad_hardware", "dhcp_bad_magic",
      "dhcp_bad_options",  "dhcp_bad_type",       "dhcp_fragment",     "dhcp_no_pool",
      "dhcp_rate_limited", "dhcp_pool_exhausted", "dhcp_table_full",   "dhcp_other_server",
      "dhcp_not_ours",     "dhcp_ignored",        "dhcp_no_room"};

  DhcpStage(uint16_t worker, const StageEnv& env);
  ~DhcpStage() override;

  void process(Burst& in, const StageCtx& ctx, Emit& out) noexcept override {
    const Snapshot& s = *ctx.snap;
    const int64_t now_ms = now(ctx.now_tsc);
    for (uint16_t i = 0; i < in.n; ++i) {
      rte_mbuf* m = in.pkts[i];
      const PacketMeta& md = meta(m);
      if (md.ip_proto != IPPROTO_UDP || !md.l4_off) {
        out.next(m);
        continue;
      }
      const auto* udp = rte_pktmbuf_mtod_offset(m, const rte_udp_hdr*, md.l4_off);
      if (udp->dst_port != RTE_BE16(kServerPort) || !for_us(s, md.ip_dst, m->port)) {
        out.next(m);
        continue;
      }
      handle(m, s, now_ms, out);
    }
  }

  bool wants_poll() const override { return true; }
  void poll(const StageCtx& ctx, Emit& out) noexcept override;

  const Shard& shard() const { return shard_; }
  const StageStats& stats() const { return st_; }

 private:
  int64_t now(uint64_t tsc) const {
    // Never a wrapped difference (a TSC read before tsc0, or on a core whose TSC lags), and no
    // overflow of cycles * 1000 however long nf runs.
    const uint64_t d = tsc > env_.tsc0 ? tsc - env_.tsc0 : 0;
    const uint64_t hz = env_.tsc_hz ? env_.tsc_hz : 1;
    return env_.unix_ms0 + static_cast<int64_t>(d / hz * 1000 + d % hz * 1000 / hz);
  }
  static bool for_us(const Snapshot& s, uint32_t dst, uint16_t port) {
    if (dst == 0xffffffffu) return true;
    for (const IfAddr& a : s.config->ports[port].addresses)
      if (dst == a.prefix().broadcast()) return true;
    for (const PortConfig& p : s.config->ports)
      for (const IfAddr& a : p.addresses)
        if (dst == a.addr) return true;
    return false;
  }
  void handle(rte_mbuf* m, const Snapshot& s, int64_t now_ms, Emit& out) noexcept;
  void journal_own(const LeaseRecord& rec) noexcept;
  // Writes the reply over the request; false when the mbuf cannot hold it.
  bool build_reply(rte_mbuf* m, const Snapshot& s, const Request& r, const Decision& d,
                   const uint8_t* client_l2) noexcept;

  uint16_t worker_;
  StageEnv env_;
  Shard shard_;
  StageStats st_{};
  Request req_;  // scratch (large: copied option values)
  int64_t last_age_ms_ = 0;
};

}  // namespace nf::dhcp
