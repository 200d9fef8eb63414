// TCP state tracking (nf/lb/tcp_state.h): the two-way machine of NAT flows (open, both close
// orders, FIN+ACK answers, simultaneous close, RST, reuse), the one-way DSR machine, the
// expiry rule (nothing but progress refreshes a flow), and the timeout presets against the
// RFC floors they cite.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "nf/lb/tcp_state.h"

namespace nf::test {
namespace {

using lb::kCloserReply;
using lb::TcpState;
using lb::TcpStep;
namespace f = lb::tcpflag;

constexpr uint8_t kSyn = f::kSyn;
constexpr uint8_t kSynAck = f::kSyn | f::kAck;
constexpr uint8_t kAck = f::kAck;
constexpr uint8_t kData = f::kAck | f::kPsh;
constexpr uint8_t kFin = f::kFin | f::kAck;
constexpr uint8_t kRst = f::kRst;
constexpr uint8_t kRstAck = f::kRst | f::kAck;

uint8_t b(TcpState s, uint8_t closer = 0) {
  return static_cast<uint8_t>(s) | closer;
}

struct Pkt {
  uint8_t flags;
  unsigned dir;
  uint8_t want;  // stored byte after the packet
  bool refresh;
};

// Feeds packets from `start` and checks every step (state byte, refresh, valid).
void run(uint8_t start, const std::vector<Pkt>& seq, bool one_way) {
  uint8_t cur = start;
  for (size_t i = 0; i < seq.size(); ++i) {
    const TcpStep st = lb::tcp_step(cur, seq[i].flags, seq[i].dir, one_way);
    EXPECT_EQ(st.next, seq[i].want) << "packet " << i;
    EXPECT_EQ(st.refresh, seq[i].refresh) << "packet " << i;
    EXPECT_TRUE(st.valid) << "packet " << i;
    cur = st.next;
  }
}

TEST(TcpState, OpenAndClientClosesFirst) {
  run(b(TcpState::kNone),
      {{kSyn, 0, b(TcpState::kSynSent), true},
       {kSynAck, 1, b(TcpState::kSynRecv), true},
       {kAck, 0, b(TcpState::kEstablished), true},
       {kData, 0, b(TcpState::kEstablished), true},
       {kData, 1, b(TcpState::kEstablished), true},
       {kFin, 0, b(TcpState::kFinWait), true},
       {kData, 1, b(TcpState::kCloseWait), true},  // the server acks the FIN (and may send)
       {kData, 1, b(TcpState::kCloseWait), true},
       {kAck, 0, b(TcpState::kCloseWait), true},
       {kFin, 1, b(TcpState::kLastAck), true},
       {kAck, 0, b(TcpState::kTimeWait), true}},
      false);
}

TEST(TcpState, ServerClosesFirstRemembersTheCloser) {
  const uint8_t r = kCloserReply;
  run(b(TcpState::kEstablished),
      {{kFin, 1, b(TcpState::kFinWait, r), true},
       {kFin, 1, b(TcpState::kFinWait, r), false},  // retransmitted FIN: not the other side's
       {kAck, 1, b(TcpState::kFinWait, r), true},
       {kAck, 0, b(TcpState::kCloseWait, r), true},
       {kFin, 1, b(TcpState::kCloseWait, r), false},
       {kFin, 0, b(TcpState::kLastAck, r), true},
       {kAck, 0, b(TcpState::kLastAck, r), false},  // the ACK must come from the closer (1)
       {kAck, 1, b(TcpState::kTimeWait, r), true}},
      false);
}

TEST(TcpState, FinAckAnswerSkipsCloseWait) {
  run(b(TcpState::kEstablished),
      {{kFin, 0, b(TcpState::kFinWait), true},
       {kFin, 1, b(TcpState::kLastAck), true},
       {kAck, 0, b(TcpState::kTimeWait), true}},
      false);
}

TEST(TcpState, SimultaneousClose) {
  // Both FINs cross; each side then acks the other's FIN. Only the first closer's ACK ends it.
  run(b(TcpState::kEstablished),
      {{kFin, 0, b(TcpState::kFinWait), true},
       {kFin, 1, b(TcpState::kLastAck), true},
       {kAck, 1, b(TcpState::kLastAck), false},
       {kFin, 0, b(TcpState::kLastAck), false},
       {kAck, 0, b(TcpState::kTimeWait), true},
       {kAck, 1, b(TcpState::kTimeWait), false}},
      false);
}

TEST(TcpState, SimultaneousOpen) {
  run(b(TcpState::kNone),
      {{kSyn, 0, b(TcpState::kSynSent), true},
       {kSyn, 1, b(TcpState::kSynRecv), true},
       {kAck, 0, b(TcpState::kEstablished), true}},
      false);
}

TEST(TcpState, RstFromEitherSideCloses) {
  for (const unsigned dir : {0u, 1u}) {
    for (const uint8_t rst : {kRst, kRstAck}) {
      for (const TcpState s : {TcpState::kSynSent, TcpState::kSynRecv, TcpState::kEstablished,
                               TcpState::kFinWait, TcpState::kLastAck, TcpState::kTimeWait}) {
        const TcpStep st = lb::tcp_step(b(s), rst, dir, false);
        EXPECT_EQ(st.next, b(TcpState::kClose)) << int(s) << " dir " << dir;
        EXPECT_FALSE(st.refresh);
        EXPECT_TRUE(st.valid);
      }
    }
  }
  // The closer bit does not survive a RST.
  EXPECT_EQ(lb::tcp_step(b(TcpState::kFinWait, kCloserReply), kRst, 0, false).next,
            b(TcpState::kClose));
}

TEST(TcpState, RstNeverExtendsTheFlow) {
  const auto t = lb::Timeouts::lb(1000);
  const uint64_t close_t = t.tcp[static_cast<unsigned>(TcpState::kClose)];
  ASSERT_EQ(close_t, 10'000u);
  // Established flow expiring at 900 s; a RST at 100 s cuts it to 110 s.
  uint64_t exp = 900'000;
  TcpStep st = lb::tcp_step(b(TcpState::kEstablished), kRst, 1, false);
  exp = lb::tcp_expiry(exp, 100'000, t.for_tcp(st.next), st.refresh);
  EXPECT_EQ(exp, 110'000u);
  // More RSTs (and ACKs) at 105 s keep it dying at 110 s.
  st = lb::tcp_step(st.next, kRst, 0, false);
  exp = lb::tcp_expiry(exp, 105'000, t.for_tcp(st.next), st.refresh);
  EXPECT_EQ(exp, 110'000u);
  st = lb::tcp_step(st.next, kData, 0, false);
  EXPECT_EQ(st.next, b(TcpState::kClose));
  exp = lb::tcp_expiry(exp, 106'000, t.for_tcp(st.next), st.refresh);
  EXPECT_EQ(exp, 110'000u);
  // A new SYN on the same tuple starts a new connection and is refreshed normally.
  st = lb::tcp_step(st.next, kSyn, 0, false);
  EXPECT_EQ(st.next, b(TcpState::kSynSent));
  EXPECT_EQ(lb::tcp_expiry(exp, 107'000, t.for_tcp(st.next), st.refresh), 117'000u);
}

TEST(TcpState, SynRetransmissionDoesNotExtendBeyondTheSynTimeout) {
  const auto t = lb::Timeouts::lb(1000);  // milliseconds
  for (const bool one_way : {false, true}) {
    uint8_t s = b(TcpState::kNone);
    TcpStep st = lb::tcp_step(s, kSyn, 0, one_way);
    ASSERT_TRUE(st.refresh);
    s = st.next;
    uint64_t exp = lb::tcp_expiry(0, 0, t.for_tcp(s), st.refresh);
    ASSERT_EQ(exp, 10'000u);
    // Linux retries at 1, 3, 7 s: the entry still dies 10 s after the first SYN.
    for (const uint64_t at : {1'000u, 3'000u, 7'000u}) {
      st = lb::tcp_step(s, kSyn, 0, one_way);
      EXPECT_EQ(st.next, s);
      EXPECT_FALSE(st.refresh);
      exp = lb::tcp_expiry(exp, at, t.for_tcp(st.next), st.refresh);
      EXPECT_EQ(exp, 10'000u) << "one_way " << one_way << " at " << at;
    }
  }
}

TEST(TcpState, DataBeforeHandshakeIsInvalidAndKeepsState) {
  struct Case {
    uint8_t cur;
    uint8_t flags;
    unsigned dir;
  };
  const Case cases[] = {
      {b(TcpState::kNone), kAck, 0},       {b(TcpState::kNone), kData, 0},
      {b(TcpState::kNone), kSynAck, 1},    {b(TcpState::kNone), kSyn, 1},
      {b(TcpState::kSynSent), kAck, 0},    {b(TcpState::kSynSent), kData, 0},
      {b(TcpState::kSynSent), kData, 1},   {b(TcpState::kSynSent), kFin, 0},
      {b(TcpState::kSynSent), kSynAck, 0},
  };
  for (const Case& c : cases) {
    const TcpStep st = lb::tcp_step(c.cur, c.flags, c.dir, false);
    EXPECT_FALSE(st.valid) << int(c.cur) << " flags " << int(c.flags) << " dir " << c.dir;
    EXPECT_FALSE(st.refresh);
    EXPECT_EQ(st.next, c.cur);
  }
  // An invalid packet leaves the expiry where it was.
  EXPECT_EQ(lb::tcp_expiry(5'000, 4'000, 10'000, false), 5'000u);
}

TEST(TcpState, MalformedFlagCombinationsAreInvalid) {
  for (const uint8_t flags :
       {uint8_t(f::kSyn | f::kFin), uint8_t(f::kSyn | f::kRst), uint8_t(f::kFin), uint8_t(0),
        uint8_t(f::kPsh | f::kUrg), uint8_t(f::kFin | f::kPsh | f::kUrg)}) {
    for (const bool one_way : {false, true}) {
      const TcpStep st = lb::tcp_step(b(TcpState::kEstablished), flags, 0, one_way);
      EXPECT_FALSE(st.valid) << int(flags);
      EXPECT_EQ(st.next, b(TcpState::kEstablished));
      EXPECT_FALSE(st.refresh);
    }
  }
}

TEST(TcpState, SynInsideEstablishedFlowIsIgnored) {
  for (const bool one_way : {false, true}) {
    const TcpStep st = lb::tcp_step(b(TcpState::kEstablished), kSyn, 0, one_way);
    EXPECT_FALSE(st.valid);
    EXPECT_EQ(st.next, b(TcpState::kEstablished));
  }
}

TEST(TcpState, TupleReuseAfterTimeWait) {
  const TcpStep st = lb::tcp_step(b(TcpState::kTimeWait, kCloserReply), kSyn, 0, false);
  EXPECT_EQ(st.next, b(TcpState::kSynSent));  // closer bit cleared
  EXPECT_TRUE(st.refresh);
  // Retransmitted final ACKs in TIME_WAIT are forwarded but do not prolong it.
  const TcpStep a = lb::tcp_step(b(TcpState::kTimeWait), kAck, 1, false);
  EXPECT_EQ(a.next, b(TcpState::kTimeWait));
  EXPECT_FALSE(a.refresh);
  EXPECT_TRUE(a.valid);
}

TEST(TcpState, DsrOneWaySequence) {
  run(b(TcpState::kNone),
      {{kSyn, 0, b(TcpState::kSynRecv), true},
       {kSyn, 0, b(TcpState::kSynRecv), false},
       {kAck, 0, b(TcpState::kEstablished), true},
       {kData, 0, b(TcpState::kEstablished), true},
       {kFin, 0, b(TcpState::kFinWait), true},
       {kAck, 0, b(TcpState::kFinWait), true},  // acks of the server's data and FIN
       {kFin, 0, b(TcpState::kFinWait), false},
       {kSyn, 0, b(TcpState::kSynRecv), true},  // the client reuses the tuple
       {kRst, 0, b(TcpState::kClose), false},
       {kAck, 0, b(TcpState::kClose), false},
       {kSyn, 0, b(TcpState::kSynRecv), true}},
      true);
}

TEST(TcpState, DsrPicksUpMidStreamFlows) {
  EXPECT_EQ(lb::tcp_step(b(TcpState::kNone), kData, 0, true).next, b(TcpState::kEstablished));
  EXPECT_EQ(lb::tcp_step(b(TcpState::kNone), kFin, 0, true).next, b(TcpState::kFinWait));
  // ... which the two-way machine refuses (a NAT flow cannot start without a SYN).
  EXPECT_FALSE(lb::tcp_step(b(TcpState::kNone), kData, 0, false).valid);
}

TEST(TcpState, DsrRejectsReplyDirection) {
  for (const uint8_t flags : {kSyn, kSynAck, kAck, kFin, kRst}) {
    const TcpStep st = lb::tcp_step(b(TcpState::kEstablished), flags, 1, true);
    EXPECT_FALSE(st.valid) << int(flags);
    EXPECT_EQ(st.next, b(TcpState::kEstablished));
    EXPECT_FALSE(st.refresh);
  }
}

// Every stored byte x every flag byte x direction x machine: a step that does not refresh
// never moves the expiry later; invalid steps keep the byte; results are real states;
// the one-way machine never enters a two-way-only state.
TEST(TcpState, ExhaustiveInvariants) {
  const auto t = lb::Timeouts::lb(1000);
  unsigned valid = 0;
  unsigned invalid = 0;
  for (unsigned s = 0; s < lb::kTcpStates; ++s) {
    for (const uint8_t closer : {uint8_t{0}, kCloserReply}) {
      const uint8_t cur = static_cast<uint8_t>(s) | closer;
      for (unsigned fl = 0; fl < 256; ++fl) {
        for (unsigned dir = 0; dir < 2; ++dir) {
          for (const bool one_way : {false, true}) {
            const TcpStep st = lb::tcp_step(cur, static_cast<uint8_t>(fl), dir, one_way);
            ASSERT_LT(st.next & 0x0fu, lb::kTcpStates);
            if (!st.valid) {
              ++invalid;
              ASSERT_EQ(st.next, cur);
              ASSERT_FALSE(st.refresh);
            } else {
              ++valid;
            }
            if ((fl & f::kRst) && !(fl & f::kSyn) && !(one_way && dir)) {
              ASSERT_EQ(st.next, b(TcpState::kClose));
              ASSERT_FALSE(st.refresh);
            }
            if (!st.refresh) {
              const uint64_t old = 50'000;
              ASSERT_LE(lb::tcp_expiry(old, 45'000, t.for_tcp(st.next), false), old);
            }
            if (one_way && s != static_cast<unsigned>(TcpState::kSynSent) && s < 5) {
              const TcpState n = lb::tcp_state_of(st.next);
              ASSERT_TRUE(n == TcpState::kNone || n == TcpState::kSynRecv ||
                          n == TcpState::kEstablished || n == TcpState::kFinWait ||
                          n == TcpState::kClose)
                  << int(cur) << " " << fl;
            }
          }
        }
      }
    }
  }
  EXPECT_GT(valid, 1000u);
  EXPECT_GT(invalid, 1000u);
}

TEST(TcpState, TimeoutPresetsMeetTheirSources) {
  const auto lbt = lb::Timeouts::lb(1);                                     // seconds
  EXPECT_EQ(lbt.tcp[static_cast<unsigned>(TcpState::kEstablished)], 900u);  // IPVS
  EXPECT_EQ(lbt.tcp[static_cast<unsigned>(TcpState::kSynSent)], 10u);
  EXPECT_EQ(lbt.tcp[static_cast<unsigned>(TcpState::kSynRecv)], 10u);
  EXPECT_EQ(lbt.tcp[static_cast<unsigned>(TcpState::kTimeWait)], 10u);
  EXPECT_EQ(lbt.tcp[static_cast<unsigned>(TcpState::kClose)], 10u);
  EXPECT_GE(lbt.udp, 120u);  // RFC 4787 REQ-5
  EXPECT_GE(lbt.icmp, 60u);  // RFC 5508 REQ-1
  // Handshake states are the shortest live ones, so a SYN flood leaves quickly.
  for (unsigned s = 1; s < lb::kTcpStates; ++s) EXPECT_LE(lbt.tcp[1], lbt.tcp[s]) << s;

  const auto nat = lb::Timeouts::nat(1000);                                       // milliseconds
  EXPECT_EQ(nat.tcp[static_cast<unsigned>(TcpState::kEstablished)], 7'440'000u);  // RFC 5382
  for (unsigned s = 0; s < lb::kTcpStates; ++s) EXPECT_GE(nat.tcp[s], 240'000u) << s;
  EXPECT_EQ(nat.udp, 300'000u);
  EXPECT_EQ(nat.icmp, 60'000u);
  // The closer bit does not change the timeout lookup.
  EXPECT_EQ(nat.for_tcp(b(TcpState::kFinWait, kCloserReply)),
            nat.tcp[static_cast<unsigned>(TcpState::kFinWait)]);
}

TEST(TcpState, ExpiryArithmeticSaturates) {
  EXPECT_EQ(lb::expiry_after(10, 5), 15u);
  EXPECT_EQ(lb::expiry_after(UINT64_MAX - 3, 10), UINT64_MAX);
  EXPECT_EQ(lb::tcp_expiry(100, 50, 10, true), 60u);     // refresh may also shorten
  EXPECT_EQ(lb::tcp_expiry(100, 50, 100, false), 100u);  // never later
  EXPECT_EQ(lb::tcp_expiry(100, 50, 10, false), 60u);    // but earlier
}

}  // namespace
}  // namespace nf::test
