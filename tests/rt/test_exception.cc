// The kernel exception path against the real kernel: a named namespace, a TUN in it, addresses
// and routes programmed over rtnetlink, and packets both ways between a kernel socket in the
// namespace and the TUN. Needs root (skips otherwise); leaves no namespace or device behind.
#include <arpa/inet.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "drivers-glue/exception.h"
#include "tests/common/fds.h"

namespace nf::glue {
namespace {

uint32_t ip(const char* s) {
  in_addr a{};
  EXPECT_EQ(inet_pton(AF_INET, s, &a), 1) << s;
  return ntohl(a.s_addr);
}

// Runs a shell command and returns its stdout (the ip tool is the independent witness).
std::string run(const std::string& cmd, int* status = nullptr) {
  std::string out;
  FILE* f = popen((cmd + " 2>&1").c_str(), "r");
  if (f == nullptr) return out;
  std::array<char, 512> b{};
  while (fgets(b.data(), b.size(), f) != nullptr) out += b.data();
  int st = pclose(f);
  if (status != nullptr) *status = st;
  return out;
}

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

using nf::test::count_fds;

uint16_t csum(const uint8_t* p, size_t n) {
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < n; i += 2) s += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if ((n & 1) != 0) s += static_cast<uint32_t>(p[n - 1] << 8);
  while ((s >> 16) != 0) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
  put16(p, static_cast<uint16_t>(v >> 16));
  put16(p + 2, static_cast<uint16_t>(v));
}
uint16_t get16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
uint32_t get32(const uint8_t* p) {
  return static_cast<uint32_t>(get16(p)) << 16 | get16(p + 2);
}

// IPv4/UDP with the UDP checksum left 0 (allowed for IPv4).
std::vector<uint8_t> udp4(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport,
                          const std::string& payload) {
  std::vector<uint8_t> p(28 + payload.size());
  p[0] = 0x45;
  put16(&p[2], static_cast<uint16_t>(p.size()));
  p[8] = 64;
  p[9] = IPPROTO_UDP;
  put32(&p[12], src);
  put32(&p[16], dst);
  put16(&p[10], csum(p.data(), 20));
  put16(&p[20], sport);
  put16(&p[22], dport);
  put16(&p[24], static_cast<uint16_t>(8 + payload.size()));
  std::memcpy(&p[28], payload.data(), payload.size());
  return p;
}

// Reads from the TUN until a UDP packet to dst:dport shows up (the kernel may emit others).
std::vector<uint8_t> read_udp_to(ExceptionPath& ex, uint32_t dst, uint16_t dport) {
  std::array<uint8_t, 2048> buf{};
  for (int i = 0; i < 200; ++i) {
    pollfd pfd{ex.fd(), POLLIN, 0};
    if (::poll(&pfd, 1, 20) <= 0) continue;
    ssize_t n = ex.read(buf.data(), buf.size());
    if (n < 28) continue;
    if (buf[9] == IPPROTO_UDP && get32(&buf[16]) == dst && get16(&buf[22]) == dport) {
      return {buf.begin(), buf.begin() + n};
    }
  }
  return {};
}

class Exception : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (network namespace, TUN)";
    if (access("/dev/net/tun", R_OK | W_OK) != 0) GTEST_SKIP() << "no /dev/net/tun";
    ns_ = "nft-" + std::to_string(getpid());
  }
  void TearDown() override {
    if (ns_.empty()) return;
    std::string err;
    EXPECT_TRUE(ExceptionPath::remove_netns(ns_, err)) << err;
    struct stat st {};
    EXPECT_NE(::stat(("/run/netns/" + ns_).c_str(), &st), 0) << "namespace file leaked";
  }
  std::string ns_;
};

