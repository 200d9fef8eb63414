#include "nf/lb/maglev.h"

#include <algorithm>
#include <cstring>

namespace nf::lb {

namespace {

// Fixed seeds: every load balancer must derive the same permutation from the same identity.
constexpr uint64_t kOffsetSeed = 0x6d61676c'65762d6fULL;  // "maglev-o"
constexpr uint64_t kSkipSeed = 0x6d61676c'65762d73ULL;    // "maglev-s"

}  // namespace

bool is_prime(uint32_t n) {
  if (n < 4) return n >= 2;
  if (n % 2 == 0 || n % 3 == 0) return false;
  for (uint32_t d = 5; d <= n / d; d += 6)
    if (n % d == 0 || n % (d + 2) == 0) return false;
  return true;
}

uint32_t maglev_size(size_t backends, uint32_t min) {
  if (backends > kMaxTableSize / 100) return 0;
  uint32_t n = std::max<uint32_t>({min, static_cast<uint32_t>(backends * 100), 2});
  for (; n <= kMaxTableSize; ++n)
    if (is_prime(n)) return n;
  return 0;
}

uint64_t real_id_v6(const uint8_t addr[16], uint16_t port) {
  uint64_t hi = 0;
  uint64_t lo = 0;
  std::memcpy(&hi, addr, 8);
  std::memcpy(&lo, addr + 8, 8);
  // Distinct from every real_id_v4() value only with overwhelming probability; that is all a
  // collision costs (two backends sharing a permutation still get a valid table).
  return mix64(mix64(mix64(hi ^ 0x4c42'7636'0000'0000ULL) ^ lo) ^ port);
}

bool Maglev::build(std::span<const MaglevBackend> backends, uint32_t size) {
  table_.assign(1, kNone);
  active_.clear();
  size_ = 0;
  if (backends.size() > kMaxBackends || size < 2 || size > kMaxTableSize || !is_prime(size))
    return false;

  struct Turn {
    uint64_t id;
    uint64_t acc;  // weight accumulated towards the next turn
    uint32_t weight;
    uint32_t pos;  // next candidate slot of this backend's permutation
    uint32_t skip;
    uint16_t index;
  };
  std::vector<Turn> turns;
  uint64_t sum = 0;
  for (size_t i = 0; i < backends.size(); ++i) {
    const MaglevBackend& b = backends[i];
    if (b.weight == 0) continue;
    turns.push_back(Turn{b.id, 0, b.weight, static_cast<uint32_t>(mix64(b.id ^ kOffsetSeed) % size),
                         static_cast<uint32_t>(mix64(b.id ^ kSkipSeed) % (size - 1) + 1),
                         static_cast<uint16_t>(i)});
    sum += b.weight;
  }
  // Turn order by identity: the table must not depend on the order of the configuration.
  std::sort(turns.begin(), turns.end(), [](const Turn& a, const Turn& b) {
    return a.id != b.id ? a.id < b.id : a.index < b.index;
  });
  table_.assign(size, kNone);
  size_ = size;
  active_.reserve(turns.size());
  for (const Turn& t : turns) active_.push_back(t.index);
  if (turns.empty()) return true;

  const uint64_t threshold = std::max<uint64_t>(1, sum / turns.size());
  uint32_t filled = 0;
  for (;;) {
    for (Turn& t : turns) {
      t.acc += t.weight;
      while (t.acc >= threshold) {
        t.acc -= threshold;
        // Terminates: M is prime, so the permutation reaches every slot and one is free.
        uint32_t p = t.pos;
        while (table_[p] != kNone) {
          p += t.skip;
          if (p >= size) p -= size;
        }
        table_[p] = t.index;
        p += t.skip;
        if (p >= size) p -= size;
        t.pos = p;
        if (++filled == size) return true;
      }
    }
  }
}

uint16_t Maglev::probe(uint64_t hash, const uint8_t* up) const {
  if (active_.empty()) return kNone;
  // Rehash rather than read the neighbouring slots: a backend claims slots with a fixed
  // stride, so neighbours are correlated. With 3 backends weighted 1:2:3, the next slot after
  // the heavy one's held the weight-2 backend for 41 % to 68 % of its flows, depending on the
  // identities, instead of 67 %. Each rehash reads an independent slot, a draw from the
  // weighted mix, and stays a function of the flow.
  // A full table holds no kNone, so up[] is only indexed by real backends here.
  uint64_t x = hash;
  for (uint32_t k = 0; k < kProbes; ++k) {
    x = mix64(x + 0x9e3779b97f4a7c15ULL);
    const uint16_t b = table_[slot(x)];
    if (up[b]) return b;
  }
  // Nearly everything is down: any up member, starting from a place the flow chooses so
  // these flows still spread, deterministically, over what is left.
  const size_t n = active_.size();
  size_t i = static_cast<uint32_t>(x) % n;
  for (size_t k = 0; k < n; ++k) {
    const uint16_t b = active_[i];
    if (up[b]) return b;
    if (++i == n) i = 0;
  }
  return kNone;
}

}  // namespace nf::lb
