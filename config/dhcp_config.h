// The DHCP server's configuration (the `dhcp` group; schema in config/REFERENCE.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nf/net/addr.h"

namespace nf {

struct AddrRange {
  uint32_t first = 0;
  uint32_t last = 0;  // inclusive
  bool contains(uint32_t a) const { return a >= first && a <= last; }
  uint64_t size() const { return uint64_t{last} - first + 1; }
};

// One option as it goes on the wire: code and encoded value.
struct DhcpOption {
  uint8_t code = 0;
  std::vector<uint8_t> data;
};

struct DhcpReservation {
  std::optional<MacAddr> mac;
  std::vector<uint8_t> client_id;  // option 61 value, as sent (type byte first)
  uint32_t address = 0;
  std::string hostname;  // option 12, when set
};

struct DhcpPool {
  std::string name;  // for messages and `show dhcp`
  int port = -1;     // served to clients on this port directly (index into Config::ports)
  Prefix relay;      // or: served to relays whose giaddr is in this prefix (len > 0)
  Prefix subnet;     // the clients' subnet (mask, broadcast, and what a lease must be in)
  std::vector<AddrRange> ranges;
  std::vector<AddrRange> exclude;
  std::vector<DhcpReservation> reservations;
  uint32_t lease_time = 3600;
  uint32_t min_lease_time = 60;
  uint32_t max_lease_time = 86400;
  // Encoded in the configured order; the reply carries those the client's parameter request
  // list asks for (and always subnet mask and router, RFC 2131 4.3.1 / Windows clients).
  std::vector<DhcpOption> options;
  int line = 0;  // where the pool is defined (messages)
};

struct DhcpConfig {
  bool enabled = false;                          // a `dhcp` group is present
  std::string journal_dir = "/var/lib/nf/dhcp";  // init-only
  bool sync = true;                              // fdatasync before an ACK leaves
  uint32_t max_leases = 65536;                   // per worker lcore; init-only
  uint32_t offer_hold = 30;       // seconds an offered address is kept for its client
  uint32_t decline_hold = 86400;  // seconds a declined address is out of use
  bool rapid_commit = false;      // RFC 4039
  bool authoritative = true;      // NAK requests for addresses we do not hold
  uint32_t client_rate = 10;      // packets per second per client (0: off)
  uint32_t client_burst = 20;
  uint32_t compact_records = 200000;  // journal records between compactions
  std::vector<DhcpPool> pools;
};

}  // namespace nf
