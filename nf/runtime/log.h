// Logging for the control path (never called per packet). Lines go to stderr with a level tag,
// which is what systemd's journal and the lab's log file keep.
#pragma once

#include <cstdarg>
#include <cstdio>
#include <ctime>

namespace nf {

[[gnu::format(printf, 2, 3), gnu::cold]] inline void log_at(const char* level, const char* fmt,
                                                            ...) {
  char ts[32];
  std::time_t t = std::time(nullptr);
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", std::gmtime(&t));
  std::fprintf(stderr, "%s nf[%s] ", ts, level);
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fputc('\n', stderr);
  std::fflush(stderr);
}

#define log_info(...) ::nf::log_at("info", __VA_ARGS__)
#define log_warn(...) ::nf::log_at("warn", __VA_ARGS__)
#define log_error(...) ::nf::log_at("error", __VA_ARGS__)

}  // namespace nf
