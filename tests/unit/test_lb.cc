// The lb stage (pipelines/lb/lb_stage.h) on golden frames, without EAL: fake mbufs, a runtime
// built by lb::build_runtime() from configuration text, health slots flipped by hand and a
// clock in milliseconds (tsc_hz = 1000). Every rewritten packet is compared byte for byte
// with the frame it should have become, built from scratch by tests/common/lb_frames.h (so
// its checksums are full recomputations, not the stage's incremental patches), and its
// checksums are also recomputed in place. Every burst asserts conservation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "nf/lb/flow_table.h"
#include "nf/lb/port_alloc.h"
#include "nf/lb/rewrite.h"
#include "tests/common/lb_frames.h"

namespace nf::test {
namespace {

using lb::LbStage;
namespace tcpflag = lb::tcpflag;
using Result = LbRig::Result;

constexpr uint32_t kClient = 0x0a0a0064;     // 10.10.0.100
constexpr uint32_t kClient2 = 0x0a0a0065;    // 10.10.0.101
constexpr uint32_t kVipNat = 0x0a1e000a;     // 10.30.0.10  "web"     nat, wrr 1:2:3, port 8080
constexpr uint32_t kVipFull = 0x0a1e000b;    // 10.30.0.11  "full"    fullnat, maglev
constexpr uint32_t kVipSticky = 0x0a1e000c;  // 10.30.0.12 "sticky" nat, rr, persistence 60
constexpr uint32_t kVipUdp = 0x0a1e000d;     // 10.30.0.13 "dns"    nat udp/53, rr
constexpr uint32_t kVipDsr = 0x0a1e0014;     // 10.30.0.20 "dsr"    L2 DSR, maglev
constexpr uint32_t kVipIpip = 0x0a1e0015;    // 10.30.0.21 "ipip"   maglev
constexpr uint32_t kVipDscp = 0x0a1e0016;    // 10.30.0.22 "dscp"   dscp 10, maglev
constexpr uint32_t kR1 = 0x0a14000b;         // 10.20.0.11
constexpr uint32_t kR2 = 0x0a14000c;         // 10.20.0.12
constexpr uint32_t kR3 = 0x0a14000d;         // 10.20.0.13
constexpr uint32_t kSnat = 0x0a140002;       // 10.20.0.2
constexpr uint32_t kEncapSrc = 0x0a140001;   // 10.20.0.1: the srv port's first address
constexpr uint64_t kHz = 1000;               // the clock counts milliseconds

struct Knobs {
  uint32_t max_flows = 4096;
  uint32_t flood = 50000;
  const char* on_down = "keep";
  uint32_t w1 = 1, w2 = 2, w3 = 3;
};

std::string conf(const Knobs& k = {}) {
  char lb[4096];
  std::snprintf(lb, sizeof lb, R"(
lb = {
  max_flows = %u;
  syn_flood_rate = %u;
  maglev_min_size = 1009;
  timeouts = { tcp_syn = 5; tcp_established = 20; tcp_fin = 3; tcp_time_wait = 2;
               tcp_close = 1; udp = 7; };
  services = (
    { name = "web"; vip = "10.30.0.10"; port = 80; mode = "nat";
      scheduler = "weighted_round_robin"; check = "http80"; on_real_down = "%s";
      reals = ( { address = "10.20.0.11"; port = 8080; weight = %u; },
                { address = "10.20.0.12"; port = 8080; weight = %u; },
                { address = "10.20.0.13"; port = 8080; weight = %u; } ); },
    { name = "full"; vip = "10.30.0.11"; port = 80; mode = "fullnat"; snat = [ "10.20.0.2" ];
      scheduler = "maglev"; check = "http80";
      reals = ( { address = "10.20.0.11"; }, { address = "10.20.0.12"; },
                { address = "10.20.0.13"; } ); },
    { name = "sticky"; vip = "10.30.0.12"; port = 80; mode = "nat"; scheduler = "round_robin";
      persistence = 60; check = "http80";
      reals = ( { address = "10.20.0.11"; }, { address = "10.20.0.12"; },
                { address = "10.20.0.13"; } ); },
    { name = "dns"; vip = "10.30.0.13"; protocol = "udp"; port = 53; mode = "nat";
      scheduler = "round_robin";
      reals = ( { address = "10.20.0.11"; }, { address = "10.20.0.12"; },
                { address = "10.20.0.13"; } ); },
    { name = "dsr"; vip = "10.30.0.20"; port = 80; mode = "dsr"; scheduler = "maglev";
      check = "http80";
      reals = ( { address = "10.20.0.11"; }, { address = "10.20.0.12"; },
                { address = "10.20.0.13"; } ); },
    { name = "ipip"; vip = "10.30.0.21"; port = 80; mode = "ipip"; scheduler = "maglev";
      reals = ( { address = "10.20.0.11"; }, { address = "10.20.0.12"; },
                { address = "10.20.0.13"; } ); },
    { name = "dscp"; vip = "10.30.0.22"; port = 80; mode = "dscp"; dscp = 10;
      scheduler = "maglev";
      reals = ( { address = "10.20.0.11"; }, { address = "10.20.0.12"; },
                { address = "10.20.0.13"; } ); }
  );
};
)",
                k.max_flows, k.flood, k.on_down, k.w1, k.w2, k.w3);
  return std::string(R"(
lcores = { management = 0; workers = [1, 2]; };
ports = ( { name = "lan"; device = "net_null0"; addresses = ["10.10.0.1/24"]; },
          { name = "srv"; device = "net_null1"; addresses = ["10.20.0.1/24", "10.20.0.2/24"]; } );
pipeline = [ "input", "lb", "ip4_forward" ];
health = { checks = ( { name = "http80"; type = "http"; port = 80; path = "/"; } ); };
)") + lb;
}

std::string hex(const std::vector<uint8_t>& v) {
  std::string s;
  char b[4];
  for (size_t i = 0; i < v.size(); ++i) {
    std::snprintf(b, sizeof b, "%02x", v[i]);
    s += b;
    s += (i % 16 == 15) ? '\n' : ' ';
  }
  return s;
}

const uint8_t* ip_of(rte_mbuf* m) {
  return rte_pktmbuf_mtod_offset(m, const uint8_t*, meta(m).l3_off);
}
uint32_t src_of(rte_mbuf* m) {
  return rd32(ip_of(m) + 12);
}
uint32_t dst_of(rte_mbuf* m) {
  return rd32(ip_of(m) + 16);
}
uint16_t sport_of(rte_mbuf* m) {
  const uint8_t* ip = ip_of(m);
  return rd16(ip + (ip[0] & 0xf) * 4);
}
uint16_t dport_of(rte_mbuf* m) {
  const uint8_t* ip = ip_of(m);
  return rd16(ip + (ip[0] & 0xf) * 4 + 2);
}

// Both checksums of the datagram at l3_off, recomputed in full, equal what the packet carries.
void expect_checksums(rte_mbuf* m) {
  const uint8_t* ip = ip_of(m);
  EXPECT_EQ(rd16(ip + 10), ip_cksum(ip));
  if ((ip[9] == 6 || ip[9] == 17) && (rd16(ip + 6) & 0x3fff) == 0) {
    if (ip[9] == 17 && stored_l4_cksum(ip) == 0) return;  // not computed (RFC 768)
    EXPECT_EQ(stored_l4_cksum(ip), l4_cksum(ip));
  }
}

lb::FlowKey key_of(const L4Spec& s) {
  return lb::FlowKey::conn(rte_cpu_to_be_32(s.src), rte_cpu_to_be_32(s.dst),
                           rte_cpu_to_be_16(s.sport), rte_cpu_to_be_16(s.dport), s.proto);
}

// The real a Maglev service's table names for this 5-tuple (health ignored).
uint32_t maglev_real(const LbRig& rig, const char* service, const L4Spec& s) {
  const lb::ServiceRt* sr = rig.service(service);
  const uint16_t i = sr->pool.maglev().lookup(lb::FlowTable::hash(key_of(s)));
  return sr->reals.at(i).addr;
}

// One burst on `worker`, conservation asserted.
Result go(LbRig& rig, uint16_t worker, std::vector<rte_mbuf*> pkts) {
  Result r = rig.run(worker, pkts);
  EXPECT_TRUE(r.conserved()) << "in " << r.in << " next " << r.c.next << " drop " << r.c.drop
                             << " handoff " << r.c.handoff;
  return r;
}
Result go(LbRig& rig, uint16_t worker, const std::vector<uint8_t>& frame) {
  return go(rig, worker, std::vector<rte_mbuf*>{rig.mbuf(frame)});
}

// The single packet of a one-packet burst that went on (nullptr, with a failure, if not).
rte_mbuf* next_of(const Result& r) {
  EXPECT_EQ(r.next.size(), 1u) << "drops " << r.c.drop << " handoffs " << r.c.handoff;
  return r.next.size() == 1 ? r.next[0] : nullptr;
}

// Sends `in` on worker 0: it must go on as exactly `want` (golden, checksums recomputed in
// full). Returns it (nullptr, with a failure, if it did not go on).
rte_mbuf* expect_next(LbRig& rig, const L4Spec& in, const L4Spec& want) {
  rte_mbuf* m = next_of(go(rig, 0, l4_frame(in)));
  if (!m) return nullptr;
  EXPECT_EQ(hex(frame_of(m)), hex(l4_frame(want)));
  expect_checksums(m);
  return m;
}

// Sends frames on `worker` in bursts of up to 32; returns each packet's mbuf, in order.
std::vector<rte_mbuf*> burst_all(LbRig& rig, uint16_t worker,
                                 const std::vector<std::vector<uint8_t>>& frames,
                                 StageCounters* sum = nullptr) {
  std::vector<rte_mbuf*> all;
  for (size_t i = 0; i < frames.size(); i += kMaxBurst) {
    std::vector<rte_mbuf*> b;
    for (size_t j = i; j < std::min(frames.size(), i + kMaxBurst); ++j)
      b.push_back(rig.mbuf(frames[j]));
    const Result r = go(rig, worker, b);
    if (sum) {
      sum->next += r.c.next;
      sum->drop += r.c.drop;
      sum->handoff += r.c.handoff;
      for (size_t d = 0; d < kMaxDropReasons; ++d) sum->drops[d] += r.c.drops[d];
    }
    all.insert(all.end(), b.begin(), b.end());
  }
  return all;
}

class LbStageTest : public ::testing::Test {
 protected:
  void make(const Knobs& k = {}, uint16_t workers = 1) {
    ASSERT_TRUE(rig.init(conf(k), workers, kHz)) << rig.error;
  }
  // A SYN-flood limit of 100 new flows a second, which trip_flood() reaches.
  void make_flood_limited(uint16_t workers = 1) {
    Knobs k;
    k.flood = 100;
    make(k, workers);
  }
  const LbStage& stage(uint16_t w = 0) const { return *rig.stages[w]; }
  LbRig rig;
};

// ---------------------------------------------------------------------------------------------
// 1. NAT

TEST_F(LbStageTest, NatSynGoesToTheRealAndTheReplyComesBackFromTheVip) {
  make();
  L4Spec syn;
  syn.dst = kVipNat;
  syn.mss = 1460;
  // Smooth WRR over weights 1:2:3 starts with the heaviest real.
  L4Spec want = syn;
  want.dst = kR3;
  want.dport = 8080;
  rte_mbuf* m = expect_next(rig, syn, want);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(meta(m).ip_dst, kR3);
  EXPECT_EQ(meta(m).flags & meta_flags::kRouteByMeta, 0);
  EXPECT_EQ(stage().counters().new_flows, 1u);
  EXPECT_EQ(stage().table().size(), 1u);

  // The server's SYN-ACK: real:8080 -> client:40000 leaves as VIP:80 -> client:40000.
  L4Spec synack = tcp_seg(kR3, 8080, kClient, 40000, tcpflag::kSyn | tcpflag::kAck, 777, 1001);
  synack.mss = 1400;
  L4Spec back = synack;
  back.src = kVipNat;
  back.sport = 80;
  m = expect_next(rig, synack, back);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(meta(m).ip_dst, kClient);
  EXPECT_EQ(stage().counters().replies, 1u);

  // The client's ACK with data follows the flow, not the scheduler (which would now pick .12).
  L4Spec ack = syn;
  ack.mss = 0;
  ack.flags = tcpflag::kAck | tcpflag::kPsh;
  ack.seq = 1001;
  ack.ack = 778;
  ack.payload = 100;
  L4Spec ack_out = ack;
  ack_out.dst = kR3;
  ack_out.dport = 8080;
  m = expect_next(rig, ack, ack_out);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(stage().counters().hits, 1u);
  EXPECT_EQ(stage().counters().new_flows, 1u);
  EXPECT_EQ(stage().table().size(), 1u);
}

TEST_F(LbStageTest, NatWeightedRoundRobinIsExactlyOneTwoThree) {
  make();
  std::vector<std::vector<uint8_t>> frames;
  for (uint16_t i = 0; i < 60; ++i) {
    L4Spec s;
    s.dst = kVipNat;
    s.sport = static_cast<uint16_t>(20000 + i);
    frames.push_back(l4_frame(s));
  }
  StageCounters sum{};
  const std::vector<rte_mbuf*> out = burst_all(rig, 0, frames, &sum);
  ASSERT_EQ(sum.next, 60u);
  std::map<uint32_t, int> count;
  std::vector<uint32_t> first;
  for (rte_mbuf* m : out) {
    ++count[dst_of(m)];
    if (first.size() < 6) first.push_back(dst_of(m));
    EXPECT_EQ(dport_of(m), 8080);
    expect_checksums(m);
  }
  // nginx's smooth WRR for 1:2:3 spreads one period as c b a c b c.
  EXPECT_EQ(first, (std::vector<uint32_t>{kR3, kR2, kR1, kR3, kR2, kR3}));
  EXPECT_EQ(count[kR1], 10);
  EXPECT_EQ(count[kR2], 20);
  EXPECT_EQ(count[kR3], 30);
  EXPECT_EQ(count.size(), 3u);
  EXPECT_EQ(stage().counters().new_flows, 60u);
  EXPECT_EQ(stage().table().size(), 60u);
}

TEST_F(LbStageTest, NatUdpKeepsTheDestinationPortAndAZeroChecksum) {
  make();
  L4Spec q;
  q.proto = 17;
  q.dst = kVipUdp;
  q.sport = 5353;
  q.dport = 53;
  q.payload = 30;
  L4Spec want = q;
  want.dst = kR1;  // round robin starts at the first real; port 0 keeps 53
  rte_mbuf* m = expect_next(rig, q, want);
  ASSERT_NE(m, nullptr);
  // A datagram without a checksum (RFC 768: zero) keeps none after the rewrite.
  std::vector<uint8_t> f = l4_frame(L4Spec{
      .src = kClient2, .dst = kVipUdp, .sport = 5353, .dport = 53, .proto = 17, .payload = 30});
  f[14 + 20 + 6] = f[14 + 20 + 7] = 0;
  m = next_of(go(rig, 0, f));
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(dst_of(m), kR2);
  EXPECT_EQ(rd16(ip_of(m) + 20 + 6), 0);
  EXPECT_EQ(rd16(ip_of(m) + 10), ip_cksum(ip_of(m)));
  // The reply from the real comes back from the VIP.
  L4Spec r;
  r.proto = 17;
  r.src = kR1;
  r.sport = 53;
  r.dst = kClient;
  r.dport = 5353;
  r.payload = 60;
  L4Spec back = r;
  back.src = kVipUdp;
  m = expect_next(rig, r, back);
  ASSERT_NE(m, nullptr);
}

// ---------------------------------------------------------------------------------------------
// 2. Full NAT

TEST_F(LbStageTest, FullNatRewritesTheSourceAndRestoresTheReply) {
  make();
  L4Spec syn;
  syn.dst = kVipFull;
  syn.mss = 1460;
  rte_mbuf* m = next_of(go(rig, 0, l4_frame(syn)));
  ASSERT_NE(m, nullptr);
  const uint32_t real = maglev_real(rig, "full", syn);
  const uint16_t port = sport_of(m);
  EXPECT_GE(port, 1024);
  L4Spec want = syn;
  want.src = kSnat;
  want.sport = port;
  want.dst = real;
  EXPECT_EQ(hex(frame_of(m)), hex(l4_frame(want)));
  expect_checksums(m);
  EXPECT_EQ(meta(m).ip_dst, real);
  const lb::PortPool& pool = rig.rt->workers[0].ports->pool(0, lb::PatProto::kTcp);
  EXPECT_EQ(pool.in_use(), 1u);
  EXPECT_TRUE(pool.is_allocated(port));

  L4Spec reply = tcp_seg(real, 80, kSnat, port, tcpflag::kSyn | tcpflag::kAck);
  reply.payload = 0;
  L4Spec back = moved(reply, kVipFull, 80, kClient, 40000);
  m = expect_next(rig, reply, back);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(meta(m).ip_dst, kClient);

  // A second connection of the same client gets another source port.
  L4Spec syn2 = syn;
  syn2.sport = 40002;
  m = next_of(go(rig, 0, l4_frame(syn2)));
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(src_of(m), kSnat);
  EXPECT_NE(sport_of(m), port);
  EXPECT_EQ(pool.in_use(), 2u);

  // The flows end (SYN_RECV / SYN_SENT live tcp_syn = 5 s). The next segment of each finds
  // its flow dead, which releases it: the ports go back to the pool.
  rig.now += 5000;
  for (uint16_t sport : {40000, 40002}) {
    L4Spec ack = syn;
    ack.sport = sport;
    ack.mss = 0;
    ack.flags = tcpflag::kAck;
    EXPECT_EQ(go(rig, 0, l4_frame(ack)).drops(LbStage::kNoFlow), 1u);
  }
  EXPECT_EQ(stage().table().size(), 0u);
  EXPECT_EQ(pool.in_use(), 0u);
  EXPECT_FALSE(pool.is_allocated(port));
}

// ---------------------------------------------------------------------------------------------
// 3. DSR modes

TEST_F(LbStageTest, L2DsrLeavesThePacketAndRoutesByMeta) {
  make();
  L4Spec syn;
  syn.dst = kVipDsr;
  syn.mss = 1460;
  const std::vector<uint8_t> in = l4_frame(syn);
  rte_mbuf* m = next_of(go(rig, 0, in));
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(hex(frame_of(m)), hex(in));
  EXPECT_EQ(meta(m).ip_dst, maglev_real(rig, "dsr", syn));
  EXPECT_NE(meta(m).flags & meta_flags::kRouteByMeta, 0);
  EXPECT_EQ(stage().table().size(), 1u);
  // The client's next segment: the same real, still untouched.
  L4Spec ack = syn;
  ack.mss = 0;
  ack.flags = tcpflag::kAck;
  ack.payload = 10;
  const std::vector<uint8_t> in2 = l4_frame(ack);
  m = next_of(go(rig, 0, in2));
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(hex(frame_of(m)), hex(in2));
  EXPECT_EQ(meta(m).ip_dst, maglev_real(rig, "dsr", syn));
  EXPECT_NE(meta(m).flags & meta_flags::kRouteByMeta, 0);
  EXPECT_EQ(stage().counters().hits, 1u);
}

TEST_F(LbStageTest, DscpDsrRewritesDestinationAndDscpAndKeepsEcn) {
  make();
  L4Spec syn;
  syn.dst = kVipDscp;
  syn.tos = 0xb9;  // DSCP 46 (EF), ECN ECT(1)
  syn.mss = 1460;
  const uint32_t real = maglev_real(rig, "dscp", syn);
  L4Spec want = syn;
  want.dst = real;
  want.tos = (10 << 2) | 0x1;
  rte_mbuf* m = expect_next(rig, syn, want);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(meta(m).ip_dst, real);
  // ECN CE (11) survives too.
  L4Spec ack = syn;
  ack.mss = 0;
  ack.flags = tcpflag::kAck;
  ack.tos = 0x03;
  m = next_of(go(rig, 0, l4_frame(ack)));
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(ip_of(m)[1], (10 << 2) | 0x3);
  EXPECT_EQ(dst_of(m), real);
  expect_checksums(m);
}

TEST_F(LbStageTest, IpipEncapsulatesAndClampsTheMssOfSyns) {
  make();
  struct Case {
    uint16_t mss;
    bool nop;
    uint16_t want_mss;
    uint16_t sport;
  };
  // MTU 1500 on every port: 1500 - 20 (outer) - 20 (IP) - 20 (TCP) = 1440.
  const Case cases[] = {{1460, false, 1440, 41000},
                        {1200, false, 1200, 41001},
                        {9000, true, 1440, 41002},
                        {0, false, 0, 41003}};
  uint16_t id = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.sport);
    L4Spec syn;
    syn.dst = kVipIpip;
    syn.sport = c.sport;
    syn.mss = c.mss;
    syn.nop_before_mss = c.nop;
    syn.tos = 0x02;
    syn.payload = 0;
    const std::vector<uint8_t> in = l4_frame(syn);
    rte_mbuf* m = rig.mbuf(in);
    const uint16_t l3_len = meta(m).l3_len;
    ASSERT_EQ(next_of(go(rig, 0, std::vector<rte_mbuf*>{m})), m);
    const uint32_t real = maglev_real(rig, "ipip", syn);
    L4Spec inner = syn;
    inner.mss = c.want_mss;
    const std::vector<uint8_t> inner_frame = l4_frame(inner);
    std::vector<uint8_t> want(inner_frame.begin(), inner_frame.begin() + 14);  // Ethernet
    uint8_t outer[20] = {0x45, 0x02, 0, 0, 0, 0, 0x40, 0x00, 64, 4};
    wr16(outer + 2, static_cast<uint16_t>(inner_frame.size() - 14 + 20));
    wr16(outer + 4, id++);
    wr32(outer + 12, kEncapSrc);
    wr32(outer + 16, real);
    wr16(outer + 10, ip_cksum(outer));
    want.insert(want.end(), outer, outer + 20);
    want.insert(want.end(), inner_frame.begin() + 14, inner_frame.end());
    EXPECT_EQ(hex(frame_of(m)), hex(want));
    EXPECT_EQ(m->pkt_len, want.size());
    EXPECT_EQ(meta(m).l3_off, 14);
    EXPECT_EQ(meta(m).l3_len, l3_len + 20);
    EXPECT_EQ(meta(m).ip_proto, 4);
    EXPECT_EQ(meta(m).l4_off, 34);
    EXPECT_EQ(meta(m).ip_dst, real);
    const uint8_t* in_ip = rte_pktmbuf_mtod_offset(m, const uint8_t*, 34);
    EXPECT_EQ(rd16(in_ip + 10), ip_cksum(in_ip));
    EXPECT_EQ(stored_l4_cksum(in_ip), l4_cksum(in_ip));
  }
  // A non-SYN with an MSS-looking option is not clamped (the option only means something on a
  // SYN), and the outer ID keeps counting.
  L4Spec ack;
  ack.dst = kVipIpip;
  ack.sport = 41000;
  ack.flags = tcpflag::kAck;
  ack.mss = 1460;
  rte_mbuf* m = next_of(go(rig, 0, l4_frame(ack)));
  ASSERT_NE(m, nullptr);
  std::vector<uint8_t> got = frame_of(m);
  const std::vector<uint8_t> in = l4_frame(ack);
  EXPECT_EQ(hex(std::vector<uint8_t>(got.begin() + 34, got.end())),
            hex(std::vector<uint8_t>(in.begin() + 14, in.end())));
  EXPECT_EQ(rd16(got.data() + 14 + 4), id);
}

