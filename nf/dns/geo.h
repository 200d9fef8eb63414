// GSLB geo maps from MaxMind DB files (GeoLite2/GeoIP2 Country or City .mmdb).
//
// Theory of operation
// -------------------
// The responder never queries libmaxminddb per packet. At configuration load, load_mmdb()
// walks the IPv4 part of the database's search tree once and turns every network whose
// country (or continent) is mapped to a region into a GeoSource prefix; compile() then
// flattens those, together with the config's own CIDRs, into the sorted range table that
// View::geo() binary-searches. So the fast path is a few compares in one contiguous array: no
// pointer chasing through an mmap'd tree, no data-section decoding, no locks, and no file
// that can change under a worker. A reload builds a new View and swaps it in atomically; the
// old database file is not needed after the load.
//
// Merging: the tree splits networks far finer than regions need (a country is many networks,
// a region many countries, City databases split by city). Sibling subtrees that resolve to
// the same region everywhere are merged into their parent prefix, bottom-up, as gdnsd does.
// That keeps the table small and, more importantly, makes the ECS SCOPE PREFIX-LENGTH the
// responder returns (RFC 7871 7.2.1; the deciding prefix length) as wide as the data allows,
// so resolvers cache one answer for as many clients as possible. Networks without data, or
// whose country and continent are both unmapped, get no prefix (region 0 unless a config
// CIDR covers them) and are never merged with mapped neighbours.
//
// IPv4 only: for an IPv6 database the IPv4 space is the subtree at ::/96 (where libmaxminddb
// looks up IPv4 addresses); for an IPv4 database it is the whole tree.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "nf/dns/zone.h"

namespace nf::dns {

struct MmdbMapping {
  std::map<std::string, std::string> countries;   // ISO 3166 code ("DE") -> region
  std::map<std::string, std::string> continents;  // continent code ("EU") -> region, used when
                                                  // the country has no entry
};

// Appends one GeoSource per (merged) mapped IPv4 network of the database at `path`. The
// country is country.iso_code, else registered_country.iso_code; when it is absent or not in
// map.countries, continent.code is looked up in map.continents. Codes in the mapping that the
// database never mentions are not an error. On failure returns false with `err` set
// ("cannot open <path>: ...", "<path>: not a MaxMind DB (...)", "<path>: corrupt ...") and
// leaves `out` as it was. `networks_seen`, if given, receives the number of IPv4 networks
// with data in the tree (before merging; mapped or not).
bool load_mmdb(const std::string& path, const MmdbMapping& map, std::vector<GeoSource>& out,
               std::string& err, size_t* networks_seen = nullptr);

}  // namespace nf::dns
