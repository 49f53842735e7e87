// dataset/synth.cpp: the five synthetic task families. Each step of a gold solution is one small, checkable
// operation on its own line (DESIGN.md: steps that are lookups, while the direct answer needs the chain);
// the last line is `\boxed{answer}`. Difficulty 1..5 grows the number of steps and the size of the numbers.
#include "dataset/synth.h"

#include <array>
#include <string_view>

#include "common/errors.h"
#include "common/rng.h"

namespace distill::dataset {

const std::vector<SynthTask>& synth_tasks() {
  static const std::vector<SynthTask> t = {
      {"chain", "running value mod 10 over 2..6 single-digit + and - steps (the demo family)"},
      {"arith", "arithmetic chains with + - * over 1..3-digit integers, 2..6 operations"},
      {"word", "templated word problems: buying, giving, packs and doubling, 2..6 events"},
      {"lineq", "linear equations in x with an integer solution, 1..3 solving steps"},
      {"base", "base conversion from base 10 to base 2..9 by repeated division"},
  };
  return t;
}

namespace {

using S = std::string;
S str(std::int64_t v) { return std::to_string(v); }

struct Built {
  S prompt, answer;
  std::vector<S> steps;
  int n_steps() const { return int(steps.size()); }
};

Built make_chain(Rng& r, int d) {
  const int n = d + 1;
  std::int64_t v = r.uniform(0, 9);
  Built b;
  S ops;
  const std::int64_t start = v;
  for (int i = 0; i < n; ++i) {
    const bool add = r.coin();
    const std::int64_t x = r.uniform(1, 9);
    const std::int64_t nv = ((add ? v + x : v - x) % 10 + 10) % 10;
    if (i) ops += (i == n - 1) ? ", then " : ", ";
    ops += (add ? "add " : "subtract ") + str(x);
    b.steps.push_back(str(v) + (add ? "+" : "-") + str(x) + "=" + str(nv));
    v = nv;
  }
  // Capitalise the first operation word after "Start with N."
  ops[0] = char(ops[0] - 'a' + 'A');
  b.prompt = "Start with " + str(start) + ". " + ops +
             ", keeping only the last digit after each step (work mod 10). What is the result?";
  b.answer = str(v);
  return b;
}

Built make_arith(Rng& r, int d) {
  const int n_ops = d + 1;
  const std::int64_t hi = d <= 2 ? 9 : d <= 4 ? 99 : 999;
  const std::int64_t lo = d <= 2 ? 1 : 10;
  std::int64_t v = r.uniform(lo, hi);
  S expr = str(v);
  Built b;
  for (int i = 0; i < n_ops; ++i) {
    const int op = int(r.uniform(0, 2));  // 0 +, 1 -, 2 *
    const std::int64_t x = op == 2 ? r.uniform(2, d >= 4 ? 12 : 9) : r.uniform(lo, hi);
    const char c = "+-*"[op];
    const std::int64_t nv = op == 0 ? v + x : op == 1 ? v - x : v * x;
    b.steps.push_back(str(v) + c + str(x) + "=" + str(nv));
    expr = (i == 0 ? expr : "(" + expr + ")") + " " + c + " " + str(x);
    v = nv;
  }
  b.prompt = "Compute " + expr + ".";
  b.answer = str(v);
  return b;
}

Built make_word(Rng& r, int d) {
  struct Person { const char *name, *she, *her; };
  static const Person people[] = {{"Mia", "She", "her"}, {"Leo", "He", "his"}, {"Ana", "She", "her"},
                                  {"Sam", "He", "his"}, {"Zoe", "She", "her"}, {"Ben", "He", "his"},
                                  {"Ivy", "She", "her"}, {"Tom", "He", "his"}};
  static const char* others[] = {"a friend", "a classmate", "a neighbour", "the teacher", "a cousin"};
  static const char* items[] = {"apples", "marbles", "stickers", "coins", "books", "shells", "cards"};
  const Person& p = r.pick(people);
  const S item = r.pick(items);
  const std::int64_t hi = d <= 2 ? 9 : d <= 4 ? 20 : 50;
  std::int64_t v = r.uniform(2, hi);
  Built b;
  S text = S(p.name) + " has " + str(v) + " " + item + ".";
  const int n_events = d + 1;
  for (int i = 0; i < n_events; ++i) {
    int kind = int(r.uniform(0, 4));
    if ((kind == 1 || kind == 3) && v < 2) kind = 0;  // cannot give or lose what is not there
    if (kind == 4 && v > 200) kind = 1;               // keep numbers readable
    const S then = i ? "Then " + S(p.she == S("She") ? "she" : "he") : S(p.she);
    std::int64_t x, nv;
    switch (kind) {
      case 0:  // buys more
        x = r.uniform(1, hi);
        nv = v + x;
        text += " " + then + " buys " + str(x) + " more.";
        b.steps.push_back(str(v) + "+" + str(x) + "=" + str(nv));
        break;
      case 1:  // gives some away
        x = r.uniform(1, v);
        nv = v - x;
        text += " " + then + " gives " + str(x) + " to " + r.pick(others) + ".";
        b.steps.push_back(str(v) + "-" + str(x) + "=" + str(nv));
        break;
      case 2: {  // packs
        const std::int64_t k = r.uniform(2, d <= 2 ? 4 : 9), m = r.uniform(2, d <= 2 ? 5 : 12);
        x = k * m;
        nv = v + x;
        text += " " + then + " buys " + str(k) + " packs with " + str(m) + " " + item + " in each.";
        b.steps.push_back(str(k) + "*" + str(m) + "=" + str(x));
        b.steps.push_back(str(v) + "+" + str(x) + "=" + str(nv));
        break;
      }
      case 3:  // loses some
        x = r.uniform(1, v);
        nv = v - x;
        text += " " + then + " loses " + str(x) + ".";
        b.steps.push_back(str(v) + "-" + str(x) + "=" + str(nv));
        break;
      default:  // doubles
        nv = v * 2;
        text += " " + then + " doubles " + p.her + " " + item + ".";
        b.steps.push_back(str(v) + "*2=" + str(nv));
        break;
    }
    v = nv;
  }
  b.prompt = text + " How many " + item + " does " + p.name + " have now?";
  b.answer = str(v);
  return b;
}

S signed_term(std::int64_t v) { return v < 0 ? " - " + str(-v) : " + " + str(v); }
S coef_x(std::int64_t a) { return a == 1 ? "x" : a == -1 ? "-x" : str(a) + "x"; }

Built make_lineq(Rng& r, int d) {
  const std::int64_t hi = d <= 2 ? 9 : 20;
  std::int64_t x = r.uniform(d >= 4 ? -hi : 0, hi);
  Built b;
  if (d == 1) {  // x + b = c
    const std::int64_t bb = r.uniform(1, 20), c = x + bb;
    b.prompt = "Solve for x: x + " + str(bb) + " = " + str(c) + ".";
    b.steps.push_back("x = " + str(c) + " - " + str(bb) + " = " + str(x));
  } else if (d == 2) {  // a x = c
    const std::int64_t a = r.uniform(2, 9), c = a * x;
    b.prompt = "Solve for x: " + coef_x(a) + " = " + str(c) + ".";
    b.steps.push_back("x = " + str(c) + " / " + str(a) + " = " + str(x));
  } else if (d == 3 || d == 5) {  // a x + b = c  (d5: a (x + b) = c)
    const std::int64_t a = r.uniform(2, d == 5 ? 12 : 9), bb = r.uniform(-20, 20);
    if (d == 3) {
      const std::int64_t c = a * x + bb;
      b.prompt = "Solve for x: " + coef_x(a) + signed_term(bb) + " = " + str(c) + ".";
      b.steps.push_back(coef_x(a) + " = " + str(c) + (bb < 0 ? " + " + str(-bb) : " - " + str(bb)) + " = " +
                        str(c - bb));
      b.steps.push_back("x = " + str(c - bb) + " / " + str(a) + " = " + str(x));
    } else {
      const std::int64_t c = a * (x + bb);
      b.prompt = "Solve for x: " + str(a) + "(x" + signed_term(bb) + ") = " + str(c) + ".";
      b.steps.push_back("x" + signed_term(bb) + " = " + str(c) + " / " + str(a) + " = " + str(x + bb));
      b.steps.push_back("x = " + str(x + bb) + (bb < 0 ? " + " + str(-bb) : " - " + str(bb)) + " = " + str(x));
    }
  } else {  // d == 4: a x + b = c x + e
    std::int64_t a = r.uniform(2, 12), c = r.uniform(1, 11);
    if (c >= a) std::swap(a, c), ++a;
    const std::int64_t bb = r.uniform(-20, 20), e = (a - c) * x + bb;
    b.prompt = "Solve for x: " + coef_x(a) + signed_term(bb) + " = " + coef_x(c) + signed_term(e) + ".";
    b.steps.push_back(coef_x(a) + " - " + coef_x(c) + " = " + coef_x(a - c));
    b.steps.push_back(coef_x(a - c) + " = " + str(e) + (bb < 0 ? " + " + str(-bb) : " - " + str(bb)) + " = " +
                      str(e - bb));
    b.steps.push_back("x = " + str(e - bb) + " / " + str(a - c) + " = " + str(x));
  }
  b.answer = str(x);
  return b;
}

Built make_base(Rng& r, int d) {
  static constexpr std::array<std::int64_t, 6> lo = {0, 2, 16, 64, 256, 1000};
  static constexpr std::array<std::int64_t, 6> hi = {0, 15, 63, 255, 999, 9999};
  static constexpr std::array<std::int64_t, 6> max_base = {0, 2, 4, 8, 9, 9};
  const std::int64_t n = r.uniform(lo[std::size_t(d)], hi[std::size_t(d)]);
  const std::int64_t base = r.uniform(2, max_base[std::size_t(d)]);
  Built b;
  std::int64_t v = n;
  S digits;
  while (v > 0) {
    b.steps.push_back(str(v) + " = " + str(base) + "*" + str(v / base) + " + " + str(v % base));
    digits.insert(digits.begin(), char('0' + v % base));
    v /= base;
  }
  b.steps.push_back("remainders from last to first: " + digits);
  b.prompt = "Convert " + str(n) + " from base 10 to base " + str(base) + ".";
  b.answer = digits;
  return b;
}

}  // namespace

ProblemRow synth_one(const std::string& task, int difficulty, std::uint64_t stream_seed) {
  if (difficulty < 1 || difficulty > 5)
    throw InputError("difficulty " + std::to_string(difficulty) + " is out of range (expected 1..5)");
  Rng r(stream_seed);
  Built b;
  if (task == "chain") b = make_chain(r, difficulty);
  else if (task == "arith") b = make_arith(r, difficulty);
  else if (task == "word") b = make_word(r, difficulty);
  else if (task == "lineq") b = make_lineq(r, difficulty);
  else if (task == "base") b = make_base(r, difficulty);
  else {
    S names;
    for (const auto& t : synth_tasks()) names += (names.empty() ? "" : ", ") + t.name;
    throw InputError("unknown task '" + task + "' (expected one of: " + names + ", all)");
  }
  ProblemRow p;
  p.source = "synth:" + task;
  p.prompt = b.prompt;
  p.answer = b.answer;
  S sol;
  for (const auto& s : b.steps) sol += s + "\n";
  p.solution = sol + "\\boxed{" + b.answer + "}";
  p.difficulty = difficulty;
  p.meta_json = "{\"task\":\"" + task + "\",\"steps\":" + std::to_string(b.n_steps()) + "}";
  return p;
}

std::string split_of_hash(const std::string& h) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 8 && i < h.size(); ++i) {
    const char c = h[i];
    v = v * 16 + std::uint32_t(c <= '9' ? c - '0' : c - 'a' + 10);
  }
  return v % 5 == 0 ? "eval" : "train";
}

