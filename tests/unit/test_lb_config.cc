// The `lb`, `nat` and `acl` groups as the loader reads them (config/lb_loader.cc): the lab's
// services to the last field, the defaults of every unset setting, which changes a reload
// refuses, and the port range syntax shared by PAT and ACL rules. The error corpus
// (tests/config/bad/lb-*, nat-*, acl-*) covers one message per mistake; these tests cover
// values, boundaries and the cases where only some of a file's errors matter.
//
// While a "nat" or "acl" stage is not registered, a configuration with its group cannot load:
// such tests leave the stage out of the pipeline and expect exactly the loader's "configured,
// but the pipeline has no ... stage" error besides the ones under test. Once a stage is
// registered they put it in the pipeline and check the parsed values too.
#include <gtest/gtest.h>

#include <netinet/in.h>

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "config/config.h"
#include "nf/core/stage.h"

namespace nf {
namespace {

const char* const kBase = R"(
lcores = { management = 0; workers = [1]; };
ports = ( { name = "lan"; device = "net_null0"; addresses = ["10.10.0.1/24"]; },
          { name = "srv"; device = "net_null1"; addresses = ["10.20.0.1/24", "10.20.0.2/24"]; } );
health = { checks = ( { name = "http80"; type = "http"; port = 80; },
                      { name = "ping"; type = "icmp"; } ); };
)";

uint32_t ip(const char* s) {
  return *parse_ipv4(s);
}

std::vector<std::string> strs(const std::vector<ConfigError>& errs) {
  std::vector<std::string> out;
  for (const ConfigError& e : errs) out.push_back(e.str());
  return out;
}

// The base configuration (lines 2-6), the pipeline (line 7) and `rest` (from line 8).
LoadResult load(const std::string& pipeline, const std::string& rest) {
  const std::string text = kBase + ("pipeline = [ " + pipeline + " ];\n") + rest;
  return load_config("t.conf", &text);
}

// An lb group that must load.
Config lb_ok(const std::string& lb_group) {
  LoadResult r = load(R"("input", "lb", "ip4_forward")", lb_group);
  if (auto* e = std::get_if<std::vector<ConfigError>>(&r)) {
    ADD_FAILURE() << format_errors(*e);
    return Config{};
  }
  return std::get<Config>(r);
}

// The errors of an lb group that must not load, as "file:line: path: message".
std::vector<std::string> lb_errors(const std::string& lb_group) {
  LoadResult r = load(R"("input", "lb", "ip4_forward")", lb_group);
  auto* e = std::get_if<std::vector<ConfigError>>(&r);
  if (!e) {
    ADD_FAILURE() << "loaded without error";
    return {};
  }
  return strs(*e);
}

// Replaces the first occurrence of `from`, which must be there.
void replace_once(std::string& s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  ASSERT_NE(at, std::string::npos) << from;
  s.replace(at, from.size(), to);
}

// A service named "s" on 10.30.0.10 with the settings given.
std::string service(const std::string& settings) {
  return "lb = { services = ( { name = \"s\"; vip = \"10.30.0.10\"; " + settings + " } ); };";
}

// A `nat` or `acl` group: loaded with its stage when that is registered, otherwise without it.
// `errors` are those left once the stage-pairing error (required when the stage is missing) is
// taken out; `config` is set when the file loaded.
struct GroupLoad {
  std::optional<Config> config;
  std::vector<std::string> errors;
};

GroupLoad load_group(const char* stage, const std::string& group) {
  const bool registered = find_stage(stage) != nullptr;
  // The acl group has two stages: "acl" (in sets) right after input, "acl_out" (out sets)
  // right before ip4_forward.
  const std::string pipeline = !registered ? R"("input", "ip4_forward")"
                               : std::string(stage) == "acl"
                                   ? R"("input", "acl", "acl_out", "ip4_forward")"
                                   : std::string(R"("input", ")") + stage + R"(", "ip4_forward")";
  LoadResult r = load(pipeline, group);
  GroupLoad out;
  if (auto* c = std::get_if<Config>(&r)) {
    out.config = *c;
    return out;
  }
  const std::string pairing =
      std::string(stage) + ": configured, but the pipeline has no \"" + stage + "\" stage";
  int pairings = 0;
  for (const ConfigError& e : std::get<std::vector<ConfigError>>(r)) {
    if (e.path + ": " + e.message == pairing) {
      ++pairings;
      continue;
    }
    out.errors.push_back(e.str());
  }
  EXPECT_EQ(pairings, registered ? 0 : 1);
  return out;
}

// ---------------------------------------------------------------------------------------------
// lb

TEST(LbConfig, LabServicesParseToTheExactServices) {
  LoadResult r = load_config("<built-in lab>", &builtin_lab_config());
  ASSERT_TRUE(std::holds_alternative<Config>(r)) << format_errors(std::get<1>(r));
  const Config& c = std::get<Config>(r);
  EXPECT_TRUE(c.lb.enabled);
  EXPECT_TRUE(c.nat.enabled);  // tests/unit/test_nat.cc and tests/lab/test_nat.sh
  EXPECT_FALSE(c.acl.enabled);
  EXPECT_EQ(c.pipeline,
            (std::vector<std::string>{"input", "dhcp", "dns", "lb", "nat", "ip4_forward"}));
  EXPECT_EQ(c.lb.max_flows, 65536u);
  ASSERT_EQ(c.lb.services.size(), 8u);

  // The services the lab tests rely on: nat and full NAT (tests/lab/test_lb.sh, 0..3), then
  // direct server return (tests/lab/test_lb_dsr.sh, 4..7).
  struct Want {
    const char* name;
    const char* vip;
    uint8_t proto;
    uint16_t port;
    LbMode mode;
    LbScheduler scheduler;
    uint32_t persistence;
    std::vector<uint32_t> snat;
    uint8_t dscp;
    uint32_t weights[3];
  };
  using S = LbScheduler;
  constexpr uint8_t kTcp = IPPROTO_TCP;
  constexpr uint8_t kUdp = IPPROTO_UDP;
  const Want want[] = {
      {"web", "10.30.0.10", kTcp, 80, LbMode::kNat, S::kWeightedRoundRobin, 0, {}, 0, {1, 1, 1}},
      {"web-fullnat",
       "10.30.0.11",
       kTcp,
       80,
       LbMode::kFullNat,
       S::kMaglev,
       0,
       {ip("10.20.0.2")},
       0,
       {1, 1, 1}},
      {"web-sticky", "10.30.0.12", kTcp, 80, LbMode::kNat, S::kRoundRobin, 60, {}, 0, {1, 1, 1}},
      // The same VIP as "web", every UDP port.
      {"udp-any", "10.30.0.10", kUdp, 0, LbMode::kNat, S::kMaglev, 0, {}, 0, {1, 1, 1}},
      {"web-dsr", "10.30.0.20", kTcp, 80, LbMode::kDsr, S::kRoundRobin, 0, {}, 0, {1, 1, 1}},
      {"udp-dsr", "10.30.0.20", kUdp, 7, LbMode::kDsr, S::kRoundRobin, 0, {}, 0, {1, 1, 1}},
      {"web-ipip",
       "10.30.0.21",
       kTcp,
       80,
       LbMode::kIpip,
       S::kWeightedRoundRobin,
       0,
       {},
       0,
       {1, 2, 3}},
      {"web-dscp", "10.30.0.22", kTcp, 80, LbMode::kDscp, S::kMaglev, 0, {}, 22, {1, 1, 1}},
  };
  for (size_t i = 0; i < std::size(want); ++i) {
    const LbService& s = c.lb.services[i];
    SCOPED_TRACE(s.name);
    EXPECT_EQ(s.name, want[i].name);
    EXPECT_EQ(s.vip, ip(want[i].vip));
    EXPECT_EQ(s.proto, want[i].proto);
    EXPECT_EQ(s.port, want[i].port);
    EXPECT_EQ(s.mode, want[i].mode);
    EXPECT_EQ(s.scheduler, want[i].scheduler);
    EXPECT_EQ(s.persistence_s, want[i].persistence);
    EXPECT_EQ(s.snat, want[i].snat);
    EXPECT_EQ(s.on_down, LbOnDown::kKeep);
    EXPECT_EQ(s.dscp, want[i].dscp);
    EXPECT_EQ(s.mss_clamp, 0);  // ipip: derived from the smallest MTU at runtime
    EXPECT_EQ(s.check, "http80");
    ASSERT_EQ(s.reals.size(), 3u);
    for (size_t j = 0; j < 3; ++j) {
      const LbReal& re = s.reals[j];
      EXPECT_EQ(format_ipv4(re.addr), "10.20.0.1" + std::to_string(j + 1));
      EXPECT_EQ(re.port, 0);  // the client's destination port
      EXPECT_EQ(re.weight, want[i].weights[j]);
      EXPECT_EQ(re.check, "http80");  // inherited from the service
      EXPECT_GT(re.line, s.line);
    }
  }
  // Every service is on its own lines, in file order.
  for (size_t i = 1; i < c.lb.services.size(); ++i)
    EXPECT_LT(c.lb.services[i - 1].line, c.lb.services[i].line);
}

TEST(LbConfig, DefaultsOfEveryUnsetSetting) {
  const Config c = lb_ok(service(R"(reals = ( { address = "10.20.0.11"; } );)"));
  ASSERT_TRUE(c.lb.enabled);
  EXPECT_EQ(c.lb.max_flows, 1u << 20);
  EXPECT_EQ(c.lb.syn_flood_rate, 50000u);
  EXPECT_EQ(c.lb.maglev_min_size, 65537u);
  const LbTimeouts& t = c.lb.timeouts;
  EXPECT_EQ(t.tcp_syn, 10u);
  EXPECT_EQ(t.tcp_established, 900u);
  EXPECT_EQ(t.tcp_fin, 30u);
  EXPECT_EQ(t.tcp_time_wait, 10u);
  EXPECT_EQ(t.tcp_close, 3u);
  EXPECT_EQ(t.udp, 300u);
  EXPECT_EQ(t.icmp, 60u);
  ASSERT_EQ(c.lb.services.size(), 1u);
  const LbService& s = c.lb.services[0];
  EXPECT_EQ(s.proto, IPPROTO_TCP);
  EXPECT_EQ(s.port, 0);  // every port
  EXPECT_EQ(s.mode, LbMode::kNat);
  EXPECT_EQ(s.scheduler, LbScheduler::kWeightedRoundRobin);
  EXPECT_EQ(s.persistence_s, 0u);
  EXPECT_EQ(s.on_down, LbOnDown::kKeep);
  EXPECT_TRUE(s.snat.empty());
  EXPECT_EQ(s.dscp, 0);
  EXPECT_EQ(s.mss_clamp, 0);
  EXPECT_EQ(s.check, "");
  ASSERT_EQ(s.reals.size(), 1u);
  EXPECT_EQ(s.reals[0].port, 0);
  EXPECT_EQ(s.reals[0].weight, 1u);
  EXPECT_EQ(s.reals[0].check, "");
  EXPECT_EQ(s.line, 8);  // the base is lines 2-6, the pipeline line 7
}

TEST(LbConfig, EverySettingParses) {
  const Config c = lb_ok(R"(lb = {
  max_flows = 4000000;
  syn_flood_rate = 100;
  maglev_min_size = 251;
  timeouts = { tcp_syn = 1; tcp_established = 604800; tcp_fin = 3600; tcp_time_wait = 600;
               tcp_close = 600; udp = 86400; icmp = 3600; };
  services = (
    { name = "full"; vip = "10.30.0.10"; protocol = "udp"; port = 53; mode = "fullnat";
      scheduler = "least_conn"; persistence = 86400; on_real_down = "reset";
      snat = [ "10.20.0.2", "10.20.0.1" ]; check = "ping";
      reals = ( { address = "10.20.0.11"; port = 5353; weight = 0; },
                { address = "192.0.2.7"; weight = 65535; check = "http80"; } ); },
    { name = "l2"; vip = "10.30.0.10"; port = 80; mode = "dsr"; scheduler = "source_hash";
      reals = ( { address = "10.20.0.11"; port = 80; } ); },
    { name = "tun"; vip = "10.30.0.11"; mode = "ipip"; mss_clamp = 1400;
      reals = ( { address = "192.0.2.7"; } ); },
    { name = "ds"; vip = "10.30.0.12"; port = 443; mode = "dscp"; dscp = 63; mss_clamp = 536;
      scheduler = "maglev"; reals = ( { address = "192.0.2.8"; } ); }
  );
};)");
  ASSERT_TRUE(c.lb.enabled);
  EXPECT_EQ(c.lb.max_flows, 4000000u);
  EXPECT_EQ(c.lb.syn_flood_rate, 100u);
  EXPECT_EQ(c.lb.maglev_min_size, 251u);
  const LbTimeouts& t = c.lb.timeouts;
  EXPECT_EQ(t.tcp_syn, 1u);
  EXPECT_EQ(t.tcp_established, 604800u);
  EXPECT_EQ(t.tcp_fin, 3600u);
  EXPECT_EQ(t.tcp_time_wait, 600u);
  EXPECT_EQ(t.tcp_close, 600u);
  EXPECT_EQ(t.udp, 86400u);
  EXPECT_EQ(t.icmp, 3600u);
  ASSERT_EQ(c.lb.services.size(), 4u);

  const LbService& f = c.lb.services[0];
  EXPECT_EQ(f.proto, IPPROTO_UDP);
  EXPECT_EQ(f.port, 53);
  EXPECT_EQ(f.mode, LbMode::kFullNat);
  EXPECT_EQ(f.scheduler, LbScheduler::kLeastConn);
  EXPECT_EQ(f.persistence_s, 86400u);
  EXPECT_EQ(f.on_down, LbOnDown::kReset);
  EXPECT_EQ(f.snat, (std::vector<uint32_t>{ip("10.20.0.2"), ip("10.20.0.1")}));  // in order
  ASSERT_EQ(f.reals.size(), 2u);
  EXPECT_EQ(f.reals[0].port, 5353);
  EXPECT_EQ(f.reals[0].weight, 0u);  // drained, still configured
  EXPECT_EQ(f.reals[0].check, "ping");
  EXPECT_EQ(f.reals[1].addr, ip("192.0.2.7"));  // NAT reals may be routed
  EXPECT_EQ(f.reals[1].weight, 65535u);
  EXPECT_EQ(f.reals[1].check, "http80");  // its own check wins over the service's

  // The same VIP and port with another protocol is another service.
  const LbService& l2 = c.lb.services[1];
  EXPECT_EQ(l2.vip, f.vip);
  EXPECT_EQ(l2.mode, LbMode::kDsr);
  EXPECT_EQ(l2.scheduler, LbScheduler::kSourceHash);
  EXPECT_EQ(l2.reals[0].port, 80);  // equal to the service's: allowed for DSR

  const LbService& tun = c.lb.services[2];
  EXPECT_EQ(tun.mode, LbMode::kIpip);
  EXPECT_EQ(tun.port, 0);
  EXPECT_EQ(tun.mss_clamp, 1400);

  const LbService& ds = c.lb.services[3];
  EXPECT_EQ(ds.mode, LbMode::kDscp);
  EXPECT_EQ(ds.dscp, 63);
  EXPECT_EQ(ds.mss_clamp, 536);
  EXPECT_EQ(ds.scheduler, LbScheduler::kMaglev);
}

TEST(LbConfig, GoodCorpusFileHasEveryModeAndScheduler) {
  LoadResult r = load_config(std::string(NF_SOURCE_DIR) + "/tests/config/good/lb.conf");
  ASSERT_TRUE(std::holds_alternative<Config>(r)) << format_errors(std::get<1>(r));
  const LbConfig& lb = std::get<Config>(r).lb;
  EXPECT_EQ(lb.max_flows, 2000000u);
  EXPECT_EQ(lb.syn_flood_rate, 20000u);
  EXPECT_EQ(lb.maglev_min_size, 131071u);
  EXPECT_EQ(lb.timeouts.tcp_established, 3600u);
  EXPECT_EQ(lb.timeouts.icmp, 30u);
  std::vector<std::string> got;
  for (const LbService& s : lb.services)
    got.push_back(s.name + " " + lb_mode_name(s.mode) + " " + lb_scheduler_name(s.scheduler) + " " +
                  format_ipv4(s.vip) + ":" + std::to_string(s.port) + "/" +
                  std::to_string(s.proto) + " reals=" + std::to_string(s.reals.size()));
  EXPECT_EQ(got, (std::vector<std::string>{
                     "web nat weighted_round_robin 10.30.0.10:80/6 reals=4",
                     "api fullnat maglev 10.30.0.11:443/6 reals=2",
                     "api-udp nat least_conn 10.30.0.11:443/17 reals=2",
                     "dns dsr source_hash 10.30.0.12:53/17 reals=2",
                     "tunnel ipip round_robin 10.30.0.13:0/6 reals=2",
                     "marked dscp maglev 10.30.0.14:80/6 reals=2",
                 }));
  ASSERT_EQ(lb.services.size(), 6u);
  EXPECT_EQ(lb.services[0].reals[2].weight, 0u);
  EXPECT_EQ(lb.services[0].reals[3].check, "ping");
  EXPECT_EQ(lb.services[0].reals[3].port, 8080);
  EXPECT_EQ(lb.services[0].on_down, LbOnDown::kReset);
  EXPECT_EQ(lb.services[1].snat, (std::vector<uint32_t>{ip("10.20.0.2"), ip("10.20.0.1")}));
  EXPECT_EQ(lb.services[3].persistence_s, 300u);
  EXPECT_EQ(lb.services[4].mss_clamp, 1440);
  EXPECT_EQ(lb.services[5].dscp, 10);
}

TEST(LbConfig, ModeAndSchedulerNamesRoundTrip) {
  for (const char* m : {"nat", "fullnat", "dsr", "ipip", "dscp"}) {
    SCOPED_TRACE(m);
    std::string extra = std::string("mode = \"") + m + "\"; port = 80; ";
    if (std::string(m) == "fullnat") extra += R"(snat = [ "10.20.0.2" ]; )";
    if (std::string(m) == "dscp") extra += "dscp = 8; ";
    const Config c = lb_ok(service(extra + R"(reals = ( { address = "10.20.0.11"; } );)"));
    ASSERT_EQ(c.lb.services.size(), 1u);
    EXPECT_STREQ(lb_mode_name(c.lb.services[0].mode), m);
  }
  for (const char* s :
       {"round_robin", "weighted_round_robin", "least_conn", "source_hash", "maglev"}) {
    SCOPED_TRACE(s);
    const Config c = lb_ok(service(std::string("scheduler = \"") + s +
                                   R"("; reals = ( { address = "10.20.0.11"; } );)"));
    ASSERT_EQ(c.lb.services.size(), 1u);
    EXPECT_STREQ(lb_scheduler_name(c.lb.services[0].scheduler), s);
  }
}

TEST(LbConfig, RangesAcceptTheirBoundsAndRejectOneBeyond) {
  // Upper bounds and the largest prime allowed load.
  const Config hi = lb_ok(R"(lb = { max_flows = 268435456; maglev_min_size = 1000003;
    services = ( { name = "s"; vip = "10.30.0.10"; persistence = 86400; port = 65535;
                   reals = ( { address = "10.20.0.11"; weight = 65535; port = 65535; } ); } ); };)");
  EXPECT_EQ(hi.lb.max_flows, 268435456u);
  EXPECT_EQ(hi.lb.maglev_min_size, 1000003u);
  const Config lo = lb_ok(R"(lb = { max_flows = 1024; syn_flood_rate = 100000000;
    services = ( { name = "s"; vip = "10.30.0.10"; port = 1;
                   reals = ( { address = "10.20.0.11"; weight = 0; port = 1; } ); } ); };)");
  EXPECT_EQ(lo.lb.max_flows, 1024u);
  EXPECT_EQ(lo.lb.syn_flood_rate, 100000000u);