TEST_F(LbStageTest, IpipWithoutHeadroomIsDropped) {
  make();
  L4Spec syn;
  syn.dst = kVipIpip;
  const std::vector<uint8_t> in = l4_frame(syn);
  rte_mbuf* m = rig.mbuf(in);
  // Move the frame to the front of the buffer: 10 bytes of headroom, 20 needed.
  uint8_t* old = rte_pktmbuf_mtod(m, uint8_t*);
  m->data_off = 10;
  std::memmove(rte_pktmbuf_mtod(m, uint8_t*), old, in.size());
  const Result r = go(rig, 0, std::vector<rte_mbuf*>{m});
  EXPECT_EQ(r.drops(LbStage::kNoHeadroom), 1u);
  EXPECT_EQ(hex(frame_of(m)), hex(in));
}

// ---------------------------------------------------------------------------------------------
// 4. Segments of flows nf does not know

TEST_F(LbStageTest, NatNonSynMissIsDroppedAsNoFlow) {
  make();
  for (uint8_t flags : {uint8_t{tcpflag::kAck}, uint8_t{tcpflag::kAck | tcpflag::kFin},
                        uint8_t{tcpflag::kRst}, uint8_t{tcpflag::kSyn | tcpflag::kAck}}) {
    for (uint32_t vip : {kVipNat, kVipFull}) {
      L4Spec s;
      s.dst = vip;
      s.flags = flags;
      const Result r = go(rig, 0, l4_frame(s));
      EXPECT_EQ(r.drops(LbStage::kNoFlow), 1u) << int(flags);
    }
  }
  EXPECT_EQ(stage().table().size(), 0u);
  EXPECT_EQ(stage().counters().new_flows, 0u);
}

