// The compiled, immutable form of everything the DNS responder answers from: zones, GSLB
// names and the geo map. Built once per configuration load (config/dns_loader.cc), shared by
// all workers through the snapshot, and never written after it is built.
//
// Theory of operation
// -------------------
// Answers are prepared at load time, not at query time. For every owner name and every type
// it has, compile() encodes the complete ANSWER, AUTHORITY and ADDITIONAL sections as they will
// appear after the question (a Blob), with name compression already done. A static answer is
// then one hash lookup and one memcpy.
//
// Compression pointers into the question are what make this possible: the question sits at
// offset 12 and the answer starts right after it, so for an exact match every offset is known
// in advance. Answers that are synthesised for names of another length (wildcards, RFC 4592;
// NXDOMAIN and referrals, whose SOA or NS owner is a suffix of the query name) are compiled
// against a stand-in query name and carry a list of fixups: the positions of every pointer
// that must move by (actual query name length - stand-in length). An owner that is the query
// name itself is always the pointer 0xC00C and never moves.
//
// Lookup (View::find): the lower-cased query name is hashed (CRC32C, done while parsing) and
// looked up in an open-addressing table of nodes. Every name that exists in a zone is a node,
// including empty non-terminals (RFC 4592 2.2.2), so a miss can find the closest encloser by
// removing labels one at a time. Nodes at or below a delegation (a non-apex NS) answer with a
// referral. GSLB names are nodes whose A answer is chosen per query (nf/dns/engine.h).
//
// Limit: a response blob is at most 16 KiB (larger RRsets are a load error, as in gdnsd).
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "nf/dns/name.h"
#include "nf/dns/wire.h"
#include "nf/dns/zonefile.h"

namespace nf::dns {

inline constexpr uint32_t kNone = 0xffffffffu;
inline constexpr uint32_t kMaxBlob = 16384;

enum class Policy : uint8_t { kRoundRobin, kWeighted, kFailover, kGeo, kLowestRtt };
enum class AllDown : uint8_t { kAll, kBackup, kServfail };

struct Blob {
  uint32_t off = 0;  // into View::bytes
  uint16_t len = 0;
  uint16_t an = 0, ns = 0, ar = 0;
  uint16_t base_qlen = 0;  // the query name length the pointers assume
  uint32_t fix_off = 0;    // into View::fixups: pointer positions, relative to the blob
  uint16_t fix_n = 0;
  uint8_t rcode = rcode::kNoError;
  bool aa = true;
  // A CNAME chain that ends at a GSLB name: the GSLB addresses follow the blob, owned by the
  // name at tail_name (offset in the blob, where the last CNAME's target is written).
  uint32_t gslb = kNone;
  uint16_t tail_name = 0;
};

namespace node_flag {
inline constexpr uint16_t kApex = 1, kCut = 2, kCname = 4, kData = 8, kGslb = 16;
}

struct Node {
  uint32_t name_off = 0;  // lower-case wire name in View::names
  uint16_t name_len = 0;
  uint16_t flags = 0;
  uint32_t zone = 0;
  uint32_t cut = kNone;       // the delegation at or above this name (referral), if any
  uint32_t wildcard = kNone;  // the node "*.<this name>", if any
  uint32_t gslb = kNone;
  uint32_t types_off = 0;  // (qtype, blob) pairs in View::types
  uint16_t types_n = 0;
  uint32_t nodata = kNone;  // blob: NOERROR, no answer, SOA in AUTHORITY (RFC 2308 2.2)
  uint32_t other = kNone;   // blob for types without an entry (CNAME nodes: the bare chain)
};

struct TypeBlob {
  uint16_t type;
  uint32_t blob;
};

struct ZoneInfo {
  Name apex;         // lower case
  std::string name;  // presentation, for `show dns`
  uint32_t apex_node = kNone;
  uint32_t nxdomain = kNone;  // blob compiled against "x.<apex>"
  uint32_t serial = 0;
  uint32_t records = 0;
};

struct Member {
  uint32_t addr = 0;        // IPv4, host order
  uint32_t weight = 1;      // 0 drains: never chosen while another member is up
  uint32_t target = kNone;  // health target index (View::targets), or always up
  uint16_t region = 0;
};

struct Gslb {
  std::string name;  // presentation
  Policy policy = Policy::kRoundRobin;
  AllDown all_down = AllDown::kAll;
  uint16_t answers = 1;  // addresses per answer
  uint32_t ttl = 30;
  uint32_t mem_off = 0;  // View::members
  uint16_t mem_n = 0;
  uint32_t backup_off = 0;  // static fallback addresses (all_down = backup)
  uint16_t backup_n = 0;
  uint32_t node = kNone;
};

// A health check target: (address, check name). The runtime maps it to a monitor slot.
struct Target {
  uint32_t addr = 0;
  std::string check;
  std::string label;
};

// The geo map: client address -> region, by longest prefix. Flattened at load into sorted,
// disjoint ranges, each remembering the prefix length that decided it (the ECS scope).
struct GeoRange {
  uint32_t first;
  uint32_t last;
  uint16_t region;
  uint8_t len;
};

class View {
 public:
  // The node for a lower-case wire name, or kNone.
  uint32_t find(const uint8_t* lname, uint32_t len, uint32_t hash) const {
    uint32_t i = hash & mask_;
    for (;;) {
      const Slot s = table_[i];
      if (s.node == kNone) return kNone;
      if (s.hash == hash) {
        const Node& n = nodes[s.node];
        if (n.name_len == len && std::memcmp(names.data() + n.name_off, lname, len) == 0)
          return s.node;
      }
      i = (i + 1) & mask_;
    }
  }
  uint32_t type_blob(const Node& n, uint16_t qtype) const {
    const TypeBlob* t = types.data() + n.types_off;
    for (uint16_t i = 0; i < n.types_n; ++i)
      if (t[i].type == qtype) return t[i].blob;
    return kNone;
  }
  // Region of a client address (0 = no prefix covers it). `scope` is the shortest prefix
  // around addr that gets the same region everywhere (RFC 7871 7.2.1 SCOPE PREFIX-LENGTH):
  // the deciding prefix's length, or longer where a more specific prefix cuts into it.
  uint16_t geo(uint32_t addr, uint8_t& scope) const {
    size_t lo = 0, hi = geo_ranges.size();
    while (lo < hi) {
      const size_t mid = (lo + hi) / 2;
      if (geo_ranges[mid].last < addr)
        lo = mid + 1;
      else
        hi = mid;
    }
    if (lo == geo_ranges.size()) {
      scope = 0;
      return 0;
    }
    const GeoRange& r = geo_ranges[lo];
    uint8_t l = r.len;
    for (; l < 32; ++l) {
      const uint32_t m = l == 0 ? 0 : ~uint32_t{0} << (32 - l);
      if ((addr & m) >= r.first && ((addr & m) | ~m) <= r.last) break;
    }
    scope = l;
    return r.region;
  }

