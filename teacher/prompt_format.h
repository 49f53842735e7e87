// teacher/prompt_format.h: the R1-style chat format shared by generation, pretraining, training and eval.
// The prompt asks for step-by-step reasoning and a boxed answer; the response opens with <think>.
// Pure functions over strings and a tokenizer.
#pragma once

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

// BOS, then the tokens of r1_prompt(problem): what generation and training feed the model.
std::vector<int> r1_prompt_ids(const model::Tokenizer& tok, std::string_view problem);

}  // namespace distill::teacher
