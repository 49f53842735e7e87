// model/tokenizer.h: the tokenizer interface every model uses, and its SentencePiece backend (the HF
// tokenizer.json backend is model/hf_tokenizer.h). Text in, ids out, and back, exactly: decode(encode(s)) == s
// for any valid UTF-8 (byte fallback or byte-level BPE).
// Knows nothing about the store; training takes plain texts (cli/ reads them from dataset/).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace distill::model {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Plain text to ids; adds no BOS/EOS. `<think>` and `</think>` (and any other special or added token of
  // the vocabulary) in the text map to their single ids.
  virtual std::vector<int> encode(std::string_view text) const = 0;
  // encode() plus the special tokens the tokenizer adds around a text (BOS first, for most models).
  virtual std::vector<int> encode_with_specials(std::string_view text) const = 0;
  virtual std::string decode(const std::vector<int>& ids) const = 0;
  virtual int vocab_size() const = 0;           // the size of the id space: the largest id + 1
  virtual std::string piece(int id) const = 0;  // the vocabulary entry, for display
  // The id of exactly this vocabulary entry or special/added token, or nullopt.
  virtual std::optional<int> token_id(std::string_view token) const = 0;
  // The special ids below are -1 when the tokenizer has no such token.
  virtual int bos_id() const = 0;
  virtual int eos_id() const = 0;
  virtual int pad_id() const = 0;
  virtual int unk_id() const = 0;
  virtual int think_open_id() const = 0;   // <think>
  virtual int think_close_id() const = 0;  // </think>
};

// Loads DIR/tokenizer.json (a HuggingFace tokenizer, with DIR/tokenizer_config.json if present) when it
// exists, else DIR/tokenizer.model (a SentencePiece model). Throws InputError naming the file if neither is
// there, or if the one found is unreadable or (SentencePiece) lacks the special tokens distill needs.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& dir);
// The file load_tokenizer reads in DIR (tokenizer.json, else tokenizer.model; "" when neither exists), whether
// there is one, and its sha256: two directories with the same fingerprint tokenize alike.
std::string tokenizer_file(const std::string& dir);
bool has_tokenizer(const std::string& dir);
std::string tokenizer_fingerprint(const std::string& dir);
// The files that carry a tokenizer and its chat template (tokenizer.json, tokenizer_config.json,
// tokenizer.model, special_tokens_map.json, chat_template.jinja, ...) present in DIR, by name.
std::vector<std::string> tokenizer_files(const std::string& dir);
std::unique_ptr<Tokenizer> load_sentencepiece_from_bytes(const std::string& serialized, const std::string& name);

struct TokenizerTrainOptions {
  int vocab_size = 1024;             // total, including 256 byte-fallback pieces and the specials
  std::string model_type = "bpe";    // "bpe" or "unigram"
  int threads = 2;
};

// Trains a SentencePiece model on `texts` with digits split, byte fallback, identity normalisation (so
// decoding is exact), the specials <unk>=0 <s>=1 </s>=2 <pad>=3, and <think> </think> "\n" as single pieces.
// Returns the serialized model; write it with write_tokenizer. Throws InputError for unusable options.
std::string train_sentencepiece(const std::vector<std::string>& texts, const TokenizerTrainOptions& opt);

// Writes DIR/tokenizer.model atomically (DIR is created if needed).
void write_tokenizer(const std::string& dir, const std::string& serialized_model);

}  // namespace distill::model
