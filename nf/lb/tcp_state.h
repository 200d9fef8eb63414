// TCP connection tracking for the L4 load balancer and router NAT flow tables: one state
// byte per flow, advanced by tcp_step() for every packet, and the idle timeouts that go with
// each state. Header-only and pure (no clock, no EAL): the caller passes the TCP flags and
// direction and applies the returned expiry to the flow record.
//
// Theory of operation
// -------------------
// The appliance sees only flags, not sequence numbers it could trust (it does not track
// windows), so the machine follows the flag sequence the way IPVS and Linux conntrack do,
// and uses the state only to pick an idle timeout. It never decides forwarding on its own.
//
// Two machines share one state set:
//   two-way (NAT, full NAT, router PAT: both directions cross the appliance; dir 0 = the
//            side that opened, dir 1 = the reply):
//              NONE -SYN(0)-> SYN_SENT -SYN+ACK(1)-> SYN_RECV -ACK(0)-> ESTABLISHED
//              ESTABLISHED -FIN(c)-> FIN_WAIT    c = the first side to close
//              FIN_WAIT -ACK(!c)-> CLOSE_WAIT -FIN(!c)-> LAST_ACK
//              FIN_WAIT -FIN(!c)-> LAST_ACK       (a FIN+ACK answer, or a simultaneous close)
//              LAST_ACK -ACK(c)-> TIME_WAIT
//              TIME_WAIT or CLOSE -SYN(0)-> SYN_SENT   (the 4-tuple is reused)
//            A reply SYN in SYN_SENT (simultaneous open, RFC 9293 3.5 figure 7) -> SYN_RECV.
//            The closing side is kept in bit 7 of the byte (kCloserReply), so a retransmitted
//            FIN is told apart from the other side's FIN without sequence numbers.
//   one-way  (DSR: only client packets are seen; IPVS's "input only" table, ip_vs_proto_tcp.c):
//              NONE -SYN-> SYN_RECV -ACK-> ESTABLISHED -FIN-> FIN_WAIT; a SYN after FIN or
//              RST starts over at SYN_RECV. A non-SYN packet of an unknown flow is picked up
//              mid-stream (ACK -> ESTABLISHED, FIN -> FIN_WAIT): with DSR the server holds the
//              connection and consistent hashing sends the flow to the same real anyway.
//              Packets with dir 1 are invalid here.
// RST from either side -> CLOSE in both machines, in every state.
//
// Expiry. Each step returns `refresh`. true: the flow's expiry becomes now + timeout(new
// state), which may also shorten it (entering TIME_WAIT). false: expiry becomes
// min(old, now + timeout(new state)), so the packet can never keep the flow alive longer.
// That holds for invalid packets (state unchanged, `valid` false), RSTs (a stream of RSTs
// cannot hold a flow open), retransmitted SYNs and FINs (a client retrying a SYN to a dead
// real loses the entry syn_sent after its *first* SYN; its next retry simply creates the
// flow again), and packets in TIME_WAIT / CLOSE.
// Invalid (state kept, no refresh): SYN+FIN, SYN+RST, a FIN or a flagless segment without
// ACK (RFC 9293 3.10.7.4 drops non-RST segments without ACK), data or ACKs before the
// handshake, a SYN or SYN+ACK inside an established flow, anything from dir 1 in NONE.
//
// Timeouts (units are the caller's ticks; the presets take ticks per second). Sources:
// IPVS (net/netfilter/ipvs/ip_vs_proto_tcp.c tcp_timeouts: established 15 min, syn_recv 1 min,
// syn_sent / fin_wait / time_wait 2 min, close_wait 1 min, last_ack 30 s, close 10 s, none 2 s;
// UDP 5 min), DPVS (established 90 s, syn_recv 30 s, fin_wait / time_wait 7 s, close 3 s,
// UDP 300 s), VPP nat44 (established 7440 s, transitory 240 s, UDP 300 s, ICMP 60 s),
// RFC 5382 REQ-5 (NAT: established idle >= 2 h 4 min, transitory >= 4 min), RFC 4787 REQ-5
// (UDP mapping >= 2 min, 5 min recommended), RFC 5508 REQ-1 (ICMP query >= 60 s).
//   lb()   load-balancer services. established 15 min (IPVS): long enough for keepalive-less
//          idle clients of typical services, short enough that vanished clients do not fill
//          the table. SYN_SENT / SYN_RECV 10 s: the handshake normally takes one RTT, a SYN
//          flood's entries must leave quickly, and a retry after expiry just recreates the
//          flow. FIN_WAIT 120 s (IPVS; a half-closed connection still carries data),
//          CLOSE_WAIT 60 s, LAST_ACK 30 s, CLOSE 10 s, NONE 2 s (IPVS). TIME_WAIT 10 s, not
//          IPVS's 2 min: it only has to outlive retransmitted final ACKs/FINs (a few RTOs),
//          and at 100 k closes/s 2 min would park 12 M dead flows. UDP 300 s, ICMP 60 s.
//   nat()  router PAT, where RFC conformance is the point: established 7440 s (RFC 5382 REQ-5),
//          every transitory state 240 s (RFC 5382 REQ-5), UDP 300 s, ICMP 60 s.
#pragma once

