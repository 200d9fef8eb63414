// The health-check engine against real loopback servers in this process. Fake time only moves
// when no probe is in flight (settle), so socket speed on a loaded machine never turns into a
// timeout; timeouts are tested by moving fake time past the deadline on purpose.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>

#include "nf/health/monitor.h"
#include "tests/common/fds.h"

namespace nf::health {
namespace {

using namespace std::chrono_literals;

constexpr uint32_t kLoopback = 0x7f000001;

int listen_socket(int backlog, bool do_listen) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(kLoopback);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return -1;
  if (do_listen && ::listen(fd, backlog) != 0) return -1;
  return fd;
}

uint16_t port_of(int fd) {
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  return ntohs(sa.sin_port);
}

// A port that refuses connections (bound, not listening) until listen() is called; the kernel
// then completes handshakes by itself, which is all a TCP check needs.
class Port {
 public:
  Port() : fd_(listen_socket(0, false)) {}
  ~Port() { ::close(fd_); }
  Port(const Port&) = delete;
  Port& operator=(const Port&) = delete;
  uint16_t port() const { return port_of(fd_); }
  void listen() { ASSERT_EQ(::listen(fd_, 64), 0); }

 private:
  int fd_;
};

// A loopback server on its own thread. kClose accepts and closes; kSilent accepts and never
// says a word; kHttp reads one request and writes the configured response.
class Server {
 public:
  enum class Mode { kClose, kSilent, kHttp };
  explicit Server(Mode mode) : mode_(mode), fd_(listen_socket(64, true)) {
    thread_ = std::thread([this] { run(); });
  }
  ~Server() {
    stop_ = true;
    thread_.join();
    for (int c : held_) ::close(c);
    ::close(fd_);
  }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  uint16_t port() const { return port_of(fd_); }
  // `split`: written in three pieces with pauses (partial reads); `keep_open`: the server does
  // not close after answering, so only Content-Length can end the response.
  void respond(std::string r, bool split = false, bool keep_open = false) {
    std::lock_guard<std::mutex> g(mu_);
    response_ = std::move(r);
    split_ = split;
    keep_open_ = keep_open;
  }
  std::vector<std::string> requests() const {
    std::lock_guard<std::mutex> g(mu_);
    return requests_;
  }

 private:
  void run() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      if (mode_ == Mode::kClose) {
        ::close(c);
        continue;
      }
      if (mode_ == Mode::kSilent) {
        held_.push_back(c);
        continue;
      }
      timeval tv{5, 0};
      ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      std::string resp;
      bool split = false, keep_open = false;
      {
        std::lock_guard<std::mutex> g(mu_);
        requests_.push_back(req);
        resp = response_;
        split = split_;
        keep_open = keep_open_;
      }
      size_t piece = split ? resp.size() / 3 + 1 : resp.size();
      for (size_t off = 0; off < resp.size();) {
        ssize_t n = ::send(c, resp.data() + off, std::min(piece, resp.size() - off), MSG_NOSIGNAL);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
        if (split) std::this_thread::sleep_for(20ms);
      }
      if (keep_open)
        held_.push_back(c);
      else
        ::close(c);
    }
  }

  Mode mode_;
  int fd_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<int> held_;  // server thread only, until join
  mutable std::mutex mu_;
  std::string response_;
  bool split_ = false, keep_open_ = false;
  std::vector<std::string> requests_;
};

std::string http_response(int status, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) +
         " X\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

// Polls at a fixed fake time until no probe is in flight (capped at 20 s of real time).
void settle(Monitor& m, uint64_t now) {
  auto end = std::chrono::steady_clock::now() + 20s;
  m.poll(now);
  while (m.in_flight() > 0 && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(1ms);
    m.poll(now);
  }
}

// Moves fake time on by one interval: every target runs exactly one probe, to completion.
void tick(Monitor& m, uint64_t& now, uint64_t ms = 1000) {
  now += ms;
  settle(m, now);
}

struct Log {
  std::vector<std::string> lines;
  Monitor::LogFn fn() {
    return [this](const std::string& l) { lines.push_back(l); };
  }
  bool has(const std::string& s) const {
    for (const auto& l : lines)
      if (l.find(s) != std::string::npos) return true;
    return false;
  }
};

CheckSpec tcp(uint16_t port, uint32_t rise = 2, uint32_t fall = 2) {
  CheckSpec s;
  s.name = "tcp-check";
  s.kind = Kind::kTcp;
  s.port = port;
  s.rise = rise;
  s.fall = fall;
  return s;
}

