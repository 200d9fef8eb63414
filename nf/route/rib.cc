#include "nf/route/rib.h"

namespace nf {

std::vector<RibEntry> build_rib(const Config& c, const GatewaySlotFn& gateway_slot) {
  std::vector<RibEntry> out;
  out.push_back({{0xffffffffu, 32}, nh::make(nh::kLocal, 0)});
  for (size_t pi = 0; pi < c.ports.size(); ++pi) {
    for (const IfAddr& a : c.ports[pi].addresses) {
      Prefix p = a.prefix();
      out.push_back({p, nh::make(nh::kGlean, static_cast<uint32_t>(pi))});
      out.push_back({{a.addr, 32}, nh::make(nh::kLocal, 0)});
      // The subnet's broadcast and (old-style) network address are for us, never forwarded
      // back onto the wire they came from (RFC 2644 directed broadcasts are off).
      out.push_back({{p.broadcast(), 32}, nh::make(nh::kLocal, 0)});
      out.push_back({{p.addr, 32}, nh::make(nh::kLocal, 0)});
    }
  }
  for (const RouteConfig& r : c.routes) {
    if (r.blackhole) {
      out.push_back({r.prefix, nh::make(nh::kBlackhole, 0)});
    } else {
      auto port = static_cast<uint16_t>(c.connected_port(r.via));
      out.push_back({r.prefix, nh::make(nh::kAdj, gateway_slot(r.via, port))});
    }
  }
  return out;
}

std::optional<uint32_t> rib_lookup(const std::vector<RibEntry>& rib, uint32_t addr) {
  const RibEntry* best = nullptr;
  for (const RibEntry& e : rib)
    if (e.prefix.contains(addr) && (!best || e.prefix.len > best->prefix.len)) best = &e;
  if (!best) return std::nullopt;
  return best->nh;
}

}  // namespace nf
