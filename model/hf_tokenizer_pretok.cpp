// model/hf_tokenizer_pretok.cpp: the tokenizer.json normalizers and pre-tokenizers (and their parsing), with
// the pattern support they share (Oniguruma's \s and \S on PCRE2) and GPT-2's byte table.
// Regexes run on PCRE2 (UTF + UCP) with \s and \S rewritten to Oniguruma's meaning (HF's engine); the two then
// agree on every character Unicode 14 (PCRE2 10.42's data) assigns. A character assigned later (Kawi digits,
// U+1B7F...) may be classed differently. Normalizers use Unicode 9.0 data, as HF does
// (model/unicode_normalization.h).
#include <algorithm>
#include <functional>

#include "model/hf_tokenizer_impl.h"
#include "model/unicode_normalization.h"

namespace distill::model::hf_detail {

// ------------------------------------------------------------------------------------------------ patterns

namespace {

// The White_Space characters, which are Oniguruma's \s (HF's regex engine). PCRE2's \s also takes U+180E.
constexpr const char* kWhiteSpaceList =
    "\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";

}  // namespace

std::string oniguruma_spaces(const std::string& pattern) {
  const std::string list = kWhiteSpaceList;
  std::string out;
  bool in_class = false;
  std::size_t class_start = 0;  // where the current class's members begin (after "[" or "[^")
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size() && pattern[i + 1] == 'Q') {  // \Q...\E is literal text
      const std::size_t end = pattern.find("\\E", i + 2);
      const std::size_t stop = end == std::string::npos ? pattern.size() : end + 2;
      out.append(pattern, i, stop - i);
      i = stop - 1;
      continue;
    }
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[++i];
      if (e == 's') out += in_class ? list : "[" + list + "]";
      else if (e == 'S') out += in_class ? "\\S\\x{180E}" : "[^" + list + "]";
      else out += c, out += e;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      class_start = i + 1;
      continue;
    }
    if (in_class && c == ']' && i != class_start) in_class = false;
    out += c;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------- normalizers

