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
// Edges:   next (rewritten, or not a service's: routed as usual; also the SYN and the ACK the
//          SYN proxy sends to a real); handoff (another worker owns the flow: see below);
//          reply (ICMP echo replies from a VIP, SYN-ACKs with a cookie); drop (with
//          on_real_down = reset, the next packet of a flow whose real went down is dropped and
//          the flow forgotten; no RST is sent to either side yet).
// State:   per worker: the flow table (nf/lb/flow_table.h; capacity lb.max_flows, the last
//          1/64 of it reserved for flows opened by a cookie), the new-flow rate window of the
//          flood guard, the cookie keys of the current period, counters. Per worker but built
//          with the snapshot (so a reload allocates nothing here): scheduler cursors and
//          full-NAT port pools (lb::Runtime::worker). Shared, read-only: services, pools, Maglev
//          tables, health; the process's cookie secret (128 bits from getrandom(), drawn when
//          the first stage is built).
// Ownership: a flow belongs to worker (client-side port mod workers); the client's source
//          port for nat/dsr modes, the allocated source port for fullnat. A packet of a flow
//          this worker does not own is handed over before it touches any state, so both
//          directions of a NAT flow meet one table without locks (proved with two workers in
//          tests/unit/test_lb.cc).
// Pressure: when new flows exceed lb.syn_flood_rate in a one-second window on this worker (the
//          rest of that window and all of the next are then a flood), or the table is
//          full (but for its reserve), established flows carry on untouched and no flow is
//          ever evicted; new ones are handled without state:
//            DSR modes place them by the pool's Maglev table (the same real the stateful path
//            would keep for consistent schedulers, no table entry).
//            NAT modes (TCP) proxy the handshake on SYN cookies, as DPVS's synproxy does
//            (nf/lb/syncookie.h; RFC 4987 3.6): the SYN is answered here with a SYN-ACK whose
//            seq is the cookie (only an MSS option), out of the port it came in on. The
//            client's ACK misses the table; if its ack - 1 is a live cookie for its 4-tuple and
//            seq - 1, the flow is scheduled and created then (in the reserve if need be),
//            marked proxied, and the ACK itself becomes the SYN to the real (seq = client ISN,
//            the cookie's MSS, the client's unscaled window, nothing else: no window scaling,
//            SACK or timestamps, since the client was offered none; so there are never SACK
//            blocks to translate). The real's SYN-ACK sets the flow's offset delta = real ISN
//            - cookie and becomes the ACK to the real (seq = client ISN + 1, ack = real ISN
//            + 1). From then on client -> real ack += delta, real -> client seq -= delta
//            (checksums patched, RFC 1624), ICMP errors from the client side quote the real's
//            seq. Before the real's SYN-ACK, a client segment that still carries the cookie
//            (a retransmitted ACK, its first data) resends the SYN; other client segments are
//            dropped (lb_synproxy_wait: the client retransmits them); a RST from the real
//            reaches the client with seq = cookie + 1 so it is accepted (RFC 5961 3.2).
//            Data on the cookie ACK is not kept (it becomes the SYN; the client retransmits
//            the unacknowledged data after its RTO). Cookies are checked only while this
//            worker has handed some out within a cookie lifetime (2 x 64 s). Cookie keys:
//            each 64 s period has its own, SipHash of the period number under the process's
//            secret, so rotation needs no shared mutable state, every worker agrees, and a
//            cookie validates in its own period and the next (kCookieMaxAge).
//            UDP NAT services drop new flows (lb_table_full, lb_flood).
//          Two workers: the SYN, the cookie ACK and the real's SYN-ACK of one connection are
//          all on the flow's owner (client port for nat, allocated port for fullnat), so each
//          cookie is checked where it was made; the keys are process-wide all the same.
// Drops:   lb_no_real (every real down or drained), lb_no_flow (a non-SYN TCP segment of a
//          NAT flow nf does not know: the real would only reset it), lb_bad_cookie (such an
//          ACK while cookies are being handed out, whose cookie does not check),
//          lb_synproxy_wait (a proxied flow's packet before the real's SYN-ACK), lb_table_full
//          (UDP, a SYN that cannot be answered, or a cookie ACK when even the reserve is
//          full: the client's retransmission, still carrying the cookie, retries), lb_flood,
//          lb_port_exhausted (full NAT has no free source port), lb_real_down (on_real_down =
//          reset, not TCP), lb_bad_packet (a rewrite refused the packet: truncated or
//          malformed), lb_fragment (later fragments carry no ports to find their flow),
//          lb_no_headroom (IP-in-IP needs 20 bytes in front).
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string_view>

