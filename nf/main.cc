// nf: the appliance daemon.
//
//   nf [--config FILE]     run (the built-in lab configuration when no file is given)
//   nf --check FILE        validate FILE and exit (0 valid, 1 invalid); needs no EAL
//   nf --print-eal-args    show the EAL arguments the configuration produces
#include <rte_eal.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_ring.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <iostream>
#include <thread>

#include "config/config.h"
#include "drivers-glue/ports.h"
#include "nf/dhcp/service.h"
#include "nf/dns/engine.h"
#include "nf/runtime/log.h"
#include "nf/runtime/mgmt.h"
#include "nf/runtime/worker.h"
#include "pipelines/lb/lb_stage.h"

namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};

void on_signal(int sig) {
  if (sig == SIGHUP)
    g_reload.store(true);
  else
    g_stop.store(true);
}

int usage() {
  std::cerr << "usage: nf [--config FILE] | --check FILE | --print-eal-args [--config FILE]\n";
  return 2;
}

int worker_main(void* arg) {
  return static_cast<nf::Worker*>(arg)->run();
}

}  // namespace

int main(int argc, char** argv) {
  std::string path, check;
  bool print_eal = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "--config" || a == "-c") && i + 1 < argc)
      path = argv[++i];
    else if (a == "--check" && i + 1 < argc)
      check = argv[++i];
    else if (a == "--print-eal-args")
      print_eal = true;
    else
      return usage();
  }
  if (!check.empty()) {
    nf::LoadResult r = nf::load_config(check);
    if (auto* e = std::get_if<std::vector<nf::ConfigError>>(&r)) {
      std::cerr << nf::format_errors(*e);
      return 1;
    }
    std::cout << check << ": ok\n";
    return 0;
  }
  nf::LoadResult r = path.empty() ? nf::load_config("<built-in lab>", &nf::builtin_lab_config())
                                  : nf::load_config(path);
  if (auto* e = std::get_if<std::vector<nf::ConfigError>>(&r)) {
    std::cerr << nf::format_errors(*e);
    return 1;
  }
  auto cfg = std::make_shared<const nf::Config>(std::move(std::get<nf::Config>(r)));
  if (print_eal) {
    for (const auto& a : nf::glue::eal_args(*cfg, argv[0], false,
                                            std::max(1u, std::thread::hardware_concurrency())))
      std::cout << a << "\n";
    return 0;
  }

  std::vector<std::string> eal_used;
  if (std::string e = nf::glue::eal_init(*cfg, argv[0], eal_used); !e.empty()) {
    log_error("%s", e.c_str());
    return 1;
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGHUP, on_signal);
  std::signal(SIGPIPE, SIG_IGN);

  nf::glue::Ports ports;
  if (std::string e = ports.setup(*cfg); !e.empty()) {
    log_error("%s", e.c_str());
    rte_eal_cleanup();
    return 1;
  }

  // The runtime lives in this scope so that its DPDK objects (FIBs, rings' users) are gone
  // before rte_eal_cleanup().
  {
    const auto nw = static_cast<uint32_t>(cfg->worker_lcores.size());
    nf::Rcu rcu(nw);
    nf::Published<nf::Snapshot> snapshot;
    std::vector<std::unique_ptr<nf::Worker>> workers;
    std::vector<rte_ring*> punt_rings, inject_rings, handoff_rings;

    // The DHCP service recovers its leases before any stage exists (stages load them).
    std::unique_ptr<nf::dhcp::Service> dhcp;
    if (cfg->dhcp.enabled) {
      dhcp = std::make_unique<nf::dhcp::Service>(cfg, static_cast<uint16_t>(nw));
      if (std::string e = dhcp->open(); !e.empty()) {
        log_error("dhcp: %s", e.c_str());
        return 1;
      }
      const auto& rep = dhcp->recovery();
      for (const auto& m : rep.messages) log_warn("dhcp journal: %s", m.c_str());
      log_info("dhcp journal %s: %lu records read, %lu live leases, %lu damaged, %lu torn bytes",
               cfg->dhcp.journal_dir.c_str(), static_cast<unsigned long>(rep.records),
               static_cast<unsigned long>(rep.live), static_cast<unsigned long>(rep.bad_records),
               static_cast<unsigned long>(rep.torn_bytes));
      // The journal thread shares the management lcore's CPU (it mostly sleeps in fdatasync).
      const unsigned ncpu = std::max(1u, std::thread::hardware_concurrency());
      if (std::string e = dhcp->start(static_cast<int>(cfg->management_lcore % ncpu)); !e.empty()) {
        log_error("dhcp: %s", e.c_str());
        return 1;
      }
    }
    auto dns_stats = std::make_unique<nf::dns::StatsTable>();
    auto lb_stats = std::make_unique<nf::lb::StatsTable>();
    nf::StageEnv env;
    env.lb_stats = lb_stats.get();
    env.dns_stats = dns_stats.get();
    env.workers = static_cast<uint16_t>(nw);
    env.dhcp = dhcp.get();
    env.dhcp_max_leases = cfg->dhcp.max_leases;
    env.lb_max_flows = cfg->lb.max_flows;
    auto nat_stats = std::make_unique<nf::nat::StatsTable>();
    env.nat_stats = nat_stats.get();
    env.nat_max_sessions = cfg->nat.max_sessions;
    env.pool = ports.pool();
    env.tsc_hz = rte_get_tsc_hz();
    env.tsc0 = rte_get_tsc_cycles();
    env.unix_ms0 = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
    if (nw > 1) {
      for (uint32_t w = 0; w < nw; ++w) {
        std::string hn = "nf_handoff_" + std::to_string(w);
        rte_ring* hr =
            rte_ring_create(hn.c_str(), 4096, static_cast<int>(rte_socket_id()), RING_F_SC_DEQ);
        if (!hr) {
          log_error("cannot create the handoff ring of worker %u", w);
          return 1;
        }
        handoff_rings.push_back(hr);
      }
    }
    for (uint32_t w = 0; w < nw; ++w) {
      std::string pn = "nf_punt_" + std::to_string(w), in = "nf_inject_" + std::to_string(w);
      rte_ring* pr = rte_ring_create(pn.c_str(), 4096, static_cast<int>(rte_socket_id()),
                                     RING_F_SP_ENQ | RING_F_SC_DEQ);
      rte_ring* ir = rte_ring_create(in.c_str(), 4096, static_cast<int>(rte_socket_id()),
                                     RING_F_SP_ENQ | RING_F_SC_DEQ);
      if (!pr || !ir) {
        log_error("cannot create rings for worker %u", w);
        return 1;
      }
      punt_rings.push_back(pr);
      inject_rings.push_back(ir);
      nf::WorkerSetup ws;
      ws.id = static_cast<uint16_t>(w);
      ws.lcore = cfg->worker_lcores[w];
      ws.ports = &ports;
      for (const auto& name : cfg->pipeline)
        ws.chain.push_back(nf::find_stage(name)->make(ws.id, env));
      if (dhcp) {
        ws.commit_ring = dhcp->commit_ring(ws.id);
        ws.durable_ring = dhcp->durable_ring(ws.id);
      }
      if (!handoff_rings.empty()) {
        ws.handoff_in = handoff_rings[w];
        ws.handoff_rings = handoff_rings;
      }
      ws.punt_ring = pr;
      ws.inject_ring = ir;
      ws.rcu = &rcu;
      ws.snapshot = &snapshot;
      ws.stop = &g_stop;
      ws.drain_tsc = rte_get_tsc_hz() / 1000000 * cfg->tx_drain_us;
      ws.idle_sleep_us = cfg->worker_idle_sleep_us;
      workers.push_back(std::make_unique<nf::Worker>(std::move(ws)));
    }

    nf::Management::Setup ms{
        cfg,     &ports,    &workers, punt_rings, inject_rings,    &rcu,           &snapshot,
        &g_stop, &g_reload, path,     dhcp.get(), dns_stats.get(), lb_stats.get(), nat_stats.get()};
    nf::Management mgmt(std::move(ms));
    if (std::string e = mgmt.start(); !e.empty()) {
      log_error("%s", e.c_str());
      g_stop = true;
      return 1;
    }
    for (auto& w : workers) {
      if (rte_eal_remote_launch(worker_main, w.get(), w->lcore()) != 0) {
        log_error("cannot launch worker on lcore %u", w->lcore());
        g_stop = true;
      }
    }
    log_info("nf running: %zu port(s), %u worker(s), pipeline of %zu stage(s); %s",
             cfg->ports.size(), nw, cfg->pipeline.size(),
             path.empty() ? "built-in lab configuration" : path.c_str());
    mgmt.run();
    rte_eal_mp_wait_lcore();
    if (dhcp) dhcp->stop();
    // Workers are offline: every deferred free is due now, and all of it must happen before
    // EAL releases its memory below.
    rcu.reclaim();
  }
  log_info("nf stopping");
  ports.stop();
  rte_eal_cleanup();
  return 0;
}
