#include "pipelines/dhcp/dhcp_stage.h"

#include <ctime>

namespace nf::dhcp {

namespace {

constexpr uint16_t kEth = sizeof(rte_ether_hdr);
constexpr uint16_t kIp = sizeof(rte_ipv4_hdr);
constexpr uint16_t kUdp = sizeof(rte_udp_hdr);
constexpr uint16_t kHdrs = kEth + kIp + kUdp;

DhcpStage::Drop drop_for(ParseError e) {
  switch (e) {
    case ParseError::kShort:
      return DhcpStage::kShort;
    case ParseError::kNotRequest:
      return DhcpStage::kNotRequest;
    case ParseError::kBadHardware:
      return DhcpStage::kBadHardware;
    case ParseError::kBadMagic:
      return DhcpStage::kBadMagic;
    case ParseError::kBadType:
      return DhcpStage::kBadType;
    default:
      return DhcpStage::kBadOptions;
  }
}

DhcpStage::Drop drop_for(Outcome o) {
  switch (o) {
    case Outcome::kNoPool:
      return DhcpStage::kNoPool;
    case Outcome::kRateLimited:
      return DhcpStage::kRateLimited;
    case Outcome::kPoolExhausted:
      return DhcpStage::kPoolExhausted;
    case Outcome::kTableFull:
      return DhcpStage::kTableFull;
    case Outcome::kOtherServer:
      return DhcpStage::kOtherServer;
    case Outcome::kNotOurs:
      return DhcpStage::kNotOurs;
    default:
      return DhcpStage::kIgnored;
  }
}

}  // namespace

DhcpStage::DhcpStage(uint16_t worker, const StageEnv& env)
    : worker_(worker), env_(env), shard_(env.dhcp_max_leases, worker, env.workers) {
  if (!env_.dhcp) return;
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  for (const LeaseRecord& r : env_.dhcp->take_recovered(worker))
    shard_.restore(r, env_.dhcp->blocks(), now);
  env_.dhcp->attach(worker, &shard_, &st_);
}

DhcpStage::~DhcpStage() = default;

void DhcpStage::handle(rte_mbuf* m, const Snapshot& s, int64_t now_ms, Emit& out) noexcept {
  const PacketMeta& md = meta(m);
  if (md.flags & meta_flags::kFragment) return out.drop(m, kFragment);
  const View* v = s.dhcp.get();
  if (!v) return out.drop(m, kNoPool);
  const auto* ip = rte_pktmbuf_mtod_offset(m, const rte_ipv4_hdr*, md.l3_off);
  const auto* udp = rte_pktmbuf_mtod_offset(m, const rte_udp_hdr*, md.l4_off);
  const uint32_t l4_len = md.l3_len - (md.l4_off - md.l3_off);
  uint32_t ulen = rte_be_to_cpu_16(udp->dgram_len);
  if (ulen < kUdp || ulen > l4_len) return out.drop(m, kShort);
  const uint8_t* msg = reinterpret_cast<const uint8_t*>(udp + 1);
  Request& r = req_;
  const ParseError pe = parse_request({msg, ulen - kUdp}, r);
  if (pe != ParseError::kOk) return out.drop(m, drop_for(pe));

  const uint16_t owner = shard_.owner_of(Shard::key_of(r));
  if (owner != worker_) {
    st_.handed_off++;
    return out.handoff(m, owner);
  }
  st_.by_type[r.type < 9 ? r.type : 0]++;

  const PoolView* pool = Shard::pool_for(*v, r, m->port);
  if (!pool) return out.drop(m, kNoPool);
  const uint32_t dst = rte_be_to_cpu_32(ip->dst_addr);
  uint32_t server_addr = pool->server_id;
  if (!server_addr) {
    // A relay sent it to one of our addresses: that is who we are to it.
    server_addr = dst != 0xffffffffu ? dst : 0;
    if (!server_addr && !s.config->ports[m->port].addresses.empty())
      server_addr = s.config->ports[m->port].addresses.front().addr;
  }
  uint8_t l2_src[6];
  std::memcpy(l2_src, rte_pktmbuf_mtod_offset(m, const uint8_t*, 6), 6);
  const Decision d = shard_.handle(*v, *pool, r, server_addr, l2_src, now_ms);
  if (LeaseRecord left; shard_.take_left_behind(left)) [[unlikely]]
    journal_own(left);

  if (d.record && !d.reply) {
    // RELEASE or DECLINE: the request carries the record to the journal and ends there.
    LeaseRecord* rec = record_area(m);
    if (!rec) return out.drop(m, kNoRoom);
    std::memcpy(static_cast<void*>(rec), &d.rec, sizeof d.rec);
    meta(m).aux = 0;
    return out.commit(m);
  }
  if (d.outcome != Outcome::kReply || !d.reply) return out.drop(m, drop_for(d.outcome));
  if (!build_reply(m, s, r, d, l2_src)) return out.drop(m, kNoRoom);
  if (d.record) {
    LeaseRecord* rec = record_area(m);
    if (!rec) return out.drop(m, kNoRoom);
    std::memcpy(static_cast<void*>(rec), &d.rec, sizeof d.rec);
    PacketMeta& w = meta(m);
    w.aux = 1;
    w.out_port = m->port;
    return out.commit(m);
  }
  out.reply(m);
}

bool DhcpStage::build_reply(rte_mbuf* m, const Snapshot& s, const Request& r, const Decision& d,
                            const uint8_t* client_l2) noexcept {
  const PoolView& p = *d.pool;
  const uint16_t port_mtu = s.ports[m->port].mtu;
  // RFC 2131 2: a client accepts 576 bytes of IP at least; more only if it says so.
  uint16_t max_ip = r.max_msg >= kDefaultMaxMsg ? r.max_msg : kDefaultMaxMsg;
  if (max_ip > port_mtu) max_ip = port_mtu;
  const uint16_t max_dhcp = static_cast<uint16_t>(max_ip - kIp - kUdp);
  // The reply and, after it, the lease record must fit in this one buffer.
  const int32_t avail =
      int32_t{m->buf_len} - m->data_off - kHdrs - static_cast<int32_t>(sizeof(LeaseRecord)) - 8;
  if (m->nb_segs != 1 || avail < kBootpMinLen) return false;
  const auto room = static_cast<uint16_t>(std::min<int32_t>(max_dhcp, avail));
  uint8_t* frame = rte_pktmbuf_mtod(m, uint8_t*);
  uint8_t* b = frame + kHdrs;

  // The fixed header (RFC 2131 table 3), written over the request (every field the request
  // contributes was copied into `r` by the parse).
  std::memset(b, 0, kFixedLen);
  b[off::kOp] = 2;
  b[off::kHtype] = r.htype;
  b[off::kHlen] = r.hlen;
  std::memcpy(b + off::kXid, &r.xid, 4);
  wr16(b + off::kFlags, r.flags);
  if (d.reply == kAck) wr32(b + off::kCiaddr, r.ciaddr);
  wr32(b + off::kYiaddr, d.yiaddr);
  wr32(b + off::kGiaddr, r.giaddr);
  std::memcpy(b + off::kChaddr, r.chaddr, 16);
  wr32(b + off::kOptions - 4, kMagic);

  OptionWriter w(b + off::kOptions, static_cast<uint16_t>(room - off::kOptions));
  w.put8(opt::kMsgType, d.reply);
  w.put32(opt::kServerId, d.server_id);
  if (d.reply != kNak) {
    if (d.lease_time) {
      w.put32(opt::kLeaseTime, d.lease_time);
      w.put32(opt::kT1, d.lease_time / 2);  // RFC 2131 4.4.5
      w.put32(opt::kT2, static_cast<uint32_t>(uint64_t{d.lease_time} * 7 / 8));
    }
    if (d.rapid) w.put(opt::kRapidCommit, "", 0);
    // The options the client asked for, in its order; all of them if it sent no list. The
    // subnet mask always goes (a client without it would guess from the class).
    const auto put_pool = [&](uint8_t code) {
      const int16_t at = p.at[code];
      if (at >= 0) w.raw(p.blob.data() + at, static_cast<uint16_t>(2 + p.blob[at + 1]));
    };
    put_pool(opt::kSubnetMask);
    if (r.params.present) {
      for (uint8_t i = 0; i < r.params.len; ++i) {
        const uint8_t c = r.params.b[i];
        if (c == opt::kSubnetMask) continue;
        if (c == opt::kHostName && d.hostname) {
          w.put(opt::kHostName, d.hostname, static_cast<uint8_t>(std::strlen(d.hostname)));
          continue;
        }
        put_pool(c);
      }
    } else {
      w.raw(p.blob.data() + 6, static_cast<uint16_t>(p.blob.size() - 6));  // after the mask
      if (d.hostname)
        w.put(opt::kHostName, d.hostname, static_cast<uint8_t>(std::strlen(d.hostname)));
    }
  }
  if (r.client_id.present) w.put(opt::kClientId, r.client_id.b, r.client_id.len);
  if (r.relay_info.present) w.put(opt::kRelayInfo, r.relay_info.b, r.relay_info.len);
  uint16_t dlen = static_cast<uint16_t>(off::kOptions + w.end());
  if (dlen < kBootpMinLen) {
    std::memset(b + dlen, 0, kBootpMinLen - dlen);
    dlen = kBootpMinLen;
  }

  // Where it goes (RFC 2131 4.1).
  uint32_t ip_dst;
  uint16_t udp_dst = kClientPort;
  const uint8_t* eth_dst;
  static constexpr uint8_t kBcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  const bool ether_client = r.htype == 1 && r.hlen == 6;
  const bool bcast = !r.giaddr && (d.reply == kNak ||
                                   (!r.ciaddr && ((r.flags & kFlagBroadcast) || !ether_client)));
  if (r.giaddr) {
    ip_dst = r.giaddr;
    udp_dst = kServerPort;
    eth_dst = client_l2;  // the relay (or the router in front of it) sent it to us
  } else if (bcast) {
    ip_dst = 0xffffffffu;
    eth_dst = kBcast;
  } else if (r.ciaddr) {
    ip_dst = r.ciaddr;
    eth_dst = client_l2;
  } else {
    ip_dst = d.yiaddr;  // link-layer unicast to chaddr, no ARP (the client has no address yet)
    eth_dst = r.chaddr;
  }

  auto* eth = reinterpret_cast<rte_ether_hdr*>(frame);
  std::memcpy(eth->dst_addr.addr_bytes, eth_dst, 6);
  std::memcpy(eth->src_addr.addr_bytes, s.ports[m->port].mac.b.data(), 6);
  eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_IPV4);
  auto* ip = reinterpret_cast<rte_ipv4_hdr*>(frame + kEth);
  ip->version_ihl = 0x45;
  ip->type_of_service = 0;
  ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(kIp + kUdp + dlen));
  ip->packet_id = 0;
  ip->fragment_offset = 0;
  ip->time_to_live = 64;
  ip->next_proto_id = IPPROTO_UDP;
  ip->src_addr = rte_cpu_to_be_32(d.server_id);
  ip->dst_addr = rte_cpu_to_be_32(ip_dst);
  ip->hdr_checksum = 0;
  ip->hdr_checksum = rte_ipv4_cksum(ip);
  auto* udp = reinterpret_cast<rte_udp_hdr*>(frame + kEth + kIp);
  udp->src_port = RTE_BE16(kServerPort);
  udp->dst_port = rte_cpu_to_be_16(udp_dst);
  udp->dgram_len = rte_cpu_to_be_16(static_cast<uint16_t>(kUdp + dlen));
  udp->dgram_cksum = 0;
  m->data_len = static_cast<uint16_t>(kHdrs + dlen);
  m->pkt_len = m->data_len;
  udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
  PacketMeta& md = meta(m);
  md.l3_off = kEth;
  md.l4_off = kEth + kIp;
  md.l3_len = static_cast<uint16_t>(kIp + kUdp + dlen);
  return true;
}

