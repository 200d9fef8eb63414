#include <libconfig.h++>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "config/config.h"
#include "config/loader_util.h"
#include "nf/core/stage.h"

namespace nf {
namespace {

// RTE_MAX_LCORE of Debian's DPDK build; checked against rte_config.h in the EAL glue.
constexpr uint32_t kMaxLcore = 128;
using namespace cfg;  // NOLINT(google-build-using-namespace)
using libconfig::Setting;

void read_lcores(Diag& d, Group& root, Config& c) {
  const Setting* s = root.find("lcores", Setting::TypeGroup, true);
  if (!s) return;
  Group g(d, *s, "lcores");
  g.u32("management", c.management_lcore, 0, kMaxLcore - 1);
  g.u32("worker_idle_sleep_us", c.worker_idle_sleep_us, 0, 10000);
  const Setting* w = g.find("workers", Setting::TypeArray, true);
  if (!w) return;
  std::set<uint32_t> used{c.management_lcore};
  for (int i = 0; i < w->getLength(); ++i) {
    const Setting& e = (*w)[i];
    std::string p = index("lcores.workers", i);
    if (e.getType() != Setting::TypeInt && e.getType() != Setting::TypeInt64) {
      d.error(e, p, "must be an integer lcore id");
      continue;
    }
    long long v = as_int(e);
    if (v < 0 || v >= kMaxLcore) {
      d.error(e, p,
              "lcore " + std::to_string(v) + " out of range [0, " + std::to_string(kMaxLcore - 1) +
                  "]");
      continue;
    }
    if (!used.insert(static_cast<uint32_t>(v)).second) {
      d.error(e, p,
              "lcore " + std::to_string(v) + " is used twice (management and workers must differ)");
      continue;
    }
    c.worker_lcores.push_back(static_cast<uint32_t>(v));
  }
  if (w->getLength() == 0) d.error(*w, "lcores.workers", "at least one worker lcore is needed");
}

void read_ports(Diag& d, Group& root, Config& c) {
  if (!root.setting().exists("ports")) {
    root.find("ports", Setting::TypeList, true);
    return;
  }
  each_group(d, root, "ports", [&](Group& g, int i) {
    PortConfig p;
    g.str("name", p.name, true);
    g.str("device", p.device, true);
    std::string mac;
    if (g.str("mac", mac)) {
      auto m = parse_mac(mac);
      if (!m || m->is_multicast() || m->is_zero())
        d.error(g.setting()["mac"], g.path() + ".mac", "bad unicast MAC address \"" + mac + "\"");
      else
        p.mac = *m;
    }
    g.u16("mtu", p.mtu, 68, 9000);
    g.u16("rx_desc", p.rx_desc, 64, 8192);
    g.u16("tx_desc", p.tx_desc, 64, 8192);
    g.strings(
        "addresses", false, [&](const Setting& e, const std::string& path, const std::string& v) {
          auto a = parse_ifaddr(v);
          if (!a || a->len > 30 || a->len == 0) {
            d.error(e, path, "bad interface address \"" + v + "\" (want a.b.c.d/len, len 1..30)");
            return;
          }
          Prefix pf = a->prefix();
          if (a->addr == pf.addr || a->addr == pf.broadcast() || is_martian_source(a->addr)) {
            d.error(e, path, "\"" + v + "\" is not a usable host address in its prefix");
            return;
          }
          // Overlapping connected prefixes make forwarding ambiguous: refused, except a secondary
          // address in the same prefix on the same port (one connected route, two local hosts).
          auto clash = [&](const PortConfig& other, const std::string& other_name, bool same_port) {
            for (const IfAddr& o : other.addresses) {
              if (o.addr == a->addr) {
                d.error(e, path,
                        "duplicate address " + format_ipv4(a->addr) + " (also on port \"" +
                            other_name + "\")");
                return true;
              }
              if (same_port && o.prefix() == pf) continue;
              if (o.prefix().overlaps(pf)) {
                d.error(e, path,
                        "prefix " + format_prefix(pf) + " overlaps " + format_prefix(o.prefix()) +
                            " on port \"" + other_name + "\"");
                return true;
              }
            }
            return false;
          };
          for (const PortConfig& o : c.ports)
            if (clash(o, o.name, false)) return;
          if (clash(p, p.name, true)) return;
          p.addresses.push_back(*a);
        });
    if (!p.name.empty()) {
      if (c.port_index(p.name) >= 0)
        d.error(g.setting()["name"], g.path() + ".name", "duplicate port name \"" + p.name + "\"");
    }
    if (static_cast<int>(c.ports.size()) >= kMaxPorts) {
      d.error(g.setting(), g.path(), "too many ports (at most " + std::to_string(kMaxPorts) + ")");
      return;
    }
    (void)i;
    c.ports.push_back(std::move(p));
  });
  if (c.ports.empty() && root.setting().exists("ports"))
    d.error(root.setting()["ports"], "ports", "at least one port is needed");
}

// The network or broadcast address of a connected prefix: never a host.
bool is_subnet_edge(const Config& c, uint32_t a) {
  for (const auto& p : c.ports)
    for (const auto& ia : p.addresses) {
      const Prefix pf = ia.prefix();
      if (a == pf.addr || a == pf.broadcast()) return true;
    }
  return false;
}

bool is_own_address(const Config& c, uint32_t a) {
  for (const auto& p : c.ports)
    for (const auto& ia : p.addresses)
      if (ia.addr == a) return true;
  return false;
}

void read_routes(Diag& d, Group& root, Config& c) {
  each_group(d, root, "routes", [&](Group& g, int) {
    RouteConfig r;
    std::string pfx, via;
    const bool has_pfx = g.str("prefix", pfx, true);
    g.boolean("blackhole", r.blackhole);
    const bool has_via = g.str("via", via);
    if (has_pfx) {
      auto p = parse_prefix(pfx);
      if (!p) {
        auto ia = parse_ifaddr(pfx);
        d.error(g.setting()["prefix"], g.path() + ".prefix",
                ia ? "prefix \"" + pfx + "\" has host bits set (did you mean " +
                         format_prefix(ia->prefix()) + "?)"
                   : "bad prefix \"" + pfx + "\" (want a.b.c.d/len)");
        return;
      }
      r.prefix = *p;
    } else {
      return;
    }
    if (r.blackhole == has_via) {
      d.error(g.setting(), g.path(),
              "a route needs exactly one of \"via\" or \"blackhole = true\"");
      return;
    }
    if (has_via) {
      auto a = parse_ipv4(via);
      if (!a) {
        d.error(g.setting()["via"], g.path() + ".via", "bad IPv4 address \"" + via + "\"");
        return;
      }
      if (c.connected_port(*a) < 0) {
        d.error(g.setting()["via"], g.path() + ".via",
                "gateway " + via + " is not in any port's connected prefix");
        return;
      }
      if (is_own_address(c, *a)) {
        d.error(g.setting()["via"], g.path() + ".via", "gateway " + via + " is our own address");
        return;
      }
      if (is_subnet_edge(c, *a)) {
        d.error(g.setting()["via"], g.path() + ".via",
                "gateway " + via + " is the network or broadcast address of its prefix");
        return;
      }
      r.via = *a;
    }
    for (const auto& o : c.routes) {
      if (o.prefix == r.prefix) {
        d.error(g.setting(), g.path(), "duplicate route for " + format_prefix(r.prefix));
        return;
      }
    }
    // Our own /32s (addresses, subnet edges, limited broadcast) are local: a route may not
    // take them over.
    if (r.prefix.len == 32 && (is_own_address(c, r.prefix.addr) ||
                               is_subnet_edge(c, r.prefix.addr) || r.prefix.addr == 0xffffffffu)) {
      d.error(g.setting()["prefix"], g.path() + ".prefix",
              "route " + format_prefix(r.prefix) + " would take over an address of the appliance");
      return;
    }
    for (const auto& p : c.ports)
      for (const auto& ia : p.addresses)
        if (ia.prefix() == r.prefix) {
          d.error(g.setting(), g.path(),
                  "route " + format_prefix(r.prefix) +
                      " duplicates the connected prefix of port \"" + p.name + "\"");
          return;
        }
    c.routes.push_back(r);
  });
}

void read_neighbours(Diag& d, Group& root, Config& c) {
  // Static entries (never aged). Also what the pcap/null throughput harness uses.
  const Setting* s = root.find("neighbour", Setting::TypeGroup, false);
  if (s) {
    Group g(d, *s, "neighbour");
    NeighbourParams& n = c.neighbour;
    g.u32("reachable_ms", n.reachable_ms, 1000, 3600000);
    g.u32("retrans_ms", n.retrans_ms, 100, 60000);
    g.u32("probes", n.probes, 1, 20);
    // Adjacency slots are 20 bits in an LPM next hop; 64 are kept for slots in grace periods.
    g.u32("max_entries", n.max_entries, 16, (1u << 20) - 64);
    g.u32("queue_per_entry", n.queue_per_entry, 0, 64);
    g.u32("queue_total", n.queue_total, 0, 65536);
    each_group(d, g, "static", [&](Group& e, int) {
      StaticNeighbour sn;
      std::string a, m, port;
      // Each is read (and reported if missing) before any verdict.
      const bool has_addr = e.str("address", a, true);
      const bool has_mac = e.str("mac", m, true);
      const bool has_port = e.str("port", port, true);
      if (!has_addr || !has_mac || !has_port) return;
      auto ip = parse_ipv4(a);
      auto mac = parse_mac(m);
      int pi = c.port_index(port);
      if (!ip)
        return d.error(e.setting()["address"], e.path() + ".address",
                       "bad IPv4 address \"" + a + "\"");
      if (!mac || mac->is_multicast() || mac->is_zero())
        return d.error(e.setting()["mac"], e.path() + ".mac",
                       "bad unicast MAC address \"" + m + "\"");
      if (pi < 0)
        return d.error(e.setting()["port"], e.path() + ".port", "no port named \"" + port + "\"");
      if (c.connected_port(*ip) != pi)
        return d.error(e.setting()["address"], e.path() + ".address",
                       a + " is not in a connected prefix of port \"" + port + "\"");
      if (is_own_address(c, *ip) || is_subnet_edge(c, *ip))
        return d.error(e.setting()["address"], e.path() + ".address",
                       a + " is an address of the appliance or of its subnet, not a neighbour");
      sn.addr = *ip;
      sn.mac = *mac;
      sn.port = static_cast<uint16_t>(pi);
      c.neighbours.push_back(sn);
    });
  }
}

void read_pipeline(Diag& d, Group& root, Config& c) {
  bool given = false;
  root.strings("pipeline", false,
               [&](const Setting& e, const std::string& path, const std::string& v) {
                 given = true;
                 if (!find_stage(v)) {
                   std::string known;
                   for (const auto& sd : stage_registry())
                     known += (known.empty() ? "" : ", ") + std::string(sd.name);
                   d.error(e, path, "unknown stage \"" + v + "\" (known: " + known + ")");
                   return;
                 }
                 if (std::find(c.pipeline.begin(), c.pipeline.end(), v) != c.pipeline.end()) {
                   d.error(e, path, "stage \"" + v + "\" appears twice");
                   return;
                 }
                 c.pipeline.push_back(v);
               });
  if (!given) c.pipeline = {"input", "ip4_forward"};
  if (c.pipeline.size() > kMaxStages) {
    d.error(root.setting()["pipeline"], "pipeline",
            "too many stages (at most " + std::to_string(kMaxStages) + ")");
  }
  if (!c.pipeline.empty() && c.pipeline.front() != "input" && root.setting().exists("pipeline"))
    d.error(root.setting()["pipeline"], "pipeline", "the first stage must be \"input\"");
}

}  // namespace

std::string ConfigError::str() const {
  std::string s = file;
  if (line > 0) s += ":" + std::to_string(line);
  s += ": ";
  if (!path.empty()) s += path + ": ";
  return s + message;
}

std::string format_errors(const std::vector<ConfigError>& errs) {
  std::string out;
  for (const auto& e : errs) out += e.str() + "\n";
  return out;
}

int Config::port_index(std::string_view name) const {
  for (size_t i = 0; i < ports.size(); ++i)
    if (ports[i].name == name) return static_cast<int>(i);
  return -1;
}

int Config::connected_port(uint32_t addr) const {
  for (size_t i = 0; i < ports.size(); ++i)
    for (const auto& a : ports[i].addresses)
      if (a.prefix().contains(addr)) return static_cast<int>(i);
  return -1;
}

LoadResult load_config(const std::string& file, const std::string* text) {
  libconfig::Config lc;
  std::string body;
  try {
    if (text) {
      body = *text;
    } else {
      std::ifstream in(file);
      if (!in) return std::vector<ConfigError>{{file, 0, "", "cannot read the file"}};
      std::stringstream ss;
      ss << in.rdbuf();
      body = ss.str();
    }
    lc.readString(body);
  } catch (const libconfig::ParseException& e) {
    return std::vector<ConfigError>{{file, e.getLine(), "", e.getError()}};
  }

  Diag d(file);
  Config c;
  c.file = file;
  c.text = body;
  {
    Group root(d, lc.getRoot(), "");
    read_lcores(d, root, c);
    read_ports(d, root, c);
    read_routes(d, root, c);
    read_neighbours(d, root, c);
    read_pipeline(d, root, c);
    read_dhcp(d, root, c);
    read_health(d, root, c);
    read_exception(d, root, c);
    read_dns(d, root, c);
    read_lb(d, root, c);
    read_nat(d, root, c);
    read_acl(d, root, c);
    if (const Setting* m = root.find("mempool", Setting::TypeGroup, false)) {
      Group g(d, *m, "mempool");
      g.u32("mbufs", c.mbufs, 1023, 1u << 24);
      g.u32("cache", c.mbuf_cache, 0, 512);
    }
    if (const Setting* s = root.find("control", Setting::TypeGroup, false)) {
      Group g(d, *s, "control");
      if (g.str("socket", c.control_socket) &&
          (c.control_socket.empty() || c.control_socket[0] != '/'))
        d.error((*s)["socket"], "control.socket", "must be an absolute path");
    }
    if (const Setting* s = root.find("icmp", Setting::TypeGroup, false)) {
      Group g(d, *s, "icmp");
      g.u32("errors_per_sec", c.icmp_errors_per_sec, 0, 1000000);
    }
    if (const Setting* s = root.find("arp", Setting::TypeGroup, false)) {
      Group g(d, *s, "arp");
      g.u32("gratuitous_count", c.garp_count, 0, 10);
    }
    if (const Setting* s = root.find("eal", Setting::TypeGroup, false)) {
      Group g(d, *s, "eal");
      g.strings("args", false, [&](const Setting&, const std::string&, const std::string& v) {
        c.eal_args.push_back(v);
      });
    }
    root.u32("tx_drain_us", c.tx_drain_us, 10, 100000);
  }
  // A stable order: libconfig reports members in file order, which is what a user reads.
  std::stable_sort(d.errors().begin(), d.errors().end(),
                   [](const ConfigError& a, const ConfigError& b) { return a.line < b.line; });
  if (!d.errors().empty()) return std::move(d.errors());
  return c;
}

std::vector<ConfigError> reload_blockers(const Config& cur, const Config& next) {
  std::vector<ConfigError> out;
  auto add = [&](const std::string& path, const std::string& what) {
    out.push_back({next.file, 0, path, what + " cannot change by reload; restart nf to apply"});
  };
  if (cur.management_lcore != next.management_lcore || cur.worker_lcores != next.worker_lcores ||
      cur.worker_idle_sleep_us != next.worker_idle_sleep_us)
    add("lcores", "the lcore layout");
  if (cur.mbufs != next.mbufs || cur.mbuf_cache != next.mbuf_cache) add("mempool", "the mempool");
  if (cur.pipeline != next.pipeline) add("pipeline", "the stage chain");
  if (cur.control_socket != next.control_socket) add("control.socket", "the control socket");
  if (cur.eal_args != next.eal_args) add("eal.args", "EAL arguments");
  if (cur.dhcp.journal_dir != next.dhcp.journal_dir) add("dhcp.journal", "the lease journal");
  if (cur.dhcp.max_leases != next.dhcp.max_leases) add("dhcp.max_leases", "the lease table size");
  if (cur.dhcp.sync != next.dhcp.sync) add("dhcp.sync", "the journal's sync mode");
  if (cur.lb.max_flows != next.lb.max_flows) add("lb.max_flows", "the flow table size");
  if (cur.nat.max_sessions != next.nat.max_sessions)
    add("nat.max_sessions", "the NAT session table size");
  if (cur.exception.netns != next.exception.netns ||
      cur.exception.interface != next.exception.interface)
    add("exception_path", "the exception path's namespace and interface");
  if (cur.wants_exception_path() != next.wants_exception_path())
    add("dns.tcp", "starting or stopping the exception path (DNS over TCP, health checks)");
  if (cur.neighbour.max_entries != next.neighbour.max_entries)
    add("neighbour.max_entries", "the neighbour table size");
  if (cur.ports.size() != next.ports.size()) {
    add("ports", "the number of ports");
  } else {
    for (size_t i = 0; i < cur.ports.size(); ++i) {
      const auto &a = cur.ports[i], &b = next.ports[i];
      std::string p = "ports[" + std::to_string(i) + "]";
      if (a.name != b.name) add(p + ".name", "a port's name");
      if (a.device != b.device) add(p + ".device", "a port's device");
      if (a.mac != b.mac) add(p + ".mac", "a port's MAC");
      if (a.rx_desc != b.rx_desc || a.tx_desc != b.tx_desc) add(p, "descriptor counts");
    }
  }
  return out;
}

}  // namespace nf
