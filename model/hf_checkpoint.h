// model/hf_checkpoint.h: HF-format model directories as transformers writes them: config.json (4.x or 5.x),
// generation_config.json, and model.safetensors or shards listed by model.safetensors.index.json, in f32, bf16
// or f16. Shards are mapped (mmap) and converted tensor by tensor into the model, so loading needs the model's
// memory and not a second copy. Every mismatch (missing, unexpected, wrong shape or dtype, a shard the index
// names but the folder lacks) is an InputError naming the file and the tensor.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/transformer.h"
#include "model/weights_io.h"

namespace distill::model {

// The tensors of one checkpoint: a single safetensors file, or every shard an index names.
class CheckpointTensors {
 public:
  static CheckpointTensors of_file(std::shared_ptr<SafetensorsFile> file);
  // DIR/model.safetensors, else DIR/model.safetensors.index.json and its shards (all validated up front).
  static CheckpointTensors open_dir(const std::string& dir);

  bool contains(const std::string& name) const { return where_.count(name) > 0; }
  torch::Tensor get(const std::string& name) const;  // a CPU tensor viewing the mapped shard
  const StTensorInfo& info(const std::string& name) const;
  const std::string& file_of(const std::string& name) const;
  std::vector<std::string> names() const;  // sorted
  const std::string& source() const { return source_; }  // the file, or the index, for messages

 private:
  std::string source_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, std::size_t> where_;  // tensor name -> index into files_
};

// Copies `prefix + name` tensors into the model's parameters and buffers (dtype converted, device kept). Strict:
// a model tensor absent from the checkpoint, or a checkpoint tensor (under prefix) the model lacks, throws, except
// for what transformers itself skips: DeepSeek's multi-token-prediction layers, rotary inv_freq buffers, and
// lm_head.weight when the embeddings are tied.
void load_state(TransformerImpl& model, const CheckpointTensors& tensors, const std::string& prefix = "");
void load_state(TransformerImpl& model, const SafetensorsFile& file, const std::string& prefix = "");

// Writes DIR/config.json and DIR/model.safetensors (fp32) atomically; copies the tokenizer files of tokenizer_dir
// (model::tokenizer_files: tokenizer.json or tokenizer.model, its config and chat template) when it is not empty.
void save_hf_dir(TransformerImpl& model, const std::string& dir, const std::string& tokenizer_dir = "");

// The weights' identity for the store: the sha256 of model.safetensors, or for a sharded checkpoint of the
// index and each shard's sha256 in index order.
std::string checkpoint_sha256(const std::string& dir);

// Reads DIR/config.json and the weights into a new model on `device`, its parameters in `dtype`.
Transformer load_hf_dir(const std::string& dir, const torch::Device& device,
                        torch::ScalarType dtype = torch::kFloat32);

// generation_config.json: the end-of-sequence ids and the sampling defaults the model ships with.
struct GenerationDefaults {
  std::vector<std::int64_t> eos_token_ids;  // empty: config.json's eos_token_id
  std::optional<std::int64_t> bos_token_id, pad_token_id;
  std::optional<bool> do_sample;
  std::optional<double> temperature, top_p, min_p;
  std::optional<std::int64_t> top_k, max_new_tokens;
};
// Parses the file's text (pure); unknown keys are ignored (they do not change the logits), wrong types refused.
GenerationDefaults parse_generation_config(const std::string& json_text, const std::string& source);
// DIR/generation_config.json when present, else an empty GenerationDefaults.
GenerationDefaults read_generation_config(const std::string& dir);

}  // namespace distill::model
