#include "nf/dhcp/pool.h"

#include <algorithm>

namespace nf::dhcp {

std::unique_ptr<View> build_view(const std::shared_ptr<const Config>& c, AddrBlocks& blocks) {
  auto v = std::make_unique<View>();
  v->config = c;
  v->params = c->dhcp;
  v->params.pools.clear();
  std::fill(std::begin(v->by_port), std::end(v->by_port), -1);
  for (const DhcpPool& p : c->dhcp.pools) {
    PoolView pv;
    pv.name = p.name;
    pv.port = p.port;
    pv.relay = p.relay;
    pv.subnet = p.subnet;
    pv.lease_time = p.lease_time;
    pv.min_lease_time = p.min_lease_time;
    pv.max_lease_time = p.max_lease_time;
    pv.reservations = p.reservations.data();
    pv.nb_reservations = p.reservations.size();
    if (p.port >= 0)
      for (const IfAddr& a : c->ports[p.port].addresses)
        if (p.subnet.contains(a.addr)) {
          pv.server_id = a.addr;
          break;
        }
    // Never given dynamically: exclusions, reservations, the appliance's own addresses.
    auto excluded = [&](uint32_t a) {
      for (const AddrRange& x : p.exclude)
        if (x.contains(a)) return true;
      for (const DhcpPool& q : c->dhcp.pools)  // pools' subnets may overlap
        for (const DhcpReservation& r : q.reservations)
          if (r.address == a) return true;
      for (const PortConfig& port : c->ports)
        for (const IfAddr& ia : port.addresses)
          if (ia.addr == a) return true;
      return a == p.subnet.addr || a == p.subnet.broadcast();
    };
    for (const AddrRange& r : p.ranges) {
      RangeView rv;
      rv.r = r;
      for (uint32_t b = r.first >> 8; b <= r.last >> 8; ++b)
        rv.blocks.push_back(blocks.get(b << 8));
      rv.excluded.assign((r.size() + 63) / 64, 0);
      for (uint64_t i = 0; i < r.size(); ++i)
        if (excluded(static_cast<uint32_t>(r.first + i)))
          rv.excluded[i >> 6] |= uint64_t{1} << (i & 63);
      pv.size += static_cast<uint32_t>(r.size());
      pv.ranges.push_back(std::move(rv));
    }
    // A reservation may be any host of the subnet. One outside the ranges gets a range of its
    // own, after the dynamic ones and not counted in `size` (allocate() never reaches it) and
    // excluded, so that the shards can claim it for its client like any other address.
    for (const DhcpReservation& res : p.reservations) {
      if (pv.range_of(res.address)) continue;
      RangeView rv;
      rv.r = AddrRange{res.address, res.address};
      rv.blocks.push_back(blocks.get(res.address));
      rv.excluded.assign(1, 1);
      pv.ranges.push_back(std::move(rv));
    }
    std::fill(std::begin(pv.at), std::end(pv.at), int16_t{-1});
    // Subnet mask first (RFC 2132 3.3 wants it before the router), then the configured ones;
    // the broadcast address defaults to the subnet's.
    auto add = [&](uint8_t code, const std::vector<uint8_t>& data) {
      if (pv.at[code] >= 0) return;
      pv.at[code] = static_cast<int16_t>(pv.blob.size());
      pv.blob.push_back(code);
      pv.blob.push_back(static_cast<uint8_t>(data.size()));
      pv.blob.insert(pv.blob.end(), data.begin(), data.end());
    };
    auto be32 = [](uint32_t x) {
      return std::vector<uint8_t>{static_cast<uint8_t>(x >> 24), static_cast<uint8_t>(x >> 16),
                                  static_cast<uint8_t>(x >> 8), static_cast<uint8_t>(x)};
    };
    add(1, be32(p.subnet.mask()));
    for (const DhcpOption& o : p.options) add(o.code, o.data);
    add(28, be32(p.subnet.broadcast()));
    const int idx = static_cast<int>(v->pools.size());
    if (p.port >= 0 && p.port < 16) v->by_port[p.port] = idx;
    v->pools.push_back(std::move(pv));
  }
  return v;
}

}  // namespace nf::dhcp