// A record of the stage's own (not an outcome of a received packet): straight onto this
// worker's commit ring, of which the worker thread is the only producer.
void DhcpStage::journal_own(const LeaseRecord& rec) noexcept {
  if (!env_.dhcp || !env_.pool) return;
  rte_mbuf* m = rte_pktmbuf_alloc(env_.pool);
  if (!m) return;  // the lease is free in memory; only its record is missing
  LeaseRecord* area = record_area(m);
  if (!area) {
    rte_pktmbuf_free(m);
    return;
  }
  std::memcpy(static_cast<void*>(area), &rec, sizeof rec);
  meta(m).aux = 0;
  if (rte_ring_sp_enqueue(env_.dhcp->commit_ring(worker_), m) != 0) rte_pktmbuf_free(m);
}

void DhcpStage::poll(const StageCtx& ctx, Emit& /*out*/) noexcept {
  const int64_t now_ms = now(ctx.now_tsc);
  if (now_ms - last_age_ms_ >= 10) {
    shard_.age(now_ms / 1000, 256);
    last_age_ms_ = now_ms;
  }
  if (!env_.dhcp) return;
  void* cmd;
  while (rte_ring_sc_dequeue(env_.dhcp->command_ring(worker_), &cmd) == 0) {
    const auto addr = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(cmd));
    LeaseRecord rec;
    if (!shard_.release_addr(addr, now_ms / 1000, rec)) continue;
    st_.operator_releases++;
    journal_own(rec);
  }
}

}  // namespace nf::dhcp
