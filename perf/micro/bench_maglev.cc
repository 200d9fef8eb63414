// Google Benchmark for the Maglev tables and the schedulers (nf/lb/maglev.h, scheduler.h).
// No EAL: everything here is plain memory.
//
//   BM_MaglevBuild/<N>             one table build, M = maglev_size(N) (65537, or 100003 for
//                                  1000); the target is < 10 ms for 100 backends
//   BM_MaglevBuildWeighted/<N>     the same with weights 1..10
//   BM_MaglevLookup/<N>            lookup() of random flow hashes, one hot table
//   BM_MaglevLookupUp/<N>/<down%>  lookup_up() with that share of the backends down
//   BM_MaglevLookupCold/<pf>       lookup() spread over 384 tables (48 MiB, beyond L3) in
//                                  bursts of 32; pf=1 prefetches the burst's slots first,
//                                  as a worker's bulk path would
//   BM_Pick/<algo>/<N>             pick() for a new flow, all reals up; least connections
//                                  also reports the open and, 1000 flows later, the close
// Items are lookups or picks. cycles/op is CPU time x TSC rate / items: CPU time, not wall
// time, so that a loaded machine (preemption) does not inflate it. The TSC rate is
// calibrated against CLOCK_MONOTONIC at start-up.
#include <benchmark/benchmark.h>
#include <rte_cycles.h>

#include <cstdint>
#include <ctime>
#include <random>
#include <vector>

#include "nf/lb/maglev.h"
#include "nf/lb/scheduler.h"

