// model/hf_tokenizer.cpp: the tokenizer.json backend. It mirrors the pipeline of HF `tokenizers`:
//   added tokens split off the raw text -> normalizer -> added tokens split off the normalized text ->
//   pre-tokenizer -> BPE per pre-token;  decode: ids -> token strings -> decoder chain -> text.
// Every rule that is not obvious below was checked against the Python package (tokenizers 0.23.3); the parity
// fixtures of tests/fixtures/hf/gen_tokenizers.py pin them. Regexes run on PCRE2 (UTF + UCP) with \s and \S
// rewritten to Oniguruma's meaning (HF's engine); the two then agree on every character Unicode 14 (PCRE2
// 10.42's data) assigns. A character assigned later (Kawi digits, U+1B7F...) may be classed differently.
// Normalizers use Unicode 9.0 data, as HF does (model/unicode_normalization.h).
// Deliberately not supported (an InputError, not an approximation): models other than BPE, BPE dropout, and
// the normalizers/pre-tokenizers/decoders no supported family uses (Lowercase, BertPreTokenizer, WordPiece...).
#define PCRE2_CODE_UNIT_WIDTH 8
#include "model/hf_tokenizer.h"

#include <pcre2.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <queue>
#include <unordered_map>

#include "common/errors.h"
#include "common/fs.h"
#include "common/utf8.h"
#include "model/unicode_normalization.h"

namespace distill::model {

namespace {

using json = nlohmann::json;
using Range = std::pair<std::size_t, std::size_t>;  // [start, end) in bytes

// ---------------------------------------------------------------------------------------------- UTF-8 helpers
// These run on text already checked to be UTF-8 (input is validated once, at the door).

std::size_t char_len(unsigned char lead) { return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4; }

char32_t code_point_at(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return char32_t(static_cast<unsigned char>(s[i + k])); };
  switch (char_len(static_cast<unsigned char>(s[i]))) {
    case 1: return b(0);
    case 2: return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    case 3: return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    default: return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  }
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

// Rust's char::is_whitespace (the White_Space property): what lstrip/rstrip of an added token absorb.
bool is_white_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// ------------------------------------------------------------------------------------------ error reporting

// Where a JSON value sits, for messages: "tokenizer.json: model.merges[12] ...".
struct Ctx {
  std::string file;
  [[noreturn]] void fail(const std::string& path, const std::string& what) const {
    throw InputError(file + ": " + path + " " + what);
  }
};

std::string show(const std::string& s) {
  const std::string shown = printable_utf8(s.size() > 60 ? s.substr(0, 60) + "..." : s);
  return "'" + shown + "'";
}

const json* find_member(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

const json& member(const json& obj, const char* key, const std::string& path, const Ctx& ctx) {
  if (!obj.is_object()) ctx.fail(path, "is not an object");
  const json* v = find_member(obj, key);
  if (!v) ctx.fail(path + "." + key, "is missing");
  return *v;
}

std::string string_at(const json& v, const std::string& path, const Ctx& ctx) {
  if (!v.is_string()) ctx.fail(path, "is not a string");
  const auto& s = v.get_ref<const std::string&>();
  if (!is_valid_utf8(s)) ctx.fail(path, "is not valid UTF-8");
  return s;
}

std::string string_member(const json& obj, const char* key, const std::string& path, const Ctx& ctx) {
  return string_at(member(obj, key, path, ctx), path + "." + key, ctx);
}

bool bool_member(const json& obj, const char* key, bool fallback, const std::string& path, const Ctx& ctx) {
  const json* v = find_member(obj, key);
  if (!v) return fallback;
  if (!v->is_boolean()) ctx.fail(path + "." + key, "is not true or false");
  return v->get<bool>();
}

std::int64_t int_at(const json& v, std::int64_t lo, std::int64_t hi, const std::string& path, const Ctx& ctx) {
  if (!v.is_number_integer()) ctx.fail(path, "is not an integer");
  const auto x = v.is_number_unsigned() ? std::int64_t(std::min<std::uint64_t>(v.get<std::uint64_t>(), INT64_MAX))
                                        : v.get<std::int64_t>();
  if (x < lo || x > hi) ctx.fail(path, std::to_string(x) + " is out of range [" + std::to_string(lo) + ", " +
                                           std::to_string(hi) + "]");
  return x;
}

std::string type_of(const json& obj, const std::string& path, const Ctx& ctx) {
  return string_member(obj, "type", path, ctx);
}

[[noreturn]] void unsupported(const std::string& type, const std::string& path, const char* expected,
                              const Ctx& ctx) {
  ctx.fail(path + ".type", show(type) + " is not supported (expected " + expected + ")");
}

// The largest id accepted: far above any real vocabulary (Gemma's 262k), low enough that a corrupt id cannot
// make the id table exhaust memory.
constexpr std::int64_t kMaxId = (1 << 21) - 1;

// ------------------------------------------------------------------------------------------------ patterns

// The White_Space characters, which are Oniguruma's \s (HF's regex engine). PCRE2's \s also takes U+180E.
constexpr const char* kWhiteSpaceList =
    "\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";

// `pattern` with \s and \S spelled out as Oniguruma means them; everything else is left as written.
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

// A compiled PCRE2 regex. Matching is thread-safe (each call has its own match data).
class Regex {
 public:
  Regex(const std::string& pattern_as_written, const std::string& path, const Ctx& ctx) {
    const std::string pattern = oniguruma_spaces(pattern_as_written);
    int err = 0;
    PCRE2_SIZE at = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                     PCRE2_UTF | PCRE2_UCP, &err, &at, nullptr);
    if (!code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      ctx.fail(path, show(pattern_as_written) + " is not a usable regex (" + reinterpret_cast<char*>(msg) + ")");
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // best effort: the interpreter is the fallback
    code_.reset(code, pcre2_code_free);
  }

  // Non-overlapping matches left to right; an empty match moves the search on by one character.
  std::vector<Range> find_all(std::string_view s) const {
    std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> md(
        pcre2_match_data_create_from_pattern(code_.get(), nullptr), pcre2_match_data_free);
    std::vector<Range> out;
    std::size_t pos = 0;
    while (pos <= s.size()) {
      const int rc = pcre2_match(code_.get(), reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), pos,
                                 PCRE2_NO_UTF_CHECK, md.get(), nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) throw RuntimeFailure("tokenizer regex failed (PCRE2 error " + std::to_string(rc) + ")");
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
      out.emplace_back(ov[0], ov[1]);
      if (ov[1] > ov[0]) pos = ov[1];
      else if (ov[1] < s.size()) pos = ov[1] + char_len(static_cast<unsigned char>(s[ov[1]]));
      else break;
    }
    return out;
  }

  // Whether the regex matches at the very start of `s`.
  bool matches_at_start(std::string_view s) const {
    std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> md(
        pcre2_match_data_create_from_pattern(code_.get(), nullptr), pcre2_match_data_free);
    return pcre2_match(code_.get(), reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), 0,
                       PCRE2_NO_UTF_CHECK | PCRE2_ANCHORED, md.get(), nullptr) >= 0;
  }

