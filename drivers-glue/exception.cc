#include "drivers-glue/exception.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if_tun.h>
#include <linux/magic.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <set>
#include <system_error>
#include <thread>
#include <utility>

#include "nf/runtime/log.h"

namespace nf::glue {

namespace {

constexpr const char* kNetnsDir = "/run/netns";
#ifndef NSFS_MAGIC
constexpr long kNsfsMagic = 0x6e736673;
#else
constexpr long kNsfsMagic = NSFS_MAGIC;
#endif

std::string errstr(int e) {
  return std::strerror(e);
}

std::string ip_str(uint32_t a) {
  char b[16];
  std::snprintf(b, sizeof b, "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
  return b;
}

uint32_t mask_of(uint8_t len) {
  return len == 0 ? 0 : ~uint32_t{0} << (32 - len);
}

// Switches the calling thread into a network namespace for the lifetime of the object. Only
// the thread moves (setns on a multi-threaded process affects the caller alone), and it must
// come back: a management lcore left in nf's namespace would open its later sockets there.
class NetnsSwitch {
 public:
  explicit NetnsSwitch(int target_fd) {
    // thread-self, not self: /proc/self/ns/net is the main thread's namespace.
    orig_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (orig_ < 0) {
      error_ = errno;
      return;
    }
    if (::setns(target_fd, CLONE_NEWNET) != 0) {
      error_ = errno;
      ::close(orig_);
      orig_ = -1;
    }
  }
  NetnsSwitch(const NetnsSwitch&) = delete;
  NetnsSwitch& operator=(const NetnsSwitch&) = delete;
  ~NetnsSwitch() {
    if (orig_ < 0) return;
    int saved = errno;  // callers report the errno of what they did inside
    if (::setns(orig_, CLONE_NEWNET) != 0) {
      // Cannot happen short of a kernel bug (we were just there); carrying on in the wrong
      // namespace would silently misroute everything this thread opens afterwards.
      log_error("exception path: cannot return to the original network namespace: %s",
                std::strerror(errno));
      std::abort();
    }
    ::close(orig_);
    errno = saved;
  }
  bool ok() const { return orig_ >= 0; }
  int error() const { return error_; }

 private:
  int orig_ = -1;
  int error_ = 0;
};

bool valid_netns_name(const std::string& n) {
  return !n.empty() && n.size() < 200 && n != "." && n != ".." && n.find('/') == std::string::npos;
}

// /run/netns must be a shared mount so that namespaces mounted later are visible in mount
// namespaces created from it (`ip netns exec` makes one); this is what `ip netns add` does.
bool prepare_netns_dir(std::string& err) {
  if (::mkdir(kNetnsDir, 0755) != 0 && errno != EEXIST) {
    err = std::string("mkdir ") + kNetnsDir + ": " + errstr(errno);
    return false;
  }
  bool made_mount = false;
  while (::mount("", kNetnsDir, "none", MS_SHARED | MS_REC, nullptr) != 0) {
    // EINVAL: not a mount point yet; bind it onto itself and try again.
    if (errno != EINVAL || made_mount) {
      err = std::string("mount --make-rshared ") + kNetnsDir + ": " + errstr(errno);
      return false;
    }
    if (::mount(kNetnsDir, kNetnsDir, "none", MS_BIND | MS_REC, nullptr) != 0) {
      err = std::string("mount --bind ") + kNetnsDir + ": " + errstr(errno);
      return false;
    }
    made_mount = true;
  }
  return true;
}

bool is_netns_mount(int fd) {
  struct statfs st {};
  return ::fstatfs(fd, &st) == 0 && static_cast<long>(st.f_type) == kNsfsMagic;
}

// Returns an fd of the named namespace, creating it when /run/netns/<name> is missing or is a
// leftover plain file (a crash between creating the file and mounting on it).
int ensure_netns(const std::string& name, std::string& err) {
  if (!prepare_netns_dir(err)) return -1;
  std::string path = std::string(kNetnsDir) + "/" + name;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (is_netns_mount(fd)) return fd;
    ::close(fd);
  } else {
    fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    if (fd < 0 && errno != EEXIST) {
      err = "create " + path + ": " + errstr(errno);
      return -1;
    }
    if (fd >= 0) ::close(fd);
  }
  // A fresh namespace needs a thread to unshare into it; a throwaway thread means the calling
  // thread never changes namespace, and the namespace lives on in the bind mount.
  int thread_err = 0;
  const char* step = "";
  try {
    std::thread t([&] {
      if (::unshare(CLONE_NEWNET) != 0) {
        thread_err = errno;
        step = "unshare(CLONE_NEWNET)";
      } else if (::mount("/proc/thread-self/ns/net", path.c_str(), "none", MS_BIND, nullptr) != 0) {
        thread_err = errno;
        step = "bind mount";
      }
    });
    t.join();
  } catch (const std::system_error& e) {
    err = std::string("netns thread: ") + e.what();
    return -1;
  }
  if (thread_err != 0) {
    err = std::string(step) + " " + path + ": " + errstr(thread_err);
    ::unlink(path.c_str());
    return -1;
  }
  fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || !is_netns_mount(fd)) {
    err = "open " + path + ": " + (fd < 0 ? errstr(errno) : std::string("not a namespace"));
    if (fd >= 0) ::close(fd);
    return -1;
  }
  return fd;
}

// Writes a sysctl of the calling thread's current namespace (/proc/sys/net resolves by the
// opener's namespace at lookup time, so this must run between setns and the switch back).
bool write_sysctl(const std::string& path, const char* value, std::string& err) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    err = "open " + path + ": " + errstr(errno);
    return false;
  }
  size_t n = std::strlen(value);
  bool ok = ::write(fd, value, n) == static_cast<ssize_t>(n);
  if (!ok) err = "write " + path + ": " + errstr(errno);
  ::close(fd);
  return ok;
}

