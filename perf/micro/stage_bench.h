// What a stage micro-benchmark runs a stage in: the snapshot and environment it is built
// with, the Emit sink and counters a worker would give it, and the fake mbufs of one burst
// (tests/common/fake_mbuf.h: no mempool, so the stage is timed without EAL's allocator).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "nf/core/stage.h"
#include "nf/runtime/snapshot.h"
#include "tests/common/fake_mbuf.h"
#include "tests/common/packet_builder.h"

namespace nf::test {

struct StageBenchBase {
  Snapshot snap;
  StageEnv env;
  Emit emit;
  StageCounters counters{};
  std::vector<std::unique_ptr<FakeMbuf>> mbufs;  // kMaxBurst of them, made by the bench

  // A burst of every mbuf restored from `frame`, packet i changed by edit(i, its bytes), then
  // parsed as the input stage would (addressed to kPortMac).
  template <typename Edit>
  Burst fill(const std::vector<uint8_t>& frame, Edit&& edit) {
    Burst b;
    b.n = kMaxBurst;
    b.clean = true;
    for (int i = 0; i < kMaxBurst; ++i) {
      FakeMbuf& fm = *mbufs[static_cast<size_t>(i)];
      fm.reset(frame);
      edit(i, rte_pktmbuf_mtod(fm.mbuf(), uint8_t*));
      b.clean &= fm.parse(kPortMac);
      b.pkts[i] = fm.mbuf();
    }
    return b;
  }
};

}  // namespace nf::test
