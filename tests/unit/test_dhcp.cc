// The DHCP server without EAL: the wire parser, lease records, pool views, the RFC 2131 state
// machine of a lease shard, the lease journal's recovery, and the `dhcp` config group.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "config/config.h"
#include "nf/dhcp/journal.h"
#include "nf/dhcp/pool.h"
#include "nf/dhcp/record.h"
#include "nf/dhcp/server.h"
#include "nf/dhcp/wire.h"
#include "tests/common/config_helpers.h"

namespace nf::dhcp {
namespace {

namespace fs = std::filesystem;

using Bytes = std::vector<uint8_t>;
using Mac = std::array<uint8_t, 6>;

constexpr int64_t kT0 = 1'700'000'000'000;  // Unix ms: every test's "now" starts here
constexpr int64_t kT0s = kT0 / 1000;

uint32_t ip(const char* s) {
  auto a = parse_ipv4(s);
  EXPECT_TRUE(a.has_value()) << s;
  return a.value_or(0);
}

Mac mac_n(uint32_t n) {
  return {0x02,
          0x00,
          0x00,
          static_cast<uint8_t>(n >> 16),
          static_cast<uint8_t>(n >> 8),
          static_cast<uint8_t>(n)};
}

Bytes be32(uint32_t v) {
  return {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
          static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
}

// A BOOTREQUEST built field by field; options go after the magic cookie in the order added.
class Msg {
 public:
  Msg(uint8_t type, const Mac& mac) : b_(off::kOptions, 0) {
    b_[off::kOp] = 1;
    b_[off::kHtype] = 1;
    b_[off::kHlen] = 6;
    wr32(&b_[off::kXid], 0x12345678);
    std::copy(mac.begin(), mac.end(), b_.begin() + off::kChaddr);
    wr32(&b_[off::kOptions - 4], kMagic);
    if (type) opt(opt::kMsgType, {type});
  }
  Msg& opt(uint8_t code, const Bytes& v) {
    b_.push_back(code);
    b_.push_back(static_cast<uint8_t>(v.size()));
    b_.insert(b_.end(), v.begin(), v.end());
    return *this;
  }
  Msg& opt_ip(uint8_t code, uint32_t a) { return opt(code, be32(a)); }
  Msg& raw(const Bytes& v) {
    b_.insert(b_.end(), v.begin(), v.end());
    return *this;
  }
  Msg& ciaddr(uint32_t a) {
    wr32(&b_[off::kCiaddr], a);
    return *this;
  }
  Msg& giaddr(uint32_t a) {
    wr32(&b_[off::kGiaddr], a);
    return *this;
  }
  Msg& at(size_t o, const Bytes& v) {
    std::copy(v.begin(), v.end(), b_.begin() + static_cast<ptrdiff_t>(o));
    return *this;
  }
  // The message with an end option (or without one, for the sloppy-client case).
  Bytes bytes(bool end = true) const {
    Bytes b = b_;
    if (end) b.push_back(opt::kEnd);
    return b;
  }

 private:
  Bytes b_;
};

Request parsed(const Bytes& m) {
  Request r;
  EXPECT_EQ(parse_request(m, r), ParseError::kOk);
  return r;
}

ParseError parse_error(const Bytes& m) {
  Request r;
  return parse_request(m, r);
}

// ---- wire ---------------------------------------------------------------------------------

TEST(DhcpWire, ParsesTheFixedHeaderAndTheOptionsTheServerUses) {
  const Mac mac = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
  Bytes m = Msg(kRequest, mac)
                .at(off::kHops, {3})
                .at(off::kFlags, {0x80, 0x00})
                .ciaddr(ip("10.10.0.7"))
                .giaddr(ip("10.30.0.1"))
                .opt_ip(opt::kRequestedIp, ip("10.10.0.100"))
                .opt_ip(opt::kServerId, ip("10.10.0.1"))
                .opt_ip(opt::kLeaseTime, 7200)
                .opt(opt::kMaxMsgSize, {0x05, 0xdc})
                .opt(opt::kClientId, {1, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55})
                .opt(opt::kParamList, {1, 3, 6, 15})
                .opt(opt::kHostName, {'h', 'o', 's', 't'})
                .opt(opt::kRapidCommit, {})
                .opt(opt::kRelayInfo, {1, 2, 'a', 'b'})
                .opt(99, {1, 2, 3})  // unknown: skipped
                .bytes();
  Request r;
  ASSERT_EQ(parse_request(m, r), ParseError::kOk);
  EXPECT_EQ(r.type, kRequest);
  EXPECT_EQ(r.htype, 1);
  EXPECT_EQ(r.hlen, 6);
  EXPECT_EQ(r.hops, 3);
  uint8_t xid[4];
  std::memcpy(xid, &r.xid, 4);
  EXPECT_EQ(rd32(xid), 0x12345678u);  // kept as on the wire
  EXPECT_EQ(r.flags, kFlagBroadcast);
  EXPECT_EQ(r.ciaddr, ip("10.10.0.7"));
  EXPECT_EQ(r.giaddr, ip("10.30.0.1"));
  EXPECT_TRUE(std::equal(mac.begin(), mac.end(), r.chaddr));
  EXPECT_EQ(r.requested_ip, ip("10.10.0.100"));
  EXPECT_EQ(r.server_id, ip("10.10.0.1"));
  EXPECT_EQ(r.lease_time, 7200u);
  EXPECT_EQ(r.max_msg, 1500);
  EXPECT_TRUE(r.rapid_commit);
  ASSERT_TRUE(r.client_id.present);
  EXPECT_EQ(Bytes(r.client_id.view().begin(), r.client_id.view().end()),
            (Bytes{1, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55}));
  EXPECT_EQ(Bytes(r.params.view().begin(), r.params.view().end()), (Bytes{1, 3, 6, 15}));
  EXPECT_EQ(Bytes(r.hostname.view().begin(), r.hostname.view().end()), (Bytes{'h', 'o', 's', 't'}));
  EXPECT_EQ(Bytes(r.relay_info.view().begin(), r.relay_info.view().end()), (Bytes{1, 2, 'a', 'b'}));
}

TEST(DhcpWire, EveryMessageTypeAServerReceivesIsAccepted) {
  for (uint8_t t : {kDiscover, kRequest, kDecline, kRelease, kInform}) {
    Request r;
    EXPECT_EQ(parse_request(Msg(t, mac_n(1)).bytes(), r), ParseError::kOk) << int{t};
    EXPECT_EQ(r.type, t);
  }
  // What only a server sends, and what is no type at all.
  for (uint8_t t : {0, 2, 5, 6, 9, 255})
    EXPECT_EQ(parse_error(Msg(0, mac_n(1)).opt(opt::kMsgType, {t}).bytes()), ParseError::kBadType)
        << int{t};
}

TEST(DhcpWire, ErrorKinds) {
  const Bytes good = Msg(kDiscover, mac_n(1)).bytes();
  EXPECT_EQ(parse_error(good), ParseError::kOk);
  // Shorter than the header and cookie.
  EXPECT_EQ(parse_error(Bytes(good.begin(), good.begin() + kMinLen - 1)), ParseError::kShort);
  EXPECT_EQ(parse_error({}), ParseError::kShort);
  // Exactly the header and cookie: no options, so no type.
  EXPECT_EQ(parse_error(Bytes(good.begin(), good.begin() + kMinLen)), ParseError::kBadOptions);
  Bytes b = good;
  b[off::kOp] = 2;
  EXPECT_EQ(parse_error(b), ParseError::kNotRequest);
  b = good;
  b[off::kHlen] = 17;
  EXPECT_EQ(parse_error(b), ParseError::kBadHardware);
  b[off::kHlen] = 16;
  EXPECT_EQ(parse_error(b), ParseError::kOk);
  b = good;
  b[off::kOptions - 1] ^= 1;
  EXPECT_EQ(parse_error(b), ParseError::kBadMagic);
  // No message type option.
  EXPECT_EQ(parse_error(Msg(0, mac_n(1)).opt(opt::kHostName, {'x'}).bytes()),
            ParseError::kBadOptions);
  // A message type of the wrong length does not count.
  EXPECT_EQ(parse_error(Msg(0, mac_n(1)).opt(opt::kMsgType, {1, 1}).bytes()),
            ParseError::kBadOptions);
}

TEST(DhcpWire, TruncatedOptionsAreRejected) {
  // The length runs past the end of the message.
  Bytes m = Msg(kDiscover, mac_n(1)).bytes(false);
  m.insert(m.end(), {opt::kClientId, 10, 1, 2, 3});
  EXPECT_EQ(parse_error(m), ParseError::kBadOptions);
  // A code in the last byte, without its length.
  m = Msg(kDiscover, mac_n(1)).bytes(false);
  m.push_back(opt::kHostName);
  EXPECT_EQ(parse_error(m), ParseError::kBadOptions);
  // The type itself cut.
  m = Msg(0, mac_n(1)).bytes(false);
  m.insert(m.end(), {opt::kMsgType, 1});
  EXPECT_EQ(parse_error(m), ParseError::kBadOptions);
  // Everything after the end option is ignored, even garbage.
  m = Msg(kDiscover, mac_n(1)).bytes(true);
  m.insert(m.end(), {opt::kClientId, 200, 1});
  EXPECT_EQ(parse_error(m), ParseError::kOk);
  // An area exactly full without an end option is accepted (sloppy clients and relays).
  EXPECT_EQ(parse_error(Msg(kDiscover, mac_n(1)).opt(opt::kHostName, {'a'}).bytes(false)),
            ParseError::kOk);
  // Pads anywhere.
  m = Msg(0, mac_n(1)).raw({0, 0, 0}).opt(opt::kMsgType, {kInform}).raw({0}).bytes();
  EXPECT_EQ(parse_error(m), ParseError::kOk);
}

TEST(DhcpWire, OverloadedFileAndSnameFieldsCarryOptions) {
  // The type and the client id only in `file`, the host name only in `sname`.
  Msg msg(0, mac_n(1));
  msg.at(off::kFile, {opt::kMsgType, 1, kRequest, opt::kClientId, 3, 1, 2, 3, opt::kEnd});
  msg.at(off::kSname, {opt::kHostName, 2, 'n', 'm', opt::kEnd});
  Request r;
  EXPECT_EQ(parse_request(msg.opt(opt::kOverload, {3}).bytes(), r), ParseError::kOk);
  EXPECT_EQ(r.type, kRequest);
  EXPECT_EQ(Bytes(r.client_id.view().begin(), r.client_id.view().end()), (Bytes{1, 2, 3}));
  EXPECT_EQ(Bytes(r.hostname.view().begin(), r.hostname.view().end()), (Bytes{'n', 'm'}));

  // Overload 1: only `file` is read; `sname` is a name, whatever its bytes look like.
  Msg f(0, mac_n(1));
  f.at(off::kFile, {opt::kMsgType, 1, kDiscover, opt::kEnd});
  f.at(off::kSname, {opt::kHostName, 200});  // would run past sname
  EXPECT_EQ(parse_error(Msg(f).opt(opt::kOverload, {1}).bytes()), ParseError::kOk);
  EXPECT_EQ(parse_error(Msg(f).opt(opt::kOverload, {3}).bytes()), ParseError::kBadOptions);
  // Without option 52, neither field is read: no message type.
  EXPECT_EQ(parse_error(f.bytes()), ParseError::kBadOptions);

  // An option running past the end of `file` (128 bytes) is an error.
  Msg t(kDiscover, mac_n(1));
  Bytes longopt(128, 0);
  longopt[120] = opt::kClientId;
  longopt[121] = 20;
  t.at(off::kFile, longopt);
  EXPECT_EQ(parse_error(t.opt(opt::kOverload, {1}).bytes()), ParseError::kBadOptions);

  // An overload option inside `file` is not followed (sname stays a name).
  Msg n(kDiscover, mac_n(1));
  n.at(off::kFile, {opt::kOverload, 1, 2, opt::kEnd});
  n.at(off::kSname, {opt::kHostName, 200});
  EXPECT_EQ(parse_error(n.opt(opt::kOverload, {1}).bytes()), ParseError::kOk);
}

TEST(DhcpWire, SplitOptionsAreConcatenatedRfc3396) {
  Msg msg(kDiscover, mac_n(1));
  msg.opt(opt::kClientId, {1, 2}).opt(opt::kParamList, {1, 3}).opt(opt::kClientId, {3, 4});
  msg.at(off::kFile, {opt::kClientId, 1, 5, opt::kParamList, 1, 6, opt::kEnd});
  Request r;
  ASSERT_EQ(parse_request(msg.opt(opt::kOverload, {1}).bytes(), r), ParseError::kOk);
  // Main area first, then `file`.
  EXPECT_EQ(Bytes(r.client_id.view().begin(), r.client_id.view().end()), (Bytes{1, 2, 3, 4, 5}));
  EXPECT_EQ(Bytes(r.params.view().begin(), r.params.view().end()), (Bytes{1, 3, 6}));

  // Concatenation stops at 255 bytes.
  Msg big(kDiscover, mac_n(1));
  for (int i = 0; i < 3; ++i) big.opt(opt::kRelayInfo, Bytes(200, static_cast<uint8_t>(i)));
  ASSERT_EQ(parse_request(big.bytes(), r), ParseError::kOk);
  EXPECT_EQ(r.relay_info.len, 255);
  EXPECT_EQ(r.relay_info.b[199], 0);
  EXPECT_EQ(r.relay_info.b[200], 1);
  EXPECT_EQ(r.relay_info.b[254], 1);

  // Fixed-size options: the first well-formed instance wins.
  Msg first(kDiscover, mac_n(1));
  first.opt_ip(opt::kRequestedIp, ip("10.0.0.1")).opt_ip(opt::kRequestedIp, ip("10.0.0.2"));
  first.opt(opt::kMsgType, {kRelease}).opt(opt::kServerId, {1, 2, 3});  // wrong length: skipped
  ASSERT_EQ(parse_request(first.bytes(), r), ParseError::kOk);
  EXPECT_EQ(r.requested_ip, ip("10.0.0.1"));
  EXPECT_EQ(r.type, kDiscover);
  EXPECT_EQ(r.server_id, 0u);
}

TEST(DhcpWire, AReusedRequestForgetsThePreviousMessage) {
  Request r;
  ASSERT_EQ(parse_request(Msg(kRequest, mac_n(1))
                              .opt(opt::kClientId, {1, 2})
                              .opt(opt::kParamList, {1})
                              .opt(opt::kHostName, {'a'})
                              .opt(opt::kRelayInfo, {1})
                              .opt(opt::kRapidCommit, {})
                              .opt_ip(opt::kRequestedIp, 5)
                              .opt_ip(opt::kServerId, 6)
                              .opt_ip(opt::kLeaseTime, 7)
                              .opt(opt::kMaxMsgSize, {2, 64})
                              .bytes(),
                          r),
            ParseError::kOk);
  ASSERT_EQ(parse_request(Msg(kDiscover, mac_n(2)).bytes(), r), ParseError::kOk);
  EXPECT_FALSE(r.client_id.present);
  EXPECT_FALSE(r.params.present);
  EXPECT_FALSE(r.hostname.present);
  EXPECT_FALSE(r.relay_info.present);
  EXPECT_EQ(r.client_id.len + r.params.len + r.hostname.len + r.relay_info.len, 0);
  EXPECT_FALSE(r.rapid_commit);
  EXPECT_EQ(r.requested_ip | r.server_id | r.lease_time, 0u);
  EXPECT_EQ(r.max_msg, 0);
  EXPECT_EQ(r.chaddr[5], 2);
}

TEST(DhcpWire, OptionWriterKeepsRoomForTheEndOption) {
  uint8_t buf[16];
  std::memset(buf, 0xee, sizeof buf);
  OptionWriter w(buf, 12);
  EXPECT_TRUE(w.put8(opt::kMsgType, kOffer));        // 3 bytes
  EXPECT_TRUE(w.put32(opt::kServerId, 0x0a0a0001));  // 6 bytes: 9
  EXPECT_FALSE(w.put32(opt::kLeaseTime, 1));         // 15 + end > 12
  EXPECT_FALSE(w.put(opt::kHostName, "ab", 2));      // 13 + end > 12
  EXPECT_TRUE(w.put(opt::kRapidCommit, "", 0));      // 11 + end = 12
  EXPECT_FALSE(w.put(opt::kRapidCommit, "", 0));
  const uint8_t r[2] = {1, 0};
  EXPECT_FALSE(w.raw(r, 1));  // 12 + end > 12
  EXPECT_EQ(w.len(), 11);
  EXPECT_EQ(w.end(), 12);
  const uint8_t want[12] = {53, 1, 2, 54, 4, 10, 10, 0, 1, 80, 0, 255};
  EXPECT_EQ(std::memcmp(buf, want, 12), 0);
  EXPECT_EQ(buf[12], 0xee);  // nothing written past the capacity

  OptionWriter w2(buf, 8);
  const uint8_t run[] = {3, 4, 10, 0, 0, 1};
  EXPECT_TRUE(w2.raw(run, sizeof run));
  EXPECT_FALSE(w2.raw(run, 2));
  EXPECT_EQ(w2.end(), 7);
  EXPECT_EQ(std::memcmp(buf, run, sizeof run), 0);
}

TEST(DhcpWire, TheFuzzSeedCorpusParses) {
  // tests/fuzz/corpus/dhcp: the seeds must reach the state machine, not stop at the parser.
  int files = 0;
  for (const auto& e : fs::directory_iterator(fs::path(NF_SOURCE_DIR) / "tests/fuzz/corpus/dhcp")) {
    std::ifstream in(e.path(), std::ios::binary);
    const Bytes m((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    Request r;
    EXPECT_EQ(parse_request(m, r), ParseError::kOk) << e.path();
    ++files;
  }
  EXPECT_GE(files, 8);
}

// ---- records ------------------------------------------------------------------------------

TEST(DhcpRecord, Crc32cMatchesTheStandardCheckValue) {
  const char* s = "123456789";
  EXPECT_EQ(crc32c(s, 9), 0xe3069283u);
  EXPECT_EQ(crc32c(s, 0), 0u);
  // Incremental use gives the same as one call.
  EXPECT_EQ(crc32c(s + 4, 5, crc32c(s, 4)), 0xe3069283u);
  // 32 bytes of zeros (RFC 3720 B.4).
  const uint8_t zeros[32] = {};
  EXPECT_EQ(crc32c(zeros, 32), 0x8a9136aau);
}

TEST(DhcpRecord, SealedRecordsDetectEveryFlippedByte) {
  static_assert(sizeof(LeaseRecord) == 128);
  LeaseRecord r{};
  r.seq = 42;
  r.type = RecType::kBind;
  r.addr = ip("10.10.0.100");
  r.expire = kT0s + 3600;
  r.key_len = 7;
  std::memcpy(r.key, "\x01\x02\x00\x00\x00\x00\x01", 7);
  EXPECT_FALSE(r.valid());
  r.seal();
  EXPECT_TRUE(r.valid());
  EXPECT_EQ(r.magic, LeaseRecord::kMagic);
  for (size_t i = 0; i < sizeof r; ++i) {
    LeaseRecord c = r;
    reinterpret_cast<uint8_t*>(&c)[i] ^= 0x10;
    EXPECT_FALSE(c.valid()) << "byte " << i;
  }
  const ClientKey k = r.client();
  EXPECT_EQ(k.len, 7);
  EXPECT_EQ(k.b[6], 1);
  r.key_len = 200;  // damaged length: no key rather than an overrun
  EXPECT_EQ(r.client().len, 0);
}

TEST(DhcpRecord, ClientKeys) {
  const Mac mac = {2, 0, 0, 0, 0, 9};
  const ClientKey hw = ClientKey::from_hw(1, mac.data(), 6);
  EXPECT_EQ(hw.len, 7);
  EXPECT_EQ(hw.b[0], 1);
  EXPECT_EQ(hw.b[6], 9);
  // RFC 2132 9.14's suggested identifier (type, MAC) is the same key as the hardware address.
  const Bytes id = {1, 2, 0, 0, 0, 0, 9};
  EXPECT_EQ(ClientKey::from_id(id), hw);
  EXPECT_EQ(ClientKey::from_id(id).hash(), hw.hash());
  EXPECT_FALSE(ClientKey::from_hw(6, mac.data(), 6) == hw);  // another hardware type
  // hlen is capped at chaddr's 16 bytes.
  uint8_t ch[16] = {};
  EXPECT_EQ(ClientKey::from_hw(1, ch, 200).len, 17);

  // Long identifiers: the first 40 bytes and a hash of the whole.
  Bytes a(100, 7), b(100, 7);
  b[99] = 8;
  const ClientKey ka = ClientKey::from_id(a), kb = ClientKey::from_id(b);
  EXPECT_EQ(ka.len, kMaxKey);
  EXPECT_EQ(kb.len, kMaxKey);
  EXPECT_TRUE(std::equal(a.begin(), a.begin() + 40, ka.b));
  EXPECT_FALSE(ka == kb);
  EXPECT_EQ(ClientKey::from_id(a), ka);
  EXPECT_NE(ka.hash(), kb.hash());
  // Exactly kMaxKey bytes are kept as they are.
  Bytes c(kMaxKey, 3);
  EXPECT_TRUE(std::equal(c.begin(), c.end(), ClientKey::from_id(c).b));
}

// ---- configuration, pools -----------------------------------------------------------------

// Two ports; pool "lan" for clients on port 0 and pool "relayed" for relays in 10.30.0.0/24.
// `dhcp` overrides or adds settings of the dhcp group; `lan` is spliced into the lan pool.
std::string conf(std::map<std::string, std::string> dhcp = {}, const std::string& lan = "") {
  dhcp.emplace("journal", "\"/tmp/nf-unit-unused\"");
  dhcp.emplace("offer_hold", "30");
  dhcp.emplace("decline_hold", "600");
  dhcp.emplace("client_rate", "0");
  std::string params;
  for (const auto& [k, v] : dhcp) params.append("  ").append(k).append(" = ").append(v) += ";\n";
  return R"(
lcores = { management = 0; workers = [1]; };
ports = ( { name = "lan"; device = "net_null0"; addresses = ["10.10.0.1/24"]; },
          { name = "srv"; device = "net_null1"; addresses = ["10.20.0.1/24"]; } );
pipeline = [ "input", "dhcp", "ip4_forward" ];
dhcp = {
)" + params +
         R"(
  pools = (
    { name = "lan"; interface = "lan";
      ranges = [ "10.10.0.100-10.10.0.109" ];
      exclude = [ "10.10.0.103" ];
      lease_time = 3600; min_lease_time = 600; max_lease_time = 7200;
      options = { router = [ "10.10.0.1" ]; dns_servers = [ "10.10.0.1", "10.10.0.2" ];
                  domain_name = "lab.example"; };
      reservations = (
        { mac = "02:00:00:00:aa:01"; address = "10.10.0.105"; hostname = "printer"; },
        { client_id = "ff:00:00:00:aa:02"; address = "10.10.0.106"; },
        { mac = "02:00:00:00:aa:03"; address = "10.10.0.50"; }
      );
)" + lan +
         R"(
    },
    { name = "relayed"; relay = "10.30.0.0/24"; subnet = "10.40.0.0/24";
      ranges = [ "10.40.0.10-10.40.0.19" ]; }
  );
};
)";
}

const Mac kResMac = {0x02, 0, 0, 0, 0xaa, 0x01};     // reserved 10.10.0.105 ("printer")
const Bytes kResCid = {0xff, 0, 0, 0, 0xaa, 0x02};   // reserved 10.10.0.106
const Mac kResOutMac = {0x02, 0, 0, 0, 0xaa, 0x03};  // reserved 10.10.0.50 (outside the range)
// The dynamic addresses of pool "lan": the range minus the exclusion and the reservations.
const std::vector<const char*> kLanDynamic = {"10.10.0.100", "10.10.0.101", "10.10.0.102",
                                              "10.10.0.104", "10.10.0.107", "10.10.0.108",
                                              "10.10.0.109"};

struct Env {
  explicit Env(const std::string& text)
      : cfg(std::make_shared<const Config>(test::load_valid(text))),
        view(build_view(cfg, blocks)) {}
  std::shared_ptr<const Config> cfg;
  AddrBlocks blocks;
  std::unique_ptr<View> view;
  const PoolView& lan() const { return view->pools.at(0); }
  const PoolView& relayed() const { return view->pools.at(1); }
  bool taken(uint32_t a) { return blocks.bit(a).taken(); }
};

TEST(DhcpConfig, PoolsOptionsAndReservationsAreLoaded) {
  const Config c = test::load_valid(conf());
  ASSERT_TRUE(c.dhcp.enabled);
  EXPECT_EQ(c.dhcp.journal_dir, "/tmp/nf-unit-unused");
  EXPECT_EQ(c.dhcp.offer_hold, 30u);
  EXPECT_EQ(c.dhcp.decline_hold, 600u);
  EXPECT_EQ(c.dhcp.client_rate, 0u);
  EXPECT_TRUE(c.dhcp.authoritative);
  EXPECT_FALSE(c.dhcp.rapid_commit);
  ASSERT_EQ(c.dhcp.pools.size(), 2u);
  const DhcpPool& p = c.dhcp.pools[0];
  EXPECT_EQ(p.name, "lan");
  EXPECT_EQ(p.port, 0);
  EXPECT_EQ(p.subnet, (Prefix{ip("10.10.0.0"), 24}));  // from the port's address
  ASSERT_EQ(p.ranges.size(), 1u);
  EXPECT_EQ(p.ranges[0].first, ip("10.10.0.100"));
  EXPECT_EQ(p.ranges[0].last, ip("10.10.0.109"));
  ASSERT_EQ(p.exclude.size(), 1u);
  EXPECT_EQ(p.exclude[0].first, ip("10.10.0.103"));
  EXPECT_EQ(p.exclude[0].last, ip("10.10.0.103"));
  EXPECT_EQ(p.lease_time, 3600u);
  EXPECT_EQ(p.min_lease_time, 600u);
  EXPECT_EQ(p.max_lease_time, 7200u);
  ASSERT_EQ(p.options.size(), 3u);
  EXPECT_EQ(p.options[0].code, 3);
  EXPECT_EQ(p.options[0].data, be32(ip("10.10.0.1")));
  EXPECT_EQ(p.options[1].code, 6);
  Bytes dns = be32(ip("10.10.0.1")), d2 = be32(ip("10.10.0.2"));
  dns.insert(dns.end(), d2.begin(), d2.end());
  EXPECT_EQ(p.options[1].data, dns);
  EXPECT_EQ(p.options[2].code, 15);
  EXPECT_EQ(std::string(p.options[2].data.begin(), p.options[2].data.end()), "lab.example");
  ASSERT_EQ(p.reservations.size(), 3u);
  ASSERT_TRUE(p.reservations[0].mac.has_value());
  EXPECT_EQ(p.reservations[0].mac->b, kResMac);
  EXPECT_EQ(p.reservations[0].address, ip("10.10.0.105"));
  EXPECT_EQ(p.reservations[0].hostname, "printer");
  EXPECT_FALSE(p.reservations[1].mac.has_value());
  EXPECT_EQ(p.reservations[1].client_id, kResCid);
  const DhcpPool& q = c.dhcp.pools[1];
  EXPECT_EQ(q.port, -1);
  EXPECT_EQ(q.relay, (Prefix{ip("10.30.0.0"), 24}));
  EXPECT_EQ(q.subnet, (Prefix{ip("10.40.0.0"), 24}));
  EXPECT_EQ(q.lease_time, 3600u);  // defaults
  EXPECT_EQ(q.min_lease_time, 60u);
  EXPECT_EQ(q.max_lease_time, 86400u);
}

std::map<uint8_t, Bytes> options_of(const PoolView& p) {
  std::map<uint8_t, Bytes> m;
  for (size_t i = 0; i < p.blob.size();) {
    const uint8_t code = p.blob[i], len = p.blob[i + 1];
    EXPECT_EQ(p.at[code], static_cast<int16_t>(i));
    m[code] = Bytes(p.blob.begin() + static_cast<ptrdiff_t>(i) + 2,
                    p.blob.begin() + static_cast<ptrdiff_t>(i) + 2 + len);
    i += 2u + len;
  }
  return m;
}

TEST(DhcpPool, ViewOfTheLabLikeConfig) {
  Env e(conf());
  const View& v = *e.view;
  ASSERT_EQ(v.pools.size(), 2u);
  EXPECT_EQ(v.by_port[0], 0);
  EXPECT_EQ(v.by_port[1], -1);
  const PoolView& lan = e.lan();
  EXPECT_EQ(lan.server_id, ip("10.10.0.1"));
  EXPECT_EQ(lan.size, 10u);
  EXPECT_EQ(lan.nb_reservations, 3u);
  for (const char* a : kLanDynamic) EXPECT_TRUE(lan.allocatable(ip(a))) << a;
  for (const char* a : {"10.10.0.103", "10.10.0.105", "10.10.0.106", "10.10.0.99", "10.10.0.110",
                        "10.10.0.50", "10.10.0.1"})
    EXPECT_FALSE(lan.allocatable(ip(a))) << a;
  ASSERT_NE(lan.reservation_for_addr(ip("10.10.0.105")), nullptr);
  EXPECT_EQ(lan.reservation_for_addr(ip("10.10.0.105"))->hostname, "printer");
  EXPECT_EQ(lan.reservation_for_addr(ip("10.10.0.104")), nullptr);

  // The option run: the mask first, then the configured ones in order, the broadcast last.
  ASSERT_GE(lan.blob.size(), 6u);
  EXPECT_EQ(lan.blob[0], opt::kSubnetMask);
  const auto o = options_of(lan);
  EXPECT_EQ(o.at(opt::kSubnetMask), be32(0xffffff00));
  EXPECT_EQ(o.at(opt::kRouter), be32(ip("10.10.0.1")));
  EXPECT_EQ(o.at(opt::kDomainName), (Bytes{'l', 'a', 'b', '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e'}));
  EXPECT_EQ(o.at(opt::kBroadcast), be32(ip("10.10.0.255")));
  EXPECT_EQ(o.size(), 5u);
  EXPECT_EQ(lan.at[opt::kHostName], -1);

  const PoolView& rel = e.relayed();
  EXPECT_EQ(rel.server_id, 0u);  // relayed: the address the relay sent to
  EXPECT_EQ(rel.size, 10u);
  EXPECT_EQ(v.for_relay(ip("10.30.0.7")), &rel);
  EXPECT_EQ(v.for_relay(ip("10.40.0.1")), &rel);  // giaddr in the pool's subnet
  EXPECT_EQ(v.for_relay(ip("10.10.0.9")), &lan);
  EXPECT_EQ(v.for_relay(ip("192.0.2.1")), nullptr);
  EXPECT_EQ(v.for_addr(ip("10.40.0.200")), &rel);
  EXPECT_EQ(v.for_addr(ip("10.50.0.1")), nullptr);
  EXPECT_EQ(options_of(rel).at(opt::kBroadcast), be32(ip("10.40.0.255")));

  // pool_for: the ingress port for clients on the link, giaddr for relayed ones.
  Request r = parsed(Msg(kDiscover, mac_n(1)).bytes());
  EXPECT_EQ(Shard::pool_for(v, r, 0), &lan);
  EXPECT_EQ(Shard::pool_for(v, r, 1), nullptr);
  EXPECT_EQ(Shard::pool_for(v, r, 200), nullptr);
  r.giaddr = ip("10.30.0.1");
  EXPECT_EQ(Shard::pool_for(v, r, 1), &rel);
  r.giaddr = ip("198.51.100.1");
  EXPECT_EQ(Shard::pool_for(v, r, 0), nullptr);
}

TEST(DhcpPool, ConfiguredOptionsAndCustomTypesAreEncoded) {
  Env e(R"(
lcores = { management = 0; workers = [1]; };
ports = ( { name = "lan"; device = "net_null0"; addresses = ["10.10.0.1/24"]; } );
pipeline = [ "input", "dhcp", "ip4_forward" ];
dhcp = {
  pools = ( { interface = "lan"; ranges = [ "10.10.0.10-10.10.0.20" ];
    options = {
      broadcast = "10.10.0.127"; mtu = 1400; ntp_servers = [ "10.20.0.5" ];
      classless_routes = [ "10.99.0.0/16 via 10.10.0.1", "0.0.0.0/0 via 10.10.0.2" ];
      custom = (
        { code = 128; type = "u8"; value = 200; },
        { code = 129; type = "u16"; value = 513; },
        { code = 130; type = "u32"; value = 16909060; },
        { code = 131; type = "bool"; value = true; },
        { code = 132; type = "string"; value = "hi"; },
        { code = 133; type = "hex"; value = "01:0a:ff"; },
        { code = 134; type = "ip"; value = "1.2.3.4"; },
        { code = 135; type = "ips"; value = [ "1.2.3.4", "5.6.7.8" ]; }
      );
    };
  } );
};
)");
  const PoolView& p = e.view->pools.at(0);
  EXPECT_EQ(p.name, "pool0");
  const auto o = options_of(p);
  EXPECT_EQ(o.at(opt::kBroadcast), be32(ip("10.10.0.127")));  // configured, not the default
  EXPECT_EQ(o.at(26), (Bytes{0x05, 0x78}));
  EXPECT_EQ(o.at(42), be32(ip("10.20.0.5")));
  EXPECT_EQ(o.at(opt::kClasslessRoutes), (Bytes{16, 10, 99, 10, 10, 0, 1, 0, 10, 10, 0, 2}));
  EXPECT_EQ(o.at(128), (Bytes{200}));
  EXPECT_EQ(o.at(129), (Bytes{2, 1}));
  EXPECT_EQ(o.at(130), (Bytes{1, 2, 3, 4}));
  EXPECT_EQ(o.at(131), (Bytes{1}));
  EXPECT_EQ(o.at(132), (Bytes{'h', 'i'}));
  EXPECT_EQ(o.at(133), (Bytes{1, 10, 255}));
  EXPECT_EQ(o.at(134), (Bytes{1, 2, 3, 4}));
  EXPECT_EQ(o.at(135), (Bytes{1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(p.blob[0], opt::kSubnetMask);
}

TEST(DhcpConfig, ErrorsAreLocated) {
  // A few in-line; the corpus (tests/config/bad/dhcp-*.conf) has the rest.
  const std::string text =
      conf({{"rapid_commit", "1"}, {"max_leases", "8"}}, "      colour = 1;\n");
  LoadResult r = load_config("t.conf", &text);
  auto* errs = std::get_if<std::vector<ConfigError>>(&r);
  ASSERT_NE(errs, nullptr);
  std::vector<std::string> got;
  for (const ConfigError& ce : *errs) got.push_back(ce.str());
  EXPECT_EQ(got, (std::vector<std::string>{
                     "t.conf:10: dhcp.max_leases: value 8 out of range [16, 16777216]",
                     "t.conf:12: dhcp.rapid_commit: must be a boolean, not an integer",
                     "t.conf:26: dhcp.pools[0].colour: unknown setting",
                 }));
}

// ---- the state machine --------------------------------------------------------------------

constexpr uint32_t kLanServer = 0x0a0a0001;    // 10.10.0.1
constexpr uint32_t kRelayServer = 0x0a140001;  // 10.20.0.1: where relays send to

// One client: its MAC and, if set, its client identifier (option 61).
struct Client {
  Mac mac;
  Bytes cid;
  uint32_t relay = 0;  // giaddr when relayed
  Msg msg(uint8_t type) const {
    Msg m(type, mac);
    if (!cid.empty()) m.opt(opt::kClientId, cid);
    if (relay) m.giaddr(relay);
    return m;
  }
  ClientKey key() const {
    return cid.empty() ? ClientKey::from_hw(1, mac.data(), 6) : ClientKey::from_id(cid);
  }
};

Client client(uint32_t n) {
  return Client{mac_n(n), {}, 0};
}

class ShardTest : public ::testing::Test {
 protected:
  explicit ShardTest(const std::string& text = conf()) : e_(text) {}

  Decision run(Shard& s, const Bytes& m, int64_t now_ms = kT0, const uint8_t* l2 = nullptr,
               uint16_t port = 0) {
    Request r;
    EXPECT_EQ(parse_request(m, r), ParseError::kOk);
    const PoolView* p = Shard::pool_for(*e_.view, r, port);
    EXPECT_NE(p, nullptr);
    if (!p) return {};
    return s.handle(*e_.view, *p, r, p->server_id ? p->server_id : kRelayServer, l2 ? l2 : r.chaddr,
                    now_ms);
  }
  Decision run(const Bytes& m, int64_t now_ms = kT0) { return run(s_, m, now_ms); }

  // DISCOVER, OFFER, REQUEST (selecting), ACK: the bound address, 0 on any surprise.
  uint32_t bind(Shard& s, const Client& c, int64_t now_ms = kT0) {
    const Decision o = run(s, c.msg(kDiscover).bytes(), now_ms);
    EXPECT_EQ(o.outcome, Outcome::kReply);
    EXPECT_EQ(o.reply, kOffer);
    if (o.reply != kOffer) return 0;
    const Decision a = run(s,
                           c.msg(kRequest)
                               .opt_ip(opt::kServerId, o.server_id)
                               .opt_ip(opt::kRequestedIp, o.yiaddr)
                               .bytes(),
                           now_ms);
    EXPECT_EQ(a.reply, kAck);
    EXPECT_EQ(a.yiaddr, o.yiaddr);
    EXPECT_TRUE(a.record);
    return a.reply == kAck ? a.yiaddr : 0;
  }
  uint32_t bind(const Client& c, int64_t now_ms = kT0) { return bind(s_, c, now_ms); }

  uint32_t offer(Shard& s, const Client& c, int64_t now_ms = kT0) {
    const Decision o = run(s, c.msg(kDiscover).bytes(), now_ms);
    return o.reply == kOffer ? o.yiaddr : 0;
  }
  uint32_t offer(const Client& c, int64_t now_ms = kT0) { return offer(s_, c, now_ms); }

  Env e_;
  Shard s_{64, 0, 1};
};

TEST_F(ShardTest, DiscoverOfferRequestAck) {
  const Client c = client(1);
  const Decision o = run(c.msg(kDiscover).bytes());
  EXPECT_EQ(o.outcome, Outcome::kReply);
  EXPECT_EQ(o.reply, kOffer);
  EXPECT_EQ(o.yiaddr, ip("10.10.0.100"));  // the first address of the range
  EXPECT_EQ(o.server_id, kLanServer);
  EXPECT_EQ(o.lease_time, 3600u);
  EXPECT_EQ(o.pool, &e_.lan());
  EXPECT_FALSE(o.record);  // an offer is not durable
  EXPECT_FALSE(o.rapid);
  EXPECT_TRUE(e_.taken(o.yiaddr));
  const Lease* l = s_.find_client(c.key());
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->state, LeaseState::kOffered);
  EXPECT_EQ(l->addr, o.yiaddr);
  EXPECT_EQ(l->expire, kT0s + 30);  // offer_hold
  EXPECT_EQ(s_.find_addr(o.yiaddr), l);

  // The same client asking again gets the same offer.
  EXPECT_EQ(run(c.msg(kDiscover).bytes(), kT0 + 5000).yiaddr, o.yiaddr);
  EXPECT_EQ(l->expire, kT0s + 35);

  const Decision a = run(c.msg(kRequest)
                             .opt_ip(opt::kServerId, kLanServer)
                             .opt_ip(opt::kRequestedIp, o.yiaddr)
                             .opt(opt::kHostName, {'p', 'c', '1'})
                             .bytes(),
                         kT0 + 6000);
  EXPECT_EQ(a.outcome, Outcome::kReply);
  EXPECT_EQ(a.reply, kAck);
  EXPECT_EQ(a.yiaddr, o.yiaddr);
  EXPECT_EQ(a.lease_time, 3600u);
  EXPECT_EQ(a.server_id, kLanServer);
  ASSERT_TRUE(a.record);
  EXPECT_EQ(a.rec.type, RecType::kBind);
  EXPECT_EQ(a.rec.addr, o.yiaddr);
  EXPECT_EQ(a.rec.expire, kT0s + 6 + 3600);
  EXPECT_EQ(a.rec.lease_time, 3600u);
  EXPECT_EQ(a.rec.htype, 1);
  EXPECT_EQ(std::memcmp(a.rec.mac, c.mac.data(), 6), 0);
  EXPECT_EQ(a.rec.client(), c.key());
  EXPECT_EQ(std::string(a.rec.host, a.rec.host_len), "pc1");
  EXPECT_EQ(l->state, LeaseState::kBound);
  EXPECT_EQ(l->expire, kT0s + 6 + 3600);
  EXPECT_EQ(s_.stats().offers, 2u);
  EXPECT_EQ(s_.stats().acks, 1u);
  EXPECT_EQ(s_.stats().bound, 1u);
  EXPECT_EQ(s_.used(), 1u);

  // A bound client's DISCOVER is offered its lease again, which stays bound.
  EXPECT_EQ(offer(c, kT0 + 7000), o.yiaddr);
  EXPECT_EQ(l->state, LeaseState::kBound);
  EXPECT_EQ(l->expire, kT0s + 6 + 3600);
}

TEST_F(ShardTest, ClientIdentifierIsTheKey) {
  // Two messages with different chaddr but the same option 61 are the same client.
  Client a{mac_n(1), {0x00, 'h', 'o', 's', 't'}, 0};
  Client b{mac_n(2), a.cid, 0};
  const uint32_t x = bind(a);
  EXPECT_EQ(offer(b), x);
  EXPECT_EQ(s_.used(), 1u);
  // ... and the same MAC without it is another.
  const uint32_t y = offer(client(1));
  EXPECT_NE(y, x);
  EXPECT_NE(y, 0u);
}

TEST_F(ShardTest, RequestedAddressAndLeaseTime) {
  // DISCOVER with option 50 for a free dynamic address: offered.
  Decision o = run(client(1).msg(kDiscover).opt_ip(opt::kRequestedIp, ip("10.10.0.108")).bytes());
  EXPECT_EQ(o.yiaddr, ip("10.10.0.108"));
  // For an excluded, reserved, out-of-range or foreign address: something else.
  for (const char* a : {"10.10.0.103", "10.10.0.105", "10.10.0.150", "192.0.2.1", "10.10.0.108"}) {
    const Client c = client(static_cast<uint32_t>(ip(a) & 0xffff) + 100);
    o = run(c.msg(kDiscover).opt_ip(opt::kRequestedIp, ip(a)).bytes());
    EXPECT_EQ(o.reply, kOffer) << a;
    EXPECT_NE(o.yiaddr, ip(a)) << a;
    EXPECT_TRUE(e_.lan().allocatable(o.yiaddr)) << a;
  }
  // Option 51 is clamped to [min_lease_time, max_lease_time].
  const Client c = client(50);
  o = run(c.msg(kDiscover).opt_ip(opt::kLeaseTime, 10).bytes());
  EXPECT_EQ(o.lease_time, 600u);
  Decision a = run(c.msg(kRequest)
                       .opt_ip(opt::kServerId, kLanServer)
                       .opt_ip(opt::kRequestedIp, o.yiaddr)
                       .opt_ip(opt::kLeaseTime, 1000000)
                       .bytes());
  EXPECT_EQ(a.lease_time, 7200u);
  EXPECT_EQ(a.rec.expire, kT0s + 7200);
  a = run(c.msg(kRequest).ciaddr(o.yiaddr).opt_ip(opt::kLeaseTime, 900).bytes());
  EXPECT_EQ(a.lease_time, 900u);
}

TEST_F(ShardTest, SelectingAnotherServerWithdrawsTheOffer) {
  const Client c = client(1);
  const uint32_t x = offer(c);
  ASSERT_NE(x, 0u);
  const Decision d = run(c.msg(kRequest)
                             .opt_ip(opt::kServerId, ip("10.10.0.254"))
                             .opt_ip(opt::kRequestedIp, ip("10.10.0.254"))
                             .bytes());
  EXPECT_EQ(d.outcome, Outcome::kOtherServer);
  EXPECT_EQ(d.reply, 0);
  EXPECT_FALSE(d.record);
  EXPECT_FALSE(e_.taken(x));
  EXPECT_EQ(s_.find_addr(x), nullptr);
  // Another client may now have it.
  EXPECT_EQ(run(client(2).msg(kDiscover).opt_ip(opt::kRequestedIp, x).bytes()).yiaddr, x);
}

TEST_F(ShardTest, SelectingAfterTheOfferTimedOutStillBindsAFreeAddress) {
  const Client c = client(1);
  const uint32_t x = offer(c);
  s_.age(kT0s + 31, 1000);
  EXPECT_FALSE(e_.taken(x));
  EXPECT_EQ(s_.stats().offers_timed_out, 1u);
  const Decision a =
      run(c.msg(kRequest).opt_ip(opt::kServerId, kLanServer).opt_ip(opt::kRequestedIp, x).bytes(),
          kT0 + 40000);
  EXPECT_EQ(a.reply, kAck);
  EXPECT_EQ(a.yiaddr, x);
  EXPECT_TRUE(e_.taken(x));
}

TEST_F(ShardTest, InitRebootRenewRebind) {
  const Client c = client(1);
  const uint32_t x = bind(c);
  ASSERT_EQ(x, ip("10.10.0.100"));
  // INIT-REBOOT: option 50, no server id, no ciaddr.
  Decision d = run(c.msg(kRequest).opt_ip(opt::kRequestedIp, x).bytes(), kT0 + 1000);
  EXPECT_EQ(d.reply, kAck);
  EXPECT_EQ(d.yiaddr, x);
  EXPECT_EQ(d.rec.expire, kT0s + 1 + 3600);
  // RENEW (unicast) and REBIND (broadcast) look the same to a server: ciaddr only.
  d = run(c.msg(kRequest).ciaddr(x).bytes(), kT0 + 1800000);
  EXPECT_EQ(d.reply, kAck);
  EXPECT_EQ(d.yiaddr, x);
  EXPECT_EQ(d.rec.expire, kT0s + 1800 + 3600);
  d = run(c.msg(kRequest).ciaddr(x).at(off::kFlags, {0x80, 0}).bytes(), kT0 + 3000000);
  EXPECT_EQ(d.reply, kAck);
  EXPECT_EQ(s_.find_client(c.key())->expire, kT0s + 3000 + 3600);
  EXPECT_EQ(s_.stats().bound, 1u);

  // INIT-REBOOT for another address of this subnet while it holds x: NAK.
  d = run(c.msg(kRequest).opt_ip(opt::kRequestedIp, ip("10.10.0.101")).bytes());
  EXPECT_EQ(d.outcome, Outcome::kReply);
  EXPECT_EQ(d.reply, kNak);
  EXPECT_EQ(d.yiaddr, 0u);
  EXPECT_EQ(d.lease_time, 0u);
  EXPECT_FALSE(d.record);
  EXPECT_EQ(d.server_id, kLanServer);
  EXPECT_FALSE(e_.taken(ip("10.10.0.101")));
  // For an address of another network (it moved): NAK.
  d = run(c.msg(kRequest).opt_ip(opt::kRequestedIp, ip("192.168.1.20")).bytes());
  EXPECT_EQ(d.reply, kNak);
  // A RENEW for an address it does not hold: NAK.
  d = run(c.msg(kRequest).ciaddr(ip("10.10.0.102")).bytes());
  EXPECT_EQ(d.reply, kNak);
  EXPECT_EQ(s_.stats().naks, 3u);
  // Nothing to ask for.
  d = run(c.msg(kRequest).bytes());
  EXPECT_EQ(d.outcome, Outcome::kIgnored);
  EXPECT_EQ(d.reply, 0);
  // After all of it the lease is unchanged.
  EXPECT_EQ(s_.find_client(c.key())->addr, x);
  EXPECT_EQ(s_.find_client(c.key())->state, LeaseState::kBound);
}

TEST_F(ShardTest, RequestsForUnknownLeases) {
  // Our state was lost (or the lease came from another server): a free address that may be
  // the client's is given; a taken or reserved one is NAKed.
  const Client a = client(1), b = client(2);
  Decision d = run(a.msg(kRequest).opt_ip(opt::kRequestedIp, ip("10.10.0.104")).bytes());
  EXPECT_EQ(d.reply, kAck);
  EXPECT_EQ(d.yiaddr, ip("10.10.0.104"));
  EXPECT_EQ(d.rec.type, RecType::kBind);
  EXPECT_TRUE(e_.taken(ip("10.10.0.104")));
  d = run(b.msg(kRequest).ciaddr(ip("10.10.0.104")).bytes());
  EXPECT_EQ(d.reply, kNak);
  d = run(b.msg(kRequest).opt_ip(opt::kRequestedIp, ip("10.10.0.105")).bytes());  // reserved
  EXPECT_EQ(d.reply, kNak);
  d = run(b.msg(kRequest).opt_ip(opt::kRequestedIp, ip("10.10.0.103")).bytes());  // excluded
  EXPECT_EQ(d.reply, kNak);
  EXPECT_EQ(s_.find_client(b.key()), nullptr);
  EXPECT_EQ(s_.find_client(a.key())->addr, ip("10.10.0.104"));
}

class NonAuthoritative : public ShardTest {
 protected:
  NonAuthoritative() : ShardTest(conf({{"authoritative", "false"}})) {}
};

TEST_F(NonAuthoritative, StaysSilentAboutLeasesItDoesNotKnow) {
  const Client a = client(1), b = client(2);
  const uint32_t x = bind(a);
  Decision d = run(b.msg(kRequest).ciaddr(x).bytes());
  EXPECT_EQ(d.outcome, Outcome::kNotOurs);
  EXPECT_EQ(d.reply, 0);
  d = run(b.msg(kRequest).opt_ip(opt::kRequestedIp, ip("192.168.1.20")).bytes());
  EXPECT_EQ(d.outcome, Outcome::kNotOurs);
  // SELECTING us for a wrong address is still NAKed: the client chose us.
  d = run(b.msg(kRequest)
              .opt_ip(opt::kServerId, kLanServer)
              .opt_ip(opt::kRequestedIp, ip("192.168.1.20"))
              .bytes());
  EXPECT_EQ(d.reply, kNak);
  // A client we know asking for the wrong address still gets its NAK.
  d = run(a.msg(kRequest).opt_ip(opt::kRequestedIp, ip("10.10.0.101")).bytes());
  EXPECT_EQ(d.reply, kNak);
  EXPECT_EQ(s_.stats().naks, 2u);
}

TEST_F(ShardTest, DeclineQuarantinesTheAddressThenAgeingFreesIt) {
  const Client c = client(1);
  const uint32_t x = bind(c);
  ASSERT_NE(x, 0u);
  const Decision d =
      run(c.msg(kDecline).opt_ip(opt::kRequestedIp, x).opt_ip(opt::kServerId, kLanServer).bytes(),
          kT0 + 2000);
  EXPECT_EQ(d.outcome, Outcome::kDeclined);
  EXPECT_EQ(d.reply, 0);
  ASSERT_TRUE(d.record);
  EXPECT_EQ(d.rec.type, RecType::kDecline);
  EXPECT_EQ(d.rec.addr, x);
  EXPECT_EQ(d.rec.key_len, 0);  // detached from the client
  EXPECT_EQ(d.rec.expire, kT0s + 2 + 600);
  EXPECT_EQ(s_.stats().declines, 1u);
  EXPECT_EQ(s_.stats().bound, 0u);
  EXPECT_EQ(s_.find_client(c.key()), nullptr);
  const Lease* l = s_.find_addr(x);
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->state, LeaseState::kDeclined);
  EXPECT_TRUE(e_.taken(x));

  // Neither the client that declined it nor anybody else gets it during the quarantine.
  const uint32_t y = offer(c, kT0 + 3000);
  EXPECT_NE(y, x);
  EXPECT_NE(y, 0u);
  EXPECT_NE(run(client(2).msg(kDiscover).opt_ip(opt::kRequestedIp, x).bytes(), kT0 + 3000).yiaddr,
            x);
  EXPECT_EQ(run(client(3).msg(kRequest).opt_ip(opt::kRequestedIp, x).bytes(), kT0 + 3000).reply,
            kNak);
  s_.age(kT0s + 2 + 599, 1000);  // not yet
  EXPECT_EQ(s_.find_addr(x), l);
  EXPECT_EQ(s_.stats().quarantine_ended, 0u);

  // Ageing past decline_hold returns it to the pool.
  s_.age(kT0s + 2 + 600, 1000);
  EXPECT_EQ(s_.stats().quarantine_ended, 1u);
  EXPECT_EQ(s_.find_addr(x), nullptr);
  EXPECT_FALSE(e_.taken(x));
  EXPECT_EQ(run(client(4).msg(kDiscover).opt_ip(opt::kRequestedIp, x).bytes(), kT0 + 700000).yiaddr,
            x);
}

TEST_F(ShardTest, DeclinesThatMatchNothingAreIgnored) {
  const Client c = client(1);
  const uint32_t x = bind(c);
  // Another address, another server, another client: nothing happens.
  Decision d = run(c.msg(kDecline).opt_ip(opt::kRequestedIp, ip("10.10.0.101")).bytes());
  EXPECT_EQ(d.outcome, Outcome::kIgnored);
  EXPECT_FALSE(d.record);
  d = run(
      c.msg(kDecline).opt_ip(opt::kRequestedIp, x).opt_ip(opt::kServerId, ip("10.10.0.9")).bytes());
  EXPECT_EQ(d.outcome, Outcome::kIgnored);
  d = run(client(2).msg(kDecline).opt_ip(opt::kRequestedIp, x).bytes());
  EXPECT_EQ(d.outcome, Outcome::kIgnored);
  EXPECT_EQ(s_.find_client(c.key())->state, LeaseState::kBound);
  EXPECT_EQ(s_.stats().declines, 0u);
}

class NoQuarantine : public ShardTest {
 protected:
  NoQuarantine() : ShardTest(conf({{"decline_hold", "0"}})) {}
};

TEST_F(NoQuarantine, ADeclinedAddressIsFreeAtOnce) {
  const Client c = client(1);
  const uint32_t x = bind(c);
  const Decision d = run(c.msg(kDecline).opt_ip(opt::kRequestedIp, x).bytes());
  EXPECT_EQ(d.outcome, Outcome::kDeclined);
  EXPECT_EQ(d.rec.type, RecType::kDecline);
  EXPECT_FALSE(e_.taken(x));
  EXPECT_EQ(s_.find_addr(x), nullptr);
  EXPECT_EQ(s_.used(), 0u);
}

TEST_F(ShardTest, ReleaseThenTheSameClientGetsTheSameAddressBack) {
  const Client c = client(1);
  const uint32_t x = bind(c);
  ASSERT_NE(x, 0u);
  // A RELEASE for another address is ignored.
  Decision d = run(c.msg(kRelease).ciaddr(ip("10.10.0.101")).bytes());
  EXPECT_EQ(d.outcome, Outcome::kIgnored);
  EXPECT_TRUE(e_.taken(x));
  d = run(client(2).msg(kRelease).ciaddr(x).bytes());  // not its lease
  EXPECT_EQ(d.outcome, Outcome::kIgnored);
  EXPECT_TRUE(e_.taken(x));

  d = run(c.msg(kRelease).ciaddr(x).opt_ip(opt::kServerId, kLanServer).bytes(), kT0 + 5000);
  EXPECT_EQ(d.outcome, Outcome::kReleased);
  EXPECT_EQ(d.reply, 0);
  ASSERT_TRUE(d.record);
  EXPECT_EQ(d.rec.type, RecType::kRelease);
  EXPECT_EQ(d.rec.addr, x);
  EXPECT_EQ(d.rec.client(), c.key());
  EXPECT_EQ(d.rec.expire, kT0s + 5);
  EXPECT_FALSE(e_.taken(x));
  EXPECT_EQ(s_.find_addr(x), nullptr);
  EXPECT_EQ(s_.find_client(c.key())->state, LeaseState::kExpired);
  EXPECT_EQ(s_.stats().releases, 1u);
  EXPECT_EQ(s_.stats().bound, 0u);
  // A second RELEASE finds nothing.
  EXPECT_EQ(run(c.msg(kRelease).ciaddr(x).bytes()).outcome, Outcome::kIgnored);

  // Other clients come and go; the returning client gets its address back.
  EXPECT_NE(bind(client(2)), x);
  EXPECT_EQ(bind(c, kT0 + 10000), x);
}

TEST_F(ShardTest, ReleasedAddressTakenMeansAnotherOne) {
  const Client a = client(1), b = client(2);
  const uint32_t x = bind(a);
  EXPECT_EQ(run(a.msg(kRelease).ciaddr(x).bytes()).outcome, Outcome::kReleased);
  EXPECT_EQ(run(b.msg(kDiscover).opt_ip(opt::kRequestedIp, x).bytes()).yiaddr, x);
  const uint32_t y = bind(a);
  EXPECT_NE(y, x);
  EXPECT_NE(y, 0u);
  EXPECT_EQ(s_.find_addr(x)->key, b.key());
}

TEST_F(ShardTest, ExpiredLeaseComesBackToItsClient) {
  const Client c = client(1);
  const uint32_t x = bind(c);
  s_.age(kT0s + 3599, 1000);
  EXPECT_EQ(s_.find_client(c.key())->state, LeaseState::kBound);
  s_.age(kT0s + 3600, 1000);
  EXPECT_EQ(s_.stats().expired, 1u);
  EXPECT_EQ(s_.stats().bound, 0u);
  EXPECT_EQ(s_.find_client(c.key())->state, LeaseState::kExpired);
  EXPECT_FALSE(e_.taken(x));
  EXPECT_EQ(s_.find_addr(x), nullptr);
  EXPECT_EQ(offer(c, kT0 + 4000000), x);
}

TEST_F(ShardTest, InformGetsConfigurationOnly) {
  const Client c = client(1);
  const Decision d = run(c.msg(kInform).ciaddr(ip("10.10.0.77")).bytes());
  EXPECT_EQ(d.outcome, Outcome::kReply);
  EXPECT_EQ(d.reply, kAck);
  EXPECT_EQ(d.yiaddr, 0u);
  EXPECT_EQ(d.lease_time, 0u);
  EXPECT_FALSE(d.record);
  EXPECT_EQ(d.pool, &e_.lan());
  EXPECT_EQ(d.server_id, kLanServer);
  EXPECT_EQ(s_.find_client(c.key()), nullptr);
  EXPECT_EQ(s_.used(), 0u);
  EXPECT_EQ(s_.stats().informs, 1u);
}

TEST_F(ShardTest, RapidCommitNeedsTheConfigSwitch) {
  const Decision d = run(client(1).msg(kDiscover).opt(opt::kRapidCommit, {}).bytes());
  EXPECT_EQ(d.reply, kOffer);
  EXPECT_FALSE(d.rapid);
  EXPECT_FALSE(d.record);
}

class RapidCommit : public ShardTest {
 protected:
  RapidCommit() : ShardTest(conf({{"rapid_commit", "true"}})) {}
};

TEST_F(RapidCommit, DiscoverWithOption80IsAcked) {
  const Client c = client(1);
  Decision d = run(c.msg(kDiscover).opt(opt::kRapidCommit, {}).bytes());
  EXPECT_EQ(d.outcome, Outcome::kReply);
  EXPECT_EQ(d.reply, kAck);
  EXPECT_TRUE(d.rapid);
  ASSERT_TRUE(d.record);
  EXPECT_EQ(d.rec.type, RecType::kBind);
  EXPECT_EQ(d.rec.addr, d.yiaddr);
  EXPECT_EQ(d.rec.expire, kT0s + 3600);
  EXPECT_EQ(s_.find_client(c.key())->state, LeaseState::kBound);
  EXPECT_EQ(s_.stats().rapid_acks, 1u);
  EXPECT_EQ(s_.stats().bound, 1u);
  // Without option 80 the usual four messages.
  d = run(client(2).msg(kDiscover).bytes());
  EXPECT_EQ(d.reply, kOffer);
  EXPECT_FALSE(d.rapid);
}

TEST_F(ShardTest, ReservationByMac) {
  const Client r{kResMac, {}, 0};
  const Decision o = run(r.msg(kDiscover).opt_ip(opt::kRequestedIp, ip("10.10.0.100")).bytes());
  EXPECT_EQ(o.reply, kOffer);
  EXPECT_EQ(o.yiaddr, ip("10.10.0.105"));
  ASSERT_NE(o.hostname, nullptr);
  EXPECT_STREQ(o.hostname, "printer");
  const Decision a = run(r.msg(kRequest)
                             .opt_ip(opt::kServerId, kLanServer)
                             .opt_ip(opt::kRequestedIp, o.yiaddr)
                             .bytes());
  EXPECT_EQ(a.reply, kAck);
  EXPECT_EQ(a.yiaddr, ip("10.10.0.105"));
  ASSERT_NE(a.hostname, nullptr);
  EXPECT_STREQ(a.hostname, "printer");
  // A client without a reservation never gets it, even by name.
  const Client other = client(7);
  EXPECT_NE(run(other.msg(kDiscover).opt_ip(opt::kRequestedIp, ip("10.10.0.105")).bytes()).yiaddr,
            ip("10.10.0.105"));
  EXPECT_EQ(run(other.msg(kRequest).opt_ip(opt::kRequestedIp, ip("10.10.0.105")).bytes()).reply,
            kNak);
  // The reserved client asking for something else is NAKed (its address is fixed).
  EXPECT_EQ(run(r.msg(kRequest).opt_ip(opt::kRequestedIp, ip("10.10.0.101")).bytes()).reply, kNak);
}

TEST_F(ShardTest, ReservationIsFreeWhenItsClientIsAway) {
  // The reserved address is never handed out dynamically, even when everything else is gone.
  std::set<uint32_t> got;
  for (uint32_t i = 1; i <= 20; ++i)
    if (uint32_t a = offer(client(i))) got.insert(a);
  EXPECT_EQ(got.size(), kLanDynamic.size());
  EXPECT_EQ(got.count(ip("10.10.0.105")), 0u);
  EXPECT_EQ(got.count(ip("10.10.0.106")), 0u);
  EXPECT_EQ(offer(Client{kResMac, {}, 0}), ip("10.10.0.105"));
  EXPECT_EQ(offer(Client{mac_n(99), kResCid, 0}), ip("10.10.0.106"));
}

TEST_F(ShardTest, ReservationByClientId) {
  // Any chaddr: the client identifier decides.
  const Client r{mac_n(42), kResCid, 0};
  EXPECT_EQ(bind(r), ip("10.10.0.106"));
  const Lease* l = s_.find_addr(ip("10.10.0.106"));
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->key, ClientKey::from_id(kResCid));
  // The same chaddr with another identifier is another client.
  EXPECT_NE(offer(Client{mac_n(42), {0xff, 1}, 0}), ip("10.10.0.106"));
  // A prefix of the identifier is not the identifier.
  Bytes shorter(kResCid.begin(), kResCid.end() - 1);
  EXPECT_NE(offer(Client{mac_n(43), shorter, 0}), ip("10.10.0.106"));
}

TEST_F(ShardTest, ReservationOutsideTheDynamicRange) {
  // The loader accepts a reservation anywhere among the subnet's hosts.
  const Client r{kResOutMac, {}, 0};
  const Decision o = run(r.msg(kDiscover).bytes());
  EXPECT_EQ(o.reply, kOffer);
  EXPECT_EQ(o.yiaddr, ip("10.10.0.50"));
  EXPECT_EQ(bind(r), ip("10.10.0.50"));
  EXPECT_TRUE(e_.taken(ip("10.10.0.50")));
  // INIT-REBOOT for it, and release.
  EXPECT_EQ(run(r.msg(kRequest).opt_ip(opt::kRequestedIp, ip("10.10.0.50")).bytes()).reply, kAck);
  EXPECT_EQ(run(r.msg(kRelease).ciaddr(ip("10.10.0.50")).bytes()).outcome, Outcome::kReleased);
  EXPECT_FALSE(e_.taken(ip("10.10.0.50")));
  // Nobody else gets it, asking for it or not.
  EXPECT_EQ(run(client(5).msg(kRequest).opt_ip(opt::kRequestedIp, ip("10.10.0.50")).bytes()).reply,
            kNak);
  EXPECT_EQ(bind(r), ip("10.10.0.50"));
}

TEST(DhcpPool, AReservationIsNotGivenDynamicallyByAnotherPool) {
  // Two pools whose subnets overlap (clients on the port, and relayed ones in the same subnet):
  // the lan pool's reservation is inside the relayed pool's range.
  Env e(R"(
lcores = { management = 0; workers = [1]; };
ports = ( { name = "lan"; device = "net_null0"; addresses = ["10.10.0.1/24"]; } );
pipeline = [ "input", "dhcp", "ip4_forward" ];
dhcp = {
  client_rate = 0;
  pools = ( { interface = "lan"; ranges = [ "10.10.0.100-10.10.0.150" ];
              reservations = ( { mac = "02:00:00:00:00:01"; address = "10.10.0.20"; } ); },
            { relay = "10.30.0.0/24"; subnet = "10.10.0.0/24"; ranges = [ "10.10.0.20-10.10.0.22" ]; } );
};
)");
  const PoolView& rel = e.view->pools.at(1);
  EXPECT_FALSE(rel.allocatable(ip("10.10.0.20")));
  Shard s(16, 0, 1);
  std::set<uint32_t> got;
  for (uint32_t i = 10; i < 14; ++i) {
    Client c = client(i);
    c.relay = ip("10.30.0.1");
    const Request r = parsed(c.msg(kDiscover).bytes());
    const Decision d = s.handle(*e.view, rel, r, ip("10.10.0.1"), r.chaddr, kT0);
    if (d.reply == kOffer) got.insert(d.yiaddr);
  }
  EXPECT_EQ(got, (std::set<uint32_t>{ip("10.10.0.21"), ip("10.10.0.22")}));
  // Its client still gets it, on the port.
  const Request r = parsed(Client{{2, 0, 0, 0, 0, 1}, {}, 0}.msg(kDiscover).bytes());
  EXPECT_EQ(s.handle(*e.view, e.view->pools.at(0), r, 0, r.chaddr, kT0).yiaddr, ip("10.10.0.20"));
}

TEST_F(ShardTest, PoolExhaustionAndOfferHold) {
  std::set<uint32_t> got;
  for (uint32_t i = 1; i <= kLanDynamic.size(); ++i) {
    const uint32_t a = offer(client(i));
    EXPECT_TRUE(e_.lan().allocatable(a)) << format_ipv4(a);
    EXPECT_TRUE(got.insert(a).second) << format_ipv4(a) << " offered twice";
  }
  std::set<uint32_t> want;
  for (const char* a : kLanDynamic) want.insert(ip(a));
  EXPECT_EQ(got, want);
  // Offers are held: one more client finds nothing.
  const Decision d = run(client(100).msg(kDiscover).bytes(), kT0 + 29000);
  EXPECT_EQ(d.outcome, Outcome::kPoolExhausted);
  EXPECT_EQ(d.reply, 0);
  EXPECT_EQ(s_.find_client(client(100).key()), nullptr);
  // Offer hold over: their addresses go back to the pool.
  s_.age(kT0s + 30, 1000);
  EXPECT_EQ(s_.stats().offers_timed_out, kLanDynamic.size());
  for (uint32_t a : got) EXPECT_FALSE(e_.taken(a)) << format_ipv4(a);
  const uint32_t a = offer(client(100), kT0 + 31000);
  EXPECT_EQ(got.count(a), 1u);
}

TEST_F(ShardTest, ATableFullReusesExpiredSlotsAndLeaksNoAddress) {
  Shard small(4, 0, 1);
  std::vector<uint32_t> got;
  for (uint32_t i = 1; i <= 4; ++i) got.push_back(bind(small, client(i)));
  EXPECT_EQ(small.used(), 4u);
  const Decision d = run(small, client(5).msg(kDiscover).bytes());
  EXPECT_EQ(d.outcome, Outcome::kTableFull);
  EXPECT_EQ(d.reply, 0);
  // The address it would have had is not lost.
  size_t taken = 0;
  for (const char* a : kLanDynamic) taken += e_.taken(ip(a));
  EXPECT_EQ(taken, 4u);
  // One lease expires (its slot stays as a hint); a new client may take the slot.
  EXPECT_EQ(run(small, client(1).msg(kRelease).ciaddr(got[0]).bytes()).outcome, Outcome::kReleased);
  EXPECT_NE(small.find_client(client(1).key()), nullptr);
  const Decision again = run(small, client(6).msg(kDiscover).bytes());
  EXPECT_EQ(again.reply, kOffer);
  EXPECT_EQ(small.find_client(client(1).key()), nullptr);  // the hint was forgotten
  EXPECT_EQ(small.used(), 4u);
  taken = 0;
  for (const char* a : kLanDynamic) taken += e_.taken(ip(a));
  EXPECT_EQ(taken, 4u);  // three bound, one offered
}

TEST_F(ShardTest, AClientThatMovedNetworksGetsAnAddressOfItsNewOne) {
  const Client c = client(1);
  const uint32_t x = bind(c);
  Client moved = c;
  moved.relay = ip("10.30.0.1");
  const Decision o = run(moved.msg(kDiscover).bytes());
  EXPECT_EQ(o.reply, kOffer);
  EXPECT_EQ(o.pool, &e_.relayed());
  EXPECT_TRUE(e_.relayed().subnet.contains(o.yiaddr));
  EXPECT_EQ(o.server_id, kRelayServer);
  EXPECT_FALSE(e_.taken(x));
  EXPECT_EQ(s_.find_addr(x), nullptr);
  EXPECT_EQ(s_.stats().bound, 0u);
  EXPECT_EQ(s_.used(), 1u);
  // The bound lease it left behind is journaled as released, once.
  LeaseRecord left;
  ASSERT_TRUE(s_.take_left_behind(left));
  EXPECT_EQ(left.type, RecType::kRelease);
  EXPECT_EQ(left.addr, x);
  EXPECT_FALSE(s_.take_left_behind(left));
  // A plain renewal leaves nothing behind.
  run(moved.msg(kDiscover).bytes());
  EXPECT_FALSE(s_.take_left_behind(left));
}

TEST_F(ShardTest, AMovedClientRebootingWithItsOldAddressIsNaked) {
  // RFC 2131 4.3.2: INIT-REBOOT for an address of another network gets a NAK, even when the
  // address is the client's own lease there (it would get the new network's mask and router).
  const Client c = client(1);
  const uint32_t x = bind(c);
  Client moved = c;
  moved.relay = ip("10.30.0.1");
  Decision d = run(moved.msg(kRequest).opt_ip(opt::kRequestedIp, x).bytes());
  EXPECT_EQ(d.reply, kNak);
  EXPECT_EQ(d.yiaddr, 0u);
  EXPECT_FALSE(d.record);
  d = run(moved.msg(kRequest).ciaddr(x).bytes());  // REBIND through the relay
  EXPECT_EQ(d.reply, kNak);
  // Back home, the lease is still there.
  d = run(c.msg(kRequest).ciaddr(x).bytes());
  EXPECT_EQ(d.reply, kAck);
  EXPECT_EQ(d.yiaddr, x);
}

TEST_F(ShardTest, ReleaseByTheOperator) {
  const Client a = client(1), b = client(2);
  const uint32_t x = bind(a), y = bind(b);
  LeaseRecord rec{};
  EXPECT_TRUE(s_.release_addr(x, kT0s + 9, rec));
  EXPECT_EQ(rec.type, RecType::kRelease);
  EXPECT_EQ(rec.addr, x);
  EXPECT_EQ(rec.client(), a.key());
  EXPECT_EQ(rec.expire, kT0s + 9);
  EXPECT_FALSE(e_.taken(x));
  EXPECT_EQ(s_.find_client(a.key())->state, LeaseState::kExpired);
  EXPECT_FALSE(s_.release_addr(x, kT0s + 9, rec));  // twice
  EXPECT_FALSE(s_.release_addr(ip("10.10.0.200"), kT0s + 9, rec));
  // A declined address ends its quarantine early.
  EXPECT_EQ(run(b.msg(kDecline).opt_ip(opt::kRequestedIp, y).bytes()).outcome, Outcome::kDeclined);
  EXPECT_TRUE(s_.release_addr(y, kT0s + 10, rec));
  EXPECT_EQ(rec.type, RecType::kRelease);
  EXPECT_EQ(rec.addr, y);
  EXPECT_EQ(rec.key_len, 0);
  EXPECT_FALSE(e_.taken(y));
  EXPECT_EQ(s_.find_addr(y), nullptr);
  EXPECT_EQ(s_.used(), 1u);  // a's hint
}

TEST_F(ShardTest, RestoreRebuildsLeasesFromRecords) {
  // Records as a first run wrote them, oldest first.
  std::vector<LeaseRecord> recs;
  const Client a = client(1), b = client(2), c = client(3), d = client(4), old = client(5);
  auto rec_of = [&](const Decision& x) {
    EXPECT_TRUE(x.record);
    recs.push_back(x.rec);
  };
  const uint32_t xa = bind(a), xb = bind(b), xc = bind(c), xd = bind(d);
  rec_of(run(a.msg(kRequest).ciaddr(xa).bytes()));
  rec_of(run(b.msg(kRequest).ciaddr(xb).bytes()));
  rec_of(run(c.msg(kRequest).ciaddr(xc).bytes()));
  rec_of(run(d.msg(kRequest).ciaddr(xd).bytes()));
  rec_of(run(b.msg(kRelease).ciaddr(xb).bytes(), kT0 + 1000));
  rec_of(run(c.msg(kDecline).opt_ip(opt::kRequestedIp, xc).bytes(), kT0 + 1000));
  // A lease that ended before the restart (an old record).
  LeaseRecord stale = recs[0];
  stale.addr = ip("10.10.0.109");
  stale.expire = kT0s - 10;
  const ClientKey ko = old.key();
  stale.key_len = ko.len;
  std::memcpy(stale.key, ko.b, ko.len);
  recs.insert(recs.begin(), stale);

  Env e2(conf());
  Shard s2(64, 0, 1);
  for (const LeaseRecord& r : recs) s2.restore(r, e2.blocks, kT0s + 60);
  EXPECT_EQ(s2.stats().bound, 2u);
  const Lease* la = s2.find_client(a.key());
  ASSERT_NE(la, nullptr);
  EXPECT_EQ(la->state, LeaseState::kBound);
  EXPECT_EQ(la->addr, xa);
  EXPECT_EQ(la->expire, kT0s + 3600);
  EXPECT_EQ(s2.find_addr(xa), la);
  EXPECT_TRUE(e2.taken(xa));
  EXPECT_TRUE(e2.taken(xd));
  EXPECT_FALSE(e2.taken(xb));
  EXPECT_EQ(s2.find_client(b.key())->state, LeaseState::kExpired);
  EXPECT_EQ(s2.find_client(c.key()), nullptr);
  ASSERT_NE(s2.find_addr(xc), nullptr);
  EXPECT_EQ(s2.find_addr(xc)->state, LeaseState::kDeclined);
  EXPECT_TRUE(e2.taken(xc));
  EXPECT_EQ(s2.find_client(old.key())->state, LeaseState::kExpired);
  EXPECT_FALSE(e2.taken(ip("10.10.0.109")));

  // The restored shard behaves as the first one did.
  auto run2 = [&](const Bytes& m) {
    const Request r = parsed(m);
    return s2.handle(*e2.view, e2.lan(), r, kLanServer, r.chaddr, kT0 + 120000);
  };
  Decision x = run2(a.msg(kRequest).ciaddr(xa).bytes());
  EXPECT_EQ(x.reply, kAck);
  EXPECT_EQ(x.yiaddr, xa);
  x = run2(b.msg(kDiscover).bytes());  // released: its address again
  EXPECT_EQ(x.yiaddr, xb);
  x = run2(old.msg(kDiscover).bytes());  // expired: its address again
  EXPECT_EQ(x.yiaddr, ip("10.10.0.109"));
  x = run2(client(9).msg(kDiscover).opt_ip(opt::kRequestedIp, xc).bytes());  // quarantined
  EXPECT_EQ(x.reply, kOffer);
  EXPECT_NE(x.yiaddr, xc);
  EXPECT_NE(x.yiaddr, xa);
  EXPECT_NE(x.yiaddr, xd);
  s2.age(kT0s + 1 + 600, 1000);
  EXPECT_FALSE(e2.taken(xc));

  // A later record for the same client supersedes the earlier one.
  Shard s3(64, 0, 1);
  Env e3(conf());
  LeaseRecord first = recs[1], second = recs[1];
  second.addr = ip("10.10.0.108");
  s3.restore(first, e3.blocks, kT0s);
  s3.restore(second, e3.blocks, kT0s);
  EXPECT_EQ(s3.find_client(a.key())->addr, ip("10.10.0.108"));
  EXPECT_FALSE(e3.taken(first.addr));
  EXPECT_TRUE(e3.taken(ip("10.10.0.108")));
  EXPECT_EQ(s3.used(), 1u);
  EXPECT_EQ(s3.stats().bound, 1u);
}

// ---- two shards on one bitmap -------------------------------------------------------------

std::string big_conf() {
  return R"(
lcores = { management = 0; workers = [1, 2]; };
ports = ( { name = "lan"; device = "net_null0"; addresses = ["10.10.0.1/23"]; } );
pipeline = [ "input", "dhcp", "ip4_forward" ];
dhcp = {
  client_rate = 0;
  pools = ( { interface = "lan"; ranges = [ "10.10.0.240-10.10.1.47" ];
              exclude = [ "10.10.0.250-10.10.0.252" ]; } );
};
)";
}

class TwoShards : public ShardTest {
 protected:
  TwoShards() : ShardTest(big_conf()) {}
  Shard sh_[2] = {Shard(256, 0, 2), Shard(256, 1, 2)};
};

TEST_F(TwoShards, NeverHandOutTheSameAddress) {
  const uint32_t size = e_.view->pools[0].size;
  ASSERT_EQ(size, 64u);
  const uint32_t dynamic = size - 3;
  std::set<uint32_t> got;
  uint32_t per[2] = {0, 0};
  uint32_t i = 1;
  for (; got.size() < dynamic && i < 1000; ++i) {
    const Client c = client(i);
    const uint16_t w = sh_[0].owner_of(c.key());
    EXPECT_EQ(sh_[1].owner_of(c.key()), w);
    const uint32_t a = bind(sh_[w], c);
    ASSERT_NE(a, 0u) << "client " << i;
    EXPECT_TRUE(got.insert(a).second) << format_ipv4(a) << " given twice";
    EXPECT_TRUE(e_.view->pools[0].allocatable(a));
    per[w]++;
  }
  EXPECT_EQ(got.size(), dynamic);
  EXPECT_GT(per[0], 0u);  // both shards did hand out addresses
  EXPECT_GT(per[1], 0u);
  // Both are exhausted now, whichever the client's owner.
  for (uint32_t j = 0; j < 8; ++j) {
    const Client c = client(5000 + j);
    EXPECT_EQ(run(sh_[sh_[0].owner_of(c.key())], c.msg(kDiscover).bytes()).outcome,
              Outcome::kPoolExhausted);
  }
  // Each address is held by exactly one shard.
  for (uint32_t a : got) {
    const bool in0 = sh_[0].find_addr(a) != nullptr, in1 = sh_[1].find_addr(a) != nullptr;
    EXPECT_NE(in0, in1) << format_ipv4(a);
  }
}

TEST_F(TwoShards, EachPrefersItsOwnShareAndBothCompeteForTheSameClients) {
  // First allocations: offsets congruent to the shard's index.
  EXPECT_EQ(offer(sh_[0], client(1)), ip("10.10.0.240"));
  EXPECT_EQ(offer(sh_[1], client(2)), ip("10.10.0.241"));
  EXPECT_EQ(offer(sh_[0], client(3)), ip("10.10.0.242"));
  EXPECT_EQ(offer(sh_[1], client(4)), ip("10.10.0.243"));
  // Even fed the same clients (which the stage never does), the shards share nothing.
  std::set<uint32_t> got;
  for (uint32_t i = 10; i < 100; ++i) {
    for (Shard& s : sh_) {
      const Decision d = run(s, client(i).msg(kDiscover).bytes());
      if (d.reply == kOffer) {
        EXPECT_TRUE(got.insert(d.yiaddr).second) << format_ipv4(d.yiaddr);
      }
    }
  }
  EXPECT_EQ(got.size() + 4, 61u);
}

TEST_F(TwoShards, AReloadedViewSharesTheBitmap) {
  const uint32_t x = bind(sh_[0], client(1));
  // The same pools, rebuilt (a reload): the address stays taken for everybody.
  auto v2 = build_view(e_.cfg, e_.blocks);
  const Request r = parsed(client(2).msg(kDiscover).opt_ip(opt::kRequestedIp, x).bytes());
  const Decision d = sh_[1].handle(*v2, v2->pools[0], r, ip("10.10.0.1"), r.chaddr, kT0);
  EXPECT_EQ(d.reply, kOffer);
  EXPECT_NE(d.yiaddr, x);
  EXPECT_TRUE(e_.taken(d.yiaddr));
}

// ---- rate limiting ------------------------------------------------------------------------

class RateLimit : public ShardTest {
 protected:
  RateLimit() : ShardTest(conf({{"client_rate", "2"}, {"client_burst", "3"}})) {}
};

TEST_F(RateLimit, PerStationTokenBucket) {
  const Client c = client(1);
  const Mac station = {0x02, 0xee, 0, 0, 0, 1};
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(run(s_, c.msg(kDiscover).bytes(), kT0, station.data()).outcome, Outcome::kReply);
  const Decision d = run(s_, c.msg(kDiscover).bytes(), kT0, station.data());
  EXPECT_EQ(d.outcome, Outcome::kRateLimited);
  EXPECT_EQ(d.reply, 0);
  EXPECT_EQ(s_.stats().offers, 3u);
  // A flood that varies chaddr still comes from one station.
  EXPECT_EQ(run(s_, client(2).msg(kDiscover).bytes(), kT0 + 100, station.data()).outcome,
            Outcome::kRateLimited);
  // Another station is not affected.
  const Mac other = {0x02, 0xee, 0, 0, 0, 2};
  EXPECT_EQ(run(s_, client(3).msg(kDiscover).bytes(), kT0 + 100, other.data()).outcome,
            Outcome::kReply);
  // Two tokens a second: 0.2 left, and 500 ms more buy one request.
  EXPECT_EQ(run(s_, c.msg(kDiscover).bytes(), kT0 + 600, station.data()).outcome, Outcome::kReply);
  EXPECT_EQ(run(s_, c.msg(kDiscover).bytes(), kT0 + 700, station.data()).outcome,
            Outcome::kRateLimited);
  // A long pause refills up to the burst, no more.
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(run(s_, c.msg(kDiscover).bytes(), kT0 + 60000, station.data()).outcome,
              Outcome::kReply);
  EXPECT_EQ(run(s_, c.msg(kDiscover).bytes(), kT0 + 60000, station.data()).outcome,
            Outcome::kRateLimited);
}

TEST_F(RateLimit, RelayedClientsAreToldApartByCircuit) {
  const Mac relay_mac = {0x02, 0xaa, 0, 0, 0, 1};
  auto relayed = [&](uint32_t n, uint8_t circuit) {
    Client c = client(n);
    c.relay = ip("10.30.0.1");
    Msg m = c.msg(kDiscover);
    m.opt(opt::kRelayInfo, {1, 1, circuit});
    return run(s_, m.bytes(), kT0, relay_mac.data()).outcome;
  };
  // Circuit 1: three clients exhaust its burst; circuit 2 is separate.
  EXPECT_EQ(relayed(1, 1), Outcome::kReply);
  EXPECT_EQ(relayed(2, 1), Outcome::kReply);
  EXPECT_EQ(relayed(3, 1), Outcome::kReply);
  EXPECT_EQ(relayed(4, 1), Outcome::kRateLimited);
  EXPECT_EQ(relayed(5, 2), Outcome::kReply);
  // Without option 82, by chaddr (the relay's own MAC is shared by all).
  Client c = client(6);
  c.relay = ip("10.30.0.1");
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(run(s_, c.msg(kDiscover).bytes(), kT0, relay_mac.data()).outcome, Outcome::kReply);
  EXPECT_EQ(run(s_, c.msg(kDiscover).bytes(), kT0, relay_mac.data()).outcome,
            Outcome::kRateLimited);
  Client d = client(7);
  d.relay = ip("10.30.0.1");
  EXPECT_EQ(run(s_, d.msg(kDiscover).bytes(), kT0, relay_mac.data()).outcome, Outcome::kReply);
}

// ---- the journal --------------------------------------------------------------------------

class TempDir {
 public:
  TempDir() {
    char t[] = "/tmp/nf-dhcp-test-XXXXXX";
    const char* p = mkdtemp(t);
    EXPECT_NE(p, nullptr);
    path_ = p ? p : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& n) const { return path_ + "/" + n; }

