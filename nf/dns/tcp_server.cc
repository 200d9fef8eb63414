#include "nf/dns/tcp_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace nf::dns {

namespace {

// Per poll() call. Small enough that one call stays in the tens of microseconds even when
// every connection is busy; the management lcore has other work between calls.
constexpr int kAcceptsPerPoll = 16;
constexpr int kEventsPerPoll = 64;
constexpr int kQueriesPerTurn = 16;
constexpr size_t kReadChunk = 16 * 1024;
// Unwritten answers beyond this and the connection is neither read nor answered until the
// client drains them: what a client can make us hold is bounded by ~this plus one answer.
constexpr size_t kOutHighWater = 64 * 1024;
// Buffers that grew for a large message are given back when the connection closes.
constexpr size_t kKeepCapacity = 4 * 1024;
constexpr uint64_t kListenTag = ~uint64_t{0};

uint16_t be16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}

uint32_t client_of(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) {
    return ntohl(reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr.s_addr);
  }
  if (ss.ss_family == AF_INET6) {
    const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&a)) {
      uint32_t v = 0;
      std::memcpy(&v, &a.s6_addr[12], sizeof v);
      return ntohl(v);
    }
  }
  return 0;
}

}  // namespace

TcpServer::TcpServer(int listen_fd, AnswerFn fn, uint32_t idle_timeout_ms, uint32_t max_conns)
    : listen_fd_(listen_fd),
      fn_(std::move(fn)),
      idle_timeout_ms_(idle_timeout_ms),
      max_conns_(std::max<uint32_t>(max_conns, 1)),
      conns_(max_conns_),
      answer_buf_(kMaxMessage),
      read_buf_(kReadChunk) {
  free_.reserve(max_conns_);
  for (uint32_t i = max_conns_; i-- > 0;) free_.push_back(i);
  ready_.reserve(max_conns_);
  if (listen_fd_ >= 0) {
    int fl = ::fcntl(listen_fd_, F_GETFL);
    if (fl >= 0) ::fcntl(listen_fd_, F_SETFL, fl | O_NONBLOCK);
    ::fcntl(listen_fd_, F_SETFD, FD_CLOEXEC);
  }
  // Without epoll (fd exhaustion at start) poll() falls back to trying every connection.
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ >= 0 && listen_fd_ >= 0) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kListenTag;
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, listen_fd_, &ev) != 0) {
      ::close(epfd_);
      epfd_ = -1;
    }
  }
  if (epfd_ < 0) ++stats_.errors;
}

