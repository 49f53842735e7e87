// cli/main_torch.cpp: distill-torch, the half of the command line that needs LibTorch (generate, train, eval,
// export, serve, ...). `distill` execs it for those commands; it also runs every store command, for `demo`.
#include <string>
#include <vector>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "cli/command.h"
#include "model/cpu_block_cache.h"

namespace distill::cli {

namespace {
void register_torch_commands(CLI::App& root, Registry& reg) {
  register_generate(root, reg);
  register_pretrain(root, reg);
  register_train(root, reg);
  register_plan(root, reg);
  register_eval(root, reg);
  register_complete(root, reg);
  register_serve(root, reg);
  register_export(root, reg);
  register_demo(root, reg);
}
}  // namespace

int run_cli(const std::vector<std::string>& args) { return run_cli_with(args, {register_torch_commands, version_text}); }

}  // namespace distill::cli

int main(int argc, char** argv) {
#ifdef __GLIBC__
  // Tensors of 256 KiB and up live in model/cpu_block_cache.h. Smaller ones are freed and reallocated every step too;
  // glibc's defaults hand them back to the kernel and fault them in zeroed again, so they stay in its heap.
  // (A glibc that refuses the threshold keeps its defaults: the trim threshold alone would pin mmap at 128 KiB.)
  if (mallopt(M_MMAP_THRESHOLD, 256 << 20) == 1) mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
  distill::model::cpu_cache::install();
  return distill::cli::run_cli(std::vector<std::string>(argv, argv + argc));
}
