#include "nf/lb/syncookie.h"

#include <rte_byteorder.h>
#include <rte_ip.h>
#include <rte_tcp.h>

#include <cstring>

namespace nf::lb {

namespace {

uint64_t load_le64(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

// Bit layout of the cookie before the mask is added (see the header).
constexpr uint32_t kMacBits = 24;
constexpr uint32_t kMacMask = (1u << kMacBits) - 1;
constexpr uint32_t kCounterShift = 27;
constexpr uint32_t kCounterMask = 31;  // the counter modulo 32 travels in the cookie

constexpr uint16_t kIpDf = 0x4000;
constexpr uint16_t kIpFragMask = 0x3fff;  // MF + offset

uint16_t rd16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
uint32_t rd32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | p[3];
}

}  // namespace

uint64_t siphash24(const SipKey& key, const void* data, size_t len) {
  const auto* p = static_cast<const uint8_t*>(data);
  SipState s(key);
  const size_t whole = len & ~static_cast<size_t>(7);
  for (size_t i = 0; i < whole; i += 8) s.absorb(load_le64(p + i, 8));
  return s.finish(len, load_le64(p + whole, len - whole));
}

SynCookies::SynCookies(const SipKey& secret, uint64_t ticks_per_second)
    : cur_(secret), period_(kCookiePeriodSeconds * (ticks_per_second ? ticks_per_second : 1)) {}

void SynCookies::rotate(const SipKey& next) {
  prev_ = cur_;
  cur_ = next;
  has_prev_ = true;
}

SynCookies::Hashes SynCookies::hashes(const SipKey& k, uint64_t w0, uint64_t w1, uint64_t ctr,
                                      uint32_t idx) {
  SipState s(k);
  s.absorb(w0);
  s.absorb(w1);
  SipState t = s;  // fork after the shared 16 bytes
  const auto mask = static_cast<uint32_t>(s.finish(16));
  t.absorb(ctr * 8 + idx);
  const auto mac = static_cast<uint32_t>(t.finish(24)) & kMacMask;
  return {mask, mac};
}

uint32_t SynCookies::make(uint32_t saddr, uint32_t daddr, uint16_t sport, uint16_t dport,
                          uint32_t client_isn, uint16_t client_mss, uint64_t now) const {
  const uint64_t w0 = static_cast<uint64_t>(saddr) << 32 | daddr;
  const uint64_t w1 =
      static_cast<uint64_t>(sport) << 48 | static_cast<uint64_t>(dport) << 32 | client_isn;
  const uint64_t ctr = counter(now);
  const uint32_t idx = mss_index(client_mss);
  const Hashes h = hashes(cur_, w0, w1, ctr, idx);
  const uint32_t plain =
      (static_cast<uint32_t>(ctr) & kCounterMask) << kCounterShift | idx << kMacBits | h.mac;
  return plain + h.mask;
}

std::optional<uint16_t> SynCookies::check_with(const SipKey& k, uint64_t w0, uint64_t w1,
                                               uint32_t cookie, uint64_t ctr) {
  // The mask does not depend on the counter or the MSS, so it comes off first; the MAC then
  // needs the full counter, rebuilt from its low bits and today's value.
  SipState s(k);
  s.absorb(w0);
  s.absorb(w1);
  SipState t = s;
  const uint32_t plain = cookie - static_cast<uint32_t>(s.finish(16));
  const uint32_t age = (static_cast<uint32_t>(ctr) - (plain >> kCounterShift)) & kCounterMask;
  if (age >= kCookieMaxAge) return std::nullopt;
  const uint32_t idx = (plain >> kMacBits) & 7;
  t.absorb((ctr - age) * 8 + idx);
  if ((static_cast<uint32_t>(t.finish(24)) & kMacMask) != (plain & kMacMask)) return std::nullopt;
  return kMssTable[idx];
}

std::optional<uint16_t> SynCookies::check(uint32_t saddr, uint32_t daddr, uint16_t sport,
                                          uint16_t dport, uint32_t client_isn, uint32_t cookie,
                                          uint64_t now) const {
  const uint64_t w0 = static_cast<uint64_t>(saddr) << 32 | daddr;
  const uint64_t w1 =
      static_cast<uint64_t>(sport) << 48 | static_cast<uint64_t>(dport) << 32 | client_isn;
  const uint64_t ctr = counter(now);
  if (auto mss = check_with(cur_, w0, w1, cookie, ctr)) return mss;
  if (has_prev_) return check_with(prev_, w0, w1, cookie, ctr);
  return std::nullopt;
}

bool parse_syn(const uint8_t* l3, size_t len, SynInfo& out) {
  if (len < sizeof(rte_ipv4_hdr)) return false;
  const uint8_t vihl = l3[0];
  if ((vihl >> 4) != 4) return false;
  const size_t ihl = (vihl & 0xf) * 4u;
  const size_t tlen = rd16(l3 + 2);
  if (ihl < sizeof(rte_ipv4_hdr) || tlen > len || ihl + sizeof(rte_tcp_hdr) > tlen) return false;
  if (rd16(l3 + 6) & kIpFragMask) return false;  // a fragment has no whole TCP header to answer
  if (l3[9] != IPPROTO_TCP) return false;

  const uint8_t* tcp = l3 + ihl;
  const size_t doff = (tcp[12] >> 4) * 4u;
  if (doff < sizeof(rte_tcp_hdr) || ihl + doff > tlen) return false;
  const uint8_t flags = tcp[13];
  if ((flags & (RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG | RTE_TCP_RST_FLAG | RTE_TCP_FIN_FLAG)) !=
      RTE_TCP_SYN_FLAG)
    return false;

  out.saddr = rd32(l3 + 12);
  out.daddr = rd32(l3 + 16);
  out.sport = rd16(tcp);
  out.dport = rd16(tcp + 2);
  if (out.sport == 0 || out.dport == 0) return false;
  out.isn = rd32(tcp + 4);
  out.mss = kDefaultMss;

  // Options: kind 0 ends the list, kind 1 is one byte of padding, every other kind has a
  // length byte that counts itself and the kind.
  const uint8_t* o = tcp + sizeof(rte_tcp_hdr);
  const uint8_t* end = tcp + doff;
  while (o < end) {
    const uint8_t kind = o[0];
    if (kind == 0) break;
    if (kind == 1) {
      ++o;
      continue;
    }
    if (end - o < 2) break;
    const uint8_t olen = o[1];
    if (olen < 2 || olen > end - o) break;
    if (kind == 2 && olen == 4) {
      const uint16_t mss = rd16(o + 2);
      if (mss != 0) out.mss = mss;
    }
    o += olen;
  }
  return true;
}

namespace {

void write_synack(uint8_t* l3, const SynInfo& in, uint32_t cookie, const SynAckOptions& o) {
  rte_ipv4_hdr ip{};
  ip.version_ihl = 0x45;
  ip.type_of_service = 0;
  ip.total_length = rte_cpu_to_be_16(kSynAckLen);
  ip.packet_id = rte_cpu_to_be_16(o.ip_id);
  ip.fragment_offset = rte_cpu_to_be_16(kIpDf);
  ip.time_to_live = kSynAckTtl;
  ip.next_proto_id = IPPROTO_TCP;
  ip.hdr_checksum = 0;
  ip.src_addr = rte_cpu_to_be_32(in.daddr);
  ip.dst_addr = rte_cpu_to_be_32(in.saddr);
  ip.hdr_checksum = rte_ipv4_cksum(&ip);

  uint8_t tcp[24];
  rte_tcp_hdr th{};
  th.src_port = rte_cpu_to_be_16(in.dport);
  th.dst_port = rte_cpu_to_be_16(in.sport);
  th.sent_seq = rte_cpu_to_be_32(cookie);
  th.recv_ack = rte_cpu_to_be_32(in.isn + 1);
  th.data_off = 6 << 4;  // 20 bytes + the 4-byte MSS option
  th.tcp_flags = RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG;
  th.rx_win = rte_cpu_to_be_16(o.window);
  th.cksum = 0;
  th.tcp_urp = 0;
  std::memcpy(tcp, &th, sizeof(th));
  tcp[20] = 2;  // MSS
  tcp[21] = 4;
  tcp[22] = static_cast<uint8_t>(o.mss >> 8);
  tcp[23] = static_cast<uint8_t>(o.mss);
  th.cksum = rte_ipv4_udptcp_cksum(&ip, tcp);
  std::memcpy(tcp + 16, &th.cksum, 2);

  // Everything was read into `in` before: the TCP header may move (IP options dropped).
  std::memcpy(l3, &ip, sizeof(ip));
  std::memcpy(l3 + sizeof(ip), tcp, sizeof(tcp));
}

}  // namespace

size_t build_synack(uint8_t* l3, size_t len, uint32_t cookie, const SynAckOptions& o) {
  SynInfo in;
  if (len < kSynAckLen || !parse_syn(l3, len, in)) return 0;
  write_synack(l3, in, cookie, o);
  return kSynAckLen;
}

size_t answer_syn(const SynCookies& cookies, uint8_t* l3, size_t len, uint64_t now,
                  const SynAckOptions& o) {
  SynInfo in;
  if (len < kSynAckLen || !parse_syn(l3, len, in)) return 0;
  const uint32_t cookie = cookies.make(in.saddr, in.daddr, in.sport, in.dport, in.isn, in.mss, now);
  write_synack(l3, in, cookie, o);
  return kSynAckLen;
}

}  // namespace nf::lb