 private:
  std::shared_ptr<pcre2_code> code_;
};

// tokenizers' Pattern: {"String": literal} or {"Regex": regex} (a bare string is a literal too).
class Pattern {
 public:
  Pattern(const json& v, const std::string& path, const Ctx& ctx) {
    if (v.is_string()) {
      literal_ = string_at(v, path, ctx);
    } else if (const json* s = find_member(v, "String")) {
      literal_ = string_at(*s, path + ".String", ctx);
    } else if (const json* r = find_member(v, "Regex")) {
      regex_.emplace(string_at(*r, path + ".Regex", ctx), path + ".Regex", ctx);
    } else {
      ctx.fail(path, "is neither {\"String\": ...} nor {\"Regex\": ...}");
    }
  }
  explicit Pattern(std::string literal) : literal_(std::move(literal)) {}

  std::vector<Range> find_all(std::string_view s) const {
    if (regex_) return regex_->find_all(s);
    std::vector<Range> out;
    if (literal_.empty()) return out;  // as tokenizers: an empty literal never matches
    for (std::size_t p = s.find(literal_); p != std::string_view::npos; p = s.find(literal_, p + literal_.size()))
      out.emplace_back(p, p + literal_.size());
    return out;
  }

  std::string replace_all(std::string_view s, const std::string& with) const {
    std::string out;
    std::size_t prev = 0;
    for (auto [b, e] : find_all(s)) {
      out.append(s.substr(prev, b - prev));
      out += with;
      prev = e;
    }
    out.append(s.substr(prev));
    return out;
  }

 private:
  std::string literal_;
  std::optional<Regex> regex_;
};

// ---------------------------------------------------------------------------------------------- normalizers

struct Normalizer {
  virtual ~Normalizer() = default;
  virtual std::string apply(std::string s) const = 0;
};

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
  if (type == "Sequence") {
    const json& list = member(v, "normalizers", path, ctx);
    if (!list.is_array()) ctx.fail(path + ".normalizers", "is not an array");
    auto seq = std::make_unique<NormalizerSequence>();
    for (std::size_t i = 0; i < list.size(); ++i)
      seq->steps.push_back(parse_normalizer(list[i], path + ".normalizers[" + std::to_string(i) + "]", ctx));
    return seq;
  }
  unsupported(type, path, "NFC, NFD, NFKC, NFKD, Prepend, Replace, Strip or Sequence", ctx);
}

// ------------------------------------------------------------------------------------------ pre-tokenizers

// A pre-token: its text and whether it starts at offset 0 of the original text (Metaspace's "first" scheme).
struct Piece {
  std::string text;
  bool at_start = false;
};

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

struct PreTokenizer {
  virtual ~PreTokenizer() = default;
  virtual void apply(std::vector<Piece>& pieces) const = 0;
};

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

// GPT-2's byte-to-unicode table: printable bytes stand for themselves, the others for U+0100.. in order, so
// every byte sequence becomes visible text the BPE vocabulary can hold.
struct ByteTable {
  std::string to_char[256];
  std::unordered_map<char32_t, unsigned char> to_byte;
  ByteTable() {
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      const char32_t cp = printable ? char32_t(b) : char32_t(256 + extra++);
      append_utf8(to_char[b], cp);
      to_byte[cp] = static_cast<unsigned char>(b);
    }
  }
};

const ByteTable& byte_table() {
  static const ByteTable t;
  return t;
}

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

enum class PrependScheme { Always, First, Never };

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
  if (type == "Sequence") {
    const json& list = member(v, "pretokenizers", path, ctx);
    if (!list.is_array()) ctx.fail(path + ".pretokenizers", "is not an array");
    auto seq = std::make_unique<PreTokenizerSequence>();
    for (std::size_t i = 0; i < list.size(); ++i)
      seq->steps.push_back(parse_pre_tokenizer(list[i], path + ".pretokenizers[" + std::to_string(i) + "]", ctx));
    return seq;
  }
  unsupported(type, path, "Split, ByteLevel, Metaspace, Digits or Sequence", ctx);
}

