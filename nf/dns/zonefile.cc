#include "nf/dns/zonefile.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <exception>
#include <system_error>
#include <utility>

namespace nf::dns {
namespace {

constexpr size_t kMaxCharString = 255;  // RFC 1035 3.3: <character-string> length octet
constexpr size_t kMaxRdata = 0xffff;
constexpr size_t kMaxQuoted = 80;  // of a token in an error message

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_alnum(uint8_t c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// A token for an error message: quoted, shortened, with unprintable bytes as \DDD so that a
// hostile file cannot put control characters into the logs.
std::string quote(std::string_view s) {
  std::string q = "\"";
  for (size_t i = 0; i < s.size() && i < kMaxQuoted; ++i) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x20 || c > 0x7e) {
      q += '\\';
      q += static_cast<char>('0' + c / 100);
      q += static_cast<char>('0' + c / 10 % 10);
      q += static_cast<char>('0' + c % 10);
    } else {
      q += static_cast<char>(c);
    }
  }
  if (s.size() > kMaxQuoted) q += "...";
  q += '"';
  return q;
}

std::string upper(std::string_view s) {
  std::string u(s);
  for (char& c : u) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
  }
  return u;
}

std::optional<uint32_t> parse_u32(std::string_view s) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  uint64_t v = 0;
  for (const char c : s) {
    if (!is_digit(c)) return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > 0xffffffffu) return std::nullopt;
  return static_cast<uint32_t>(v);
}

// A <character-string>'s text (quotes already gone) with \X and \DDD decoded.
bool unescape(std::string_view s, std::vector<uint8_t>& out) {
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] != '\\') {
      out.push_back(static_cast<uint8_t>(s[i++]));
      continue;
    }
    if (i + 1 >= s.size()) return false;
    if (!is_digit(s[i + 1])) {
      out.push_back(static_cast<uint8_t>(s[i + 1]));
      i += 2;
      continue;
    }
    if (i + 3 >= s.size() || !is_digit(s[i + 2]) || !is_digit(s[i + 3])) return false;
    const int v = (s[i + 1] - '0') * 100 + (s[i + 2] - '0') * 10 + (s[i + 3] - '0');
    if (v > 255) return false;
    out.push_back(static_cast<uint8_t>(v));
    i += 4;
  }
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void put16(std::vector<uint8_t>& d, uint16_t v) {
  d.push_back(static_cast<uint8_t>(v >> 8));
  d.push_back(static_cast<uint8_t>(v));
}

void put32(std::vector<uint8_t>& d, uint32_t v) {
  put16(d, static_cast<uint16_t>(v >> 16));
  put16(d, static_cast<uint16_t>(v));
}

// Whether opaque rdata (the RFC 3597 form) has the layout of its type, for the types this
// reader knows; the engine reads names and lengths out of it later.
bool valid_rdata(uint16_t t, const std::vector<uint8_t>& d) {
  const uint8_t* p = d.data();
  const size_t n = d.size();
  switch (t) {
    case type::A:
      return n == 4;
    case type::AAAA:
      return n == 16;
    case type::NS:
    case type::CNAME:
    case type::PTR:
      return n > 0 && name_wire_length(p, n) == n;
    case type::MX:
      return n > 2 && name_wire_length(p + 2, n - 2) == n - 2;
    case type::SRV:
      return n > 6 && name_wire_length(p + 6, n - 6) == n - 6;
    case type::SOA: {
      const size_t m = name_wire_length(p, n);
      if (m == 0) return false;
      const size_t r = name_wire_length(p + m, n - m);
      return r != 0 && m + r + 20 == n;
    }
    case type::TXT:
    case type::HINFO: {
      size_t i = 0;
      int strings = 0;
      while (i < n) {
        i += 1 + p[i];
        ++strings;
      }
      return i == n && (t == type::TXT ? strings >= 1 : strings == 2);
    }
    case type::CAA: {
      if (n < 2 || p[1] == 0 || size_t{2} + p[1] > n) return false;
      for (size_t i = 2; i < size_t{2} + p[1]; ++i) {
        if (!is_alnum(p[i])) return false;
      }
      return true;
    }
    default:
      return true;
  }
}

}  // namespace

