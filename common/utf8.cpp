// common/utf8.cpp: strict UTF-8 validation (RFC 3629, table 3-7 of the Unicode standard).
#include "common/utf8.h"

namespace distill {

namespace {

// The sequence a lead byte opens: its length (0: not a lead byte) and the allowed range of its second byte.
std::size_t lead(unsigned char c, unsigned char& lo, unsigned char& hi) {
  lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) return 2;
  if (c == 0xE0) return lo = 0xA0, 3;
  if (c >= 0xE1 && c <= 0xEC) return 3;
  if (c == 0xED) return hi = 0x9F, 3;  // no surrogates
  if (c >= 0xEE && c <= 0xEF) return 3;
  if (c == 0xF0) return lo = 0x90, 4;
  if (c >= 0xF1 && c <= 0xF3) return 4;
  if (c == 0xF4) return hi = 0x8F, 4;  // nothing above U+10FFFF
  return 0;
}

// How many bytes at p[0..n) form a valid sequence (its length), or, when they do not, the length of the maximal
// subpart (a lead byte and the continuation bytes that still fit it; at least 1), returned negated.
std::ptrdiff_t sequence(const unsigned char* p, std::size_t n) {
  if (p[0] < 0x80) return 1;
  unsigned char lo, hi;
  const std::size_t len = lead(p[0], lo, hi);
  if (len == 0) return -1;
  std::size_t k = 1;
  if (k < n && p[k] >= lo && p[k] <= hi) ++k;
  else return -std::ptrdiff_t(k);
  while (k < len && k < n && p[k] >= 0x80 && p[k] <= 0xBF) ++k;
  return k == len ? std::ptrdiff_t(len) : -std::ptrdiff_t(k);
}

}  // namespace

std::optional<std::size_t> first_invalid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  for (std::size_t i = 0; i < n;) {
    const auto k = sequence(p + i, n - i);
    if (k < 0) return i;
    i += std::size_t(k);
  }
  return std::nullopt;
}

std::string printable_utf8(std::string_view s) {
  // One U+FFFD per maximal subpart of an ill-formed sequence (Unicode's recommended practice, what Python's
  // errors="replace" does): a 4-byte character cut after 3 bytes is one replacement, a stray byte is one.
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::string out;
  out.reserve(n);
  std::size_t start = 0;  // of the valid run not yet copied
  for (std::size_t i = 0; i < n;) {
    const auto k = sequence(p + i, n - i);
    if (k > 0) {
      i += std::size_t(k);
      continue;
    }
    out.append(s.substr(start, i - start)).append("\xEF\xBF\xBD");
    i += std::size_t(-k);
    start = i;
  }
  return out.append(s.substr(start));
}

}  // namespace distill
