// dataset/answer.cpp: see answer.h. Everything here is a pure function of its arguments.
#include "dataset/answer.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <vector>

namespace distill::dataset {

const char* to_string(Verdict v) {
  switch (v) {
    case Verdict::correct: return "correct";
    case Verdict::incorrect: return "incorrect";
    default: return "unparsable";
  }
}

namespace {

std::string trim(std::string_view s) {
  std::size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return std::string(s.substr(a, b - a));
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  for (std::size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
    s.replace(pos, from.size(), to);
}

// Given s[open] == '{', returns the index of the matching '}', or npos if unbalanced.
std::size_t match_brace(std::string_view s, std::size_t open) {
  int depth = 0;
  for (std::size_t i = open; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == '{' || s[i + 1] == '}')) { ++i; continue; }
    if (s[i] == '{') ++depth;
    else if (s[i] == '}' && --depth == 0) return i;
  }
  return std::string_view::npos;
}

// Position of the last occurrence of any of `needles` (whole command: not followed by a letter).
std::size_t last_command(std::string_view s, std::initializer_list<std::string_view> needles, std::size_t& len) {
  std::size_t best = std::string_view::npos;
  for (auto n : needles) {
    for (std::size_t pos = s.rfind(n); pos != std::string_view::npos; pos = pos ? s.rfind(n, pos - 1) : std::string_view::npos) {
      const std::size_t end = pos + n.size();
      if (end < s.size() && std::isalpha(static_cast<unsigned char>(s[end]))) {
        if (pos == 0) break;
        continue;
      }
      if (best == std::string_view::npos || pos > best) { best = pos; len = n.size(); }
      break;
    }
  }
  return best;
}

}  // namespace

std::optional<std::string> last_boxed(std::string_view text) {
  std::size_t len = 0;
  const std::size_t pos = last_command(text, {"\\boxed", "\\fbox"}, len);
  if (pos == std::string_view::npos) return std::nullopt;
  std::size_t i = pos + len;
  while (i < text.size() && text[i] == ' ') ++i;
  if (i < text.size() && text[i] == '{') {
    const std::size_t close = match_brace(text, i);
    if (close == std::string_view::npos) return std::nullopt;
    return trim(text.substr(i + 1, close - i - 1));
  }
  // "\boxed 5": the next whitespace- or $-delimited token.
  std::size_t j = i;
  while (j < text.size() && !std::isspace(static_cast<unsigned char>(text[j])) && text[j] != '$') ++j;
  if (j == i) return std::nullopt;
  return std::string(text.substr(i, j - i));
}

std::optional<std::string> extract_answer(std::string_view c) {
  std::string_view region = c;
  const std::size_t close = c.rfind("</think>");
  if (close != std::string_view::npos) {
    region = c.substr(close + 8);
  } else if (c.find("<think>") != std::string_view::npos) {
    return std::nullopt;  // reasoning never finished: no final answer
  }
  std::size_t len = 0;
  if (last_command(region, {"\\boxed", "\\fbox"}, len) != std::string_view::npos) {
    auto b = last_boxed(region);
    if (!b || b->empty()) return std::nullopt;  // the final box is malformed or empty
    return b;
  }
  // GSM8K: "#### 42" (the rest of that line).
  if (std::size_t h = region.rfind("####"); h != std::string_view::npos) {
    std::size_t e = region.find('\n', h);
    std::string a = trim(region.substr(h + 4, e == std::string_view::npos ? std::string_view::npos : e - h - 4));
    if (!a.empty()) return a;
  }
  // "the answer is 42" (case-insensitive, last occurrence): up to the end of the sentence or line.
  std::string lower(region);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return char(std::tolower(ch)); });
  const std::size_t k = lower.rfind("answer is");
  if (k != std::string::npos) {
    std::size_t i = k + 9;
    while (i < region.size() && (region[i] == ' ' || region[i] == ':')) ++i;
    std::size_t j = i;
    while (j < region.size() && region[j] != '\n') {
      // a period ends the sentence unless it is a decimal point
      if (region[j] == '.' && !(j + 1 < region.size() && std::isdigit(static_cast<unsigned char>(region[j + 1]))))
        break;
      ++j;
    }
    std::string a = trim(region.substr(i, j - i));
    while (!a.empty() && (a.back() == ',' || a.back() == ';' || a.back() == '!')) a.pop_back();
    if (!a.empty()) return a;
  }
  return std::nullopt;
}

