// DNS over TCP (RFC 7766) framing and connection management, over real loopback sockets with
// an injected clock. The answer callback echoes the query with QR set, so tests see exactly
// which query an answer belongs to.
#include <arpa/inet.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nf/dns/tcp_server.h"
#include "tests/common/fds.h"

namespace nf::dns {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint8_t kDecline = 0xff;  // first byte of a query the callback will not answer
constexpr uint8_t kHuge = 0xfe;     // first byte of a query answered with kHugeLen bytes
constexpr size_t kHugeLen = 60000;

using nf::test::count_fds;

// A 12-byte DNS header is all the echo needs; `id` makes each query distinct.
Bytes query(uint16_t id, uint8_t first = 0) {
  Bytes q(12 + 5, 0);
  q[0] = static_cast<uint8_t>(id >> 8);
  q[1] = static_cast<uint8_t>(id);
  if (first != 0) q[0] = first;
  q[5] = 1;  // QDCOUNT
  std::memcpy(&q[12], "\x01x\x00\x00\x01", 5);
  return q;
}

Bytes framed(const Bytes& m) {
  Bytes f(2 + m.size());
  f[0] = static_cast<uint8_t>(m.size() >> 8);
  f[1] = static_cast<uint8_t>(m.size());
  std::copy(m.begin(), m.end(), f.begin() + 2);
  return f;
}

Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes expected(const Bytes& q) {
  Bytes a = q;
  a[2] |= 0x80;
  return a;
}

struct Server {
  explicit Server(uint32_t idle_ms = 10000, uint32_t max_conns = 256, int sndbuf = 0) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd, 0);
    // Accepted sockets inherit it: a small one makes the server meet a full socket quickly.
    if (sndbuf != 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(listen(fd, 64), 0);
    socklen_t al = sizeof a;
    EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &al), 0);
    port = ntohs(a.sin_port);
    auto fn = [this](const uint8_t* q, size_t qlen, uint8_t* out, size_t cap,
                     uint32_t client) -> size_t {
      last_client = client;
      if (qlen < 12 || q[0] == kDecline) return 0;
      if (q[0] == kHuge) {
        std::memset(out, 0xab, kHugeLen);
        std::memcpy(out, q, 12);
        return kHugeLen;
      }
      EXPECT_LE(qlen, cap);
      std::memcpy(out, q, qlen);
      out[2] |= 0x80;
      return qlen;
    };
    srv = std::make_unique<TcpServer>(fd, fn, idle_ms, max_conns);
  }

  int connect_client() const {
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    // Completes from the listen backlog, before the server accepts.
    EXPECT_EQ(connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << strerror(errno);
    return c;
  }

  // Polls (at a fixed time) until pred holds; false if it never does.
  bool pump_until(const std::function<bool()>& pred, uint64_t at) {
    for (int i = 0; i < 3000; ++i) {
      srv->poll(at);
      if (pred()) return true;
      usleep(200);
    }
    return false;
  }

  // Reads framed messages until `want` arrived or the server closed; polls meanwhile.
  std::vector<Bytes> read_msgs(int c, size_t want, uint64_t at, bool* eof = nullptr) {
    std::vector<Bytes> msgs;
    Bytes buf;
    uint8_t chunk[8192];
    for (int i = 0; i < 20000 && msgs.size() < want; ++i) {
      srv->poll(at);
      ssize_t n = recv(c, chunk, sizeof chunk, MSG_DONTWAIT);
      if (n == 0) {
        if (eof != nullptr) *eof = true;
        break;
      }
      if (n < 0) {
        if (errno != EAGAIN) break;
        usleep(100);
        continue;
      }
      buf.insert(buf.end(), chunk, chunk + n);
      while (buf.size() >= 2 && buf.size() >= 2u + (buf[0] << 8 | buf[1])) {
        size_t len = buf[0] << 8 | buf[1];
        msgs.emplace_back(buf.begin() + 2, buf.begin() + 2 + static_cast<long>(len));
        buf.erase(buf.begin(), buf.begin() + 2 + static_cast<long>(len));
      }
    }
    return msgs;
  }

  // True once the server has closed c (EOF or reset), after polling at `at`.
  bool closed_by_server(int c, uint64_t at) {
    return pump_until(
        [&] {
          uint8_t b[256];
          ssize_t n = recv(c, b, sizeof b, MSG_DONTWAIT);
          return n == 0 || (n < 0 && errno != EAGAIN);
        },
        at);
  }

  uint16_t port = 0;
  uint32_t last_client = 0;
  std::unique_ptr<TcpServer> srv;
};

