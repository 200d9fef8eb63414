#include "pipelines/dns/dns_stage.h"

#include <rte_hash_crc.h>

namespace nf::dns {

DnsStage::DnsStage(uint16_t worker, const StageEnv& env)
    : tc_(env.dns_stats ? &env.dns_stats->workers[worker] : &own_),
      hz_(env.tsc_hz ? env.tsc_hz : 1),
      buckets_(new Bucket[kBuckets]()) {
  st_.rng ^= (uint64_t{worker} + 1) * 0xbf58476d1ce4e5b9ull;
  st_.rr = worker * 7919u;
}

bool DnsStage::rate_ok(const Runtime& rt, uint32_t client, uint8_t rc, uint32_t now_s,
                       bool& slip) noexcept {
  slip = false;
  if (rt.rrl_rate == 0 || rt.exempt(client)) return true;
  // One bucket per (prefix, kind of answer): a flood of NXDOMAINs for random names does not
  // use up the budget of the same network's ordinary answers (BIND RRL's response classes).
  const uint32_t kind = rc == rcode::kNoError ? 0 : rc == rcode::kNxDomain ? 1 : 2;
  const uint32_t key = (client & rt.rrl_mask) | kind;
  Bucket& b = buckets_[rte_hash_crc_4byte(key, 0x52524c00) & (kBuckets - 1)];
  if (b.key != key || b.sec != now_s) {
    if (b.key != key) b.limited = 0;
    b.key = key;
    b.sec = now_s;
    b.tokens = static_cast<int32_t>(rt.rrl_rate);
  }
  if (b.tokens > 0) {
    b.tokens--;
    return true;
  }
  b.limited++;
  if (rt.rrl_slip && b.limited % rt.rrl_slip == 0) {
    slip = true;
    return true;
  }
  return false;
}

void DnsStage::handle(rte_mbuf* m, const Runtime& rt, const Env& env, uint16_t mtu, uint32_t now_s,
                      Emit& out) noexcept {
  const PacketMeta& md = meta(m);
  if (md.flags & meta_flags::kFragment) return out.drop(m, kFragment);
  if (md.flags & meta_flags::kIpOptions) return out.drop(m, kIpOptions);
  if (m->nb_segs != 1) return out.drop(m, kMultiSegment);
  auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr*, md.l3_off);
  auto* udp = rte_pktmbuf_mtod_offset(m, rte_udp_hdr*, md.l4_off);
  const uint32_t l4_len = md.l3_len - (md.l4_off - md.l3_off);
  const uint32_t ulen = rte_be_to_cpu_16(udp->dgram_len);
  if (ulen < sizeof(rte_udp_hdr) || ulen > l4_len) return out.drop(m, kBadLength);
  uint8_t* msg = reinterpret_cast<uint8_t*>(udp + 1);
  // Room for the answer: to the end of the buffer, and no more than one IP datagram on the
  // port (we never fragment an answer; larger ones are truncated).
  const uint8_t* end = static_cast<uint8_t*>(m->buf_addr) + m->buf_len;
  const uint32_t room = static_cast<uint32_t>(end - msg);
  const uint32_t mtu_room = (mtu ? mtu : 1500u) - sizeof(rte_ipv4_hdr) - sizeof(rte_udp_hdr);
  const uint32_t cap = room < mtu_room ? room : mtu_room;
  const uint32_t client = rte_be_to_cpu_32(ip->src_addr);
  uint32_t n = answer(msg, ulen - sizeof(rte_udp_hdr), cap, false, client, env, st_, tc_->c);
  if (n == 0) return out.drop(m, kUnanswerable);
  bool slip;
  if (!rate_ok(rt, client, static_cast<uint8_t>(msg[3] & 0xf), now_s, slip)) {
    tc_->rrl_dropped++;
    return out.drop(m, kRateLimited);
  }
  if (slip) {
    tc_->rrl_slipped++;
    n = truncate_answer(msg, n);
  }
  // Turn the query around: Ethernet, IP and UDP addresses swapped, lengths and checksums new.
  auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
  const rte_ether_addr mac = eth->src_addr;
  eth->src_addr = eth->dst_addr;
  eth->dst_addr = mac;
  const rte_be32_t a = ip->src_addr;
  ip->src_addr = ip->dst_addr;
  ip->dst_addr = a;
  const uint16_t l3 = static_cast<uint16_t>(sizeof(rte_ipv4_hdr) + sizeof(rte_udp_hdr) + n);
  ip->total_length = rte_cpu_to_be_16(l3);
  ip->time_to_live = 64;
  ip->fragment_offset = 0;
  ip->hdr_checksum = 0;
  ip->hdr_checksum = rte_ipv4_cksum(ip);
  udp->dst_port = udp->src_port;
  udp->src_port = RTE_BE16(kPort);
  udp->dgram_len = rte_cpu_to_be_16(static_cast<uint16_t>(sizeof(rte_udp_hdr) + n));
  udp->dgram_cksum = 0;
  udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
  const uint32_t total = md.l3_off + l3;
  m->data_len = static_cast<uint16_t>(total);
  m->pkt_len = total;
  meta(m).l3_len = l3;
  out.reply(m);
}

}  // namespace nf::dns
