// dataset/text_rules.cpp: see text_rules.h.
#include "dataset/text_rules.h"

#include <algorithm>
#include <unordered_set>

namespace distill::dataset {

namespace {

// Decodes one code point at s[i]; invalid or truncated sequences give U+FFFD and advance one byte.
char32_t next_cp(std::string_view s, std::size_t& i) {
  const auto c = static_cast<unsigned char>(s[i]);
  int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (len == 0 || i + std::size_t(len) > s.size()) {
    ++i;
    return 0xFFFD;
  }
  char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  for (int k = 1; k < len; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + std::size_t(k)]);
    if ((cc & 0xC0) != 0x80) {
      ++i;
      return 0xFFFD;
    }
    cp = (cp << 6) | (cc & 0x3F);
  }
  i += std::size_t(len);
  return cp;
}

const char* script_of(char32_t c) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) return "latin";
  if (c < 0xC0) return nullptr;
  if (c <= 0x24F) return (c == 0xD7 || c == 0xF7) ? nullptr : "latin";
  if (c >= 0x1E00 && c <= 0x1EFF) return "latin";
  if (c >= 0x0400 && c <= 0x052F) return "cyrillic";
  if (c >= 0x0590 && c <= 0x05FF) return "hebrew";
  if ((c >= 0x0600 && c <= 0x06FF) || (c >= 0x0750 && c <= 0x077F)) return "arabic";
  if (c >= 0x0900 && c <= 0x097F) return "devanagari";
  if (c >= 0x0E00 && c <= 0x0E7F) return "thai";
  if ((c >= 0xAC00 && c <= 0xD7AF) || (c >= 0x1100 && c <= 0x11FF) || (c >= 0x3130 && c <= 0x318F)) return "hangul";
  // Han and kana count as one script: Japanese writes both in one sentence.
  if ((c >= 0x3040 && c <= 0x30FF) || (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
      (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x20000 && c <= 0x2A6DF))
    return "cjk";
  return nullptr;  // Greek, symbols, punctuation, everything without a letter script here
}

std::size_t count_of(std::string_view hay, std::string_view needle) {
  std::size_t n = 0;
  for (auto p = hay.find(needle); p != std::string_view::npos; p = hay.find(needle, p + needle.size())) ++n;
  return n;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

}  // namespace

std::string format_problem(std::string_view c) {
  const auto opens = count_of(c, "<think>"), closes = count_of(c, "</think>");
  if (opens == 0) return "no <think>";
  if (opens > 1) return std::to_string(opens) + " <think>";
  if (closes == 0) return "the think block never closes";
  if (closes > 1) return std::to_string(closes) + " </think>";
  const auto open = c.find("<think>"), close = c.find("</think>");
  if (close < open) return "</think> before <think>";
  for (std::size_t i = 0; i < open; ++i)
    if (!is_space(c[i])) return "text before <think>";
  const auto after = c.substr(close + 8);
  const auto box = after.rfind("\\boxed{");
  if (box == std::string_view::npos) return "no \\boxed{} after </think>";
  int depth = 0;
  for (std::size_t i = box + 6; i < after.size(); ++i) {
    if (after[i] == '{') ++depth;
    else if (after[i] == '}' && --depth == 0) {
      // The box ends the answer: after it only space, closing math delimiters and a full stop ($, \], \), ., **).
      for (auto rest = after.substr(i + 1); !rest.empty();) {
        bool trailer = false;
        for (std::string_view tok : {"\\]", "\\)", "$", ".", "**", " ", "\t", "\n", "\r"})
          if (rest.starts_with(tok)) {
            rest.remove_prefix(tok.size());
            trailer = true;
            break;
          }
        if (!trailer) return "text after the final \\boxed{}";
      }
      return "";
    }
  }
  return "unbalanced \\boxed{";
}

std::string_view reasoning_of(std::string_view c) {
  const auto open = c.find("<think>");
  if (open == std::string_view::npos) return c;
  auto r = c.substr(open + 7);
  const auto close = r.find("</think>");
  return close == std::string_view::npos ? r : r.substr(0, close);
}

CompletionParts split_completion(std::string_view c) {
  auto trim = [](std::string_view t) {
    while (!t.empty() && (t.front() == '\n' || t.front() == '\r')) t.remove_prefix(1);
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.remove_suffix(1);
    return std::string(t);
  };
  const auto open = c.find("<think>");
  const auto from = open == std::string_view::npos ? 0 : open + 7;
  const auto close = c.find("</think>", from);
  if (close == std::string_view::npos)
    return open == std::string_view::npos ? CompletionParts{"", trim(c), false} : CompletionParts{trim(c.substr(from)), "", true};
  return {trim(c.substr(from, close - from)), trim(c.substr(close + 8)), false};
}

std::map<std::string, std::int64_t> script_letters(std::string_view text) {
  std::map<std::string, std::int64_t> out;
  for (std::size_t i = 0; i < text.size();) {
    const auto cp = next_cp(text, i);
    if (const char* s = script_of(cp)) ++out[s];
  }
  return out;
}

std::int64_t foreign_script_letters(const std::map<std::string, std::int64_t>& letters) {
  std::int64_t total = 0, top = 0;
  for (const auto& [s, n] : letters) total += n, top = std::max(top, n);
  return total - top;
}

std::int64_t longest_paragraph(std::string_view text) {
  std::int64_t best = 0, cur = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    auto nl = text.find('\n', pos);
    auto line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    bool blank = std::all_of(line.begin(), line.end(), is_space);
    if (blank) {
      cur = 0;
    } else {
      std::int64_t cps = 0;
      for (std::size_t i = 0; i < line.size();) next_cp(line, i), ++cps;
      cur += cps + (cur > 0 ? 1 : 0);  // the newline joining it to the previous line of the paragraph
      best = std::max(best, cur);
    }
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return best;
}

