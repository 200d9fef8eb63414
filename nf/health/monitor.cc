// Health-check engine; see monitor.h for the theory of operation.
#include "nf/health/monitor.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/icmp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>

#include "nf/net/addr.h"
#include "nf/runtime/log.h"

namespace nf::health {

namespace {

// Headers beyond this are not a health endpoint we understand; fail rather than buffer more.
constexpr size_t kHeaderCap = 16 * 1024;
// Raw bytes kept for a chunked body: the chunk framing may add to the 64 KiB of payload.
constexpr size_t kReadCap = kHeaderCap + 2 * kBodyCap;
// Bounds the work of one poll() when the raw socket sees a flood of (mostly foreign) ICMP.
constexpr int kIcmpReadsPerPoll = 256;
constexpr size_t kHistoryShown = 16;

enum class Phase : uint8_t { kIdle, kConnecting, kSending, kReceiving, kIcmpWait };

std::string errno_text(int e) {
  // std::generic_category().message() is strerror_r underneath: no shared buffer.
  return std::generic_category().message(e);
}

std::string format_addr(uint32_t a) {
  char b[16];
  std::snprintf(b, sizeof b, "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
  return b;
}

std::string format_rtt(uint32_t us) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f ms", us / 1000.0);
  return b;
}

std::string format_age(uint64_t us) {
  uint64_t s = us / 1'000'000;
  char b[32];
  if (s < 60)
    std::snprintf(b, sizeof b, "%.1fs", static_cast<double>(us) / 1e6);
  else if (s < 3600)
    std::snprintf(b, sizeof b, "%um%02us", static_cast<unsigned>(s / 60),
                  static_cast<unsigned>(s % 60));
  else if (s < 86400)
    std::snprintf(b, sizeof b, "%uh%02um", static_cast<unsigned>(s / 3600),
                  static_cast<unsigned>(s / 60 % 60));
  else
    std::snprintf(b, sizeof b, "%ud%02uh", static_cast<unsigned>(s / 86400),
                  static_cast<unsigned>(s / 3600 % 24));
  return b;
}

void append_field(std::string& key, const std::string& s) {
  key += std::to_string(s.size());
  key += ':';
  key += s;
}

// The identity of a probe: everything that changes what is sent or how it is judged.
std::string probe_key(uint32_t addr, const CheckSpec& s) {
  std::string k;
  for (uint64_t v : {uint64_t{addr}, uint64_t{static_cast<uint8_t>(s.kind)}, uint64_t{s.port},
                     uint64_t{s.expect_status}, uint64_t{s.interval_ms}, uint64_t{s.timeout_ms},
                     uint64_t{s.rise}, uint64_t{s.fall}}) {
    k += std::to_string(v);
    k += ',';
  }
  append_field(k, s.name);
  append_field(k, s.path);
  append_field(k, s.host);
  append_field(k, s.body_match);
  return k;
}

uint16_t inet_checksum(const uint8_t* p, size_t n) {
  uint32_t sum = 0;
  for (; n > 1; p += 2, n -= 2) sum += static_cast<uint32_t>(p[0] << 8 | p[1]);
  if (n) sum += static_cast<uint32_t>(p[0] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

bool iequals_prefix(const std::string& s, size_t pos, const char* name) {
  size_t n = std::strlen(name);
  if (s.size() - pos < n) return false;
  for (size_t i = 0; i < n; ++i)
    if (std::tolower(static_cast<unsigned char>(s[pos + i])) != name[i]) return false;
  return true;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return {};
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// Decodes as much of a chunked body as is present, at most kBodyCap bytes of payload.
// Returns true once the last chunk was seen (or the cap was reached).
bool dechunk(const std::string& raw, size_t pos, std::string& body) {
  while (body.size() < kBodyCap) {
    size_t eol = raw.find("\r\n", pos);
    if (eol == std::string::npos) return false;
    size_t len = 0;
    size_t digits = 0;
    for (size_t i = pos; i < eol; ++i, ++digits) {
      int c = std::tolower(static_cast<unsigned char>(raw[i]));
      int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (v < 0) break;                 // chunk extensions follow
      if (len > kReadCap) return true;  // absurd size: judge what we have
      len = len * 16 + static_cast<size_t>(v);
    }
    if (digits == 0) return true;  // malformed framing: judge what we have
    if (len == 0) return true;
    size_t data = eol + 2;
    size_t avail = raw.size() > data ? raw.size() - data : 0;
    body.append(raw, data, std::min({len, avail, kBodyCap - body.size()}));
    if (avail < len + 2) return false;
    pos = data + len + 2;
  }
  return true;
}

struct HttpVerdict {
  bool done = false;
  bool ok = false;
  std::string err;
};

// Judges the response received so far. `eof`: the server closed, or we stopped reading.
HttpVerdict judge_http(const std::string& in, bool eof, const CheckSpec& spec) {
  HttpVerdict v;
  size_t hdr_end = in.find("\r\n\r\n");
  if (hdr_end == std::string::npos) {
    if (in.size() > kHeaderCap) return {true, false, "HTTP: response headers too long"};
    if (!eof) return v;
    return {true, false,
            in.empty() ? "HTTP: connection closed without a response"
                       : "HTTP: connection closed before the end of the headers"};
  }
  // "HTTP/1.x NNN reason"
  unsigned status = 0;
  bool good = in.size() >= 12 && in.compare(0, 7, "HTTP/1.") == 0 && in[8] == ' ';
  for (size_t i = 9; good && i < 12; ++i) {
    if (in[i] < '0' || in[i] > '9') good = false;
    status = status * 10 + static_cast<unsigned>(in[i] - '0');
  }
  if (!good || (in.size() > 12 && in[12] != ' ' && in[12] != '\r'))
    return {true, false, "HTTP: malformed status line"};
  if (status != spec.expect_status)
    return {
        true, false,
        "HTTP status " + std::to_string(status) + ", want " + std::to_string(spec.expect_status)};
  if (spec.body_match.empty()) return {true, true, {}};

  bool chunked = false;
  bool have_len = false;
  size_t content_length = 0;
  for (size_t pos = in.find("\r\n") + 2; pos < hdr_end;) {
    size_t eol = in.find("\r\n", pos);
    std::string value = trim(in.substr(pos, eol - pos));
    if (iequals_prefix(in, pos, "content-length:")) {
      std::string n = trim(in.substr(pos + 15, eol - pos - 15));
      have_len =
          !n.empty() && n.find_first_not_of("0123456789") == std::string::npos && n.size() < 12;
      if (have_len) content_length = std::stoull(n);
    } else if (iequals_prefix(in, pos, "transfer-encoding:")) {
      std::string te = in.substr(pos + 18, eol - pos - 18);
      for (char& c : te) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      chunked = te.find("chunked") != std::string::npos;
    }
    pos = eol + 2;
  }

  size_t body_at = hdr_end + 4;
  std::string body;
  bool complete = eof;
  if (chunked) {
    complete = dechunk(in, body_at, body) || complete;
  } else {
    size_t avail = in.size() - body_at;
    size_t want = have_len ? std::min(content_length, kBodyCap) : kBodyCap;
    body.assign(in, body_at, std::min(avail, want));
    complete = complete || body.size() >= want;
  }
  if (body.find(spec.body_match) != std::string::npos) return {true, true, {}};
  if (complete) return {true, false, "body does not contain \"" + spec.body_match + "\""};
  return v;
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", static_cast<unsigned>(c));
      o += b;
    } else {
      o += c;
    }
  }
  return o;
}

// Distinct per Monitor in a process (two Monitors must not take each other's echo replies)
// and, through the pid, likely distinct from other pingers on the host.
uint16_t next_icmp_id() {
  static std::atomic<uint16_t> counter{0};
  return static_cast<uint16_t>((static_cast<uint32_t>(::getpid()) * 40503u) ^
                               (counter.fetch_add(1) * 257u));
}

}  // namespace

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kIcmp:
      return "icmp";
    case Kind::kTcp:
      return "tcp";
    case Kind::kHttp:
      return "http";
  }
  return "?";
}

