// Per-packet metadata, filled once by nf::parse_frame() when a burst arrives and read by every
// stage after it. It lives in the mbuf private area (see drivers-glue/mempool), so stages never
// re-parse headers and tests can build it without EAL.
#pragma once

#include <cstdint>

namespace nf {

// Result of the structural parse of a frame; the input stage turns each non-OK value into a
// drop reason of the same name, so a malformed frame is always counted, never crashes a stage.
enum class ParseStatus : uint8_t {
  kOk = 0,
  kRunt,      // shorter than an Ethernet header
  kNotForUs,  // unicast to another station (bridges flood unknown unicast to us)
  kArp,       // well-formed ARP: goes to the management lcore
  kBadArp,    // ARP that is not Ethernet/IPv4 or is truncated
  kIpv6,      // IPv6 is not routed by this release
  kVlan,      // 802.1Q/802.1ad tags are not configured on any port
  kUnknownEthertype,
  kIpTruncated,  // frame shorter than 20 bytes of IP or than the IP total length
  kIpBadVersion,
  kIpBadIhl,     // IHL < 5 or header longer than the datagram
  kIpBadLength,  // total length smaller than the header
  kOversized,    // longer than the port's MTU allows (a giant)
  kIpBadChecksum,
  kMartianSource,       // RFC 1812 5.3.7: 0/8, 127/8, class D/E
  kMartianDestination,  // 0/8, 127/8
  kCount
};

enum class L2Class : uint8_t { kUnicast = 0, kBroadcast, kMulticast };

// Why a packet was handed to the management lcore. The management lcore dispatches on it.
enum class PuntReason : uint8_t {
  kNone = 0,
  kArp,          // ARP request or reply
  kLocal,        // addressed to one of the appliance's own addresses (ICMP echo, ...)
  kNeighMiss,    // next hop has no resolved link-layer address yet
  kTtlExceeded,  // RFC 1812 5.3.1: ICMP time exceeded is generated off the fast path
  kNoRoute,      // RFC 1812 5.2.7.1: ICMP destination (net) unreachable
  kFragNeeded,   // DF set and larger than the egress MTU: ICMP fragmentation needed
  kFragment,     // larger than the egress MTU without DF: fragmented by the management lcore
  kCount
};

inline constexpr const char* kPuntReasonNames[] = {
    "none", "arp", "local", "neigh_miss", "ttl_exceeded", "no_route", "frag_needed", "fragment",
};
static_assert(sizeof(kPuntReasonNames) / sizeof(kPuntReasonNames[0]) ==
              static_cast<int>(PuntReason::kCount));

namespace meta_flags {
inline constexpr uint8_t kFragment = 1;       // MF set or non-zero offset
inline constexpr uint8_t kLaterFragment = 2;  // non-zero offset: no L4 header present
inline constexpr uint8_t kDontFragment = 4;
inline constexpr uint8_t kIpOptions = 8;
inline constexpr uint8_t kLocalOrigin = 16;  // built by the management lcore, not forwarded
inline constexpr uint8_t kPadded = 32;       // the frame extends past the IP datagram
// ip_dst is the routing key and differs from the header's destination: L2 direct server
// return keeps the VIP as destination and is routed to the real's address.
inline constexpr uint8_t kRouteByMeta = 64;
// The acl stage classified this packet: a handed-over packet re-enters the chain at its start
// and must not be classified and counted again (pipelines/acl/acl_stage.h).
inline constexpr uint8_t kAclChecked = 128;
}  // namespace meta_flags

struct PacketMeta {
  uint16_t l3_off;      // offset of the IPv4 (or ARP) header from the frame start
  uint16_t l4_off;      // offset of the L4 header; 0 when absent (later fragments)
  uint16_t l3_len;      // IPv4 total length, validated against the frame
  uint16_t ether_type;  // host byte order
  uint8_t ip_proto;
  L2Class l2;
  ParseStatus parse;
  uint8_t flags;  // meta_flags
  PuntReason punt;
  uint8_t aux;        // a stage's own use (dhcp: 1 = transmit after the journal commit)
  uint16_t out_port;  // egress port (frames the management lcore sends through a worker)
  uint32_t ip_dst;    // IPv4 destination, host order (valid when parse == kOk), for lookups
                      // that need not touch the packet again
};
static_assert(sizeof(PacketMeta) <= 32, "PacketMeta must stay small: it shares the mbuf line");

}  // namespace nf
