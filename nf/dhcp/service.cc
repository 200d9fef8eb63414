#include "nf/dhcp/service.h"

#include <pthread.h>
#include <rte_lcore.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <ctime>

#include "nf/core/stage.h"
#include "nf/runtime/log.h"

namespace nf::dhcp {

namespace {

std::string fmt_mac(const uint8_t* m) {
  char b[24];
  std::snprintf(b, sizeof b, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
  return b;
}

std::string fmt_hex(const uint8_t* p, size_t n) {
  std::string s;
  char b[4];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(b, sizeof b, i ? ":%02x" : "%02x", p[i]);
    s += b;
  }
  return s;
}

int64_t unix_now() {
  return static_cast<int64_t>(std::time(nullptr));
}

}  // namespace

Service::Service(std::shared_ptr<const Config> cfg, uint16_t workers)
    : cfg_(std::move(cfg)),
      workers_(workers),
      recovered_(workers),
      shards_(workers),
      stage_stats_(workers) {}

Service::~Service() {
  stop();
  for (auto* v : {&commit_, &durable_, &command_})
    for (rte_ring* r : *v) {
      // Whatever is still queued is freed with its ring (shutdown: nothing more leaves).
      void* m;
      while (rte_ring_dequeue(r, &m) == 0)
        if (v != &command_) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
      rte_ring_free(r);
    }
}

std::string Service::open() {
  std::string e = journal_.open(cfg_->dhcp.journal_dir, cfg_->dhcp.sync, report_);
  if (!e.empty()) return e;
  std::vector<LeaseRecord> all = journal_.state();
  std::sort(all.begin(), all.end(),
            [](const LeaseRecord& a, const LeaseRecord& b) { return a.seq < b.seq; });
  for (const LeaseRecord& r : all) {
    const ClientKey k = r.client();
    const uint16_t w =
        static_cast<uint16_t>(workers_ > 1 ? (k.len ? k.hash() : uint64_t{r.addr}) % workers_ : 0);
    recovered_[w].push_back(r);
  }
  return "";
}

std::vector<LeaseRecord> Service::take_recovered(uint16_t w) {
  return std::move(recovered_[w]);
}

std::string Service::start(int cpu) {
  for (uint16_t w = 0; w < workers_; ++w) {
    auto mk = [&](const char* what, unsigned flags) {
      const std::string n = std::string("nf_dhcp_") + what + std::to_string(w);
      return rte_ring_create(n.c_str(), 8192, static_cast<int>(rte_socket_id()), flags);
    };
    commit_.push_back(mk("c", RING_F_SP_ENQ | RING_F_SC_DEQ));
    durable_.push_back(mk("d", RING_F_SP_ENQ | RING_F_SC_DEQ));
    command_.push_back(mk("x", RING_F_SP_ENQ | RING_F_SC_DEQ));
    if (!commit_.back() || !durable_.back() || !command_.back())
      return "cannot create the DHCP rings for worker " + std::to_string(w);
  }
  thread_ = std::thread([this] { run(); });
  pthread_setname_np(thread_.native_handle(), "nf-journal");
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(static_cast<unsigned>(cpu), &set);
    pthread_setaffinity_np(thread_.native_handle(), sizeof set, &set);
  }
  return "";
}

void Service::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  journal_.wait_compaction();
}

void Service::attach(uint16_t w, const Shard* s, const StageStats* st) {
  shards_[w] = s;
  stage_stats_[w] = st;
}

