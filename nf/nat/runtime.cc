#include "nf/nat/runtime.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

namespace nf::nat {

void EgressMap::build(const Config& c) {
  std::vector<std::pair<Prefix, int>> all;
  for (size_t pi = 0; pi < c.ports.size(); ++pi) {
    for (const IfAddr& a : c.ports[pi].addresses) {
      all.emplace_back(a.prefix(), static_cast<int>(pi));
      all.emplace_back(Prefix{a.addr, 32}, kNoPort);  // the appliance itself
    }
  }
  for (const RouteConfig& r : c.routes)
    all.emplace_back(r.prefix, r.blackhole ? kNoPort : c.connected_port(r.via));
  levels_.clear();
  for (int len = 32; len >= 0; --len) {
    Level lv{static_cast<uint8_t>(len), {}};
    for (const auto& [p, port] : all)
      if (p.len == len) lv.prefixes.emplace_back(p.addr, port);
    if (lv.prefixes.empty()) continue;
    // Later entries win on equal prefixes, as a route added after a connected prefix would;
    // the configuration rejects duplicates anyway.
    std::stable_sort(lv.prefixes.begin(), lv.prefixes.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    levels_.push_back(std::move(lv));
  }
}

int EgressMap::lookup(uint32_t addr) const {
  for (const Level& lv : levels_) {
    const uint32_t net = lv.len == 0 ? 0 : addr & (~uint32_t{0} << (32 - lv.len));
    auto it = std::upper_bound(lv.prefixes.begin(), lv.prefixes.end(), net,
                               [](uint32_t v, const auto& e) { return v < e.first; });
    if (it != lv.prefixes.begin() && std::prev(it)->first == net) return std::prev(it)->second;
  }
  return kNoPort;
}

int Runtime::rule_for(uint32_t src, uint32_t dst) const {
  int egress = -2;  // looked up at most once, and only when some rule holds src
  for (size_t i = 0; i < rules.size(); ++i) {
    const NatDynamic& r = rules[i];
    if (std::none_of(r.inside.begin(), r.inside.end(),
                     [&](const Prefix& p) { return p.contains(src); }))
      continue;
    if (egress == -2) egress = this->egress.lookup(dst);
    if (egress == r.port) return static_cast<int>(i);
  }
  return -1;
}

bool Runtime::is_external(uint32_t addr) const {
  return std::any_of(rules.begin(), rules.end(),
                     [&](const NatDynamic& r) { return r.addr == addr; }) ||
         std::any_of(statics.begin(), statics.end(),
                     [&](const NatStatic& s) { return s.addr == addr; });
}

void Runtime::index_statics() {
  ext_keys_.clear();
  target_keys_.clear();
  for (size_t i = 0; i < statics.size(); ++i) {
    const NatStatic& s = statics[i];
    ext_keys_.emplace_back(key(s.addr, s.proto, s.port), static_cast<int>(i));
    target_keys_.emplace_back(key(s.to, s.proto, s.to_port), static_cast<int>(i));
  }
  std::sort(ext_keys_.begin(), ext_keys_.end());
  std::sort(target_keys_.begin(), target_keys_.end());
}

int Runtime::find(const std::vector<std::pair<uint64_t, int>>& v, uint64_t k) {
  auto it = std::lower_bound(v.begin(), v.end(), std::pair<uint64_t, int>{k, -1});
  return it != v.end() && it->first == k ? it->second : -1;
}

std::shared_ptr<const Runtime> build_runtime(const Config& c, uint64_t tsc_hz, uint16_t workers,
                                             uint64_t generation) {
  if (!c.nat.enabled) return nullptr;
  auto rt = std::make_shared<Runtime>();
  rt->tsc_hz = tsc_hz;
  rt->generation = generation;
  const NatTimeouts& t = c.nat.timeouts;
  for (uint64_t& v : rt->timeouts.tcp) v = uint64_t{t.tcp_transitory} * tsc_hz;
  rt->timeouts.tcp[static_cast<unsigned>(lb::TcpState::kEstablished)] =
      uint64_t{t.tcp_established} * tsc_hz;
  rt->timeouts.udp = uint64_t{t.udp} * tsc_hz;
  rt->timeouts.icmp = uint64_t{t.icmp} * tsc_hz;
  rt->statics = c.nat.statics;
  rt->index_statics();
  rt->rules = c.nat.dynamics;
  for (const PortConfig& p : c.ports) rt->port_names.push_back(p.name);
  rt->egress.build(c);
  rt->workers.resize(std::max<uint16_t>(workers, 1));
  for (size_t w = 0; w < rt->workers.size(); ++w) {
    for (size_t i = 0; i < rt->rules.size(); ++i) {
      lb::PortAllocator::Config pc;
      pc.lo = rt->rules[i].port_lo;
      pc.hi = rt->rules[i].port_hi;
      pc.workers = static_cast<unsigned>(rt->workers.size());
      for (uint64_t& q : pc.quarantine) q = uint64_t{t.port_reuse} * tsc_hz;
      // Random initial order (RFC 6056): external ports do not reveal the session count.
      pc.seed = generation * 0x9e3779b97f4a7c15ULL + w * 131 + i + 1;
      rt->workers[w].ports.push_back(
          std::make_unique<lb::PortAllocator>(pc, 1, static_cast<unsigned>(w)));
    }
  }
  return rt;
}

namespace {

template <typename... A>
std::string line(const char* fmt, A... a) {
  char b[512];
  std::snprintf(b, sizeof b, fmt, a...);
  return std::string(b) + "\n";
}

}  // namespace

std::string show(const Runtime* rt, const StatsTable* stats, size_t workers) {
  if (!rt) return "the nat stage is not configured\n";
  std::string out;
  auto proto = [](uint8_t p) { return p == 6 ? "tcp" : "udp"; };
  for (const NatStatic& s : rt->statics)
    out += line("forward %s %s:%u -> %s:%u", proto(s.proto), format_ipv4(s.addr).c_str(), s.port,
                format_ipv4(s.to).c_str(), s.to_port);
  for (size_t i = 0; i < rt->rules.size(); ++i) {
    const NatDynamic& r = rt->rules[i];
    std::string in;
    for (const Prefix& p : r.inside) in += (in.empty() ? "" : ",") + format_prefix(p);
    uint64_t used[lb::kPatProtos] = {};
    for (size_t w = 0; w < workers && w < rt->workers.size(); ++w)
      for (size_t p = 0; p < lb::kPatProtos; ++p)
        used[p] += rt->workers[w].ports[i]->pool(0, static_cast<lb::PatProto>(p)).in_use();
    const std::string port = r.port >= 0 && static_cast<size_t>(r.port) < rt->port_names.size()
                                 ? rt->port_names[static_cast<size_t>(r.port)]
                                 : "?";
    out += line("dynamic %s via port %s -> %s ports %u-%u: in use tcp %" PRIu64 " udp %" PRIu64
                " icmp %" PRIu64,
                in.c_str(), port.c_str(), format_ipv4(r.addr).c_str(), r.port_lo, r.port_hi,
                used[0], used[1], used[2]);
  }
  if (!stats) return out;
  out +=
      line("%-7s %10s %10s %10s %10s %12s %12s %10s %10s %10s", "worker", "sessions", "new_static",
           "new_dyn", "mappings", "out_hits", "in_hits", "handoffs", "icmp_nat", "expired");
  for (size_t w = 0; w < workers && w < kMaxWorkers; ++w) {
    const NatWorkerCounters* c = stats->counters[w];
    const lb::FlowTable* t = stats->tables[w];
    if (!c || !t) continue;
    out += line("%-7zu %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %12" PRIu64
                " %12" PRIu64 " %10" PRIu64 " %10" PRIu64 " %10" PRIu64,
                w, c->sessions, c->new_static, c->new_dynamic, c->mappings, c->out_hits, c->in_hits,
                c->handoffs, c->icmp_translated, t->counters().expired);
  }
  return out;
}

}  // namespace nf::nat
