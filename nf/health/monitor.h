// Active health checks of server pools (GSLB answers, later the L4 load balancer).
//
// Theory of operation
// -------------------
// The Monitor lives on the management lcore, a single thread that polls and must never block.
// Every call takes the time from the caller (a monotonic clock in milliseconds, or
// microseconds for poll_us), so tests drive it with a fake clock and the Monitor itself never
// reads a clock or sleeps. poll() does one poll(2) with timeout 0 over all sockets in flight,
// then non-blocking reads/writes on the ready ones, then expires probes past their deadline,
// then starts the probes that are due.
//
// A target is an IPv4 address plus a CheckSpec. Identical (addr, spec) pairs share one probe
// and one slot, so ten GSLB names pointing at the same server cost one probe per interval.
// Probe kinds:
//   tcp   non-blocking connect; success once writable with SO_ERROR == 0, then a normal close.
//   http  tcp, then a GET with "Connection: close"; the status line must carry expect_status
//         and, if body_match is set, the first 64 KiB of body must contain it (chunked bodies
//         are decoded first).
//   icmp  echo request on one raw socket shared by all ICMP targets of this Monitor; replies
//         are matched by identifier (per Monitor), sequence (per probe) and source address.
// A probe not finished within timeout_ms fails. Probes start every interval_ms; the first one
// of a new target is delayed by a deterministic jitter (a hash of the target, below
// min(interval, 1 s)) so a reload with 100 targets does not fire 100 connects at once.
//
// Rise/fall: a target goes DOWN after `fall` consecutive failures and back UP after `rise`
// consecutive successes. One lost SYN or one slow answer therefore does not flap DNS answers.
//
// Targets start UP ("assumed up"). An appliance that boots, or reloads its configuration,
// must answer at once: starting DOWN would withdraw every pool member (or serve only the
// fallback) for rise * interval after each restart, turning a restart into an outage. The
// price is that a dead member is served for up to fall * interval + timeout after boot, which
// is the same exposure as a member dying while we run.
//
// Publication: each probe owns a Slot (a cache line with `up` and the RTT EWMA) in an array
// of kMaxSlots that never moves. Workers read it with relaxed atomic loads: no lock, no
// syscall; a stale read for one packet is harmless. set_targets() returns slot indexes that
// the caller puts into its own snapshot (e.g. the GSLB tables published by RCU). A slot whose
// probe went away is not handed out again for kSlotQuarantineMs, because workers holding the
// previous snapshot may still read it; until reused it keeps its last state.
#pragma once

#include <poll.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace nf::health {

enum class Kind : uint8_t { kIcmp, kTcp, kHttp };

const char* kind_name(Kind k);

struct CheckSpec {  // one named check from the config's health.checks list
  std::string name;
  Kind kind = Kind::kTcp;
  uint16_t port = 80;            // tcp/http
  std::string path = "/";        // http
  std::string host;              // http Host header; empty -> the target address
  uint16_t expect_status = 200;  // http
  std::string body_match;        // http: must appear in the first 64 KiB of body; empty = no check
  uint32_t interval_ms = 1000, timeout_ms = 500, rise = 2, fall = 2;
  bool operator==(const CheckSpec&) const = default;
};

// Published state: read by worker lcores with relaxed atomic loads, no lock, no syscall.
struct alignas(64) Slot {
  std::atomic<uint8_t> up{1};
  std::atomic<uint32_t> rtt_us{0};  // EWMA (alpha 0.3) of successful probe RTTs; 0 = none yet
};
inline constexpr uint32_t kMaxSlots = 4096;
// Returned by set_targets() for a target that got no slot (all kMaxSlots in use or in
// quarantine). The caller must treat it as "not health checked" and must not index slots().
inline constexpr uint32_t kNoSlot = UINT32_MAX;
inline constexpr uint64_t kSlotQuarantineMs = 10'000;
inline constexpr size_t kBodyCap = 64 * 1024;

class Monitor {
 public:
  // Creates sockets (the runtime creates them inside the appliance's network namespace);
  // default ::socket. Must return -1 with errno set on failure.
  using SocketFn = std::function<int(int domain, int type, int protocol)>;
  using LogFn = std::function<void(const std::string&)>;  // health changes; default stderr

  explicit Monitor(SocketFn sock = {}, LogFn log = {});
  ~Monitor();  // closes all sockets
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  struct Target {
    uint32_t addr;  // IPv4, host order
    CheckSpec spec;
    std::string label;  // e.g. "gslb www.lab.example member 10.20.0.12"
  };

  // Replaces the set of targets. A target whose (addr, spec) is unchanged keeps its slot,
  // state and history (its label may change). Returns each target's slot index, in order
  // (kNoSlot if none was free). Identical (addr, spec) pairs share one slot and probe.
  std::vector<uint32_t> set_targets(const std::vector<Target>& targets, uint64_t now_ms);

  // Starts due probes, progresses sockets non-blockingly, finishes timeouts. Never blocks.
  void poll(uint64_t now_ms) { poll_us(now_ms * 1000); }
  // The same with a microsecond clock (same epoch as the now_ms of set_targets, i.e.
  // now_us / 1000 == now_ms), for sub-millisecond RTTs.
  void poll_us(uint64_t now_us);

  const Slot* slots() const { return slots_.get(); }  // kMaxSlots entries, never moves

  // Text table for the control socket: target, address, check, state, since, consecutive
  // ok/fail, last RTT, last error, last 16 results ("+" ok, "-" failed, oldest first).
  std::string show() const;
  std::string show_json() const;

  size_t target_count() const { return targets_.size(); }  // as passed to set_targets
  size_t probe_count() const { return probes_.size(); }    // distinct (addr, spec) pairs
  size_t in_flight() const;                                // probes currently running

  struct Probe;  // internal; defined in monitor.cc

 private:
  struct TargetRef {
    std::string label;
    Probe* probe;  // nullptr: no slot
  };

  uint32_t alloc_slot(uint64_t now_us);
  void start(Probe& p);
  void start_tcp(Probe& p);
  void start_icmp(Probe& p);
  void on_ready(Probe& p, short revents);
  void http_progress(Probe& p, short revents);
  void read_icmp();
  void finish(Probe& p, bool ok, const std::string& err);
  void abort(Probe& p);
  void log(const std::string& line) const;
  void log_transition(const Probe& p, const std::string& what) const;
  int make_socket(int domain, int type, int protocol) const;

  SocketFn sock_;
  LogFn log_;
  std::unique_ptr<Slot[]> slots_;
  std::vector<uint64_t> slot_free_at_us_;  // 0 = never used
  std::vector<uint8_t> slot_used_;
  std::unordered_map<std::string, std::unique_ptr<Probe>> probes_;  // by (addr, spec) key
  std::vector<TargetRef> targets_;
  uint64_t now_us_ = 0;

  int icmp_fd_ = -1;
  uint16_t icmp_id_;
  uint16_t icmp_seq_ = 0;
  std::unordered_map<uint16_t, Probe*> icmp_inflight_;  // by sequence

  std::vector<pollfd> pfds_;  // scratch for poll_us, kept to avoid reallocations
  std::vector<Probe*> pfd_probe_;
};

}  // namespace nf::health
