// Google Benchmark for the DHCP stage alone: full DORA exchanges (DISCOVER -> OFFER, REQUEST
// -> ACK with its lease record) through DhcpStage on 32-packet bursts of golden frames, the
// way a worker runs it (parse, stage, Emit). Items are leases.
//
//   BM_DoraNew        every exchange is a new client taking a new address
//   BM_DoraReturning  4096 clients coming back for their address (lease extended, recorded)
//   BM_DoraShards     BM_DoraNew on 1 and 2 threads, each a worker's shard (index t of 2)
//                     with its own clients, claiming addresses in one shared bitmap: how
//                     the lease ownership scales past one worker
//   BM_DoraDurable/G  BM_DoraNew plus the journal: records appended and fdatasync'ed in
//                     groups of G (the journal thread's group commit), in this same thread -
//                     a lower bound, since the real journal thread overlaps the sync with
//                     the worker's next bursts.
#include <benchmark/benchmark.h>
#include <rte_cycles.h>
#include <rte_eal.h>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "nf/dhcp/journal.h"
#include "nf/dhcp/service.h"
#include "nf/runtime/snapshot.h"
#include "perf/micro/bench_main.h"
#include "pipelines/dhcp/dhcp_stage.h"
#include "tests/common/dhcp_frames.h"
#include "tests/common/fake_mbuf.h"

namespace nf::test {
namespace {

constexpr uint32_t kServer = 0x0a000001;  // 10.0.0.1
// Where a REQUEST's option 50 value sits in DhcpFrame's layout (53 first, then 50).
constexpr size_t kReqIpOff = 14 + 20 + 8 + dhcp::off::kOptions + 3 + 2;
constexpr size_t kChaddrOff = 14 + 20 + 8 + dhcp::off::kChaddr;

// Client number c's MAC (and chaddr).
std::array<uint8_t, 6> client_mac(uint32_t c) {
  return {0x02,
          0xcc,
          static_cast<uint8_t>(c >> 24),
          static_cast<uint8_t>(c >> 16),
          static_cast<uint8_t>(c >> 8),
          static_cast<uint8_t>(c)};
}

struct DhcpBench {
  std::shared_ptr<const Config> cfg;
  dhcp::AddrBlocks blocks;
  Snapshot snap;
  StageEnv env;
  std::unique_ptr<dhcp::DhcpStage> stage;
  Emit emit;
  StageCounters counters{};
  std::vector<uint8_t> discover, request;
  std::vector<std::unique_ptr<FakeMbuf>> mbufs;
  uint32_t next_client = 0;
  std::vector<uint32_t> owned;  // with several shards: client numbers this one owns

  explicit DhcpBench(dhcp::AddrBlocks* shared = nullptr, uint16_t index = 0, uint16_t count = 1) {
    std::string text = R"(
lcores = { management = 0; workers = [1]; };
ports = ( { name = "lan"; device = "net_null0"; mac = "02:00:00:00:00:01";
            addresses = ["10.0.0.1/8"]; } );
pipeline = [ "input", "dhcp" ];
dhcp = {
  max_leases = 1200000;
  client_rate = 1000000; client_burst = 1000000;
  pools = ( { interface = "lan"; ranges = [ "10.1.0.0-10.15.255.255" ];
              options = { router = [ "10.0.0.1" ]; dns_servers = [ "10.0.0.1" ];
                          domain_name = "bench.example"; }; } );
};
)";
    auto r = load_config("bench.conf", &text);
    cfg = std::make_shared<const Config>(std::get<Config>(r));
    snap.config = cfg;
    snap.nb_ports = 1;
    snap.ports[0] = PortView::make(kPortMac, 1500);
    snap.min_mtu = 1500;
    snap.dhcp = dhcp::build_view(cfg, shared ? *shared : blocks);
    env.dhcp_max_leases = cfg->dhcp.max_leases;
    env.tsc_hz = rte_get_tsc_hz();
    env.tsc0 = rte_rdtsc();
    env.unix_ms0 = 1700000000000;
    env.workers = count;
    stage = std::make_unique<dhcp::DhcpStage>(index, env);
    // The clients this shard owns (the stage would hand the others to their worker).
    for (uint32_t c = 0; owned.size() < (count > 1 ? 200000u : 0u); ++c) {
      if (dhcp::ClientKey::from_hw(1, client_mac(c).data(), 6).hash() % count == index)
        owned.push_back(c);
    }
    emit.set_nb_ports(1);
    DhcpFrame d;
    discover = d.build();
    DhcpFrame q;
    q.type = dhcp::kRequest;
    q.requested = 1;
    q.server_id = kServer;
    request = q.build();
    for (int i = 0; i < kMaxBurst; ++i) mbufs.push_back(std::make_unique<FakeMbuf>(discover));
  }

