// The immutable view of the configuration that workers read. Built and validated on the
// management lcore, published by RCU (Publisher), replaced whole on reload. The only part that
// changes after publication is the FIB's neighbour /32s, which rte_lpm supports with one writer
// and concurrent readers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "config/config.h"
#include "nf/core/stage.h"
#include "nf/neigh/adj_table.h"
#include "nf/route/fib.h"

namespace nf {

struct PortView {
  MacAddr mac;
  uint16_t mtu;
};

struct Snapshot {
  uint64_t generation = 0;
  std::shared_ptr<const Config> config;
  std::unique_ptr<Fib> fib;
  std::vector<RibEntry> rib;  // what the FIB was built from (plus neighbour /32s added later)
  const AdjTable* adj = nullptr;
  uint16_t nb_ports = 0;
  PortView ports[kMaxPorts]{};
};

}  // namespace nf
