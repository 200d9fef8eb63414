#include "nf/dhcp/wire.h"

namespace nf::dhcp {
namespace {

// Appends an option instance to a blob (RFC 3396 concatenation); excess is cut at 255.
void append(Blob& b, const uint8_t* v, uint8_t len) {
  const unsigned room = 255u - b.len;
  const unsigned n = len < room ? len : room;
  std::memcpy(b.b + b.len, v, n);
  b.len = static_cast<uint8_t>(b.len + n);
  b.present = true;
}

// Walks one option area. Returns false when an option runs past the end. `overload` receives
// option 52's value if seen.
bool walk(const uint8_t* p, size_t len, Request& r, uint8_t& overload, bool& have_type) {
  size_t i = 0;
  while (i < len) {
    const uint8_t code = p[i];
    if (code == opt::kPad) {
      ++i;
      continue;
    }
    if (code == opt::kEnd) return true;
    if (i + 1 >= len) return false;
    const uint8_t l = p[i + 1];
    if (i + 2 + l > len) return false;
    const uint8_t* v = p + i + 2;
    switch (code) {
      case opt::kMsgType:
        if (l == 1 && !have_type) {
          r.type = v[0];
          have_type = true;
        }
        break;
      case opt::kRequestedIp:
        if (l == 4 && !r.requested_ip) r.requested_ip = rd32(v);
        break;
      case opt::kServerId:
        if (l == 4 && !r.server_id) r.server_id = rd32(v);
        break;
      case opt::kLeaseTime:
        if (l == 4 && !r.lease_time) r.lease_time = rd32(v);
        break;
      case opt::kMaxMsgSize:
        if (l == 2 && !r.max_msg) r.max_msg = rd16(v);
        break;
      case opt::kOverload:
        if (l == 1) overload = v[0];
        break;
      case opt::kRapidCommit:
        r.rapid_commit = true;
        break;
      case opt::kClientId:
        append(r.client_id, v, l);
        break;
      case opt::kParamList:
        append(r.params, v, l);
        break;
      case opt::kRelayInfo:
        append(r.relay_info, v, l);
        break;
      case opt::kHostName:
        append(r.hostname, v, l);
        break;
      default:
        break;
    }
    i += 2u + l;
  }
  // An area may end without the end option when it is exactly full; RFC 2131 wants the end
  // option, but real clients (and relays that append option 82) are sloppy about padding.
  return true;
}

}  // namespace

ParseError parse_request(std::span<const uint8_t> msg, Request& r) {
  if (msg.size() < kMinLen) return ParseError::kShort;
  const uint8_t* p = msg.data();
  if (p[off::kOp] != 1) return ParseError::kNotRequest;
  if (p[off::kHlen] > 16) return ParseError::kBadHardware;
  if (rd32(p + off::kOptions - 4) != kMagic) return ParseError::kBadMagic;
  r.htype = p[off::kHtype];
  r.hlen = p[off::kHlen];
  r.hops = p[off::kHops];
  std::memcpy(&r.xid, p + off::kXid, 4);
  r.flags = rd16(p + off::kFlags);
  r.ciaddr = rd32(p + off::kCiaddr);
  r.giaddr = rd32(p + off::kGiaddr);
  std::memcpy(r.chaddr, p + off::kChaddr, 16);
  r.type = 0;
  r.requested_ip = r.server_id = r.lease_time = 0;
  r.max_msg = 0;
  r.rapid_commit = false;
  r.client_id.len = r.params.len = r.relay_info.len = r.hostname.len = 0;
  r.client_id.present = r.params.present = r.relay_info.present = r.hostname.present = false;

  uint8_t overload = 0;
  bool have_type = false;
  if (!walk(p + off::kOptions, msg.size() - off::kOptions, r, overload, have_type))
    return ParseError::kBadOptions;
  // RFC 2132 9.3: the file field first, then sname. An overload option inside them is ignored.
  uint8_t ignored = 0;
  if ((overload & 1) && !walk(p + off::kFile, 128, r, ignored, have_type))
    return ParseError::kBadOptions;
  if ((overload & 2) && !walk(p + off::kSname, 64, r, ignored, have_type))
    return ParseError::kBadOptions;
  if (!have_type) return ParseError::kBadOptions;
  switch (r.type) {
    case kDiscover:
    case kRequest:
    case kDecline:
    case kRelease:
    case kInform:
      return ParseError::kOk;
    default:
      return ParseError::kBadType;
  }
}

}  // namespace nf::dhcp
