#include "nf/dhcp/record.h"

#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif

namespace nf::dhcp {

uint32_t crc32c(const void* data, size_t len, uint32_t crc) {
  const auto* p = static_cast<const uint8_t*>(data);
  crc = ~crc;
#if defined(__SSE4_2__)
  for (; len >= 8; len -= 8, p += 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    crc = static_cast<uint32_t>(_mm_crc32_u64(crc, v));
  }
  for (; len; --len) crc = _mm_crc32_u8(crc, *p++);
#else
  for (; len; --len) {
    crc ^= *p++;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
  }
#endif
  return ~crc;
}

uint64_t ClientKey::hash() const {
  // FNV-1a folded with a multiply: stable across runs (it decides the owning worker).
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint8_t i = 0; i < len; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
  return h ^ (h >> 29);
}

ClientKey ClientKey::from_id(std::span<const uint8_t> id) {
  ClientKey k;
  if (id.size() <= kMaxKey) {
    k.len = static_cast<uint8_t>(id.size());
    std::memcpy(k.b, id.data(), id.size());
    return k;
  }
  std::memcpy(k.b, id.data(), kMaxKey - 8);
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint8_t c : id) h = (h ^ c) * 0x100000001b3ull;
  std::memcpy(k.b + kMaxKey - 8, &h, 8);
  k.len = kMaxKey;
  return k;
}

ClientKey ClientKey::from_hw(uint8_t htype, const uint8_t* chaddr, uint8_t hlen) {
  // The same layout as the client identifier RFC 2132 9.14 suggests (type, then address), so a
  // client that starts sending option 61 with its MAC keeps its lease.
  ClientKey k;
  if (hlen > 16) hlen = 16;
  k.b[0] = htype;
  std::memcpy(k.b + 1, chaddr, hlen);
  k.len = static_cast<uint8_t>(hlen + 1);
  return k;
}

void LeaseRecord::seal() {
  magic = kMagic;
  crc = 0;
  crc = crc32c(this, sizeof(*this));
}

bool LeaseRecord::valid() const {
  if (magic != kMagic) return false;
  LeaseRecord c = *this;
  c.crc = 0;
  return crc32c(&c, sizeof(c)) == crc;
}

}  // namespace nf::dhcp