 private:
  std::string path_;
};

LeaseRecord mkrec(RecType t, uint32_t addr, uint32_t client_n, int64_t expire) {
  LeaseRecord r{};
  r.type = t;
  r.addr = addr;
  r.htype = 1;
  const Mac m = mac_n(client_n);
  std::memcpy(r.mac, m.data(), 6);
  r.expire = expire;
  r.lease_time = 3600;
  const ClientKey k = ClientKey::from_hw(1, m.data(), 6);
  r.key_len = k.len;
  std::memcpy(r.key, k.b, k.len);
  return r;
}

bool append1(Journal& j, LeaseRecord r) {
  return j.append({&r, 1});
}

// The journal's state by address: (seq, type, expire, first key byte ... as a string).
std::map<uint32_t, std::string> state_of(const Journal& j) {
  std::map<uint32_t, std::string> m;
  for (const LeaseRecord& r : j.state()) {
    EXPECT_TRUE(r.valid());
    EXPECT_EQ(m.count(r.addr), 0u);
    m[r.addr] = std::to_string(r.seq) + "/" + std::to_string(static_cast<int>(r.type)) + "/" +
                std::to_string(r.expire) + "/" +
                std::string(reinterpret_cast<const char*>(r.key), r.key_len);
  }
  return m;
}

std::vector<std::string> segments(const std::string& dir) {
  std::vector<std::string> v;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().rfind("journal.", 0) == 0)
      v.push_back(e.path().filename().string());
  std::sort(v.begin(), v.end());
  return v;
}

