// DNS messages for tests, fuzzers and benchmarks: a query builder (name, type, flags, EDNS
// size, DO, ECS, version -> wire bytes) and a response decoder that parses a whole answer,
// following compression pointers with loop protection, into header fields, the question and
// the records as text. A test that asserts on decoded content has also proved that every
// compression pointer in the answer is valid.
#pragma once

#include <arpa/inet.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "nf/dns/engine.h"
#include "nf/dns/zone.h"
#include "nf/dns/zonefile.h"
#include "nf/health/monitor.h"
#include "nf/net/addr.h"
#include "tests/common/packet_builder.h"

namespace nf::test {

struct DnsQuery {
  std::string name = "lab.example.";  // presentation; case is kept (0x20 tests)
  uint16_t type = 1;
  uint16_t qclass = 1;
  uint16_t id = 0x1234;
  uint16_t flags = 0x0100;  // RD
  uint16_t qdcount = 1;     // only the header field: the question is written once
  bool edns = false;
  uint16_t udp_size = 1232;
  bool do_bit = false;
  uint8_t version = 0;
  bool ecs = false;
  uint16_t ecs_family = 1;
  uint32_t ecs_addr = 0;  // IPv4, host order; masked to ecs_source bits
  uint8_t ecs_source = 24;
  uint8_t ecs_scope = 0;

  // Text -> uncompressed wire name ("." is the root; a trailing dot is optional).
  static std::vector<uint8_t> wire_name(std::string_view s) {
    std::vector<uint8_t> out;
    while (!s.empty() && s != ".") {
      const size_t dot = s.find('.');
      const std::string_view label = s.substr(0, dot);
      out.push_back(static_cast<uint8_t>(label.size()));
      out.insert(out.end(), label.begin(), label.end());
      if (dot == std::string_view::npos) break;
      s.remove_prefix(dot + 1);
    }
    out.push_back(0);
    return out;
  }

  std::vector<uint8_t> build() const {
    std::vector<uint8_t> b(12, 0);
    b[0] = static_cast<uint8_t>(id >> 8);
    b[1] = static_cast<uint8_t>(id);
    b[2] = static_cast<uint8_t>(flags >> 8);
    b[3] = static_cast<uint8_t>(flags);
    b[5] = static_cast<uint8_t>(qdcount);
    b[4] = static_cast<uint8_t>(qdcount >> 8);
    b[11] = edns ? 1 : 0;
    const std::vector<uint8_t> n = wire_name(name);
    b.insert(b.end(), n.begin(), n.end());
    put16(b, type);
    put16(b, qclass);
    if (edns) append_opt(b);
    return b;
  }

  // An OPT record as this query would carry it (tests append a second one for FORMERR).
  void append_opt(std::vector<uint8_t>& b) const {
    b.push_back(0);
    put16(b, 41);
    put16(b, udp_size);
    b.push_back(0);
    b.push_back(version);
    put16(b, do_bit ? 0x8000 : 0);
    std::vector<uint8_t> rd;
    if (ecs) {
      const uint32_t alen = (ecs_source + 7u) / 8u;
      put16(rd, 8);
      put16(rd, static_cast<uint16_t>(4 + alen));
      put16(rd, ecs_family);
      rd.push_back(ecs_source);
      rd.push_back(ecs_scope);
      const uint32_t mask =
          ecs_source == 0 ? 0 : ~uint32_t{0} << (32 - std::min<int>(ecs_source, 32));
      const uint32_t a = ecs_addr & mask;
      for (uint32_t i = 0; i < alen; ++i)
        rd.push_back(i < 4 ? static_cast<uint8_t>(a >> (24 - 8 * i)) : 0);
    }
    put16(b, static_cast<uint16_t>(rd.size()));
    b.insert(b.end(), rd.begin(), rd.end());
  }