namespace {

struct UnicodeNormalizer final : Normalizer {
  UnicodeForm form;
  explicit UnicodeNormalizer(UnicodeForm f) : form(f) {}
  std::string apply(std::string s) const override { return unicode_normalize(s, form); }
};

struct PrependNormalizer final : Normalizer {
  std::string prefix;
  std::string apply(std::string s) const override { return s.empty() ? s : prefix + s; }
};

struct ReplaceNormalizer final : Normalizer {
  Pattern pattern;
  std::string content;
  ReplaceNormalizer(Pattern p, std::string c) : pattern(std::move(p)), content(std::move(c)) {}
  std::string apply(std::string s) const override { return pattern.replace_all(s, content); }
};

struct StripNormalizer final : Normalizer {
  bool left = true, right = true;
  std::string apply(std::string s) const override {
    std::size_t b = 0, e = s.size();
    while (left && b < e && is_white_space(code_point_at(s, b))) b += char_len(static_cast<unsigned char>(s[b]));
    while (right && e > b) {
      std::size_t k = e - 1;
      while (k > b && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
      if (!is_white_space(code_point_at(s, k))) break;
      e = k;
    }
    return s.substr(b, e - b);
  }
};

struct NormalizerSequence final : Normalizer {
  std::vector<std::unique_ptr<Normalizer>> steps;
  std::string apply(std::string s) const override {
    for (const auto& n : steps) s = n->apply(std::move(s));
    return s;
  }
};

}  // namespace

std::unique_ptr<Normalizer> parse_normalizer(const json& v, const std::string& path, const Ctx& ctx) {
  const std::string type = type_of(v, path, ctx);
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(UnicodeForm::NFC);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(UnicodeForm::NFD);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(UnicodeForm::NFKC);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(UnicodeForm::NFKD);
  if (type == "Prepend") {
    auto n = std::make_unique<PrependNormalizer>();
    n->prefix = string_member(v, "prepend", path, ctx);
    return n;
  }
  if (type == "Replace")
    return std::make_unique<ReplaceNormalizer>(Pattern(member(v, "pattern", path, ctx), path + ".pattern", ctx),
                                               string_member(v, "content", path, ctx));
  if (type == "Strip") {
    auto n = std::make_unique<StripNormalizer>();
    n->left = bool_member(v, "strip_left", true, path, ctx);
    n->right = bool_member(v, "strip_right", true, path, ctx);
    return n;
  }
  if (type == "Sequence") return parse_sequence<NormalizerSequence>(v, "normalizers", path, ctx, parse_normalizer);
  unsupported(type, path, "NFC, NFD, NFKC, NFKD, Prepend, Replace, Strip or Sequence", ctx);
}

// ------------------------------------------------------------------------------------------ pre-tokenizers

namespace {

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

// tokenizers' NormalizedString::split: the matches and the gaps between them cover `s`; the behaviour decides
// which parts are kept and how matches join their neighbours. Empty parts are dropped.
std::vector<Piece> split_piece(const Piece& p, const std::vector<Range>& matches, Behavior behavior, bool invert) {
  const std::string& s = p.text;
  std::vector<std::pair<Range, bool>> parts;  // (range, is_match)
  std::size_t prev = 0;
  for (auto [b, e] : matches) {
    if (prev != b) parts.push_back({{prev, b}, invert});
    parts.push_back({{b, e}, !invert});
    prev = e;
  }
  if (prev != s.size()) parts.push_back({{prev, s.size()}, invert});

  std::vector<std::pair<Range, bool>> kept;  // (range, remove)
  switch (behavior) {
    case Behavior::Isolated:
      for (auto& [r, m] : parts) kept.push_back({r, false});
      break;
    case Behavior::Removed:
      kept = parts;
      break;
    case Behavior::Contiguous: {
      std::optional<bool> previous;
      for (auto& [r, m] : parts) {
        if (previous == m && !kept.empty()) kept.back().first.second = r.second;
        else kept.push_back({r, false});
        previous = m;
      }
      break;
    }
    case Behavior::MergedWithPrevious: {
      bool previous = false;
      for (auto& [r, m] : parts) {
        if (m && !previous && !kept.empty()) kept.back().first.second = r.second;
        else kept.push_back({r, false});
        previous = m;
      }
      break;
    }
    case Behavior::MergedWithNext: {
      bool previous = false;
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        if (it->second && !previous && !kept.empty()) kept.back().first.first = it->first.first;
        else kept.push_back({it->first, false});
        previous = it->second;
      }
      std::reverse(kept.begin(), kept.end());
      break;
    }
  }
  std::vector<Piece> out;
  for (auto& [r, remove] : kept)
    if (!remove && r.second > r.first)
      out.push_back({s.substr(r.first, r.second - r.first), p.at_start && r.first == 0});
  return out;
}

void split_all(std::vector<Piece>& pieces, const std::function<std::vector<Range>(std::string_view)>& find,
               Behavior behavior, bool invert) {
  std::vector<Piece> out;
  for (const Piece& p : pieces)
    for (Piece& q : split_piece(p, find(p.text), behavior, invert)) out.push_back(std::move(q));
  pieces = std::move(out);
}

struct SplitPreTokenizer final : PreTokenizer {
  Pattern pattern;
  Behavior behavior;
  bool invert;
  SplitPreTokenizer(Pattern p, Behavior b, bool inv) : pattern(std::move(p)), behavior(b), invert(inv) {}
  void apply(std::vector<Piece>& pieces) const override {
    split_all(pieces, [&](std::string_view s) { return pattern.find_all(s); }, behavior, invert);
  }
};

}  // namespace

const ByteTable& byte_table() {
  static const ByteTable t;
  return t;
}

