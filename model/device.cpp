// model/device.cpp: see device.h.
#include "model/device.h"

#include <torch/cuda.h>

#include "common/errors.h"

namespace distill::model {

c10::Device parse_device(const std::string& s) {
  const std::string expected = "expected cpu, cuda or cuda:N";
  if (s == "cpu") return c10::Device(c10::kCPU);
  std::int64_t index = -1;
  if (s.rfind("cuda", 0) != 0) throw InputError("--device '" + s + "': " + expected);
  if (s.size() > 4) {
    const auto digits = s.substr(5);
    if (s[4] != ':' || digits.empty() || digits.size() > 3 || digits.find_first_not_of("0123456789") != std::string::npos)
      throw InputError("--device '" + s + "': " + expected);
    index = std::stoll(digits);
  }
  const auto n = std::int64_t(torch::cuda::device_count());
  if (n == 0) throw InputError("--device " + s + ": this machine has no CUDA device (torch sees none); use --device cpu");
  if (index >= n)
    throw InputError("--device " + s + ": this machine has " + std::to_string(n) + " CUDA device" + (n == 1 ? "" : "s") +
                     " (cuda:0.." + "cuda:" + std::to_string(n - 1) + ")");
  return index < 0 ? c10::Device(c10::kCUDA) : c10::Device(c10::kCUDA, c10::DeviceIndex(index));
}

}  // namespace distill::model
