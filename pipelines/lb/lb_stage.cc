#include "pipelines/lb/lb_stage.h"

#include <rte_byteorder.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <sys/random.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "nf/health/monitor.h"
#include "nf/lb/flow_burst.h"
#include "nf/lb/rewrite.h"
#include "nf/lb/tcp_state.h"
#include "nf/runtime/snapshot.h"

namespace nf::lb {

namespace {

constexpr uint8_t kIcmp = 1;
constexpr uint8_t kTcp = 6;
constexpr uint8_t kUdp = 17;
// FlowRecord::flags: the low bits are the stage's, the high nibble the flow's mode.
constexpr uint8_t kFlagPortHeld = 1;  // a full NAT source port goes back when the flow ends
constexpr uint8_t kFlagActive = 2;    // counted in its real's active flows (least_conn)
constexpr uint8_t kFlagProxied = 4;   // opened by a SYN cookie: sequence numbers are shifted
constexpr uint8_t kFlagSynWait = 8;   // proxied, the real's SYN-ACK not seen yet
constexpr int kModeShift = 4;

PatProto pat_proto(uint8_t proto) {
  return proto == kTcp ? PatProto::kTcp : PatProto::kUdp;
}

bool one_way(LbMode m) {
  return m == LbMode::kDsr || m == LbMode::kIpip || m == LbMode::kDscp;
}

// One-key (DSR) records keep what their rewrite needs beyond the real in the unused second
// key: the IP-in-IP outer source and the DSCP value.
void stash(FlowRecord* r, uint32_t encap_src, uint8_t dscp) {
  r->key[1].src = encap_src;
  r->key[1].proto = dscp;
}

// A proxied flow has no use for the packet count (nothing reads it), so `packets` holds its
// sequence offset: the cookie while the real's SYN-ACK is awaited, then real ISN - cookie.
// The client's window from its cookie ACK waits in the spare bytes for the ACK to the real.
uint32_t& seq_delta(FlowRecord* r) {
  return r->packets;
}
void set_client_window(FlowRecord* r, uint16_t w_be) {
  std::memcpy(r->reserved, &w_be, 2);
}
uint16_t client_window(const FlowRecord* r) {
  uint16_t w;
  std::memcpy(&w, r->reserved, 2);
  return w;
}

uint32_t rd32(const uint8_t* p) {
  return rte_be_to_cpu_32(csum::load32(p));
}

// seq or ack (`off`) of a TCP header plus `add`, the checksum patched (RFC 1624).
void shift32(uint8_t* tcp, uint32_t off, uint32_t add) {
  const uint32_t old = csum::load32(tcp + off);
  const uint32_t now = rte_cpu_to_be_32(rte_be_to_cpu_32(old) + add);
  csum::store32(tcp + off, now);
  csum::store16(tcp + 16, csum::apply(csum::load16(tcp + 16), csum::delta32(old, now)));
}

// An answer goes back out of the port it came in on, to the sender's MAC.
void swap_macs(rte_mbuf* m) {
  auto* eth = rte_pktmbuf_mtod(m, uint8_t*);
  uint8_t mac[6];
  std::memcpy(mac, eth, 6);
  std::memcpy(eth, eth + 6, 6);
  std::memcpy(eth + 6, mac, 6);
}

// The frame of a single-segment mbuf resized so its IPv4 datagram is `len` bytes; false (and
// nothing changed) when the buffer cannot hold that.
bool resize_l3(rte_mbuf* m, PacketMeta& md, uint32_t len) {
  const uint32_t frame = md.l3_off + len;
  if (m->nb_segs != 1 || frame > uint32_t{m->data_len} + rte_pktmbuf_tailroom(m)) return false;
  m->data_len = static_cast<uint16_t>(frame);
  m->pkt_len = frame;
  md.l3_len = static_cast<uint16_t>(len);
  md.flags = static_cast<uint8_t>(md.flags & ~meta_flags::kPadded);
  return true;
}

// Both checksums of a header we rewrote from the TCP header on (IPv4 header and TCP segment
// recomputed in full: a few dozen bytes, never a payload).
void full_checksums(uint8_t* ip, uint8_t* tcp) {
  auto* h = reinterpret_cast<rte_ipv4_hdr*>(ip);
  h->hdr_checksum = 0;
  h->hdr_checksum = rte_ipv4_cksum(h);
  csum::store16(tcp + 16, 0);
  const uint16_t c = rte_ipv4_udptcp_cksum(h, tcp);
  csum::store16(tcp + 16, c);
}

// The process's cookie secret: 128 bits from the kernel CSPRNG, drawn once (the first stage
// constructed draws it, before any packet). Every worker derives the same per-period keys
// from it, so a cookie made on one worker validates on any other.
const SipKey& cookie_master() {
  static const SipKey key = [] {
    uint8_t b[16];
    size_t got = 0;
    while (got < sizeof b) {
      const ssize_t n = getrandom(b + got, sizeof b - got, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw std::system_error(errno, std::generic_category(), "getrandom (SYN cookie secret)");
      }
      got += static_cast<size_t>(n);
    }
    SipKey k;
    std::memcpy(&k.k0, b, 8);
    std::memcpy(&k.k1, b + 8, 8);
    return k;
  }();
  return key;
}

// The key of cookie period `step`: SipHash of the step under the secret, two domains for the
// two halves. Rotation is then a pure function of the clock: no shared mutable state, no
// management lcore, and every worker agrees at every instant.
SipKey period_key(const SipKey& master, uint64_t step) {
  SipKey k;
  SipState a(master);
  a.absorb(step);
  a.absorb(0x6e662d6c62636b30ULL);  // "nf-lbck0"
  k.k0 = a.finish(16);
  SipState b(master);
  b.absorb(step);
  b.absorb(0x6e662d6c62636b31ULL);  // "nf-lbck1"
  k.k1 = b.finish(16);
  return k;
}

}  // namespace

// What the per-packet code needs, read once from the headers.
struct LbStage::Pkt {
  FlowKey key;        // as on the wire (network order): the table's key
  uint8_t* ip;        // IPv4 header
  uint8_t* l4;        // TCP or UDP header
  uint32_t len;       // IPv4 datagram length
  uint8_t tcp_flags;  // 0 for UDP
  uint32_t src, dst;  // host order
  uint16_t sport, dport;
};

LbStage::LbStage(uint16_t worker, const StageEnv& env)
    : worker_(worker), workers_(std::max<uint16_t>(env.workers, 1)) {
  table_ = std::make_unique<FlowTable>(std::max<uint32_t>(env.lb_max_flows, 1024));
  table_->set_release_hook(&LbStage::on_release, this);
  reserve_ = table_->capacity() / 64;
  (void)cookie_master();  // drawn now, not on the first SYN of a flood
  if (env.lb_stats && worker < kMaxWorkers) {
    env.lb_stats->counters[worker] = &c_;
    env.lb_stats->tables[worker] = table_.get();
  }
}

LbStage::~LbStage() = default;

SynCookies LbStage::cookies_at(uint64_t now, uint64_t hz) {
  hz = hz ? hz : 1;
  const uint64_t step = now / (kCookiePeriodSeconds * hz);
  // The previous period's key as "previous", so a cookie lives its whole age (kCookieMaxAge).
  SynCookies c(period_key(cookie_master(), step - 1), hz);
  c.rotate(period_key(cookie_master(), step));
  return c;
}

const SynCookies& LbStage::cookies(const Runtime& rt, uint64_t now) {
  const uint64_t hz = rt.tsc_hz ? rt.tsc_hz : 1;
  const uint64_t step = now / (kCookiePeriodSeconds * hz);
  if (step != cookie_step_ || hz != cookie_hz_) {
    cookies_ = cookies_at(now, hz);
    cookie_step_ = step;
    cookie_hz_ = hz;
  }
  return cookies_;
}

bool LbStage::real_up(const Runtime& rt, const RealRt& r) const {
  if (r.slot == kNoHealthSlot || !rt.slots) return true;
  return rt.slots[r.slot].up.load(std::memory_order_relaxed) != 0;
}

// The health of a service's reals as the scheduler wants it (one byte each), read from the
// monitor's slots at most once per burst.
const uint8_t* LbStage::up_of(const Runtime& rt, const ServiceRt& s) {
  WorkerState& ws = rt.workers[worker_];
  std::vector<uint8_t>& up = ws.up[s.id];
  if (ws.up_burst[s.id] != burst_) {
    ws.up_burst[s.id] = burst_;
    for (size_t i = 0; i < s.reals.size(); ++i) up[i] = real_up(rt, s.reals[i]) ? 1 : 0;
  }
  return up.data();
}

// Counts new flows per one-second window; over the limit, the rest of the window is a flood,
// and so is the whole of the window that follows it: a sustained flood gets no state after its
// first second (only syn_flood_rate entries, not that many every second), and the second after
// it ends still answers with cookies, which costs legitimate clients nothing.
bool LbStage::flooding(const Runtime& rt, uint64_t now) {
  if (now - window_start_ >= rt.tsc_hz) {
    const bool was = window_new_ > rt.syn_flood_rate && now - window_start_ < 2 * rt.tsc_hz;
    window_start_ = now;
    window_new_ = 0;
    flood_ = was;
    if (was) c_.flood_windows++;
  }
  if (++window_new_ > rt.syn_flood_rate && !flood_) {
    flood_ = true;
    c_.flood_windows++;
  }
  return flood_;
}

// Called by the table for every record it frees (expiry, erase): the flow's least-connection
// count and full NAT port go back, if the flow was opened under the runtime in use.
void LbStage::on_release(void* self, FlowRecord* r) {
  auto* st = static_cast<LbStage*>(self);
  const Runtime* rt = st->rt_;
  if (!rt || r->key[0].kind != kFlowConn || r->aux != static_cast<uint32_t>(rt->generation) ||
      r->service >= rt->services.size())
    return;
  WorkerState& ws = rt->workers[st->worker_];
  if (r->flags & kFlagActive) ws.cursors[r->service].on_close(r->real);
  if ((r->flags & kFlagPortHeld) && ws.ports) {
    const ServiceRt& s = rt->services[r->service];
    const uint32_t addr = rte_be_to_cpu_32(r->key[1].dst);
    for (size_t i = 0; i < s.snat.size(); ++i)
      if (s.snat[i] == addr)
        ws.ports->pool(s.snat_idx[i], pat_proto(r->key[0].proto))
            .release(rte_be_to_cpu_16(r->key[1].dport), st->now_);
  }
}

void LbStage::process(Burst& in, const StageCtx& ctx, Emit& out) noexcept {
  const Runtime* rt = ctx.snap->lb.get();
  if (!rt) {
    out.next_all(in);
    return;
  }
  rt_ = rt;
  ++burst_;
  now_ = ctx.now_tsc;
  Candidates<Pkt, rte_mbuf, kMaxBurst> cand;
  for (uint16_t i = 0; i < in.n; ++i) {
    rte_mbuf* m = in.pkts[i];
    const PacketMeta& md = meta(m);
    if (md.parse == ParseStatus::kOk && md.ip_proto == kIcmp && md.l4_off) {
      icmp(m, *rt, out);
      continue;
    }
    if (md.parse != ParseStatus::kOk || (md.ip_proto != kTcp && md.ip_proto != kUdp)) {
      out.next(m);
      continue;
    }
    if (!md.l4_off) {  // a later fragment has no ports to find its flow by
      if (rt->vips.is_vip(md.ip_dst))
        out.drop(m, kFragment);
      else
        out.next(m);
      continue;
    }
    // The L4 header must lie inside the datagram (not in Ethernet padding) before its ports
    // and flags mean anything.
    const uint32_t l4_len = static_cast<uint32_t>(md.l3_off + md.l3_len - md.l4_off);
    if (l4_len < (md.ip_proto == kTcp ? 20u : 8u)) [[unlikely]] {
      if (rt->vips.is_vip(md.ip_dst))
        out.drop(m, kBadPacket);
      else
        out.next(m);
      continue;
    }
    Pkt& p = cand.slot();
    p.ip = rte_pktmbuf_mtod_offset(m, uint8_t*, md.l3_off);
    p.len = md.l3_len;
    uint8_t* l4 = rte_pktmbuf_mtod_offset(m, uint8_t*, md.l4_off);
    uint64_t addrs;
    uint32_t ports;
    std::memcpy(&addrs, p.ip + 12, 8);
    std::memcpy(&ports, l4, 4);
    p.l4 = l4;
    p.tcp_flags = md.ip_proto == kTcp ? l4[13] : 0;
    p.src = rte_be_to_cpu_32(static_cast<uint32_t>(addrs));
    p.dst = md.ip_dst;
    p.sport = rte_be_to_cpu_16(static_cast<uint16_t>(ports));
    p.dport = rte_be_to_cpu_16(static_cast<uint16_t>(ports >> 16));
    cand.add_conn(m, addrs, ports, md.ip_proto);
  }
  cand.lookup_each(*table_, now_,
                   [&](rte_mbuf* m, Pkt& p, Hit h) { handle(m, p, h, *rt, now_, out); });
  // Dead flows leave at a pace of the whole table per second (dead records are found by
  // lookups too, so this only bounds how long a dead flow holds its record, port and
  // least-connection count).
  table_->sweep_paced(now_, rt->tsc_hz);
  c_.flows = table_->size();
}

void LbStage::handle(rte_mbuf* m, Pkt& p, Hit h, const Runtime& rt, uint64_t now, Emit& out) {
  // An earlier packet of the burst may have ended this hit's flow (nf/lb/flow_burst.h).
  h = recheck(*table_, h, p.key, now);
  FlowRecord* r = h.rec;
  if (!r) {
    const int sid = rt.vips.find(p.dst, p.key.proto, p.dport);
    if (sid < 0) {
      // A reply of a NAT flow another worker owns: from a real, to the client-side port.
      if (workers_ > 1 && rt.nat_reals.contains(p.src) && p.dport % workers_ != worker_) {
        c_.handoffs++;
        out.handoff(m, static_cast<uint16_t>(p.dport % workers_));
      } else {
        out.next(m);
      }
      return;
    }
    if (workers_ > 1 && p.sport % workers_ != worker_) {
      c_.handoffs++;
      out.handoff(m, static_cast<uint16_t>(p.sport % workers_));
      return;
    }
    new_flow(m, p, rt.services[static_cast<size_t>(sid)], rt, now, out);
    return;
  }
  const LbMode mode = static_cast<LbMode>(r->flags >> kModeShift);
  // A record opened under an older runtime keeps its real and rewrite (all in the record);
  // only what refers to the service by index is skipped for it.
  const bool current =
      r->aux == static_cast<uint32_t>(rt.generation) && r->service < rt.services.size();
  if (p.key.proto == kTcp) {
    const TcpState was = tcp_state_of(r->tcp_state);
    if (h.dir == 0 &&
        (p.tcp_flags & (tcpflag::kSyn | tcpflag::kAck | tcpflag::kRst)) == tcpflag::kSyn &&
        (was == TcpState::kTimeWait || was == TcpState::kClose ||
         (one_way(mode) && was == TcpState::kFinWait))) {
      // A new connection on the tuple of one that has ended (the client reused its port): it
      // is scheduled afresh, as IPVS does (is_new_conn_expected), so it never lands on a real
      // that has since gone down or been drained. A SYN inside a live connection does not
      // move it (RFC 5961: that is how blind resets and injections look).
      table_->erase(r);
      const int sid = rt.vips.find(p.dst, p.key.proto, p.dport);
      if (sid >= 0)
        new_flow(m, p, rt.services[static_cast<size_t>(sid)], rt, now, out);
      else
        out.next(m);
      return;
    }
    if (r->flags & kFlagProxied) [[unlikely]] {
      if (synproxy(m, p, r, h.dir, rt, now, out)) return;
    }
    const TcpStep st = track_tcp(*table_, r, p.tcp_flags, h.dir, one_way(mode), rt.timeouts, now);
    const TcpState now_st = tcp_state_of(st.next);
    if ((r->flags & kFlagActive) && now_st != TcpState::kEstablished &&
        now_st != TcpState::kSynSent && now_st != TcpState::kSynRecv && now_st != TcpState::kNone) {
      // Closing: no longer an active flow for least_conn (IPVS counts these as inactive).
      r->flags = static_cast<uint8_t>(r->flags & ~kFlagActive);
      if (current) rt.workers[worker_].cursors[r->service].on_close(r->real);
    }
  } else {
    table_->refresh(r, now, rt.timeouts.udp);
  }
  if (h.dir == 0) {
    c_.hits++;
    if (current) {
      const ServiceRt& s = rt.services[r->service];
      if (s.on_down == LbOnDown::kReset && r->real < s.reals.size() &&
          !real_up(rt, s.reals[r->real])) {
        table_->erase(r);
        c_.resets++;
        out.drop(m, kRealDown);
        return;
      }
    }
    Target t{};
    t.mode = mode;
    t.real = r->nat_addr;
    t.port = r->nat_port;
    if (mode == LbMode::kFullNat) {
      t.snat = rte_be_to_cpu_32(r->key[1].dst);
      t.snat_port = rte_be_to_cpu_16(r->key[1].dport);
    } else if (one_way(mode)) {
      t.encap_src = r->key[1].src;
      t.dscp = r->key[1].proto;
    }
    if (current) t.mss = rt.services[r->service].mss_clamp;
    forward(m, p, t, out);
    return;
  }
  // The reply of a NAT or full NAT flow: the client sees the VIP answer.
  c_.replies++;
  PacketMeta& md = meta(m);
  RewriteStatus s =
      nat_src(p.ip, p.len, rte_be_to_cpu_32(r->key[0].dst), rte_be_to_cpu_16(r->key[0].dport));
  if (s == RewriteStatus::kOk && mode == LbMode::kFullNat) {
    s = nat_dst(p.ip, p.len, rte_be_to_cpu_32(r->key[0].src), rte_be_to_cpu_16(r->key[0].sport));
    md.ip_dst = rte_be_to_cpu_32(r->key[0].src);
  }
  if (s != RewriteStatus::kOk) {
    out.drop(m, kBadPacket);
    return;
  }
  out.next(m);
}

void LbStage::new_flow(rte_mbuf* m, Pkt& p, const ServiceRt& s, const Runtime& rt, uint64_t now,
                       Emit& out) {
  const bool dsr = one_way(s.mode);
  if (p.key.proto == kTcp &&
      (p.tcp_flags & (tcpflag::kSyn | tcpflag::kAck | tcpflag::kRst)) != tcpflag::kSyn) {
    // Not the start of a connection. DSR: the reals hold the connection state, so a flow nf
    // forgot (table full earlier, a restart) continues where the hash puts it. NAT: the final ACK
    // of a handshake nf answered with a cookie opens the flow; anything else, without the
    // translation, the real would only answer with a reset.
    if (dsr) {
      open(m, p, s, rt, now, nullptr, true, out);
      return;
    }
    const uint64_t life = kCookieMaxAge * kCookiePeriodSeconds * (rt.tsc_hz ? rt.tsc_hz : 1);
    if ((p.tcp_flags & (tcpflag::kSyn | tcpflag::kAck | tcpflag::kRst)) == tcpflag::kAck &&
        sent_cookie_ && now - last_cookie_ < life) {
      // Checked only while cookies this worker handed out can still be alive (as Linux checks
      // only after a recent SYN queue overflow): otherwise an ACK flood costs nothing but the
      // lookup, and a stray ACK cannot open a flow at all.
      uint32_t cookie = 0;
      const std::optional<uint16_t> mss = check_cookie(p, rt, now, &cookie);
      PacketMeta& md = meta(m);
      if (!mss || (md.flags & meta_flags::kFragment)) {
        c_.syncookies_bad++;
        out.drop(m, kBadCookie);
        return;
      }
      if (m->nb_segs != 1 ||
          uint32_t{md.l4_off} + 24 > uint32_t{m->data_len} + rte_pktmbuf_tailroom(m)) {
        out.drop(m, kBadPacket);  // no room to turn it into the SYN (never with pool mbufs)
        return;
      }
      const Proxy px{cookie, *mss};
      open(m, p, s, rt, now, &px, false, out);
      return;
    }
    out.drop(m, kNoFlow);
    return;
  }
  const bool flood = flooding(rt, now);
  // The last records are kept for handshakes completed by a cookie: with the table full, a
  // validated ACK still finds room and the client is not failed by the table.
  if (flood || table_->size() + reserve_ >= table_->capacity()) {
    if (dsr)
      open(m, p, s, rt, now, nullptr, true, out);
    else if (p.key.proto == kTcp)
      send_cookie(m, p, s, rt, now, flood ? kFlood : kTableFull, out);
    else
      out.drop(m, flood ? kFlood : kTableFull);
    return;
  }
  open(m, p, s, rt, now, nullptr, false, out);
}

// The SYN-ACK nf answers a SYN with under pressure: seq = the cookie, ack = client ISN + 1,
// only an MSS option (nf/lb/syncookie.h), back out of the port it came in on. No state.
void LbStage::send_cookie(rte_mbuf* m, Pkt& p, const ServiceRt& s, const Runtime& rt, uint64_t now,
                          Drop otherwise, Emit& out) {
  PacketMeta& md = meta(m);
  if (md.l2 != L2Class::kUnicast || m->nb_segs != 1) {
    out.drop(m, otherwise);
    return;
  }
  const uint32_t room = uint32_t{m->data_len} + rte_pktmbuf_tailroom(m) - md.l3_off;
  SynAckOptions o;
  // What the reals' side carries; a clamp configured for the service applies to it too.
  if (s.mss_clamp && s.mss_clamp < o.mss) o.mss = s.mss_clamp;
  o.ip_id = ipid_++;
  const size_t n = answer_syn(cookies(rt, now), p.ip, room, now, o);
  if (n == 0 || !resize_l3(m, md, static_cast<uint32_t>(n))) {
    out.drop(m, otherwise);  // not a SYN that can be answered (a fragment, port 0, ...)
    return;
  }
  md.l4_off = static_cast<uint16_t>(md.l3_off + 20);
  md.ip_dst = p.src;
  md.flags = meta_flags::kDontFragment;
  swap_macs(m);
  c_.syncookies_sent++;
  last_cookie_ = now;
  sent_cookie_ = true;
  out.reply(m);
}

// The cookie of a client's ACK (ack - 1) for its connection (client ISN = seq - 1); the MSS it
// encodes when it is one of ours and alive.
std::optional<uint16_t> LbStage::check_cookie(const Pkt& p, const Runtime& rt, uint64_t now,
                                              uint32_t* cookie) {
  const uint32_t seq = rd32(p.l4 + 4);
  *cookie = rd32(p.l4 + 8) - 1;
  return cookies(rt, now).check(p.src, p.dst, p.sport, p.dport, seq - 1, *cookie, now);
}

// The client's cookie ACK becomes the SYN to the real, in place: seq = client ISN, the
// client's (unscaled) window, and only an MSS option, the one the cookie carried. Nothing
// else is offered: the client's view of the connection (our SYN-ACK) had no window scaling,
// SACK or timestamps, so the real must not negotiate them either; with no SACK there are no
// SACK blocks to shift later. Data on the ACK is not kept: it was not acknowledged, so the
// client sends it again (after its retransmission timeout). False when the buffer has no room.
bool LbStage::syn_to_real(rte_mbuf* m, Pkt& p, uint16_t mss) {
  PacketMeta& md = meta(m);
  const uint32_t ihl = static_cast<uint32_t>(md.l4_off - md.l3_off);
  if (!resize_l3(m, md, ihl + 24)) return false;
  uint8_t* t = p.l4;
  csum::store32(t + 4, rte_cpu_to_be_32(rd32(t + 4) - 1));
  csum::store32(t + 8, 0);
  t[12] = 6 << 4;
  t[13] = tcpflag::kSyn;
  csum::store16(t + 18, 0);  // urgent pointer
  t[20] = 2;                 // MSS (RFC 9293 3.2)
  t[21] = 4;
  t[22] = static_cast<uint8_t>(mss >> 8);
  t[23] = static_cast<uint8_t>(mss);
  csum::store16(p.ip + 2, rte_cpu_to_be_16(static_cast<uint16_t>(ihl + 24)));
  full_checksums(p.ip, t);
  p.len = ihl + 24;
  p.tcp_flags = tcpflag::kSyn;
  return true;
}

// The real's SYN-ACK of a proxied flow becomes, in place, the ACK that completes the real's
// handshake: addresses and ports swapped (back toward the real; the swap is what the real
// expects in both nat and fullnat), seq = its ack (client ISN + 1), ack = real ISN + 1, the
// client's window, no options, TTL 64 (nf sends it). ip4_forward routes it to the real.
void LbStage::ack_to_real(rte_mbuf* m, Pkt& p, FlowRecord* r, const Runtime& rt, uint64_t now,
                          Emit& out) {
  PacketMeta& md = meta(m);
  const uint32_t ihl = static_cast<uint32_t>(md.l4_off - md.l3_off);
  uint8_t* t = p.l4;
  const uint32_t seq = rd32(t + 4);
  const uint32_t ack = rd32(t + 8);
  uint32_t a, b;
  std::memcpy(&a, p.ip + 12, 4);
  std::memcpy(&b, p.ip + 16, 4);
  std::memcpy(p.ip + 12, &b, 4);
  std::memcpy(p.ip + 16, &a, 4);
  uint16_t sp, dp;
  std::memcpy(&sp, t, 2);
  std::memcpy(&dp, t + 2, 2);
  std::memcpy(t, &dp, 2);
  std::memcpy(t + 2, &sp, 2);
  csum::store32(t + 4, rte_cpu_to_be_32(ack));
  csum::store32(t + 8, rte_cpu_to_be_32(seq + 1));
  t[12] = 5 << 4;
  t[13] = tcpflag::kAck;
  csum::store16(t + 14, client_window(r));
  csum::store16(t + 18, 0);
  p.ip[8] = kSynAckTtl;
  csum::store16(p.ip + 2, rte_cpu_to_be_16(static_cast<uint16_t>(ihl + 20)));
  resize_l3(m, md, ihl + 20);  // shrinks: always fits
  full_checksums(p.ip, t);
  md.ip_dst = rte_be_to_cpu_32(a);
  r->tcp_state = static_cast<uint8_t>(TcpState::kEstablished);
  table_->touch(r, now, rt.timeouts.for_tcp(r->tcp_state));
  out.next(m);
}

// A packet of a proxied flow. Returns true when it was consumed (emitted here); false when
// the normal path goes on with it (sequence numbers already shifted).
//   client -> real: ack += delta (the client acknowledges in cookie space);
//   real -> client: seq -= delta.
// Before the real's SYN-ACK (kFlagSynWait) the client's segments cannot be shifted: a valid
// cookie ACK again (the client retransmits it, or its first data) resends the SYN, in case the
// first was lost; anything else is dropped (lb_synproxy_wait) and retransmitted by the client.
// A reset from the real then reaches the client with seq = cookie + 1, exactly what the
// client expects next (RFC 5961 3.2), so it fails fast instead of timing out.
bool LbStage::synproxy(rte_mbuf* m, Pkt& p, FlowRecord* r, uint8_t dir, const Runtime& rt,
                       uint64_t now, Emit& out) {
  const bool wait = r->flags & kFlagSynWait;
  const uint8_t f = p.tcp_flags & (tcpflag::kSyn | tcpflag::kAck | tcpflag::kRst);
  if (dir == 1) {
    if (f == (tcpflag::kSyn | tcpflag::kAck)) {
      if (wait) {
        seq_delta(r) = rd32(p.l4 + 4) - seq_delta(r);
        r->flags = static_cast<uint8_t>(r->flags & ~kFlagSynWait);
        c_.synproxy_established++;
      }
      // A retransmitted SYN-ACK (our ACK was lost) is answered the same way.
      ack_to_real(m, p, r, rt, now, out);
      return true;
    }
    if (wait) {
      if (!(f & tcpflag::kRst)) {
        out.drop(m, kSynproxyWait);
        return true;
      }
      const uint32_t want = seq_delta(r) + 1;
      shift32(p.l4, 4, want - rd32(p.l4 + 4));
      return false;
    }
    shift32(p.l4, 4, 0u - seq_delta(r));
    return false;
  }
  if (wait) {
    if (f & tcpflag::kRst) return false;  // acceptable to the real by its seq alone
    uint32_t cookie = 0;
    if (f == tcpflag::kAck && !(meta(m).flags & meta_flags::kFragment)) {
      const std::optional<uint16_t> mss = check_cookie(p, rt, now, &cookie);
      if (mss && cookie == seq_delta(r) && syn_to_real(m, p, *mss))
        return false;  // on as the flow's SYN again
    }
    out.drop(m, kSynproxyWait);
    return true;
  }
  if (p.tcp_flags & tcpflag::kAck) shift32(p.l4, 8, seq_delta(r));
  return false;
}

// Schedules a new flow and creates its record, then forwards it. stateless_only (DSR under
// pressure, or not a SYN): placed by the Maglev table without a record. px: the flow is a
// client's cookie ACK, turned into the SYN to the real.
void LbStage::open(rte_mbuf* m, Pkt& p, const ServiceRt& s, const Runtime& rt, uint64_t now,
                   const Proxy* px, bool stateless_only, Emit& out) {
  const bool dsr = one_way(s.mode);
  const uint8_t* up = up_of(rt, s);
  const uint64_t fh = FlowTable::hash(p.key);
  const uint64_t sh = hash_source_v4(p.src);
  auto target_of = [&](uint16_t idx) {
    const RealRt& real = s.reals[idx];
    Target t{};
    t.mode = s.mode;
    t.real = real.addr;
    t.port = real.port ? real.port : p.dport;
    t.encap_src = real.encap_src;
    t.dscp = s.dscp;
    t.mss = s.mss_clamp;
    return t;
  };
  // DSR without a table entry: where the pool's Maglev table puts the flow (for the
  // consistent schedulers, the real a stateful choice would have kept too).
  auto stateless = [&]() {
    const uint16_t idx = s.pool.stateless(up, fh, sh);
    if (idx == kNone) {
      out.drop(m, kNoReal);
      return;
    }
    c_.stateless++;
    forward(m, p, target_of(idx), out);
  };
  if (dsr && stateless_only) {
    stateless();
    return;
  }
  WorkerState& ws = rt.workers[worker_];
  const uint32_t gen = static_cast<uint32_t>(rt.generation);
  // Persistence: this client's real, while it is up and not drained.
  uint16_t idx = kNone;
  FlowRecord* persist = nullptr;
  const FlowKey pkey = FlowKey::persist(p.key.src, s.id);
  if (s.persist_tsc) {
    const Hit ph = table_->lookup(pkey, now);
    if (ph.rec && ph.rec->aux == gen && ph.rec->real < s.reals.size() && up[ph.rec->real] &&
        s.reals[ph.rec->real].weight) {
      idx = ph.rec->real;
      persist = ph.rec;
    }
  }
  if (idx == kNone) idx = pick(s.pool, ws.cursors[s.id], {up, s.reals.size()}, fh, sh);
  if (idx == kNone) {
    out.drop(m, kNoReal);
    return;
  }
  Target t = target_of(idx);
  FlowKey k1{};
  const FlowKey* k1p = nullptr;
  uint16_t pool_idx = 0;
  const uint64_t timeout = p.key.proto == kTcp ? rt.timeouts.for_tcp(0) : rt.timeouts.udp;
  FlowRecord* r = nullptr;
  bool existed = false;
  if (s.mode == LbMode::kNat) {
    k1 = FlowKey::conn(rte_cpu_to_be_32(t.real), p.key.src, rte_cpu_to_be_16(t.port), p.key.sport,
                       p.key.proto);
    k1p = &k1;
    r = table_->insert(p.key, k1p, now, timeout, &existed);
  } else if (s.mode == LbMode::kFullNat) {
    // A source address by flow hash, then a port of this worker's share; a port still held
    // by a flow of an earlier configuration is refused by the table, so try a few.
    const size_t a = fh % s.snat.size();
    pool_idx = s.snat_idx[a];
    PortPool& pool = ws.ports->pool(pool_idx, pat_proto(p.key.proto));
    for (int attempt = 0; attempt < 4 && !r; ++attempt) {
      const uint16_t port = pool.alloc(now);
      if (port == 0) {
        out.drop(m, kPortExhausted);
        return;
      }
      t.snat = s.snat[a];
      t.snat_port = port;
      k1 = FlowKey::conn(rte_cpu_to_be_32(t.real), rte_cpu_to_be_32(t.snat),
                         rte_cpu_to_be_16(t.port), rte_cpu_to_be_16(port), p.key.proto);
      r = table_->insert(p.key, &k1, now, timeout, &existed);
      if (!r || existed) pool.release(port, now);
      if (!r && table_->size() >= table_->capacity()) break;
    }
  } else {
    r = table_->insert(p.key, nullptr, now, timeout, &existed);
  }
  if (r && existed) {
    // Two packets of one new flow in a burst: the first created it.
    handle(m, p, Hit{r, 0}, rt, now, out);
    return;
  }
  if (!r) {
    if (dsr)
      stateless();
    else if (!px && p.key.proto == kTcp)
      send_cookie(m, p, s, rt, now, kTableFull, out);
    else
      out.drop(m, kTableFull);
    return;
  }
  r->nat_addr = t.real;
  r->nat_port = t.port;
  r->service = s.id;
  r->real = idx;
  r->aux = gen;
  r->flags = static_cast<uint8_t>((static_cast<uint8_t>(s.mode) << kModeShift) | kFlagActive |
                                  (s.mode == LbMode::kFullNat ? kFlagPortHeld : 0));
  if (dsr) stash(r, t.encap_src, t.dscp);
  r->packets = 1;
  if (px) {
    r->flags = static_cast<uint8_t>(r->flags | kFlagProxied | kFlagSynWait);
    seq_delta(r) = px->cookie;
    set_client_window(r, csum::load16(p.l4 + 14));
    syn_to_real(m, p, px->mss);  // room checked by the caller
    c_.syncookies_ok++;
  }
  if (p.key.proto == kTcp) r->tcp_state = tcp_step(0, p.tcp_flags, 0, dsr).next;
  ws.cursors[s.id].on_open(idx);
  c_.new_flows++;
  if (s.persist_tsc) {
    if (persist) {
      table_->touch(persist, now, s.persist_tsc);
    } else if (FlowRecord* q = table_->insert(pkey, nullptr, now, s.persist_tsc)) {
      q->real = idx;
      q->service = s.id;
      q->aux = gen;
    }
  }
  forward(m, p, t, out);
}

// The rewrite of a client's packet for the flow's mode; ip4_forward routes it afterwards.
void LbStage::forward(rte_mbuf* m, Pkt& p, const Target& t, Emit& out) {
  PacketMeta& md = meta(m);
  RewriteStatus st = RewriteStatus::kOk;
  if (t.mss && p.key.proto == kTcp && (p.tcp_flags & tcpflag::kSyn))
    clamp_mss(rte_pktmbuf_mtod_offset(m, uint8_t*, md.l4_off),
              static_cast<uint32_t>(md.l3_off + md.l3_len - md.l4_off), t.mss);
  switch (t.mode) {
    case LbMode::kNat:
      st = nat_dst(p.ip, p.len, t.real, t.port);
      md.ip_dst = t.real;
      break;
    case LbMode::kFullNat:
      st = nat_dst(p.ip, p.len, t.real, t.port);
      if (st == RewriteStatus::kOk) st = nat_src(p.ip, p.len, t.snat, t.snat_port);
      md.ip_dst = t.real;
      break;
    case LbMode::kDsr:
      md.ip_dst = t.real;
      md.flags |= meta_flags::kRouteByMeta;
      break;
    case LbMode::kDscp:
      st = nat_dst(p.ip, p.len, t.real, p.dport);
      if (st == RewriteStatus::kOk) set_dscp(p.ip, t.dscp);
      md.ip_dst = t.real;
      break;
    case LbMode::kIpip: {
      const uint16_t l2 = md.l3_off;
      auto* front = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, 20));
      if (!front) {
        out.drop(m, kNoHeadroom);
        return;
      }
      std::memmove(front, front + 20, l2);  // the Ethernet header moves to the new front
      IpipOuter o;
      o.src = t.encap_src;
      o.dst = t.real;
      o.id = ipid_++;
      if (encap_ipip(front + l2, p.len, o) == 0) {
        rte_pktmbuf_adj(m, 20);
        std::memmove(rte_pktmbuf_mtod(m, uint8_t*), front, l2);
        out.drop(m, kBadPacket);
        return;
      }
      md.l3_len = static_cast<uint16_t>(md.l3_len + 20);
      md.l4_off = static_cast<uint16_t>(l2 + 20);
      md.ip_proto = 4;
      md.ip_dst = t.real;
      break;
    }
  }
  if (st != RewriteStatus::kOk) {
    out.drop(m, kBadPacket);
    return;
  }
  out.next(m);
}

