// The neighbour table's state machine with an injected clock and recorded side effects.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "nf/neigh/neigh_table.h"

namespace nf {
namespace {

struct FakeActions : NeighActions {
  std::vector<std::string> log;
  std::map<uint32_t, uint64_t> published;  // slot -> mac u64
  std::vector<intptr_t> sent, unreach, discarded;
  uint64_t grace = 0;  // tokens <= this are done
  uint64_t next_token = 1;

  void send_request(uint16_t port, uint32_t target, const MacAddr* dst) override {
    log.push_back(std::string(dst ? "probe " : "who-has ") + format_ipv4(target) + " port " +
                  std::to_string(port));
  }
  void publish(uint32_t slot, uint32_t, const MacAddr& mac, uint16_t) override {
    published[slot] = mac.to_u64();
  }
  void unpublish(uint32_t slot, uint32_t) override { published.erase(slot); }
  void transmit(void* p, uint16_t, const MacAddr&) override {
    sent.push_back(reinterpret_cast<intptr_t>(p));
  }
  void unreachable(void* p) override { unreach.push_back(reinterpret_cast<intptr_t>(p)); }
  void discard(void* p) override { discarded.push_back(reinterpret_cast<intptr_t>(p)); }
  uint64_t grace_start() override { return next_token++; }
  bool grace_done(uint64_t t) override { return t <= grace; }
};

void* pkt(intptr_t i) {
  return reinterpret_cast<void*>(i);
}
const MacAddr kMac{{2, 0, 0, 0, 0, 0x11}};
const MacAddr kMac2{{2, 0, 0, 0, 0, 0x22}};
constexpr uint32_t kIp = 0x0a14000b;   // 10.20.0.11
constexpr uint32_t kIp2 = 0x0a14000c;  // 10.20.0.12

NeighbourParams params() {
  NeighbourParams p;
  p.reachable_ms = 30000;
  p.retrans_ms = 1000;
  p.probes = 3;
  p.max_entries = 4;
  p.queue_per_entry = 3;
  p.queue_total = 5;
  return p;
}

TEST(Neigh, ResolveQueuesThenSendsOnReply) {
  FakeActions a;
  NeighTable t(params(), 8, a);
  t.resolve(kIp, 1, pkt(1), 0);
  t.resolve(kIp, 1, pkt(2), 10);
  ASSERT_EQ(a.log.size(), 1u);  // one request, not one per packet
  EXPECT_EQ(a.log[0], "who-has 10.20.0.11 port 1");
  EXPECT_EQ(t.pending_total(), 2u);
  t.learn(kIp, kMac, 1, true, 50);
  EXPECT_EQ(a.sent, (std::vector<intptr_t>{1, 2}));  // in arrival order
  EXPECT_EQ(t.pending_total(), 0u);
  ASSERT_EQ(a.published.size(), 1u);
  EXPECT_EQ(a.published.begin()->second, kMac.to_u64());
  // Already resolved: straight through.
  t.resolve(kIp, 1, pkt(3), 60);
  EXPECT_EQ(a.sent.back(), 3);
}

TEST(Neigh, RetriesThenFailsWithUnreachable) {
  FakeActions a;
  NeighTable t(params(), 8, a);
  t.resolve(kIp, 1, pkt(1), 0);
  for (uint64_t ms = 100; ms <= 5000; ms += 100) t.tick(ms);
  // First request at resolve, then retries up to `probes` in total, then failure.
  EXPECT_EQ(a.log.size(), 3u);
  EXPECT_EQ(a.unreach, (std::vector<intptr_t>{1}));
  EXPECT_TRUE(t.list(5000).empty());  // a plain host is forgotten
  EXPECT_EQ(t.stats().failed, 1u);
}

TEST(Neigh, ReachableEntryIsProbedByUnicastAndStaysPublished) {
  FakeActions a;
  NeighTable t(params(), 8, a);
  t.learn(kIp, kMac, 1, true, 0);
  a.log.clear();
  t.tick(29999);
  EXPECT_TRUE(a.log.empty());
  t.tick(30000);
  ASSERT_EQ(a.log.size(), 1u);
  EXPECT_EQ(a.log[0], "probe 10.20.0.11 port 1");
  EXPECT_EQ(a.published.size(), 1u);  // traffic keeps flowing while probing
  t.learn(kIp, kMac, 1, false, 30200);
  EXPECT_EQ(t.list(30200)[0].state, NeighState::kReachable);
  // No answer to three probes: unpublished and gone.
  for (uint64_t ms = 60200; ms < 65000; ms += 100) t.tick(ms);
  EXPECT_TRUE(a.published.empty());
  EXPECT_TRUE(t.list(65000).empty());
}

TEST(Neigh, MacChangeRepublishes) {
  FakeActions a;
  NeighTable t(params(), 8, a);
  t.learn(kIp, kMac, 1, true, 0);
  t.learn(kIp, kMac2, 1, false, 10);
  EXPECT_EQ(a.published.begin()->second, kMac2.to_u64());
  // ...but never across ports.
  t.learn(kIp, kMac, 0, true, 20);
  EXPECT_EQ(a.published.begin()->second, kMac2.to_u64());
}

TEST(Neigh, UnsolicitedArpDoesNotCreate) {
  FakeActions a;
  NeighTable t(params(), 8, a);
  t.learn(kIp, kMac, 1, false, 0);
  EXPECT_TRUE(t.list(0).empty());
}

TEST(Neigh, QueueBoundsDropOldest) {
  FakeActions a;
  NeighTable t(params(), 8, a);
  for (intptr_t i = 1; i <= 5; ++i) t.resolve(kIp, 1, pkt(i), 0);
  EXPECT_EQ(t.pending_total(), 3u);  // queue_per_entry
  EXPECT_EQ(a.discarded, (std::vector<intptr_t>{1, 2}));
  for (intptr_t i = 6; i <= 8; ++i) t.resolve(kIp2, 1, pkt(i), 0);
  // queue_total (5) reached at 7: packet 8 pushes out the oldest of its own entry.
  EXPECT_EQ(t.pending_total(), 5u);
  EXPECT_EQ(a.discarded, (std::vector<intptr_t>{1, 2, 6}));
  t.learn(kIp, kMac, 1, true, 5);
  EXPECT_EQ(a.sent, (std::vector<intptr_t>{3, 4, 5}));
}

TEST(Neigh, GatewayFailsButStays) {
  FakeActions a;
  NeighTable t(params(), 8, a);
  Config c;
  c.ports.resize(2);
  c.ports[1].addresses.push_back({0x0a140001, 24});
  auto slots = t.sync({{kIp, 1}}, {}, c, 0);
  ASSERT_EQ(slots.size(), 1u);
  EXPECT_EQ(a.log.size(), 1u);  // resolved eagerly
  for (uint64_t ms = 100; ms <= 5000; ms += 100) t.tick(ms);
  auto l = t.list(5000);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].state, NeighState::kFailed);
  EXPECT_TRUE(l[0].gateway);
  EXPECT_EQ(t.slot_of(kIp), slots[0]);
  t.learn(kIp, kMac, 1, true, 6000);
  EXPECT_EQ(t.list(6000)[0].state, NeighState::kReachable);
}

