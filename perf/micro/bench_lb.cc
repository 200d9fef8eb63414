// Google Benchmark for the L4 load balancer stage (pipelines/lb/lb_stage.h): LbStage::process
// on bursts of 32 fake mbufs, the way a worker runs it (each frame restored from a template,
// its flow's source address, source port and IP checksum written in, parsed by parse_frame,
// then the stage, then Emit). Items are packets. One service on 10.30.0.10 over 16 reals
// (10.20.0.10 .. 25, Maglev scheduler, no health checks), one worker, and a flow table of
// max_flows records (the stage's own, sized as nf sizes it).
//
//   nat_hit        UDP, mode nat: 1 M resident flows (made by sending one packet of each
//                  through the stage beforehand), then packets of those flows in random order
//                  (4 concatenated random permutations of the 1 M, replayed): every packet a
//                  flow-table hit, destination rewritten to the real.
//   dsr_hit        the same with mode dsr (meta next hop only).
//   ipip_hit       the same with mode ipip (20-byte IP-in-IP header prepended).
//   nat_hit_seq    nat_hit replayed in the order the flows were created: records are then
//                  read sequentially (the record pool hands out 0, 1, 2...), which is what a
//                  pcap replayed by perf/run-lb does. The gap to nat_hit is that artefact.
//   nat_new        TCP, mode nat: SYNs of fresh 5-tuples on top of 1 M resident flows, every
//                  one a new flow (scheduler, both keys inserted). New connections per second.
//                  Runs a fixed 32768 bursts (1 M new flows) so the table (2.25 M records)
//                  never fills; occupancy goes from 1 M to 2 M flows during the run.
//   dsr_new        the same SYNs with mode dsr: one key per flow instead of two (the
//                  difference to nat_new is mostly the reply key's insert).
//   dsr_stateless  UDP, mode dsr, lb.syn_flood_rate = 100: the stage is in flood mode, so
//                  packets of unknown flows (the 1 M, random order) miss the table and are
//                  placed by the pool's Maglev table without an entry.
// Every case checks first that a burst gives the outcome it claims (all 32 packets to `next`,
// rewritten for the mode, counted as hits / new flows / stateless), and afterwards that every
// timed packet was (SkipWithError otherwise, so a broken stage cannot post a fast number).
//
//   baseline       nat_hit's stream without the stage: restore, parse and Emit only. Subtract
//                  its cycles/pkt from a case's for the stage's share in CPU time.
//
// Counters: cycles/pkt is CPU time x TSC rate / packets (restore + parse + stage + Emit; CPU
// time, not wall time, so preemption on a shared machine does not inflate it). stage_cyc/pkt
// is the TSC read around process() only, as the worker's `show stages` counts it, averaged
// over the bursts no longer than 4 x the median burst (a burst the scheduler interrupted
// holds wall time; slow_bursts% says how many were left out). stage_Mpps = TSC rate /
// stage_cyc/pkt: what one core would forward if the stage were all it did.
#include <benchmark/benchmark.h>
#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "config/config.h"
#include "nf/lb/service.h"
#include "nf/runtime/snapshot.h"
#include "perf/micro/bench_main.h"
#include "perf/micro/stage_bench.h"
#include "pipelines/lb/lb_stage.h"
#include "tests/common/fake_mbuf.h"
#include "tests/common/packet_builder.h"

