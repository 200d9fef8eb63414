// The nat stage (pipelines/nat/nat_stage.h) on golden frames, without EAL: fake mbufs, a
// runtime built by nat::build_runtime() from configuration text, and a clock in milliseconds
// (tsc_hz = 1000). Every translated packet is compared byte for byte with the frame it should
// have become, built from scratch by tests/common/lb_frames.h (full checksum computations,
// not the stage's incremental patches). Every burst asserts conservation.
#include <gtest/gtest.h>

#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "nf/nat/runtime.h"
#include "pipelines/nat/nat_stage.h"
#include "tests/common/lb_frames.h"

namespace nf::test {
namespace {

using nat::NatStage;
namespace tcpflag = lb::tcpflag;

constexpr uint32_t kClient = 0x0a0a0064;  // 10.10.0.100 (inside, lan)
constexpr uint32_t kSrv1 = 0x0a14000b;    // 10.20.0.11 (inside, srv)
constexpr uint32_t kSrv2 = 0x0a14000c;    // 10.20.0.12
constexpr uint32_t kExt = 0xc6336401;     // 198.51.100.1 (wan: the PAT and forward address)
constexpr uint32_t kInet = 0xcb007105;    // 203.0.113.5 (beyond the wan gateway)
constexpr uint32_t kInet2 = 0xcb007106;   // 203.0.113.6
constexpr uint32_t kWanRtr = 0xc66364fe;  // 198.51.100.254 (the wan gateway)
constexpr uint32_t kSrvRtr = 0x0a1400fe;  // 10.20.0.254

using Knobs = NatKnobs;
std::string conf(const Knobs& k = {}) {
  return nat_conf(k);
}

// The shared rig (tests/common/lb_frames.h), every burst checked for conservation.
struct NatRig : test::NatRig {
  StageResult run(uint16_t worker, std::span<rte_mbuf* const> pkts) {
    StageResult r = test::NatRig::run(worker, pkts);
    EXPECT_TRUE(r.conserved());
    return r;
  }
  StageResult send(uint16_t worker, const std::vector<uint8_t>& frame) {
    rte_mbuf* m = mbuf(frame);
    return run(worker, std::span<rte_mbuf* const>(&m, 1));
  }
  // The packet's one outcome must be `next`; returns its frame.
  std::vector<uint8_t> pass(uint16_t worker, const std::vector<uint8_t>& frame) {
    StageResult r = send(worker, frame);
    EXPECT_EQ(r.next.size(), 1u);
    if (r.next.size() != 1) return {};
    return frame_of(r.next[0]);
  }
  const lb::PortPool& pool(uint16_t worker, lb::PatProto p) const {
    return rt->workers[worker].ports[0]->pool(0, p);
  }
};

L4Spec tcp(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, uint8_t flags) {
  L4Spec s = tcp_seg(src, sport, dst, dport, flags);
  s.payload = 10;
  return s;
}
L4Spec udp(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport) {
  L4Spec s = tcp(src, sport, dst, dport, 0);
  s.proto = 17;
  return s;
}
// Bursts of traffic NAT does not touch, until the table's sweep (paced: every record once a
// second, at most kSweepMax a burst) has visited every record twice (a mapping dies when the
// sweep releases its last session, maybe after passing it). Moves the clock on by about
// 2 x capacity ticks (the test clock is slower than the table is large: a record a tick).
void sweep_all(NatRig& rig) {
  const uint32_t cap = rig.stages[0]->table().capacity();
  const uint32_t step = lb::FlowTable::kSweepMax;
  for (uint32_t i = 0; i < 2 * cap / step + 2; ++i) {
    rig.now += step;
    rig.send(0, l4_frame(udp(kClient, 1, kSrv1, 53)));
  }
}
uint16_t sport_in(const std::vector<uint8_t>& f) {
  return rd16(&f[14 + 20]);
}

TEST(NatStage, StaticForwardBothDirectionsWithGoldenChecksums) {
  NatRig rig;
  ASSERT_TRUE(rig.init(conf())) << rig.error;
  const L4Spec syn = tcp(kInet, 40001, kExt, 8001, tcpflag::kSyn);
  std::vector<uint8_t> got = rig.pass(0, l4_frame(syn));
  EXPECT_EQ(got, l4_frame(moved(syn, kInet, 40001, kSrv1, 80)));
  EXPECT_EQ(meta(rig.mbufs.back()->mbuf()).ip_dst, kSrv1);  // routed to the server
  const L4Spec synack = tcp(kSrv1, 80, kInet, 40001, tcpflag::kSyn | tcpflag::kAck);
  got = rig.pass(0, l4_frame(synack));
  EXPECT_EQ(got, l4_frame(moved(synack, kExt, 8001, kInet, 40001)));
  // Port 20022 -> 22, and UDP 5353 -> 10.20.0.12:53.
  const L4Spec ssh = tcp(kInet2, 50000, kExt, 20022, tcpflag::kSyn);
  EXPECT_EQ(rig.pass(0, l4_frame(ssh)), l4_frame(moved(ssh, kInet2, 50000, kSrv1, 22)));
  const L4Spec dns = udp(kInet, 5555, kExt, 5353);
  EXPECT_EQ(rig.pass(0, l4_frame(dns)), l4_frame(moved(dns, kInet, 5555, kSrv2, 53)));
  const L4Spec dns_r = udp(kSrv2, 53, kInet, 5555);
  EXPECT_EQ(rig.pass(0, l4_frame(dns_r)), l4_frame(moved(dns_r, kExt, 5353, kInet, 5555)));
  EXPECT_EQ(rig.stages[0]->counters().new_static, 3u);
  EXPECT_EQ(rig.stages[0]->counters().in_hits, 2u);
}

TEST(NatStage, StaticForwardUsedFromInsideAndServerTrafficLeftAlone) {
  NatRig rig;
  ASSERT_TRUE(rig.init(conf())) << rig.error;
  // The lan client uses the forward: its reply comes back from the forward's address.
  const L4Spec syn = tcp(kClient, 41000, kExt, 8001, tcpflag::kSyn);
  EXPECT_EQ(rig.pass(0, l4_frame(syn)), l4_frame(moved(syn, kClient, 41000, kSrv1, 80)));
  const L4Spec synack = tcp(kSrv1, 80, kClient, 41000, tcpflag::kSyn | tcpflag::kAck);
  EXPECT_EQ(rig.pass(0, l4_frame(synack)), l4_frame(moved(synack, kExt, 8001, kClient, 41000)));
  // The server's own answer to a client that talked to it directly is not a forward's reply.
  const L4Spec direct = tcp(kSrv1, 80, kClient, 41001, tcpflag::kSyn | tcpflag::kAck);
  EXPECT_EQ(rig.pass(0, l4_frame(direct)), l4_frame(direct));
  // Inside to inside is routed untranslated (egress is not the rule's port).
  const L4Spec lan_srv = tcp(kClient, 41002, kSrv1, 80, tcpflag::kSyn);
  EXPECT_EQ(rig.pass(0, l4_frame(lan_srv)), l4_frame(lan_srv));
  // A forward's non-SYN without a session: the server would only reset it.
  StageResult r = rig.send(0, l4_frame(tcp(kInet, 40009, kExt, 8001, tcpflag::kAck)));
  EXPECT_EQ(r.drops(NatStage::kNoSession), 1u);
}

TEST(NatStage, DynamicPatMapsEndpointIndependently) {
  NatRig rig;
  ASSERT_TRUE(rig.init(conf())) << rig.error;
  const L4Spec syn = tcp(kClient, 40000, kInet, 80, tcpflag::kSyn);
  std::vector<uint8_t> got = rig.pass(0, l4_frame(syn));
  ASSERT_FALSE(got.empty());
  const uint16_t p = sport_in(got);
  EXPECT_GE(p, 10000);
  EXPECT_LE(p, 19999);
  EXPECT_EQ(got, l4_frame(moved(syn, kExt, p, kInet, 80)));
  const L4Spec synack = tcp(kInet, 80, kExt, p, tcpflag::kSyn | tcpflag::kAck);
  EXPECT_EQ(rig.pass(0, l4_frame(synack)), l4_frame(moved(synack, kInet, 80, kClient, 40000)));
  EXPECT_EQ(meta(rig.mbufs.back()->mbuf()).ip_dst, kClient);
  // Same inside endpoint, another destination: the same external port (RFC 4787 REQ-1).
  const L4Spec syn2 = tcp(kClient, 40000, kInet2, 443, tcpflag::kSyn);
  EXPECT_EQ(rig.pass(0, l4_frame(syn2)), l4_frame(moved(syn2, kExt, p, kInet2, 443)));
  // Another inside port: another external port.
  got = rig.pass(0, l4_frame(tcp(kClient, 40001, kInet, 80, tcpflag::kSyn)));
  ASSERT_FALSE(got.empty());
  EXPECT_NE(sport_in(got), p);
  EXPECT_EQ(rig.stages[0]->counters().mappings, 2u);
  EXPECT_EQ(rig.stages[0]->counters().new_dynamic, 3u);
  // Filtering is address and port dependent: a third party cannot use the mapping.
  StageResult r = rig.send(0, l4_frame(tcp(kInet2, 80, kExt, p, tcpflag::kSyn | tcpflag::kAck)));
  EXPECT_EQ(r.drops(NatStage::kNoSession), 1u);
  // The appliance's own ports outside the range are not NAT's: routing delivers them.
  const L4Spec ssh = tcp(kInet, 5000, kExt, 22, tcpflag::kSyn);
  EXPECT_EQ(rig.pass(0, l4_frame(ssh)), l4_frame(ssh));
  // An inside non-SYN without a session would leak the inside address.
  r = rig.send(0, l4_frame(tcp(kClient, 40005, kInet, 80, tcpflag::kAck)));
  EXPECT_EQ(r.drops(NatStage::kNoSession), 1u);
}

TEST(NatStage, TwoWorkersEachRepliesMeetTheOwner) {
  NatRig rig;
  ASSERT_TRUE(rig.init(conf(), 2)) << rig.error;
  // An even inside port belongs to worker 0: worker 1 hands it over untouched.
  const L4Spec syn = tcp(kClient, 40000, kInet, 80, tcpflag::kSyn);
  StageResult r = rig.send(1, l4_frame(syn));
  ASSERT_EQ(r.handoff[0].size(), 1u);
  EXPECT_EQ(frame_of(r.handoff[0][0]), l4_frame(syn));
  EXPECT_EQ(rig.stages[1]->table().size(), 0u);
  std::vector<uint8_t> got = rig.pass(0, l4_frame(syn));
  ASSERT_FALSE(got.empty());
  const uint16_t p = sport_in(got);
  EXPECT_EQ(p % 2, 0);  // from worker 0's share
  EXPECT_TRUE(rig.pool(0, lb::PatProto::kTcp).is_allocated(p));
  // The reply lands on worker 1 (RSS): handed to worker 0, which translates it.
  const L4Spec synack = tcp(kInet, 80, kExt, p, tcpflag::kSyn | tcpflag::kAck);
  r = rig.send(1, l4_frame(synack));
  ASSERT_EQ(r.handoff[0].size(), 1u);
  EXPECT_EQ(rig.pass(0, frame_of(r.handoff[0][0])),
            l4_frame(moved(synack, kInet, 80, kClient, 40000)));
  // An odd inside port: worker 1 allocates an odd port.
  got = rig.pass(1, l4_frame(tcp(kClient, 40001, kInet, 80, tcpflag::kSyn)));
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(sport_in(got) % 2, 1);
  // Port forwards belong to the client's port: the server's reply is handed over too.
  const L4Spec fwd = tcp(kInet, 40003, kExt, 8001, tcpflag::kSyn);
  r = rig.send(0, l4_frame(fwd));
  ASSERT_EQ(r.handoff[1].size(), 1u);
  EXPECT_EQ(rig.pass(1, l4_frame(fwd)), l4_frame(moved(fwd, kInet, 40003, kSrv1, 80)));
  const L4Spec fwd_r = tcp(kSrv1, 80, kInet, 40003, tcpflag::kSyn | tcpflag::kAck);
  r = rig.send(0, l4_frame(fwd_r));
  ASSERT_EQ(r.handoff[1].size(), 1u);
  EXPECT_EQ(rig.pass(1, l4_frame(fwd_r)), l4_frame(moved(fwd_r, kExt, 8001, kInet, 40003)));
  EXPECT_EQ(rig.stages[1]->counters().handoffs + rig.stages[0]->counters().handoffs, 4u);
}

// Regression (fuzz-nat): a forward's server sending from its forwarded port matches no session
// when the forward's session is gone, or when it opens a connection of its own. Both workers
// must agree on its owner (the client's port) instead of one naming the client's port and the
// other the server's, which handed the packet back and forth.
TEST(NatStage, TwoWorkersAgreeOnAForwardServersPacketsWithoutASession) {
  NatRig rig;
  ASSERT_TRUE(rig.init(conf(), 2)) << rig.error;
  // An odd client port: worker 1 owns the forward's session, and the server's replies.
  const L4Spec fwd = tcp(kInet, 40001, kExt, 8001, tcpflag::kSyn);
  StageResult r = rig.send(0, l4_frame(fwd));
  ASSERT_EQ(r.handoff[1].size(), 1u);
  EXPECT_EQ(rig.pass(1, frame_of(r.handoff[1][0])), l4_frame(moved(fwd, kInet, 40001, kSrv1, 80)));
  const L4Spec synack = tcp(kSrv1, 80, kInet, 40001, tcpflag::kSyn | tcpflag::kAck);
  r = rig.send(0, l4_frame(synack));
  ASSERT_EQ(r.handoff[1].size(), 1u);
  EXPECT_EQ(rig.pass(1, frame_of(r.handoff[1][0])),
            l4_frame(moved(synack, kExt, 8001, kInet, 40001)));
  // The session times out (transitory: 10 s). A late segment of the server's has no session:
  // worker 0 hands it to worker 1, which drops it (it would leave with the server's address)
  // and hands nothing back; arriving on worker 1, it stays there.
  rig.now += 10'000;
  const L4Spec late = tcp(kSrv1, 80, kInet, 40001, tcpflag::kFin | tcpflag::kAck);
  r = rig.send(0, l4_frame(late));
  ASSERT_EQ(r.handoff[1].size(), 1u);
  rte_mbuf* handed = r.handoff[1][0];
  r = rig.run(1, std::span<rte_mbuf* const>(&handed, 1));
  EXPECT_EQ(r.handoff[0].size(), 0u);
  EXPECT_EQ(r.drops(NatStage::kNoSession), 1u);
  r = rig.send(1, l4_frame(late));
  EXPECT_EQ(r.handoff[0].size(), 0u);
  EXPECT_EQ(r.drops(NatStage::kNoSession), 1u);
  // The UDP forward's server (10.20.0.12:53) to an even client port without a session: a
  // dynamic session of the server's own, opened by worker 0 (the client port's) with a port of
  // worker 0's share, so its reply, arriving on worker 1, is handed to worker 0 as well.
  const L4Spec out = udp(kSrv2, 53, kInet, 5556);
  r = rig.send(1, l4_frame(out));
  ASSERT_EQ(r.handoff[0].size(), 1u);
  std::vector<uint8_t> got = rig.pass(0, frame_of(r.handoff[0][0]));
  ASSERT_FALSE(got.empty());
  const uint16_t p = sport_in(got);
  EXPECT_EQ(p % 2, 0);
  EXPECT_EQ(got, l4_frame(moved(out, kExt, p, kInet, 5556)));
  const L4Spec in = udp(kInet, 5556, kExt, p);
  r = rig.send(1, l4_frame(in));
  ASSERT_EQ(r.handoff[0].size(), 1u);
  EXPECT_EQ(rig.pass(0, frame_of(r.handoff[0][0])), l4_frame(moved(in, kInet, 5556, kSrv2, 53)));
  EXPECT_EQ(rig.stages[0]->counters().new_dynamic, 1u);
  EXPECT_EQ(rig.stages[1]->counters().new_dynamic, 0u);
}

TEST(NatStage, TimeoutsFollowTheInjectedClock) {
  NatRig rig;
  ASSERT_TRUE(rig.init(conf())) << rig.error;
  // UDP: 20 s (the test's configuration). Alive at 19.999 s, gone at 20 s.
  std::vector<uint8_t> got = rig.pass(0, l4_frame(udp(kClient, 5000, kInet, 53)));
  ASSERT_FALSE(got.empty());
  const uint16_t p = sport_in(got);
  const uint64_t t0 = rig.now;
  rig.now = t0 + 19'999;
  const L4Spec reply = udp(kInet, 53, kExt, p);
  EXPECT_EQ(rig.pass(0, l4_frame(reply)), l4_frame(moved(reply, kInet, 53, kClient, 5000)));
  rig.now += 20'000;  // 20 s after the reply refreshed it
  StageResult r = rig.send(0, l4_frame(reply));
  EXPECT_EQ(r.drops(NatStage::kNoSession), 1u);
  // The mapping dies with its session; its port goes back to the pool.
  EXPECT_TRUE(rig.pool(0, lb::PatProto::kUdp).is_allocated(p));
  sweep_all(rig);
  EXPECT_FALSE(rig.pool(0, lb::PatProto::kUdp).is_allocated(p));
  EXPECT_EQ(rig.stages[0]->table().size(), 0u);
  // TCP: a SYN alone is transitory (10 s); established lasts 100 s.
  got = rig.pass(0, l4_frame(tcp(kClient, 6000, kInet, 80, tcpflag::kSyn)));
  ASSERT_FALSE(got.empty());
  const uint16_t q = sport_in(got);
  rig.now += 10'000;
  r = rig.send(0, l4_frame(tcp(kInet, 80, kExt, q, tcpflag::kSyn | tcpflag::kAck)));
  EXPECT_EQ(r.drops(NatStage::kNoSession), 1u);
  got = rig.pass(0, l4_frame(tcp(kClient, 6002, kInet, 80, tcpflag::kSyn)));
  ASSERT_FALSE(got.empty());
  const uint16_t e = sport_in(got);
  const L4Spec sa = tcp(kInet, 80, kExt, e, tcpflag::kSyn | tcpflag::kAck);
  ASSERT_FALSE(rig.pass(0, l4_frame(sa)).empty());
  ASSERT_FALSE(rig.pass(0, l4_frame(tcp(kClient, 6002, kInet, 80, tcpflag::kAck))).empty());
  rig.now += 99'999;
  const L4Spec data = tcp(kInet, 80, kExt, e, tcpflag::kAck);
  EXPECT_EQ(rig.pass(0, l4_frame(data)), l4_frame(moved(data, kInet, 80, kClient, 6002)));
  rig.now += 100'000;
  r = rig.send(0, l4_frame(data));
  EXPECT_EQ(r.drops(NatStage::kNoSession), 1u);
}

TEST(NatStage, PortExhaustionIsCountedAndRecovers) {
  NatRig rig;
  ASSERT_TRUE(rig.init(conf({4096, "30000-30063", 10}))) << rig.error;
  std::set<uint16_t> seen;
  for (uint16_t i = 0; i < 64; ++i) {
    std::vector<uint8_t> got = rig.pass(0, l4_frame(udp(kClient, 2000 + i, kInet, 53)));
    ASSERT_FALSE(got.empty());
    seen.insert(sport_in(got));
  }
  EXPECT_EQ(seen.size(), 64u);
  EXPECT_EQ(*seen.begin(), 30000);
  EXPECT_EQ(*seen.rbegin(), 30063);
  StageResult r = rig.send(0, l4_frame(udp(kClient, 3000, kInet, 53)));
  EXPECT_EQ(r.drops(NatStage::kNoPort), 1u);
  // An existing mapping still serves new destinations with no port to spare.
  ASSERT_FALSE(rig.pass(0, l4_frame(udp(kClient, 2000, kInet2, 53))).empty());
  // All expire (20 s) and the sweeps release them (within 8.2 s); their ports are quarantined
  // (10 s).
  rig.now += 20'000;
  sweep_all(rig);
  EXPECT_EQ(rig.stages[0]->table().size(), 0u);
  EXPECT_EQ(rig.pool(0, lb::PatProto::kUdp).in_use(), 0u);
  r = rig.send(0, l4_frame(udp(kClient, 3000, kInet, 53)));
  EXPECT_EQ(r.drops(NatStage::kNoPort), 1u);
  EXPECT_EQ(rig.pool(0, lb::PatProto::kUdp).counters().quarantined, 1u);
  rig.now += 10'000;
  EXPECT_FALSE(rig.pass(0, l4_frame(udp(kClient, 3001, kInet, 53))).empty());
}

TEST(NatStage, SessionsSurviveAReloadAndKeepTheirPorts) {
  NatRig rig;
  const std::string text = conf({4096, "30000-30063"});
  ASSERT_TRUE(rig.init(text)) << rig.error;
  const L4Spec out = udp(kClient, 5000, kInet, 53);
  std::vector<uint8_t> got = rig.pass(0, l4_frame(out));
  ASSERT_FALSE(got.empty());
  const uint16_t p = sport_in(got);
  ASSERT_TRUE(rig.load(text)) << rig.error;  // fresh pools: p is free in the new one
  EXPECT_FALSE(rig.pool(0, lb::PatProto::kUdp).is_allocated(p));
  // The session goes on in both directions, and its endpoint keeps its mapping.
  EXPECT_EQ(rig.pass(0, l4_frame(out)), l4_frame(moved(out, kExt, p, kInet, 53)));
  const L4Spec in = udp(kInet, 53, kExt, p);
  EXPECT_EQ(rig.pass(0, l4_frame(in)), l4_frame(moved(in, kInet, 53, kClient, 5000)));
  const L4Spec other = udp(kClient, 5000, kInet2, 53);
  EXPECT_EQ(rig.pass(0, l4_frame(other)), l4_frame(moved(other, kExt, p, kInet2, 53)));
  // New endpoints get the 63 other ports: the new pool offers p too, the table refuses it.
  std::set<uint16_t> seen;
  for (uint16_t i = 0; i < 63; ++i) {
    got = rig.pass(0, l4_frame(udp(kClient, 6000 + i, kInet, 53)));
    ASSERT_FALSE(got.empty()) << i;
    seen.insert(sport_in(got));
  }
  EXPECT_EQ(seen.size(), 63u);
  EXPECT_EQ(seen.count(p), 0u);
  StageResult r = rig.send(0, l4_frame(udp(kClient, 7000, kInet, 53)));
  EXPECT_EQ(r.drops(NatStage::kNoPort), 1u);
}

TEST(NatStage, TableFullIsCounted) {
  NatRig rig;
  ASSERT_TRUE(rig.init(conf({1024, "10000-19999"}))) << rig.error;
  // Each new inside endpoint takes two records (mapping and session): 512 fill the table.
  for (uint16_t i = 0; i < 512; ++i)
    ASSERT_FALSE(rig.pass(0, l4_frame(udp(kClient, 2000 + i, kInet, 53))).empty()) << i;
  StageResult r = rig.send(0, l4_frame(udp(kClient, 9000, kInet, 53)));
  EXPECT_EQ(r.drops(NatStage::kTableFull), 1u);
  // Established sessions keep working.
  EXPECT_FALSE(rig.pass(0, l4_frame(udp(kClient, 2000, kInet, 53))).empty());
}

TEST(NatStage, IcmpEchoByIdentifier) {
  NatRig rig;
  ASSERT_TRUE(rig.init(conf())) << rig.error;
  std::vector<uint8_t> got = rig.pass(0, icmp_echo_frame(kClient, kInet, 8, 0x1234, 7, 24));
  ASSERT_FALSE(got.empty());
  const uint16_t id = rd16(&got[14 + 20 + 4]);
  EXPECT_GE(id, 10000);
  EXPECT_EQ(got, icmp_echo_frame(kExt, kInet, 8, id, 7, 24));
  EXPECT_EQ(rig.pass(0, icmp_echo_frame(kInet, kExt, 0, id, 7, 24)),
            icmp_echo_frame(kInet, kClient, 0, 0x1234, 7, 24));
  // A ping of the appliance itself is not NAT's.
  EXPECT_EQ(rig.pass(0, icmp_echo_frame(kInet, kExt, 8, 99, 1, 8)),
            icmp_echo_frame(kInet, kExt, 8, 99, 1, 8));
  // An echo reply to a PAT identifier nobody asked for.
  StageResult r = rig.send(0, icmp_echo_frame(kInet, kExt, 0, 10007, 1, 8));
  EXPECT_EQ(r.drops(NatStage::kNoSession), 1u);
  // ICMP timeout: 5 s.
  rig.now += 5'000;
  r = rig.send(0, icmp_echo_frame(kInet, kExt, 0, id, 8, 24));
  EXPECT_EQ(r.drops(NatStage::kNoSession), 1u);
}

TEST(NatStage, IcmpErrorsAboutSessionsAreTranslated) {
  NatRig rig;
  ASSERT_TRUE(rig.init(conf())) << rig.error;
  // Dynamic: a router beyond the wan cannot forward the translated datagram (needs frag).
  const L4Spec out = udp(kClient, 5000, kInet, 53);
  std::vector<uint8_t> sent = rig.pass(0, l4_frame(out));
  ASSERT_FALSE(sent.empty());
  std::vector<uint8_t> err = icmp_error_frame(kWanRtr, kExt, 3, 4, 1400, sent, 28);
  EXPECT_EQ(rig.pass(0, err), icmp_error_frame(kWanRtr, kClient, 3, 4, 1400, l4_frame(out), 28));
  EXPECT_EQ(meta(rig.mbufs.back()->mbuf()).ip_dst, kClient);
  // The inside host's port unreachable about a reply: it leaves from the external address.
  const uint16_t p = sport_in(sent);
  const L4Spec in = udp(kInet, 53, kExt, p);
  std::vector<uint8_t> delivered = rig.pass(0, l4_frame(in));
  ASSERT_FALSE(delivered.empty());
  err = icmp_error_frame(kClient, kInet, 3, 3, 0, delivered, 28);
  EXPECT_EQ(rig.pass(0, err), icmp_error_frame(kExt, kInet, 3, 3, 0, l4_frame(in), 28));
  // Port forward: an inside router's error about a forwarded packet is hidden behind the
  // forward's address and quotes what the client sent.
  const L4Spec syn = tcp(kInet, 40001, kExt, 8001, tcpflag::kSyn);
  std::vector<uint8_t> fwd = rig.pass(0, l4_frame(syn));
  ASSERT_FALSE(fwd.empty());
  err = icmp_error_frame(kSrvRtr, kInet, 3, 1, 0, fwd, 28);
  EXPECT_EQ(rig.pass(0, err), icmp_error_frame(kExt, kInet, 3, 1, 0, l4_frame(syn), 28));
  // An echo request quoted in a time exceeded.
  std::vector<uint8_t> ping = rig.pass(0, icmp_echo_frame(kClient, kInet, 8, 0x4242, 1, 8));
  ASSERT_FALSE(ping.empty());
  err = icmp_error_frame(kWanRtr, kExt, 11, 0, 0, ping, 28);
  EXPECT_EQ(rig.pass(0, err),
            icmp_error_frame(kWanRtr, kClient, 11, 0, 0,
                             icmp_echo_frame(kClient, kInet, 8, 0x4242, 1, 8), 28));
  EXPECT_EQ(rig.stages[0]->counters().icmp_translated, 4u);
  // An error about nothing NAT knows continues to routing unchanged.
  err = icmp_error_frame(kWanRtr, kClient, 3, 1, 0, l4_frame(out), 28);
  EXPECT_EQ(rig.pass(0, err), err);
}

TEST(NatStage, MalformedPacketsAreCountedNotCrashing) {
  NatRig rig;
  ASSERT_TRUE(rig.init(conf())) << rig.error;
  // A TCP header cut short inside the datagram, to the external address.
  std::vector<uint8_t> f = l4_frame(tcp(kInet, 40001, kExt, 8001, tcpflag::kSyn));
  f.resize(14 + 20 + 10);
  wr16(&f[14 + 2], 30);
  wr16(&f[14 + 10], 0);
  wr16(&f[14 + 10], ip_cksum(&f[14]));
  StageResult r = rig.send(0, f);
  EXPECT_EQ(r.drops(NatStage::kBadPacket), 1u);
  // A later fragment to the external address has no ports.
  L4Spec frag = udp(kInet, 1, kExt, 5353);
  frag.frag = 0x0010;
  r = rig.send(0, l4_frame(frag));
  EXPECT_EQ(r.drops(NatStage::kFragment), 1u);
  // Random bytes after a valid IPv4 header, every protocol: each gets one outcome.
  uint32_t x = 12345;
  for (int i = 0; i < 2000; ++i) {
    L4Spec s = udp(i % 2 ? kInet : kClient, 1, i % 3 ? kExt : kInet, 2);
    s.payload = static_cast<uint16_t>(i % 48);
    std::vector<uint8_t> g = l4_frame(s);
    for (size_t j = 14 + 20; j < g.size(); ++j) {
      x = x * 1103515245 + 12345;
      g[j] = static_cast<uint8_t>(x >> 16);
    }
    g[14 + 9] = static_cast<uint8_t>(std::array<int, 3>{1, 6, 17}[i % 3]);
    wr16(&g[14 + 10], 0);
    wr16(&g[14 + 10], ip_cksum(&g[14]));
    rig.send(0, g);
  }
}

}  // namespace
}  // namespace nf::test
