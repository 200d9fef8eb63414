// mbufs without EAL or a mempool, for stage tests and benchmarks: an rte_mbuf header, the
// PacketMeta private area and a data buffer in one owned block. Stages only use inline mbuf
// accessors (mtod, trim, adj), which work on these exactly as on pool mbufs; nothing here may
// be passed to rte_pktmbuf_free.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "nf/core/stage.h"
#include "nf/net/parse.h"

namespace nf::test {

class FakeMbuf {
 public:
  static constexpr uint16_t kPriv =
      RTE_ALIGN(sizeof(PacketMeta), RTE_CACHE_LINE_SIZE);  // as the pool
  static constexpr uint16_t kRoom = 2048 + RTE_PKTMBUF_HEADROOM;

  explicit FakeMbuf(const std::vector<uint8_t>& frame, uint16_t port = 0)
      : mem_(new (std::align_val_t(64)) uint8_t[sizeof(rte_mbuf) + kPriv + kRoom]) {
    reset(frame, port);
  }
  ~FakeMbuf() { operator delete[](mem_, std::align_val_t(64)); }
  FakeMbuf(const FakeMbuf&) = delete;
  FakeMbuf& operator=(const FakeMbuf&) = delete;

  void reset(const std::vector<uint8_t>& frame, uint16_t port = 0) {
    std::memset(mem_, 0, sizeof(rte_mbuf) + kPriv);
    rte_mbuf* m = mbuf();
    m->buf_addr = mem_ + sizeof(rte_mbuf) + kPriv;
    m->buf_len = kRoom;
    m->data_off = RTE_PKTMBUF_HEADROOM;
    m->priv_size = kPriv;
    m->nb_segs = 1;
    m->port = port;
    rte_mbuf_refcnt_set(m, 1);
    std::memcpy(rte_pktmbuf_mtod(m, uint8_t*), frame.data(), frame.size());
    m->data_len = static_cast<uint16_t>(frame.size());
    m->pkt_len = static_cast<uint32_t>(frame.size());
  }
  // Parses like a worker does on receive; true for a clean frame (see Burst::clean).
  bool parse(const MacAddr& port_mac, uint16_t mtu = 1500) {
    return parse_frame(rte_pktmbuf_mtod(mbuf(), const uint8_t*), mbuf()->data_len, port_mac,
                       mtu + RTE_ETHER_HDR_LEN, meta(mbuf()));
  }
  rte_mbuf* mbuf() { return reinterpret_cast<rte_mbuf*>(mem_); }
  std::vector<uint8_t> bytes() {
    const uint8_t* p = rte_pktmbuf_mtod(mbuf(), const uint8_t*);
    return {p, p + mbuf()->data_len};
  }

 private:
  uint8_t* mem_;
};

}  // namespace nf::test