struct DumpedAddr {
  uint32_t addr;
  uint8_t len;
};

struct DumpedRoute {
  uint32_t prefix;
  uint8_t len;
  uint32_t src;
  uint32_t priority;
};

struct AddrDump {
  int ifindex;
  std::vector<DumpedAddr> out;
};

struct RouteDump {
  int ifindex;
  std::vector<DumpedRoute> out;
};

// mnl_attr_for_each assigns a void*, which C++ does not convert implicitly.
template <typename Fn>
void for_each_attr(const nlmsghdr* nlh, size_t offset, Fn&& fn) {
  const auto* tail = static_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh));
  for (const auto* a = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(nlh, offset));
       mnl_attr_ok(a, static_cast<int>(tail - reinterpret_cast<const char*>(a)));
       a = mnl_attr_next(a)) {
    fn(a);
  }
}

uint32_t attr_ip(const nlattr* a) {
  uint32_t be = 0;
  std::memcpy(&be, mnl_attr_get_payload(a), sizeof be);
  return ntohl(be);
}

int addr_cb(const nlmsghdr* nlh, void* data) {
  auto* d = static_cast<AddrDump*>(data);
  if (nlh->nlmsg_type != RTM_NEWADDR) return MNL_CB_OK;
  const auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(nlh));
  if (ifa->ifa_family != AF_INET || static_cast<int>(ifa->ifa_index) != d->ifindex) {
    return MNL_CB_OK;
  }
  const nlattr* local = nullptr;
  const nlattr* address = nullptr;
  for_each_attr(nlh, sizeof(*ifa), [&](const nlattr* a) {
    if (mnl_attr_get_type(a) == IFA_LOCAL && mnl_attr_get_payload_len(a) == 4) local = a;
    if (mnl_attr_get_type(a) == IFA_ADDRESS && mnl_attr_get_payload_len(a) == 4) address = a;
  });
  const nlattr* use = local != nullptr ? local : address;
  if (use != nullptr) d->out.push_back({attr_ip(use), ifa->ifa_prefixlen});
  return MNL_CB_OK;
}

