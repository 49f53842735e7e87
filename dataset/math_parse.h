// dataset/math_parse.h: a final answer written in LaTeX (or plain text) read into a small expression tree, a pure
// function over bytes. What the tree covers, and what math_equiv.h compares: numbers (exact decimals, thousands
// separators, scientific notation, percentages, units and currency stripped), \frac and its variants, roots,
// powers, functions, constants, tuples, sets, intervals and their unions, matrices, relations (x = 3, x \le 5,
// x \in [a, b]), lists of several answers, and multiple-choice letters. Input is bounded: a long answer or a deep
// nesting is refused (nullopt), never recursed into without limit.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace distill::dataset::math {

enum class Kind {
  number,    // text: an exact decimal "12.5" (no sign, no exponent)
  symbol,    // text: "x", "x_1", "alpha"
  constant,  // text: "pi", "e", "inf"
  add,       // args: terms
  mul,       // args: factors
  div,       // args: numerator, denominator
  pow,       // args: base, exponent
  neg,       // args: operand
  func,      // text: "sqrt", "root" (args: radicand, index), "sin", ..., "log" (args: x [, base]), "factorial", "binom"
  percent,   // args: operand (value operand / 100, written with %)
  tuple,     // args: elements, ordered, written (a, b, ...)
  set,       // args: elements, unordered, written \{a, b\}
  list,      // args: several answers at the top level (a, b or several boxes): unordered
  interval,  // args: low, high; left_closed / right_closed
  union_,    // args: intervals
  matrix,    // args: rows * cols entries, row-major; rows, cols
  relation,  // text: "=", "<", "<=", ">", ">=", "!=", "in"; args: lhs, rhs
  choice,    // text: a multiple-choice letter "A".."E"; args: the option's value when written "(C) 12"
  empty_set,
  text,      // text: words that are no mathematics (compared as normalised text)
};

struct Expr {
  Kind kind = Kind::number;
  std::string text;
  std::vector<Expr> args;
  bool left_closed = false, right_closed = false;  // interval
  std::int64_t rows = 0, cols = 0;                 // matrix
  std::size_t nodes() const;                       // size of the tree
  std::string str() const;                         // a canonical rendering, for text comparison and tests
};

inline constexpr std::size_t kMaxAnswerBytes = 4096;  // longer answers are not parsed
inline constexpr int kMaxDepth = 64;                  // nesting of groups and operators

// The answer's text with LaTeX noise removed: math delimiters, \left/\right, spacing commands, \displaystyle,
// \dfrac/\tfrac/\cfrac -> \frac, thousands separators ({,} \, and 1,234,567), degrees, currency, units in \text{}
// after a number, "percent" -> \%. Exposed for tests and for the text fallback.
std::string normalize_latex(std::string_view answer);

// Text helpers shared with dataset/answer.cpp: `s` without surrounding whitespace; and, given s[open] == '{', the
// index of its matching '}' (escaped \{ and \} skipped), or npos when unbalanced.
std::string trim(std::string_view s);
std::size_t match_brace(std::string_view s, std::size_t open);

// The tree of an answer, or nullopt when it is not well-formed, too long or too deep.
std::optional<Expr> parse_answer(std::string_view answer);
// The same for text normalize_latex() already returned.
std::optional<Expr> parse_normalized(std::string_view normalized);

}  // namespace distill::dataset::math
