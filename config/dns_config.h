// The DNS responder's configuration: the `dns` and `health` groups and the exception path
// (schema in config/REFERENCE.md). Zones are read and compiled while the configuration loads,
// so every zone-file or zone-data error is a configuration error with its file and line, and
// a reload that would break a zone is rejected before anything changes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nf/dns/zone.h"
#include "nf/health/monitor.h"
#include "nf/net/addr.h"

namespace nf {

struct DnsConfig {
  bool enabled = false;          // a `dns` group is present
  std::vector<uint32_t> listen;  // addresses answered on; empty = every interface address
  uint16_t udp_max = 1232;       // largest UDP answer (DNS flag day 2020)
  bool tcp = true;               // DNS over TCP through the exception path (RFC 7766)
  uint32_t tcp_idle_ms = 10000;
  // Response rate limiting, per client prefix and worker (0 = off).
  uint32_t rrl_rate = 200;
  uint32_t rrl_slip = 2;  // every n-th limited answer goes out truncated (TC), 0 = none
  uint8_t rrl_prefix = 24;
  std::vector<Prefix> rrl_exempt;
  std::vector<dns::ZoneSource> zones;
  std::vector<dns::GslbSource> gslb;
  std::vector<dns::GeoSource> geo;
  std::shared_ptr<const dns::View> view;  // compiled from the above
};

struct ExceptionConfig {
  std::string netns = "nf";       // init-only
  std::string interface = "nf0";  // init-only
};

}  // namespace nf
