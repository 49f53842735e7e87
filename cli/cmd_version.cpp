// cli/cmd_version.cpp: `distill --version`: distill and LibTorch versions, CUDA usability, thread counts.
#include <torch/torch.h>
#include <torch/version.h>

#include <sstream>
#include <thread>

#include "cli/command.h"
#include "distill_version.h"

namespace distill::cli {

std::string version_text() {
  std::ostringstream os;
  os << "distill " << DISTILL_VERSION << "\n";
  os << "libtorch " << TORCH_VERSION << "\n";
  const bool cuda = torch::cuda::is_available();
  os << "cuda: " << (cuda ? "usable, " + std::to_string(torch::cuda::device_count()) + " device(s)" : "not usable (no CUDA device or driver)")
     << "\n";
  os << "threads: " << at::get_num_threads() << " intra-op, " << std::thread::hardware_concurrency()
     << " hardware\n";
  return os.str();
}

}  // namespace distill::cli
