// Packet rewrites of the L4 load balancer and the router NAT: address/port translation (TCP,
// UDP, ICMP echo), DSCP marking for L3 DSR, IP-in-IP encapsulation for tunnel DSR, TCP MSS
// clamping, and the translation of ICMP errors about translated flows.
//
// Theory of operation
// -------------------
// Every function works on a byte view of one IPv4 datagram: a pointer to its IPv4 header and
// the datagram's length (PacketMeta::l3_len, validated by parse_frame() against the frame; not
// the frame length, which may include Ethernet padding), or for clamp_mss the TCP header and
// the bytes after it. Nothing touches an mbuf, the EAL, a clock or the heap, so stages call
// these per packet and the unit tests call them on plain vectors. Addresses, ports and ICMP
// identifiers are passed in host byte order, like PacketMeta::ip_dst and the configuration;
// the conversion to wire order happens here. No function needs any alignment of the view.
//
// Checksums are patched incrementally with RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'), and never
// recomputed over a payload. Eqn. 3 and not RFC 1141's HC' = HC + m - m' because the latter
// yields 0xffff where a full recomputation yields 0x0000 (RFC 1624 section 3). With a
// checksum in the form a full recomputation produces, the result is bit for bit what a full
// recomputation of the new packet produces (the unit tests check that on random packets). A
// checksum that was wrong stays wrong by the same amount, so a receiver still rejects a
// corrupted packet we translated; nothing here verifies L4 checksums (that would read the
// payload). The one's-complement sum is byte-order independent (RFC 1071 2.B), so words are
// summed as they sit in memory; a 16-bit field at an odd offset of the checksummed range (an
// MSS option after one NOP) is byte-swapped first, because it straddles two words. Several
// changed words are summed into one delta (~m + m' each) and the delta is applied to every
// checksum that covers them: an address change goes into the IPv4 header checksum and into the
// TCP/UDP checksum (whose pseudo-header carries the addresses, RFC 9293 3.1 and RFC 768); a port
// change only into the latter; an ICMP identifier only into the ICMP checksum (ICMP has no
// pseudo-header, RFC 792).
//
// UDP: a zero checksum means "not computed" (RFC 768) and stays zero; a computed zero is sent
// as 0xffff, as RFC 768 requires.
//
// Fragments: only a first fragment (offset 0) carries the L4 header. A later fragment gets the
// address rewrite and the IPv4 header checksum only (RewriteStatus::kAddrOnly): the TCP/UDP
// checksum lives in the first fragment and covers the reassembled datagram, so patching it
// there for the address and the port change is right for the whole datagram, provided every
// fragment gets the same new address (the caller's flow state must ensure that; a later
// fragment has no ports to look the flow up by). A first fragment too short to hold the L4
// header up to its checksum (a "tiny fragment", RFC 1858) is rejected as truncated.
//
// Failure: each function checks every byte it will read or write before writing anything, so a
// rejected packet is left unchanged and the caller may still drop, punt or forward it. Bounds
// come from the view's length, never from a length field inside the packet alone.
#pragma once

#include <rte_byteorder.h>

#include <cstdint>
#include <cstring>
#include <span>

