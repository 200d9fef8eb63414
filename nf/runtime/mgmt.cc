#include "nf/runtime/mgmt.h"

#include <rte_arp.h>
#include <rte_cycles.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_ip_frag.h>
#include <rte_lcore.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <sstream>

#include "nf/dhcp/service.h"
#include "nf/net/checksum.h"
#include "nf/net/parse.h"
#include "nf/route/rib.h"
#include "nf/runtime/control.h"
#include "nf/runtime/log.h"
#include "pipelines/acl/acl_stage.h"

namespace nf {

namespace {

constexpr uint16_t kEthLen = sizeof(rte_ether_hdr);
constexpr uint8_t kIcmpDestUnreach = 3;  // RFC 792
constexpr uint8_t kIcmpTimeExceeded = 11;
constexpr uint16_t kMaxFragments = 64;
constexpr uint16_t kIcmpErrorMax = 576;  // RFC 1812 4.3.2.3: whole error datagram at most 576

rte_ipv4_hdr* ip_of(rte_mbuf* m) {
  return rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr*, meta(m).l3_off);
}

void set_eth(rte_mbuf* m, const MacAddr& dst, const MacAddr& src, uint16_t type) {
  auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
  std::memcpy(eth->dst_addr.addr_bytes, dst.b.data(), 6);
  std::memcpy(eth->src_addr.addr_bytes, src.b.data(), 6);
  eth->ether_type = rte_cpu_to_be_16(type);
}

// A configured /32 (a static route to one host) wins over the neighbour's host route.
bool has_route(const Snapshot& s, const Prefix& p) {
  return std::any_of(s.rib.begin(), s.rib.end(), [&](const RibEntry& e) { return e.prefix == p; });
}

}  // namespace

Management::Management(Setup s) : s_(std::move(s)), cfg_(s_.config), hz_(rte_get_timer_hz()) {
  adj_ = std::make_unique<AdjTable>(cfg_->neighbour.max_entries + 64);
  neigh_ = std::make_unique<NeighTable>(cfg_->neighbour, adj_->size(), *this);
}

Management::~Management() = default;

uint64_t Management::now_ms() const {
  return rte_get_timer_cycles() * 1000 / hz_;
}

bool Management::own_address(uint32_t a, uint16_t port) const {
  if (port >= cfg_->ports.size()) return false;
  for (const IfAddr& ia : cfg_->ports[port].addresses)
    if (ia.addr == a) return true;
  return false;
}

uint32_t Management::port_address(uint16_t port) const {
  if (port < cfg_->ports.size() && !cfg_->ports[port].addresses.empty())
    return cfg_->ports[port].addresses.front().addr;
  for (const auto& p : cfg_->ports)
    if (!p.addresses.empty()) return p.addresses.front().addr;
  return 0;
}