struct Monitor::Probe {
  uint32_t addr = 0;
  CheckSpec spec;
  uint32_t slot = 0;
  std::vector<std::string> labels;

  uint64_t next_due_us = 0;

  // The probe in flight.
  Phase phase = Phase::kIdle;
  int fd = -1;
  uint64_t started_us = 0, deadline_us = 0;
  std::string out;  // HTTP request
  size_t out_off = 0;
  std::string in;  // HTTP response so far
  uint16_t seq = 0;

  // Judged state (mirrored into the slot).
  bool up = true;
  uint64_t since_us = 0;
  uint32_t ok_run = 0, fail_run = 0;
  uint64_t n_ok = 0, n_fail = 0;
  std::string last_error;
  uint32_t last_rtt_us = 0, rtt_ewma_us = 0;
  uint32_t history = 0;  // bit i: result i probes ago, 1 = ok
  uint8_t history_len = 0;

  std::string check_text() const {
    std::string s = spec.name + " (" + kind_name(spec.kind);
    if (spec.kind != Kind::kIcmp) s += " :" + std::to_string(spec.port);
    if (spec.kind == Kind::kHttp) s += spec.path;
    return s + ")";
  }
  std::string history_text(size_t n) const {
    std::string h;
    for (size_t i = std::min<size_t>(n, history_len); i-- > 0;) h += (history >> i) & 1 ? '+' : '-';
    return h;
  }
};

