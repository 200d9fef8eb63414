// DHCPv4 wire format (RFC 2131 section 2, RFC 2132): one parse of a BOOTP message into a fixed
// table of option offsets, and a bounded option writer for replies. Pure: byte views only, so
// it is unit-tested and fuzzed without EAL.
//
// The parse never trusts a length: every option is checked against the end of its area, the
// option overload fields (RFC 2132 9.3) are followed only once each, and repeated options are
// concatenated as RFC 3396 says only for the few the server reads as strings (client id,
// parameter list, relay agent information) - the rest use their first instance.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>

namespace nf::dhcp {

inline constexpr uint16_t kServerPort = 67;
inline constexpr uint16_t kClientPort = 68;
inline constexpr uint32_t kMagic = 0x63825363;
inline constexpr uint16_t kFixedLen = 236;          // op .. file
inline constexpr uint16_t kMinLen = kFixedLen + 4;  // plus the magic cookie
inline constexpr uint16_t kBootpMinLen = 300;       // RFC 1542 2.1: pad replies to this
inline constexpr uint16_t kDefaultMaxMsg = 576;     // RFC 2131: what every client must accept
inline constexpr uint16_t kFlagBroadcast = 0x8000;

enum MsgType : uint8_t {
  kDiscover = 1,
  kOffer = 2,
  kRequest = 3,
  kDecline = 4,
  kAck = 5,
  kNak = 6,
  kRelease = 7,
  kInform = 8,
};

namespace opt {
inline constexpr uint8_t kPad = 0;
inline constexpr uint8_t kSubnetMask = 1;
inline constexpr uint8_t kRouter = 3;
inline constexpr uint8_t kDns = 6;
inline constexpr uint8_t kHostName = 12;
inline constexpr uint8_t kDomainName = 15;
inline constexpr uint8_t kBroadcast = 28;
inline constexpr uint8_t kRequestedIp = 50;
inline constexpr uint8_t kLeaseTime = 51;
inline constexpr uint8_t kOverload = 52;
inline constexpr uint8_t kMsgType = 53;
inline constexpr uint8_t kServerId = 54;
inline constexpr uint8_t kParamList = 55;
inline constexpr uint8_t kMessage = 56;
inline constexpr uint8_t kMaxMsgSize = 57;
inline constexpr uint8_t kT1 = 58;
inline constexpr uint8_t kT2 = 59;
inline constexpr uint8_t kClientId = 61;
inline constexpr uint8_t kRapidCommit = 80;
inline constexpr uint8_t kRelayInfo = 82;
inline constexpr uint8_t kClasslessRoutes = 121;
inline constexpr uint8_t kEnd = 255;
}  // namespace opt

// Byte offsets of the BOOTP fixed fields.
namespace off {
inline constexpr uint16_t kOp = 0;
inline constexpr uint16_t kHtype = 1;
inline constexpr uint16_t kHlen = 2;
inline constexpr uint16_t kHops = 3;
inline constexpr uint16_t kXid = 4;
inline constexpr uint16_t kSecs = 8;
inline constexpr uint16_t kFlags = 10;
inline constexpr uint16_t kCiaddr = 12;
inline constexpr uint16_t kYiaddr = 16;
inline constexpr uint16_t kSiaddr = 20;
inline constexpr uint16_t kGiaddr = 24;
inline constexpr uint16_t kChaddr = 28;
inline constexpr uint16_t kSname = 44;
inline constexpr uint16_t kFile = 108;
inline constexpr uint16_t kOptions = 240;
}  // namespace off

inline uint32_t rd32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
inline uint16_t rd16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
inline void wr32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}
inline void wr16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

// A variable-length option value, copied out of the packet (the reply overwrites it).
struct Blob {
  uint8_t len = 0;
  bool present = false;
  uint8_t b[255];
  std::span<const uint8_t> view() const { return {b, len}; }
};

enum class ParseError : uint8_t {
  kOk = 0,
  kShort,        // shorter than the fixed header and magic cookie
  kNotRequest,   // op is not BOOTREQUEST
  kBadHardware,  // hlen > 16
  kBadMagic,     // no DHCP magic cookie (plain BOOTP is not served)
  kBadOptions,   // an option runs past its area, or no message type
  kBadType,      // message type not one a server receives
};

struct Request {
  uint8_t type = 0;
  uint8_t htype = 0;
  uint8_t hlen = 0;
  uint8_t hops = 0;
  uint32_t xid = 0;  // as on the wire (echoed, never interpreted)
  uint16_t flags = 0;
  uint32_t ciaddr = 0;
  uint32_t giaddr = 0;
  uint8_t chaddr[16] = {};
  uint32_t requested_ip = 0;  // option 50, 0 when absent
  uint32_t server_id = 0;     // option 54, 0 when absent
  uint32_t lease_time = 0;    // option 51 (client's wish), 0 when absent
  uint16_t max_msg = 0;       // option 57, 0 when absent
  bool rapid_commit = false;  // option 80 present
  Blob client_id;             // option 61
  Blob params;                // option 55
  Blob relay_info;            // option 82, echoed unchanged (RFC 3046 2.2)
  Blob hostname;              // option 12 (shown in `show dhcp leases`)
};

// Parses `msg` (the UDP payload). On kOk, `r` holds every field the server uses.
ParseError parse_request(std::span<const uint8_t> msg, Request& r);

// Appends options to a reply; refuses (returns false) what would not fit in `cap` bytes while
// keeping room for the end option.
class OptionWriter {
 public:
  OptionWriter(uint8_t* p, uint16_t cap) : p_(p), cap_(cap) {}
  bool put(uint8_t code, const void* data, uint8_t len) {
    if (len_ + 2u + len + 1u > cap_) return false;
    p_[len_] = code;
    p_[len_ + 1] = len;
    std::memcpy(p_ + len_ + 2, data, len);
    len_ = static_cast<uint16_t>(len_ + 2 + len);
    return true;
  }
  bool put8(uint8_t code, uint8_t v) { return put(code, &v, 1); }
  bool put32(uint8_t code, uint32_t v) {
    uint8_t b[4];
    wr32(b, v);
    return put(code, b, 4);
  }
  // A pre-encoded run of options (code, len, value ...), all or nothing.
  bool raw(const uint8_t* data, uint16_t len) {
    if (len_ + len + 1u > cap_) return false;
    std::memcpy(p_ + len_, data, len);
    len_ = static_cast<uint16_t>(len_ + len);
    return true;
  }
  uint16_t end() {
    p_[len_++] = opt::kEnd;
    return len_;
  }
  uint16_t len() const { return len_; }

 private:
  uint8_t* p_;
  uint16_t cap_;
  uint16_t len_ = 0;
};

}  // namespace nf::dhcp
