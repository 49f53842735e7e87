// dataset/answer.cpp: see answer.h. Everything here is a pure function of its arguments.
#include "dataset/answer.h"

#include "dataset/math_equiv.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <vector>

namespace distill::dataset {

using math::match_brace;
using math::trim;

const char* to_string(Verdict v) {
  switch (v) {
    case Verdict::correct: return "correct";
    case Verdict::incorrect: return "incorrect";
    case Verdict::unverified: return "unverified";
    default: return "unparsable";
  }
}

namespace {

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

namespace {

// "final answer is 42." / "the answer is 42": up to the end of the sentence or line.
std::optional<std::string> after_phrase(std::string_view region, const std::string& lower, std::string_view phrase) {
  const std::size_t k = lower.rfind(phrase);
  if (k == std::string::npos) return std::nullopt;
  std::size_t i = k + phrase.size();
  while (i < region.size() && (region[i] == ' ' || region[i] == ':' || region[i] == '*')) ++i;
  std::size_t j = i;
  int dollars = 0;
  while (j < region.size() && region[j] != '\n') {
    if (region[j] == '$') ++dollars;
    // a period ends the sentence unless it is a decimal point or inside $...$
    if (region[j] == '.' && dollars % 2 == 0 && !(j + 1 < region.size() && std::isdigit(static_cast<unsigned char>(region[j + 1]))))
      break;
    ++j;
  }
  std::string a = trim(region.substr(i, j - i));
  while (!a.empty() && (a.back() == ',' || a.back() == ';' || a.back() == '!' || a.back() == '*')) a.pop_back();
  a = trim(a);
  if (a.empty()) return std::nullopt;
  return a;
}

// Every well-formed \boxed{...} / \fbox{...} of `region`, in order ("\boxed 5" too).
std::vector<std::string> all_boxed(std::string_view region) {
  std::vector<std::string> out;
  for (std::size_t pos = 0; pos < region.size();) {
    const std::size_t b = region.find("\\boxed", pos), f = region.find("\\fbox", pos);
    const std::size_t at = std::min(b, f);
    if (at == std::string_view::npos) break;
    std::size_t i = at + (at == b ? 6 : 5);
    while (i < region.size() && region[i] == ' ') ++i;
    if (i < region.size() && region[i] == '{') {
      const std::size_t close = match_brace(region, i);
      if (close == std::string_view::npos) break;
      out.push_back(trim(region.substr(i + 1, close - i - 1)));
      pos = close + 1;
      continue;
    }
    std::size_t j = i;
    while (j < region.size() && !std::isspace(static_cast<unsigned char>(region[j])) && region[j] != '$') ++j;
    if (j > i) out.emplace_back(region.substr(i, j - i));
    pos = std::max(j, i + 1);
  }
  return out;
}

}  // namespace

const char* to_string(ExtractRule r) {
  switch (r) {
    case ExtractRule::boxed: return "boxed";
    case ExtractRule::boxed_parts: return "boxed-parts";
    case ExtractRule::final_answer_is: return "final-answer-is";
    case ExtractRule::answer_colon: return "answer-colon";
    case ExtractRule::hashes: return "hashes";
    case ExtractRule::last_math: return "last-math";
  }
  return "?";
}

std::optional<Extraction> extract_final(std::string_view c, std::size_t gold_parts) {
  std::string_view region = c;
  const std::size_t close = c.rfind("</think>");
  if (close != std::string_view::npos) {
    region = c.substr(close + 8);
  } else if (c.find("<think>") != std::string_view::npos) {
    return std::nullopt;  // reasoning never finished: no final answer
  }
  std::size_t len = 0;
  if (last_command(region, {"\\boxed", "\\fbox"}, len) != std::string_view::npos) {
    if (gold_parts > 1) {
      auto boxes = all_boxed(region);
      if (boxes.size() > 1) {
        std::string joined;
        for (const auto& b : boxes) joined += (joined.empty() ? "" : ", ") + b;
        return Extraction{joined, ExtractRule::boxed_parts};
      }
    }
    auto b = last_boxed(region);
    if (!b || b->empty()) return std::nullopt;  // the final box is malformed or empty
    return Extraction{*b, ExtractRule::boxed};
  }
  std::string lower(region);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return char(std::tolower(ch)); });
  if (auto a = after_phrase(region, lower, "answer is")) return Extraction{*a, ExtractRule::final_answer_is};
  if (auto a = after_phrase(region, lower, "answer:")) return Extraction{*a, ExtractRule::answer_colon};
  // GSM8K: "#### 42" (the rest of that line).
  if (std::size_t h = region.rfind("####"); h != std::string_view::npos) {
    std::size_t e = region.find('\n', h);
    std::string a = trim(region.substr(h + 4, e == std::string_view::npos ? std::string_view::npos : e - h - 4));
    if (!a.empty()) return Extraction{a, ExtractRule::hashes};
  }
  // The last $...$ of the last non-empty line.
  std::string_view last = region;
  while (!last.empty() && std::isspace(static_cast<unsigned char>(last.back()))) last.remove_suffix(1);
  if (std::size_t nl = last.rfind('\n'); nl != std::string_view::npos) last = last.substr(nl + 1);
  const std::size_t e = last.rfind('$');
  if (e != std::string_view::npos && e > 0) {
    const std::size_t b = last.rfind('$', e - 1);
    if (b != std::string_view::npos && e > b + 1) {
      std::string a = trim(last.substr(b + 1, e - b - 1));
      if (!a.empty()) return Extraction{a, ExtractRule::last_math};
    }
  }
  return std::nullopt;
}

bool answers_equivalent(std::string_view answer, std::string_view gold) { return math::equivalent(answer, gold); }

Verification verify_completion(std::string_view completion, std::string_view gold_text) {
  const math::Gold gold(gold_text);
  const bool several = gold.tree && (gold.tree->kind == math::Kind::list || gold.tree->kind == math::Kind::set);
  Verification v{Verdict::unparsable, std::nullopt, nullptr};
  auto e = extract_final(completion, several ? gold.tree->args.size() : 1);
  if (!e) return v;
  v.extracted = e->answer;
  v.rule = to_string(e->rule);
  if (!gold.checkable()) v.verdict = Verdict::unverified;  // no gold, or one the parser cannot read: no honest verdict
  else v.verdict = math::equivalent(e->answer, gold) ? Verdict::correct : Verdict::incorrect;
  return v;
}

}  // namespace distill::dataset
