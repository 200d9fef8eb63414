// libFuzzer: arbitrary text as a configuration file. load_config() must return either a
// Config or located errors, never crash, hang or throw.
#include <cstdint>
#include <string>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  nf::LoadResult r = nf::load_config("fuzz.conf", &text);
  (void)r;
  return 0;
}
