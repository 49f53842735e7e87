// tests/model_fixtures.h: the reference fixtures of tests/fixtures/reference/ (made by tests/reference/*.py):
// their paths, the tiny models built from them, and the device the device-aware tests run on.
#pragma once

#include <string>

#include "model/transformer.h"

namespace distill::test {

// Path of `file` inside tests/fixtures/reference/.
std::string reference_fixture(const std::string& file);

// The model of fixture `name`: NAME.config.json, with the "w."-prefixed weights of NAME.safetensors loaded, on
// device().
model::Transformer reference_model(const std::string& name);

// Tests tagged [device] run on DISTILL_TEST_DEVICE (cpu, cuda, cuda:N; cpu when unset): `make test` runs them on
// the CPU, scripts/device-check again on a GPU. A device this machine lacks fails the test that asks.
c10::Device device();
// device() as a --device value, for the CLI runs of device-aware tests.
std::string device_flag();
// `t` moved to device().
torch::Tensor dev(const torch::Tensor& t);
// Factor on the fp32 tolerances of tests/tolerances.h: 1 on the CPU. On CUDA, cuBLAS (split-K), the SDPA kernels
// and atomic index_add sum in other orders than the CPU reference did; still fp32 (TF32 stays off), so the
// differences stay ~1e-6 relative, and 10x the CPU bounds leaves room without hiding a wrong formula.
double tol_scale();

}  // namespace distill::test