int route_cb(const nlmsghdr* nlh, void* data) {
  auto* d = static_cast<RouteDump*>(data);
  if (nlh->nlmsg_type != RTM_NEWROUTE) return MNL_CB_OK;
  const auto* rt = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(nlh));
  if (rt->rtm_family != AF_INET || rt->rtm_type != RTN_UNICAST) return MNL_CB_OK;
  uint32_t table = rt->rtm_table;
  uint32_t dst = 0;
  uint32_t src = 0;
  uint32_t priority = 0;
  int oif = 0;
  for_each_attr(nlh, sizeof(*rt), [&](const nlattr* a) {
    switch (mnl_attr_get_type(a)) {
      case RTA_TABLE:
        table = mnl_attr_get_u32(a);
        break;
      case RTA_DST:
        dst = attr_ip(a);
        break;
      case RTA_PREFSRC:
        src = attr_ip(a);
        break;
      case RTA_PRIORITY:
        priority = mnl_attr_get_u32(a);
        break;
      case RTA_OIF:
        oif = static_cast<int>(mnl_attr_get_u32(a));
        break;
      default:
        break;
    }
  });
  if (table == RT_TABLE_MAIN && oif == d->ifindex) {
    d->out.push_back({dst, rt->rtm_dst_len, src, priority});
  }
  return MNL_CB_OK;
}

// Netlink dumps come in skbs of up to 32 KiB; a smaller buffer would truncate them.
constexpr size_t kNlBuf = 64 * 1024;
// One request message (MNL_SOCKET_BUFFER_SIZE is a run-time value: a VLA in C++).
constexpr size_t kNlMsg = 8192;

}  // namespace