  // One burst of `n` clients' DISCOVERs then their REQUESTs; returns ACKs seen.
  int dora(uint32_t first_client, std::vector<dhcp::LeaseRecord>* records) {
    Burst b;
    StageCtx ctx{&snap, rte_rdtsc(), 0};
    uint32_t offered[kMaxBurst];
    for (int pass = 0; pass < 2; ++pass) {
      const std::vector<uint8_t>& tmpl = pass == 0 ? discover : request;
      b.n = kMaxBurst;
      b.clean = true;
      for (int i = 0; i < kMaxBurst; ++i) {
        FakeMbuf& fm = *mbufs[i];
        fm.reset(tmpl);
        uint8_t* p = rte_pktmbuf_mtod(fm.mbuf(), uint8_t*);
        uint32_t c = first_client + static_cast<uint32_t>(i);
        if (!owned.empty()) c = owned[c % owned.size()];
        const std::array<uint8_t, 6> mac = client_mac(c);
        std::memcpy(p + 6, mac.data(), 6);
        std::memcpy(p + kChaddrOff, mac.data(), 6);
        if (pass == 1) dhcp::wr32(p + kReqIpOff, offered[i]);
        b.clean &= fm.parse(kPortMac);
        b.pkts[i] = fm.mbuf();
      }
      emit.begin_stage(&counters);
      stage->process(b, ctx, emit);
      emit.end_stage();
      int acks = 0;
      Emit::TxBuf& tx = emit.txbuf(0);
      for (uint16_t i = 0; i < tx.n; ++i)
        offered[i] =
            dhcp::rd32(rte_pktmbuf_mtod(tx.pkts[i], uint8_t*) + 14 + 20 + 8 + dhcp::off::kYiaddr);
      Burst& cb = emit.commits();
      for (uint16_t i = 0; i < cb.n; ++i) {
        if (records) records->push_back(*dhcp::record_area(cb.pkts[i]));
        acks++;
      }
      if (pass == 0 && tx.n != kMaxBurst) return -1;
      tx.n = 0;
      cb.n = 0;
      emit.drops().n = 0;
      emit.next_burst().n = 0;
      if (pass == 1) return acks;
    }
    return 0;
  }
};

void BM_DoraNew(benchmark::State& state) {
  static DhcpBench b;  // the lease table persists across repetitions: new clients each time
  for (auto _ : state) {
    if (b.dora(b.next_client, nullptr) != kMaxBurst) {
      state.SkipWithError("a DORA did not complete");
      break;
    }
    b.next_client += kMaxBurst;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kMaxBurst);
}

void BM_DoraReturning(benchmark::State& state) {
  DhcpBench b;
  uint32_t c = 0;
  for (auto _ : state) {
    if (b.dora(0x800000 + c, nullptr) != kMaxBurst) {
      state.SkipWithError("a DORA did not complete");
      break;
    }
    c = (c + kMaxBurst) % 4096;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kMaxBurst);
}

void BM_DoraShards(benchmark::State& state) {
  static dhcp::AddrBlocks shared;
  const auto t = static_cast<uint16_t>(state.thread_index());
  const auto n = static_cast<uint16_t>(state.threads());
  DhcpBench b(&shared, t, n);
  uint32_t c = 0;
  for (auto _ : state) {
    if (b.dora(c, nullptr) != kMaxBurst) {
      state.SkipWithError("a DORA did not complete");
      break;
    }
    c += kMaxBurst;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kMaxBurst);
}

void BM_DoraDurable(benchmark::State& state) {
  static DhcpBench b;
  const auto group = static_cast<size_t>(state.range(0));
  char tmpl[] = "/var/tmp/nf-bench-journal-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  {
    dhcp::Journal j;
    dhcp::RecoveryReport rep;
    if (!j.open(dir, true, rep).empty()) {
      state.SkipWithError("cannot open a journal in /var/tmp");
      return;
    }
    std::vector<dhcp::LeaseRecord> recs;
    recs.reserve(group + kMaxBurst);
    for (auto _ : state) {
      b.dora(0x1000000 + b.next_client, &recs);
      b.next_client += kMaxBurst;
      if (recs.size() >= group) {
        j.append(recs);
        recs.clear();
      }
    }
    j.append(recs);
    state.counters["syncs"] = static_cast<double>(j.syncs());
  }
  std::filesystem::remove_all(dir);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kMaxBurst);
}

BENCHMARK(BM_DoraNew)->Iterations(8192);
BENCHMARK(BM_DoraReturning);
BENCHMARK(BM_DoraShards)->Threads(1)->Threads(2)->Iterations(4096)->UseRealTime();
BENCHMARK(BM_DoraDurable)->Arg(32)->Arg(256)->Arg(1024)->Iterations(2048)->UseRealTime();

}  // namespace
}  // namespace nf::test

int main(int argc, char** argv) {
  return nf::test::bench_main(argc, argv);
}
