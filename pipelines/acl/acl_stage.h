// acl, acl_out: ordered permit/deny lists per port and direction (the `acl` group), on the
// router path ACL, then NAT, then routing.
//
// Purpose: each AclSet (port, direction, ordered rules, default action) is compiled into an
//          rte_acl Classifier (nf/acl/acl.h: first match wins, rule k - 1 reported as k, 0 =
//          the default). Two stages apply them, because the egress port is only known after
//          every address rewrite:
//            acl      the `in` sets, by ingress port (mbuf port). Placed directly after
//                     `input`, so it sees every IPv4 packet entering the port, as a router's
//                     ingress ACL does: forwarded traffic, load-balanced VIP traffic, and the
//                     DHCP/DNS/ICMP the appliance answers itself (ARP is not IP: never seen).
//            acl_out  the `out` sets, by egress port. Placed directly before ip4_forward, after
//                     lb and nat, so it sees what will leave: translated addresses, as Cisco
//                     IOS applies an outbound ACL after inside-to-outside NAT. It finds the
//                     egress port with its own LPM lookup on PacketMeta::ip_dst (the key
//                     ip4_forward routes by), from the adjacency (resolved), the connected
//                     port (glean) or the route's gateway port (gateway not resolved yet).
//                     It runs before ip4_forward rather than inside it because packets waiting
//                     for ARP or for fragmentation are punted by ip4_forward and later sent by
//                     the management lcore without passing the chain again: a hook at
//                     ip4_forward's transmit would let them out unfiltered. The cost is a
//                     second LPM lookup per packet, only when an `out` set exists.
//          Not filtered by `out` sets: packets the appliance originates or answers (DHCP and
//          DNS replies, ICMP errors and echo replies, health probes, ARP): router ACLs do not
//          filter the router's own traffic; packets to the appliance itself (no egress port);
//          packets whose TTL expires here (ip4_forward punts them for ICMP time exceeded).
// Batching: the burst's packets are grouped by port and each port's set is classified with
//          one rte_acl_classify() call; outcomes are emitted in burst order.
// Edges:   next (permitted, or no set for the port and direction); drop.
// State:   none per worker. Shared (Snapshot::acl, built on the management lcore, published
//          with the snapshot by RCU): the classifiers and per-rule match counters, one row
//          per worker (plain single-writer counters on their own cache lines, no atomics);
//          `nfctl show acl` sums the rows. A reload keeps a set whose port, direction,
//          default and rules (names included) did not change: the same classifier, the same
//          counters. A changed set is a new classifier with zeroed counters. A set's memory is
//          freed when the last snapshot holding it is freed, on the management lcore, after
//          the workers have left it (rte_acl_free must not run on a worker).
// Handoff: packets another worker hands over re-enter the chain at its first stage; the acl
//          stage marks what it classified (meta_flags::kAclChecked) and passes such packets
//          on, so each packet is counted once.
// Drops:   acl_deny (a deny rule or a deny default matched; per rule in `show acl`),
//          acl_malformed (a TCP or UDP datagram too short to hold both ports, e.g. the tiny
//          first fragment of RFC 1858 3.1; only for ports with a set).
// RFCs:    RFC 1858 3.1 (tiny first fragments refused). Later fragments carry no ports and
//          match only port-less rules; they are not tied to their first fragment's verdict
//          (no reassembly state), so an address-only rule is what stops them. RFC 1812 5.3.1
//          (TTL expiry before output filtering, so traceroute still sees the router).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "nf/acl/acl.h"
#include "nf/core/stage.h"
#include "nf/route/rib.h"

namespace nf::acl {

// One compiled set and its counters. Immutable after build except the counters, which only
// the worker of each row writes.
struct SetRt {
  AclSet conf;            // what it was compiled from (a reload compares against it)
  std::string port_name;  // for `show acl`
  uint16_t port = 0;
  bool out = false;
  std::shared_ptr<const Classifier> cls;
  uint32_t slots = 0;   // rules + 1: slot 0 counts the default, slot k rule k - 1
  uint32_t stride = 0;  // counters per worker row, a multiple of 8 (64 bytes)
  uint16_t workers = 0;
  uint64_t since_generation = 0;  // the snapshot generation that created these counters
  std::unique_ptr<uint64_t[]> counter_mem;
  uint64_t* counters = nullptr;  // 64-byte aligned inside counter_mem

  uint64_t* row(uint16_t worker) const { return counters + size_t{worker} * stride; }
  uint64_t matches(uint32_t slot) const {
    uint64_t s = 0;
    for (uint16_t w = 0; w < workers; ++w) s += row(w)[slot];
    return s;
  }
};

struct Runtime {
  std::vector<std::shared_ptr<SetRt>> sets;  // configuration order
  const SetRt* in[kMaxPorts] = {};
  const SetRt* out[kMaxPorts] = {};
  bool has_in = false;
  bool has_out = false;
  // Adjacency slot -> egress port of the static routes' gateways: their adjacency word is
  // empty until ARP resolves them, yet acl_out must know where the packet will leave.
  std::vector<std::pair<uint32_t, uint16_t>> gateway_ports;
};

// Compiles c.acl (management lcore). Sets equal to one of `previous` (may be null) are shared
// with it, counters included. nullptr and `*error` (naming the set) when rte_acl refuses.
std::shared_ptr<Runtime> build_runtime(const Config& c, const Runtime* previous, uint16_t workers,
                                       uint64_t generation, std::string* error);
// The gateway slots of `rib` (built from `c`) and their ports, for Runtime::gateway_ports.
std::vector<std::pair<uint32_t, uint16_t>> gateway_ports(const Config& c,
                                                         const std::vector<RibEntry>& rib);
// `nfctl show acl`: every set with its rules' actions and summed match counts.
std::string show(const Runtime* rt);

class AclStage final : public Stage {
 public:
  enum Drop : uint8_t { kDeny, kMalformed, kDropCount };
  static constexpr std::array<std::string_view, kDropCount> kDropNames = {"acl_deny",
                                                                          "acl_malformed"};

  // out = false: the `acl` stage (in sets); true: `acl_out`.
  AclStage(bool out, uint16_t worker) : out_(out), worker_(worker) {}

  void process(Burst& in, const StageCtx& ctx, Emit& out) noexcept override;

 private:
  bool out_;
  uint16_t worker_;
};

}  // namespace nf::acl