TEST_F(Exception, ProgramsAndCarriesPackets) {
  int fds_before = count_fds();
  {
    std::string err;
    auto ex = ExceptionPath::open(ns_, "nft0", 1400, err);
    ASSERT_NE(ex, nullptr) << err;
    EXPECT_EQ(ex->netns(), ns_);
    EXPECT_GE(ex->fd(), 0);

    std::string link = run("ip -n " + ns_ + " link show nft0");
    EXPECT_TRUE(contains(link, "mtu 1400")) << link;
    EXPECT_TRUE(contains(link, ",UP")) << link;
    EXPECT_TRUE(contains(run("ip -n " + ns_ + " link show lo"), ",UP"));
    EXPECT_EQ(run("ip netns exec " + ns_ + " cat /proc/sys/net/ipv4/ip_forward"), "0\n");
    EXPECT_EQ(run("ip netns exec " + ns_ + " cat /proc/sys/net/ipv4/conf/nft0/rp_filter"), "0\n");

    const std::vector<uint32_t> addrs{ip("10.99.0.1"), ip("10.98.0.1")};
    const std::vector<ExceptionRoute> routes{{ip("10.99.0.0"), 24, ip("10.99.0.1")},
                                             {ip("10.98.0.0"), 24, ip("10.98.0.1")},
                                             {0, 0, ip("10.99.0.1")}};
    ASSERT_TRUE(ex->program(addrs, routes, err)) << err;
    // Idempotent: nothing changes, nothing fails.
    ASSERT_TRUE(ex->program(addrs, routes, err)) << err;

    std::string a = run("ip -n " + ns_ + " -4 addr show dev nft0");
    EXPECT_TRUE(contains(a, "inet 10.99.0.1/32")) << a;
    EXPECT_TRUE(contains(a, "inet 10.98.0.1/32")) << a;
    std::string r = run("ip -n " + ns_ + " -4 route show");
    EXPECT_TRUE(contains(r, "default dev nft0 proto static scope link src 10.99.0.1")) << r;
    EXPECT_TRUE(contains(r, "10.99.0.0/24 dev nft0 proto static scope link src 10.99.0.1")) << r;
    EXPECT_TRUE(contains(r, "10.98.0.0/24 dev nft0 proto static scope link src 10.98.0.1")) << r;

    // Kernel -> TUN: the route's preferred source is used.
    int s = ex->socket(AF_INET, SOCK_DGRAM, 0);
    ASSERT_GE(s, 0) << strerror(errno);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(9999);
    to.sin_addr.s_addr = htonl(ip("10.98.0.7"));
    ASSERT_EQ(sendto(s, "hello", 5, 0, reinterpret_cast<sockaddr*>(&to), sizeof to), 5)
        << strerror(errno);
    std::vector<uint8_t> out = read_udp_to(*ex, ip("10.98.0.7"), 9999);
    ASSERT_EQ(out.size(), 33u);
    EXPECT_EQ(get32(&out[12]), ip("10.98.0.1"));
    EXPECT_EQ(std::string(out.begin() + 28, out.end()), "hello");

    // The default route carries the rest, from the default's source.
    to.sin_addr.s_addr = htonl(ip("192.0.2.9"));
    ASSERT_EQ(sendto(s, "x", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof to), 1);
    out = read_udp_to(*ex, ip("192.0.2.9"), 9999);
    ASSERT_EQ(out.size(), 29u);
    EXPECT_EQ(get32(&out[12]), ip("10.99.0.1"));

    // TUN -> kernel: a packet to the appliance reaches the socket.
    sockaddr_in me{};
    socklen_t mel = sizeof me;
    ASSERT_EQ(getsockname(s, reinterpret_cast<sockaddr*>(&me), &mel), 0);
    std::vector<uint8_t> in =
        udp4(ip("10.99.0.50"), 1234, ip("10.99.0.1"), ntohs(me.sin_port), "from-dpdk");
    ASSERT_TRUE(ex->write(in.data(), in.size())) << strerror(errno);
    pollfd pfd{s, POLLIN, 0};
    ASSERT_EQ(::poll(&pfd, 1, 2000), 1);
    std::array<char, 64> got{};
    sockaddr_in from{};
    socklen_t froml = sizeof from;
    ssize_t n = recvfrom(s, got.data(), got.size(), 0, reinterpret_cast<sockaddr*>(&from), &froml);
    ASSERT_EQ(n, 9);
    EXPECT_EQ(std::string(got.data(), 9), "from-dpdk");
    EXPECT_EQ(ntohl(from.sin_addr.s_addr), ip("10.99.0.50"));
    EXPECT_EQ(ntohs(from.sin_port), 1234);
    close(s);

    // Nothing pending: read() says EAGAIN rather than blocking.
    std::array<uint8_t, 2048> buf{};
    while (ex->read(buf.data(), buf.size()) >= 0) {
    }
    EXPECT_EQ(errno, EAGAIN);

    // A reload with fewer addresses and routes removes the stale ones, and changes a source.
    const std::vector<ExceptionRoute> fewer{{ip("10.99.0.0"), 24, ip("10.99.0.1")}, {0, 0, 0}};
    ASSERT_TRUE(ex->program({ip("10.99.0.1")}, fewer, err)) << err;
    a = run("ip -n " + ns_ + " -4 addr show dev nft0");
    EXPECT_TRUE(contains(a, "inet 10.99.0.1/32")) << a;
    EXPECT_FALSE(contains(a, "10.98.0.1")) << a;
    r = run("ip -n " + ns_ + " -4 route show");
    EXPECT_FALSE(contains(r, "10.98.0.0/24")) << r;
    EXPECT_TRUE(contains(r, "default dev nft0 proto static scope link \n")) << r;
    EXPECT_TRUE(contains(r, "10.99.0.0/24 dev nft0")) << r;

    // A route whose source is not an appliance address is refused before anything changes.
    EXPECT_FALSE(ex->program({ip("10.99.0.1")}, {{ip("10.97.0.0"), 24, ip("10.97.0.1")}}, err));
    EXPECT_TRUE(contains(run("ip -n " + ns_ + " -4 route show"), "10.99.0.0/24"));

    // The namespace is reused, and a second holder of the same TUN name is refused.
    std::string err2;
    auto dup = ExceptionPath::open(ns_, "nft0", 1400, err2);
    EXPECT_EQ(dup, nullptr);
    EXPECT_TRUE(contains(err2, "busy")) << err2;
  }
  // The destructor took the device (and with it its addresses and routes) away.
  int st = 0;
  run("ip -n " + ns_ + " link show nft0", &st);
  EXPECT_NE(st, 0);
  EXPECT_EQ(count_fds(), fds_before);

  // A restart finds the namespace and creates the device again, and puts forwarding back off
  // in the namespace (the write must land there: the host's setting is not ours to touch).
  std::string host_fwd = run("cat /proc/sys/net/ipv4/ip_forward");
  run("ip netns exec " + ns_ + " sysctl -qw net.ipv4.ip_forward=1");
  std::string err;
  auto again = ExceptionPath::open(ns_, "nft0", 1500, err);
  ASSERT_NE(again, nullptr) << err;
  EXPECT_TRUE(contains(run("ip -n " + ns_ + " link show nft0"), "mtu 1500"));
  EXPECT_EQ(run("ip netns exec " + ns_ + " cat /proc/sys/net/ipv4/ip_forward"), "0\n");
  EXPECT_EQ(run("cat /proc/sys/net/ipv4/ip_forward"), host_fwd);
  EXPECT_TRUE(again->program({ip("10.99.0.1")}, {{0, 0, ip("10.99.0.1")}}, err)) << err;
}

