// Frames, checksums and a stage rig for the L4 load balancer's tests and fuzz target.
//
// Frames: l4_frame() writes Ethernet + IPv4 + TCP (with an optional MSS option) or UDP with
// every checksum computed from scratch, so a golden packet is "the frame the stage should
// have produced", built independently of nf/lb/rewrite.h, and compared byte for byte.
// ip_cksum() and l4_cksum() recompute the checksums of a datagram in full (RFC 1071 sum over
// the header, or over the pseudo-header and the whole segment) without sharing code with the
// incremental updates under test.
//
// LbRig: a configuration loaded from text, the runtime lb::build_runtime() makes of it (with a
// health slot per real that has a check, all up), a Snapshot carrying it, and one LbStage per
// worker. run() feeds a burst to one worker with the rig's clock and collects every outcome;
// conserved() is the stage contract (every packet exactly one outcome). run_stage() and
// StageResult are the same for any stage. NatRig is the same rig for the nat stage (runtime
// from nat::build_runtime, one NatStage per worker). No gtest here: the fuzz targets use it
// too.
#pragma once

#include <rte_byteorder.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "config/config.h"
#include "nf/health/monitor.h"
#include "nf/lb/service.h"
#include "nf/lb/tcp_state.h"
#include "nf/nat/runtime.h"
#include "nf/runtime/snapshot.h"
#include "pipelines/lb/lb_stage.h"
#include "pipelines/nat/nat_stage.h"
#include "tests/common/fake_mbuf.h"
#include "tests/common/packet_builder.h"