namespace detail {

struct MasterToken {
  std::string_view text;  // without the quotes of a quoted string; escapes not yet decoded
  int line = 0;
  bool quoted = false;
};

struct MasterEntry {
  std::vector<MasterToken> toks;
  int line = 0;              // where the entry starts
  bool blank_owner = false;  // the line starts with whitespace
  std::string err;           // the first lexical error, if any
  int err_line = 0;
};

}  // namespace detail

namespace {

using Token = detail::MasterToken;

// Splits text into entries: one line, or several joined by parentheses. Each call consumes at
// least one character, so it always ends.
class Lexer {
 public:
  Lexer(std::string_view s, int first_line) : s_(s), line_(first_line) {}

  bool next(detail::MasterEntry& e);

 private:
  static void fail(detail::MasterEntry& e, int line, const char* msg) {
    if (e.err.empty()) {
      e.err = msg;
      e.err_line = line;
    }
  }

  std::string_view s_;
  size_t pos_ = 0;
  int line_;
};

bool Lexer::next(detail::MasterEntry& e) {
  e.toks.clear();
  e.err.clear();
  e.err_line = 0;
  const size_t n = s_.size();
  if (pos_ >= n) return false;
  e.line = line_;
  e.blank_owner = s_[pos_] == ' ' || s_[pos_] == '\t';
  bool open = false;  // inside parentheses; RFC 1035 does not nest them
  while (pos_ < n) {
    const char c = s_[pos_];
    if (c == '\n') {
      ++line_;
      ++pos_;
      if (!open) return true;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r') {
      ++pos_;
      continue;
    }
    if (c == ';') {
      while (pos_ < n && s_[pos_] != '\n') ++pos_;
      continue;
    }
    if (c == '(') {
      if (open) fail(e, line_, "nested parenthesis");
      open = true;
      ++pos_;
      continue;
    }
    if (c == ')') {
      if (!open) fail(e, line_, "unbalanced parenthesis");
      open = false;
      ++pos_;
      continue;
    }
    const size_t start = c == '"' ? pos_ + 1 : pos_;
    pos_ = start;
    bool closed = false;
    while (pos_ < n) {
      const char d = s_[pos_];
      if (d == '\n') break;
      if (c == '"') {
        if (d == '"') {
          closed = true;
          break;
        }
      } else if (d == ' ' || d == '\t' || d == '\r' || d == ';' || d == '(' || d == ')' ||
                 d == '"') {
        break;
      }
      pos_ += d == '\\' && pos_ + 1 < n && s_[pos_ + 1] != '\n' ? 2 : 1;
    }
    e.toks.push_back(Token{s_.substr(start, pos_ - start), line_, c == '"'});
    if (c == '"') {
      if (closed) {
        ++pos_;
      } else {
        fail(e, line_, "unterminated quoted string");
      }
    }
  }
  if (open) fail(e, e.line, "unbalanced parenthesis");
  return true;
}

// Reads the rdata tokens of one record into wire form. The first failure wins; its message
// ends with " in <TYPE> record".
class Rdata {
 public:
  Rdata(const std::vector<Token>& toks, size_t i, uint16_t t, const Name& origin, int line)
      : toks_(toks), i_(i), type_(t), origin_(origin), line_(line) {}

  bool parse();
  std::vector<uint8_t>& data() { return d_; }
  const std::string& err() const { return err_; }
  int err_line() const { return err_line_; }

 private:
  bool fail(int line, const std::string& msg) {
    err_ = msg + " in " + type_to_text(type_) + " record";
    err_line_ = line;
    return false;
  }
  bool bad(const Token& t, const char* what) {
    return fail(t.line, std::string("bad ") + what + " " + quote(t.text));
  }
  const Token* take(const char* what) {
    if (i_ >= toks_.size()) {
      fail(toks_.empty() ? line_ : toks_.back().line, std::string("missing ") + what);
      return nullptr;
    }
    return &toks_[i_++];
  }
  bool name(const char* what);
  bool u8(const char* what);
  bool u16(const char* what);
  bool interval(const char* what);
  bool address(int family, const char* what);
  bool char_string(const char* what);
  bool caa();
  bool generic();