TEST_F(Exception, SocketsStayInTheirNamespace) {
  std::string err;
  auto ex = ExceptionPath::open(ns_, "nft1", 1500, err);
  ASSERT_NE(ex, nullptr) << err;
  // The calling thread is back in its own namespace afterwards.
  std::string before = run("readlink /proc/" + std::to_string(getpid()) + "/ns/net");
  int s = ex->socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(s, 0);
  char self[64];
  ssize_t n = readlink("/proc/thread-self/ns/net", self, sizeof self - 1);
  ASSERT_GT(n, 0);
  self[n] = 0;
  EXPECT_EQ(std::string(self) + "\n", before);
  // A listener in the namespace is visible there, not here.
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(5353);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << strerror(errno);
  ASSERT_EQ(listen(s, 4), 0);
  EXPECT_TRUE(contains(run("ip netns exec " + ns_ + " ss -ltnH"), ":5353"));
  close(s);
}

TEST_F(Exception, RejectsBadNames) {
  std::string err;
  EXPECT_EQ(ExceptionPath::open("a/b", "nft2", 1500, err), nullptr);
  EXPECT_EQ(ExceptionPath::open(ns_, "an-interface-name-too-long", 1500, err), nullptr);
  EXPECT_EQ(ExceptionPath::open(ns_, "nft2", 20, err), nullptr);
}

}  // namespace
}  // namespace nf::glue