  EXPECT_EQ(lb_errors(R"(lb = { max_flows = 1023; syn_flood_rate = 99; maglev_min_size = 250;
    services = ( { name = "s"; vip = "10.30.0.10"; persistence = 86401; mss_clamp = 535;
                   reals = ( { address = "10.20.0.11"; weight = 65536; } ); } ); };)"),
            (std::vector<std::string>{
                "t.conf:8: lb.max_flows: value 1023 out of range [1024, 268435456]",
                "t.conf:8: lb.syn_flood_rate: value 99 out of range [100, 100000000]",
                "t.conf:8: lb.maglev_min_size: value 250 out of range [251, 1000003]",
                "t.conf:9: lb.services[0].persistence: value 86401 out of range [0, 86400]",
                "t.conf:9: lb.services[0].mss_clamp: value 535 out of range [536, 9000]",
                "t.conf:10: lb.services[0].reals[0].weight: value 65536 out of range [0, 65535]",
            }));
  // A composite in range is still refused: Maglev needs a prime.
  EXPECT_EQ(lb_errors(R"(lb = { maglev_min_size = 65531;
    services = ( { name = "s"; vip = "10.30.0.10"; reals = ( { address = "10.20.0.11"; } ); } ); };)"),
            std::vector<std::string>{
                "t.conf:8: lb.maglev_min_size: 65531 is not a prime (Maglev tables need a prime "
                "size)"});
}

