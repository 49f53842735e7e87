// model/tokenizer.h: the tokenizer interface every model uses, and its SentencePiece backend.
// Text in, ids out, and back, exactly: decode(encode(s)) == s for any valid UTF-8 (byte fallback).
// Knows nothing about the store; training takes plain texts (cli/ reads them from dataset/).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace distill::model {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Plain text to ids; adds no BOS/EOS. `<think>` and `</think>` in the text map to their single ids.
  virtual std::vector<int> encode(std::string_view text) const = 0;
  virtual std::string decode(const std::vector<int>& ids) const = 0;
  virtual int vocab_size() const = 0;
  virtual std::string piece(int id) const = 0;  // the vocabulary entry, for display
  virtual int bos_id() const = 0;
  virtual int eos_id() const = 0;
  virtual int pad_id() const = 0;
  virtual int unk_id() const = 0;
  virtual int think_open_id() const = 0;   // <think>
  virtual int think_close_id() const = 0;  // </think>
};

// Loads DIR/tokenizer.model (a SentencePiece model). Throws InputError naming the file if it is missing,
// unreadable, or lacks the special tokens distill needs.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& dir);
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