std::unique_ptr<Snapshot> Management::build(const std::shared_ptr<const Config>& c,
                                            std::string& err, bool& touched) {
  touched = false;
  auto snap = std::make_unique<Snapshot>();
  snap->generation = generation_ + 1;
  snap->adj = adj_.get();
  if (c->dhcp.enabled && s_.dhcp) snap->dhcp = dhcp::build_view(c, s_.dhcp->blocks());
  snap->nb_ports = s_.ports->count();
  snap->min_mtu = UINT16_MAX;
  for (uint16_t p = 0; p < snap->nb_ports; ++p) {
    snap->ports[p] = PortView::make(s_.ports->mac(p), c->ports[p].mtu);
    snap->min_mtu = std::min(snap->min_mtu, c->ports[p].mtu);
  }

  // Allocate first: it is what can fail, and nothing has changed yet if it does.
  // build_rib's entries (4 per address, 1 per route, the limited broadcast) and a /32 for
  // every neighbour the table can hold.
  uint32_t rules = 1 + static_cast<uint32_t>(c->routes.size()) + c->neighbour.max_entries;
  for (const PortConfig& p : c->ports) rules += 4 * static_cast<uint32_t>(p.addresses.size());
  snap->fib =
      Fib::create_empty("nf_fib_" + std::to_string(snap->generation), rules, s_.rcu->qsbr(), err);
  if (!snap->fib) return nullptr;
  // ACL sets compile here, before anything changes: a set rte_acl refuses rejects the reload
  // as it stands. Unchanged sets are shared with the running snapshot, counters included.
  std::shared_ptr<acl::Runtime> acl_rt;
  if (c->acl.enabled) {
    const Snapshot* cur = s_.snapshot->load();
    acl_rt =
        acl::build_runtime(*c, cur ? cur->acl.get() : nullptr,
                           static_cast<uint16_t>(c->worker_lcores.size()), snap->generation, &err);
    if (!acl_rt) return nullptr;
  }

  auto gateways = [](const Config& cfg) {
    std::vector<std::pair<uint32_t, uint16_t>> g;
    for (const RouteConfig& r : cfg.routes)
      if (!r.blackhole) g.emplace_back(r.via, static_cast<uint16_t>(cfg.connected_port(r.via)));
    return g;
  };
  const auto gws = gateways(*c);
  // The neighbour table must see the new connected prefixes before it decides what to keep.
  // From here on a failure has changed it: the caller re-applies the running configuration.
  touched = true;
  cfg_ = c;
  neigh_->set_params(c->neighbour);
  const std::vector<uint32_t> slots = neigh_->sync(gws, c->neighbours, *c, now_ms());
  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i] >= adj_->size()) {
      err = "neighbour table full: no slot for gateway " + format_ipv4(gws[i].first);
      return nullptr;
    }
  }
  snap->rib = build_rib(*c, [&](uint32_t gw, uint16_t) {
    for (size_t i = 0; i < gws.size(); ++i)
      if (gws[i].first == gw) return slots[i];
    return uint32_t{0};
  });
  if (!snap->fib->load(snap->rib, err)) return nullptr;
  for (const NeighView& v : neigh_->list(now_ms())) {
    if (v.state == NeighState::kIncomplete || v.state == NeighState::kFailed) continue;
    if (!has_route(*snap, {v.ip, 32}) &&
        snap->fib->add({v.ip, 32}, nh::make(nh::kAdj, v.slot)) != 0)
      c_.fib_add_failed++;
  }
  if (acl_rt) {
    acl_rt->gateway_ports = acl::gateway_ports(*c, snap->rib);
    snap->acl = std::move(acl_rt);
  }
  snap->config = c;
  // One set of health targets for every user (the monitor keeps the state of the ones that
  // did not change): the DNS responder's GSLB members first, then the load balancer's reals.
  std::vector<health::Monitor::Target> targets = dns_targets(*c);
  const size_t ndns = targets.size();
  for (const lb::HealthNeed& n : lb::health_needs(c->lb)) {
    health::Monitor::Target mt;
    mt.addr = n.addr;
    mt.label = n.label;
    for (const health::CheckSpec& h : c->health_checks)
      if (h.name == n.check) mt.spec = h;
    targets.push_back(std::move(mt));
  }
  std::vector<uint32_t> hslots;
  if (monitor_)
    hslots = monitor_->set_targets(targets, now_ms());
  else if (!targets.empty())
    log_warn("health checks configured but the exception path is not running: targets count as up");
  const health::Slot* slot_base = monitor_ ? monitor_->slots() : nullptr;
  snap->dns = build_dns(*c, std::span<const uint32_t>(hslots).first(std::min(ndns, hslots.size())),
                        slot_base);
  if (c->lb.enabled) {
    snap->lb = lb::build_runtime(
        *c, std::span<const uint32_t>(hslots).subspan(std::min(ndns, hslots.size())), slot_base,
        rte_get_tsc_hz(), static_cast<uint16_t>(c->worker_lcores.size()), snap->generation, &err);
    if (!snap->lb) return nullptr;
  }
  snap->nat = nat::build_runtime(*c, rte_get_tsc_hz(),
                                 static_cast<uint16_t>(c->worker_lcores.size()), snap->generation);
  if (exc_) program_exception_path(*c);
  return snap;
}

// The responder's runtime view: compiled data from the configuration, plus the health slots
// of its GSLB members (registering the targets with the monitor, which keeps the state of
// targets that did not change).
std::vector<health::Monitor::Target> Management::dns_targets(const Config& c) {
  std::vector<health::Monitor::Target> targets;
  if (c.dns.enabled && c.dns.view) {
    for (const dns::Target& t : c.dns.view->targets) {
      health::Monitor::Target mt;
      mt.addr = t.addr;
      mt.label = t.label;
      for (const health::CheckSpec& h : c.health_checks)
        if (h.name == t.check) mt.spec = h;
      targets.push_back(std::move(mt));
    }
  }
  return targets;
}

std::shared_ptr<const dns::Runtime> Management::build_dns(const Config& c,
                                                          std::span<const uint32_t> slots,
                                                          const health::Slot* slot_base) {
  auto rt = std::make_shared<dns::Runtime>();
  rt->slot_of_target.assign(slots.begin(), slots.end());
  rt->slots = slot_base;
  if (!c.dns.enabled || !c.dns.view) return nullptr;
  rt->view = c.dns.view;
  rt->listen = c.dns.listen;
  if (rt->listen.empty())
    for (const PortConfig& p : c.ports)
      for (const IfAddr& a : p.addresses) rt->listen.push_back(a.addr);
  rt->udp_max = c.dns.udp_max;
  rt->rrl_rate = c.dns.rrl_rate;
  rt->rrl_slip = c.dns.rrl_slip;
  rt->rrl_mask = Prefix{0, c.dns.rrl_prefix}.mask();
  for (const Prefix& p : c.dns.rrl_exempt) {
    rt->rrl_exempt.push_back(p.addr);
    rt->rrl_exempt.push_back(p.mask());
  }
  return rt;
}

// ---- the kernel exception path ---------------------------------------------------------------

