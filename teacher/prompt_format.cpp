// teacher/prompt_format.cpp: see prompt_format.h.
#include "teacher/prompt_format.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "model/chat_template.h"

namespace distill::teacher {

std::string r1_prompt(std::string_view problem) {
  std::string s = "User: ";
  s += problem;
  s += "\n";
  s += kR1Instruction;
  s += "\nAssistant: <think>\n";
  return s;
}

std::string r1_response_from_solution(std::string_view solution) {
  // The last line is the boxed answer; everything before it is the reasoning.
  std::size_t end = solution.size();
  while (end > 0 && solution[end - 1] == '\n') --end;
  const std::size_t nl = solution.rfind('\n', end ? end - 1 : 0);
  if (nl == std::string_view::npos || nl >= end) return "</think>\n" + std::string(solution.substr(0, end));
  std::string s(solution.substr(0, nl));
  s += "\n</think>\n";
  s += solution.substr(nl + 1, end - nl - 1);
  return s;
}

std::vector<int> r1_prompt_ids(const model::Tokenizer& tok, std::string_view problem) {
  std::vector<int> ids;
  if (tok.bos_id() >= 0) ids.push_back(tok.bos_id());  // tokenizer.json models may have none (Qwen)
  auto body = tok.encode(r1_prompt(problem));
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

namespace {

// The special tokens a template may print, as transformers passes them (absent ones stay undefined).
nlohmann::json special_tokens(const model::Tokenizer& tok) {
  auto text = [&](int id) { return id >= 0 ? nlohmann::json(tok.piece(id)) : nlohmann::json(nullptr); };
  return {{"bos_token", text(tok.bos_id())}, {"eos_token", text(tok.eos_id())}};
}

}  // namespace

ChatPrompt chat_prompt(const std::string& model_dir, const model::Tokenizer& tok, std::string_view user,
                       const std::string& format) {
  ChatPrompt p;
  if (format == "r1") {
    p.format = "r1";
    p.text = r1_prompt(user);
    p.ids = r1_prompt_ids(tok, user);
    return p;
  }
  if (!format.empty()) throw InputError("--prompt-format '" + format + "': expected r1 (or none: the model's chat template)");
  auto tpl = model::load_chat_template(model_dir);
  if (!tpl)
    throw InputError(model_dir + " has no chat template (chat_template.jinja or tokenizer_config.json's "
                     "chat_template); use --prompt-format r1 for distill's R1 format");
  const auto extra = special_tokens(tok);
  p.format = "chat_template";
  p.text = model::render_chat(*tpl, {{"user", std::string(user)}}, true, extra);
  p.ids = tok.encode(p.text);
  return p;
}

namespace {

std::string problem_turn(std::string_view problem) {
  std::string s(problem);
  s += "\n";
  s += kR1Instruction;
  return s;
}

}  // namespace

PromptFormat PromptFormat::r1(const model::Tokenizer& tok) {
  PromptFormat f;
  f.tok_ = &tok;
  f.name_ = "r1";
  f.prefix_ = "<think>\n";
  return f;
}

PromptFormat PromptFormat::for_model(const std::string& model_dir, const model::Tokenizer& tok, const std::string& choice) {
  if (choice != "" && choice != "auto" && choice != "r1" && choice != "chat_template")
    throw InputError("--prompt-format '" + choice + "': expected auto, r1 or chat_template");
  if (choice == "r1") return r1(tok);
  auto tpl = model::load_chat_template(model_dir);
  if (!tpl) {
    if (choice == "chat_template")
      throw InputError("--prompt-format chat_template: " + model_dir + " has no chat template (chat_template.jinja "
                       "or tokenizer_config.json's chat_template)");
    return r1(tok);
  }
  PromptFormat f;
  f.tok_ = &tok;
  f.name_ = "chat_template";
  f.tpl_ = std::make_shared<const model::ChatTemplate>(std::move(*tpl));
  // Whatever the template puts after the user turn that is the response's own start: an opened think block.
  const auto probe = f.prompt_text("1+1");
  for (const char* open : {"<think>\n", "<think>"})
    if (probe.size() >= std::strlen(open) && probe.compare(probe.size() - std::strlen(open), std::string::npos, open) == 0) {
      f.prefix_ = open;
      break;
    }
  return f;
}

std::string PromptFormat::prompt_text(std::string_view problem) const {
  if (!tpl_) return r1_prompt(problem);
  const auto& tpl = *static_cast<const model::ChatTemplate*>(tpl_.get());
  return model::render_chat(tpl, {{"user", problem_turn(problem)}}, true, special_tokens(*tok_));
}

std::string PromptFormat::chat_text(const std::vector<std::pair<std::string, std::string>>& messages) const {
  if (tpl_) {
    const auto& tpl = *static_cast<const model::ChatTemplate*>(tpl_.get());
    return model::render_chat(tpl, messages, true, special_tokens(*tok_));
  }
  std::string s;
  for (const auto& [role, content] : messages) {
    if (role == "system") s += content + "\n";
    else s += (role == "assistant" ? "Assistant: " : "User: ") + content + "\n";
  }
  return s + "Assistant: <think>\n";
}

std::vector<int> PromptFormat::chat_ids(const std::vector<std::pair<std::string, std::string>>& messages) const {
  if (tpl_) return tok_->encode(chat_text(messages));  // the template writes its own BOS
  std::vector<int> ids;
  if (tok_->bos_id() >= 0) ids.push_back(tok_->bos_id());
  auto body = tok_->encode(chat_text(messages));
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

std::vector<int> PromptFormat::prompt_ids(std::string_view problem) const {
  if (!tpl_) return r1_prompt_ids(*tok_, problem);
  return tok_->encode(prompt_text(problem));  // the template writes its own BOS
}

}  // namespace distill::teacher
