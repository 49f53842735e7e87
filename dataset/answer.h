// dataset/answer.h: final-answer extraction, normalisation and verification (pure functions over text).
// Extraction follows the R1 protocol: only the text after the last </think> counts; an unclosed <think>
// block has no answer. Within it: the last \boxed{...} (nested braces), else the last `#### n` line,
// else the last "the answer is n". Verification compares numerically with a tolerance where both sides
// are numbers (fractions, percentages, thousands separators, \frac), else as normalised text.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace distill::dataset {

enum class Verdict { correct, incorrect, unparsable };
const char* to_string(Verdict v);

// The content of the last well-formed \boxed{...} (or \fbox{...}) in `text`, ignoring any think-block rule.
// nullopt when there is none, or when the last one has unbalanced braces.
std::optional<std::string> last_boxed(std::string_view text);

// The final answer of a completion under the rules above; nullopt if none can be found.
std::optional<std::string> extract_answer(std::string_view completion);

// A normalised answer: either a number (value, plus whether it was written as a percentage) or text.
struct NormalizedAnswer {
  bool numeric = false;
  long double value = 0;  // when numeric
  bool percent = false;   // written with % or \%
  std::string text;       // canonical text (always set; used when either side is not numeric)
};
NormalizedAnswer normalize_answer(std::string_view raw);

// True if `answer` and `gold` denote the same value. Two whole numbers must be equal; otherwise
// |a-b| <= 1e-9 + 1e-6*max(|a|,|b|). A percentage p% also matches p/100. Text compares case-insensitively
// after normalisation (whitespace removed, \dfrac and \tfrac read as \frac).
bool answers_equivalent(std::string_view answer, std::string_view gold);

struct Verification {
  Verdict verdict;
  std::optional<std::string> extracted;
};
Verification verify_completion(std::string_view completion, std::string_view gold);

}  // namespace distill::dataset
