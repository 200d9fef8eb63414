// IPv4 access control lists: an ordered rule list compiled into an rte_acl trie, classified a
// burst at a time by the ACL stage on the router path (ACL, then NAT, then routing).
//
// Theory of operation
// -------------------
// An ACL is an ordered list of Rules; the first rule that matches decides (permit or deny) and
// the ACL's default action applies when none does. A rule matches on source prefix,
// destination prefix, protocol (exact or any), and source / destination port ranges. rte_acl
// does not do "first match": among all matching rules it returns the one with the highest
// priority. Rule i of n therefore gets priority n - i, so the earliest rule always wins, and
// its userdata is i + 1, so a result of 0 means "no rule matched" and k > 0 means rule k - 1.
// The caller indexes per-rule counters with the result directly (slot 0 counts the default).
//
// Ports (the classic router-ACL semantics, e.g. Cisco's "L4 information" entries):
//   - A rule "has ports" when either range is narrower than 0-65535. Ports exist only for TCP
//     and UDP: a port rule must say tcp, udp or any; "any" with ports means "TCP or UDP" and
//     is compiled as two rte_acl rules with the same priority and userdata. A port rule with
//     any other protocol (icmp, gre, ...) is rejected at build time.
//   - ICMP (and every protocol other than TCP/UDP) never matches a port rule: the protocol
//     field already excludes it, whatever bytes sit where the ports would be.
//   - A non-first fragment (fragment offset != 0) carries no L4 header, so it never matches a
//     port rule, in either direction of the range test; it does match port-less rules (an
//     address-only deny still drops every fragment). This is realised by a sixth field, the
//     IPv4 fragment offset (bytes 4..7 of the header, flags masked off), which port rules
//     require to be 0 and port-less rules ignore. When no rule in a trie has ports, rte_acl
//     drops the field (and the port field group) from that trie, so it costs nothing there.
//   - A rule with full ranges (0-65535 both) is port-less: "tcp any any" matches every TCP
//     packet including its later fragments.
//
// Input layout. rte_acl reads each field at a fixed offset from a data pointer, four bytes at a
// time, network byte order. The offsets are those of a 20-byte IPv4 header followed by the
// TCP/UDP ports: fragment field 4..7, protocol 9, source 12, destination 16, ports 20 and 22.
// So a data pointer may be either
//   (a) an IPv4 header itself, if the caller guarantees IHL == 5 (no options: with options the
//       ports would be read from the options) and 24 readable bytes; later fragments and ICMP
//       are still classified correctly, because neither can match a port rule; or
//   (b) a Tuple: the same 24-byte layout holding only the classified fields, filled by
//       normalise(), which finds the ports after IP options, zeroes them for later fragments,
//       ICMP and other protocols, and rejects truncated or malformed headers.
// The ACL stage should always use (b): it costs one 24-byte store per packet (three 8-byte
// stores into a stack array that stays in L1), removes the IHL == 5 precondition and the
// 24-byte over-read from the packet, and the classify cost is the same (the trie walk reads the
// same number of bytes). Raw headers (a) are for callers that have already checked IHL.
//
// What is not matched: TCP flags, ICMP type/code, DSCP, TTL; IPv6. An ICMP error is classified
// on its outer header only (the quoted datagram is not inspected). The RFC 1858 tiny-fragment
// attack (a first fragment too short to hold the ports, so a port deny would not see them) is
// closed by normalise() refusing such a fragment; the caller drops what it refuses.
//
// Build and lifetime. Classifier::build() runs on the management lcore: it validates every
// rule (errors name the rule), creates an rte_acl context, adds the rules and builds the trie
// (one category). Every packet walks every trie rte_acl builds, so build() first allows up to
// 16 MiB per context, which lets rte_acl keep large rule sets in one trie, and only if that is
// not enough rebuilds with no limit (rte_acl then splits into as many tries as it needs).
// rte_acl contexts live in a process-global EAL list keyed by name, and rte_acl_create() with
// an existing name returns that existing context instead of failing; every Classifier
// therefore gets a name from a process-wide atomic counter, and the destructor frees its
// context. An empty rule list creates no context (rte_acl_build refuses zero rules) and
// classifies everything to 0. A Classifier is immutable once built; a changed ACL is a new
// Classifier published to the workers (the stage's RCU snapshot), and the old one is freed
// once no worker can still hold it. The destructor takes EAL's tailq lock and frees memory,
// so the last reference must be dropped on the management lcore, never on a worker.
//
// Threads. classify() takes the context as const and keeps its whole search state on the
// caller's stack; the trie is only read after rte_acl_build(). Any number of lcores (or plain
// threads: no per-lcore state is touched) may classify on the same Classifier at once; this is
// how DPDK's l3fwd-acl example shares one context per socket among all its lcores. DPDK's
// thread-safety guide names only hash and LPM lookups, so this rests on rte_acl_classify()'s
// const context and its stack-only state (lib/acl/acl_run*.c), not on a documented promise.
// build() and the destructor are not to run concurrently with classify() on the same object.
//
// SIMD. rte_acl picks its classify method when the context is created: AVX512 x32 (only if
// EAL's max SIMD bitwidth is raised to 512), AVX512 x16, AVX2, SSE4.1, scalar, whichever is
// first supported by both the DPDK build and the CPU. build() makes the same choice explicitly
// (rte_acl_set_ctx_classify in that order) so algorithm() can report it.
#pragma once

