// Google Benchmark for the per-worker flow table (nf/lb/flow_table.h). No EAL: the table is
// plain memory. Every case runs with N = 1 M, 4 M and 16 M resident NAT flows (two keys each)
// in a table of capacity N + N / 8, whose index is sized for 2 keys per record at 90 %.
//
//   hit          lookup_bulk of 32 resident keys per call, drawn uniformly at random (half
//                client->VIP, half reply keys). Items are keys. This is the per-packet cost
//                the L4 stage budget depends on.
//   miss         the same with 32 absent keys.
//   single       lookup() one key at a time on the hit set: what the bulk prefetching buys.
//   new_flow     how the stage sets up 32 new NAT flows: lookup_bulk (all miss), prefetch()
//                of the 32 reply keys, 32 inserts with both keys; then the 32 are erased
//                (hot) so the table stays at N. Items are flows.
//   churn        erase the oldest flow and insert a new one (both keys), 32 per iteration;
//                the table stays at N. Items are insert+erase pairs.
//   sweep_scan   sweep(now, 256) when nothing is dead: the per-burst housekeeping. Items are
//                records checked.
//   sweep_free   sweep(now, 32) where every record is dead (each one released, both index
//                entries removed), plus 32 inserts to keep the table full. Items are
//                records released (+ one insert each); sweep_cycles/freed is the sweep alone.
// cycles/item is CPU time x TSC rate / items (CPU time, not wall time, so preemption on a
// shared machine does not inflate it). The TSC rate is measured against CLOCK_MONOTONIC.
#include <benchmark/benchmark.h>
#include <rte_cycles.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <vector>

#include "nf/lb/flow_table.h"
#include "perf/micro/bench_main.h"

