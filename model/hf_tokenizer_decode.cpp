// model/hf_tokenizer_decode.cpp: the tokenizer.json post-processors (the special tokens encode_with_specials
// adds) and decoders (token strings back to text), with their parsing.
#include <optional>

#include "common/utf8.h"
#include "model/hf_tokenizer_impl.h"

namespace distill::model::hf_detail {

// --------------------------------------------------------------------------------------- post-processors

namespace {

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

}  // namespace

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
  if (type == "Sequence") return parse_sequence<ProcessorSequence>(v, "processors", path, ctx, parse_post_processor);
  unsupported(type, path, "TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing or Sequence", ctx);
}

// ---------------------------------------------------------------------------------------------- decoders

namespace {

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

}  // namespace

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
  if (type == "Sequence") return parse_sequence<DecoderSequence>(v, "decoders", path, ctx, parse_decoder);
  unsupported(type, path, "ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace or Sequence", ctx);
}

}  // namespace distill::model::hf_detail
