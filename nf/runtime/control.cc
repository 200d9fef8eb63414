#include "nf/runtime/control.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <sstream>

#include "nf/runtime/mgmt.h"

namespace nf {

namespace {

bool no_args(const std::vector<std::string>& a, std::string& out) {
  if (a.empty()) return true;
  out = "this command takes no arguments\n";
  return false;
}

template <std::string (Management::*Fn)() const>
bool show(Management& m, const std::vector<std::string>& a, std::string& out) {
  if (!no_args(a, out)) return false;
  out = (m.*Fn)();
  return true;
}

const std::array<Command, 20> kCommands = {{
    {"show ports", "", "ports: device, MAC, MTU, addresses, link, packet counters",
     show<&Management::show_ports>},
    {"show lcores", "", "management and worker lcores: loops, busy share, snapshot generation",
     show<&Management::show_lcores>},
    {"show stages", "", "per stage and worker: calls, packets, cycles per packet, outcomes",
     show<&Management::show_stages>},
    {"show drops", "", "every non-zero drop reason and punt reason, summed over workers",
     show<&Management::show_drops>},
    {"show routes", "", "the routing table (connected, static, local, neighbour /32s)",
     show<&Management::show_routes>},
    {"show neighbours", "", "the ARP table: address, MAC, port, state, queued packets",
     show<&Management::show_neighbours>},
    {"show management", "", "management lcore counters (ARP, ICMP, fragmentation, reloads)",
     show<&Management::show_mgmt>},
    {"show config", "", "the running configuration file", show<&Management::show_config>},
    {"show dhcp", "", "DHCP server: messages, leases, journal (group commits, sync time), recovery",
     show<&Management::show_dhcp>},
    {"show dns", "", "DNS: zones (serial, records), GSLB names with member health, answer counters",
     show<&Management::show_dns>},
    {"show health", "", "health checks: target, check, state, since, RTT, last error, history",
     show<&Management::show_health>},
    {"show lb", "", "load balancer: services, reals with health, weight and active flows, counters",
     show<&Management::show_lb>},
    {"show nat", "",
     "router NAT: port forwards, PAT rules with ports in use, sessions and counters",
     show<&Management::show_nat>},
    {"show acl", "",
     "ACL sets per port and direction: each rule's action and matches, the default's",
     show<&Management::show_acl>},
    {"show leases", "[address|mac]", "durable DHCP leases (all bound and declined, or one client)",
     [](Management& m, const std::vector<std::string>& a, std::string& out) {
       if (a.size() > 1) {
         out = "usage: show leases [address|mac]\n";
         return false;
       }
       out = m.show_leases(a.empty() ? "" : a[0]);
       return true;
     }},
    {"release", "<address>", "end a DHCP lease now (durably; the client is not told)",
     [](Management& m, const std::vector<std::string>& a, std::string& out) {
       if (a.size() != 1) {
         out = "usage: release <address>\n";
         return false;
       }
       return m.dhcp_release(a[0], out);
     }},
    {"check", "<file>", "validate a configuration file without applying it",
     [](Management& m, const std::vector<std::string>& a, std::string& out) {
       if (a.size() != 1) {
         out = "usage: check <file>\n";
         return false;
       }
       return m.check(a[0], out);
     }},
    {"reload", "[file]", "validate and apply a configuration (the running file if none given)",
     [](Management& m, const std::vector<std::string>& a, std::string& out) {
       if (a.size() > 1) {
         out = "usage: reload [file]\n";
         return false;
       }
       return m.reload(a.empty() ? "" : a[0], out);
     }},
    {"help", "", "this list",
     [](Management&, const std::vector<std::string>&, std::string& out) {
       for (const Command& c : command_table()) {
         std::string left = std::string(c.path) + (c.args.empty() ? "" : " " + std::string(c.args));
         left.resize(std::max<size_t>(left.size() + 1, 24), ' ');
         out += left + std::string(c.help) + "\n";
       }
       return true;
     }},
    {"ping", "", "answers pong (liveness)",
     [](Management&, const std::vector<std::string>&, std::string& out) {
       out = "pong\n";
       return true;
     }},
}};

std::vector<std::string> words(std::string_view s) {
  std::vector<std::string> w;
  std::istringstream in{std::string(s)};
  for (std::string x; in >> x;) w.push_back(x);
  return w;
}

}  // namespace

// Waits for `events` until the deadline behind `left_ms`; a signal (SIGHUP asks for a reload)
// interrupts poll() without ending the wait.
template <typename Left>
bool wait_for(int fd, short events, Left left_ms) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int rc = ::poll(&p, 1, left_ms());
    if (rc > 0) return true;
    if (rc == 0 || errno != EINTR) return false;
  }
}

