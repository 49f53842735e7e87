// teacher/prompt_format.cpp: see prompt_format.h.
#include "teacher/prompt_format.h"

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
  std::vector<int> ids = {tok.bos_id()};
  auto body = tok.encode(r1_prompt(problem));
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

}  // namespace distill::teacher
