// The management lcore.
//
// Theory of operation
// -------------------
// One lcore that never touches a NIC queue directly. It drains the workers' punt rings and
// answers what the fast path hands it: ARP (replies for every appliance address, learning per
// RFC 826), ICMP echo to appliance addresses, ICMP errors for forwarded traffic (time
// exceeded, unreachable, fragmentation needed; rate-limited per RFC 1812 4.3.2.8), IPv4
// fragmentation (rte_ip_frag), and next-hop resolution (NeighTable). Packets it sends go to a
// worker's inject ring and leave through that worker's TX queue.
//
// It also owns configuration: reload (SIGHUP or the control socket) parses and validates off
// the fast path, builds a new Snapshot (RIB -> rte_lpm), publishes it, and frees the old one
// after an RCU grace period. A rejected reload changes nothing. Gratuitous ARP goes out for
// every owned address at start and whenever addresses are added.
//
// Everything here runs in one thread; the only shared state is the snapshot pointer, the
// adjacency words and the FIB's neighbour /32s (single writer, lock-free readers).
#pragma once

#include <rte_ring.h>

#include <atomic>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "config/config.h"
#include "drivers-glue/exception.h"
#include "drivers-glue/ports.h"
#include "nf/dns/engine.h"
#include "nf/dns/tcp_server.h"
#include "nf/health/monitor.h"
#include "nf/neigh/adj_table.h"
#include "nf/neigh/neigh_table.h"
#include "nf/runtime/rcu.h"
#include "nf/runtime/snapshot.h"
#include "nf/runtime/worker.h"

namespace nf {

namespace dhcp {
class Service;
}
class ControlServer;

struct MgmtCounters {
  uint64_t punts;
  uint64_t arp_requests_answered;
  uint64_t arp_replies_seen;
  uint64_t arp_ignored;           // not for us, not learnable
  uint64_t arp_address_conflict;  // someone else claims one of our addresses
  uint64_t icmp_echo_answered;
  uint64_t icmp_errors_sent;
  uint64_t icmp_errors_ratelimited;
  uint64_t icmp_errors_suppressed;  // RFC 1812 4.3.2.7: never about errors, fragments, broadcasts
  uint64_t local_unhandled;         // for us, nothing listens (no ICMP sent for broadcasts)
  uint64_t fragmented;
  uint64_t fragments_sent;
  uint64_t fragment_failed;
  uint64_t garp_sent;
  uint64_t inject_full;
  uint64_t alloc_failed;
  uint64_t neigh_unreachable;
  uint64_t neigh_queue_dropped;
  uint64_t reloads;
  uint64_t reloads_rejected;
  uint64_t fib_add_failed;         // neighbour /32s the FIB had no room for
  uint64_t exception_to_kernel;    // local traffic written to the exception path's TUN
  uint64_t exception_from_kernel;  // kernel packets (TCP DNS, health checks) sent out
  uint64_t exception_errors;       // TUN write failures, unroutable kernel packets
};

class Management final : public NeighActions {
 public:
  struct Setup {
    std::shared_ptr<const Config> config;
    glue::Ports* ports;
    std::vector<std::unique_ptr<Worker>>* workers;
    std::vector<rte_ring*> punt_rings;
    std::vector<rte_ring*> inject_rings;
    Rcu* rcu;
    Published<Snapshot>* snapshot;
    std::atomic<bool>* stop;
    std::atomic<bool>* reload_requested;   // set by SIGHUP
    std::string config_path;               // "" for the built-in lab config
    dhcp::Service* dhcp = nullptr;         // when the dhcp stage is configured
    dns::StatsTable* dns_stats = nullptr;  // the dns stage's counters, per worker
    lb::StatsTable* lb_stats = nullptr;    // the lb stage's counters and flow tables
    nat::StatsTable* nat_stats = nullptr;  // the nat stage's counters and session tables
  };
  explicit Management(Setup s);
  ~Management() override;

