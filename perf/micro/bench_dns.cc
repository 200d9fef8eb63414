// Google Benchmark for the authoritative DNS responder: the lab zone plus GSLB names
// (tests/common/dns_frames.h), queried two ways. Items are queries; `cycles/query` is TSC
// cycles per query.
//
//   BM_Engine/<case>  dns::answer() on a buffer: the query copied in, answered in place
//   BM_Stage/<case>   DnsStage::process on bursts of 32 golden frames (fake mbufs), the way
//                     a worker runs it: frame restored, parsed (parse_frame), stage, Emit;
//                     the answer turned around with IP and UDP checksums. The acceptance bar
//                     is >= 5 million GSLB queries per second per core here.
// Cases: static A, NXDOMAIN, wildcard, CNAME chain (2 CNAMEs + A), GSLB weighted (3 members,
// health slots), GSLB geo with ECS.
// cycles/query is CPU time x TSC rate / queries: CPU time, not wall time, so that a loaded
// machine (preemption) does not inflate it.
#include <benchmark/benchmark.h>
#include <rte_cycles.h>
#include <rte_eal.h>

#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "nf/dns/engine.h"
#include "nf/runtime/snapshot.h"
#include "perf/micro/bench_main.h"
#include "perf/micro/stage_bench.h"
#include "pipelines/dns/dns_stage.h"
#include "tests/common/dns_frames.h"
#include "tests/common/fake_mbuf.h"

namespace nf::test {
namespace {

constexpr uint32_t kServer = 0x0a0a0001;  // 10.10.0.1
constexpr uint32_t kClient = 0xc0000207;  // 192.0.2.7

enum Case : int { kStatic, kNxdomain, kWildcard, kChain, kWeighted, kGeoEcs, kCases };
const char* const kCaseNames[kCases] = {"static_a",    "nxdomain",      "wildcard",
                                        "cname_chain", "gslb_weighted", "gslb_geo_ecs"};

DnsQuery query_for(int c) {
  DnsQuery q;
  switch (c) {
    case kStatic:
      q.name = "srv1.lab.example";
      break;
    case kNxdomain:
      q.name = "nope.lab.example";
      break;
    case kWildcard:
      q.name = "host-17.wild.lab.example";
      break;
    case kChain:
      q.name = "chain.lab.example";
      break;
    case kWeighted:
      q.name = "weighted.lab.example";
      break;
    default:
      q.name = "geo.lab.example";
      q.edns = true;
      q.ecs = true;
      q.ecs_addr = 0xc6336400;  // 198.51.100.0/24
      q.ecs_source = 24;
      break;
  }
  return q;
}

// Checks one answer decodes with the expected RCODE (the benchmark is only meaningful then).
bool answer_ok(int c, const uint8_t* m, size_t n) {
  DnsAnswer a;
  if (!decode_dns(m, n, a)) return false;
  if (c == kNxdomain) return a.rcode == dns::rcode::kNxDomain;
  return a.rcode == dns::rcode::kNoError && !a.answer.empty();
}

void report(benchmark::State& state, int c, double cpu_ns) {
  const int64_t items = static_cast<int64_t>(state.iterations()) * kMaxBurst;
  state.SetItemsProcessed(items);
  state.counters["cycles/query"] =
      cpu_ns * static_cast<double>(rte_get_tsc_hz()) / 1e9 / static_cast<double>(items);
  state.SetLabel(kCaseNames[c]);
}

DnsLab& lab() {
  static DnsLab l(false);
  return l;
}

void BM_Engine(benchmark::State& state) {
  const int c = static_cast<int>(state.range(0));
  DnsLab& l = lab();
  const std::vector<uint8_t> q = query_for(c).build();
  alignas(64) uint8_t buf[1500];
  std::memcpy(buf, q.data(), q.size());
  const uint32_t n0 = dns::answer(buf, static_cast<uint32_t>(q.size()), sizeof buf, false, kClient,
                                  l.env, l.st, l.c);
  if (!answer_ok(c, buf, n0)) {
    state.SkipWithError("the answer is wrong");
    return;
  }
  const double t0 = thread_cpu_ns();
  for (auto _ : state) {
    for (int i = 0; i < kMaxBurst; ++i) {
      std::memcpy(buf, q.data(), q.size());
      benchmark::DoNotOptimize(dns::answer(buf, static_cast<uint32_t>(q.size()), sizeof buf, false,
                                           kClient, l.env, l.st, l.c));
    }
  }
  report(state, c, thread_cpu_ns() - t0);
}

struct StageBench : StageBenchBase {
  std::shared_ptr<dns::Runtime> rt = std::make_shared<dns::Runtime>();
  std::unique_ptr<dns::DnsStage> stage;
  std::vector<uint8_t> frame;

  explicit StageBench(int c) {
    DnsLab& l = lab();
    rt->view = l.view;
    rt->slot_of_target = l.slot_of_target;
    rt->slots = l.slots.get();
    rt->listen = {kServer};
    snap.nb_ports = 1;
    snap.ports[0] = PortView::make(kPortMac, 1500);
    snap.min_mtu = 1500;
    snap.dns = rt;
    env.tsc_hz = rte_get_tsc_hz();
    stage = std::make_unique<dns::DnsStage>(0, env);
    emit.set_nb_ports(1);
    frame = dns_frame(query_for(c).build(), kClient, kServer);
    for (int i = 0; i < kMaxBurst; ++i) mbufs.push_back(std::make_unique<FakeMbuf>(frame));
  }

  // One burst; returns the replies.
  int burst() {
    Burst b = fill(frame, [](int, uint8_t*) {});
    emit.begin_stage(&counters);
    stage->process(b, StageCtx{&snap, rte_rdtsc(), 0}, emit);
    emit.end_stage();
    Emit::TxBuf& tx = emit.txbuf(0);
    const int r = tx.n;
    tx.n = 0;
    emit.drops().n = 0;
    emit.next_burst().n = 0;
    return r;
  }
};

void BM_Stage(benchmark::State& state) {
  const int c = static_cast<int>(state.range(0));
  StageBench b(c);
  if (b.burst() != kMaxBurst) {
    state.SkipWithError("not every query was answered");
    return;
  }
  {
    rte_mbuf* m = b.mbufs[0]->mbuf();
    const auto* udp = rte_pktmbuf_mtod_offset(m, const rte_udp_hdr*, 34);
    if (!answer_ok(c, reinterpret_cast<const uint8_t*>(udp + 1),
                   rte_be_to_cpu_16(udp->dgram_len) - 8u)) {
      state.SkipWithError("the answer is wrong");
      return;
    }
  }
  const double t0 = thread_cpu_ns();
  for (auto _ : state) benchmark::DoNotOptimize(b.burst());
  report(state, c, thread_cpu_ns() - t0);
}

BENCHMARK(BM_Engine)->DenseRange(0, kCases - 1);
BENCHMARK(BM_Stage)->DenseRange(0, kCases - 1);

}  // namespace
}  // namespace nf::test

int main(int argc, char** argv) {
  return nf::test::bench_main(argc, argv);
}