// --------------------------------------------------------------------------------------------------- BPE

class Bpe {
 public:
  Bpe(const json& model, const Ctx& ctx) {
    const std::string path = "model";
    if (!model.is_object()) ctx.fail(path, "is not an object");
    if (const json* t = find_member(model, "type"); t && string_at(*t, path + ".type", ctx) != "BPE")
      ctx.fail(path + ".type", show(t->get<std::string>()) + " is not supported (expected BPE)");
    if (const json* d = find_member(model, "dropout"); d && !(d->is_number() && d->get<double>() == 0.0))
      ctx.fail(path + ".dropout", "is set; BPE dropout is a training-time option and is not supported");
    ignore_merges_ = bool_member(model, "ignore_merges", false, path, ctx);
    byte_fallback_ = bool_member(model, "byte_fallback", false, path, ctx);
    fuse_unk_ = bool_member(model, "fuse_unk", false, path, ctx);
    if (const json* p = find_member(model, "continuing_subword_prefix"))
      prefix_ = string_at(*p, path + ".continuing_subword_prefix", ctx);
    if (const json* s = find_member(model, "end_of_word_suffix"))
      suffix_ = string_at(*s, path + ".end_of_word_suffix", ctx);
    read_vocab(member(model, "vocab", path, ctx), ctx);
    if (const json* u = find_member(model, "unk_token")) {
      unk_token_ = string_at(*u, path + ".unk_token", ctx);
      if (auto id = id_of(*unk_token_)) unk_id_ = *id;
    }
    for (int b = 0; b < 256; ++b) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "<0x%02X>", b);
      byte_ids_[b] = id_of(buf).value_or(-1);
    }
    if (const json* m = find_member(model, "merges")) read_merges(*m, ctx);
  }

  std::optional<int> id_of(std::string_view token) const {
    auto it = vocab_.find(std::string(token));
    return it == vocab_.end() ? std::nullopt : std::optional<int>(it->second);
  }
  const std::vector<std::string>& tokens() const { return id_to_token_; }
  const std::optional<std::string>& unk_token() const { return unk_token_; }

  // Appends the ids of one pre-token.
  void tokenize(const std::string& word, std::vector<int>& out) const {
    if (word.empty()) return;
    if (ignore_merges_)
      if (auto id = id_of(word)) return out.push_back(*id);
    {
      std::lock_guard lock(cache_mutex_);
      if (auto it = cache_.find(word); it != cache_.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    std::vector<int> ids = merge_word(word);
    out.insert(out.end(), ids.begin(), ids.end());
    if (word.size() > kCacheWordBytes) return;  // a long run (of spaces, digits...) is rarely seen twice
    std::lock_guard lock(cache_mutex_);
    if (cache_.size() >= kCacheLimit) cache_.clear();  // bounded: a long-running process sees unbounded text
    cache_.emplace(word, std::move(ids));
  }

 private:
  static constexpr std::size_t kCacheLimit = 1 << 16, kCacheWordBytes = 256;

  void read_vocab(const json& vocab, const Ctx& ctx) {
    if (!vocab.is_object()) ctx.fail("model.vocab", "is not an object of token: id");
    vocab_.reserve(vocab.size());
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
      // The path is built only for a message: building it for 150k entries would double the load time.
      const json& v = it.value();
      const bool plain = v.is_number_unsigned() && v.get<std::uint64_t>() <= std::uint64_t(kMaxId);
      if (!plain || !is_valid_utf8(it.key())) {
        const std::string path = "model.vocab[" + show(it.key()) + "]";
        if (!is_valid_utf8(it.key())) ctx.fail(path, "is not valid UTF-8");
        int_at(v, 0, kMaxId, path, ctx);
      }
      const int id = int(v.get<std::uint64_t>());
      vocab_[it.key()] = id;
      if (std::size_t(id) >= id_to_token_.size()) id_to_token_.resize(std::size_t(id) + 1);
      id_to_token_[std::size_t(id)] = it.key();
    }
  }

  // Merges are "a b" strings (split on the one space) or [a, b] pairs; rank = position in the list.
  void read_merges(const json& merges, const Ctx& ctx) {
    if (!merges.is_array()) ctx.fail("model.merges", "is not an array");
    merges_.reserve(merges.size());
    for (std::size_t rank = 0; rank < merges.size(); ++rank) {
      const std::string path = "model.merges[" + std::to_string(rank) + "]";
      const json& m = merges[rank];
      std::string a, b, shown;
      if (m.is_string()) {
        shown = m.get_ref<const std::string&>();  // UTF-8 is checked by the vocabulary lookups below
        const auto sp = shown.find(' ');
        if (sp == std::string::npos || shown.find(' ', sp + 1) != std::string::npos)
          ctx.fail(path, show(shown) + " is not two tokens separated by one space");
        a = shown.substr(0, sp), b = shown.substr(sp + 1);
      } else if (m.is_array() && m.size() == 2) {
        a = string_at(m[0], path + "[0]", ctx), b = string_at(m[1], path + "[1]", ctx);
        shown = a + " " + b;
      } else {
        ctx.fail(path, "is neither \"a b\" nor [\"a\", \"b\"]");
      }
      const std::string merged = a + (!prefix_.empty() && b.rfind(prefix_, 0) == 0 ? b.substr(prefix_.size()) : b);
      auto need = [&](const std::string& t) {
        auto id = id_of(t);
        if (!id) ctx.fail(path, show(shown) + ": " + show(t) + " is not in the vocab");
        return *id;
      };
      const int ia = need(a), ib = need(b), im = need(merged);
      merges_[key(ia, ib)] = {int(rank), im};
    }
  }

  static std::uint64_t key(int a, int b) { return (std::uint64_t(std::uint32_t(a)) << 32) | std::uint32_t(b); }

  // The word's initial symbols: one per character (prefix/suffix applied), unknown characters as byte pieces
  // when byte_fallback, else as unk (consecutive unks fused when fuse_unk), else dropped (as tokenizers).
  std::vector<int> initial_symbols(const std::string& word) const {
    std::vector<int> ids;
    std::optional<int> pending_unk;  // an unk not yet pushed, so a following one can fuse into it
    for (std::size_t i = 0; i < word.size();) {
      const std::size_t len = char_len(static_cast<unsigned char>(word[i]));
      std::string s = word.substr(i, len);
      if (i > 0) s.insert(0, prefix_);
      if (i + len == word.size()) s += suffix_;
      const std::string raw = word.substr(i, len);
      i += len;
      if (auto id = id_of(s)) {
        if (pending_unk) ids.push_back(*pending_unk), pending_unk.reset();
        ids.push_back(*id);
        continue;
      }
      // tokenizers leaves a pending unk pending across byte pieces (it lands after them, and a later unk fuses
      // into it); only a vocabulary hit flushes it.
      const bool bytes_known = std::all_of(raw.begin(), raw.end(),
                                           [&](char c) { return byte_ids_[static_cast<unsigned char>(c)] >= 0; });
      if (byte_fallback_ && bytes_known) {
        for (unsigned char c : raw) ids.push_back(byte_ids_[c]);
        continue;
      }
      if (!unk_id_) continue;
      if (pending_unk && !fuse_unk_) ids.push_back(*pending_unk);
      pending_unk = unk_id_;
    }
    if (pending_unk) ids.push_back(*pending_unk);
    return ids;
  }

  // Applies merges lowest rank first (ties: leftmost), on a linked list of symbols with a queue of candidate
  // pairs; stale queue entries are recognised and skipped, as tokenizers' Word::merge_all does.
  std::vector<int> merge_word(const std::string& word) const {
    std::vector<int> sym = initial_symbols(word);
    const int n = int(sym.size());
    std::vector<int> prev(n), next(n);
    std::vector<bool> alive(n, true);
    for (int i = 0; i < n; ++i) prev[i] = i - 1, next[i] = i + 1 < n ? i + 1 : -1;
    struct Cand {
      int rank, pos, new_id;
      bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> queue;
    auto consider = [&](int pos) {
      if (pos < 0 || next[pos] < 0) return;
      if (auto it = merges_.find(key(sym[pos], sym[next[pos]])); it != merges_.end())
        queue.push({it->second.first, pos, it->second.second});
    };
    for (int i = 0; i + 1 < n; ++i) consider(i);
    while (!queue.empty()) {
      const Cand top = queue.top();
      queue.pop();
      if (!alive[top.pos] || next[top.pos] < 0) continue;
      const int right = next[top.pos];
      auto it = merges_.find(key(sym[top.pos], sym[right]));
      if (it == merges_.end() || it->second.second != top.new_id) continue;  // stale
      sym[top.pos] = top.new_id;
      alive[right] = false;
      next[top.pos] = next[right];
      if (next[right] >= 0) prev[next[right]] = top.pos;
      consider(prev[top.pos]);
      consider(top.pos);
    }
    std::vector<int> out;
    for (int i = n > 0 ? 0 : -1; i >= 0; i = next[i]) out.push_back(sym[i]);
    return out;
  }

  std::unordered_map<std::string, int> vocab_;
  std::vector<std::string> id_to_token_;
  std::unordered_map<std::uint64_t, std::pair<int, int>> merges_;  // (left, right) -> (rank, merged id)
  bool ignore_merges_ = false, byte_fallback_ = false, fuse_unk_ = false;
  std::string prefix_, suffix_;
  std::optional<std::string> unk_token_;
  std::optional<int> unk_id_;
  int byte_ids_[256] = {};
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int>> cache_;
};

// ------------------------------------------------------------------------------------------- added tokens

struct AddedToken {
  std::string content;
  std::string decoded;  // what decode() shows: tokenizers gives a normalized token's normalized content
  int id = -1;
  bool special = false, normalized = false, lstrip = false, rstrip = false, single_word = false;
};

// A piece of text, or an added token found in it (id >= 0); offset = where it starts in the searched text.
struct Segment {
  std::string text;
  int id = -1;
  std::size_t offset = 0;
};

// A word character as Rust's regex crate defines \w (tokenizers' single_word test uses it): not PCRE2's \w,
// which takes every number (①) and no combining mark.
constexpr const char* kWordChar = "[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}]";

// Finds added tokens leftmost-longest, as tokenizers' Aho-Corasick (MatchKind::LeftmostLongest) does, then
// applies each token's single_word / lstrip / rstrip options.
class AddedMatcher {
 public:
  AddedMatcher() = default;
  AddedMatcher(std::vector<std::pair<std::string, const AddedToken*>> patterns, const Ctx& ctx)
      : patterns_(std::move(patterns)), word_char_(std::in_place, kWordChar, "", ctx) {
    for (std::size_t i = 0; i < patterns_.size(); ++i)
      if (!patterns_[i].first.empty())
        by_first_byte_[static_cast<unsigned char>(patterns_[i].first[0])].push_back(int(i));
    for (auto& list : by_first_byte_)
      std::stable_sort(list.begin(), list.end(), [&](int a, int b) {
        return patterns_[std::size_t(a)].first.size() > patterns_[std::size_t(b)].first.size();
      });
  }

  std::vector<Segment> split(const std::string& s) const {
    std::vector<Segment> out;
    std::size_t done = 0;  // end of the last emitted part
    for (std::size_t i = 0; i < s.size();) {
      const int hit = longest_at(s, i);
      if (hit < 0) {
        ++i;
        continue;
      }
      const auto& [pattern, token] = patterns_[std::size_t(hit)];
      std::size_t start = i, stop = i + pattern.size();
      i = stop;  // matching goes on after the match even when the options reject it
      if (token->single_word && (ends_with_word(s, start) || starts_with_word(s, stop))) continue;
      if (token->lstrip) start = std::max(done, start - trailing_space(s, done, start));
      if (token->rstrip) stop += leading_space(s, stop);
      if (start > done) out.push_back({s.substr(done, start - done), -1, done});
      out.push_back({s.substr(start, stop - start), token->id, start});
      done = stop;
      i = std::max(i, stop);
    }
    if (done < s.size()) out.push_back({s.substr(done), -1, done});
    return out;
  }

 private:
  int longest_at(const std::string& s, std::size_t i) const {
    for (int k : by_first_byte_[static_cast<unsigned char>(s[i])])
      if (s.compare(i, patterns_[std::size_t(k)].first.size(), patterns_[std::size_t(k)].first) == 0) return k;
    return -1;
  }
  bool ends_with_word(const std::string& s, std::size_t end) const {
    if (end == 0) return false;
    std::size_t k = end - 1;
    while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
    return word_char_->matches_at_start(std::string_view(s).substr(k, end - k));
  }
  bool starts_with_word(const std::string& s, std::size_t begin) const {
    return begin < s.size() && word_char_->matches_at_start(std::string_view(s).substr(begin));
  }
  static std::size_t trailing_space(const std::string& s, std::size_t from, std::size_t end) {
    std::size_t b = end;
    while (b > from) {
      std::size_t k = b - 1;
      while (k > from && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
      if (!is_white_space(code_point_at(s, k))) break;
      b = k;
    }
    return end - b;
  }
  static std::size_t leading_space(const std::string& s, std::size_t begin) {
    std::size_t e = begin;
    while (e < s.size() && is_white_space(code_point_at(s, e))) e += char_len(static_cast<unsigned char>(s[e]));
    return e - begin;
  }

  std::vector<std::pair<std::string, const AddedToken*>> patterns_;
  std::vector<int> by_first_byte_[256];
  std::optional<Regex> word_char_;
};

// --------------------------------------------------------------------------------------- post-processors

struct PostProcessor {
  virtual ~PostProcessor() = default;
  virtual void apply(std::vector<int>& ids) const = 0;
};

// TemplateProcessing's "single" template (also RobertaProcessing/BertProcessing: [cls] A [sep]).
struct TemplateProcessor final : PostProcessor {
  std::vector<int> before, after;
  void apply(std::vector<int>& ids) const override {
    ids.insert(ids.begin(), before.begin(), before.end());
    ids.insert(ids.end(), after.begin(), after.end());
  }
};

struct NoOpProcessor final : PostProcessor {  // ByteLevel: it only trims offsets, ids are untouched
  void apply(std::vector<int>&) const override {}
};

struct ProcessorSequence final : PostProcessor {
  std::vector<std::unique_ptr<PostProcessor>> steps;
  void apply(std::vector<int>& ids) const override {
    for (const auto& s : steps) s->apply(ids);
  }
};

std::unique_ptr<PostProcessor> parse_template(const json& v, const std::string& path, const Ctx& ctx) {
  const json& single = member(v, "single", path, ctx);
  if (!single.is_array()) ctx.fail(path + ".single", "is not an array");
  const json& specials = member(v, "special_tokens", path, ctx);
  auto p = std::make_unique<TemplateProcessor>();
  bool seen_sequence = false;
  for (std::size_t i = 0; i < single.size(); ++i) {
    const std::string at = path + ".single[" + std::to_string(i) + "]";
    if (find_member(single[i], "Sequence")) {
      if (seen_sequence) ctx.fail(at, "repeats the sequence; a template holds it once");
      seen_sequence = true;
      continue;
    }
    const json& sp = member(single[i], "SpecialToken", at, ctx);
    const std::string name = string_member(sp, "id", at + ".SpecialToken", ctx);
    const std::string spath = path + ".special_tokens[" + show(name) + "]";
    const json& ids = member(member(specials, name.c_str(), path + ".special_tokens", ctx), "ids", spath, ctx);
    if (!ids.is_array()) ctx.fail(spath + ".ids", "is not an array");
    for (std::size_t k = 0; k < ids.size(); ++k)
      (seen_sequence ? p->after : p->before).push_back(int(int_at(ids[k], 0, kMaxId, spath + ".ids", ctx)));
  }
  if (!seen_sequence) ctx.fail(path + ".single", "has no {\"Sequence\": ...} item");
  return p;
}

std::unique_ptr<PostProcessor> parse_post_processor(const json& v, const std::string& path, const Ctx& ctx) {
  const std::string type = type_of(v, path, ctx);
  if (type == "TemplateProcessing") return parse_template(v, path, ctx);
  if (type == "ByteLevel") return std::make_unique<NoOpProcessor>();
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    auto p = std::make_unique<TemplateProcessor>();
    auto id_of = [&](const char* key) {
      const json& pair = member(v, key, path, ctx);
      if (!pair.is_array() || pair.size() != 2) ctx.fail(path + "." + key, "is not a [token, id] pair");
      return int(int_at(pair[1], 0, kMaxId, path + "." + key + "[1]", ctx));
    };
    p->before = {id_of("cls")};
    p->after = {id_of("sep")};
    return p;
  }
  if (type == "Sequence") {
    const json& list = member(v, "processors", path, ctx);
    if (!list.is_array()) ctx.fail(path + ".processors", "is not an array");
    auto seq = std::make_unique<ProcessorSequence>();
    for (std::size_t i = 0; i < list.size(); ++i)
      seq->steps.push_back(parse_post_processor(list[i], path + ".processors[" + std::to_string(i) + "]", ctx));
    return seq;
  }
  unsupported(type, path, "TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing or Sequence", ctx);
}

// ---------------------------------------------------------------------------------------------- decoders

// A decoder turns the list of token strings into another list; the final text is their concatenation.
struct Decoder {
  virtual ~Decoder() = default;
  virtual void apply(std::vector<std::string>& tokens) const = 0;
};

// Maps every token back through the byte table (a token with a character outside it, such as an added token
// like "<｜end▁of▁sentence｜>", contributes its own bytes), then reads the bytes as UTF-8, each ill-formed part
// becoming U+FFFD (Rust's from_utf8_lossy).
struct ByteLevelDecoder final : Decoder {
  void apply(std::vector<std::string>& tokens) const override {
    const ByteTable& t = byte_table();
    std::string bytes;
    for (const std::string& tok : tokens) {
      std::string mapped;
      bool all = true;
      for (std::size_t i = 0; i < tok.size() && all; i += char_len(static_cast<unsigned char>(tok[i]))) {
        auto it = t.to_byte.find(code_point_at(tok, i));
        if (it == t.to_byte.end()) all = false;
        else mapped += char(it->second);
      }
      bytes += all ? mapped : tok;
    }
    tokens = {printable_utf8(bytes)};
  }
};

struct ReplaceDecoder final : Decoder {
  Pattern pattern;
  std::string content;
  ReplaceDecoder(Pattern p, std::string c) : pattern(std::move(p)), content(std::move(c)) {}
  void apply(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) t = pattern.replace_all(t, content);
  }
};