  // Builds and publishes the first snapshot; "" or an error.
  std::string start();
  int run();  // the loop; returns when *stop is set

  // Control commands (control socket, serial shell). Output text; false on failure.
  bool reload(const std::string& path, std::string& out);
  bool check(const std::string& path, std::string& out) const;
  std::string show_ports() const;
  std::string show_lcores() const;
  std::string show_stages() const;
  std::string show_drops() const;
  std::string show_routes() const;
  std::string show_neighbours() const;
  std::string show_config() const;
  std::string show_mgmt() const;
  std::string show_dhcp() const;
  std::string show_leases(const std::string& filter) const;
  bool dhcp_release(const std::string& what, std::string& out);
  std::string show_dns() const;
  std::string show_health() const;
  std::string show_lb() const;
  std::string show_nat() const;
  std::string show_acl() const;

  // NeighActions.
  void send_request(uint16_t port, uint32_t target, const MacAddr* dst) override;
  void publish(uint32_t slot, uint32_t ip, const MacAddr& mac, uint16_t port) override;
  void unpublish(uint32_t slot, uint32_t ip) override;
  void transmit(void* pkt, uint16_t port, const MacAddr& dst) override;
  void unreachable(void* pkt) override;
  void discard(void* pkt) override;
  uint64_t grace_start() override { return s_.rcu->start(); }
  bool grace_done(uint64_t t) override { return s_.rcu->done(t); }

 private:
  // `touched`: the neighbour table was already synced to `c` when it failed.
  std::unique_ptr<Snapshot> build(const std::shared_ptr<const Config>& c, std::string& err,
                                  bool& touched);
  void handle(rte_mbuf* m);
  void handle_arp(rte_mbuf* m);
  void handle_local(rte_mbuf* m);
  void handle_neigh_miss(rte_mbuf* m);
  void handle_fragment(rte_mbuf* m);
  void icmp_error(rte_mbuf* orig, uint8_t type, uint8_t code, uint32_t extra);
  void send_ip(rte_mbuf* m);  // route an IPv4 packet the management lcore built
  void finish_and_send(rte_mbuf* m, uint16_t port, const MacAddr& dst);
  void inject(rte_mbuf* m, uint16_t port);
  void schedule_garp(const Config& old_or_empty, const Config& next);
  void timers();
  std::string open_exception_path();
  void program_exception_path(const Config& c);
  void poll_exception_path();
  std::vector<health::Monitor::Target> dns_targets(const Config& c);
  std::shared_ptr<const dns::Runtime> build_dns(const Config& c, std::span<const uint32_t> slots,
                                                const health::Slot* slot_base);
  uint64_t now_ms() const;
  bool own_address(uint32_t a, uint16_t port) const;
  uint32_t port_address(uint16_t port) const;

  Setup s_;
  std::shared_ptr<const Config> cfg_;
  std::unique_ptr<AdjTable> adj_;
  std::unique_ptr<NeighTable> neigh_;
  std::unique_ptr<ControlServer> control_;
  // The kernel exception path (TCP DNS, health-check sockets) and what runs on it.
  std::unique_ptr<glue::ExceptionPath> exc_;
  std::unique_ptr<health::Monitor> monitor_;
  std::unique_ptr<dns::TcpServer> tcp_dns_;
  dns::State tcp_state_;
  dns::ThreadCounters tcp_own_{};
  MgmtCounters c_{};
  uint64_t generation_ = 0;
  uint64_t hz_;
  uint64_t next_tick_ = 0;
  double icmp_tokens_ = 0;
  uint64_t icmp_last_ = 0;
  struct Garp {
    uint16_t port;
    uint32_t addr;
    uint32_t left;
    uint64_t next_ms;
  };
  std::vector<Garp> garps_;
  unsigned inject_rr_ = 0;
  uint32_t garp_sip_ = 0;
  uint32_t idle_loops_ = 0;  // non-zero while sending a gratuitous ARP
};

}  // namespace nf