bool mentions(const RecoveryReport& rep, const std::string& what) {
  for (const auto& m : rep.messages)
    if (m.find(what) != std::string::npos) return true;
  return false;
}

std::string all_messages(const RecoveryReport& rep) {
  std::string s;
  for (const auto& m : rep.messages) s += m + "\n";
  return s;
}

TEST(DhcpJournal, AppendAndReopenRestoresTheLastRecordOfEveryAddress) {
  TempDir t;
  const std::string dir = t.file("a/b");  // created with its parents
  {
    Journal j;
    RecoveryReport rep;
    ASSERT_EQ(j.open(dir, true, rep), "");
    EXPECT_EQ(rep.records, 0u);
    EXPECT_TRUE(rep.messages.empty());
    EXPECT_EQ(j.segment(), 0u);
    std::vector<LeaseRecord> batch = {mkrec(RecType::kBind, 100, 1, kT0s + 3600),
                                      mkrec(RecType::kBind, 101, 2, kT0s + 3600),
                                      mkrec(RecType::kBind, 102, 3, kT0s + 3600)};
    ASSERT_TRUE(j.append(batch));
    EXPECT_EQ(batch[0].seq, 1u);  // sealed with sequence numbers
    EXPECT_EQ(batch[2].seq, 3u);
    EXPECT_TRUE(batch[2].valid());
    ASSERT_TRUE(append1(j, mkrec(RecType::kRelease, 101, 2, kT0s + 10)));
    ASSERT_TRUE(append1(j, mkrec(RecType::kDecline, 103, 0, kT0s + 600)));
    EXPECT_TRUE(j.append({}));
    EXPECT_EQ(j.appended(), 5u);
    EXPECT_EQ(j.syncs(), 3u);
    EXPECT_EQ(j.state().size(), 4u);
  }
  EXPECT_EQ(fs::file_size(dir + "/journal.00000000"), 5 * sizeof(LeaseRecord));
  Journal j;
  RecoveryReport rep;
  ASSERT_EQ(j.open(dir, false, rep), "");
  EXPECT_EQ(rep.records, 5u);
  EXPECT_EQ(rep.bad_records, 0u);
  EXPECT_EQ(rep.torn_bytes, 0u);
  EXPECT_EQ(rep.live, 3u);  // two binds and the decline
  EXPECT_TRUE(rep.messages.empty()) << all_messages(rep);
  EXPECT_EQ(j.segment(), 1u);  // a new segment per run
  const auto st = state_of(j);
  ASSERT_EQ(st.size(), 4u);
  EXPECT_EQ(st.at(101).substr(0, 4), "4/2/");
  EXPECT_EQ(st.at(103).substr(0, 4), "5/3/");
  // Sequence numbers go on from the recovered ones.
  LeaseRecord r = mkrec(RecType::kBind, 104, 4, kT0s);
  ASSERT_TRUE(j.append({&r, 1}));
  EXPECT_EQ(r.seq, 6u);
  EXPECT_EQ(j.syncs(), 0u);  // sync off
}

