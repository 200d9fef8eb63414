// Golden packet fixtures for ip4_forward: input frame -> outcome and output bytes.
#include <gtest/gtest.h>

#include "nf/net/checksum.h"
#include "nf/runtime/snapshot.h"
#include "pipelines/ip4/forward_stage.h"
#include "pipelines/ip4/input_stage.h"
#include "tests/common/fake_mbuf.h"
#include "tests/common/packet_builder.h"

namespace nf::test {
namespace {

using ip4::ForwardStage;

const MacAddr kSrvPortMac{{0x02, 0, 0, 0, 0, 0x02}};
const MacAddr kServerMac{{0x02, 0, 0, 0, 0x0b, 0x0b}};
const MacAddr kGwMac{{0x02, 0, 0, 0, 0x09, 0x09}};

class ForwardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string text = R"(
lcores = { management = 0; workers = [1]; };
ports = ( { name = "lan"; device = "net_null0"; addresses = ["10.10.0.1/24"]; },
          { name = "srv"; device = "net_null1"; mtu = 1000; addresses = ["10.20.0.1/24"]; } );
routes = ( { prefix = "192.0.2.0/24"; via = "10.20.0.9"; },
           { prefix = "198.51.100.0/24"; blackhole = true; } );
)";
    cfg_ = std::get<Config>(load_config("t.conf", &text));
    snap_.adj = &adj_;
    snap_.nb_ports = 2;
    snap_.ports[0] = PortView::make(kPortMac, 1500);
    snap_.ports[1] = PortView::make(kSrvPortMac, 1000);
    snap_.min_mtu = 1000;
    snap_.rib = build_rib(cfg_, [](uint32_t, uint16_t) { return 5u; });
    std::string err;
    static int n = 0;
    snap_.fib = Fib::create("t_fwd_" + std::to_string(n++), snap_.rib, 64, nullptr, err);
    ASSERT_TRUE(snap_.fib) << err;
    // 10.20.0.11 resolved (slot 3, with its /32); the gateway 10.20.0.9 resolved in slot 5.
    adj_.publish(3, kServerMac, 1);
    snap_.fib->add({0x0a14000b, 32}, nh::make(nh::kAdj, 3));
    adj_.publish(5, kGwMac, 1);
  }

  // Runs one frame through input + ip4_forward; returns the outcome string.
  std::string run(FakeMbuf& fm) {
    fm.parse(kPortMac);
    ip4::InputStage in;
    ForwardStage fwd;
    Emit out;
    out.set_nb_ports(2);
    StageCounters ci{}, cf{};
    StageCtx ctx{&snap_, 0, 0};
    Burst b;
    b.n = 1;
    b.pkts[0] = fm.mbuf();
    out.begin_stage(&ci);
    in.process(b, ctx, out);
    out.end_stage();
    if (ci.next != 1) return "input:not-next";
    Burst& from_input = out.next_burst();  // begin_stage() below writes to the other buffer
    out.begin_stage(&cf);
    fwd.process(from_input, ctx, out);
    out.end_stage();
    EXPECT_EQ(cf.next + cf.tx + cf.reply + cf.punt + cf.drop, 1u);
    if (cf.tx) {
      for (uint16_t p = 0; p < 2; ++p)
        if (out.txbuf(p).n) return "tx:" + std::to_string(p);
    }
    if (cf.punt)
      return std::string("punt:") + kPuntReasonNames[static_cast<int>(meta(fm.mbuf()).punt)];
    for (size_t r = 0; r < ForwardStage::kDropCount; ++r)
      if (cf.drops[r]) return "drop:" + std::string(ForwardStage::kDropNames[r]);
    return "none";
  }

  Config cfg_;
  AdjTable adj_{16};
  Snapshot snap_;
};

