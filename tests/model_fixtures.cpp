// tests/model_fixtures.cpp: see model_fixtures.h.
#include "tests/model_fixtures.h"

#include <cstdlib>

#include "common/fs.h"
#include "model/device.h"
#include "model/hf_checkpoint.h"
#include "test_paths.h"

namespace distill::test {

std::string reference_fixture(const std::string& file) {
  return std::string(DISTILL_SOURCE_DIR) + "/tests/fixtures/reference/" + file;
}

model::Transformer reference_model(const std::string& name) {
  model::Transformer m(model::ModelConfig::from_hf_json(read_file(reference_fixture(name + ".config.json")), name));
  model::load_state(*m, *model::SafetensorsFile::open(reference_fixture(name + ".safetensors")), "w.");
  m->to(device());
  return m;
}

c10::Device device() {
  static const c10::Device d = [] {
    const char* env = std::getenv("DISTILL_TEST_DEVICE");
    return model::parse_device(env && *env ? env : "cpu");
  }();
  return d;
}

std::string device_flag() { return device().str(); }

torch::Tensor dev(const torch::Tensor& t) { return t.to(device()); }

double tol_scale() { return device().is_cuda() ? 10.0 : 1.0; }

}  // namespace distill::test
