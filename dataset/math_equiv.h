// dataset/math_equiv.h: whether two final answers are the same mathematics. One function, with rules by category
// (documented in math_equiv.cpp's table of contents and in the README's verification section):
//   numbers     exact for integers and exact rationals; a decimal against an irrational or repeating value within
//               a relative 1e-6; percentages as written or over 100 ("28\%" = "28" = "0.28" when the gold says %)
//   symbolic    GiNaC: the difference expanded and normalised to 0, else equal at random points (trig identities)
//   structures  tuples in order, sets and lists of several answers in any order, intervals with their ends,
//               unions of intervals, matrices entry by entry
//   relations   "x = 3" answers "3"; "(p,q) = (3,2)" answers "(3,2)"; "x \le 5" equals "5 \ge x"; "x \in [a,b]"
//               answers "[a,b]"
//   choices     "C", "(C)", "\text{(C)}", "\textbf{(C) } 12" against the letter
//   text        anything unparsable compares as normalised text
// Bounded: powers, factorials and expansions too large to compute are refused before GiNaC sees them (it cannot be
// interrupted), so every call returns quickly.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "dataset/math_parse.h"

namespace distill::dataset::math {

bool equivalent(const Expr& answer, const Expr& gold);

// A gold answer read once, for comparing many answers with it.
struct Gold {
  explicit Gold(std::string_view gold);
  std::string normalized;    // normalize_latex(gold); empty when the gold is too long
  std::optional<Expr> tree;  // parse_normalized(normalized)
  // Whether answers can be checked against it: it is not empty or too long, and it parses, or is plain words.
  bool checkable() const;
};
bool equivalent(std::string_view answer, const Gold& gold);
bool equivalent(std::string_view answer, std::string_view gold);

}  // namespace distill::dataset::math