TEST(LbConfig, RealsInheritTheServiceCheckUnlessTheyNameTheirOwn) {
  const Config c = lb_ok(R"(lb = { services = (
    { name = "a"; vip = "10.30.0.10"; check = "http80";
      reals = ( { address = "10.20.0.11"; }, { address = "10.20.0.12"; check = "ping"; } ); },
    { name = "b"; vip = "10.30.0.11";
      reals = ( { address = "10.20.0.11"; }, { address = "10.20.0.12"; check = "ping"; } ); }
  ); };)");
  ASSERT_EQ(c.lb.services.size(), 2u);
  EXPECT_EQ(c.lb.services[0].reals[0].check, "http80");
  EXPECT_EQ(c.lb.services[0].reals[1].check, "ping");
  EXPECT_EQ(c.lb.services[1].check, "");
  EXPECT_EQ(c.lb.services[1].reals[0].check, "");  // no check: always up
  EXPECT_EQ(c.lb.services[1].reals[1].check, "ping");
}

TEST(LbConfig, ReloadBlockersNameOnlyTheTableSizes) {
  const std::string& lab = builtin_lab_config();
  const Config cur = std::get<Config>(load_config("a.conf", &lab));

  // Every lb-only change but the table size reloads: weights, a new real, a new service,
  // timeouts, the flood threshold, a mode, a scheduler, persistence.
  std::string b = lab;
  replace_once(b, "max_flows = 65536;",
               "max_flows = 65536; syn_flood_rate = 1000; timeouts = { tcp_established = 60; };");
  replace_once(b, R"({ address = "10.20.0.13"; } ); },)",
               R"({ address = "10.20.0.13"; weight = 0; }, { address = "10.20.0.14"; } ); },)");
  replace_once(b, R"(scheduler = "maglev";)", R"(scheduler = "least_conn";)");
  replace_once(b, "persistence = 60;", "persistence = 600;");
  replace_once(b, R"(vip = "10.30.0.12"; protocol = "tcp"; port = 80; mode = "nat";)",
               R"(vip = "10.30.0.12"; protocol = "tcp"; port = 80; mode = "dsr";)");
  replace_once(b, "services = (",
               R"(services = ( { name = "new"; vip = "10.30.0.20"; protocol = "udp"; port = 53;
                               reals = ( { address = "10.20.0.11"; } ); },)");
  LoadResult rn = load_config("b.conf", &b);
  ASSERT_TRUE(std::holds_alternative<Config>(rn)) << format_errors(std::get<1>(rn));
  const Config& next = std::get<Config>(rn);
  ASSERT_EQ(next.lb.services.size(), cur.lb.services.size() + 1);  // the edits took
  EXPECT_EQ(next.lb.services[0].name, "new");
  EXPECT_EQ(next.lb.services[1].reals.size(), 4u);
  EXPECT_EQ(next.lb.timeouts.tcp_established, 60u);
  EXPECT_EQ(next.lb.services[2].scheduler, LbScheduler::kLeastConn);
  EXPECT_EQ(next.lb.services[3].persistence_s, 600u);
  EXPECT_EQ(next.lb.services[3].mode, LbMode::kDsr);
  EXPECT_EQ(strs(reload_blockers(cur, next)), std::vector<std::string>{});

  std::string m = lab;
  replace_once(m, "max_flows = 65536;", "max_flows = 131072;");
  const Config bigger = std::get<Config>(load_config("m.conf", &m));
  EXPECT_EQ(strs(reload_blockers(cur, bigger)),
            std::vector<std::string>{
                "m.conf: lb.max_flows: the flow table size cannot change by reload; restart nf "
                "to apply"});

  // No nat group loads yet (no "nat" stage): the field is what reload compares.
  Config nat = cur;
  nat.file = "n.conf";
  nat.nat.max_sessions = cur.nat.max_sessions * 2;
  EXPECT_EQ(strs(reload_blockers(cur, nat)),
            std::vector<std::string>{
                "n.conf: nat.max_sessions: the NAT session table size cannot change by reload; "
                "restart nf to apply"});
}