CheckSpec http(uint16_t port, std::string path = "/health", std::string body_match = {}) {
  CheckSpec s;
  s.name = "http-check";
  s.kind = Kind::kHttp;
  s.port = port;
  s.path = std::move(path);
  s.body_match = std::move(body_match);
  return s;
}

// The results column of show() for the only target ("+" ok, "-" failed).
std::string history(const Monitor& m) {
  std::string s = m.show();
  std::string row = s.substr(s.find('\n') + 1);
  row = row.substr(0, row.find('\n'));
  return row.substr(row.find_last_of(' ') + 1);
}

bool up(const Monitor& m, uint32_t slot) {
  return m.slots()[slot].up.load(std::memory_order_relaxed) != 0;
}

size_t open_fds() {
  return static_cast<size_t>(nf::test::count_fds());
}

TEST(Health, TcpUp) {
  Server srv(Server::Mode::kClose);
  Log log;
  Monitor m({}, log.fn());
  uint64_t now = 0;
  auto slots = m.set_targets({{kLoopback, tcp(srv.port()), "t1"}}, now);
  ASSERT_EQ(slots.size(), 1u);
  EXPECT_TRUE(up(m, slots[0]));  // assumed up before the first probe
  EXPECT_EQ(m.slots()[slots[0]].rtt_us.load(), 0u);
  tick(m, now);
  tick(m, now);
  EXPECT_EQ(history(m), "++");
  EXPECT_TRUE(up(m, slots[0]));
  EXPECT_GT(m.slots()[slots[0]].rtt_us.load(), 0u);
  EXPECT_TRUE(log.lines.empty());  // no transition
}

TEST(Health, TcpRefusedFallsAfterFallAndRisesAfterRise) {
  Port port;
  Log log;
  Monitor m({}, log.fn());
  uint64_t now = 0;
  uint32_t slot = m.set_targets({{kLoopback, tcp(port.port(), 2, 3), "pool member"}}, now)[0];
  tick(m, now);
  tick(m, now);
  EXPECT_EQ(history(m), "--");
  EXPECT_TRUE(up(m, slot)) << "DOWN before `fall` failures";
  EXPECT_TRUE(log.lines.empty());
  tick(m, now);
  EXPECT_FALSE(up(m, slot));
  ASSERT_EQ(log.lines.size(), 1u);
  EXPECT_EQ(
      log.lines[0],
      "health: pool member 127.0.0.1 (check tcp-check) DOWN after 3 failures: connect: Connection "
      "refused");
  tick(m, now);
  EXPECT_FALSE(up(m, slot));

  port.listen();
  tick(m, now);
  EXPECT_FALSE(up(m, slot)) << "UP before `rise` successes";
  tick(m, now);
  EXPECT_TRUE(up(m, slot));
  EXPECT_EQ(history(m), "----++");
  ASSERT_EQ(log.lines.size(), 2u);
  EXPECT_EQ(log.lines[1].rfind(
                "health: pool member 127.0.0.1 (check tcp-check) UP after 2 successes (rtt ", 0),
            0u)
      << log.lines[1];
}

TEST(Health, HttpStatusMatchMismatchAndHysteresis) {
  Server srv(Server::Mode::kHttp);
  Log log;
  Monitor m({}, log.fn());
  uint64_t now = 0;
  uint32_t slot = m.set_targets({{kLoopback, http(srv.port()), "web"}}, now)[0];
  auto result = [&](int status) {
    srv.respond(http_response(status, "hello"));
    tick(m, now);
  };
  result(200);
  result(503);
  result(200);  // resets the failure run: one failure in between is not enough to fall
  result(503);
  EXPECT_TRUE(up(m, slot));
  result(503);
  EXPECT_FALSE(up(m, slot));
  ASSERT_EQ(log.lines.size(), 1u);
  EXPECT_EQ(log.lines[0],
            "health: web 127.0.0.1 (check http-check) DOWN after 2 failures: HTTP status 503, "
            "want 200");
  result(200);
  result(503);
  result(200);
  EXPECT_FALSE(up(m, slot));
  result(200);
  EXPECT_TRUE(up(m, slot));
  EXPECT_EQ(history(m), "+-+--+-++");
  ASSERT_FALSE(srv.requests().empty());
  EXPECT_EQ(srv.requests()[0],
            "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: nf-health/1\r\nConnection: "
            "close\r\n\r\n");
}

