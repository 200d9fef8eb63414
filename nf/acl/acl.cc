#include "nf/acl/acl.h"

#include <rte_acl.h>
#include <rte_errno.h>
#include <rte_memory.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace nf::acl {

namespace {

// Field order is the trie's byte order: protocol first (rte_acl wants a 1-byte first field),
// then the 4-byte groups. Only port rules constrain the fragment group; in a trie without port
// rules rte_acl drops it and the port group. Fragment before ports rather than after: on 1000
// random rules that order kept one trie where the other needed two (the walk is per trie, so
// two tries nearly double the classify cost) and usually used less memory.
enum Field : uint8_t { kFProto, kFSrc, kFDst, kFSport, kFDport, kFFrag, kNumFields };

RTE_ACL_RULE_DEF(AclRule, kNumFields);

// Bits of IPv4 header bytes 4..7 (identification, flags, fragment offset) read as one
// big-endian word: the fragment offset alone.
constexpr uint32_t kFragOffsetMask = 0x1fff;

// rte_acl_build with max_size 0 splits the rules into a new trie whenever one rule adds more
// than 2048 nodes, which keeps memory low but may give several tries, and every packet walks
// every trie. With a size limit it starts from 16384 nodes (fewer, larger tries) and halves on
// -ERANGE. So build() first asks for at most this much, and only a rule set that cannot fit
// even when split as far as rte_acl goes is rebuilt without a limit. On 1000 random rules that
// turned two tries (96 cycles/packet, 3.8 MiB) into one (52 cycles, 10.9 MiB).
constexpr size_t kPreferredTrieBytes = size_t{16} << 20;

rte_acl_config make_config() {
  rte_acl_config c{};
  c.num_categories = 1;
  c.num_fields = kNumFields;
  c.defs[0] = {RTE_ACL_FIELD_TYPE_BITMASK, sizeof(uint8_t), kFProto, 0, 9};
  c.defs[1] = {RTE_ACL_FIELD_TYPE_MASK, sizeof(uint32_t), kFSrc, 1, 12};
  c.defs[2] = {RTE_ACL_FIELD_TYPE_MASK, sizeof(uint32_t), kFDst, 2, 16};
  c.defs[3] = {RTE_ACL_FIELD_TYPE_BITMASK, sizeof(uint32_t), kFFrag, 3, 4};
  c.defs[4] = {RTE_ACL_FIELD_TYPE_RANGE, sizeof(uint16_t), kFSport, 4, 20};
  c.defs[5] = {RTE_ACL_FIELD_TYPE_RANGE, sizeof(uint16_t), kFDport, 4, 22};
  return c;
}

std::string describe(const Rule& r, size_t i) {
  std::string s = "acl rule #" + std::to_string(i + 1);
  if (!r.name.empty()) s += " (" + r.name + ")";
  return s;
}

// Empty when valid.
std::string check(const Rule& r) {
  for (const auto& [what, p] : {std::pair{"source", &r.src}, std::pair{"destination", &r.dst}}) {
    if (p->len > 32)
      return std::string(what) + " prefix length " + std::to_string(p->len) + " is over 32";
    if ((p->addr & ~p->mask()) != 0)
      return std::string(what) + " " + format_ipv4(p->addr) + "/" + std::to_string(p->len) +
             " has host bits set";
  }
  if (r.proto < kAnyProto || r.proto > 255)
    return "protocol " + std::to_string(r.proto) + " is not 0..255 (or any)";
  for (const auto& [what, pr] :
       {std::pair{"source", &r.sport}, std::pair{"destination", &r.dport}}) {
    if (pr->lo > pr->hi)
      return std::string(what) + " port range " + std::to_string(pr->lo) + "-" +
             std::to_string(pr->hi) + " is empty (low > high)";
  }
  if (r.has_ports() && r.proto != kAnyProto && r.proto != kProtoTcp && r.proto != kProtoUdp)
    return "ports need protocol tcp, udp or any, not " + std::to_string(r.proto);
  return {};
}

AclRule to_acl(const Rule& r, uint8_t proto_value, uint8_t proto_mask, uint32_t priority,
               uint32_t userdata) {
  AclRule a;
  std::memset(&a, 0, sizeof(a));
  a.data.category_mask = 1;
  a.data.priority = static_cast<int32_t>(priority);
  a.data.userdata = userdata;
  a.field[kFProto].value.u8 = proto_value;
  a.field[kFProto].mask_range.u8 = proto_mask;
  a.field[kFSrc].value.u32 = r.src.addr;
  a.field[kFSrc].mask_range.u32 = r.src.len;
  a.field[kFDst].value.u32 = r.dst.addr;
  a.field[kFDst].mask_range.u32 = r.dst.len;
  a.field[kFSport].value.u16 = r.sport.lo;
  a.field[kFSport].mask_range.u16 = r.sport.hi;
  a.field[kFDport].value.u16 = r.dport.lo;
  a.field[kFDport].mask_range.u16 = r.dport.hi;
  // Port rules need fragment offset 0; port-less rules ignore the field (mask 0).
  a.field[kFFrag].value.u32 = 0;
  a.field[kFFrag].mask_range.u32 = r.has_ports() ? kFragOffsetMask : 0;
  return a;
}

struct AlgName {
  enum rte_acl_classify_alg alg;
  const char* name;
};
// DPDK's own preference order (acl_get_best_alg in lib/acl/rte_acl.c).
constexpr AlgName kAlgs[] = {
    {RTE_ACL_CLASSIFY_AVX512X32, "avx512x32"}, {RTE_ACL_CLASSIFY_AVX512X16, "avx512x16"},
    {RTE_ACL_CLASSIFY_AVX2, "avx2"},           {RTE_ACL_CLASSIFY_SSE, "sse"},
    {RTE_ACL_CLASSIFY_NEON, "neon"},           {RTE_ACL_CLASSIFY_ALTIVEC, "altivec"},
    {RTE_ACL_CLASSIFY_SCALAR, "scalar"},
};

std::atomic<uint64_t> g_next_id{0};

}  // namespace