// Runs of "<0xNN>" tokens become their bytes when those form UTF-8, else one U+FFFD per byte token.
struct ByteFallbackDecoder final : Decoder {
  static std::optional<unsigned char> byte_of(const std::string& t) {
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return std::nullopt;
    auto hex = [](char c) {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    const int hi = hex(t[3]), lo = hex(t[4]);
    if (hi < 0 || lo < 0) return std::nullopt;
    return static_cast<unsigned char>(hi * 16 + lo);
  }
  void apply(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string bytes;
    std::size_t count = 0;
    auto flush = [&] {
      if (count == 0) return;
      if (is_valid_utf8(bytes)) out.push_back(bytes);
      else for (std::size_t k = 0; k < count; ++k) out.push_back("\xEF\xBF\xBD");
      bytes.clear(), count = 0;
    };
    for (auto& t : tokens) {
      if (auto b = byte_of(t)) {
        bytes += char(*b), ++count;
        continue;
      }
      flush();
      out.push_back(std::move(t));
    }
    flush();
    tokens = std::move(out);
  }
};

struct FuseDecoder final : Decoder {
  void apply(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens = {all};
  }
};

// Removes up to `start` leading and `stop` trailing copies of one character from each token.
struct StripDecoder final : Decoder {
  std::string content;
  std::size_t start = 0, stop = 0;
  void apply(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) {
      std::size_t b = 0, e = t.size();
      const std::size_t n = content.size();
      for (std::size_t k = 0; k < start && b < e && t.compare(b, n, content) == 0; ++k) b += n;
      for (std::size_t k = 0; k < stop && e >= b + n && t.compare(e - n, n, content) == 0; ++k) e -= n;
      t = t.substr(b, e - b);
    }
  }
};