std::span<const Command> command_table() {
  return kCommands;
}

bool dispatch(Management& m, std::string_view line, std::string& out) {
  std::vector<std::string> in = words(line);
  if (in.empty()) {
    out = "empty command; try \"help\"\n";
    return false;
  }
  const Command* match = nullptr;
  size_t match_words = 0;
  std::vector<std::string_view> candidates;
  std::vector<std::string_view> incomplete;  // what the words so far could still become
  for (const Command& c : kCommands) {
    std::vector<std::string> pw = words(c.path);
    if (in.size() < pw.size()) {
      bool prefix = true;
      for (size_t i = 0; i < in.size() && prefix; ++i) prefix = pw[i].rfind(in[i], 0) == 0;
      if (prefix) incomplete.push_back(c.path);
      continue;
    }
    bool ok = true;
    bool exact = true;
    for (size_t i = 0; i < pw.size() && ok; ++i) {
      ok = pw[i].rfind(in[i], 0) == 0;
      exact &= pw[i] == in[i];
    }
    if (!ok) continue;
    if (exact) {
      match = &c;
      match_words = pw.size();
      candidates.assign(1, c.path);
      break;
    }
    candidates.push_back(c.path);
    match = &c;
    match_words = pw.size();
  }
  if (candidates.empty() && !incomplete.empty()) {
    out = "incomplete command; could be:";
    for (auto c : incomplete) out += " \"" + std::string(c) + "\"";
    out += "\n";
    return false;
  }
  if (candidates.size() != 1) {
    out = candidates.empty() ? "unknown command \"" + std::string(line) + "\"; try \"help\"\n"
                             : "ambiguous command; could be:";
    if (!candidates.empty()) {
      for (auto c : candidates) out += " \"" + std::string(c) + "\"";
      out += "\n";
    }
    return false;
  }
  std::vector<std::string> args(in.begin() + static_cast<long>(match_words), in.end());
  return match->run(m, args, out);
}

ControlServer::~ControlServer() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
}

std::string ControlServer::listen(const std::string& path) {
  sockaddr_un a{};
  if (path.size() >= sizeof a.sun_path) return "control socket path too long: " + path;
  std::string dir = path.substr(0, path.rfind('/'));
  if (!dir.empty()) ::mkdir(dir.c_str(), 0755);
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return std::string("socket: ") + std::strerror(errno);
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  ::unlink(path.c_str());  // a stale socket from a crashed instance
  mode_t old = ::umask(0177);
  int rc = ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::umask(old);
  if (rc != 0) return "bind " + path + ": " + std::strerror(errno);
  ::chmod(path.c_str(), 0600);
  if (::listen(fd_, 16) != 0) return std::string("listen: ") + std::strerror(errno);
  path_ = path;
  return "";
}

void ControlServer::poll(Management& m) {
  for (int i = 0; i < 4; ++i) {  // a few clients per loop, so packets keep priority
    int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c < 0) return;
    // One deadline for the whole exchange: a client that trickles its request or stops reading
    // its answer is dropped, never allowed to stall the management lcore for long.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
    auto left_ms = [&] {
      auto d = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      return static_cast<int>(std::max<int64_t>(0, d.count()));
    };
    std::string line;
    char buf[512];
    bool complete = false;
    while (line.size() < 4096) {
      ssize_t n = ::read(c, buf, sizeof buf);
      if (n > 0) {
        line.append(buf, static_cast<size_t>(n));
        if (line.find('\n') != std::string::npos) {
          complete = true;
          break;
        }
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EINTR)) break;
      if (!wait_for(c, POLLIN, left_ms)) break;
    }
    if (!complete) {
      ::close(c);
      continue;
    }
    std::string out;
    bool ok = dispatch(m, line.substr(0, line.find('\n')), out);
    std::string reply = (ok ? "ok\n" : "error\n") + out;
    size_t off = 0;
    while (off < reply.size()) {
      ssize_t n = ::write(c, reply.data() + off, reply.size() - off);
      if (n > 0) {
        off += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR) && wait_for(c, POLLOUT, left_ms)) continue;
      break;
    }
    ::close(c);
  }
}

}  // namespace nf
