// Reads and validates the `dhcp` group (schema: config/REFERENCE.md, "dhcp").
#include <algorithm>
#include <charconv>

#include "config/loader_util.h"

namespace nf::cfg {
namespace {

// Codes the server writes itself: a pool may not set them.
bool server_owned(unsigned code) {
  switch (code) {
    case 0:    // pad
    case 1:    // subnet mask (from `subnet`)
    case 12:   // host name (from reservations)
    case 50:   // requested address
    case 51:   // lease time
    case 52:   // overload
    case 53:   // message type
    case 54:   // server identifier
    case 55:   // parameter request list
    case 57:   // maximum message size
    case 58:   // T1
    case 59:   // T2
    case 61:   // client identifier (echoed, RFC 6842)
    case 80:   // rapid commit
    case 82:   // relay agent information (echoed)
    case 255:  // end
      return true;
    default:
      return false;
  }
}

void put32(std::vector<uint8_t>& v, uint32_t x) {
  for (int s = 24; s >= 0; s -= 8) v.push_back(static_cast<uint8_t>(x >> s));
}

// "a.b.c.d" or "a.b.c.d-e.f.g.h".
std::optional<AddrRange> parse_range(const std::string& s) {
  auto dash = s.find('-');
  auto a = parse_ipv4(s.substr(0, dash));
  if (!a) return std::nullopt;
  if (dash == std::string::npos) return AddrRange{*a, *a};
  auto b = parse_ipv4(s.substr(dash + 1));
  if (!b || *b < *a) return std::nullopt;
  return AddrRange{*a, *b};
}

// "01:02:ab" or "0102ab" -> bytes.
std::optional<std::vector<uint8_t>> parse_hex(const std::string& s) {
  std::string h;
  for (char ch : s)
    if (ch != ':' && ch != '-' && ch != ' ') h += ch;
  if (h.empty() || h.size() % 2) return std::nullopt;
  std::vector<uint8_t> out;
  for (size_t i = 0; i < h.size(); i += 2) {
    uint8_t b = 0;
    auto r = std::from_chars(h.data() + i, h.data() + i + 2, b, 16);
    if (r.ec != std::errc() || r.ptr != h.data() + i + 2) return std::nullopt;
    out.push_back(b);
  }
  return out;
}

class PoolReader {
 public:
  PoolReader(Diag& d, Config& c) : d_(d), c_(c) {}

