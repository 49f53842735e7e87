// model/device.h: the --device string of every command (cpu, cuda, cuda:N) as a torch::Device, checked before any
// work starts: a malformed name or a CUDA device this machine does not have is bad input (InputError), not a
// LibTorch error halfway through a run.
#pragma once

#include <c10/core/Device.h>

#include <string>

namespace distill::model {

c10::Device parse_device(const std::string& s);

}  // namespace distill::model
