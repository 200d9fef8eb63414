// The forwarding table: an rte_lpm built from a RIB. Readers (workers) look up concurrently
// with the single writer (the management lcore adding/removing /32 neighbour routes); tbl8
// groups freed by deletes are reclaimed through the shared QSBR variable, so a worker never
// reads a recycled group.
#pragma once

#include <rte_lpm.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nf/route/rib.h"

struct rte_rcu_qsbr;

namespace nf {

class Fib {
 public:
  // nullptr (and a message in `err`) when rte_lpm cannot be created.
  static std::unique_ptr<Fib> create(const std::string& name, const std::vector<RibEntry>& rib,
                                     uint32_t extra_rules, rte_rcu_qsbr* qsbr, std::string& err);
  // An empty table with room for `rules` prefixes (allocation is what usually fails, so callers
  // can do it before anything else changes), and loading a RIB into it.
  static std::unique_ptr<Fib> create_empty(const std::string& name, uint32_t rules,
                                           rte_rcu_qsbr* qsbr, std::string& err);
  bool load(const std::vector<RibEntry>& rib, std::string& err);
  ~Fib();
  Fib(const Fib&) = delete;
  Fib& operator=(const Fib&) = delete;

  // 0 on success; next hop in `nh`.
  int lookup(uint32_t addr, uint32_t& nh) const { return rte_lpm_lookup(lpm_, addr, &nh); }
  // Four at once (SIMD): each result is the next hop, or `miss` when nothing matched.
  void lookupx4(xmm_t ips, uint32_t out[4], uint32_t miss) const {
    rte_lpm_lookupx4(lpm_, ips, out, miss);
  }
  // Bulk: results as rte_lpm_lookup_bulk (RTE_LPM_LOOKUP_SUCCESS flag + next hop).
  void lookup_bulk(const uint32_t* addrs, uint32_t* out, unsigned n) const {
    rte_lpm_lookup_bulk(lpm_, addrs, out, n);
  }
  // rte_lpm has no depth 0: a default route is stored as 0.0.0.0/1 + 128.0.0.0/1, which
  // match exactly what /0 matches and lose to every longer prefix.
  int add(const Prefix& p, uint32_t nh) {
    if (p.len == 0) {
      int rc = rte_lpm_add(lpm_, 0, 1, nh);
      return rc ? rc : rte_lpm_add(lpm_, 0x80000000u, 1, nh);
    }
    return rte_lpm_add(lpm_, p.addr, p.len, nh);
  }
  int del(const Prefix& p) {
    if (p.len == 0) {
      int rc = rte_lpm_delete(lpm_, 0, 1);
      return rc ? rc : rte_lpm_delete(lpm_, 0x80000000u, 1);
    }
    return rte_lpm_delete(lpm_, p.addr, p.len);
  }

 private:
  explicit Fib(rte_lpm* l) : lpm_(l) {}
  rte_lpm* lpm_;
};

}  // namespace nf
