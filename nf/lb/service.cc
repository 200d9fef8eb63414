#include "nf/lb/service.h"

#include <algorithm>
#include <bit>

#include "nf/lb/maglev.h"

namespace nf::lb {

uint32_t VipMap::hash(uint32_t vip, uint8_t proto, uint16_t port) {
  return static_cast<uint32_t>(mix64((uint64_t{vip} << 24) ^ (uint64_t{port} << 8) ^ proto));
}

void VipMap::build(std::span<const ServiceRt> services) {
  const uint32_t size =
      std::bit_ceil(std::max<uint32_t>(8, 2 * static_cast<uint32_t>(services.size())));
  table_.assign(size, Entry{});
  mask_ = size - 1;
  vips_.clear();
  for (const ServiceRt& s : services) {
    uint32_t i = hash(s.vip, s.proto, s.port) & mask_;
    while (table_[i].proto != 0) i = (i + 1) & mask_;
    table_[i] = Entry{s.vip, s.port, s.proto, 0, s.id};
    vips_.push_back(s.vip);
  }
  std::sort(vips_.begin(), vips_.end());
  vips_.erase(std::unique(vips_.begin(), vips_.end()), vips_.end());
}

bool VipMap::is_vip(uint32_t addr) const {
  return std::binary_search(vips_.begin(), vips_.end(), addr);
}

void AddrSet::build(std::span<const uint32_t> addrs) {
  const uint32_t size =
      std::bit_ceil(std::max<uint32_t>(8, 2 * static_cast<uint32_t>(addrs.size())));
  table_.assign(size, 0);
  mask_ = size - 1;
  for (uint32_t a : addrs) {
    if (a == 0 || contains(a)) continue;
    uint32_t i = static_cast<uint32_t>(mix64(a)) & mask_;
    while (table_[i] != 0) i = (i + 1) & mask_;
    table_[i] = a;
  }
}

std::vector<HealthNeed> health_needs(const LbConfig& c) {
  std::vector<HealthNeed> out;
  if (!c.enabled) return out;
  for (const LbService& s : c.services)
    for (const LbReal& r : s.reals)
      if (!r.check.empty())
        out.push_back({r.addr, r.check, "lb " + s.name + " real " + format_ipv4(r.addr)});
  return out;
}

namespace {

Algo algo_of(LbScheduler s) {
  switch (s) {
    case LbScheduler::kRoundRobin:
      return Algo::kRoundRobin;
    case LbScheduler::kWeightedRoundRobin:
      return Algo::kWeightedRoundRobin;
    case LbScheduler::kLeastConn:
      return Algo::kLeastConn;
    case LbScheduler::kSourceHash:
      return Algo::kSourceHash;
    case LbScheduler::kMaglev:
      return Algo::kMaglev;
  }
  return Algo::kRoundRobin;
}

// The address of the port that reaches `addr` directly, else of the first port with one: the
// outer source of IP-in-IP packets (the real's replies to it, if any, come back to nf).
uint32_t source_for(const Config& c, uint32_t addr) {
  const int p = c.connected_port(addr);
  if (p >= 0 && !c.ports[static_cast<size_t>(p)].addresses.empty())
    return c.ports[static_cast<size_t>(p)].addresses.front().addr;
  for (const PortConfig& pc : c.ports)
    if (!pc.addresses.empty()) return pc.addresses.front().addr;
  return 0;
}

}  // namespace

std::shared_ptr<const Runtime> build_runtime(const Config& c,
                                             std::span<const uint32_t> slots_of_needs,
                                             const health::Slot* slots, uint64_t tsc_hz,
                                             uint16_t workers, uint64_t generation,
                                             std::string* error) {
  if (!c.lb.enabled) return nullptr;
  auto rt = std::make_shared<Runtime>();
  rt->tsc_hz = tsc_hz;
  rt->slots = slots;
  rt->generation = generation;
  rt->syn_flood_rate = c.lb.syn_flood_rate;
  rt->max_flows = c.lb.max_flows;
  const LbTimeouts& t = c.lb.timeouts;
  auto set = [&](TcpState st, uint32_t secs) {
    rt->timeouts.tcp[static_cast<unsigned>(st)] = uint64_t{secs} * tsc_hz;
  };
  set(TcpState::kNone, t.tcp_syn);
  set(TcpState::kSynSent, t.tcp_syn);
  set(TcpState::kSynRecv, t.tcp_syn);
  set(TcpState::kEstablished, t.tcp_established);
  set(TcpState::kFinWait, t.tcp_fin);
  set(TcpState::kCloseWait, t.tcp_fin);
  set(TcpState::kLastAck, t.tcp_fin);
  set(TcpState::kTimeWait, t.tcp_time_wait);
  set(TcpState::kClose, t.tcp_close);
  rt->timeouts.udp = uint64_t{t.udp} * tsc_hz;
  rt->timeouts.icmp = uint64_t{t.icmp} * tsc_hz;
  size_t need = 0;
  std::vector<uint32_t> nat_reals;
  for (const LbService& s : c.lb.services) {
    ServiceRt sr;
    sr.id = static_cast<uint16_t>(rt->services.size());
    sr.name = s.name;
    sr.vip = s.vip;
    sr.proto = s.proto;
    sr.port = s.port;
    sr.mode = s.mode;
    sr.on_down = s.on_down;
    sr.persist_tsc = uint64_t{s.persistence_s} * tsc_hz;
    sr.dscp = s.dscp;
    sr.mss_clamp = s.mss_clamp;
    sr.snat = s.snat;
    for (uint32_t a : s.snat) {
      auto it = std::find(rt->snat_addrs.begin(), rt->snat_addrs.end(), a);
      if (it == rt->snat_addrs.end()) it = rt->snat_addrs.insert(it, a);
      sr.snat_idx.push_back(static_cast<uint16_t>(it - rt->snat_addrs.begin()));
    }
    std::vector<Real> pool;
    for (const LbReal& r : s.reals) {
      RealRt rr;
      rr.addr = r.addr;
      rr.port = r.port;
      rr.weight = r.weight;
      if (!r.check.empty())
        rr.slot = need < slots_of_needs.size() ? slots_of_needs[need++] : kNoHealthSlot;
      if (!slots) rr.slot = kNoHealthSlot;
      rr.encap_src = source_for(c, r.addr);
      sr.reals.push_back(rr);
      pool.push_back(Real{real_id_v4(r.addr, r.port), r.weight});
      if (s.mode == LbMode::kNat || s.mode == LbMode::kFullNat) nat_reals.push_back(r.addr);
    }
    if (sr.mode == LbMode::kIpip && sr.mss_clamp == 0) {
      // The reals answer the client directly, but the client's segments reach them inside
      // 20 more bytes: keep them within the smallest MTU on the way to them.
      uint16_t mtu = 1500;
      for (const PortConfig& pc : c.ports) mtu = std::min(mtu, pc.mtu);
      sr.mss_clamp = static_cast<uint16_t>(mtu - 20 - 20 - 20);
    }
    if (!sr.pool.build(algo_of(s.scheduler), pool, c.lb.maglev_min_size)) {
      if (error) *error = "lb service " + s.name + ": cannot build its Maglev table";
      return nullptr;
    }
    rt->services.push_back(std::move(sr));
  }
  rt->vips.build(rt->services);
  rt->nat_reals.build(nat_reals);
  rt->workers.resize(std::max<uint16_t>(workers, 1));
  for (size_t w = 0; w < rt->workers.size(); ++w) {
    WorkerState& ws = rt->workers[w];
    ws.cursors.resize(rt->services.size());
    ws.up.resize(rt->services.size());
    ws.up_burst.assign(rt->services.size(), UINT64_MAX);
    for (const ServiceRt& s : rt->services) {
      ws.cursors[s.id].reset(s.pool);
      ws.up[s.id].assign(s.reals.size(), 1);
    }
    if (!rt->snat_addrs.empty()) {
      PortAllocator::Config pc;
      pc.workers = static_cast<unsigned>(rt->workers.size());
      // A source port is not reused for 2 s after its flow ends, so late segments of the
      // old connection cannot reach a new one (the reals' TIME_WAIT covers the rest).
      for (uint64_t& q : pc.quarantine) q = 2 * tsc_hz;
      pc.seed = generation * 0x9e3779b97f4a7c15ULL + w + 1;
      ws.ports =
          std::make_unique<PortAllocator>(pc, rt->snat_addrs.size(), static_cast<unsigned>(w));
    }
  }
  return rt;
}

}  // namespace nf::lb