void send_all(int c, const Bytes& b) {
  ASSERT_EQ(send(c, b.data(), b.size(), MSG_NOSIGNAL), static_cast<ssize_t>(b.size()));
}

TEST(DnsTcp, SingleQuery) {
  Server s;
  int c = s.connect_client();
  send_all(c, framed(query(0x1234)));
  auto msgs = s.read_msgs(c, 1, 0);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0], expected(query(0x1234)));
  EXPECT_EQ(s.last_client, 0x7f000001u);
  TcpServerStats st = s.srv->stats();
  EXPECT_EQ(st.accepted, 1u);
  EXPECT_EQ(st.queries, 1u);
  EXPECT_EQ(st.answers, 1u);
  EXPECT_EQ(st.errors, 0u);
  EXPECT_EQ(s.srv->connections(), 1u);
  close(c);
  EXPECT_TRUE(s.pump_until([&] { return s.srv->connections() == 0; }, 0));
}

TEST(DnsTcp, PipelinedQueriesInOneWriteAnsweredInOrder) {
  Server s;
  int c = s.connect_client();
  std::vector<Bytes> qs;
  Bytes wire;
  for (uint16_t id = 1; id <= 40; ++id) {  // more than one poll's budget
    qs.push_back(query(id));
    Bytes f = framed(qs.back());
    wire.insert(wire.end(), f.begin(), f.end());
  }
  send_all(c, wire);
  auto msgs = s.read_msgs(c, qs.size(), 0);
  ASSERT_EQ(msgs.size(), qs.size());
  for (size_t i = 0; i < qs.size(); ++i) EXPECT_EQ(msgs[i], expected(qs[i])) << i;
  EXPECT_EQ(s.srv->stats().answers, qs.size());
  close(c);
}

TEST(DnsTcp, TwoPipelinedQueries) {
  Server s;
  int c = s.connect_client();
  send_all(c, concat({framed(query(7)), framed(query(8))}));
  auto msgs = s.read_msgs(c, 2, 0);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0], expected(query(7)));
  EXPECT_EQ(msgs[1], expected(query(8)));
  close(c);
}

TEST(DnsTcp, QuerySplitByteByByte) {
  Server s;
  int c = s.connect_client();
  Bytes wire = concat({framed(query(0x0a0b)), framed(query(0x0c0d))});
  for (uint8_t b : wire) {
    ASSERT_EQ(send(c, &b, 1, MSG_NOSIGNAL), 1);
    for (int i = 0; i < 3; ++i) s.srv->poll(0);
  }
  auto msgs = s.read_msgs(c, 2, 0);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0], expected(query(0x0a0b)));
  EXPECT_EQ(msgs[1], expected(query(0x0c0d)));
  close(c);
}

TEST(DnsTcp, IdleTimeoutWithInjectedClock) {
  Server s(1000);
  int c = s.connect_client();
  ASSERT_TRUE(s.pump_until([&] { return s.srv->connections() == 1; }, 0));
  s.srv->poll(999);
  EXPECT_EQ(s.srv->connections(), 1u);
  // Activity restarts the clock.
  send_all(c, framed(query(1)));
  ASSERT_EQ(s.read_msgs(c, 1, 800).size(), 1u);
  s.srv->poll(1700);
  EXPECT_EQ(s.srv->connections(), 1u);
  // A partial query is not activity that keeps a connection forever.
  send_all(c, Bytes{0, 17, 1, 2});
  for (int i = 0; i < 10; ++i) s.srv->poll(1750);
  EXPECT_EQ(s.srv->connections(), 1u);
  s.srv->poll(2750);
  EXPECT_EQ(s.srv->connections(), 0u);
  EXPECT_EQ(s.srv->stats().idle_closed, 1u);
  EXPECT_TRUE(s.closed_by_server(c, 2750));
  close(c);
}