namespace nf::test {
namespace {

constexpr uint32_t kFlows = 1u << 20;     // resident flows
constexpr uint32_t kStream = 4 * kFlows;  // packets per pass of the replay stream (32 MiB)
constexpr uint32_t kNewBursts = kFlows / kMaxBurst;
constexpr uint32_t kVip = 0x0a1e000a;        // 10.30.0.10
constexpr uint32_t kRealFirst = 0x0a14000a;  // 10.20.0.10
constexpr uint32_t kReals = 16;
constexpr uint16_t kUdpPort = 5000;
constexpr uint16_t kTcpPort = 80;

enum Case : int {
  kNatHit,
  kDsrHit,
  kIpipHit,
  kNatHitSeq,
  kNatNew,
  kDsrNew,
  kDsrStateless,
  kBaseline,
  kCases
};
const char* const kCaseNames[kCases] = {"nat_hit", "dsr_hit", "ipip_hit",      "nat_hit_seq",
                                        "nat_new", "dsr_new", "dsr_stateless", "baseline"};

// Flow i's client: 16 flows per source address, 65536 sources per 1 M flows. The same scheme
// as perf/e2e/gen_lb_pcap.py.
uint32_t flow_src(uint32_t i) {
  return 0xac100000u + (i >> 4);  // 172.16.0.0 + i / 16
}
uint16_t flow_sport(uint32_t i) {
  return static_cast<uint16_t>(1024 + 16 * ((i >> 4) % 4000) + (i & 15));
}

// The per-packet part of a frame, precomputed so the timed loop only copies it in.
struct StreamEntry {
  uint32_t src;    // network order
  uint16_t sport;  // network order
  uint16_t ip_cksum;
};
static_assert(sizeof(StreamEntry) == 8);

// 64-byte UDP frame (IP total length 50), or a 66-byte TCP SYN with MSS, window scale and
// SACK-permitted options (TCP header 32 bytes), from the client side to the VIP.
std::vector<uint8_t> frame_template(bool tcp) {
  const uint16_t l4 = tcp ? 32 : 30;
  std::vector<uint8_t> f(14 + 20 + l4, 0);
  auto* eth = reinterpret_cast<rte_ether_hdr*>(f.data());
  std::memcpy(eth->dst_addr.addr_bytes, kPortMac.b.data(), 6);
  std::memcpy(eth->src_addr.addr_bytes, kHostMac.b.data(), 6);
  eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
  auto* ip = reinterpret_cast<rte_ipv4_hdr*>(f.data() + 14);
  ip->version_ihl = 0x45;
  ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(20 + l4));
  ip->packet_id = rte_cpu_to_be_16(1);
  ip->time_to_live = 64;
  ip->next_proto_id = tcp ? IPPROTO_TCP : IPPROTO_UDP;
  ip->src_addr = rte_cpu_to_be_32(flow_src(0));
  ip->dst_addr = rte_cpu_to_be_32(kVip);
  uint8_t* l4p = f.data() + 34;
  if (tcp) {
    auto* th = reinterpret_cast<rte_tcp_hdr*>(l4p);
    th->src_port = rte_cpu_to_be_16(flow_sport(0));
    th->dst_port = rte_cpu_to_be_16(kTcpPort);
    th->sent_seq = rte_cpu_to_be_32(0x12345678);
    th->data_off = (32 / 4) << 4;
    th->tcp_flags = RTE_TCP_SYN_FLAG;
    th->rx_win = rte_cpu_to_be_16(64240);
    th->cksum = rte_cpu_to_be_16(0x5a5a);  // any value: the rewrite updates it incrementally
    const uint8_t opts[12] = {2, 4, 0x05, 0xb4, 1, 3, 3, 7, 1, 1, 4, 2};  // MSS 1460, WS 7, SACK
    std::memcpy(l4p + 20, opts, sizeof opts);
  } else {
    auto* uh = reinterpret_cast<rte_udp_hdr*>(l4p);
    uh->src_port = rte_cpu_to_be_16(flow_sport(0));
    uh->dst_port = rte_cpu_to_be_16(kUdpPort);
    uh->dgram_len = rte_cpu_to_be_16(l4);
    uh->dgram_cksum = rte_cpu_to_be_16(0x5a5a);
    for (uint16_t i = 8; i < l4; ++i) l4p[i] = static_cast<uint8_t>(i);
  }
  ip->hdr_checksum = rte_ipv4_cksum(ip);
  return f;
}

StreamEntry entry_for(const std::vector<uint8_t>& tmpl, uint32_t flow) {
  rte_ipv4_hdr ip;
  std::memcpy(&ip, tmpl.data() + 14, sizeof ip);
  ip.src_addr = rte_cpu_to_be_32(flow_src(flow));
  ip.hdr_checksum = 0;
  return StreamEntry{ip.src_addr, rte_cpu_to_be_16(flow_sport(flow)), rte_ipv4_cksum(&ip)};
}

struct CaseSpec {
  const char* mode;
  bool tcp;
  bool resident;   // 1 M flows inserted before timing
  bool random;     // replay order: random permutations (else creation order)
  bool fresh;      // timed packets are flows never seen (flow ids from kFlows on)
  uint32_t flood;  // lb.syn_flood_rate
  uint32_t max_flows;
};

CaseSpec spec_of(int c) {
  constexpr uint32_t kTable = kFlows + kFlows / 8;  // as perf/run-lb configures nf
  switch (c) {
    case kNatHit:
      return {"nat", false, true, true, false, 100000000, kTable};
    case kDsrHit:
      return {"dsr", false, true, true, false, 100000000, kTable};
    case kIpipHit:
      return {"ipip", false, true, true, false, 100000000, kTable};
    case kNatHitSeq:
      return {"nat", false, true, false, false, 100000000, kTable};
    case kNatNew:
      return {"nat", true, true, false, true, 100000000, 2 * kFlows + kFlows / 4};
    case kDsrNew:
      return {"dsr", true, true, false, true, 100000000, 2 * kFlows + kFlows / 4};
    case kDsrStateless:
      return {"dsr", false, false, true, false, 100, kTable};
    default:  // the stream of nat_hit without the stage
      return {"nat", false, false, true, false, 100000000, 1024};
  }
}

std::string config_text(const CaseSpec& s) {
  std::string reals;
  for (uint32_t i = 0; i < kReals; ++i)
    reals +=
        std::string(i ? ", " : "") + "{ address = \"10.20.0." + std::to_string(10 + i) + "\"; }";
  return std::string(R"(
lcores = { management = 0; workers = [1]; };
ports = ( { name = "in"; device = "net_null0"; addresses = ["10.10.0.1/24"]; },
          { name = "out"; device = "net_null1"; addresses = ["10.20.0.1/24"]; } );
pipeline = [ "input", "lb", "ip4_forward" ];
lb = { max_flows = )") +
         std::to_string(s.max_flows) + "; syn_flood_rate = " + std::to_string(s.flood) +
         "; services = ( { name = \"bench\"; vip = \"10.30.0.10\"; protocol = \"" +
         (s.tcp ? "tcp" : "udp") + "\"; port = " + std::to_string(s.tcp ? kTcpPort : kUdpPort) +
         "; mode = \"" + s.mode + "\"; scheduler = \"maglev\"; reals = ( " + reals +
         " ); } ); };\n";
}

struct LbBench : StageBenchBase {
  CaseSpec spec;
  std::string error;  // set when the setup failed
  std::shared_ptr<const lb::Runtime> rt;
  std::unique_ptr<lb::LbStage> stage;
  std::vector<uint8_t> tmpl;
  std::vector<StreamEntry> stream;
  size_t pos = 0;
  bool with_stage = true;         // false: the baseline (restore, parse, Emit only)
  std::vector<uint32_t> samples;  // TSC cycles of each timed process() call

  explicit LbBench(int c) : spec(spec_of(c)) {
    const std::string text = config_text(spec);
    LoadResult r = load_config("bench-lb.conf", &text);
    if (auto* e = std::get_if<std::vector<ConfigError>>(&r)) {
      error = format_errors(*e);
      return;
    }
    const Config& cfg = std::get<Config>(r);
    rt = lb::build_runtime(cfg, {}, nullptr, rte_get_tsc_hz(), 1, 1, &error);
    if (!rt) return;
    snap.nb_ports = 2;
    snap.ports[0] = PortView::make(kPortMac, 1500);
    snap.ports[1] = PortView::make(kPortMac, 1500);
    snap.min_mtu = 1500;
    snap.lb = rt;
    env.tsc_hz = rte_get_tsc_hz();
    env.lb_max_flows = cfg.lb.max_flows;
    stage = std::make_unique<lb::LbStage>(0, env);
    emit.set_nb_ports(2);
    tmpl = frame_template(spec.tcp);
    for (int i = 0; i < kMaxBurst; ++i) mbufs.push_back(std::make_unique<FakeMbuf>(tmpl));

    if (spec.resident) {
      // One packet of each resident flow, in creation order (TCP: SYNs; the table then holds
      // them in SYN_SENT, which is all a resident flow must do here: occupy the table).
      stream.resize(kFlows);
      for (uint32_t i = 0; i < kFlows; ++i) stream[i] = entry_for(tmpl, i);
      pos = 0;
      for (uint32_t b = 0; b < kFlows / kMaxBurst; ++b) burst();
      const lb::LbWorkerCounters& k = stage->counters();
      if (k.new_flows != kFlows || stage->table().size() != kFlows || counters.drop != 0) {
        error = "setup: " + std::to_string(k.new_flows) + " new flows, table " +
                std::to_string(stage->table().size()) + ", " + std::to_string(counters.drop) +
                " drops for " + std::to_string(kFlows) + " packets";
        return;
      }
    }
    std::vector<uint32_t> order;
    if (spec.fresh) {
      // One burst more than the timed run takes: the check burst goes first.
      order.resize(kFlows + kMaxBurst);
      std::iota(order.begin(), order.end(), kFlows);
    } else if (!spec.random) {
      order.resize(kFlows);
      std::iota(order.begin(), order.end(), 0u);
    } else {
      std::mt19937_64 rng(42);
      std::vector<uint32_t> perm(kFlows);
      std::iota(perm.begin(), perm.end(), 0u);
      for (uint32_t k = 0; k < kStream / kFlows; ++k) {
        std::shuffle(perm.begin(), perm.end(), rng);
        order.insert(order.end(), perm.begin(), perm.end());
      }
    }
    stream.resize(order.size());
    for (size_t i = 0; i < order.size(); ++i) stream[i] = entry_for(tmpl, order[i]);
    stream.shrink_to_fit();
    pos = 0;
    // Flood mode starts once a window has seen syn_flood_rate new flows (stored normally).
    if (spec.flood <= 1000)
      for (uint32_t n = 0; n <= spec.flood / kMaxBurst; ++n) burst();
  }

  // One burst of the next 32 stream entries through the stage; returns the packets passed on.
  int burst() {
    Burst b = fill(tmpl, [this](int, uint8_t* p) {
      const StreamEntry& e = stream[pos];
      if (++pos == stream.size()) pos = 0;
      std::memcpy(p + 24, &e.ip_cksum, 2);
      std::memcpy(p + 26, &e.src, 4);
      std::memcpy(p + 34, &e.sport, 2);
    });
    emit.begin_stage(&counters);
    const uint64_t t0 = rte_rdtsc();
    if (with_stage) {
      stage->process(b, StageCtx{&snap, t0, 0}, emit);
    } else {
      emit.next_all(b);
    }
    const uint64_t dt = rte_rdtsc() - t0;
    if (samples.size() < samples.capacity()) samples.push_back(static_cast<uint32_t>(dt));
    emit.end_stage();
    const int r = emit.next_burst().n;
    emit.next_burst().n = 0;
    emit.drops().n = 0;
    return r;
  }

  // Whether the packets of the last burst left rewritten as the mode wants.
  std::string check_rewrite() {
    for (int i = 0; i < kMaxBurst; ++i) {
      rte_mbuf* m = mbufs[i]->mbuf();
      const PacketMeta& md = meta(m);
      const uint8_t* p = rte_pktmbuf_mtod(m, const uint8_t*);
      const auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(p + 14);
      const bool real = md.ip_dst >= kRealFirst && md.ip_dst < kRealFirst + kReals;
      const uint32_t dst = rte_be_to_cpu_32(ip->dst_addr);
      bool ok = real && ipv4_cksum_ok(ip);
      const std::string mode = spec.mode;
      if (mode == "nat") ok = ok && dst == md.ip_dst;
      if (mode == "dsr") ok = ok && dst == kVip && (md.flags & meta_flags::kRouteByMeta);
      if (mode == "ipip") {
        const auto* inner = ip + 1;
        ok = ok && ip->next_proto_id == 4 && dst == md.ip_dst &&
             rte_be_to_cpu_32(inner->dst_addr) == kVip && m->data_len == tmpl.size() + 20;
      }
      if (!ok) return "packet " + std::to_string(i) + " not rewritten for mode " + mode;
    }
    return "";
  }
};

void BM_Lb(benchmark::State& state) {
  const int c = static_cast<int>(state.range(0));
  state.SetLabel(kCaseNames[c]);
  LbBench b(c);
  if (!b.error.empty()) {
    state.SkipWithError(b.error.c_str());
    return;
  }
  b.with_stage = c != kBaseline;
  // What every packet of the case must count as. Flood mode still stores syn_flood_rate new
  // flows per second (and their later packets are hits): those count too, within a limit.
  auto counted = [&]() -> uint64_t {
    const lb::LbWorkerCounters& k = b.stage->counters();
    if (c == kBaseline) return b.counters.next;
    if (c == kNatNew || c == kDsrNew) return k.new_flows;
    if (c == kDsrStateless) return k.stateless + k.new_flows + k.hits;
    return k.hits;
  };
  const uint64_t counted0 = counted();
  const uint64_t stateless0 = b.stage->counters().stateless;
  if (b.burst() != kMaxBurst || counted() - counted0 != kMaxBurst ||
      (c == kDsrStateless && b.stage->counters().stateless - stateless0 != kMaxBurst)) {
    state.SkipWithError("a burst did not give 32 packets of the case's outcome");
    return;
  }
  if (const std::string e = c == kBaseline ? "" : b.check_rewrite(); !e.empty()) {
    state.SkipWithError(e.c_str());
    return;
  }
  const uint64_t counted1 = counted();
  const uint64_t stateless1 = b.stage->counters().stateless;
  const uint64_t next1 = b.counters.next;
  b.samples.clear();
  b.samples.reserve(static_cast<size_t>(state.max_iterations));
  const double t0 = thread_cpu_ns();
  for (auto _ : state) benchmark::DoNotOptimize(b.burst());
  const double cpu_ns = thread_cpu_ns() - t0;
  const uint64_t pkts = static_cast<uint64_t>(state.iterations()) * kMaxBurst;
  const uint64_t stateless = b.stage->counters().stateless - stateless1;
  if (counted() - counted1 != pkts || b.counters.next - next1 != pkts || b.counters.drop != 0 ||
      (c == kDsrStateless && stateless * 100 < pkts * 99)) {
    const std::string e = "timed packets: " + std::to_string(counted() - counted1) + " of " +
                          std::to_string(pkts) + " counted as " + kCaseNames[c] + " (" +
                          std::to_string(stateless) + " stateless), " +
                          std::to_string(b.counters.drop) + " dropped";
    state.SkipWithError(e.c_str());
    return;
  }
  // The stage alone, by TSC: a burst the scheduler interrupted counts wall time, so bursts
  // longer than 4 x the median are left out (on a quiet machine there are next to none).
  std::vector<uint32_t> v = b.samples;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  const uint64_t median = v.empty() ? 0 : v[v.size() / 2];
  uint64_t sum = 0;
  uint64_t kept = 0;
  for (uint32_t x : b.samples)
    if (x <= 4 * median) sum += x, ++kept;
  const double hz = static_cast<double>(rte_get_tsc_hz());
  const double stage_cyc =
      kept ? static_cast<double>(sum) / static_cast<double>(kept * kMaxBurst) : 0;
  state.SetItemsProcessed(static_cast<int64_t>(pkts));
  state.counters["cycles/pkt"] = cpu_ns * hz / 1e9 / static_cast<double>(pkts);
  state.counters["stage_cyc/pkt"] = stage_cyc;
  state.counters["stage_ns/pkt"] = stage_cyc * 1e9 / hz;
  state.counters["stage_Mpps"] = stage_cyc > 0 ? hz / stage_cyc / 1e6 : 0;
  state.counters["slow_bursts%"] = b.samples.empty()
                                       ? 0
                                       : 100.0 * static_cast<double>(b.samples.size() - kept) /
                                             static_cast<double>(b.samples.size());
  state.counters["flows"] = static_cast<double>(b.stage->table().size());
}

BENCHMARK(BM_Lb)->DenseRange(kNatHit, kNatHitSeq)->Unit(benchmark::kNanosecond);
// Fixed length: 1 M new flows fit the table (2.25 M records, 1 M resident).
BENCHMARK(BM_Lb)->Arg(kNatNew)->Iterations(kNewBursts)->Unit(benchmark::kNanosecond);
BENCHMARK(BM_Lb)->Arg(kDsrNew)->Iterations(kNewBursts)->Unit(benchmark::kNanosecond);
BENCHMARK(BM_Lb)->Arg(kDsrStateless)->Unit(benchmark::kNanosecond);
BENCHMARK(BM_Lb)->Arg(kBaseline)->Unit(benchmark::kNanosecond);

}  // namespace
}  // namespace nf::test

int main(int argc, char** argv) {
  return nf::test::bench_main(argc, argv);
}
