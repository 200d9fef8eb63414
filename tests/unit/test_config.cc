// The configuration corpus: every file in tests/config/bad carries the exact errors it must
// produce as "# expect: " lines; every file in tests/config/good must load.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/config.h"

namespace nf {
namespace {

namespace fs = std::filesystem;

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

fs::path corpus() {
  return fs::path(NF_SOURCE_DIR) / "tests" / "config";
}

TEST(ConfigCorpus, EveryBadConfigFailsWithItsExactErrors) {
  int files = 0;
  for (const auto& e : fs::directory_iterator(corpus() / "bad")) {
    if (e.path().extension() != ".conf") continue;
    ++files;
    SCOPED_TRACE(e.path().filename().string());
    std::string text = read(e.path());
    std::vector<std::string> want;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);)
      if (l.rfind("# expect: ", 0) == 0) want.push_back(l.substr(10));
    ASSERT_FALSE(want.empty()) << "no '# expect:' line";
    LoadResult r = load_config(e.path().filename().string(), &text);
    auto* errs = std::get_if<std::vector<ConfigError>>(&r);
    ASSERT_NE(errs, nullptr) << "loaded without error";
    std::vector<std::string> got;
    for (const auto& ce : *errs) got.push_back(ce.str());
    EXPECT_EQ(got, want);
  }
  EXPECT_GE(files, 20);
}

TEST(ConfigCorpus, GoodConfigsLoad) {
  for (const auto& e : fs::directory_iterator(corpus() / "good")) {
    SCOPED_TRACE(e.path().string());
    LoadResult r = load_config(e.path().string());
    if (auto* errs = std::get_if<std::vector<ConfigError>>(&r)) FAIL() << format_errors(*errs);
  }
}

TEST(Config, FullReferenceValues) {
  LoadResult r = load_config((corpus() / "good" / "full.conf").string());
  ASSERT_TRUE(std::holds_alternative<Config>(r));
  const Config& c = std::get<Config>(r);
  EXPECT_EQ(c.worker_lcores, (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(c.mbufs, 32767u);
  ASSERT_EQ(c.ports.size(), 2u);
  EXPECT_TRUE(c.ports[0].is_vdev());
  EXPECT_FALSE(c.ports[1].is_vdev());
  EXPECT_EQ(c.ports[0].mtu, 9000);
  EXPECT_EQ(c.ports[0].addresses.size(), 3u);  // with a secondary in the same prefix
  EXPECT_EQ(c.routes.size(), 3u);
  EXPECT_TRUE(c.routes[2].blackhole);
  EXPECT_EQ(c.neighbours.size(), 1u);
  EXPECT_EQ(c.neighbour.probes, 5u);
  EXPECT_EQ(c.icmp_errors_per_sec, 10u);
  EXPECT_EQ(c.control_socket, "/run/nf/other.sock");
  EXPECT_EQ(c.eal_args.size(), 1u);
  EXPECT_EQ(c.connected_port(*parse_ipv4("172.16.0.2")), 0);
  EXPECT_EQ(c.connected_port(*parse_ipv4("8.8.8.8")), -1);
}

TEST(Config, BuiltinLabMatchesTheShippedFile) {
  EXPECT_EQ(builtin_lab_config(), read(fs::path(NF_SOURCE_DIR) / "config" / "lab.conf"));
  LoadResult r = load_config("<built-in lab>", &builtin_lab_config());
  ASSERT_TRUE(std::holds_alternative<Config>(r));
  const Config& c = std::get<Config>(r);
  ASSERT_EQ(c.ports.size(), 3u);
  EXPECT_EQ(format_ipv4(c.ports[0].addresses[0].addr), "10.10.0.1");
  EXPECT_EQ(format_ipv4(c.ports[1].addresses[0].addr), "10.20.0.1");
  EXPECT_EQ(c.ports[2].name, "wan");
  EXPECT_EQ(format_ipv4(c.ports[2].addresses[0].addr), "198.51.100.1");
}

TEST(Config, ReloadBlockersNameWhatNeedsARestart) {
  std::string a = read(corpus() / "good" / "full.conf");
  std::string b = a;
  b.replace(b.find("workers = [1, 2]"), 16, "workers = [1]");
  b.replace(b.find("\"0000:00:04.0\""), 14, "\"0000:00:05.0\"");
  b.replace(b.find("errors_per_sec = 10"), 19, "errors_per_sec = 50");  // reloadable
  Config ca = std::get<Config>(load_config("a.conf", &a));
  Config cb = std::get<Config>(load_config("b.conf", &b));
  auto errs = reload_blockers(ca, cb);
  ASSERT_EQ(errs.size(), 2u);
  EXPECT_EQ(errs[0].str(),
            "b.conf: lcores: the lcore layout cannot change by reload; restart nf to apply");
  EXPECT_EQ(errs[1].path, "ports[1].device");
  EXPECT_TRUE(reload_blockers(ca, ca).empty());
}

}  // namespace
}  // namespace nf
