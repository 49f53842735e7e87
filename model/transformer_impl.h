// model/transformer_impl.h: what model/transformer.cpp shares with model/moe.cpp, included by nothing else: the
// per-model_type tensor names of FFN modules, and the Linear factory.
#pragma once

#include <cstdint>

#include "model/config.h"
#include "model/transformer.h"

namespace distill::model::detail {

struct Names {
  const char* ffn;          // the FFN module of a MoE layer ("mlp" or Mixtral's "block_sparse_moe")
  const char* gate;         // expert/MLP projection names
  const char* up;
  const char* down;
  const char* shared;       // shared expert module
  const char* shared_gate;  // Qwen2-MoE's sigmoid gate on the shared expert
};
Names names_for(const ModelConfig& c);

Linear linear(std::int64_t in, std::int64_t out, bool bias);

}  // namespace distill::model::detail