TEST(Health, HttpHostHeaderAndExpectedStatus) {
  Server srv(Server::Mode::kHttp);
  srv.respond(http_response(204, ""));
  Monitor m({}, [](const std::string&) {});
  CheckSpec s = http(srv.port(), "/ping?x=1");
  s.host = "www.lab.example";
  s.expect_status = 204;
  uint64_t now = 0;
  m.set_targets({{kLoopback, s, "web"}}, now);
  tick(m, now);
  EXPECT_EQ(history(m), "+");
  ASSERT_EQ(srv.requests().size(), 1u);
  EXPECT_NE(srv.requests()[0].find("GET /ping?x=1 HTTP/1.1\r\nHost: www.lab.example\r\n"),
            std::string::npos);
}

TEST(Health, HttpBodyMatch) {
  Server srv(Server::Mode::kHttp);
  Monitor m({}, [](const std::string&) {});
  uint64_t now = 0;
  m.set_targets({{kLoopback, http(srv.port(), "/", "status: ready"), "web"}}, now);
  srv.respond(http_response(200, "service status: ready\n"));
  tick(m, now);
  EXPECT_EQ(history(m), "+");
  srv.respond(http_response(200, "service status: draining\n"));
  tick(m, now);
  EXPECT_EQ(history(m), "+-");
  EXPECT_NE(m.show().find("body does not contain \"status: ready\""), std::string::npos)
      << m.show();

  // Partial reads: the answer arrives in pieces.
  srv.respond(http_response(200, std::string(3000, 'x') + "status: ready"), true);
  tick(m, now);
  EXPECT_EQ(history(m), "+-+");
  // Content-Length ends the response although the server keeps the connection open.
  srv.respond(http_response(200, "nope"), false, true);
  tick(m, now);
  EXPECT_EQ(history(m), "+-+-");
  EXPECT_NE(m.show().find("body does not contain"), std::string::npos) << m.show();
  // A chunked body is decoded before matching (the match spans two chunks).
  srv.respond(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nstatus: "
      "r\r\n4\r\neady\r\n0\r\n\r\n");
  tick(m, now);
  EXPECT_EQ(history(m), "+-+-+");
  // No Content-Length: the body ends when the server closes.
  srv.respond("HTTP/1.0 200 OK\r\n\r\nall good, status: ready");
  tick(m, now);
  EXPECT_EQ(history(m), "+-+-++");
  // Garbage is a failure with a reason, not a crash.
  srv.respond("SSH-2.0-OpenSSH_9.6\r\n\r\n");
  tick(m, now);
  EXPECT_EQ(history(m), "+-+-++-");
  EXPECT_NE(m.show().find("HTTP: malformed status line"), std::string::npos) << m.show();
}

TEST(Health, HttpServerThatNeverAnswersTimesOut) {
  Server srv(Server::Mode::kSilent);
  Log log;
  Monitor m({}, log.fn());
  uint64_t now = 0;
  uint32_t slot = m.set_targets({{kLoopback, http(srv.port()), "mute"}}, now)[0];
  for (int round = 0; round < 2; ++round) {
    while (m.in_flight() == 0) m.poll(now += 100);
    // Real time for the connect and request to go through; still no answer.
    for (int i = 0; i < 100; ++i) {
      std::this_thread::sleep_for(1ms);
      m.poll(now);
    }
    EXPECT_EQ(m.in_flight(), 1u);
    m.poll(now += 499);
    EXPECT_EQ(history(m), round == 0 ? "(none)" : "-") << "still in time at 499 ms";
    m.poll(now += 1);
    EXPECT_EQ(history(m), round == 0 ? "-" : "--");
  }
  EXPECT_FALSE(up(m, slot));
  ASSERT_EQ(log.lines.size(), 1u);
  EXPECT_EQ(log.lines[0],
            "health: mute 127.0.0.1 (check http-check) DOWN after 2 failures: timeout after "
            "500 ms");
}