  const std::vector<Token>& toks_;
  size_t i_;
  uint16_t type_;
  const Name& origin_;
  int line_;
  std::vector<uint8_t> d_;
  std::string err_;
  int err_line_ = 0;
};

bool Rdata::name(const char* what) {
  const Token* t = take(what);
  if (t == nullptr) return false;
  Name n;
  std::string e;
  if (!parse_name(t->text, origin_, n, e)) {
    return fail(t->line, std::string("bad ") + what + " " + quote(t->text) + " (" + e + ")");
  }
  d_.insert(d_.end(), n.begin(), n.end());
  return true;
}

bool Rdata::u8(const char* what) {
  const Token* t = take(what);
  if (t == nullptr) return false;
  const auto v = parse_u32(t->text);
  if (!v || *v > 0xff) return bad(*t, what);
  d_.push_back(static_cast<uint8_t>(*v));
  return true;
}

bool Rdata::u16(const char* what) {
  const Token* t = take(what);
  if (t == nullptr) return false;
  const auto v = parse_u32(t->text);
  if (!v || *v > 0xffff) return bad(*t, what);
  put16(d_, static_cast<uint16_t>(*v));
  return true;
}

bool Rdata::interval(const char* what) {
  const Token* t = take(what);
  if (t == nullptr) return false;
  const auto v = parse_ttl(t->text);
  if (!v) return bad(*t, what);
  put32(d_, *v);
  return true;
}

bool Rdata::address(int family, const char* what) {
  const Token* t = take(what);
  if (t == nullptr) return false;
  const std::string s(t->text);  // inet_pton wants a terminated string
  uint8_t buf[16];
  if (inet_pton(family, s.c_str(), buf) != 1) return bad(*t, what);
  d_.insert(d_.end(), buf, buf + (family == AF_INET ? 4 : 16));
  return true;
}

bool Rdata::char_string(const char* what) {
  const Token* t = take(what);
  if (t == nullptr) return false;
  const size_t at = d_.size();
  d_.push_back(0);
  if (!unescape(t->text, d_)) return fail(t->line, std::string("bad escape in ") + quote(t->text));
  const size_t len = d_.size() - at - 1;
  if (len > kMaxCharString) {
    return fail(t->line, "character string longer than 255 bytes " + quote(t->text));
  }
  d_[at] = static_cast<uint8_t>(len);
  return true;
}

// RFC 8659 section 4.1.1: flags, a tag of letters and digits, and the value filling the rest.
bool Rdata::caa() {
  if (!u8("flags")) return false;
  const Token* t = take("tag");
  if (t == nullptr) return false;
  if (t->text.empty() || t->text.size() > kMaxCharString) return bad(*t, "tag");
  for (const char c : t->text) {
    if (!is_alnum(static_cast<uint8_t>(c))) {
      return fail(t->line, "bad tag " + quote(t->text) + " (letters and digits only)");
    }
  }
  d_.push_back(static_cast<uint8_t>(t->text.size()));
  d_.insert(d_.end(), t->text.begin(), t->text.end());
  const Token* v = take("value");
  if (v == nullptr) return false;
  if (!unescape(v->text, d_)) return fail(v->line, "bad escape in " + quote(v->text));
  return true;
}

// RFC 3597 section 5: \# <length> <hex words>.
bool Rdata::generic() {
  ++i_;  // the \# itself
  const Token* l = take("RFC 3597 length");
  if (l == nullptr) return false;
  const auto len = parse_u32(l->text);
  if (!len || *len > kMaxRdata) return bad(*l, "RFC 3597 length");
  while (i_ < toks_.size()) {
    const Token& t = toks_[i_++];
    if (t.quoted || t.text.size() % 2 != 0) return bad(t, "RFC 3597 hex data");
    for (size_t k = 0; k < t.text.size(); k += 2) {
      const int hi = hex_value(t.text[k]);
      const int lo = hex_value(t.text[k + 1]);
      if (hi < 0 || lo < 0) return bad(t, "RFC 3597 hex data");
      d_.push_back(static_cast<uint8_t>(hi << 4 | lo));
    }
    if (d_.size() > kMaxRdata) break;  // reported below
  }
  if (d_.size() != *len) {
    return fail(l->line, "RFC 3597 data is " + std::to_string(d_.size()) +
                             " bytes but its length says " + std::to_string(*len));
  }
  if (!valid_rdata(type_, d_)) return fail(line_, "RFC 3597 data is not valid rdata");
  return true;
}

bool Rdata::parse() {
  if (i_ < toks_.size() && !toks_[i_].quoted && toks_[i_].text == "\\#") return generic();
  bool ok = true;
  switch (type_) {
    case type::A:
      ok = address(AF_INET, "IPv4 address");
      break;
    case type::AAAA:
      ok = address(AF_INET6, "IPv6 address");
      break;
    case type::NS:
    case type::CNAME:
    case type::PTR:
      ok = name("name");
      break;
    case type::SOA:
      ok = name("primary server name") && name("mailbox name");
      if (ok) {
        const Token* t = take("serial");
        ok = t != nullptr;
        if (ok) {
          const auto serial = parse_u32(t->text);  // RFC 1982 arithmetic: no unit suffixes
          if (!serial) return bad(*t, "serial");
          put32(d_, *serial);
        }
      }
      ok = ok && interval("refresh") && interval("retry") && interval("expire") &&
           interval("minimum");
      break;
    case type::MX:
      ok = u16("preference") && name("exchange name");
      break;
    case type::TXT:
      ok = char_string("text");
      while (ok && i_ < toks_.size()) ok = char_string("text");
      break;
    case type::SRV:
      ok = u16("priority") && u16("weight") && u16("port") && name("target name");
      break;
    case type::CAA:
      ok = caa();
      break;
    case type::HINFO:
      ok = char_string("CPU") && char_string("OS");
      break;
    default:
      err_ = "unsupported type " + type_to_text(type_) + " (use the RFC 3597 \\# form)";
      err_line_ = line_;
      return false;
  }
  if (!ok) return false;
  if (i_ < toks_.size()) return fail(toks_[i_].line, "trailing data " + quote(toks_[i_].text));
  if (d_.size() > kMaxRdata) return fail(line_, "rdata longer than 65535 bytes");
  return true;
}

// The file named by a $INCLUDE: absolute as given, else next to the including file.
std::string resolve(const std::string& path, const std::string& from_file) {
  if (path.empty() || path[0] == '/') return path;
  const size_t slash = from_file.rfind('/');
  if (slash == std::string::npos) return path;
  return from_file.substr(0, slash + 1) + path;
}

// Reads a regular file whole; a FIFO or device could block or never end.
bool read_file(const std::string& path, std::string& out, std::string& err) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    err = std::error_code(errno, std::generic_category()).message();
    return false;
  }
  struct stat st {};
  bool ok = false;
  if (::fstat(fd, &st) != 0) {
    err = std::error_code(errno, std::generic_category()).message();
  } else if (!S_ISREG(st.st_mode)) {
    err = "not a regular file";
  } else if (static_cast<uint64_t>(st.st_size) > MasterParser::kMaxFileSize) {
    err = "larger than 64 MiB";
  } else {
    out.assign(static_cast<size_t>(st.st_size), '\0');
    size_t got = 0;
    ok = true;
    while (got < out.size()) {
      const ssize_t r = ::read(fd, out.data() + got, out.size() - got);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        err = std::error_code(errno, std::generic_category()).message();
        ok = false;
        break;
      }
      if (r == 0) break;  // shrank meanwhile
      got += static_cast<size_t>(r);
    }
    out.resize(got);
  }
  ::close(fd);
  return ok;
}

}  // namespace