  void read(Group& g, int i) {
    DhcpPool p;
    p.line = static_cast<int>(g.setting().getSourceLine());
    p.name = "pool" + std::to_string(i);
    g.str("name", p.name);
    std::string iface, relay, subnet;
    const bool has_iface = g.str("interface", iface);
    const bool has_relay = g.str("relay", relay);
    if (has_iface == has_relay) {
      d_.error(g.setting(), g.path(),
               "a pool needs exactly one of \"interface\" (clients on that port) or \"relay\" "
               "(relay agents whose giaddr is in that prefix)");
    }
    if (has_iface) {
      p.port = c_.port_index(iface);
      if (p.port < 0)
        d_.error(g.setting()["interface"], g.path() + ".interface",
                 "no port named \"" + iface + "\"");
    }
    if (has_relay) {
      auto pf = parse_prefix(relay);
      if (!pf || pf->len == 0)
        d_.error(g.setting()["relay"], g.path() + ".relay",
                 "bad relay prefix \"" + relay + "\" (want a.b.c.d/len)");
      else
        p.relay = *pf;
    }
    if (g.str("subnet", subnet)) {
      auto pf = parse_prefix(subnet);
      if (!pf || pf->len == 0 || pf->len > 30)
        d_.error(g.setting()["subnet"], g.path() + ".subnet",
                 "bad subnet \"" + subnet + "\" (want a.b.c.d/len, len 1..30, no host bits)");
      else
        p.subnet = *pf;
    } else if (p.port >= 0 && !c_.ports[p.port].addresses.empty()) {
      p.subnet = c_.ports[p.port].addresses.front().prefix();
    } else if (p.relay.len) {
      p.subnet = p.relay;
    } else if (p.port >= 0) {
      d_.error(g.setting()["interface"], g.path() + ".interface",
               "port \"" + iface +
                   "\" has no address (the server identifier must be an address of the port)");
    }
    if (p.port >= 0 && p.subnet.len) {
      bool on_port = false;
      for (const IfAddr& a : c_.ports[p.port].addresses) on_port |= p.subnet.contains(a.addr);
      if (!on_port)
        d_.error(g.setting(), g.path(),
                 "port \"" + iface + "\" has no address in subnet " + format_prefix(p.subnet) +
                     " (the server identifier must be an address of the port)");
    }

    g.strings("ranges", true, [&](const Setting& e, const std::string& path, const std::string& v) {
      auto r = parse_range(v);
      if (!r) return d_.error(e, path, "bad address range \"" + v + "\" (want a.b.c.d-e.f.g.h)");
      if (p.subnet.len && (!p.subnet.contains(r->first) || !p.subnet.contains(r->last) ||
                           r->contains(p.subnet.addr) || r->contains(p.subnet.broadcast())))
        return d_.error(
            e, path,
            "range " + v + " is not inside the hosts of subnet " + format_prefix(p.subnet));
      for (const AddrRange& o : p.ranges)
        if (r->first <= o.last && o.first <= r->last)
          return d_.error(e, path, "range " + v + " overlaps another range of this pool");
      for (const DhcpPool& q : c_.dhcp.pools)
        for (const AddrRange& o : q.ranges)
          if (r->first <= o.last && o.first <= r->last)
            return d_.error(e, path, "range " + v + " overlaps a range of pool \"" + q.name + "\"");
      if (r->size() > (1u << 24)) return d_.error(e, path, "range " + v + " is too large");
      p.ranges.push_back(*r);
    });
    g.strings("exclude", false,
              [&](const Setting& e, const std::string& path, const std::string& v) {
                auto r = parse_range(v);
                if (!r) return d_.error(e, path, "bad address range \"" + v + "\"");
                if (p.subnet.len && (!p.subnet.contains(r->first) || !p.subnet.contains(r->last)))
                  return d_.error(
                      e, path, "exclusion " + v + " is outside subnet " + format_prefix(p.subnet));
                p.exclude.push_back(*r);
              });
    g.u32("lease_time", p.lease_time, 60, 100u * 86400 * 365);
    g.u32("min_lease_time", p.min_lease_time, 10, 100u * 86400 * 365);
    g.u32("max_lease_time", p.max_lease_time, 60, 100u * 86400 * 365);
    if (p.min_lease_time > p.lease_time || p.lease_time > p.max_lease_time)
      d_.error(g.setting(), g.path(),
               "lease times must satisfy min_lease_time <= lease_time <= max_lease_time (" +
                   std::to_string(p.min_lease_time) + ", " + std::to_string(p.lease_time) + ", " +
                   std::to_string(p.max_lease_time) + ")");
    if (const Setting* o = g.find("options", Setting::TypeGroup, false)) {
      Group og(d_, *o, g.path() + ".options");
      read_options(og, p);
    }
    each_group(d_, g, "reservations", [&](Group& rg, int) { read_reservation(rg, p); });
    if (p.port < 0 && !p.relay.len) return;
    for (const DhcpPool& q : c_.dhcp.pools) {
      if (p.port >= 0 && q.port == p.port)
        return d_.error(g.setting(), g.path(),
                        "port \"" + iface + "\" already has pool \"" + q.name + "\"");
      if (p.relay.len && q.relay.len && p.relay.overlaps(q.relay))
        return d_.error(g.setting()["relay"], g.path() + ".relay",
                        "relay prefix overlaps that of pool \"" + q.name + "\"");
      if (q.name == p.name)
        return d_.error(g.setting(), g.path(), "duplicate pool name \"" + p.name + "\"");
    }
    c_.dhcp.pools.push_back(std::move(p));
  }