// The replacement character becomes a space, except in the first token, where it is dropped (unless the
// prepend scheme is "never"): tokenizers' rule, which also drops a non-leading one there.
struct MetaspaceDecoder final : Decoder {
  std::string replacement;
  PrependScheme scheme = PrependScheme::Always;
  void apply(std::vector<std::string>& tokens) const override {
    for (std::size_t i = 0; i < tokens.size(); ++i)
      tokens[i] = Pattern(replacement).replace_all(tokens[i], i == 0 && scheme != PrependScheme::Never ? "" : " ");
  }
};

struct DecoderSequence final : Decoder {
  std::vector<std::unique_ptr<Decoder>> steps;
  void apply(std::vector<std::string>& tokens) const override {
    for (const auto& s : steps) s->apply(tokens);
  }
};

std::unique_ptr<Decoder> parse_decoder(const json& v, const std::string& path, const Ctx& ctx) {
  const std::string type = type_of(v, path, ctx);
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Replace")
    return std::make_unique<ReplaceDecoder>(Pattern(member(v, "pattern", path, ctx), path + ".pattern", ctx),
                                            string_member(v, "content", path, ctx));
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    auto d = std::make_unique<StripDecoder>();
    d->content = string_member(v, "content", path, ctx);
    if (d->content.empty() || char_len(static_cast<unsigned char>(d->content[0])) != d->content.size())
      ctx.fail(path + ".content", show(d->content) + " is not a single character");
    d->start = std::size_t(int_at(member(v, "start", path, ctx), 0, 1 << 20, path + ".start", ctx));
    d->stop = std::size_t(int_at(member(v, "stop", path, ctx), 0, 1 << 20, path + ".stop", ctx));
    return d;
  }
  if (type == "Metaspace") {
    auto d = std::make_unique<MetaspaceDecoder>();
    d->replacement = metaspace_replacement(v, path, ctx);
    d->scheme = metaspace_scheme(v, path, ctx);
    return d;
  }
  if (type == "Sequence") {
    const json& list = member(v, "decoders", path, ctx);
    if (!list.is_array()) ctx.fail(path + ".decoders", "is not an array");
    auto seq = std::make_unique<DecoderSequence>();
    for (std::size_t i = 0; i < list.size(); ++i)
      seq->steps.push_back(parse_decoder(list[i], path + ".decoders[" + std::to_string(i) + "]", ctx));
    return seq;
  }
  unsupported(type, path, "ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace or Sequence", ctx);
}

