// model/sentencepiece_tokenizer.cpp: the SentencePiece backend of model::Tokenizer, and its trainer.
// One wrinkle: SentencePiece writes spaces as U+2581 internally and turns every U+2581 back into a space
// on decode, so a literal U+2581 in the input is encoded here as its three byte-fallback pieces instead.
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <filesystem>
#include <set>
#include <string_view>
#include <unordered_map>

#include "common/errors.h"
#include "common/fs.h"
#include "common/sha256.h"
#include "common/utf8.h"
#include "model/hf_tokenizer.h"
#include "model/tokenizer.h"

namespace distill::model {

namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581, SentencePiece's whitespace symbol

class SentencePieceTokenizer final : public Tokenizer {
 public:
  SentencePieceTokenizer(const std::string& serialized, const std::string& name) {
    if (serialized.empty()) throw InputError(name + ": not a SentencePiece model (the file is empty)");
    auto st = sp_.LoadFromSerializedProto(serialized);
    if (!st.ok()) {
      // the library reports a protobuf that does not parse as its own source line; say it plainly
      const std::string why = st.ToString().find("ParseFromArray") != std::string::npos
                                  ? "its bytes are not a ModelProto protobuf" : st.ToString();
      throw InputError(name + ": not a SentencePiece model (" + why + ")");
    }
    auto need = [&](const char* p) {
      int id = sp_.PieceToId(p);
      if (id == sp_.unk_id() && std::string_view(p) != "<unk>")
        throw InputError(name + ": tokenizer lacks the special token " + std::string(p) +
                         " (train it with `distill tokenizer train`)");
      return id;
    };
    think_open_ = need("<think>");
    think_close_ = need("</think>");
    pad_ = sp_.pad_id();
    if (sp_.bos_id() < 0 || sp_.eos_id() < 0 || pad_ < 0)
      throw InputError(name + ": tokenizer lacks BOS, EOS or PAD ids");
    for (int b = 0; b < 256; ++b) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "<0x%02X>", b);
      byte_id_[b] = sp_.PieceToId(buf);
      if (byte_id_[b] == sp_.unk_id()) throw InputError(name + ": tokenizer was trained without byte fallback");
    }
  }

  std::vector<int> encode(std::string_view text) const override {
    std::vector<int> out;
    std::size_t pos = 0;
    while (true) {
      std::size_t mark = text.find(kSpaceMark, pos);
      std::string_view seg = text.substr(pos, mark == std::string_view::npos ? std::string_view::npos : mark - pos);
      if (!seg.empty()) {
        std::vector<int> ids;
        auto st = sp_.Encode(seg, &ids);
        if (!st.ok()) throw RuntimeFailure("tokenizer encode failed: " + st.ToString());
        out.insert(out.end(), ids.begin(), ids.end());
      }
      if (mark == std::string_view::npos) break;
      for (unsigned char c : kSpaceMark) out.push_back(byte_id_[c]);
      pos = mark + kSpaceMark.size();
    }
    return out;
  }

  std::vector<int> encode_with_specials(std::string_view text) const override {
    std::vector<int> ids = {sp_.bos_id()};
    const std::vector<int> body = encode(text);
    ids.insert(ids.end(), body.begin(), body.end());
    return ids;
  }

  std::optional<int> token_id(std::string_view token) const override {
    const int id = sp_.PieceToId(token);
    if (id == sp_.unk_id() && token != "<unk>") return std::nullopt;
    return id;
  }

  std::string decode(const std::vector<int>& ids) const override {
    // Byte pieces decode to raw bytes; normal pieces turn U+2581 into spaces. Decoding run by run keeps a
    // literal U+2581 (sent as bytes) from being turned into a space.
    std::string out;
    std::vector<int> run;
    auto flush = [&] {
      if (run.empty()) return;
      std::string s;
      auto st = sp_.Decode(run, &s);
      if (!st.ok()) throw RuntimeFailure("tokenizer decode failed: " + st.ToString());
      out += s;
      run.clear();
    };
    std::string bytes;
    for (int id : ids) {
      if (id < 0 || id >= sp_.GetPieceSize())
        throw InputError("token id " + std::to_string(id) + " is outside the vocabulary (size " +
                         std::to_string(sp_.GetPieceSize()) + ")");
      if (sp_.IsByte(id)) {
        flush();
        out += char(std::stoi(sp_.IdToPiece(id).substr(3, 2), nullptr, 16));
      } else {
        run.push_back(id);
      }
    }
    flush();
    // Byte pieces can spell bytes that are no UTF-8 (a model's stray byte, a character cut at max_tokens): each
    // ill-formed part becomes one U+FFFD, as HF tokenizers decode with errors="replace", so every stored
    // completion is valid text.
    return printable_utf8(out);
  }

  int vocab_size() const override { return sp_.GetPieceSize(); }
  std::string piece(int id) const override { return sp_.IdToPiece(id); }
  int bos_id() const override { return sp_.bos_id(); }
  int eos_id() const override { return sp_.eos_id(); }
  int pad_id() const override { return pad_; }
  int unk_id() const override { return sp_.unk_id(); }
  int think_open_id() const override { return think_open_; }
  int think_close_id() const override { return think_close_; }

 private:
  sentencepiece::SentencePieceProcessor sp_;
  int think_open_ = -1, think_close_ = -1, pad_ = -1;
  int byte_id_[256] = {};
};

