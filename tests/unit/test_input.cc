// Golden packet fixtures for parse_frame() and the input stage: each frame kind, its parse
// status, and the single outcome (next, punt or a named drop) the stage gives it.
#include <gtest/gtest.h>

#include <string>

#include "pipelines/ip4/input_stage.h"
#include "tests/common/fake_mbuf.h"
#include "tests/common/packet_builder.h"

namespace nf::test {
namespace {

using ip4::InputStage;

struct Fixture {
  std::string name;
  std::vector<uint8_t> frame;
  ParseStatus parse;
  // Expected outcome: "next", "punt:<reason>", or "drop:<reason name>".
  std::string outcome;
};

std::vector<uint8_t> ip_frame(Ip4Opts o, const MacAddr& dst = kPortMac) {
  return PacketBuilder().eth(dst, kHostMac, RTE_ETHER_TYPE_IPV4).ipv4(o).build();
}

std::vector<Fixture> fixtures() {
  std::vector<Fixture> f;
  f.push_back({"udp", ip_frame({}), ParseStatus::kOk, "next"});
  {
    Ip4Opts o;
    o.options_len = 8;
    f.push_back({"ip_options", ip_frame(o), ParseStatus::kOk, "next"});
  }
  {
    Ip4Opts o;
    o.frag = RTE_IPV4_HDR_MF_FLAG;
    f.push_back({"first_fragment", ip_frame(o), ParseStatus::kOk, "next"});
    o.frag = 100;
    f.push_back({"later_fragment", ip_frame(o), ParseStatus::kOk, "next"});
  }
  f.push_back(
      {"broadcast_ip", ip_frame({.dst = 0xffffffff}, kBroadcast), ParseStatus::kOk, "next"});
  f.push_back({"runt", std::vector<uint8_t>(10, 0xff), ParseStatus::kRunt, "drop:runt"});
  f.push_back({"not_for_us", ip_frame({}, MacAddr{{0x02, 9, 9, 9, 9, 9}}), ParseStatus::kNotForUs,
               "drop:not_for_us"});
  f.push_back({"arp_request",
               PacketBuilder()
                   .eth(kBroadcast, kHostMac, RTE_ETHER_TYPE_ARP)
                   .arp(RTE_ARP_OP_REQUEST, kHostMac, 0x0a0a0064, 0x0a0a0001)
                   .build(),
               ParseStatus::kArp, "punt:arp"});
  f.push_back({"arp_truncated",
               PacketBuilder()
                   .eth(kBroadcast, kHostMac, RTE_ETHER_TYPE_ARP)
                   .arp(RTE_ARP_OP_REQUEST, kHostMac, 0x0a0a0064, 0x0a0a0001)
                   .truncate(30)
                   .build(),
               ParseStatus::kBadArp, "drop:bad_arp"});
  f.push_back({"ipv6",
               PacketBuilder().eth(kPortMac, kHostMac, RTE_ETHER_TYPE_IPV6).bytes(40).build(),
               ParseStatus::kIpv6, "drop:ipv6"});
  f.push_back({"vlan",
               PacketBuilder().eth(kPortMac, kHostMac, RTE_ETHER_TYPE_VLAN).bytes(40).build(),
               ParseStatus::kVlan, "drop:vlan"});
  f.push_back({"unknown_ethertype",
               PacketBuilder().eth(kPortMac, kHostMac, 0x88b5).bytes(40).build(),
               ParseStatus::kUnknownEthertype, "drop:unknown_ethertype"});
  f.push_back({"ip_truncated_header", PacketBuilder(ip_frame({})).truncate(14 + 12).build(),
               ParseStatus::kIpTruncated, "drop:ip_truncated"});
  f.push_back({"ip_total_length_beyond_frame",
               PacketBuilder(ip_frame({})).truncate(14 + 30).build(), ParseStatus::kIpTruncated,
               "drop:ip_truncated"});
  f.push_back({"ip_bad_version", PacketBuilder(ip_frame({})).set(14, 0x65).build(),
               ParseStatus::kIpBadVersion, "drop:ip_bad_version"});
  f.push_back({"ihl_below_5", PacketBuilder(ip_frame({})).set(14, 0x44).build(),
               ParseStatus::kIpBadIhl, "drop:ip_bad_ihl"});
  f.push_back({"ihl_beyond_packet", PacketBuilder(ip_frame({.payload = 8})).set(14, 0x4f).build(),
               ParseStatus::kIpBadIhl, "drop:ip_bad_ihl"});
  {
    auto b = ip_frame({});
    b[14 + 2] = 0;  // total length 10 < header
    b[14 + 3] = 10;
    f.push_back(
        {"ip_total_length_below_header", b, ParseStatus::kIpBadLength, "drop:ip_bad_length"});
  }
  f.push_back({"ip_bad_checksum", PacketBuilder(ip_frame({})).set(14 + 10, 0xde).build(),
               ParseStatus::kIpBadChecksum, "drop:ip_bad_checksum"});
  f.push_back({"martian_source", ip_frame({.src = 0x7f000001}), ParseStatus::kMartianSource,
               "drop:martian_source"});
  f.push_back({"multicast_source", ip_frame({.src = 0xe0000001}), ParseStatus::kMartianSource,
               "drop:martian_source"});
  f.push_back({"martian_destination", ip_frame({.dst = 0x00010203}),
               ParseStatus::kMartianDestination, "drop:martian_destination"});
  f.push_back({"class_e_destination", ip_frame({.dst = 0xf0000001}),
               ParseStatus::kMartianDestination, "drop:martian_destination"});
  f.push_back(
      {"oversized", ip_frame({.payload = 1600}), ParseStatus::kOversized, "drop:oversized"});
  return f;
}

std::string outcome_of(const StageCounters& c, rte_mbuf* m) {
  if (c.next) return "next";
  if (c.punt) return std::string("punt:") + kPuntReasonNames[static_cast<int>(meta(m).punt)];
  for (size_t r = 0; r < InputStage::kDropCount; ++r)
    if (c.drops[r]) return "drop:" + std::string(InputStage::kDropNames[r]);
  return "none";
}

TEST(InputStage, EveryFrameKindHasItsOutcome) {
  for (const Fixture& fx : fixtures()) {
    SCOPED_TRACE(fx.name);
    FakeMbuf fm(fx.frame);
    const bool clean = fm.parse(kPortMac);
    EXPECT_EQ(meta(fm.mbuf()).parse, fx.parse);
    EXPECT_EQ(clean,
              fx.parse == ParseStatus::kOk && !(meta(fm.mbuf()).flags & meta_flags::kPadded));
    InputStage st;
    Emit out;
    StageCounters c{};
    out.begin_stage(&c);
    Burst b;
    b.n = 1;
    b.pkts[0] = fm.mbuf();
    st.process(b, StageCtx{}, out);
    out.end_stage();
    EXPECT_EQ(outcome_of(c, fm.mbuf()), fx.outcome);
    // Exactly one outcome per packet.
    EXPECT_EQ(c.next + c.tx + c.reply + c.punt + c.drop, 1u);
  }
}

TEST(InputStage, BurstConservesPacketsAndTrimsPadding) {
  auto fx = fixtures();
  std::vector<std::unique_ptr<FakeMbuf>> ms;
  Burst b;
  b.n = 0;
  for (const Fixture& f : fx) {
    ms.push_back(std::make_unique<FakeMbuf>(f.frame));
    ms.back()->parse(kPortMac);
    b.pkts[b.n++] = ms.back()->mbuf();
  }
  // A minimum-size Ethernet frame carrying 28 bytes of IP has 4 bytes of padding.
  auto padded = ip_frame({.payload = 8});
  padded.resize(padded.size() + 4, 0);
  ms.push_back(std::make_unique<FakeMbuf>(padded));
  ms.back()->parse(kPortMac);
  b.pkts[b.n++] = ms.back()->mbuf();

  InputStage st;
  Emit out;
  StageCounters c{};
  out.begin_stage(&c);
  const uint16_t n = b.n;
  st.process(b, StageCtx{}, out);
  out.end_stage();
  uint64_t drops = 0;
  for (uint64_t d : c.drops) drops += d;
  EXPECT_EQ(c.next + c.punt + c.drop, n);
  EXPECT_EQ(drops, c.drop);
  EXPECT_EQ(out.next_burst().n, c.next);
  EXPECT_EQ(out.punts().n, c.punt);
  EXPECT_EQ(out.drops().n, c.drop);
  EXPECT_EQ(ms.back()->mbuf()->pkt_len, 14u + 28u);
}

// The worker marks a burst clean when every frame parsed as valid unpadded IPv4; the stage then
// passes it on whole, with the same outcome the per-packet path gives.
TEST(InputStage, CleanBurstMovesWhole) {
  std::vector<std::unique_ptr<FakeMbuf>> ms;
  Burst b;
  b.n = 0;
  b.clean = true;
  for (int i = 0; i < kMaxBurst; ++i) {
    ms.push_back(
        std::make_unique<FakeMbuf>(ip_frame({.dst = 0x0a140000u + static_cast<uint32_t>(i)})));
    b.clean &= ms.back()->parse(kPortMac);
    b.pkts[b.n++] = ms.back()->mbuf();
  }
  ASSERT_TRUE(b.clean);
  InputStage st;
  Emit out;
  StageCounters c{};
  out.begin_stage(&c);
  st.process(b, StageCtx{}, out);
  out.end_stage();
  EXPECT_EQ(c.next, static_cast<uint64_t>(kMaxBurst));
  ASSERT_EQ(out.next_burst().n, kMaxBurst);
  for (int i = 0; i < kMaxBurst; ++i) EXPECT_EQ(out.next_burst().pkts[i], b.pkts[i]);
  // One padded frame makes the burst unclean.
  auto padded = ip_frame({.payload = 8});
  padded.resize(padded.size() + 4, 0);
  FakeMbuf pm(padded);
  EXPECT_FALSE(pm.parse(kPortMac));
}

}  // namespace
}  // namespace nf::test