// ---------------------------------------------------------------------------------------------
// Port ranges (shared by nat.dynamic[].ports and acl rules' sport/dport)

// A forward on 10.10.0.1:`probe` inside the PAT range makes the loader print the range it
// parsed: the one way to see it while no "nat" stage can load.
std::vector<std::string> pat_range(const std::string& ports, int probe) {
  const std::string g =
      "nat = { static = ( { address = \"10.10.0.1\"; port = " + std::to_string(probe) +
      "; to = \"10.20.0.11\"; } );\n"
      "dynamic = ( { inside = [ \"10.20.0.0/24\" ]; port = \"lan\"; address = "
      "\"10.10.0.1\";" +
      (ports.empty() ? "" : " ports = " + ports + ";") + " } ); };";
  GroupLoad r = load_group("nat", g);
  return r.errors;
}

std::string inside(int lo, int hi, int probe) {
  return "t.conf:8: nat.static: port " + std::to_string(probe) +
         " of 10.10.0.1 is forwarded, and inside the dynamic PAT range " + std::to_string(lo) +
         "-" + std::to_string(hi) + " of the same address";
}

TEST(LbConfig, PortRangesParse) {
  // Unset: the default range.
  EXPECT_EQ(pat_range("", 1024), std::vector<std::string>{inside(1024, 65535, 1024)});
  EXPECT_EQ(pat_range("", 1023), std::vector<std::string>{});
  // "lo-hi", both ends inclusive.
  EXPECT_EQ(pat_range(R"("2000-3000")", 2000), std::vector<std::string>{inside(2000, 3000, 2000)});
  EXPECT_EQ(pat_range(R"("2000-3000")", 3000), std::vector<std::string>{inside(2000, 3000, 3000)});
  EXPECT_EQ(pat_range(R"("2000-3000")", 3001), std::vector<std::string>{});
  EXPECT_EQ(pat_range(R"("1024-1087")", 1087), std::vector<std::string>{inside(1024, 1087, 1087)});
  // The whole space parses (and is refused for PAT only because it starts below 1024).
  EXPECT_EQ(pat_range(R"("0-65535")", 5000),
            (std::vector<std::string>{
                inside(0, 65535, 5000),
                "t.conf:9: nat.dynamic[0].ports: PAT ports start at 1024 or above (below are the "
                "appliance's services)"}));
  // A single port, as a string or an integer, is a range of one.
  const std::string few =
      "t.conf:9: nat.dynamic[0].ports: a PAT range needs at least 64 ports (they are split "
      "among the workers)";
  EXPECT_EQ(pat_range(R"("5000")", 5000),
            (std::vector<std::string>{inside(5000, 5000, 5000), few}));
  EXPECT_EQ(pat_range("5000", 5000), (std::vector<std::string>{inside(5000, 5000, 5000), few}));
  EXPECT_EQ(pat_range(R"("1024-1086")", 1024),
            (std::vector<std::string>{inside(1024, 1086, 1024), few}));
}