class VectorIterator final : public sentencepiece::SentenceIterator {
 public:
  explicit VectorIterator(const std::vector<std::string>& v) : v_(v) {}
  bool done() const override { return i_ >= v_.size(); }
  void Next() override { ++i_; }
  const std::string& value() const override { return v_[i_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const std::vector<std::string>& v_;
  std::size_t i_ = 0;
};

}  // namespace

std::unique_ptr<Tokenizer> load_sentencepiece_from_bytes(const std::string& serialized, const std::string& name) {
  return std::make_unique<SentencePieceTokenizer>(serialized, name);
}

std::string tokenizer_file(const std::string& dir) {
  for (const char* f : {"tokenizer.json", "tokenizer.model"})
    if (std::filesystem::is_regular_file(std::filesystem::path(dir) / f)) return (std::filesystem::path(dir) / f).string();
  return "";
}

bool has_tokenizer(const std::string& dir) { return !tokenizer_file(dir).empty(); }

std::string tokenizer_fingerprint(const std::string& dir) {
  const auto f = tokenizer_file(dir);
  if (f.empty()) throw InputError(dir + ": no tokenizer.json or tokenizer.model");
  return sha256_file_hex(f);
}

std::vector<std::string> tokenizer_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json",
                        "added_tokens.json", "chat_template.jinja", "chat_template.json"})
    if (std::filesystem::is_regular_file(std::filesystem::path(dir) / f)) out.push_back(f);
  return out;
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& dir) {
  if (std::filesystem::exists(std::filesystem::path(dir) / "tokenizer.json")) return load_hf_tokenizer(dir);
  const std::string path = (std::filesystem::path(dir) / "tokenizer.model").string();
  if (!std::filesystem::exists(path))
    throw InputError(path + ": no tokenizer here (expected a HuggingFace tokenizer.json or a SentencePiece "
                            "tokenizer.model written by `distill tokenizer train`)");
  return load_sentencepiece_from_bytes(read_file(path), path);
}

std::string train_sentencepiece(const std::vector<std::string>& texts, const TokenizerTrainOptions& opt) {
  if (opt.model_type != "bpe" && opt.model_type != "unigram")
    throw InputError("tokenizer model type '" + opt.model_type + "' is not supported (expected bpe or unigram)");
  if (opt.vocab_size < 300)
    throw InputError("vocab size " + std::to_string(opt.vocab_size) +
                     " is too small (expected >= 300: 256 byte pieces, 7 specials and the characters)");
  std::vector<std::string> sentences;
  for (const auto& t : texts)
    if (!t.empty()) sentences.push_back(t);
  if (sentences.empty()) throw InputError("no text to train the tokenizer on (the store has no problems)");
  // SentencePiece needs a piece per distinct character besides the 256 byte pieces and the 7 specials.
  std::set<std::string_view> chars;
  for (const auto& t : sentences)
    for (std::size_t i = 0, j; i < t.size(); i = j) {
      for (j = i + 1; j < t.size() && (static_cast<unsigned char>(t[j]) & 0xC0) == 0x80;) ++j;
      chars.insert(std::string_view(t).substr(i, j - i));
    }
  if (const auto need = std::int64_t(chars.size()) + 263; opt.vocab_size < need)
    throw InputError("vocab size " + std::to_string(opt.vocab_size) + " is too small for this text: its " +
                     std::to_string(chars.size()) + " distinct characters, 256 byte pieces and 7 specials need >= " +
                     std::to_string(need));
  std::unordered_map<std::string, std::string> kw = {
      {"model_type", opt.model_type},
      {"vocab_size", std::to_string(opt.vocab_size)},
      {"hard_vocab_limit", "false"},
      {"character_coverage", "1.0"},
      {"byte_fallback", "true"},
      {"split_digits", "true"},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"add_dummy_prefix", "false"},
      {"allow_whitespace_only_pieces", "true"},
      {"user_defined_symbols", "<think>,</think>,\n"},
      {"unk_id", "0"}, {"bos_id", "1"}, {"eos_id", "2"}, {"pad_id", "3"},
      {"unk_piece", "<unk>"}, {"bos_piece", "<s>"}, {"eos_piece", "</s>"}, {"pad_piece", "<pad>"},
      {"num_threads", std::to_string(opt.threads)},
      {"max_sentence_length", "65536"},
      {"input_sentence_size", "0"},
      {"shuffle_input_sentence", "false"},
      {"minloglevel", "2"},
  };
  VectorIterator it(sentences);
  std::string model;
  auto st = sentencepiece::SentencePieceTrainer::Train(kw, &it, &model);
  if (!st.ok()) throw InputError("tokenizer training failed: " + st.ToString());
  return model;
}

void write_tokenizer(const std::string& dir, const std::string& serialized_model) {
  std::filesystem::create_directories(dir);
  write_file_atomic((std::filesystem::path(dir) / "tokenizer.model").string(), serialized_model);
}

}  // namespace distill::model
