// Helpers shared by the configuration readers (config/loader.cc, config/dhcp_loader.cc):
// located errors and groups that report settings nobody asked for.
#pragma once

#include <libconfig.h++>

#include <set>
#include <string>
#include <vector>

#include "config/config.h"

namespace nf::cfg {

using libconfig::Setting;

inline const char* type_name(Setting::Type t) {
  switch (t) {
    case Setting::TypeInt:
    case Setting::TypeInt64:
      return "an integer";
    case Setting::TypeFloat:
      return "a number";
    case Setting::TypeString:
      return "a string";
    case Setting::TypeBoolean:
      return "a boolean";
    case Setting::TypeGroup:
      return "a group { ... }";
    case Setting::TypeArray:
      return "an array [ ... ]";
    case Setting::TypeList:
      return "a list ( ... )";
    default:
      return "nothing";
  }
}

inline long long as_int(const Setting& s) {
  return s.getType() == Setting::TypeInt64 ? static_cast<long long>(s)
                                           : static_cast<long long>(static_cast<int>(s));
}

// Collects located errors for one load.
class Diag {
 public:
  explicit Diag(std::string file) : file_(std::move(file)) {}
  void error(const Setting& s, const std::string& path, std::string msg) {
    errs_.push_back({file_, static_cast<int>(s.getSourceLine()), path, std::move(msg)});
  }
  std::vector<ConfigError>& errors() { return errs_; }

 private:
  std::string file_;
  std::vector<ConfigError> errs_;
};

inline std::string join(const std::string& base, const std::string& name) {
  return base.empty() ? name : base + "." + name;
}
inline std::string index(const std::string& base, int i) {
  return base + "[" + std::to_string(i) + "]";
}

// Reads the members of one group and reports any member it was not asked for, so a typo in a
// setting name is an error instead of a silently ignored line.
class Group {
 public:
  Group(Diag& d, const Setting& s, std::string path) : d_(d), s_(s), path_(std::move(path)) {}
  ~Group() {
    for (int i = 0; i < s_.getLength(); ++i) {
      const Setting& c = s_[i];
      const char* n = c.getName();
      if (n && !seen_.count(n)) d_.error(c, join(path_, n), "unknown setting");
    }
  }
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  const Setting* find(const char* name, Setting::Type want, bool required) {
    seen_.insert(name);
    if (!s_.exists(name)) {
      if (required) d_.error(s_, join(path_, name), "required setting is missing");
      return nullptr;
    }
    const Setting& c = s_[name];
    bool ok =
        c.getType() == want || (want == Setting::TypeInt && c.getType() == Setting::TypeInt64);
    if (!ok) {
      d_.error(c, join(path_, name),
               std::string("must be ") + type_name(want) + ", not " + type_name(c.getType()));
      return nullptr;
    }
    return &c;
  }

  void u32(const char* name, uint32_t& out, uint64_t lo, uint64_t hi, bool required = false) {
    if (const Setting* c = find(name, Setting::TypeInt, required)) {
      long long v = as_int(*c);
      if (v < static_cast<long long>(lo) || v > static_cast<long long>(hi)) {
        d_.error(*c, join(path_, name),
                 "value " + std::to_string(v) + " out of range [" + std::to_string(lo) + ", " +
                     std::to_string(hi) + "]");
        return;
      }
      out = static_cast<uint32_t>(v);
    }
  }
  void u16(const char* name, uint16_t& out, uint32_t lo, uint32_t hi) {
    uint32_t v = out;
    u32(name, v, lo, hi);
    out = static_cast<uint16_t>(v);
  }
  bool str(const char* name, std::string& out, bool required = false) {
    if (const Setting* c = find(name, Setting::TypeString, required)) {
      out = static_cast<const char*>(*c);
      return true;
    }
    return false;
  }
  bool boolean(const char* name, bool& out) {
    if (const Setting* c = find(name, Setting::TypeBoolean, false)) {
      out = *c;
      return true;
    }
    return false;
  }
  // An array of strings; calls fn(element setting, path, value) for each.
  template <typename Fn>
  void strings(const char* name, bool required, Fn fn) {
    if (const Setting* c = find(name, Setting::TypeArray, required)) {
      for (int i = 0; i < c->getLength(); ++i) {
        const Setting& e = (*c)[i];
        if (e.getType() != Setting::TypeString) {
          d_.error(e, index(join(path_, name), i), "must be a string");
          continue;
        }
        fn(e, index(join(path_, name), i), std::string(static_cast<const char*>(e)));
      }
    }
  }
  const std::string& path() const { return path_; }
  const Setting& setting() const { return s_; }

 private:
  Diag& d_;
  const Setting& s_;
  std::string path_;
  std::set<std::string> seen_;
};

// A list of groups: ( { ... }, { ... } ).
template <typename Fn>
void each_group(Diag& d, Group& parent, const char* name, Fn fn) {
  const Setting* l = parent.find(name, Setting::TypeList, false);
  if (!l) return;
  for (int i = 0; i < l->getLength(); ++i) {
    const Setting& e = (*l)[i];
    std::string p = index(join(parent.path(), name), i);
    if (e.getType() != Setting::TypeGroup) {
      d.error(e, p, std::string("must be a group { ... }, not ") + type_name(e.getType()));
      continue;
    }
    Group g(d, e, p);
    fn(g, i);
  }
}

// The `dhcp` group (config/dhcp_loader.cc). Runs after ports and pipeline are read.
void read_dhcp(Diag& d, Group& root, Config& c);
// The `health`, `exception_path` and `dns` groups (config/dns_loader.cc), in that order: GSLB
// members name health checks.
void read_health(Diag& d, Group& root, Config& c);
void read_exception(Diag& d, Group& root, Config& c);
void read_dns(Diag& d, Group& root, Config& c);
// The `lb`, `nat` and `acl` groups (config/lb_loader.cc), after ports, pipeline and health.
void read_lb(Diag& d, Group& root, Config& c);
void read_nat(Diag& d, Group& root, Config& c);
void read_acl(Diag& d, Group& root, Config& c);

}  // namespace nf::cfg