std::string Management::open_exception_path() {
  if (!cfg_->wants_exception_path()) return "";
  uint16_t mtu = UINT16_MAX;
  for (const PortConfig& p : cfg_->ports) mtu = std::min(mtu, p.mtu);
  std::string err;
  exc_ = glue::ExceptionPath::open(cfg_->exception.netns, cfg_->exception.interface, mtu, err);
  if (!exc_) return "exception path (namespace " + cfg_->exception.netns + "): " + err;
  monitor_ = std::make_unique<health::Monitor>(
      [this](int d, int t, int p) { return exc_->socket(d, t, p); },
      [](const std::string& line) { log_info("%s", line.c_str()); });
  if (cfg_->dns.enabled && cfg_->dns.tcp) {
    const int fd = exc_->socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int one = 1;
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(dns::kPort);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(fd, 256) != 0) {
      std::string e = std::string("DNS over TCP: cannot listen on port 53: ") + strerror(errno);
      if (fd >= 0) close(fd);
      return e;
    }
    dns::ThreadCounters* tc = s_.dns_stats ? &s_.dns_stats->tcp : &tcp_own_;
    tcp_dns_ = std::make_unique<dns::TcpServer>(
        fd,
        [this, tc](const uint8_t* q, size_t qlen, uint8_t* out, size_t cap,
                   uint32_t client) -> size_t {
          const Snapshot* snap = s_.snapshot->load();
          if (!snap->dns || qlen > cap) return 0;
          std::memmove(out, q, qlen);
          const dns::Env env = snap->dns->env();
          return dns::answer(out, static_cast<uint32_t>(qlen), static_cast<uint32_t>(cap), true,
                             client, env, tcp_state_, tc->c);
        },
        cfg_->dns.tcp_idle_ms);
  }
  log_info("exception path: TUN %s in network namespace %s (ip netns exec %s ...)",
           cfg_->exception.interface.c_str(), cfg_->exception.netns.c_str(),
           cfg_->exception.netns.c_str());
  return "";
}

// The namespace holds every appliance address and a route for each connected prefix and
// configured route, sourced from the address the fast path would use, so the kernel's
// packets leave with the right source and go back through us.
void Management::program_exception_path(const Config& c) {
  std::vector<uint32_t> addrs;
  std::vector<glue::ExceptionRoute> routes;
  for (const PortConfig& p : c.ports)
    for (const IfAddr& a : p.addresses) {
      addrs.push_back(a.addr);
      const Prefix pf = a.prefix();
      // One route per prefix, from the port's first address on it: the kernel's sockets
      // (health probes) use that source, never a second address (the lab's full NAT source,
      // whose ports the load balancer hands out).
      const bool seen = std::any_of(
          routes.begin(), routes.end(),
          [&](const glue::ExceptionRoute& r) { return r.prefix == pf.addr && r.len == pf.len; });
      if (!seen) routes.push_back({pf.addr, pf.len, a.addr});
    }
  for (const RouteConfig& r : c.routes) {
    if (r.blackhole) continue;
    const int port = c.connected_port(r.via);
    if (port < 0 || c.ports[port].addresses.empty()) continue;
    routes.push_back({r.prefix.addr, r.prefix.len, c.ports[port].addresses.front().addr});
  }
  std::string err;
  if (!exc_->program(addrs, routes, err)) log_warn("exception path: %s", err.c_str());
}

void Management::poll_exception_path() {
  uint8_t buf[9216];
  for (int i = 0; i < 64; ++i) {
    const ssize_t n = exc_->read(buf, sizeof buf);
    if (n <= 0) break;
    if (static_cast<size_t>(n) < sizeof(rte_ipv4_hdr) || (buf[0] >> 4) != 4) {
      c_.exception_errors++;
      continue;
    }
    rte_mbuf* m = rte_pktmbuf_alloc(s_.ports->pool());
    char* p = m ? rte_pktmbuf_append(m, static_cast<uint16_t>(kEthLen + n)) : nullptr;
    if (!p) {
      if (m) rte_pktmbuf_free(m);
      c_.alloc_failed++;
      continue;
    }
    rte_memcpy(p + kEthLen, buf, static_cast<size_t>(n));
    const auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(p + kEthLen);
    PacketMeta& md = meta(m);
    std::memset(&md, 0, sizeof md);
    md.l3_off = kEthLen;
    md.l3_len = static_cast<uint16_t>(n);
    md.l4_off = static_cast<uint16_t>(kEthLen + (ip->version_ihl & 0xf) * 4);
    md.ip_proto = ip->next_proto_id;
    md.flags = meta_flags::kLocalOrigin;
    if (ip->fragment_offset & RTE_BE16(RTE_IPV4_HDR_DF_FLAG)) md.flags |= meta_flags::kDontFragment;
    c_.exception_from_kernel++;
    send_ip(m);
  }
}

std::string Management::start() {
  std::string err;
  if (std::string e = open_exception_path(); !e.empty()) return e;
  bool touched;
  auto snap = build(cfg_, err, touched);
  if (!snap) return err;
  generation_ = snap->generation;
  s_.snapshot->publish(std::move(snap), *s_.rcu);
  neigh_->release_held();
  control_ = std::make_unique<ControlServer>();
  if (std::string e = control_->listen(cfg_->control_socket); !e.empty()) return e;
  schedule_garp(Config{}, *cfg_);
  log_info("management lcore %u: %zu worker(s), control socket %s", rte_lcore_id(),
           s_.workers->size(), cfg_->control_socket.c_str());
  return "";
}

