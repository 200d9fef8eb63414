// nfctl: the command-line client of nf's control socket.
//
//   nfctl [-s SOCKET] COMMAND...     e.g. nfctl show drops; nfctl reload /etc/nf/nf.conf
//
// Exit status: 0 when nf answered "ok", 1 when it answered "error", 2 when it could not be
// reached. `nfctl help` lists the commands.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
  std::string sock = "/run/nf/nf.sock";
  if (const char* e = std::getenv("NF_SOCKET")) sock = e;
  int i = 1;
  if (i + 1 < argc && std::strcmp(argv[i], "-s") == 0) {
    sock = argv[i + 1];
    i += 2;
  }
  std::string line;
  // nf runs elsewhere: a file named to `check` or `reload` is resolved here, from the caller's
  // working directory.
  const bool takes_file =
      i < argc && (std::strcmp(argv[i], "check") == 0 || std::strcmp(argv[i], "reload") == 0);
  for (int first = i; i < argc; ++i) {
    std::string a = argv[i];
    if (takes_file && i > first) {
      char real[PATH_MAX];
      if (realpath(argv[i], real)) a = real;
    }
    if (!line.empty()) line += ' ';
    line += a;
  }
  if (line.empty()) line = "help";

  std::signal(SIGPIPE, SIG_IGN);  // a closed connection is reported, not fatal
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (sock.size() >= sizeof a.sun_path) {
    std::cerr << "nfctl: socket path too long\n";
    return 2;
  }
  std::memcpy(a.sun_path, sock.c_str(), sock.size() + 1);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::cerr << "nfctl: cannot reach nf at " << sock << ": " << std::strerror(errno)
              << " (is nf running? try: tests/lab/lab status)\n";
    return 2;
  }
  line += "\n";
  if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    std::cerr << "nfctl: nf closed the connection before taking the command: "
              << std::strerror(errno) << "\n";
    return 2;
  }
  std::string reply;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) reply.append(buf, static_cast<size_t>(n));
  close(fd);
  size_t nl = reply.find('\n');
  std::string status = reply.substr(0, nl);
  std::string body = nl == std::string::npos ? "" : reply.substr(nl + 1);
  if (status == "ok") {
    std::cout << body;
    return 0;
  }
  std::cerr << body;
  return status == "error" ? 1 : 2;
}
