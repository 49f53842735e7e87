// student/export.h: `distill export`: a model directory out to the formats other tools load.
// - hf: a transformers 5 directory (config.json, generation_config.json, safetensors sharded with an index above
//   a size, tokenizer.json + tokenizer_config.json that AutoTokenizer loads with no extra package, the chat
//   template; a SentencePiece tokenizer is converted and gets distill's R1 template).
// - gguf: one GGUF v3 file for llama.cpp (llama, qwen2, qwen3; f16, bf16, f32 or q8_0), student/gguf_export.cpp.
// Output appears whole or not at all: written under a temporary name beside --out, then renamed.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace distill::student {

struct ExportOptions {
  std::string model_dir;
  std::string format;       // hf | gguf
  std::string dtype;        // hf: f32 | bf16 | f16 (default f32); gguf: f16 | bf16 | f32 | q8_0 (default f16)
  std::string out;
  bool force = false;       // replace an existing --out
  bool merge_lora = false;  // hf: model_dir is a LoRA adapter (student/lora.h); write its base with it merged in
  std::int64_t max_shard_bytes = 5'000'000'000;  // hf: one file up to this size, shards with an index above it
  // The sampling generation_config.json recommends (do_sample, temperature, top_p): the settings the model was
  // evaluated with. Unset: the source's generation_config.json values, else none (greedy, as transformers reads it).
  std::optional<double> temperature, top_p;
};

struct ExportReport {
  std::string out;
  std::vector<std::string> files;   // written, by name (hf) or the one file (gguf)
  std::int64_t bytes = 0;           // tensor bytes written
  std::int64_t tensors = 0;
  std::string tokenizer;            // what was done with the tokenizer, for the summary
  std::string architecture;
};

// InputError (nothing written) for: --out existing without force, an unknown format or dtype, an architecture
// the format does not cover, a tokenizer it cannot carry. `log` gets one line per phase.
ExportReport export_model(const ExportOptions& opt, const std::function<void(const std::string&)>& log = {});

namespace detail {
// The write-then-rename both formats use: `write(tmp)` fills a fresh temporary path beside `out`, which then
// takes `out`'s place (an existing one only with force, removed after the rename).
void publish(const std::string& out, bool force, bool is_dir, const std::function<void(const std::string&)>& write);
ExportReport export_hf(const ExportOptions& opt, const std::function<void(const std::string&)>& log);
ExportReport export_gguf(const ExportOptions& opt, const std::function<void(const std::string&)>& log);
}  // namespace detail

}  // namespace distill::student