  std::vector<Node> nodes;
  std::vector<uint8_t> names;
  std::vector<TypeBlob> types;
  std::vector<Blob> blobs;
  std::vector<uint8_t> bytes;
  std::vector<uint16_t> fixups;
  std::vector<ZoneInfo> zones;
  std::vector<Gslb> gslbs;
  std::vector<Member> members;
  std::vector<uint32_t> backups;
  std::vector<Target> targets;
  std::vector<std::string> regions;  // region 0 is "" (no match)
  std::vector<GeoRange> geo_ranges;  // covers the whole IPv4 space when non-empty
  uint32_t any_blob = kNone;         // RFC 8482 HINFO
  uint32_t total_records = 0;

  // Finishes the hash table once every node exists (compile()).
  void index();

 private:
  struct Slot {
    uint32_t hash;
    uint32_t node;
  };
  std::vector<Slot> table_;
  uint32_t mask_ = 0;
};

// What compile() reads: zones as parsed records, GSLB names, the geo map.
struct ZoneSource {
  Name apex;
  std::string file;  // where the zone was defined (errors)
  int line = 0;
  std::vector<Rr> records;
};
struct GslbMemberSource {
  uint32_t addr = 0;
  uint32_t weight = 1;
  std::string region;
  std::string check;  // health check name; empty = always up
};
struct GslbSource {
  Name name;
  Policy policy = Policy::kRoundRobin;
  AllDown all_down = AllDown::kAll;
  uint16_t answers = 1;
  uint32_t ttl = 30;
  std::vector<GslbMemberSource> members;
  std::vector<uint32_t> backup;
  std::string file;
  int line = 0;
};
struct GeoSource {
  uint32_t addr = 0;  // prefix
  uint8_t len = 0;
  std::string region;
};

struct CompileError {
  std::string file;
  int line = 0;
  std::string message;
};

// Builds a View, or returns false with every error found.
bool compile(const std::vector<ZoneSource>& zones, const std::vector<GslbSource>& gslb,
             const std::vector<GeoSource>& geo, std::shared_ptr<View>& out,
             std::vector<CompileError>& errs);

}  // namespace nf::dns
