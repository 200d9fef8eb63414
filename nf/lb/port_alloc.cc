#include "nf/lb/port_alloc.h"

#include <utility>

namespace nf::lb {

PortSplit::PortSplit(uint16_t lo, uint16_t hi, unsigned workers)
    : lo_(lo == 0 ? 1 : lo), hi_(hi), workers_(workers == 0 ? 1 : workers) {
  recip_ = ((uint64_t{1} << 32) + workers_ - 1) / workers_;
  lo_div_ = lo_ / workers_;
  lo_mod_ = lo_ % workers_;
}

uint16_t PortSplit::first(unsigned worker) const {
  if (worker >= workers_ || lo_ > hi_) return 0;
  const uint32_t f =
      uint32_t{lo_} + (worker >= lo_mod_ ? worker - lo_mod_ : worker + workers_ - lo_mod_);
  return f <= hi_ ? static_cast<uint16_t>(f) : 0;
}

uint32_t PortSplit::share_size(unsigned worker) const {
  const uint16_t f = first(worker);
  return f == 0 ? 0 : (hi_ - f) / workers_ + 1;
}

namespace {

uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

PortPool::PortPool(const PortSplit& split, unsigned worker, uint64_t quarantine, uint64_t seed)
    : split_(split),
      worker_(worker),
      first_(split.first(worker)),
      quarantine_(quarantine),
      size_(split.share_size(worker)),
      state_(new uint8_t[size_ ? size_ : 1]()),
      ring_idx_(new uint16_t[size_ ? size_ : 1]()),
      ring_ready_(new uint64_t[size_ ? size_ : 1]()) {
  for (uint32_t i = 0; i < size_; ++i) ring_idx_[i] = static_cast<uint16_t>(i);
  if (seed != 0) {
    // Fisher-Yates; the modulo bias (< 2^-47 for 64k ports) does not matter here.
    uint64_t s = seed;
    for (uint32_t i = size_; i > 1; --i) std::swap(ring_idx_[i - 1], ring_idx_[splitmix64(s) % i]);
  }
  for (uint32_t i = 0; i < size_; ++i) state_[i] = kInRing;
  count_ = size_;
}

void PortPool::push(uint32_t idx, uint64_t ready) {
  uint32_t tail = head_ + count_;
  if (tail >= size_) tail -= size_;
  ring_idx_[tail] = static_cast<uint16_t>(idx);
  ring_ready_[tail] = ready;
  ++count_;
  state_[idx] |= kInRing;
}

bool PortPool::release(uint16_t port, uint64_t now) {
  if (!owns(port)) [[unlikely]] {
    ++c_.bad_releases;
    return false;
  }
  const uint32_t i = split_.index(port);
  uint8_t& st = state_[i];
  if (!(st & kAllocated)) [[unlikely]] {
    ++c_.bad_releases;
    return false;
  }
  st &= ~kAllocated;
  --in_use_;
  ++c_.releases;
  // An allocated port is never in the ring, so the ring cannot overflow.
  if (!(st & kReserved)) push(i, now + quarantine_);
  return true;
}

bool PortPool::reserve(uint16_t port) {
  if (!owns(port)) return false;
  state_[split_.index(port)] |= kReserved;
  return true;
}

bool PortPool::unreserve(uint16_t port, uint64_t now) {
  if (!owns(port)) return false;
  const uint32_t i = split_.index(port);
  uint8_t& st = state_[i];
  if (!(st & kReserved)) return true;
  st &= ~kReserved;
  // Still queued (the lazy drop has not reached it) or with a flow: nothing to add.
  if (!(st & (kInRing | kAllocated))) push(i, now + quarantine_);
  return true;
}

PortAllocator::PortAllocator(const Config& cfg, size_t n_addrs, unsigned worker)
    : split_(cfg.lo, cfg.hi, cfg.workers) {
  pools_.reserve(n_addrs * kPatProtos);
  for (size_t a = 0; a < n_addrs; ++a)
    for (size_t p = 0; p < kPatProtos; ++p)
      // A distinct seed per pool, so two addresses do not hand out ports in the same order.
      pools_.emplace_back(
          split_, worker, cfg.quarantine[p],
          cfg.seed == 0 ? 0 : cfg.seed + 0x9e3779b97f4a7c15ULL * (a * kPatProtos + p + 1));
}

size_t PortAllocator::memory_bytes() const {
  size_t n = sizeof(*this) + pools_.capacity() * sizeof(PortPool);
  for (const PortPool& p : pools_) n += p.memory_bytes();
  return n;
}

}  // namespace nf::lb