void Management::schedule_garp(const Config& old, const Config& next) {
  if (next.garp_count == 0) return;
  for (size_t p = 0; p < next.ports.size(); ++p) {
    for (const IfAddr& a : next.ports[p].addresses) {
      bool had = p < old.ports.size() &&
                 std::find(old.ports[p].addresses.begin(), old.ports[p].addresses.end(), a) !=
                     old.ports[p].addresses.end();
      if (!had) garps_.push_back({static_cast<uint16_t>(p), a.addr, next.garp_count, 0});
    }
  }
  // A VIP on a port's subnet is answered like an address of ours (see the ARP path), so it is
  // announced like one when it appears: hosts and switches that cached another owner (a
  // previous balancer, a real that held it) learn the move now, not when their entry expires.
  auto vip_on_port = [](const Config& c, uint32_t vip, int port) {
    if (c.connected_port(vip) != port) return false;
    return std::any_of(c.lb.services.begin(), c.lb.services.end(),
                       [vip](const LbService& s) { return s.vip == vip; });
  };
  for (const LbService& s : next.lb.services) {
    const int p = next.connected_port(s.vip);
    if (p < 0 || vip_on_port(old, s.vip, p)) continue;
    const bool queued = std::any_of(garps_.begin(), garps_.end(), [&](const Garp& g) {
      return g.port == static_cast<uint16_t>(p) && g.addr == s.vip;
    });
    if (!queued) garps_.push_back({static_cast<uint16_t>(p), s.vip, next.garp_count, 0});
  }
}

bool Management::check(const std::string& path, std::string& out) const {
  LoadResult r = load_config(path);
  if (auto* errs = std::get_if<std::vector<ConfigError>>(&r)) {
    out = format_errors(*errs);
    return false;
  }
  auto blockers = reload_blockers(*cfg_, std::get<Config>(r));
  if (!blockers.empty()) {
    out = "valid, but a reload cannot apply it:\n" + format_errors(blockers);
    return false;
  }
  out = path + ": ok\n";
  return true;
}

bool Management::reload(const std::string& path_in, std::string& out) {
  const std::string path = path_in.empty() ? s_.config_path : path_in;
  LoadResult r =
      path.empty() ? load_config("<built-in lab>", &builtin_lab_config()) : load_config(path);
  std::vector<ConfigError> errs;
  if (auto* e = std::get_if<std::vector<ConfigError>>(&r)) {
    errs = *e;
  } else {
    const Config& nc = std::get<Config>(r);
    errs = reload_blockers(*cfg_, nc);
    for (size_t p = 0; p < nc.ports.size(); ++p) {
      if (nc.ports[p].mtu + RTE_ETHER_HDR_LEN + 4u > s_.ports->max_frame_capacity())
        errs.push_back(
            {nc.file, 0, "ports[" + std::to_string(p) + "].mtu",
             "MTU " + std::to_string(nc.ports[p].mtu) + " needs larger packet buffers than nf " +
                 "allocated at start (frames up to " +
                 std::to_string(s_.ports->max_frame_capacity()) + " bytes); restart nf to apply"});
    }
  }
  if (!errs.empty()) {
    c_.reloads_rejected++;
    out = "reload rejected; the running configuration (generation " + std::to_string(generation_) +
          ") stays:\n" + format_errors(errs);
    log_error("%s", out.c_str());
    return false;
  }
  auto next = std::make_shared<const Config>(std::move(std::get<Config>(r)));
  std::shared_ptr<const Config> old = cfg_;
  std::string err;
  bool touched;
  auto snap = build(next, err, touched);
  if (!snap) {
    c_.reloads_rejected++;
    out = "reload failed; the running configuration stays: " + err + "\n";
    if (touched) {
      // The neighbour table already follows `next`: publish the running configuration again
      // so that it and the FIB agree (same settings, a new generation).
      std::string err2;
      bool t2;
      auto again = build(old, err2, t2);
      if (again) {
        generation_ = again->generation;
        s_.snapshot->publish(std::move(again), *s_.rcu);
        neigh_->release_held();
      } else {
        out += "re-applying the running configuration failed too: " + err2 + "\n";
      }
    }
    log_error("%s", out.c_str());
    return false;
  }
  generation_ = snap->generation;
  s_.snapshot->publish(std::move(snap), *s_.rcu);
  neigh_->release_held();
  for (size_t p = 0; p < next->ports.size(); ++p) {
    if (next->ports[p].mtu == old->ports[p].mtu) continue;
    if (std::string e = s_.ports->set_mtu(static_cast<uint16_t>(p), next->ports[p].mtu); !e.empty())
      log_warn("port \"%s\": the device refused MTU %u (%s); nf enforces it in software",
               next->ports[p].name.c_str(), next->ports[p].mtu, e.c_str());
  }
  if (!path.empty()) s_.config_path = path;
  schedule_garp(*old, *next);
  c_.reloads++;
  out = "reloaded " + next->file + ": generation " + std::to_string(generation_) + "\n";
  log_info("%s", out.substr(0, out.size() - 1).c_str());
  return true;
}

// ---- sending -------------------------------------------------------------------------------

void Management::inject(rte_mbuf* m, uint16_t port) {
  meta(m).out_port = port;
  rte_ring* r = s_.inject_rings[inject_rr_++ % s_.inject_rings.size()];
  if (rte_ring_sp_enqueue(r, m) != 0) {
    c_.inject_full++;
    rte_pktmbuf_free(m);
  }
}