TEST(Neigh, StaticEntriesAndReloadSync) {
  FakeActions a;
  NeighTable t(params(), 8, a);
  Config c;
  c.ports.resize(2);
  c.ports[1].addresses.push_back({0x0a140001, 24});
  t.sync({}, {{kIp, kMac, 1}}, c, 0);
  EXPECT_EQ(t.list(0)[0].state, NeighState::kStatic);
  t.learn(kIp, kMac2, 1, true, 1);  // ARP never overrides a static
  EXPECT_EQ(a.published.begin()->second, kMac.to_u64());
  for (uint64_t ms = 0; ms < 100000; ms += 1000) t.tick(ms);
  EXPECT_EQ(t.list(100000).size(), 1u);  // never aged
  // A reload that drops the static and the connected prefix forgets it.
  t.learn(kIp2, kMac2, 1, true, 1);
  Config c2;
  c2.ports.resize(2);
  t.sync({}, {}, c2, 2);
  EXPECT_TRUE(t.list(2).empty());
  EXPECT_TRUE(a.published.empty());
}

TEST(Neigh, SlotsAreReusedOnlyAfterGracePeriod) {
  FakeActions a;
  NeighbourParams p = params();
  p.max_entries = 1;
  NeighTable t(p, 1, a);
  t.learn(kIp, kMac, 1, true, 0);
  uint32_t s = t.slot_of(kIp);
  // Full: the old entry is evicted, but its slot is still in its grace period.
  t.learn(kIp2, kMac2, 1, true, 10);
  EXPECT_EQ(t.stats().evicted, 1u);
  EXPECT_EQ(t.slot_of(kIp2), UINT32_MAX);
  EXPECT_EQ(t.stats().table_full, 1u);
  a.grace = 100;  // readers have moved on
  t.learn(kIp2, kMac2, 1, true, 20);
  EXPECT_EQ(t.slot_of(kIp2), s);
}

