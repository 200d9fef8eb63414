// The rarely used rewrites (ICMP errors, the test-side IP-in-IP decapsulation) kept out of
// line; see rewrite.h for the theory of operation.
#include "nf/lb/rewrite.h"

#include <rte_ip.h>

#include <algorithm>

#include "nf/net/checksum.h"

namespace nf::lb {

namespace {

constexpr uint8_t kIcmpUnreachable = 3, kIcmpTimeExceeded = 11, kIcmpParamProblem = 12;
constexpr uint32_t kIcmpHdr = 8;

uint16_t be16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
uint32_t be32(const uint8_t* p) {
  return rte_be_to_cpu_32(csum::load32(p));
}

bool header_ok(const uint8_t* ip) {
  return ipv4_cksum_ok(reinterpret_cast<const rte_ipv4_hdr*>(ip));
}

// Offset of the embedded datagram's L4 checksum, by its protocol.
uint32_t l4_cksum_off(uint8_t proto) {
  switch (proto) {
    case kProtoTcp:
      return 16;
    case kProtoUdp:
      return 6;
    default:
      return 2;  // ICMP echo
  }
}

}  // namespace

const char* rewrite_status_name(RewriteStatus s) {
  switch (s) {
    case RewriteStatus::kOk:
      return "ok";
    case RewriteStatus::kAddrOnly:
      return "addr_only";
    case RewriteStatus::kTruncated:
      return "truncated";
    case RewriteStatus::kMalformed:
      return "malformed";
    case RewriteStatus::kUnsupported:
      return "unsupported";
    case RewriteStatus::kCount:
      break;
  }
  return "?";
}

std::span<uint8_t> decap_ipip(uint8_t* outer, uint32_t len) {
  RewriteStatus st;
  const uint32_t hlen = detail::ipv4_hlen(outer, len, st);
  if (hlen == 0) return {};
  const uint32_t tlen = be16(outer + 2);
  if (tlen < hlen || tlen > len || outer[detail::kIpProtoOff] != kProtoIpip ||
      (be16(outer + detail::kIpFragOff) & 0x3fff) != 0 || !header_ok(outer))
    return {};
  uint8_t* const in = outer + hlen;
  const uint32_t ilen = tlen - hlen;
  const uint32_t ihlen = detail::ipv4_hlen(in, ilen, st);
  if (ihlen == 0 || be16(in + 2) != ilen || !header_ok(in)) return {};
  return {in, ilen};
}

RewriteStatus parse_icmp_error(const uint8_t* ip, uint32_t len, IcmpErrorInfo& e) {
  RewriteStatus st = RewriteStatus::kOk;
  const uint32_t hlen = detail::ipv4_hlen(ip, len, st);
  if (hlen == 0) return st;
  if (ip[detail::kIpProtoOff] != kProtoIcmp) return RewriteStatus::kUnsupported;
  if ((be16(ip + detail::kIpFragOff) & 0x3fff) != 0) return RewriteStatus::kUnsupported;
  if (hlen + kIcmpHdr > len) return RewriteStatus::kTruncated;
  const uint8_t* const icmp = ip + hlen;
  const uint8_t type = icmp[0];
  if (type != kIcmpUnreachable && type != kIcmpTimeExceeded && type != kIcmpParamProblem)
    return RewriteStatus::kUnsupported;

  const uint32_t qoff = hlen + kIcmpHdr;
  const uint32_t quoted = len - qoff;
  if (quoted < detail::kIpMinHdr) return RewriteStatus::kTruncated;
  const uint8_t* const in = ip + qoff;
  const uint32_t ihlen = (in[0] & 0xfu) * 4u;
  if ((in[0] >> 4) != 4 || ihlen < detail::kIpMinHdr) return RewriteStatus::kMalformed;
  const uint32_t itlen = be16(in + 2);
  if (itlen < ihlen + 8) return RewriteStatus::kMalformed;  // RFC 792: header + 64 bits
  uint32_t avail = std::min(quoted, itlen);
  // RFC 4884: a non-zero length (32-bit words) says where the quoted datagram ends and ICMP
  // extensions begin; those are not part of it.
  if (icmp[5] != 0) avail = std::min(avail, icmp[5] * 4u);
  if (ihlen + 8 > avail) return RewriteStatus::kTruncated;
  if ((be16(in + detail::kIpFragOff) & 0x1fff) != 0) return RewriteStatus::kUnsupported;
  const uint8_t proto = in[detail::kIpProtoOff];
  const uint8_t* const l4 = in + ihlen;
  uint16_t sport, dport;
  switch (proto) {
    case kProtoTcp:
    case kProtoUdp:
      sport = be16(l4);
      dport = be16(l4 + 2);
      break;
    case kProtoIcmp:
      if (l4[0] != detail::kIcmpEcho && l4[0] != detail::kIcmpEchoReply)
        return RewriteStatus::kUnsupported;
      sport = dport = be16(l4 + 4);
      break;
    default:
      return RewriteStatus::kUnsupported;
  }
  e.sport = sport;
  e.dport = dport;
  e.type = type;
  e.code = icmp[1];
  e.proto = proto;
  e.l4_cksum = ihlen + l4_cksum_off(proto) + 2 <= avail;
  e.inner_off = static_cast<uint16_t>(qoff);
  e.inner_hlen = static_cast<uint16_t>(ihlen);
  e.inner_avail = static_cast<uint16_t>(avail);
  e.mtu = type == kIcmpUnreachable && icmp[1] == 4 ? be16(icmp + 6) : 0;
  e.outer_src = be32(ip + detail::kIpSrcOff);
  e.outer_dst = be32(ip + detail::kIpDstOff);
  e.src = be32(in + detail::kIpSrcOff);
  e.dst = be32(in + detail::kIpDstOff);
  return RewriteStatus::kOk;
}

RewriteStatus rewrite_icmp_error(uint8_t* ip, uint32_t len, const IcmpErrorNat& to) {
  IcmpErrorInfo e;
  if (const RewriteStatus st = parse_icmp_error(ip, len, e); st != RewriteStatus::kOk) return st;
  uint8_t* const icmp = ip + e.inner_off - kIcmpHdr;
  uint8_t* const in = ip + e.inner_off;
  uint8_t* const l4 = in + e.inner_hlen;
  using csum::delta16;
  using csum::delta32;
  using csum::load16;
  using csum::load32;

  // Embedded addresses: its own header checksum and (pseudo-header) its TCP/UDP checksum.
  const uint32_t isrc = rte_cpu_to_be_32(to.src), idst = rte_cpu_to_be_32(to.dst);
  const uint64_t d_addr =
      delta32(load32(in + detail::kIpSrcOff), isrc) + delta32(load32(in + detail::kIpDstOff), idst);
  const uint16_t old_ihc = load16(in + detail::kIpCksumOff);
  const uint16_t new_ihc = csum::apply(old_ihc, d_addr);

  const bool echo = e.proto == kProtoIcmp;
  const uint16_t nsport = rte_cpu_to_be_16(to.sport), ndport = rte_cpu_to_be_16(to.dport);
  const uint64_t d_port = echo ? delta16(load16(l4 + 4), nsport)
                               : delta16(load16(l4), nsport) + delta16(load16(l4 + 2), ndport);

  // The ICMP checksum covers every quoted byte we change, checksums included.
  uint64_t d_icmp = d_addr + d_port + delta16(old_ihc, new_ihc);
  const uint32_t coff = l4_cksum_off(e.proto);
  const uint16_t old_l4c = e.l4_cksum ? load16(l4 + coff) : 0;
  uint16_t new_l4c = old_l4c;
  if (e.l4_cksum && !(e.proto == kProtoUdp && old_l4c == 0)) {
    new_l4c = csum::apply(old_l4c, (echo ? 0 : d_addr) + d_port);
    if (e.proto == kProtoUdp && new_l4c == 0) new_l4c = 0xffff;
    d_icmp += delta16(old_l4c, new_l4c);
  }

  const uint32_t osrc = rte_cpu_to_be_32(to.outer_src), odst = rte_cpu_to_be_32(to.outer_dst);
  const uint64_t d_outer =
      delta32(load32(ip + detail::kIpSrcOff), osrc) + delta32(load32(ip + detail::kIpDstOff), odst);

  csum::store32(in + detail::kIpSrcOff, isrc);
  csum::store32(in + detail::kIpDstOff, idst);
  csum::store16(in + detail::kIpCksumOff, new_ihc);
  if (echo) {
    csum::store16(l4 + 4, nsport);
  } else {
    csum::store16(l4, nsport);
    csum::store16(l4 + 2, ndport);
  }
  if (e.l4_cksum) csum::store16(l4 + coff, new_l4c);
  csum::store16(icmp + 2, csum::apply(load16(icmp + 2), d_icmp));
  csum::store32(ip + detail::kIpSrcOff, osrc);
  csum::store32(ip + detail::kIpDstOff, odst);
  csum::store16(ip + detail::kIpCksumOff, csum::apply(load16(ip + detail::kIpCksumOff), d_outer));
  return RewriteStatus::kOk;
}

}  // namespace nf::lb