#include <rte_byteorder.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "nf/net/addr.h"

struct rte_acl_ctx;

namespace nf::acl {

enum class Action : uint8_t { kPermit, kDeny };

inline constexpr int kAnyProto = -1;
inline constexpr int kProtoIcmp = 1;
inline constexpr int kProtoTcp = 6;
inline constexpr int kProtoUdp = 17;
// Bounded so priorities (n - i) stay far inside rte_acl's 29-bit range and so a build fails
// with a message rather than by exhausting hugepage memory on an absurd list.
inline constexpr size_t kMaxRules = 65536;

struct PortRange {
  uint16_t lo = 0;
  uint16_t hi = 65535;
  bool any() const { return lo == 0 && hi == 65535; }
  bool contains(uint16_t p) const { return p >= lo && p <= hi; }
  bool operator==(const PortRange&) const = default;
};

struct Rule {
  Action action = Action::kDeny;
  Prefix src;             // len 0 = any; host bits must be clear
  Prefix dst;             // len 0 = any; host bits must be clear
  int proto = kAnyProto;  // 0..255 or kAnyProto
  PortRange sport;
  PortRange dport;
  std::string name;  // for counters and error messages, e.g. "wan-in line 12"
  bool has_ports() const { return !sport.any() || !dport.any(); }
};

// The normalised classification key: the field offsets of a 20-byte IPv4 header followed by
// the TCP/UDP ports, everything else zero. All fields network byte order.
struct alignas(8) Tuple {
  uint8_t zero0[6];
  uint16_t frag_be;  // fragment offset (flags masked off); non-zero = later fragment, no ports
  uint8_t zero8;
  uint8_t proto;
  uint16_t zero10;
  uint32_t src_be;
  uint32_t dst_be;
  uint16_t sport_be;
  uint16_t dport_be;