  static void put16(std::vector<uint8_t>& b, uint16_t v) {
    b.push_back(static_cast<uint8_t>(v >> 8));
    b.push_back(static_cast<uint8_t>(v));
  }
};

struct DnsRr {
  std::string owner;  // presentation, as sent (case kept), absolute with the trailing dot
  uint16_t type = 0;
  uint16_t rclass = 0;
  uint32_t ttl = 0;
  std::string rdata;  // presentation for the types we know, else hex
};

struct DnsAnswer {
  uint16_t id = 0;
  uint16_t flags = 0;
  bool qr = false, aa = false, tc = false, rd = false, ra = false, cd = false;
  uint8_t opcode = 0;
  uint16_t rcode = 0;  // with the OPT's extended bits when there is one
  uint16_t qd = 0, an = 0, ns = 0, ar = 0;
  std::string qname;
  uint16_t qtype = 0, qclass = 0;
  std::vector<DnsRr> answer, authority, additional;  // additional excludes the OPT
  bool opt = false;
  uint16_t opt_size = 0;
  uint8_t opt_version = 0;
  bool do_bit = false;
  bool ecs = false;
  uint16_t ecs_family = 0;
  uint8_t ecs_source = 0, ecs_scope = 0;
  std::string error;  // why decode() failed

  // Owners/rdata of one section, "owner TYPE rdata" each (for readable assertions).
  static std::vector<std::string> lines(const std::vector<DnsRr>& s) {
    std::vector<std::string> out;
    for (const DnsRr& r : s) out.push_back(r.owner + " " + type_name(r.type) + " " + r.rdata);
    return out;
  }
  static std::string type_name(uint16_t t) {
    switch (t) {
      case 1:
        return "A";
      case 2:
        return "NS";
      case 5:
        return "CNAME";
      case 6:
        return "SOA";
      case 12:
        return "PTR";
      case 13:
        return "HINFO";
      case 15:
        return "MX";
      case 16:
        return "TXT";
      case 28:
        return "AAAA";
      case 33:
        return "SRV";
      case 257:
        return "CAA";
      default:
        return "TYPE" + std::to_string(t);
    }
  }
};

class DnsDecoder {
 public:
  DnsDecoder(const uint8_t* m, size_t n) : m_(m), n_(n) {}

  bool decode(DnsAnswer& a) {
    if (n_ < 12) return fail(a, "shorter than a header");
    a.id = u16(0);
    a.flags = u16(2);
    a.qr = a.flags & 0x8000;
    a.opcode = static_cast<uint8_t>((a.flags >> 11) & 0xf);
    a.aa = a.flags & 0x0400;
    a.tc = a.flags & 0x0200;
    a.rd = a.flags & 0x0100;
    a.ra = a.flags & 0x0080;
    a.cd = a.flags & 0x0010;
    a.rcode = a.flags & 0xf;
    a.qd = u16(4);
    a.an = u16(6);
    a.ns = u16(8);
    a.ar = u16(10);
    size_t off = 12;
    if (a.qd > 1) return fail(a, "more than one question");
    if (a.qd == 1) {
      if (!name(off, a.qname)) return fail(a, "bad question name");
      if (off + 4 > n_) return fail(a, "question runs past the end");
      a.qtype = u16(off);
      a.qclass = u16(off + 2);
      off += 4;
    }
    const uint32_t total = uint32_t{a.an} + a.ns + a.ar;
    for (uint32_t i = 0; i < total; ++i) {
      DnsRr r;
      if (!name(off, r.owner)) return fail(a, "bad owner name in record " + std::to_string(i));
      if (off + 10 > n_) return fail(a, "record header runs past the end");
      r.type = u16(off);
      r.rclass = u16(off + 2);
      r.ttl = static_cast<uint32_t>(u16(off + 4)) << 16 | u16(off + 6);
      const size_t rdlen = u16(off + 8);
      off += 10;
      if (off + rdlen > n_) return fail(a, "rdata runs past the end");
      if (r.type == 41) {
        if (i < uint32_t{a.an} + a.ns) return fail(a, "OPT outside ADDITIONAL");
        if (a.opt) return fail(a, "two OPT records");
        if (r.owner != ".") return fail(a, "OPT owner is not the root");
        a.opt = true;
        a.opt_size = r.rclass;
        a.rcode = static_cast<uint16_t>(a.rcode | (r.ttl >> 24) << 4);
        a.opt_version = static_cast<uint8_t>(r.ttl >> 16);
        a.do_bit = r.ttl & 0x8000;
        if (!opt_options(off, rdlen, a)) return fail(a, "bad OPT options");
      } else {
        if (!rdata(r.type, off, rdlen, r.rdata)) return fail(a, "bad rdata of " + r.owner);
        (i < a.an ? a.answer : i < uint32_t{a.an} + a.ns ? a.authority : a.additional).push_back(r);
      }
      off += rdlen;
    }
    if (off != n_) return fail(a, "trailing bytes after the records");
    return true;
  }