namespace {

// Unwraps \text{...}-like commands: "\text{5}" -> "5"; a trailing unit "5\text{ cm}" is dropped.
void strip_text_commands(std::string& s) {
  for (std::string_view cmd : {"\\text", "\\textbf", "\\mathrm", "\\mathbf", "\\mbox"}) {
    for (std::size_t pos = s.find(cmd); pos != std::string::npos; pos = s.find(cmd, pos)) {
      const std::size_t open = pos + cmd.size();
      if (open >= s.size() || s[open] != '{') { pos = open; continue; }
      const std::size_t close = match_brace(s, open);
      if (close == std::string::npos) break;
      std::string inner = s.substr(open + 1, close - open - 1);
      std::size_t prev = pos;
      while (prev > 0 && s[prev - 1] == ' ') --prev;
      const bool has_number_before = prev > 0 && std::isdigit(static_cast<unsigned char>(s[prev - 1]));
      const bool at_end = trim(std::string_view(s).substr(close + 1)).empty();
      // a unit after a number at the end of the answer ("5\text{ apples}") is dropped entirely
      const bool is_unit = has_number_before && at_end &&
                           std::none_of(inner.begin(), inner.end(), [](unsigned char ch) { return std::isdigit(ch); });
      s.replace(pos, close - pos + 1, is_unit ? "" : inner);
    }
  }
}

// \frac{a}{b}, \dfrac{a}{b}, \tfrac{a}{b}, \frac12 -> (a)/(b) when a and b are plain.
void rewrite_fracs(std::string& s) {
  replace_all(s, "\\dfrac", "\\frac");
  replace_all(s, "\\tfrac", "\\frac");
  for (std::size_t pos = s.find("\\frac"); pos != std::string::npos; pos = s.find("\\frac", pos + 1)) {
    std::size_t i = pos + 5;
    std::string parts[2];
    bool ok = true;
    for (auto& part : parts) {
      if (i < s.size() && s[i] == '{') {
        std::size_t c = match_brace(s, i);
        if (c == std::string::npos) { ok = false; break; }
        part = s.substr(i + 1, c - i - 1);
        i = c + 1;
      } else if (i < s.size() && std::isalnum(static_cast<unsigned char>(s[i]))) {
        part = s.substr(i, 1);
        ++i;
      } else {
        ok = false;
        break;
      }
    }
    if (!ok) continue;
    s.replace(pos, i - pos, parts[0] + "/" + parts[1]);
  }
}

// Parses a plain decimal with optional sign and strict thousands separators; nullopt if not exactly one.
std::optional<long double> parse_decimal(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::size_t i = 0;
  bool neg = false;
  if (s[i] == '+' || s[i] == '-') { neg = s[i] == '-'; ++i; }
  std::string digits;
  std::size_t int_start = i;
  int group = -1;  // digits since the last comma, -1 when no comma seen
  bool any_comma = false;
  for (; i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == ','); ++i) {
    if (s[i] == ',') {
      if (i == int_start || (any_comma && group != 3) || (!any_comma && (i - int_start) > 3)) return std::nullopt;
      any_comma = true;
      group = 0;
      continue;
    }
    digits += s[i];
    if (group >= 0) ++group;
  }
  if (any_comma && group != 3) return std::nullopt;
  std::string frac;
  if (i < s.size() && s[i] == '.') {
    ++i;
    for (; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i) frac += s[i];
  }
  if (i != s.size() || (digits.empty() && frac.empty())) return std::nullopt;
  long double v = std::strtold((digits.empty() ? "0" : digits).append(".").append(frac.empty() ? "0" : frac).c_str(), nullptr);
  return neg ? -v : v;
}

}  // namespace