#include <cstdint>

namespace nf::lb {

enum class TcpState : uint8_t {
  kNone,
  kSynSent,
  kSynRecv,
  kEstablished,
  kFinWait,
  kCloseWait,
  kLastAck,
  kTimeWait,
  kClose,
};
inline constexpr unsigned kTcpStates = 9;

// TCP header flag bits (RFC 9293 3.1).
namespace tcpflag {
inline constexpr uint8_t kFin = 0x01;
inline constexpr uint8_t kSyn = 0x02;
inline constexpr uint8_t kRst = 0x04;
inline constexpr uint8_t kPsh = 0x08;
inline constexpr uint8_t kAck = 0x10;
inline constexpr uint8_t kUrg = 0x20;
}  // namespace tcpflag

// Bit 7 of the stored byte: the reply side (dir 1) sent the first FIN. Bits 0-3: TcpState.
inline constexpr uint8_t kCloserReply = 0x80;

constexpr TcpState tcp_state_of(uint8_t v) {
  return static_cast<TcpState>(v & 0x0f);
}

struct TcpStep {
  uint8_t next;  // the new stored byte (state and closer bit)
  bool refresh;  // true: expire = now + timeout; false: expire = min(expire, now + timeout)
  bool valid;    // false: the packet does not fit the state (the stage may count or drop it)
};

namespace tcp_detail {

enum class Ev : uint8_t { kSyn, kSynAck, kFin, kAck, kRst, kBad };

constexpr Ev classify(uint8_t f) {
  if (f & tcpflag::kRst) return (f & tcpflag::kSyn) ? Ev::kBad : Ev::kRst;
  if (f & tcpflag::kSyn) {
    if (f & tcpflag::kFin) return Ev::kBad;
    return (f & tcpflag::kAck) ? Ev::kSynAck : Ev::kSyn;
  }
  if (!(f & tcpflag::kAck)) return Ev::kBad;
  return (f & tcpflag::kFin) ? Ev::kFin : Ev::kAck;
}

constexpr TcpStep go(TcpState s, bool refresh, uint8_t closer = 0) {
  return TcpStep{static_cast<uint8_t>(static_cast<uint8_t>(s) | closer), refresh, true};
}

constexpr TcpStep two_way(uint8_t cur, Ev e, unsigned dir) {
  const TcpStep stay{cur, false, true};
  const TcpStep invalid{cur, false, false};
  const uint8_t closer = cur & kCloserReply;
  const bool from_client = dir == 0;
  const bool from_closer = (dir != 0) == (closer != 0);
  const uint8_t dir_bit = from_client ? 0 : kCloserReply;
  switch (tcp_state_of(cur)) {
    case TcpState::kNone:
      if (e == Ev::kSyn && from_client) return go(TcpState::kSynSent, true);
      return invalid;
    case TcpState::kSynSent:
      if (e == Ev::kSyn) return from_client ? stay : go(TcpState::kSynRecv, true);
      if (e == Ev::kSynAck && !from_client) return go(TcpState::kSynRecv, true);
      return invalid;
    case TcpState::kSynRecv:
      if (e == Ev::kAck) return from_client ? go(TcpState::kEstablished, true) : stay;
      if (e == Ev::kFin) return go(TcpState::kFinWait, true, dir_bit);
      if ((e == Ev::kSyn && from_client) || (e == Ev::kSynAck && !from_client)) return stay;
      return invalid;
    case TcpState::kEstablished:
      if (e == Ev::kAck) return go(TcpState::kEstablished, true);
      if (e == Ev::kFin) return go(TcpState::kFinWait, true, dir_bit);
      return invalid;
    case TcpState::kFinWait:
      if (e == Ev::kFin) return from_closer ? stay : go(TcpState::kLastAck, true, closer);
      if (e == Ev::kAck)
        return go(from_closer ? TcpState::kFinWait : TcpState::kCloseWait, true, closer);
      return invalid;
    case TcpState::kCloseWait:
      if (e == Ev::kFin) return from_closer ? stay : go(TcpState::kLastAck, true, closer);
      if (e == Ev::kAck) return go(TcpState::kCloseWait, true, closer);
      return invalid;
    case TcpState::kLastAck:
      if (e == Ev::kAck && from_closer) return go(TcpState::kTimeWait, true, closer);
      if (e == Ev::kAck || e == Ev::kFin) return stay;
      return invalid;
    case TcpState::kTimeWait:
    case TcpState::kClose:
      if (e == Ev::kSyn && from_client) return go(TcpState::kSynSent, true);
      if (e == Ev::kAck || e == Ev::kFin) return stay;
      return invalid;
  }
  return invalid;  // a corrupt byte stays as it is and never refreshes
}

constexpr TcpStep one_way(uint8_t cur, Ev e) {
  const TcpStep stay{cur, false, true};
  const TcpStep invalid{cur, false, false};
  switch (tcp_state_of(cur)) {
    case TcpState::kNone:
      if (e == Ev::kSyn) return go(TcpState::kSynRecv, true);
      if (e == Ev::kAck) return go(TcpState::kEstablished, true);
      if (e == Ev::kFin) return go(TcpState::kFinWait, true);
      return invalid;
    case TcpState::kSynRecv:
      if (e == Ev::kSyn) return stay;
      if (e == Ev::kAck) return go(TcpState::kEstablished, true);
      if (e == Ev::kFin) return go(TcpState::kFinWait, true);
      return invalid;
    case TcpState::kEstablished:
      if (e == Ev::kAck) return go(TcpState::kEstablished, true);
      if (e == Ev::kFin) return go(TcpState::kFinWait, true);
      return invalid;
    case TcpState::kFinWait:
      if (e == Ev::kSyn) return go(TcpState::kSynRecv, true);
      if (e == Ev::kAck) return go(TcpState::kFinWait, true);
      if (e == Ev::kFin) return stay;
      return invalid;
    case TcpState::kClose:
      if (e == Ev::kSyn) return go(TcpState::kSynRecv, true);
      if (e == Ev::kAck || e == Ev::kFin) return stay;
      return invalid;
    default:  // two-way states never occur in a one-way flow
      return invalid;
  }
}

}  // namespace tcp_detail

// The next state of a flow whose stored byte is `cur`, after a packet with TCP header flags
// `flags` travelling in direction `dir` (0 = from the side that opened, 1 = reply).
// one_way: the appliance sees only dir 0 (DSR).
constexpr TcpStep tcp_step(uint8_t cur, uint8_t flags, unsigned dir, bool one_way) {
  const tcp_detail::Ev e = tcp_detail::classify(flags);
  if (e == tcp_detail::Ev::kBad || (one_way && dir != 0)) return TcpStep{cur, false, false};
  if (e == tcp_detail::Ev::kRst)
    return TcpStep{static_cast<uint8_t>(TcpState::kClose), false, true};
  return one_way ? tcp_detail::one_way(cur, e) : tcp_detail::two_way(cur, e, dir);
}

// now + timeout without wrapping: a timeout of UINT64_MAX means "never".
constexpr uint64_t expiry_after(uint64_t now, uint64_t timeout) {
  return timeout > UINT64_MAX - now ? UINT64_MAX : now + timeout;
}

// The expiry a flow gets after a step (see "Expiry" above).
constexpr uint64_t tcp_expiry(uint64_t old_expire, uint64_t now, uint64_t timeout, bool refresh) {
  const uint64_t e = expiry_after(now, timeout);
  return refresh || e < old_expire ? e : old_expire;
}

struct Timeouts {
  uint64_t tcp[kTcpStates];  // indexed by TcpState
  uint64_t udp;
  uint64_t icmp;

