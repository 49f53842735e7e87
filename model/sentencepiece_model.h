// model/sentencepiece_model.h: what a SentencePiece tokenizer.model holds (its pieces with scores and types, the
// model type and the normalizer settings), read from the serialized ModelProto bytes. Pure. Export uses it to
// write the same tokenizer as tokenizer.json (for transformers) and as GGUF metadata (for llama.cpp).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace distill::model {

struct SpPiece {
  // SentencePiece's piece types, numbered as in sentencepiece_model.proto (GGUF's token types use the same).
  enum Type { normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };
  std::string text;
  float score = 0;
  Type type = normal;
};

struct SpModel {
  std::vector<SpPiece> pieces;        // by id
  std::string model_type = "unigram";  // unigram | bpe | word | char
  bool byte_fallback = false;
  bool split_digits = false;
  bool split_by_whitespace = true;
  bool treat_whitespace_as_suffix = false;
  std::string normalizer = "nmt_nfkc";  // the normalization rule's name
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
  bool escape_whitespaces = true;
  int id_of(std::string_view piece) const;  // -1 when absent
};

// InputError naming `source` for bytes that are not a ModelProto (bad wire format, a truncated field, no pieces).
SpModel parse_sentencepiece_model(std::string_view bytes, const std::string& source);

}  // namespace distill::model