  // Host-order values (tests, the control plane's "which rule would match" query).
  static Tuple make(uint8_t proto, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport,
                    bool later_fragment = false) {
    Tuple t{};
    t.proto = proto;
    t.src_be = rte_cpu_to_be_32(src);
    t.dst_be = rte_cpu_to_be_32(dst);
    if (later_fragment) {
      t.frag_be = rte_cpu_to_be_16(1);
    } else {
      t.sport_be = rte_cpu_to_be_16(sport);
      t.dport_be = rte_cpu_to_be_16(dport);
    }
    return t;
  }
};
static_assert(sizeof(Tuple) == 24);
static_assert(offsetof(Tuple, frag_be) == 6 && offsetof(Tuple, proto) == 9 &&
              offsetof(Tuple, src_be) == 12 && offsetof(Tuple, dst_be) == 16 &&
              offsetof(Tuple, sport_be) == 20 && offsetof(Tuple, dport_be) == 22);

// Fills `out` from an IPv4 datagram of `len` available bytes (the header onwards). Returns
// false, leaving `out` unspecified, for what cannot be classified and must be dropped: not
// IPv4, IHL < 5, a header longer than the data or than the total length, or a TCP/UDP first
// fragment too short to hold both ports (RFC 1858 3.1). Ports are read within both `len` and
// the IP total length, so Ethernet padding is never taken for ports; `len` may be shorter than
// the total length (a caller that has only the headers). Pure and inline: per-packet path.
inline bool normalise(const uint8_t* ip, uint32_t len, Tuple* out) {
  if (len < 20 || (ip[0] >> 4) != 4) [[unlikely]]
    return false;
  const uint32_t hlen = (ip[0] & 0x0fu) * 4u;
  const uint32_t tlen = (uint32_t{ip[2]} << 8) | ip[3];
  if (hlen < 20 || tlen < hlen || hlen > len) [[unlikely]]
    return false;
  const uint32_t avail = tlen < len ? tlen : len;
  const uint16_t frag = static_cast<uint16_t>(((ip[6] << 8) | ip[7]) & 0x1fffu);
  Tuple t{};
  t.proto = ip[9];
  std::memcpy(&t.src_be, ip + 12, 8);  // source and destination, still network order
  if (frag != 0) {
    t.frag_be = rte_cpu_to_be_16(frag);
  } else if (t.proto == kProtoTcp || t.proto == kProtoUdp) {
    if (avail < hlen + 4) [[unlikely]]
      return false;
    std::memcpy(&t.sport_be, ip + hlen, 4);
  }
  *out = t;
  return true;
}

class Classifier {
 public:
  // nullptr and a message naming the offending rule in `*error` (if not null) when a rule is
  // invalid or rte_acl cannot create or build the context. Management lcore only.
  static std::shared_ptr<const Classifier> build(std::span<const Rule> rules, std::string* error,
                                                 Action default_action = Action::kDeny);
  ~Classifier();
  Classifier(const Classifier&) = delete;
  Classifier& operator=(const Classifier&) = delete;

  // One result per data pointer: 0 = no rule matched, k > 0 = rule k - 1 matched first. Each
  // pointer is an IPv4 header with IHL == 5 and 24 readable bytes, or a Tuple (see above).
  void classify(const uint8_t* const* l3_headers, uint32_t n, uint32_t* rule_index_out) const;
  void classify(const Tuple* const* tuples, uint32_t n, uint32_t* rule_index_out) const {
    classify(reinterpret_cast<const uint8_t* const*>(tuples), n, rule_index_out);
  }
  uint32_t classify_one(const Tuple& t) const {
    const Tuple* p = &t;
    uint32_t r;
    classify(&p, 1, &r);
    return r;
  }
  // The decision for a classify() result: the rule's action, or the default for 0.
  Action action(uint32_t result) const { return actions_[result]; }
  Action default_action() const { return actions_[0]; }

  std::span<const Rule> rules() const { return rules_; }
  // The rte_acl context name ("" when there are no rules, hence no context).
  const std::string& name() const { return name_; }
  // The rte_acl classify method in use: "avx512x32", "avx512x16", "avx2", "sse", "scalar",
  // or "none" without a context.
  const char* algorithm() const { return algorithm_; }

 private:
  Classifier() = default;
  rte_acl_ctx* ctx_ = nullptr;
  std::vector<Action> actions_;  // [0] the default, [k] rule k - 1
  std::vector<Rule> rules_;
  std::string name_;
  const char* algorithm_ = "none";
};

}  // namespace nf::acl