// A first run through a Shard, its records in the journal; a second run restores the shard
// from the journal the way the service does (state sorted by sequence).
TEST(DhcpJournal, AShardRestoredFromTheJournalKeepsItsLeases) {
  TempDir t;
  const std::string text = conf();
  std::map<std::string, uint32_t> bound;
  const Client a = client(1), b = client(2), c = client(3);
  uint32_t xa = 0, xb = 0, xc = 0;
  {
    Env e(text);
    Shard s(64, 0, 1);
    Journal j;
    RecoveryReport rep;
    ASSERT_EQ(j.open(t.path(), true, rep), "");
    auto go = [&](const Bytes& m, int64_t now) {
      const Request r = parsed(m);
      Decision d = s.handle(*e.view, e.lan(), r, kLanServer, r.chaddr, now);
      if (d.record) {
        EXPECT_TRUE(append1(j, d.rec));
      }
      return d;
    };
    auto bindc = [&](const Client& x) {
      const Decision o = go(x.msg(kDiscover).bytes(), kT0);
      return go(x.msg(kRequest)
                    .opt_ip(opt::kServerId, kLanServer)
                    .opt_ip(opt::kRequestedIp, o.yiaddr)
                    .bytes(),
                kT0)
          .yiaddr;
    };
    xa = bindc(a);
    xb = bindc(b);
    xc = bindc(c);
    go(b.msg(kRelease).ciaddr(xb).bytes(), kT0 + 1000);
    go(c.msg(kDecline).opt_ip(opt::kRequestedIp, xc).bytes(), kT0 + 1000);
    EXPECT_EQ(j.appended(), 5u);
  }
  Env e(text);
  Shard s(64, 0, 1);
  Journal j;
  RecoveryReport rep;
  ASSERT_EQ(j.open(t.path(), true, rep), "");
  EXPECT_EQ(rep.live, 2u);
  std::vector<LeaseRecord> all = j.state();
  std::sort(all.begin(), all.end(),
            [](const LeaseRecord& x, const LeaseRecord& y) { return x.seq < y.seq; });
  for (const LeaseRecord& r : all) s.restore(r, e.blocks, kT0s + 5);
  EXPECT_EQ(s.find_client(a.key())->state, LeaseState::kBound);
  EXPECT_EQ(s.find_client(a.key())->addr, xa);
  EXPECT_EQ(s.find_client(b.key())->state, LeaseState::kExpired);
  EXPECT_EQ(s.find_addr(xc)->state, LeaseState::kDeclined);
  EXPECT_TRUE(e.taken(xa));
  EXPECT_FALSE(e.taken(xb));
  EXPECT_TRUE(e.taken(xc));
  const Request r = parsed(b.msg(kDiscover).bytes());
  EXPECT_EQ(s.handle(*e.view, e.lan(), r, kLanServer, r.chaddr, kT0 + 6000).yiaddr, xb);
}

