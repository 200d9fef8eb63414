// Addresses and prefixes as the configuration and the control plane see them. All values are
// host byte order; the wire conversion happens at the packet boundary only.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nf {

struct MacAddr {
  std::array<uint8_t, 6> b{};
  bool operator==(const MacAddr&) const = default;
  bool is_zero() const { return (b[0] | b[1] | b[2] | b[3] | b[4] | b[5]) == 0; }
  bool is_multicast() const { return (b[0] & 1) != 0; }
  uint64_t to_u64() const {
    uint64_t v = 0;
    for (uint8_t x : b) v = (v << 8) | x;
    return v;
  }
  static MacAddr from_u64(uint64_t v) {
    MacAddr m;
    for (int i = 5; i >= 0; --i, v >>= 8) m.b[i] = static_cast<uint8_t>(v);
    return m;
  }
};

struct Prefix {
  uint32_t addr = 0;  // network address (host bits cleared)
  uint8_t len = 0;
  bool operator==(const Prefix&) const = default;
  uint32_t mask() const { return len == 0 ? 0 : ~uint32_t{0} << (32 - len); }
  bool contains(uint32_t a) const { return (a & mask()) == addr; }
  bool overlaps(const Prefix& o) const {
    uint8_t l = len < o.len ? len : o.len;
    uint32_t m = l == 0 ? 0 : ~uint32_t{0} << (32 - l);
    return (addr & m) == (o.addr & m);
  }
  uint32_t broadcast() const { return addr | ~mask(); }
};

// An interface address: the host address and the length of its connected prefix.
struct IfAddr {
  uint32_t addr = 0;
  uint8_t len = 0;
  Prefix prefix() const {
    Prefix p{addr, len};
    p.addr &= p.mask();
    return p;
  }
  bool operator==(const IfAddr&) const = default;
};

std::optional<uint32_t> parse_ipv4(std::string_view s);
// "a.b.c.d/len"; host bits set is an error unless allow_host_bits (interface addresses).
std::optional<IfAddr> parse_ifaddr(std::string_view s);
std::optional<Prefix> parse_prefix(std::string_view s);  // strict: host bits must be zero
std::optional<MacAddr> parse_mac(std::string_view s);

std::string format_ipv4(uint32_t a);
std::string format_prefix(const Prefix& p);
std::string format_mac(const MacAddr& m);

inline bool is_martian_source(uint32_t a) {
  // RFC 1812 5.3.7: 0/8, 127/8, class D/E and limited broadcast never appear as a source.
  uint8_t top = static_cast<uint8_t>(a >> 24);
  return top == 0 || top == 127 || top >= 224;
}
inline bool is_multicast(uint32_t a) {
  return (a >> 28) == 0xe;
}

}  // namespace nf