std::optional<uint32_t> parse_ttl(std::string_view text) {
  if (text.empty()) return std::nullopt;
  uint64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    if (!is_digit(text[i])) return std::nullopt;
    uint64_t v = 0;
    while (i < text.size() && is_digit(text[i])) {
      v = v * 10 + static_cast<uint64_t>(text[i] - '0');
      if (v > 0xffffffffu) return std::nullopt;
      ++i;
    }
    uint64_t unit = 1;
    if (i < text.size()) {
      switch (text[i]) {
        case 's':
        case 'S':
          break;
        case 'm':
        case 'M':
          unit = 60;
          break;
        case 'h':
        case 'H':
          unit = 3600;
          break;
        case 'd':
        case 'D':
          unit = 86400;
          break;
        case 'w':
        case 'W':
          unit = 604800;
          break;
        default:
          return std::nullopt;
      }
      ++i;
    }
    total += v * unit;
    if (total > 0xffffffffu) return std::nullopt;
  }
  return static_cast<uint32_t>(total);
}

std::string ZoneError::str() const {
  if (line <= 0) return file + ": " + message;
  return file + ":" + std::to_string(line) + ": " + message;
}

MasterParser::MasterParser(Name origin, uint32_t default_ttl)
    : origin_(std::move(origin)), default_ttl_(default_ttl) {}

