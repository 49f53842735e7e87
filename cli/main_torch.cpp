// cli/main_torch.cpp: distill-torch, the half of the command line that needs LibTorch (generate, train, eval,
// export, serve, ...). `distill` execs it for those commands; it also runs every store command, for `demo`.
#include <string>
#include <vector>

#include "cli/command.h"

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

int main(int argc, char** argv) { return distill::cli::run_cli(std::vector<std::string>(argv, argv + argc)); }
