// libFuzzer: bursts of frames through parse_frame(), the input stage and the lb stage on two
// workers sharing one runtime with a service of every mode (nat, fullnat with persistence,
// dsr, ipip, dscp, a UDP service, one with on_real_down = reset and least connections), a
// flow table of the minimum 1024 flows and a SYN-flood limit of 100 new flows per second, so
// the pressure paths are reached too.
//
// Input: two header bytes, then records [op][len][len bytes]:
//   header[0]  health: bit i (mod 8) set = health slot i down
//   header[1]  bit 0: 16 bytes of headroom instead of 128 (IP-in-IP cannot prepend)
//   op bit 0   the worker the frame arrives on
//   op bits 1-2  0: an IPv4 datagram (the bytes) behind a fixed Ethernet header, its header
//                   checksum fixed unless op bit 7;
//                1: the reverse of the last packet the lb stage passed on (a real's reply,
//                   or, with bytes[1] odd, that packet's flow from the client side again),
//                   TCP flags bytes[0], payload the rest;
//                2: a TCP/UDP/other datagram from fields (build() below), checksums right
//                   unless op bit 7 (then the L4 checksum is wrong on purpose);
//                3: ICMP: with bytes[0] bit 7 (or nothing passed on yet) an echo request
//                   (reply with bit 0) between two addresses of the dictionary; else an
//                   error (type by bytes[0]) from the receiver of the last packet lb passed
//                   on back to its sender, quoting bytes[2] % 64 bytes of it, or (bit 6)
//                   from its client about the reply that client got from the VIP.
//   op bit 3   the burst ends after this frame (also at 32 frames per worker)
//   op bits 4-6  clock advance before the frame, ms: 0 1 7 100 999 1000 5000 60000
//
// Checks (abort on failure):
//   - conservation in both stages for every burst (in == next + tx + reply + punt + drops +
//     handoff, and the Emit buffers agree with the counters);
//   - a handoff goes to the other worker, and the owner never hands the packet on again;
//   - no byte outside a packet's datagram is read: every frame sits at the very end of its
//     own heap block, and after the input stage trims padding the bytes past the datagram are
//     poisoned (ASan), as is everything past the block;
//   - what lb passes on is an IPv4 datagram inside the frame with a valid header checksum
//     (IP-in-IP: outer and inner), whose routing key PacketMeta::ip_dst equals the header's
//     destination unless kRouteByMeta says otherwise; a TCP/UDP/ICMP checksum that was right
//     (or a UDP zero) before the stage is right (or zero) after it; the same for echo replies;
//   - after the input, all flows expire: the tables empty, every full NAT port returns to its
//     pool and every least-connection count returns to zero.
#include <sanitizer/asan_interface.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "pipelines/ip4/input_stage.h"
#include "tests/common/lb_frames.h"

namespace {

using namespace nf;
using nf::test::rd16;
using nf::test::rd32;
using nf::test::wr16;

constexpr const char* kConf = R"(
lcores = { management = 0; workers = [1, 2]; };
ports = ( { name = "lan"; device = "net_null0"; addresses = ["10.10.0.1/24"]; },
          { name = "srv"; device = "net_null1"; addresses = ["10.20.0.1/24", "10.20.0.2/24"]; } );
pipeline = [ "input", "lb", "ip4_forward" ];
health = { checks = ( { name = "h"; type = "tcp"; port = 80; } ); };
lb = {
  max_flows = 1024;
  syn_flood_rate = 100;
  maglev_min_size = 251;
  timeouts = { tcp_syn = 5; tcp_established = 20; tcp_fin = 3; tcp_time_wait = 2;
               tcp_close = 1; udp = 7; };
  services = (
    { name = "nat"; vip = "10.30.0.10"; port = 80; mode = "nat"; check = "h";
      scheduler = "weighted_round_robin";
      reals = ( { address = "10.20.0.11"; port = 8080; weight = 1; },
                { address = "10.20.0.12"; port = 8080; weight = 2; },
                { address = "10.20.0.13"; port = 8080; weight = 0; } ); },
    { name = "full"; vip = "10.30.0.11"; port = 80; mode = "fullnat"; snat = [ "10.20.0.2" ];
      scheduler = "maglev"; persistence = 30; check = "h";
      reals = ( { address = "10.20.0.11"; }, { address = "10.20.0.12"; } ); },
    { name = "reset"; vip = "10.30.0.12"; mode = "nat"; scheduler = "least_conn";
      on_real_down = "reset"; check = "h";
      reals = ( { address = "10.20.0.13"; }, { address = "10.20.0.14"; } ); },
    { name = "udp"; vip = "10.30.0.13"; protocol = "udp"; port = 53; mode = "nat";
      scheduler = "source_hash"; persistence = 10;
      reals = ( { address = "10.20.0.11"; }, { address = "10.20.0.12"; } ); },
    { name = "dsr"; vip = "10.30.0.14"; port = 80; mode = "dsr"; scheduler = "maglev";
      check = "h";
      reals = ( { address = "10.20.0.11"; }, { address = "10.20.0.12"; },
                { address = "10.20.0.13"; } ); },
    { name = "ipip"; vip = "10.30.0.15"; port = 80; mode = "ipip"; scheduler = "round_robin";
      reals = ( { address = "10.20.0.11"; }, { address = "10.20.0.12"; } ); },
    { name = "dscp"; vip = "10.30.0.16"; protocol = "udp"; mode = "dscp"; dscp = 10;
      scheduler = "maglev"; check = "h";
      reals = ( { address = "10.20.0.11"; }, { address = "10.20.0.12"; } ); }
  );
};
)";