void MasterParser::error(const std::string& file, int line, std::string message) {
  if (stopped_) return;
  if (errors_.size() + 1 >= kMaxErrors) {
    message = "too many errors (" + std::to_string(kMaxErrors) + "), stopped reading";
    stopped_ = true;
  }
  errors_.push_back(ZoneError{file, line, std::move(message)});
}

void MasterParser::feed(std::string_view text, const std::string& file, int first_line) {
  try {
    feed_text(text, file, first_line);
  } catch (const std::exception& e) {  // allocation failure: report it, never throw
    error(file, first_line, std::string("internal error: ") + e.what());
  }
}

bool MasterParser::feed_file(const std::string& path) {
  const size_t before = errors_.size();
  try {
    std::string text;
    std::string err;
    if (read_file(path, text, err)) {
      feed_text(text, path, 1);
    } else {
      error(path, 0, "cannot read " + quote(path) + ": " + err);
    }
  } catch (const std::exception& e) {
    error(path, 0, std::string("internal error: ") + e.what());
  }
  return errors_.size() == before;
}

void MasterParser::feed_text(std::string_view text, const std::string& file, int first_line) {
  Lexer lx(text, first_line);
  Entry e;
  while (!stopped_ && lx.next(e)) {
    if (!e.err.empty()) {
      error(file, e.err_line, e.err);
    } else if (!e.toks.empty()) {
      entry(e, file);
    }
  }
}

void MasterParser::include(const std::string& path, const std::string& from_file, int from_line) {
  std::string text;
  std::string err;
  if (!read_file(path, text, err)) {
    error(from_file, from_line, "cannot read " + quote(path) + ": " + err);
    return;
  }
  ++include_depth_;
  feed_text(text, path, 1);
  --include_depth_;
}

