// cli/torch_commands.cpp: the names and one-line help of the commands that live in distill-torch, shared by both
// binaries so `distill --help` lists them without loading LibTorch.
#include <stdexcept>

#include "cli/command.h"

namespace distill::cli {

const std::vector<TorchCommand>& torch_commands() {
  static const std::vector<TorchCommand> c = {
      {"generate", "sample chain-of-thought completions from a teacher into the store"},
      {"pretrain", "train a model from scratch on the store's gold chain-of-thought"},
      {"train", "fine-tune a student on curated teacher samples (SFT, loss on completions)"},
      {"plan", "the memory a training run will need, part by part, and whether it fits"},
      {"eval", "evaluate a model on a split: pass@1, pass@k, maj@k, length, speed"},
      {"complete", "continue a prompt with a model (HF checkpoint or distill's own)"},
      {"serve", "serve a model over the OpenAI-compatible API (/v1/chat/completions, /v1/completions, /v1/models, /health)"},
      {"export", "write a model for other tools: an HF directory (transformers, vLLM) or one GGUF file (llama.cpp, Ollama)"},
      {"demo", "run the embedded end-to-end pipeline in a work directory"},
  };
  return c;
}

const char* torch_command_about(const std::string& name) {
  for (const auto& c : torch_commands())
    if (name == c.name) return c.about;
  throw std::logic_error("no LibTorch command named " + name);
}

}  // namespace distill::cli