 private:
  static bool fail(DnsAnswer& a, std::string why) {
    a.error = std::move(why);
    return false;
  }
  uint16_t u16(size_t o) const { return static_cast<uint16_t>(m_[o] << 8 | m_[o + 1]); }

  // A possibly compressed name at off (advanced past it). Pointers must point backwards to an
  // earlier position than any seen so far for this name, so a loop cannot happen.
  bool name(size_t& off, std::string& out, size_t limit = 0) const {
    if (limit == 0) limit = n_;
    out.clear();
    size_t p = off;
    size_t lowest = off;  // pointers must go strictly below this
    bool jumped = false;
    size_t wire = 0;
    for (int guard = 0; guard < 256; ++guard) {
      if (p >= (jumped ? n_ : limit)) return false;
      const uint8_t l = m_[p];
      if (l == 0) {
        if (!jumped) off = p + 1;
        if (out.empty()) out = ".";
        return wire + 1 <= 255;
      }
      if ((l & 0xc0) == 0xc0) {
        if (p + 2 > (jumped ? n_ : limit)) return false;
        const size_t t = static_cast<size_t>(l & 0x3f) << 8 | m_[p + 1];
        if (t >= lowest || t < 12) return false;
        if (!jumped) off = p + 2;
        jumped = true;
        lowest = t;
        p = t;
        continue;
      }
      if (l > 63) return false;
      if (p + 1 + l > (jumped ? n_ : limit)) return false;
      wire += l + 1u;
      if (wire > 254) return false;
      for (size_t i = 0; i < l; ++i) {
        const uint8_t c = m_[p + 1 + i];
        if (c == '.' || c == '\\') {
          out += '\\';
          out += static_cast<char>(c);
        } else if (c > 0x20 && c < 0x7f) {
          out += static_cast<char>(c);
        } else {
          char e[8];
          std::snprintf(e, sizeof e, "\\%03u", c);
          out += e;
        }
      }
      out += '.';
      p += 1 + l;
    }
    return false;
  }

  bool text(size_t& o, size_t end, std::string& out) const {
    if (o >= end) return false;
    const size_t l = m_[o];
    if (o + 1 + l > end) return false;
    out += '"';
    for (size_t i = 0; i < l; ++i) {
      const uint8_t c = m_[o + 1 + i];
      if (c == '"' || c == '\\') {
        out += '\\';
        out += static_cast<char>(c);
      } else if (c >= 0x20 && c < 0x7f) {
        out += static_cast<char>(c);
      } else {
        char e[8];
        std::snprintf(e, sizeof e, "\\%03u", c);
        out += e;
      }
    }
    out += '"';
    o += 1 + l;
    return true;
  }

  bool rdata(uint16_t type, size_t off, size_t len, std::string& out) const {
    const size_t end = off + len;
    size_t o = off;
    std::string s;
    auto num = [&](size_t bytes) {
      uint32_t v = 0;
      for (size_t i = 0; i < bytes; ++i) v = v << 8 | m_[o + i];
      o += bytes;
      out += std::to_string(v);
    };
    switch (type) {
      case 1: {
        if (len != 4) return false;
        char b[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, m_ + off, b, sizeof b);
        out = b;
        return true;
      }
      case 28: {
        if (len != 16) return false;
        char b[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, m_ + off, b, sizeof b);
        out = b;
        return true;
      }
      case 2:
      case 5:
      case 12:
        if (!name(o, out, end)) return false;
        return o == end;
      case 15:
        if (len < 3) return false;
        num(2);
        out += ' ';
        if (!name(o, s, end)) return false;
        out += s;
        return o == end;
      case 6:
        if (!name(o, s, end)) return false;
        out = s;
        if (!name(o, s, end)) return false;
        out += ' ' + s;
        if (end - o != 20) return false;
        for (int i = 0; i < 5; ++i) {
          out += ' ';
          num(4);
        }
        return true;
      case 33:
        if (len < 7) return false;
        num(2);
        out += ' ';
        num(2);
        out += ' ';
        num(2);
        out += ' ';
        if (!name(o, s, end)) return false;
        out += s;
        return o == end;
      case 16:
        if (len == 0) return false;
        while (o < end) {
          if (!out.empty()) out += ' ';
          if (!text(o, end, out)) return false;
        }
        return true;
      case 13:
        if (!text(o, end, out)) return false;
        out += ' ';
        if (!text(o, end, out)) return false;
        return o == end;
      case 257: {
        if (len < 2) return false;
        num(1);
        out += ' ';
        const size_t tl = m_[o++];
        if (tl == 0 || o + tl > end) return false;
        out.append(reinterpret_cast<const char*>(m_ + o), tl);
        o += tl;
        out += " \"";
        out.append(reinterpret_cast<const char*>(m_ + o), end - o);
        out += '"';
        return true;
      }
      default:
        for (size_t i = 0; i < len; ++i) {
          char h[4];
          std::snprintf(h, sizeof h, "%02x", m_[off + i]);
          out += h;
        }
        return true;
    }
  }