// ------------------------------------------------------------------------------------------- the tokenizer

json parse_json(const std::string& bytes, const Ctx& ctx) {
  try {
    return json::parse(bytes);
  } catch (const json::exception& e) {
    throw InputError(ctx.file + ": not valid JSON (" + without_library_tag(e.what()) + ")");
  }
}

// The name of the tokenizer_config.json beside a tokenizer.json, for messages.
std::string config_name(const std::string& tokenizer_json_name) {
  const std::string_view suffix = "tokenizer.json";
  const std::string_view n = tokenizer_json_name;
  if (n.size() >= suffix.size() && n.substr(n.size() - suffix.size()) == suffix)
    return std::string(n.substr(0, n.size() - suffix.size())) + "tokenizer_config.json";
  return tokenizer_json_name + " (tokenizer_config.json)";
}

// tokenizer_config.json names a special token as a string or as an AddedToken object {"content": ...}.
std::optional<std::string> config_token(const json& config, const char* key, const Ctx& ctx) {
  const json* v = find_member(config, key);
  if (!v) return std::nullopt;
  if (v->is_object()) return string_member(*v, "content", key, ctx);
  return string_at(*v, key, ctx);
}

class HfTokenizer final : public Tokenizer {
 public:
  HfTokenizer(const std::string& tokenizer_json, const std::string& config_json, const std::string& name)
      : name_(name) {
    const Ctx ctx{name};
    const json root = parse_json(tokenizer_json, ctx);
    if (!root.is_object()) ctx.fail("(top level)", "is not an object");
    model_.emplace(member(root, "model", "(top level)", ctx), ctx);
    if (const json* n = find_member(root, "normalizer")) normalizer_ = parse_normalizer(*n, "normalizer", ctx);
    if (const json* p = find_member(root, "pre_tokenizer"))
      pre_tokenizer_ = parse_pre_tokenizer(*p, "pre_tokenizer", ctx);
    if (const json* p = find_member(root, "post_processor"))
      post_processor_ = parse_post_processor(*p, "post_processor", ctx);
    if (const json* d = find_member(root, "decoder")) decoder_ = parse_decoder(*d, "decoder", ctx);
    if (const json* a = find_member(root, "added_tokens")) read_added_tokens(*a, ctx);
    build_matchers(ctx);
    id_space_ = int(model_->tokens().size());
    for (const auto& t : added_) id_space_ = std::max(id_space_, t.id + 1);
    read_config(config_json, ctx);
    think_open_ = token_id("<think>").value_or(-1);
    think_close_ = token_id("</think>").value_or(-1);
  }

