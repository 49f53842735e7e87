// cli/main.cpp: `distill`, the binary users run. It holds every command that touches only the store (data, compare,
// tokenizer, and --help), so they start in milliseconds; a LibTorch command is handed, with the same arguments
// and process id, to distill-torch beside it (exec), before anything is parsed.
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "cli/command.h"

namespace distill::cli {

namespace {

bool wants_torch(int argc, char** argv) {
  if (argc < 2) return false;
  const std::string first = argv[1];
  if (first == "--version") return true;
  for (const auto& c : torch_commands())
    if (first == c.name) return true;
  return false;
}

[[noreturn]] void exec_torch_half(char** argv) {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) {  // no /proc: argv[0], when it names a path (a bare name would make it ./distill-torch, a stranger's file)
    if (std::string(argv[0]).find('/') == std::string::npos) {
      std::cerr << "distill: cannot find distill-torch (no /proc/self/exe, and distill was run by name); run it by path\n";
      std::exit(1);
    }
    self = argv[0];
  }
  const std::string path = (self.parent_path() / "distill-torch").string();
  ::execv(path.c_str(), argv);
  std::cerr << "distill: cannot run " << path << " (the LibTorch commands' binary, built beside distill): "
            << std::strerror(errno) << "\n";
  std::exit(1);
}

// In this binary the LibTorch commands are entries of --help only: main() hands them over before parsing.
void list_torch_commands(CLI::App& root, Registry&) {
  for (const auto& c : torch_commands()) root.add_subcommand(c.name, c.about);
}

std::string no_version() { return "distill (run distill --version for the LibTorch build)\n"; }

}  // namespace

int run_cli(const std::vector<std::string>& args) { return run_cli_with(args, {list_torch_commands, no_version}); }

}  // namespace distill::cli

int main(int argc, char** argv) {
  if (distill::cli::wants_torch(argc, argv)) distill::cli::exec_torch_half(argv);
  return distill::cli::run_cli(std::vector<std::string>(argv, argv + argc));
}
