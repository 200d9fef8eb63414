#include "nf/lb/scheduler.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>

namespace nf::lb {

const char* algo_name(Algo a) {
  switch (a) {
    case Algo::kRoundRobin:
      return "rr";
    case Algo::kWeightedRoundRobin:
      return "wrr";
    case Algo::kLeastConn:
      return "lc";
    case Algo::kSourceHash:
      return "sh";
    case Algo::kMaglev:
      return "maglev";
  }
  return "?";
}

bool parse_algo(std::string_view s, Algo& out) {
  static constexpr std::pair<std::string_view, Algo> kNames[] = {
      {"rr", Algo::kRoundRobin},
      {"wrr", Algo::kWeightedRoundRobin},
      {"lc", Algo::kLeastConn},
      {"wlc", Algo::kLeastConn},
      {"sh", Algo::kSourceHash},
      {"maglev", Algo::kMaglev},
      // The configuration's spellings (config/lb_loader.cc).
      {"round_robin", Algo::kRoundRobin},
      {"weighted_round_robin", Algo::kWeightedRoundRobin},
      {"least_conn", Algo::kLeastConn},
      {"source_hash", Algo::kSourceHash}};
  for (const auto& [name, a] : kNames) {
    if (s == name) {
      out = a;
      return true;
    }
  }
  return false;
}

uint64_t hash_source_v6(const uint8_t addr[16]) {
  uint64_t hi = 0;
  uint64_t lo = 0;
  std::memcpy(&hi, addr, 8);
  std::memcpy(&lo, addr + 8, 8);
  return mix64(mix64(hi ^ 0x73726336'00000000ULL) ^ lo);
}

bool Pool::build(Algo algo, std::span<const Real> reals, uint32_t table_min) {
  algo_ = algo;
  n_ = 0;
  ids_.clear();
  weights_.clear();
  by_id_.clear();
  maglev_ = Maglev{};
  const uint32_t m = reals.size() <= kMaxBackends ? maglev_size(reals.size(), table_min) : 0;
  if (m == 0) return false;
  std::vector<MaglevBackend> mb;
  mb.reserve(reals.size());
  for (const Real& r : reals) {
    ids_.push_back(r.id);
    weights_.push_back(r.weight);
    mb.push_back(MaglevBackend{r.id, r.weight});
  }
  if (!maglev_.build(mb, m)) return false;
  n_ = static_cast<uint32_t>(reals.size());
  for (uint32_t i = 0; i < n_; ++i) by_id_.emplace_back(ids_[i], static_cast<uint16_t>(i));
  std::sort(by_id_.begin(), by_id_.end());
  return true;
}

uint16_t Pool::find(uint64_t id) const {
  auto it = std::lower_bound(by_id_.begin(), by_id_.end(), std::pair<uint64_t, uint16_t>{id, 0});
  return it != by_id_.end() && it->first == id ? it->second : kNone;
}

void PoolCursor::reset(const Pool& pool) {
  n_ = pool.size();
  current_.assign(n_, 0);
  active_.assign(n_, 0);
  next_ = 0;
}

void PoolCursor::rebind(const Pool& from, const Pool& to) {
  std::vector<std::pair<uint64_t, uint32_t>> old;  // (id, active), sorted by id
  for (uint32_t i = 0; i < from.size() && i < n_; ++i) old.emplace_back(from.id(i), active_[i]);
  std::sort(old.begin(), old.end());
  reset(to);
  for (uint32_t i = 0; i < n_; ++i) {
    auto it = std::lower_bound(old.begin(), old.end(), std::pair<uint64_t, uint32_t>{to.id(i), 0});
    if (it != old.end() && it->first == to.id(i)) {
      active_[i] = it->second;
      it->second = 0;  // a duplicated identity takes the count once
    }
  }
}

uint16_t pick(const Pool& pool, PoolCursor& cursor, std::span<const uint8_t> up, uint64_t flow_hash,
              uint64_t src_hash) {
  const uint32_t n = pool.n_;
  if (cursor.n_ != n || up.size() < n) return kNone;
  const uint32_t* w = pool.weights_.data();
  const uint8_t* ok = up.data();
  switch (pool.algo_) {
    case Algo::kMaglev:
      return pool.maglev_.lookup_up(flow_hash, ok);
    case Algo::kSourceHash:
      return pool.maglev_.lookup_up(src_hash, ok);
    case Algo::kRoundRobin: {
      uint32_t i = cursor.next_ < n ? cursor.next_ : 0;
      for (uint32_t k = 0; k < n; ++k) {
        if (w[i] != 0 && ok[i] != 0) {
          cursor.next_ = i + 1 == n ? 0 : i + 1;
          return static_cast<uint16_t>(i);
        }
        if (++i == n) i = 0;
      }
      return kNone;
    }
    case Algo::kWeightedRoundRobin: {
      // One pass, selects instead of branches: where the maximum lies is data, and selects
      // cost the same whatever the weights and health (about 2.5 cycles per real).
      int64_t* cur = cursor.current_.data();
      int64_t total = 0;
      int64_t best_cur = INT64_MIN;
      uint32_t best = kNone;
      for (uint32_t i = 0; i < n; ++i) {
        const int64_t we = ok[i] != 0 ? int64_t{w[i]} : 0;  // 0: down or drained
        cur[i] += we;
        total += we;
        const int64_t key = we != 0 ? cur[i] : INT64_MIN;
        const bool better = key > best_cur;  // strict: the first of equals wins, as nginx
        best = better ? i : best;
        best_cur = better ? key : best_cur;
      }
      if (best == kNone) return kNone;
      cur[best] -= total;
      return static_cast<uint16_t>(best);
    }
    case Algo::kLeastConn: {
      // Smallest active/weight, compared as a * best_w < best_a * w (32-bit values, no
      // overflow in 64). Starting as 1/0 (infinite), any eligible real beats it; a weight
      // of 0 (down or drained) never wins. Scanned from next_ so ties rotate.
      const uint32_t* act = cursor.active_.data();
      const uint32_t start = cursor.next_ < n ? cursor.next_ : 0;
      uint64_t best_a = 1;
      uint64_t best_w = 0;
      uint32_t best = kNone;
      auto scan = [&](uint32_t from, uint32_t to) {
        for (uint32_t i = from; i < to; ++i) {
          const uint64_t we = ok[i] != 0 ? w[i] : 0;
          const bool better = act[i] * best_w < best_a * we;
          best = better ? i : best;
          best_a = better ? act[i] : best_a;
          best_w = better ? we : best_w;
        }
      };
      scan(start, n);
      scan(0, start);
      if (best == kNone) return kNone;
      cursor.next_ = best + 1 == n ? 0 : best + 1;
      return static_cast<uint16_t>(best);
    }
  }
  return kNone;
}

}  // namespace nf::lb