TEST(LbConfig, PortRangesRejectMalformedOnes) {
  auto bad = [](const std::string& v) {
    return "t.conf:9: nat.dynamic[0].ports: not a port or port range lo-hi within 0-65535: \"" + v +
           "\"";
  };
  // A refused range leaves the default, so the probe at 1024 still reports 1024-65535.
  for (const char* v : {"10-5", "", "http", "-5", "5-", "1-2-3", " 80", "80 ", "65536",
                        "1024-65536", "0x400", "+1024", "99999999999", "1024-"}) {
    SCOPED_TRACE(v);
    EXPECT_EQ(pat_range(std::string("\"") + v + "\"", 1024),
              (std::vector<std::string>{inside(1024, 65535, 1024), bad(v)}));
  }
  EXPECT_EQ(pat_range("70000", 1024),
            (std::vector<std::string>{inside(1024, 65535, 1024),
                                      "t.conf:9: nat.dynamic[0].ports: port 70000 out of range "
                                      "[0, 65535]"}));
  EXPECT_EQ(pat_range("-1", 1024),
            (std::vector<std::string>{inside(1024, 65535, 1024),
                                      "t.conf:9: nat.dynamic[0].ports: port -1 out of range "
                                      "[0, 65535]"}));
  EXPECT_EQ(pat_range("true", 1024),
            (std::vector<std::string>{
                inside(1024, 65535, 1024),
                "t.conf:9: nat.dynamic[0].ports: must be a string, not a boolean"}));
}