// ICMP: echo requests to a VIP are answered here (a VIP answers ping like an address of nf);
// errors about a translated flow (RFC 5508 4, RFC 792) are translated like the flow's own
// packets, so path MTU discovery and port unreachables work across every mode. Everything else
// ICMP continues to routing.
void LbStage::icmp(rte_mbuf* m, const Runtime& rt, Emit& out) {
  PacketMeta& md = meta(m);
  auto* ip = rte_pktmbuf_mtod_offset(m, uint8_t*, md.l3_off);
  if (md.l3_off + md.l3_len <= md.l4_off) {  // no ICMP byte inside the datagram
    out.next(m);
    return;
  }
  const uint8_t type = *rte_pktmbuf_mtod_offset(m, const uint8_t*, md.l4_off);
  if (type == 8 && rt.vips.is_vip(md.ip_dst)) {
    // The whole 8-byte echo header must be in the datagram (not in Ethernet padding), as
    // hosts require before they answer.
    if (md.l2 != L2Class::kUnicast || (md.flags & meta_flags::kFragment) ||
        md.l3_off + md.l3_len < md.l4_off + 8) {
      out.next(m);  // routing decides (and drops what it must)
      return;
    }
    auto* icmp = rte_pktmbuf_mtod_offset(m, uint8_t*, md.l4_off);
    // Type 8 -> 0: the checksum word (type, code) changes by 0x0800 (RFC 1624 update).
    uint16_t ck;
    std::memcpy(&ck, icmp + 2, 2);
    ck = csum::replace16(ck, rte_cpu_to_be_16(0x0800), 0);
    icmp[0] = 0;
    if (ck == 0) {
      // 0x0000 is right for a message whose other words sum to 0xffff, but an all-zero
      // message (identifier, sequence and data 0) must carry 0xffff: the incremental
      // update cannot tell the two apart, the bytes can.
      const uint32_t n = static_cast<uint32_t>(md.l3_off + md.l3_len - md.l4_off);
      bool zero = true;
      for (uint32_t i = 4; i < n && zero; ++i) zero = icmp[i] == 0;
      if (zero) ck = 0xffff;
    }
    std::memcpy(icmp + 2, &ck, 2);
    uint32_t a, b;
    std::memcpy(&a, ip + 12, 4);
    std::memcpy(&b, ip + 16, 4);
    std::memcpy(ip + 12, &b, 4);
    std::memcpy(ip + 16, &a, 4);  // swapping addresses leaves the header checksum as it is
    swap_macs(m);
    c_.echo_replies++;
    out.reply(m);
    return;
  }
  if (type != 3 && type != 11 && type != 12) {
    out.next(m);
    return;
  }
  IcmpErrorInfo e;
  if (parse_icmp_error(ip, md.l3_len, e) != RewriteStatus::kOk ||
      (e.proto != kTcp && e.proto != kUdp)) {
    out.next(m);
    return;
  }
  // The quoted datagram is one nf sent; its reverse is how the flow knows that direction.
  const FlowKey rev = FlowKey::conn(rte_cpu_to_be_32(e.dst), rte_cpu_to_be_32(e.src),
                                    rte_cpu_to_be_16(e.dport), rte_cpu_to_be_16(e.sport), e.proto);
  const Hit h = table_->lookup(rev, now_);
  if (!h.rec) {
    // Owned elsewhere? The client-side port: the quoted destination port when nf sent the
    // quoted packet to the client (from a VIP), else its source port.
    const uint16_t cport = rt.vips.is_vip(e.src) ? e.dport : e.sport;
    const bool ours = rt.vips.is_vip(e.src) || rt.nat_reals.contains(e.dst);
    if (workers_ > 1 && ours && cport % workers_ != worker_) {
      c_.handoffs++;
      out.handoff(m, static_cast<uint16_t>(cport % workers_));
    } else {
      out.next(m);
    }
    return;
  }
  const FlowRecord& r = *h.rec;
  const LbMode mode = static_cast<LbMode>(r.flags >> kModeShift);
  const uint32_t vip = rte_be_to_cpu_32(r.key[0].dst);
  const uint16_t vport = rte_be_to_cpu_16(r.key[0].dport);
  const uint32_t client = rte_be_to_cpu_32(r.key[0].src);
  const uint16_t cport = rte_be_to_cpu_16(r.key[0].sport);
  IcmpErrorNat to{e.outer_src, e.outer_dst, e.src, e.dst, e.sport, e.dport};
  if (h.dir == 1) {
    // From the reals' side, about a packet nf forwarded to a real: back to the client, as if
    // the VIP had sent it about the client's own packet.
    to.outer_src = vip;
    to.dst = vip;
    to.dport = vport;
    if (mode == LbMode::kFullNat) {
      to.outer_dst = client;
      to.src = client;
      to.sport = cport;
    }
    md.ip_dst = to.outer_dst;
  } else {
    // From the client's side, about a reply the client got from the VIP: to the real, about
    // the packet the real sent.
    const uint32_t real = r.nat_addr;
    if (mode == LbMode::kNat || mode == LbMode::kFullNat) {
      to.outer_dst = real;
      to.src = real;
      to.sport = r.nat_port;
      if (mode == LbMode::kFullNat) {
        to.outer_src = rte_be_to_cpu_32(r.key[1].dst);
        to.dst = to.outer_src;
        to.dport = rte_be_to_cpu_16(r.key[1].dport);
      }
      md.ip_dst = real;
    } else {
      // DSR modes: the real sent the quoted reply from the VIP itself; forward the error
      // unchanged the way the flow's packets go.
      Target t{};
      t.mode = mode;
      t.real = real;
      t.port = r.nat_port;
      t.encap_src = r.key[1].src;
      t.dscp = r.key[1].proto;
      Pkt p{};
      p.ip = ip;
      p.len = md.l3_len;
      p.dport = 0;
      if (mode == LbMode::kDscp) {
        // the outer destination becomes the real; the quoted packet stays what the real sent
        to.outer_dst = real;
        if (rewrite_icmp_error(ip, md.l3_len, to) != RewriteStatus::kOk) {
          out.drop(m, kBadPacket);
          return;
        }
        set_dscp(ip, t.dscp);
        md.ip_dst = real;
        out.next(m);
        return;
      }
      forward(m, p, t, out);
      return;
    }
  }
  if (rewrite_icmp_error(ip, md.l3_len, to) != RewriteStatus::kOk) {
    out.drop(m, kBadPacket);
    return;
  }
  if (h.dir == 0 && e.proto == kTcp && (r.flags & kFlagProxied) && !(r.flags & kFlagSynWait) &&
      e.inner_avail >= e.inner_hlen + 8) {
    // The quoted segment is one the client got, its seq in the cookie's space; the real
    // checks that seq against its own (Linux ignores an error about a sequence number it
    // never sent), so it goes back to the real's space like the flow's own packets.
    uint8_t* icmph = ip + e.inner_off - 8;
    uint8_t* q = ip + e.inner_off + e.inner_hlen;
    const uint32_t old = csum::load32(q + 4);
    const uint32_t nw = rte_cpu_to_be_32(rte_be_to_cpu_32(old) + seq_delta(h.rec));
    csum::store32(q + 4, nw);
    uint64_t d = csum::delta32(old, nw);
    if (e.l4_cksum) {
      const uint16_t ock = csum::load16(q + 16);
      const uint16_t nck = csum::apply(ock, d);
      csum::store16(q + 16, nck);
      d += csum::delta16(ock, nck);
    }
    csum::store16(icmph + 2, csum::apply(csum::load16(icmph + 2), d));
  }
  c_.icmp_translated++;
  out.next(m);
}

}  // namespace nf::lb