 private:
  void ips(Group& g, const char* name, uint8_t code, DhcpPool& p) {
    DhcpOption o{code, {}};
    g.strings(name, false, [&](const Setting& e, const std::string& path, const std::string& v) {
      auto a = parse_ipv4(v);
      if (!a) return d_.error(e, path, "bad IPv4 address \"" + v + "\"");
      put32(o.data, *a);
    });
    if (!o.data.empty()) add(g, name, p, std::move(o));
  }

  void add(Group& g, const char* name, DhcpPool& p, DhcpOption o) {
    if (o.data.size() > 255) {
      d_.error(g.setting()[name], join(g.path(), name), "value longer than 255 bytes");
      return;
    }
    for (const DhcpOption& x : p.options)
      if (x.code == o.code) {
        d_.error(g.setting()[name], join(g.path(), name),
                 "option " + std::to_string(o.code) + " is set twice");
        return;
      }
    p.options.push_back(std::move(o));
  }

  void read_options(Group& g, DhcpPool& p) {
    ips(g, "router", 3, p);
    ips(g, "dns_servers", 6, p);
    ips(g, "ntp_servers", 42, p);
    std::string s;
    if (g.str("domain_name", s)) {
      if (s.empty() || s.size() > 255)
        d_.error(g.setting()["domain_name"], g.path() + ".domain_name", "must be 1..255 bytes");
      else
        add(g, "domain_name", p, {15, std::vector<uint8_t>(s.begin(), s.end())});
    }
    if (g.str("broadcast", s)) {
      auto a = parse_ipv4(s);
      if (!a) {
        d_.error(g.setting()["broadcast"], g.path() + ".broadcast", "bad IPv4 address");
      } else {
        DhcpOption o{28, {}};
        put32(o.data, *a);
        add(g, "broadcast", p, std::move(o));
      }
    }
    uint32_t mtu = 0;
    g.u32("mtu", mtu, 68, 65535);
    if (mtu) add(g, "mtu", p, {26, {static_cast<uint8_t>(mtu >> 8), static_cast<uint8_t>(mtu)}});
    DhcpOption routes{121, {}};
    g.strings("classless_routes", false,
              [&](const Setting& e, const std::string& path, const std::string& v) {
                // "10.99.0.0/16 via 10.10.0.1"
                auto sp = v.find(" via ");
                std::optional<Prefix> pf;
                std::optional<uint32_t> gw;
                if (sp != std::string::npos) {
                  pf = parse_prefix(v.substr(0, sp));
                  gw = parse_ipv4(v.substr(sp + 5));
                }
                if (!pf || !gw)
                  return d_.error(e, path,
                                  "bad route \"" + v + "\" (want \"a.b.c.d/len via e.f.g.h\")");
                // RFC 3442: width, the significant octets of the destination, the router.
                routes.data.push_back(pf->len);
                for (int k = 0; k < (pf->len + 7) / 8; ++k)
                  routes.data.push_back(static_cast<uint8_t>(pf->addr >> (24 - 8 * k)));
                put32(routes.data, *gw);
              });
    if (!routes.data.empty()) add(g, "classless_routes", p, std::move(routes));
    each_group(d_, g, "custom", [&](Group& cg, int) { read_custom(cg, p); });
  }