  constexpr uint64_t for_tcp(uint8_t stored) const {
    const unsigned s = stored & 0x0fu;
    return s < kTcpStates ? tcp[s] : tcp[static_cast<unsigned>(TcpState::kClose)];
  }

  // Presets; hz = ticks per second of the clock the caller passes as `now`.
  static constexpr Timeouts lb(uint64_t hz) {
    Timeouts t{};
    t.tcp[static_cast<unsigned>(TcpState::kNone)] = 2 * hz;
    t.tcp[static_cast<unsigned>(TcpState::kSynSent)] = 10 * hz;
    t.tcp[static_cast<unsigned>(TcpState::kSynRecv)] = 10 * hz;
    t.tcp[static_cast<unsigned>(TcpState::kEstablished)] = 900 * hz;
    t.tcp[static_cast<unsigned>(TcpState::kFinWait)] = 120 * hz;
    t.tcp[static_cast<unsigned>(TcpState::kCloseWait)] = 60 * hz;
    t.tcp[static_cast<unsigned>(TcpState::kLastAck)] = 30 * hz;
    t.tcp[static_cast<unsigned>(TcpState::kTimeWait)] = 10 * hz;
    t.tcp[static_cast<unsigned>(TcpState::kClose)] = 10 * hz;
    t.udp = 300 * hz;
    t.icmp = 60 * hz;
    return t;
  }
  static constexpr Timeouts nat(uint64_t hz) {
    Timeouts t{};
    for (uint64_t& v : t.tcp) v = 240 * hz;
    t.tcp[static_cast<unsigned>(TcpState::kEstablished)] = 7440 * hz;
    t.udp = 300 * hz;
    t.icmp = 60 * hz;
    return t;
  }
};

}  // namespace nf::lb