TEST(Health, SlotsKeptForUnchangedTargetsNewSlotForChangedSpec) {
  Port a, b;
  a.listen();
  Monitor m({}, [](const std::string&) {});
  uint64_t now = 0;
  auto s1 = m.set_targets({{kLoopback, tcp(a.port()), "a"}, {kLoopback, tcp(b.port()), "b"}}, now);
  ASSERT_EQ(s1.size(), 2u);
  EXPECT_NE(s1[0], s1[1]);
  tick(m, now);
  tick(m, now);
  EXPECT_FALSE(up(m, s1[1]));

  // "a" unchanged (new label), "b" now probes another port.
  CheckSpec changed = tcp(b.port());
  changed.rise = 3;
  auto s2 =
      m.set_targets({{kLoopback, tcp(a.port()), "a renamed"}, {kLoopback, changed, "b"}}, now);
  EXPECT_EQ(s2[0], s1[0]);
  EXPECT_NE(s2[1], s1[1]);
  EXPECT_NE(s2[1], s1[0]);
  EXPECT_TRUE(up(m, s2[1])) << "a new slot starts assumed up";
  std::string show = m.show();
  EXPECT_NE(show.find("a renamed"), std::string::npos);
  EXPECT_NE(show.find("++"), std::string::npos) << "history kept: " << show;
  EXPECT_FALSE(up(m, s1[1])) << "a retired slot keeps its last state for old readers";

  // The retired slot is not handed out during the quarantine...
  CheckSpec other = tcp(a.port());
  other.name = "other";
  auto s3 = m.set_targets(
      {{kLoopback, tcp(a.port()), "a"}, {kLoopback, changed, "b"}, {kLoopback, other, "c"}},
      now + kSlotQuarantineMs - 1);
  EXPECT_NE(s3[2], s1[1]);
  EXPECT_EQ(s3[0], s1[0]);
  EXPECT_EQ(s3[1], s2[1]);
  // ...and is afterwards.
  CheckSpec fourth = other;
  fourth.name = "fourth";
  auto s4 = m.set_targets({{kLoopback, tcp(a.port()), "a"},
                           {kLoopback, changed, "b"},
                           {kLoopback, other, "c"},
                           {kLoopback, fourth, "d"}},
                          now + kSlotQuarantineMs);
  EXPECT_EQ(s4[3], s1[1]);
  EXPECT_TRUE(up(m, s4[3])) << "a reused slot is reset";
  EXPECT_EQ(m.slots()[s4[3]].rtt_us.load(), 0u);
}

TEST(Health, IdenticalPairsShareOneSlotAndProbe) {
  Port port;
  Log log;
  int sockets = 0;
  Monitor m(
      [&](int d, int t, int p) {
        ++sockets;
        return ::socket(d, t, p);
      },
      log.fn());
  uint64_t now = 0;
  auto slots = m.set_targets({{kLoopback, tcp(port.port()), "gslb a.example"},
                              {kLoopback, tcp(port.port()), "gslb b.example"},
                              {kLoopback + 1, tcp(port.port()), "other address"}},
                             now);
  EXPECT_EQ(slots[0], slots[1]);
  EXPECT_NE(slots[0], slots[2]);
  EXPECT_EQ(m.target_count(), 3u);
  EXPECT_EQ(m.probe_count(), 2u);
  tick(m, now);
  EXPECT_EQ(sockets, 2);
  tick(m, now);
  EXPECT_FALSE(up(m, slots[0]));
  EXPECT_TRUE(log.has("gslb a.example 127.0.0.1 (check tcp-check) DOWN"));
  EXPECT_TRUE(log.has("gslb b.example 127.0.0.1 (check tcp-check) DOWN"));
}

TEST(Health, ShowContainsTheFields) {
  Port port;
  Monitor m({}, [](const std::string&) {});
  uint64_t now = 0;
  m.set_targets({{kLoopback, tcp(port.port()), "gslb www.lab.example member 127.0.0.1"}}, now);
  std::string before = m.show();
  EXPECT_NE(before.find("UP (assumed)"), std::string::npos) << before;
  tick(m, now);
  tick(m, now);
  tick(m, now);
  std::string s = m.show();
  for (const char* want : {"target", "check", "state", "since", "last error", "history",
                           "gslb www.lab.example member 127.0.0.1", "127.0.0.1", "tcp-check",
                           "DOWN", "connect: Connection refused", "---"})
    EXPECT_NE(s.find(want), std::string::npos) << want << " in\n" << s;
  std::string j = m.show_json();
  EXPECT_NE(j.find("\"up\":false"), std::string::npos) << j;
  EXPECT_NE(j.find("\"consecutive_fail\":3"), std::string::npos) << j;
  EXPECT_NE(j.find("\"history\":\"---\""), std::string::npos) << j;
}

TEST(Health, FirstProbesAreSpreadOverTheInterval) {
  int sockets = 0;
  Monitor m(
      [&](int d, int t, int p) {
        ++sockets;
        return ::socket(d, t, p);
      },
      [](const std::string&) {});
  Port port;
  std::vector<Monitor::Target> ts;
  for (uint32_t i = 0; i < 100; ++i) ts.push_back({kLoopback + i, tcp(port.port()), "t"});
  m.set_targets(ts, 0);
  EXPECT_EQ(sockets, 0) << "set_targets itself opens nothing";
  settle(m, 0);
  EXPECT_LT(sockets, 10);
  settle(m, 500);
  EXPECT_GT(sockets, 20);
  EXPECT_LT(sockets, 80);
  settle(m, 1000);
  EXPECT_EQ(sockets, 100);
}