namespace nf::test {

inline uint16_t rd16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
inline uint32_t rd32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
inline void wr16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void wr32(uint8_t* p, uint32_t v) {
  wr16(p, static_cast<uint16_t>(v >> 16));
  wr16(p + 2, static_cast<uint16_t>(v));
}

// RFC 1071: the sum of big-endian 16-bit words, an odd last byte padded with zero.
inline uint64_t sum16(const uint8_t* p, size_t n, uint64_t s = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) s += rd16(p + i);
  if (n & 1) s += uint64_t{p[n - 1]} << 8;
  return s;
}
inline uint16_t fold_not(uint64_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

// The IPv4 header checksum a sender computes (the field counted as zero).
inline uint16_t ip_cksum(const uint8_t* ip) {
  const size_t hl = (ip[0] & 0xfu) * 4u;
  std::vector<uint8_t> h(ip, ip + hl);
  h[10] = h[11] = 0;
  return fold_not(sum16(h.data(), h.size()));
}

// The TCP or UDP checksum a sender computes over the datagram `ip` (total length from its
// header): pseudo-header (RFC 9293 3.1, RFC 768) and the whole segment, the field as zero.
inline uint16_t l4_cksum(const uint8_t* ip) {
  const size_t hl = (ip[0] & 0xfu) * 4u;
  const size_t tl = rd16(ip + 2);
  const uint8_t proto = ip[9];
  std::vector<uint8_t> seg(ip + hl, ip + tl);
  const size_t off = proto == 6 ? 16 : 6;
  seg[off] = seg[off + 1] = 0;
  uint64_t s = sum16(ip + 12, 8) + proto + (tl - hl);
  s = sum16(seg.data(), seg.size(), s);
  uint16_t c = fold_not(s);
  if (proto == 17 && c == 0) c = 0xffff;  // RFC 768: a computed zero is sent as all ones
  return c;
}
inline uint16_t stored_l4_cksum(const uint8_t* ip) {
  const size_t hl = (ip[0] & 0xfu) * 4u;
  return rd16(ip + hl + (ip[9] == 6 ? 16 : 6));
}

struct L4Spec {
  uint32_t src = 0x0a0a0064;  // 10.10.0.100
  uint32_t dst = 0x0a1e000a;  // 10.30.0.10
  uint16_t sport = 40000;
  uint16_t dport = 80;
  uint8_t proto = 6;
  uint8_t flags = lb::tcpflag::kSyn;
  uint16_t mss = 0;             // TCP MSS option value; 0: no option
  bool nop_before_mss = false;  // a NOP first: the option's value straddles checksum words
  uint8_t tos = 0;
  uint16_t frag = 0x4000;  // DF
  uint16_t ip_id = 0x1234;
  uint8_t ttl = 64;
  uint16_t payload = 0;
  uint32_t seq = 1000;
  uint32_t ack = 0;
  uint16_t window = 65535;
};

// A TCP segment between two endpoints; the other fields keep L4Spec's defaults.
inline L4Spec tcp_seg(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, uint8_t flags) {
  return L4Spec{.src = src, .dst = dst, .sport = sport, .dport = dport, .flags = flags};
}
inline L4Spec tcp_seg(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, uint8_t flags,
                      uint32_t seq, uint32_t ack) {
  L4Spec s = tcp_seg(src, sport, dst, dport, flags);
  s.seq = seq;
  s.ack = ack;
  return s;
}
// The same segment between other endpoints: what a translation should make of it.
inline L4Spec moved(L4Spec s, uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport) {
  s.src = src;
  s.sport = sport;
  s.dst = dst;
  s.dport = dport;
  return s;
}

// Ethernet (to the port's MAC) + IPv4 + TCP or UDP, checksums computed from scratch.
inline std::vector<uint8_t> l4_frame(const L4Spec& s) {
  std::vector<uint8_t> opts;
  if (s.proto == 6 && s.mss) {
    if (s.nop_before_mss) opts.push_back(1);
    opts.insert(opts.end(), {2, 4, static_cast<uint8_t>(s.mss >> 8), static_cast<uint8_t>(s.mss)});
    while (opts.size() % 4) opts.push_back(1);
  }
  const size_t l4h = s.proto == 6 ? 20 + opts.size() : 8;
  const size_t tl = 20 + l4h + s.payload;
  std::vector<uint8_t> f(14 + tl, 0);
  std::memcpy(f.data(), kPortMac.b.data(), 6);
  std::memcpy(f.data() + 6, kHostMac.b.data(), 6);
  wr16(&f[12], 0x0800);
  uint8_t* ip = &f[14];
  ip[0] = 0x45;
  ip[1] = s.tos;
  wr16(ip + 2, static_cast<uint16_t>(tl));
  wr16(ip + 4, s.ip_id);
  wr16(ip + 6, s.frag);
  ip[8] = s.ttl;
  ip[9] = s.proto;
  wr32(ip + 12, s.src);
  wr32(ip + 16, s.dst);
  uint8_t* l4 = ip + 20;
  wr16(l4, s.sport);
  wr16(l4 + 2, s.dport);
  if (s.proto == 6) {
    wr32(l4 + 4, s.seq);
    wr32(l4 + 8, s.ack);
    l4[12] = static_cast<uint8_t>((l4h / 4) << 4);
    l4[13] = s.flags;
    wr16(l4 + 14, s.window);
    std::copy(opts.begin(), opts.end(), l4 + 20);
  } else {
    wr16(l4 + 4, static_cast<uint16_t>(l4h + s.payload));
  }
  for (size_t i = 0; i < s.payload; ++i) l4[l4h + i] = static_cast<uint8_t>(i * 7 + 3);
  wr16(ip + 10, ip_cksum(ip));
  if ((s.frag & 0x3fff) == 0) wr16(l4 + (s.proto == 6 ? 16 : 6), l4_cksum(ip));
  return f;
}

// An ICMP error (RFC 792) from `src` to `dst` quoting the first `quote` bytes of the IPv4
// datagram in `quoted_frame` (an Ethernet frame); `mtu` goes into bytes 6-7 (RFC 1191).
inline std::vector<uint8_t> icmp_error_frame(uint32_t src, uint32_t dst, uint8_t type, uint8_t code,
                                             uint16_t mtu, const std::vector<uint8_t>& quoted_frame,
                                             size_t quote) {
  std::vector<uint8_t> f(quoted_frame.begin(), quoted_frame.begin() + 14);
  std::vector<uint8_t> ip(20 + 8 + quote, 0);
  ip[0] = 0x45;
  wr16(&ip[2], static_cast<uint16_t>(ip.size()));
  wr16(&ip[4], 0x4321);
  ip[8] = 64;
  ip[9] = 1;
  wr32(&ip[12], src);
  wr32(&ip[16], dst);
  ip[20] = type;
  ip[21] = code;
  wr16(&ip[26], mtu);
  std::copy(quoted_frame.begin() + 14, quoted_frame.begin() + 14 + static_cast<long>(quote),
            ip.begin() + 28);
  wr16(&ip[22], fold_not(sum16(&ip[20], ip.size() - 20)));
  wr16(&ip[10], ip_cksum(ip.data()));
  f.insert(f.end(), ip.begin(), ip.end());
  return f;
}

// An ICMP echo request (type 8) or reply (0) with `payload` bytes of data.
inline std::vector<uint8_t> icmp_echo_frame(uint32_t src, uint32_t dst, uint8_t type, uint16_t id,
                                            uint16_t seq, size_t payload) {
  std::vector<uint8_t> f(14 + 20 + 8 + payload, 0);
  std::memcpy(f.data(), kPortMac.b.data(), 6);
  std::memcpy(f.data() + 6, kHostMac.b.data(), 6);
  wr16(&f[12], 0x0800);
  uint8_t* ip = &f[14];
  ip[0] = 0x45;
  wr16(ip + 2, static_cast<uint16_t>(20 + 8 + payload));
  wr16(ip + 4, 0x5555);
  ip[8] = 64;
  ip[9] = 1;
  wr32(ip + 12, src);
  wr32(ip + 16, dst);
  uint8_t* ic = ip + 20;
  ic[0] = type;
  wr16(ic + 4, id);
  wr16(ic + 6, seq);
  for (size_t i = 0; i < payload; ++i) ic[8 + i] = static_cast<uint8_t>(i * 13 + 1);
  wr16(ic + 2, fold_not(sum16(ic, 8 + payload)));
  wr16(ip + 10, ip_cksum(ip));
  return f;
}

inline uint32_t ip4(const char* s) {
  return *parse_ipv4(s);
}

// The frame of an mbuf, and where its IPv4 header is.
inline std::vector<uint8_t> frame_of(rte_mbuf* m) {
  const uint8_t* p = rte_pktmbuf_mtod(m, const uint8_t*);
  return {p, p + m->data_len};
}

// The frame with its Ethernet addresses swapped: what a stage's in-place answer (Emit::reply)
// carries back to the sender.
inline std::vector<uint8_t> swap_macs(std::vector<uint8_t> f) {
  std::swap_ranges(f.begin(), f.begin() + 6, f.begin() + 6);
  return f;
}

struct StageResult {
  uint16_t in = 0;
  StageCounters c{};
  std::vector<rte_mbuf*> next;
  std::vector<rte_mbuf*> tx;  // tx and reply, every port
  std::vector<rte_mbuf*> drop;
  std::array<std::vector<rte_mbuf*>, kMaxWorkers> handoff;
  uint64_t drops(uint8_t d) const { return c.drops[d]; }
  // The stage contract: in == next + tx + reply + punt + drops + handoff, and every
  // counter agrees with what the Emit holds.
  bool conserved() const {
    uint64_t reasons = 0;
    for (uint64_t d : c.drops) reasons += d;
    size_t handed = 0;
    for (const auto& h : handoff) handed += h.size();
    return in == c.next + c.tx + c.reply + c.punt + c.drop + c.handoff && reasons == c.drop &&
           c.next == next.size() && c.drop == drop.size() && c.handoff == handed &&
           c.tx + c.reply == tx.size();
  }
};

// One burst through one stage, every outcome collected (the rigs of the lb and nat tests).
inline StageResult run_stage(Stage& stage, const Snapshot& snap, uint64_t now, uint16_t worker,
                             std::span<rte_mbuf* const> pkts) {
  StageResult r;
  auto out = std::make_unique<Emit>();
  Burst b;
  for (rte_mbuf* m : pkts) b.pkts[b.n++] = m;
  r.in = b.n;
  out->set_nb_ports(kMaxPorts);
  out->begin_stage(&r.c);
  stage.process(b, StageCtx{&snap, now, worker}, *out);
  out->end_stage();
  const Burst& nb = out->next_burst();
  r.next.assign(nb.pkts, nb.pkts + nb.n);
  for (uint16_t p = 0; p < kMaxPorts; ++p) {
    const Emit::TxBuf& tb = out->txbuf(p);
    r.tx.insert(r.tx.end(), tb.pkts, tb.pkts + tb.n);
  }
  const Burst& db = out->drops();
  r.drop.assign(db.pkts, db.pkts + db.n);
  for (uint16_t w = 0; w < kMaxWorkers; ++w) {
    const Burst& hb = out->handoffs(w);
    r.handoff[w].assign(hb.pkts, hb.pkts + hb.n);
  }
  return r;
}

// Parsed fake mbufs a rig owns (alive as long as the rig).
struct MbufStore {
  std::vector<std::unique_ptr<FakeMbuf>> mbufs;
  rte_mbuf* mbuf(const std::vector<uint8_t>& frame) {
    mbufs.push_back(std::make_unique<FakeMbuf>(frame));
    mbufs.back()->parse(kPortMac);
    return mbufs.back()->mbuf();
  }
};

// Configuration text to a Config; false with the formatted errors in `error`.
inline bool load_text(const std::string& text, Config& cfg, std::string& error) {
  LoadResult r = load_config("t.conf", &text);
  if (auto* e = std::get_if<std::vector<ConfigError>>(&r)) {
    error = format_errors(*e);
    return false;
  }
  cfg = std::get<Config>(std::move(r));
  return true;
}

struct LbRig : MbufStore {
  using Result = StageResult;

  Config cfg;
  std::vector<lb::HealthNeed> needs;
  std::unique_ptr<health::Slot[]> slots;
  std::shared_ptr<const lb::Runtime> rt;
  Snapshot snap;
  std::vector<std::unique_ptr<lb::LbStage>> stages;
  uint16_t workers = 1;
  uint64_t hz = 1000;
  uint64_t now = 1'000'000;
  uint64_t generation = 1;
  std::string error;

  // Loads `text`, builds the runtime for `nworkers` and makes the stages (flow tables of
  // lb.max_flows). False with `error` set when the configuration or the runtime fails.
  bool init(const std::string& text, uint16_t nworkers = 1, uint64_t tsc_hz = 1000) {
    workers = nworkers;
    hz = tsc_hz;
    if (!load(text)) return false;
    StageEnv env;
    env.workers = workers;
    env.tsc_hz = hz;
    env.lb_max_flows = cfg.lb.max_flows;
    stages.clear();
    for (uint16_t w = 0; w < workers; ++w) stages.push_back(std::make_unique<lb::LbStage>(w, env));
    return true;
  }

  // A reload: a new configuration and runtime (next generation), the same stages and tables.
  bool reload(const std::string& text) {
    ++generation;
    return load(text);
  }

  bool load(const std::string& text) {
    if (!load_text(text, cfg, error)) return false;
    needs = lb::health_needs(cfg.lb);
    if (!slots) slots = std::make_unique<health::Slot[]>(64);
    if (needs.size() > 64) {
      error = "too many health needs";
      return false;
    }
    std::vector<uint32_t> slot_of(needs.size());
    for (uint32_t i = 0; i < slot_of.size(); ++i) slot_of[i] = i;
    rt = lb::build_runtime(cfg, slot_of, slots.get(), hz, workers, generation, &error);
    snap.lb = rt;
    return rt != nullptr;
  }

  // The health slot of a service's real (by the label health_needs gives it); -1 if none.
  int slot(const std::string& service, const char* real) const {
    const std::string label = "lb " + service + " real " + real;
    for (size_t i = 0; i < needs.size(); ++i)
      if (needs[i].label == label) return static_cast<int>(i);
    return -1;
  }
  void set_up(const std::string& service, const char* real, bool up) {
    const int s = slot(service, real);
    if (s >= 0) slots[s].up.store(up ? 1 : 0, std::memory_order_relaxed);
  }

  const lb::ServiceRt* service(const std::string& name) const {
    for (const lb::ServiceRt& s : rt->services)
      if (s.name == name) return &s;
    return nullptr;
  }

  Result run(uint16_t worker, std::span<rte_mbuf* const> pkts) {
    return run_stage(*stages[worker], snap, now, worker, pkts);
  }
  Result run(uint16_t worker, rte_mbuf* m) {
    return run(worker, std::span<rte_mbuf* const>(&m, 1));
  }
  Result send(uint16_t worker, const std::vector<uint8_t>& frame) {
    return run(worker, mbuf(frame));
  }
};

// A router with lan, srv and wan ports: port forwards on 198.51.100.1 (TCP 8001 -> 10.20.0.11:80,
// TCP 20022 -> 10.20.0.11:22, UDP 5353 -> 10.20.0.12:53) and dynamic PAT of the lan and srv
// prefixes behind it, out of the wan port (the nat tests and fuzz target).
struct NatKnobs {
  uint32_t max_sessions = 4096;
  const char* ports = "10000-19999";
  uint32_t port_reuse = 2;
};

inline std::string nat_conf(const NatKnobs& k = {}) {
  char nat[2048];
  std::snprintf(nat, sizeof nat, R"(
nat = {
  max_sessions = %u;
  timeouts = { tcp_established = 100; tcp_transitory = 10; udp = 20; icmp = 5; port_reuse = %u; };
  static = (
    { address = "198.51.100.1"; port = 8001; to = "10.20.0.11"; to_port = 80; },
    { address = "198.51.100.1"; port = 20022; to = "10.20.0.11"; to_port = 22; },
    { protocol = "udp"; address = "198.51.100.1"; port = 5353; to = "10.20.0.12"; to_port = 53; }
  );
  dynamic = (
    { inside = [ "10.10.0.0/24", "10.20.0.0/24" ]; port = "wan"; address = "198.51.100.1";
      ports = "%s"; }
  );
};
)",
                k.max_sessions, k.port_reuse, k.ports);
  return std::string(R"(
lcores = { management = 0; workers = [1, 2]; };
ports = ( { name = "lan"; device = "net_null0"; addresses = ["10.10.0.1/24"]; },
          { name = "srv"; device = "net_null1"; addresses = ["10.20.0.1/24"]; },
          { name = "wan"; device = "net_null2"; addresses = ["198.51.100.1/24"]; } );
routes = ( { prefix = "0.0.0.0/0"; via = "198.51.100.254"; } );
pipeline = [ "input", "nat", "ip4_forward" ];
)") + nat;
}