NormalizedAnswer normalize_answer(std::string_view raw) {
  std::string s = trim(raw);
  // strip math delimiters
  for (int pass = 0; pass < 2; ++pass) {
    if (s.size() >= 2 && s.front() == '$' && s.back() == '$') s = trim(std::string_view(s).substr(1, s.size() - 2));
    if (s.size() >= 4 && s.rfind("\\(", 0) == 0 && s.substr(s.size() - 2) == "\\)") s = trim(std::string_view(s).substr(2, s.size() - 4));
    if (s.size() >= 4 && s.rfind("\\[", 0) == 0 && s.substr(s.size() - 2) == "\\]") s = trim(std::string_view(s).substr(2, s.size() - 4));
  }
  replace_all(s, "\xE2\x88\x92", "-");  // U+2212 minus sign
  for (std::string_view junk : {"\\left", "\\right", "\\!", "\\,", "\\;", "\\:", "\\ ", "~", "^\\circ", "^{\\circ}", "\xC2\xB0", "\\displaystyle", "\\$"})
    replace_all(s, junk, "");
  strip_text_commands(s);
  rewrite_fracs(s);
  s = trim(s);
  while (!s.empty() && (s.back() == '.' || s.back() == ',')) { s.pop_back(); s = trim(s); }
  // "x = 5", "x=5": a single-letter variable assignment
  if (s.size() > 2 && std::isalpha(static_cast<unsigned char>(s[0]))) {
    std::size_t i = 1;
    while (i < s.size() && s[i] == ' ') ++i;
    if (i < s.size() && s[i] == '=') s = trim(std::string_view(s).substr(i + 1));
  }
  NormalizedAnswer out;
  if (s.size() >= 2 && s.substr(s.size() - 2) == "\\%") { out.percent = true; s = trim(std::string_view(s).substr(0, s.size() - 2)); }
  else if (!s.empty() && s.back() == '%') { out.percent = true; s = trim(std::string_view(s).substr(0, s.size() - 1)); }
  // text form: no whitespace, \dfrac already unified
  std::string compact;
  for (char c : s) if (!std::isspace(static_cast<unsigned char>(c))) compact += c;
  out.text = compact;
  // strip braces around a plain value: "{5}" -> "5"
  while (compact.size() >= 2 && compact.front() == '{' && match_brace(compact, 0) == compact.size() - 1)
    compact = compact.substr(1, compact.size() - 2);
  if (auto v = parse_decimal(compact)) {
    out.numeric = true;
    out.value = *v;
  } else if (std::size_t slash = compact.find('/'); slash != std::string::npos && compact.find('/', slash + 1) == std::string::npos) {
    auto unparen = [](std::string t) {
      while (t.size() >= 2 && ((t.front() == '(' && t.back() == ')') || (t.front() == '{' && t.back() == '}')))
        t = t.substr(1, t.size() - 2);
      return t;
    };
    std::string num = unparen(compact.substr(0, slash)), den = unparen(compact.substr(slash + 1));
    bool neg = false;
    if (!num.empty() && num[0] == '-' && num.size() > 1 && num[1] == '(') { neg = true; num = unparen(num.substr(1)); }
    auto a = parse_decimal(num), b = parse_decimal(den);
    if (a && b && *b != 0) {
      out.numeric = true;
      out.value = (neg ? -*a : *a) / *b;
    }
  }
  if (out.numeric) out.text = compact;
  return out;
}

bool answers_equivalent(std::string_view answer, std::string_view gold) {
  const auto a = normalize_answer(answer), g = normalize_answer(gold);
  if (a.numeric && g.numeric) {
    auto close = [](long double x, long double y) {
      return std::fabs(x - y) <= 1e-9L + 1e-6L * std::max(std::fabs(x), std::fabs(y));
    };
    // Two whole numbers must match exactly (a relative tolerance would accept 1234568 for 1234567).
    const bool whole = std::fmod(a.value, 1.0L) == 0 && std::fmod(g.value, 1.0L) == 0 && !a.percent && !g.percent;
    if (whole) return a.value == g.value;
    if (close(a.value, g.value)) return true;
    if (a.percent != g.percent) {  // 50% vs 0.5
      const long double pa = a.percent ? a.value / 100 : a.value, pg = g.percent ? g.value / 100 : g.value;
      return close(pa, pg);
    }
    return false;
  }
  if (a.text.empty() || g.text.empty()) return false;
  std::string x = a.text, y = g.text;
  std::transform(x.begin(), x.end(), x.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  std::transform(y.begin(), y.end(), y.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return x == y;
}

Verification verify_completion(std::string_view completion, std::string_view gold) {
  Verification v{Verdict::unparsable, extract_answer(completion)};
  if (!v.extracted) return v;
  v.verdict = answers_equivalent(*v.extracted, gold) ? Verdict::correct : Verdict::incorrect;
  return v;
}

}  // namespace distill::dataset