constexpr uint32_t kAddrs[] = {0x0a0a0064, 0x0a0a0065, 0x0a1e000a, 0x0a1e000b, 0x0a1e000c,
                               0x0a1e000d, 0x0a1e000e, 0x0a1e000f, 0x0a1e0010, 0x0a14000b,
                               0x0a14000c, 0x0a14000d, 0x0a14000e, 0x0a140002, 0x0a140001,
                               0x08080808, 0x0a0a0001, 0x00000000, 0xffffffff, 0xe0000001};
constexpr uint16_t kPorts[] = {80, 53, 8080, 81, 0, 1024, 65535};
constexpr uint64_t kSteps[] = {0, 1, 7, 100, 999, 1000, 5000, 60000};
constexpr uint16_t kHeadroom = 128;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz-lb: %s\n", what);
  std::abort();
}

struct Rig {
  test::LbRig lb;
  ip4::InputStage input;
  uint64_t now = 1'000'000;
};

Rig& rig() {
  static Rig* r = [] {
    auto* x = new Rig;
    if (!x->lb.init(kConf, 2, 1000)) {
      std::fprintf(stderr, "%s\n", x->lb.error.c_str());
      std::abort();
    }
    return x;
  }();
  return *r;
}

// An mbuf whose frame ends exactly where its heap block ends.
class Mbuf {
 public:
  static constexpr uint16_t kPriv = RTE_ALIGN(sizeof(PacketMeta), RTE_CACHE_LINE_SIZE);
  Mbuf(const std::vector<uint8_t>& frame, uint16_t headroom)
      : size_(sizeof(rte_mbuf) + kPriv + headroom + frame.size()),
        mem_(new (std::align_val_t(64)) uint8_t[size_]) {
    std::memset(mem_, 0, sizeof(rte_mbuf) + kPriv);
    rte_mbuf* m = mbuf();
    m->buf_addr = mem_ + sizeof(rte_mbuf) + kPriv;
    m->buf_len = static_cast<uint16_t>(headroom + frame.size());
    m->data_off = headroom;
    m->priv_size = kPriv;
    m->nb_segs = 1;
    rte_mbuf_refcnt_set(m, 1);
    if (!frame.empty()) std::memcpy(rte_pktmbuf_mtod(m, uint8_t*), frame.data(), frame.size());
    m->data_len = static_cast<uint16_t>(frame.size());
    m->pkt_len = static_cast<uint32_t>(frame.size());
  }
  ~Mbuf() {
    ASAN_UNPOISON_MEMORY_REGION(mem_, size_);
    operator delete[](mem_, std::align_val_t(64));
  }
  Mbuf(const Mbuf&) = delete;
  Mbuf& operator=(const Mbuf&) = delete;
  rte_mbuf* mbuf() { return reinterpret_cast<rte_mbuf*>(mem_); }
  // After the input stage trimmed the frame: nothing past the datagram may be read.
  void poison_tail() {
    rte_mbuf* m = mbuf();
    uint8_t* end = rte_pktmbuf_mtod(m, uint8_t*) + m->data_len;
    ASAN_POISON_MEMORY_REGION(end, mem_ + size_ - end);
  }