struct NatRig : MbufStore {
  Config cfg;
  std::shared_ptr<const nat::Runtime> rt;
  Snapshot snap;
  std::vector<std::unique_ptr<nat::NatStage>> stages;
  uint16_t workers = 1;
  uint64_t now = 1'000'000;
  uint64_t generation = 0;
  std::string error;

  // Loads `text` and publishes its runtime (the next generation), as a reload does.
  bool load(const std::string& text) {
    if (!load_text(text, cfg, error)) return false;
    rt = nat::build_runtime(cfg, 1000, workers, ++generation);
    snap.nat = rt;
    return rt != nullptr;
  }
  // Loads `text` and makes the stages (tables of nat.max_sessions); the clock is in ms.
  bool init(const std::string& text, uint16_t nworkers = 1) {
    workers = nworkers;
    if (!load(text)) return false;
    StageEnv env;
    env.workers = workers;
    env.tsc_hz = 1000;
    env.nat_max_sessions = cfg.nat.max_sessions;
    stages.clear();
    for (uint16_t w = 0; w < workers; ++w)
      stages.push_back(std::make_unique<nat::NatStage>(w, env));
    return true;
  }
  StageResult run(uint16_t worker, std::span<rte_mbuf* const> pkts) {
    return run_stage(*stages[worker], snap, now, worker, pkts);
  }
};

}  // namespace nf::test
