// student/tokenizer_export.h: a SentencePiece tokenizer written as the files transformers' AutoTokenizer loads
// with no extra package (tokenizer.json, tokenizer_config.json), and the chat template of distill's R1 format, so
// an exported student prompts in transformers, vLLM and llama.cpp exactly as it was trained. Pure.
#pragma once

#include <string>

#include "model/sentencepiece_model.h"

namespace distill::student {

// tokenizer.json (HF tokenizers' format) giving the SentencePiece model's ids: a BPE whose merges follow the
// pieces' scores, byte fallback, spaces escaped as U+2581, control and user-defined pieces as added tokens, BOS
// added in front. The models distill trains are covered (BPE, identity normalization); anything else (unigram,
// another normalization rule, whitespace collapsing or suffixes) is an InputError naming `source` and the setting.
std::string tokenizer_json_from_sentencepiece(const model::SpModel& m, const std::string& source);
// The settings check alone (GGUF export writes the pieces themselves): the same InputErrors.
void check_exportable(const model::SpModel& m, const std::string& source);

// tokenizer_config.json for a tokenizer.json: its special tokens by text ("" leaves one out) and the class
// transformers 4.x and 5.x both read.
std::string tokenizer_config_json(const std::string& bos, const std::string& eos, const std::string& pad,
                                  const std::string& unk, std::int64_t model_max_length);

// A Jinja chat template rendering distill's R1 prompt format: one user turn (the problem and instruction) gives
// exactly teacher::r1_prompt's text after BOS; earlier turns are "User: ...\n" and "Assistant: ...EOS\n".
extern const char* const kR1ChatTemplate;

}  // namespace distill::student