namespace nf::test {
namespace {

using lb::FlowKey;
using lb::FlowRecord;
using lb::FlowTable;
using lb::Hit;

constexpr unsigned kBurst = 32;
constexpr uint32_t kQueries = 1u << 20;  // 16 MiB of query keys, read sequentially
constexpr uint64_t kNow = 1000;
constexpr uint64_t kLong = 1ull << 40;

enum Case : int { kHit, kMiss, kSingle, kNewFlow, kChurn, kSweepScan, kSweepFree, kCases };
const char* const kCaseNames[kCases] = {"hit",   "miss",       "single",    "new_flow",
                                        "churn", "sweep_scan", "sweep_free"};

// Flow i's keys: a client (scrambled address, so neighbours in i are not neighbours in the
// key) to the VIP, and the reply from one of 64 reals to a NAT address and port.
FlowKey client_key(uint32_t i) {
  return FlowKey::conn(i * 0x9e3779b1u, 0xc0000201, static_cast<uint16_t>(1024 + (i % 60000)), 443,
                       6, 1);
}
FlowKey reply_key(uint32_t i) {
  return FlowKey::conn(0x0a140000 + (i & 63), 0x0ac80000 + (i >> 16), 443, static_cast<uint16_t>(i),
                       6, 1);
}

double tsc_hz() {
  static const double hz = [] {
    const auto t0 = std::chrono::steady_clock::now();
    const uint64_t c0 = rte_rdtsc();
    while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(200)) {
    }
    const uint64_t c1 = rte_rdtsc();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return static_cast<double>(c1 - c0) / s;
  }();
  return hz;
}

uint64_t rng_next(uint64_t& s) {  // splitmix64
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// One table at a time (16 M flows take 1.4 GB); rebuilt when N changes or a case changed it.
struct Env {
  uint32_t n = 0;
  bool dirty = false;
  std::unique_ptr<FlowTable> t;
  std::vector<FlowKey> hit_q;
  std::vector<FlowKey> miss_q;
};

Env& env(uint32_t n) {
  static Env e;
  if (e.n == n && !e.dirty) return e;
  e.t.reset();
  e.t = std::make_unique<FlowTable>(n + n / 8);  // N resident, 1/8 headroom for new flows
  for (uint32_t i = 0; i < n; ++i) {
    const FlowKey k1 = reply_key(i);
    if (!e.t->insert(client_key(i), &k1, kNow, kLong)) std::abort();
  }
  uint64_t s = 42;
  e.hit_q.resize(kQueries);
  e.miss_q.resize(kQueries);
  for (uint32_t q = 0; q < kQueries; ++q) {
    const uint64_t r = rng_next(s);
    const uint32_t i = static_cast<uint32_t>(r % n);
    e.hit_q[q] = (r >> 63) ? reply_key(i) : client_key(i);
    e.miss_q[q] = client_key(n + q);  // never inserted
  }
  e.n = n;
  e.dirty = false;
  return e;
}

void report(benchmark::State& state, int c, uint64_t items, double cpu_ns) {
  state.SetItemsProcessed(static_cast<int64_t>(items));
  state.counters["ns/item"] = cpu_ns / static_cast<double>(items);
  state.counters["cycles/item"] = cpu_ns * tsc_hz() / 1e9 / static_cast<double>(items);
  state.counters["flows"] = static_cast<double>(state.range(0));
  state.SetLabel(kCaseNames[c]);
}

void BM_FlowTable(benchmark::State& state) {
  const uint32_t n = static_cast<uint32_t>(state.range(0));
  const int c = static_cast<int>(state.range(1));
  Env& e = env(n);
  FlowTable& t = *e.t;
  Hit hits[kBurst];
  uint64_t items = 0;
  uint32_t pos = 0;

  if (c == kHit || c == kMiss) {
    const std::vector<FlowKey>& q = c == kHit ? e.hit_q : e.miss_q;
    // Correctness first: one pass must give exactly the expected answers.
    t.lookup_bulk(q.data(), kBurst, kNow, hits);
    for (const Hit& h : hits)
      if ((h.rec != nullptr) != (c == kHit)) {
        state.SkipWithError("wrong lookup answer");
        return;
      }
    uint64_t found = 0;
    const double t0 = thread_cpu_ns();
    for (auto _ : state) {
      t.lookup_bulk(&q[pos], kBurst, kNow, hits);
      for (const Hit& h : hits) found += h.rec != nullptr;
      pos = (pos + kBurst) & (kQueries - 1);
      items += kBurst;
    }
    const double ns = thread_cpu_ns() - t0;
    benchmark::DoNotOptimize(found);
    if (found != (c == kHit ? items : 0)) state.SkipWithError("wrong lookup answer");
    report(state, c, items, ns);
  } else if (c == kSingle) {
    uint64_t found = 0;
    const double t0 = thread_cpu_ns();
    for (auto _ : state) {
      for (unsigned i = 0; i < kBurst; ++i)
        found += t.lookup(e.hit_q[pos + i], kNow).rec != nullptr;
      pos = (pos + kBurst) & (kQueries - 1);
      items += kBurst;
    }
    const double ns = thread_cpu_ns() - t0;
    if (found != items) state.SkipWithError("wrong lookup answer");
    report(state, c, items, ns);
  } else if (c == kNewFlow) {
    uint32_t next = n;
    FlowKey k0[kBurst];
    FlowKey k1[kBurst];
    FlowRecord* made[kBurst];
    bool ok = true;
    const double t0 = thread_cpu_ns();
    for (auto _ : state) {
      for (unsigned j = 0; j < kBurst; ++j) k0[j] = client_key(next + j);
      t.lookup_bulk(k0, kBurst, kNow, hits);
      for (unsigned j = 0; j < kBurst; ++j) {
        ok &= hits[j].rec == nullptr;
        k1[j] = reply_key(next + j);
        t.prefetch(k1[j]);
      }
      for (unsigned j = 0; j < kBurst; ++j) {
        made[j] = t.insert(k0[j], &k1[j], kNow, kLong);
        ok &= made[j] != nullptr;
      }
      for (FlowRecord* r : made)
        if (r) t.erase(r);
      next += kBurst;
      items += kBurst;
    }
    const double ns = thread_cpu_ns() - t0;
    if (!ok || t.size() != n) state.SkipWithError("new flows not set up");
    report(state, c, items, ns);
  } else if (c == kChurn) {
    e.dirty = true;
    uint32_t oldest = 0;  // flows oldest..next-1 are resident
    uint32_t next = n;
    std::vector<uint32_t> rec_of(n);  // ring: flow i -> its record
    for (uint32_t i = 0; i < n; ++i) rec_of[i] = t.index_of(t.lookup(client_key(i), kNow).rec);
    bool ok = true;
    const double t0 = thread_cpu_ns();
    for (auto _ : state) {
      for (unsigned j = 0; j < kBurst; ++j) {
        t.erase(t.at(rec_of[oldest % n]));
        ++oldest;
        const FlowKey k1 = reply_key(next);
        FlowRecord* r = t.insert(client_key(next), &k1, kNow, kLong);
        ok &= r != nullptr;
        rec_of[next % n] = r ? t.index_of(r) : 0;
        ++next;
      }
      items += kBurst;
    }
    const double ns = thread_cpu_ns() - t0;
    if (!ok || t.size() != n) state.SkipWithError("churn lost flows");
    report(state, c, items, ns);
  } else if (c == kSweepScan) {
    constexpr unsigned kBudget = 256;
    unsigned freed = 0;
    const double t0 = thread_cpu_ns();
    for (auto _ : state) {
      freed += t.sweep(kNow, kBudget);
      items += kBudget;
    }
    const double ns = thread_cpu_ns() - t0;
    if (freed != 0) state.SkipWithError("sweep freed live flows");
    report(state, c, items, ns);
  } else {  // kSweepFree
    e.dirty = true;
    const uint64_t later = kNow + kLong;  // every resident flow is dead now
    uint32_t next = n;
    for (; t.size() < t.capacity(); ++next) {  // the headroom too, so every record is dead
      const FlowKey k1 = reply_key(next);
      t.insert(client_key(next), &k1, kNow, 0);
    }
    uint64_t freed = 0;
    uint64_t sweep_cycles = 0;
    bool ok = true;
    const double t0 = thread_cpu_ns();
    for (auto _ : state) {
      const uint64_t c0 = rte_rdtsc();
      freed += t.sweep(later, kBurst);
      sweep_cycles += rte_rdtsc() - c0;
      for (unsigned j = 0; j < kBurst; ++j) {
        const FlowKey k1 = reply_key(next);
        ok &= t.insert(client_key(next), &k1, later, 0) != nullptr;  // born dead: swept next lap
        ++next;
      }
      items += kBurst;
    }
    const double ns = thread_cpu_ns() - t0;
    if (!ok || freed != items) state.SkipWithError("sweep did not free every dead record");
    report(state, c, items, ns);
    // The sweep alone (TSC around each call: wall time, but a call lasts a few microseconds).
    state.counters["sweep_cycles/freed"] =
        static_cast<double>(sweep_cycles) / static_cast<double>(freed ? freed : 1);
  }
}

// Size-major order, the cases that change the table last, so each size is built twice.
void sizes_and_cases(benchmark::internal::Benchmark* b) {
  for (const int64_t n : {1'000'000, 4'000'000, 16'000'000})
    for (int c = 0; c < kCases; ++c) b->Args({n, c});
}
BENCHMARK(BM_FlowTable)->Apply(sizes_and_cases)->Unit(benchmark::kNanosecond);

}  // namespace
}  // namespace nf::test

BENCHMARK_MAIN();
