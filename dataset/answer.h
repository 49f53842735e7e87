// dataset/answer.h: final-answer extraction and verification (pure functions over text). Extraction follows the R1
// protocol: only the text after the last </think> counts; an unclosed <think> block has no answer. Equivalence is
// dataset/math_equiv.h's (LaTeX parsed into a tree, scalars compared by GiNaC).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace distill::dataset {

// unparsable: the completion has no final answer; unverified: it has one, but there is no gold answer to check it
// against (none given, or one the parser cannot read).
enum class Verdict { correct, incorrect, unparsable, unverified };
const char* to_string(Verdict v);

// The verifier's version, stored with every verdict. Bump it whenever a verdict could change (extraction or
// equivalence rules), so `data verify` can tell which stored verdicts an older verifier gave.
inline constexpr const char* kVerifierVersion = "distill-verify 2";

// The content of the last well-formed \boxed{...} (or \fbox{...}) in `text`, ignoring any think-block rule.
// nullopt when there is none, or when the last one has unbalanced braces.
std::optional<std::string> last_boxed(std::string_view text);

// Which rule found the final answer, most trusted first: the box(es), then "final answer is" (also "the answer
// is"), "Answer:", "#### n", and the last $...$ of the last line.
enum class ExtractRule { boxed, boxed_parts, final_answer_is, answer_colon, hashes, last_math };
const char* to_string(ExtractRule r);

struct Extraction {
  std::string answer;
  ExtractRule rule;
};

// The final answer of a completion under the rules above. With gold_parts > 1 (a gold of several answers), several
// boxes after the think block are read as one answer of several parts ("a, b").
std::optional<Extraction> extract_final(std::string_view completion, std::size_t gold_parts = 1);

// True if `answer` and `gold` are the same mathematics: dataset/math_equiv.h's rules.
bool answers_equivalent(std::string_view answer, std::string_view gold);

struct Verification {
  Verdict verdict;
  std::optional<std::string> extracted;
  const char* rule = nullptr;  // to_string(ExtractRule) when an answer was extracted
};
Verification verify_completion(std::string_view completion, std::string_view gold);

}  // namespace distill::dataset