bool has_code_block(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    auto line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    std::size_t k = 0;
    while (k < line.size() && k < 3 && line[k] == ' ') ++k;
    line.remove_prefix(k);
    if (line.substr(0, 3) == "```" || line.substr(0, 3) == "~~~") return true;
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return false;
}

namespace {
enum class CharKind { word, single, separator };

// ASCII letters/digits and letters of alphabetic scripts join into words; each CJK character is a word of its
// own (those scripts put no spaces between words); spaces, punctuation and symbols, ASCII or not, separate.
CharKind kind_of(char32_t c) {
  if (c < 0x80) return ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) ? CharKind::word : CharKind::separator;
  if (c < 0xC0 || c == 0xD7 || c == 0xF7 || c == 0xFFFD) return CharKind::separator;  // Latin-1 punctuation, NBSP, ², ×, ÷
  if ((c >= 0x2000 && c <= 0x2BFF) || (c >= 0x3000 && c <= 0x303F) || (c >= 0xFF00 && c <= 0xFF0F) ||
      (c >= 0xFF1A && c <= 0xFF20) || (c >= 0xFF3B && c <= 0xFF40) || (c >= 0xFF5B && c <= 0xFF65))
    return CharKind::separator;  // general punctuation, super/subscripts, arrows, math operators, CJK punctuation
  if ((c >= 0x3040 && c <= 0x30FF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x4E00 && c <= 0x9FFF) ||
      (c >= 0xAC00 && c <= 0xD7AF) || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x20000 && c <= 0x2A6DF))
    return CharKind::single;
  return CharKind::word;
}
}  // namespace

namespace {
bool is_blank(char32_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == 0xA0 ||
         (c >= 0x2000 && c <= 0x200B) || c == 0x202F || c == 0x205F || c == 0x3000;
}

// words() and tokens() differ only in what a separator that is not blank becomes: nothing, or a token.
std::vector<std::string_view> split_text(std::string_view text, std::string& lowered, bool keep_symbols) {
  lowered.assign(text.begin(), text.end());
  for (auto& ch : lowered)
    if (ch >= 'A' && ch <= 'Z') ch = char(ch - 'A' + 'a');
  std::vector<std::string_view> out;
  const std::string_view l(lowered);
  std::size_t i = 0, start = 0;
  bool in_word = false;
  while (i < l.size()) {
    const auto at = i;
    const auto k = kind_of(next_cp(l, i));
    if (k == CharKind::word) {
      if (!in_word) start = at, in_word = true;
      continue;
    }
    if (in_word) out.push_back(l.substr(start, at - start)), in_word = false;
    if (k == CharKind::single) out.push_back(l.substr(at, i - at));
    if (k == CharKind::separator && keep_symbols) {
      std::size_t j = at;
      if (!is_blank(next_cp(l, j))) out.push_back(l.substr(at, i - at));
    }
  }
  if (in_word) out.push_back(l.substr(start));
  return out;
}
}  // namespace

std::vector<std::string_view> words(std::string_view text, std::string& lowered) {
  return split_text(text, lowered, false);
}

std::vector<std::string_view> tokens(std::string_view text, std::string& lowered) {
  return split_text(text, lowered, true);
}

std::string normalize_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool space = false;
  for (char ch : text) {
    if (is_space(ch)) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' '), space = false;
    out.push_back(ch >= 'A' && ch <= 'Z' ? char(ch - 'A' + 'a') : ch);
  }
  return out;
}

std::uint64_t hash64(std::string_view bytes) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char ch : bytes) h = (h ^ ch) * 0x100000001b3ULL;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

std::vector<std::uint64_t> positional_ngram_hashes(const std::vector<std::string_view>& w, int n) {
  const std::size_t N = std::size_t(std::max(1, n));
  std::vector<std::uint64_t> wh(w.size()), out;
  for (std::size_t i = 0; i < w.size(); ++i) wh[i] = hash64(w[i]);
  auto combine = [&](std::size_t a, std::size_t b) {
    std::uint64_t h = 0x9e3779b97f4a7c15ULL * (b - a);
    for (auto k = a; k < b; ++k) {
      h = (h ^ wh[k]) * 0xbf58476d1ce4e5b9ULL;
      h ^= h >> 31;
    }
    return h;
  };
  if (w.empty()) return out;
  if (w.size() < N) return {combine(0, w.size())};
  out.reserve(w.size() - N + 1);
  for (std::size_t i = 0; i + N <= w.size(); ++i) out.push_back(combine(i, i + N));
  return out;
}

namespace {
std::vector<std::uint64_t> distinct(std::vector<std::uint64_t> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}
}  // namespace

std::vector<std::uint64_t> ngram_hashes(std::string_view text, int n) {
  std::string lowered;
  return distinct(positional_ngram_hashes(words(text, lowered), n));
}

std::vector<std::uint64_t> shingle_hashes(std::string_view text, int n) {
  std::string lowered;
  return distinct(positional_ngram_hashes(tokens(text, lowered), n));
}

double repetition_ratio(std::string_view text, int n) {
  std::string lowered;
  auto w = words(text, lowered);
  const std::size_t N = std::size_t(std::max(1, n));
  if (w.size() < N) return 0.0;
  const auto total = w.size() - N + 1;
  return 1.0 - double(ngram_hashes(text, n).size()) / double(total);
}

}  // namespace distill::dataset
