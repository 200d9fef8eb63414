#include "nf/dhcp/server.h"

#include <algorithm>

namespace nf::dhcp {

const char* state_name(LeaseState s) {
  switch (s) {
    case LeaseState::kOffered:
      return "offered";
    case LeaseState::kBound:
      return "bound";
    case LeaseState::kDeclined:
      return "declined";
    case LeaseState::kExpired:
      return "expired";
    default:
      return "unused";
  }
}

namespace {

uint32_t pow2_at_least(uint64_t n) {
  uint32_t p = 16;
  while (p < n) p <<= 1;
  return p;
}

uint64_t mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

uint64_t hash_bytes(const uint8_t* p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return mix(h);
}

constexpr uint32_t kBuckets = 4096;
constexpr size_t kMaxPools = 256;

}  // namespace

Shard::Shard(uint32_t capacity, uint16_t index, uint16_t count)
    : slab_(capacity), index_(index), count_(count ? count : 1) {
  free_.reserve(capacity);
  for (uint32_t i = capacity; i-- > 0;) free_.push_back(i);
  by_client_.slot.assign(pow2_at_least(uint64_t{capacity} * 2), 0);
  by_client_.mask = static_cast<uint32_t>(by_client_.slot.size() - 1);
  by_addr_.slot.assign(pow2_at_least(uint64_t{capacity} * 2), 0);
  by_addr_.mask = static_cast<uint32_t>(by_addr_.slot.size() - 1);
  cursor_.assign(kMaxPools, 0);
  buckets_.assign(kBuckets, Bucket{~0ull, 0, 0});
}

ClientKey Shard::key_of(const Request& r) {
  if (r.client_id.present && r.client_id.len) return ClientKey::from_id(r.client_id.view());
  return ClientKey::from_hw(r.htype, r.chaddr, r.hlen);
}

const PoolView* Shard::pool_for(const View& v, const Request& r, uint16_t port) {
  if (r.giaddr) return v.for_relay(r.giaddr);
  const int i = port < 16 ? v.by_port[port] : -1;
  return i >= 0 ? &v.pools[static_cast<size_t>(i)] : nullptr;
}

// ---- indexes ------------------------------------------------------------------------------

uint32_t Shard::find_by_client(const ClientKey& k, uint64_t h) const {
  for (uint32_t i = static_cast<uint32_t>(mix(h)) & by_client_.mask;;
       i = (i + 1) & by_client_.mask) {
    const uint32_t s = by_client_.slot[i];
    if (!s) return kNone;
    if (slab_[s - 1].key == k) return s - 1;
  }
}

uint32_t Shard::find_by_addr(uint32_t a) const {
  for (uint32_t i = static_cast<uint32_t>(mix(a)) & by_addr_.mask;; i = (i + 1) & by_addr_.mask) {
    const uint32_t s = by_addr_.slot[i];
    if (!s) return kNone;
    if (slab_[s - 1].addr == a) return s - 1;
  }
}

void Shard::index_client(uint32_t li) {
  uint32_t i = static_cast<uint32_t>(mix(slab_[li].key.hash())) & by_client_.mask;
  while (by_client_.slot[i]) i = (i + 1) & by_client_.mask;
  by_client_.slot[i] = li + 1;
}

void Shard::index_addr(uint32_t li) {
  uint32_t i = static_cast<uint32_t>(mix(slab_[li].addr)) & by_addr_.mask;
  while (by_addr_.slot[i]) i = (i + 1) & by_addr_.mask;
  by_addr_.slot[i] = li + 1;
}

namespace {
// Linear probing deletion by backward shift: no tombstones, so lookups stay short forever.
template <typename HashOf>
void erase(std::vector<uint32_t>& slot, uint32_t mask, uint32_t li, HashOf hash_of) {
  uint32_t pos = static_cast<uint32_t>(hash_of(li)) & mask;
  while (slot[pos] != li + 1) {
    if (!slot[pos]) return;
    pos = (pos + 1) & mask;
  }
  slot[pos] = 0;
  for (uint32_t j = (pos + 1) & mask; slot[j]; j = (j + 1) & mask) {
    const uint32_t home = static_cast<uint32_t>(hash_of(slot[j] - 1)) & mask;
    // Move j back to pos unless its home lies cyclically in (pos, j].
    const bool in_between = pos <= j ? (pos < home && home <= j) : (pos < home || home <= j);
    if (!in_between) {
      slot[pos] = slot[j];
      slot[j] = 0;
      pos = j;
    }
  }
}
}  // namespace

void Shard::unindex_client(uint32_t li) {
  erase(by_client_.slot, by_client_.mask, li,
        [this](uint32_t x) { return mix(slab_[x].key.hash()); });
}

void Shard::unindex_addr(uint32_t li) {
  erase(by_addr_.slot, by_addr_.mask, li, [this](uint32_t x) { return mix(slab_[x].addr); });
}

uint32_t Shard::alloc_slot() {
  if (free_.empty()) {
    // Full: reuse the slot of an expired lease (a hint we can afford to forget).
    for (uint32_t n = 0; n < slab_.size(); ++n) {
      const uint32_t li = (hand_ + n) % static_cast<uint32_t>(slab_.size());
      if (slab_[li].state == LeaseState::kExpired) {
        unindex_client(li);
        slab_[li] = Lease{};
        return li;
      }
    }
    return kNone;
  }
  const uint32_t li = free_.back();
  free_.pop_back();
  used_++;
  return li;
}

void Shard::free_slot(uint32_t li) {
  slab_[li] = Lease{};
  free_.push_back(li);
  used_--;
}

const Lease* Shard::find_addr(uint32_t a) const {
  const uint32_t li = find_by_addr(a);
  return li == kNone ? nullptr : &slab_[li];
}

const Lease* Shard::find_client(const ClientKey& k) const {
  const uint32_t li = find_by_client(k, k.hash());
  return li == kNone ? nullptr : &slab_[li];
}

// ---- addresses ----------------------------------------------------------------------------

bool Shard::claim(const View& v, uint32_t a, AddrBit& bit) const {
  for (const PoolView& p : v.pools)
    if (const RangeView* rv = p.range_of(a)) {
      bit = rv->bit(a);
      return bit.claim();
    }
  return false;
}

uint32_t Shard::allocate(const View& v, const PoolView& p) {
  if (!p.size) return 0;
  // This shard's share first (offsets congruent to its index), then anything: shards do not
  // compete for the same addresses while there are plenty, and none is stuck while any is free.
  uint32_t& cur = cursor_[static_cast<size_t>(&p - v.pools.data()) % kMaxPools];
  for (int pass = 0; pass < 2; ++pass) {
    for (uint32_t n = 0; n < p.size; ++n) {
      const uint32_t o = (cur + n) % p.size;
      if (pass == 0 && count_ > 1 && o % count_ != index_) continue;
      uint32_t rest = o;
      for (const RangeView& rv : p.ranges) {
        if (rest >= rv.r.size()) {
          rest -= static_cast<uint32_t>(rv.r.size());
          continue;
        }
        const uint32_t a = rv.r.first + rest;
        if (rv.allocatable(a)) {
          const AddrBit bit = rv.bit(a);
          if (!bit.taken() && bit.claim()) {
            cur = o + 1;
            return a;
          }
        }
        break;
      }
    }
  }
  return 0;
}

void Shard::give_back(Lease& l, LeaseState to, int64_t now) {
  const uint32_t li = static_cast<uint32_t>(&l - slab_.data());
  if (l.state == LeaseState::kOffered || l.state == LeaseState::kBound ||
      l.state == LeaseState::kDeclined) {
    if (l.state == LeaseState::kBound) st_.bound--;
    l.bit.release();
    unindex_addr(li);
  }
  if (to == LeaseState::kExpired && l.key.len) {
    l.state = LeaseState::kExpired;
    l.expire = now;
    return;
  }
  if (l.key.len && l.state != LeaseState::kDeclined) unindex_client(li);
  free_slot(li);
}

void Shard::leave(Lease& l, int64_t now) {
  const bool bound = l.state == LeaseState::kBound;
  give_back(l, LeaseState::kExpired, now);
  if (!bound) return;
  Decision tmp;
  fill_record(tmp, RecType::kRelease, l);
  left_ = tmp.rec;
  has_left_ = true;
}

bool Shard::take_left_behind(LeaseRecord& rec) {
  if (!has_left_) return false;
  has_left_ = false;
  rec = left_;
  return true;
}

// ---- policy -------------------------------------------------------------------------------

bool Shard::rate_ok(const View& v, const Request& r, const uint8_t* l2_src, int64_t now_ms) {
  const uint32_t rate = v.params.client_rate;
  if (!rate) return true;
  // Clients on the link are told apart by their Ethernet source (a flood that varies chaddr
  // still comes from one station); relayed ones by the relay's circuit information if it has
  // any, else by chaddr (the relay's MAC is shared by all of them).
  uint64_t key;
  if (!r.giaddr && l2_src)
    key = hash_bytes(l2_src, 6);
  else if (r.relay_info.present)
    key = hash_bytes(r.relay_info.b, r.relay_info.len) ^ r.giaddr;
  else
    key = hash_bytes(r.chaddr, 16);
  Bucket& b = buckets_[key & (kBuckets - 1)];
  const double burst = v.params.client_burst;
  if (b.key != key) b = Bucket{key, now_ms, burst};
  b.tokens = std::min(burst, b.tokens + static_cast<double>(now_ms - b.last_ms) * rate / 1000.0);
  b.last_ms = now_ms;
  if (b.tokens < 1.0) return false;
  b.tokens -= 1.0;
  return true;
}

uint32_t Shard::lease_time_for(const PoolView& p, const Request& r) const {
  if (!r.lease_time) return p.lease_time;
  return std::clamp(r.lease_time, p.min_lease_time, p.max_lease_time);
}

const DhcpReservation* Shard::reservation(const PoolView& p, const Request& r,
                                          const ClientKey& k) const {
  (void)k;
  for (size_t i = 0; i < p.nb_reservations; ++i) {
    const DhcpReservation& res = p.reservations[i];
    if (res.mac) {
      if (r.htype == 1 && r.hlen == 6 && std::equal(res.mac->b.begin(), res.mac->b.end(), r.chaddr))
        return &res;
    } else if (r.client_id.present && r.client_id.len == res.client_id.size() &&
               std::equal(res.client_id.begin(), res.client_id.end(), r.client_id.b)) {
      return &res;
    }
  }
  return nullptr;
}

void Shard::fill_record(Decision& d, RecType t, const Lease& l) const {
  LeaseRecord& rec = d.rec;
  rec = LeaseRecord{};
  rec.type = t;
  rec.htype = l.htype;
  rec.addr = l.addr;
  std::memcpy(rec.mac, l.mac, 6);
  rec.expire = l.expire;
  rec.lease_time = l.lease_time;
  rec.key_len = l.key.len;
  std::memcpy(rec.key, l.key.b, l.key.len);
  rec.host_len = l.host_len;
  std::memcpy(rec.host, l.host, l.host_len);
  d.record = true;
}

Decision Shard::nak(const PoolView& p, uint32_t sid) const {
  Decision d;
  d.outcome = Outcome::kReply;
  d.reply = kNak;
  d.pool = &p;
  d.server_id = sid;
  return d;
}

Decision Shard::bind(const View& v, const PoolView& p, const Request& r, uint32_t li, uint32_t sid,
                     int64_t now, uint8_t reply) {
  (void)v;
  Lease& l = slab_[li];
  if (l.state != LeaseState::kBound) st_.bound++;
  l.state = LeaseState::kBound;
  l.lease_time = lease_time_for(p, r);
  l.expire = now + l.lease_time;
  Decision d;
  d.outcome = Outcome::kReply;
  d.reply = reply;
  d.pool = &p;
  d.server_id = sid;
  d.yiaddr = l.addr;
  d.lease_time = l.lease_time;
  if (const DhcpReservation* res = p.reservation_for_addr(l.addr); res && !res->hostname.empty())
    d.hostname = res->hostname.c_str();
  fill_record(d, RecType::kBind, l);
  st_.acks++;
  return d;
}

Decision Shard::handle(const View& v, const PoolView& p, const Request& r, uint32_t server_addr,
                       const uint8_t* l2_src, int64_t now_ms) {
  const int64_t now = now_ms / 1000;
  has_left_ = false;
  Decision d;
  d.pool = &p;
  if (!rate_ok(v, r, l2_src, now_ms)) {
    d.outcome = Outcome::kRateLimited;
    return d;
  }
  const uint32_t sid = p.server_id ? p.server_id : server_addr;
  d.server_id = sid;
  const ClientKey k = key_of(r);
  const uint64_t h = k.hash();
  uint32_t li = find_by_client(k, h);
  Lease* l = li == kNone ? nullptr : &slab_[li];
  auto held = [&](const Lease* x) {
    return x && (x->state == LeaseState::kOffered || x->state == LeaseState::kBound);
  };
  auto note_client = [&](Lease& x) {
    x.htype = r.htype;
    if (r.hlen == 6) std::memcpy(x.mac, r.chaddr, 6);
    if (r.hostname.present) {
      x.host_len = static_cast<uint8_t>(std::min<size_t>(r.hostname.len, sizeof x.host));
      std::memcpy(x.host, r.hostname.b, x.host_len);
    }
  };
  // A new lease record for this client on `a` (already claimed, `bit`).
  auto take = [&](uint32_t a, const AddrBit& bit) -> bool {
    if (!l) {
      li = alloc_slot();
      if (li == kNone) {
        bit.release();
        return false;
      }
      l = &slab_[li];
      l->key = k;
      index_client(li);
    }
    l->addr = a;
    l->bit = bit;
    l->state = LeaseState::kOffered;
    index_addr(li);
    note_client(*l);
    return true;
  };
  // May this client have `a` (asking for it by name)? Claims it if so.
  auto grant = [&](uint32_t a, const DhcpReservation* res, AddrBit& bit) -> bool {
    if (res) return res->address == a && claim(v, a, bit);
    if (!p.allocatable(a)) return false;
    return claim(v, a, bit);
  };

  switch (r.type) {
    case kDiscover: {
      const DhcpReservation* res = reservation(p, r, k);
      bool have = false;
      if (l) {
        if (held(l) && p.subnet.contains(l->addr) && (!res || res->address == l->addr)) {
          have = true;
        } else if (held(l)) {
          leave(*l, now);  // moved networks, or got a reservation
        }
        if (!have && l->state == LeaseState::kExpired && !res) {
          AddrBit bit;
          if (p.allocatable(l->addr) && claim(v, l->addr, bit)) have = take(l->addr, bit);
        }
      }
      if (!have) {
        AddrBit bit;
        uint32_t a = 0;
        if (res) {
          if (claim(v, res->address, bit)) a = res->address;
        }
        if (!a && !res && r.requested_ip && grant(r.requested_ip, nullptr, bit)) a = r.requested_ip;
        if (!a) {
          a = allocate(v, p);
          if (a) {
            for (const RangeView& rv : p.ranges)
              if (rv.r.contains(a)) bit = rv.bit(a);
          }
        }
        if (!a) {
          d.outcome = Outcome::kPoolExhausted;
          return d;
        }
        if (!take(a, bit)) {
          d.outcome = Outcome::kTableFull;
          return d;
        }
      }
      note_client(*l);
      if (v.params.rapid_commit && r.rapid_commit) {
        d = bind(v, p, r, li, sid, now, kAck);
        d.rapid = true;
        st_.rapid_acks++;
        return d;
      }
      if (l->state != LeaseState::kBound) {
        l->state = LeaseState::kOffered;
        l->expire = now + v.params.offer_hold;
      }
      d.outcome = Outcome::kReply;
      d.reply = kOffer;
      d.yiaddr = l->addr;
      d.lease_time = lease_time_for(p, r);
      if (const DhcpReservation* rr = p.reservation_for_addr(l->addr); rr && !rr->hostname.empty())
        d.hostname = rr->hostname.c_str();
      st_.offers++;
      return d;
    }

    case kRequest: {
      uint32_t want;
      if (r.server_id) {  // SELECTING (RFC 2131 4.3.2)
        if (r.server_id != sid) {
          if (l && l->state == LeaseState::kOffered) give_back(*l, LeaseState::kExpired, now);
          d.outcome = Outcome::kOtherServer;
          return d;
        }
        want = r.requested_ip ? r.requested_ip : r.ciaddr;
      } else {
        want = r.requested_ip ? r.requested_ip : r.ciaddr;  // INIT-REBOOT, or RENEW/REBIND
      }
      if (!want) {
        d.outcome = Outcome::kIgnored;
        return d;
      }
      // Its own lease, if on this network (a client that moved is told so, below).
      if (held(l) && l->addr == want && p.subnet.contains(want)) {
        note_client(*l);
        return bind(v, p, r, li, sid, now, kAck);
      }
      if (!p.subnet.contains(want)) {
        // RFC 2131 4.3.2: a client on the wrong network is told so (if we are authoritative).
        if (v.params.authoritative || r.server_id) {
          st_.naks++;
          return nak(p, sid);
        }
        d.outcome = Outcome::kNotOurs;
        return d;
      }
      if (held(l) && !r.server_id) {
        // It holds another address here: the one it asks for is wrong.
        st_.naks++;
        return nak(p, sid);
      }
      // Not known (our state was lost, or it comes from another server's lease): give it the
      // address if it is free and may be its; otherwise NAK so that it starts over.
      const DhcpReservation* res = reservation(p, r, k);
      const DhcpReservation* other = p.reservation_for_addr(want);
      AddrBit bit;
      if ((!other || other == res) && grant(want, res ? res : other, bit)) {
        if (l && held(l)) leave(*l, now);
        if (!take(want, bit)) {
          d.outcome = Outcome::kTableFull;
          return d;
        }
        return bind(v, p, r, li, sid, now, kAck);
      }
      if (!v.params.authoritative && !r.server_id) {
        d.outcome = Outcome::kNotOurs;
        return d;
      }
      st_.naks++;
      return nak(p, sid);
    }

    case kDecline: {
      const uint32_t a = r.requested_ip ? r.requested_ip : r.ciaddr;
      if (!held(l) || l->addr != a || (r.server_id && r.server_id != sid)) {
        d.outcome = Outcome::kIgnored;
        return d;
      }
      // The address is in use by someone we do not know: out of service for decline_hold,
      // detached from the client (which starts over and gets another one).
      if (l->state == LeaseState::kBound) st_.bound--;
      unindex_client(li);
      l->key = ClientKey{};
      l->state = LeaseState::kDeclined;
      l->expire = now + v.params.decline_hold;
      fill_record(d, RecType::kDecline, *l);
      if (!v.params.decline_hold) give_back(*l, LeaseState::kUnused, now);
      d.outcome = Outcome::kDeclined;
      st_.declines++;
      return d;
    }

    case kRelease: {
      if (!held(l) || l->addr != r.ciaddr) {
        d.outcome = Outcome::kIgnored;
        return d;
      }
      give_back(*l, LeaseState::kExpired, now);
      fill_record(d, RecType::kRelease, *l);
      d.outcome = Outcome::kReleased;
      st_.releases++;
      return d;
    }

    case kInform: {
      // RFC 2131 3.4: configuration only; no lease, no lease time, yiaddr 0.
      d.outcome = Outcome::kReply;
      d.reply = kAck;
      st_.informs++;
      return d;
    }
    default:
      d.outcome = Outcome::kIgnored;
      return d;
  }
}

void Shard::age(int64_t now, uint32_t budget) {
  const uint32_t n = static_cast<uint32_t>(slab_.size());
  for (uint32_t i = 0; i < budget && i < n; ++i) {
    hand_ = (hand_ + 1) % n;
    Lease& l = slab_[hand_];
    if (l.expire > now) continue;
    switch (l.state) {
      case LeaseState::kOffered:
        st_.offers_timed_out++;
        give_back(l, LeaseState::kExpired, now);
        break;
      case LeaseState::kBound:
        st_.expired++;
        give_back(l, LeaseState::kExpired, now);
        break;
      case LeaseState::kDeclined:
        st_.quarantine_ended++;
        give_back(l, LeaseState::kUnused, now);
        break;
      default:
        break;
    }
  }
}

void Shard::restore(const LeaseRecord& rec, AddrBlocks& blocks, int64_t now) {
  const ClientKey k = rec.client();
  const bool live = rec.expire > now;
  // The record supersedes what this client had (records arrive oldest first).
  uint32_t li = k.len ? find_by_client(k, k.hash()) : kNone;
  if (li != kNone) give_back(slab_[li], LeaseState::kUnused, now);
  // ... and what anybody held on its address: the last record for an address wins, as in the
  // journal (a DECLINE record names no client; the lease it ended is found by its address).
  li = find_by_addr(rec.addr);
  if (li != kNone) give_back(slab_[li], LeaseState::kUnused, now);
  if (rec.type == RecType::kDecline && !live) return;
  if (rec.type != RecType::kDecline && !k.len) return;
  li = alloc_slot();
  if (li == kNone) return;
  Lease& l = slab_[li];
  l.addr = rec.addr;
  l.htype = rec.htype;
  std::memcpy(l.mac, rec.mac, 6);
  l.lease_time = rec.lease_time;
  l.expire = rec.expire;
  l.key = k;
  l.host_len = std::min<uint8_t>(rec.host_len, sizeof l.host);
  std::memcpy(l.host, rec.host, l.host_len);
  if ((rec.type == RecType::kBind || rec.type == RecType::kDecline) && live) {
    l.bit = blocks.bit(rec.addr);
    l.bit.claim();
    l.state = rec.type == RecType::kBind ? LeaseState::kBound : LeaseState::kDeclined;
    if (l.state == LeaseState::kBound) st_.bound++;
    index_addr(li);
  } else {
    l.state = LeaseState::kExpired;
  }
  if (k.len) index_client(li);
}

bool Shard::release_addr(uint32_t addr, int64_t now, LeaseRecord& rec) {
  const uint32_t li = find_by_addr(addr);
  if (li == kNone) return false;
  Lease& l = slab_[li];
  Decision d;
  const bool declined = l.state == LeaseState::kDeclined;
  give_back(l, declined ? LeaseState::kUnused : LeaseState::kExpired, now);
  if (declined) {
    rec = LeaseRecord{};
    rec.type = RecType::kRelease;
    rec.addr = addr;
    rec.expire = now;
    return true;
  }
  fill_record(d, RecType::kRelease, l);
  rec = d.rec;
  st_.releases++;
  return true;
}

}  // namespace nf::dhcp
