#include "nf/route/fib.h"

#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_rcu_qsbr.h>

#include <algorithm>

namespace nf {

std::unique_ptr<Fib> Fib::create_empty(const std::string& name, uint32_t rules, rte_rcu_qsbr* qsbr,
                                       std::string& err) {
  rte_lpm_config cfg{};
  cfg.max_rules = rules + 64;
  // One tbl8 group (1 KiB) per /24 that holds longer prefixes: neighbour /32s may each sit in
  // their own /24 on a large connected prefix, so size for one group per rule, up to 64 Ki.
  cfg.number_tbl8s = std::min<uint32_t>(cfg.max_rules, 1u << 16);
  rte_lpm* l = rte_lpm_create(name.c_str(), SOCKET_ID_ANY, &cfg);
  if (!l) {
    err = "rte_lpm_create(" + name + "): " + rte_strerror(rte_errno);
    return nullptr;
  }
  std::unique_ptr<Fib> f(new Fib(l));
  if (qsbr) {
    // Experimental in 22.11 (ALLOW_EXPERIMENTAL_API), but it is what makes tbl8 reuse safe
    // under lock-free readers; the alternative would be a full FIB copy per neighbour change.
    rte_lpm_rcu_config rc{};
    rc.v = qsbr;
    rc.mode = RTE_LPM_QSBR_MODE_DQ;
    if (rte_lpm_rcu_qsbr_add(l, &rc) != 0) {
      err = "rte_lpm_rcu_qsbr_add: " + std::string(rte_strerror(rte_errno));
      return nullptr;
    }
  }
  return f;
}

bool Fib::load(const std::vector<RibEntry>& rib, std::string& err) {
  // Shorter prefixes first, so a default route expanded into two /1s (see add) never
  // overwrites a configured /1.
  std::vector<RibEntry> sorted = rib;
  std::stable_sort(sorted.begin(), sorted.end(), [](const RibEntry& a, const RibEntry& b) {
    return a.prefix.len < b.prefix.len;
  });
  for (const RibEntry& e : sorted) {
    if (int rc = add(e.prefix, e.nh); rc != 0) {
      err = "rte_lpm_add(" + format_prefix(e.prefix) + "): " + rte_strerror(-rc);
      return false;
    }
  }
  return true;
}

std::unique_ptr<Fib> Fib::create(const std::string& name, const std::vector<RibEntry>& rib,
                                 uint32_t extra_rules, rte_rcu_qsbr* qsbr, std::string& err) {
  auto f = create_empty(name, static_cast<uint32_t>(rib.size()) + extra_rules, qsbr, err);
  if (!f || !f->load(rib, err)) return nullptr;
  return f;
}

Fib::~Fib() {
  rte_lpm_free(lpm_);
}

}  // namespace nf
