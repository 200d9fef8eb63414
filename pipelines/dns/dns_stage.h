// dns: the authoritative GSLB DNS responder, answering UDP queries on the worker lcores.
//
// Purpose: answer DNS queries to the configured listen addresses (UDP port 53) from the
//          compiled zones and GSLB names (nf/dns/engine.h), in place in the query's mbuf.
//          Everything else passes on: TCP to port 53 reaches the management lcore's TCP
//          server through the kernel exception path (RFC 7766), like any other local traffic.
// Edges:   next (not a DNS query to us); reply (the answer, on the ingress port); drop.
// State:   per worker: GSLB policy state (round robin position, random numbers), the response
//          rate limiter's buckets, counters (published to `show dns` through StatsTable).
//          Shared: the snapshot's dns::Runtime (immutable, replaced whole on reload, so a zone
//          reload never loses a query) and the health slots (relaxed atomic loads).
// Drops:   dns_unanswerable (responses, runts: answering could loop), dns_rate_limited (RRL,
//          not slipped), dns_fragment (queries never need fragments), dns_ip_options,
//          dns_multi_segment (the answer is built in one buffer), dns_bad_length.
// Abuse:   response rate limiting per client prefix (BIND/NSD RRL model): each prefix gets
//          rrl_rate answers per second per worker; beyond that every rrl_slip-th answer goes
//          out truncated (TC=1, a legitimate client retries over TCP, a spoofed victim gets a
//          packet no larger than the query) and the rest are dropped. Exempt prefixes are
//          never limited.
#pragma once

#include <rte_ip.h>
#include <rte_udp.h>

#include <array>
#include <memory>
#include <string_view>

#include "nf/core/stage.h"
#include "nf/dns/engine.h"
#include "nf/runtime/snapshot.h"

namespace nf::dns {

class DnsStage final : public Stage {
 public:
  enum Drop : uint8_t {
    kUnanswerable,
    kRateLimited,
    kFragment,
    kIpOptions,
    kMultiSegment,
    kBadLength,
    kDropCount
  };
  static constexpr std::array<std::string_view, kDropCount> kDropNames = {
      "dns_unanswerable", "dns_rate_limited",  "dns_fragment",
      "dns_ip_options",   "dns_multi_segment", "dns_bad_length"};

  DnsStage(uint16_t worker, const StageEnv& env);

  void process(Burst& in, const StageCtx& ctx, Emit& out) noexcept override {
    const Runtime* rt = ctx.snap->dns.get();
    if (!rt) {
      out.next_all(in);
      return;
    }
    const Env env = rt->env();
    const uint32_t now_s = static_cast<uint32_t>(ctx.now_tsc / hz_);
    for (uint16_t i = 0; i < in.n; ++i) {
      rte_mbuf* m = in.pkts[i];
      const PacketMeta& md = meta(m);
      if (md.ip_proto != IPPROTO_UDP || !md.l4_off || !rt->listens(md.ip_dst)) {
        out.next(m);
        continue;
      }
      const auto* udp = rte_pktmbuf_mtod_offset(m, const rte_udp_hdr*, md.l4_off);
      if (udp->dst_port != RTE_BE16(kPort)) {
        out.next(m);
        continue;
      }
      handle(m, *rt, env, ctx.snap->ports[m->port].mtu, now_s, out);
    }
  }

  const ThreadCounters& counters() const { return *tc_; }

 private:
  struct Bucket {
    uint32_t key;
    uint32_t sec;
    int32_t tokens;
    uint32_t limited;
  };
  static constexpr uint32_t kBuckets = 1u << 16;

  void handle(rte_mbuf* m, const Runtime& rt, const Env& env, uint16_t mtu, uint32_t now_s,
              Emit& out) noexcept;
  // RRL: true to send, false to drop; *slip set when the answer must be truncated first.
  bool rate_ok(const Runtime& rt, uint32_t client, uint8_t rc, uint32_t now_s, bool& slip) noexcept;

  State st_;
  ThreadCounters own_{};
  ThreadCounters* tc_;
  uint64_t hz_;
  std::unique_ptr<Bucket[]> buckets_;
};

}  // namespace nf::dns
