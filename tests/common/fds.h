// How many file descriptors the test process has open: tests of code that owns sockets and
// devices compare it before and after, so a leaked descriptor fails the test.
#pragma once

#include <cstddef>
#include <filesystem>

namespace nf::test {

inline int count_fds() {
  int n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++n;
  return ec ? -1 : n;
}

}  // namespace nf::test