std::shared_ptr<const Classifier> Classifier::build(std::span<const Rule> rules, std::string* error,
                                                    Action default_action) {
  auto fail = [&](std::string msg) {
    if (error) *error = std::move(msg);
    return nullptr;
  };
  if (rules.size() > kMaxRules)
    return fail("acl has " + std::to_string(rules.size()) + " rules, at most " +
                std::to_string(kMaxRules) + " are supported");
  std::vector<AclRule> acl;
  acl.reserve(rules.size() * 2);
  const auto n = static_cast<uint32_t>(rules.size());
  for (uint32_t i = 0; i < n; ++i) {
    const Rule& r = rules[i];
    if (std::string why = check(r); !why.empty()) return fail(describe(r, i) + ": " + why);
    const uint32_t priority = n - i;  // the first rule has the highest
    if (r.proto != kAnyProto) {
      acl.push_back(to_acl(r, static_cast<uint8_t>(r.proto), 0xff, priority, i + 1));
    } else if (r.has_ports()) {
      acl.push_back(to_acl(r, kProtoTcp, 0xff, priority, i + 1));
      acl.push_back(to_acl(r, kProtoUdp, 0xff, priority, i + 1));
    } else {
      acl.push_back(to_acl(r, 0, 0, priority, i + 1));
    }
  }

  std::shared_ptr<Classifier> c(new Classifier());
  c->rules_.assign(rules.begin(), rules.end());
  c->actions_.reserve(rules.size() + 1);
  c->actions_.push_back(default_action);
  for (const Rule& r : rules) c->actions_.push_back(r.action);
  if (acl.empty()) return c;

  c->name_ = "nfacl" + std::to_string(g_next_id.fetch_add(1, std::memory_order_relaxed));
  rte_acl_param param{};
  param.name = c->name_.c_str();
  param.socket_id = SOCKET_ID_ANY;
  param.rule_size = RTE_ACL_RULE_SZ(kNumFields);
  param.max_rule_num = static_cast<uint32_t>(acl.size());
  c->ctx_ = rte_acl_create(&param);
  if (!c->ctx_) return fail("rte_acl_create(" + c->name_ + "): " + rte_strerror(rte_errno));
  if (int rc = rte_acl_add_rules(c->ctx_, reinterpret_cast<const rte_acl_rule*>(acl.data()),
                                 static_cast<uint32_t>(acl.size()));
      rc != 0)
    return fail("rte_acl_add_rules(" + c->name_ + "): " + rte_strerror(-rc));
  rte_acl_config cfg = make_config();
  cfg.max_size = kPreferredTrieBytes;
  int rc = rte_acl_build(c->ctx_, &cfg);
  if (rc == -ERANGE) {
    cfg.max_size = 0;
    rc = rte_acl_build(c->ctx_, &cfg);
  }
  if (rc != 0)
    return fail("rte_acl_build(" + c->name_ + ", " + std::to_string(acl.size()) +
                " rules): " + rte_strerror(-rc));
  for (const AlgName& a : kAlgs) {
    if (rte_acl_set_ctx_classify(c->ctx_, a.alg) == 0) {
      c->algorithm_ = a.name;
      break;
    }
  }
  return c;
}

Classifier::~Classifier() {
  rte_acl_free(ctx_);
}

void Classifier::classify(const uint8_t* const* l3_headers, uint32_t n,
                          uint32_t* rule_index_out) const {
  if (!ctx_) [[unlikely]] {
    std::memset(rule_index_out, 0, n * sizeof(uint32_t));
    return;
  }
  // rte_acl_classify only reads through the pointer array; its parameter lacks the const.
  rte_acl_classify(ctx_, const_cast<const uint8_t**>(l3_headers), rule_index_out, n, 1);
}

}  // namespace nf::acl