  void read_custom(Group& g, DhcpPool& p) {
    uint32_t code = 0;
    std::string type;
    g.u32("code", code, 1, 254, true);
    g.str("type", type, true);
    // Looked up before any early return, so a bad code or type is not also an unknown `value`.
    const Setting* v = g.setting().exists("value") ? &g.setting()["value"] : nullptr;
    g.find("value", v ? v->getType() : Setting::TypeString, true);
    if (!code || type.empty()) return;
    if (server_owned(code)) {
      d_.error(g.setting()["code"], g.path() + ".code",
               "option " + std::to_string(code) + " is written by the server itself");
      return;
    }
    if (!v) return;
    DhcpOption o{static_cast<uint8_t>(code), {}};
    auto bad = [&](const std::string& why) { d_.error(*v, g.path() + ".value", why); };
    // False (and reported) when the value is not an integer of that size.
    auto integer = [&](unsigned bytes, uint64_t max) {
      if (v->getType() != Setting::TypeInt && v->getType() != Setting::TypeInt64) {
        bad("must be an integer for type \"" + type + "\"");
        return false;
      }
      long long x = as_int(*v);
      if (x < 0 || static_cast<uint64_t>(x) > max) {
        bad("value " + std::to_string(x) + " does not fit type \"" + type + "\"");
        return false;
      }
      for (int s = static_cast<int>(bytes) * 8 - 8; s >= 0; s -= 8)
        o.data.push_back(static_cast<uint8_t>(static_cast<uint64_t>(x) >> s));
      return true;
    };
    if (type == "u8") {
      if (!integer(1, 0xff)) return;
    } else if (type == "u16") {
      if (!integer(2, 0xffff)) return;
    } else if (type == "u32") {
      if (!integer(4, 0xffffffff)) return;
    } else if (type == "bool") {
      if (v->getType() != Setting::TypeBoolean) return bad("must be true or false");
      o.data.push_back(static_cast<bool>(*v) ? 1 : 0);
    } else if (type == "string") {
      if (v->getType() != Setting::TypeString) return bad("must be a string");
      std::string s = static_cast<const char*>(*v);
      o.data.assign(s.begin(), s.end());
    } else if (type == "hex") {
      auto h = v->getType() == Setting::TypeString ? parse_hex(static_cast<const char*>(*v))
                                                   : std::nullopt;
      if (!h) return bad("must be a string of hex bytes (\"01:02:0a\")");
      o.data = *h;
    } else if (type == "ip" || type == "ips") {
      std::vector<std::string> vals;
      if (v->getType() == Setting::TypeString) {
        vals.emplace_back(static_cast<const char*>(*v));
      } else if (v->getType() == Setting::TypeArray) {
        for (int k = 0; k < v->getLength(); ++k)
          if ((*v)[k].getType() == Setting::TypeString)
            vals.emplace_back(static_cast<const char*>((*v)[k]));
          else
            return bad("must be IPv4 address strings");
      }
      if (vals.empty() || (type == "ip" && vals.size() != 1))
        return bad(type == "ip" ? "must be one IPv4 address" : "must be IPv4 addresses");
      for (const auto& s : vals) {
        auto a = parse_ipv4(s);
        if (!a) return bad("bad IPv4 address \"" + s + "\"");
        put32(o.data, *a);
      }
    } else {
      d_.error(g.setting()["type"], g.path() + ".type",
               "unknown type \"" + type + "\" (u8, u16, u32, bool, string, hex, ip, ips)");
      return;
    }
    if (o.data.empty() && type != "string") return bad("empty value");
    if (o.data.size() > 255) return bad("value longer than 255 bytes");
    for (const DhcpOption& x : p.options)
      if (x.code == o.code)
        return d_.error(g.setting()["code"], g.path() + ".code",
                        "option " + std::to_string(code) + " is set twice");
    p.options.push_back(std::move(o));
  }

