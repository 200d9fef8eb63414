// libFuzzer: arbitrary bytes as a received frame through parse_frame() and the input stage.
// Every frame must get exactly one outcome, and whatever the stage passes on must be an IPv4
// datagram whose header lies inside the frame.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "pipelines/ip4/input_stage.h"
#include "tests/common/fake_mbuf.h"
#include "tests/common/packet_builder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nf;
  if (size > 2048) return 0;
  std::vector<uint8_t> frame(data, data + size);
  static test::FakeMbuf* fm = new test::FakeMbuf(frame);
  fm->reset(frame);
  // The first byte, when present, picks the MTU, so the oversized path is reached too.
  const uint16_t mtu = size ? static_cast<uint16_t>(68 + data[0] * 8) : 1500;
  fm->parse(test::kPortMac, mtu);
  ip4::InputStage st;
  Emit out;
  StageCounters c{};
  out.begin_stage(&c);
  Burst b;
  b.n = 1;
  b.pkts[0] = fm->mbuf();
  st.process(b, StageCtx{}, out);
  out.end_stage();
  if (c.next + c.tx + c.reply + c.punt + c.drop != 1) std::abort();
  if (c.next) {
    const PacketMeta& m = meta(fm->mbuf());
    if (m.l3_off + m.l3_len > fm->mbuf()->data_len || m.l3_len < 20) std::abort();
    if (m.l4_off && m.l4_off > m.l3_off + m.l3_len) std::abort();
  }
  return 0;
}
