#include "pipelines/nat/nat_stage.h"

#include <rte_byteorder.h>
#include <rte_mbuf.h>

#include <cstring>

#include "nf/lb/flow_burst.h"
#include "nf/lb/rewrite.h"
#include "nf/lb/tcp_state.h"
#include "nf/runtime/snapshot.h"

namespace nf::nat {

namespace {

using lb::FlowKey;
using lb::FlowRecord;
using lb::Hit;
namespace tcpflag = lb::tcpflag;

constexpr uint8_t kIcmp = 1;
constexpr uint8_t kTcp = 6;
constexpr uint8_t kUdp = 17;
constexpr uint8_t kEchoReply = 0;
constexpr uint8_t kEchoRequest = 8;
// A mapping record's keys: (inside address, inside port, rule) and (external address,
// external port), a kind no packet's key has, so packets never match them.
constexpr uint8_t kKindMapping = 2;
// FlowRecord::flags.
constexpr uint8_t kFlagStatic = 1;   // a port-forward session
constexpr uint8_t kFlagDynamic = 2;  // a dynamic PAT session: aux = its mapping's record index
// An endpoint mapping: packets = how many sessions use it, aux = the runtime generation whose
// pools its port came from.
constexpr uint8_t kFlagMapping = 4;

lb::PatProto pat_proto(uint8_t proto) {
  return proto == kTcp ? lb::PatProto::kTcp
                       : (proto == kUdp ? lb::PatProto::kUdp : lb::PatProto::kIcmp);
}

bool syn_only(uint8_t flags) {
  return (flags & (tcpflag::kSyn | tcpflag::kAck | tcpflag::kRst)) == tcpflag::kSyn;
}

}  // namespace

// What the per-packet code needs, read once from the headers. ICMP echo: the identifier is
// the source "port" of a request and the destination "port" of a reply (0 on the other
// side), so a request's key reversed is its reply's key, as for TCP and UDP.
struct NatStage::Pkt {
  FlowKey key;  // as on the wire (network order)
  uint8_t* ip;
  uint32_t len;
  uint8_t tcp_flags;
  uint8_t icmp_type;
  uint32_t src, dst;  // host order
  uint16_t sport, dport;
};

NatStage::NatStage(uint16_t worker, const StageEnv& env)
    : worker_(worker), workers_(std::max<uint16_t>(env.workers, 1)) {
  table_ = std::make_unique<lb::FlowTable>(std::max<uint32_t>(env.nat_max_sessions, 1024));
  table_->set_release_hook(&NatStage::on_release, this);
  if (env.nat_stats && worker < kMaxWorkers) {
    env.nat_stats->counters[worker] = &c_;
    env.nat_stats->tables[worker] = table_.get();
  }
}

NatStage::~NatStage() = default;

// Every record the table frees: a session lets go of its mapping, which dies with its last
// session; a mapping gives its port back (after the quarantine) if its runtime is current.
// Only record fields are written here, never the table's index.
void NatStage::on_release(void* self, FlowRecord* r) {
  auto* st = static_cast<NatStage*>(self);
  if (r->flags & kFlagDynamic) {
    FlowRecord* m = st->table_->at(r->aux);
    if (m->nkeys && (m->flags & kFlagMapping) && m->packets && --m->packets == 0)
      m->expire = st->now_;
    return;
  }
  const Runtime* rt = st->rt_;
  if (!(r->flags & kFlagMapping) || !rt || r->aux != static_cast<uint32_t>(rt->generation) ||
      r->service >= rt->rules.size())
    return;
  rt->workers[st->worker_]
      .ports[r->service]
      ->pool(0, pat_proto(r->key[0].proto))
      .release(r->nat_port, st->now_);
}

uint64_t NatStage::timeout_of(uint8_t proto, const Runtime& rt) const {
  return proto == kTcp   ? rt.timeouts.for_tcp(0)
         : proto == kUdp ? rt.timeouts.udp
                         : rt.timeouts.icmp;
}

bool NatStage::mine(uint16_t port, rte_mbuf* m, Emit& out) {
  if (workers_ <= 1 || port % workers_ == worker_) return true;
  c_.handoffs++;
  out.handoff(m, static_cast<uint16_t>(port % workers_));
  return false;
}

// The port whose worker owns the session of a packet src:sport -> dst:dport (host order; ICMP
// echo: the identifier on its side, 0 on the other), or would own the session it opens; -1
// when no session can hold it (not NAT's traffic). A function of the packet and the runtime
// alone, never of a table, checked in this order by every worker, so all of them name the
// same owner for every packet of a session in both directions, and for a packet that matches
// none (the header's Ownership):
//   - to a port forward: the client's source port;
//   - from a forward's server port: the destination port, the client's, whether the packet
//     is a forward's reply or opens a dynamic session of the server from that port (whose
//     external port then comes from the same worker's share, so its replies name it too);
//   - to a PAT range: the external port, allocated from its owner's share;
//   - leaving by a dynamic rule: the inside host's source port.
int NatStage::owner_port(uint32_t src, uint32_t dst, uint8_t proto, uint16_t sport, uint16_t dport,
                         const Runtime& rt) {
  if (proto != kIcmp) {
    if (rt.find_static(dst, proto, dport) >= 0) return sport;
    if (rt.find_target(src, proto, sport) >= 0) return dport;
  }
  if (rt.rule_of_external(dst, dport) >= 0) return dport;
  if (rt.rule_for(src, dst) >= 0) return sport;
  return -1;
}

void NatStage::process(Burst& in, const StageCtx& ctx, Emit& out) noexcept {
  const Runtime* rt = ctx.snap->nat.get();
  if (!rt) {
    out.next_all(in);
    return;
  }
  rt_ = rt;
  now_ = ctx.now_tsc;
  lb::Candidates<Pkt, rte_mbuf, kMaxBurst> cand;
  for (uint16_t i = 0; i < in.n; ++i) {
    rte_mbuf* m = in.pkts[i];
    const PacketMeta& md = meta(m);
    const uint8_t proto = md.ip_proto;
    if (md.parse != ParseStatus::kOk || (proto != kTcp && proto != kUdp && proto != kIcmp)) {
      out.next(m);
      continue;
    }
    auto* ip = rte_pktmbuf_mtod_offset(m, uint8_t*, md.l3_off);
    uint32_t src;
    std::memcpy(&src, ip + 12, 4);
    src = rte_be_to_cpu_32(src);
    // NAT's own traffic: to an external address, or from inside on its way out by a rule.
    auto ours = [&] { return rt->is_external(md.ip_dst) || rt->rule_for(src, md.ip_dst) >= 0; };
    if (!md.l4_off) {  // a later fragment has no ports to find its session by
      if (ours())
        out.drop(m, kFragment);
      else
        out.next(m);
      continue;
    }
    // The L4 header must lie inside the datagram (not in Ethernet padding).
    const uint32_t l4_len = static_cast<uint32_t>(md.l3_off + md.l3_len - md.l4_off);
    if (l4_len < (proto == kTcp ? 20u : 8u)) [[unlikely]] {
      if (ours())
        out.drop(m, kBadPacket);
      else
        out.next(m);
      continue;
    }
    const uint8_t* l4 = rte_pktmbuf_mtod_offset(m, const uint8_t*, md.l4_off);
    Pkt& p = cand.slot();
    p.ip = ip;
    p.len = md.l3_len;
    p.key = FlowKey{};
    std::memcpy(&p.key.src, ip + 12, 4);
    std::memcpy(&p.key.dst, ip + 16, 4);
    p.tcp_flags = proto == kTcp ? l4[13] : 0;
    p.icmp_type = 0;
    if (proto == kIcmp) {
      p.icmp_type = l4[0];
      if (p.icmp_type == 3 || p.icmp_type == 11 || p.icmp_type == 12) {
        icmp_error(m, *rt, out);
        continue;
      }
      if (p.icmp_type != kEchoRequest && p.icmp_type != kEchoReply) {
        out.next(m);
        continue;
      }
      std::memcpy(p.icmp_type == kEchoRequest ? &p.key.sport : &p.key.dport, l4 + 4, 2);
    } else {
      std::memcpy(&p.key.sport, l4, 2);
      std::memcpy(&p.key.dport, l4 + 2, 2);
    }
    p.key.proto = proto;
    p.src = src;
    p.dst = md.ip_dst;
    p.sport = rte_be_to_cpu_16(p.key.sport);
    p.dport = rte_be_to_cpu_16(p.key.dport);
    cand.add(m);
  }
  cand.lookup_each(*table_, now_, [&](rte_mbuf* m, Pkt& p, Hit h) { handle(m, p, h, *rt, out); });
  // Dead sessions leave within about a second (each record looked at once a second).
  table_->sweep_paced(now_, rt->tsc_hz);
  c_.sessions = table_->size();
}

void NatStage::handle(rte_mbuf* m, Pkt& p, Hit h, const Runtime& rt, Emit& out) {
  h = lb::recheck(*table_, h, p.key, now_);
  if (h.rec) {
    update(h.rec, p, h.dir, rt);
    translate(m, p, *h.rec, h.dir, out);
    return;
  }
  // No session here: the owner decides what the packet is (and opens its session), so the
  // worker it arrived on hands it over before deciding anything else.
  const int own = owner_port(p.src, p.dst, p.key.proto, p.sport, p.dport, rt);
  if (own < 0) {
    out.next(m);
    return;
  }
  if (!mine(static_cast<uint16_t>(own), m, out)) return;
  const bool icmp = p.key.proto == kIcmp;
  if (!icmp) {
    const int s = rt.find_static(p.dst, p.key.proto, p.dport);
    if (s >= 0) {
      open_static(m, p, rt.statics[static_cast<size_t>(s)], rt, out);
      return;
    }
  }
  // Inbound to a PAT range (an echo request has no identifier on this side: dport 0).
  if (rt.rule_of_external(p.dst, p.dport) >= 0) {
    out.drop(m, kNoSession);
    return;
  }
  // A forward's server answering a client on its own side of nf, without a session.
  const int rule = rt.rule_for(p.src, p.dst);
  if (rule < 0) {
    out.next(m);
    return;
  }
  if ((p.key.proto == kTcp && !syn_only(p.tcp_flags)) || (icmp && p.icmp_type != kEchoRequest)) {
    out.drop(m, kNoSession);  // would leave with the inside address, and nothing answers it
    return;
  }
  open_dynamic(m, p, rule, rt, out);
}

void NatStage::update(FlowRecord* r, const Pkt& p, unsigned dir, const Runtime& rt) {
  if (p.key.proto == kTcp)
    lb::track_tcp(*table_, r, p.tcp_flags, dir, false, rt.timeouts, now_);
  else
    table_->refresh(r, now_, timeout_of(p.key.proto, rt));
  if (dir == 0)
    c_.out_hits++;
  else
    c_.in_hits++;
}

void NatStage::open_static(rte_mbuf* m, Pkt& p, const NatStatic& s, const Runtime& rt, Emit& out) {
  if (p.key.proto == kTcp && !syn_only(p.tcp_flags)) {
    out.drop(m, kNoSession);  // the server would only reset it
    return;
  }
  const FlowKey k1 = FlowKey::conn(rte_cpu_to_be_32(s.to), p.key.src, rte_cpu_to_be_16(s.to_port),
                                   p.key.sport, p.key.proto);
  bool existed = false;
  FlowRecord* r = table_->insert(p.key, &k1, now_, timeout_of(p.key.proto, rt), &existed);
  if (!r) {
    out.drop(m, kTableFull);
    return;
  }
  if (existed) {  // two packets of one new session in a burst: the first opened it
    update(r, p, 0, rt);
  } else {
    r->flags = kFlagStatic;
    if (p.key.proto == kTcp) r->tcp_state = lb::tcp_step(0, p.tcp_flags, 0, false).next;
    r->packets = 1;
    c_.new_static++;
  }
  translate(m, p, *r, 0, out);
}

// The endpoint mapping of the packet's inside (address, port): the existing one, or a new one
// with a port of this worker's share. nullptr with the drop reason when there is none.
FlowRecord* NatStage::mapping(const Pkt& p, int rule, const Runtime& rt, uint8_t& drop) {
  // Per rule: an endpoint leaving by two rules' ports has a mapping on each one's address.
  const FlowKey mk{
      p.key.src, 0, p.key.sport, 0, p.key.proto, kKindMapping, static_cast<uint16_t>(rule)};
  if (FlowRecord* r = table_->lookup(mk, now_).rec) return r;
  const NatDynamic& ru = rt.rules[static_cast<size_t>(rule)];
  lb::PortPool& pool =
      rt.workers[worker_].ports[static_cast<size_t>(rule)]->pool(0, pat_proto(p.key.proto));
  drop = kTableFull;
  // A port still held by a mapping of an earlier configuration is refused by the table (its
  // external key is alive): try a few.
  for (int attempt = 0; attempt < 4 && table_->size() < table_->capacity(); ++attempt) {
    const uint16_t port = pool.alloc(now_);
    if (port == 0) {
      drop = kNoPort;
      return nullptr;
    }
    // One external port per address and protocol, whichever rule (or generation) holds it.
    const FlowKey ek{
        0, rte_cpu_to_be_32(ru.addr), 0, rte_cpu_to_be_16(port), p.key.proto, kKindMapping, 0};
    FlowRecord* r = table_->insert(mk, &ek, now_, 1);
    if (!r) {
      pool.release(port, now_);
      drop = table_->size() < table_->capacity() ? kNoPort : kTableFull;
      continue;
    }
    // It lives exactly as long as its sessions: the last one's release ends it.
    r->expire = UINT64_MAX;
    r->nat_addr = ru.addr;
    r->nat_port = port;
    r->service = static_cast<uint16_t>(rule);
    r->aux = static_cast<uint32_t>(rt.generation);
    r->flags = kFlagMapping;
    r->packets = 0;
    c_.mappings++;
    return r;
  }
  return nullptr;
}

void NatStage::open_dynamic(rte_mbuf* m, Pkt& p, int rule, const Runtime& rt, Emit& out) {
  uint8_t drop = kTableFull;
  FlowRecord* mp = mapping(p, rule, rt, drop);
  if (!mp) {
    out.drop(m, drop);
    return;
  }
  const FlowKey k1 = FlowKey::conn(p.key.dst, rte_cpu_to_be_32(mp->nat_addr), p.key.dport,
                                   rte_cpu_to_be_16(mp->nat_port), p.key.proto);
  bool existed = false;
  FlowRecord* r = table_->insert(p.key, &k1, now_, timeout_of(p.key.proto, rt), &existed);
  if (!r) {
    if (mp->packets == 0) mp->expire = now_;  // a mapping no session uses dies at once
    out.drop(m, kTableFull);
    return;
  }
  if (existed) {
    update(r, p, 0, rt);
  } else {
    // The insert may have released the mapping's last session (expired), which ended the
    // mapping: if the table even freed it, start over next time; else it lives on.
    if (mp == r || !(mp->flags & kFlagMapping) || mp->nkeys != 2) [[unlikely]] {
      table_->erase(r);
      out.drop(m, kTableFull);
      return;
    }
    mp->expire = UINT64_MAX;
    mp->packets++;
    r->flags = kFlagDynamic;
    r->aux = table_->index_of(mp);
    r->service = static_cast<uint16_t>(rule);
    if (p.key.proto == kTcp) r->tcp_state = lb::tcp_step(0, p.tcp_flags, 0, false).next;
    r->packets = 1;
    c_.new_dynamic++;
  }
  translate(m, p, *r, 0, out);
}

// A session's packet becomes the reverse of the other direction's key: source = that key's
// destination, destination = its source. Only the sides that differ are rewritten.
void NatStage::translate(rte_mbuf* m, const Pkt& p, const FlowRecord& r, unsigned dir, Emit& out) {
  const FlowKey& o = r.key[dir ^ 1];
  PacketMeta& md = meta(m);
  const bool src_changes = o.dst != p.key.src || o.dport != p.key.sport;
  const bool dst_changes = o.src != p.key.dst || o.sport != p.key.dport;
  const uint32_t nsrc = rte_be_to_cpu_32(o.dst), ndst = rte_be_to_cpu_32(o.src);
  lb::RewriteStatus st = lb::RewriteStatus::kOk;
  if (p.key.proto == kIcmp) {
    // The identifier sits on the request's source side and the reply's destination side.
    const uint16_t id = rte_be_to_cpu_16(p.icmp_type == kEchoRequest ? o.dport : o.sport);
    if (src_changes) st = lb::nat_icmp_id(p.ip, p.len, lb::Side::kSrc, nsrc, id);
    if (dst_changes && st == lb::RewriteStatus::kOk)
      st = lb::nat_icmp_id(p.ip, p.len, lb::Side::kDst, ndst, id);
  } else {
    if (src_changes) st = lb::nat_src(p.ip, p.len, nsrc, rte_be_to_cpu_16(o.dport));
    if (dst_changes && st == lb::RewriteStatus::kOk)
      st = lb::nat_dst(p.ip, p.len, ndst, rte_be_to_cpu_16(o.sport));
  }
  if (st != lb::RewriteStatus::kOk) [[unlikely]] {
    out.drop(m, kBadPacket);
    return;
  }
  md.ip_dst = ndst;
  out.next(m);
}

// ICMP errors (RFC 792, RFC 5508 4.2): the quoted datagram is one nf sent after translation,
// so its reverse is a packet of the session as it arrives, which finds the session. The error
// is rewritten into what the other side would have received had there been no NAT: the quoted
// packet as that side sent it, delivered to that side. The error's own source is translated
// too when it is the quoted packet's destination (the peer itself answered), or when it is a
// router on the private side (inside for dynamic PAT, the server's side for port forwards),
// whose address must not leak.
void NatStage::icmp_error(rte_mbuf* m, const Runtime& rt, Emit& out) {
  PacketMeta& md = meta(m);
  auto* ip = rte_pktmbuf_mtod_offset(m, uint8_t*, md.l3_off);
  lb::IcmpErrorInfo e;
  if (lb::parse_icmp_error(ip, md.l3_len, e) != lb::RewriteStatus::kOk) {
    out.next(m);
    return;
  }
  FlowKey rev = FlowKey::conn(rte_cpu_to_be_32(e.dst), rte_cpu_to_be_32(e.src),
                              rte_cpu_to_be_16(e.dport), rte_cpu_to_be_16(e.sport), e.proto);
  uint8_t quoted_type = 0;
  if (e.proto == kIcmp) {
    // An echo request's reverse is a reply (identifier on the destination side), and back.
    quoted_type = ip[e.inner_off + e.inner_hlen];
    const uint16_t id = rte_cpu_to_be_16(e.sport);
    rev.sport = quoted_type == kEchoRequest ? 0 : id;
    rev.dport = quoted_type == kEchoRequest ? id : 0;
  }
  const Hit h = table_->lookup(rev, now_);
  if (!h.rec) {
    // Owned by another worker? The owner of `rev`, the session's packet as it arrives.
    const int own = owner_port(rte_be_to_cpu_32(rev.src), rte_be_to_cpu_32(rev.dst), rev.proto,
                               rte_be_to_cpu_16(rev.sport), rte_be_to_cpu_16(rev.dport), rt);
    if (own >= 0 && !mine(static_cast<uint16_t>(own), m, out)) return;
    out.next(m);
    return;
  }
  const FlowRecord& r = *h.rec;
  // h.dir 1: the quoted packet was a translated opening-side packet; the error goes to the
  // opening side (key[0].src), quoting key[0]. h.dir 0: the other way round, quoting key[1].
  const FlowKey& to_k = r.key[h.dir ^ 1];
  const FlowKey& from_k = r.key[h.dir];
  const bool private_side = (r.flags & kFlagStatic) ? h.dir == 1 : h.dir == 0;
  lb::IcmpErrorNat to{e.outer_src, e.outer_dst, e.src, e.dst, e.sport, e.dport};
  to.src = rte_be_to_cpu_32(to_k.src);
  to.dst = rte_be_to_cpu_32(to_k.dst);
  to.sport = rte_be_to_cpu_16(to_k.sport);
  to.dport = rte_be_to_cpu_16(to_k.dport);
  if (e.proto == kIcmp)
    to.sport = rte_be_to_cpu_16(quoted_type == kEchoRequest ? to_k.sport : to_k.dport);
  to.outer_dst = to.src;
  if (e.outer_src == rte_be_to_cpu_32(from_k.src) || private_side) to.outer_src = to.dst;
  if (lb::rewrite_icmp_error(ip, md.l3_len, to) != lb::RewriteStatus::kOk) {
    out.drop(m, kBadPacket);
    return;
  }
  md.ip_dst = to.outer_dst;
  c_.icmp_translated++;
  out.next(m);
}

}  // namespace nf::nat