TEST(DnsTcp, MaxConnsEvictsOldestIdle) {
  Server s(10000, 2);
  int c1 = s.connect_client();
  ASSERT_TRUE(s.pump_until([&] { return s.srv->connections() == 1; }, 0));
  int c2 = s.connect_client();
  ASSERT_TRUE(s.pump_until([&] { return s.srv->connections() == 2; }, 10));
  int c3 = s.connect_client();
  ASSERT_TRUE(s.pump_until([&] { return s.srv->stats().accepted == 3; }, 20));
  EXPECT_EQ(s.srv->connections(), 2u);
  EXPECT_EQ(s.srv->stats().limit_closed, 1u);
  EXPECT_TRUE(s.closed_by_server(c1, 20));
  for (int c : {c2, c3}) {
    send_all(c, framed(query(5)));
    ASSERT_EQ(s.read_msgs(c, 1, 30).size(), 1u);
  }
  // Nobody idle (both mid-query): the newcomer is refused instead.
  send_all(c2, Bytes{0});
  send_all(c3, Bytes{0, 17});
  for (int i = 0; i < 20; ++i) s.srv->poll(40);
  int c4 = s.connect_client();
  ASSERT_TRUE(s.pump_until([&] { return s.srv->stats().accepted == 4; }, 50));
  EXPECT_EQ(s.srv->stats().limit_closed, 2u);
  EXPECT_TRUE(s.closed_by_server(c4, 50));
  EXPECT_EQ(s.srv->connections(), 2u);
  for (int c : {c1, c2, c3, c4}) close(c);
}

TEST(DnsTcp, AnswerZeroClosesAfterEarlierAnswers) {
  Server s;
  int c = s.connect_client();
  send_all(c, concat({framed(query(1)), framed(query(2, kDecline)), framed(query(3))}));
  bool eof = false;
  auto msgs = s.read_msgs(c, 3, 0, &eof);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0], expected(query(1)));
  EXPECT_TRUE(eof);
  EXPECT_EQ(s.srv->stats().queries, 2u);
  EXPECT_EQ(s.srv->stats().answers, 1u);
  EXPECT_EQ(s.srv->connections(), 0u);
  close(c);
}

TEST(DnsTcp, ZeroLengthClosesTheConnection) {
  Server s;
  int c = s.connect_client();
  send_all(c, concat({framed(query(1)), Bytes{0, 0}, framed(query(2))}));
  bool eof = false;
  auto msgs = s.read_msgs(c, 2, 0, &eof);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_TRUE(eof);
  EXPECT_EQ(s.srv->stats().errors, 1u);
  EXPECT_EQ(s.srv->connections(), 0u);
  close(c);
}

TEST(DnsTcp, ClientHalfCloseStillGetsItsAnswers) {
  Server s;
  int c = s.connect_client();
  send_all(c, concat({framed(query(1)), framed(query(2))}));
  ASSERT_EQ(shutdown(c, SHUT_WR), 0);
  bool eof = false;
  auto msgs = s.read_msgs(c, 3, 0, &eof);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[1], expected(query(2)));
  EXPECT_TRUE(eof);
  close(c);
}

TEST(DnsTcp, LargeAnswersToASlowReaderArriveWhole) {
  Server s(10000, 256, 8192);
  int c = s.connect_client();
  constexpr size_t kN = 20;  // 1.2 MB of answers: far more than the socket buffers hold
  Bytes wire;
  for (uint16_t id = 0; id < kN; ++id) {
    Bytes f = framed(query(id, kHuge));
    wire.insert(wire.end(), f.begin(), f.end());
  }
  send_all(c, wire);
  // The client reads nothing for a while: the server must neither block nor give up.
  for (int i = 0; i < 200; ++i) s.srv->poll(0);
  EXPECT_EQ(s.srv->connections(), 1u);
  EXPECT_LT(s.srv->stats().answers, kN);  // backpressure: not everything answered up front
  auto msgs = s.read_msgs(c, kN, 0);
  ASSERT_EQ(msgs.size(), kN);
  for (const Bytes& m : msgs) {
    ASSERT_EQ(m.size(), kHugeLen);
    EXPECT_EQ(m[0], kHuge);
    EXPECT_EQ(m.back(), 0xab);
  }
  close(c);
}

TEST(DnsTcp, MaximumSizeQuery) {
  Server s;
  int c = s.connect_client();
  Bytes q = query(9);
  q.resize(TcpServer::kMaxMessage, 0x5a);
  send_all(c, framed(q));
  auto msgs = s.read_msgs(c, 1, 0);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0], expected(q));
  close(c);
}

TEST(DnsTcp, NoFdLeak) {
  int before = count_fds();
  {
    Server s;
    std::vector<int> cs;
    for (int i = 0; i < 5; ++i) cs.push_back(s.connect_client());
    for (int c : cs) {
      send_all(c, framed(query(1)));
      ASSERT_EQ(s.read_msgs(c, 1, 0).size(), 1u);
    }
    EXPECT_EQ(s.srv->connections(), 5u);
    s.srv.reset();  // closes the connections and the listener
    for (int c : cs) {
      uint8_t b;
      EXPECT_EQ(recv(c, &b, 1, 0), 0);
      close(c);
    }
  }
  EXPECT_EQ(count_fds(), before);
}

}  // namespace
}  // namespace nf::dns
