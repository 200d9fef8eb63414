// Domain names: presentation text <-> uncompressed wire format (RFC 1035 sections 3.1 and
// 5.1, RFC 4343 for case). Pure code, no EAL: the zone-file reader, the DNS engine and the
// config loader share it, and it is fuzzed through tests/fuzz/fuzz_zonefile.cc.
//
// A Name is always absolute wire form - length-prefixed labels ending with the root's 0 byte -
// so two names compare with one case-insensitive byte compare (length bytes are <= 63 and so
// never look like ASCII letters). parse_name() accepts the master-file syntax: "@" for the
// origin, "." for the root, relative names completed with the origin, and the \X and \DDD
// escapes; it rejects empty labels, labels over 63 octets and names over 255 octets with an
// error saying which. The other functions take arbitrary bytes and never read past `len`:
// malformed wire is treated as ending at its first bad label.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace nf::dns {

inline constexpr size_t kMaxNameLen = 255;  // wire length incl. root label
inline constexpr size_t kMaxLabelLen = 63;

using Name = std::vector<uint8_t>;  // uncompressed wire format, absolute (ends with 0 byte)

// Presentation -> wire. "@" is `origin`; a name without a trailing dot gets `origin` appended
// (an error if `origin` is empty); "." is the root. Case is kept as written.
bool parse_name(std::string_view text, const Name& origin, Name& out, std::string& err);

// Wire -> presentation, absolute with the trailing dot, escaping what parse_name() would
// otherwise read differently; "." for the root, "" for empty input.
std::string name_to_text(const uint8_t* wire, size_t len);
inline std::string name_to_text(const Name& n) {
  return name_to_text(n.data(), n.size());
}

void to_lower(Name& n);  // ASCII only, labels' length bytes untouched
bool name_equal(const uint8_t* a, size_t alen, const uint8_t* b, size_t blen);  // case-insensitive
inline bool name_equal(const Name& a, const Name& b) {
  return name_equal(a.data(), a.size(), b.data(), b.size());
}
bool is_subdomain(const Name& n, const Name& apex);  // n == apex or below it, case-insensitive
int label_count(const Name& n);                      // root = 0

// The length of the valid uncompressed name at the start of `wire` (including its root byte),
// or 0 if there is none: a label over 63, a compression pointer, running past `len` or past
// 255 octets. For checking rdata that arrives as opaque bytes.
size_t name_wire_length(const uint8_t* wire, size_t len);

}  // namespace nf::dns
