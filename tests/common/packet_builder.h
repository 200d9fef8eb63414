// Builds test frames field by field (Ethernet, ARP, IPv4 with options, UDP, ICMP), with valid
// checksums unless a test breaks them on purpose. Used by the golden-packet tests and the
// benchmarks alike.
#pragma once

#include <rte_arp.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "nf/net/addr.h"

namespace nf::test {

inline const MacAddr kPortMac{{0x02, 0, 0, 0, 0, 0x01}};
inline const MacAddr kHostMac{{0x02, 0, 0, 0, 0, 0x64}};
inline const MacAddr kBroadcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};

struct Ip4Opts {
  uint32_t src = 0x0a0a0064;  // 10.10.0.100
  uint32_t dst = 0x0a14000b;  // 10.20.0.11
  uint8_t ttl = 64;
  uint8_t proto = IPPROTO_UDP;
  uint16_t frag = 0;        // host order flags+offset field
  uint8_t options_len = 0;  // bytes of NOP options (multiple of 4)
  uint16_t payload = 18;    // bytes after the IP header (UDP header + data)
};

class PacketBuilder {
 public:
  PacketBuilder() = default;
  // Continue from an existing Ethernet/IPv4 frame (to break it on purpose).
  explicit PacketBuilder(std::vector<uint8_t> frame) : b_(std::move(frame)), ip_off_(14) {}
  PacketBuilder& eth(const MacAddr& dst, const MacAddr& src, uint16_t type) {
    size_t o = b_.size();
    b_.resize(o + sizeof(rte_ether_hdr));
    auto* e = reinterpret_cast<rte_ether_hdr*>(&b_[o]);
    std::memcpy(e->dst_addr.addr_bytes, dst.b.data(), 6);
    std::memcpy(e->src_addr.addr_bytes, src.b.data(), 6);
    e->ether_type = rte_cpu_to_be_16(type);
    return *this;
  }
  PacketBuilder& ipv4(const Ip4Opts& o) {
    ip_off_ = b_.size();
    const uint16_t hlen = static_cast<uint16_t>(sizeof(rte_ipv4_hdr) + o.options_len);
    b_.resize(ip_off_ + hlen + o.payload, 0);
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(&b_[ip_off_]);
    ip->version_ihl = static_cast<uint8_t>(0x40 | (hlen / 4));
    ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(hlen + o.payload));
    ip->packet_id = rte_cpu_to_be_16(0x1234);
    ip->fragment_offset = rte_cpu_to_be_16(o.frag);
    ip->time_to_live = o.ttl;
    ip->next_proto_id = o.proto;
    ip->src_addr = rte_cpu_to_be_32(o.src);
    ip->dst_addr = rte_cpu_to_be_32(o.dst);
    std::memset(&b_[ip_off_ + sizeof(rte_ipv4_hdr)], 1, o.options_len);  // NOP options
    if (o.proto == IPPROTO_UDP && o.payload >= sizeof(rte_udp_hdr) && !(o.frag & 0x1fff)) {
      auto* u = reinterpret_cast<rte_udp_hdr*>(&b_[ip_off_ + hlen]);
      u->src_port = rte_cpu_to_be_16(1024);
      u->dst_port = rte_cpu_to_be_16(9);
      u->dgram_len = rte_cpu_to_be_16(o.payload);
    }
    ip->hdr_checksum = 0;
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    return *this;
  }
  PacketBuilder& arp(uint16_t op, const MacAddr& sha, uint32_t sip, uint32_t tip) {
    size_t o = b_.size();
    b_.resize(o + sizeof(rte_arp_hdr), 0);
    auto* a = reinterpret_cast<rte_arp_hdr*>(&b_[o]);
    a->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
    a->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    a->arp_hlen = 6;
    a->arp_plen = 4;
    a->arp_opcode = rte_cpu_to_be_16(op);
    std::memcpy(a->arp_data.arp_sha.addr_bytes, sha.b.data(), 6);
    a->arp_data.arp_sip = rte_cpu_to_be_32(sip);
    a->arp_data.arp_tip = rte_cpu_to_be_32(tip);
    return *this;
  }
  PacketBuilder& bytes(size_t n, uint8_t v = 0) {
    b_.resize(b_.size() + n, v);
    return *this;
  }
  // Byte-level surgery for malformed cases.
  PacketBuilder& set(size_t off, uint8_t v) {
    b_.at(off) = v;
    return *this;
  }
  PacketBuilder& truncate(size_t n) {
    b_.resize(n);
    return *this;
  }
  rte_ipv4_hdr* ip() { return reinterpret_cast<rte_ipv4_hdr*>(&b_[ip_off_]); }
  PacketBuilder& fix_ip_checksum() {
    ip()->hdr_checksum = 0;
    ip()->hdr_checksum = rte_ipv4_cksum(ip());
    return *this;
  }
  std::vector<uint8_t> build() const { return b_; }

  // A routable 64-byte UDP frame from the lab client to `dst`.
  static std::vector<uint8_t> udp_frame(uint32_t dst, uint8_t ttl = 64) {
    Ip4Opts o;
    o.dst = dst;
    o.ttl = ttl;
    return PacketBuilder().eth(kPortMac, kHostMac, RTE_ETHER_TYPE_IPV4).ipv4(o).build();
  }

 private:
  std::vector<uint8_t> b_;
  size_t ip_off_ = 0;
};

}  // namespace nf::test