std::unique_ptr<ExceptionPath> ExceptionPath::open(const std::string& netns,
                                                   const std::string& ifname, uint16_t mtu,
                                                   std::string& err) {
  if (!valid_netns_name(netns)) {
    err = "invalid namespace name '" + netns + "'";
    return nullptr;
  }
  if (ifname.empty() || ifname.size() >= IFNAMSIZ || ifname.find('/') != std::string::npos) {
    err = "invalid interface name '" + ifname + "'";
    return nullptr;
  }
  if (mtu < 68) {
    err = "mtu " + std::to_string(mtu) + " below the IPv4 minimum of 68";
    return nullptr;
  }
  std::unique_ptr<ExceptionPath> ex(new (std::nothrow) ExceptionPath());
  if (!ex) {
    err = "out of memory";
    return nullptr;
  }
  ex->netns_ = netns;
  ex->ifname_ = ifname;
  ex->ns_fd_ = ensure_netns(netns, err);
  if (ex->ns_fd_ < 0) return nullptr;

  int lo_index = 0;
  {
    NetnsSwitch in(ex->ns_fd_);
    if (!in.ok()) {
      err = "setns " + netns + ": " + errstr(in.error());
      return nullptr;
    }
    // The device is created in the namespace of the thread that opens /dev/net/tun.
    ex->tun_fd_ = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (ex->tun_fd_ < 0) {
      err = std::string("open /dev/net/tun: ") + errstr(errno);
      return nullptr;
    }
    struct ifreq ifr {};
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    std::memcpy(ifr.ifr_name, ifname.c_str(), ifname.size());
    if (::ioctl(ex->tun_fd_, TUNSETIFF, &ifr) != 0) {
      // EBUSY: another process (another nf?) holds a TUN of that name in this namespace.
      err = "TUNSETIFF " + ifname + " in netns " + netns + ": " + errstr(errno);
      return nullptr;
    }
    ex->ifindex_ = static_cast<int>(::if_nametoindex(ifname.c_str()));
    lo_index = static_cast<int>(::if_nametoindex("lo"));
    if (ex->ifindex_ == 0 || lo_index == 0) {
      err = "if_nametoindex in netns " + netns + ": " + errstr(errno);
      return nullptr;
    }
    ex->nl_ = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
    if (ex->nl_ == nullptr || mnl_socket_bind(ex->nl_, 0, MNL_SOCKET_AUTOPID) != 0) {
      err = std::string("rtnetlink socket: ") + errstr(errno);
      return nullptr;
    }
    ex->portid_ = mnl_socket_get_portid(ex->nl_);
    // The kernel answers rtnetlink requests synchronously; the timeout only guards against a
    // lost reply hanging the management lcore.
    struct timeval tv {
      1, 0
    };
    ::setsockopt(mnl_socket_get_fd(ex->nl_), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

    // A new namespace inherits IPv4 "all" settings from the host's, so forwarding and
    // rp_filter are whatever the host uses; the appliance's kernel is an end host that sees
    // sources from anywhere.
    const std::string conf = "/proc/sys/net/ipv4/conf/";
    if (!write_sysctl("/proc/sys/net/ipv4/ip_forward", "0", err) ||
        !write_sysctl(conf + "all/rp_filter", "0", err) ||
        !write_sysctl(conf + ifname + "/rp_filter", "0", err)) {
      return nullptr;
    }
    // Only IPv4 goes through; without this the kernel would send router solicitations and
    // MLD reports into the TUN. Best effort: the kernel may be built without IPv6.
    std::string ignored;
    write_sysctl("/proc/sys/net/ipv6/conf/" + ifname + "/disable_ipv6", "1", ignored);
  }
  if (!ex->set_link(lo_index, 0, err) || !ex->set_link(ex->ifindex_, mtu, err)) return nullptr;
  return ex;
}

bool ExceptionPath::remove_netns(const std::string& netns, std::string& err) {
  if (!valid_netns_name(netns)) {
    err = "invalid namespace name '" + netns + "'";
    return false;
  }
  std::string path = std::string(kNetnsDir) + "/" + netns;
  // MNT_DETACH: a process still inside keeps the namespace alive, but the name goes now.
  if (::umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    err = "umount " + path + ": " + errstr(errno);
    return false;
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    err = "unlink " + path + ": " + errstr(errno);
    return false;
  }
  return true;
}

ExceptionPath::~ExceptionPath() {
  if (nl_ != nullptr) mnl_socket_close(nl_);
  if (tun_fd_ >= 0) ::close(tun_fd_);
  if (ns_fd_ >= 0) ::close(ns_fd_);
}

int ExceptionPath::request(nlmsghdr* nlh) {
  int fd = mnl_socket_get_fd(nl_);
  std::vector<char> buf(kNlBuf);
  // A reply that arrived after an earlier timeout would otherwise be taken for this one's.
  while (::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT) > 0) {
  }
  nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
  nlh->nlmsg_seq = ++seq_;
  if (mnl_socket_sendto(nl_, nlh, nlh->nlmsg_len) < 0) return -errno;
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(nl_, buf.data(), buf.size());
    if (n < 0) return -errno;
    int r =
        mnl_cb_run(buf.data(), static_cast<size_t>(n), nlh->nlmsg_seq, portid_, nullptr, nullptr);
    if (r < 0) return -errno;
    if (r == MNL_CB_STOP) return 0;
  }
}

namespace {

int dump(mnl_socket* nl, unsigned portid, unsigned seq, nlmsghdr* nlh, mnl_cb_t cb, void* data) {
  std::vector<char> buf(kNlBuf);
  int fd = mnl_socket_get_fd(nl);
  while (::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT) > 0) {
  }
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  nlh->nlmsg_seq = seq;
  if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) return -errno;
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(nl, buf.data(), buf.size());
    if (n < 0) return -errno;
    int r = mnl_cb_run(buf.data(), static_cast<size_t>(n), seq, portid, cb, data);
    if (r < 0) return -errno;
    if (r == MNL_CB_STOP) return 0;
  }
}

}  // namespace

