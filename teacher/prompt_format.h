// teacher/prompt_format.h: the R1-style chat format shared by generation, pretraining, training and eval.
// The prompt asks for step-by-step reasoning and a boxed answer; the response opens with <think>.
// Pure functions over strings and a tokenizer.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "model/tokenizer.h"

namespace distill::teacher {

// DeepSeek-R1's recommended instruction for math problems.
inline constexpr std::string_view kR1Instruction =
    "Please reason step by step, and put your final answer within \\boxed{}.";

// "User: {problem}\n{instruction}\nAssistant: <think>\n" (the model continues from here).
std::string r1_prompt(std::string_view problem);

// A gold solution (step lines, last line \boxed{A}) as the response the model should learn:
// "{steps}\n</think>\n\\boxed{A}" — what follows r1_prompt's "<think>\n".
std::string r1_response_from_solution(std::string_view solution);

// BOS (when the tokenizer has one), then the tokens of r1_prompt(problem): what generation and training feed the model.
std::vector<int> r1_prompt_ids(const model::Tokenizer& tok, std::string_view problem);

// One user turn as a model sees it. format "" uses the model's chat template (rendered with
// add_generation_prompt, then tokenized without added specials, as apply_chat_template(tokenize=True) does) and
// is an InputError when the model has none; "r1" uses r1_prompt_ids. Any other format is an InputError.
struct ChatPrompt {
  std::string text;       // what was tokenized
  std::vector<int> ids;
  std::string format;     // "chat_template" or "r1"
};
ChatPrompt chat_prompt(const std::string& model_dir, const model::Tokenizer& tok, std::string_view user,
                       const std::string& format);

// How generate, train and eval turn a problem into a model's prompt: the model's chat template when it has one
// (the problem and the R1 instruction as the user turn, rendered with add_generation_prompt), else distill's R1
// format. A stored completion is the whole response, think block included: response_prefix() is the part of it
// the prompt already holds ("<think>\n" for R1 and for templates that open the think block themselves, as
// DeepSeek-R1's does), which a generation puts back in front and a training example takes off.
class PromptFormat {
 public:
  // choice "" or "auto": the model's template when it has one, else R1; "r1": R1; "chat_template": the template,
  // an InputError when the model has none. Anything else is an InputError naming --prompt-format.
  static PromptFormat for_model(const std::string& model_dir, const model::Tokenizer& tok, const std::string& choice);
  static PromptFormat r1(const model::Tokenizer& tok);

  std::vector<int> prompt_ids(std::string_view problem) const;
  std::string prompt_text(std::string_view problem) const;
  // A whole conversation ((role, content) turns), ready for the assistant's reply, as `serve` feeds it: the chat
  // template, or R1's turns ("User: {c}\n", "Assistant: {c}\n", a system message as its own first line) ending in
  // "Assistant: <think>\n". One user turn of a problem and R1's instruction gives prompt_text(problem).
  std::string chat_text(const std::vector<std::pair<std::string, std::string>>& messages) const;
  std::vector<int> chat_ids(const std::vector<std::pair<std::string, std::string>>& messages) const;
  const std::string& response_prefix() const { return prefix_; }
  const std::string& name() const { return name_; }  // "r1" or "chat_template"

 private:
  const model::Tokenizer* tok_ = nullptr;
  std::shared_ptr<const void> tpl_;  // the model::ChatTemplate (kept out of this header)
  std::string name_, prefix_, bos_, eos_;
};

}  // namespace distill::teacher
