// The main() of the micro-benchmarks that need EAL (mempools, rte_lpm): EAL in memory, no
// hugepages or devices, then Google Benchmark.
#pragma once

#include <benchmark/benchmark.h>
#include <rte_eal.h>

#include <ctime>

namespace nf::test {

// CPU time of the calling thread: a preempted benchmark is not charged the time it waited.
inline double thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

inline int bench_main(int argc, char** argv) {
  const char* eal[] = {"nf-bench",    "--no-huge",   "-m",    "256", "--no-pci",
                       "--no-shconf", "--log-level", "error", "-l",  "0"};
  if (rte_eal_init(10, const_cast<char**>(eal)) < 0) return 1;
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  rte_eal_cleanup();
  return 0;
}

}  // namespace nf::test
