// load_mmdb(): MaxMind DB -> GeoSource prefixes, merging, and the compiled View::geo() lookup.
// The database is tests/data/geo-test.mmdb, written by tests/common/make_mmdb.py (networks
// listed there).
#include <gtest/gtest.h>
#include <maxminddb.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "nf/dns/geo.h"
#include "nf/dns/zone.h"
#include "nf/dns/zonefile.h"
#include "nf/net/addr.h"

namespace dns = nf::dns;
namespace fs = std::filesystem;

namespace {

std::string test_db() {
  return (fs::path(NF_SOURCE_DIR) / "tests" / "data" / "geo-test.mmdb").string();
}

dns::MmdbMapping lab_mapping() {
  dns::MmdbMapping m;
  m.countries = {{"DE", "west"}, {"US", "east"}, {"BR", "south"}};
  m.continents = {{"AS", "asia"}};
  return m;
}

std::string show(const std::vector<dns::GeoSource>& v) {
  std::string s;
  for (const auto& g : v) s += nf::format_prefix(nf::Prefix{g.addr, g.len}) + "=" + g.region + " ";
  return s;
}

uint32_t ip(const char* s) {
  return nf::parse_ipv4(s).value();
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::string write_temp(const std::string& name, const std::vector<uint8_t>& bytes) {
  std::string p = (fs::temp_directory_path() / name).string();
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return p;
}

// A View with one minimal zone and the given geo map.
std::shared_ptr<dns::View> compile_geo(const std::vector<dns::GeoSource>& geo) {
  dns::Name origin;
  std::string err;
  EXPECT_TRUE(dns::parse_name("t.example.", dns::Name{0}, origin, err)) << err;
  dns::MasterParser p(origin, 300);
  p.feed("@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 192.0.2.53\n", "t", 1);
  EXPECT_TRUE(p.errors().empty());
  std::vector<dns::ZoneSource> z{{origin, "t", 1, p.records()}};
  std::shared_ptr<dns::View> v;
  std::vector<dns::CompileError> errs;
  EXPECT_TRUE(dns::compile(z, {}, geo, v, errs)) << (errs.empty() ? "" : errs.front().message);
  return v;
}

std::string region_at(const dns::View& v, const char* addr, uint8_t& scope) {
  return v.regions.at(v.geo(ip(addr), scope));
}

}  // namespace

TEST(Geo, LoadsAndMergesPrefixes) {
  std::vector<dns::GeoSource> out;
  std::string err;
  size_t seen = 0;
  ASSERT_TRUE(dns::load_mmdb(test_db(), lab_mapping(), out, err, &seen)) << err;
  EXPECT_EQ(err, "");
  // 12 IPv4 networks with data (the IPv6 one is outside ::/96). FR/EU (172.16.0.0/12) maps to
  // nothing; JP falls back to its continent; 100.64.0.0/16 has only registered_country; the
  // two DE /25s of 203.0.113.0/24 (different records) and the /26 pairs of 10.20.0.0/24
  // merge into their parents, but DE and US halves of a /24 do not.
  EXPECT_EQ(seen, 12u);
  EXPECT_EQ(show(out),
            "10.10.0.0/25=west 10.10.0.128/25=east 10.20.0.0/25=west 10.20.0.128/25=east "
            "100.64.0.0/16=east 192.0.2.0/24=south 198.51.100.0/24=asia 203.0.113.0/24=west ");
}

TEST(Geo, MappingChangesMerging) {
  // Everything in one region: each /24 becomes one prefix; unmapped FR still stays out.
  dns::MmdbMapping m;
  m.countries = {{"DE", "all"}, {"US", "all"}};
  m.continents = {{"SA", "all"}};
  std::vector<dns::GeoSource> out{{ip("1.0.0.0"), 8, "kept"}};
  std::string err;
  ASSERT_TRUE(dns::load_mmdb(test_db(), m, out, err)) << err;
  EXPECT_EQ(show(out),
            "1.0.0.0/8=kept 10.10.0.0/24=all 10.20.0.0/24=all 100.64.0.0/16=all 192.0.2.0/24=all "
            "203.0.113.0/24=all ");

  // Continent only: FR and DE both EU; codes never seen in the data are no error.
  m.countries = {{"XX", "nowhere"}};
  m.continents = {{"EU", "europe"}, {"AN", "ice"}};
  out.clear();
  ASSERT_TRUE(dns::load_mmdb(test_db(), m, out, err)) << err;
  EXPECT_EQ(show(out),
            "10.10.0.0/25=europe 10.20.0.0/25=europe 172.16.0.0/12=europe "
            "203.0.113.0/24=europe ");

  // Nothing mapped: nothing out, still a success.
  out.clear();
  size_t seen = 0;
  ASSERT_TRUE(dns::load_mmdb(test_db(), dns::MmdbMapping{}, out, err, &seen)) << err;
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(seen, 12u);
}

TEST(Geo, Errors) {
  std::vector<dns::GeoSource> out{{ip("1.0.0.0"), 8, "kept"}};
  std::string err;
  EXPECT_FALSE(dns::load_mmdb("/nonexistent/x.mmdb", lab_mapping(), out, err));
  EXPECT_EQ(err, "cannot open /nonexistent/x.mmdb: No such file or directory");

  EXPECT_FALSE(dns::load_mmdb(fs::temp_directory_path().string(), lab_mapping(), out, err));
  EXPECT_NE(err.find("not a regular file"), std::string::npos) << err;

  std::vector<uint8_t> junk(4096);
  for (size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<uint8_t>(i * 7 + 3);
  const std::string garbage = write_temp("nf-geo-garbage.mmdb", junk);
  EXPECT_FALSE(dns::load_mmdb(garbage, lab_mapping(), out, err));
  EXPECT_EQ(err.find(garbage + ": not a MaxMind DB"), 0u) << err;

  const std::string empty = write_temp("nf-geo-empty.mmdb", {});
  EXPECT_FALSE(dns::load_mmdb(empty, lab_mapping(), out, err));
  EXPECT_NE(err.find("not a MaxMind DB"), std::string::npos) << err;

  // Search-tree loops and blow-ups. Records are 24 bits, 6 bytes a node.
  uint32_t node_count = 0;
  {
    MMDB_s m{};
    ASSERT_EQ(MMDB_open(test_db().c_str(), MMDB_MODE_MMAP, &m), MMDB_SUCCESS);
    node_count = m.metadata.node_count;
    MMDB_close(&m);
  }
  ASSERT_GT(node_count, 128u);
  auto set = [](std::vector<uint8_t>& d, uint32_t node, int side, uint32_t value) {
    for (int i = 0; i < 3; ++i)
      d[node * 6 + side * 3 + i] = static_cast<uint8_t>(value >> (16 - 8 * i));
  };
  // Node 1 points to itself: the ::/96 walk, then the IPv4 walk, go round until the depth
  // limit.
  std::vector<uint8_t> db = read_bytes(test_db());
  set(db, 0, 0, 1);
  set(db, 1, 0, 1);
  const std::string loop = write_temp("nf-geo-loop.mmdb", db);
  EXPECT_FALSE(dns::load_mmdb(loop, lab_mapping(), out, err));
  EXPECT_NE(err.find("corrupt MaxMind DB: search tree deeper than 32 bits"), std::string::npos)
      << err;
  // Both records of every node point to the next one, 32 levels under ::/96: 2^32 paths
  // through 32 nodes. The visit budget stops it.
  for (uint32_t n = 0; n < 96; ++n) set(db, n, 0, n + 1);
  for (uint32_t n = 96; n < 127; ++n) {
    set(db, n, 0, n + 1);
    set(db, n, 1, n + 1);
  }
  set(db, 127, 0, node_count);  // empty
  set(db, 127, 1, node_count);
  const std::string fan = write_temp("nf-geo-fan.mmdb", db);
  EXPECT_FALSE(dns::load_mmdb(fan, lab_mapping(), out, err));
  EXPECT_NE(err.find("corrupt MaxMind DB: search tree reaches nodes more than once"),
            std::string::npos)
      << err;

  // A record past the end of the data section.
  db = read_bytes(test_db());
  db[0] = db[1] = db[2] = 0xff;
  const std::string bad = write_temp("nf-geo-bad.mmdb", db);
  EXPECT_FALSE(dns::load_mmdb(bad, lab_mapping(), out, err));
  EXPECT_EQ(err, bad + ": corrupt MaxMind DB: invalid record");

  // Failures leave the output alone.
  EXPECT_EQ(show(out), "1.0.0.0/8=kept ");
  for (const auto& p : {garbage, empty, loop, fan, bad}) std::remove(p.c_str());
}

TEST(Geo, Ipv4Database) {
  // The same networks in an IPv4 (ip_version 4) tree, written by the same script.
  const std::string p = (fs::temp_directory_path() / "nf-geo-v4.mmdb").string();
  const std::string cmd = "/usr/bin/python3 " +
                          (fs::path(NF_SOURCE_DIR) / "tests/common/make_mmdb.py").string() +
                          " --ipv4 " + p + " >/dev/null";
  if (!fs::exists("/usr/bin/python3") || std::system(cmd.c_str()) != 0)
    GTEST_SKIP() << "cannot run " << cmd;
  std::vector<dns::GeoSource> v4, v6;
  std::string err;
  ASSERT_TRUE(dns::load_mmdb(p, lab_mapping(), v4, err)) << err;
  ASSERT_TRUE(dns::load_mmdb(test_db(), lab_mapping(), v6, err)) << err;
  EXPECT_EQ(show(v4), show(v6));
  std::remove(p.c_str());
}

TEST(Geo, CompiledViewLookup) {
  std::vector<dns::GeoSource> geo;
  std::string err;
  ASSERT_TRUE(dns::load_mmdb(test_db(), lab_mapping(), geo, err)) << err;
  // A config CIDR alongside: the database's longer prefixes cut into it.
  geo.push_back({ip("10.0.0.0"), 8, "ten"});
  const auto v = compile_geo(geo);
  ASSERT_TRUE(v);
  uint8_t scope = 99;
  EXPECT_EQ(region_at(*v, "10.10.0.5", scope), "west");
  EXPECT_EQ(int{scope}, 25);
  EXPECT_EQ(region_at(*v, "10.10.0.200", scope), "east");
  EXPECT_EQ(int{scope}, 25);
  EXPECT_EQ(region_at(*v, "10.20.0.1", scope), "west");
  EXPECT_EQ(int{scope}, 25);  // merged from two /26s
  EXPECT_EQ(region_at(*v, "203.0.113.250", scope), "west");
  EXPECT_EQ(int{scope}, 24);  // merged from two /25s: the wider ECS scope
  EXPECT_EQ(region_at(*v, "192.0.2.1", scope), "south");
  EXPECT_EQ(int{scope}, 24);
  EXPECT_EQ(region_at(*v, "198.51.100.77", scope), "asia");
  EXPECT_EQ(int{scope}, 24);
  EXPECT_EQ(region_at(*v, "100.64.200.1", scope), "east");
  EXPECT_EQ(int{scope}, 16);
  // The config /8 where the database says nothing; its scope narrows next to 10.10.0.0/24.
  EXPECT_EQ(region_at(*v, "10.99.0.1", scope), "ten");
  EXPECT_EQ(int{scope}, 10);
  EXPECT_EQ(region_at(*v, "10.10.1.1", scope), "ten");
  EXPECT_EQ(int{scope}, 24);
  // Unmapped (FR) and absent networks: no region.
  EXPECT_EQ(v->geo(ip("172.16.1.1"), scope), 0);
  EXPECT_EQ(v->geo(ip("8.8.8.8"), scope), 0);
}