 private:
  size_t size_;
  uint8_t* mem_;
};

std::vector<uint8_t> eth() {
  std::vector<uint8_t> f(14);
  std::memcpy(f.data(), test::kPortMac.b.data(), 6);
  std::memcpy(f.data() + 6, test::kHostMac.b.data(), 6);
  wr16(&f[12], 0x0800);
  return f;
}

uint8_t at(const uint8_t* d, size_t n, size_t i) {
  return i < n ? d[i] : 0;
}

// Kind 2: fields from the bytes (missing ones are 0), checksums computed.
std::vector<uint8_t> build(const uint8_t* d, size_t n, bool bad_l4) {
  test::L4Spec s;
  s.dst = kAddrs[at(d, n, 0) % std::size(kAddrs)];
  s.src = kAddrs[at(d, n, 1) % std::size(kAddrs)];
  s.sport = static_cast<uint16_t>(at(d, n, 2) << 8 | at(d, n, 3));
  const uint8_t dp = at(d, n, 4);
  s.dport = dp < 0x80 ? kPorts[at(d, n, 5) % std::size(kPorts)]
                      : static_cast<uint16_t>((dp & 0x7f) << 8 | at(d, n, 5));
  const uint8_t pr = at(d, n, 6);
  s.proto = (pr & 3) == 0 ? 6 : (pr & 3) == 1 ? 17 : (pr & 3) == 2 ? 1 : pr;
  s.flags = at(d, n, 7);
  s.mss = static_cast<uint16_t>(at(d, n, 8) << 8 | at(d, n, 9));
  s.tos = at(d, n, 10);
  s.frag = static_cast<uint16_t>(at(d, n, 11) << 8 | at(d, n, 12));
  s.ttl = at(d, n, 13);
  const uint8_t cut = at(d, n, 14);
  s.nop_before_mss = at(d, n, 15) & 1;
  const bool no_pad = at(d, n, 15) & 2;
  s.payload = static_cast<uint16_t>(n > 16 ? n - 16 : 0);
  if (s.proto != 6 && s.proto != 17 && s.payload < 8) s.payload = 8;
  std::vector<uint8_t> f = test::l4_frame(s);
  if (n > 16) std::memcpy(&f[f.size() - (n - 16)], d + 16, n - 16);
  uint8_t* ip = &f[14];
  if (s.proto == 6 || s.proto == 17) {
    if ((s.frag & 0x3fff) == 0) wr16(ip + 20 + (s.proto == 6 ? 16 : 6), test::l4_cksum(ip));
    if (bad_l4) ip[20 + (s.proto == 6 ? 16 : 6)] ^= 0x5a;
  }
  if (cut) {
    // A shorter datagram: the IP total length says so; the frame keeps the rest as padding
    // unless no_pad.
    const uint16_t tl = static_cast<uint16_t>(20 + cut % (f.size() - 14 - 20 + 1));
    wr16(ip + 2, tl);
    if (no_pad) f.resize(14 + tl);
  }
  wr16(ip + 10, 0);
  wr16(ip + 10, test::ip_cksum(ip));
  return f;
}

struct Last {  // the last packet lb passed on: for replies
  bool valid = false;
  uint8_t proto = 0;
  uint32_t src = 0, dst = 0;
  uint16_t sport = 0, dport = 0;
  uint32_t csrc = 0, cdst = 0;  // its client-side view before the stage
  uint16_t csport = 0, cdport = 0;
};

std::vector<uint8_t> reply(const Last& l, const uint8_t* d, size_t n) {
  test::L4Spec s;
  s.proto = l.proto;
  const bool again = at(d, n, 1) & 1;
  s.src = again ? l.csrc : l.dst;
  s.dst = again ? l.cdst : l.src;
  s.sport = again ? l.csport : l.dport;
  s.dport = again ? l.cdport : l.sport;
  s.flags = at(d, n, 0);
  s.payload = static_cast<uint16_t>(n > 2 ? n - 2 : 0);
  std::vector<uint8_t> f = test::l4_frame(s);
  if (n > 2) {
    std::memcpy(&f[f.size() - (n - 2)], d + 2, n - 2);
    wr16(&f[14 + 20 + (s.proto == 6 ? 16 : 6)], test::l4_cksum(&f[14]));
  }
  return f;
}

