// tests/model_fixtures.h: the reference fixtures of tests/fixtures/reference/ (made by tests/reference/*.py):
// their paths, and the tiny models built from them.
#pragma once

#include <string>

#include "model/transformer.h"

namespace distill::test {

// Path of `file` inside tests/fixtures/reference/.
std::string reference_fixture(const std::string& file);

// The model of fixture `name`: NAME.config.json, with the "w."-prefixed weights of NAME.safetensors loaded.
model::Transformer reference_model(const std::string& name);

}  // namespace distill::test
