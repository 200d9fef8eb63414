// An RFC 1035 section 5 master-file ("zone file") reader: presentation text -> resource
// records with wire rdata. Pure code, no EAL; fuzzed by tests/fuzz/fuzz_zonefile.cc.
//
// Accepted: $ORIGIN, $TTL (BIND unit suffixes, 1h30m), $INCLUDE <file> [<origin>] (relative
// to the including file's directory, at most 8 deep; the origin and the current owner revert
// afterwards as 5.1 says), ';' comments, '(' ')' continuing a record over lines, quoted
// strings with \X and \DDD escapes, an omitted owner (line starting with whitespace: the
// previous owner), the TTL and class omitted or in either order. Class IN only. Record TTLs
// follow RFC 2308 section 4: explicit, else $TTL, else the last explicit TTL (RFC 1035), else
// the constructor's default; at most 2^31-1 (RFC 2181 section 8).
// Rdata: A, AAAA, NS, CNAME, PTR, SOA, MX, TXT, SRV (RFC 2782), CAA (RFC 8659), HINFO, and
// the RFC 3597 generic form "\# <len> <hex>" for any type, checked against the layout of the
// types above so that the engine can trust every record's rdata.
//
// Errors never stop the reader: each is recorded as "file:line: message" (the line of the
// offending token, else of the record's first line), the record is dropped and reading goes on
// with the next one, up to kMaxErrors. Nothing throws; arbitrary bytes are safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nf/dns/name.h"
#include "nf/dns/rr.h"

namespace nf::dns {

namespace detail {
struct MasterEntry;  // one lexed record, defined in zonefile.cc
}  // namespace detail

inline constexpr uint32_t kMaxTtl = 0x7fffffff;  // RFC 2181 section 8

struct Rr {
  Name owner;
  uint16_t type = 0;
  uint16_t rclass = kClassIN;
  uint32_t ttl = 0;
  std::vector<uint8_t> rdata;  // wire; names in rdata uncompressed, absolute, case as written
  std::string file;
  int line = 0;  // the record's first line
};

struct ZoneError {
  std::string file;
  int line = 0;  // 0: about the file as a whole (e.g. unreadable)
  std::string message;
  std::string str() const;  // "file:line: message" ("file: message" when line is 0)
};

// "3600", "1h30m", "1w" (units s m h d w, any case, BIND style; a bare number is seconds).
// nullopt if malformed or above 2^32-1; callers apply their own limit.
std::optional<uint32_t> parse_ttl(std::string_view text);

// A stateful master-file reader. feed() may be called several times (the config file gives
// records as a list of one-line strings, each with its own file/line); state ($ORIGIN, $TTL,
// last owner, last TTL) carries over between feeds. Parentheses must close within one feed.
class MasterParser {
 public:
  static constexpr size_t kMaxErrors = 100;  // the last one then says reading stopped
  static constexpr int kMaxIncludeDepth = 8;
  static constexpr size_t kMaxFileSize = size_t{64} << 20;

  MasterParser(Name origin, uint32_t default_ttl);

  void feed(std::string_view text, const std::string& file, int first_line);
  // Reads a regular file (at most kMaxFileSize). False if this call added any error, an
  // unreadable file included (reported as "path: cannot read ...").
  bool feed_file(const std::string& path);

  std::vector<Rr>& records() { return records_; }
  std::vector<ZoneError>& errors() { return errors_; }

  // $INCLUDE reads files; off where the text is untrusted (the fuzzer) - it is then an error.
  void set_include_enabled(bool on) { include_enabled_ = on; }
  const Name& origin() const { return origin_; }

 private:
  using Entry = detail::MasterEntry;

  void feed_text(std::string_view text, const std::string& file, int first_line);
  void include(const std::string& path, const std::string& from_file, int from_line);
  void entry(const Entry& e, const std::string& file);
  void directive(const Entry& e, const std::string& file);
  void error(const std::string& file, int line, std::string message);

  Name origin_;
  uint32_t default_ttl_;
  std::optional<uint32_t> dollar_ttl_;  // $TTL
  std::optional<uint32_t> last_ttl_;    // the last explicit TTL
  Name last_owner_;                     // empty: none yet
  int include_depth_ = 0;
  bool include_enabled_ = true;
  bool stopped_ = false;  // kMaxErrors reached
  std::vector<Rr> records_;
  std::vector<ZoneError> errors_;
};

}  // namespace nf::dns
