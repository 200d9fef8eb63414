// compile(): zones, GSLB names and the geo map into a View (see zone.h for the why).
#include "nf/dns/zone.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <unordered_map>

#include "nf/dns/rr.h"
#include "nf/net/addr.h"

namespace nf::dns {
namespace {

using Key = std::string;  // lower-case wire name as bytes

Key key_of(const Name& n) {
  Name l = n;
  to_lower(l);
  return Key(l.begin(), l.end());
}
Name name_of(const Key& k) {
  return Name(k.begin(), k.end());
}
// The parent of a wire name (one label removed); "" for the root.
Key parent_of(const Key& k) {
  if (k.size() <= 1) return {};
  return k.substr(static_cast<uint8_t>(k[0]) + 1u);
}
bool is_wild(const Key& k) {
  return k.size() >= 2 && k[0] == 1 && k[1] == '*';
}
// Length of an uncompressed wire name at p (within n bytes), 0 if malformed.
size_t wire_name_len(const uint8_t* p, size_t n) {
  size_t i = 0;
  while (i < n) {
    if (p[i] == 0) return i + 1;
    if (p[i] > 63) return 0;
    i += p[i] + 1u;
  }
  return 0;
}

struct BuildNode {
  uint32_t zone = kNone;
  std::map<uint16_t, std::vector<const Rr*>> rrsets;
  uint32_t gslb = kNone;
  uint32_t index = kNone;
};

// Writes one Blob's sections with name compression against the stand-in question.
class BlobWriter {
 public:
  // base: the stand-in query name (lower case). exact: the blob only ever answers this very
  // name, so the whole name may be a compression target; otherwise only its suffixes may be
  // (they stay at the same distance from the end of whatever name is asked).
  BlobWriter(const Key& base, bool exact)
      : qend_(static_cast<uint16_t>(kHeaderLen + base.size() + 4)) {
    base_len_ = static_cast<uint16_t>(base.size());
    size_t i = exact ? 0 : static_cast<uint8_t>(base[0]) + 1u;
    while (i < base.size() && base[i] != 0) {
      dict_.emplace(base.substr(i), static_cast<uint16_t>(kHeaderLen + i));
      i += static_cast<uint8_t>(base[i]) + 1u;
    }
  }
  uint16_t here() const { return static_cast<uint16_t>(qend_ + b_.size()); }

  // Writes a name (original case), compressed; returns the offset a later pointer can use.
  uint16_t name(const uint8_t* n, size_t len) {
    Key lower(reinterpret_cast<const char*>(n), len);
    for (char& c : lower)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    size_t i = 0;
    uint16_t first = 0;
    while (i < len && n[i] != 0) {
      auto it = dict_.find(lower.substr(i));
      if (it != dict_.end()) {
        pointer(it->second);
        return i == 0 ? it->second : first;
      }
      const uint16_t at = here();
      if (i == 0) first = at;
      if (at < 0x3fff) dict_.emplace(lower.substr(i), at);
      b_.insert(b_.end(), n + i, n + i + 1 + n[i]);
      i += n[i] + 1u;
    }
    b_.push_back(0);
    return i == 0 ? here() - 1 : first;
  }
  void pointer(uint16_t target) {
    fix_.push_back(static_cast<uint16_t>(b_.size()));
    b_.push_back(static_cast<uint8_t>(0xc0 | target >> 8));
    b_.push_back(static_cast<uint8_t>(target));
  }
  void owner_qname() {
    b_.push_back(0xc0);
    b_.push_back(kHeaderLen);
  }
  void u16(uint16_t v) {
    b_.push_back(static_cast<uint8_t>(v >> 8));
    b_.push_back(static_cast<uint8_t>(v));
  }
  void u32(uint32_t v) {
    u16(static_cast<uint16_t>(v >> 16));
    u16(static_cast<uint16_t>(v));
  }
  // Type, class, TTL and RDATA of a record whose owner was just written. Names inside the
  // RDATA of the RFC 1035 types are compressed (RFC 3597 4: only those); SRV's target is not
  // (RFC 2782).
  void rest(const Rr& r, uint32_t ttl) {
    u16(r.type);
    u16(kClassIN);
    u32(ttl);
    const size_t len_at = begin_rdata();
    const uint8_t* d = r.rdata.data();
    const size_t n = r.rdata.size();
    size_t used = 0;
    auto name_at = [&](size_t off) {
      const size_t l = wire_name_len(d + off, n - off);
      if (l == 0) return n;  // malformed: the parser never makes it; copy the rest raw
      name(d + off, l);
      return off + l;
    };
    switch (r.type) {
      case type::NS:
      case type::CNAME:
      case type::PTR:
        used = name_at(0);
        break;
      case type::MX:
        if (n >= 2) {
          b_.insert(b_.end(), d, d + 2);
          used = name_at(2);
        }
        break;
      case type::SOA: {
        size_t o = name_at(0);
        if (o < n) o = name_at(o);
        used = o;
        break;
      }
      default:
        break;
    }
    b_.insert(b_.end(), d + std::min(used, n), d + n);
    end_rdata(len_at);
  }
  // Starts a record's RDLENGTH (after its owner, type, class, TTL); end_rdata() fills it in.
  size_t begin_rdata() {
    u16(0);
    return b_.size() - 2;
  }
  void end_rdata(size_t len_at) {
    const size_t rdlen = b_.size() - len_at - 2;
    b_[len_at] = static_cast<uint8_t>(rdlen >> 8);
    b_[len_at + 1] = static_cast<uint8_t>(rdlen);
  }
  const std::vector<uint8_t>& bytes() const { return b_; }
  const std::vector<uint16_t>& fixups() const { return fix_; }
  uint16_t base_len() const { return base_len_; }