  void read_reservation(Group& g, DhcpPool& p) {
    DhcpReservation r;
    std::string mac, cid, addr;
    const bool has_mac = g.str("mac", mac);
    const bool has_cid = g.str("client_id", cid);
    g.str("hostname", r.hostname);
    if (!g.str("address", addr, true)) return;
    if (has_mac == has_cid) {
      d_.error(g.setting(), g.path(),
               "a reservation needs exactly one of \"mac\" or \"client_id\"");
      return;
    }
    if (has_mac) {
      auto m = parse_mac(mac);
      if (!m || m->is_multicast() || m->is_zero())
        return d_.error(g.setting()["mac"], g.path() + ".mac", "bad MAC address \"" + mac + "\"");
      r.mac = *m;
    } else {
      auto h = parse_hex(cid);
      if (!h || h->size() < 2)
        return d_.error(g.setting()["client_id"], g.path() + ".client_id",
                        "bad client identifier \"" + cid + "\" (hex bytes, type byte first)");
      r.client_id = *h;
    }
    auto a = parse_ipv4(addr);
    if (!a) return d_.error(g.setting()["address"], g.path() + ".address", "bad address");
    if (p.subnet.len &&
        (!p.subnet.contains(*a) || *a == p.subnet.addr || *a == p.subnet.broadcast()))
      return d_.error(g.setting()["address"], g.path() + ".address",
                      addr + " is not a host address of subnet " + format_prefix(p.subnet));
    for (const auto& port : c_.ports)
      for (const auto& ia : port.addresses)
        if (ia.addr == *a)
          return d_.error(g.setting()["address"], g.path() + ".address",
                          addr + " is an address of the appliance");
    if (r.hostname.size() > 63)
      return d_.error(g.setting()["hostname"], g.path() + ".hostname", "longer than 63 bytes");
    for (const DhcpPool& q : c_.dhcp.pools)
      for (const auto& o : q.reservations)
        if (o.address == *a)
          return d_.error(g.setting()["address"], g.path() + ".address",
                          addr + " is reserved twice");
    for (const auto& o : p.reservations) {
      if (o.address == *a)
        return d_.error(g.setting()["address"], g.path() + ".address", addr + " is reserved twice");
      if ((r.mac && o.mac == r.mac) || (!r.client_id.empty() && o.client_id == r.client_id))
        return d_.error(g.setting(), g.path(), "this client already has a reservation");
    }
    r.address = *a;
    p.reservations.push_back(std::move(r));
  }

  Diag& d_;
  Config& c_;
};

}  // namespace

void read_dhcp(Diag& d, Group& root, Config& c) {
  const bool staged = std::find(c.pipeline.begin(), c.pipeline.end(), "dhcp") != c.pipeline.end();
  const Setting* s = root.find("dhcp", Setting::TypeGroup, false);
  if (!s) {
    if (staged && root.setting().exists("pipeline"))
      d.error(root.setting()["pipeline"], "pipeline",
              "the \"dhcp\" stage needs a dhcp = { ... } group");
    return;
  }
  DhcpConfig& x = c.dhcp;
  x.enabled = true;
  Group g(d, *s, "dhcp");
  if (g.str("journal", x.journal_dir) && (x.journal_dir.empty() || x.journal_dir[0] != '/'))
    d.error((*s)["journal"], "dhcp.journal", "must be an absolute directory path");
  g.boolean("sync", x.sync);
  g.u32("max_leases", x.max_leases, 16, 1u << 24);
  g.u32("offer_hold", x.offer_hold, 1, 3600);
  g.u32("decline_hold", x.decline_hold, 0, 30u * 86400);
  g.boolean("rapid_commit", x.rapid_commit);
  g.boolean("authoritative", x.authoritative);
  g.u32("client_rate", x.client_rate, 0, 1000000);
  g.u32("client_burst", x.client_burst, 1, 1000000);
  g.u32("compact_records", x.compact_records, 1000, 1u << 30);
  PoolReader pr(d, c);
  each_group(d, g, "pools", [&](Group& pg, int i) { pr.read(pg, i); });
  if (!staged)
    d.error(*s, "dhcp",
            "a dhcp group is configured but the pipeline has no \"dhcp\" stage (add it after "
            "\"input\")");
}

}  // namespace nf::cfg