// Five records in journal.00000000 of `dir`, the first session closed.
void five_records(const std::string& dir) {
  Journal j;
  RecoveryReport rep;
  ASSERT_EQ(j.open(dir, true, rep), "");
  for (uint32_t i = 0; i < 5; ++i)
    ASSERT_TRUE(append1(j, mkrec(RecType::kBind, 200 + i, i + 1, kT0s + 3600)));
}

TEST(DhcpJournal, ATornTailIsReportedAndCutAndEverythingBeforeItSurvives) {
  TempDir t;
  five_records(t.path());
  const std::string seg = t.file("journal.00000000");
  // The crash: the fifth record half written, then garbage after it.
  ASSERT_EQ(::truncate(seg.c_str(), 4 * 128 + 50), 0);
  {
    std::ofstream f(seg, std::ios::binary | std::ios::app);
    const std::string junk(77, '\x5a');
    f << junk;
  }
  ASSERT_EQ(fs::file_size(seg), 4 * 128 + 127u);
  {
    Journal j;
    RecoveryReport rep;
    ASSERT_EQ(j.open(t.path(), true, rep), "");
    EXPECT_EQ(rep.records, 4u);
    EXPECT_EQ(rep.bad_records, 0u);  // a torn tail is not "damage"
    EXPECT_EQ(rep.torn_bytes, 127u);
    EXPECT_TRUE(mentions(rep, "journal.00000000: torn tail of 127 bytes at offset 512"))
        << all_messages(rep);
    EXPECT_EQ(fs::file_size(seg), 4 * 128u);  // cut
    const auto st = state_of(j);
    ASSERT_EQ(st.size(), 4u);
    for (uint32_t i = 0; i < 4; ++i) EXPECT_EQ(st.count(200 + i), 1u);
    EXPECT_EQ(st.count(204), 0u);
    // The run goes on appending (in its new segment), with fresh sequence numbers.
    LeaseRecord r = mkrec(RecType::kBind, 204, 5, kT0s + 3600);
    ASSERT_TRUE(j.append({&r, 1}));
    EXPECT_EQ(r.seq, 5u);
  }
  Journal j;
  RecoveryReport rep;
  ASSERT_EQ(j.open(t.path(), true, rep), "");
  EXPECT_EQ(rep.records, 5u);
  EXPECT_EQ(rep.torn_bytes, 0u);
  EXPECT_TRUE(rep.messages.empty()) << all_messages(rep);
  EXPECT_EQ(state_of(j).size(), 5u);
}

