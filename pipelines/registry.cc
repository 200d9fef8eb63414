// The built-in stages, by the name the configuration's `pipeline` list uses. Later network
// functions (dhcp, gslb_dns, l4_lb, l7_http) add one line each.
#include <array>

#include "nf/core/stage.h"
#include "pipelines/acl/acl_stage.h"
#include "pipelines/dhcp/dhcp_stage.h"
#include "pipelines/dns/dns_stage.h"
#include "pipelines/ip4/forward_stage.h"
#include "pipelines/ip4/input_stage.h"
#include "pipelines/lb/lb_stage.h"
#include "pipelines/nat/nat_stage.h"

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
std::unique_ptr<Stage> make_acl(uint16_t worker, const StageEnv& /*env*/) {
  return std::make_unique<acl::AclStage>(false, worker);
}
std::unique_ptr<Stage> make_acl_out(uint16_t worker, const StageEnv& /*env*/) {
  return std::make_unique<acl::AclStage>(true, worker);
}
std::unique_ptr<Stage> make_lb(uint16_t worker, const StageEnv& env) {
  return std::make_unique<lb::LbStage>(worker, env);
}
std::unique_ptr<Stage> make_nat(uint16_t worker, const StageEnv& env) {
  return std::make_unique<nat::NatStage>(worker, env);
}

const std::array<StageDescriptor, 8> kStages = {{
    {"input", ip4::InputStage::kDropNames, &make<ip4::InputStage>},
    {"acl", acl::AclStage::kDropNames, &make_acl},
    {"dhcp", dhcp::DhcpStage::kDropNames, &make_dhcp},
    {"dns", dns::DnsStage::kDropNames, &make_dns},
    {"lb", lb::LbStage::kDropNames, &make_lb},
    {"nat", nat::NatStage::kDropNames, &make_nat},
    {"acl_out", acl::AclStage::kDropNames, &make_acl_out},
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
