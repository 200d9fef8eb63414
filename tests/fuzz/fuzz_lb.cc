// libFuzzer: bursts of frames through parse_frame(), the input stage and the lb stage on two
// workers sharing one runtime with a service of every mode (nat, fullnat with persistence,
// dsr, ipip, dscp, a UDP service, one with on_real_down = reset and least connections), a
// flow table of the minimum 1024 flows and a SYN-flood limit of 100 new flows per second, so
// the pressure paths are reached too.
//
// Input: two header bytes, then records [op][len][len bytes]:
//   header[0]  health: bit i (mod 8) set = health slot i down
//   header[1]  bit 0: 16 bytes of headroom instead of 128 (IP-in-IP cannot prepend)
//   op bit 0   the worker the frame arrives on
//   op bits 1-2  0: an IPv4 datagram (the bytes) behind a fixed Ethernet header, its header
//                   checksum fixed unless op bit 7;
//                1: the reverse of the last packet the lb stage passed on (a real's reply,
//                   or, with bytes[1] odd, that packet's flow from the client side again),
//                   TCP flags bytes[0], payload the rest; with bytes[1] & 6 == 2 (and a
//                   cookie SYN-ACK seen) instead the client's answer to the last SYN-ACK the
//                   stage sent with a cookie (flags bytes[0], seq its ack, ack its seq + 1
//                   + bytes[2] & 1, so both valid and forged cookies come); with bytes[1] & 6
//                   == 4 a SYN flood: 100 SYNs to the DSR VIP from ports this worker owns,
//                   which trips the flood guard (syn_flood_rate 100) so NAT SYNs get cookies;
//                2: a TCP/UDP/other datagram from fields (build() below), checksums right
//                   unless op bit 7 (then the L4 checksum is wrong on purpose);
//                3: ICMP: with bytes[0] bit 7 (or nothing passed on yet) an echo request
//                   (reply with bit 0) between two addresses of the dictionary; else an
//                   error (type by bytes[0]) from the receiver of the last packet lb passed
//                   on back to its sender, quoting bytes[2] % 64 bytes of it, or (bit 6)
//                   from its client about the reply that client got from the VIP.
//   op bit 3   the burst ends after this frame (also at 32 frames per worker)
//   op bits 4-6  clock advance before the frame, ms: 0 1 7 100 999 1000 5000 60000
//
// Checks (abort on failure):
//   - conservation in both stages for every burst (in == next + tx + reply + punt + drops +
//     handoff, and the Emit buffers agree with the counters);
//   - a handoff goes to the other worker, and the owner never hands the packet on again;
//   - no byte outside a packet's datagram is read: every frame sits at the very end of its
//     own heap block, and after the input stage trims padding the bytes past the datagram are
//     poisoned (ASan), as is everything past the block;
//   - what lb passes on is an IPv4 datagram inside the frame with a valid header checksum
//     (IP-in-IP: outer and inner), whose routing key PacketMeta::ip_dst equals the header's
//     destination unless kRouteByMeta says otherwise; a TCP/UDP/ICMP checksum that was right
//     (or a UDP zero) before the stage is right (or zero) after it; the same for echo replies;
//   - after the input, all flows expire: the tables empty, every full NAT port returns to its
//     pool and every least-connection count returns to zero (proxied flows included).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "tests/fuzz/stage_fuzz.h"

namespace {

using namespace nf;
using namespace nf::fuzz;
using nf::test::rd16;
using nf::test::rd32;

constexpr const char* kConf = R"(
lcores = { management = 0; workers = [1, 2]; };
ports = ( { name = "lan"; device = "net_null0"; addresses = ["10.10.0.1/24"]; },
          { name = "srv"; device = "net_null1"; addresses = ["10.20.0.1/24", "10.20.0.2/24"]; } );
pipeline = [ "input", "lb", "ip4_forward" ];
health = { checks = ( { name = "h"; type = "tcp"; port = 80; } ); };
lb = {
  max_flows = 1024;
  syn_flood_rate = 100;
  maglev_min_size = 251;
  timeouts = { tcp_syn = 5; tcp_established = 20; tcp_fin = 3; tcp_time_wait = 2;
               tcp_close = 1; udp = 7; };
  services = (
    { name = "nat"; vip = "10.30.0.10"; port = 80; mode = "nat"; check = "h";
      scheduler = "weighted_round_robin";
      reals = ( { address = "10.20.0.11"; port = 8080; weight = 1; },
                { address = "10.20.0.12"; port = 8080; weight = 2; },
                { address = "10.20.0.13"; port = 8080; weight = 0; } ); },
    { name = "full"; vip = "10.30.0.11"; port = 80; mode = "fullnat"; snat = [ "10.20.0.2" ];
      scheduler = "maglev"; persistence = 30; check = "h";
      reals = ( { address = "10.20.0.11"; }, { address = "10.20.0.12"; } ); },
    { name = "reset"; vip = "10.30.0.12"; mode = "nat"; scheduler = "least_conn";
      on_real_down = "reset"; check = "h";
      reals = ( { address = "10.20.0.13"; }, { address = "10.20.0.14"; } ); },
    { name = "udp"; vip = "10.30.0.13"; protocol = "udp"; port = 53; mode = "nat";
      scheduler = "source_hash"; persistence = 10;
      reals = ( { address = "10.20.0.11"; }, { address = "10.20.0.12"; } ); },
    { name = "dsr"; vip = "10.30.0.14"; port = 80; mode = "dsr"; scheduler = "maglev";
      check = "h";
      reals = ( { address = "10.20.0.11"; }, { address = "10.20.0.12"; },
                { address = "10.20.0.13"; } ); },
    { name = "ipip"; vip = "10.30.0.15"; port = 80; mode = "ipip"; scheduler = "round_robin";
      reals = ( { address = "10.20.0.11"; }, { address = "10.20.0.12"; } ); },
    { name = "dscp"; vip = "10.30.0.16"; protocol = "udp"; mode = "dscp"; dscp = 10;
      scheduler = "maglev"; check = "h";
      reals = ( { address = "10.20.0.11"; }, { address = "10.20.0.12"; } ); }
  );
};
)";