TEST_F(LbStageTest, DsrNonSynMissIsStatelessOnTheMaglevReal) {
  make();
  std::mt19937 rng(7);
  std::map<uint32_t, int> seen;
  for (int i = 0; i < 200; ++i) {
    L4Spec ack;
    ack.dst = kVipDsr;
    ack.src = 0x0a0a0000u | (rng() & 0xffff);
    ack.sport = static_cast<uint16_t>(1024 + rng() % 60000);
    ack.flags = tcpflag::kAck;
    const uint32_t want = maglev_real(rig, "dsr", ack);
    const std::vector<uint8_t> in = l4_frame(ack);
    rte_mbuf* m = next_of(go(rig, 0, in));
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(meta(m).ip_dst, want);
    EXPECT_NE(meta(m).flags & meta_flags::kRouteByMeta, 0);
    EXPECT_EQ(hex(frame_of(m)), hex(in));
    ++seen[want];
    // The SYN of the same 5-tuple, placed statefully by the maglev scheduler: the same real.
    L4Spec syn = ack;
    syn.flags = tcpflag::kSyn;
    m = next_of(go(rig, 0, l4_frame(syn)));
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(meta(m).ip_dst, want);
  }
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_EQ(stage().counters().stateless, 200u);
  EXPECT_EQ(stage().counters().new_flows, 200u);
  EXPECT_EQ(stage().table().size(), 200u);  // only the SYNs made entries
}

// ---------------------------------------------------------------------------------------------
// 5. Health and drain

std::vector<std::vector<uint8_t>> syns(uint32_t vip, int n, uint16_t first_port,
                                       uint32_t src = kClient) {
  std::vector<std::vector<uint8_t>> f;
  for (int i = 0; i < n; ++i) {
    L4Spec s;
    s.src = src;
    s.dst = vip;
    s.sport = static_cast<uint16_t>(first_port + i);
    f.push_back(l4_frame(s));
  }
  return f;
}

std::map<uint32_t, int> by_dst(const std::vector<rte_mbuf*>& ms) {
  std::map<uint32_t, int> c;
  for (rte_mbuf* m : ms) ++c[dst_of(m)];
  return c;
}

TEST_F(LbStageTest, DownRealGetsNoNewFlow) {
  make();
  ASSERT_GE(rig.slot("web", "10.20.0.13"), 0);
  rig.set_up("web", "10.20.0.13", false);
  StageCounters sum{};
  auto c = by_dst(burst_all(rig, 0, syns(kVipNat, 60, 20000), &sum));
  ASSERT_EQ(sum.next, 60u);
  EXPECT_EQ(c[kR1], 20);
  EXPECT_EQ(c[kR2], 40);
  EXPECT_EQ(c.count(kR3), 0u);
  // Maglev (full NAT): flows whose slot names the down real move; none goes to it.
  rig.set_up("full", "10.20.0.12", false);
  sum = {};
  c = by_dst(burst_all(rig, 0, syns(kVipFull, 300, 30000), &sum));
  ASSERT_EQ(sum.next, 300u);
  EXPECT_EQ(c.count(kR2), 0u);
  EXPECT_GT(c[kR1], 100);
  EXPECT_GT(c[kR3], 100);
  // Every real down: no real.
  for (const char* r : {"10.20.0.11", "10.20.0.12"}) rig.set_up("web", r, false);
  const Result r = go(rig, 0, syns(kVipNat, 1, 50000)[0]);
  EXPECT_EQ(r.drops(LbStage::kNoReal), 1u);
}

// Opens a NAT flow to "web" from kClient:sport and completes its handshake; returns its real.
uint32_t open_web_flow(LbRig& rig, uint16_t sport, uint16_t worker = 0) {
  L4Spec syn;
  syn.dst = kVipNat;
  syn.sport = sport;
  rte_mbuf* m = next_of(go(rig, worker, l4_frame(syn)));
  if (!m) return 0;
  const uint32_t real = dst_of(m);
  L4Spec synack = tcp_seg(real, 8080, kClient, sport, tcpflag::kSyn | tcpflag::kAck);
  m = next_of(go(rig, worker, l4_frame(synack)));
  EXPECT_TRUE(m && src_of(m) == kVipNat);
  L4Spec ack = syn;
  ack.flags = tcpflag::kAck;
  m = next_of(go(rig, worker, l4_frame(ack)));
  EXPECT_TRUE(m && dst_of(m) == real);
  return real;
}

rte_mbuf* web_ack(LbRig& rig, uint16_t sport, Result* out = nullptr, uint16_t worker = 0) {
  L4Spec ack;
  ack.dst = kVipNat;
  ack.sport = sport;
  ack.flags = tcpflag::kAck;
  ack.payload = 20;
  const Result r = go(rig, worker, l4_frame(ack));
  if (out) *out = r;
  return r.next.size() == 1 ? r.next[0] : nullptr;
}

TEST_F(LbStageTest, ResetDropsTheFlowsOfADownReal) {
  Knobs k;
  k.on_down = "reset";
  make(k);
  ASSERT_EQ(open_web_flow(rig, 40000), kR3);
  ASSERT_EQ(open_web_flow(rig, 40001), kR2);
  EXPECT_EQ(stage().table().size(), 2u);
  rig.set_up("web", "10.20.0.13", false);
  Result r;
  EXPECT_EQ(web_ack(rig, 40000, &r), nullptr);
  EXPECT_EQ(r.drops(LbStage::kRealDown), 1u);
  EXPECT_EQ(stage().table().size(), 1u);  // the flow is gone...
  EXPECT_EQ(web_ack(rig, 40000, &r), nullptr);
  EXPECT_EQ(r.drops(LbStage::kNoFlow), 1u);  // ...so its next segment is unknown
  // The other real's flow is untouched.
  rte_mbuf* m = web_ack(rig, 40001);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(dst_of(m), kR2);
  // Back up: the reset flow stays forgotten.
  rig.set_up("web", "10.20.0.13", true);
  EXPECT_EQ(web_ack(rig, 40000, &r), nullptr);
  EXPECT_EQ(r.drops(LbStage::kNoFlow), 1u);
}

TEST_F(LbStageTest, KeepLetsFlowsOfADownRealContinue) {
  make();
  ASSERT_EQ(open_web_flow(rig, 40000), kR3);
  rig.set_up("web", "10.20.0.13", false);
  rte_mbuf* m = web_ack(rig, 40000);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(dst_of(m), kR3);
  expect_checksums(m);
  // New flows avoid it.
  StageCounters sum{};
  auto c = by_dst(burst_all(rig, 0, syns(kVipNat, 30, 20000), &sum));
  EXPECT_EQ(sum.next, 30u);
  EXPECT_EQ(c.count(kR3), 0u);
}

TEST_F(LbStageTest, DrainedRealKeepsItsFlowsAndGetsNoNewOnes) {
  make();
  // .13, .12, .11: one flow on each real.
  ASSERT_EQ(open_web_flow(rig, 40000), kR3);
  ASSERT_EQ(open_web_flow(rig, 40001), kR2);
  ASSERT_EQ(open_web_flow(rig, 40002), kR1);
  Knobs k;
  k.w1 = 0;
  ASSERT_TRUE(rig.reload(conf(k))) << rig.error;
  rte_mbuf* m = web_ack(rig, 40002);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(dst_of(m), kR1);
  EXPECT_EQ(dport_of(m), 8080);
  // Its reply is still translated.
  L4Spec rep = tcp_seg(kR1, 8080, kClient, 40002, tcpflag::kAck);
  m = next_of(go(rig, 0, l4_frame(rep)));
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(src_of(m), kVipNat);
  StageCounters sum{};
  auto c = by_dst(burst_all(rig, 0, syns(kVipNat, 60, 20000), &sum));
  EXPECT_EQ(sum.next, 60u);
  EXPECT_EQ(c.count(kR1), 0u);
  EXPECT_EQ(c[kR2], 24);  // 2:3 of 60
  EXPECT_EQ(c[kR3], 36);
}

// ---------------------------------------------------------------------------------------------
// 6. Persistence

TEST_F(LbStageTest, PersistenceKeepsAClientOnItsReal) {
  make();
  auto real_for = [&](uint32_t src, uint16_t sport) {
    L4Spec s;
    s.src = src;
    s.dst = kVipSticky;
    s.sport = sport;
    rte_mbuf* m = next_of(go(rig, 0, l4_frame(s)));
    return m ? dst_of(m) : 0u;
  };
  const uint32_t a = 0x0a0a0101, b = 0x0a0a0102, c = 0x0a0a0103, d = 0x0a0a0104;
  EXPECT_EQ(real_for(a, 1000), kR1);
  EXPECT_EQ(real_for(a, 1001), kR1);  // round robin would give .12
  EXPECT_EQ(real_for(b, 1000), kR2);
  EXPECT_EQ(real_for(a, 1002), kR1);
  EXPECT_EQ(real_for(c, 1000), kR3);
  EXPECT_EQ(real_for(b, 1001), kR2);
  EXPECT_EQ(real_for(d, 1000), kR1);  // the cursor only moved for new clients
  // A's persistence lasts 60 s after its last new flow; then it is scheduled afresh.
  rig.now += 59'999;
  EXPECT_EQ(real_for(a, 1003), kR1);
  rig.now += 60'000;
  EXPECT_EQ(real_for(a, 1004), kR2);
  // A persisted real that goes down is left, and the client sticks to the new one.
  rig.set_up("sticky", "10.20.0.12", false);
  EXPECT_EQ(real_for(a, 1005), kR3);
  rig.set_up("sticky", "10.20.0.12", true);
  EXPECT_EQ(real_for(a, 1006), kR3);
}

// ---------------------------------------------------------------------------------------------
// 7. Timeouts

TEST_F(LbStageTest, UdpFlowExpiresAfterTheUdpTimeout) {
  make();
  L4Spec q;
  q.proto = 17;
  q.dst = kVipUdp;
  q.sport = 5353;
  q.dport = 53;
  q.payload = 10;
  auto send = [&]() {
    rte_mbuf* m = next_of(go(rig, 0, l4_frame(q)));
    return m ? dst_of(m) : 0u;
  };
  EXPECT_EQ(send(), kR1);
  rig.now += 6999;  // udp = 7 s: alive until 6999 ms after the last packet
  EXPECT_EQ(send(), kR1);
  rig.now += 6999;
  EXPECT_EQ(send(), kR1);
  EXPECT_EQ(stage().counters().new_flows, 1u);
  rig.now += 7000;
  EXPECT_EQ(send(), kR2);  // a new flow: round robin moved on
  EXPECT_EQ(stage().counters().new_flows, 2u);
  EXPECT_EQ(stage().table().size(), 1u);
}

TEST_F(LbStageTest, TcpFlowsLiveTheirStatesTimeouts) {
  make();
  // SYN_SENT lives tcp_syn = 5 s from the first SYN; retransmissions do not extend it.
  L4Spec syn;
  syn.dst = kVipNat;
  syn.sport = 40000;
  const uint64_t t0 = rig.now;
  rte_mbuf* m = next_of(go(rig, 0, l4_frame(syn)));
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(dst_of(m), kR3);
  rig.now = t0 + 3000;
  m = next_of(go(rig, 0, l4_frame(syn)));  // retransmitted SYN: same flow
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(dst_of(m), kR3);
  rig.now = t0 + 4999;
  m = next_of(go(rig, 0, l4_frame(syn)));
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(dst_of(m), kR3);
  EXPECT_EQ(stage().counters().new_flows, 1u);
  rig.now = t0 + 5000;
  m = next_of(go(rig, 0, l4_frame(syn)));  // expired: a new flow, the next real
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(dst_of(m), kR2);
  EXPECT_EQ(stage().counters().new_flows, 2u);

  // ESTABLISHED lives tcp_established = 20 s after each segment.
  const uint32_t real = open_web_flow(rig, 41000);
  ASSERT_NE(real, 0u);
  const uint64_t t1 = rig.now;
  rig.now = t1 + 19'999;
  m = web_ack(rig, 41000);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(dst_of(m), real);
  rig.now += 19'999;
  m = web_ack(rig, 41000);
  ASSERT_NE(m, nullptr);
  rig.now += 20'000;
  Result r;
  EXPECT_EQ(web_ack(rig, 41000, &r), nullptr);
  EXPECT_EQ(r.drops(LbStage::kNoFlow), 1u);

  // FIN_WAIT lives tcp_fin = 3 s.
  ASSERT_NE(open_web_flow(rig, 42000), 0u);
  L4Spec fin = syn;
  fin.sport = 42000;
  fin.flags = tcpflag::kFin | tcpflag::kAck;
  ASSERT_NE(next_of(go(rig, 0, l4_frame(fin))), nullptr);
  rig.now += 2999;
  ASSERT_NE(web_ack(rig, 42000), nullptr);  // an ACK in FIN_WAIT refreshes to tcp_fin again
  rig.now += 3000;
  EXPECT_EQ(web_ack(rig, 42000, &r), nullptr);
  EXPECT_EQ(r.drops(LbStage::kNoFlow), 1u);
}

