// Adjacencies published by the management lcore to the workers: one atomic word per slot,
// `valid | port | MAC`, so a worker reads a complete next hop with one relaxed load and no lock.
// The MAC occupies the low six bytes in wire order, so it is copied to a header with memcpy.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>

#include "nf/net/addr.h"

namespace nf {

class AdjTable {
 public:
  static constexpr uint64_t kValid = uint64_t{1} << 63;

  explicit AdjTable(uint32_t n) : n_(n), slots_(new std::atomic<uint64_t>[n]) {
    for (uint32_t i = 0; i < n; ++i) slots_[i].store(0, std::memory_order_relaxed);
  }
  uint32_t size() const { return n_; }

  uint64_t load(uint32_t s) const { return slots_[s].load(std::memory_order_relaxed); }
  // The word array itself, for loops that hoist it (the table never moves).
  const std::atomic<uint64_t>* words() const { return slots_.get(); }
  static bool valid(uint64_t w) { return (w & kValid) != 0; }
  static uint16_t port(uint64_t w) { return static_cast<uint16_t>((w >> 48) & 0x7fff); }
  static void copy_mac(uint64_t w, uint8_t* dst) { std::memcpy(dst, &w, 6); }  // little-endian

  // Management lcore only.
  void publish(uint32_t s, const MacAddr& mac, uint16_t port) {
    uint64_t w = 0;
    std::memcpy(&w, mac.b.data(), 6);
    w |= (static_cast<uint64_t>(port) << 48) | kValid;
    slots_[s].store(w, std::memory_order_release);
  }
  void clear(uint32_t s) { slots_[s].store(0, std::memory_order_release); }

 private:
  uint32_t n_;
  std::unique_ptr<std::atomic<uint64_t>[]> slots_;
};

static_assert(std::atomic<uint64_t>::is_always_lock_free);

}  // namespace nf
