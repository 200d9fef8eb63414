// Snapshot publication under concurrent readers (rte_rcu_qsbr needs no EAL): readers never see
// a destroyed snapshot, and the old one is destroyed only after every reader moved on.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "nf/runtime/rcu.h"

namespace nf {
namespace {

struct Snap {
  static std::atomic<int> live;
  uint64_t gen;
  uint64_t check;  // == gen * 3 while alive, poisoned on destruction
  explicit Snap(uint64_t g) : gen(g), check(g * 3) { live++; }
  ~Snap() {
    check = 0xdeadbeef;
    live--;
  }
};
std::atomic<int> Snap::live{0};

TEST(Rcu, OldSnapshotOutlivesItsReaders) {
  Rcu rcu(1);
  Published<Snap> p;
  p.publish(std::make_unique<Snap>(1), rcu);
  rcu.online(0);
  const Snap* held = p.load();  // a worker inside a burst
  p.publish(std::make_unique<Snap>(2), rcu);
  EXPECT_EQ(rcu.reclaim(), 1u);  // the reader has not reported quiescence
  EXPECT_EQ(held->check, 3u);    // still intact
  rcu.quiescent(0);              // burst boundary
  EXPECT_EQ(rcu.reclaim(), 0u);
  EXPECT_EQ(Snap::live.load(), 1);
  EXPECT_EQ(p.load()->gen, 2u);
  rcu.offline(0);
}

TEST(Rcu, ConcurrentReadersNeverSeeAFreedSnapshot) {
  constexpr uint32_t kReaders = 3;
  Rcu rcu(kReaders);
  Published<Snap> p;
  p.publish(std::make_unique<Snap>(1), rcu);
  std::atomic<bool> stop{false};
  std::atomic<uint32_t> ready{0};
  std::atomic<uint64_t> bad{0}, reads{0};
  std::vector<std::thread> th;
  for (uint32_t id = 0; id < kReaders; ++id) {
    th.emplace_back([&, id] {
      rcu.online(id);
      ready++;
      uint64_t last = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        const Snap* s = p.load();
        for (int i = 0; i < 50; ++i) {  // "process a burst" while holding s
          if (s->check != s->gen * 3) bad++;
        }
        if (s->gen < last) bad++;  // generations never go backwards
        last = s->gen;
        reads++;
        rcu.quiescent(id);
      }
      rcu.offline(id);
    });
  }
  // Publish only once every reader is inside its loop, and until they have read a lot while
  // publications were going on: otherwise the writer can finish before a reader ever ran.
  while (ready.load() < kReaders) std::this_thread::yield();
  uint64_t g = 2;
  for (; g <= 20000 || reads.load() < 20000; ++g) {
    p.publish(std::make_unique<Snap>(g), rcu);
    rcu.reclaim();
  }
  stop = true;
  for (auto& t : th) t.join();
  while (rcu.reclaim()) {
  }
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GE(reads.load(), 20000u);
  EXPECT_GT(g, 20000u);
  EXPECT_EQ(Snap::live.load(), 1);
}

}  // namespace
}  // namespace nf