// ---------------------------------------------------------------------------------------------
// 8. Pressure: a full table, a SYN flood; NAT services answer with SYN cookies (SYN proxy)

constexpr uint32_t kIsn = 5000;             // the client's ISN
constexpr uint32_t kRealIsn = 0x90000000u;  // the real's, past 2^31 from most cookies

// The SYN-ACK nf answers `syn` with (cookie, our MSS 1460, IP ID `ip_id`), Ethernet swapped.
std::vector<uint8_t> cookie_synack(const L4Spec& syn, uint32_t cookie, uint16_t ip_id) {
  L4Spec w = tcp_seg(syn.dst, syn.dport, syn.src, syn.sport, tcpflag::kSyn | tcpflag::kAck, cookie,
                     syn.seq + 1);
  w.mss = 1460;
  w.ip_id = ip_id;
  return swap_macs(l4_frame(w));
}

// A client's SYN to port 80 of `vip` with ISN kIsn and an MSS option.
L4Spec client_syn(uint32_t vip, uint16_t sport, uint16_t mss) {
  L4Spec s = tcp_seg(kClient, sport, vip, 80, tcpflag::kSyn, kIsn, 0);
  s.mss = mss;
  return s;
}

// The client's ACK of the cookie SYN-ACK nf answered `syn` with: the third step of its
// handshake, which the SYN proxy turns into the SYN toward the real.
L4Spec cookie_ack(const L4Spec& syn, uint32_t cookie) {
  L4Spec a = syn;
  a.mss = 0;
  a.flags = tcpflag::kAck;
  a.seq = syn.seq + 1;
  a.ack = cookie + 1;
  return a;
}

// Trips the flood guard of `worker`: lb.syn_flood_rate (100) new DSR flows in this window.
void trip_flood(LbRig& rig, uint16_t worker = 0, uint16_t first_port = 10000) {
  std::vector<std::vector<uint8_t>> f;
  for (uint16_t i = 0; f.size() < 100; ++i) {
    const auto port = static_cast<uint16_t>(first_port + i);
    if (port % rig.workers != worker) continue;
    L4Spec s;
    s.dst = kVipDsr;
    s.sport = port;
    f.push_back(l4_frame(s));
  }
  burst_all(rig, worker, f);
}

// A client SYN under pressure: answered with a cookie (checked golden); returns the cookie.
uint32_t expect_cookie(LbRig& rig, const L4Spec& syn, uint16_t ip_id, uint16_t worker = 0) {
  const Result r = go(rig, worker, l4_frame(syn));
  EXPECT_EQ(r.c.reply, 1u);
  EXPECT_EQ(r.c.next + r.c.drop + r.c.handoff, 0u);
  if (r.tx.size() != 1) return 0;
  const uint32_t cookie =
      LbStage::cookies_at(rig.now, kHz)
          .make(syn.src, syn.dst, syn.sport, syn.dport, syn.seq, syn.mss ? syn.mss : 536, rig.now);
  EXPECT_EQ(hex(frame_of(r.tx[0])), hex(cookie_synack(syn, cookie, ip_id)));
  expect_checksums(r.tx[0]);
  EXPECT_EQ(meta(r.tx[0]).ip_dst, syn.src);
  EXPECT_EQ(meta(r.tx[0]).l3_len, 44u);
  return cookie;
}

// The client's side of a proxied handshake on worker 0: its SYN answered with a cookie
// (golden), then its ACK of the cookie passed on as the SYN toward the real.
struct ProxiedHandshake {
  uint32_t cookie = 0;
  L4Spec ack;                       // the client's ACK
  rte_mbuf* syn_to_real = nullptr;  // nullptr (with a failure) if the ACK did not go on
};
ProxiedHandshake proxy_handshake(LbRig& rig, const L4Spec& syn) {
  ProxiedHandshake h;
  h.cookie = expect_cookie(rig, syn, 0);
  h.ack = cookie_ack(syn, h.cookie);
  h.syn_to_real = next_of(go(rig, 0, l4_frame(h.ack)));
  return h;
}

TEST_F(LbStageTest, SynUnderFloodIsAnsweredWithACookieAndNoState) {
  make_flood_limited();
  trip_flood(rig);
  ASSERT_EQ(stage().table().size(), 100u);
  L4Spec syn = client_syn(kVipNat, 40000, 1400);
  const uint32_t cookie = expect_cookie(rig, syn, 0);
  // The cookie is one nf accepts, for this connection only, with the MSS rounded to the table.
  const lb::SynCookies c = LbStage::cookies_at(rig.now, kHz);
  EXPECT_EQ(c.check(kClient, kVipNat, 40000, 80, kIsn, cookie, rig.now), 1400);
  EXPECT_FALSE(c.check(kClient, kVipNat, 40001, 80, kIsn, cookie, rig.now));
  EXPECT_FALSE(c.check(kClient, kVipNat, 40000, 80, kIsn + 1, cookie, rig.now));
  EXPECT_EQ(stage().table().size(), 100u);
  EXPECT_EQ(stage().counters().syncookies_sent, 1u);
  EXPECT_EQ(stage().counters().new_flows, 100u);
  // A SYN without an MSS option gets a cookie for 536 (RFC 1122), with the next IP ID.
  L4Spec bare = syn;
  bare.sport = 40002;
  bare.mss = 0;
  const uint32_t c2 = expect_cookie(rig, bare, 1);
  EXPECT_EQ(c.check(kClient, kVipNat, 40002, 80, kIsn, c2, rig.now), 536);
  // UDP services have no cookies: dropped as before; DSR still places statelessly.
  L4Spec udp;
  udp.dst = kVipUdp;
  udp.dport = 53;
  udp.proto = 17;
  udp.payload = 12;
  EXPECT_EQ(go(rig, 0, l4_frame(udp)).drops(LbStage::kFlood), 1u);
  L4Spec dsr;
  dsr.dst = kVipDsr;
  dsr.sport = 50000;
  ASSERT_NE(next_of(go(rig, 0, l4_frame(dsr))), nullptr);
  EXPECT_EQ(stage().counters().stateless, 1u);
  EXPECT_EQ(stage().table().size(), 100u);
}

TEST_F(LbStageTest, ForgedCookieAckIsDroppedAndLeavesNoState) {
  make_flood_limited();
  // Before any cookie was sent, an unknown ACK is not even checked.
  L4Spec ack = tcp_seg(kClient, 40000, kVipNat, 80, tcpflag::kAck, kIsn + 1, 12345);
  EXPECT_EQ(go(rig, 0, l4_frame(ack)).drops(LbStage::kNoFlow), 1u);
  EXPECT_EQ(stage().counters().syncookies_bad, 0u);
  trip_flood(rig);
  L4Spec syn = client_syn(kVipNat, 40000, 1460);
  const uint32_t cookie = expect_cookie(rig, syn, 0);
  const uint32_t flows = stage().table().size();
  // Wrong cookie, wrong ISN (seq), another client port, another client: each fails.
  std::vector<L4Spec> forged(4, ack);
  forged[0].ack = cookie + 2;
  forged[1].ack = cookie + 1;
  forged[1].seq = kIsn + 2;
  forged[2].ack = cookie + 1;
  forged[2].sport = 40001;
  forged[3].ack = cookie + 1;
  forged[3].src = kClient2;
  for (const L4Spec& f : forged) {
    const Result r = go(rig, 0, l4_frame(f));
    EXPECT_EQ(r.drops(LbStage::kBadCookie), 1u);
  }
  EXPECT_EQ(stage().counters().syncookies_bad, 4u);
  EXPECT_EQ(stage().counters().syncookies_ok, 0u);
  EXPECT_EQ(stage().table().size(), flows);
  // A cookie lives the current and the next 64 s period (the key rotates with the period):
  // 127 s later it still opens its flow.
  rig.now = (rig.now / 64000) * 64000 + 127999;  // the last ms of the next period
  ack.ack = cookie + 1;
  ASSERT_NE(next_of(go(rig, 0, l4_frame(ack))), nullptr);
  EXPECT_EQ(stage().counters().syncookies_ok, 1u);
}

TEST_F(LbStageTest, CookieExpiresAfterTwoPeriods) {
  make_flood_limited();
  trip_flood(rig);
  L4Spec syn = client_syn(kVipNat, 40000, 1460);
  const uint32_t cookie = expect_cookie(rig, syn, 0);
  // Another SYN keeps this worker "recently handing out cookies" in the later period.
  rig.now = (rig.now / 64000) * 64000 + 128000;
  trip_flood(rig, 0, 20000);
  L4Spec other = syn;
  other.sport = 40010;
  expect_cookie(rig, other, 1);
  EXPECT_EQ(go(rig, 0, l4_frame(cookie_ack(syn, cookie))).drops(LbStage::kBadCookie), 1u);
}

// The whole SYN proxy on a nat service: SYN -> cookie SYN-ACK; ACK -> SYN to the real with the
// client's ISN; real's SYN-ACK -> ACK to the real; then data both ways, shifted.
TEST_F(LbStageTest, NatSynProxyOpensTheFlowAndShiftsSequenceNumbers) {
  make_flood_limited();
  trip_flood(rig);
  L4Spec syn = client_syn(kVipNat, 40000, 1400);
  const uint32_t cookie = expect_cookie(rig, syn, 0);
  const uint32_t flows = stage().table().size();

  // The client's ACK (window 501, unscaled: our SYN-ACK had no window scaling).
  L4Spec ack = cookie_ack(syn, cookie);
  ack.window = 501;
  ack.ip_id = 0x2222;
  // SYN, seq = client ISN, the cookie's MSS, the client's window, to .13:8080
  L4Spec to_real = tcp_seg(kClient, 40000, kR3, 8080, tcpflag::kSyn);
  to_real.seq = kIsn;
  to_real.mss = 1400;
  to_real.window = 501;
  to_real.ip_id = 0x2222;
  rte_mbuf* m = expect_next(rig, ack, to_real);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(meta(m).ip_dst, kR3);
  EXPECT_EQ(meta(m).l3_len, 44u);
  EXPECT_EQ(stage().counters().syncookies_ok, 1u);
  EXPECT_EQ(stage().counters().new_flows, 101u);
  EXPECT_EQ(stage().table().size(), flows + 1);

  // Before the real answers: the client's retransmitted ACK resends the SYN (the first may
  // have been lost); a later segment cannot be translated yet and is dropped.
  L4Spec again = ack;
  again.ip_id = 0x2223;
  again.payload = 30;  // its first data: seq = ISN + 1 still
  to_real.ip_id = 0x2223;
  m = expect_next(rig, again, to_real);
  ASSERT_NE(m, nullptr);
  L4Spec later = ack;
  later.seq = kIsn + 31;
  later.payload = 30;
  EXPECT_EQ(go(rig, 0, l4_frame(later)).drops(LbStage::kSynproxyWait), 1u);
  EXPECT_EQ(stage().counters().syncookies_ok, 1u);

  // The real's SYN-ACK becomes the ACK that completes its handshake, back to the real.
  L4Spec sa = tcp_seg(kR3, 8080, kClient, 40000, tcpflag::kSyn | tcpflag::kAck, kRealIsn, kIsn + 1);
  sa.mss = 1460;
  sa.ttl = 63;
  sa.ip_id = 0x3333;
  sa.window = 64240;
  L4Spec ack_real = tcp_seg(kClient, 40000, kR3, 8080, tcpflag::kAck, kIsn + 1, kRealIsn + 1);
  ack_real.window = 501;
  ack_real.ip_id = 0x3333;
  m = expect_next(rig, sa, ack_real);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(meta(m).ip_dst, kR3);
  EXPECT_EQ(stage().counters().synproxy_established, 1u);
  // Retransmitted (our ACK lost): answered again, nothing counted twice.
  sa.ip_id = 0x3334;
  ack_real.ip_id = 0x3334;
  m = expect_next(rig, sa, ack_real);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(stage().counters().synproxy_established, 1u);

  // Client data: its ack (in cookie space) moves to the real's space.
  L4Spec data = ack;
  data.flags = tcpflag::kAck | tcpflag::kPsh;
  data.payload = 100;
  data.window = 700;
  L4Spec data_out = data;
  data_out.dst = kR3;
  data_out.dport = 8080;
  data_out.ack = kRealIsn + 1;
  m = expect_next(rig, data, data_out);
  ASSERT_NE(m, nullptr);
  // The real's data: its seq moves to the cookie space, and it comes from the VIP.
  L4Spec rdata =
      tcp_seg(kR3, 8080, kClient, 40000, tcpflag::kAck | tcpflag::kPsh, kRealIsn + 1, kIsn + 101);
  rdata.payload = 1000;
  L4Spec rdata_out = rdata;
  rdata_out.src = kVipNat;
  rdata_out.sport = 80;
  rdata_out.seq = cookie + 1;
  m = expect_next(rig, rdata, rdata_out);
  ASSERT_NE(m, nullptr);
  // Wrapping around 2^32 on both sides: the offset is modular.
  rdata.seq = kRealIsn + 1 + 0x7fffffffu;
  rdata.payload = 10;
  m = next_of(go(rig, 0, l4_frame(rdata)));
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(rd32(ip_of(m) + 24), cookie + 1 + 0x7fffffffu);
  expect_checksums(m);
  // The client's FIN is shifted too and closes the flow as usual.
  L4Spec fin = data;
  fin.flags = tcpflag::kAck | tcpflag::kFin;
  fin.seq = kIsn + 101;
  fin.ack = cookie + 1 + 1000;
  fin.payload = 0;
  m = next_of(go(rig, 0, l4_frame(fin)));
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(rd32(ip_of(m) + 28), kRealIsn + 1 + 1000);
  expect_checksums(m);
  // Client segments that went on: the retransmitted ACK (as the SYN), the data, the FIN.
  EXPECT_EQ(stage().counters().hits, 3u);
  EXPECT_EQ(stage().table().size(), flows + 1);
}

