// The `dns`, `health` and `exception_path` groups (schema: config/REFERENCE.md).
//
// Zone data is read here, not when the snapshot is built: master files are parsed (their
// errors carry the zone file's name and line), records given in the configuration are parsed
// with the same reader (their errors carry the configuration's line), and the whole dataset is
// compiled (nf/dns/zone.h). A configuration that loads is one the responder can answer from.
#include <algorithm>
#include <filesystem>
#include <map>

#include "config/loader_util.h"
#include "nf/dns/geo.h"
#include "nf/dns/zonefile.h"

namespace nf::cfg {
namespace {

std::string dir_of(const std::string& file) {
  const auto slash = file.rfind('/');
  return slash == std::string::npos ? std::string(".") : file.substr(0, slash);
}

void read_zone(Diag& d, Group& g, const Config& c, const std::string& path,
               std::vector<dns::ZoneSource>& out) {
  dns::ZoneSource z;
  z.file = c.file;
  z.line = static_cast<int>(g.setting().getSourceLine());
  std::string name;
  if (!g.str("name", name, true)) return;
  std::string err;
  if (!dns::parse_name(name, dns::Name{0}, z.apex, err)) {
    d.error(g.setting()["name"], join(path, "name"), "bad zone name \"" + name + "\": " + err);
    return;
  }
  uint32_t ttl = 3600;
  g.u32("ttl", ttl, 0, 0x7fffffff);
  dns::MasterParser mp(z.apex, ttl);
  std::string file;
  const bool has_file = g.str("file", file);
  const Setting* recs = g.find("records", Setting::TypeArray, false);
  if (has_file == (recs != nullptr)) {
    d.error(g.setting(), path, "give the zone either a file = \"...\" or records = [ ... ]");
    return;
  }
  if (has_file) {
    // The built-in lab configuration needs no files: it carries its zone file in itself.
    const bool builtin = c.file == "<built-in lab>";
    if (const std::string* text = builtin ? builtin_lab_file(file) : nullptr) {
      mp.feed(*text, file, 1);
    } else {
      const std::string full = file[0] == '/' ? file : dir_of(c.file) + "/" + file;
      if (!mp.feed_file(full) && mp.errors().empty())
        d.error(g.setting()["file"], join(path, "file"), "cannot read zone file " + full);
    }
  } else {
    for (int i = 0; i < recs->getLength(); ++i) {
      const Setting& e = (*recs)[i];
      if (e.getType() != Setting::TypeString) {
        d.error(e, index(join(path, "records"), i), "must be a string");
        continue;
      }
      mp.feed(static_cast<const char*>(e), c.file, static_cast<int>(e.getSourceLine()));
    }
  }
  for (const dns::ZoneError& ze : mp.errors())
    d.errors().push_back({ze.file, ze.line, path, ze.message});
  z.records = std::move(mp.records());
  out.push_back(std::move(z));
}

bool parse_policy(const std::string& s, dns::Policy& p) {
  static const std::map<std::string, dns::Policy> kPolicies = {
      {"round_robin", dns::Policy::kRoundRobin},
      {"weighted", dns::Policy::kWeighted},
      {"failover", dns::Policy::kFailover},
      {"geo", dns::Policy::kGeo},
      {"lowest_rtt", dns::Policy::kLowestRtt}};
  auto it = kPolicies.find(s);
  if (it == kPolicies.end()) return false;
  p = it->second;
  return true;
}

void read_gslb(Diag& d, Group& g, const Config& c, const std::string& path,
               std::vector<dns::GslbSource>& out) {
  dns::GslbSource s;
  s.file = c.file;
  s.line = static_cast<int>(g.setting().getSourceLine());
  std::string name;
  if (!g.str("name", name, true)) return;
  std::string err;
  if (!dns::parse_name(name, dns::Name{0}, s.name, err)) {
    d.error(g.setting()["name"], join(path, "name"), "bad name \"" + name + "\": " + err);
    return;
  }
  std::string policy = "round_robin";
  if (g.str("policy", policy) && !parse_policy(policy, s.policy))
    d.error(g.setting()["policy"], join(path, "policy"),
            "unknown policy \"" + policy + "\" (round_robin, weighted, failover, geo, lowest_rtt)");
  uint32_t answers = 1;
  g.u32("answers", answers, 1, 16);
  s.answers = static_cast<uint16_t>(answers);
  g.u32("ttl", s.ttl, 0, 86400);
  std::string down = "all";
  if (g.str("all_down", down)) {
    if (down == "all")
      s.all_down = dns::AllDown::kAll;
    else if (down == "backup")
      s.all_down = dns::AllDown::kBackup;
    else if (down == "servfail")
      s.all_down = dns::AllDown::kServfail;
    else
      d.error(g.setting()["all_down"], join(path, "all_down"),
              "must be \"all\", \"backup\" or \"servfail\", not \"" + down + "\"");
  }
  g.strings("backup", false, [&](const Setting& e, const std::string& p, const std::string& v) {
    if (auto a = parse_ipv4(v))
      s.backup.push_back(*a);
    else
      d.error(e, p, "not an IPv4 address: \"" + v + "\"");
  });
  if (s.all_down == dns::AllDown::kBackup && s.backup.empty())
    d.error(g.setting(), join(path, "backup"), "all_down = \"backup\" needs a backup list");
  each_group(d, g, "members", [&](Group& mg, int i) {
    const std::string mp = index(join(path, "members"), i);
    dns::GslbMemberSource m;
    std::string addr;
    if (mg.str("address", addr, true)) {
      if (auto a = parse_ipv4(addr))
        m.addr = *a;
      else
        d.error(mg.setting()["address"], join(mp, "address"),
                "not an IPv4 address: \"" + addr + "\"");
    }
    mg.u32("weight", m.weight, 0, 65535);
    mg.str("region", m.region);
    if (mg.str("check", m.check) &&
        std::none_of(c.health_checks.begin(), c.health_checks.end(),
                     [&](const health::CheckSpec& h) { return h.name == m.check; }))
      d.error(mg.setting()["check"], join(mp, "check"),
              "no health check named \"" + m.check + "\" in health.checks");
    s.members.push_back(std::move(m));
  });
  if (s.members.empty()) d.error(g.setting(), join(path, "members"), "a GSLB name needs members");
  if (s.members.size() > 64)
    d.error(g.setting(), join(path, "members"), "at most 64 members per name");
  if (s.policy == dns::Policy::kGeo && c.dns.geo.empty())
    d.error(g.setting(), join(path, "policy"), "policy \"geo\" needs dns.geo.networks");
  out.push_back(std::move(s));
}

}  // namespace

void read_health(Diag& d, Group& root, Config& c) {
  const Setting* s = root.find("health", Setting::TypeGroup, false);
  if (!s) return;
  Group g(d, *s, "health");
  each_group(d, g, "checks", [&](Group& cg, int i) {
    const std::string path = index("health.checks", i);
    health::CheckSpec h;
    if (!cg.str("name", h.name, true)) return;
    for (const auto& o : c.health_checks)
      if (o.name == h.name)
        d.error(cg.setting()["name"], join(path, "name"), "check \"" + h.name + "\" defined twice");
    std::string type;
    if (cg.str("type", type, true)) {
      if (type == "icmp")
        h.kind = health::Kind::kIcmp;
      else if (type == "tcp")
        h.kind = health::Kind::kTcp;
      else if (type == "http")
        h.kind = health::Kind::kHttp;
      else
        d.error(cg.setting()["type"], join(path, "type"),
                "must be \"icmp\", \"tcp\" or \"http\", not \"" + type + "\"");
    }
    cg.u16("port", h.port, 1, 65535);
    if (cg.str("path", h.path) && (h.path.empty() || h.path[0] != '/'))
      d.error(cg.setting()["path"], join(path, "path"), "must start with /");
    cg.str("host", h.host);
    cg.u16("expect_status", h.expect_status, 100, 599);
    cg.str("body", h.body_match);
    cg.u32("interval_ms", h.interval_ms, 100, 3600000);
    h.timeout_ms = std::min<uint32_t>(h.timeout_ms, h.interval_ms);
    cg.u32("timeout_ms", h.timeout_ms, 10, 600000);
    cg.u32("rise", h.rise, 1, 100);
    cg.u32("fall", h.fall, 1, 100);
    if (h.timeout_ms > h.interval_ms)
      d.error(cg.setting(), join(path, "timeout_ms"), "must not exceed interval_ms");
    c.health_checks.push_back(std::move(h));
  });
}

void read_exception(Diag& d, Group& root, Config& c) {
  const Setting* s = root.find("exception_path", Setting::TypeGroup, false);
  if (!s) return;
  Group g(d, *s, "exception_path");
  g.str("netns", c.exception.netns);
  g.str("interface", c.exception.interface);
  if (c.exception.interface.empty() || c.exception.interface.size() > 15)
    d.error(*s, "exception_path.interface", "must be 1 to 15 characters");
  if (c.exception.netns.empty() || c.exception.netns.find('/') != std::string::npos)
    d.error(*s, "exception_path.netns", "must be a plain name (it becomes /run/netns/<name>)");
}

void read_dns(Diag& d, Group& root, Config& c) {
  const bool staged = std::find(c.pipeline.begin(), c.pipeline.end(), "dns") != c.pipeline.end();
  const Setting* s = root.find("dns", Setting::TypeGroup, false);
  if (!s) {
    if (staged && root.setting().exists("pipeline"))
      d.error(root.setting()["pipeline"], "pipeline",
              "the \"dns\" stage needs a dns = { ... } group");
    return;
  }
  DnsConfig& x = c.dns;
  x.enabled = true;
  Group g(d, *s, "dns");
  g.strings("listen", false, [&](const Setting& e, const std::string& p, const std::string& v) {
    auto a = parse_ipv4(v);
    if (!a) {
      d.error(e, p, "not an IPv4 address: \"" + v + "\"");
      return;
    }
    bool ours = false;
    for (const auto& port : c.ports)
      for (const auto& ia : port.addresses) ours |= ia.addr == *a;
    if (!ours) d.error(e, p, v + " is not an address of any port");
    x.listen.push_back(*a);
  });
  g.u16("udp_max_payload", x.udp_max, 512, 4096);
  g.boolean("tcp", x.tcp);
  g.u32("tcp_idle_ms", x.tcp_idle_ms, 100, 600000);
  if (const Setting* r = g.find("rrl", Setting::TypeGroup, false)) {
    Group rg(d, *r, "dns.rrl");
    rg.u32("responses_per_second", x.rrl_rate, 0, 100000000);
    rg.u32("slip", x.rrl_slip, 0, 100);
    uint32_t pl = x.rrl_prefix;
    rg.u32("ipv4_prefix", pl, 8, 32);
    x.rrl_prefix = static_cast<uint8_t>(pl);
    rg.strings("exempt", false, [&](const Setting& e, const std::string& p, const std::string& v) {
      if (auto pf = parse_prefix(v))
        x.rrl_exempt.push_back(*pf);
      else
        d.error(e, p, "not a prefix (a.b.c.d/len, host bits zero): \"" + v + "\"");
    });
  }
  if (const Setting* gs = g.find("geo", Setting::TypeGroup, false)) {
    Group geo(d, *gs, "dns.geo");
    each_group(d, geo, "networks", [&](Group& ng, int i) {
      const std::string p = index("dns.geo.networks", i);
      std::string pf, region;
      ng.str("prefix", pf, true);
      ng.str("region", region, true);
      if (pf.empty()) return;
      if (auto px = parse_prefix(pf))
        x.geo.push_back({px->addr, px->len, region});
      else
        d.error(ng.setting()["prefix"], join(p, "prefix"),
                "not a prefix (a.b.c.d/len, host bits zero): \"" + pf + "\"");
    });
    // A MaxMind DB (GeoLite2/GeoIP2 Country or City), compiled into the same prefix table:
    // countries (ISO 3166 codes) and continents (two-letter codes) map to regions. Where a
    // `networks` prefix and a database network are the same prefix, they must agree.
    std::string mmdb;
    if (geo.str("mmdb", mmdb)) {
      dns::MmdbMapping map;
      auto codes = [&](const char* name, std::map<std::string, std::string>& into) {
        const Setting* m = geo.find(name, Setting::TypeGroup, false);
        if (!m) return;
        for (int i = 0; i < m->getLength(); ++i) {
          const Setting& e = (*m)[i];
          if (e.getType() != Setting::TypeString) {
            d.error(e, join(join("dns.geo", name), e.getName()), "must be a region name string");
            continue;
          }
          into[e.getName()] = static_cast<const char*>(e);
        }
      };
      codes("countries", map.countries);
      codes("continents", map.continents);
      if (map.countries.empty() && map.continents.empty())
        d.error(*gs, "dns.geo.mmdb", "give countries = { DE = \"eu\"; ... } and/or continents");
      const std::string full = mmdb[0] == '/' ? mmdb : dir_of(c.file) + "/" + mmdb;
      std::string err;
      if (!dns::load_mmdb(full, map, x.geo, err)) d.error((*gs)["mmdb"], "dns.geo.mmdb", err);
    } else {
      for (const char* n : {"countries", "continents"})
        if (geo.find(n, Setting::TypeGroup, false))
          d.error((*gs)[n], join("dns.geo", n), "only used with mmdb = \"file.mmdb\"");
    }
  }
  each_group(d, g, "zones",
             [&](Group& zg, int i) { read_zone(d, zg, c, index("dns.zones", i), x.zones); });
  each_group(d, g, "gslb",
             [&](Group& gg, int i) { read_gslb(d, gg, c, index("dns.gslb", i), x.gslb); });
  if (x.zones.empty()) d.error(*s, "dns.zones", "the responder needs at least one zone");
  if (!staged)
    d.error(*s, "dns",
            "a dns group is configured but the pipeline has no \"dns\" stage (add it after "
            "\"input\")");
  if (!d.errors().empty()) return;
  std::shared_ptr<dns::View> view;
  std::vector<dns::CompileError> errs;
  if (!dns::compile(x.zones, x.gslb, x.geo, view, errs)) {
    for (const auto& e : errs)
      d.errors().push_back({e.file.empty() ? c.file : e.file,
                            e.file.empty() ? static_cast<int>(s->getSourceLine()) : e.line, "dns",
                            e.message});
    return;
  }
  x.view = std::move(view);
}

}  // namespace nf::cfg