// Whether the datagram's TCP/UDP/ICMP checksum is what a sender computes (UDP zero: "none").
enum class L4 : uint8_t { kNotChecked, kRight, kZero, kWrong };
L4 l4_state(const uint8_t* ip, uint32_t len) {
  if (len < 20) return L4::kNotChecked;
  const uint32_t hl = (ip[0] & 0xfu) * 4u;
  const uint8_t proto = ip[9];
  if ((proto != 1 && proto != 6 && proto != 17) || (rd16(ip + 6) & 0x3fff) != 0 ||
      rd16(ip + 2) != len)
    return L4::kNotChecked;
  if (proto == 1) {
    if (hl < 20 || hl + 4 > len) return L4::kNotChecked;
    std::vector<uint8_t> msg(ip + hl, ip + len);
    const uint16_t stored = rd16(&msg[2]);
    msg[2] = msg[3] = 0;
    return stored == test::fold_not(test::sum16(msg.data(), msg.size())) ? L4::kRight : L4::kWrong;
  }
  if (hl < 20 || hl + (proto == 6 ? 20u : 8u) > len) return L4::kNotChecked;
  const uint16_t stored = test::stored_l4_cksum(ip);
  if (proto == 17 && stored == 0) return L4::kZero;
  return stored == test::l4_cksum(ip) ? L4::kRight : L4::kWrong;
}

bool header_ok(const uint8_t* ip, uint32_t len) {
  if (len < 20 || (ip[0] >> 4) != 4) return false;
  const uint32_t hl = (ip[0] & 0xfu) * 4u;
  if (hl < 20 || hl > len) return false;
  return test::fold_not(test::sum16(ip, hl)) == 0;
}

struct Pkt {
  std::unique_ptr<Mbuf> mb;
  L4 before = L4::kNotChecked;
  uint32_t src = 0, dst = 0;
  uint16_t sport = 0, dport = 0;
  uint8_t proto = 0;  // PacketMeta::ip_proto before the stage
  bool handed = false;
};

void check_conserved(const test::LbRig::Result& r) {
  if (!r.conserved()) fail("lb: packets not conserved");
}

// Kind 3: an echo, or an ICMP error about the last packet lb passed on.
std::vector<uint8_t> icmp(const Last& l, const uint8_t* d, size_t n) {
  const uint8_t c = at(d, n, 0);
  if ((c & 0x80) || !l.valid)
    return test::icmp_echo_frame(
        kAddrs[at(d, n, 1) % std::size(kAddrs)], kAddrs[at(d, n, 2) % std::size(kAddrs)],
        (c & 1) ? 0 : 8, static_cast<uint16_t>(at(d, n, 3) << 8 | at(d, n, 4)), 1, at(d, n, 5));
  static constexpr uint8_t kTypes[] = {3, 11, 12, 4, 5};
  test::L4Spec q;
  q.proto = l.proto;
  q.flags = lb::tcpflag::kAck;
  q.payload = at(d, n, 3);
  uint32_t osrc, odst;
  if (c & 0x40) {  // the client, about the reply it got from the VIP
    q.src = l.cdst;
    q.dst = l.csrc;
    q.sport = l.cdport;
    q.dport = l.csport;
    osrc = l.csrc;
    odst = l.cdst;
  } else {  // the receiver of what lb sent, back to its sender
    q.src = l.src;
    q.dst = l.dst;
    q.sport = l.sport;
    q.dport = l.dport;
    osrc = l.dst;
    odst = l.src;
  }
  const std::vector<uint8_t> quoted = test::l4_frame(q);
  const size_t quote = std::min<size_t>(at(d, n, 2) % 64, quoted.size() - 14);
  return test::icmp_error_frame(osrc, odst, kTypes[c % std::size(kTypes)], at(d, n, 1),
                                static_cast<uint16_t>(at(d, n, 6) << 8 | at(d, n, 7)), quoted,
                                quote);
}

