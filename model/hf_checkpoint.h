// model/hf_checkpoint.h: HF-format model directories (config.json + model.safetensors [+ tokenizer.model]).
// Loading is a lookup by HF tensor name; every mismatch (missing, unexpected, wrong shape) is an error
// naming the tensor. Sharded checkpoints (model.safetensors.index.json) are not read yet.
#pragma once

#include <string>

#include "model/transformer.h"
#include "model/weights_io.h"

namespace distill::model {

// Copies `prefix + name` tensors of `file` into the model's parameters and buffers (dtype converted, device
// kept). Strict: a model tensor absent from the file, or a file tensor (under prefix) the model lacks, throws.
void load_state(TransformerImpl& model, const SafetensorsFile& file, const std::string& prefix = "");

// Writes DIR/config.json and DIR/model.safetensors (fp32) atomically; copies tokenizer_dir/tokenizer.model
// when tokenizer_dir is not empty.
void save_hf_dir(TransformerImpl& model, const std::string& dir, const std::string& tokenizer_dir = "");

// Reads DIR/config.json and DIR/model.safetensors into a new model on `device`.
Transformer load_hf_dir(const std::string& dir, const torch::Device& device);

}  // namespace distill::model
