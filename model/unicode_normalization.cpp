// model/unicode_normalization.cpp: NFC, NFD, NFKC and NFKD as UAX #15 defines them: full decomposition (table
// lookup; Hangul syllables by arithmetic), canonical ordering of combining marks, then, for the C forms,
// canonical composition (a mark composes with the last starter unless a mark of the same or higher class, or a
// starter, stands between them).
#include "model/unicode_normalization.h"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace distill::model {

namespace {

struct CombiningClass {
  char32_t cp;
  std::uint8_t ccc;
};
struct Decomposition {
  char32_t cp;
  std::uint32_t canon_at, canon_len, compat_at, compat_len;  // into kDecompositionData; canon_len 0: none
};
struct Composition {
  char32_t first, second, composite;
};

#include "model/unicode_normalization_data.inc"

// Hangul syllables are composed arithmetically (Unicode chapter 3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

int combining_class(char32_t c) {
  if (c < 0x300) return 0;
  auto it = std::lower_bound(std::begin(kCombiningClasses), std::end(kCombiningClasses), c,
                             [](const CombiningClass& e, char32_t v) { return e.cp < v; });
  return it != std::end(kCombiningClasses) && it->cp == c ? it->ccc : 0;
}

void decompose_into(char32_t c, bool compat, std::vector<char32_t>& out) {
  if (c >= kSBase && c < kSBase + kSCount) {
    const char32_t s = c - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount) out.push_back(kTBase + s % kTCount);
    return;
  }
  auto it = c < 0xA0 ? std::end(kDecompositions)
                     : std::lower_bound(std::begin(kDecompositions), std::end(kDecompositions), c,
                                        [](const Decomposition& e, char32_t v) { return e.cp < v; });
  if (it == std::end(kDecompositions) || it->cp != c) return out.push_back(c);
  const std::uint32_t at = compat ? it->compat_at : it->canon_at, len = compat ? it->compat_len : it->canon_len;
  if (len == 0) return out.push_back(c);  // only a compatibility decomposition, and this is a canonical form
  out.insert(out.end(), kDecompositionData + at, kDecompositionData + at + len);
}

// The composite of a starter and the following character, or 0.
char32_t compose_pair(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  auto it = std::lower_bound(std::begin(kCompositions), std::end(kCompositions), std::pair{a, b},
                             [](const Composition& e, const std::pair<char32_t, char32_t>& v) {
                               return e.first != v.first ? e.first < v.first : e.second < v.second;
                             });
  return it != std::end(kCompositions) && it->first == a && it->second == b ? it->composite : 0;
}

// Stable sort of each run of non-starters by combining class (runs are short: insertion sort).
void canonical_order(std::vector<char32_t>& cps) {
  for (std::size_t i = 1; i < cps.size(); ++i) {
    const int ci = combining_class(cps[i]);
    if (ci == 0) continue;
    for (std::size_t k = i; k > 0; --k) {
      const int ck = combining_class(cps[k - 1]);
      if (ck == 0 || ck <= ci) break;
      std::swap(cps[k - 1], cps[k]);
    }
  }
}

void compose(std::vector<char32_t>& cps) {
  std::vector<char32_t> out;
  out.reserve(cps.size());
  std::ptrdiff_t starter = -1;
  int last_ccc = -1;  // class of the last character kept after the starter; -1: none kept yet
  for (char32_t c : cps) {
    const int ccc = combining_class(c);
    const bool blocked = last_ccc != -1 && (last_ccc == 0 || last_ccc >= ccc);
    if (starter >= 0 && !blocked)
      if (char32_t p = compose_pair(out[std::size_t(starter)], c)) {
        out[std::size_t(starter)] = p;
        continue;
      }
    if (ccc == 0) starter = std::ptrdiff_t(out.size()), last_ccc = -1;
    else last_ccc = ccc;
    out.push_back(c);
  }
  cps = std::move(out);
}

std::vector<char32_t> code_points(std::string_view s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    const std::size_t n = b0 < 0x80 ? 1 : b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : 4;
    char32_t cp = n == 1 ? b0 : n == 2 ? (b0 & 0x1F) : n == 3 ? (b0 & 0x0F) : (b0 & 0x07);
    for (std::size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    out.push_back(cp);
    i += n;
  }
  return out;
}

std::string to_utf8(const std::vector<char32_t>& cps) {
  std::string out;
  out.reserve(cps.size());
  for (char32_t cp : cps) {
    if (cp < 0x80) {
      out += char(cp);
    } else if (cp < 0x800) {
      out += char(0xC0 | (cp >> 6)), out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += char(0xE0 | (cp >> 12)), out += char(0x80 | ((cp >> 6) & 0x3F)), out += char(0x80 | (cp & 0x3F));
    } else {
      out += char(0xF0 | (cp >> 18)), out += char(0x80 | ((cp >> 12) & 0x3F));
      out += char(0x80 | ((cp >> 6) & 0x3F)), out += char(0x80 | (cp & 0x3F));
    }
  }
  return out;
}

}  // namespace

std::string unicode_normalize(std::string_view utf8, UnicodeForm form) {
  // ASCII is invariant under every form, and it is most text.
  if (std::all_of(utf8.begin(), utf8.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; }))
    return std::string(utf8);
  const bool compat = form == UnicodeForm::NFKC || form == UnicodeForm::NFKD;
  std::vector<char32_t> cps;
  for (char32_t c : code_points(utf8)) decompose_into(c, compat, cps);
  canonical_order(cps);
  if (form == UnicodeForm::NFC || form == UnicodeForm::NFKC) compose(cps);
  return to_utf8(cps);
}

}  // namespace distill::model