TEST_F(ForwardTest, ForwardsAndRewrites) {
  auto in = PacketBuilder::udp_frame(0x0a14000b, 64);
  FakeMbuf fm(in);
  EXPECT_EQ(run(fm), "tx:1");
  auto outb = fm.bytes();
  auto* eth = reinterpret_cast<rte_ether_hdr*>(outb.data());
  EXPECT_EQ(0, memcmp(eth->dst_addr.addr_bytes, kServerMac.b.data(), 6));
  EXPECT_EQ(0, memcmp(eth->src_addr.addr_bytes, kSrvPortMac.b.data(), 6));
  auto* ip = reinterpret_cast<rte_ipv4_hdr*>(outb.data() + 14);
  EXPECT_EQ(ip->time_to_live, 63);
  EXPECT_TRUE(ipv4_cksum_ok(ip));
  // Only the MACs, the TTL and the checksum changed.
  in[14 + 8] = 63;
  in[14 + 10] = outb[14 + 10];
  in[14 + 11] = outb[14 + 11];
  std::copy(outb.begin(), outb.begin() + 12, in.begin());
  EXPECT_EQ(outb, in);
}

TEST_F(ForwardTest, ViaGateway) {
  FakeMbuf fm(PacketBuilder::udp_frame(0xc0000205));
  EXPECT_EQ(run(fm), "tx:1");
  EXPECT_EQ(0, memcmp(fm.bytes().data(), kGwMac.b.data(), 6));
}

TEST_F(ForwardTest, Outcomes) {
  struct Case {
    const char* name;
    std::vector<uint8_t> frame;
    const char* outcome;
  };
  Ip4Opts big;
  big.dst = 0x0a14000b;
  big.payload = 1200;  // > srv MTU 1000
  Ip4Opts big_df = big;
  big_df.frag = RTE_IPV4_HDR_DF_FLAG;
  Ip4Opts mcast;
  mcast.dst = 0xe0000005;
  Ip4Opts bcast_l2;
  bcast_l2.dst = 0x0a14000b;
  std::vector<Case> cases = {
      {"local", PacketBuilder::udp_frame(0x0a0a0001), "punt:local"},
      {"other local address", PacketBuilder::udp_frame(0x0a140001), "punt:local"},
      {"subnet broadcast", PacketBuilder::udp_frame(0x0a1400ff), "punt:local"},
      {"no route", PacketBuilder::udp_frame(0x08080808), "punt:no_route"},
      {"ttl 1", PacketBuilder::udp_frame(0x0a14000b, 1), "punt:ttl_exceeded"},
      {"ttl 0", PacketBuilder::udp_frame(0x0a14000b, 0), "punt:ttl_exceeded"},
      {"ttl 1 to us is fine", PacketBuilder::udp_frame(0x0a0a0001, 1), "punt:local"},
      {"unresolved host", PacketBuilder::udp_frame(0x0a14000c), "punt:neigh_miss"},
      {"blackhole", PacketBuilder::udp_frame(0xc6336401), "drop:blackhole"},
      {"too big, DF",
       PacketBuilder().eth(kPortMac, kHostMac, RTE_ETHER_TYPE_IPV4).ipv4(big_df).build(),
       "punt:frag_needed"},
      {"too big", PacketBuilder().eth(kPortMac, kHostMac, RTE_ETHER_TYPE_IPV4).ipv4(big).build(),
       "punt:fragment"},
      {"multicast",
       PacketBuilder().eth(kPortMac, kHostMac, RTE_ETHER_TYPE_IPV4).ipv4(mcast).build(),
       "drop:multicast"},
      {"unicast IP in L2 broadcast",
       PacketBuilder().eth(kBroadcast, kHostMac, RTE_ETHER_TYPE_IPV4).ipv4(bcast_l2).build(),
       "drop:l2_broadcast"},
  };
  for (auto& c : cases) {
    SCOPED_TRACE(c.name);
    FakeMbuf fm(c.frame);
    EXPECT_EQ(run(fm), c.outcome);
  }
}

TEST_F(ForwardTest, InvalidatedAdjacencyPunts) {
  adj_.clear(3);
  FakeMbuf fm(PacketBuilder::udp_frame(0x0a14000b));
  EXPECT_EQ(run(fm), "punt:neigh_miss");
}

}  // namespace
}  // namespace nf::test