std::vector<ProblemRow> synthesize(const SynthOptions& o) {
  if (o.split != "train" && o.split != "eval")
    throw InputError("split '" + o.split + "' is not valid for synthetic tasks (expected train or eval)");
  if (o.difficulty_min < 1 || o.difficulty_max > 5 || o.difficulty_min > o.difficulty_max)
    throw InputError("difficulty " + std::to_string(o.difficulty_min) + "-" + std::to_string(o.difficulty_max) +
                     " is out of range (expected 1..5, min <= max)");
  if (o.n < 0 || o.n > 100'000'000)
    throw InputError("--n " + std::to_string(o.n) + ": expected 0..100000000 problems in one run");
  std::vector<std::string> tasks;
  if (o.task == "all") {
    for (const auto& t : synth_tasks()) tasks.push_back(t.name);
  } else {
    synth_one(o.task, 1, 0);  // validates the name
    tasks.push_back(o.task);
  }
  std::vector<ProblemRow> out;
  out.reserve(std::size_t(o.n));
  const std::uint64_t max_attempts = std::uint64_t(o.n) * 50 + 1000;
  for (std::uint64_t attempt = 0; std::int64_t(out.size()) < o.n; ++attempt) {
    if (attempt >= max_attempts)
      throw RuntimeFailure("synthesis drew " + std::to_string(attempt) + " candidates without reaching n=" +
                           std::to_string(o.n) + " in split " + o.split);
    Rng pick(mix_seed(o.seed, attempt));
    const auto& task = tasks[std::size_t(pick.uniform(0, std::int64_t(tasks.size()) - 1))];
    const int d = int(pick.uniform(o.difficulty_min, o.difficulty_max));
    ProblemRow p = synth_one(task, d, pick.next());
    if (split_of_hash(content_hash(p.prompt)) != o.split) continue;
    p.split = o.split;
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace distill::dataset