  std::vector<int> encode(std::string_view text) const override {
    if (auto bad = first_invalid_utf8(text))
      throw InputError(name_ + ": cannot encode text that is not UTF-8 (invalid byte at offset " +
                       std::to_string(*bad) + ")");
    std::vector<int> ids;
    for (const Segment& raw : raw_matcher_.split(std::string(text))) {
      if (raw.id >= 0) {
        ids.push_back(raw.id);
        continue;
      }
      const std::string normalized = normalizer_ ? normalizer_->apply(raw.text) : raw.text;
      for (const Segment& seg : normalized_matcher_.split(normalized)) {
        if (seg.id >= 0) ids.push_back(seg.id);
        else encode_plain(seg.text, raw.offset == 0 && seg.offset == 0, ids);
      }
    }
    return ids;
  }

  std::vector<int> encode_with_specials(std::string_view text) const override {
    std::vector<int> ids = encode(text);
    if (post_processor_) {
      post_processor_->apply(ids);
    } else {  // no post-processor: tokenizer_config.json's add_bos_token/add_eos_token say what transformers adds
      if (add_bos_ && bos_ >= 0) ids.insert(ids.begin(), bos_);
      if (add_eos_ && eos_ >= 0) ids.push_back(eos_);
    }
    return ids;
  }

