// model/hf_tokenizer.cpp: the tokenizer.json backend. It mirrors the pipeline of HF `tokenizers`:
//   added tokens split off the raw text -> normalizer -> added tokens split off the normalized text ->
//   pre-tokenizer -> BPE per pre-token;  decode: ids -> token strings -> decoder chain -> text.
// This file holds the tokenizer tying the parts together, the added tokens, the JSON helpers and the public API;
// the parts are in model/hf_tokenizer_pretok.cpp (normalizers, pre-tokenizers), model/hf_tokenizer_bpe.cpp and
// model/hf_tokenizer_decode.cpp (post-processors, decoders), sharing model/hf_tokenizer_impl.h.
// Every rule that is not obvious below was checked against the Python package (tokenizers 0.23.3); the parity
// fixtures of tests/fixtures/hf/gen_tokenizers.py pin them.
// Deliberately not supported (an InputError, not an approximation): models other than BPE, BPE dropout, and
// the normalizers/pre-tokenizers/decoders no supported family uses (Lowercase, BertPreTokenizer, WordPiece...).
#include "model/hf_tokenizer.h"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <unordered_map>

#include "common/errors.h"
#include "common/fs.h"
#include "common/utf8.h"
#include "model/hf_tokenizer_impl.h"

namespace distill::model::hf_detail {

// ------------------------------------------------------------------------------------------ error reporting

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

}  // namespace distill::model::hf_detail

namespace distill::model {

using namespace hf_detail;  // the backend's parts (model/hf_tokenizer_impl.h)

namespace {

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
