// load_mmdb(): the IPv4 part of a MaxMind DB search tree -> merged GeoSource prefixes (see
// geo.h for the why).
#include "nf/dns/geo.h"

#include <maxminddb.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <unordered_map>

namespace nf::dns {

namespace {

constexpr int kNoRegion = -1;

// What a subtree resolves to: one region everywhere (possibly kNoRegion), or a mix.
struct Summary {
  bool uniform = true;
  int region = kNoRegion;
};

class Walker {
 public:
  Walker(const MMDB_s& db, const MmdbMapping& map) : db_(db), map_(map) {
    // A genuine tree reaches each node once; the slack only tolerates odd writers. The bound
    // keeps a crafted file (a node pointing to itself twice) from looping for 2^32 steps.
    budget_ = uint64_t{db.metadata.node_count} * 4 + 1024;
  }

  // Walks the subtree at `node`, whose records are the prefixes of length depth + 1 under
  // `prefix`. Emits the uniform, mapped children of mixed subtrees.
  bool walk(uint32_t node, uint32_t prefix, uint8_t depth, Summary& out) {
    if (budget_ == 0) return fail("search tree reaches nodes more than once");
    --budget_;
    MMDB_search_node_s sn{};
    const int st = MMDB_read_node(&db_, node, &sn);
    if (st != MMDB_SUCCESS) return fail(MMDB_strerror(st));
    const uint8_t cdepth = depth + 1;
    const uint32_t half = uint32_t{1} << (32 - cdepth);
    Summary kid[2];
    const uint8_t types[2] = {sn.left_record_type, sn.right_record_type};
    const uint64_t recs[2] = {sn.left_record, sn.right_record};
    MMDB_entry_s entries[2] = {sn.left_record_entry, sn.right_record_entry};
    for (int b = 0; b < 2; ++b)
      if (!record(types[b], recs[b], entries[b], prefix | (b != 0 ? half : 0), cdepth, kid[b]))
        return false;
    if (kid[0].uniform && kid[1].uniform && kid[0].region == kid[1].region) {
      out = kid[0];
      return true;
    }
    for (int b = 0; b < 2; ++b)
      if (kid[b].uniform) emit(prefix | (b != 0 ? half : 0), cdepth, kid[b].region);
    out = Summary{false, kNoRegion};
    return true;
  }

  // One record: the network prefix/len.
  bool record(uint8_t type, uint64_t value, MMDB_entry_s& entry, uint32_t prefix, uint8_t len,
              Summary& out) {
    switch (type) {
      case MMDB_RECORD_TYPE_EMPTY:
        out = Summary{true, kNoRegion};
        return true;
      case MMDB_RECORD_TYPE_DATA: {
        ++networks_;
        out.uniform = true;
        return region_of(entry, out.region);
      }
      case MMDB_RECORD_TYPE_SEARCH_NODE:
        if (len >= 32) return fail("search tree deeper than 32 bits under IPv4");
        return walk(static_cast<uint32_t>(value), prefix, len, out);
      default:
        return fail("invalid record");
    }
  }

  void emit(uint32_t prefix, uint8_t len, int region) {
    if (region != kNoRegion) out_.push_back(GeoSource{prefix, len, regions_[region]});
  }

  std::vector<GeoSource>& result() { return out_; }
  size_t networks() const { return networks_; }
  const std::string& error() const { return err_; }
  bool fail(const std::string& why) {
    err_ = why;
    return false;
  }

 private:
  // A string at `path` in the record; nullopt if absent (or not a string).
  template <typename... Keys>
  bool string_at(MMDB_entry_s& entry, std::optional<std::string>& out, Keys... path) {
    MMDB_entry_data_s d{};
    const int st = MMDB_get_value(&entry, &d, path..., static_cast<const char*>(nullptr));
    out.reset();
    if (st == MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR) return true;
    if (st != MMDB_SUCCESS) return fail(std::string("data section: ") + MMDB_strerror(st));
    if (d.has_data && d.type == MMDB_DATA_TYPE_UTF8_STRING) out.emplace(d.utf8_string, d.data_size);
    return true;
  }

  int intern(const std::string& region) {
    auto [it, added] = region_ids_.emplace(region, static_cast<int>(regions_.size()));
    if (added) regions_.push_back(region);
    return it->second;
  }

