#include "nf/neigh/neigh_table.h"

#include <algorithm>
#include <limits>

namespace nf {

const char* neigh_state_name(NeighState s) {
  switch (s) {
    case NeighState::kIncomplete:
      return "incomplete";
    case NeighState::kReachable:
      return "reachable";
    case NeighState::kProbe:
      return "probe";
    case NeighState::kFailed:
      return "failed";
    case NeighState::kStatic:
      return "static";
  }
  return "?";
}

NeighTable::NeighTable(const NeighbourParams& p, uint32_t nslots, NeighActions& act)
    : p_(p), act_(act), slot_ip_(nslots, 0) {
  free_slots_.reserve(nslots);
  for (uint32_t s = nslots; s-- > 0;) free_slots_.push_back(s);  // hand out 0, 1, 2... first
}

uint32_t NeighTable::slot_of(uint32_t ip) const {
  auto it = entries_.find(ip);
  return it == entries_.end() ? std::numeric_limits<uint32_t>::max() : it->second.slot;
}

NeighTable::Entry* NeighTable::create(uint32_t ip, uint16_t port, uint64_t now_ms) {
  reclaim();
  if (free_slots_.empty() || entries_.size() >= p_.max_entries) {
    // Evict the dynamic entry confirmed longest ago; gateways and statics stay.
    Entry* victim = nullptr;
    for (auto& [k, e] : entries_)
      if (!e.gateway && e.state != NeighState::kStatic && e.pending.empty() &&
          (!victim || e.confirmed_ms < victim->confirmed_ms))
        victim = &e;
    if (!victim) {
      stats_.table_full++;
      return nullptr;
    }
    stats_.evicted++;
    remove(victim->ip);
    reclaim();
    if (free_slots_.empty()) {  // the victim's slot is still in its grace period
      stats_.table_full++;
      return nullptr;
    }
  }
  uint32_t slot = free_slots_.back();
  free_slots_.pop_back();
  slot_ip_[slot] = ip;
  Entry& e = entries_[ip];
  e = Entry{ip,    port,  MacAddr{}, NeighState::kIncomplete, slot, now_ms, now_ms, 0,
            false, false, {}};
  return &e;
}

void NeighTable::remove(uint32_t ip) {
  auto it = entries_.find(ip);
  if (it == entries_.end()) return;
  const uint32_t slot = it->second.slot;
  const bool published = it->second.published;
  std::deque<void*> q;
  q.swap(it->second.pending);
  pending_total_ -= static_cast<uint32_t>(q.size());
  entries_.erase(it);  // before any action: they may call back into the table
  if (published) act_.unpublish(slot, ip);
  if (holding_)
    held_.push_back(slot);
  else
    retiring_.emplace_back(slot, act_.grace_start());
  for (void* pkt : q) act_.unreachable(pkt);
}

void NeighTable::release_held() {
  holding_ = false;
  if (held_.empty()) return;
  const uint64_t t = act_.grace_start();
  for (uint32_t s : held_) retiring_.emplace_back(s, t);
  held_.clear();
}

void NeighTable::reclaim() {
  auto keep = std::remove_if(retiring_.begin(), retiring_.end(), [&](auto& r) {
    if (!act_.grace_done(r.second)) return false;
    free_slots_.push_back(r.first);
    slot_ip_[r.first] = 0;
    return true;
  });
  retiring_.erase(keep, retiring_.end());
}

void NeighTable::flush_pending(Entry& e, bool send) {
  // Take the queue first: an action may re-enter resolve() for this very entry (an ICMP error
  // routed back towards the same neighbour), which must find an empty, consistent queue.
  std::deque<void*> q;
  q.swap(e.pending);
  pending_total_ -= static_cast<uint32_t>(q.size());
  const uint16_t port = e.port;
  const MacAddr mac = e.mac;
  for (void* pkt : q) {
    if (send)
      act_.transmit(pkt, port, mac);
    else
      act_.unreachable(pkt);
  }
}

void NeighTable::set_resolved(Entry& e, const MacAddr& mac, uint64_t now_ms) {
  bool changed = !e.published || !(e.mac == mac);
  if (e.state == NeighState::kIncomplete || e.state == NeighState::kFailed) stats_.resolved++;
  e.mac = mac;
  e.state = NeighState::kReachable;
  e.confirmed_ms = now_ms;
  e.next_ms = now_ms + p_.reachable_ms;
  e.sent = 0;
  if (changed) {
    act_.publish(e.slot, e.ip, e.mac, e.port);
    e.published = true;
  }
  flush_pending(e, true);
}

void NeighTable::fail(Entry& e, uint64_t now_ms) {
  stats_.failed++;
  if (!e.gateway) {
    remove(e.ip);  // answers the queue with unreachable once the entry is gone
    return;
  }
  // A gateway stays known (routes point at its slot); it is retried on demand and on a slow
  // timer, and traffic to it meanwhile gets host unreachable.
  if (e.published) act_.unpublish(e.slot, e.ip);
  e.published = false;
  e.state = NeighState::kFailed;
  e.sent = 0;
  e.next_ms = now_ms + p_.reachable_ms;
  flush_pending(e, false);
}

void NeighTable::resolve(uint32_t ip, uint16_t port, void* pkt, uint64_t now_ms) {
  auto it = entries_.find(ip);
  Entry* e = it == entries_.end() ? create(ip, port, now_ms) : &it->second;
  if (!e) {
    act_.unreachable(pkt);
    return;
  }
  if (e->state == NeighState::kReachable || e->state == NeighState::kProbe ||
      e->state == NeighState::kStatic) {
    // Resolved meanwhile (the worker raced the publication): send it straight away.
    act_.transmit(pkt, e->port, e->mac);
    return;
  }
  if (p_.queue_per_entry == 0 || p_.queue_total == 0) {
    act_.discard(pkt);
    stats_.queue_dropped++;
  } else {
    if (e->pending.size() >= p_.queue_per_entry || pending_total_ >= p_.queue_total) {
      // Drop the oldest of this entry (or of the fullest if this one is empty).
      Entry* from = e;
      if (e->pending.empty()) {
        for (auto& [k, o] : entries_)
          if (o.pending.size() > from->pending.size()) from = &o;
      }
      if (!from->pending.empty()) {
        act_.discard(from->pending.front());
        from->pending.pop_front();
        pending_total_--;
        stats_.queue_dropped++;
      }
    }
    e->pending.push_back(pkt);
    pending_total_++;
  }
  if (e->state == NeighState::kFailed || e->sent == 0) {
    e->state = NeighState::kIncomplete;
    e->sent = 1;
    e->next_ms = now_ms + p_.retrans_ms;
    stats_.requests_sent++;
    act_.send_request(e->port, ip, nullptr);
  }
}

void NeighTable::learn(uint32_t ip, const MacAddr& mac, uint16_t port, bool create_ok,
                       uint64_t now_ms) {
  auto it = entries_.find(ip);
  Entry* e = nullptr;
  if (it != entries_.end()) {
    e = &it->second;
    if (e->state == NeighState::kStatic) return;  // statics are configuration, not learned
    if (e->port != port) return;                  // never move a neighbour across ports by ARP
  } else if (create_ok) {
    e = create(ip, port, now_ms);
  }
  if (e) set_resolved(*e, mac, now_ms);
}

void NeighTable::tick(uint64_t now_ms) {
  reclaim();
  std::vector<uint32_t> failed;
  for (auto& [ip, e] : entries_) {
    if (e.state == NeighState::kStatic || now_ms < e.next_ms) continue;
    switch (e.state) {
      case NeighState::kReachable:
        e.state = NeighState::kProbe;
        e.sent = 0;
        [[fallthrough]];
      case NeighState::kProbe:
      case NeighState::kIncomplete:
        if (e.sent >= p_.probes) {
          failed.push_back(ip);
          break;
        }
        e.sent++;
        e.next_ms = now_ms + p_.retrans_ms;
        stats_.requests_sent++;
        act_.send_request(e.port, ip, e.state == NeighState::kProbe ? &e.mac : nullptr);
        break;
      case NeighState::kFailed:  // gateways: try again now and then
        e.state = NeighState::kIncomplete;
        e.sent = 1;
        e.next_ms = now_ms + p_.retrans_ms;
        stats_.requests_sent++;
        act_.send_request(e.port, ip, nullptr);
        break;
      case NeighState::kStatic:
        break;
    }
  }
  for (uint32_t ip : failed) {
    auto it = entries_.find(ip);
    if (it != entries_.end()) fail(it->second, now_ms);
  }
}

std::vector<uint32_t> NeighTable::sync(const std::vector<std::pair<uint32_t, uint16_t>>& gateways,
                                       const std::vector<StaticNeighbour>& statics,
                                       const Config& cfg, uint64_t now_ms) {
  holding_ = true;  // until release_held(), after the new snapshot is published
  // Forget what is no longer connected, or whose port changed, and statics no longer listed.
  std::vector<uint32_t> gone;
  for (auto& kv : entries_) {
    const uint32_t ip = kv.first;
    Entry& e = kv.second;
    bool is_static = std::any_of(statics.begin(), statics.end(),
                                 [ip](const StaticNeighbour& s) { return s.addr == ip; });
    if (cfg.connected_port(ip) != static_cast<int>(e.port) ||
        (e.state == NeighState::kStatic && !is_static))
      gone.push_back(ip);
    else
      e.gateway = false;
  }
  for (uint32_t ip : gone) remove(ip);

  for (const StaticNeighbour& s : statics) {
    auto it = entries_.find(s.addr);
    Entry* e = it == entries_.end() ? create(s.addr, s.port, now_ms) : &it->second;
    if (!e) continue;
    bool changed = !e->published || !(e->mac == s.mac);
    e->state = NeighState::kStatic;
    e->mac = s.mac;
    e->confirmed_ms = now_ms;
    if (changed) {
      act_.publish(e->slot, e->ip, e->mac, e->port);
      e->published = true;
    }
    flush_pending(*e, true);
  }

  std::vector<uint32_t> slots;
  for (auto [gw, port] : gateways) {
    auto it = entries_.find(gw);
    Entry* e = it == entries_.end() ? create(gw, port, now_ms) : &it->second;
    if (!e) {
      slots.push_back(std::numeric_limits<uint32_t>::max());
      continue;
    }
    e->gateway = true;
    if (e->state == NeighState::kIncomplete && e->sent == 0) {
      // Resolve gateways before the first packet needs them.
      e->sent = 1;
      e->next_ms = now_ms + p_.retrans_ms;
      stats_.requests_sent++;
      act_.send_request(port, gw, nullptr);
    }
    slots.push_back(e->slot);
  }
  return slots;
}

std::vector<NeighView> NeighTable::list(uint64_t now_ms) const {
  std::vector<NeighView> v;
  for (const auto& [ip, e] : entries_)
    v.push_back({ip, e.port, e.mac, e.state, e.slot, e.gateway,
                 static_cast<uint32_t>(e.pending.size()), now_ms - e.confirmed_ms});
  std::sort(v.begin(), v.end(), [](const NeighView& a, const NeighView& b) { return a.ip < b.ip; });
  return v;
}

}  // namespace nf
