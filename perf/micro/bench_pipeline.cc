// Google Benchmark for the router stage chain (input + ip4_forward) on 32-packet bursts built
// from the same golden fixtures as the tests. Reports ns and TSC cycles per packet.
//
// Every iteration restores the 64-byte frames the previous one rewrote (TTL, MACs, checksum);
// BM_RestoreOnly measures that cost alone so it can be subtracted.
#include <benchmark/benchmark.h>
#include <rte_cycles.h>
#include <rte_eal.h>

#include <memory>
#include <string>

#include "nf/runtime/snapshot.h"
#include "pipelines/ip4/forward_stage.h"
#include "pipelines/ip4/input_stage.h"
#include "tests/common/fake_mbuf.h"
#include "tests/common/packet_builder.h"

namespace nf::test {
namespace {

struct Bench {
  Config cfg;
  AdjTable adj{256};
  Snapshot snap;
  std::vector<std::vector<uint8_t>> frames;
  std::vector<std::unique_ptr<FakeMbuf>> mbufs;

  explicit Bench(int hosts) {
    std::string text = R"(
lcores = { management = 0; workers = [1]; };
ports = ( { name = "in"; device = "net_null0"; addresses = ["10.10.0.1/24"]; },
          { name = "out"; device = "net_null1"; addresses = ["10.20.0.1/24"]; } );
routes = ( { prefix = "0.0.0.0/0"; via = "10.20.0.254"; } );
)";
    cfg = std::get<Config>(load_config("bench.conf", &text));
    snap.adj = &adj;
    snap.nb_ports = 2;
    snap.ports[0] = PortView::make(kPortMac, 1500);
    snap.ports[1] = PortView::make(MacAddr{{2, 0, 0, 0, 0, 2}}, 1500);
    snap.min_mtu = 1500;
    snap.rib = build_rib(cfg, [](uint32_t, uint16_t) { return 255u; });
    std::string err;
    static int n = 0;
    snap.fib = Fib::create("bench_fib_" + std::to_string(n++), snap.rib, 1024, nullptr, err);
    adj.publish(255, MacAddr{{2, 0, 0, 0, 0, 0xfe}}, 1);
    for (int h = 0; h < hosts; ++h) {
      uint32_t ip = 0x0a140000 | static_cast<uint32_t>(10 + h);
      adj.publish(static_cast<uint32_t>(h), MacAddr{{2, 0, 0, 0, 1, static_cast<uint8_t>(h)}}, 1);
      snap.fib->add({ip, 32}, nh::make(nh::kAdj, static_cast<uint32_t>(h)));
    }
    for (int i = 0; i < kMaxBurst; ++i) {
      // Half to resolved hosts, half over the default route, as a router sees.
      uint32_t dst = (i % 2) ? 0x0a140000 | static_cast<uint32_t>(10 + i % hosts)
                             : 0xc6336400 | static_cast<uint32_t>(i);
      frames.push_back(PacketBuilder::udp_frame(dst));
      mbufs.push_back(std::make_unique<FakeMbuf>(frames.back()));
    }
  }
  void restore_and_parse(Burst& b) {
    b.n = kMaxBurst;
    b.clean = true;
    for (int i = 0; i < kMaxBurst; ++i) {
      rte_mbuf* m = mbufs[i]->mbuf();
      std::memcpy(rte_pktmbuf_mtod(m, uint8_t*), frames[i].data(), frames[i].size());
      b.clean &= mbufs[i]->parse(kPortMac);
      b.pkts[i] = m;
    }
  }
};

void BM_RestoreOnly(benchmark::State& state) {
  Bench b(64);
  Burst burst;
  for (auto _ : state) {
    b.restore_and_parse(burst);
    benchmark::DoNotOptimize(burst);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kMaxBurst);
}

void BM_RouterChain(benchmark::State& state) {
  Bench b(static_cast<int>(state.range(0)));
  ip4::InputStage in;
  ip4::ForwardStage fwd;
  Emit out;
  out.set_nb_ports(2);
  StageCounters ci{}, cf{};
  StageCtx ctx{&b.snap, 0, 0};
  Burst burst;
  uint64_t cycles = 0;
  for (auto _ : state) {
    b.restore_and_parse(burst);
    const uint64_t t0 = rte_rdtsc();
    out.begin_stage(&ci);
    in.process(burst, ctx, out);
    out.end_stage();
    Burst& mid = out.next_burst();
    out.begin_stage(&cf);
    fwd.process(mid, ctx, out);
    out.end_stage();
    cycles += rte_rdtsc() - t0;
    if (out.txbuf(1).n != kMaxBurst) state.SkipWithError("not every packet was forwarded");
    out.txbuf(1).n = 0;
  }
  const double pkts = static_cast<double>(state.iterations()) * kMaxBurst;
  state.SetItemsProcessed(static_cast<int64_t>(pkts));
  state.counters["stage_cycles/pkt"] = static_cast<double>(cycles) / pkts;
}
BENCHMARK(BM_RestoreOnly);
BENCHMARK(BM_RouterChain)->Arg(16)->Arg(64)->Arg(250);

}  // namespace
}  // namespace nf::test

int main(int argc, char** argv) {
  const char* eal[] = {"nf-bench", "--no-huge", "-m",
                       "256",      "--no-pci",  "--no-shconf",
                       "-l",       "0",         "--log-level=*:warning",
                       nullptr};
  if (rte_eal_init(9, const_cast<char**>(eal)) < 0) return 1;
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  rte_eal_cleanup();
  return 0;
}