  bool opt_options(size_t off, size_t len, DnsAnswer& a) const {
    size_t i = 0;
    while (i < len) {
      if (len - i < 4) return false;
      const uint16_t code = u16(off + i);
      const uint16_t olen = u16(off + i + 2);
      i += 4;
      if (olen > len - i) return false;
      if (code == 8) {
        if (olen < 4 || a.ecs) return false;
        a.ecs = true;
        a.ecs_family = u16(off + i);
        a.ecs_source = m_[off + i + 2];
        a.ecs_scope = m_[off + i + 3];
        if (olen - 4u != (a.ecs_source + 7u) / 8u) return false;
      }
      i += olen;
    }
    return true;
  }

  const uint8_t* m_;
  size_t n_;
};

inline bool decode_dns(const uint8_t* m, size_t n, DnsAnswer& a) {
  return DnsDecoder(m, n).decode(a);
}
inline DnsAnswer decode_dns(const std::vector<uint8_t>& m) {
  DnsAnswer a;
  decode_dns(m.data(), m.size(), a);
  return a;
}

// An Ethernet/IPv4/UDP frame carrying `msg` from src:40000 to dst:53 (golden stage fixtures).
inline std::vector<uint8_t> dns_frame(const std::vector<uint8_t>& msg, uint32_t src, uint32_t dst,
                                      uint16_t sport = 40000) {
  Ip4Opts o;
  o.src = src;
  o.dst = dst;
  o.payload = static_cast<uint16_t>(sizeof(rte_udp_hdr) + msg.size());
  PacketBuilder pb;
  pb.eth(kPortMac, kHostMac, RTE_ETHER_TYPE_IPV4).ipv4(o);
  std::vector<uint8_t> f = pb.build();
  const size_t l4 = sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr);
  auto* u = reinterpret_cast<rte_udp_hdr*>(&f[l4]);
  u->src_port = rte_cpu_to_be_16(sport);
  u->dst_port = rte_cpu_to_be_16(53);
  std::memcpy(&f[l4 + sizeof(rte_udp_hdr)], msg.data(), msg.size());
  auto* ip = reinterpret_cast<rte_ipv4_hdr*>(&f[sizeof(rte_ether_hdr)]);
  u->dgram_cksum = 0;
  u->dgram_cksum = rte_ipv4_udptcp_cksum(ip, u);
  return f;
}

// The lab zone (config/zones/lab.example.zone) plus a few records the tests need, a reverse
// zone, GSLB names of every policy and a geo map, compiled into a View, with health slots
// (one per target, slot index = target index) that tests turn up and down.
struct DnsLab {
  static constexpr const char* kExtra = R"(
cdn     IN CNAME www
tocdn   IN CNAME cdn
tosub   IN CNAME foo.sub
loop1   IN CNAME loop2
loop2   IN CNAME loop1
Mixed   IN A     10.20.0.77
)";
  static constexpr const char* kReverse = R"(
@   IN SOA ns1.lab.example. hostmaster.lab.example. 1 3600 600 604800 120
    IN NS  ns1.lab.example.
