// What the libFuzzer targets of the flow stages (fuzz_lb.cc, fuzz_nat.cc) share: frames that
// end exactly where their heap block ends, datagrams built from fuzzer bytes with right
// checksums, the receive path of a worker (parse_frame, then the input stage), and the checks
// every translated packet must pass.
//
// Theory of operation
// -------------------
// A target keeps one Pkt per frame of its input (the mbuf and its view before the stage
// under test) and queues indices per worker; receive() runs a worker's queue through
// parse_frame() and the input stage, poisons (ASan) every byte past each surviving datagram
// and records its addresses, ports and L4 checksum state. The target then runs its stage
// (run_stage) and hands the result to handoffs() (a handoff goes to the other worker, once)
// and to each_out() (what the stage passed on or sent back). datagram_ok() is the part of
// the output check both stages honour: an IPv4 datagram inside its frame, a valid header
// checksum, the routing key equal to the header's destination unless kRouteByMeta, and an
// L4 checksum that was right (or a UDP zero) still right (or zero). fail() aborts.
#pragma once

#include <sanitizer/asan_interface.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <span>
#include <vector>

#include "pipelines/ip4/input_stage.h"
#include "tests/common/lb_frames.h"

namespace nf::fuzz {

using test::rd16;
using test::rd32;
using test::wr16;

[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "fuzz: %s\n", what);
  std::abort();
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

inline std::vector<uint8_t> eth() {
  std::vector<uint8_t> f(14);
  std::memcpy(f.data(), test::kPortMac.b.data(), 6);
  std::memcpy(f.data() + 6, test::kHostMac.b.data(), 6);
  wr16(&f[12], 0x0800);
  return f;
}

inline uint8_t at(const uint8_t* d, size_t n, size_t i) {
  return i < n ? d[i] : 0;
}

// Op kind 0 of both targets: the bytes as an IPv4 datagram behind a fixed Ethernet header,
// its header checksum fixed unless `keep_cksum`.
inline std::vector<uint8_t> raw(const uint8_t* d, size_t len, bool keep_cksum) {
  std::vector<uint8_t> f = eth();
  f.insert(f.end(), d, d + len);
  if (!keep_cksum && len >= 20 && (d[0] & 0xf) >= 5 && (d[0] & 0xf) * 4u <= len) {
    wr16(&f[14 + 10], 0);
    wr16(&f[14 + 10], test::ip_cksum(&f[14]));
  }
  return f;
}

// A TCP/UDP/other datagram from fields (missing bytes are 0), addresses and well-known ports
// from the target's dictionaries, checksums computed (the L4 one wrong on purpose with
// bad_l4).
inline std::vector<uint8_t> build(const uint8_t* d, size_t n, bool bad_l4,
                                  std::span<const uint32_t> addrs,
                                  std::span<const uint16_t> ports) {
  test::L4Spec s;
  s.dst = addrs[at(d, n, 0) % addrs.size()];
  s.src = addrs[at(d, n, 1) % addrs.size()];
  s.sport = static_cast<uint16_t>(at(d, n, 2) << 8 | at(d, n, 3));
  const uint8_t dp = at(d, n, 4);
  s.dport = dp < 0x80 ? ports[at(d, n, 5) % ports.size()]
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

// A TCP or UDP datagram of `s` whose payload is the bytes d[skip..n), L4 checksum right.
inline std::vector<uint8_t> with_payload(test::L4Spec s, const uint8_t* d, size_t n, size_t skip) {
  s.payload = static_cast<uint16_t>(n > skip ? n - skip : 0);
  std::vector<uint8_t> f = test::l4_frame(s);
  if (n > skip) {
    std::memcpy(&f[f.size() - (n - skip)], d + skip, n - skip);
    wr16(&f[14 + 20 + (s.proto == 6 ? 16 : 6)], test::l4_cksum(&f[14]));
  }
  return f;
}

// The last TCP/UDP packet a stage passed on, as it left and as it came in (the client's view):
// what replies and ICMP errors are made of.
struct Seen {
  bool valid = false;
  uint8_t proto = 0;
  uint32_t src = 0, dst = 0;
  uint16_t sport = 0, dport = 0;
  uint32_t csrc = 0, cdst = 0;  // its view before the stage
  uint16_t csport = 0, cdport = 0;
};

// The reverse of the last packet passed on (its receiver's reply), or with bytes[1] odd that
// packet's flow from the client side again: TCP flags bytes[0], payload the rest.
inline std::vector<uint8_t> reply(const Seen& l, const uint8_t* d, size_t n) {
  test::L4Spec s;
  s.proto = l.proto;
  const bool again = at(d, n, 1) & 1;
  s.src = again ? l.csrc : l.dst;
  s.dst = again ? l.cdst : l.src;
  s.sport = again ? l.csport : l.dport;
  s.dport = again ? l.cdport : l.sport;
  s.flags = at(d, n, 0);
  return with_payload(s, d, n, 2);
}

// With bytes[0] bit 7 (or nothing passed on yet) an echo request (reply with bit 0) between
// two addresses of the dictionary; else an ICMP error (type by bytes[0]) from the receiver of
// the last packet passed on back to its sender, quoting bytes[2] % 64 bytes of it, or (bit 6)
// from its client about the reply that client got.
inline std::vector<uint8_t> icmp(const Seen& l, const uint8_t* d, size_t n,
                                 std::span<const uint32_t> addrs) {
  const uint8_t c = at(d, n, 0);
  if ((c & 0x80) || !l.valid)
    return test::icmp_echo_frame(
        addrs[at(d, n, 1) % addrs.size()], addrs[at(d, n, 2) % addrs.size()], (c & 1) ? 0 : 8,
        static_cast<uint16_t>(at(d, n, 3) << 8 | at(d, n, 4)), 1, at(d, n, 5));
  static constexpr uint8_t kTypes[] = {3, 11, 12, 4, 5};
  test::L4Spec q;
  q.proto = l.proto;
  q.flags = lb::tcpflag::kAck;
  q.payload = at(d, n, 3);
  const bool client = c & 0x40;  // about the reply the client got; else the receiver of what
                                 // the stage sent, back to its sender
  q = client ? test::moved(q, l.cdst, l.cdport, l.csrc, l.csport)
             : test::moved(q, l.src, l.sport, l.dst, l.dport);
  const uint32_t osrc = client ? l.csrc : l.dst;
  const uint32_t odst = client ? l.cdst : l.src;
  const std::vector<uint8_t> quoted = test::l4_frame(q);
  const size_t quote = std::min<size_t>(at(d, n, 2) % 64, quoted.size() - 14);
  return test::icmp_error_frame(osrc, odst, kTypes[c % std::size(kTypes)], at(d, n, 1),
                                static_cast<uint16_t>(at(d, n, 6) << 8 | at(d, n, 7)), quoted,
                                quote);
}

// Whether the datagram's TCP/UDP/ICMP checksum is what a sender computes (UDP zero: "none").
enum class L4 : uint8_t { kNotChecked, kRight, kZero, kWrong };
inline L4 l4_state(const uint8_t* ip, uint32_t len) {
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

inline bool header_ok(const uint8_t* ip, uint32_t len) {
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

// Remembers a TCP/UDP packet the stage passed on (unfragmented, ports inside) in `l`.
inline void remember(Seen& l, const Pkt& p, const uint8_t* ip, uint32_t len, uint32_t routed_to) {
  const uint32_t hl = (ip[0] & 0xfu) * 4u;
  if ((ip[9] != 6 && ip[9] != 17) || hl + 4 > len || (rd16(ip + 6) & 0x1fff) != 0) return;
  l.valid = true;
  l.proto = ip[9];
  l.src = rd32(ip + 12);
  l.dst = routed_to;
  l.sport = rd16(ip + hl);
  l.dport = rd16(ip + hl + 2);
  l.csrc = p.src;
  l.cdst = p.dst;
  l.csport = p.sport;
  l.cdport = p.dport;
}

// A worker's receive path for pkts[idx]: parse_frame(), then the input stage. Returns the
// indices the input stage passed on, each with its view before the stage under test.
inline std::vector<size_t> receive(ip4::InputStage& input, const Snapshot& snap, uint64_t now,
                                   uint16_t w, std::vector<Pkt>& pkts,
                                   const std::vector<size_t>& idx) {
  Burst b;
  b.clean = true;
  for (size_t i : idx) {
    rte_mbuf* m = pkts[i].mb->mbuf();
    b.clean &= parse_frame(rte_pktmbuf_mtod(m, const uint8_t*), m->data_len, test::kPortMac,
                           1500 + RTE_ETHER_HDR_LEN, meta(m));
    b.pkts[b.n++] = m;
  }
  auto out = std::make_unique<Emit>();
  StageCounters c{};
  out->begin_stage(&c);
  input.process(b, StageCtx{&snap, now, w}, *out);
  out->end_stage();
  const Burst& nb = out->next_burst();
  if (c.next + c.punt + c.drop != b.n || nb.n != c.next) fail("input: not conserved");
  std::vector<size_t> passed;
  for (uint16_t k = 0; k < nb.n; ++k)
    for (size_t i : idx)
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
  return passed;
}

// The burst's handoffs of worker w (one of two): to the other worker, each packet once.
inline std::vector<size_t> handoffs(const test::StageResult& res, uint16_t w,
                                    std::vector<Pkt>& pkts, const std::vector<size_t>& idx) {
  if (!res.conserved()) fail("packets not conserved");
  std::vector<size_t> handed;
  for (uint16_t t = 0; t < kMaxWorkers; ++t)
    for (rte_mbuf* m : res.handoff[t]) {
      if (t == w || t > 1) fail("handoff to itself or to no worker");
      for (size_t i : idx)
        if (pkts[i].mb->mbuf() == m) {
          if (pkts[i].handed) fail("a packet was handed off twice");
          pkts[i].handed = true;
          handed.push_back(i);
        }
    }
  return handed;
}

// fn(pkt, next) for every packet the stage passed on (next) or sent (tx, reply).
template <typename Fn>
void each_out(const test::StageResult& res, std::vector<Pkt>& pkts, const std::vector<size_t>& idx,
              Fn&& fn) {
  for (const bool next : {true, false})
    for (rte_mbuf* m : next ? res.next : res.tx)
      for (size_t i : idx)
        if (pkts[i].mb->mbuf() == m) fn(pkts[i], next);
}

// The checks on a packet a stage let out that hold for every stage (see above); the datagram
// whose L4 checksum was looked at (`ip` itself, or the inner one of an IP-in-IP packet the
// stage encapsulated) in *inner and its length in *ilen.
inline L4 datagram_ok(const Pkt& p, bool next, const uint8_t** inner, uint32_t* ilen) {
  rte_mbuf* m = p.mb->mbuf();
  const PacketMeta& md = meta(m);
  if (md.parse != ParseStatus::kOk) fail("passed on a packet that did not parse");
  if (m->data_len != m->pkt_len) fail("segment lengths disagree");
  if (uint32_t{md.l3_off} + md.l3_len > m->data_len || md.l3_len < 20)
    fail("the datagram is not inside the frame");
  const uint8_t* ip = rte_pktmbuf_mtod_offset(m, const uint8_t*, md.l3_off);
  if (!header_ok(ip, md.l3_len)) fail("IPv4 header checksum broken");
  if (next && !(md.flags & meta_flags::kRouteByMeta) && md.ip_dst != rd32(ip + 16))
    fail("ip_dst is not the header's destination");
  *inner = ip;
  *ilen = md.l3_len;
  if (md.ip_proto == 4 && p.proto != 4) {  // encapsulated here: the datagram is inside
    *inner = ip + 20;
    *ilen = md.l3_len - 20u;
    if (!header_ok(*inner, *ilen)) fail("inner IPv4 header checksum broken");
  }
  const L4 after = l4_state(*inner, *ilen);
  if (p.before == L4::kRight && after != L4::kRight) fail("a right L4 checksum went wrong");
  if (p.before == L4::kZero && after != L4::kZero) fail("a zero UDP checksum was filled in");
  return after;
}

// The frame of a record by its kind (op bits 1-2): 0 raw(), 1 reply() to the last packet
// passed on (or as 2 while there is none), 2 build(), 3 icmp(). Op bit 7: checksum left wrong.
inline std::vector<uint8_t> frame_for(uint8_t op, const uint8_t* d, size_t len, const Seen& last,
                                      std::span<const uint32_t> addrs,
                                      std::span<const uint16_t> ports) {
  switch ((op >> 1) & 3) {
    case 0:
      return raw(d, len, op & 0x80);
    case 1:
      if (last.valid) return reply(last, d, len);
      [[fallthrough]];
    case 2:
      return build(d, len, op & 0x80, addrs, ports);
    default:
      return icmp(last, d, len, addrs);
  }
}

// The end of an input: time moves far past every timeout, then each worker gets empty bursts
// a second apart (the tables' sweeps are paced by the clock: a share of the table a tick)
// until its table is empty; fails if one is not within `rounds`.
template <typename Rig>
void expire_all(Rig& rig, int rounds) {
  rig.now += 10'000'000;
  for (uint16_t w = 0; w < 2; ++w) {
    for (int i = 0; i < rounds && rig.stages[w]->table().size() > 0; ++i) {
      rig.now += 1000;
      rig.run(w, std::span<rte_mbuf* const>{});
    }
    if (rig.stages[w]->table().size() != 0) fail("flows outlived every timeout");
  }
}

// Clock advances before a record (op bits 4-6), ms.
inline constexpr uint64_t kSteps[] = {0, 1, 7, 100, 999, 1000, 5000, 60000};

// Calls fn(op, bytes, len) for each record [op][len][len bytes] from data[off], after moving
// *now on by the op's step.
template <typename Fn>
void each_record(const uint8_t* data, size_t size, size_t off, uint64_t* now, Fn&& fn) {
  while (off + 2 <= size) {
    const uint8_t op = data[off];
    const size_t len = std::min<size_t>(data[off + 1], size - off - 2);
    const uint8_t* d = data + off + 2;
    off += 2 + len;
    *now += kSteps[(op >> 4) & 7];
    fn(op, d, len);
  }
}

// Two workers receiving the frames of one input: queued per worker, a burst at kMaxBurst or
// when a record ends one; each burst goes through receive(), then `stage` (the stage under
// test on that worker, at *now), whose handoffs() the other worker takes as its next burst
// (where they must not be handed on again) and whose output goes to `check`.
struct TwoWorkers {
  // For a rig with snap, now and run(worker, pkts) (test::LbRig, test::NatRig): header byte
  // data[1] bit 0 gives every frame 16 bytes of headroom instead of 128.
  template <typename Rig, typename Check>
  static TwoWorkers of(ip4::InputStage& input, Rig& rig, const uint8_t* data, Check&& check) {
    return TwoWorkers{&input,
                      &rig.snap,
                      &rig.now,
                      static_cast<uint16_t>((data[1] & 1) ? 16 : 128),
                      [&rig](uint16_t w, std::span<rte_mbuf* const> ms) { return rig.run(w, ms); },
                      std::forward<Check>(check)};
  }

  ip4::InputStage* input;
  const Snapshot* snap;
  uint64_t* now;
  uint16_t headroom;
  std::function<test::StageResult(uint16_t w, std::span<rte_mbuf* const> pkts)> stage;
  std::function<void(const Pkt& p, bool next)> check;
  std::vector<Pkt> pkts;
  std::vector<size_t> queue[2];

  void push(const std::vector<uint8_t>& frame, uint16_t w, bool end_burst) {
    std::vector<uint8_t> f = frame;
    if (f.size() > 1514) f.resize(1514);
    pkts.push_back(Pkt{std::make_unique<Mbuf>(f, headroom)});
    queue[w].push_back(pkts.size() - 1);
    if (end_burst || queue[w].size() == kMaxBurst) flush();
  }

  void flush() {
    std::vector<size_t> to[2];
    for (uint16_t w = 0; w < 2; ++w) {
      if (queue[w].empty()) continue;
      const std::vector<size_t> passed = receive(*input, *snap, *now, w, pkts, queue[w]);
      queue[w].clear();
      if (!passed.empty()) {
        std::vector<size_t> h = run(w, passed);
        to[1 - w].insert(to[1 - w].end(), h.begin(), h.end());
      }
    }
    // The handoff rings: the owner takes them in its next burst.
    for (uint16_t w = 0; w < 2; ++w)
      if (!to[w].empty() && !run(w, to[w]).empty()) fail("the owner handed a packet on");
  }

 private:
  std::vector<size_t> run(uint16_t w, const std::vector<size_t>& idx) {
    std::vector<rte_mbuf*> ms;
    for (size_t i : idx) ms.push_back(pkts[i].mb->mbuf());
    const test::StageResult res = stage(w, ms);
    std::vector<size_t> handed = handoffs(res, w, pkts, idx);
    each_out(res, pkts, idx, check);
    return handed;
  }
};

}  // namespace nf::fuzz
