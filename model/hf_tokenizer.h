// model/hf_tokenizer.h: the HuggingFace `tokenizer.json` backend of model::Tokenizer (byte-level BPE as in
// Qwen2/2.5/3, Llama-3 and DeepSeek-V3/R1; SentencePiece-style BPE with byte fallback as in Mistral).
// It gives the ids and text of the Python `tokenizers` package exactly (tests/test_hf_tokenizer.cpp checks
// that against fixtures the package writes): encode(text) is `tok.encode(text, add_special_tokens=False).ids`,
// encode_with_specials(text) the same with add_special_tokens=True, decode(ids) `tok.decode(ids,
// skip_special_tokens=False)`. Only the BPE model is supported; an unknown component is an InputError naming
// the file and the JSON path, never a silent approximation.
#pragma once

#include <memory>
#include <string>

#include "model/tokenizer.h"

namespace distill::model {

// Builds a tokenizer from the bytes of a tokenizer.json and, optionally (empty: none), of the
// tokenizer_config.json beside it, which names the bos/eos/pad/unk tokens. `name` is the tokenizer.json's path
// for messages. Throws InputError for malformed or unsupported input.
std::unique_ptr<Tokenizer> load_hf_tokenizer_from_bytes(const std::string& tokenizer_json,
                                                        const std::string& tokenizer_config_json,
                                                        const std::string& name);

// Reads DIR/tokenizer.json and DIR/tokenizer_config.json (if present). Throws InputError naming the file when
// tokenizer.json is missing or unusable.
std::unique_ptr<Tokenizer> load_hf_tokenizer(const std::string& dir);

}  // namespace distill::model