1   IN PTR host.lab.example.
)";

  std::shared_ptr<dns::View> view;
  std::unique_ptr<health::Slot[]> slots;
  std::vector<uint32_t> slot_of_target;
  dns::Env env;
  dns::State st;
  dns::Counters c{};
  std::vector<std::string> errors;

  static dns::Name name(const char* s) {
    dns::Name n;
    std::string err;
    dns::parse_name(s, dns::Name{0}, n, err);
    return n;
  }
  static uint32_t ip(const char* s) { return parse_ipv4(s).value_or(0); }

  static dns::GslbSource gslb(const char* n, dns::Policy p,
                              std::vector<dns::GslbMemberSource> members, uint16_t answers = 1) {
    dns::GslbSource g;
    g.name = name(n);
    g.policy = p;
    g.members = std::move(members);
    g.answers = answers;
    g.ttl = 30;
    return g;
  }
  static dns::GslbMemberSource m(const char* a, uint32_t weight = 1, const char* region = "",
                                 const char* check = "tcp80") {
    return {ip(a), weight, region, check};
  }

  static std::vector<dns::GslbSource> default_gslb() {
    using dns::Policy;
    std::vector<dns::GslbSource> g;
    g.push_back(gslb("www.lab.example.", Policy::kRoundRobin,
                     {m("10.20.0.11"), m("10.20.0.12"), m("10.20.0.13")}));
    g.push_back(gslb("weighted.lab.example.", Policy::kWeighted,
                     {m("10.20.1.1", 1), m("10.20.1.2", 2), m("10.20.1.3", 3)}));
    g.push_back(gslb("failover.lab.example.", Policy::kFailover,
                     {m("10.20.2.1"), m("10.20.2.2"), m("10.20.2.3")}));
    g.push_back(
        gslb("geo.lab.example.", Policy::kGeo,
             {m("10.30.0.1", 1, "eu"), m("10.30.0.2", 1, "us"), m("10.30.0.3", 1, "asia")}));
    g.push_back(gslb("fast.lab.example.", Policy::kLowestRtt,
                     {m("10.20.3.1"), m("10.20.3.2"), m("10.20.3.3")}));
    g.push_back(gslb("multi.lab.example.", Policy::kRoundRobin,
                     {m("10.20.4.1"), m("10.20.4.2"), m("10.20.4.3"), m("10.20.4.4")}, 2));
    g.push_back(gslb("drained.lab.example.", Policy::kWeighted,
                     {m("10.20.5.1", 0), m("10.20.5.2", 1), m("10.20.5.3", 0)}));
    auto sf = gslb("sf.lab.example.", Policy::kRoundRobin, {m("10.20.6.1")});
    sf.all_down = dns::AllDown::kServfail;
    g.push_back(sf);
    auto bk = gslb("bk.lab.example.", Policy::kRoundRobin, {m("10.20.7.1")});
    bk.all_down = dns::AllDown::kBackup;
    bk.backup = {ip("192.0.2.200")};
    g.push_back(bk);
    auto all = gslb("all.lab.example.", Policy::kFailover, {m("10.20.8.1"), m("10.20.8.2")});
    all.all_down = dns::AllDown::kAll;
    g.push_back(all);
    return g;
  }
  static std::vector<dns::GeoSource> default_geo() {
    return {{ip("192.0.2.0"), 24, "eu"},
            {ip("198.51.100.0"), 24, "us"},
            {ip("203.0.113.0"), 24, "asia"},
            {ip("10.0.0.0"), 8, "eu"},
            {ip("10.99.0.0"), 16, "us"}};
  }

  explicit DnsLab([[maybe_unused]] bool with_file = true,  // false: kLabText, a copy of the file
                  std::vector<dns::GslbSource> g = default_gslb(),
                  std::vector<dns::GeoSource> geo = default_geo()) {
    std::vector<dns::ZoneSource> zones;
    {
      dns::MasterParser p(name("lab.example."), 300);
#ifdef NF_SOURCE_DIR
      if (with_file) {
        p.feed_file(NF_SOURCE_DIR "/config/zones/lab.example.zone");
      } else
#endif
      {
        // The same zone without reading a file (the fuzzer's working directory may differ).
        p.feed(kLabText, "lab.example.zone", 1);
      }
      p.feed(kExtra, "extra", 1);
      for (const auto& e : p.errors()) errors.push_back(e.str());
      zones.push_back({name("lab.example."), "lab", 1, p.records()});
    }
    {
      dns::MasterParser p(name("2.0.192.in-addr.arpa."), 300);
      p.feed(kReverse, "reverse", 1);
      for (const auto& e : p.errors()) errors.push_back(e.str());
      zones.push_back({name("2.0.192.in-addr.arpa."), "reverse", 1, p.records()});
    }
    std::vector<dns::CompileError> errs;
    if (!dns::compile(zones, g, geo, view, errs))
      for (const auto& e : errs)
        errors.push_back(e.file + ":" + std::to_string(e.line) + ": " + e.message);
    if (!view) return;
    slots.reset(new health::Slot[std::max<size_t>(view->targets.size(), 1)]);
    for (uint32_t i = 0; i < view->targets.size(); ++i) slot_of_target.push_back(i);
    env.view = view.get();
    env.slots = slots.get();
    env.slot_of_target = slot_of_target.data();
    env.udp_max = 1232;
  }

  // The health slot of a member address (all its checks).
  void set_up(const char* addr, bool up) {
    for (uint32_t i = 0; i < view->targets.size(); ++i)
      if (view->targets[i].addr == ip(addr)) slots[i].up.store(up ? 1 : 0);
  }
  void set_rtt(const char* addr, uint32_t rtt) {
    for (uint32_t i = 0; i < view->targets.size(); ++i)
      if (view->targets[i].addr == ip(addr)) slots[i].rtt_us.store(rtt);
  }
  const dns::Gslb& g(const char* n) const {
    const std::string want = std::string(n);
    for (const auto& x : view->gslbs)
      if (x.name == want) return x;
    return view->gslbs.front();
  }

  // Runs a query through answer(); the answer's bytes (empty when nothing is sent).
  std::vector<uint8_t> raw(const std::vector<uint8_t>& query, uint32_t client = ip("192.0.2.10"),
                           uint32_t cap = 1500, bool tcp = false) {
    std::vector<uint8_t> buf(std::max<size_t>(cap, query.size()) + 64, 0xee);
    std::memcpy(buf.data(), query.data(), query.size());
    const uint32_t n =
        dns::answer(buf.data(), static_cast<uint32_t>(query.size()), cap, tcp, client, env, st, c);
    buf.resize(n);
    return buf;
  }
  DnsAnswer ask(const DnsQuery& q, uint32_t client = ip("192.0.2.10"), uint32_t cap = 1500,
                bool tcp = false) {
    const std::vector<uint8_t> a = raw(q.build(), client, cap, tcp);
    DnsAnswer d;
    if (a.empty()) {
      d.error = "no answer";
      return d;
    }
    decode_dns(a.data(), a.size(), d);
    return d;
  }

  static constexpr const char* kLabText = R"($ORIGIN lab.example.