TcpServer::~TcpServer() {
  for (Conn& c : conns_) {
    if (c.fd >= 0) ::close(c.fd);
  }
  if (epfd_ >= 0) ::close(epfd_);
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

void TcpServer::poll(uint64_t now_ms) {
  // Connections that still had complete queries when their budget ran out last time: no
  // epoll event will come for them, the bytes are already ours.
  if (!ready_.empty()) {
    std::vector<uint32_t> carried;
    carried.swap(ready_);
    for (uint32_t slot : carried) {
      Conn& c = conns_[slot];
      if (!c.queued || c.fd < 0) continue;
      c.queued = false;
      service(slot, now_ms, false);
    }
    carried.clear();
    if (ready_.empty()) ready_.swap(carried);  // keep the reserved capacity
  }

  if (epfd_ >= 0) {
    epoll_event evs[kEventsPerPoll];
    int n = ::epoll_wait(epfd_, evs, kEventsPerPoll, 0);
    for (int i = 0; i < n; ++i) {
      if (evs[i].data.u64 == kListenTag) {
        accept_some(now_ms);
        continue;
      }
      auto slot = static_cast<uint32_t>(evs[i].data.u64);
      auto gen = static_cast<uint32_t>(evs[i].data.u64 >> 32);
      // The slot may have been closed (and even reused) earlier in this batch.
      if (slot >= conns_.size() || conns_[slot].fd < 0 || conns_[slot].gen != gen) continue;
      if ((evs[i].events & EPOLLERR) != 0) {
        ++stats_.errors;
        close_conn(slot);
        continue;
      }
      service(slot, now_ms, (evs[i].events & (EPOLLIN | EPOLLHUP)) != 0);
    }
  } else {
    accept_some(now_ms);
    for (uint32_t slot = 0; slot < conns_.size(); ++slot) {
      if (conns_[slot].fd >= 0) service(slot, now_ms, true);
    }
  }

  // RFC 7766 section 6.2.3: idle connections go; so do ones whose client stopped reading.
  if (now_ms != last_sweep_ms_) {
    last_sweep_ms_ = now_ms;
    for (uint32_t slot = 0; slot < conns_.size(); ++slot) {
      const Conn& c = conns_[slot];
      if (c.fd >= 0 && now_ms >= c.last_active && now_ms - c.last_active >= idle_timeout_ms_) {
        ++stats_.idle_closed;
        close_conn(slot);
      }
    }
  }
}

void TcpServer::accept_some(uint64_t now_ms) {
  if (listen_fd_ < 0) return;
  for (int i = 0; i < kAcceptsPerPoll; ++i) {
    sockaddr_storage ss{};
    socklen_t sl = sizeof ss;
    int fd =
        ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
      // EAGAIN: done. Anything else (EMFILE...) is retried on the next call.
      if (errno != EAGAIN && errno != EWOULDBLOCK) ++stats_.errors;
      return;
    }
    ++stats_.accepted;
    if (free_.empty() && !evict_for_new()) {
      ++stats_.limit_closed;
      ::close(fd);
      continue;
    }
    uint32_t slot = free_.back();
    Conn& c = conns_[slot];
    // Answers are whole messages written at once; Nagle would hold back the second of two
    // pipelined answers for an ACK.
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (epfd_ >= 0) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = static_cast<uint64_t>(c.gen) << 32 | slot;
      if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
        ++stats_.errors;
        ::close(fd);
        continue;
      }
    }
    free_.pop_back();
    c.fd = fd;
    c.events = EPOLLIN;
    c.client = client_of(ss);
    c.last_active = now_ms;
    ++live_;
  }
}

bool TcpServer::evict_for_new() {
  uint32_t victim = UINT32_MAX;
  for (uint32_t slot = 0; slot < conns_.size(); ++slot) {
    const Conn& c = conns_[slot];
    // Idle: no partial or pending query, nothing to write, not already on its way out.
    bool idle =
        c.fd >= 0 && c.in.empty() && c.out_off == c.out.size() && !c.peer_closed && !c.close_after;
    if (idle && (victim == UINT32_MAX || c.last_active < conns_[victim].last_active)) {
      victim = slot;
    }
  }
  if (victim == UINT32_MAX) return false;
  ++stats_.limit_closed;
  close_conn(victim);
  return true;
}

void TcpServer::close_conn(uint32_t slot) {
  Conn& c = conns_[slot];
  if (c.fd < 0) return;
  ::close(c.fd);  // also leaves the epoll set: the fd is never duplicated
  c.fd = -1;
  ++c.gen;
  c.events = 0;
  c.peer_closed = c.close_after = c.queued = false;
  c.in.clear();
  c.out.clear();
  c.out_off = 0;
  if (c.in.capacity() > kKeepCapacity) c.in.shrink_to_fit();
  if (c.out.capacity() > kKeepCapacity) c.out.shrink_to_fit();
  free_.push_back(slot);
  --live_;
}

bool TcpServer::has_complete(const Conn& c) const {
  if (c.in.size() < 2) return false;
  size_t len = be16(c.in.data());
  return len == 0 || c.in.size() >= 2 + len;
}

bool TcpServer::want_read(const Conn& c) const {
  return !c.peer_closed && !c.close_after && !has_complete(c) &&
         c.out.size() - c.out_off < kOutHighWater;
}