TEST(DhcpJournal, ATornTailOfWholeGarbageRecordsIsCut) {
  TempDir t;
  five_records(t.path());
  const std::string seg = t.file("journal.00000000");
  {
    std::ofstream f(seg, std::ios::binary | std::ios::app);
    f << std::string(300, '\0');  // a preallocated or zero-filled tail
  }
  Journal j;
  RecoveryReport rep;
  ASSERT_EQ(j.open(t.path(), true, rep), "");
  EXPECT_EQ(rep.records, 5u);
  EXPECT_EQ(rep.bad_records, 0u);
  EXPECT_EQ(rep.torn_bytes, 300u);
  EXPECT_EQ(fs::file_size(seg), 5 * 128u);
  EXPECT_EQ(state_of(j).size(), 5u);
}

void corrupt(const std::string& path, size_t offset) {
  std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x40);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

TEST(DhcpJournal, ADamagedRecordInTheMiddleIsSkippedAndItsNeighboursKept) {
  TempDir t;
  five_records(t.path());
  const std::string seg = t.file("journal.00000000");
  corrupt(seg, 2 * 128 + 40);  // the third record's expire
  {
    Journal j;
    RecoveryReport rep;
    ASSERT_EQ(j.open(t.path(), true, rep), "");
    EXPECT_EQ(rep.records, 4u);
    EXPECT_EQ(rep.bad_records, 1u);
    EXPECT_EQ(rep.torn_bytes, 0u);
    EXPECT_TRUE(mentions(rep, "journal.00000000: damaged record at offset 256 skipped"))
        << all_messages(rep);
    EXPECT_EQ(fs::file_size(seg), 5 * 128u);  // nothing cut
    const auto st = state_of(j);
    EXPECT_EQ(st.size(), 4u);
    EXPECT_EQ(st.count(201), 1u);
    EXPECT_EQ(st.count(202), 0u);
    EXPECT_EQ(st.count(203), 1u);
    EXPECT_EQ(st.count(204), 1u);  // the last record, after the damaged one
    LeaseRecord r = mkrec(RecType::kBind, 300, 9, kT0s + 3600);
    ASSERT_TRUE(j.append({&r, 1}));
  }
  // Now in a segment that is not the last one: still skipped, still nothing else lost; the
  // last record of that segment damaged is damage too, not a torn tail.
  corrupt(seg, 4 * 128 + 100);
  Journal j;
  RecoveryReport rep;
  ASSERT_EQ(j.open(t.path(), true, rep), "");
  EXPECT_EQ(rep.bad_records, 2u) << all_messages(rep);
  EXPECT_EQ(rep.torn_bytes, 0u);
  EXPECT_EQ(rep.records, 4u);
  EXPECT_TRUE(mentions(rep, "damaged record at offset 512 skipped")) << all_messages(rep);
  EXPECT_EQ(fs::file_size(seg), 5 * 128u);
  const auto st = state_of(j);
  EXPECT_EQ(st.size(), 4u);
  EXPECT_EQ(st.count(300), 1u);
}

