// tests/test_prompt_format.cpp: the R1 prompt and the gold-solution response format.
#include <catch2/catch.hpp>

#include "dataset/answer.h"
#include "teacher/prompt_format.h"

using namespace distill;

TEST_CASE("prompt format: R1 prompt opens the think block and carries the instruction") {
  auto p = teacher::r1_prompt("What is 2+2?");
  CHECK(p == "User: What is 2+2?\nPlease reason step by step, and put your final answer within \\boxed{}.\n"
             "Assistant: <think>\n");
}

TEST_CASE("prompt format: a gold solution becomes steps, </think>, boxed answer, it verifies as correct") {
  auto r = teacher::r1_response_from_solution("3+5=8\n8-2=6\n\\boxed{6}");
  CHECK(r == "3+5=8\n8-2=6\n</think>\n\\boxed{6}");
  auto full = teacher::r1_prompt("q") + r;
  CHECK(dataset::verify_completion(full, "6").verdict == dataset::Verdict::correct);
  CHECK(teacher::r1_response_from_solution("\\boxed{4}\n") == "</think>\n\\boxed{4}");
}
