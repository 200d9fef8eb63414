// A lease record: what the journal stores and what the lease tables are rebuilt from.
//
// Records are fixed-size (128 bytes) and self-checking (magic, CRC32C over the whole record),
// so recovery can tell a record cut short by a crash, or damaged on disk, from a good one at
// every 128-byte boundary, and lose nothing but the damaged record.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>

namespace nf::dhcp {

inline constexpr size_t kMaxKey = 48;

// Who a lease belongs to: option 61 when the client sends one (RFC 2131 4.2), else the
// hardware type and address. Identifiers longer than kMaxKey keep their first 40 bytes and a
// 64-bit hash of the whole.
struct ClientKey {
  uint8_t len = 0;
  uint8_t b[kMaxKey] = {};
  uint64_t hash() const;
  bool operator==(const ClientKey& o) const {
    return len == o.len && std::memcmp(b, o.b, len) == 0;
  }
  static ClientKey from_id(std::span<const uint8_t> id);
  static ClientKey from_hw(uint8_t htype, const uint8_t* chaddr, uint8_t hlen);
};

enum class RecType : uint8_t {
  kBind = 1,       // bound until `expire` (an ACK)
  kRelease = 2,    // the client gave it back (or an operator did)
  kDecline = 3,    // in use by someone else: out of service until `expire`
  kSnapshot = 16,  // header of a compacted file: `seq` is the first segment not included
};

struct alignas(8) LeaseRecord {
  uint32_t magic;
  uint32_t crc;
  uint64_t seq;
  RecType type;
  uint8_t htype;
  uint8_t key_len;
  uint8_t host_len;
  uint32_t addr;
  uint8_t mac[6];
  uint8_t pad[2];
  int64_t expire;  // Unix seconds
  uint32_t lease_time;
  uint32_t reserved;
  uint8_t key[kMaxKey];
  char host[32];

  static constexpr uint32_t kMagic = 0x314c464e;  // "NFL1" on disk
  ClientKey client() const {
    ClientKey k;
    k.len = key_len <= kMaxKey ? key_len : 0;
    std::memcpy(k.b, key, k.len);
    return k;
  }
  void seal();         // magic and CRC
  bool valid() const;  // magic and CRC match
};
static_assert(sizeof(LeaseRecord) == 128);
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the journal is little-endian");

uint32_t crc32c(const void* data, size_t len, uint32_t crc = 0);

}  // namespace nf::dhcp