namespace {

constexpr const char* kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

struct ByteLevelPreTokenizer final : PreTokenizer {
  bool add_prefix_space = false;
  std::optional<Regex> regex;  // GPT-2's, when use_regex
  void apply(std::vector<Piece>& pieces) const override {
    if (add_prefix_space)
      for (Piece& p : pieces)
        if (p.text.empty() || p.text[0] != ' ') p.text.insert(0, 1, ' ');
    if (regex) split_all(pieces, [&](std::string_view s) { return regex->find_all(s); }, Behavior::Isolated, false);
    const ByteTable& t = byte_table();
    for (Piece& p : pieces) {
      std::string mapped;
      for (unsigned char c : p.text) mapped += t.to_char[c];
      p.text = std::move(mapped);
    }
  }
};

struct MetaspacePreTokenizer final : PreTokenizer {
  std::string replacement;
  PrependScheme scheme = PrependScheme::Always;
  bool split = true;
  void apply(std::vector<Piece>& pieces) const override {
    const Pattern space(std::string(" "));
    for (Piece& p : pieces) {
      p.text = space.replace_all(p.text, replacement);
      const bool starts = p.text.compare(0, replacement.size(), replacement) == 0;
      if (!starts && (scheme == PrependScheme::Always || (scheme == PrependScheme::First && p.at_start)))
        p.text.insert(0, replacement);
    }
    if (split) {
      const Pattern mark(replacement);
      split_all(pieces, [&](std::string_view s) { return mark.find_all(s); }, Behavior::MergedWithNext, false);
    }
  }
};

struct DigitsPreTokenizer final : PreTokenizer {
  Regex digit;
  bool individual;
  DigitsPreTokenizer(bool ind, const Ctx& ctx) : digit("\\p{N}", "", ctx), individual(ind) {}
  void apply(std::vector<Piece>& pieces) const override {
    split_all(pieces, [&](std::string_view s) { return digit.find_all(s); },
              individual ? Behavior::Isolated : Behavior::Contiguous, false);
  }
};

struct PreTokenizerSequence final : PreTokenizer {
  std::vector<std::unique_ptr<PreTokenizer>> steps;
  void apply(std::vector<Piece>& pieces) const override {
    for (const auto& s : steps) s->apply(pieces);
  }
};

Behavior parse_behavior(const json& v, const std::string& path, const Ctx& ctx) {
  const std::string b = string_at(v, path, ctx);
  if (b == "Removed") return Behavior::Removed;
  if (b == "Isolated") return Behavior::Isolated;
  if (b == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (b == "MergedWithNext") return Behavior::MergedWithNext;
  if (b == "Contiguous") return Behavior::Contiguous;
  ctx.fail(path, show(b) + " is not a split behavior (expected Removed, Isolated, MergedWithPrevious, "
                             "MergedWithNext or Contiguous)");
}

}  // namespace

std::string metaspace_replacement(const json& v, const std::string& path, const Ctx& ctx) {
  const std::string r = string_member(v, "replacement", path, ctx);
  if (r.empty() || char_len(static_cast<unsigned char>(r[0])) != r.size())
    ctx.fail(path + ".replacement", show(r) + " is not a single character");
  return r;
}

PrependScheme metaspace_scheme(const json& v, const std::string& path, const Ctx& ctx) {
  if (const json* s = find_member(v, "prepend_scheme")) {
    const std::string name = string_at(*s, path + ".prepend_scheme", ctx);
    if (name == "always") return PrependScheme::Always;
    if (name == "first") return PrependScheme::First;
    if (name == "never") return PrependScheme::Never;
    ctx.fail(path + ".prepend_scheme", show(name) + " is not always, first or never");
  }
  // Files written before prepend_scheme existed say add_prefix_space instead.
  return bool_member(v, "add_prefix_space", true, path, ctx) ? PrependScheme::Always : PrependScheme::Never;
}

std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const json& v, const std::string& path, const Ctx& ctx) {
  const std::string type = type_of(v, path, ctx);
  if (type == "Split") {
    Pattern pattern(member(v, "pattern", path, ctx), path + ".pattern", ctx);
    const Behavior behavior = parse_behavior(member(v, "behavior", path, ctx), path + ".behavior", ctx);
    const bool invert = bool_member(v, "invert", false, path, ctx);
    return std::make_unique<SplitPreTokenizer>(std::move(pattern), behavior, invert);
  }
  if (type == "ByteLevel") {
    auto p = std::make_unique<ByteLevelPreTokenizer>();
    p->add_prefix_space = bool_member(v, "add_prefix_space", true, path, ctx);
    if (bool_member(v, "use_regex", true, path, ctx)) p->regex.emplace(kGpt2Regex, path, ctx);
    return p;
  }
  if (type == "Metaspace") {
    auto p = std::make_unique<MetaspacePreTokenizer>();
    p->replacement = metaspace_replacement(v, path, ctx);
    p->scheme = metaspace_scheme(v, path, ctx);
    p->split = bool_member(v, "split", true, path, ctx);
    return p;
  }
  if (type == "Digits")
    return std::make_unique<DigitsPreTokenizer>(bool_member(v, "individual_digits", false, path, ctx), ctx);
  if (type == "Sequence") return parse_sequence<PreTokenizerSequence>(v, "pretokenizers", path, ctx, parse_pre_tokenizer);
  unsupported(type, path, "Split, ByteLevel, Metaspace, Digits or Sequence", ctx);
}

}  // namespace distill::model::hf_detail