// A packet lb passed on (next) or sent back (reply).
void check_out(Pkt& p, Last& last, bool next) {
  rte_mbuf* m = p.mb->mbuf();
  const PacketMeta& md = meta(m);
  if (md.parse != ParseStatus::kOk) fail("lb passed on a packet that did not parse");
  if (m->data_len != m->pkt_len) fail("segment lengths disagree");
  if (uint32_t{md.l3_off} + md.l3_len > m->data_len || md.l3_len < 20)
    fail("the datagram is not inside the frame");
  const uint8_t* ip = rte_pktmbuf_mtod_offset(m, const uint8_t*, md.l3_off);
  if (!header_ok(ip, md.l3_len)) fail("IPv4 header checksum broken");
  const bool by_meta = md.flags & meta_flags::kRouteByMeta;
  if (next && !by_meta && md.ip_dst != rd32(ip + 16))
    fail("ip_dst is not the header's destination");
  const uint8_t* inner = ip;
  uint32_t ilen = md.l3_len;
  if (md.ip_proto == 4 && p.proto != 4) {  // encapsulated here: the datagram is inside
    inner = ip + 20;
    ilen = md.l3_len - 20u;
    if (!header_ok(inner, ilen)) fail("inner IPv4 header checksum broken");
  }
  const L4 after = l4_state(inner, ilen);
  if (p.before == L4::kRight && after != L4::kRight) fail("a right L4 checksum went wrong");
  if (p.before == L4::kZero && after != L4::kZero) fail("a zero UDP checksum was filled in");
  if (next && (inner[9] == 6 || inner[9] == 17)) {
    const uint32_t hl = (inner[0] & 0xfu) * 4u;
    if (hl + 4 <= ilen && (rd16(inner + 6) & 0x1fff) == 0) {
      last.valid = true;
      last.proto = inner[9];
      last.src = rd32(inner + 12);
      last.dst = by_meta ? md.ip_dst : rd32(inner + 16);
      last.sport = rd16(inner + hl);
      last.dport = rd16(inner + hl + 2);
      last.csrc = p.src;
      last.cdst = p.dst;
      last.csport = p.sport;
      last.cdport = p.dport;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  Rig& r = rig();
  test::LbRig& lb = r.lb;
  for (size_t i = 0; i < lb.needs.size(); ++i)
    lb.slots[i].up.store(((data[0] >> (i % 8)) & 1) ? 0 : 1, std::memory_order_relaxed);
  const uint16_t headroom = (data[1] & 1) ? 16 : kHeadroom;
  size_t off = 2;
  Last last;
  std::vector<Pkt> pkts;
  std::vector<size_t> queue[2];  // frames waiting for a burst, per worker

  auto run_lb = [&](uint16_t w, const std::vector<size_t>& idx) {
    std::vector<rte_mbuf*> ms;
    for (size_t i : idx) ms.push_back(pkts[i].mb->mbuf());
    lb.now = r.now;
    const test::LbRig::Result res = lb.run(w, ms);
    check_conserved(res);
    std::vector<size_t> handed;
    for (uint16_t t = 0; t < kMaxWorkers; ++t) {
      for (rte_mbuf* m : res.handoff[t]) {
        if (t == w || t > 1) fail("handoff to itself or to no worker");
        for (size_t i : idx)
          if (pkts[i].mb->mbuf() == m) {
            if (pkts[i].handed) fail("a packet was handed off twice");
            pkts[i].handed = true;
            handed.push_back(i);
          }
      }
    }
    for (rte_mbuf* m : res.next)
      for (size_t i : idx)
        if (pkts[i].mb->mbuf() == m) check_out(pkts[i], last, true);
    for (rte_mbuf* m : res.tx)
      for (size_t i : idx)
        if (pkts[i].mb->mbuf() == m) check_out(pkts[i], last, false);
    return handed;
  };

  auto flush = [&]() {
    std::vector<size_t> to[2];
    for (uint16_t w = 0; w < 2; ++w) {
      if (queue[w].empty()) continue;
      // The worker's receive path: parse, then the input stage, then lb.
      Burst b;
      b.clean = true;
      for (size_t i : queue[w]) {
        rte_mbuf* m = pkts[i].mb->mbuf();
        b.clean &= parse_frame(rte_pktmbuf_mtod(m, const uint8_t*), m->data_len, test::kPortMac,
                               1500 + RTE_ETHER_HDR_LEN, meta(m));
        b.pkts[b.n++] = m;
      }
      auto out = std::make_unique<Emit>();
      StageCounters c{};
      out->begin_stage(&c);
      r.input.process(b, StageCtx{&lb.snap, r.now, w}, *out);
      out->end_stage();
      const Burst& nb = out->next_burst();
      if (c.next + c.punt + c.drop != b.n || nb.n != c.next) fail("input: not conserved");
      std::vector<size_t> passed;
      for (uint16_t k = 0; k < nb.n; ++k)
        for (size_t i : queue[w])
          if (pkts[i].mb->mbuf() == nb.pkts[k]) {
            Pkt& p = pkts[i];
            p.mb->poison_tail();
            rte_mbuf* m = p.mb->mbuf();
            const PacketMeta& md = meta(m);
            const uint8_t* ip = rte_pktmbuf_mtod_offset(m, const uint8_t*, md.l3_off);
            p.before = l4_state(ip, md.l3_len);
            p.src = rd32(ip + 12);
            p.dst = rd32(ip + 16);
            p.proto = md.ip_proto;
            if (md.l4_off && md.l4_off + 4u <= md.l3_off + md.l3_len) {
              p.sport = rd16(ip + (md.l4_off - md.l3_off));
              p.dport = rd16(ip + (md.l4_off - md.l3_off) + 2);
            }
            passed.push_back(i);
          }
      queue[w].clear();
      if (!passed.empty()) {
        std::vector<size_t> h = run_lb(w, passed);
        to[1 - w].insert(to[1 - w].end(), h.begin(), h.end());
      }
    }
    // The handoff rings: the owner takes them in its next burst.
    for (uint16_t w = 0; w < 2; ++w)
      if (!to[w].empty() && !run_lb(w, to[w]).empty()) fail("the owner handed a packet on");
  };

  while (off + 2 <= size) {
    const uint8_t op = data[off];
    const size_t len = std::min<size_t>(data[off + 1], size - off - 2);
    const uint8_t* d = data + off + 2;
    off += 2 + len;
    r.now += kSteps[(op >> 4) & 7];
    std::vector<uint8_t> f;
    switch ((op >> 1) & 3) {
      case 0:
        f = eth();
        f.insert(f.end(), d, d + len);
        if (!(op & 0x80) && len >= 20 && (d[0] & 0xf) >= 5 && (d[0] & 0xf) * 4u <= len) {
          wr16(&f[14 + 10], 0);
          wr16(&f[14 + 10], test::ip_cksum(&f[14]));
        }
        break;
      case 1:
        if (last.valid && (last.proto == 6 || last.proto == 17)) {
          f = reply(last, d, len);
          break;
        }
        [[fallthrough]];
      case 2:
        f = build(d, len, op & 0x80);
        break;
      default:
        f = icmp(last, d, len);
        break;
    }
    if (f.size() > 1514) f.resize(1514);
    const uint16_t w = op & 1;
    pkts.push_back(Pkt{std::make_unique<Mbuf>(f, headroom)});
    queue[w].push_back(pkts.size() - 1);
    if ((op & 8) || queue[w].size() == kMaxBurst) flush();
  }
  flush();

  // Every flow ends: time moves far past every timeout, the sweeps empty both tables, and
  // what the flows held (full NAT ports, least-connection counts) is back.
  r.now += 10'000'000;
  lb.now = r.now;
  for (uint16_t w = 0; w < 2; ++w) {
    for (int i = 0; i < 200 && lb.stages[w]->table().size() > 0; ++i)
      lb.run(w, std::span<rte_mbuf* const>{});
    if (lb.stages[w]->table().size() != 0) fail("flows outlived every timeout");
    const lb::WorkerState& ws = lb.rt->workers[w];
    for (const lb::ServiceRt& s : lb.rt->services)
      for (size_t i = 0; i < s.reals.size(); ++i)
        if (ws.cursors[s.id].active(static_cast<uint16_t>(i)) != 0)
          fail("a least-connection count leaked");
    if (ws.ports)
      for (size_t a = 0; a < ws.ports->addresses(); ++a)
        for (lb::PatProto p : {lb::PatProto::kTcp, lb::PatProto::kUdp})
          if (ws.ports->pool(a, p).in_use() != 0) fail("a full NAT port leaked");
  }
  r.now += 10'000;  // past the ports' quarantine
  return 0;
}
