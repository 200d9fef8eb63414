// Loading configuration text in tests: a config that must be valid.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "config/config.h"

namespace nf::test {

inline Config load_valid(const std::string& text) {
  LoadResult r = load_config("t.conf", &text);
  if (auto* e = std::get_if<std::vector<ConfigError>>(&r)) ADD_FAILURE() << format_errors(*e);
  return std::get<Config>(r);
}

}  // namespace nf::test