Monitor::Monitor(SocketFn sock, LogFn log)
    : sock_(std::move(sock)),
      log_(std::move(log)),
      slots_(new Slot[kMaxSlots]),
      slot_free_at_us_(kMaxSlots, 0),
      slot_used_(kMaxSlots, 0),
      icmp_id_(next_icmp_id()) {}

Monitor::~Monitor() {
  for (auto& [key, p] : probes_) abort(*p);
  if (icmp_fd_ >= 0) ::close(icmp_fd_);
}

void Monitor::log(const std::string& line) const {
  try {
    if (log_)
      log_(line);
    else
      log_info("%s", line.c_str());
  } catch (...) {  // a broken logger must not take the management lcore down
  }
}

int Monitor::make_socket(int domain, int type, int protocol) const {
  int fd = -1;
  try {
    fd = sock_ ? sock_(domain, type, protocol) : ::socket(domain, type, protocol);
  } catch (...) {
    errno = EIO;
    return -1;
  }
  if (fd >= 0) {
    // Whatever the factory did, this thread must never block on the socket.
    int fl = ::fcntl(fd, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK)) ::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  }
  return fd;
}

uint32_t Monitor::alloc_slot(uint64_t now_us) {
  for (uint32_t i = 0; i < kMaxSlots; ++i) {
    if (slot_used_[i] || slot_free_at_us_[i] > now_us) continue;
    slot_used_[i] = 1;
    slots_[i].rtt_us.store(0, std::memory_order_relaxed);
    slots_[i].up.store(1, std::memory_order_relaxed);
    return i;
  }
  return kNoSlot;
}

