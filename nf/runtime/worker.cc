#include "nf/runtime/worker.h"

#include <rte_cycles.h>

#include "drivers-glue/ports.h"
#include "nf/net/parse.h"

namespace nf {

Worker::Worker(WorkerSetup s) : s_(std::move(s)) {
  nb_ports_ = s_.ports->count();
  emit_.set_nb_ports(nb_ports_);
  for (size_t i = 0; i < s_.chain.size(); ++i)
    if (s_.chain[i]->wants_poll()) pollers_.push_back(i);
}

void Worker::poll_stages(StageCtx& ctx) {
  for (size_t i : pollers_) {
    emit_.begin_stage(&c_.polled[i]);
    s_.chain[i]->poll(ctx, emit_);
    emit_.end_stage();
    Burst& nb = emit_.next_burst();
    if (nb.n) [[unlikely]] {  // poll() has no next stage to feed
      c_.chain_end += nb.n;
      rte_pktmbuf_free_bulk(nb.pkts, nb.n);
      nb.n = 0;
    }
  }
  flush_side_outputs();
}

// Commits and handoffs: rings to the durable writer and to other workers.
void Worker::flush_side_outputs() {
  if (!emit_.side_pending()) return;
  emit_.side_flushed();
  Burst& cb = emit_.commits();
  if (cb.n) {
    unsigned q = s_.commit_ring
                     ? rte_ring_sp_enqueue_burst(s_.commit_ring, reinterpret_cast<void**>(cb.pkts),
                                                 cb.n, nullptr)
                     : 0;
    if (q < cb.n) [[unlikely]] {
      c_.commit_ring_full += cb.n - q;
      rte_pktmbuf_free_bulk(cb.pkts + q, cb.n - q);
    }
    cb.n = 0;
  }
  for (size_t w = 0; w < s_.handoff_rings.size(); ++w) {
    Burst& hb = emit_.handoffs(static_cast<uint16_t>(w));
    if (!hb.n) continue;
    unsigned q = rte_ring_mp_enqueue_burst(s_.handoff_rings[w], reinterpret_cast<void**>(hb.pkts),
                                           hb.n, nullptr);
    if (q < hb.n) [[unlikely]] {
      c_.handoff_ring_full += hb.n - q;
      rte_pktmbuf_free_bulk(hb.pkts + q, hb.n - q);
    }
    hb.n = 0;
  }
}

// Packets that arrive ready to send (injected by the management lcore, released by the
// durable writer) carry their port in meta.out_port.
void Worker::transmit_as_marked(rte_mbuf* const* pkts, unsigned n) {
  for (unsigned i = 0; i < n; ++i) {
    const uint16_t port = meta(pkts[i]).out_port;
    Emit::TxBuf& tb = emit_.txbuf(port);
    tb.pkts[tb.n++] = pkts[i];
    if (tb.n >= kMaxBurst) flush_port(port);
  }
}

void Worker::flush_port(uint16_t port) {
  Emit::TxBuf& b = emit_.txbuf(port);
  if (b.n == 0) return;
  uint16_t sent = s_.ports->tx(port, s_.id, b.pkts, b.n);
  c_.ports[port].tx += sent;
  if (sent < b.n) [[unlikely]] {
    c_.ports[port].tx_refused += b.n - sent;
    rte_pktmbuf_free_bulk(b.pkts + sent, b.n - sent);
  }
  b.n = 0;
}

void Worker::flush_all() {
  for (uint16_t p = 0; p < nb_ports_; ++p) flush_port(p);
}

void Worker::process_burst(Burst& in, StageCtx& ctx) {
  const size_t nstages = s_.chain.size();
  Burst* cur = &in;
  // Stage cycles are sampled: one burst in kTimedEvery is timed (a TSC read per stage
  // boundary), the rest run without reading the clock, which costs ~25 cycles a read here.
  // Packet counts are exact for every burst.
  const bool timed = (++bursts_ & (kTimedEvery - 1)) == 0;
  uint64_t t = timed ? rte_rdtsc() : 0;
  for (size_t i = 0; i < nstages && cur->n; ++i) {
    StageCounters& sc = c_.stages[i];
    emit_.begin_stage(&sc);
    s_.chain[i]->process(*cur, ctx, emit_);
    emit_.end_stage();
    if (timed) {
      const uint64_t t1 = rte_rdtsc();
      sc.cycles += t1 - t;
      sc.timed_pkts += cur->n;
      t = t1;
    }
    sc.calls++;
    sc.pkts += cur->n;
    cur = &emit_.next_burst();
  }
  if (cur != &in && cur->n) [[unlikely]] {
    c_.chain_end += cur->n;
    rte_pktmbuf_free_bulk(cur->pkts, cur->n);
  }

  Burst& pb = emit_.punts();
  if (pb.n) {
    for (uint16_t i = 0; i < pb.n; ++i)
      c_.punt_by_reason[static_cast<int>(meta(pb.pkts[i]).punt)]++;
    unsigned q =
        rte_ring_sp_enqueue_burst(s_.punt_ring, reinterpret_cast<void**>(pb.pkts), pb.n, nullptr);
    if (q < pb.n) [[unlikely]] {
      c_.punt_ring_full += pb.n - q;
      rte_pktmbuf_free_bulk(pb.pkts + q, pb.n - q);
    }
    pb.n = 0;
  }
  flush_side_outputs();
  Burst& db = emit_.drops();
  if (db.n) {
    rte_pktmbuf_free_bulk(db.pkts, db.n);
    db.n = 0;
  }
  for (uint16_t p = 0; p < nb_ports_; ++p)
    if (emit_.txbuf(p).n >= kMaxBurst) flush_port(p);
}

int Worker::run() {
  s_.rcu->online(s_.id);
  uint64_t last = rte_rdtsc();
  uint64_t last_drain = last;
  Burst b;
  // now_tsc is refreshed at the end of every loop; the first loop's stages (a DHCP stage's
  // poll, its first requests) must not see TSC 0, which a wrapped difference made months ahead.
  StageCtx ctx{nullptr, rte_rdtsc(), s_.id};
  uint32_t idle_loops = 0;
  while (!s_.stop->load(std::memory_order_relaxed)) {
    // The snapshot is loaded at a burst boundary and held until the quiescent report below.
    const Snapshot* snap = s_.snapshot->load();
    ctx.snap = snap;
    c_.snapshot_generation = snap->generation;
    bool busy = false;
    for (uint16_t p = 0; p < nb_ports_; ++p) {
      b.n = s_.ports->rx(p, s_.id, b.pkts, kMaxBurst);
      if (!b.n) continue;
      c_.ports[p].rx += b.n;
      // Locals, not references into the snapshot: the parse stores into mbufs, which the
      // compiler must assume alias anything it would otherwise re-read per packet.
      const MacAddr mac = snap->ports[p].mac;
      const uint32_t max_frame = snap->ports[p].mtu + RTE_ETHER_HDR_LEN;  // no tagged frames
      bool clean = true;
      // All of the burst's headers are requested before the first is parsed, so their
      // latencies overlap instead of each packet waiting for its own.
      for (uint16_t i = 0; i < b.n; ++i) rte_prefetch0(rte_pktmbuf_mtod(b.pkts[i], void*));
      for (uint16_t i = 0; i < b.n; ++i) {
        rte_mbuf* m = b.pkts[i];
        m->port = p;  // from here on, a port is its configuration index
        clean &=
            parse_frame(rte_pktmbuf_mtod(m, const uint8_t*), m->data_len, mac, max_frame, meta(m));
      }
      b.clean = clean;
      process_burst(b, ctx);
      busy = true;
    }

    rte_mbuf* inj[kMaxBurst];
    unsigned ni = rte_ring_sc_dequeue_burst(s_.inject_ring, reinterpret_cast<void**>(inj),
                                            kMaxBurst, nullptr);
    if (ni) {
      busy = true;
      c_.injected += ni;
      transmit_as_marked(inj, ni);
    }

    // Packets other workers handed over (their state is ours), and packets the durable
    // writer released (ACKs whose lease is on disk).
    if (s_.handoff_in) {
      b.n = static_cast<uint16_t>(rte_ring_sc_dequeue_burst(
          s_.handoff_in, reinterpret_cast<void**>(b.pkts), kMaxBurst, nullptr));
      if (b.n) {
        busy = true;
        c_.handoffs_received += b.n;
        b.clean = false;
        process_burst(b, ctx);
      }
    }
    if (s_.durable_ring) {
      unsigned nd = rte_ring_sc_dequeue_burst(s_.durable_ring, reinterpret_cast<void**>(inj),
                                              kMaxBurst, nullptr);
      c_.durable_sent += nd;
      busy |= nd != 0;
      transmit_as_marked(inj, nd);
    }
    if (!pollers_.empty()) poll_stages(ctx);

    // The one clock read of an untimed loop: the TX drain timer and the busy share need it.
    const uint64_t now = rte_rdtsc();
    ctx.now_tsc = now;
    if (now - last_drain >= s_.drain_tsc) {
      flush_all();
      last_drain = now;
    }
    c_.loops++;
    if (busy) {
      c_.busy_loops++;
      c_.busy_cycles += now - last;
    }
    last = now;
    s_.rcu->quiescent(s_.id);
    // Optional (lcores.worker_idle_sleep_us): after 256 empty loops in a row, sleep between
    // polls, so that a worker sharing a small VM's CPUs with its clients gives them the CPU
    // while it has nothing to do. Under load it never sleeps.
    if (busy) {
      idle_loops = 0;
    } else if (s_.idle_sleep_us && ++idle_loops >= 256) {
      rte_delay_us_sleep(s_.idle_sleep_us);
    }
  }
  flush_all();
  s_.rcu->offline(s_.id);
  return 0;
}
}  // namespace nf
