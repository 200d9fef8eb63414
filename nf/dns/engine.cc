// answer() and the GSLB policies (see engine.h).
#include "nf/dns/engine.h"

#include <algorithm>

#include "nf/dns/rr.h"
#include "nf/health/monitor.h"

namespace nf::dns {
namespace {

constexpr int kMaxPick = 64;  // members considered per GSLB name (config caps it)

// The member's health slot, or null when it is not checked (no check configured, or the
// monitor had no free slot for it: health::kNoSlot, which is kNone).
inline const health::Slot* slot_of(const Member& m, const Env& env) {
  if (m.target == kNone || !env.slots) return nullptr;
  const uint32_t s = env.slot_of_target[m.target];
  return s == kNone ? nullptr : &env.slots[s];
}
inline bool member_up(const Member& m, const Env& env) {
  const health::Slot* s = slot_of(m, env);
  return !s || s->up.load(std::memory_order_relaxed) != 0;
}
inline uint32_t member_rtt(const Member& m, const Env& env) {
  const health::Slot* s = slot_of(m, env);
  const uint32_t r = s ? s->rtt_us.load(std::memory_order_relaxed) : 0;
  return r == 0 ? ~0u : r;  // not measured yet: last
}

inline void put_header(uint8_t* msg, const Query& q, uint16_t flags, uint16_t qd, uint16_t an,
                       uint16_t ns, uint16_t ar) {
  // RD and CD are copied (RFC 1035 4.1.1; RFC 6840 5.9), opcode kept, QR set.
  const uint16_t f = static_cast<uint16_t>(
      flag::kQr | (q.flags & (flag::kOpcodeMask | flag::kRd | flag::kCd)) | flags);
  wr16(msg + 2, f);
  wr16(msg + 4, qd);
  wr16(msg + 6, an);
  wr16(msg + 8, ns);
  wr16(msg + 10, ar);
}

// The OPT record (RFC 6891 6.1.2), with ECS echoed when the query had it (RFC 7871 7.2.1).
inline uint32_t put_opt(uint8_t* p, const Query& q, uint16_t udp_max, uint8_t ext_rcode,
                        uint8_t scope) {
  p[0] = 0;
  wr16(p + 1, type::OPT);
  wr16(p + 3, udp_max);
  p[5] = ext_rcode;
  p[6] = 0;  // version
  wr16(p + 7, q.do_bit ? kOptDo : 0);
  uint32_t n = 11;
  if (q.ecs) {
    wr16(p + 11, kOptionEcs);
    wr16(p + 13, static_cast<uint16_t>(4 + q.ecs_addr_len));
    wr16(p + 15, q.ecs_family);
    p[17] = q.ecs_source;
    p[18] = scope;
    std::memcpy(p + 19, q.ecs_addr, q.ecs_addr_len);
    n += 8u + q.ecs_addr_len;
  }
  wr16(p + 9, static_cast<uint16_t>(n - 11));
  return n;
}

inline uint32_t opt_size(const Query& q) {
  return q.edns ? 11u + (q.ecs ? 8u + q.ecs_addr_len : 0u) : 0u;
}

// An answer with no records: errors, REFUSED, BADVERS.
uint32_t bare(uint8_t* msg, const Query& q, bool with_question, uint8_t rc, uint16_t ext,
              const Env& env) {
  const uint32_t qend = with_question ? q.question_end : kHeaderLen;
  const bool opt = q.edns && with_question;
  put_header(msg, q, rc, with_question ? 1 : 0, 0, 0, opt ? 1 : 0);
  uint32_t n = qend;
  if (opt) n += put_opt(msg + qend, q, env.udp_max, static_cast<uint8_t>(ext >> 4), 0);
  return n;
}

}  // namespace

int select_members(const View& v, const Gslb& g, const Env& env, uint32_t geo_addr, State& st,
                   uint32_t* out, int max, uint8_t& scope) {
  scope = 0;
  const Member* mem = v.members.data() + g.mem_off;
  const int n = std::min<int>(g.mem_n, kMaxPick);
  int idx[kMaxPick];
  int k = 0;
  for (int i = 0; i < n; ++i)
    if (mem[i].weight != 0 && member_up(mem[i], env)) idx[k++] = i;
  if (k == 0) {
    // Only drained members are up: they still beat a member known to be down.
    for (int i = 0; i < n; ++i)
      if (member_up(mem[i], env)) idx[k++] = i;
  }
  if (k == 0) {
    switch (g.all_down) {
      case AllDown::kServfail:
        return -1;
      case AllDown::kBackup: {
        const int b = std::min<int>({g.backup_n, max, static_cast<int>(g.answers)});
        for (int i = 0; i < b; ++i) out[i] = v.backups[g.backup_off + i];
        if (b > 0) return b;
        [[fallthrough]];
      }
      case AllDown::kAll:
        for (int i = 0; i < n; ++i) idx[k++] = i;
        break;
    }
  }
  const int want = std::min<int>({static_cast<int>(g.answers), max, k});
  switch (g.policy) {
    case Policy::kGeo: {
      const uint16_t r = v.geo(geo_addr, scope);
      if (r != 0) {
        int j = 0;
        for (int i = 0; i < k; ++i)
          if (mem[idx[i]].region == r) idx[j++] = idx[i];
        if (j > 0) k = j;
      }
      [[fallthrough]];
    }
    case Policy::kRoundRobin: {
      const int w = std::min(want, k);
      const uint32_t start = st.rr++ % static_cast<uint32_t>(k);
      for (int i = 0; i < w; ++i) out[i] = mem[idx[(start + i) % k]].addr;
      return w;
    }
    case Policy::kFailover:
      for (int i = 0; i < want; ++i) out[i] = mem[idx[i]].addr;
      return want;
    case Policy::kWeighted: {
      uint64_t total = 0;
      for (int i = 0; i < k; ++i) total += mem[idx[i]].weight;
      if (total == 0) {  // every candidate drained: equal chances, in turn
        const uint32_t start = st.rr++ % static_cast<uint32_t>(k);
        for (int i = 0; i < want; ++i) out[i] = mem[idx[(start + i) % k]].addr;
        return want;
      }
      for (int p = 0; p < want; ++p) {
        uint64_t r = st.next() % total;
        int i = 0;
        while (r >= mem[idx[i]].weight) r -= mem[idx[i++]].weight;
        out[p] = mem[idx[i]].addr;
        total -= mem[idx[i]].weight;
        idx[i] = idx[--k];
        if (total == 0) return p + 1;
      }
      return want;
    }
    case Policy::kLowestRtt: {
      for (int p = 0; p < want; ++p) {
        int best = p;
        for (int i = p + 1; i < k; ++i)
          if (member_rtt(mem[idx[i]], env) < member_rtt(mem[idx[best]], env)) best = i;
        std::swap(idx[p], idx[best]);
        out[p] = mem[idx[p]].addr;
      }
      return want;
    }
  }
  return 0;
}

uint32_t answer(uint8_t* msg, uint32_t len, uint32_t cap, bool tcp, uint32_t client, const Env& env,
                State& st, Counters& c) {
  Query q;
  const ParseStatus ps = parse_query(msg, len, q);
  c.queries++;
  switch (ps) {
    case ParseStatus::kDrop:
      c.dropped++;
      return 0;
    case ParseStatus::kFormErr:
      c.formerr++;
      q.edns = false;
      return bare(msg, q, false, rcode::kFormErr, 0, env);
    case ParseStatus::kNotImp:
      c.notimp++;
      q.edns = false;
      return bare(msg, q, q.qname_len != 0, rcode::kNotImp, 0, env);
    case ParseStatus::kOk:
      break;
  }
  if (q.edns) c.edns++;
  if (q.ecs) c.ecs++;
  if (q.edns && q.edns_version != 0) {
    c.badvers++;
    return bare(msg, q, true, 0, rcode::kBadVers, env);
  }
  if ((q.qclass != kClassIN && q.qclass != 255) || q.qtype == type::AXFR || q.qtype == type::IXFR) {
    c.refused++;
    return bare(msg, q, true, rcode::kRefused, 0, env);
  }
  if (q.qtype == type::OPT) {
    c.formerr++;
    return bare(msg, q, true, rcode::kFormErr, 0, env);
  }
  const View& v = *env.view;
  uint32_t limit = tcp      ? 65535u
                   : q.edns ? std::min<uint32_t>(q.udp_size, env.udp_max)
                            : kMinUdpSize;
  limit = std::min(limit, cap);

  const Blob* blob = nullptr;
  const Gslb* gslb = nullptr;
  bool referral = false;
  auto at_node = [&](const Node& n) {
    if (n.flags & node_flag::kGslb) {
      if (q.qtype == type::A || q.qtype == type::ANY) {
        gslb = &v.gslbs[n.gslb];
        return;
      }
      blob = &v.blobs[n.nodata];
      return;
    }
    uint32_t b = v.type_blob(n, q.qtype);
    if (b == kNone) {
      if (n.flags & node_flag::kCname)
        b = n.other;
      else if (q.qtype == type::ANY && (n.flags & node_flag::kData))
        b = v.any_blob;
      else
        b = n.nodata;
    }
    blob = &v.blobs[b];
  };
  const uint32_t ni = v.find(q.lname, q.qname_len, q.hash);
  if (ni != kNone) {
    const Node& n = v.nodes[ni];
    if (n.cut != kNone) {
      blob = &v.blobs[n.other];
      referral = true;
    } else {
      at_node(n);
    }
  } else {
    // The closest encloser: remove labels until a name exists.
    uint32_t off = 0;
    uint32_t enc = kNone;
    while (q.lname[off] != 0) {
      off += q.lname[off] + 1u;
      const uint32_t l = q.qname_len - off;
      enc = v.find(q.lname + off, l, name_hash(q.lname + off, l));
      if (enc != kNone) break;
    }
    if (enc == kNone) {
      c.refused++;
      return bare(msg, q, true, rcode::kRefused, 0, env);
    }
    const Node& e = v.nodes[enc];
    if (e.cut != kNone) {
      blob = &v.blobs[e.other];  // every node at or below a cut holds its referral
      referral = true;
    } else if (e.wildcard != kNone) {
      at_node(v.nodes[e.wildcard]);
    } else {
      blob = &v.blobs[v.zones[e.zone].nxdomain];
    }
  }
  if (q.qtype == type::ANY) c.any++;

  // Assemble: header, question (in place), blob, GSLB addresses, OPT.
  uint32_t pos = q.question_end;
  uint16_t an = 0, ns = 0, ar = 0;
  uint8_t rc = rcode::kNoError;
  bool aa = true;
  uint16_t tail = kHeaderLen;
  const int32_t qlen = q.qname_len;
  if (blob) {
    if (pos + blob->len > cap) {
      c.truncated++;
      put_header(msg, q, flag::kAa | flag::kTc, 1, 0, 0, q.edns ? 1 : 0);
      return pos + (q.edns ? put_opt(msg + pos, q, env.udp_max, 0, 0) : 0);
    }
    std::memcpy(msg + pos, v.bytes.data() + blob->off, blob->len);
    const int32_t delta = qlen - blob->base_qlen;
    if (delta != 0) {
      const uint16_t* f = v.fixups.data() + blob->fix_off;
      for (uint16_t i = 0; i < blob->fix_n; ++i) {
        uint8_t* p = msg + pos + f[i];
        const int32_t t = ((p[0] & 0x3f) << 8 | p[1]) + delta;
        p[0] = static_cast<uint8_t>(0xc0 | t >> 8);
        p[1] = static_cast<uint8_t>(t);
      }
    }
    pos += blob->len;
    an = blob->an;
    ns = blob->ns;
    ar = blob->ar;
    rc = blob->rcode;
    aa = blob->aa;
    if (blob->gslb != kNone) {
      gslb = &v.gslbs[blob->gslb];
      tail = static_cast<uint16_t>(blob->tail_name == kHeaderLen ? kHeaderLen
                                                                 : blob->tail_name + delta);
    }
  }
  uint8_t scope = 0;
  if (gslb) {
    uint32_t addrs[kMaxPick];
    uint32_t geo_addr = client;
    const bool ecs_used = q.ecs && q.ecs_family == 1 && q.ecs_source > 0;
    if (ecs_used) {
      uint8_t a[4] = {0, 0, 0, 0};
      std::memcpy(a, q.ecs_addr, std::min<uint8_t>(q.ecs_addr_len, 4));
      geo_addr = rd32(a);
    }
    const int want = static_cast<int>(std::min<uint32_t>((cap - pos) / 16, kMaxPick));
    const int got = select_members(v, *gslb, env, geo_addr, st, addrs, want, scope);
    c.gslb++;
    if (got < 0) {
      c.gslb_all_down++;
      c.servfail++;
      return bare(msg, q, true, rcode::kServFail, 0, env);
    }
    // An answer not chosen by the ECS subnet (source 0, RFC 7871 7.1.2; IPv6, which the geo
    // map does not cover) is valid for any subnet: scope 0.
    if (gslb->policy != Policy::kGeo || !ecs_used) scope = 0;
    for (int i = 0; i < got; ++i) {
      uint8_t* p = msg + pos;
      p[0] = static_cast<uint8_t>(0xc0 | tail >> 8);
      p[1] = static_cast<uint8_t>(tail);
      wr16(p + 2, type::A);
      wr16(p + 4, kClassIN);
      wr32(p + 6, gslb->ttl);
      wr16(p + 10, 4);
      wr32(p + 12, addrs[i]);
      pos += 16;
    }
    an = static_cast<uint16_t>(an + got);
  }
  const uint32_t optlen = opt_size(q);
  if (pos + optlen > limit) {
    c.truncated++;
    put_header(msg, q, static_cast<uint16_t>((aa ? flag::kAa : 0) | flag::kTc | rc), 1, 0, 0,
               q.edns ? 1 : 0);
    pos = q.question_end;
    if (q.edns) pos += put_opt(msg + pos, q, env.udp_max, 0, scope);
    return pos;
  }
  if (q.edns) {
    pos += put_opt(msg + pos, q, env.udp_max, 0, scope);
    ar++;
  }
  put_header(msg, q, static_cast<uint16_t>((aa ? flag::kAa : 0) | rc), 1, an, ns, ar);
  if (rc == rcode::kNxDomain)
    c.nxdomain++;
  else if (referral)
    c.referral++;
  else if (an == 0)
    c.nodata++;
  else
    c.noerror++;
  return pos;
}

uint32_t truncate_answer(uint8_t* msg, uint32_t len) {
  if (len < kHeaderLen || rd16(msg + 4) != 1) return len;
  uint32_t off = skip_name(msg, len, kHeaderLen);
  if (!off || off + 4 > len) return len;
  const uint32_t qend = off + 4;
  const uint32_t rrs = uint32_t{rd16(msg + 6)} + rd16(msg + 8) + rd16(msg + 10);
  uint32_t opt_at = 0, opt_len = 0;
  off = qend;
  for (uint32_t r = 0; r < rrs; ++r) {
    const uint32_t e = skip_name(msg, len, off);
    if (!e || e + 10 > len) return len;
    const uint32_t end = e + 10u + rd16(msg + e + 8);
    if (end > len) return len;
    if (rd16(msg + e) == type::OPT) {
      opt_at = off;
      opt_len = end - off;
    }
    off = end;
  }
  if (opt_len) std::memmove(msg + qend, msg + opt_at, opt_len);
  wr16(msg + 2, static_cast<uint16_t>(rd16(msg + 2) | flag::kTc));
  wr16(msg + 6, 0);
  wr16(msg + 8, 0);
  wr16(msg + 10, opt_len ? 1 : 0);
  return qend + opt_len;
}

}  // namespace nf::dns
