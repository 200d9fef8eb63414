// lb: the L4 load balancer (virtual services over pools of reals).
//
// Purpose: packets to a service's VIP (protocol, port or every port) go to one of its reals,
//          chosen when the flow starts by the service's scheduler among reals that are up and
//          not drained, and kept there for the flow's life by a per-worker flow table. Modes:
//            nat      destination rewritten to the real; the reply (real -> client) meets the
//                     same flow and gets the VIP back as source.
//            fullnat  source rewritten too, to one of the service's snat addresses and a port
//                     this worker owns (nf/lb/port_alloc.h): the reals need no route back.
//            dsr      L2 direct server return: the packet keeps the VIP, only its next hop is
//                     the real (PacketMeta::ip_dst with kRouteByMeta); the real owns the VIP
//                     on a loopback and answers the client directly.
//            ipip     L3 DSR: IP-in-IP (RFC 2003) to the real, outer source an address of the
//                     port facing it; SYNs get their MSS clamped to fit the 20 extra bytes.
//            dscp     L3 DSR: destination rewritten to the real, DSCP set to the service's
//                     value; the real maps the DSCP back to the VIP (nftables) and answers
//                     directly.
//          Rewritten packets continue to ip4_forward, which routes them (TTL, MAC, MTU).
// Edges:   next (rewritten, or not a service's: routed as usual); handoff (another worker
//          owns the flow: see below); reply (ICMP echo replies from a VIP); drop (with
//          on_real_down = reset, the next packet of a flow whose real went down is dropped and
//          the flow forgotten; no RST is sent to either side yet).
// State:   per worker: the flow table (nf/lb/flow_table.h; capacity lb.max_flows), the new-flow
//          rate window of the flood guard, counters. Per worker but built with the snapshot
//          (so a reload allocates nothing here): scheduler cursors and full-NAT port pools
//          (lb::Runtime::worker). Shared, read-only: services, pools, Maglev tables, health.
// Ownership: a flow belongs to worker (client-side port mod workers); the client's source
//          port for nat/dsr modes, the allocated source port for fullnat. A packet of a flow
//          this worker does not own is handed over before it touches any state, so both
//          directions of a NAT flow meet one table without locks (proved with two workers in
//          tests/unit/test_lb.cc).
// Pressure: when new flows exceed lb.syn_flood_rate per second on this worker, or the table is
//          full, DSR modes place new flows statelessly by the pool's Maglev table (the same
//          real the stateful path would keep for consistent schedulers, no table entry) and
//          NAT modes drop new flows with a counted reason (lb_table_full or lb_flood)
//          rather than evicting established ones.
// Drops:   lb_no_real (every real down or drained), lb_no_flow (a non-SYN TCP segment of a
//          NAT flow nf does not know: the real would only reset it), lb_table_full, lb_flood,
//          lb_port_exhausted (full NAT has no free source port), lb_real_down (on_real_down =
//          reset, not TCP), lb_bad_packet (a rewrite refused the packet: truncated or
//          malformed), lb_fragment (later fragments carry no ports to find their flow),
//          lb_no_headroom (IP-in-IP needs 20 bytes in front).
#pragma once

#include <array>
#include <memory>
#include <string_view>

#include "nf/core/stage.h"
#include "nf/lb/flow_table.h"
#include "nf/lb/service.h"

namespace nf::lb {

struct alignas(64) LbWorkerCounters {
  uint64_t new_flows;
  uint64_t stateless;  // placed without a table entry (DSR under pressure, non-SYN DSR misses)
  uint64_t hits;
  uint64_t replies;  // reverse-direction hits (nat, fullnat)
  uint64_t resets;   // flows forgotten because their real went down (on_real_down = reset)
  uint64_t handoffs;
  uint64_t flows;            // table size after the last burst
  uint64_t flood_windows;    // seconds in which the new-flow rate was over the limit
  uint64_t echo_replies;     // ICMP echo requests to a VIP answered
  uint64_t icmp_translated;  // ICMP errors about a NAT flow, translated
};

// Where the management lcore reads each worker's counters and flow table from (`show lb`).
// Plain reads of another lcore's counters: a value may be one burst old, never torn on x86-64.
struct StatsTable {
  const LbWorkerCounters* counters[kMaxWorkers] = {};
  const FlowTable* tables[kMaxWorkers] = {};
};

class LbStage final : public Stage {
 public:
  enum Drop : uint8_t {
    kNoReal,
    kNoFlow,
    kTableFull,
    kFlood,
    kPortExhausted,
    kRealDown,
    kBadPacket,
    kFragment,
    kNoHeadroom,
    kDropCount
  };
  static constexpr std::array<std::string_view, kDropCount> kDropNames = {
      "lb_no_real",   "lb_no_flow",    "lb_table_full", "lb_flood",      "lb_port_exhausted",
      "lb_real_down", "lb_bad_packet", "lb_fragment",   "lb_no_headroom"};

  LbStage(uint16_t worker, const StageEnv& env);
  ~LbStage() override;

  void process(Burst& in, const StageCtx& ctx, Emit& out) noexcept override;

  const FlowTable& table() const { return *table_; }
  const LbWorkerCounters& counters() const { return c_; }

 private:
  struct Pkt;
  struct Target {  // where a packet of a flow goes, from the record or a fresh choice
    LbMode mode;
    uint32_t real;  // host order
    uint16_t port;  // real's port (host order)
    uint32_t snat;  // full NAT source and port
    uint16_t snat_port;
    uint32_t encap_src;  // ipip outer source
    uint8_t dscp;
    uint16_t mss;  // clamp SYNs to this (0: no clamp)
  };
  void handle(rte_mbuf* m, Pkt& p, Hit h, const Runtime& rt, uint64_t now, Emit& out);
  void new_flow(rte_mbuf* m, Pkt& p, const ServiceRt& s, const Runtime& rt, uint64_t now,
                Emit& out);
  void forward(rte_mbuf* m, Pkt& p, const Target& t, Emit& out);
  void icmp(rte_mbuf* m, const Runtime& rt, Emit& out);
  bool real_up(const Runtime& rt, const RealRt& r) const;
  const uint8_t* up_of(const Runtime& rt, const ServiceRt& s);
  bool flooding(const Runtime& rt, uint64_t now);
  static void on_release(void* self, FlowRecord* r);

  uint16_t worker_;
  uint16_t workers_;
  std::unique_ptr<FlowTable> table_;
  const Runtime* rt_ = nullptr;  // the runtime of the current burst (release hook needs it)
  uint64_t burst_ = 0;           // burst counter: health is read once per burst per service
  uint64_t now_ = 0;             // the burst's clock, for the release hook
  uint64_t window_start_ = 0;
  uint64_t window_new_ = 0;
  bool flood_ = false;
  uint16_t ipid_ = 0;
  LbWorkerCounters c_{};
};

}  // namespace nf::lb