TEST(DhcpJournal, CompactionThenReopenGivesTheSameState) {
  TempDir t;
  std::map<uint32_t, std::string> before;
  {
    Journal j;
    RecoveryReport rep;
    ASSERT_EQ(j.open(t.path(), true, rep), "");
    for (uint32_t i = 0; i < 10; ++i)
      ASSERT_TRUE(append1(j, mkrec(RecType::kBind, 400 + i % 6, i, kT0s + 3600 + i)));
    j.maybe_compact(1000);  // not due
    j.wait_compaction();
    EXPECT_EQ(j.compactions(), 0u);
    EXPECT_FALSE(fs::exists(t.file("leases.snap")));
    j.maybe_compact(10);
    j.wait_compaction();
    EXPECT_EQ(j.compactions(), 1u);
    EXPECT_EQ(j.segment(), 1u);
    EXPECT_TRUE(fs::exists(t.file("leases.snap")));
    EXPECT_FALSE(fs::exists(t.file("leases.snap.tmp")));
    EXPECT_EQ(segments(t.path()), (std::vector<std::string>{"journal.00000001"}));
    EXPECT_EQ(fs::file_size(t.file("leases.snap")), 7 * 128u);  // header and six addresses
    // Appends after it go to the new segment.
    ASSERT_TRUE(append1(j, mkrec(RecType::kRelease, 401, 7, kT0s)));
    ASSERT_TRUE(append1(j, mkrec(RecType::kBind, 499, 77, kT0s + 60)));
    before = state_of(j);
    EXPECT_EQ(before.size(), 7u);
  }
  Journal j;
  RecoveryReport rep;
  ASSERT_EQ(j.open(t.path(), true, rep), "");
  EXPECT_TRUE(rep.messages.empty()) << all_messages(rep);
  EXPECT_EQ(rep.records, 1 + 6 + 2u);
  EXPECT_EQ(state_of(j), before);
  EXPECT_EQ(j.segment(), 2u);
  LeaseRecord r = mkrec(RecType::kBind, 500, 8, kT0s);
  ASSERT_TRUE(j.append({&r, 1}));
  EXPECT_EQ(r.seq, 13u);

  // A second compaction covers the first snapshot and both segments.
  j.maybe_compact(1);
  j.wait_compaction();
  EXPECT_EQ(j.compactions(), 1u);
  EXPECT_EQ(segments(t.path()), (std::vector<std::string>{"journal.00000003"}));
  before = state_of(j);
  EXPECT_EQ(before.size(), 8u);
}

