// DNS over TCP (RFC 1035 section 4.2.2, RFC 7766) for the management lcore.
//
// Theory of operation
// -------------------
// The workers answer UDP; a client retries over TCP when an answer was truncated (TC=1) or
// when it prefers TCP. Those connections are terminated by the kernel's TCP in nf's namespace
// (drivers-glue/exception.h), so this server only sees a listening socket and byte streams,
// and answers through the same callback the fast path uses.
//
// The management lcore polls and must never block, so everything is non-blocking and driven
// by poll(now): an internal epoll set says which connections can make progress (one
// epoll_wait per call when nothing happens, however many connections are open), and the work
// per call is bounded - a few accepts, one read per ready connection, a few queries per
// connection; what is left over waits for the next call rather than stalling the lcore.
//
// Per connection: each message is a 2-byte length and that many bytes; a client may pipeline
// several queries, and answers go back in order (RFC 7766 section 6.2.1.1 allows reordering;
// in order is simpler and what most clients expect). A length of 0 is not a DNS message and
// closes the connection. Answers are queued and written as the socket accepts them; while a
// connection has a backlog of unwritten answers it is not read, so a client that does not read
// cannot make the server buffer without bound. A client's EOF after its last query is normal:
// the answers still go out, then the connection closes.
//
// Resources: a connection idle for idle_timeout_ms (default 10 s, the RFC 7766 section 6.2.3
// suggestion) is closed, as is one that makes no progress writing for that long; at
// max_conns, a new connection evicts the connection that has been idle the longest, or is
// refused if none is idle.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace nf::dns {

struct TcpServerStats {
  uint64_t accepted;
  uint64_t queries;
  uint64_t answers;
  uint64_t idle_closed;
  uint64_t limit_closed;  // evicted or refused at max_conns
  uint64_t errors;        // socket errors, malformed framing, bad answer lengths
};

class TcpServer {
 public:
  // Writes the answer to `q` into out (capacity cap, 65535) and returns its length; 0 = send
  // nothing (close after flushing earlier answers). client_addr is IPv4 in host order (0 for
  // other families).
  using AnswerFn = std::function<size_t(const uint8_t* q, size_t qlen, uint8_t* out, size_t cap,
                                        uint32_t client_addr)>;

  // Takes ownership of listen_fd (already bound and listening; made non-blocking here).
  TcpServer(int listen_fd, AnswerFn fn, uint32_t idle_timeout_ms = 10000, uint32_t max_conns = 256);
  TcpServer(const TcpServer&) = delete;
  TcpServer& operator=(const TcpServer&) = delete;
  ~TcpServer();  // closes every connection and listen_fd

  // Accepts, reads, answers, writes; never blocks; bounded work per call.
  void poll(uint64_t now_ms);
  TcpServerStats stats() const { return stats_; }
  size_t connections() const { return live_; }

  static constexpr size_t kMaxMessage = 65535;

 private:
  struct Conn {
    int fd = -1;
    uint32_t gen = 0;  // tells a stale epoll event from one for the slot's new connection
    uint32_t client = 0;
    uint32_t events = 0;  // the epoll interest currently registered
    uint64_t last_active = 0;
    bool peer_closed = false;  // EOF seen: answer what is complete, flush, close
    bool close_after = false;  // the callback declined to answer: flush, close
    bool queued = false;       // in ready_: complete queries left over from a previous call
    std::vector<uint8_t> in;   // received, not yet answered
    std::vector<uint8_t> out;  // answers not yet written, from out_off
    size_t out_off = 0;
  };

  void accept_some(uint64_t now_ms);
  void service(uint32_t slot, uint64_t now_ms, bool readable);
  void close_conn(uint32_t slot);
  // Answers complete queries while budget lasts and the output backlog is small.
  void answer(Conn& c, int& budget);
  bool flush(Conn& c, uint64_t now_ms);
  bool has_complete(const Conn& c) const;
  bool want_read(const Conn& c) const;
  void update_interest(uint32_t slot);
  bool evict_for_new();

  int listen_fd_;
  int epfd_ = -1;
  AnswerFn fn_;
  uint32_t idle_timeout_ms_;
  uint32_t max_conns_;
  std::vector<Conn> conns_;
  std::vector<uint32_t> free_;
  std::vector<uint32_t> ready_;
  size_t live_ = 0;
  uint64_t last_sweep_ms_ = ~uint64_t{0};
  std::vector<uint8_t> answer_buf_;
  std::vector<uint8_t> read_buf_;
  TcpServerStats stats_{};
};

}  // namespace nf::dns