void Management::finish_and_send(rte_mbuf* m, uint16_t port, const MacAddr& dst) {
  PacketMeta& md = meta(m);
  const Snapshot* snap = s_.snapshot->load();
  auto* ip = ip_of(m);
  const bool local = md.flags & meta_flags::kLocalOrigin;
  if (md.l3_len > snap->ports[port].mtu) {
    if (md.flags & meta_flags::kDontFragment) {
      if (!local) icmp_error(m, kIcmpDestUnreach, 4, snap->ports[port].mtu);
      rte_pktmbuf_free(m);
      return;
    }
    if (!local) ipv4_dec_ttl(ip);
    // rte_ipv4_fragment_packet wants the IP header first and leaves checksums to us.
    rte_pktmbuf_adj(m, md.l3_off);
    // Enough for a 9000-byte datagram over a 576-byte link (RTE_LIBRTE_IP_FRAG_MAX_FRAG, 8,
    // is the reassembly limit, not a fragmentation one).
    rte_mbuf* frags[kMaxFragments];
    int n = rte_ipv4_fragment_packet(m, frags, kMaxFragments, snap->ports[port].mtu,
                                     s_.ports->pool(), s_.ports->indirect_pool());
    rte_pktmbuf_free(m);  // fragments hold their own references to the payload
    if (n < 0) {
      c_.fragment_failed++;
      return;
    }
    c_.fragmented++;
    for (int i = 0; i < n; ++i) {
      rte_mbuf* f = frags[i];
      auto* fip = rte_pktmbuf_mtod(f, rte_ipv4_hdr*);
      fip->hdr_checksum = 0;
      fip->hdr_checksum = rte_ipv4_cksum(fip);
      if (rte_pktmbuf_linearize(f) != 0 || !rte_pktmbuf_prepend(f, kEthLen)) {
        c_.fragment_failed++;
        rte_pktmbuf_free(f);
        continue;
      }
      std::memset(&meta(f), 0, sizeof(PacketMeta));
      set_eth(f, dst, snap->ports[port].mac, RTE_ETHER_TYPE_IPV4);
      c_.fragments_sent++;
      inject(f, port);
    }
    return;
  }
  if (!local) ipv4_dec_ttl(ip);
  if (md.l3_off != kEthLen) {  // re-home the Ethernet header directly before IP
    rte_pktmbuf_adj(m, md.l3_off - kEthLen);
    md.l3_off = kEthLen;
  }
  set_eth(m, dst, snap->ports[port].mac, RTE_ETHER_TYPE_IPV4);
  inject(m, port);
}

// Routes a packet the fast path could not finish, or one we built (kLocalOrigin).
void Management::send_ip(rte_mbuf* m) {
  const Snapshot* snap = s_.snapshot->load();
  PacketMeta& md = meta(m);
  const uint32_t dst =
      (md.flags & meta_flags::kRouteByMeta) ? md.ip_dst : rte_be_to_cpu_32(ip_of(m)->dst_addr);
  uint32_t n;
  if (snap->fib->lookup(dst, n) != 0) {
    if (!(md.flags & meta_flags::kLocalOrigin)) icmp_error(m, kIcmpDestUnreach, 0, 0);
    rte_pktmbuf_free(m);
    return;
  }
  switch (nh::type(n)) {
    case nh::kLocal:
    case nh::kBlackhole:
      rte_pktmbuf_free(m);
      return;
    case nh::kGlean:
      neigh_->resolve(dst, static_cast<uint16_t>(nh::value(n)), m, now_ms());
      return;
    case nh::kAdj: {
      const uint32_t slot = nh::value(n);
      const uint64_t w = adj_->load(slot);
      if (AdjTable::valid(w)) {
        MacAddr mac;
        AdjTable::copy_mac(w, mac.b.data());
        finish_and_send(m, AdjTable::port(w), mac);
      } else {
        // The route's gateway (resolving, or failed: then the queue answers unreachable).
        const uint32_t gw = neigh_->ip_of_slot(slot);
        const int port = gw ? cfg_->connected_port(gw) : -1;
        if (port < 0) {
          c_.neigh_unreachable++;
          if (!(md.flags & meta_flags::kLocalOrigin)) icmp_error(m, kIcmpDestUnreach, 1, 0);
          rte_pktmbuf_free(m);
          return;
        }
        neigh_->resolve(gw, static_cast<uint16_t>(port), m, now_ms());
      }
      return;
    }
  }
}

