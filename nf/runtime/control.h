// The control socket and its command table.
//
// Protocol: a client connects to the unix socket (mode 0600), writes one command line, reads
// the answer until EOF. The answer's first line is "ok" or "error"; the rest is text for a
// person. Commands are rows of one table (path, arguments, help, handler), matched by unique
// word prefixes ("sh dr" = "show drops"), so the serial-console shell can reuse the table.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nf {

class Management;

struct Command {
  std::string_view path;  // words, e.g. "show drops"
  std::string_view args;  // e.g. "<file>", "[file]"
  std::string_view help;
  std::function<bool(Management&, const std::vector<std::string>& args, std::string& out)> run;
};

std::span<const Command> command_table();
// Runs one command line; false when the command failed or was not understood.
bool dispatch(Management& m, std::string_view line, std::string& out);

class ControlServer {
 public:
  ControlServer() = default;
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;
  std::string listen(const std::string& path);  // "" or an error
  void poll(Management& m);                     // never blocks when no client is waiting

 private:
  int fd_ = -1;
  std::string path_;
};

}  // namespace nf
