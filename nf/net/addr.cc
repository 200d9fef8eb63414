#include "nf/net/addr.h"

#include <charconv>
#include <cstdio>

namespace nf {

std::optional<uint32_t> parse_ipv4(std::string_view s) {
  uint32_t out = 0;
  for (int i = 0; i < 4; ++i) {
    if (s.empty()) return std::nullopt;
    unsigned v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    size_t used = static_cast<size_t>(p - s.data());
    // Leading zeros are rejected: "010" means octal to some tools and decimal to others.
    if (ec != std::errc() || v > 255 || used == 0 || used > 3 || (used > 1 && s[0] == '0'))
      return std::nullopt;
    out = (out << 8) | v;
    s.remove_prefix(used);
    if (i < 3) {
      if (s.empty() || s[0] != '.') return std::nullopt;
      s.remove_prefix(1);
    }
  }
  if (!s.empty()) return std::nullopt;
  return out;
}

std::optional<IfAddr> parse_ifaddr(std::string_view s) {
  size_t slash = s.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto a = parse_ipv4(s.substr(0, slash));
  std::string_view ls = s.substr(slash + 1);
  unsigned len = 0;
  auto [p, ec] = std::from_chars(ls.data(), ls.data() + ls.size(), len);
  if (!a || ec != std::errc() || p != ls.data() + ls.size() || ls.empty() || len > 32)
    return std::nullopt;
  return IfAddr{*a, static_cast<uint8_t>(len)};
}

std::optional<Prefix> parse_prefix(std::string_view s) {
  auto ia = parse_ifaddr(s);
  if (!ia) return std::nullopt;
  Prefix p = ia->prefix();
  if (p.addr != ia->addr) return std::nullopt;
  return p;
}

std::optional<MacAddr> parse_mac(std::string_view s) {
  MacAddr m;
  if (s.size() != 17) return std::nullopt;
  for (int i = 0; i < 6; ++i) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(s.data() + i * 3, s.data() + i * 3 + 2, v, 16);
    if (ec != std::errc() || p != s.data() + i * 3 + 2) return std::nullopt;
    if (i < 5 && s[i * 3 + 2] != ':') return std::nullopt;
    m.b[i] = static_cast<uint8_t>(v);
  }
  return m;
}

std::string format_ipv4(uint32_t a) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
  return buf;
}

std::string format_prefix(const Prefix& p) {
  return format_ipv4(p.addr) + "/" + std::to_string(p.len);
}

std::string format_mac(const MacAddr& m) {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", m.b[0], m.b[1], m.b[2], m.b[3],
                m.b[4], m.b[5]);
  return buf;
}

}  // namespace nf
