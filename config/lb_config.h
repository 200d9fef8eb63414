// The L4 load balancer's, router NAT's and ACLs' configuration: the `lb`, `nat` and `acl`
// groups (schema in config/REFERENCE.md). Plain data, validated while the file loads, so every
// mistake is reported with its file, line and setting path; the stages compile it into their
// fast-path tables (Maglev, ACL tries) off the fast path when a snapshot is built.
//
// Addresses are host byte order, as everywhere in Config.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "nf/net/addr.h"

namespace nf {

// How a service's packets reach the chosen real.
enum class LbMode : uint8_t {
  kNat,      // destination rewritten to the real; replies come back through the appliance
  kFullNat,  // source rewritten to an appliance address too: reals need no route back
  kDsr,      // L2 direct server return: MAC rewrite only; the real owns the VIP on loopback
  kIpip,     // L3 DSR: IP-in-IP (RFC 2003) to the real, which decapsulates and answers directly
  kDscp,     // L3 DSR: the real's address as destination, the VIP carried as a DSCP value
};

enum class LbScheduler : uint8_t {
  kRoundRobin,
  kWeightedRoundRobin,
  kLeastConn,   // weighted: fewest active flows per unit of weight
  kSourceHash,  // consistent (Maglev over the source address)
  kMaglev,      // consistent over the 5-tuple (weighted Maglev, NSDI'16)
};

// What happens to the flows of a real its health check takes down.
enum class LbOnDown : uint8_t {
  kKeep,   // they stay (a server that fails its check may still finish them)
  kReset,  // the next packet of the flow is dropped and the flow forgotten (no RST sent yet)
};

const char* lb_mode_name(LbMode m);
const char* lb_scheduler_name(LbScheduler s);

struct LbReal {
  uint32_t addr = 0;
  uint16_t port = 0;    // 0: the packet's destination port (required for DSR modes)
  uint32_t weight = 1;  // 0 drains: no new flow, existing flows stay
  std::string check;    // health check name (health.checks); empty: the service's, or none
  int line = 0;         // where it was configured, for messages
};

struct LbService {
  std::string name;
  uint32_t vip = 0;
  uint8_t proto = 6;  // IPPROTO_TCP or IPPROTO_UDP
  uint16_t port = 0;  // 0: every port of the VIP and protocol
  LbMode mode = LbMode::kNat;
  LbScheduler scheduler = LbScheduler::kWeightedRoundRobin;
  uint32_t persistence_s =
      0;  // 0: off; else a client stays on its real this long after its last flow
  LbOnDown on_down = LbOnDown::kKeep;
  std::vector<uint32_t> snat;  // full NAT: the appliance addresses used as sources
  uint8_t dscp = 0;            // kDscp: the value that names this VIP to the reals (1..63)
  uint16_t mss_clamp = 0;      // TCP MSS ceiling for SYNs (encapsulated modes); 0 = from the MTU
  std::string check;           // default health check of the reals
  std::vector<LbReal> reals;
  int line = 0;
};

// Flow-table timeouts, seconds. Defaults: IPVS's for a load balancer (established 900 s)
// rather than a NAT's RFC 5382 2 h 4 min, because a balancer's table is its capacity; UDP at
// RFC 4787 REQ-5's two-minute minimum is too short for most UDP services, so 300 s as IPVS.
struct LbTimeouts {
  uint32_t tcp_syn = 10;  // half-open: short, so a SYN flood's entries leave quickly
  uint32_t tcp_established = 900;
  uint32_t tcp_fin = 30;
  uint32_t tcp_time_wait = 10;
  uint32_t tcp_close = 3;
  uint32_t udp = 300;
  uint32_t icmp = 60;
};

struct LbConfig {
  bool enabled = false;           // an `lb` group is present
  uint32_t max_flows = 1u << 20;  // per worker (init-only: the table is allocated at start)
  LbTimeouts timeouts;
  // New flows per second and worker above which the table is protected: DSR services hash
  // statelessly, NAT TCP services answer SYNs with SYN cookies (a SYN proxy: the flow is
  // created when the client's ACK brings a valid cookie) and NAT UDP services drop new flows.
  uint32_t syn_flood_rate = 50000;
  uint32_t maglev_min_size = 65537;  // a prime; tables are at least 100 x reals
  std::vector<LbService> services;
};

// Port forwarding: `protocol` `address`:`port` (an appliance address) -> `to`:`to_port`.
struct NatStatic {
  uint8_t proto = 6;
  uint32_t addr = 0;
  uint16_t port = 0;
  uint32_t to = 0;
  uint16_t to_port = 0;
  int line = 0;
};

// Dynamic PAT: sources in `inside` leaving through port `port` get `address` and a port from
// [port_lo, port_hi] (split among the workers so that allocation takes no lock).
struct NatDynamic {
  std::vector<Prefix> inside;
  int port = -1;  // index into Config::ports
  uint32_t addr = 0;
  uint16_t port_lo = 1024;
  uint16_t port_hi = 65535;
  int line = 0;
};

// Session timeouts, seconds: the minimums the NAT behaviour RFCs require, which are also
// what VPP's nat44 uses. TCP established: RFC 5382 REQ-5 (>= 2 h 4 min); every other TCP
// state (handshake, closing, TIME_WAIT, after a RST): REQ-5's transitory 4 min; UDP: RFC
// 4787 REQ-5 (>= 2 min, 5 min recommended); ICMP query: RFC 5508 REQ-1 (>= 60 s).
struct NatTimeouts {
  uint32_t tcp_established = 7440;
  uint32_t tcp_transitory = 240;
  uint32_t udp = 300;
  uint32_t icmp = 60;
  uint32_t port_reuse = 2;  // a released PAT port is not handed out again for this long
};

struct NatConfig {
  bool enabled = false;
  std::vector<NatStatic> statics;
  std::vector<NatDynamic> dynamics;
  uint32_t max_sessions = 1u << 18;  // per worker (init-only)
  NatTimeouts timeouts;
};

// Rules per set (nf::acl::kMaxRules: rte_acl priorities and memory stay bounded).
inline constexpr size_t kAclMaxRules = 65536;

struct AclRuleConfig {
  bool permit = true;
  Prefix src;  // 0.0.0.0/0 = any
  Prefix dst;
  uint8_t proto = 0;  // 0 = any (a protocol number 0 cannot be asked for)
  uint16_t sport_lo = 0, sport_hi = 65535;
  uint16_t dport_lo = 0, dport_hi = 65535;
  // A port range was given (so the protocol is tcp or udp). Ranges narrower than 0-65535 match
  // only first fragments; a full range is the same as none (nf/acl/acl.h).
  bool has_ports = false;
  std::string name;  // for counters: "acl.sets[i].rules[j]" or the rule's own name
  int line = 0;
};

// One ordered rule list, applied to the packets entering (or leaving) one port: first match
// decides, the default when none does.
struct AclSet {
  int port = -1;  // index into Config::ports
  bool out = false;
  bool default_permit = true;
  std::vector<AclRuleConfig> rules;
  int line = 0;
};

struct AclConfig {
  bool enabled = false;
  std::vector<AclSet> sets;
};

}  // namespace nf