void Management::icmp_error(rte_mbuf* orig, uint8_t type, uint8_t code, uint32_t extra) {
  const PacketMeta& om = meta(orig);
  const auto* oip = ip_of(orig);
  const uint32_t osrc = rte_be_to_cpu_32(oip->src_addr);
  const uint32_t odst = rte_be_to_cpu_32(oip->dst_addr);
  bool about_error = false;
  if (oip->next_proto_id == IPPROTO_ICMP && om.l4_off) {
    const auto* ic = rte_pktmbuf_mtod_offset(orig, const rte_icmp_hdr*, om.l4_off);
    if (om.l4_off + 1u <= orig->data_len)
      about_error = ic->icmp_type != RTE_IP_ICMP_ECHO_REQUEST &&
                    ic->icmp_type != RTE_IP_ICMP_ECHO_REPLY && ic->icmp_type != 13 &&
                    ic->icmp_type != 14;
  }
  // RFC 1812 4.3.2.7: no error about an error, a later fragment, or a non-unicast datagram.
  if (about_error || (om.flags & meta_flags::kLaterFragment) || om.l2 != L2Class::kUnicast ||
      is_multicast(odst) || odst == 0xffffffffu || is_martian_source(osrc)) {
    c_.icmp_errors_suppressed++;
    return;
  }
  const uint64_t now = rte_get_timer_cycles();
  const double rate = cfg_->icmp_errors_per_sec;
  icmp_tokens_ = std::min(
      rate, icmp_tokens_ + rate * static_cast<double>(now - icmp_last_) / static_cast<double>(hz_));
  icmp_last_ = now;
  if (icmp_tokens_ < 1.0) {
    c_.icmp_errors_ratelimited++;
    return;
  }
  icmp_tokens_ -= 1.0;

  rte_mbuf* m = rte_pktmbuf_alloc(s_.ports->pool());
  if (!m) {
    c_.alloc_failed++;
    return;
  }
  const uint16_t quote = static_cast<uint16_t>(
      std::min<uint32_t>(om.l3_len, kIcmpErrorMax - sizeof(rte_ipv4_hdr) - sizeof(rte_icmp_hdr)));
  const uint16_t l3 = static_cast<uint16_t>(sizeof(rte_ipv4_hdr) + sizeof(rte_icmp_hdr) + quote);
  char* p = rte_pktmbuf_append(m, kEthLen + l3);
  if (!p) {
    rte_pktmbuf_free(m);
    return;
  }
  PacketMeta& md = meta(m);
  std::memset(&md, 0, sizeof md);
  md.l3_off = kEthLen;
  md.l3_len = l3;
  md.l4_off = kEthLen + sizeof(rte_ipv4_hdr);
  md.flags = meta_flags::kLocalOrigin;
  md.ip_proto = IPPROTO_ICMP;
  auto* ip = reinterpret_cast<rte_ipv4_hdr*>(p + kEthLen);
  std::memset(ip, 0, sizeof *ip);
  ip->version_ihl = RTE_IPV4_VHL_DEF;
  ip->total_length = rte_cpu_to_be_16(l3);
  ip->time_to_live = 64;
  ip->next_proto_id = IPPROTO_ICMP;
  // RFC 1812 4.3.2.4: the source is an address of the interface the datagram arrived on.
  ip->src_addr = rte_cpu_to_be_32(port_address(orig->port));
  ip->dst_addr = oip->src_addr;
  ip->hdr_checksum = rte_ipv4_cksum(ip);
  auto* ic = reinterpret_cast<rte_icmp_hdr*>(ip + 1);
  ic->icmp_type = type;
  ic->icmp_code = code;
  ic->icmp_cksum = 0;
  ic->icmp_ident = 0;
  ic->icmp_seq_nb = rte_cpu_to_be_16(static_cast<uint16_t>(extra));  // RFC 1191 next-hop MTU
  rte_memcpy(ic + 1, oip, quote);
  ic->icmp_cksum = static_cast<uint16_t>(~rte_raw_cksum(ic, sizeof *ic + quote));
  c_.icmp_errors_sent++;
  send_ip(m);
}

// ---- punted packets ------------------------------------------------------------------------

void Management::handle(rte_mbuf* m) {
  c_.punts++;
  switch (meta(m).punt) {
    case PuntReason::kArp:
      handle_arp(m);
      return;
    case PuntReason::kLocal:
      handle_local(m);
      return;
    case PuntReason::kTtlExceeded:
      icmp_error(m, kIcmpTimeExceeded, 0, 0);
      rte_pktmbuf_free(m);
      return;
    case PuntReason::kNoRoute:
      icmp_error(m, kIcmpDestUnreach, 0, 0);
      rte_pktmbuf_free(m);
      return;
    case PuntReason::kNeighMiss:
    case PuntReason::kFragNeeded:
    case PuntReason::kFragment:
      send_ip(m);
      return;
    default:
      rte_pktmbuf_free(m);
      return;
  }
}

void Management::handle_arp(rte_mbuf* m) {
  const uint16_t port = m->port;
  auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
  auto* arp = rte_pktmbuf_mtod_offset(m, rte_arp_hdr*, kEthLen);
  const uint16_t op = rte_be_to_cpu_16(arp->arp_opcode);
  const uint32_t sip = rte_be_to_cpu_32(arp->arp_data.arp_sip);
  const uint32_t tip = rte_be_to_cpu_32(arp->arp_data.arp_tip);
  MacAddr sha;
  std::memcpy(sha.b.data(), arp->arp_data.arp_sha.addr_bytes, 6);
  const MacAddr my = s_.snapshot->load()->ports[port].mac;

  bool ours_anywhere = false;
  for (size_t p = 0; p < cfg_->ports.size(); ++p)
    ours_anywhere |= own_address(sip, static_cast<uint16_t>(p));
  if (ours_anywhere) {
    if (!(sha == my)) {
      c_.arp_address_conflict++;
      log_warn("ARP: %s claims our address %s on port %u", format_mac(sha).c_str(),
               format_ipv4(sip).c_str(), port);
    }
    rte_pktmbuf_free(m);
    return;
  }
  const bool target_ours = own_address(tip, port);
  const int cport = cfg_->connected_port(sip);
  bool learnable = sip != 0 && cport == port && !sha.is_multicast() && !sha.is_zero();
  if (learnable) {
    for (const IfAddr& a : cfg_->ports[port].addresses) {
      Prefix pf = a.prefix();
      if (pf.contains(sip) && (sip == pf.addr || sip == pf.broadcast())) learnable = false;
    }
  }
  // RFC 826 merge: refresh what we know from any ARP; add a new entry only when the packet is
  // addressed to us (a request for one of our addresses, or the reply to ours).
  if (learnable) neigh_->learn(sip, sha, port, target_ours, now_ms());

  // The load balancer's VIPs on a port's subnet are answered like our addresses (clients on
  // that subnet reach a service directly, without a router in between).
  const Snapshot* snap = s_.snapshot->load();
  const bool target_vip = !target_ours && snap->lb && snap->lb->vips.is_vip(tip) &&
                          cfg_->connected_port(tip) == static_cast<int>(port);
  if (op == RTE_ARP_OP_REQUEST && (target_ours || target_vip)) {
    // Answer in place (also ARP probes from 0.0.0.0, RFC 5227 2.1.1: we defend the address).
    arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REPLY);
    arp->arp_data.arp_tha = arp->arp_data.arp_sha;
    arp->arp_data.arp_tip = arp->arp_data.arp_sip;
    std::memcpy(arp->arp_data.arp_sha.addr_bytes, my.b.data(), 6);
    arp->arp_data.arp_sip = rte_cpu_to_be_32(tip);
    eth->dst_addr = eth->src_addr;
    std::memcpy(eth->src_addr.addr_bytes, my.b.data(), 6);
    c_.arp_requests_answered++;
    inject(m, port);
    return;
  }
  if (op == RTE_ARP_OP_REPLY)
    c_.arp_replies_seen++;
  else if (!learnable)
    c_.arp_ignored++;
  rte_pktmbuf_free(m);
}