// ---------------------------------------------------------------------------------------------
// acl

TEST(LbConfig, AclPortRangesInRulesParse) {
  GroupLoad r = load_group("acl", R"(acl = { sets = ( { port = "lan"; rules = (
    { action = "deny"; protocol = "tcp"; dport = "80"; },
    { action = "deny"; protocol = "udp"; dport = 80; sport = "1000-2000"; },
    { action = "deny"; protocol = 6; sport = "0-65535"; },
    { action = "deny"; protocol = 17; dport = 0; }
  ); } ); };)");
  EXPECT_EQ(r.errors, std::vector<std::string>{});
  ASSERT_TRUE(r.config);
  const auto& rules = r.config->acl.sets.at(0).rules;
  ASSERT_EQ(rules.size(), 4u);
  EXPECT_EQ(rules[0].dport_lo, 80);
  EXPECT_EQ(rules[0].dport_hi, 80);
  EXPECT_EQ(rules[0].sport_lo, 0);
  EXPECT_EQ(rules[0].sport_hi, 65535);
  EXPECT_EQ(rules[1].dport_lo, 80);
  EXPECT_EQ(rules[1].dport_hi, 80);
  EXPECT_EQ(rules[1].sport_lo, 1000);
  EXPECT_EQ(rules[1].sport_hi, 2000);
  EXPECT_EQ(rules[2].proto, IPPROTO_TCP);
  EXPECT_EQ(rules[2].sport_lo, 0);
  EXPECT_EQ(rules[2].sport_hi, 65535);
  EXPECT_EQ(rules[3].proto, IPPROTO_UDP);
  EXPECT_EQ(rules[3].dport_lo, 0);
  EXPECT_EQ(rules[3].dport_hi, 0);
  for (const AclRuleConfig& rule : rules) EXPECT_TRUE(rule.has_ports);
}

