#include "drivers-glue/ports.h"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>

#include <algorithm>
#include <fstream>
#include <thread>

#include "nf/runtime/log.h"

namespace nf::glue {

namespace {

// A symmetric Toeplitz key (0x6d5a repeated): both directions of a flow hash to the same
// queue, which the stateful stages of later releases (NAT flow tables) rely on.
uint8_t kSymmetricRssKey[40] = {0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
                                0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
                                0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
                                0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a};

std::string device_name(const std::string& dev) {
  return dev.substr(0, dev.find(','));
}

// af_packet opens one socket per queue pair in one fanout group: it needs exactly as many
// queue pairs as there are workers, or frames hashed to a spare socket are never read.
std::string vdev_arg(const PortConfig& p, size_t workers) {
  std::string d = p.device;
  if (d.rfind("net_af_packet", 0) == 0 && d.find("qpairs=") == std::string::npos)
    d += ",qpairs=" + std::to_string(workers);
  return d;
}

}  // namespace

uint32_t max_frame_size(const Config& c) {
  uint32_t mtu = 1500;
  for (const auto& p : c.ports) mtu = std::max<uint32_t>(mtu, p.mtu);
  return mtu + RTE_ETHER_HDR_LEN + 4;
}

std::vector<std::string> eal_args(const Config& c, const char* argv0, bool no_huge,
                                  unsigned ncpus) {
  std::vector<std::string> a{argv0};
  // lcore L runs on CPU L mod ncpus: configurations written for bigger machines still start.
  std::string map =
      std::to_string(c.management_lcore) + "@" + std::to_string(c.management_lcore % ncpus);
  for (uint32_t w : c.worker_lcores)
    map += "," + std::to_string(w) + "@" + std::to_string(w % ncpus);
  a.push_back("--lcores=" + map);
  a.push_back("--main-lcore=" + std::to_string(c.management_lcore));
  // --no-huge implies legacy memory, which --in-memory refuses; --no-shconf keeps the same
  // "no files left behind" property for that mode.
  a.push_back(no_huge ? "--no-shconf" : "--in-memory");
  bool any_pci = false;
  for (const auto& p : c.ports) {
    if (p.is_vdev()) {
      a.push_back("--vdev=" + vdev_arg(p, c.worker_lcores.size()));
    } else {
      a.push_back("-a");
      a.push_back(p.device);
      any_pci = true;
    }
  }
  if (!any_pci) a.push_back("--no-pci");
  if (no_huge) {
    a.push_back("--no-huge");
    a.push_back("-m");
    a.push_back("1024");
  }
  for (const auto& e : c.eal_args) a.push_back(e);
  return a;
}

std::string eal_init(const Config& c, const char* argv0, std::vector<std::string>& used) {
  bool no_huge = false;
  std::ifstream mode("/run/nf/eal-mem");
  std::string m;
  if (mode >> m && m == "nohuge") {
    no_huge = true;
    log_warn("hugepages unavailable (prepare-host recorded nohuge): starting EAL with --no-huge");
  }
  unsigned ncpus = std::max(1u, std::thread::hardware_concurrency());
  used = eal_args(c, argv0, no_huge, ncpus);
  std::vector<char*> argv;
  for (auto& s : used) argv.push_back(s.data());
  argv.push_back(nullptr);
  int rc = rte_eal_init(static_cast<int>(used.size()), argv.data());
  if (rc < 0) return std::string("rte_eal_init failed: ") + rte_strerror(rte_errno);
  return "";
}

std::string Ports::setup(const Config& c) {
  const uint16_t nq = static_cast<uint16_t>(c.worker_lcores.size());
  data_room_ = std::max<uint32_t>(max_frame_size(c), 2048);
  uint32_t room = data_room_ + RTE_PKTMBUF_HEADROOM;
  // A whole cache line, so packet data (after the private area and the headroom) starts on a
  // line boundary: with 32 bytes, a 64-byte frame would straddle two lines and the IPv4
  // destination address would be a split load.
  uint16_t priv = RTE_ALIGN(sizeof(PacketMeta), RTE_CACHE_LINE_SIZE);
  pool_ = rte_pktmbuf_pool_create("nf_mbuf", c.mbufs, c.mbuf_cache, priv,
                                  static_cast<uint16_t>(room), static_cast<int>(rte_socket_id()));
  if (!pool_) return std::string("cannot create the mbuf pool: ") + rte_strerror(rte_errno);
  indirect_ =
      rte_pktmbuf_pool_create("nf_indirect", 2047, 32, 0, 0, static_cast<int>(rte_socket_id()));
  if (!indirect_) return std::string("cannot create the indirect pool: ") + rte_strerror(rte_errno);

  for (size_t i = 0; i < c.ports.size(); ++i) {
    const PortConfig& p = c.ports[i];
    uint16_t id;
    std::string name = device_name(p.device);
    if (rte_eth_dev_get_port_by_name(name.c_str(), &id) != 0)
      return "port \"" + p.name + "\": no ethdev named \"" + name + "\" (device \"" + p.device +
             "\")";
    rte_eth_dev_info info{};
    if (int rc = rte_eth_dev_info_get(id, &info); rc != 0)
      return "port \"" + p.name + "\": rte_eth_dev_info_get: " + rte_strerror(-rc);
    if (info.max_rx_queues < nq || info.max_tx_queues < nq)
      return "port \"" + p.name + "\": device has " + std::to_string(info.max_rx_queues) + " RX/" +
             std::to_string(info.max_tx_queues) + " TX queues, " + std::to_string(nq) +
             " workers need one each";
    rte_eth_conf conf{};
    bool rss = nq > 1 && info.flow_type_rss_offloads != 0;
    if (rss) {
      conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
      conf.rx_adv_conf.rss_conf.rss_key = info.hash_key_size == 40 ? kSymmetricRssKey : nullptr;
      conf.rx_adv_conf.rss_conf.rss_key_len = info.hash_key_size == 40 ? 40 : 0;
      conf.rx_adv_conf.rss_conf.rss_hf =
          (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
    }
    if (int rc = rte_eth_dev_configure(id, nq, nq, &conf); rc != 0)
      return "port \"" + p.name + "\": rte_eth_dev_configure: " + rte_strerror(-rc);
    uint16_t rxd = p.rx_desc, txd = p.tx_desc;
    rte_eth_dev_adjust_nb_rx_tx_desc(id, &rxd, &txd);
    int sock = rte_eth_dev_socket_id(id);
    for (uint16_t q = 0; q < nq; ++q) {
      if (int rc = rte_eth_rx_queue_setup(id, q, rxd, sock, nullptr, pool_); rc != 0)
        return "port \"" + p.name + "\": RX queue " + std::to_string(q) + ": " + rte_strerror(-rc);
      if (int rc = rte_eth_tx_queue_setup(id, q, txd, sock, nullptr); rc != 0)
        return "port \"" + p.name + "\": TX queue " + std::to_string(q) + ": " + rte_strerror(-rc);
    }
    if (p.mac) {
      rte_ether_addr a;
      std::copy(p.mac->b.begin(), p.mac->b.end(), a.addr_bytes);
      if (int rc = rte_eth_dev_default_mac_addr_set(id, &a); rc != 0)
        return "port \"" + p.name + "\": cannot set MAC: " + rte_strerror(-rc);
    }
    if (int rc = rte_eth_dev_set_mtu(id, p.mtu); rc != 0 && rc != -ENOTSUP)
      log_warn("port \"%s\": cannot set MTU %u on the device (%s); nf enforces it in software",
               p.name.c_str(), p.mtu, rte_strerror(-rc));
    if (int rc = rte_eth_dev_start(id); rc != 0)
      return "port \"" + p.name + "\": rte_eth_dev_start: " + rte_strerror(-rc);
    ids_.push_back(id);
    rss_.push_back(rss);
    log_info("port %zu \"%s\": %s (%s), %u RX/TX queue(s)%s, mac %s", i, p.name.c_str(),
             p.device.c_str(), info.driver_name, nq, rss ? ", symmetric RSS" : "",
             format_mac(mac(static_cast<uint16_t>(i))).c_str());
  }
  return "";
}

void Ports::stop() {
  for (uint16_t id : ids_) {
    rte_eth_dev_stop(id);
    rte_eth_dev_close(id);
  }
  ids_.clear();
}

std::string Ports::set_mtu(uint16_t port, uint16_t mtu) {
  int rc = rte_eth_dev_set_mtu(ids_[port], mtu);
  return rc == 0 || rc == -ENOTSUP ? "" : rte_strerror(-rc);
}

MacAddr Ports::mac(uint16_t port) const {
  rte_ether_addr a{};
  rte_eth_macaddr_get(ids_[port], &a);
  MacAddr m;
  std::copy(a.addr_bytes, a.addr_bytes + 6, m.b.begin());
  return m;
}

std::string Ports::driver(uint16_t port) const {
  rte_eth_dev_info info{};
  rte_eth_dev_info_get(ids_[port], &info);
  return info.driver_name ? info.driver_name : "?";
}

PortStats Ports::stats(uint16_t port) const {
  rte_eth_stats s{};
  rte_eth_stats_get(ids_[port], &s);
  rte_eth_link l{};
  rte_eth_link_get_nowait(ids_[port], &l);
  return {s.ipackets,  s.opackets,  s.ibytes,
          s.obytes,    s.imissed,   s.ierrors,
          s.oerrors,   s.rx_nombuf, l.link_status == RTE_ETH_LINK_UP,
          l.link_speed};
}

}  // namespace nf::glue