void Management::handle_local(rte_mbuf* m) {
  PacketMeta& md = meta(m);
  auto* ip = ip_of(m);
  const uint32_t dst = rte_be_to_cpu_32(ip->dst_addr);
  const bool unicast =
      own_address(dst, m->port) ||
      std::any_of(cfg_->ports.begin(), cfg_->ports.end(), [&](const PortConfig& p) {
        return std::any_of(p.addresses.begin(), p.addresses.end(),
                           [&](const IfAddr& a) { return a.addr == dst; });
      });
  if (!unicast || md.l2 != L2Class::kUnicast) {
    c_.local_unhandled++;
    rte_pktmbuf_free(m);
    return;
  }
  const bool echo_request =
      md.ip_proto == IPPROTO_ICMP && md.l4_off &&
      md.l3_len - (md.l4_off - md.l3_off) >= static_cast<int>(sizeof(rte_icmp_hdr)) &&
      rte_pktmbuf_mtod_offset(m, rte_icmp_hdr*, md.l4_off)->icmp_type == RTE_IP_ICMP_ECHO_REQUEST;
  if (exc_ && !echo_request) {
    // Everything else for us belongs to the kernel's sockets in the exception namespace:
    // TCP DNS, health-check replies, ICMP errors about them.
    if (exc_->write(reinterpret_cast<const uint8_t*>(ip), md.l3_len))
      c_.exception_to_kernel++;
    else
      c_.exception_errors++;
    rte_pktmbuf_free(m);
    return;
  }
  if (md.ip_proto == IPPROTO_ICMP && md.l4_off && !(md.flags & meta_flags::kFragment)) {
    const uint16_t l4len = static_cast<uint16_t>(md.l3_len - (md.l4_off - md.l3_off));
    auto* ic = rte_pktmbuf_mtod_offset(m, rte_icmp_hdr*, md.l4_off);
    if (l4len >= sizeof(rte_icmp_hdr) && ic->icmp_type == RTE_IP_ICMP_ECHO_REQUEST &&
        rte_raw_cksum(ic, l4len) == 0xffff) {
      ic->icmp_type = RTE_IP_ICMP_ECHO_REPLY;
      ic->icmp_cksum = 0;
      ic->icmp_cksum = static_cast<uint16_t>(~rte_raw_cksum(ic, l4len));
      const rte_be32_t src = ip->src_addr;
      ip->src_addr = ip->dst_addr;
      ip->dst_addr = src;
      ip->time_to_live = 64;
      ip->hdr_checksum = 0;
      ip->hdr_checksum = rte_ipv4_cksum(ip);
      md.flags |= meta_flags::kLocalOrigin;
      c_.icmp_echo_answered++;
      send_ip(m);
      return;
    }
    c_.local_unhandled++;
  } else if (md.ip_proto == IPPROTO_UDP) {
    icmp_error(m, kIcmpDestUnreach, 3, 0);  // port unreachable (RFC 1122 3.2.2.1)
    c_.local_unhandled++;
  } else if (md.ip_proto != IPPROTO_TCP && md.ip_proto != IPPROTO_ICMP) {
    icmp_error(m, kIcmpDestUnreach, 2, 0);  // protocol unreachable
    c_.local_unhandled++;
  } else {
    c_.local_unhandled++;
  }
  rte_pktmbuf_free(m);
}

// ---- NeighActions --------------------------------------------------------------------------