TEST(LbConfig, AclRuleDefaultsMatchAnything) {
  GroupLoad r = load_group("acl", R"(acl = { sets = ( { port = "srv"; rules = (
    { action = "deny"; },
    { action = "permit"; name = "web"; src = "any"; dst = "10.30.0.10"; protocol = "any"; }
  ); } ); };)");
  EXPECT_EQ(r.errors, std::vector<std::string>{});
  ASSERT_TRUE(r.config);
  ASSERT_TRUE(r.config->acl.enabled);
  ASSERT_EQ(r.config->acl.sets.size(), 1u);
  const AclSet& set = r.config->acl.sets[0];
  EXPECT_EQ(set.port, 1);
  EXPECT_FALSE(set.out);
  EXPECT_TRUE(set.default_permit);
  ASSERT_EQ(set.rules.size(), 2u);
  const AclRuleConfig& d = set.rules[0];
  EXPECT_FALSE(d.permit);
  EXPECT_EQ(d.src, Prefix{});
  EXPECT_EQ(d.dst, Prefix{});
  EXPECT_EQ(d.proto, 0);
  EXPECT_EQ(d.sport_lo, 0);
  EXPECT_EQ(d.sport_hi, 65535);
  EXPECT_EQ(d.dport_lo, 0);
  EXPECT_EQ(d.dport_hi, 65535);
  EXPECT_FALSE(d.has_ports);
  EXPECT_EQ(d.name, "acl.sets[0].rules[0]");
  const AclRuleConfig& w = set.rules[1];
  EXPECT_TRUE(w.permit);
  EXPECT_EQ(w.name, "web");
  EXPECT_EQ(w.src, Prefix{});
  EXPECT_EQ(w.dst, (Prefix{ip("10.30.0.10"), 32}));  // a bare address is a /32
  EXPECT_EQ(w.proto, 0);
  EXPECT_FALSE(w.has_ports);
}

TEST(LbConfig, AclSetsTakeDirectionDefaultAndPrefixes) {
  GroupLoad r = load_group("acl", R"(acl = { sets = (
    { port = "srv"; direction = "out"; default = "deny"; },
    { port = "srv"; direction = "in";
      rules = ( { action = "permit"; src = "192.0.2.0/24"; dst = "10.20.0.0/23";
                  protocol = "icmp"; } ); },
    { port = "lan"; default = "permit"; }
  ); };)");
  EXPECT_EQ(r.errors, std::vector<std::string>{});
  ASSERT_TRUE(r.config);
  const auto& sets = r.config->acl.sets;
  ASSERT_EQ(sets.size(), 3u);
  EXPECT_EQ(sets[0].port, 1);
  EXPECT_TRUE(sets[0].out);
  EXPECT_FALSE(sets[0].default_permit);
  EXPECT_TRUE(sets[0].rules.empty());
  EXPECT_EQ(sets[1].port, 1);
  EXPECT_FALSE(sets[1].out);  // the same port's other direction is another set
  ASSERT_EQ(sets[1].rules.size(), 1u);
  EXPECT_EQ(sets[1].rules[0].src, (Prefix{ip("192.0.2.0"), 24}));
  EXPECT_EQ(sets[1].rules[0].dst, (Prefix{ip("10.20.0.0"), 23}));
  EXPECT_EQ(sets[1].rules[0].proto, IPPROTO_ICMP);
  EXPECT_EQ(sets[2].port, 0);
  EXPECT_TRUE(sets[2].default_permit);
}