#include "nf/core/stage.h"
#include "nf/lb/flow_table.h"
#include "nf/lb/service.h"
#include "nf/lb/syncookie.h"

namespace nf::lb {

struct alignas(64) LbWorkerCounters {
  uint64_t new_flows;
  uint64_t stateless;  // placed without a table entry (DSR under pressure, non-SYN DSR misses)
  uint64_t hits;
  uint64_t replies;  // reverse-direction hits (nat, fullnat)
  uint64_t resets;   // flows forgotten because their real went down (on_real_down = reset)
  uint64_t handoffs;
  uint64_t flows;            // table size after the last burst
  uint64_t flood_windows;    // one-second windows spent (partly) in flood mode
  uint64_t echo_replies;     // ICMP echo requests to a VIP answered
  uint64_t icmp_translated;  // ICMP errors about a NAT flow, translated
  // SYN proxy (NAT modes under pressure): SYN-ACKs with a cookie sent, client ACKs whose
  // cookie validated (a flow opened, the SYN sent to a real), ACKs to a NAT service that
  // missed the table and failed the cookie check while cookies were being handed out, and
  // proxied flows whose real answered (sequence offset known, ACK sent to the real).
  uint64_t syncookies_sent;
  uint64_t syncookies_ok;
  uint64_t syncookies_bad;
  uint64_t synproxy_established;
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
    kBadCookie,
    kSynproxyWait,
    kDropCount
  };
  static constexpr std::array<std::string_view, kDropCount> kDropNames = {
      "lb_no_real",        "lb_no_flow",    "lb_table_full",   "lb_flood",
      "lb_port_exhausted", "lb_real_down",  "lb_bad_packet",   "lb_fragment",
      "lb_no_headroom",    "lb_bad_cookie", "lb_synproxy_wait"};

  LbStage(uint16_t worker, const StageEnv& env);
  ~LbStage() override;

  void process(Burst& in, const StageCtx& ctx, Emit& out) noexcept override;

  const FlowTable& table() const { return *table_; }
  const LbWorkerCounters& counters() const { return c_; }

  // The cookies every worker makes and checks at `now` (clock of hz ticks per second): the
  // keys of this cookie period and the one before, derived from the process's secret.
  static SynCookies cookies_at(uint64_t now, uint64_t hz);
  // Table records kept free for handshakes completed by a cookie (see Pressure).
  uint32_t reserve() const { return reserve_; }

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
  // handle() and forward() are the per-packet path of a hit: inlined into the burst loop (a
  // call and a Target copy per packet cost ~10 cycles, measured in perf/run-lb).
  [[gnu::always_inline]] inline void handle(rte_mbuf* m, Pkt& p, Hit h, const Runtime& rt,
                                            uint64_t now, Emit& out);
  struct Proxy {  // a client ACK whose cookie validated
    uint32_t cookie;
    uint16_t mss;
  };
  void new_flow(rte_mbuf* m, Pkt& p, const ServiceRt& s, const Runtime& rt, uint64_t now,
                Emit& out);
  void open(rte_mbuf* m, Pkt& p, const ServiceRt& s, const Runtime& rt, uint64_t now,
            const Proxy* px, bool stateless_only, Emit& out);
  void send_cookie(rte_mbuf* m, Pkt& p, const ServiceRt& s, const Runtime& rt, uint64_t now,
                   Drop otherwise, Emit& out);
  std::optional<uint16_t> check_cookie(const Pkt& p, const Runtime& rt, uint64_t now,
                                       uint32_t* cookie);
  const SynCookies& cookies(const Runtime& rt, uint64_t now);
  bool synproxy(rte_mbuf* m, Pkt& p, FlowRecord* r, uint8_t dir, const Runtime& rt, uint64_t now,
                Emit& out);
  bool syn_to_real(rte_mbuf* m, Pkt& p, uint16_t mss);
  void ack_to_real(rte_mbuf* m, Pkt& p, FlowRecord* r, const Runtime& rt, uint64_t now, Emit& out);
  [[gnu::always_inline]] inline void forward(rte_mbuf* m, Pkt& p, const Target& t, Emit& out);
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
  uint32_t reserve_ = 0;
  SynCookies cookies_{SipKey{}, 1};  // for cookie_step_ (derived on first use)
  uint64_t cookie_step_ = UINT64_MAX;
  uint64_t cookie_hz_ = 0;
  uint64_t last_cookie_ = 0;  // when this worker last sent a cookie
  bool sent_cookie_ = false;
  LbWorkerCounters c_{};
};

}  // namespace nf::lb