 private:
  uint16_t qend_;
  uint16_t base_len_ = 0;
  std::vector<uint8_t> b_;
  std::vector<uint16_t> fix_;
  std::unordered_map<Key, uint16_t> dict_;
};

class Compiler {
 public:
  Compiler(std::vector<CompileError>& errs) : errs_(errs) {}

  bool run(const std::vector<ZoneSource>& zones, const std::vector<GslbSource>& gslb,
           const std::vector<GeoSource>& geo, View& v);

 private:
  void error(const std::string& file, int line, std::string msg) {
    if (errs_.size() < 100) errs_.push_back({file, line, std::move(msg)});
  }
  // The deepest configured zone holding name k, or kNone.
  uint32_t zone_of(const Key& k) const {
    for (Key p = k; !p.empty(); p = parent_of(p)) {
      auto it = apex_.find(p);
      if (it != apex_.end()) return it->second;
      if (p.size() == 1) break;
    }
    return kNone;
  }
  const Rr* soa_of(uint32_t z) const { return soa_[z]; }
  uint32_t neg_ttl(uint32_t z) const {
    const Rr* s = soa_[z];
    const uint32_t minimum = s->rdata.size() >= 4 ? rd32(s->rdata.data() + s->rdata.size() - 4) : 0;
    return std::min(s->ttl, minimum);
  }
  void write_soa(BlobWriter& w, uint32_t z) {
    const Key& apex = zkeys_[z];
    w.name(reinterpret_cast<const uint8_t*>(apex.data()), apex.size());
    w.rest(*soa_of(z), neg_ttl(z));
  }
  uint32_t finish(View& v, const BlobWriter& w, Blob b, const std::string& what);
  uint32_t rrset_ttl(const std::vector<const Rr*>& s) const {
    uint32_t t = s.front()->ttl;
    for (const Rr* r : s) t = std::min(t, r->ttl);  // RFC 2181 5.2: one TTL per RRset
    return t;
  }
  uint32_t chain_blob(View& v, const Key& start, bool exact, uint16_t qtype);
  uint32_t referral_blob(View& v, const Key& cut);
  void node_blobs(View& v, const Key& k, BuildNode& bn);