// The management lcore answers a dropped packet with an ICMP error, which is itself routed and
// may need the very neighbour that just failed: unreachable() re-enters resolve() for the same
// address. Every original packet must be answered exactly once, never also discarded, and the
// re-queued ICMP packets must be accounted for (this was a double free before the queue was
// taken out of the entry first).
TEST(Neigh, ReentrantUnreachableIsSafe) {
  struct Reentrant : FakeActions {
    NeighTable* t = nullptr;
    uint64_t now = 0;
    void unreachable(void* p) override {
      FakeActions::unreachable(p);
      const intptr_t id = reinterpret_cast<intptr_t>(p);
      if (id < 100) t->resolve(kIp, 1, pkt(100 + id), now);  // the ICMP error, routed back
    }
  } a;
  NeighTable t(params(), 8, a);
  a.t = &t;
  for (intptr_t i = 1; i <= 3; ++i) t.resolve(kIp, 1, pkt(i), 0);
  for (uint64_t ms = 100; ms <= 5000; ms += 100) {
    a.now = ms;
    t.tick(ms);
    if (!a.unreach.empty()) break;
  }
  std::map<intptr_t, int> seen;
  for (intptr_t id : a.unreach) seen[id]++;
  for (intptr_t id : a.discarded) seen[id]++;
  for (intptr_t i = 1; i <= 3; ++i) EXPECT_EQ(seen[i], 1) << "packet " << i;
  // The three ICMP packets wait on a fresh entry for the same address.
  EXPECT_EQ(t.pending_total(), 3u);
  ASSERT_EQ(t.list(5000).size(), 1u);
  EXPECT_EQ(t.list(5000)[0].queued, 3u);
}

// A slot freed by a configuration sync may still be named by the FIB that is running until the
// new snapshot is published: it must not be handed out before release_held().
TEST(Neigh, SlotsFreedBySyncAreHeldUntilPublished) {
  FakeActions a;
  a.grace = UINT64_MAX;  // readers are always quiescent: only the hold protects the slot
  NeighbourParams p = params();
  p.max_entries = 1;
  NeighTable t(p, 1, a);
  Config c;
  c.ports.resize(2);
  c.ports[1].addresses.push_back({0x0a140001, 24});
  auto slots = t.sync({{kIp, 1}}, {}, c, 0);
  t.release_held();
  ASSERT_EQ(slots.size(), 1u);
  EXPECT_EQ(t.ip_of_slot(slots[0]), kIp);
  // A reload drops the gateway's subnet and makes kIp2 (another port) a static in one sync.
  Config c2;
  c2.ports.resize(2);
  c2.ports[0].addresses.push_back({0x0a140001, 24});
  t.sync({}, {{kIp2, kMac, 0}}, c2, 10);
  EXPECT_EQ(t.slot_of(kIp2), UINT32_MAX);  // the only slot is held
  t.release_held();
  t.sync({}, {{kIp2, kMac, 0}}, c2, 20);
  t.release_held();
  EXPECT_EQ(t.slot_of(kIp2), slots[0]);
  EXPECT_EQ(t.ip_of_slot(slots[0]), kIp2);
}

}  // namespace
}  // namespace nf
