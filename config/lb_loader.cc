// The `lb`, `nat` and `acl` groups (schema: config/REFERENCE.md). Runs after ports, pipeline
// and health checks are read: services name health checks, DSR reals must sit on a connected
// subnet, full-NAT sources and PAT addresses must be the appliance's own.
#include <netinet/in.h>
#include <algorithm>

#include <charconv>
#include <optional>

#include "config/loader_util.h"

namespace nf {

const char* lb_mode_name(LbMode m) {
  switch (m) {
    case LbMode::kNat:
      return "nat";
    case LbMode::kFullNat:
      return "fullnat";
    case LbMode::kDsr:
      return "dsr";
    case LbMode::kIpip:
      return "ipip";
    case LbMode::kDscp:
      return "dscp";
  }
  return "?";
}

const char* lb_scheduler_name(LbScheduler s) {
  switch (s) {
    case LbScheduler::kRoundRobin:
      return "round_robin";
    case LbScheduler::kWeightedRoundRobin:
      return "weighted_round_robin";
    case LbScheduler::kLeastConn:
      return "least_conn";
    case LbScheduler::kSourceHash:
      return "source_hash";
    case LbScheduler::kMaglev:
      return "maglev";
  }
  return "?";
}

namespace cfg {
namespace {

bool staged(const Config& c, const char* stage) {
  return std::find(c.pipeline.begin(), c.pipeline.end(), stage) != c.pipeline.end();
}

// The group of a stage, with the usual pairing errors: a stage without its group, a group
// without its stage.
const Setting* stage_group(Diag& d, Group& root, const Config& c, const char* name) {
  const Setting* s = root.find(name, Setting::TypeGroup, false);
  const bool in_pipeline = staged(c, name);
  if (!s && in_pipeline && root.setting().exists("pipeline"))
    d.error(root.setting()["pipeline"], "pipeline",
            std::string("the \"") + name + "\" stage needs its " + name + " = { ... } group");
  if (s && !in_pipeline)
    d.error(*s, name, std::string("configured, but the pipeline has no \"") + name + "\" stage");
  return s;
}

bool own_address(const Config& c, uint32_t a) {
  for (const PortConfig& p : c.ports)
    for (const IfAddr& ia : p.addresses)
      if (ia.addr == a) return true;
  return false;
}

std::optional<uint8_t> parse_proto(const std::string& s, bool allow_any) {
  if (s == "tcp") return IPPROTO_TCP;
  if (s == "udp") return IPPROTO_UDP;
  if (s == "icmp" && allow_any) return IPPROTO_ICMP;
  if (s == "any" && allow_any) return 0;
  return std::nullopt;
}

// An address setting; reports what is wrong with it.
bool address(Diag& d, Group& g, const char* name, uint32_t& out, bool required) {
  std::string v;
  if (!g.str(name, v, required)) return false;
  if (auto a = parse_ipv4(v)) {
    out = *a;
    return true;
  }
  d.error(g.setting()[name], join(g.path(), name), "not an IPv4 address: \"" + v + "\"");
  return false;
}

// A port range: an integer, or a string "lo-hi" / "lo".
bool port_range(Diag& d, Group& g, const char* name, uint16_t& lo, uint16_t& hi) {
  const std::string path = join(g.path(), name);
  if (!g.setting().exists(name)) {
    g.find(name, Setting::TypeString, false);  // marks it as known
    return false;
  }
  const Setting& s = g.setting()[name];
  if (s.getType() == Setting::TypeInt || s.getType() == Setting::TypeInt64) {
    g.find(name, Setting::TypeInt, false);
    const long long v = as_int(s);
    if (v < 0 || v > 65535) {
      d.error(s, path, "port " + std::to_string(v) + " out of range [0, 65535]");
      return false;
    }
    lo = hi = static_cast<uint16_t>(v);
    return true;
  }
  const Setting* str = g.find(name, Setting::TypeString, false);
  if (!str) return false;
  const std::string v = static_cast<const char*>(*str);
  const auto dash = v.find('-');
  auto num = [](std::string_view t, uint32_t& out) {
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
    return ec == std::errc() && p == t.data() + t.size() && !t.empty() && out <= 65535;
  };
  uint32_t a = 0, b = 0;
  const bool ok = dash == std::string::npos ? num(v, a) && (b = a, true)
                                            : num(std::string_view(v).substr(0, dash), a) &&
                                                  num(std::string_view(v).substr(dash + 1), b);
  if (!ok || a > b) {
    d.error(s, path, "not a port or port range lo-hi within 0-65535: \"" + v + "\"");
    return false;
  }
  lo = static_cast<uint16_t>(a);
  hi = static_cast<uint16_t>(b);
  return true;
}

bool known_check(const Config& c, const std::string& name) {
  return std::any_of(c.health_checks.begin(), c.health_checks.end(),
                     [&](const health::CheckSpec& h) { return h.name == name; });
}

void read_service(Diag& d, Group& g, Config& c, const std::string& path) {
  LbService s;
  s.line = static_cast<int>(g.setting().getSourceLine());
  if (g.str("name", s.name, true)) {
    for (const LbService& o : c.lb.services)
      if (o.name == s.name)
        d.error(g.setting()["name"], join(path, "name"),
                "service \"" + s.name + "\" defined twice");
  }
  const bool vip_ok = address(d, g, "vip", s.vip, true);
  std::string proto = "tcp";
  if (g.str("protocol", proto)) {
    if (auto p = parse_proto(proto, false))
      s.proto = *p;
    else
      d.error(g.setting()["protocol"], join(path, "protocol"),
              "must be \"tcp\" or \"udp\", not \"" + proto + "\"");
  }
  g.u16("port", s.port, 0, 65535);
  std::string mode;
  if (g.str("mode", mode)) {
    static const std::pair<const char*, LbMode> kModes[] = {{"nat", LbMode::kNat},
                                                            {"fullnat", LbMode::kFullNat},
                                                            {"dsr", LbMode::kDsr},
                                                            {"ipip", LbMode::kIpip},
                                                            {"dscp", LbMode::kDscp}};
    auto it = std::find_if(std::begin(kModes), std::end(kModes),
                           [&](const auto& m) { return mode == m.first; });
    if (it != std::end(kModes))
      s.mode = it->second;
    else
      d.error(g.setting()["mode"], join(path, "mode"),
              "unknown mode \"" + mode + "\" (nat, fullnat, dsr, ipip, dscp)");
  }
  std::string sched;
  if (g.str("scheduler", sched)) {
    static const std::pair<const char*, LbScheduler> kScheds[] = {
        {"round_robin", LbScheduler::kRoundRobin},
        {"weighted_round_robin", LbScheduler::kWeightedRoundRobin},
        {"least_conn", LbScheduler::kLeastConn},
        {"source_hash", LbScheduler::kSourceHash},
        {"maglev", LbScheduler::kMaglev}};
    auto it = std::find_if(std::begin(kScheds), std::end(kScheds),
                           [&](const auto& m) { return sched == m.first; });
    if (it != std::end(kScheds))
      s.scheduler = it->second;
    else
      d.error(g.setting()["scheduler"], join(path, "scheduler"),
              "unknown scheduler \"" + sched +
                  "\" (round_robin, weighted_round_robin, least_conn, source_hash, maglev)");
  }
  g.u32("persistence", s.persistence_s, 0, 86400);
  std::string on_down;
  if (g.str("on_real_down", on_down)) {
    if (on_down == "keep")
      s.on_down = LbOnDown::kKeep;
    else if (on_down == "reset")
      s.on_down = LbOnDown::kReset;
    else
      d.error(g.setting()["on_real_down"], join(path, "on_real_down"),
              "must be \"keep\" or \"reset\", not \"" + on_down + "\"");
  }
  g.strings("snat", false, [&](const Setting& e, const std::string& p, const std::string& v) {
    auto a = parse_ipv4(v);
    if (!a)
      d.error(e, p, "not an IPv4 address: \"" + v + "\"");
    else if (!own_address(c, *a))
      d.error(e, p,
              "full-NAT sources must be addresses of a port (replies have to reach nf): " + v);
    else
      s.snat.push_back(*a);
  });
  uint32_t dscp = 0;
  g.u32("dscp", dscp, 1, 63);
  s.dscp = static_cast<uint8_t>(dscp);
  g.u16("mss_clamp", s.mss_clamp, 536, 9000);
  if (g.str("check", s.check) && !known_check(c, s.check))
    d.error(g.setting()["check"], join(path, "check"),
            "no health check named \"" + s.check + "\" in health.checks");

  const bool dsr = s.mode == LbMode::kDsr || s.mode == LbMode::kIpip || s.mode == LbMode::kDscp;
  if (s.mode == LbMode::kFullNat && s.snat.empty())
    d.error(g.setting(), join(path, "snat"), "mode \"fullnat\" needs snat = [ \"address\", ... ]");
  if (s.mode != LbMode::kFullNat && !s.snat.empty())
    d.error(g.setting()["snat"], join(path, "snat"), "only mode \"fullnat\" uses snat");
  if (s.mode == LbMode::kDscp && s.dscp == 0)
    d.error(g.setting(), join(path, "dscp"), "mode \"dscp\" needs dscp = 1..63");
  if (s.mode != LbMode::kDscp && s.dscp != 0)
    d.error(g.setting()["dscp"], join(path, "dscp"), "only mode \"dscp\" uses dscp");
  if (vip_ok && own_address(c, s.vip))
    d.error(g.setting()["vip"], join(path, "vip"),
            "the VIP is a port's address; give services their own addresses");

  each_group(d, g, "reals", [&](Group& rg, int i) {
    const std::string rp = index(join(path, "reals"), i);
    LbReal r;
    r.line = static_cast<int>(rg.setting().getSourceLine());
    rg.u16("port", r.port, 0, 65535);
    if (address(d, rg, "address", r.addr, true)) {
      // The same address and effective port twice would be one real counted twice.
      const uint16_t eff = r.port ? r.port : s.port;
      for (const LbReal& o : s.reals)
        if (o.addr == r.addr && (o.port ? o.port : s.port) == eff)
          d.error(rg.setting()["address"], join(rp, "address"),
                  "real " + format_ipv4(r.addr) + (eff ? ":" + std::to_string(eff) : "") +
                      " listed twice");
      if (s.mode == LbMode::kDsr && c.connected_port(r.addr) < 0)
        d.error(rg.setting()["address"], join(rp, "address"),
                "mode \"dsr\" rewrites MACs only: the real must be on a port's subnet");
      if (own_address(c, r.addr) || r.addr == s.vip)
        d.error(rg.setting()["address"], join(rp, "address"),
                "a real cannot be nf's own address or the VIP");
    }
    if (dsr && r.port != 0 && r.port != s.port)
      d.error(rg.setting()["port"], join(rp, "port"),
              std::string("mode \"") + lb_mode_name(s.mode) +
                  "\" cannot translate ports: leave port out or equal to the service's");
    if (s.port == 0 && r.port != 0)
      d.error(rg.setting()["port"], join(rp, "port"),
              "a service on every port keeps the client's destination port: leave port out");
    rg.u32("weight", r.weight, 0, 65535);
    if (rg.str("check", r.check) && !known_check(c, r.check))
      d.error(rg.setting()["check"], join(rp, "check"),
              "no health check named \"" + r.check + "\" in health.checks");
    if (r.check.empty()) r.check = s.check;
    s.reals.push_back(std::move(r));
  });
  if (s.reals.empty()) d.error(g.setting(), join(path, "reals"), "a service needs reals");
  if (s.reals.size() > 4096)
    d.error(g.setting()["reals"], join(path, "reals"), "at most 4096 reals per service");
  for (const LbService& o : c.lb.services)
    if (vip_ok && o.vip == s.vip && o.proto == s.proto && o.port == s.port)
      d.error(g.setting(), path,
              "service \"" + o.name + "\" already serves " + format_ipv4(s.vip) +
                  (s.port ? ":" + std::to_string(s.port) : std::string(" (every port)")) + " " +
                  (s.proto == IPPROTO_TCP ? "tcp" : "udp"));
  c.lb.services.push_back(std::move(s));
}

}  // namespace

void read_lb(Diag& d, Group& root, Config& c) {
  const Setting* s = stage_group(d, root, c, "lb");
  if (!s) return;
  c.lb.enabled = true;
  Group g(d, *s, "lb");
  g.u32("max_flows", c.lb.max_flows, 1024, 1u << 28);
  g.u32("syn_flood_rate", c.lb.syn_flood_rate, 100, 100000000);
  g.u32("maglev_min_size", c.lb.maglev_min_size, 251, 1000003);
  {
    uint32_t m = c.lb.maglev_min_size;
    bool prime = m >= 2;
    for (uint32_t f = 2; prime && f * f <= m; ++f) prime = m % f != 0;
    if (!prime && s->exists("maglev_min_size"))
      d.error((*s)["maglev_min_size"], "lb.maglev_min_size",
              std::to_string(m) + " is not a prime (Maglev tables need a prime size)");
  }
  if (const Setting* t = g.find("timeouts", Setting::TypeGroup, false)) {
    Group tg(d, *t, "lb.timeouts");
    LbTimeouts& to = c.lb.timeouts;
    tg.u32("tcp_syn", to.tcp_syn, 1, 600);
    tg.u32("tcp_established", to.tcp_established, 10, 7 * 86400);
    tg.u32("tcp_fin", to.tcp_fin, 1, 3600);
    tg.u32("tcp_time_wait", to.tcp_time_wait, 1, 600);
    tg.u32("tcp_close", to.tcp_close, 1, 600);
    tg.u32("udp", to.udp, 1, 86400);
    tg.u32("icmp", to.icmp, 1, 3600);
  }
  each_group(d, g, "services",
             [&](Group& sg, int i) { read_service(d, sg, c, index("lb.services", i)); });
  if (c.lb.services.empty()) d.error(*s, "lb.services", "the load balancer needs services");
}

void read_nat(Diag& d, Group& root, Config& c) {
  const Setting* s = stage_group(d, root, c, "nat");
  if (!s) return;
  c.nat.enabled = true;
  Group g(d, *s, "nat");
  g.u32("max_sessions", c.nat.max_sessions, 1024, 1u << 26);
  if (const Setting* t = g.find("timeouts", Setting::TypeGroup, false)) {
    Group tg(d, *t, "nat.timeouts");
    NatTimeouts& to = c.nat.timeouts;
    tg.u32("tcp_established", to.tcp_established, 1, 7 * 86400);
    tg.u32("tcp_transitory", to.tcp_transitory, 1, 86400);
    tg.u32("udp", to.udp, 1, 86400);
    tg.u32("icmp", to.icmp, 1, 86400);
    tg.u32("port_reuse", to.port_reuse, 0, 600);
  }
  each_group(d, g, "static", [&](Group& sg, int i) {
    const std::string path = index("nat.static", i);
    NatStatic st;
    st.line = static_cast<int>(sg.setting().getSourceLine());
    std::string proto = "tcp";
    if (sg.str("protocol", proto)) {
      if (auto p = parse_proto(proto, false))
        st.proto = *p;
      else
        d.error(sg.setting()["protocol"], join(path, "protocol"),
                "must be \"tcp\" or \"udp\", not \"" + proto + "\"");
    }
    if (address(d, sg, "address", st.addr, true) && !own_address(c, st.addr))
      d.error(
          sg.setting()["address"], join(path, "address"),
          "port forwards listen on an address of a port; " + format_ipv4(st.addr) + " is not one");
    uint32_t port = 0;
    sg.u32("port", port, 1, 65535, true);
    st.port = static_cast<uint16_t>(port);
    address(d, sg, "to", st.to, true);
    st.to_port = st.port;
    sg.u16("to_port", st.to_port, 1, 65535);
    for (const NatStatic& o : c.nat.statics)
      if (o.proto == st.proto && o.addr == st.addr && o.port == st.port)
        d.error(sg.setting(), path,
                "port " + std::to_string(st.port) + " of " + format_ipv4(st.addr) +
                    " is forwarded twice");
    c.nat.statics.push_back(st);
  });
  each_group(d, g, "dynamic", [&](Group& dg, int i) {
    const std::string path = index("nat.dynamic", i);
    NatDynamic dy;
    dy.line = static_cast<int>(dg.setting().getSourceLine());
    dg.strings("inside", true, [&](const Setting& e, const std::string& p, const std::string& v) {
      if (auto pf = parse_prefix(v))
        dy.inside.push_back(*pf);
      else
        d.error(e, p, "not a prefix a.b.c.d/len (host bits zero): \"" + v + "\"");
    });
    std::string port;
    if (dg.str("port", port, true)) {
      dy.port = c.port_index(port);
      if (dy.port < 0)
        d.error(dg.setting()["port"], join(path, "port"), "no port named \"" + port + "\"");
    }
    if (address(d, dg, "address", dy.addr, true) && dy.port >= 0) {
      const auto& addrs = c.ports[static_cast<size_t>(dy.port)].addresses;
      if (std::none_of(addrs.begin(), addrs.end(),
                       [&](const IfAddr& a) { return a.addr == dy.addr; }))
        d.error(dg.setting()["address"], join(path, "address"),
                format_ipv4(dy.addr) + " is not an address of port \"" + port + "\"");
    }
    uint16_t lo = dy.port_lo, hi = dy.port_hi;
    if (port_range(d, dg, "ports", lo, hi)) {
      if (hi - lo + 1 < 64)
        d.error(dg.setting()["ports"], join(path, "ports"),
                "a PAT range needs at least 64 ports (they are split among the workers)");
      if (lo < 1024)
        d.error(dg.setting()["ports"], join(path, "ports"),
                "PAT ports start at 1024 or above (below are the appliance's services)");
      dy.port_lo = lo;
      dy.port_hi = hi;
    }
    c.nat.dynamics.push_back(std::move(dy));
  });
  // Port forwards inside a PAT range would collide with dynamic mappings.
  for (const NatStatic& st : c.nat.statics)
    for (const NatDynamic& dy : c.nat.dynamics)
      if (st.addr == dy.addr && st.port >= dy.port_lo && st.port <= dy.port_hi)
        d.error(*s, "nat.static",
                "port " + std::to_string(st.port) + " of " + format_ipv4(st.addr) +
                    " is forwarded, and inside the dynamic PAT range " +
                    std::to_string(dy.port_lo) + "-" + std::to_string(dy.port_hi) +
                    " of the same address");
  if (c.nat.statics.empty() && c.nat.dynamics.empty())
    d.error(*s, "nat", "give static = ( ... ) port forwards and/or dynamic = ( ... ) PAT");
}

// Two stages share the `acl` group: "acl" applies the `in` sets, "acl_out" the `out` sets
// (pipelines/acl/acl_stage.h). Each must sit where it sees what its direction means: "acl"
// directly after "input" (every packet entering, before any stage answers or rewrites it),
// "acl_out" directly before "ip4_forward" (after every rewrite, with the final destination).
void read_acl(Diag& d, Group& root, Config& c) {
  const Setting* s = root.find("acl", Setting::TypeGroup, false);
  const bool in_stage = staged(c, "acl");
  const bool out_stage = staged(c, "acl_out");
  const bool has_pipeline = root.setting().exists("pipeline");
  auto at = [&](const char* stage) {
    return std::find(c.pipeline.begin(), c.pipeline.end(), stage) - c.pipeline.begin();
  };
  if (has_pipeline && in_stage && (at("acl") != 1 || c.pipeline.front() != "input"))
    d.error(root.setting()["pipeline"], "pipeline",
            "the \"acl\" stage must come directly after \"input\" (an ingress ACL sees every "
            "packet entering a port)");
  if (has_pipeline && out_stage &&
      (!staged(c, "ip4_forward") || at("acl_out") + 1 != at("ip4_forward")))
    d.error(root.setting()["pipeline"], "pipeline",
            "the \"acl_out\" stage must come directly before \"ip4_forward\" (an egress ACL "
            "sees packets after every rewrite, routed as they will leave)");
  if (!s && (in_stage || out_stage) && has_pipeline)
    d.error(root.setting()["pipeline"], "pipeline",
            std::string("the \"") + (in_stage ? "acl" : "acl_out") +
                "\" stage needs its acl = { ... } group");
  if (s && !in_stage && !out_stage)
    d.error(*s, "acl", "configured, but the pipeline has no \"acl\" stage");
  if (!s) return;
  c.acl.enabled = true;
  Group g(d, *s, "acl");
  each_group(d, g, "sets", [&](Group& sg, int i) {
    const std::string path = index("acl.sets", i);
    AclSet set;
    set.line = static_cast<int>(sg.setting().getSourceLine());
    std::string port;
    if (sg.str("port", port, true)) {
      set.port = c.port_index(port);
      if (set.port < 0)
        d.error(sg.setting()["port"], join(path, "port"), "no port named \"" + port + "\"");
    }
    std::string dir = "in";
    if (sg.str("direction", dir) && dir != "in" && dir != "out")
      d.error(sg.setting()["direction"], join(path, "direction"),
              "must be \"in\" or \"out\", not \"" + dir + "\"");
    set.out = dir == "out";
    // Only when the group has some stage: otherwise the group-level error says it all.
    if ((in_stage || out_stage) && !(set.out ? out_stage : in_stage))
      d.error(sg.setting(), path,
              set.out ? "an \"out\" set needs the \"acl_out\" stage in the pipeline, "
                        "directly before \"ip4_forward\""
                      : "an \"in\" set needs the \"acl\" stage in the pipeline, directly after "
                        "\"input\"");
    std::string def = "permit";
    if (sg.str("default", def) && def != "permit" && def != "deny")
      d.error(sg.setting()["default"], join(path, "default"),
              "must be \"permit\" or \"deny\", not \"" + def + "\"");
    set.default_permit = def == "permit";
    for (const AclSet& o : c.acl.sets)
      if (o.port == set.port && o.out == set.out && set.port >= 0)
        d.error(sg.setting(), path,
                std::string("port \"")
                    .append(port)
                    .append("\" has two \"")
                    .append(dir)
                    .append("\" sets"));
    each_group(d, sg, "rules", [&](Group& rg, int j) {
      const std::string rp = index(join(path, "rules"), j);
      AclRuleConfig r;
      r.line = static_cast<int>(rg.setting().getSourceLine());
      r.name = rp;
      rg.str("name", r.name);
      std::string action;
      if (rg.str("action", action, true)) {
        if (action == "permit" || action == "deny")
          r.permit = action == "permit";
        else
          d.error(rg.setting()["action"], join(rp, "action"),
                  "must be \"permit\" or \"deny\", not \"" + action + "\"");
      }
      for (auto [name, out] : {std::pair{"src", &r.src}, std::pair{"dst", &r.dst}}) {
        std::string v;
        if (!rg.str(name, v)) continue;
        if (v == "any") continue;
        if (auto pf = parse_prefix(v))
          *out = *pf;
        else if (auto a = parse_ipv4(v))
          *out = Prefix{*a, 32};
        else
          d.error(
              rg.setting()[name], join(rp, name),
              "not an address, a prefix a.b.c.d/len (host bits zero) or \"any\": \"" + v + "\"");
      }
      std::string proto = "any";
      if (rg.setting().exists("protocol") &&
          (rg.setting()["protocol"].getType() == Setting::TypeInt ||
           rg.setting()["protocol"].getType() == Setting::TypeInt64)) {
        uint32_t p = 0;
        rg.u32("protocol", p, 0, 255);
        r.proto = static_cast<uint8_t>(p);
      } else if (rg.str("protocol", proto)) {
        if (auto p = parse_proto(proto, true))
          r.proto = *p;
        else
          d.error(rg.setting()["protocol"], join(rp, "protocol"),
                  "must be tcp, udp, icmp, any or a protocol number 0-255, not \"" + proto + "\"");
      }
      const bool sp = port_range(d, rg, "sport", r.sport_lo, r.sport_hi);
      const bool dp = port_range(d, rg, "dport", r.dport_lo, r.dport_hi);
      r.has_ports = sp || dp;
      if (r.has_ports && r.proto != IPPROTO_TCP && r.proto != IPPROTO_UDP)
        d.error(rg.setting(), rp, "port ranges need protocol \"tcp\" or \"udp\"");
      set.rules.push_back(std::move(r));
    });
    if (set.rules.size() > kAclMaxRules)
      d.error(sg.setting(), join(path, "rules"),
              std::to_string(set.rules.size()) + " rules; at most " + std::to_string(kAclMaxRules) +
                  " per set");
    c.acl.sets.push_back(std::move(set));
  });
}

}  // namespace cfg
}  // namespace nf
