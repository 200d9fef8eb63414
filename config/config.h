// The appliance configuration as parsed and validated from one libconfig file.
//
// load_config() is pure (no EAL): it reads the file, checks every setting against the schema
// documented in config/REFERENCE.md, and returns either a Config or the full list of errors,
// each naming file, line and setting path ("nf.conf:12: ports[1].addresses[0]: ..."). Nothing
// here is half-applied: the runtime only ever sees a Config that passed every check.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/dhcp_config.h"
#include "config/dns_config.h"
#include "config/lb_config.h"
#include "nf/net/addr.h"

namespace nf {

struct ConfigError {
  std::string file;
  int line = 0;
  std::string path;  // setting path, e.g. "ports[1].addresses[0]"
  std::string message;
  std::string str() const;
};

struct PortConfig {
  std::string name;
  std::string device;  // PCI address (0000:00:04.0) or vdev string (net_af_packet0,iface=x)
  std::optional<MacAddr> mac;
  uint16_t mtu = 1500;
  uint16_t rx_desc = 1024;
  uint16_t tx_desc = 1024;
  std::vector<IfAddr> addresses;
  bool is_vdev() const { return device.rfind("net_", 0) == 0; }
};

struct RouteConfig {
  Prefix prefix;
  uint32_t via = 0;  // gateway; 0 with blackhole
  bool blackhole = false;
};

struct StaticNeighbour {
  uint32_t addr = 0;
  MacAddr mac;
  uint16_t port = 0;  // index into Config::ports
};

struct NeighbourParams {
  uint32_t reachable_ms = 30000;  // a resolved entry is re-confirmed after this long
  uint32_t retrans_ms = 1000;     // between ARP requests while resolving or probing
  uint32_t probes = 3;            // unanswered requests before an entry fails
  uint32_t max_entries = 4096;
  uint32_t queue_per_entry = 3;  // packets held per unresolved next hop (Linux unres_qlen)
  uint32_t queue_total = 256;
};

struct Config {
  std::string file;  // where it came from, for messages ("<built-in lab>" for the default)

  // Init-only: changing these needs a restart (a reload that changes them is rejected).
  uint32_t management_lcore = 0;
  std::vector<uint32_t> worker_lcores;
  uint32_t worker_idle_sleep_us = 0;  // sleep between polls when idle (small VMs); 0 = never
  uint32_t mbufs = 16383;
  uint32_t mbuf_cache = 256;
  std::vector<PortConfig> ports;
  std::vector<std::string> pipeline;
  std::string control_socket = "/run/nf/nf.sock";
  std::vector<std::string> eal_args;  // extra EAL arguments, appended verbatim

  // Reloadable.
  std::vector<RouteConfig> routes;
  std::vector<StaticNeighbour> neighbours;
  NeighbourParams neighbour;
  uint32_t icmp_errors_per_sec = 100;  // RFC 1812 4.3.2.8 rate limit for generated errors
  uint32_t garp_count = 3;             // gratuitous ARPs per owned address at start/change
  uint32_t tx_drain_us = 100;
  DhcpConfig dhcp;  // pools and options reload; journal, max_leases are init-only
  DnsConfig dns;    // zones, GSLB names, limits: all reload
  std::vector<health::CheckSpec> health_checks;
  LbConfig lb;    // services, reals, timeouts reload; max_flows is init-only
  NatConfig nat;  // port forwards and PAT reload; max_sessions is init-only
  AclConfig acl;
  ExceptionConfig exception;  // init-only
  // Whether the management lcore runs the kernel exception path (TCP DNS, health checks).
  bool wants_exception_path() const { return (dns.enabled && dns.tcp) || !health_checks.empty(); }

  // The text of the file as loaded, shown by `nfctl show config`.
  std::string text;

  int port_index(std::string_view name) const;
  // The port whose connected prefix holds addr, or -1.
  int connected_port(uint32_t addr) const;
};

using LoadResult = std::variant<Config, std::vector<ConfigError>>;

// Parse and validate. `text` (if non-null) is used instead of reading `file`; `file` is then
// only a name for messages.
LoadResult load_config(const std::string& file, const std::string* text = nullptr);

// The built-in lab configuration (config/lab.conf), used when nf starts without --config.
const std::string& builtin_lab_config();
// Files the built-in configuration refers to (its zone file), by the path it names; null if
// none.
const std::string* builtin_lab_file(const std::string& path);

// Empty when `next` may replace `cur` by reload; otherwise why a restart is needed.
std::vector<ConfigError> reload_blockers(const Config& cur, const Config& next);

std::string format_errors(const std::vector<ConfigError>& errs);

}  // namespace nf
