// tests/model_fixtures.cpp: see model_fixtures.h.
#include "tests/model_fixtures.h"

#include "common/fs.h"
#include "model/hf_checkpoint.h"
#include "test_paths.h"

namespace distill::test {

std::string reference_fixture(const std::string& file) {
  return std::string(DISTILL_SOURCE_DIR) + "/tests/fixtures/reference/" + file;
}

model::Transformer reference_model(const std::string& name) {
  model::Transformer m(model::ModelConfig::from_hf_json(read_file(reference_fixture(name + ".config.json")), name));
  model::load_state(*m, *model::SafetensorsFile::open(reference_fixture(name + ".safetensors")), "w.");
  return m;
}

}  // namespace distill::test
