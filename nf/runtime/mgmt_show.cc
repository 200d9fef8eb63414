// The text views of `nfctl show ...`. Counters are read without stopping the workers: each
// 64-bit counter has one writer, and a view is a moment's sum, not a transaction.
#include <rte_lcore.h>

#include <cinttypes>
#include <cstdio>
#include <sstream>

#include "nf/runtime/mgmt.h"

#include "nf/dhcp/service.h"
#include "pipelines/acl/acl_stage.h"
#include "pipelines/lb/lb_stage.h"

namespace nf {

namespace {

std::string line(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string line(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return std::string(buf) + "\n";
}

uint64_t rd(const uint64_t& v) {
  return __atomic_load_n(&v, __ATOMIC_RELAXED);
}

}  // namespace

std::string Management::show_ports() const {
  std::string out;
  for (uint16_t p = 0; p < s_.ports->count(); ++p) {
    const PortConfig& pc = cfg_->ports[p];
    glue::PortStats st = s_.ports->stats(p);
    uint64_t rx = 0, tx = 0, refused = 0;
    for (const auto& w : *s_.workers) {
      rx += rd(w->counters().ports[p].rx);
      tx += rd(w->counters().ports[p].tx);
      refused += rd(w->counters().ports[p].tx_refused);
    }
    std::string addrs;
    for (const IfAddr& a : pc.addresses)
      addrs += (addrs.empty() ? "" : " ") + format_ipv4(a.addr) + "/" + std::to_string(a.len);
    out += line("port %u \"%s\"  %s  driver %s  link %s", p, pc.name.c_str(), pc.device.c_str(),
                s_.ports->driver(p).c_str(), st.link_up ? "up" : "down");
    out += line("  mac %s  mtu %u  rss %s  addresses %s", format_mac(s_.ports->mac(p)).c_str(),
                pc.mtu, s_.ports->rss(p) ? "on" : "off", addrs.empty() ? "-" : addrs.c_str());
    out += line("  rx %" PRIu64 "  tx %" PRIu64 "  tx_refused %" PRIu64
                "  (device: ipackets %" PRIu64 " opackets %" PRIu64 " imissed %" PRIu64
                " ierrors %" PRIu64 " oerrors %" PRIu64 " rx_nombuf %" PRIu64 ")",
                rx, tx, refused, st.ipackets, st.opackets, st.imissed, st.ierrors, st.oerrors,
                st.rx_nombuf);
  }
  return out;
}

std::string Management::show_lcores() const {
  std::string out =
      line("management lcore %u  snapshot generation %" PRIu64, rte_lcore_id(), generation_);
  for (const auto& w : *s_.workers) {
    const WorkerCounters& c = w->counters();
    uint64_t loops = rd(c.loops), busy = rd(c.busy_loops);
    out += line("worker %u lcore %u  loops %" PRIu64
                "  busy %.1f%%  cycles/busy-loop %.0f  generation %" PRIu64 "  injected %" PRIu64
                "  punt_ring_full %" PRIu64,
                w->id(), w->lcore(), loops,
                loops ? 100.0 * static_cast<double>(busy) / static_cast<double>(loops) : 0.0,
                busy ? static_cast<double>(rd(c.busy_cycles)) / static_cast<double>(busy) : 0.0,
                rd(c.snapshot_generation), rd(c.injected), rd(c.punt_ring_full));
  }
  return out;
}

std::string Management::show_stages() const {
  std::string out =
      line("%-8s %-12s %12s %14s %9s %12s %12s %9s %9s %10s %9s %9s", "worker", "stage", "calls",
           "packets", "cyc/pkt", "next", "tx", "reply", "punt", "drop", "commit", "handoff");
  auto row = [&](const char* who, const std::string& stage, const StageCounters& c) {
    out +=
        line("%-8s %-12s %12" PRIu64 " %14" PRIu64 " %9.1f %12" PRIu64 " %12" PRIu64 " %9" PRIu64
             " %9" PRIu64 " %10" PRIu64 " %9" PRIu64 " %9" PRIu64,
             who, stage.c_str(), c.calls, c.pkts,
             c.timed_pkts ? static_cast<double>(c.cycles) / static_cast<double>(c.timed_pkts) : 0.0,
             c.next, c.tx, c.reply, c.punt, c.drop, c.commit, c.handoff);
  };
  auto add = [](StageCounters& t, const StageCounters& c) {
    t.calls += rd(c.calls), t.pkts += rd(c.pkts), t.cycles += rd(c.cycles);
    t.timed_pkts += rd(c.timed_pkts), t.next += rd(c.next), t.tx += rd(c.tx);
    t.reply += rd(c.reply), t.punt += rd(c.punt), t.drop += rd(c.drop);
    t.commit += rd(c.commit), t.handoff += rd(c.handoff);
  };
  for (size_t si = 0; si < cfg_->pipeline.size(); ++si) {
    StageCounters tot{}, polled{};
    for (const auto& w : *s_.workers) {
      StageCounters c{};
      add(c, w->counters().stages[si]);
      add(polled, w->counters().polled[si]);
      row(std::to_string(w->id()).c_str(), cfg_->pipeline[si], c);
      add(tot, c);
    }
    if (s_.workers->size() > 1) row("all", cfg_->pipeline[si], tot);
    if (polled.commit || polled.tx || polled.drop)
      row("own", cfg_->pipeline[si] + " (poll)", polled);
  }
  return out;
}

std::string Management::show_dhcp() const {
  if (!s_.dhcp) return "the dhcp stage is not configured\n";
  return s_.dhcp->show_stats();
}

std::string Management::show_health() const {
  if (!monitor_) return "no health checks run (the exception path is not configured)\n";
  return monitor_->show();
}

std::string Management::show_dns() const {
  const Snapshot* snap = s_.snapshot->load();
  if (!snap->dns) return "the dns stage is not configured\n";
  const dns::Runtime& rt = *snap->dns;
  const dns::View& v = *rt.view;
  std::string out = "zones:\n";
  for (const dns::ZoneInfo& z : v.zones)
    out += line("  %-32s serial %u, %u records", z.name.c_str(), z.serial, z.records);
  out += line("gslb names: %zu", v.gslbs.size());
  static const char* kPolicy[] = {"round_robin", "weighted", "failover", "geo", "lowest_rtt"};
  static const char* kDown[] = {"all", "backup", "servfail"};
  for (const dns::Gslb& g : v.gslbs) {
    out += line("  %s policy %s, %u answer(s), ttl %u, all down: %s", g.name.c_str(),
                kPolicy[static_cast<int>(g.policy)], g.answers, g.ttl,
                kDown[static_cast<int>(g.all_down)]);
    for (uint16_t i = 0; i < g.mem_n; ++i) {
      const dns::Member& m = v.members[g.mem_off + i];
      std::string health = "no check (up)";
      if (m.target != dns::kNone && rt.slots && rt.slot_of_target[m.target] != dns::kNone) {
        const health::Slot& sl = rt.slots[rt.slot_of_target[m.target]];
        const uint32_t rtt = sl.rtt_us.load(std::memory_order_relaxed);
        health = std::string(sl.up.load(std::memory_order_relaxed) ? "up" : "DOWN") + " (check " +
                 v.targets[m.target].check + ", rtt " +
                 (rtt ? std::to_string(rtt) + " us" : std::string("-")) + ")";
      }
      out += line("    %-15s weight %-5u region %-8s %s", format_ipv4(m.addr).c_str(), m.weight,
                  v.regions[m.region].empty() ? "-" : v.regions[m.region].c_str(), health.c_str());
    }
  }
  dns::ThreadCounters sum{};
  // Counters is summed as an array of uint64_t: it must stay nothing else.
  static_assert(sizeof(dns::Counters) % sizeof(uint64_t) == 0);
  auto add = [&](const dns::ThreadCounters& t) {
    const auto* a = reinterpret_cast<const uint64_t*>(&t.c);
    auto* b = reinterpret_cast<uint64_t*>(&sum.c);
    for (size_t i = 0; i < sizeof(dns::Counters) / 8; ++i) b[i] += rd(a[i]);
    sum.rrl_dropped += rd(t.rrl_dropped);
    sum.rrl_slipped += rd(t.rrl_slipped);
  };
  if (s_.dns_stats) {
    for (size_t w = 0; w < s_.workers->size(); ++w) add(s_.dns_stats->workers[w]);
  }
  const dns::Counters& c = sum.c;
  out += line("udp (all workers): %" PRIu64 " queries: %" PRIu64 " answers, %" PRIu64
              " nodata, %" PRIu64 " nxdomain, %" PRIu64 " referrals, %" PRIu64 " refused, %" PRIu64
              " formerr, %" PRIu64 " notimp, %" PRIu64 " servfail, %" PRIu64 " badvers",
              c.queries, c.noerror, c.nodata, c.nxdomain, c.referral, c.refused, c.formerr,
              c.notimp, c.servfail, c.badvers);
  out += line("  truncated %" PRIu64 ", edns %" PRIu64 ", ecs %" PRIu64 ", any %" PRIu64
              ", gslb %" PRIu64 " (all down %" PRIu64 "), unanswerable %" PRIu64,
              c.truncated, c.edns, c.ecs, c.any, c.gslb, c.gslb_all_down, c.dropped);
  out += line("  rrl: %u/s per /%d and worker, slip %u: %" PRIu64 " dropped, %" PRIu64 " slipped",
              rt.rrl_rate, __builtin_popcount(rt.rrl_mask), rt.rrl_slip, sum.rrl_dropped,
              sum.rrl_slipped);
  if (tcp_dns_) {
    const dns::ThreadCounters& t = s_.dns_stats ? s_.dns_stats->tcp : tcp_own_;
    const dns::TcpServerStats ts = tcp_dns_->stats();
    out += line("tcp: %" PRIu64 " queries (%" PRIu64 " answers, %" PRIu64
                " nxdomain), %zu open, %" PRIu64 " accepted, %" PRIu64 " idle closed, %" PRIu64
                " limit closed, %" PRIu64 " errors",
                rd(t.c.queries), rd(t.c.noerror), rd(t.c.nxdomain), tcp_dns_->connections(),
                ts.accepted, ts.idle_closed, ts.limit_closed, ts.errors);
  }
  return out;
}

std::string Management::show_leases(const std::string& filter) const {
  if (!s_.dhcp) return "the dhcp stage is not configured\n";
  return s_.dhcp->show_leases(filter);
}

bool Management::dhcp_release(const std::string& what, std::string& out) {
  if (!s_.dhcp) {
    out = "the dhcp stage is not configured\n";
    return false;
  }
  return s_.dhcp->release(what, out);
}

std::string Management::show_drops() const {
  std::string out = "drops:\n";
  for (size_t si = 0; si < cfg_->pipeline.size(); ++si) {
    const StageDescriptor* d = find_stage(cfg_->pipeline[si]);
    for (size_t r = 0; r < d->drop_names.size(); ++r) {
      uint64_t n = 0;
      for (const auto& w : *s_.workers) n += rd(w->counters().stages[si].drops[r]);
      if (n)
        out += line("  %-40s %" PRIu64,
                    (std::string(d->name) + "." + std::string(d->drop_names[r])).c_str(), n);
    }
  }
  uint64_t ring_full = 0, refused = 0, chain_end = 0, commit_full = 0, handoff_full = 0;
  for (const auto& w : *s_.workers) {
    ring_full += rd(w->counters().punt_ring_full);
    commit_full += rd(w->counters().commit_ring_full);
    handoff_full += rd(w->counters().handoff_ring_full);
    chain_end += rd(w->counters().chain_end);
    for (uint16_t p = 0; p < s_.ports->count(); ++p)
      refused += rd(w->counters().ports[p].tx_refused);
  }
  if (ring_full) out += line("  %-40s %" PRIu64, "worker.punt_ring_full", ring_full);
  if (refused) out += line("  %-40s %" PRIu64, "worker.tx_refused", refused);
  if (commit_full) out += line("  %-40s %" PRIu64, "worker.commit_ring_full", commit_full);
  if (handoff_full) out += line("  %-40s %" PRIu64, "worker.handoff_ring_full", handoff_full);
  if (chain_end) out += line("  %-40s %" PRIu64, "worker.end_of_chain", chain_end);
  if (c_.inject_full)
    out += line("  %-40s %" PRIu64, "management.inject_ring_full", c_.inject_full);
  if (c_.neigh_queue_dropped)
    out += line("  %-40s %" PRIu64, "management.neigh_queue_overflow", c_.neigh_queue_dropped);
  if (c_.neigh_unreachable)
    out += line("  %-40s %" PRIu64, "management.neigh_unresolved", c_.neigh_unreachable);
  if (c_.local_unhandled)
    out += line("  %-40s %" PRIu64, "management.local_unhandled", c_.local_unhandled);
  if (c_.fragment_failed)
    out += line("  %-40s %" PRIu64, "management.fragment_failed", c_.fragment_failed);
  out += "punts:\n";
  for (int r = 1; r < static_cast<int>(PuntReason::kCount); ++r) {
    uint64_t n = 0;
    for (const auto& w : *s_.workers) n += rd(w->counters().punt_by_reason[r]);
    if (n) out += line("  %-40s %" PRIu64, kPuntReasonNames[r], n);
  }
  return out;
}

std::string Management::show_routes() const {
  const Snapshot* snap = s_.snapshot->load();
  std::string out = line("%-20s %-10s %s", "prefix", "type", "next hop");
  auto describe = [&](uint32_t n) -> std::string {
    switch (nh::type(n)) {
      case nh::kLocal:
        return "local";
      case nh::kBlackhole:
        return "blackhole";
      case nh::kGlean:
        return "connected  port " + cfg_->ports[nh::value(n)].name;
      case nh::kAdj: {
        uint32_t ip = neigh_->ip_of_slot(nh::value(n));
        int p = cfg_->connected_port(ip);
        return "via        " + format_ipv4(ip) + " port " + (p >= 0 ? cfg_->ports[p].name : "?");
      }
    }
    return "?";
  };
  for (const RibEntry& e : snap->rib) {
    std::string d = describe(e.nh);
    out += line("%-20s %s", format_prefix(e.prefix).c_str(), d.c_str());
  }
  for (const NeighView& v : neigh_->list(now_ms())) {
    if (v.state == NeighState::kIncomplete || v.state == NeighState::kFailed) continue;
    out += line("%-20s neighbour  %s port %s", format_prefix({v.ip, 32}).c_str(),
                format_mac(v.mac).c_str(), cfg_->ports[v.port].name.c_str());
  }
  return out;
}

std::string Management::show_neighbours() const {
  std::string out = line("%-16s %-18s %-8s %-11s %6s %8s %s", "address", "mac", "port", "state",
                         "queued", "age_ms", "");
  for (const NeighView& v : neigh_->list(now_ms())) {
    out += line("%-16s %-18s %-8s %-11s %6u %8" PRIu64 " %s", format_ipv4(v.ip).c_str(),
                v.state == NeighState::kIncomplete ? "-" : format_mac(v.mac).c_str(),
                cfg_->ports[v.port].name.c_str(), neigh_state_name(v.state), v.queued, v.age_ms,
                v.gateway ? "gateway" : "");
  }
  const NeighStats& s = neigh_->stats();
  out += line("requests_sent %" PRIu64 "  resolved %" PRIu64 "  failed %" PRIu64
              "  queue_dropped %" PRIu64 "  table_full %" PRIu64 "  evicted %" PRIu64,
              s.requests_sent, s.resolved, s.failed, s.queue_dropped, s.table_full, s.evicted);
  return out;
}

std::string Management::show_config() const {
  return "# " + cfg_->file + " (generation " + std::to_string(generation_) + ")\n" + cfg_->text;
}

std::string Management::show_mgmt() const {
  std::string out;
  auto row = [&](const char* n, uint64_t v) { out += line("%-28s %" PRIu64, n, v); };
  row("punts", c_.punts);
  row("arp_requests_answered", c_.arp_requests_answered);
  row("arp_replies_seen", c_.arp_replies_seen);
  row("arp_ignored", c_.arp_ignored);
  row("arp_address_conflict", c_.arp_address_conflict);
  row("gratuitous_arp_sent", c_.garp_sent);
  row("icmp_echo_answered", c_.icmp_echo_answered);
  row("icmp_errors_sent", c_.icmp_errors_sent);
  row("icmp_errors_ratelimited", c_.icmp_errors_ratelimited);
  row("icmp_errors_suppressed", c_.icmp_errors_suppressed);
  row("local_unhandled", c_.local_unhandled);
  row("fragmented", c_.fragmented);
  row("fragments_sent", c_.fragments_sent);
  row("fragment_failed", c_.fragment_failed);
  row("inject_ring_full", c_.inject_full);
  row("alloc_failed", c_.alloc_failed);
  row("neigh_unresolved", c_.neigh_unreachable);
  row("neigh_queue_overflow", c_.neigh_queue_dropped);
  row("reloads", c_.reloads);
  row("reloads_rejected", c_.reloads_rejected);
  row("fib_add_failed", c_.fib_add_failed);
  row("exception_to_kernel", c_.exception_to_kernel);
  row("exception_from_kernel", c_.exception_from_kernel);
  row("exception_errors", c_.exception_errors);
  return out;
}

std::string Management::show_lb() const {
  const Snapshot* snap = s_.snapshot->load();
  if (!snap->lb) return "the lb stage is not configured\n";
  const lb::Runtime& rt = *snap->lb;
  const size_t nw = s_.workers->size();
  std::string out;
  for (const lb::ServiceRt& sv : rt.services) {
    out += line("service %s: %s:%s %s, mode %s, scheduler %s%s", sv.name.c_str(),
                format_ipv4(sv.vip).c_str(), sv.port ? std::to_string(sv.port).c_str() : "*",
                sv.proto == 6 ? "tcp" : "udp", lb_mode_name(static_cast<LbMode>(sv.mode)),
                lb::algo_name(sv.pool.algo()),
                sv.persist_tsc
                    ? (", persistence " + std::to_string(sv.persist_tsc / rt.tsc_hz) + " s").c_str()
                    : "");
    for (size_t i = 0; i < sv.reals.size(); ++i) {
      const lb::RealRt& r = sv.reals[i];
      std::string health = "no check (up)";
      if (r.slot != lb::kNoHealthSlot && rt.slots)
        health = rt.slots[r.slot].up.load(std::memory_order_relaxed) ? "up" : "DOWN";
      uint64_t active = 0;
      for (size_t w = 0; w < nw && w < rt.workers.size(); ++w)
        active += rt.workers[w].cursors[sv.id].active(static_cast<uint16_t>(i));
      out += line("  %-15s port %-5s weight %-5u %-14s active flows %" PRIu64,
                  format_ipv4(r.addr).c_str(), r.port ? std::to_string(r.port).c_str() : "=",
                  r.weight, health.c_str(), active);
    }
  }
  if (!s_.lb_stats) return out;
  out +=
      line("%-7s %10s %12s %12s %10s %10s %10s %10s %8s %12s %8s %8s %12s %10s %10s %10s", "worker",
           "flows", "new_flows", "hits", "replies", "stateless", "handoffs", "table_full", "floods",
           "expired", "icmp_nat", "echo", "cookies_sent", "cookies_ok", "cookies_bad", "proxied");
  for (size_t w = 0; w < nw && w < kMaxWorkers; ++w) {
    const lb::LbWorkerCounters* c = s_.lb_stats->counters[w];
    const lb::FlowTable* t = s_.lb_stats->tables[w];
    if (!c || !t) continue;
    out += line("%-7zu %10" PRIu64 " %12" PRIu64 " %12" PRIu64 " %10" PRIu64 " %10" PRIu64
                " %10" PRIu64 " %10" PRIu64 " %8" PRIu64 " %12" PRIu64 " %8" PRIu64 " %8" PRIu64
                " %12" PRIu64 " %10" PRIu64 " %10" PRIu64 " %10" PRIu64,
                w, c->flows, c->new_flows, c->hits, c->replies, c->stateless, c->handoffs,
                t->counters().insert_full, c->flood_windows, t->counters().expired,
                c->icmp_translated, c->echo_replies, c->syncookies_sent, c->syncookies_ok,
                c->syncookies_bad, c->synproxy_established);
  }
  return out;
}

// Counter rows are read while their workers write them: a sum may be a burst old, never torn.
std::string Management::show_acl() const {
  return acl::show(s_.snapshot->load()->acl.get());
}

std::string Management::show_nat() const {
  const Snapshot* snap = s_.snapshot->load();
  return nat::show(snap->nat.get(), s_.nat_stats, s_.workers->size());
}

}  // namespace nf