std::vector<uint32_t> Monitor::set_targets(const std::vector<Target>& targets, uint64_t now_ms) {
  now_us_ = now_ms * 1000;
  std::unordered_map<std::string, std::unique_ptr<Probe>> next;
  std::vector<TargetRef> refs;
  std::vector<uint32_t> out;
  refs.reserve(targets.size());
  out.reserve(targets.size());
  size_t no_slot = 0;
  for (const Target& t : targets) {
    std::string key = probe_key(t.addr, t.spec);
    Probe* p = nullptr;
    if (auto it = next.find(key); it != next.end()) {
      p = it->second.get();
    } else if (auto node = probes_.extract(key); !node.empty()) {
      p = node.mapped().get();
      p->labels.clear();
      next.insert(std::move(node));
    } else if (uint32_t slot = alloc_slot(now_us_); slot != kNoSlot) {
      auto np = std::make_unique<Probe>();
      p = np.get();
      p->addr = t.addr;
      p->spec = t.spec;
      p->slot = slot;
      p->since_us = now_us_;
      // Spread first probes deterministically so a reload does not fire them all at once.
      uint64_t spread = std::clamp<uint64_t>(t.spec.interval_ms, 1, 1000) * 1000;
      p->next_due_us = now_us_ + std::hash<std::string>{}(key) % spread;
      next.emplace(std::move(key), std::move(np));
    } else {
      ++no_slot;
    }
    if (p && std::find(p->labels.begin(), p->labels.end(), t.label) == p->labels.end())
      p->labels.push_back(t.label);
    refs.push_back({t.label, p});
    out.push_back(p ? p->slot : kNoSlot);
  }
  // What is left in probes_ is no longer wanted.
  for (auto& [key, p] : probes_) {
    abort(*p);
    slot_used_[p->slot] = 0;
    slot_free_at_us_[p->slot] = now_us_ + kSlotQuarantineMs * 1000;
  }
  probes_ = std::move(next);
  targets_ = std::move(refs);
  bool any_icmp = std::any_of(probes_.begin(), probes_.end(),
                              [](const auto& kv) { return kv.second->spec.kind == Kind::kIcmp; });
  if (!any_icmp && icmp_fd_ >= 0) {
    ::close(icmp_fd_);
    icmp_fd_ = -1;
  }
  if (no_slot)
    log("health: out of slots, " + std::to_string(no_slot) + " target(s) not checked (max " +
        std::to_string(kMaxSlots) + " distinct checks)");
  return out;
}

size_t Monitor::in_flight() const {
  return static_cast<size_t>(std::count_if(probes_.begin(), probes_.end(), [](const auto& kv) {
    return kv.second->phase != Phase::kIdle;
  }));
}

void Monitor::poll_us(uint64_t now_us) {
  now_us_ = now_us;
  pfds_.clear();
  pfd_probe_.clear();
  for (auto& [key, p] : probes_) {
    if (p->fd < 0) continue;
    short ev = p->phase == Phase::kReceiving ? POLLIN : POLLOUT;
    pfds_.push_back(pollfd{p->fd, ev, 0});
    pfd_probe_.push_back(p.get());
  }
  if (icmp_fd_ >= 0) {
    pfds_.push_back({icmp_fd_, POLLIN, 0});
    pfd_probe_.push_back(nullptr);
  }
  if (!pfds_.empty() && ::poll(pfds_.data(), pfds_.size(), 0) > 0) {
    for (size_t i = 0; i < pfds_.size(); ++i) {
      if (!pfds_[i].revents) continue;
      if (pfd_probe_[i])
        on_ready(*pfd_probe_[i], pfds_[i].revents);
      else
        read_icmp();
    }
  }
  for (auto& [key, p] : probes_) {
    if (p->phase == Phase::kIdle || now_us_ < p->deadline_us) continue;
    finish(*p, false,
           p->spec.kind == Kind::kIcmp
               ? "icmp: no reply"
               : "timeout after " + std::to_string(p->spec.timeout_ms) + " ms");
  }
  for (auto& [key, p] : probes_)
    if (p->phase == Phase::kIdle && now_us_ >= p->next_due_us) start(*p);
}

void Monitor::start(Probe& p) {
  uint64_t interval = std::max<uint64_t>(p.spec.interval_ms, 1) * 1000;
  // Keep the cadence (and so the spread between targets) unless we fell behind.
  p.next_due_us += interval;
  if (p.next_due_us <= now_us_) p.next_due_us = now_us_ + interval;
  p.started_us = now_us_;
  p.deadline_us = now_us_ + std::max<uint64_t>(p.spec.timeout_ms, 1) * 1000;
  if (p.spec.kind == Kind::kIcmp)
    start_icmp(p);
  else
    start_tcp(p);
}