bool ExceptionPath::set_link(int ifindex, uint16_t mtu, std::string& err) {
  alignas(nlmsghdr) char buf[kNlMsg];
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = RTM_NEWLINK;
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = ifindex;
  ifi->ifi_flags = IFF_UP;
  ifi->ifi_change = IFF_UP;
  if (mtu != 0) mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
  int r = request(nlh);
  if (r != 0) {
    err = "RTM_NEWLINK ifindex " + std::to_string(ifindex) + " up mtu " + std::to_string(mtu) +
          " in netns " + netns_ + ": " + errstr(-r);
    return false;
  }
  return true;
}

bool ExceptionPath::program(const std::vector<uint32_t>& addrs,
                            const std::vector<ExceptionRoute>& routes, std::string& err) {
  std::set<uint32_t> want_addrs(addrs.begin(), addrs.end());
  want_addrs.erase(0);
  // Keyed by prefix: one route per destination; a later entry for the same prefix wins.
  std::map<std::pair<uint32_t, uint8_t>, uint32_t> want_routes;
  for (const ExceptionRoute& r : routes) {
    if (r.len > 32) {
      err = "route " + ip_str(r.prefix) + "/" + std::to_string(r.len) + ": bad prefix length";
      return false;
    }
    // The kernel would reject such a route, and would silently drop it later if its source
    // went away; refuse before touching anything.
    if (r.src != 0 && want_addrs.count(r.src) == 0) {
      err = "route " + ip_str(r.prefix) + "/" + std::to_string(r.len) + ": source " +
            ip_str(r.src) + " is not an appliance address";
      return false;
    }
    want_routes[{r.prefix & mask_of(r.len), r.len}] = r.src;
  }

  alignas(nlmsghdr) char buf[kNlMsg];
  AddrDump ad{ifindex_, {}};
  {
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_GETADDR;
    auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
    ifa->ifa_family = AF_INET;
    int r = dump(nl_, portid_, ++seq_, nlh, addr_cb, &ad);
    if (r != 0) {
      err = "RTM_GETADDR dump: " + errstr(-r);
      return false;
    }
  }
  RouteDump rd{ifindex_, {}};
  {
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_GETROUTE;
    auto* rt = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
    rt->rtm_family = AF_INET;
    int r = dump(nl_, portid_, ++seq_, nlh, route_cb, &rd);
    if (r != 0) {
      err = "RTM_GETROUTE dump: " + errstr(-r);
      return false;
    }
  }

  std::string errors;
  auto fail = [&](const std::string& what, int e) {
    if (!errors.empty()) errors += "; ";
    errors += what + ": " + errstr(e);
  };

  // Order matters: a route's preferred source must already be a local address, and deleting
  // an address makes the kernel drop routes using it, so addresses go in first and out last.
  std::set<uint32_t> have_addrs;
  std::vector<DumpedAddr> stale_addrs;
  for (const DumpedAddr& a : ad.out) {
    if (a.len == 32 && want_addrs.count(a.addr) != 0) {
      have_addrs.insert(a.addr);
    } else {
      stale_addrs.push_back(a);
    }
  }
  auto addr_msg = [&](uint16_t type, uint16_t flags, uint32_t addr, uint8_t len) {
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = flags;
    auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = len;
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    ifa->ifa_index = static_cast<unsigned>(ifindex_);
    mnl_attr_put_u32(nlh, IFA_LOCAL, htonl(addr));
    mnl_attr_put_u32(nlh, IFA_ADDRESS, htonl(addr));
    return request(nlh);
  };
  for (uint32_t a : want_addrs) {
    if (have_addrs.count(a) != 0) continue;
    int r = addr_msg(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, a, 32);
    if (r != 0) fail("RTM_NEWADDR " + ip_str(a) + "/32", -r);
  }

  // Only routes at metric 0 are ours to keep; REPLACE updates one in place when its source
  // changed, so anything else with a wanted prefix must go explicitly.
  std::vector<DumpedRoute> stale_routes;
  std::set<std::pair<uint32_t, uint8_t>> have_routes;
  for (const DumpedRoute& r : rd.out) {
    auto it = want_routes.find({r.prefix, r.len});
    if (it == want_routes.end() || r.priority != 0) {
      stale_routes.push_back(r);
    } else if (it->second == r.src) {
      have_routes.insert(it->first);
    }
  }
  for (const auto& [key, src] : want_routes) {
    if (have_routes.count(key) != 0) continue;
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_NEWROUTE;
    nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_REPLACE;
    auto* rt = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
    rt->rtm_family = AF_INET;
    rt->rtm_dst_len = key.second;
    rt->rtm_table = RT_TABLE_MAIN;
    rt->rtm_protocol = RTPROT_STATIC;
    // No gateway on a point-to-point device: every destination is "on link".
    rt->rtm_scope = RT_SCOPE_LINK;
    rt->rtm_type = RTN_UNICAST;
    if (key.second != 0) mnl_attr_put_u32(nlh, RTA_DST, htonl(key.first));
    mnl_attr_put_u32(nlh, RTA_OIF, static_cast<uint32_t>(ifindex_));
    if (src != 0) mnl_attr_put_u32(nlh, RTA_PREFSRC, htonl(src));
    int r = request(nlh);
    if (r != 0) {
      fail("RTM_NEWROUTE " + ip_str(key.first) + "/" + std::to_string(key.second) + " src " +
               ip_str(src),
           -r);
    }
  }
  for (const DumpedRoute& s : stale_routes) {
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_DELROUTE;
    auto* rt = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
    rt->rtm_family = AF_INET;
    rt->rtm_dst_len = s.len;
    rt->rtm_table = RT_TABLE_MAIN;
    rt->rtm_scope = RT_SCOPE_NOWHERE;  // match any scope
    if (s.len != 0) mnl_attr_put_u32(nlh, RTA_DST, htonl(s.prefix));
    mnl_attr_put_u32(nlh, RTA_OIF, static_cast<uint32_t>(ifindex_));
    if (s.priority != 0) mnl_attr_put_u32(nlh, RTA_PRIORITY, s.priority);
    int r = request(nlh);
    if (r != 0 && r != -ESRCH) {
      fail("RTM_DELROUTE " + ip_str(s.prefix) + "/" + std::to_string(s.len), -r);
    }
  }
  for (const DumpedAddr& s : stale_addrs) {
    int r = addr_msg(RTM_DELADDR, 0, s.addr, s.len);
    if (r != 0 && r != -EADDRNOTAVAIL) {
      fail("RTM_DELADDR " + ip_str(s.addr) + "/" + std::to_string(s.len), -r);
    }
  }
  if (!errors.empty()) {
    err = "netns " + netns_ + ": " + errors;
    return false;
  }
  return true;
}

ssize_t ExceptionPath::read(uint8_t* buf, size_t cap) {
  // Bounded: the management lcore polls, it must not spin here on a stream of foreign frames.
  for (int i = 0; i < 64; ++i) {
    ssize_t n = ::read(tun_fd_, buf, cap);
    if (n < 0) return -1;
    if (n >= 20 && (buf[0] >> 4) == 4) return n;
  }
  errno = EAGAIN;
  return -1;
}

bool ExceptionPath::write(const uint8_t* pkt, size_t len) {
  return ::write(tun_fd_, pkt, len) == static_cast<ssize_t>(len);
}

int ExceptionPath::socket(int domain, int type, int protocol) {
  NetnsSwitch in(ns_fd_);
  if (!in.ok()) {
    errno = in.error();
    return -1;
  }
  return ::socket(domain, type | SOCK_CLOEXEC, protocol);
}

}  // namespace nf::glue