TEST_F(LbStageTest, FullNatSynProxyUsesTheSnatAddressTowardTheReal) {
  make_flood_limited();
  trip_flood(rig);
  L4Spec syn = client_syn(kVipFull, 41000, 1460);
  auto [cookie, ack, m] = proxy_handshake(rig, syn);
  ASSERT_NE(m, nullptr);
  const uint32_t real = maglev_real(rig, "full", syn);
  const uint16_t port = sport_of(m);
  L4Spec to_real = tcp_seg(kSnat, port, real, 80, tcpflag::kSyn);
  to_real.seq = kIsn;
  to_real.mss = 1460;
  EXPECT_EQ(hex(frame_of(m)), hex(l4_frame(to_real)));
  expect_checksums(m);
  EXPECT_EQ(rig.rt->workers[0].ports->pool(0, lb::PatProto::kTcp).in_use(), 1u);

  L4Spec sa = tcp_seg(real, 80, kSnat, port, tcpflag::kSyn | tcpflag::kAck, 77, kIsn + 1);
  sa.mss = 1460;
  L4Spec ack_real = tcp_seg(kSnat, port, real, 80, tcpflag::kAck, kIsn + 1, 78);
  m = expect_next(rig, sa, ack_real);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(meta(m).ip_dst, real);

  L4Spec data = ack;
  data.flags = tcpflag::kAck | tcpflag::kPsh;
  data.payload = 64;
  L4Spec data_out = moved(data, kSnat, port, real, 80);
  data_out.ack = 78;
  m = expect_next(rig, data, data_out);
  ASSERT_NE(m, nullptr);
  L4Spec rdata = tcp_seg(real, 80, kSnat, port, tcpflag::kAck, 78, kIsn + 65);
  rdata.payload = 200;
  L4Spec rdata_out = rdata;
  rdata_out.src = kVipFull;
  rdata_out.dst = kClient;
  rdata_out.dport = 41000;
  rdata_out.seq = cookie + 1;
  m = expect_next(rig, rdata, rdata_out);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(meta(m).ip_dst, kClient);
}

TEST_F(LbStageTest, ResetFromTheRealBeforeItsSynAckReachesTheClientInWindow) {
  make_flood_limited();
  trip_flood(rig);
  L4Spec syn = client_syn(kVipNat, 40000, 1460);
  auto [cookie, ack, m] = proxy_handshake(rig, syn);
  ASSERT_NE(m, nullptr);
  const uint32_t real = dst_of(m);
  // Anything else from the real before its SYN-ACK cannot be translated: dropped.
  L4Spec stray = tcp_seg(real, 8080, kClient, 40000, tcpflag::kAck, 1, kIsn + 1);
  EXPECT_EQ(go(rig, 0, l4_frame(stray)).drops(LbStage::kSynproxyWait), 1u);
  // Nothing listens on the real: RST+ACK, seq 0, ack = ISN + 1 (RFC 9293 3.10.7.1).
  L4Spec rst = tcp_seg(real, 8080, kClient, 40000, tcpflag::kRst | tcpflag::kAck, 0, kIsn + 1);
  L4Spec want = rst;
  want.src = kVipNat;
  want.sport = 80;
  want.seq = cookie + 1;  // what the client expects next from the VIP
  m = expect_next(rig, rst, want);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(meta(m).ip_dst, kClient);
  EXPECT_EQ(stage().counters().synproxy_established, 0u);
  // The flow is closed: a new SYN on its tuple (the client retrying) is scheduled afresh
  // (the flood window is still on, so it gets a cookie again).
  EXPECT_EQ(expect_cookie(rig, syn, 1), cookie);
}

TEST_F(LbStageTest, NatTableFullAnswersWithCookiesAndTheReserveTakesTheirFlows) {
  Knobs k;
  k.max_flows = 1024;
  make(k);
  ASSERT_EQ(stage().table().capacity(), 1024u);
  ASSERT_EQ(stage().reserve(), 16u);
  const uint32_t first = open_web_flow(rig, 9000);
  ASSERT_NE(first, 0u);
  StageCounters sum{};
  burst_all(rig, 0, syns(kVipNat, 1007, 10000), &sum);
  EXPECT_EQ(sum.next, 1007u);
  EXPECT_EQ(stage().table().size(), 1008u);
  // Full but for the reserve: SYNs are answered with cookies, for nat and fullnat alike.
  std::vector<uint32_t> cookies;
  for (uint16_t i = 0; i < 17; ++i) {
    L4Spec syn;
    syn.dst = i % 2 ? kVipFull : kVipNat;
    syn.sport = static_cast<uint16_t>(20000 + i);
    syn.seq = kIsn + i;
    syn.mss = 1460;
    cookies.push_back(expect_cookie(rig, syn, i));
  }
  EXPECT_EQ(stage().counters().syncookies_sent, 17u);
  EXPECT_EQ(stage().table().size(), 1008u);
  EXPECT_EQ(rig.rt->workers[0].ports->pool(0, lb::PatProto::kTcp).in_use(), 0u);
  // Their ACKs open flows in the reserve, until it too is full.
  for (uint16_t i = 0; i < 17; ++i) {
    L4Spec ack;
    ack.dst = i % 2 ? kVipFull : kVipNat;
    ack.sport = static_cast<uint16_t>(20000 + i);
    ack.flags = tcpflag::kAck;
    ack.seq = kIsn + i + 1;
    ack.ack = cookies[i] + 1;
    const Result r = go(rig, 0, l4_frame(ack));
    if (i < 16) {
      ASSERT_EQ(r.next.size(), 1u) << i;
      EXPECT_EQ(rd32(ip_of(r.next[0]) + 24), kIsn + i);  // the SYN, with the client's ISN
      EXPECT_EQ(ip_of(r.next[0])[33], tcpflag::kSyn);
    } else {
      EXPECT_EQ(r.drops(LbStage::kTableFull), 1u);  // the client's retransmission retries
    }
  }
  EXPECT_EQ(stage().table().size(), 1024u);
  EXPECT_EQ(stage().counters().syncookies_ok, 16u);
  EXPECT_EQ(rig.rt->workers[0].ports->pool(0, lb::PatProto::kTcp).in_use(), 8u);
  // UDP has no cookies: dropped.
  L4Spec udp;
  udp.dst = kVipUdp;
  udp.dport = 53;
  udp.proto = 17;
  EXPECT_EQ(go(rig, 0, l4_frame(udp)).drops(LbStage::kTableFull), 1u);
  // The early flow goes on to its real, in both directions, unshifted.
  rte_mbuf* m = web_ack(rig, 9000);
  ASSERT_NE(m, nullptr);
  L4Spec want;
  want.dst = first;
  want.dport = 8080;
  want.sport = 9000;
  want.flags = tcpflag::kAck;
  want.payload = 20;
  EXPECT_EQ(hex(frame_of(m)), hex(l4_frame(want)));
  L4Spec rep = tcp_seg(first, 8080, kClient, 9000, tcpflag::kAck);
  L4Spec back = rep;
  back.src = kVipNat;
  back.sport = 80;
  m = expect_next(rig, rep, back);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(stage().counters().new_flows, 1008u + 16u);
}

TEST_F(LbStageTest, DsrTableFullPlacesNewFlowsStatelessly) {
  Knobs k;
  k.max_flows = 1024;
  make(k);
  StageCounters sum{};
  burst_all(rig, 0, syns(kVipDsr, 1024, 10000), &sum);
  EXPECT_EQ(sum.next, 1024u);
  EXPECT_EQ(stage().table().size(), 1008u);  // the rest is the cookies' reserve
  EXPECT_EQ(stage().counters().stateless, 16u);
  sum = {};
  const std::vector<rte_mbuf*> out = burst_all(rig, 0, syns(kVipDsr, 64, 30000), &sum);
  EXPECT_EQ(sum.next, 64u);
  EXPECT_EQ(sum.drop, 0u);
  EXPECT_EQ(stage().counters().stateless, 80u);
  EXPECT_EQ(stage().table().size(), 1008u);
  for (size_t i = 0; i < out.size(); ++i) {
    L4Spec s;
    s.dst = kVipDsr;
    s.sport = static_cast<uint16_t>(30000 + i);
    EXPECT_EQ(meta(out[i]).ip_dst, maglev_real(rig, "dsr", s));
    EXPECT_NE(meta(out[i]).flags & meta_flags::kRouteByMeta, 0);
  }
}

TEST_F(LbStageTest, SynFloodStartsWithinAWindowAndEndsInTheNext) {
  make_flood_limited();
  const uint64_t t0 = rig.now;
  const uint32_t early = open_web_flow(rig, 9000);  // new flow 1 of the window
  ASSERT_NE(early, 0u);
  StageCounters sum{};
  burst_all(rig, 0, syns(kVipNat, 99, 10000), &sum);  // 2..100: within the rate
  EXPECT_EQ(sum.next, 99u);
  EXPECT_EQ(stage().counters().flood_windows, 0u);
  rig.now = t0 + 10;
  sum = {};
  const std::vector<rte_mbuf*> answered = burst_all(rig, 0, syns(kVipNat, 20, 20000), &sum);
  EXPECT_EQ(sum.next + sum.drop, 0u);  // all 20 answered with cookies, nothing dropped
  EXPECT_EQ(stage().counters().syncookies_sent, 20u);
  EXPECT_EQ(stage().counters().flood_windows, 1u);
  for (rte_mbuf* m : answered) EXPECT_EQ(ip_of(m)[33], tcpflag::kSyn | tcpflag::kAck);
  // DSR services hash statelessly meanwhile.
  sum = {};
  const std::vector<rte_mbuf*> dsr = burst_all(rig, 0, syns(kVipDsr, 10, 20000), &sum);
  EXPECT_EQ(sum.next, 10u);
  EXPECT_EQ(stage().counters().stateless, 10u);
  EXPECT_EQ(stage().table().size(), 100u);
  // Established flows are not affected: no cookie, no shift, byte for byte as before.
  rte_mbuf* m = web_ack(rig, 9000);
  ASSERT_NE(m, nullptr);
  L4Spec want;
  want.dst = early;
  want.dport = 8080;
  want.sport = 9000;
  want.flags = tcpflag::kAck;
  want.payload = 20;
  EXPECT_EQ(hex(frame_of(m)), hex(l4_frame(want)));
  rig.now = t0 + 999;
  sum = {};
  burst_all(rig, 0, syns(kVipNat, 1, 30000), &sum);
  EXPECT_EQ(stage().counters().syncookies_sent, 21u);
  // The window after a flooded one is a flood from its start (a sustained flood gets no
  // state after its first second)...
  rig.now = t0 + 1000;
  sum = {};
  burst_all(rig, 0, syns(kVipNat, 100, 31000), &sum);
  EXPECT_EQ(sum.next + sum.drop, 0u);
  EXPECT_EQ(stage().counters().syncookies_sent, 121u);
  EXPECT_EQ(stage().counters().flood_windows, 2u);
  // ...and the one after a window within the rate starts afresh.
  rig.now = t0 + 2000;
  sum = {};
  burst_all(rig, 0, syns(kVipNat, 100, 32000), &sum);
  EXPECT_EQ(sum.next, 100u);
  EXPECT_EQ(stage().counters().flood_windows, 2u);
  sum = {};
  burst_all(rig, 0, syns(kVipNat, 1, 33000), &sum);
  EXPECT_EQ(stage().counters().syncookies_sent, 122u);
  EXPECT_EQ(stage().counters().flood_windows, 3u);
  EXPECT_EQ(sum.next + sum.drop, 0u);
  // A flooded window followed by a quiet second: the flood does not carry over the gap.
  rig.now = t0 + 4500;
  sum = {};
  burst_all(rig, 0, syns(kVipNat, 100, 34000), &sum);
  EXPECT_EQ(sum.next, 100u);
  EXPECT_EQ(stage().counters().flood_windows, 3u);
}

