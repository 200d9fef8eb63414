// libFuzzer: arbitrary bytes as a DNS query (the UDP payload) through answer() against a View
// compiled from the lab zone, a reverse zone and GSLB names of every policy (with a geo map).
//
// The first input byte chooses the transport and buffer: UDP or TCP, the answer buffer's
// capacity, the client address and which health slots are down; the rest is the query. Checks:
//   - the answer never exceeds the buffer's capacity (nor 512 bytes for UDP without EDNS in the
//     query, nor the EDNS limit), and answer() writes nothing past it (ASan: the buffer is
//     allocated at exactly `cap` bytes);
//   - a non-empty answer decodes completely: header, question, every record, every compression
//     pointer (tests/common/dns_frames.h), with QR set and the query's ID;
//   - truncate_answer() of it decodes too, with TC set and no ANSWER/AUTHORITY records.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "nf/dns/engine.h"
#include "tests/common/dns_frames.h"

namespace {

using nf::test::DnsAnswer;
using nf::test::DnsLab;

DnsLab& lab() {
  static DnsLab* l = [] {
    auto* x = new DnsLab(false);
    if (!x->errors.empty() || !x->view) {
      for (const auto& e : x->errors) fprintf(stderr, "%s\n", e.c_str());
      abort();
    }
    return x;
  }();
  return *l;
}

[[noreturn]] void fail(const char* what, const DnsAnswer& a) {
  fprintf(stderr, "fuzz-dns: %s (%s)\n", what, a.error.c_str());
  abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  DnsLab& l = lab();
  const uint8_t ctl = data[0];
  ++data;
  --size;
  if (size > 4096) return 0;
  const bool tcp = ctl & 1;
  static constexpr uint32_t kCaps[] = {512, 1232, 1472, 4096};
  uint32_t cap = kCaps[(ctl >> 1) & 3];
  if (cap < size) cap = static_cast<uint32_t>(size);
  for (uint32_t t = 0; t < l.view->targets.size(); ++t)
    l.slots[t].up.store(((ctl >> 3) + t) % 5 != 0 ? 1 : 0, std::memory_order_relaxed);
  static constexpr uint32_t kClients[] = {0xc0000207, 0xc6336401, 0x0a630101, 0x0a010101};
  const uint32_t client = kClients[(ctl >> 6) & 3];

  std::unique_ptr<uint8_t[]> buf(new uint8_t[cap]);
  std::memcpy(buf.get(), data, size);
  const uint16_t id = size >= 2 ? static_cast<uint16_t>(data[0] << 8 | data[1]) : 0;
  const uint32_t n =
      nf::dns::answer(buf.get(), static_cast<uint32_t>(size), cap, tcp, client, l.env, l.st, l.c);
  if (n > cap) abort();
  if (n == 0) return 0;
  DnsAnswer a;
  if (!nf::test::decode_dns(buf.get(), n, a)) fail("the answer does not decode", a);
  if (!a.qr || a.id != id) fail("not an answer to this query", a);
  if (!tcp) {
    // The limit: 512 without EDNS in the query, else the client's size (>= 512) capped at ours.
    if (!a.opt && n > 512) fail("a UDP answer over 512 bytes without EDNS", a);
    if (n > l.env.udp_max) fail("a UDP answer over udp_max", a);
  }
  const uint32_t t = nf::dns::truncate_answer(buf.get(), n);
  if (t > n) abort();
  DnsAnswer b;
  if (!nf::test::decode_dns(buf.get(), t, b)) fail("the truncated answer does not decode", b);
  if (b.qd == 1 && (!b.tc || b.an != 0 || b.ns != 0)) fail("truncate_answer kept records", b);
  return 0;
}
