// The kernel exception path: a TUN device in nf's own network namespace.
//
// Theory of operation
// -------------------
// The workers answer UDP DNS and forward packets without the kernel. Everything addressed to
// the appliance that the fast path does not handle - TCP to port 53, replies to health checks,
// ICMP errors for those - is punted to the management lcore, which writes it into this TUN
// device; the kernel's own TCP/IP stack then does the work, and what kernel sockets in the
// namespace send comes back out of the TUN, where the management lcore reads it and routes it
// out of a DPDK port like any other packet.
//
// Why a TUN in a namespace of its own rather than a TAP in the root namespace:
//  - the appliance's addresses are not the host's; in the root namespace they would collide
//    with (or hijack traffic of) the host's own interfaces and routes, and the host's
//    firewall, rp_filter and forwarding settings would apply to them;
//  - a TUN carries bare IPv4 packets (IFF_NO_PI), so there is no ARP or neighbour state to
//    fake: every route simply points at the device;
//  - the kernel gives us a real TCP (RFC 7766 DNS over TCP, health-check connections) with
//    retransmission, windows and timers we do not have to write.
//
// The namespace is named like `ip netns add` names one (a bind mount of the namespace on
// /run/netns/<name>), so `ip netns exec nf ss -tn` works for operators, and it survives
// restarts of nf; the TUN device does not (it is not persistent: it goes when its fd closes,
// taking its addresses and routes with it). Nothing leaves the calling thread switched into the
// namespace: every entry (creating the device, the netlink socket, sysctls, sockets) is
// setns() there and back on the calling thread, and the fds keep the namespace they were
// created in.
//
// Inside the namespace: lo up; the TUN up with the configured MTU, IPv6 disabled on it (only
// IPv4 goes through, and no router solicitations to drop), rp_filter 0 (sources are whatever
// the appliance receives), ip_forward 0 (the kernel is an end host here, never a router).
// The appliance's addresses sit on the TUN as /32s and the connected prefixes and default
// routes point at it with the right preferred source, so a kernel socket picks the address the
// appliance would use on that network.
//
// Everything here runs on the management lcore, which must never block: the TUN fd is
// non-blocking, and netlink requests are answered by the kernel synchronously (the socket has
// a receive timeout as a guard).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct mnl_socket;
struct nlmsghdr;

namespace nf::glue {

// A route through the TUN; all fields in host byte order. src is the preferred source address
// (it must be one of the addresses programmed with it).
struct ExceptionRoute {
  uint32_t prefix;
  uint8_t len;
  uint32_t src;
};

class ExceptionPath {
 public:
  // Creates or reuses the namespace `netns`, creates the TUN `ifname` in it (fails if another
  // process holds a TUN of that name there) and brings it up with `mtu`. nullptr and err set
  // on failure.
  static std::unique_ptr<ExceptionPath> open(const std::string& netns, const std::string& ifname,
                                             uint16_t mtu, std::string& err);
  // Unmounts and removes /run/netns/<name> (for tests and tools; nf itself keeps it).
  static bool remove_netns(const std::string& netns, std::string& err);

  ExceptionPath(const ExceptionPath&) = delete;
  ExceptionPath& operator=(const ExceptionPath&) = delete;
  // Closes the TUN (the device, its addresses and routes disappear); the namespace stays.
  ~ExceptionPath();

  // Makes the TUN's addresses and the main table's routes through it exactly these (adds
  // missing, replaces changed, removes stale). Idempotent: called at start and on every reload.
  bool program(const std::vector<uint32_t>& addrs, const std::vector<ExceptionRoute>& routes,
               std::string& err);

  int fd() const { return tun_fd_; }
  // One IPv4 packet (anything else the kernel emits is dropped), or -1 with errno (EAGAIN when
  // there is nothing to read).
  ssize_t read(uint8_t* buf, size_t cap);
  // One IPv4 packet towards the kernel.
  bool write(const uint8_t* pkt, size_t len);
  // Like ::socket(), but the socket lives in the namespace (always close-on-exec).
  int socket(int domain, int type, int protocol);

  const std::string& netns() const { return netns_; }
  const std::string& ifname() const { return ifname_; }
  int ifindex() const { return ifindex_; }

 private:
  ExceptionPath() = default;
  // One netlink request with NLM_F_ACK; 0 or -errno.
  int request(nlmsghdr* nlh);
  bool set_link(int ifindex, uint16_t mtu, std::string& err);

  std::string netns_;
  std::string ifname_;
  int ns_fd_ = -1;
  int tun_fd_ = -1;
  int ifindex_ = 0;
  mnl_socket* nl_ = nullptr;
  unsigned portid_ = 0;
  unsigned seq_ = 0;
};

}  // namespace nf::glue
