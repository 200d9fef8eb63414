// nat: router NAT: static PAT (port forwarding) and dynamic PAT (many inside hosts behind one
// appliance address), between the acl stage and ip4_forward.
//
// Purpose: port forwards: a packet to (appliance address, protocol, port) of a `nat.static`
//          entry gets destination (to, to_port), from whichever port it arrives on; the
//          server's replies get the appliance address and port back as source. Dynamic PAT: a
//          packet from a rule's `inside` prefixes that leaves by the rule's port (decided by
//          the runtime's egress table, nf/nat/runtime.h) gets source = the rule's address and
//          a port of the range (ICMP echo: an identifier, RFC 5508 3.1); replies get the
//          inside address and port back as destination. ICMP errors about a session are
//          translated like its packets (RFC 5508 4.2, RFC 792). Rewritten packets continue
//          to ip4_forward, which routes them by their new destination.
// Sessions: everything is stateful, in a per-worker flow table (nf/lb/flow_table.h; capacity
//          nat.max_sessions): key[0] the opening packet as it arrived, key[1] the reply as it
//          will arrive. The record's keys hold the whole translation, so both directions are
//          rewritten by the same code and a session outlives a reload. Port forwards are
//          stateful too (not a static two-way rule) so that a reply goes back translated only
//          to a client that used the forward: the server's other traffic (to inside hosts, or
//          its own connections from port 80) is left alone, and a forward used from the
//          inside works as well as from outside.
// Mapping: endpoint-independent (RFC 4787 REQ-1, RFC 5382 REQ-1): the first session of an
//          inside (address, protocol, port) through a rule creates a mapping record to
//          (external address, port); every later session of that endpoint through the rule, to
//          any destination, reuses it. The
//          mapping record holds the port and is kept alive at least as long as its sessions
//          (each session refresh extends it), so its port goes back to the pool (after
//          nat.timeouts.port_reuse) only when the last session has ended. Filtering is
//          address- and port-dependent (RFC 4787 REQ-8's stricter choice): an inbound packet
//          must match a session's key[1] exactly. Only a TCP SYN (RFC 5382 REQ-2 "sessions
//          begin with a SYN"), any UDP datagram or an ICMP echo request opens a session.
// Ownership: a session belongs to worker (port mod workers) of its opening side: the inside
//          host's source port or echo identifier (dynamic: the external port is allocated
//          from the same worker's share of the range, nf/lb/port_alloc.h, so the reply's
//          destination port names the same worker); the outside client's source port (port
//          forwards: the reply's destination port). A packet another worker owns is handed
//          off (Emit::handoff) before it touches any state: proved with two workers in
//          tests/unit/test_nat.cc.
// Unsolicited inbound: a TCP/UDP packet or ICMP echo reply to a rule's external address with a
//          port/identifier inside its PAT range and no session is dropped (nat_no_session):
//          the range belongs to NAT, never to the appliance's own stack. Anything else to the
//          external address (pings, ports outside the range) continues to routing, which
//          hands it to the appliance's stack. Hairpinning (an inside host reaching another
//          inside host through a PAT address) is not done: port forwards used from the inside
//          work because the server's replies cross nf anyway.
// Edges:   next (translated, or not NAT's business); handoff (another worker owns it); drop.
// Drops:   nat_no_port (this worker's share of the range has no free port: exhausted, or every
//          free one still in quarantine), nat_table_full (no room for a session or mapping),
//          nat_no_session (unsolicited inbound, see above; a TCP segment other than a SYN or
//          an ICMP echo reply from an inside host without a session, which would leak the
//          inside address), nat_bad_packet (a rewrite refused the packet: truncated L4 header),
//          nat_fragment (a later fragment of NAT's traffic: it has no ports to find its
//          session; nf does not reassemble).
// RFCs:    4787 (UDP: REQ-1 EIM, REQ-3 port range, REQ-5 2-minute minimum, REQ-8 filtering),
//          5382 (TCP: REQ-1, REQ-2, REQ-5 timeouts), 5508 (ICMP: echo identifier mapping,
//          REQ-1 60 s, errors translated with their embedded packet), 6056 (random port
//          order), 1624 (incremental checksums).
#pragma once

#include <array>
#include <memory>
#include <string_view>

#include "nf/core/stage.h"
#include "nf/lb/flow_table.h"
#include "nf/nat/runtime.h"

namespace nf::nat {

class NatStage final : public Stage {
 public:
  enum Drop : uint8_t { kNoPort, kTableFull, kNoSession, kBadPacket, kFragment, kDropCount };
  static constexpr std::array<std::string_view, kDropCount> kDropNames = {
      "nat_no_port", "nat_table_full", "nat_no_session", "nat_bad_packet", "nat_fragment"};

  NatStage(uint16_t worker, const StageEnv& env);
  ~NatStage() override;

  void process(Burst& in, const StageCtx& ctx, Emit& out) noexcept override;

  const lb::FlowTable& table() const { return *table_; }
  const NatWorkerCounters& counters() const { return c_; }

 private:
  struct Pkt;
  void handle(rte_mbuf* m, Pkt& p, lb::Hit h, const Runtime& rt, Emit& out);
  void update(lb::FlowRecord* r, const Pkt& p, unsigned dir, const Runtime& rt);
  void open_static(rte_mbuf* m, Pkt& p, const NatStatic& s, const Runtime& rt, Emit& out);
  void open_dynamic(rte_mbuf* m, Pkt& p, int rule, const Runtime& rt, Emit& out);
  lb::FlowRecord* mapping(const Pkt& p, int rule, const Runtime& rt, uint8_t& drop);
  void translate(rte_mbuf* m, const Pkt& p, const lb::FlowRecord& r, unsigned dir, Emit& out);
  void icmp_error(rte_mbuf* m, const Runtime& rt, Emit& out);
  bool mine(uint16_t port, rte_mbuf* m, Emit& out);
  static int owner_port(uint32_t src, uint32_t dst, uint8_t proto, uint16_t sport, uint16_t dport,
                        const Runtime& rt);
  uint64_t timeout_of(uint8_t proto, const Runtime& rt) const;
  static void on_release(void* self, lb::FlowRecord* r);

  uint16_t worker_;
  uint16_t workers_;
  std::unique_ptr<lb::FlowTable> table_;
  const Runtime* rt_ = nullptr;  // the runtime of the current burst (release hook needs it)
  uint64_t now_ = 0;             // the burst's clock
  NatWorkerCounters c_{};
};

}  // namespace nf::nat