constexpr uint32_t kAddrs[] = {0x0a0a0064, 0x0a0a0065, 0x0a1e000a, 0x0a1e000b, 0x0a1e000c,
                               0x0a1e000d, 0x0a1e000e, 0x0a1e000f, 0x0a1e0010, 0x0a14000b,
                               0x0a14000c, 0x0a14000d, 0x0a14000e, 0x0a140002, 0x0a140001,
                               0x08080808, 0x0a0a0001, 0x00000000, 0xffffffff, 0xe0000001};
constexpr uint16_t kPorts[] = {80, 53, 8080, 81, 0, 1024, 65535};

struct Rig {
  test::LbRig lb;
  ip4::InputStage input;
};

Rig& rig() {
  static Rig* r = [] {
    auto* x = new Rig;
    if (!x->lb.init(kConf, 2, 1000)) {
      std::fprintf(stderr, "%s\n", x->lb.error.c_str());
      std::abort();
    }
    return x;
  }();
  return *r;
}

struct Last : Seen {    // the last packet lb passed on: for replies
  bool cookie = false;  // the last SYN-ACK the stage answered a SYN with (reply)
  uint32_t vip = 0, client = 0, cookie_seq = 0, cookie_ack = 0;
  uint16_t vport = 0, cport = 0;
};

// The client's answer to the last cookie SYN-ACK.
std::vector<uint8_t> cookie_ack(const Last& l, const uint8_t* d, size_t n) {
  test::L4Spec s;
  s.src = l.client;
  s.dst = l.vip;
  s.sport = l.cport;
  s.dport = l.vport;
  s.flags = at(d, n, 0);
  s.seq = l.cookie_ack;
  s.ack = l.cookie_seq + 1 + (at(d, n, 2) & 1);
  return with_payload(s, d, n, 3);
}

// A packet lb passed on (next) or sent back (reply).
void check_out(const Pkt& p, Last& last, bool next) {
  const PacketMeta& md = meta(p.mb->mbuf());
  const uint8_t* inner;
  uint32_t ilen;
  const L4 after = datagram_ok(p, next, &inner, &ilen);
  const bool by_meta = md.flags & meta_flags::kRouteByMeta;
  if (!next && inner[9] == 6) {
    const uint32_t hl = (inner[0] & 0xfu) * 4u;
    if (hl + 20 > ilen) fail("a TCP answer without its header");
    const uint8_t* t = inner + hl;
    if (t[13] != (lb::tcpflag::kSyn | lb::tcpflag::kAck)) fail("a TCP answer but no SYN-ACK");
    if (after != L4::kRight) fail("a cookie SYN-ACK with a wrong checksum");
    last.cookie = true;
    last.vip = rd32(inner + 12);
    last.client = rd32(inner + 16);
    last.vport = rd16(t);
    last.cport = rd16(t + 2);
    last.cookie_seq = rd32(t + 4);
    last.cookie_ack = rd32(t + 8);
  }
  if (next) remember(last, p, inner, ilen, by_meta ? md.ip_dst : rd32(inner + 16));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  Rig& r = rig();
  test::LbRig& lb = r.lb;
  for (size_t i = 0; i < lb.needs.size(); ++i)
    lb.slots[i].up.store(((data[0] >> (i % 8)) & 1) ? 0 : 1, std::memory_order_relaxed);
  Last last;
  TwoWorkers tw =
      TwoWorkers::of(r.input, lb, data, [&](const Pkt& p, bool next) { check_out(p, last, next); });
  each_record(data, size, 2, &lb.now, [&](uint8_t op, const uint8_t* d, size_t len) {
    const uint16_t w = op & 1;
    if (((op >> 1) & 3) == 1 && (at(d, len, 1) & 6) == 4) {  // a SYN flood from ports w owns
      for (uint16_t i = 0; i < 100; ++i) {
        test::L4Spec s;
        s.dst = 0x0a1e000e;
        s.sport = static_cast<uint16_t>(1024 + 2 * (i + 64 * at(d, len, 2)) + w);
        tw.push(test::l4_frame(s), w, false);
      }
      tw.flush();
      return;
    }
    if (((op >> 1) & 3) == 1 && (at(d, len, 1) & 6) == 2 && last.cookie) {
      tw.push(cookie_ack(last, d, len), w, op & 8);
      return;
    }
    tw.push(frame_for(op, d, len, last, kAddrs, kPorts), w, op & 8);
  });
  tw.flush();

  // Every flow ends, and what the flows held (full NAT ports, least-connection counts) is
  // back.
  expire_all(lb, 200);
  for (uint16_t w = 0; w < 2; ++w) {
    const lb::WorkerState& ws = lb.rt->workers[w];
    for (const lb::ServiceRt& s : lb.rt->services)
      for (size_t i = 0; i < s.reals.size(); ++i)
        if (ws.cursors[s.id].active(static_cast<uint16_t>(i)) != 0)
          fail("a least-connection count leaked");
    if (ws.ports)
      for (size_t a = 0; a < ws.ports->addresses(); ++a)
        for (lb::PatProto p : {lb::PatProto::kTcp, lb::PatProto::kUdp})
          if (ws.ports->pool(a, p).in_use() != 0) fail("a full NAT port leaked");
  }
  lb.now += 10'000;  // past the ports' quarantine
  return 0;
}
