// libFuzzer: arbitrary bytes as a DHCP message (the UDP payload) through parse_request() and,
// when it parses, through the lease state machine of two shards that share one address bitmap.
//
// One input is one short history: the message as it came, then the same client's message
// rewritten as each type a server receives (so a DISCOVER is followed by its REQUEST, a lease
// by its RELEASE, ...), for a few clients derived from it, with time moving on and leases
// ageing in between, maybe moving to another network on the way. After every step the shards
// must agree with the bitmap:
//   - every address a shard holds (offered, bound, declined) has its bit set, in one shard only;
//   - every set bit of the pools' ranges is held by exactly one shard (nothing leaks);
//   - a reply with an address gives one the client may have, and the shard holds it for it.
// Each input starts from fresh shards and a fresh bitmap, so every finding reproduces alone.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "nf/dhcp/pool.h"
#include "nf/dhcp/server.h"
#include "nf/dhcp/wire.h"

namespace {

using namespace nf;
using namespace nf::dhcp;

// Small pools, so exhaustion, reservations and exclusions are reached by a few clients.
const char* kConf = R"(
lcores = { management = 0; workers = [1, 2]; };
ports = ( { name = "lan"; device = "net_null0"; addresses = ["10.10.0.1/24"]; },
          { name = "srv"; device = "net_null1"; addresses = ["10.20.0.1/24"]; } );
pipeline = [ "input", "dhcp", "ip4_forward" ];
dhcp = {
  offer_hold = 30;
  decline_hold = 120;
  rapid_commit = true;
  client_rate = 50;
  client_burst = 6;
  pools = (
    { name = "lan"; interface = "lan";
      ranges = [ "10.10.0.100-10.10.0.107", "10.10.0.110-10.10.0.111" ];
      exclude = [ "10.10.0.102" ];
      lease_time = 300; min_lease_time = 60; max_lease_time = 600;
      options = { router = [ "10.10.0.1" ]; dns_servers = [ "10.10.0.1" ]; };
      reservations = (
        { mac = "02:00:00:00:00:01"; address = "10.10.0.104"; hostname = "one"; },
        { client_id = "01:02:00:00:00:00:02"; address = "10.10.0.50"; }
      ); },
    { name = "relayed"; relay = "10.30.0.0/24"; subnet = "10.40.0.0/28";
      ranges = [ "10.40.0.2-10.40.0.6" ]; }
  );
};
)";

const std::shared_ptr<const Config>& config() {
  static const std::shared_ptr<const Config> c = [] {
    const std::string text = kConf;
    LoadResult r = load_config("fuzz-dhcp.conf", &text);
    if (!std::holds_alternative<Config>(r)) std::abort();
    return std::make_shared<const Config>(std::get<Config>(std::move(r)));
  }();
  return c;
}

// Every address the pools can hand out: their ranges (and the reservation outside them).
std::vector<uint32_t> addresses(const View& v) {
  std::vector<uint32_t> out;
  for (const PoolView& p : v.pools)
    for (const RangeView& rv : p.ranges)
      for (uint64_t a = rv.r.first; a <= rv.r.last; ++a) out.push_back(static_cast<uint32_t>(a));
  return out;
}

bool holds(const Lease* l) {
  return l && (l->state == LeaseState::kOffered || l->state == LeaseState::kBound ||
               l->state == LeaseState::kDeclined);
}