void TcpServer::answer(Conn& c, int& budget) {
  size_t off = 0;
  while (budget > 0 && !c.close_after && c.out.size() - c.out_off < kOutHighWater) {
    size_t avail = c.in.size() - off;
    if (avail < 2) break;
    size_t len = be16(&c.in[off]);
    if (len == 0) {
      // Not a DNS message; the stream cannot be trusted past it. Earlier answers still go.
      ++stats_.errors;
      c.close_after = true;
      break;
    }
    if (avail - 2 < len) break;
    ++stats_.queries;
    --budget;
    size_t alen = 0;
    try {
      alen = fn_(&c.in[off + 2], len, answer_buf_.data(), kMaxMessage, c.client);
    } catch (...) {
      // The callback is the engine; one bad query must not take the management lcore down.
      ++stats_.errors;
      alen = 0;
    }
    off += 2 + len;
    if (alen == 0 || alen > kMaxMessage) {
      if (alen > kMaxMessage) ++stats_.errors;
      c.close_after = true;
      break;
    }
    if (c.out_off == c.out.size()) {
      c.out.clear();
      c.out_off = 0;
    }
    c.out.push_back(static_cast<uint8_t>(alen >> 8));
    c.out.push_back(static_cast<uint8_t>(alen));
    c.out.insert(c.out.end(), answer_buf_.begin(), answer_buf_.begin() + alen);
    ++stats_.answers;
  }
  if (c.close_after) {
    c.in.clear();  // nothing after the last answered query will be looked at
  } else if (off != 0) {
    c.in.erase(c.in.begin(), c.in.begin() + static_cast<std::ptrdiff_t>(off));
  }
}

bool TcpServer::flush(Conn& c, uint64_t now_ms) {
  while (c.out_off < c.out.size()) {
    ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c.out_off += static_cast<size_t>(n);
      c.last_active = now_ms;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    return false;
  }
  if (c.out_off == c.out.size()) {
    c.out.clear();
    c.out_off = 0;
  } else if (c.out_off >= kOutHighWater) {
    c.out.erase(c.out.begin(), c.out.begin() + static_cast<std::ptrdiff_t>(c.out_off));
    c.out_off = 0;
  }
  return true;
}

void TcpServer::service(uint32_t slot, uint64_t now_ms, bool readable) {
  Conn& c = conns_[slot];
  int budget = kQueriesPerTurn;
  if (!flush(c, now_ms)) {
    ++stats_.errors;
    close_conn(slot);
    return;
  }
  answer(c, budget);
  if (readable && want_read(c)) {
    ssize_t n = ::recv(c.fd, read_buf_.data(), read_buf_.size(), MSG_DONTWAIT);
    if (n > 0) {
      c.in.insert(c.in.end(), read_buf_.begin(), read_buf_.begin() + n);
      c.last_active = now_ms;
    } else if (n == 0) {
      c.peer_closed = true;  // a client may close after its last query: still answer it
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      ++stats_.errors;
      close_conn(slot);
      return;
    }
    answer(c, budget);
  }
  if (!flush(c, now_ms)) {
    ++stats_.errors;
    close_conn(slot);
    return;
  }
  bool flushed = c.out_off == c.out.size();
  if (flushed && (c.close_after || (c.peer_closed && !has_complete(c)))) {
    close_conn(slot);
    return;
  }
  if (has_complete(c) && !c.close_after && !c.queued && c.out.size() - c.out_off < kOutHighWater) {
    c.queued = true;
    ready_.push_back(slot);
  }
  update_interest(slot);
}

void TcpServer::update_interest(uint32_t slot) {
  Conn& c = conns_[slot];
  if (epfd_ < 0) return;
  uint32_t want = (want_read(c) ? EPOLLIN : 0u) | (c.out_off < c.out.size() ? EPOLLOUT : 0u);
  if (want == c.events) return;
  epoll_event ev{};
  ev.events = want;
  ev.data.u64 = static_cast<uint64_t>(c.gen) << 32 | slot;
  if (::epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev) == 0) c.events = want;
}

}  // namespace nf::dns