// Two workers: flows belong to the worker of the client's port, so the SYN, the cookie ACK
// and the real's SYN-ACK of one connection all meet on its owner (handed over otherwise). The
// cookie keys are the process's, not the worker's: any worker would accept the cookie.
TEST_F(LbStageTest, SynProxyOnTwoWorkersRunsOnTheFlowsOwner) {
  make_flood_limited(2);
  trip_flood(rig, 1);
  L4Spec syn;
  syn.dst = kVipNat;
  syn.sport = 40001;  // owner 1
  syn.seq = kIsn;
  syn.mss = 1460;
  rte_mbuf* m = rig.mbuf(l4_frame(syn));
  Result r = go(rig, 0, {m});
  ASSERT_EQ(r.handoff[1].size(), 1u);
  const uint32_t cookie =
      LbStage::cookies_at(rig.now, kHz).make(kClient, kVipNat, 40001, 80, kIsn, 1460, rig.now);
  r = go(rig, 1, {m});
  ASSERT_EQ(r.tx.size(), 1u);
  EXPECT_EQ(hex(frame_of(m)), hex(cookie_synack(syn, cookie, 0)));
  L4Spec ack = cookie_ack(syn, cookie);
  m = rig.mbuf(l4_frame(ack));
  r = go(rig, 0, {m});
  ASSERT_EQ(r.handoff[1].size(), 1u);
  EXPECT_EQ(stage(0).counters().syncookies_bad + stage(0).counters().syncookies_ok, 0u);
  ASSERT_EQ(next_of(go(rig, 1, {m})), m);
  const uint32_t real = dst_of(m);
  EXPECT_EQ(ip_of(m)[33], tcpflag::kSyn);
  L4Spec sa =
      tcp_seg(real, 8080, kClient, 40001, tcpflag::kSyn | tcpflag::kAck, kRealIsn, kIsn + 1);
  m = rig.mbuf(l4_frame(sa));
  r = go(rig, 0, {m});
  ASSERT_EQ(r.handoff[1].size(), 1u);
  ASSERT_EQ(next_of(go(rig, 1, {m})), m);
  EXPECT_EQ(dst_of(m), real);
  EXPECT_EQ(ip_of(m)[33], tcpflag::kAck);
  EXPECT_EQ(rd32(ip_of(m) + 28), kRealIsn + 1);
  L4Spec rdata = sa;
  rdata.flags = tcpflag::kAck;
  rdata.seq = kRealIsn + 1;
  rdata.payload = 10;
  m = rig.mbuf(l4_frame(rdata));
  r = go(rig, 0, {m});
  ASSERT_EQ(r.handoff[1].size(), 1u);
  ASSERT_EQ(next_of(go(rig, 1, {m})), m);
  EXPECT_EQ(rd32(ip_of(m) + 24), cookie + 1);
  expect_checksums(m);
  EXPECT_EQ(stage(1).counters().syncookies_sent, 1u);
  EXPECT_EQ(stage(1).counters().syncookies_ok, 1u);
  EXPECT_EQ(stage(1).counters().synproxy_established, 1u);
  EXPECT_EQ(stage(0).counters().syncookies_sent, 0u);
  EXPECT_EQ(stage(0).table().size(), 0u);
}

// A proxied nat flow through its handshake (flood tripped first): returns the cookie; the real
// answered with kRealIsn.
uint32_t open_proxied_flow(LbRig& rig, uint16_t sport, uint32_t* real) {
  trip_flood(rig);
  L4Spec syn = client_syn(kVipNat, sport, 1460);
  const ProxiedHandshake h = proxy_handshake(rig, syn);
  const uint32_t cookie = h.cookie;
  rte_mbuf* m = h.syn_to_real;
  if (!m) return 0;
  *real = dst_of(m);
  L4Spec sa =
      tcp_seg(*real, 8080, kClient, sport, tcpflag::kSyn | tcpflag::kAck, kRealIsn, kIsn + 1);
  m = next_of(go(rig, 0, l4_frame(sa)));
  EXPECT_TRUE(m && dst_of(m) == *real);
  return cookie;
}

TEST_F(LbStageTest, IcmpErrorFromTheClientOfAProxiedFlowQuotesTheRealsSequence) {
  make_flood_limited();
  uint32_t real = 0;
  const uint32_t cookie = open_proxied_flow(rig, 40000, &real);
  ASSERT_NE(real, 0u);
  for (size_t quote : {28, 48}) {  // seq quoted without, then with the TCP checksum
    SCOPED_TRACE(quote);
    // what the client got: from the VIP, seq in the cookie's space
    L4Spec got = tcp_seg(kVipNat, 80, kClient, 40000, tcpflag::kAck, cookie + 1, kIsn + 1);
    got.payload = 100;
    L4Spec sent = got;  // what the real sent
    sent.src = real;
    sent.sport = 8080;
    sent.seq = kRealIsn + 1;
    rte_mbuf* m =
        next_of(go(rig, 0, icmp_error_frame(kClient, kVipNat, 3, 4, 1400, l4_frame(got), quote)));
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(hex(frame_of(m)),
              hex(icmp_error_frame(kClient, real, 3, 4, 1400, l4_frame(sent), quote)));
  }
}

// Random ISNs on both sides and random segments: every shifted packet carries exactly the
// sequence numbers of the other side's space and checksums a full recomputation agrees with.
TEST_F(LbStageTest, SynProxyShiftsRandomSegmentsWithValidChecksums) {
  make_flood_limited();
  trip_flood(rig);
  std::mt19937 rng(11);
  for (int conn = 0; conn < 20; ++conn) {
    SCOPED_TRACE(conn);
    const uint32_t isn = rng();
    const uint32_t risn = rng();
    L4Spec syn;
    syn.dst = conn % 2 ? kVipFull : kVipNat;
    syn.sport = static_cast<uint16_t>(30000 + conn);
    syn.seq = isn;
    syn.mss = static_cast<uint16_t>(536 + rng() % 9000);
    const Result sr = go(rig, 0, l4_frame(syn));
    ASSERT_EQ(sr.tx.size(), 1u);
    const uint32_t cookie = rd32(ip_of(sr.tx[0]) + 24);
    L4Spec ack = cookie_ack(syn, cookie);
    rte_mbuf* m = next_of(go(rig, 0, l4_frame(ack)));
    ASSERT_NE(m, nullptr);
    const uint32_t real = dst_of(m);
    const uint16_t rport = dport_of(m);
    const uint32_t near = src_of(m);  // the client, or the snat address
    const uint16_t nport = sport_of(m);
    EXPECT_EQ(rd32(ip_of(m) + 24), isn);
    EXPECT_EQ(rd16(ip_of(m) + 42), lb::kMssTable[lb::mss_index(syn.mss)]);
    L4Spec sa = tcp_seg(real, rport, near, nport, tcpflag::kSyn | tcpflag::kAck, risn, isn + 1);
    ASSERT_NE(next_of(go(rig, 0, l4_frame(sa))), nullptr);
    for (int i = 0; i < 10; ++i) {
      const uint32_t a = rng() % 1000000, b = rng() % 1000000;
      L4Spec c = ack;  // client -> VIP: ack in cookie space
      c.flags = tcpflag::kAck | tcpflag::kPsh;
      c.seq = isn + 1 + a;
      c.ack = cookie + 1 + b;
      c.payload = static_cast<uint16_t>(rng() % 1400);
      m = next_of(go(rig, 0, l4_frame(c)));
      ASSERT_NE(m, nullptr);
      EXPECT_EQ(rd32(ip_of(m) + 24), isn + 1 + a);
      EXPECT_EQ(rd32(ip_of(m) + 28), risn + 1 + b);
      expect_checksums(m);
      L4Spec r = sa;  // real -> client: seq in the real's space
      r.flags = tcpflag::kAck;
      r.mss = 0;
      r.seq = risn + 1 + b;
      r.ack = isn + 1 + a;
      r.payload = static_cast<uint16_t>(rng() % 1400);
      m = next_of(go(rig, 0, l4_frame(r)));
      ASSERT_NE(m, nullptr);
      EXPECT_EQ(src_of(m), syn.dst);
      EXPECT_EQ(rd32(ip_of(m) + 24), cookie + 1 + b);
      EXPECT_EQ(rd32(ip_of(m) + 28), isn + 1 + a);
      expect_checksums(m);
    }
  }
  EXPECT_EQ(stage().counters().synproxy_established, 20u);
}

// ---------------------------------------------------------------------------------------------
// 9. Two workers: both directions of a flow meet on its owner

TEST_F(LbStageTest, NatFlowIsHandedToItsOwnerInBothDirections) {
  make({}, 2);
  L4Spec syn;
  syn.dst = kVipNat;
  syn.sport = 40001;  // owner: 40001 % 2 = 1
  rte_mbuf* m = rig.mbuf(l4_frame(syn));
  Result r = go(rig, 0, {m});
  ASSERT_EQ(r.handoff[1].size(), 1u);
  EXPECT_EQ(r.handoff[1][0], m);
  EXPECT_EQ(r.c.handoff, 1u);
  EXPECT_EQ(hex(frame_of(m)), hex(l4_frame(syn)));  // untouched by the non-owner
  ASSERT_EQ(next_of(go(rig, 1, {m})), m);
  const uint32_t real = dst_of(m);
  EXPECT_EQ(real, kR3);
  EXPECT_EQ(dport_of(m), 8080);
  expect_checksums(m);

  L4Spec rep = tcp_seg(real, 8080, kClient, 40001, tcpflag::kSyn | tcpflag::kAck);
  m = rig.mbuf(l4_frame(rep));
  r = go(rig, 0, {m});
  ASSERT_EQ(r.handoff[1].size(), 1u);
  EXPECT_EQ(hex(frame_of(m)), hex(l4_frame(rep)));
  ASSERT_EQ(next_of(go(rig, 1, {m})), m);
  L4Spec back = rep;
  back.src = kVipNat;
  back.sport = 80;
  EXPECT_EQ(hex(frame_of(m)), hex(l4_frame(back)));

  L4Spec ack = syn;
  ack.flags = tcpflag::kAck;
  m = rig.mbuf(l4_frame(ack));
  r = go(rig, 0, {m});
  ASSERT_EQ(r.handoff[1].size(), 1u);
  ASSERT_EQ(next_of(go(rig, 1, {m})), m);
  EXPECT_EQ(dst_of(m), real);

  EXPECT_EQ(stage(0).counters().handoffs, 3u);
  EXPECT_EQ(stage(0).counters().new_flows, 0u);
  EXPECT_EQ(stage(0).counters().hits + stage(0).counters().replies, 0u);
  EXPECT_EQ(stage(0).table().size(), 0u);
  EXPECT_EQ(stage(1).counters().handoffs, 0u);
  EXPECT_EQ(stage(1).counters().new_flows, 1u);
  EXPECT_EQ(stage(1).counters().replies, 1u);
  EXPECT_EQ(stage(1).counters().hits, 1u);
  EXPECT_EQ(stage(1).table().size(), 1u);
}

