// The only place nf talks to EAL and ethdev.
//
// Ports are identified everywhere else by their index in the configuration ("port 0" is the
// first `ports` entry); this layer maps that index to the ethdev port id. Each worker owns RX
// queue w and TX queue w of every port; the management lcore transmits through the workers
// (inject rings), so every PMD works with exactly one RX and one TX queue per worker.
#pragma once

#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "nf/core/stage.h"

namespace nf::glue {

// Builds the EAL argument vector for this configuration (lcore map, vdevs or PCI allow-list,
// memory mode) and initialises EAL. Returns an error message or "".
std::string eal_init(const Config& c, const char* argv0, std::vector<std::string>& args_used);
std::vector<std::string> eal_args(const Config& c, const char* argv0, bool no_huge, unsigned ncpus);

struct PortStats {
  uint64_t ipackets, opackets, ibytes, obytes, imissed, ierrors, oerrors, rx_nombuf;
  bool link_up;
  uint32_t speed_mbps;
};

class Ports {
 public:
  // Creates the mbuf pool and configures/starts every port. Returns "" or an error.
  std::string setup(const Config& c);
  void stop();

  uint16_t count() const { return static_cast<uint16_t>(ids_.size()); }
  uint16_t ethdev_id(uint16_t port) const { return ids_[port]; }
  MacAddr mac(uint16_t port) const;
  std::string driver(uint16_t port) const;
  bool rss(uint16_t port) const { return rss_[port]; }
  PortStats stats(uint16_t port) const;
  rte_mempool* pool() const { return pool_; }
  rte_mempool* indirect_pool() const { return indirect_; }
  // The largest frame a buffer holds (fixed at start: the mempool is init-only).
  uint32_t max_frame_capacity() const { return data_room_; }
  // The device MTU on reload; "" or why the device refused (nf still enforces it in software).
  std::string set_mtu(uint16_t port, uint16_t mtu);

  uint16_t rx(uint16_t port, uint16_t q, rte_mbuf** pkts, uint16_t n) const {
    return rte_eth_rx_burst(ids_[port], q, pkts, n);
  }
  uint16_t tx(uint16_t port, uint16_t q, rte_mbuf** pkts, uint16_t n) const {
    return rte_eth_tx_burst(ids_[port], q, pkts, n);
  }

 private:
  std::vector<uint16_t> ids_;
  std::vector<bool> rss_;
  rte_mempool* pool_ = nullptr;
  rte_mempool* indirect_ = nullptr;
  uint32_t data_room_ = 0;
};

// The largest frame a configuration needs buffers for (one segment per frame).
uint32_t max_frame_size(const Config& c);

}  // namespace nf::glue
