// cli/cmd_tokenizer.cpp: `distill tokenizer train` (store text -> SentencePiece model) and
// `distill tokenizer encode` (inspect how a text tokenizes).
#include <chrono>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/common.h"
#include "common/errors.h"
#include "common/fs.h"
#include "dataset/store.h"
#include "model/tokenizer.h"
#include "teacher/prompt_format.h"

namespace distill::cli {

namespace {
struct TrainArgs {
  std::string db, out, model_type = "bpe";
  int vocab_size = 1024;
  bool include_eval = false, force = false;
};
struct EncodeArgs {
  std::string dir, text;
  bool json = false;
};
}  // namespace

void register_tokenizer(CLI::App& root, Registry& reg) {
  CLI::App* tok = root.add_subcommand("tokenizer", "train and inspect the SentencePiece tokenizer");
  tok->require_subcommand(1, 1);

  auto t = std::make_shared<TrainArgs>();
  CLI::App* c = tok->add_subcommand("train", "train a tokenizer on the store's text (digits split, <think> tokens)");
  c->add_option("--db", t->db, "store file");
  c->add_option("--out", t->out, "output directory (tokenizer.model is written there)");
  c->add_option("--vocab-size", t->vocab_size, "vocabulary size, including 256 byte pieces and specials");
  c->add_option("--model-type", t->model_type, "bpe or unigram");
  c->add_flag("--include-eval", t->include_eval, "also train on the eval split's text (off: no eval leakage)");
  c->add_flag("--force", t->force, "replace a tokenizer.model already in --out");
  reg.add(c, [c, t] {
    require(*c, "--db");
    require(*c, "--out");
    check_output_dir(t->out, "--out");
    // A model directory's tokenizer is what its weights were trained against: replacing it silently breaks them.
    if (std::filesystem::exists(std::filesystem::path(t->out) / "tokenizer.model") && !t->force)
      throw InputError("--out " + t->out + " already holds a tokenizer.model (a model or store made with it would no "
                       "longer match); name a new directory, or pass --force to replace it");
    if (t->vocab_size < 300 || t->vocab_size > 1000000)
      throw InputError("--vocab-size " + std::to_string(t->vocab_size) + ": expected 300..1000000");
    const std::string config = resolved_config_toml(*c);
    print_config(config);
    auto t0 = std::chrono::steady_clock::now();
    auto store = dataset::Store::open(t->db, dataset::OpenMode::read);
    std::vector<std::string> texts;
    // The prompt template's words are part of every training example, so the tokenizer sees them too.
    texts.push_back(teacher::r1_prompt("") + "</think>\n\\boxed{}");
    store->for_each_text(t->include_eval ? std::vector<std::string>{} : std::vector<std::string>{"eval"},
                         [&](const std::string& s) { texts.push_back(s); });
    model::TokenizerTrainOptions o;
    o.vocab_size = t->vocab_size;
    o.model_type = t->model_type;
    if (texts.size() == 1)
      throw InputError(t->db + ": no problems or samples to train a tokenizer on" +
                       std::string(t->include_eval ? "" : " outside the eval split (--include-eval adds it)"));
    const auto run_id = store->begin_run("tokenizer train", config);
    try {
      auto model = model::train_sentencepiece(texts, o);
      model::write_tokenizer(t->out, model);
      auto tk = model::load_sentencepiece_from_bytes(model, t->out);
      store->finish_run(run_id, true);
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::cout << "tokenizer: " << tk->vocab_size() << " pieces trained on " << texts.size() << " texts in "
                << fmt_fixed(s, 1) << " s -> " << t->out << "/tokenizer.model\n";
      if (tk->vocab_size() < t->vocab_size)
        std::cerr << "tokenizer: note: " << tk->vocab_size() << " pieces, fewer than --vocab-size " << t->vocab_size
                  << ": the text has no more merges to make\n";
    } catch (...) {
      store->fail_run(run_id);
      throw;
    }
  });

  auto e = std::make_shared<EncodeArgs>();
  CLI::App* en = tok->add_subcommand("encode", "show the ids and pieces of a text");
  en->add_option("--dir", e->dir, "tokenizer directory (holds tokenizer.model)");
  en->add_option("text", e->text, "text to encode");
  en->add_flag("--json", e->json, "print JSON");
  reg.add(en, [en, e] {
    require(*en, "--dir");
    require(*en, "text");
    auto tk = model::load_tokenizer(e->dir);
    auto ids = tk->encode(e->text);
    if (e->json) {
      nlohmann::json pieces = nlohmann::json::array();
      for (int id : ids) pieces.push_back(tk->piece(id));
      std::cout << nlohmann::json{{"ids", ids}, {"pieces", pieces}, {"n_tokens", ids.size()}}.dump() << "\n";
      return;
    }
    std::cout << ids.size() << " tokens\n";
    for (int id : ids) std::cout << id << "\t" << tk->piece(id) << "\n";
  });
}

}  // namespace distill::cli
