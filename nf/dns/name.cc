#include "nf/dns/name.h"

namespace nf::dns {
namespace {

bool is_ddd_digit(uint8_t c) {
  return c >= '0' && c <= '9';
}

uint8_t fold(uint8_t c) {
  return c >= 'A' && c <= 'Z' ? static_cast<uint8_t>(c + 32) : c;
}

}  // namespace

bool parse_name(std::string_view text, const Name& origin, Name& out, std::string& err) {
  if (text.empty()) {
    err = "empty name";
    return false;
  }
  if (text == "@") {
    if (origin.empty()) {
      err = "\"@\" used with no origin";
      return false;
    }
    out = origin;
    return true;
  }
  if (text == ".") {
    out.assign(1, 0);
    return true;
  }
  // Built aside so that `out` may alias `origin`.
  Name n;
  n.reserve(64);
  size_t label_start = 0;  // index of the current label's length byte
  size_t label_len = 0;
  bool absolute = false;
  n.push_back(0);
  size_t i = 0;
  while (i < text.size()) {
    auto c = static_cast<uint8_t>(text[i]);
    if (c == '.') {
      if (label_len == 0) {
        err = "empty label";
        return false;
      }
      n[label_start] = static_cast<uint8_t>(label_len);
      ++i;
      if (i == text.size()) {
        absolute = true;
        break;
      }
      label_start = n.size();
      n.push_back(0);
      label_len = 0;
      continue;
    }
    if (c == '\\') {
      if (i + 1 >= text.size()) {
        err = "bad escape (trailing backslash)";
        return false;
      }
      const auto d = static_cast<uint8_t>(text[i + 1]);
      if (is_ddd_digit(d)) {
        // RFC 1035 5.1: \DDD is exactly three decimal digits.
        if (i + 3 >= text.size() || !is_ddd_digit(static_cast<uint8_t>(text[i + 2])) ||
            !is_ddd_digit(static_cast<uint8_t>(text[i + 3]))) {
          err = "bad escape (\\DDD needs three digits)";
          return false;
        }
        const int v = (d - '0') * 100 + (text[i + 2] - '0') * 10 + (text[i + 3] - '0');
        if (v > 255) {
          err = "bad escape (\\DDD above 255)";
          return false;
        }
        c = static_cast<uint8_t>(v);
        i += 4;
      } else {
        c = d;
        i += 2;
      }
    } else {
      ++i;
    }
    if (label_len == kMaxLabelLen) {
      err = "label longer than 63 characters";
      return false;
    }
    n.push_back(c);
    ++label_len;
    if (n.size() > kMaxNameLen) {  // stop early: the text may be arbitrarily long
      err = "name longer than 255 bytes";
      return false;
    }
  }
  if (absolute) {
    n.push_back(0);
  } else {
    n[label_start] = static_cast<uint8_t>(label_len);
    if (origin.empty()) {
      err = "relative name with no origin";
      return false;
    }
    n.insert(n.end(), origin.begin(), origin.end());
  }
  if (n.size() > kMaxNameLen) {
    err = "name longer than 255 bytes";
    return false;
  }
  out = std::move(n);
  return true;
}

std::string name_to_text(const uint8_t* wire, size_t len) {
  if (len == 0) return "";
  std::string s;
  size_t i = 0;
  while (i < len) {
    const uint8_t l = wire[i];
    if (l == 0 || l > kMaxLabelLen || i + 1 + l > len) break;
    for (size_t j = i + 1; j <= i + l; ++j) {
      const uint8_t c = wire[j];
      if (c < 0x21 || c > 0x7e) {
        s += '\\';
        s += static_cast<char>('0' + c / 100);
        s += static_cast<char>('0' + c / 10 % 10);
        s += static_cast<char>('0' + c % 10);
      } else {
        // Characters that would end the label or the token, or mean something else at the
        // start of a master-file line.
        switch (c) {
          case '.':
          case '\\':
          case '"':
          case ';':
          case '(':
          case ')':
          case '@':
          case '$':
            s += '\\';
            break;
          default:
            break;
        }
        s += static_cast<char>(c);
      }
    }
    s += '.';
    i += 1 + l;
  }
  if (s.empty()) return ".";
  return s;
}

void to_lower(Name& n) {
  size_t i = 0;
  while (i < n.size()) {
    const uint8_t l = n[i];
    if (l == 0 || l > kMaxLabelLen) break;
    for (size_t j = i + 1; j <= i + l && j < n.size(); ++j) n[j] = fold(n[j]);
    i += 1 + l;
  }
}

bool name_equal(const uint8_t* a, size_t alen, const uint8_t* b, size_t blen) {
  if (alen != blen) return false;
  // Folding every byte is exact: length bytes are <= 63, below 'A', so they only ever match
  // themselves and both names keep the same label structure.
  for (size_t i = 0; i < alen; ++i) {
    if (fold(a[i]) != fold(b[i])) return false;
  }
  return true;
}

int label_count(const Name& n) {
  int count = 0;
  size_t i = 0;
  while (i < n.size()) {
    const uint8_t l = n[i];
    if (l == 0 || l > kMaxLabelLen || i + 1 + l > n.size()) break;
    ++count;
    i += 1 + l;
  }
  return count;
}

bool is_subdomain(const Name& n, const Name& apex) {
  const int ln = label_count(n);
  const int la = label_count(apex);
  if (ln < la) return false;
  size_t off = 0;
  for (int k = 0; k < ln - la; ++k) off += 1 + n[off];  // label_count() checked these bounds
  return name_equal(n.data() + off, n.size() - off, apex.data(), apex.size());
}

size_t name_wire_length(const uint8_t* wire, size_t len) {
  size_t i = 0;
  while (i < len && i < kMaxNameLen) {
    const uint8_t l = wire[i];
    if (l == 0) return i + 1;
    if (l > kMaxLabelLen) return 0;
    i += 1 + l;
  }
  return 0;
}

}  // namespace nf::dns