namespace nf::lb {
namespace {

constexpr int kBatch = 1024;  // lookups per benchmark iteration
constexpr size_t kHashes = 1 << 16;

double clock_ns(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

double tsc_per_ns() {
  static const double rate = [] {
    const double t0 = clock_ns(CLOCK_MONOTONIC);
    const uint64_t c0 = rte_rdtsc();
    while (clock_ns(CLOCK_MONOTONIC) - t0 < 50e6) {
    }
    const uint64_t c1 = rte_rdtsc();
    return static_cast<double>(c1 - c0) / (clock_ns(CLOCK_MONOTONIC) - t0);
  }();
  return rate;
}

void report(benchmark::State& state, double cpu_ns, int64_t per_iteration) {
  const int64_t items = static_cast<int64_t>(state.iterations()) * per_iteration;
  state.SetItemsProcessed(items);
  state.counters["cycles/op"] = cpu_ns * tsc_per_ns() / static_cast<double>(items);
  state.counters["ns/op"] = cpu_ns / static_cast<double>(items);
}

std::vector<MaglevBackend> backends(size_t n, bool weighted) {
  std::vector<MaglevBackend> v;
  for (size_t i = 0; i < n; ++i)
    v.push_back({real_id_v4(0x0a000001 + static_cast<uint32_t>(i), 80),
                 weighted ? 1 + static_cast<uint32_t>(i % 10) : 1});
  return v;
}

const std::vector<uint64_t>& hashes() {
  static const std::vector<uint64_t> h = [] {
    std::mt19937_64 rng(1);
    std::vector<uint64_t> v(kHashes);
    for (uint64_t& x : v) x = rng();
    return v;
  }();
  return h;
}

void build_bench(benchmark::State& state, bool weighted) {
  const auto b = backends(static_cast<size_t>(state.range(0)), weighted);
  const uint32_t m = maglev_size(b.size());
  Maglev t;
  const double t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
  for (auto _ : state) {
    if (!t.build(b, m)) state.SkipWithError("build failed");
    benchmark::DoNotOptimize(t.table().data());
  }
  report(state, clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0, 1);
  state.counters["M"] = m;
  state.counters["ms/build"] =
      (clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0) / 1e6 / static_cast<double>(state.iterations());
}

void BM_MaglevBuild(benchmark::State& state) {
  build_bench(state, false);
}
void BM_MaglevBuildWeighted(benchmark::State& state) {
  build_bench(state, true);
}

void BM_MaglevLookup(benchmark::State& state) {
  Maglev t;
  t.build(backends(static_cast<size_t>(state.range(0)), false), 65537);
  const uint64_t* h = hashes().data();
  size_t off = 0;
  const double t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
  for (auto _ : state) {
    uint32_t sum = 0;
    for (int i = 0; i < kBatch; ++i) sum += t.lookup(h[off + i]);
    benchmark::DoNotOptimize(sum);
    off = (off + kBatch) & (kHashes - 1);
  }
  report(state, clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0, kBatch);
}

void BM_MaglevLookupUp(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  Maglev t;
  t.build(backends(n, false), 65537);
  std::vector<uint8_t> up(n, 1);
  const size_t down = n * static_cast<size_t>(state.range(1)) / 100;
  for (size_t k = 0; k < down; ++k) up[(k * 7919) % n] = 0;  // spread, deterministic
  const uint64_t* h = hashes().data();
  size_t off = 0;
  const double t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
  for (auto _ : state) {
    uint32_t sum = 0;
    for (int i = 0; i < kBatch; ++i) sum += t.lookup_up(h[off + i], up.data());
    benchmark::DoNotOptimize(sum);
    off = (off + kBatch) & (kHashes - 1);
  }
  report(state, clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0, kBatch);
}

void BM_MaglevLookupCold(benchmark::State& state) {
  constexpr size_t kTables = 384;
  constexpr int kBurst = 32;
  static const std::vector<Maglev> tables = [] {
    std::vector<Maglev> v(kTables);
    for (size_t i = 0; i < kTables; ++i) {
      auto b = backends(3, false);
      for (auto& x : b) x.id += i;  // different tables, different contents
      v[i].build(b, 65537);
    }
    return v;
  }();
  const bool prefetch = state.range(0) != 0;
  const uint64_t* h = hashes().data();
  size_t off = 0;
  const double t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
  for (auto _ : state) {
    uint32_t sum = 0;
    for (int i = 0; i < kBatch; i += kBurst) {
      // A burst of packets for different services (the table is chosen by the hash here).
      if (prefetch)
        for (int k = 0; k < kBurst; ++k) {
          const uint64_t x = h[off + i + k];
          tables[(x >> 40) % kTables].prefetch(x);
        }
      for (int k = 0; k < kBurst; ++k) {
        const uint64_t x = h[off + i + k];
        sum += tables[(x >> 40) % kTables].lookup(x);
      }
    }
    benchmark::DoNotOptimize(sum);
    off = (off + kBatch) & (kHashes - 1);
  }
  report(state, clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0, kBatch);
}

void BM_Pick(benchmark::State& state) {
  const Algo algo = static_cast<Algo>(state.range(0));
  const size_t n = static_cast<size_t>(state.range(1));
  std::vector<Real> reals;
  for (size_t i = 0; i < n; ++i)
    reals.push_back(
        {real_id_v4(0x0a000001 + static_cast<uint32_t>(i), 80), 1 + static_cast<uint32_t>(i % 4)});
  Pool pool;
  pool.build(algo, reals);
  PoolCursor cur;
  cur.reset(pool);
  const std::vector<uint8_t> up(n, 1);
  const uint64_t* h = hashes().data();
  // Least connections: flows close 1000 picks after they open, so counts move.
  std::vector<uint16_t> open(1000, kNone);
  size_t oi = 0;
  size_t off = 0;
  const bool lc = algo == Algo::kLeastConn;
  const double t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
  for (auto _ : state) {
    uint32_t sum = 0;
    for (int i = 0; i < kBatch; ++i) {
      const uint64_t x = h[off + i];
      const uint16_t r = pick(pool, cur, up, x, x >> 17 | x << 47);
      if (lc) {
        cur.on_close(open[oi]);
        cur.on_open(r);
        open[oi] = r;
        oi = oi + 1 == open.size() ? 0 : oi + 1;
      }
      sum += r;
    }
    benchmark::DoNotOptimize(sum);
    off = (off + kBatch) & (kHashes - 1);
  }
  report(state, clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0, kBatch);
  state.SetLabel(algo_name(algo));
}

BENCHMARK(BM_MaglevBuild)->Arg(3)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MaglevBuildWeighted)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MaglevLookup)->Arg(3)->Arg(100);
BENCHMARK(BM_MaglevLookupUp)->Args({100, 0})->Args({100, 10})->Args({100, 50});
BENCHMARK(BM_MaglevLookupCold)->Arg(0)->Arg(1);
BENCHMARK(BM_Pick)->ArgsProduct({{0, 1, 2, 3, 4}, {3, 100}});

}  // namespace
}  // namespace nf::lb

BENCHMARK_MAIN();