  // The region of a data record, cached by its offset (records are shared by many networks).
  bool region_of(MMDB_entry_s& entry, int& region) {
    if (auto c = cache_.find(entry.offset); c != cache_.end()) {
      region = c->second;
      return true;
    }
    region = kNoRegion;
    std::optional<std::string> cc;
    if (!string_at(entry, cc, "country", "iso_code")) return false;
    if (!cc && !string_at(entry, cc, "registered_country", "iso_code")) return false;
    if (cc) {
      if (auto m = map_.countries.find(*cc); m != map_.countries.end()) region = intern(m->second);
    }
    if (region == kNoRegion && !map_.continents.empty()) {
      std::optional<std::string> cont;
      if (!string_at(entry, cont, "continent", "code")) return false;
      if (cont) {
        if (auto m = map_.continents.find(*cont); m != map_.continents.end())
          region = intern(m->second);
      }
    }
    cache_.emplace(entry.offset, region);
    return true;
  }

  const MMDB_s& db_;
  const MmdbMapping& map_;
  uint64_t budget_ = 0;
  size_t networks_ = 0;
  std::vector<GeoSource> out_;
  std::vector<std::string> regions_;
  std::map<std::string, int> region_ids_;
  std::unordered_map<uint32_t, int> cache_;  // data offset -> region
  std::string err_;
};

struct MmdbCloser {
  MMDB_s* db;
  explicit MmdbCloser(MMDB_s* d) : db(d) {}
  ~MmdbCloser() { MMDB_close(db); }
  MmdbCloser(const MmdbCloser&) = delete;
  MmdbCloser& operator=(const MmdbCloser&) = delete;
};

}  // namespace

bool load_mmdb(const std::string& path, const MmdbMapping& map, std::vector<GeoSource>& out,
               std::string& err, size_t* networks_seen) {
  struct stat stbuf {};
  if (::stat(path.c_str(), &stbuf) != 0) {
    err = "cannot open " + path + ": " + std::strerror(errno);
    return false;
  }
  if (!S_ISREG(stbuf.st_mode)) {
    err = "cannot open " + path + ": not a regular file";
    return false;
  }
  if (stbuf.st_size == 0) {  // mmap would fail with EINVAL: say what is wrong instead
    err = path + ": not a MaxMind DB (empty file)";
    return false;
  }
  MMDB_s db{};
  errno = 0;
  const int st = MMDB_open(path.c_str(), MMDB_MODE_MMAP, &db);
  if (st != MMDB_SUCCESS) {
    const int e = errno;
    if (st == MMDB_FILE_OPEN_ERROR || st == MMDB_IO_ERROR)
      err = "cannot open " + path + ": " + (e != 0 ? std::strerror(e) : MMDB_strerror(st));
    else
      err = path + ": not a MaxMind DB (" + MMDB_strerror(st) + ")";
    return false;
  }
  const MmdbCloser closer(&db);
  const uint16_t ipv = db.metadata.ip_version;
  if (ipv != 4 && ipv != 6) {
    err = path + ": not a MaxMind DB (ip_version " + std::to_string(ipv) + ")";
    return false;
  }

  Walker w(db, map);
  Summary top;
  bool ok = true;
  if (db.metadata.node_count == 0) {
    top = Summary{true, kNoRegion};
  } else if (ipv == 4) {
    ok = w.walk(0, 0, 0, top);
  } else {
    // The IPv4 space is ::/96: follow 96 left (zero) records from the root, as libmaxminddb
    // does to find its IPv4 start node. The walk may end early at an empty or data record.
    uint32_t node = 0;
    bool at_node = true;
    for (int depth = 0; ok && at_node && depth < 96; ++depth) {
      MMDB_search_node_s sn{};
      const int rs = MMDB_read_node(&db, node, &sn);
      if (rs != MMDB_SUCCESS) {
        ok = w.fail(MMDB_strerror(rs));
      } else if (sn.left_record_type == MMDB_RECORD_TYPE_SEARCH_NODE) {
        node = static_cast<uint32_t>(sn.left_record);
      } else {
        // ::/(depth+1) is a single network, so is all of IPv4.
        ok = w.record(sn.left_record_type, sn.left_record, sn.left_record_entry, 0, 0, top);
        at_node = false;
      }
    }
    if (ok && at_node) ok = w.walk(node, 0, 0, top);
  }
  if (ok && top.uniform) w.emit(0, 0, top.region);
  if (!ok) {
    err = path + ": corrupt MaxMind DB: " + w.error();
    return false;
  }
  std::vector<GeoSource>& r = w.result();
  std::sort(r.begin(), r.end(), [](const GeoSource& a, const GeoSource& b) {
    return a.addr != b.addr ? a.addr < b.addr : a.len < b.len;
  });
  out.insert(out.end(), std::make_move_iterator(r.begin()), std::make_move_iterator(r.end()));
  if (networks_seen != nullptr) *networks_seen = w.networks();
  return true;
}

}  // namespace nf::dns
