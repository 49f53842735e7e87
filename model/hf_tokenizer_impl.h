// model/hf_tokenizer_impl.h: the tokenizer.json backend's internals, shared by model/hf_tokenizer*.cpp and
// included by nothing else: UTF-8 and JSON helpers, patterns, the component interfaces and parsers, the BPE model.
#pragma once

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/errors.h"

namespace distill::model::hf_detail {

using json = nlohmann::json;
using Range = std::pair<std::size_t, std::size_t>;  // [start, end) in bytes

// ---------------------------------------------------------------------------------------------- UTF-8 helpers
// These run on text already checked to be UTF-8 (input is validated once, at the door).

inline std::size_t char_len(unsigned char lead) { return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4; }

inline char32_t code_point_at(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return char32_t(static_cast<unsigned char>(s[i + k])); };
  switch (char_len(static_cast<unsigned char>(s[i]))) {
    case 1: return b(0);
    case 2: return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    case 3: return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    default: return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  }
}

inline void append_utf8(std::string& out, char32_t cp) {
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
inline bool is_white_space(char32_t c) {
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

// JSON access with messages naming the file and path; defined in model/hf_tokenizer.cpp.
std::string show(const std::string& s);
const json* find_member(const json& obj, const char* key);
const json& member(const json& obj, const char* key, const std::string& path, const Ctx& ctx);
std::string string_at(const json& v, const std::string& path, const Ctx& ctx);
std::string string_member(const json& obj, const char* key, const std::string& path, const Ctx& ctx);
bool bool_member(const json& obj, const char* key, bool fallback, const std::string& path, const Ctx& ctx);
std::int64_t int_at(const json& v, std::int64_t lo, std::int64_t hi, const std::string& path, const Ctx& ctx);
std::string type_of(const json& obj, const std::string& path, const Ctx& ctx);
[[noreturn]] void unsupported(const std::string& type, const std::string& path, const char* expected,
                              const Ctx& ctx);

// A "Sequence" node: the array `key` of v, each element read by parse(element, its path, ctx) into Seq::steps.
template <class Seq, class Parse>
std::unique_ptr<Seq> parse_sequence(const json& v, const char* key, const std::string& path, const Ctx& ctx, Parse parse) {
  const json& list = member(v, key, path, ctx);
  const std::string at = path + "." + key;
  if (!list.is_array()) ctx.fail(at, "is not an array");
  auto seq = std::make_unique<Seq>();
  for (std::size_t i = 0; i < list.size(); ++i) seq->steps.push_back(parse(list[i], at + "[" + std::to_string(i) + "]", ctx));
  return seq;
}

// The largest id accepted: far above any real vocabulary (Gemma's 262k), low enough that a corrupt id cannot
// make the id table exhaust memory.
constexpr std::int64_t kMaxId = (1 << 21) - 1;

// ------------------------------------------------------------------------------------------------ patterns

// `pattern` with \s and \S spelled out as Oniguruma means them; everything else is left as written. Defined in
// model/hf_tokenizer_pretok.cpp.
std::string oniguruma_spaces(const std::string& pattern);

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

// Defined in model/hf_tokenizer_pretok.cpp.
std::unique_ptr<Normalizer> parse_normalizer(const json& v, const std::string& path, const Ctx& ctx);

// ------------------------------------------------------------------------------------------ pre-tokenizers

// A pre-token: its text and whether it starts at offset 0 of the original text (Metaspace's "first" scheme).
struct Piece {
  std::string text;
  bool at_start = false;
};

struct PreTokenizer {
  virtual ~PreTokenizer() = default;
  virtual void apply(std::vector<Piece>& pieces) const = 0;
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

enum class PrependScheme { Always, First, Never };

// Defined in model/hf_tokenizer_pretok.cpp.
const ByteTable& byte_table();
std::string metaspace_replacement(const json& v, const std::string& path, const Ctx& ctx);
PrependScheme metaspace_scheme(const json& v, const std::string& path, const Ctx& ctx);
std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const json& v, const std::string& path, const Ctx& ctx);

// --------------------------------------------------------------------------- BPE (model/hf_tokenizer_bpe.cpp)

class Bpe {
 public:
  Bpe(const json& model, const Ctx& ctx);

  std::optional<int> id_of(std::string_view token) const {
    auto it = vocab_.find(std::string(token));
    return it == vocab_.end() ? std::nullopt : std::optional<int>(it->second);
  }
  const std::vector<std::string>& tokens() const { return id_to_token_; }
  const std::optional<std::string>& unk_token() const { return unk_token_; }

  // Appends the ids of one pre-token.
  void tokenize(const std::string& word, std::vector<int>& out) const;

 private:
  static constexpr std::size_t kCacheLimit = 1 << 16, kCacheWordBytes = 256;

  void read_vocab(const json& vocab, const Ctx& ctx);
  void read_merges(const json& merges, const Ctx& ctx);

  static std::uint64_t key(int a, int b) { return (std::uint64_t(std::uint32_t(a)) << 32) | std::uint32_t(b); }

  std::vector<int> initial_symbols(const std::string& word) const;
  std::vector<int> merge_word(const std::string& word) const;

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

// --------------------------------------------------------------------------------------- post-processors

struct PostProcessor {
  virtual ~PostProcessor() = default;
  virtual void apply(std::vector<int>& ids) const = 0;
};

// Defined in model/hf_tokenizer_decode.cpp.
std::unique_ptr<PostProcessor> parse_post_processor(const json& v, const std::string& path, const Ctx& ctx);

// ---------------------------------------------------------------------------------------------- decoders

// A decoder turns the list of token strings into another list; the final text is their concatenation.
struct Decoder {
  virtual ~Decoder() = default;
  virtual void apply(std::vector<std::string>& tokens) const = 0;
};

// Defined in model/hf_tokenizer_decode.cpp.
std::unique_ptr<Decoder> parse_decoder(const json& v, const std::string& path, const Ctx& ctx);

}  // namespace distill::model::hf_detail
