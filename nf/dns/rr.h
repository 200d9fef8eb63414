// Resource-record type and class codes and their mnemonics (RFC 1035 section 3.2, RFC 3597
// section 5 for the TYPEnnn / CLASSnnn forms of codes without a mnemonic). Header-only: a
// fixed table and two lookups, shared by the zone-file reader, the engine and the logs.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nf::dns {

namespace type {
inline constexpr uint16_t A = 1, NS = 2, CNAME = 5, SOA = 6, PTR = 12, HINFO = 13, MX = 15,
                          TXT = 16, AAAA = 28, SRV = 33, OPT = 41, DS = 43, RRSIG = 46, NSEC = 47,
                          DNSKEY = 48, CAA = 257, ANY = 255, AXFR = 252, IXFR = 251;
}  // namespace type

inline constexpr uint16_t kClassIN = 1;
inline constexpr uint16_t kClassCH = 3;
inline constexpr uint16_t kClassHS = 4;
inline constexpr uint16_t kClassNONE = 254;
inline constexpr uint16_t kClassANY = 255;

// Types that only appear in questions or as pseudo-records, never in zone data (RFC 6895
// section 3.1: 0, OPT, and the 128-255 meta/question range).
inline constexpr bool is_meta_type(uint16_t t) {
  return t == 0 || t == type::OPT || (t >= 128 && t <= 255);
}

namespace detail {

struct CodeName {
  uint16_t code;
  std::string_view name;
};

inline constexpr std::array<CodeName, 19> kTypeNames{{
    {type::A, "A"},         {type::NS, "NS"},       {type::CNAME, "CNAME"},   {type::SOA, "SOA"},
    {type::PTR, "PTR"},     {type::HINFO, "HINFO"}, {type::MX, "MX"},         {type::TXT, "TXT"},
    {type::AAAA, "AAAA"},   {type::SRV, "SRV"},     {type::OPT, "OPT"},       {type::DS, "DS"},
    {type::RRSIG, "RRSIG"}, {type::NSEC, "NSEC"},   {type::DNSKEY, "DNSKEY"}, {type::CAA, "CAA"},
    {type::ANY, "ANY"},     {type::AXFR, "AXFR"},   {type::IXFR, "IXFR"},
}};

inline constexpr std::array<CodeName, 6> kClassNames{{
    {kClassIN, "IN"},
    {2, "CS"},  // CSNET: obsolete, known only to be reported as unsupported
    {kClassCH, "CH"},
    {kClassHS, "HS"},
    {kClassNONE, "NONE"},
    {kClassANY, "ANY"},
}};

inline bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'a' && x <= 'z') x = static_cast<char>(x - 32);
    if (y >= 'a' && y <= 'z') y = static_cast<char>(y - 32);
    if (x != y) return false;
  }
  return true;
}

// "<prefix><decimal 0..65535>", prefix matched case-insensitively.
inline std::optional<uint16_t> numbered(std::string_view s, std::string_view prefix) {
  if (s.size() <= prefix.size() || s.size() > prefix.size() + 5) return std::nullopt;
  if (!iequal(s.substr(0, prefix.size()), prefix)) return std::nullopt;
  uint32_t v = 0;
  for (const char c : s.substr(prefix.size())) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > 0xffff) return std::nullopt;
  return static_cast<uint16_t>(v);
}

}  // namespace detail

inline std::string type_to_text(uint16_t t) {
  for (const auto& e : detail::kTypeNames) {
    if (e.code == t) return std::string(e.name);
  }
  return "TYPE" + std::to_string(t);
}

inline std::optional<uint16_t> type_from_text(std::string_view s) {
  for (const auto& e : detail::kTypeNames) {
    if (detail::iequal(s, e.name)) return e.code;
  }
  return detail::numbered(s, "TYPE");
}

inline std::string class_to_text(uint16_t c) {
  for (const auto& e : detail::kClassNames) {
    if (e.code == c) return std::string(e.name);
  }
  return "CLASS" + std::to_string(c);
}

inline std::optional<uint16_t> class_from_text(std::string_view s) {
  for (const auto& e : detail::kClassNames) {
    if (detail::iequal(s, e.name)) return e.code;
  }
  return detail::numbered(s, "CLASS");
}

}  // namespace nf::dns
