// DHCP request frames as clients and relays send them: golden fixtures for the DHCP stage's
// tests and benchmarks.
#pragma once

#include <rte_udp.h>

#include <vector>

#include "nf/dhcp/wire.h"
#include "tests/common/packet_builder.h"

namespace nf::test {

struct DhcpFrame {
  uint8_t type = dhcp::kDiscover;
  MacAddr chaddr{{0x02, 0xcc, 0, 0, 0, 1}};
  uint32_t xid = 0x11223344;
  uint32_t ciaddr = 0;
  uint32_t giaddr = 0;
  uint32_t requested = 0;  // option 50
  uint32_t server_id = 0;  // option 54
  bool broadcast = false;
  bool rapid = false;
  std::vector<uint8_t> params{1, 3, 6, 15, 28, 51, 58, 59};
  std::vector<uint8_t> client_id;   // option 61 value
  std::vector<uint8_t> relay_info;  // option 82 value
  uint32_t ip_src = 0;
  uint32_t ip_dst = 0xffffffffu;
  MacAddr eth_dst = kBroadcast;

  std::vector<uint8_t> build() const {
    std::vector<uint8_t> d(dhcp::off::kOptions, 0);
    d[0] = 1;
    d[1] = 1;
    d[2] = 6;
    d[3] = giaddr ? 1 : 0;
    std::memcpy(&d[4], &xid, 4);
    if (broadcast) dhcp::wr16(&d[dhcp::off::kFlags], dhcp::kFlagBroadcast);
    dhcp::wr32(&d[dhcp::off::kCiaddr], ciaddr);
    dhcp::wr32(&d[dhcp::off::kGiaddr], giaddr);
    std::memcpy(&d[dhcp::off::kChaddr], chaddr.b.data(), 6);
    dhcp::wr32(&d[dhcp::off::kOptions - 4], dhcp::kMagic);
    auto opt = [&](uint8_t code, const std::vector<uint8_t>& v) {
      d.push_back(code);
      d.push_back(static_cast<uint8_t>(v.size()));
      d.insert(d.end(), v.begin(), v.end());
    };
    auto be = [](uint32_t x) {
      return std::vector<uint8_t>{static_cast<uint8_t>(x >> 24), static_cast<uint8_t>(x >> 16),
                                  static_cast<uint8_t>(x >> 8), static_cast<uint8_t>(x)};
    };
    opt(dhcp::opt::kMsgType, {type});
    if (!client_id.empty()) opt(dhcp::opt::kClientId, client_id);
    if (requested) opt(dhcp::opt::kRequestedIp, be(requested));
    if (server_id) opt(dhcp::opt::kServerId, be(server_id));
    if (rapid) opt(dhcp::opt::kRapidCommit, {});
    if (!params.empty()) opt(dhcp::opt::kParamList, params);
    if (!relay_info.empty()) opt(dhcp::opt::kRelayInfo, relay_info);
    d.push_back(dhcp::opt::kEnd);
    if (d.size() < dhcp::kBootpMinLen) d.resize(dhcp::kBootpMinLen, 0);

    Ip4Opts o;
    o.src = ip_src;
    o.dst = ip_dst;
    o.payload = static_cast<uint16_t>(sizeof(rte_udp_hdr) + d.size());
    const MacAddr src = giaddr ? kHostMac : chaddr;
    std::vector<uint8_t> f = PacketBuilder().eth(eth_dst, src, RTE_ETHER_TYPE_IPV4).ipv4(o).build();
    auto* u = reinterpret_cast<rte_udp_hdr*>(&f[14 + 20]);
    u->src_port = rte_cpu_to_be_16(giaddr ? dhcp::kServerPort : dhcp::kClientPort);
    u->dst_port = rte_cpu_to_be_16(dhcp::kServerPort);
    std::memcpy(&f[14 + 20 + 8], d.data(), d.size());
    return f;
  }
};

}  // namespace nf::test