TEST_F(LbStageTest, FullNatFlowIsHandedToTheOwnerOfItsSourcePort) {
  make({}, 2);
  for (uint16_t cport : {40000, 40001}) {
    SCOPED_TRACE(cport);
    const uint16_t owner = cport % 2;
    const uint16_t other = 1 - owner;
    const uint32_t other_flows = stage(other).table().size();
    L4Spec syn;
    syn.dst = kVipFull;
    syn.sport = cport;
    rte_mbuf* m = rig.mbuf(l4_frame(syn));
    Result r = go(rig, other, {m});
    ASSERT_EQ(r.handoff[owner].size(), 1u);
    ASSERT_EQ(next_of(go(rig, owner, {m})), m);
    const uint32_t real = dst_of(m);
    const uint16_t port = sport_of(m);
    EXPECT_EQ(src_of(m), kSnat);
    EXPECT_EQ(port % 2, owner);  // the owner allocates from its own share
    EXPECT_EQ(real, maglev_real(rig, "full", syn));
    expect_checksums(m);

    L4Spec rep = tcp_seg(real, 80, kSnat, port, tcpflag::kSyn | tcpflag::kAck);
    m = rig.mbuf(l4_frame(rep));
    r = go(rig, other, {m});
    ASSERT_EQ(r.handoff[owner].size(), 1u);
    EXPECT_EQ(hex(frame_of(m)), hex(l4_frame(rep)));
    ASSERT_EQ(next_of(go(rig, owner, {m})), m);
    L4Spec back = rep;
    back.src = kVipFull;
    back.dst = kClient;
    back.dport = cport;
    EXPECT_EQ(hex(frame_of(m)), hex(l4_frame(back)));
    EXPECT_EQ(stage(other).table().size(), other_flows);  // nothing of this flow
    EXPECT_EQ(stage(owner).table().size(), 1u);
  }
  for (uint16_t w : {0, 1}) {
    EXPECT_EQ(stage(w).counters().handoffs, 2u);
    EXPECT_EQ(stage(w).counters().new_flows, 1u);
    EXPECT_EQ(stage(w).counters().replies, 1u);
  }
}

// 10,000 flows (NAT and full NAT, random clients), each packet arriving on a random worker:
// every packet is handed at most once, always to the owner, and translated there.
TEST_F(LbStageTest, RandomFlowsAreTranslatedByExactlyTheirOwner) {
  Knobs k;
  k.max_flows = 16384;
  make(k, 2);
  struct Flow {
    uint32_t client;
    uint16_t cport;
    bool full;
    uint16_t owner;
    uint32_t real = 0;
    uint16_t rport = 0;
    uint16_t nport = 0;  // full NAT source port
  };
  std::mt19937_64 rng(2026);
  std::vector<Flow> flows;
  std::set<std::pair<uint32_t, uint16_t>> used;
  while (flows.size() < 10000) {
    Flow f{0x0b000000u | static_cast<uint32_t>(rng() & 0xffffff),
           static_cast<uint16_t>(1024 + rng() % 64000), (rng() & 1) != 0, 0};
    if (!used.insert({f.client, f.cport}).second) continue;
    f.owner = f.cport % 2;
    flows.push_back(f);
  }
  enum Phase { kSyn, kReply, kAck };
  auto frame = [&](const Flow& f, Phase ph) {
    L4Spec s;
    if (ph == kReply) {
      s.src = f.real;
      s.sport = f.rport;
      s.dst = f.full ? kSnat : f.client;
      s.dport = f.full ? f.nport : f.cport;
      s.flags = tcpflag::kSyn | tcpflag::kAck;
    } else {
      s.src = f.client;
      s.sport = f.cport;
      s.dst = f.full ? kVipFull : kVipNat;
      s.flags = ph == kSyn ? tcpflag::kSyn : tcpflag::kAck;
    }
    return l4_frame(s);
  };
  uint64_t handed = 0;
  for (Phase ph : {kSyn, kReply, kAck}) {
    SCOPED_TRACE(ph);
    rig.mbufs.clear();
    std::unordered_map<rte_mbuf*, size_t> flow_of;
    std::vector<rte_mbuf*> arrive[2];
    for (size_t i = 0; i < flows.size(); ++i) {
      rte_mbuf* m = rig.mbuf(frame(flows[i], ph));
      flow_of[m] = i;
      arrive[rng() & 1].push_back(m);
    }
    std::vector<int> done(flows.size(), 0);
    auto check_next = [&](uint16_t w, rte_mbuf* m) {
      Flow& f = flows[flow_of.at(m)];
      ++done[flow_of.at(m)];
      EXPECT_EQ(w, f.owner);
      if (ph == kSyn) {
        f.real = dst_of(m);
        f.rport = dport_of(m);
        EXPECT_EQ(f.rport, f.full ? 80 : 8080);
        if (f.full) {
          f.nport = sport_of(m);
          EXPECT_EQ(src_of(m), kSnat);
          EXPECT_EQ(f.nport % 2, f.owner);
        } else {
          EXPECT_EQ(src_of(m), f.client);
        }
      } else if (ph == kReply) {
        EXPECT_EQ(src_of(m), f.full ? kVipFull : kVipNat);
        EXPECT_EQ(sport_of(m), 80);
        EXPECT_EQ(dst_of(m), f.client);
        EXPECT_EQ(dport_of(m), f.cport);
      } else {
        EXPECT_EQ(dst_of(m), f.real);
        EXPECT_EQ(dport_of(m), f.rport);
        if (f.full) {
          EXPECT_EQ(sport_of(m), f.nport);
        }
      }
    };
    std::vector<rte_mbuf*> handed_to[2];
    for (uint16_t w : {0, 1}) {
      for (size_t i = 0; i < arrive[w].size(); i += kMaxBurst) {
        std::vector<rte_mbuf*> b(arrive[w].begin() + i,
                                 arrive[w].begin() + std::min(arrive[w].size(), i + kMaxBurst));
        const Result r = go(rig, w, b);
        EXPECT_EQ(r.c.drop, 0u);
        for (rte_mbuf* m : r.next) check_next(w, m);
        EXPECT_TRUE(r.handoff[w].empty());
        for (rte_mbuf* m : r.handoff[1 - w]) {
          EXPECT_EQ(flows[flow_of.at(m)].owner, 1 - w);
          handed_to[1 - w].push_back(m);
        }
      }
    }
    for (uint16_t w : {0, 1}) {
      handed += handed_to[w].size();
      for (size_t i = 0; i < handed_to[w].size(); i += kMaxBurst) {
        std::vector<rte_mbuf*> b(
            handed_to[w].begin() + i,
            handed_to[w].begin() + std::min(handed_to[w].size(), i + kMaxBurst));
        const Result r = go(rig, w, b);
        EXPECT_EQ(r.next.size(), b.size());  // never handed on again, never dropped
        for (rte_mbuf* m : r.next) check_next(w, m);
      }
    }
    EXPECT_EQ(std::count(done.begin(), done.end(), 1), static_cast<long>(flows.size()));
  }
  size_t owned[2] = {0, 0};
  for (const Flow& f : flows) ++owned[f.owner];
  for (uint16_t w : {0, 1}) {
    EXPECT_EQ(stage(w).table().size(), owned[w]);
    EXPECT_EQ(stage(w).counters().new_flows, owned[w]);
  }
  EXPECT_EQ(stage(0).counters().handoffs + stage(1).counters().handoffs, handed);
  EXPECT_GT(handed, 12000u);  // about half of 30,000
  EXPECT_LT(handed, 18000u);
}

// ---------------------------------------------------------------------------------------------
// 10. Everything at once: one burst of every kind of packet

TEST_F(LbStageTest, MixedBurstConservesPacketsAndPassesOthersUntouched) {
  make({}, 2);
  std::vector<std::vector<uint8_t>> frames;
  std::vector<const char*> want;
  auto add = [&](const std::vector<uint8_t>& f, const char* w) {
    frames.push_back(f);
    want.push_back(w);
  };
  add(l4_frame(L4Spec{.dst = kVipNat, .sport = 40000}), "next");     // new NAT flow
  add(l4_frame(L4Spec{.dst = kVipNat, .sport = 40001}), "handoff");  // owner 1
  add(l4_frame(L4Spec{.dst = kVipNat, .sport = 40002, .flags = tcpflag::kAck}), "no_flow");
  add(l4_frame(L4Spec{.dst = kVipDsr, .sport = 40004, .flags = tcpflag::kAck}), "next");
  add(l4_frame(L4Spec{.dst = kVipIpip, .sport = 40006}), "next");
  add(l4_frame(L4Spec{.dst = kVipDscp, .sport = 40008}), "next");
  add(l4_frame(L4Spec{.dst = kVipFull, .sport = 40010}), "next");
  add(l4_frame(L4Spec{.dst = kVipNat, .sport = 40012, .dport = 81}), "other");  // no service
  add(l4_frame(L4Spec{.dst = 0x08080808, .sport = 40014}), "other");            // not a VIP
  add(l4_frame(L4Spec{.dst = kVipUdp, .sport = 40016, .dport = 53, .proto = 17}), "next");
  add(l4_frame(L4Spec{
          .src = kR1, .dst = kClient, .sport = 8080, .dport = 40019, .flags = tcpflag::kAck}),
      "handoff");  // from a NAT real to a port worker 1 owns
  add(l4_frame(L4Spec{
          .src = kR1, .dst = kClient, .sport = 8080, .dport = 40020, .flags = tcpflag::kAck}),
      "other");  // ... and to one of worker 0: an unknown reply is routed as it is
  // Later fragments: to a VIP (no ports to find its flow) and elsewhere.
  add(l4_frame(L4Spec{.dst = kVipNat, .frag = 0x0010, .payload = 40}), "fragment");
  add(l4_frame(L4Spec{.dst = 0x08080808, .frag = 0x0010, .payload = 40}), "other");
  // Neither TCP nor UDP.
  std::vector<uint8_t> icmp = l4_frame(L4Spec{.dst = kVipNat, .proto = 17, .payload = 8});
  icmp[14 + 9] = 1;
  wr16(&icmp[14 + 10], 0);
  wr16(&icmp[14 + 10], ip_cksum(&icmp[14]));
  add(icmp, "other");
  std::vector<rte_mbuf*> ms;
  for (const auto& f : frames) ms.push_back(rig.mbuf(f));
  const Result r = go(rig, 0, ms);
  EXPECT_EQ(r.in, frames.size());
  std::map<std::string, int> n;
  for (const char* w : want) ++n[w];
  EXPECT_EQ(r.c.next, static_cast<uint64_t>(n["next"] + n["other"]));
  EXPECT_EQ(r.c.handoff, static_cast<uint64_t>(n["handoff"]));
  EXPECT_EQ(r.handoff[1].size(), static_cast<size_t>(n["handoff"]));
  EXPECT_EQ(r.drops(LbStage::kNoFlow), static_cast<uint64_t>(n["no_flow"]));
  EXPECT_EQ(r.drops(LbStage::kFragment), static_cast<uint64_t>(n["fragment"]));
  EXPECT_EQ(r.c.drop, static_cast<uint64_t>(n["no_flow"] + n["fragment"]));
  for (size_t i = 0; i < frames.size(); ++i) {
    if (std::string(want[i]) != "other") continue;
    SCOPED_TRACE(i);
    EXPECT_NE(std::find(r.next.begin(), r.next.end(), ms[i]), r.next.end());
    EXPECT_EQ(hex(frame_of(ms[i])), hex(frames[i]));
  }
}

// ---------------------------------------------------------------------------------------------
// ICMP: errors about translated flows are translated (RFC 5508 4), echo to a VIP is answered

TEST_F(LbStageTest, IcmpErrorFromARealReachesTheClientAboutTheVip) {
  make();
  ASSERT_EQ(open_web_flow(rig, 40000), kR3);
  // What the real received (client:40000 -> .13:8080); it quotes 48 bytes, TCP checksum
  // included, in a "fragmentation needed, MTU 1400".
  L4Spec seg;
  seg.dst = kR3;
  seg.dport = 8080;
  seg.flags = tcpflag::kAck;
  seg.payload = 1400;
  L4Spec client_view = seg;
  client_view.dst = kVipNat;
  client_view.dport = 80;
  rte_mbuf* m = next_of(go(rig, 0, icmp_error_frame(kR3, kClient, 3, 4, 1400, l4_frame(seg), 48)));
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(hex(frame_of(m)),
            hex(icmp_error_frame(kVipNat, kClient, 3, 4, 1400, l4_frame(client_view), 48)));
  EXPECT_EQ(meta(m).ip_dst, kClient);
  EXPECT_EQ(stage().counters().icmp_translated, 1u);
  // A short quote (header + 8 bytes, RFC 792's minimum) without the TCP checksum.
  m = next_of(go(rig, 0, icmp_error_frame(kR3, kClient, 3, 4, 1400, l4_frame(seg), 28)));
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(hex(frame_of(m)),
            hex(icmp_error_frame(kVipNat, kClient, 3, 4, 1400, l4_frame(client_view), 28)));
}