TEST(Health, SocketFailureIsAProbeFailure) {
  Log log;
  Monitor m(
      [](int, int, int) {
        errno = EMFILE;
        return -1;
      },
      log.fn());
  uint64_t now = 0;
  uint32_t slot = m.set_targets({{kLoopback, tcp(80, 2, 1), "x"}}, now)[0];
  tick(m, now);
  EXPECT_FALSE(up(m, slot));
  EXPECT_TRUE(log.has("DOWN after 1 failure: socket: Too many open files"));
}

// The servers' threads close their ends a little later than the Monitor closes its own.
bool fds_settle_at_most(size_t n) {
  for (int i = 0; i < 500 && open_fds() > n; ++i) std::this_thread::sleep_for(10ms);
  return open_fds() <= n;
}

TEST(Health, NoFdLeak) {
  Port silent;  // completes handshakes in the kernel, never answers; holds no fd of ours
  silent.listen();
  Server web(Server::Mode::kHttp);
  web.respond(http_response(200, "ok"));
  Port refused;
  size_t before = open_fds();
  {
    Monitor m({}, [](const std::string&) {});
    uint64_t now = 0;
    CheckSpec icmp;
    icmp.name = "ping";
    icmp.kind = Kind::kIcmp;
    m.set_targets({{kLoopback, http(silent.port()), "silent"},
                   {kLoopback, http(web.port()), "web"},
                   {kLoopback, tcp(refused.port()), "refused"},
                   {kLoopback, icmp, "ping"}},
                  now);
    for (int i = 0; i < 3; ++i) {
      now += 1000;
      for (int k = 0; k < 50; ++k) {
        m.poll(now);
        std::this_thread::sleep_for(1ms);
      }
    }
    EXPECT_GE(m.in_flight(), 1u);  // the silent one, still connected
    // Dropping targets closes their sockets at once.
    m.set_targets({{kLoopback, http(web.port()), "web"}}, now);
    EXPECT_TRUE(fds_settle_at_most(before + 1));
    m.set_targets({{kLoopback, http(silent.port()), "silent"}}, now);
    while (m.in_flight() == 0) m.poll(now += 100);
  }  // destroyed with a probe in flight
  EXPECT_TRUE(fds_settle_at_most(before));
  EXPECT_EQ(open_fds(), before);
}

bool raw_icmp_allowed() {
  int fd = ::socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

CheckSpec icmp_spec() {
  CheckSpec s;
  s.name = "ping";
  s.kind = Kind::kIcmp;
  return s;
}

TEST(Health, IcmpLoopback) {
  if (!raw_icmp_allowed()) GTEST_SKIP() << "no raw sockets (needs root)";
  Log log;
  Monitor m({}, log.fn());
  Monitor other({}, log.fn());  // a second Monitor's socket sees the same replies
  uint64_t now = 0;
  uint32_t slot = m.set_targets({{kLoopback, icmp_spec(), "lo"}}, now)[0];
  other.set_targets({{kLoopback, icmp_spec(), "lo too"}}, now);
  for (int i = 0; i < 3; ++i) {
    now += 1000;
    m.poll(now);
    other.poll(now);
    settle(m, now);
    settle(other, now);
  }
  EXPECT_EQ(history(m), "+++");
  EXPECT_EQ(history(other), "+++");
  EXPECT_TRUE(up(m, slot));
  EXPECT_GT(m.slots()[slot].rtt_us.load(), 0u);
  EXPECT_TRUE(log.lines.empty());
}

TEST(Health, IcmpNoReply) {
  if (!raw_icmp_allowed()) GTEST_SKIP() << "no raw sockets (needs root)";
  // The "raw ICMP" socket really speaks an unassigned IP protocol: the echo request reaches
  // 127.0.0.1 (and this very socket, which must ignore it) and nobody ever answers.
  Log log;
  Monitor m([](int d, int t, int) { return ::socket(d, t, 253); }, log.fn());
  uint64_t now = 0;
  CheckSpec s = icmp_spec();
  s.fall = 1;
  uint32_t slot = m.set_targets({{kLoopback, s, "lo"}}, now)[0];
  while (m.in_flight() == 0) m.poll(now += 100);
  for (int i = 0; i < 50; ++i) {
    std::this_thread::sleep_for(1ms);
    m.poll(now);
  }
  EXPECT_EQ(m.in_flight(), 1u);
  m.poll(now += 500);
  EXPECT_FALSE(up(m, slot));
  EXPECT_TRUE(log.has("health: lo 127.0.0.1 (check ping) DOWN after 1 failure: icmp: no reply"))
      << (log.lines.empty() ? "" : log.lines[0]);
}

}  // namespace
}  // namespace nf::health