TEST(LbConfig, AclErrorsPointAtTheirRule) {
  GroupLoad r = load_group("acl", R"(acl = { sets = ( { port = "lan"; direction = "out";
    default = "deny"; rules = (
    { action = "deny"; protocol = "icmp"; dport = 8; },
    { action = "deny"; src = "10.10.0.0/16"; dst = "10.10.0.1/16"; },
    { action = "deny"; protocol = "gre"; }
  ); } ); };)");
  EXPECT_EQ(r.errors,
            (std::vector<std::string>{
                "t.conf:10: acl.sets[0].rules[0]: port ranges need protocol \"tcp\" or \"udp\"",
                "t.conf:11: acl.sets[0].rules[1].dst: not an address, a prefix a.b.c.d/len (host "
                "bits zero) or \"any\": \"10.10.0.1/16\"",
                "t.conf:12: acl.sets[0].rules[2].protocol: must be tcp, udp, icmp, any or a "
                "protocol number 0-255, not \"gre\""}));
}

// The two acl stages must sit where their direction means something, and each direction's sets
// need their stage; a group with neither stage is the usual pairing error, alone.
TEST(LbConfig, AclStagesAndDirectionsPair) {
  const std::string in_set = R"(acl = { sets = ( { port = "lan"; } ); };)";
  const std::string out_set = R"(acl = { sets = ( { port = "srv"; direction = "out"; } ); };)";
  auto errors = [](const std::string& pipeline, const std::string& rest) {
    LoadResult r = load(pipeline, rest);
    auto* e = std::get_if<std::vector<ConfigError>>(&r);
    return e ? strs(*e) : std::vector<std::string>{};
  };
  EXPECT_EQ(errors(R"("input", "acl", "ip4_forward")", in_set), std::vector<std::string>{});
  EXPECT_EQ(errors(R"("input", "acl_out", "ip4_forward")", out_set), std::vector<std::string>{});
  EXPECT_EQ(errors(R"("input", "acl", "ip4_forward")", out_set),
            (std::vector<std::string>{"t.conf:8: acl.sets[0]: an \"out\" set needs the "
                                      "\"acl_out\" stage in the pipeline, directly before "
                                      "\"ip4_forward\""}));
  EXPECT_EQ(errors(R"("input", "acl_out", "ip4_forward")", in_set),
            (std::vector<std::string>{"t.conf:8: acl.sets[0]: an \"in\" set needs the \"acl\" "
                                      "stage in the pipeline, directly after \"input\""}));
  EXPECT_EQ(errors(R"("input", "ip4_forward")", out_set),
            (std::vector<std::string>{
                "t.conf:8: acl: configured, but the pipeline has no \"acl\" stage"}));
  EXPECT_EQ(errors(R"("input", "lb", "acl", "ip4_forward")", in_set + "\n" + service(R"(
      protocol = "tcp"; port = 80; reals = ( { address = "10.20.0.11"; } );)")),
            (std::vector<std::string>{
                "t.conf:7: pipeline: the \"acl\" stage must come directly after \"input\" (an "
                "ingress ACL sees every packet entering a port)"}));
  EXPECT_EQ(errors(R"("input", "acl_out", "lb", "ip4_forward")", out_set + "\n" + service(R"(
      protocol = "tcp"; port = 80; reals = ( { address = "10.20.0.11"; } );)")),
            (std::vector<std::string>{
                "t.conf:7: pipeline: the \"acl_out\" stage must come directly before "
                "\"ip4_forward\" (an egress ACL sees packets after every rewrite, routed as they "
                "will leave)"}));
  EXPECT_EQ(errors(R"("input", "acl", "ip4_forward")", ""),
            (std::vector<std::string>{
                "t.conf:7: pipeline: the \"acl\" stage needs its acl = { ... } group"}));
  // Both stages with sets of one direction only: the other stage passes everything.
  LoadResult r = load(R"("input", "acl", "acl_out", "ip4_forward")", in_set);
  ASSERT_TRUE(std::holds_alternative<Config>(r)) << format_errors(std::get<1>(r));
}

TEST(LbConfig, AclRuleLimitPerSet) {
  std::string rules;
  for (size_t i = 0; i <= kAclMaxRules; ++i) rules += "{ action = \"deny\"; },";
  rules.pop_back();
  LoadResult r = load(R"("input", "acl", "ip4_forward")",
                      "acl = { sets = ( { port = \"lan\"; rules = ( " + rules + " ); } ); };");
  auto* e = std::get_if<std::vector<ConfigError>>(&r);
  ASSERT_TRUE(e);
  EXPECT_EQ(strs(*e), (std::vector<std::string>{"t.conf:8: acl.sets[0].rules: 65537 rules; at "
                                                "most 65536 per set"}));
}

}  // namespace
}  // namespace nf