  std::string decode(const std::vector<int>& ids) const override {
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (int id : ids) {
      if (id < 0) throw InputError("token id " + std::to_string(id) + " is not a token id");
      // An id past the vocabulary (a checkpoint's padded embedding rows) or unassigned is skipped, as tokenizers
      // does: a model may sample one, and the text must still come out.
      if (id >= id_space_) continue;
      if (auto p = token_text(id)) tokens.push_back(*p);
    }
    if (!decoder_) {  // tokenizers joins with spaces when there is no decoder
      std::string out;
      for (std::size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
      return out;
    }
    decoder_->apply(tokens);
    std::string out;
    for (const auto& t : tokens) out += t;
    return out;
  }

  std::optional<int> token_id(std::string_view token) const override {
    if (auto it = added_by_content_.find(std::string(token)); it != added_by_content_.end()) return it->second;
    return model_->id_of(token);
  }

  int vocab_size() const override { return id_space_; }
  std::string piece(int id) const override { return token_text(id).value_or(""); }
  int bos_id() const override { return bos_; }
  int eos_id() const override { return eos_; }
  int pad_id() const override { return pad_; }
  int unk_id() const override { return unk_; }
  int think_open_id() const override { return think_open_; }
  int think_close_id() const override { return think_close_; }

 private:
  void encode_plain(const std::string& text, bool at_start, std::vector<int>& ids) const {
    std::vector<Piece> pieces{{text, at_start}};
    if (pre_tokenizer_) pre_tokenizer_->apply(pieces);
    for (const Piece& p : pieces) model_->tokenize(p.text, ids);
  }

  std::optional<std::string> token_text(int id) const {
    if (auto it = added_by_id_.find(id); it != added_by_id_.end()) return added_[it->second].decoded;
    const auto& toks = model_->tokens();
    if (id < 0 || std::size_t(id) >= toks.size()) return std::nullopt;
    const std::string& t = toks[std::size_t(id)];
    if (model_->id_of(t) == id) return t;  // not a gap in the ids (nor an id a duplicate entry took over)
    return std::nullopt;
  }

  void read_added_tokens(const json& list, const Ctx& ctx) {
    if (!list.is_array()) ctx.fail("added_tokens", "is not an array");
    for (std::size_t i = 0; i < list.size(); ++i) {
      const std::string path = "added_tokens[" + std::to_string(i) + "]";
      AddedToken t;
      t.content = string_member(list[i], "content", path, ctx);
      if (t.content.empty()) ctx.fail(path + ".content", "is empty");
      t.id = int(int_at(member(list[i], "id", path, ctx), 0, kMaxId, path + ".id", ctx));
      t.special = bool_member(list[i], "special", false, path, ctx);
      t.normalized = bool_member(list[i], "normalized", !t.special, path, ctx);
      t.lstrip = bool_member(list[i], "lstrip", false, path, ctx);
      t.rstrip = bool_member(list[i], "rstrip", false, path, ctx);
      t.single_word = bool_member(list[i], "single_word", false, path, ctx);
      added_by_content_[t.content] = t.id;
      added_by_id_[t.id] = added_.size();
      added_.push_back(std::move(t));
    }
  }

  // Tokens with normalized=false are matched in the raw text; the others in the normalized text, as their
  // normalized form (tokenizers normalizes the pattern too, and decodes the token as that form).
  void build_matchers(const Ctx& ctx) {
    std::vector<std::pair<std::string, const AddedToken*>> raw, normalized;
    for (auto& t : added_) {
      t.decoded = t.normalized && normalizer_ ? normalizer_->apply(t.content) : t.content;
      if (!t.normalized) raw.emplace_back(t.content, &t);
      else normalized.emplace_back(t.decoded, &t);
    }
    raw_matcher_ = AddedMatcher(std::move(raw), ctx);
    normalized_matcher_ = AddedMatcher(std::move(normalized), ctx);
  }

  void read_config(const std::string& config_json, const Ctx& tokenizer_ctx) {
    if (const auto& unk = model_->unk_token(); unk) unk_ = token_id(*unk).value_or(-1);
    if (config_json.empty()) return;
    const Ctx ctx{config_name(tokenizer_ctx.file)};
    const json config = parse_json(config_json, ctx);
    if (!config.is_object()) ctx.fail("(top level)", "is not an object");
    auto lookup = [&](const char* key, int& id) {
      if (auto t = config_token(config, key, ctx)) id = token_id(*t).value_or(-1);
    };
    lookup("bos_token", bos_);
    lookup("eos_token", eos_);
    lookup("pad_token", pad_);
    lookup("unk_token", unk_);
    add_bos_ = bool_member(config, "add_bos_token", false, "(top level)", ctx);
    add_eos_ = bool_member(config, "add_eos_token", false, "(top level)", ctx);
  }

  std::string name_;
  std::optional<Bpe> model_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<PostProcessor> post_processor_;
  std::unique_ptr<Decoder> decoder_;
  std::vector<AddedToken> added_;
  std::unordered_map<std::string, int> added_by_content_;
  std::unordered_map<int, std::size_t> added_by_id_;
  AddedMatcher raw_matcher_, normalized_matcher_;
  int id_space_ = 0;
  int bos_ = -1, eos_ = -1, pad_ = -1, unk_ = -1, think_open_ = -1, think_close_ = -1;
  bool add_bos_ = false, add_eos_ = false;
};

}  // namespace

std::unique_ptr<Tokenizer> load_hf_tokenizer_from_bytes(const std::string& tokenizer_json,
                                                        const std::string& tokenizer_config_json,
                                                        const std::string& name) {
  return std::make_unique<HfTokenizer>(tokenizer_json, tokenizer_config_json, name);
}

std::unique_ptr<Tokenizer> load_hf_tokenizer(const std::string& dir) {
  const auto base = std::filesystem::path(dir);
  const std::string path = (base / "tokenizer.json").string();
  if (!std::filesystem::exists(path)) throw InputError(path + ": no tokenizer.json here");
  const std::string config_path = (base / "tokenizer_config.json").string();
  const std::string config = std::filesystem::exists(config_path) ? read_file(config_path) : std::string();
  return load_hf_tokenizer_from_bytes(read_file(path), config, path);
}

}  // namespace distill::model