void Service::run() {
  constexpr unsigned kMaxBatch = 4096;
  std::vector<rte_mbuf*> mbufs(kMaxBatch);
  std::vector<uint16_t> from(kMaxBatch);
  std::vector<LeaseRecord> recs(kMaxBatch);
  uint32_t idle = 0;
  while (!stop_.load(std::memory_order_relaxed)) {
    unsigned n = 0;
    for (uint16_t w = 0; w < workers_ && n < kMaxBatch; ++w) {
      const unsigned got = rte_ring_sc_dequeue_burst(
          commit_[w], reinterpret_cast<void**>(mbufs.data() + n), kMaxBatch - n, nullptr);
      std::fill(from.begin() + n, from.begin() + n + got, w);
      n += got;
    }
    if (!n) {
      // Nothing to commit: short sleeps for 2 ms after the last batch keep an ACK's delay
      // small while clients are busy; then 1 ms, because every wakeup costs the management
      // lcore's CPU (200 us sleeps took 5 % of it in a VM) and a first ACK can wait 1 ms.
      const long ns = idle++ < 100 ? 20000 : 1000000;
      timespec ts{0, ns};
      nanosleep(&ts, nullptr);
      journal_.maybe_compact(cfg_->dhcp.compact_records);
      continue;
    }
    idle = 0;
    for (unsigned i = 0; i < n; ++i) recs[i] = *record_area(mbufs[i]);
    const auto t0 = std::chrono::steady_clock::now();
    const bool ok = journal_.append({recs.data(), n});
    js_.sync_ns_total += static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
            .count());
    js_.batches++;
    js_.records += n;
    js_.max_batch = std::max<uint64_t>(js_.max_batch, n);
    if (!ok) {
      js_.errors += n;
      log_error("dhcp journal: %s; %u record(s) not durable, their ACKs are not sent",
                journal_.last_error().c_str(), n);
      rte_pktmbuf_free_bulk(mbufs.data(), n);
      continue;
    }
    // Release the ACKs (meta aux == 1) to the worker that built them; the rest were
    // record-only (RELEASE, DECLINE, operator actions).
    for (unsigned i = 0; i < n; ++i) {
      rte_mbuf* m = mbufs[i];
      if (meta(m).aux != 1) {
        rte_pktmbuf_free(m);
        continue;
      }
      if (rte_ring_sp_enqueue(durable_[from[i]], m) != 0) {
        js_.durable_full++;
        rte_pktmbuf_free(m);
        continue;
      }
      js_.acks_released++;
    }
    journal_.maybe_compact(cfg_->dhcp.compact_records);
  }
}

std::string Service::show_leases(const std::string& filter) const {
  auto ip_of = parse_ipv4(filter);
  std::vector<LeaseRecord> all;
  if (ip_of) {
    LeaseRecord r;
    if (journal_.record_for(*ip_of, r)) all.push_back(r);
  } else {
    all = journal_.state();
  }
  std::sort(all.begin(), all.end(),
            [](const LeaseRecord& a, const LeaseRecord& b) { return a.addr < b.addr; });
  const int64_t now = unix_now();
  auto mac_of = parse_mac(filter);
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%-16s %-18s %-9s %10s  %-8s %s\n", "address", "mac", "state",
                "expires_in", "hostname", "client_id");
  out += line;
  size_t shown = 0;
  for (const LeaseRecord& r : all) {
    if (mac_of && std::memcmp(mac_of->b.data(), r.mac, 6) != 0) continue;
    if (ip_of && *ip_of != r.addr) continue;
    const char* st = r.type == RecType::kBind      ? (r.expire > now ? "bound" : "expired")
                     : r.type == RecType::kDecline ? (r.expire > now ? "declined" : "expired")
                                                   : "released";
    if (filter.empty() && std::string(st) != "bound" && std::string(st) != "declined") continue;
    const std::string host(r.host, std::min<size_t>(r.host_len, sizeof r.host));
    std::snprintf(line, sizeof line, "%-16s %-18s %-9s %10" PRId64 "  %-8s %s\n",
                  format_ipv4(r.addr).c_str(), fmt_mac(r.mac).c_str(), st,
                  r.expire > now ? r.expire - now : int64_t{0}, host.empty() ? "-" : host.c_str(),
                  r.key_len ? fmt_hex(r.key, r.key_len).c_str() : "-");
    out += line;
    shown++;
  }
  if (!filter.empty() && !shown) return "no lease for " + filter + "\n";
  out += std::to_string(shown) + " lease(s)" +
         (filter.empty() ? " (bound or declined; give an address or MAC for any state)" : "") +
         "\n";
  return out;
}