TEST(DhcpJournal, ASegmentLeftBehindByACompactionIsIgnoredAndRemoved) {
  TempDir t;
  {
    Journal j;
    RecoveryReport rep;
    ASSERT_EQ(j.open(t.path(), true, rep), "");
    ASSERT_TRUE(append1(j, mkrec(RecType::kBind, 600, 1, kT0s + 3600)));
    j.maybe_compact(1);
    j.wait_compaction();
    ASSERT_EQ(j.compactions(), 1u);
  }
  // A crash between the rename and the unlinks: the old segment, with a record the snapshot
  // already has, and one it has superseded.
  {
    std::ofstream f(t.file("journal.00000000"), std::ios::binary);
    LeaseRecord r = mkrec(RecType::kRelease, 600, 1, kT0s);
    r.seq = 1;
    r.seal();
    f.write(reinterpret_cast<const char*>(&r), sizeof r);
  }
  Journal j;
  RecoveryReport rep;
  ASSERT_EQ(j.open(t.path(), true, rep), "");
  EXPECT_FALSE(fs::exists(t.file("journal.00000000")));
  const auto st = state_of(j);
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st.at(600).substr(0, 4), "1/1/");  // the snapshot's bind
}

TEST(DhcpJournal, ADamagedSnapshotRecordIsSkipped) {
  TempDir t;
  {
    Journal j;
    RecoveryReport rep;
    ASSERT_EQ(j.open(t.path(), true, rep), "");
    for (uint32_t i = 0; i < 3; ++i)
      ASSERT_TRUE(append1(j, mkrec(RecType::kBind, 700 + i, i, kT0s + 3600)));
    j.maybe_compact(1);
    j.wait_compaction();
  }
  corrupt(t.file("leases.snap"), 2 * 128 + 20);
  Journal j;
  RecoveryReport rep;
  ASSERT_EQ(j.open(t.path(), true, rep), "");
  EXPECT_EQ(rep.bad_records, 1u);
  EXPECT_TRUE(mentions(rep, "leases.snap: damaged record at offset 256 skipped"))
      << all_messages(rep);
  EXPECT_EQ(state_of(j).size(), 2u);
}

TEST(DhcpJournal, ASecondOpenOfTheSameDirectoryFails) {
  TempDir t;
  auto j1 = std::make_unique<Journal>();
  RecoveryReport rep;
  ASSERT_EQ(j1->open(t.path(), true, rep), "");
  ASSERT_TRUE(append1(*j1, mkrec(RecType::kBind, 800, 1, kT0s + 3600)));
  {
    Journal j2;
    RecoveryReport rep2;
    const std::string err = j2.open(t.path(), true, rep2);
    EXPECT_NE(err.find("in use by another process"), std::string::npos) << err;
    EXPECT_EQ(j2.state().size(), 0u);
  }
  // The first one is unaffected and keeps appending.
  ASSERT_TRUE(append1(*j1, mkrec(RecType::kBind, 801, 2, kT0s + 3600)));
  j1.reset();
  Journal j3;
  RecoveryReport rep3;
  ASSERT_EQ(j3.open(t.path(), true, rep3), "");
  EXPECT_EQ(rep3.records, 2u);
  EXPECT_EQ(segments(t.path()).size(), 2u);  // the refused open made no segment
}

TEST(DhcpJournal, AnUnusableDirectoryIsAnError) {
  TempDir t;
  {
    std::ofstream f(t.file("file"));
    f << "x";
  }
  Journal j;
  RecoveryReport rep;
  EXPECT_NE(j.open(t.file("file/sub"), true, rep), "");
}

}  // namespace
}  // namespace nf::dhcp