void check(const View& v, AddrBlocks& blocks, Shard* const* sh, const std::vector<uint32_t>& all) {
  for (uint32_t a : all) {
    const Lease* l0 = sh[0]->find_addr(a);
    const Lease* l1 = sh[1]->find_addr(a);
    if ((l0 && !holds(l0)) || (l1 && !holds(l1))) std::abort();  // indexed but not holding
    if (l0 && l1) std::abort();                                  // two shards, one address
    if ((l0 && l0->addr != a) || (l1 && l1->addr != a)) std::abort();
    const bool held = l0 || l1;
    if (held != blocks.bit(a).taken()) std::abort();  // a leak, or a claim nobody knows of
  }
  for (int s = 0; s < 2; ++s)
    if (sh[s]->used() > sh[s]->capacity()) std::abort();
  (void)v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 1500) return 0;
  Request r;
  if (parse_request({data, size}, r) != ParseError::kOk) return 0;

  AddrBlocks blocks;
  const std::unique_ptr<View> view = build_view(config(), blocks);
  const View& v = *view;
  static const std::vector<uint32_t> all = addresses(v);
  Shard s0(16, 0, 2), s1(16, 1, 2);
  Shard* sh[2] = {&s0, &s1};

  // Time and which history: from fields the fuzzer controls (secs, the xid's bytes).
  int64_t now_ms = 1'700'000'000'000 + int64_t{data[off::kSecs]} * 1000;
  const uint8_t clients = static_cast<uint8_t>(1 + data[off::kXid] % 12);
  const uint8_t step_ms = data[off::kXid + 1];
  const uint16_t port = data[off::kXid + 2] & 1;
  // At which step (if any) the client moves to the other network.
  const int move_at = (data[off::kXid + 2] & 2) ? (data[off::kXid + 2] >> 2) % 9 : -1;
  static constexpr uint8_t kTypes[] = {0,        kDiscover, kRequest,  kRequest, kDecline,
                                       kRelease, kInform,   kDiscover, kRequest};
  const uint8_t l2[6] = {0x02, 0xfe, 0, 0, 0, data[off::kXid + 3]};

  for (uint8_t c = 0; c < clients; ++c) {
    Request q = r;
    q.chaddr[5] = static_cast<uint8_t>(q.chaddr[5] + c);  // another client (by chaddr)
    if (c && q.client_id.present && q.client_id.len) q.client_id.b[q.client_id.len - 1] += c;
    uint32_t offered = 0;
    int step = 0;
    for (uint8_t t : kTypes) {
      if (t) q.type = t;
      if (step++ == move_at) q.giaddr = q.giaddr ? 0 : 0x0a1e0001;  // 10.30.0.1
      if (t == kRequest && offered) {  // the SELECTING request for what was offered
        q.requested_ip = offered;
        q.server_id = 0x0a0a0001;
      }
      if (t == kRelease || t == kDecline) q.ciaddr = offered ? offered : q.ciaddr;
      const PoolView* p = Shard::pool_for(v, q, port);
      if (!p) continue;
      // The owner, as the stage dispatches; every few steps the other one too (a stale
      // handoff), which must not break address uniqueness either.
      const uint16_t w = s0.owner_of(Shard::key_of(q));
      for (int k = 0; k < ((c + t) % 4 == 0 ? 2 : 1); ++k) {
        Shard& s = *sh[(w + k) % 2];
        const Decision d = s.handle(v, *p, q, p->server_id ? p->server_id : 0x0a0a0001,
                                    q.giaddr ? l2 : q.chaddr, now_ms);
        if (d.reply && d.reply != kOffer && d.reply != kAck && d.reply != kNak) std::abort();
        if (d.outcome != Outcome::kReply && d.reply) std::abort();
        if (d.yiaddr) {
          if (d.reply != kOffer && d.reply != kAck) std::abort();
          if (!p->subnet.contains(d.yiaddr) || !blocks.bit(d.yiaddr).taken()) std::abort();
          const Lease* l = s.find_addr(d.yiaddr);
          if (!l || !(l->key == Shard::key_of(q))) std::abort();
          const DhcpReservation* res = p->reservation_for_addr(d.yiaddr);
          if (!p->allocatable(d.yiaddr) && !res && d.yiaddr != q.requested_ip &&
              d.yiaddr != q.ciaddr)
            std::abort();
          if (d.lease_time < p->min_lease_time || d.lease_time > p->max_lease_time) std::abort();
          if (d.reply == kOffer) offered = d.yiaddr;
        }
        if (d.record) {
          const RecType rt = d.rec.type;
          if (rt != RecType::kBind && rt != RecType::kRelease && rt != RecType::kDecline)
            std::abort();
          if (rt == RecType::kBind && (d.rec.addr != d.yiaddr || d.reply != kAck)) std::abort();
        }
        check(v, blocks, sh, all);
      }
      now_ms += step_ms * 100;
      s0.age(now_ms / 1000, 8);
      s1.age(now_ms / 1000, 8);
      check(v, blocks, sh, all);
    }
  }
  // Everything ends: after the longest hold (a lease, a quarantine) every address is free again.
  int64_t longest = v.params.decline_hold + v.params.offer_hold;
  for (const PoolView& p : v.pools) longest = std::max<int64_t>(longest, p.max_lease_time);
  const int64_t later = now_ms / 1000 + longest + 1;
  s0.age(later, 64);
  s1.age(later, 64);
  check(v, blocks, sh, all);
  for (uint32_t a : all)
    if (blocks.bit(a).taken()) std::abort();
  return 0;
}
