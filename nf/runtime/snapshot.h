// The immutable view of the configuration that workers read. Built and validated on the
// management lcore, published by RCU (Publisher), replaced whole on reload. The only part that
// changes after publication is the FIB's neighbour /32s, which rte_lpm supports with one writer
// and concurrent readers.
#pragma once

#include <rte_ether.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "config/config.h"
#include "nf/core/stage.h"
#include "nf/dhcp/pool.h"
#include "nf/dns/engine.h"
#include "nf/lb/service.h"
#include "nf/nat/runtime.h"
#include "nf/neigh/adj_table.h"
#include "nf/route/fib.h"

namespace nf {

namespace acl {
struct Runtime;  // pipelines/acl/acl_stage.h
}

struct PortView {
  MacAddr mac;
  uint16_t mtu;
  // Bytes 6..13 of an IPv4 frame sent from this port (source MAC, then ethertype 0x0800), so
  // forwarding writes the Ethernet header in two 8-byte stores.
  uint64_t src_and_type;

  static PortView make(const MacAddr& mac, uint16_t mtu) {
    PortView v{mac, mtu, 0};
    uint8_t b[8];
    std::memcpy(b, mac.b.data(), 6);
    b[6] = RTE_ETHER_TYPE_IPV4 >> 8;
    b[7] = RTE_ETHER_TYPE_IPV4 & 0xff;
    std::memcpy(&v.src_and_type, b, 8);
    return v;
  }
};

struct Snapshot {
  uint64_t generation = 0;
  std::shared_ptr<const Config> config;
  std::unique_ptr<Fib> fib;
  std::vector<RibEntry> rib;  // what the FIB was built from (plus neighbour /32s added later)
  const AdjTable* adj = nullptr;
  uint16_t nb_ports = 0;
  uint16_t min_mtu = 0;  // a datagram no longer than this fits every port
  PortView ports[kMaxPorts]{};
  std::shared_ptr<const dhcp::View> dhcp;   // pools, when the dhcp stage is configured
  std::shared_ptr<const dns::Runtime> dns;  // zones and GSLB, when the dns stage is configured
  std::shared_ptr<const lb::Runtime> lb;    // services, when the lb stage is configured
  std::shared_ptr<const nat::Runtime> nat;  // port forwards and PAT, when nat is configured
  std::shared_ptr<const acl::Runtime> acl;  // compiled sets, when an acl group is configured
};

}  // namespace nf