void Management::send_request(uint16_t port, uint32_t target, const MacAddr* dst) {
  rte_mbuf* m = rte_pktmbuf_alloc(s_.ports->pool());
  if (!m) {
    c_.alloc_failed++;
    return;
  }
  char* p = rte_pktmbuf_append(m, kEthLen + sizeof(rte_arp_hdr));
  std::memset(&meta(m), 0, sizeof(PacketMeta));
  const MacAddr my =
      s_.snapshot->load() ? s_.snapshot->load()->ports[port].mac : s_.ports->mac(port);
  const MacAddr bcast = MacAddr::from_u64(0xffffffffffffULL);
  set_eth(m, dst ? *dst : bcast, my, RTE_ETHER_TYPE_ARP);
  auto* arp = reinterpret_cast<rte_arp_hdr*>(p + kEthLen);
  arp->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
  arp->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
  arp->arp_hlen = 6;
  arp->arp_plen = 4;
  arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REQUEST);
  std::memcpy(arp->arp_data.arp_sha.addr_bytes, my.b.data(), 6);
  uint32_t sip = port_address(port);
  for (const IfAddr& a : cfg_->ports[port].addresses)
    if (a.prefix().contains(target)) sip = a.addr;
  if (garp_sip_ != 0) sip = garp_sip_;  // gratuitous: sender == target
  arp->arp_data.arp_sip = rte_cpu_to_be_32(sip);
  std::memset(arp->arp_data.arp_tha.addr_bytes, 0, 6);
  arp->arp_data.arp_tip = rte_cpu_to_be_32(target);
  inject(m, port);
}

void Management::publish(uint32_t slot, uint32_t ip, const MacAddr& mac, uint16_t port) {
  adj_->publish(slot, mac, port);
  Snapshot* cur = s_.snapshot->mutable_current();
  if (cur && !has_route(*cur, {ip, 32}) && cur->fib->add({ip, 32}, nh::make(nh::kAdj, slot)) != 0) {
    // The FIB is out of room: forwarding to this host stays on the management lcore (glean).
    if (c_.fib_add_failed++ == 0)
      log_warn("FIB full: %s is forwarded by the management lcore", format_ipv4(ip).c_str());
  }
}

void Management::unpublish(uint32_t slot, uint32_t ip) {
  adj_->clear(slot);
  Snapshot* cur = s_.snapshot->mutable_current();
  if (cur && !has_route(*cur, {ip, 32})) cur->fib->del({ip, 32});
}

void Management::transmit(void* pkt, uint16_t port, const MacAddr& dst) {
  finish_and_send(static_cast<rte_mbuf*>(pkt), port, dst);
}

void Management::unreachable(void* pkt) {
  auto* m = static_cast<rte_mbuf*>(pkt);
  c_.neigh_unreachable++;
  if (!(meta(m).flags & meta_flags::kLocalOrigin)) icmp_error(m, kIcmpDestUnreach, 1, 0);
  rte_pktmbuf_free(m);
}

void Management::discard(void* pkt) {
  c_.neigh_queue_dropped++;
  rte_pktmbuf_free(static_cast<rte_mbuf*>(pkt));
}

// ---- loop ----------------------------------------------------------------------------------

void Management::timers() {
  const uint64_t now = now_ms();
  neigh_->tick(now);
  for (Garp& g : garps_) {
    if (g.left == 0 || now < g.next_ms) continue;
    if (g.port >= cfg_->ports.size()) {
      g.left = 0;
      continue;
    }
    garp_sip_ = g.addr;
    send_request(g.port, g.addr, nullptr);
    garp_sip_ = 0;
    c_.garp_sent++;
    g.left--;
    g.next_ms = now + 1000;  // keepalived's spacing: one a second
  }
  garps_.erase(
      std::remove_if(garps_.begin(), garps_.end(), [](const Garp& g) { return g.left == 0; }),
      garps_.end());
}

int Management::run() {
  rte_mbuf* pkts[kMaxBurst];
  while (!s_.stop->load(std::memory_order_relaxed)) {
    unsigned total = 0;
    for (rte_ring* r : s_.punt_rings) {
      unsigned n = rte_ring_sc_dequeue_burst(r, reinterpret_cast<void**>(pkts), kMaxBurst, nullptr);
      for (unsigned i = 0; i < n; ++i) handle(pkts[i]);
      total += n;
    }
    if (s_.reload_requested->exchange(false)) {
      std::string out;
      log_info("SIGHUP: reloading %s",
               s_.config_path.empty() ? "the built-in lab configuration" : s_.config_path.c_str());
      reload("", out);
    }
    control_->poll(*this);
    if (exc_) {
      const uint64_t before = c_.exception_from_kernel;
      poll_exception_path();
      total += static_cast<unsigned>(c_.exception_from_kernel - before);
      const uint64_t ms = now_ms();
      // Microseconds, so health-check RTTs below a millisecond (a LAN) still order servers.
      if (monitor_) monitor_->poll_us(rte_get_timer_cycles() / (hz_ / 1000000 ? hz_ / 1000000 : 1));
      if (tcp_dns_) tcp_dns_->poll(ms);
    }
    const uint64_t now = rte_get_timer_cycles();
    if (now >= next_tick_) {
      timers();
      next_tick_ = now + hz_ / 10;
    }
    s_.rcu->reclaim();
    // The management lcore shares a CPU with the rest of the system (often a worker's or a
    // client's): it sleeps when idle, 100 us for the first 2 ms after work (a burst of ARP or
    // a TCP exchange), then 1 ms. Each wake-up costs tens of microseconds in a VM, so a
    // trickle of work (health probes every few hundred ms) must not hold it in the short
    // sleep: it did, and took a third of a CPU from the clients of the lab.
    if (total == 0) {
      rte_delay_us_sleep(idle_loops_ < 20 ? 100 : 1000);
      ++idle_loops_;
    } else {
      idle_loops_ = 0;
    }
  }
  control_.reset();
  tcp_dns_.reset();
  monitor_.reset();
  exc_.reset();
  return 0;
}

}  // namespace nf
