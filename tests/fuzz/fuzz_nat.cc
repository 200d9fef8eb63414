// libFuzzer: bursts of frames through parse_frame(), the input stage and the nat stage on two
// workers sharing one runtime: the router of the nat unit tests (test::nat_conf: port forwards
// on 198.51.100.1, dynamic PAT of the lan and srv prefixes behind it on the wan port). The first
// header byte picks one of four configurations (session table of the minimum 1024 or of 4096; a PAT
// range of 10000 ports or of 16, so each worker owns 8 and exhaustion is reached; port reuse
// quarantine 0 or 2 s), each a rig of its own kept across inputs (the end of every input empties it
// again).
//
// Input: two header bytes, then records [op][len][len bytes]:
//   header[0]  bits 0-1: the configuration (above)
//   header[1]  bit 0: 16 bytes of headroom instead of 128
//   op bit 0   the worker the frame arrives on
//   op bits 1-2  0: an IPv4 datagram (the bytes) behind a fixed Ethernet header, its header
//                   checksum fixed unless op bit 7;
//                1: the reverse of the last packet nat passed on (the reply of its receiver),
//                   or, with bytes[1] odd, that packet's flow from its sender again; TCP
//                   flags bytes[0], payload the rest; with bytes[1] & 6 == 4 instead a reload:
//                   the runtime of configuration bytes[2] % 4 is published (a new
//                   generation), the stages and their sessions stay;
//                2: a TCP/UDP/other datagram from fields (stage_fuzz.h build()), checksums
//                   right unless op bit 7 (then the L4 checksum is wrong on purpose);
//                3: ICMP: an echo request or reply between two addresses of the dictionary,
//                   or an error about the last packet nat passed on (stage_fuzz.h icmp()).
//   op bit 3   the burst ends after this frame (also at 32 frames per worker)
//   op bits 4-6  clock advance before the frame, ms: 0 1 7 100 999 1000 5000 60000
//
// Checks (abort on failure):
//   - conservation for every burst in both stages, and the Emit buffers agree with the
//     counters;
//   - a handoff goes to the other worker, and the owner never hands the packet on again;
//   - no byte outside a packet's datagram is read (stage_fuzz.h: frames end where their
//     heap block ends; the bytes past the datagram are poisoned after the input stage);
//   - what nat passes on is an IPv4 datagram inside its frame with a valid header checksum,
//     routed by its header's destination, and a TCP/UDP/ICMP checksum that was right (or a
//     UDP zero) is right (or zero) after translation; nat never transmits or replies;
//   - after the input, all sessions expire: both tables empty (mappings included) and every
//     PAT port of the current runtime is back in its pool.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "tests/fuzz/stage_fuzz.h"

namespace {

using namespace nf;
using namespace nf::fuzz;

constexpr int kConfigs = 4;

std::string conf(int variant) {
  test::NatKnobs k;
  k.max_sessions = (variant & 1) ? 4096 : 1024;
  k.port_reuse = (variant & 1) ? 0 : 2;
  k.ports = (variant & 2) ? "10000-10063" : "10000-19999";
  return test::nat_conf(k);
}

constexpr uint32_t kAddrs[] = {0x0a0a0064, 0x0a0a0065, 0x0a14000b, 0x0a14000c, 0xc6336401,
                               0xcb007105, 0xcb007106, 0xc66364fe, 0x0a1400fe, 0x0a0a0001,
                               0x0a140001, 0x08080808, 0x00000000, 0xffffffff, 0xe0000001};
constexpr uint16_t kPorts[] = {8001, 20022, 5353, 80, 22, 53, 10000, 10063, 19999, 0, 65535};

struct Rig {
  test::NatRig nat;
  ip4::InputStage input;
  int variant = 0;  // the configuration the current runtime was built from
};

Rig& rig(int variant) {
  static Rig* rigs[kConfigs] = {};
  if (!rigs[variant]) {
    auto* x = new Rig;
    x->variant = variant;
    if (!x->nat.init(conf(variant), 2)) {
      std::fprintf(stderr, "%s\n", x->nat.error.c_str());
      std::abort();
    }
    rigs[variant] = x;
  }
  return *rigs[variant];
}

void publish(Rig& r, int variant) {
  if (!r.nat.load(conf(variant))) fail("a configuration of the fuzzer does not load");
  r.variant = variant;
}

// A packet nat passed on: translated or left alone, never answered.
void check_out(const Pkt& p, Seen& last, bool next) {
  if (!next) fail("nat transmitted or replied");
  const uint8_t* ip;
  uint32_t len;
  datagram_ok(p, next, &ip, &len);
  remember(last, p, ip, len, rd32(ip + 16));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const int variant = data[0] % kConfigs;
  Rig& r = rig(variant);
  test::NatRig& nat = r.nat;
  Seen last;
  TwoWorkers tw = TwoWorkers::of(r.input, nat, data,
                                 [&](const Pkt& p, bool next) { check_out(p, last, next); });
  each_record(data, size, 2, &nat.now, [&](uint8_t op, const uint8_t* d, size_t len) {
    if (((op >> 1) & 3) == 1 && (at(d, len, 1) & 6) == 4) {  // a reload between bursts
      tw.flush();
      publish(r, at(d, len, 2) % kConfigs);
      return;
    }
    tw.push(frame_for(op, d, len, last, kAddrs, kPorts), op & 1, op & 8);
  });
  tw.flush();
  if (r.variant != variant) publish(r, variant);

  // Every session ends, and a mapping leaves after its last session: every port is back.
  expire_all(nat, 2000);
  for (uint16_t w = 0; w < 2; ++w)
    for (const auto& pa : nat.rt->workers[w].ports)
      for (size_t a = 0; a < pa->addresses(); ++a)
        for (lb::PatProto p : {lb::PatProto::kTcp, lb::PatProto::kUdp, lb::PatProto::kIcmp})
          if (pa->pool(a, p).in_use() != 0) fail("a PAT port leaked");
  nat.now += 10'000;  // past the ports' quarantine
  return 0;
}