void MasterParser::directive(const Entry& e, const std::string& file) {
  const auto& t = e.toks;
  const std::string d = upper(t[0].text);
  if (d == "$ORIGIN") {
    if (t.size() != 2) return error(file, e.line, "$ORIGIN takes one domain name");
    Name n;
    std::string err;
    if (!parse_name(t[1].text, origin_, n, err)) {
      return error(file, t[1].line, "bad $ORIGIN " + quote(t[1].text) + " (" + err + ")");
    }
    origin_ = std::move(n);
  } else if (d == "$TTL") {
    if (t.size() != 2) return error(file, e.line, "$TTL takes one TTL");
    const auto v = parse_ttl(t[1].text);
    if (!v) return error(file, t[1].line, "bad TTL " + quote(t[1].text) + " in $TTL");
    if (*v > kMaxTtl) {
      return error(file, t[1].line,
                   "TTL " + std::to_string(*v) + " is larger than 2147483647 in $TTL");
    }
    dollar_ttl_ = v;
  } else if (d == "$INCLUDE") {
    if (t.size() < 2 || t.size() > 3) {
      return error(file, e.line, "$INCLUDE takes a file name and an optional origin");
    }
    if (!include_enabled_) return error(file, e.line, "$INCLUDE is not allowed here");
    if (include_depth_ >= kMaxIncludeDepth) {
      return error(file, e.line, "$INCLUDE nested more than 8 deep");
    }
    Name origin = origin_;
    if (t.size() == 3) {
      std::string err;
      if (!parse_name(t[2].text, origin_, origin, err)) {
        return error(file, t[2].line, "bad $INCLUDE origin " + quote(t[2].text) + " (" + err + ")");
      }
    }
    // RFC 1035 5.1: the origin and current owner revert once the included file is done.
    Name saved_origin = std::exchange(origin_, std::move(origin));
    Name saved_owner = std::exchange(last_owner_, Name{});
    include(resolve(std::string(t[1].text), file), file, e.line);
    origin_ = std::move(saved_origin);
    last_owner_ = std::move(saved_owner);
  } else {
    error(file, e.line, "unknown directive " + quote(t[0].text));
  }
}

void MasterParser::entry(const Entry& e, const std::string& file) {
  const auto& t = e.toks;
  if (!e.blank_owner && !t[0].quoted && t[0].text[0] == '$') return directive(e, file);
  size_t i = 0;
  Name owner;
  if (e.blank_owner) {
    if (last_owner_.empty()) {
      return error(file, e.line, "no previous owner for a line starting with whitespace");
    }
    owner = last_owner_;
  } else {
    std::string err;
    if (!parse_name(t[0].text, origin_, owner, err)) {
      return error(file, t[0].line, "bad owner name " + quote(t[0].text) + " (" + err + ")");
    }
    last_owner_ = owner;
    i = 1;
  }

  // [<TTL>] [<class>] or [<class>] [<TTL>]; a TTL starts with a digit, no type or class does.
  std::optional<uint32_t> ttl;
  bool have_class = false;
  while (i < t.size() && !t[i].quoted) {
    const std::string_view s = t[i].text;
    if (!ttl && is_digit(s[0])) {
      ttl = parse_ttl(s);
      if (!ttl) return error(file, t[i].line, "bad TTL " + quote(s));
      if (*ttl > kMaxTtl) {
        return error(file, t[i].line, "TTL " + std::to_string(*ttl) + " is larger than 2147483647");
      }
      ++i;
      continue;
    }
    if (have_class) break;
    const auto c = class_from_text(s);
    if (!c) break;
    if (*c != kClassIN) {
      return error(file, t[i].line, "class " + class_to_text(*c) + " is not supported");
    }
    have_class = true;
    ++i;
  }

  if (i >= t.size()) return error(file, e.line, "missing record type");
  const auto ty = t[i].quoted ? std::nullopt : type_from_text(t[i].text);
  if (!ty) return error(file, t[i].line, "unknown record type " + quote(t[i].text));
  if (is_meta_type(*ty)) {
    return error(file, t[i].line, "type " + type_to_text(*ty) + " cannot appear in a zone");
  }
  if (ttl) last_ttl_ = ttl;

  Rdata rd(t, i + 1, *ty, origin_, e.line);
  if (!rd.parse()) return error(file, rd.err_line(), rd.err());
  Rr rr;
  rr.owner = std::move(owner);
  rr.type = *ty;
  rr.rclass = kClassIN;
  rr.ttl = ttl ? *ttl : dollar_ttl_ ? *dollar_ttl_ : last_ttl_ ? *last_ttl_ : default_ttl_;
  rr.rdata = std::move(rd.data());
  rr.file = file;
  rr.line = e.line;
  records_.push_back(std::move(rr));
}

}  // namespace nf::dns