void Monitor::start_tcp(Probe& p) {
  p.fd = make_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (p.fd < 0) return finish(p, false, "socket: " + errno_text(errno));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(p.spec.port);
  sa.sin_addr.s_addr = htonl(p.addr);
  p.phase = Phase::kConnecting;
  if (::connect(p.fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0)
    return on_ready(p, POLLOUT);
  if (errno != EINPROGRESS) return finish(p, false, "connect: " + errno_text(errno));
}

void Monitor::on_ready(Probe& p, short revents) {
  if (p.phase == Phase::kConnecting) {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err) return finish(p, false, "connect: " + errno_text(err));
    if (p.spec.kind == Kind::kTcp) return finish(p, true, {});
    const std::string& host = p.spec.host.empty() ? format_addr(p.addr) : p.spec.host;
    p.out = "GET " + p.spec.path + " HTTP/1.1\r\nHost: " + host +
            "\r\nUser-Agent: nf-health/1\r\nConnection: close\r\n\r\n";
    p.out_off = 0;
    p.in.clear();
    p.phase = Phase::kSending;
    revents = POLLOUT;
  }
  http_progress(p, revents);
}

void Monitor::http_progress(Probe& p, short revents) {
  if (p.phase == Phase::kSending) {
    while (p.out_off < p.out.size()) {
      ssize_t n = ::send(p.fd, p.out.data() + p.out_off, p.out.size() - p.out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;  // poll for POLLOUT again
        if (errno == EINTR) continue;
        return finish(p, false, "send: " + errno_text(errno));
      }
      p.out_off += static_cast<size_t>(n);
    }
    p.phase = Phase::kReceiving;
    revents = POLLIN;  // the answer may already be there
  }
  if (p.phase != Phase::kReceiving || !(revents & (POLLIN | POLLHUP | POLLERR))) return;
  bool eof = false;
  std::array<char, 16384> buf;
  while (p.in.size() < kReadCap) {
    size_t want = std::min(buf.size(), kReadCap - p.in.size());
    ssize_t n = ::recv(p.fd, buf.data(), want, MSG_DONTWAIT);
    if (n > 0) {
      p.in.append(buf.data(), static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      eof = true;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    // A reset after a complete answer is still an answer; judge what arrived first.
    HttpVerdict v = judge_http(p.in, true, p.spec);
    if (v.done && v.ok) return finish(p, true, {});
    return finish(p, false, "recv: " + errno_text(errno));
  }
  HttpVerdict v = judge_http(p.in, eof || p.in.size() >= kReadCap, p.spec);
  if (v.done) finish(p, v.ok, v.err);
}

void Monitor::start_icmp(Probe& p) {
  if (icmp_fd_ < 0) {
    icmp_fd_ = make_socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
    if (icmp_fd_ < 0) return finish(p, false, "icmp: socket: " + errno_text(errno));
    // Only what can concern us reaches the socket; the kernel drops the rest cheaply.
    icmp_filter f{};
    f.data = ~((1u << ICMP_ECHOREPLY) | (1u << ICMP_DEST_UNREACH) | (1u << ICMP_TIME_EXCEEDED));
    ::setsockopt(icmp_fd_, SOL_RAW, ICMP_FILTER, &f, sizeof f);
  }
  do {
    p.seq = ++icmp_seq_;
  } while (icmp_inflight_.count(p.seq));
  std::array<uint8_t, 32> pkt{};
  pkt[0] = ICMP_ECHO;
  pkt[4] = static_cast<uint8_t>(icmp_id_ >> 8);
  pkt[5] = static_cast<uint8_t>(icmp_id_);
  pkt[6] = static_cast<uint8_t>(p.seq >> 8);
  pkt[7] = static_cast<uint8_t>(p.seq);
  std::memcpy(pkt.data() + 8, "nf-health", 9);
  uint16_t ck = inet_checksum(pkt.data(), pkt.size());
  pkt[2] = static_cast<uint8_t>(ck >> 8);
  pkt[3] = static_cast<uint8_t>(ck);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(p.addr);
  p.phase = Phase::kIcmpWait;
  icmp_inflight_[p.seq] = &p;
  if (::sendto(icmp_fd_, pkt.data(), pkt.size(), MSG_DONTWAIT,
               reinterpret_cast<const sockaddr*>(&sa), sizeof sa) < 0)
    finish(p, false, "icmp: sendto: " + errno_text(errno));
}

void Monitor::read_icmp() {
  std::array<uint8_t, 1500> buf;
  for (int i = 0; i < kIcmpReadsPerPoll; ++i) {
    sockaddr_in from{};
    socklen_t fl = sizeof from;
    ssize_t n = ::recvfrom(icmp_fd_, buf.data(), buf.size(), MSG_DONTWAIT,
                           reinterpret_cast<sockaddr*>(&from), &fl);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    auto len = static_cast<size_t>(n);
    if (len < 20) continue;
    size_t ihl = (buf[0] & 0x0fu) * 4u;
    if (len < ihl + 8) continue;
    const uint8_t* icmp = buf.data() + ihl;
    uint8_t type = icmp[0];
    const uint8_t* echo = icmp;  // the echo header the message is about
    uint32_t peer = ntohl(from.sin_addr.s_addr);
    if (type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED) {
      // The error quotes our IP header and the first 8 bytes of our echo request.
      const uint8_t* inner = icmp + 8;
      if (len < ihl + 8 + 20) continue;
      size_t inner_ihl = (inner[0] & 0x0fu) * 4u;
      if (inner[9] != IPPROTO_ICMP || len < ihl + 8 + inner_ihl + 8) continue;
      echo = inner + inner_ihl;
      if (echo[0] != ICMP_ECHO) continue;
      peer = static_cast<uint32_t>(inner[16]) << 24 | static_cast<uint32_t>(inner[17]) << 16 |
             static_cast<uint32_t>(inner[18]) << 8 | inner[19];
    } else if (type != ICMP_ECHOREPLY) {
      continue;
    }
    auto id = static_cast<uint16_t>(echo[4] << 8 | echo[5]);
    auto seq = static_cast<uint16_t>(echo[6] << 8 | echo[7]);
    if (id != icmp_id_) continue;
    auto it = icmp_inflight_.find(seq);
    if (it == icmp_inflight_.end() || it->second->addr != peer) continue;
    Probe& p = *it->second;
    if (type == ICMP_ECHOREPLY)
      finish(p, true, {});
    else if (type == ICMP_DEST_UNREACH)
      finish(p, false, "icmp: destination unreachable (code " + std::to_string(icmp[1]) + ")");
    else
      finish(p, false, "icmp: time exceeded");
  }
}

void Monitor::abort(Probe& p) {
  if (p.fd >= 0) ::close(p.fd);
  p.fd = -1;
  if (p.phase == Phase::kIcmpWait) icmp_inflight_.erase(p.seq);
  p.phase = Phase::kIdle;
  p.out.clear();
  p.in.clear();
  p.in.shrink_to_fit();  // up to 144 KiB per target otherwise stays allocated
}

// One line per label: an operator greps for the name or member they care about, and a probe
// shared by several GSLB names changes all of them.
void Monitor::log_transition(const Probe& p, const std::string& what) const {
  for (const std::string& l : p.labels) {
    std::string line = "health: ";
    line += l;
    line += " ";
    line += format_ipv4(p.addr);
    line += " (check ";
    line += p.spec.name;
    line += ") ";
    line += what;
    log(line);
  }
}

void Monitor::finish(Probe& p, bool ok, const std::string& err) {
  abort(p);
  Slot& slot = slots_[p.slot];
  p.history = p.history << 1 | (ok ? 1u : 0u);
  if (p.history_len < 32) ++p.history_len;
  if (ok) {
    ++p.n_ok;
    ++p.ok_run;
    p.fail_run = 0;
    // A zero would read as "no RTT yet"; a loopback answer within one clock tick is 1 us.
    uint64_t rtt = std::clamp<uint64_t>(now_us_ - std::min(now_us_, p.started_us), 1, UINT32_MAX);
    p.last_rtt_us = static_cast<uint32_t>(rtt);
    p.rtt_ewma_us = p.rtt_ewma_us == 0
                        ? p.last_rtt_us
                        : static_cast<uint32_t>((3 * rtt + 7 * uint64_t{p.rtt_ewma_us} + 5) / 10);
    p.rtt_ewma_us = std::max<uint32_t>(p.rtt_ewma_us, 1);
    slot.rtt_us.store(p.rtt_ewma_us, std::memory_order_relaxed);
    if (!p.up && p.ok_run >= std::max<uint32_t>(p.spec.rise, 1)) {
      p.up = true;
      p.since_us = now_us_;
      slot.up.store(1, std::memory_order_relaxed);
      log_transition(p, "UP after " + std::to_string(p.ok_run) +
                            (p.ok_run == 1 ? " success" : " successes") + " (rtt " +
                            format_rtt(p.last_rtt_us) + ")");
    }
  } else {
    ++p.n_fail;
    ++p.fail_run;
    p.ok_run = 0;
    p.last_error = err;
    if (p.up && p.fail_run >= std::max<uint32_t>(p.spec.fall, 1)) {
      p.up = false;
      p.since_us = now_us_;
      slot.up.store(0, std::memory_order_relaxed);
      log_transition(p, "DOWN after " + std::to_string(p.fail_run) +
                            (p.fail_run == 1 ? " failure: " : " failures: ") + err);
    }
  }
}

std::string Monitor::show() const {
  std::vector<std::array<std::string, 10>> rows;
  rows.push_back({"target", "address", "check", "state", "since", "ok", "fail", "rtt", "last error",
                  "history"});
  for (const TargetRef& t : targets_) {
    if (!t.probe) {
      rows.push_back({t.label, "-", "-", "unchecked", "-", "-", "-", "-", "out of slots", "-"});
      continue;
    }
    const Probe& p = *t.probe;
    std::string state = p.up ? "UP" : "DOWN";
    if (p.history_len == 0) state += " (assumed)";
    rows.push_back({t.label, format_addr(p.addr), p.check_text(), state,
                    format_age(now_us_ - std::min(now_us_, p.since_us)), std::to_string(p.ok_run),
                    std::to_string(p.fail_run), p.last_rtt_us ? format_rtt(p.last_rtt_us) : "-",
                    p.last_error.empty() ? "-" : p.last_error,
                    p.history_len ? p.history_text(kHistoryShown) : "(none)"});
  }
  std::array<size_t, 10> w{};
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) w[i] = std::max(w[i], r[i].size());
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(w[i] - r[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

std::string Monitor::show_json() const {
  std::string o = "[";
  for (const TargetRef& t : targets_) {
    if (o.size() > 1) o += ",";
    o += "{\"target\":\"" + json_escape(t.label) + "\"";
    if (t.probe) {
      const Probe& p = *t.probe;
      o += ",\"address\":\"" + format_addr(p.addr) + "\",\"check\":\"" + json_escape(p.spec.name) +
           "\",\"kind\":\"" + kind_name(p.spec.kind) + "\",\"slot\":" + std::to_string(p.slot) +
           ",\"up\":" + (p.up ? "true" : "false") +
           ",\"since_ms\":" + std::to_string((now_us_ - std::min(now_us_, p.since_us)) / 1000) +
           ",\"consecutive_ok\":" + std::to_string(p.ok_run) +
           ",\"consecutive_fail\":" + std::to_string(p.fail_run) +
           ",\"total_ok\":" + std::to_string(p.n_ok) +
           ",\"total_fail\":" + std::to_string(p.n_fail) +
           ",\"rtt_us\":" + std::to_string(p.last_rtt_us) +
           ",\"rtt_ewma_us\":" + std::to_string(p.rtt_ewma_us) + ",\"last_error\":\"" +
           json_escape(p.last_error) + "\",\"history\":\"" + p.history_text(32) + "\"";
    } else {
      o += ",\"slot\":null,\"up\":true,\"last_error\":\"out of slots\"";
    }
    o += "}";
  }
  return o + "]";
}

}  // namespace nf::health
