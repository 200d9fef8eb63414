// Quiescent-state RCU (rte_rcu_qsbr) for everything workers read and the management lcore
// replaces: snapshots, FIB tbl8 groups, adjacency slots. Workers report a quiescent state once
// per loop iteration (between bursts), so a grace period is one loop of the slowest worker.
#pragma once

#include <rte_rcu_qsbr.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <vector>

namespace nf {

class Rcu {
 public:
  explicit Rcu(uint32_t readers) {
    size_t sz = rte_rcu_qsbr_get_memsize(readers);
    v_ = static_cast<rte_rcu_qsbr*>(
        std::aligned_alloc(RTE_CACHE_LINE_SIZE, RTE_ALIGN(sz, RTE_CACHE_LINE_SIZE)));
    rte_rcu_qsbr_init(v_, readers);
  }
  ~Rcu() { std::free(v_); }
  Rcu(const Rcu&) = delete;
  Rcu& operator=(const Rcu&) = delete;

  rte_rcu_qsbr* qsbr() { return v_; }

  // Reader side (worker lcore `id`).
  void online(uint32_t id) {
    rte_rcu_qsbr_thread_register(v_, id);
    rte_rcu_qsbr_thread_online(v_, id);
  }
  void offline(uint32_t id) {
    rte_rcu_qsbr_thread_offline(v_, id);
    rte_rcu_qsbr_thread_unregister(v_, id);
  }
  void quiescent(uint32_t id) { rte_rcu_qsbr_quiescent(v_, id); }

  // Writer side (management lcore).
  uint64_t start() { return rte_rcu_qsbr_start(v_); }
  bool done(uint64_t token) { return rte_rcu_qsbr_check(v_, token, false) == 1; }

  // Runs `fn` once every reader has passed a quiescent state after this call.
  void defer(std::function<void()> fn) { deferred_.push_back({start(), std::move(fn)}); }
  // Runs what is due; returns how many are still waiting.
  size_t reclaim() {
    size_t i = 0;
    while (i < deferred_.size()) {
      if (done(deferred_[i].token)) {
        auto fn = std::move(deferred_[i].fn);
        deferred_.erase(deferred_.begin() + static_cast<long>(i));
        fn();
      } else {
        ++i;
      }
    }
    return deferred_.size();
  }

 private:
  struct Deferred {
    uint64_t token;
    std::function<void()> fn;
  };
  rte_rcu_qsbr* v_;
  std::vector<Deferred> deferred_;
};

// A pointer to an immutable T that readers load once per burst and the writer replaces whole.
template <typename T>
class Published {
 public:
  const T* load() const { return p_.load(std::memory_order_acquire); }
  // Publishes `next`; the previous object is destroyed after a grace period.
  void publish(std::unique_ptr<T> next, Rcu& rcu) {
    T* old = const_cast<T*>(p_.exchange(next.release(), std::memory_order_acq_rel));
    if (old) rcu.defer([old] { delete old; });
  }
  T* mutable_current() { return const_cast<T*>(p_.load(std::memory_order_relaxed)); }
  ~Published() { delete p_.load(); }

 private:
  std::atomic<const T*> p_{nullptr};
};

}  // namespace nf
