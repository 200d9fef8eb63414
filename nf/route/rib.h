// Routing information base: turns the configuration (interface addresses, static routes) into
// the entries of the forwarding table, and defines how an LPM next-hop value is read.
//
// rte_lpm stores a 24-bit next hop per prefix; nf packs a type into its top bits:
//   kAdj       value = adjacency slot (a resolved neighbour: MAC + port, see AdjTable)
//   kGlean     value = port; the prefix is connected but this host is not resolved yet
//   kLocal     an address of the appliance (interface, subnet broadcast, 255.255.255.255)
//   kBlackhole a configured discard route
// After ARP resolves a connected host, the management lcore adds a /32 kAdj entry for it (the
// VPP "glean then adjacency" model), so forwarding is one LPM lookup plus one array read.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "config/config.h"
#include "nf/net/addr.h"

namespace nf {

namespace nh {
enum Type : uint32_t { kAdj = 0, kGlean = 1, kLocal = 2, kBlackhole = 3 };
inline constexpr uint32_t kTypeShift = 20;
inline constexpr uint32_t kValueMask = (1u << kTypeShift) - 1;
inline constexpr uint32_t make(Type t, uint32_t v) {
  // Values wider than 20 bits would spill into the type: the configuration bounds them.
  return (static_cast<uint32_t>(t) << kTypeShift) | (v & kValueMask);
}
inline constexpr Type type(uint32_t n) {
  return static_cast<Type>(n >> kTypeShift);
}
inline constexpr uint32_t value(uint32_t n) {
  return n & kValueMask;
}
}  // namespace nh

struct RibEntry {
  Prefix prefix;
  uint32_t nh;
  bool operator==(const RibEntry&) const = default;
};

// Gateway address and port -> adjacency slot (owned by the neighbour table).
using GatewaySlotFn = std::function<uint32_t(uint32_t gw, uint16_t port)>;

std::vector<RibEntry> build_rib(const Config& c, const GatewaySlotFn& gateway_slot);

// Reference longest-prefix match over a RIB: the oracle the rte_lpm FIB is tested against.
std::optional<uint32_t> rib_lookup(const std::vector<RibEntry>& rib, uint32_t addr);

}  // namespace nf
