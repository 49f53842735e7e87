// student/presets.h: named student architectures for `distill train --student NAME`. `tiny` is the demo's
// student (dense, under a quarter of the demo teacher's parameters); the others are the dense models the
// DeepSeek-R1 distills were built on, each with the config.json it copies and the parameter count its model
// card publishes (tests/test_train.cpp checks our count against it). A preset's vocabulary is replaced by the
// tokenizer's when training from scratch.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/config.h"

namespace distill::student {

struct Preset {
  std::string name;
  std::string source;               // where the config comes from
  model::ModelConfig config;
  std::int64_t published_params = 0;  // 0 for tiny (ours)
};

const std::vector<Preset>& presets();
const Preset* find_preset(const std::string& name);  // nullptr if unknown
std::string preset_names();                          // "tiny, qwen2.5-1.5b, ..."
// The config `--student` names: a preset's, or a model directory's config.json (InputError naming the key when
// it is malformed); nullopt when it is neither.
std::optional<model::ModelConfig> student_config(const std::string& student);

// Parameters of a model with this config, from the shapes alone (no allocation): embeddings, attention,
// FFN or experts, norms, head (once when tied).
std::int64_t analytic_param_count(const model::ModelConfig& c);

}  // namespace distill::student