$TTL 300
@           IN SOA  ns1 hostmaster ( 2026112101 3600 600 604800 60 )
            IN NS   ns1
            IN MX   10 mail
            IN TXT  "v=spf1 -all"
            IN CAA  0 issue "letsencrypt.org"
ns1         IN A    10.10.0.1
mail        IN A    10.20.0.25
            IN AAAA 2001:db8:20::25
srv1        IN A    10.20.0.11
srv2        IN A    10.20.0.12
srv3        IN A    10.20.0.13
v6          IN AAAA 2001:db8:20::11
alias       IN CNAME srv1
chain       IN CNAME alias
outside     IN CNAME www.example.org.
_http._tcp  IN SRV  10 60 80 srv1
            IN SRV  20 40 80 srv2
*.wild      IN A    10.20.0.99
            IN TXT  "wildcard"
deep.wild   IN TXT  "deep"
sub         IN NS   ns.sub
ns.sub      IN A    10.10.0.53
big         IN TXT  "0123456789012345678901234567890123456789012345678901234567890123456789"
            IN TXT  "1123456789012345678901234567890123456789012345678901234567890123456789"
            IN TXT  "2123456789012345678901234567890123456789012345678901234567890123456789"
            IN TXT  "3123456789012345678901234567890123456789012345678901234567890123456789"
            IN TXT  "4123456789012345678901234567890123456789012345678901234567890123456789"
            IN TXT  "5123456789012345678901234567890123456789012345678901234567890123456789"
            IN TXT  "6123456789012345678901234567890123456789012345678901234567890123456789"
            IN TXT  "7123456789012345678901234567890123456789012345678901234567890123456789"
            IN TXT  "8123456789012345678901234567890123456789012345678901234567890123456789"
            IN TXT  "9123456789012345678901234567890123456789012345678901234567890123456789"
)";
};

}  // namespace nf::test