std::string Service::show_stats() const {
  static const char* kTypes[] = {"",    "discover", "offer",   "request", "decline",
                                 "ack", "nak",      "release", "inform"};
  std::string out;
  char line[256];
  uint64_t by_type[9] = {};
  uint64_t handoff = 0;
  ShardStats tot{};
  uint64_t cap = 0, used = 0;
  for (uint16_t w = 0; w < workers_; ++w) {
    if (stage_stats_[w]) {
      for (int t = 0; t < 9; ++t) by_type[t] += stage_stats_[w]->by_type[t];
      handoff += stage_stats_[w]->handed_off;
    }
    if (const Shard* s = shards_[w]) {
      const ShardStats& x = s->stats();
      tot.offers += x.offers;
      tot.acks += x.acks;
      tot.naks += x.naks;
      tot.informs += x.informs;
      tot.releases += x.releases;
      tot.declines += x.declines;
      tot.rapid_acks += x.rapid_acks;
      tot.expired += x.expired;
      tot.offers_timed_out += x.offers_timed_out;
      tot.quarantine_ended += x.quarantine_ended;
      tot.bound += x.bound;
      cap += s->capacity();
      used += s->used();
      std::snprintf(line, sizeof line, "worker %u: bound %" PRIu64 ", table %u/%u\n", w, x.bound,
                    s->used(), s->capacity());
      out += line;
    }
  }
  out += "received:";
  for (int t = 1; t < 9; ++t)
    if (t == 1 || t == 3 || t == 4 || t == 7 || t == 8)
      out += std::string(" ") + kTypes[t] + " " + std::to_string(by_type[t]);
  out += "\n";
  std::snprintf(line, sizeof line,
                "sent: offer %" PRIu64 " ack %" PRIu64 " (rapid %" PRIu64 ") nak %" PRIu64
                " inform-ack %" PRIu64 "\n",
                tot.offers, tot.acks, tot.rapid_acks, tot.naks, tot.informs);
  out += line;
  std::snprintf(line, sizeof line,
                "leases: bound %" PRIu64 ", released %" PRIu64 ", declined %" PRIu64
                ", expired %" PRIu64 ", offers timed out %" PRIu64 ", quarantines ended %" PRIu64
                "\n",
                tot.bound, tot.releases, tot.declines, tot.expired, tot.offers_timed_out,
                tot.quarantine_ended);
  out += line;
  std::snprintf(line, sizeof line, "handed to the owning worker: %" PRIu64 "\n", handoff);
  out += line;
  std::snprintf(line, sizeof line,
                "journal %s: %" PRIu64 " records in %" PRIu64 " syncs (largest group %" PRIu64
                ", mean sync %.1f us), ACKs released %" PRIu64 ", errors %" PRIu64
                ", compactions %" PRIu64 ", segment %u, sync %s\n",
                journal_.dir().c_str(), js_.records, js_.batches, js_.max_batch,
                js_.batches ? static_cast<double>(js_.sync_ns_total) / 1000.0 /
                                  static_cast<double>(js_.batches)
                            : 0.0,
                js_.acks_released, js_.errors, journal_.compactions(), journal_.segment(),
                cfg_->dhcp.sync ? "on (fdatasync before every ACK)" : "OFF (not durable)");
  out += line;
  std::snprintf(line, sizeof line,
                "recovery: %" PRIu64 " records, %" PRIu64 " live leases, %" PRIu64
                " damaged records skipped, %" PRIu64 " torn bytes cut\n",
                report_.records, report_.live, report_.bad_records, report_.torn_bytes);
  out += line;
  for (const auto& m : report_.messages) out += "  " + m + "\n";
  return out;
}

bool Service::release(const std::string& what, std::string& out) {
  auto ip = parse_ipv4(what);
  if (!ip) {
    out = "want an IPv4 address, not \"" + what + "\"\n";
    return false;
  }
  auto is_released = [&] {
    LeaseRecord r;
    return journal_.record_for(*ip, r) && r.type == RecType::kRelease;
  };
  LeaseRecord cur;
  if (!journal_.record_for(*ip, cur) || cur.type == RecType::kRelease) {
    out = "no bound or declined lease for " + what + "\n";
    return false;
  }
  if (cur.expire <= unix_now()) {
    out = "the lease for " + what + " has already ended\n";
    return false;
  }
  // The owning worker does it (it owns the lease); the others find nothing and ignore it.
  for (rte_ring* r : command_)
    rte_ring_sp_enqueue(r, reinterpret_cast<void*>(static_cast<uintptr_t>(*ip)));
  for (int i = 0; i < 1000 && !is_released(); ++i) {
    timespec ts{0, 1000000};
    nanosleep(&ts, nullptr);
  }
  if (!is_released()) {
    out = "release of " + what + " was not confirmed by the journal within 1 s\n";
    return false;
  }
  out = "released " + what + " (durable)\n";
  return true;
}

}  // namespace nf::dhcp
