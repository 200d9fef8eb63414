// libFuzzer: arbitrary text as a master file, fed whole and again line by line (as the config
// loader feeds `dns` record strings). The reader must never crash, hang, read out of bounds or
// throw, and what it accepts must be well-formed: owners round-trip through presentation text
// and rdata has its type's layout. $INCLUDE is off: the input must not reach the filesystem.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "nf/dns/name.h"
#include "nf/dns/rr.h"
#include "nf/dns/zonefile.h"

namespace {

using nf::dns::MasterParser;
using nf::dns::Name;

void check(MasterParser& p, const Name& origin) {
  if (p.errors().size() > MasterParser::kMaxErrors) std::abort();
  for (const auto& e : p.errors()) {
    if (e.line < 1 || e.message.empty()) std::abort();
  }
  for (const auto& r : p.records()) {
    const Name& o = r.owner;
    if (o.empty() || nf::dns::name_wire_length(o.data(), o.size()) != o.size()) std::abort();
    Name back;
    std::string err;
    if (!nf::dns::parse_name(nf::dns::name_to_text(o), Name{0}, back, err) || back != o) {
      std::abort();
    }
    Name lower = o;
    nf::dns::to_lower(lower);
    if (!nf::dns::name_equal(lower, o)) std::abort();
    if (nf::dns::label_count(o) < 0 || r.ttl > nf::dns::kMaxTtl || r.rdata.size() > 0xffff) {
      std::abort();
    }
    (void)nf::dns::is_subdomain(o, origin);
    const auto& d = r.rdata;
    switch (r.type) {
      case nf::dns::type::A:
        if (d.size() != 4) std::abort();
        break;
      case nf::dns::type::AAAA:
        if (d.size() != 16) std::abort();
        break;
      case nf::dns::type::NS:
      case nf::dns::type::CNAME:
      case nf::dns::type::PTR:
        if (nf::dns::name_wire_length(d.data(), d.size()) != d.size()) std::abort();
        break;
      default:
        break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const Name origin{3, 'l', 'a', 'b', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0};

  MasterParser whole(origin, 3600);
  whole.set_include_enabled(false);
  whole.feed(text, "fuzz.zone", 1);
  check(whole, origin);

  MasterParser lines(origin, 3600);
  lines.set_include_enabled(false);
  size_t start = 0;
  int line = 1;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    lines.feed(text.substr(start, end - start), "fuzz.conf", line++);
    start = end + 1;
  }
  check(lines, origin);
  return 0;
}
