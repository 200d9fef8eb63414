// The built-in stages, by the name the configuration's `pipeline` list uses. Later network
// functions (dhcp, gslb_dns, l4_lb, l7_http) add one line each.
#include <array>

#include "nf/core/stage.h"
#include "pipelines/dhcp/dhcp_stage.h"
#include "pipelines/dns/dns_stage.h"
#include "pipelines/ip4/forward_stage.h"
#include "pipelines/ip4/input_stage.h"
#include "pipelines/lb/lb_stage.h"

namespace nf {
namespace {

template <typename S>
std::unique_ptr<Stage> make(uint16_t /*worker*/, const StageEnv& /*env*/) {
  return std::make_unique<S>();
}

std::unique_ptr<Stage> make_dhcp(uint16_t worker, const StageEnv& env) {
  return std::make_unique<dhcp::DhcpStage>(worker, env);
}
std::unique_ptr<Stage> make_dns(uint16_t worker, const StageEnv& env) {
  return std::make_unique<dns::DnsStage>(worker, env);
}
std::unique_ptr<Stage> make_lb(uint16_t worker, const StageEnv& env) {
  return std::make_unique<lb::LbStage>(worker, env);
}

const std::array<StageDescriptor, 5> kStages = {{
    {"input", ip4::InputStage::kDropNames, &make<ip4::InputStage>},
    {"dhcp", dhcp::DhcpStage::kDropNames, &make_dhcp},
    {"dns", dns::DnsStage::kDropNames, &make_dns},
    {"lb", lb::LbStage::kDropNames, &make_lb},
    {"ip4_forward", ip4::ForwardStage::kDropNames, &make<ip4::ForwardStage>},
}};

}  // namespace

std::span<const StageDescriptor> stage_registry() {
  return kStages;
}

const StageDescriptor* find_stage(std::string_view name) {
  for (const auto& s : kStages)
    if (s.name == name) return &s;
  return nullptr;
}

}  // namespace nf