TEST_F(LbStageTest, IcmpErrorAboutAFullNatFlowReachesTheClient) {
  make();
  L4Spec syn;
  syn.dst = kVipFull;
  rte_mbuf* m = next_of(go(rig, 0, l4_frame(syn)));
  ASSERT_NE(m, nullptr);
  const uint32_t real = dst_of(m);
  const uint16_t port = sport_of(m);
  L4Spec seg;  // as the real received it
  seg.src = kSnat;
  seg.sport = port;
  seg.dst = real;
  seg.flags = tcpflag::kAck;
  seg.payload = 1400;
  L4Spec client_view = seg;
  client_view.src = kClient;
  client_view.sport = 40000;
  client_view.dst = kVipFull;
  m = next_of(go(rig, 0, icmp_error_frame(real, kSnat, 3, 4, 1300, l4_frame(seg), 48)));
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(hex(frame_of(m)),
            hex(icmp_error_frame(kVipFull, kClient, 3, 4, 1300, l4_frame(client_view), 48)));
  EXPECT_EQ(meta(m).ip_dst, kClient);
}

TEST_F(LbStageTest, IcmpErrorFromTheClientReachesTheReal) {
  make();
  ASSERT_EQ(open_web_flow(rig, 40000), kR3);
  // The client could not take a reply it got from VIP:80 and says so.
  L4Spec got = tcp_seg(kVipNat, 80, kClient, 40000, tcpflag::kAck);
  got.payload = 100;
  L4Spec sent = got;  // what the real sent
  sent.src = kR3;
  sent.sport = 8080;
  rte_mbuf* m = next_of(go(rig, 0, icmp_error_frame(kClient, kVipNat, 3, 3, 0, l4_frame(got), 28)));
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(hex(frame_of(m)), hex(icmp_error_frame(kClient, kR3, 3, 3, 0, l4_frame(sent), 28)));
  EXPECT_EQ(meta(m).ip_dst, kR3);
}

TEST_F(LbStageTest, IcmpErrorAboutAnUnknownFlowIsRoutedUnchanged) {
  make();
  L4Spec seg;
  seg.dst = kR3;
  seg.dport = 8080;
  seg.flags = tcpflag::kAck;
  const std::vector<uint8_t> f = icmp_error_frame(kR3, kClient, 3, 4, 1400, l4_frame(seg), 28);
  rte_mbuf* m = next_of(go(rig, 0, f));
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(hex(frame_of(m)), hex(f));
  EXPECT_EQ(stage().counters().icmp_translated, 0u);
}

TEST_F(LbStageTest, EchoRequestToAVipIsAnswered) {
  make();
  Result r = go(rig, 0, icmp_echo_frame(kClient, kVipDsr, 8, 7, 1, 56));
  ASSERT_EQ(r.tx.size(), 1u);
  EXPECT_EQ(r.c.reply, 1u);
  std::vector<uint8_t> want = icmp_echo_frame(kVipDsr, kClient, 0, 7, 1, 56);
  std::memcpy(want.data(), kHostMac.b.data(), 6);  // back to the sender's MAC
  std::memcpy(want.data() + 6, kPortMac.b.data(), 6);
  EXPECT_EQ(hex(frame_of(r.tx[0])), hex(want));
  EXPECT_EQ(stage().counters().echo_replies, 1u);
  // Not a VIP: routed untouched.
  const std::vector<uint8_t> other = icmp_echo_frame(kClient, 0x08080808, 8, 7, 2, 56);
  rte_mbuf* m = next_of(go(rig, 0, other));
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(hex(frame_of(m)), hex(other));
}

TEST_F(LbStageTest, IcmpErrorIsHandedToTheFlowsOwner) {
  make({}, 2);
  L4Spec syn;
  syn.dst = kVipNat;
  syn.sport = 40001;  // owner 1
  ASSERT_NE(next_of(go(rig, 1, l4_frame(syn))), nullptr);
  L4Spec seg;
  seg.sport = 40001;
  seg.dst = kR3;
  seg.dport = 8080;
  seg.flags = tcpflag::kAck;
  rte_mbuf* m = rig.mbuf(icmp_error_frame(kR3, kClient, 3, 4, 1400, l4_frame(seg), 28));
  const Result r = go(rig, 0, {m});
  ASSERT_EQ(r.handoff[1].size(), 1u);
  ASSERT_EQ(next_of(go(rig, 1, {m})), m);
  L4Spec client_view = seg;
  client_view.dst = kVipNat;
  client_view.dport = 80;
  EXPECT_EQ(hex(frame_of(m)),
            hex(icmp_error_frame(kVipNat, kClient, 3, 4, 1400, l4_frame(client_view), 28)));
  EXPECT_EQ(stage(0).counters().icmp_translated, 0u);
  EXPECT_EQ(stage(1).counters().icmp_translated, 1u);
}

// ---------------------------------------------------------------------------------------------
// A client reusing its port: a SYN on a closed flow's tuple starts a new flow

TEST_F(LbStageTest, SynOnAClosedFlowsTupleIsScheduledAfresh) {
  make();
  ASSERT_EQ(open_web_flow(rig, 40000), kR3);
  L4Spec fin;
  fin.dst = kVipNat;
  fin.flags = tcpflag::kFin | tcpflag::kAck;
  ASSERT_NE(next_of(go(rig, 0, l4_frame(fin))), nullptr);  // FIN_WAIT
  L4Spec rfin = tcp_seg(kR3, 8080, kClient, 40000, tcpflag::kFin | tcpflag::kAck);
  ASSERT_NE(next_of(go(rig, 0, l4_frame(rfin))), nullptr);  // LAST_ACK
  ASSERT_NE(web_ack(rig, 40000), nullptr);                  // TIME_WAIT
  rte_mbuf* m = next_of(go(rig, 0, l4_frame(L4Spec{.dst = kVipNat})));
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(dst_of(m), kR2);  // the scheduler's next choice, not the old flow's real
  EXPECT_EQ(stage().counters().new_flows, 2u);
  EXPECT_EQ(stage().table().size(), 1u);
  // The new flow's reply comes from .12 and is translated; one from .13 no longer is.
  L4Spec rep = tcp_seg(kR2, 8080, kClient, 40000, tcpflag::kSyn | tcpflag::kAck);
  m = next_of(go(rig, 0, l4_frame(rep)));
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(src_of(m), kVipNat);
  rep.src = kR3;
  m = next_of(go(rig, 0, l4_frame(rep)));
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(src_of(m), kR3);
}

// ---------------------------------------------------------------------------------------------
// Regressions: defects these tests found in the stage (each failed before its fix).

// A TCP segment whose datagram ends inside the TCP header (IP total length 30: ports, sequence
// number, half the ACK number), padded by Ethernet to the 60-byte minimum with bytes that look
// like the SYN flag. The stage used to read the flags (and, for shorter datagrams, the ports)
// past the datagram's end, take it for a SYN, create a flow, and only then have nat_dst()
// refuse the packet: the drop left a flow (and a least-connection count) behind.
TEST_F(LbStageTest, TruncatedSegmentLeavesNoFlow) {
  make();
  std::vector<uint8_t> f = l4_frame(L4Spec{.dst = kVipNat});  // 54 bytes, flags = SYN
  wr16(&f[14 + 2], 30);
  wr16(&f[14 + 10], 0);
  wr16(&f[14 + 10], ip_cksum(&f[14]));
  f.resize(60, 0);
  rte_mbuf* m = rig.mbuf(f);
  ASSERT_EQ(meta(m).parse, ParseStatus::kOk);
  ASSERT_EQ(meta(m).l3_len, 30);
  const Result r = go(rig, 0, {m});
  EXPECT_EQ(r.drops(LbStage::kBadPacket), 1u);
  EXPECT_EQ(stage().table().size(), 0u);
  EXPECT_EQ(stage().counters().new_flows, 0u);
  // A UDP datagram of 2 bytes after the IP header: its destination port is padding.
  std::vector<uint8_t> u = l4_frame(L4Spec{.dst = kVipUdp, .dport = 53, .proto = 17});
  wr16(&u[14 + 2], 22);
  wr16(&u[14 + 10], 0);
  wr16(&u[14 + 10], ip_cksum(&u[14]));
  u.resize(60, 0);
  const Result ru = go(rig, 0, u);
  EXPECT_EQ(ru.c.next + ru.drops(LbStage::kBadPacket), 1u);
  EXPECT_EQ(stage().table().size(), 0u);
  EXPECT_EQ(stage().counters().new_flows, 0u);
}

// on_real_down = reset erases a flow in the middle of a burst, while later packets of the same
// burst still hold the Hit that lookup_bulk returned for it. A new flow created between them
// reuses the freed record; the stale Hit used to send the old flow's packet to the new flow's
// real.
TEST_F(LbStageTest, ResetInABurstDoesNotLeakAFlowIntoANewOne) {
  Knobs k;
  k.on_down = "reset";
  make(k);
  ASSERT_EQ(open_web_flow(rig, 40000), kR3);
  rig.set_up("web", "10.20.0.13", false);
  L4Spec ack;
  ack.dst = kVipNat;
  ack.sport = 40000;
  ack.flags = tcpflag::kAck;
  rte_mbuf* a1 = rig.mbuf(l4_frame(ack));
  rte_mbuf* syn = rig.mbuf(l4_frame(L4Spec{.src = kClient2, .dst = kVipNat, .sport = 50000}));
  rte_mbuf* a2 = rig.mbuf(l4_frame(ack));
  const Result r = go(rig, 0, {a1, syn, a2});
  EXPECT_EQ(std::count(r.next.begin(), r.next.end(), syn), 1);
  EXPECT_EQ(std::count(r.next.begin(), r.next.end(), a2), 0)
      << "the reset flow's second segment went to " << std::hex << dst_of(a2);
  EXPECT_EQ(r.c.drop, 2u);
  EXPECT_EQ(stage().table().size(), 1u);
}

// A SYN on the tuple of an ESTABLISHED flow is not a reused port (the client has not closed
// it): RFC 5961 4 has the server answer it with a challenge ACK, and nf/lb/tcp_state.h treats
// it as invalid. Rescheduling it (as the stage once did for every state past SYN_RECV) lets an
// off-path sender who guesses a client's port (at most 64 k spoofed SYNs) move the
// connection to another real, which resets it. IPVS's conn_reuse_mode reschedules only
// TIME_WAIT (and FIN_WAIT of DR/tunnel flows).
TEST_F(LbStageTest, SynInsideAnEstablishedFlowDoesNotMoveIt) {
  make();
  ASSERT_EQ(open_web_flow(rig, 40000), kR3);
  rte_mbuf* m = next_of(go(rig, 0, l4_frame(L4Spec{.dst = kVipNat})));
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(dst_of(m), kR3);
  EXPECT_EQ(stage().counters().new_flows, 1u);
  m = web_ack(rig, 40000);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(dst_of(m), kR3);
}

// An ICMP datagram too short for the 8-byte header of an echo request: 0 bytes (the type is
// Ethernet padding) or 4 (type, code, checksum; identifier and sequence number in padding).
// Answering it reads and writes past the datagram; hosts drop it (Linux icmp_rcv needs the
// whole header).
TEST_F(LbStageTest, IcmpShorterThanItsHeaderIsNotAnswered) {
  make();
  for (uint16_t tl : {20, 24}) {
    SCOPED_TRACE(tl);
    std::vector<uint8_t> f = icmp_echo_frame(kClient, kVipNat, 8, 7, 1, 18);  // 60 bytes
    wr16(&f[14 + 2], tl);
    wr16(&f[14 + 10], 0);
    wr16(&f[14 + 10], ip_cksum(&f[14]));
    rte_mbuf* m = rig.mbuf(f);
    ASSERT_EQ(meta(m).parse, ParseStatus::kOk);
    const Result r = go(rig, 0, {m});
    EXPECT_EQ(r.tx.size(), 0u);
    EXPECT_EQ(hex(frame_of(m)), hex(f));
  }
  EXPECT_EQ(stage().counters().echo_replies, 0u);
}

// An echo request whose identifier, sequence number and data are all zero: the reply's ICMP
// message is all zero words, whose only valid checksum is 0xffff (RFC 1071: the complement of
// +0). RFC 1624 eqn. 3 applied to the type change yields 0x0000 here (x + ~x is -0, not +0),
// which every receiver's check (the sum must fold to 0xffff) rejects.
TEST_F(LbStageTest, EchoReplyToAnAllZeroRequestHasAValidChecksum) {
  make();
  const Result r = go(rig, 0, icmp_echo_frame(kClient, kVipNat, 8, 0, 0, 0));
  ASSERT_EQ(r.tx.size(), 1u);
  std::vector<uint8_t> want = icmp_echo_frame(kVipNat, kClient, 0, 0, 0, 0);
  std::memcpy(want.data(), kHostMac.b.data(), 6);
  std::memcpy(want.data() + 6, kPortMac.b.data(), 6);
  EXPECT_EQ(rd16(&want[14 + 20 + 2]), 0xffff);
  EXPECT_EQ(hex(frame_of(r.tx[0])), hex(want));
}

}  // namespace
}  // namespace nf::test
