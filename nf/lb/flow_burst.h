// What the stages that keep flows in a per-worker FlowTable (lb, nat) do alike for every
// burst: one bulk lookup of the burst's keys, the re-check of a hit that an earlier packet of
// the same burst may have invalidated, and the TCP state step with the expiry it implies.
//
// Theory of operation
// -------------------
// A stage gathers the packets it may translate with their keys (Candidates), looks the keys up at
// once (FlowTable::lookup_bulk prefetches every bucket and record in stages), then handles the
// packets in order (Candidates::lookup_each: an inlined loop, no call through a pointer per
// packet). Handling one packet may end a flow (a reset, a port reused) and a new flow may take the
// freed record, so a hit found for a later packet of the same burst counts only if the record still
// carries that packet's key in the direction it matched; otherwise the table is asked again
// (recheck). TCP flows advance their state with tcp_step() (nf/lb/tcp_state.h) and take the timeout
// of the new state: a refreshing step sets the expiry (FlowTable::refresh, which leaves a busy
// flow's record unwritten), any other can only shorten it, so invalid segments, resets and
// retransmissions never keep a flow alive.
// Header-only, pure: no clock, no EAL.
#pragma once

#include <cstdint>

#include "nf/lb/flow_table.h"
#include "nf/lb/tcp_state.h"

namespace nf::lb {

// The packets of a burst a stage may translate, with what it read from their headers (Pkt,
// the stage's own type, carrying `key`) and their keys side by side for the bulk lookup.
// On the stack of process(), as the plain arrays it stands for were.
template <typename Pkt, typename Mbuf, unsigned N>
struct Candidates {
  static_assert(N <= FlowTable::kBulkMax, "one bulk lookup per burst");
  Pkt pkt[N];
  Mbuf* mbuf[N];
  FlowKey keys[N];
  unsigned n = 0;

  // The next packet's slot: filled by the caller, then kept by add() (or left for the next).
  Pkt& slot() { return pkt[n]; }
  void add(Mbuf* m) {
    mbuf[n] = m;
    keys[n] = pkt[n].key;
    ++n;
  }
  // add() for a connection key read off the wire (FlowKey::store_conn), with the slot's key
  // written here too: whole 8-byte words, which the bulk lookup reads back at once. A key
  // assembled field by field and copied whole (add()) cannot be store-forwarded and costs
  // about 15 cycles a packet; this is the lb stage's hot path.
  void add_conn(Mbuf* m, uint64_t addrs, uint32_t ports, uint8_t proto) {
    FlowKey::store_conn(&pkt[n].key, addrs, ports, proto);
    FlowKey::store_conn(&keys[n], addrs, ports, proto);
    mbuf[n] = m;
    ++n;
  }
  // Looks the keys up at once and calls fn(mbuf, pkt, hit) for each packet, in order.
  template <typename Fn>
  void lookup_each(FlowTable& t, uint64_t now, Fn&& fn) {
    Hit hits[N];
    t.lookup_bulk(keys, n, now, hits);
    for (unsigned i = 0; i < n; ++i) fn(mbuf[i], pkt[i], hits[i]);
  }
};

// The hit for `k` as it stands now (see above).
inline Hit recheck(FlowTable& t, Hit h, const FlowKey& k, uint64_t now) {
  if (h.rec && (h.rec->nkeys <= h.dir || !(h.rec->key[h.dir] == k))) [[unlikely]]
    return t.lookup(k, now);
  return h;
}

// Steps a TCP flow's state for a segment with `flags` in direction `dir` and sets its expiry.
inline TcpStep track_tcp(FlowTable& t, FlowRecord* r, uint8_t flags, unsigned dir, bool one_way,
                         const Timeouts& to, uint64_t now) {
  const TcpStep st = tcp_step(r->tcp_state, flags, dir, one_way);
  if (r->tcp_state != st.next) r->tcp_state = st.next;
  const uint64_t timeout = to.for_tcp(st.next);
  if (st.refresh)
    t.refresh(r, now, timeout);
  else
    t.limit(r, now, timeout);
  return st;
}

}  // namespace nf::lb