namespace nf::lb {

inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoIpip = 4;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;

enum class RewriteStatus : uint8_t {
  kOk = 0,       // rewritten, every checksum that covers a changed field patched
  kAddrOnly,     // later fragment: address rewritten, IPv4 header checksum patched, no L4
  kTruncated,    // the view ends before a byte the operation needs
  kMalformed,    // a version, IHL or length field that cannot be right
  kUnsupported,  // a protocol or ICMP type this operation does not translate
  kCount
};
const char* rewrite_status_name(RewriteStatus s);

// ---------------------------------------------------------------------------------------------
// One's-complement arithmetic (RFC 1071, RFC 1624). nf/net/checksum.h has only the TTL and the
// header-verification helpers, so the generic pieces live here; they belong in nf/net once a
// second user appears.
namespace csum {

inline uint16_t load16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline uint32_t load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline void store16(uint8_t* p, uint16_t v) {
  std::memcpy(p, &v, 2);
}
inline void store32(uint8_t* p, uint32_t v) {
  std::memcpy(p, &v, 4);
}

// End-around carry until 16 bits remain.
inline uint16_t fold(uint64_t s) {
  s = (s & 0xffffffff) + (s >> 32);
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(s);
}
// ~m + m' of one changed 16-bit word (both as they sit in memory).
inline uint32_t delta16(uint16_t old_w, uint16_t new_w) {
  return static_cast<uint32_t>(static_cast<uint16_t>(~old_w)) + new_w;
}
// The same for a 32-bit field (two words at even offsets).
inline uint32_t delta32(uint32_t old_w, uint32_t new_w) {
  const uint32_t o = ~old_w;
  return (o & 0xffff) + (o >> 16) + (new_w & 0xffff) + (new_w >> 16);
}
// RFC 1624 eqn. 3 with the summed deltas of any number of changed words.
inline uint16_t apply(uint16_t hc, uint64_t delta) {
  return static_cast<uint16_t>(~fold(static_cast<uint16_t>(~hc) + delta));
}
inline uint16_t replace16(uint16_t hc, uint16_t old_w, uint16_t new_w) {
  return apply(hc, delta16(old_w, new_w));
}
// The IPv4 header checksum of a 20-byte header from scratch (for a header we build, not for a
// packet's payload). The checksum field must be zero.
inline uint16_t ipv4_hdr20(const uint8_t* h) {
  uint64_t a, b;
  uint32_t c;
  std::memcpy(&a, h, 8);
  std::memcpy(&b, h + 8, 8);
  std::memcpy(&c, h + 16, 4);
  return static_cast<uint16_t>(
      ~fold((a & 0xffffffff) + (a >> 32) + (b & 0xffffffff) + (b >> 32) + c));
}

}  // namespace csum

// ---------------------------------------------------------------------------------------------
// 1. NAT of TCP, UDP and ICMP echo.

enum class Side : uint8_t { kSrc, kDst };

namespace detail {

inline constexpr uint32_t kIpTosOff = 1, kIpFragOff = 6, kIpProtoOff = 9, kIpCksumOff = 10,
                          kIpSrcOff = 12, kIpDstOff = 16, kIpMinHdr = 20;
inline constexpr uint8_t kIcmpEchoReply = 0, kIcmpEcho = 8;

// The IPv4 header length after the checks every rewrite needs; 0 when the header is unusable
// (st says why).
inline uint32_t ipv4_hlen(const uint8_t* ip, uint32_t len, RewriteStatus& st) {
  if (len < kIpMinHdr) [[unlikely]] {
    st = RewriteStatus::kTruncated;
    return 0;
  }
  const uint32_t hlen = (ip[0] & 0xfu) * 4u;
  if ((ip[0] >> 4) != 4 || hlen < kIpMinHdr) [[unlikely]] {
    st = RewriteStatus::kMalformed;
    return 0;
  }
  if (hlen > len) [[unlikely]] {
    st = RewriteStatus::kTruncated;
    return 0;
  }
  return hlen;
}

inline bool later_fragment(const uint8_t* ip) {
  return (rte_be_to_cpu_16(csum::load16(ip + kIpFragOff)) & 0x1fff) != 0;
}

// Rewrites one address and (unless the packet is a later fragment) one port or the ICMP echo
// identifier. `icmp_only` limits it to ICMP echo (nat_icmp_id).
inline RewriteStatus nat(uint8_t* ip, uint32_t len, Side side, uint32_t new_addr, uint16_t new_port,
                         bool icmp_only) {
  RewriteStatus st = RewriteStatus::kOk;
  const uint32_t hlen = ipv4_hlen(ip, len, st);
  if (hlen == 0) [[unlikely]]
    return st;
  const uint8_t proto = ip[kIpProtoOff];
  uint32_t port_off, cksum_off, need;  // relative to the L4 header
  bool pseudo = true;                  // the L4 checksum covers the addresses
  switch (proto) {
    case kProtoTcp:
      port_off = side == Side::kSrc ? 0 : 2;
      cksum_off = 16;
      need = 20;
      break;
    case kProtoUdp:
      port_off = side == Side::kSrc ? 0 : 2;
      cksum_off = 6;
      need = 8;
      break;
    case kProtoIcmp:
      port_off = 4;  // echo identifier: the "port" of both directions (RFC 5508 3.1)
      cksum_off = 2;
      need = 8;
      pseudo = false;
      break;
    default:
      return RewriteStatus::kUnsupported;
  }
  if (icmp_only && proto != kProtoIcmp) return RewriteStatus::kUnsupported;
  uint8_t* const addr = ip + (side == Side::kSrc ? kIpSrcOff : kIpDstOff);
  const uint32_t new_a = rte_cpu_to_be_32(new_addr);
  const uint32_t da = csum::delta32(csum::load32(addr), new_a);
  if (later_fragment(ip)) {
    csum::store32(addr, new_a);
    csum::store16(ip + kIpCksumOff, csum::apply(csum::load16(ip + kIpCksumOff), da));
    return RewriteStatus::kAddrOnly;
  }
  if (hlen + need > len) [[unlikely]]
    return RewriteStatus::kTruncated;
  uint8_t* const l4 = ip + hlen;
  if (proto == kProtoIcmp && l4[0] != kIcmpEcho && l4[0] != kIcmpEchoReply)
    return RewriteStatus::kUnsupported;  // errors go through rewrite_icmp_error()
  const uint16_t new_p = rte_cpu_to_be_16(new_port);
  const uint32_t dl4 = (pseudo ? da : 0) + csum::delta16(csum::load16(l4 + port_off), new_p);
  csum::store32(addr, new_a);
  csum::store16(ip + kIpCksumOff, csum::apply(csum::load16(ip + kIpCksumOff), da));
  csum::store16(l4 + port_off, new_p);
  const uint16_t hc = csum::load16(l4 + cksum_off);
  if (proto == kProtoUdp && hc == 0) return RewriteStatus::kOk;  // RFC 768: none; stays none
  uint16_t nc = csum::apply(hc, dl4);
  if (proto == kProtoUdp && nc == 0) nc = 0xffff;
  csum::store16(l4 + cksum_off, nc);
  return RewriteStatus::kOk;
}

}  // namespace detail

// Destination NAT: the destination address and the destination port (TCP, UDP) or the echo
// identifier (ICMP echo request or reply, whose identifier plays the port in both directions).
// kAddrOnly for a later fragment (new_port unused); kUnsupported for other protocols and for
// ICMP errors (rewrite_icmp_error); kTruncated/kMalformed leave the packet unchanged.
inline RewriteStatus nat_dst(uint8_t* ip, uint32_t len, uint32_t new_addr, uint16_t new_port) {
  return detail::nat(ip, len, Side::kDst, new_addr, new_port, false);
}
// Source NAT: the same for the source address and port.
inline RewriteStatus nat_src(uint8_t* ip, uint32_t len, uint32_t new_addr, uint16_t new_port) {
  return detail::nat(ip, len, Side::kSrc, new_addr, new_port, false);
}
// ICMP echo only: the address on `side` and the identifier. Anything but an echo request or
// reply (or a later fragment of an ICMP datagram, kAddrOnly) is kUnsupported.
inline RewriteStatus nat_icmp_id(uint8_t* ip, uint32_t len, Side side, uint32_t new_addr,
                                 uint16_t new_id) {
  return detail::nat(ip, len, side, new_addr, new_id, true);
}

// ---------------------------------------------------------------------------------------------
// 2. L3 DSR by DSCP (RFC 2474): the 6 DSCP bits of the TOS byte; the 2 ECN bits (RFC 3168) are
// the path's congestion signal and are kept. `ip` must be a header parse_frame() accepted.
inline void set_dscp(uint8_t* ip, uint8_t dscp) {
  const uint16_t w0 = csum::load16(ip);  // (version/IHL, TOS)
  ip[detail::kIpTosOff] = static_cast<uint8_t>((dscp << 2) | (ip[detail::kIpTosOff] & 0x3));
  csum::store16(ip + detail::kIpCksumOff,
                csum::replace16(csum::load16(ip + detail::kIpCksumOff), w0, csum::load16(ip)));
}

// ---------------------------------------------------------------------------------------------
// 3. IP in IP (RFC 2003).

struct IpipOuter {
  uint32_t src = 0;  // host order; e.g. a per-flow source so the real's RSS spreads flows
  uint32_t dst = 0;  // the real server
  uint16_t id = 0;   // caller's counter: RFC 6864 wants it unique per (src, dst, 4) unless DF
  uint8_t ttl = 64;  // RFC 2003 3.1: enough to reach the tunnel exit, not the inner TTL
  int8_t dscp = -1;  // -1: copy the inner TOS byte (RFC 2003 3.1; RFC 6040 normal mode copies
                     // ECN too); 0..63: this DSCP with the inner ECN bits
};

// Writes a 20-byte outer header at `outer`; the inner datagram (inner_len bytes, its IPv4
// header first) must already sit at outer + 20 (the stage prepends into the mbuf headroom).
// DF is copied from the inner header (RFC 2003 3.1), the outer is never a fragment and has no
// options. Returns the outer datagram's length, inner_len + 20, or 0 (nothing written) when
// the inner is not IPv4 or the sum would exceed 65535. The result may exceed the egress MTU:
// that is the caller's decision, because only it knows the MTU: a DF inner packet then gets
// ICMP fragmentation needed with the MTU minus 20 (RFC 1191, RFC 2003 5.1), a non-DF one may
// be sent fragmented (the outer is not DF then).
inline uint32_t encap_ipip(uint8_t* outer, uint32_t inner_len, const IpipOuter& o) {
  const uint8_t* const in = outer + detail::kIpMinHdr;
  if (inner_len < detail::kIpMinHdr || inner_len > 0xffffu - detail::kIpMinHdr || (in[0] >> 4) != 4)
      [[unlikely]]
    return 0;
  const uint32_t total = inner_len + detail::kIpMinHdr;
  const uint8_t tos = o.dscp < 0
                          ? in[detail::kIpTosOff]
                          : static_cast<uint8_t>((o.dscp << 2) | (in[detail::kIpTosOff] & 3));
  outer[0] = 0x45;
  outer[1] = tos;
  csum::store16(outer + 2, rte_cpu_to_be_16(static_cast<uint16_t>(total)));
  csum::store16(outer + 4, rte_cpu_to_be_16(o.id));
  outer[6] = static_cast<uint8_t>(in[detail::kIpFragOff] & 0x40);  // DF only
  outer[7] = 0;
  outer[8] = o.ttl;
  outer[9] = kProtoIpip;
  csum::store16(outer + detail::kIpCksumOff, 0);
  csum::store32(outer + detail::kIpSrcOff, rte_cpu_to_be_32(o.src));
  csum::store32(outer + detail::kIpDstOff, rte_cpu_to_be_32(o.dst));
  csum::store16(outer + detail::kIpCksumOff, csum::ipv4_hdr20(outer));
  return total;
}

// The decapsulator's side, for tests and the lab (the kernel under test cannot terminate
// IP-in-IP): validates the outer header (IPv4, checksum, protocol 4, not a fragment, total
// length within the view) and the inner one (IPv4, IHL, checksum, total length equal to the
// outer payload) and returns the inner datagram, or an empty span. Not for the fast path: it
// verifies the header checksums from scratch.
std::span<uint8_t> decap_ipip(uint8_t* outer, uint32_t len);

// ---------------------------------------------------------------------------------------------
// 4. TCP MSS clamping (RFC 9293 3.7.1, RFC 6691), for encapsulated modes whose tunnel header
// eats into the path MTU. `tcp` is the TCP header and tcp_len the bytes from it to the end of
// the datagram. Only a SYN (with or without ACK) is touched: the MSS option is only valid
// there. Every MSS option (kind 2, length 4) above max_mss is lowered to it; the option walk
// is bounded by the data offset and by tcp_len and stops, as Linux's tcp_parse_options() does,
// at EOL, at a length below 2 or at an option running past the header, so an MSS option
// before a malformed one is still clamped and nothing after it is read. A SYN without an MSS
// option is left alone: the peer then assumes 536 (RFC 9293 3.7.1), smaller than any clamp.
// Patches the TCP checksum; returns whether anything changed.
inline bool clamp_mss(uint8_t* tcp, uint32_t tcp_len, uint16_t max_mss) {
  if (tcp_len < 20 || (tcp[13] & 0x02) == 0) return false;  // no header, or not a SYN
  const uint32_t hlen = (tcp[12] >> 4) * 4u;
  if (hlen < 20 || hlen > tcp_len) return false;
  uint32_t delta = 0;
  bool changed = false;
  uint32_t i = 20;
  while (i < hlen) {  // i grows by at least 1 per turn: at most 40 turns
    const uint8_t kind = tcp[i];
    if (kind == 0) break;  // EOL
    if (kind == 1) {       // NOP
      ++i;
      continue;
    }
    if (i + 1 >= hlen) break;
    const uint32_t olen = tcp[i + 1];
    if (olen < 2 || olen > hlen - i) break;
    if (kind == 2 && olen == 4) {
      uint8_t* const v = tcp + i + 2;
      if (static_cast<uint16_t>((v[0] << 8) | v[1]) > max_mss) {
        uint16_t old_w = csum::load16(v);
        csum::store16(v, rte_cpu_to_be_16(max_mss));
        uint16_t new_w = csum::load16(v);
        if ((i & 1) != 0) {  // straddles two checksum words: counts byte-swapped
          old_w = rte_bswap16(old_w);
          new_w = rte_bswap16(new_w);
        }
        delta += csum::delta16(old_w, new_w);
        changed = true;
      }
    }
    i += olen;
  }
  if (!changed) return false;
  csum::store16(tcp + 16, csum::apply(csum::load16(tcp + 16), delta));
  return true;
}

// ---------------------------------------------------------------------------------------------
// 5. ICMP errors about translated flows (RFC 792, RFC 5508 4, RFC 1812 4.3.2.3).
//
// A destination unreachable, time exceeded or parameter problem carries the IPv4 header of
// the datagram that caused it plus at least 8 bytes of its L4 header (RFC 792; RFC 1812 routers
// send as much as fits in 576 bytes). The datagram inside is one WE sent after translation, so
// its source is the translated side: the caller looks its 5-tuple up as a flow in the reverse
// direction, then rewrites the error into what the original sender's peer would have sent:
// the embedded addresses and ports back to the untranslated ones, and the outer addresses to
// deliver it. Embedded protocols: TCP, UDP (ports at L4 offset 0/2) and ICMP echo request or
// reply (identifier at 4, reported as both ports). An error about an ICMP error is never sent
// (RFC 1122 3.2.2), so any other embedded ICMP type is kUnsupported, as are an embedded later
// fragment (no ports) and errors in a fragmented datagram (we do not reassemble; RFC 1812 keeps
// them under 576 bytes, so they are not fragmented in practice). The ICMP checksum is not
// verified (that would sum the whole message); a wrong one stays wrong after the rewrite.

struct IcmpErrorInfo {
  uint8_t type = 0, code = 0;
  uint8_t proto = 0;         // embedded protocol: kProtoTcp, kProtoUdp or kProtoIcmp (echo)
  bool l4_cksum = false;     // the embedded L4 checksum lies within the quoted bytes
  uint16_t inner_off = 0;    // offset of the embedded IPv4 header from the outer one
  uint16_t inner_hlen = 0;   // its header length
  uint16_t inner_avail = 0;  // quoted bytes of the embedded datagram (<= its total length)
  uint16_t mtu = 0;          // next-hop MTU of "fragmentation needed" (RFC 1191), else 0
  uint32_t outer_src = 0, outer_dst = 0;  // host order
  uint32_t src = 0, dst = 0;              // embedded, host order
  uint16_t sport = 0, dport = 0;          // embedded, host order; echo: the identifier twice
};

// Validates an ICMP error; on kOk fills `e`, otherwise says why and leaves `e` alone. Reads
// only; never writes the packet.
RewriteStatus parse_icmp_error(const uint8_t* ip, uint32_t len, IcmpErrorInfo& e);

struct IcmpErrorNat {  // the new values, host order (pass the current one to keep a field)
  uint32_t outer_src = 0, outer_dst = 0;
  uint32_t src = 0, dst = 0;      // embedded
  uint16_t sport = 0, dport = 0;  // embedded; echo: the identifier is sport, dport unused
};

// Parses again (so nothing stale can steer a write) and rewrites: the embedded addresses and
// ports, the embedded IPv4 header checksum, the embedded L4 checksum when it lies within the
// quoted bytes (a zero UDP checksum stays zero), the outer addresses, the ICMP checksum (it
// covers the whole quoted datagram, so every embedded change enters its delta) and the outer
// header checksum. A checksum outside the quoted bytes is left as quoted: nobody can verify it.
RewriteStatus rewrite_icmp_error(uint8_t* ip, uint32_t len, const IcmpErrorNat& to);

}  // namespace nf::lb