  std::vector<CompileError>& errs_;
  std::map<Key, BuildNode> nodes_;
  std::unordered_map<Key, uint32_t> apex_;
  std::vector<Key> zkeys_;
  std::vector<const Rr*> soa_;
  std::vector<std::string> zfile_;
  std::unordered_map<Key, uint32_t> referral_;
};

uint32_t Compiler::finish(View& v, const BlobWriter& w, Blob b, const std::string& what) {
  if (w.bytes().size() > kMaxBlob) {
    error("", 0,
          what + ": the answer would be " + std::to_string(w.bytes().size()) +
              " bytes, more than the " + std::to_string(kMaxBlob) + " allowed");
    return kNone;
  }
  b.off = static_cast<uint32_t>(v.bytes.size());
  b.len = static_cast<uint16_t>(w.bytes().size());
  b.fix_off = static_cast<uint32_t>(v.fixups.size());
  b.fix_n = static_cast<uint16_t>(w.fixups().size());
  b.base_qlen = w.base_len();
  v.bytes.insert(v.bytes.end(), w.bytes().begin(), w.bytes().end());
  v.fixups.insert(v.fixups.end(), w.fixups().begin(), w.fixups().end());
  v.blobs.push_back(b);
  return static_cast<uint32_t>(v.blobs.size() - 1);
}

// A referral to the delegation at `cut` (RFC 1034 4.3.2 step 3b): not authoritative, the NS
// RRset in AUTHORITY, and the glue for name servers at or below the cut in ADDITIONAL.
uint32_t Compiler::referral_blob(View& v, const Key& cut) {
  auto it = referral_.find(cut);
  if (it != referral_.end()) return it->second;
  BlobWriter w(Key("\x01x", 2) + cut, false);
  Blob b;
  b.aa = false;
  const auto& ns = nodes_[cut].rrsets[type::NS];
  const uint32_t ttl = rrset_ttl(ns);
  for (const Rr* r : ns) {
    w.name(reinterpret_cast<const uint8_t*>(cut.data()), cut.size());
    w.rest(*r, ttl);
    b.ns++;
  }
  for (const Rr* r : ns) {
    Name target(r->rdata.begin(), r->rdata.end());
    const Key tk = key_of(target);
    if (tk.size() < cut.size() || tk.compare(tk.size() - cut.size(), cut.size(), cut) != 0)
      continue;  // out of bailiwick: no glue needed (RFC 9471)
    auto n = nodes_.find(tk);
    if (n == nodes_.end()) continue;
    for (uint16_t t : {type::A, type::AAAA}) {
      auto s = n->second.rrsets.find(t);
      if (s == n->second.rrsets.end()) continue;
      const uint32_t gttl = rrset_ttl(s->second);
      for (const Rr* g : s->second) {
        w.name(reinterpret_cast<const uint8_t*>(tk.data()), tk.size());
        w.rest(*g, gttl);
        b.ar++;
      }
    }
  }
  const uint32_t id = finish(v, w, b, "referral to " + name_to_text(name_of(cut)));
  referral_[cut] = id;
  return id;
}

// The answer for `qtype` at a CNAME node, following the chain through our own data
// (RFC 1034 4.3.2 step 3a; RFC 6604: the RCODE is that of the last name).
uint32_t Compiler::chain_blob(View& v, const Key& start, bool exact, uint16_t qtype) {
  BlobWriter w(start, exact);
  Blob b;
  Key cur = start;
  bool first = true;
  uint16_t cur_ref = kHeaderLen;  // where the current owner's name can be pointed at
  std::set<Key> seen;
  for (int hop = 0; hop < 8; ++hop) {
    seen.insert(cur);
    BuildNode* bn = nullptr;
    // The node answering for cur: itself, or the wildcard that covers it.
    auto n = nodes_.find(cur);
    if (n != nodes_.end()) bn = &n->second;
    const uint32_t z = zone_of(cur);
    bool below_cut = false;
    if (!bn && z != kNone) {
      Key enc = parent_of(cur);
      while (!enc.empty() && !nodes_.count(enc)) enc = parent_of(enc);
      // A name under a delegation is the child zone's to answer, not ours to deny.
      if (!enc.empty() && v.nodes[nodes_[enc].index].cut != kNone) below_cut = true;
      auto wc = nodes_.find(Key("\x01*", 2) + enc);
      if (!below_cut && !enc.empty() && wc != nodes_.end()) bn = &wc->second;
    }
    auto owner = [&]() {
      if (first)
        w.owner_qname();
      else
        w.pointer(cur_ref);
    };
    if (z == kNone || below_cut) break;  // out of our zones: the resolver follows it
    if (bn && bn->index != kNone && v.nodes[bn->index].cut != kNone) break;  // delegated away
    if (!bn) {
      b.rcode = rcode::kNxDomain;
      write_soa(w, z);
      b.ns++;
      break;
    }
    if (bn->gslb != kNone && !first) {
      if (qtype == type::A || qtype == type::ANY) {
        b.gslb = bn->gslb;
        b.tail_name = cur_ref;
      } else {
        write_soa(w, z);
        b.ns++;
      }
      break;
    }
    auto cn = bn->rrsets.find(type::CNAME);
    if (cn != bn->rrsets.end() && qtype != type::CNAME) {
      const Rr* r = cn->second.front();
      owner();
      w.u16(type::CNAME);
      w.u16(kClassIN);
      w.u32(r->ttl);
      const size_t len_at = w.begin_rdata();
      const size_t nl = wire_name_len(r->rdata.data(), r->rdata.size());
      // The target's offset: later owners in the chain point at it.
      const uint16_t ref = w.name(r->rdata.data(), nl);
      w.end_rdata(len_at);
      b.an++;
      first = false;
      cur = key_of(Name(r->rdata.begin(), r->rdata.begin() + static_cast<long>(nl)));
      cur_ref = ref;
      if (seen.count(cur)) break;  // a loop: stop with what we have
      continue;
    }
    auto s = bn->rrsets.find(qtype);
    if (s != bn->rrsets.end()) {
      const uint32_t ttl = rrset_ttl(s->second);
      for (const Rr* r : s->second) {
        owner();
        w.rest(*r, ttl);
        b.an++;
      }
    } else if (!first) {
      write_soa(w, z);
      b.ns++;
    }
    break;
  }
  return finish(v, w, b, "CNAME chain from " + name_to_text(name_of(start)));
}

void Compiler::node_blobs(View& v, const Key& k, BuildNode& bn) {
  Node& n = v.nodes[bn.index];
  const bool exact = !is_wild(k);
  const uint32_t z = bn.zone;
  {
    BlobWriter w(k, exact);
    Blob b;
    write_soa(w, z);
    b.ns = 1;
    n.nodata = finish(v, w, b, "negative answer at " + name_to_text(name_of(k)));
  }
  if (n.flags & node_flag::kCname) {
    static constexpr uint16_t kChainTypes[] = {type::A,   type::AAAA, type::MX,  type::TXT,
                                               type::SRV, type::PTR,  type::CAA, type::NS,
                                               type::SOA, type::HINFO};
    const uint32_t first = static_cast<uint32_t>(v.types.size());
    for (uint16_t t : kChainTypes) v.types.push_back({t, chain_blob(v, k, exact, t)});
    v.types.push_back({type::CNAME, chain_blob(v, k, exact, type::CNAME)});
    n.types_off = first;
    n.types_n = static_cast<uint16_t>(v.types.size() - first);
    n.other = chain_blob(v, k, exact, 0);
    return;
  }
  const uint32_t first = static_cast<uint32_t>(v.types.size());
  for (auto& [t, set] : bn.rrsets) {
    BlobWriter w(k, exact);
    Blob b;
    const uint32_t ttl = rrset_ttl(set);
    for (const Rr* r : set) {
      w.owner_qname();
      w.rest(*r, ttl);
      b.an++;
    }
    v.types.push_back({t, finish(v, w, b, name_to_text(name_of(k)) + " " + type_to_text(t))});
  }
  n.types_off = first;
  n.types_n = static_cast<uint16_t>(v.types.size() - first);
}

bool Compiler::run(const std::vector<ZoneSource>& zones, const std::vector<GslbSource>& gslb,
                   const std::vector<GeoSource>& geo, View& v) {
  const size_t errs0 = errs_.size();
  // Zones: apexes first, so records can find the deepest zone they belong to.
  for (uint32_t z = 0; z < zones.size(); ++z) {
    const Key k = key_of(zones[z].apex);
    if (!apex_.emplace(k, z).second) {
      error(zones[z].file, zones[z].line,
            "zone " + name_to_text(zones[z].apex) + " is defined twice");
      continue;
    }
  }
  zkeys_.resize(zones.size());
  soa_.assign(zones.size(), nullptr);
  for (uint32_t z = 0; z < zones.size(); ++z) zkeys_[z] = key_of(zones[z].apex);

  for (uint32_t z = 0; z < zones.size(); ++z) {
    const ZoneSource& zs = zones[z];
    for (const Rr& r : zs.records) {
      const Key k = key_of(r.owner);
      const Key& apex = zkeys_[z];
      if (!is_subdomain(r.owner, zs.apex)) {
        error(r.file, r.line, name_to_text(r.owner) + " is outside zone " + name_to_text(zs.apex));
        continue;
      }
      const uint32_t deepest = zone_of(k);
      if (deepest != z) continue;  // a child zone we also serve answers for this name
      if (r.type == type::SOA) {
        if (k != apex) {
          error(r.file, r.line,
                "SOA record at " + name_to_text(r.owner) + ": only the zone apex " +
                    name_to_text(zs.apex) + " has one");
          continue;
        }
        if (soa_[z]) {
          error(r.file, r.line, "second SOA record for zone " + name_to_text(zs.apex));
          continue;
        }
        soa_[z] = &r;
      }
      BuildNode& bn = nodes_[k];
      bn.zone = z;
      auto& set = bn.rrsets[r.type];
      bool dup = false;
      for (const Rr* o : set) dup |= o->rdata == r.rdata;
      if (!dup) set.push_back(&r);
    }
  }
  for (uint32_t z = 0; z < zones.size(); ++z) {
    if (!soa_[z]) {
      error(zones[z].file, zones[z].line,
            "zone " + name_to_text(zones[z].apex) + " has no SOA record");
      continue;
    }
    auto& apex_node = nodes_[zkeys_[z]];
    if (!apex_node.rrsets.count(type::NS))
      error(zones[z].file, zones[z].line,
            "zone " + name_to_text(zones[z].apex) + " has no NS record at its apex");
  }
  // RFC 1034 3.6.2 / RFC 2181 10.1: a CNAME is the only data at its name.
  for (auto& [k, bn] : nodes_) {
    auto cn = bn.rrsets.find(type::CNAME);
    if (cn == bn.rrsets.end()) continue;
    if (bn.rrsets.size() > 1) {
      const Rr* r = cn->second.front();
      error(r->file, r->line, name_to_text(r->owner) + " has a CNAME and other data");
    } else if (cn->second.size() > 1) {
      const Rr* r = cn->second[1];
      error(r->file, r->line, name_to_text(r->owner) + " has more than one CNAME");
    }
  }
  // GSLB names become nodes of the zone that holds them.
  for (uint32_t g = 0; g < gslb.size(); ++g) {
    const GslbSource& gs = gslb[g];
    const Key k = key_of(gs.name);
    const uint32_t z = zone_of(k);
    if (z == kNone) {
      error(gs.file, gs.line, "GSLB name " + name_to_text(gs.name) + " is in none of the zones");
      continue;
    }
    BuildNode& bn = nodes_[k];
    if (!bn.rrsets.empty() || bn.gslb != kNone) {
      error(gs.file, gs.line,
            "GSLB name " + name_to_text(gs.name) +
                " also has records in its zone (or is defined twice)");
      continue;
    }
    bn.zone = z;
    bn.gslb = g;
  }
  if (errs_.size() > errs0) return false;

  // Empty non-terminals between every name and its apex (RFC 4592 2.2.2).
  std::vector<Key> keys;
  for (auto& [k, bn] : nodes_) keys.push_back(k);
  for (const Key& k : keys) {
    const uint32_t z = nodes_[k].zone;
    for (Key p = parent_of(k); p.size() > zkeys_[z].size(); p = parent_of(p)) {
      BuildNode& e = nodes_[p];
      if (e.zone == kNone) e.zone = z;
    }
  }

  // Nodes, in name order (parents before children are not needed: links are by key).
  for (auto& [k, bn] : nodes_) {
    bn.index = static_cast<uint32_t>(v.nodes.size());
    Node n;
    n.name_off = static_cast<uint32_t>(v.names.size());
    n.name_len = static_cast<uint16_t>(k.size());
    v.names.insert(v.names.end(), k.begin(), k.end());
    n.zone = bn.zone;
    if (k == zkeys_[bn.zone]) n.flags |= node_flag::kApex;
    if (bn.rrsets.count(type::NS) && !(n.flags & node_flag::kApex)) n.flags |= node_flag::kCut;
    if (bn.rrsets.count(type::CNAME)) n.flags |= node_flag::kCname;
    if (!bn.rrsets.empty()) n.flags |= node_flag::kData;
    if (bn.gslb != kNone) n.flags |= node_flag::kGslb;
    n.gslb = bn.gslb;
    v.nodes.push_back(n);
  }
  for (auto& [k, bn] : nodes_) {
    Node& n = v.nodes[bn.index];
    // The topmost delegation at or above this name, within its zone.
    for (Key p = k; p.size() > zkeys_[bn.zone].size(); p = parent_of(p)) {
      auto it = nodes_.find(p);
      if (it != nodes_.end() && (v.nodes[it->second.index].flags & node_flag::kCut))
        n.cut = it->second.index;
    }
    if (is_wild(k)) {
      auto parent = nodes_.find(parent_of(k));
      if (parent != nodes_.end()) v.nodes[parent->second.index].wildcard = bn.index;
    }
  }

  // Zones.
  for (uint32_t z = 0; z < zones.size(); ++z) {
    ZoneInfo zi;
    zi.apex = name_of(zkeys_[z]);
    zi.name = name_to_text(zi.apex);
    zi.apex_node = nodes_[zkeys_[z]].index;
    const Rr* s = soa_[z];
    zi.serial = s->rdata.size() >= 20 ? rd32(s->rdata.data() + s->rdata.size() - 20) : 0;
    zi.records = static_cast<uint32_t>(zones[z].records.size());
    v.total_records += zi.records;
    BlobWriter w(Key("\x01x", 2) + zkeys_[z], false);
    Blob b;
    b.rcode = rcode::kNxDomain;
    write_soa(w, z);
    b.ns = 1;
    zi.nxdomain = finish(v, w, b, "NXDOMAIN in " + zi.name);
    v.zones.push_back(std::move(zi));
  }

  // Answers.
  for (auto& [k, bn] : nodes_) {
    Node& n = v.nodes[bn.index];
    if (n.cut != kNone) {
      const Node& cut = v.nodes[n.cut];
      const Key ck(reinterpret_cast<const char*>(v.names.data() + cut.name_off), cut.name_len);
      n.other = referral_blob(v, ck);
      continue;
    }
    node_blobs(v, k, bn);
  }
  {
    // RFC 8482 4.2: ANY is answered with one synthesised HINFO record.
    BlobWriter w(Key("\x01x\0", 3), true);
    Blob b;
    w.owner_qname();
    Rr h;
    h.type = type::HINFO;
    const char kHinfo[] = "\x07RFC8482\x00";
    h.rdata.assign(kHinfo, kHinfo + 9);
    w.rest(h, 3600);
    b.an = 1;
    v.any_blob = finish(v, w, b, "ANY");
  }

  // GSLB names and their members; regions are numbered from 1 (0 = no region).
  v.regions.push_back("");
  std::map<std::string, uint16_t> region_ids;
  auto region = [&](const std::string& r) -> uint16_t {
    if (r.empty()) return 0;
    auto [it, added] = region_ids.emplace(r, static_cast<uint16_t>(v.regions.size()));
    if (added) v.regions.push_back(r);
    return it->second;
  };
  std::map<std::pair<uint32_t, std::string>, uint32_t> target_ids;
  for (uint32_t g = 0; g < gslb.size(); ++g) {
    const GslbSource& gs = gslb[g];
    Gslb out;
    out.name = name_to_text(gs.name);
    out.policy = gs.policy;
    out.all_down = gs.all_down;
    out.answers = gs.answers;
    out.ttl = gs.ttl;
    out.mem_off = static_cast<uint32_t>(v.members.size());
    out.mem_n = static_cast<uint16_t>(gs.members.size());
    for (const GslbMemberSource& m : gs.members) {
      Member mm;
      mm.addr = m.addr;
      mm.weight = m.weight;
      mm.region = region(m.region);
      if (!m.check.empty()) {
        auto [it, added] = target_ids.emplace(std::make_pair(m.addr, m.check),
                                              static_cast<uint32_t>(v.targets.size()));
        // One probe per (address, check), however many names use it; its label lists them
        // (comma-separated, no spaces: `nfctl show health` columns stay one word each).
        if (added) {
          v.targets.push_back({m.addr, m.check, out.name});
        } else {
          std::string& l = v.targets[it->second].label;
          if (("," + l + ",").find("," + out.name + ",") == std::string::npos) l += "," + out.name;
        }
        mm.target = it->second;
      }
      v.members.push_back(mm);
    }
    out.backup_off = static_cast<uint32_t>(v.backups.size());
    out.backup_n = static_cast<uint16_t>(gs.backup.size());
    v.backups.insert(v.backups.end(), gs.backup.begin(), gs.backup.end());
    out.node = nodes_[key_of(gs.name)].index;
    v.gslbs.push_back(std::move(out));
  }

  // The geo map, flattened: longer prefixes paint over shorter ones.
  std::vector<GeoSource> sorted = geo;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const GeoSource& a, const GeoSource& b) { return a.len < b.len; });
  std::map<uint32_t, GeoRange> paint;  // by first address
  paint[0] = GeoRange{0, 0xffffffffu, 0, 0};
  std::map<std::pair<uint32_t, uint8_t>, std::string> seen;
  for (const GeoSource& gsrc : sorted) {
    auto [it, added] = seen.emplace(std::make_pair(gsrc.addr, gsrc.len), gsrc.region);
    if (!added) {
      if (it->second != gsrc.region)
        error("", 0,
              "geo prefix " + format_prefix(Prefix{gsrc.addr, gsrc.len}) + " is mapped to both " +
                  it->second + " and " + gsrc.region);
      continue;
    }
    const uint32_t first = gsrc.addr;
    const uint32_t last =
        gsrc.addr | (gsrc.len == 0 ? 0xffffffffu : ~(~uint32_t{0} << (32 - gsrc.len)));
    // Split the range holding `first` and the one holding `last`, then replace all between.
    auto split = [&](uint32_t at) {
      auto r = std::prev(paint.upper_bound(at));
      if (r->second.first == at) return;
      GeoRange hi = r->second;
      hi.first = at;
      r->second.last = at - 1;
      paint[at] = hi;
    };
    split(first);
    if (last != 0xffffffffu) split(last + 1);
    auto b = paint.find(first);
    auto e = last == 0xffffffffu ? paint.end() : paint.find(last + 1);
    paint.erase(b, e);
    paint[first] = GeoRange{first, last, region(gsrc.region), gsrc.len};
  }
  if (!geo.empty())
    for (auto& [f, r] : paint) v.geo_ranges.push_back(r);

  if (errs_.size() > errs0) return false;
  v.index();
  return true;
}

}  // namespace

void View::index() {
  uint32_t size = 16;
  while (size < nodes.size() * 2) size <<= 1;
  table_.assign(size, Slot{0, kNone});
  mask_ = size - 1;
  for (uint32_t i = 0; i < nodes.size(); ++i) {
    const Node& n = nodes[i];
    const uint32_t h = name_hash(names.data() + n.name_off, n.name_len);
    uint32_t s = h & mask_;
    while (table_[s].node != kNone) s = (s + 1) & mask_;
    table_[s] = Slot{h, i};
  }
}

bool compile(const std::vector<ZoneSource>& zones, const std::vector<GslbSource>& gslb,
             const std::vector<GeoSource>& geo, std::shared_ptr<View>& out,
             std::vector<CompileError>& errs) {
  auto v = std::make_shared<View>();
  Compiler c(errs);
  if (!c.run(zones, gslb, geo, *v)) return false;
  out = std::move(v);
  return true;
}

}  // namespace nf::dns
