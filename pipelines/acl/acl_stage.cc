#include "pipelines/acl/acl_stage.h"

#include <rte_lpm.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <new>

#include "nf/runtime/snapshot.h"

namespace nf::acl {
namespace {

// Line numbers are where a rule sits, not what it does: moving a set in the file keeps its
// counters.
bool same_rule(const AclRuleConfig& a, const AclRuleConfig& b) {
  return a.permit == b.permit && a.src == b.src && a.dst == b.dst && a.proto == b.proto &&
         a.sport_lo == b.sport_lo && a.sport_hi == b.sport_hi && a.dport_lo == b.dport_lo &&
         a.dport_hi == b.dport_hi && a.name == b.name;
}

bool same_set(const AclSet& a, const AclSet& b) {
  if (a.port != b.port || a.out != b.out || a.default_permit != b.default_permit ||
      a.rules.size() != b.rules.size())
    return false;
  for (size_t i = 0; i < a.rules.size(); ++i)
    if (!same_rule(a.rules[i], b.rules[i])) return false;
  return true;
}

Rule to_rule(const AclRuleConfig& r) {
  Rule out;
  out.action = r.permit ? Action::kPermit : Action::kDeny;
  out.src = r.src;
  out.dst = r.dst;
  out.proto = r.proto == 0 ? kAnyProto : r.proto;
  out.sport = {r.sport_lo, r.sport_hi};
  out.dport = {r.dport_lo, r.dport_hi};
  out.name = r.name;
  return out;
}

std::shared_ptr<SetRt> build_set(const Config& c, const AclSet& s, size_t index, uint16_t workers,
                                 uint64_t generation, std::string* error) {
  auto set = std::make_shared<SetRt>();
  set->conf = s;
  set->port = static_cast<uint16_t>(s.port);
  set->port_name = c.ports[static_cast<size_t>(s.port)].name;
  set->out = s.out;
  std::vector<Rule> rules;
  rules.reserve(s.rules.size());
  for (const AclRuleConfig& r : s.rules) rules.push_back(to_rule(r));
  std::string err;
  set->cls = Classifier::build(rules, &err, s.default_permit ? Action::kPermit : Action::kDeny);
  if (!set->cls) {
    if (error)
      *error = "acl.sets[" + std::to_string(index) + "] (port \"" + set->port_name + "\" " +
               (s.out ? "out" : "in") + "): " + err;
    return nullptr;
  }
  set->slots = static_cast<uint32_t>(rules.size()) + 1;
  set->stride = (set->slots + 7u) & ~7u;
  set->workers = workers;
  set->since_generation = generation;
  // One 64-byte-aligned block, a row of whole cache lines per worker: no two workers ever
  // write the same line.
  const size_t words = size_t{set->stride} * workers + 8;
  set->counter_mem = std::make_unique<uint64_t[]>(words);  // zeroed
  auto addr = reinterpret_cast<uintptr_t>(set->counter_mem.get());
  set->counters = set->counter_mem.get() + ((64 - (addr & 63)) & 63) / 8;
  return set;
}

constexpr uint8_t kNoPort = 0xff;

}  // namespace

std::shared_ptr<Runtime> build_runtime(const Config& c, const Runtime* previous, uint16_t workers,
                                       uint64_t generation, std::string* error) {
  auto rt = std::make_shared<Runtime>();
  for (size_t i = 0; i < c.acl.sets.size(); ++i) {
    const AclSet& s = c.acl.sets[i];
    if (s.port < 0 || static_cast<size_t>(s.port) >= kMaxPorts) continue;  // the loader refused
    std::shared_ptr<SetRt> set;
    if (previous)
      for (const auto& old : previous->sets)
        if (old->workers == workers && same_set(old->conf, s)) set = old;
    if (!set) set = build_set(c, s, i, workers, generation, error);
    if (!set) return nullptr;
    (s.out ? rt->out : rt->in)[s.port] = set.get();
    (s.out ? rt->has_out : rt->has_in) = true;
    rt->sets.push_back(std::move(set));
  }
  return rt;
}

std::vector<std::pair<uint32_t, uint16_t>> gateway_ports(const Config& c,
                                                         const std::vector<RibEntry>& rib) {
  std::vector<std::pair<uint32_t, uint16_t>> out;
  for (const RouteConfig& r : c.routes) {
    if (r.blackhole) continue;
    const int port = c.connected_port(r.via);
    if (port < 0) continue;
    for (const RibEntry& e : rib)
      if (e.prefix == r.prefix && nh::type(e.nh) == nh::kAdj)
        out.emplace_back(nh::value(e.nh), static_cast<uint16_t>(port));
  }
  return out;
}

std::string show(const Runtime* rt) {
  if (!rt) return "the acl stages are not configured\n";
  std::string out;
  char buf[512];
  auto line = [&](const char* fmt, auto... args) {
    std::snprintf(buf, sizeof buf, fmt, args...);
    out += buf;
    out += '\n';
  };
  if (rt->sets.empty()) out += "no sets\n";
  for (const auto& sp : rt->sets) {
    const SetRt& s = *sp;
    line("set %s %s: default %s, %zu rules, classify %s, counting since generation %" PRIu64,
         s.port_name.c_str(), s.out ? "out" : "in", s.conf.default_permit ? "permit" : "deny",
         s.conf.rules.size(), s.cls->algorithm(), s.since_generation);
    line("  %5s  %-6s  %14s  %s", "#", "action", "matches", "rule");
    for (size_t k = 0; k < s.conf.rules.size(); ++k) {
      const AclRuleConfig& r = s.conf.rules[k];
      line("  %5zu  %-6s  %14" PRIu64 "  %s (line %d)", k + 1, r.permit ? "permit" : "deny",
           s.matches(static_cast<uint32_t>(k + 1)), r.name.c_str(), r.line);
    }
    line("  %5s  %-6s  %14" PRIu64 "  %s", "-", s.conf.default_permit ? "permit" : "deny",
         s.matches(0), "default");
  }
  return out;
}

void AclStage::process(Burst& in, const StageCtx& ctx, Emit& out) noexcept {
  const Snapshot& snap = *ctx.snap;
  const Runtime* rt = snap.acl.get();
  if (!rt || !(out_ ? rt->has_out : rt->has_in)) {
    out.next_all(in);
    return;
  }
  const SetRt* const* sets = out_ ? rt->out : rt->in;
  const uint16_t n = in.n;

  // The port each packet is classified for (kNoPort: no set applies, the packet passes).
  alignas(16) uint32_t dst[kMaxBurst];
  alignas(16) uint32_t nh[kMaxBurst];
  uint8_t port[kMaxBurst];
  if (out_) {
    // Routed exactly as ip4_forward will route it: the same FIB, the same key.
    for (uint16_t i = 0; i < n; ++i) dst[i] = meta(in.pkts[i]).ip_dst;
    uint16_t i4 = 0;
    for (; i4 + 4 <= n; i4 += 4) {
      const xmm_t ip4 = _mm_load_si128(reinterpret_cast<const __m128i*>(&dst[i4]));
      snap.fib->lookupx4(ip4, &nh[i4], UINT32_MAX);
    }
    for (; i4 < n; ++i4) {
      uint32_t r;
      nh[i4] = snap.fib->lookup(dst[i4], r) == 0 ? r : UINT32_MAX;
    }
    const std::atomic<uint64_t>* const adj = snap.adj->words();
    for (uint16_t i = 0; i < n; ++i) {
      const uint32_t r = nh[i];
      uint32_t p = kNoPort;
      if (r != UINT32_MAX) {
        switch (nh::type(r)) {
          case nh::kAdj: {
            const uint64_t w = adj[nh::value(r)].load(std::memory_order_relaxed);
            if (AdjTable::valid(w)) {
              p = AdjTable::port(w);
            } else {
              for (const auto& [slot, gp] : rt->gateway_ports)
                if (slot == nh::value(r)) p = gp;
            }
            break;
          }
          case nh::kGlean:
            p = nh::value(r);
            break;
          default:  // local (not leaving), blackhole (dropped by ip4_forward)
            break;
        }
      }
      port[i] = p < kMaxPorts ? static_cast<uint8_t>(p) : kNoPort;
    }
  } else {
    for (uint16_t i = 0; i < n; ++i) {
      rte_mbuf* m = in.pkts[i];
      PacketMeta& md = meta(m);
      // A packet handed over by another worker was classified there.
      port[i] = (md.flags & meta_flags::kAclChecked) || m->port >= kMaxPorts
                    ? kNoPort
                    : static_cast<uint8_t>(m->port);
      md.flags |= meta_flags::kAclChecked;
    }
  }

  // Normalise, and group the packets to classify by port (a stable counting sort).
  enum : uint8_t { kPass, kClassify, kBad };
  Tuple tup[kMaxBurst];
  uint8_t state[kMaxBurst];
  uint16_t count[kMaxPorts] = {};
  for (uint16_t i = 0; i < n; ++i) {
    state[i] = kPass;
    const uint8_t p = port[i];
    if (p == kNoPort || !sets[p]) continue;
    rte_mbuf* m = in.pkts[i];
    const PacketMeta& md = meta(m);
    const uint8_t* ip = rte_pktmbuf_mtod_offset(m, const uint8_t*, md.l3_off);
    const uint32_t avail = m->data_len > md.l3_off ? m->data_len - md.l3_off : 0u;
    // RFC 1812 5.3.1: an expiring packet never leaves; ip4_forward answers it with ICMP time
    // exceeded, which an output filter must not suppress.
    if (out_ && avail > 8 && ip[8] <= 1) continue;
    if (!normalise(ip, avail, &tup[i])) [[unlikely]] {
      state[i] = kBad;
      continue;
    }
    state[i] = kClassify;
    count[p]++;
  }
  uint16_t start[kMaxPorts];
  uint16_t fill[kMaxPorts];
  uint16_t total = 0;
  for (uint16_t p = 0; p < kMaxPorts; ++p) {
    start[p] = fill[p] = total;
    total = static_cast<uint16_t>(total + count[p]);
  }
  const Tuple* keys[kMaxBurst];
  uint8_t who[kMaxBurst];
  for (uint16_t i = 0; i < n; ++i) {
    if (state[i] != kClassify) continue;
    const uint16_t j = fill[port[i]]++;
    keys[j] = &tup[i];
    who[j] = static_cast<uint8_t>(i);
  }
  uint32_t res[kMaxBurst];
  bool deny[kMaxBurst] = {};
  for (uint16_t p = 0; p < kMaxPorts && total; ++p) {
    if (!count[p]) continue;
    const SetRt& s = *sets[p];
    s.cls->classify(keys + start[p], count[p], res + start[p]);
    uint64_t* const row = s.row(worker_);
    for (uint16_t j = start[p]; j < start[p] + count[p]; ++j) {
      row[res[j]]++;
      deny[who[j]] = s.cls->action(res[j]) == Action::kDeny;
    }
  }

  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = in.pkts[i];
    if (state[i] == kBad) [[unlikely]]
      out.drop(m, kMalformed);
    else if (deny[i])
      out.drop(m, kDeny);
    else
      out.next(m);
  }
}

}  // namespace nf::acl
