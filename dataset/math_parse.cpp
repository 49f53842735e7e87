// dataset/math_parse.cpp: see math_parse.h. Two stages: normalize_latex() rewrites the string (noise out, separators
// resolved), then a recursive-descent parser over tokens builds the tree, counting its depth.
#include "dataset/math_parse.h"

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace distill::dataset::math {

namespace {
bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }
bool is_alpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }
}  // namespace

std::string trim(std::string_view s) {
  std::size_t a = 0, b = s.size();
  while (a < b && is_space(s[a])) ++a;
  while (b > a && is_space(s[b - 1])) --b;
  return std::string(s.substr(a, b - a));
}

std::size_t match_brace(std::string_view s, std::size_t open) {
  int depth = 0;
  for (std::size_t i = open; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == '{' || s[i + 1] == '}')) { ++i; continue; }
    if (s[i] == '{') ++depth;
    else if (s[i] == '}' && --depth == 0) return i;
  }
  return std::string_view::npos;
}

namespace {

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  for (std::size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) s.replace(pos, from.size(), to);
}

// Removes a command that takes no argument wherever it is not the prefix of a longer command name.
void drop_command(std::string& s, std::string_view cmd) {
  for (std::size_t pos = 0; (pos = s.find(cmd, pos)) != std::string::npos;) {
    const std::size_t end = pos + cmd.size();
    if (is_alpha(cmd.back()) && end < s.size() && is_alpha(s[end])) { pos = end; continue; }
    s.erase(pos, cmd.size());
  }
}

bool all_letters(std::string_view w) {
  return !w.empty() && std::all_of(w.begin(), w.end(), [](char c) { return is_alpha(c) || c == ' ' || c == '.' || c == '/'; });
}

// \text{...} and its kin: a unit after a number is dropped, "and"/"or" become a comma, anything else is kept bare.
void unwrap_text(std::string& s) {
  for (std::string_view cmd : {"\\textnormal", "\\textbf", "\\textit", "\\textrm", "\\text", "\\mathrm", "\\mathbf",
                               "\\mathit", "\\mbox", "\\operatorname"}) {
    for (std::size_t pos = s.find(cmd); pos != std::string::npos; pos = s.find(cmd, pos)) {
      const std::size_t open = pos + cmd.size();
      if (open >= s.size() || s[open] != '{') { pos = open; continue; }
      const std::size_t close = match_brace(s, open);
      if (close == std::string::npos) return;
      std::string inner = trim(std::string_view(s).substr(open + 1, close - open - 1));
      std::size_t prev = pos;
      while (prev > 0 && s[prev - 1] == ' ') --prev;
      const bool after_value = prev > 0 && (is_digit(s[prev - 1]) || s[prev - 1] == '}' || s[prev - 1] == ')');
      std::string lower = inner;
      std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return char(std::tolower(c)); });
      std::string repl = " " + inner + " ";
      if (lower == "and" || lower == "or" || lower == ",") repl = ",";
      std::size_t end = close + 1;
      if (!(lower == "and" || lower == "or" || lower == ",") && after_value && all_letters(inner) && inner.size() > 1) {
        repl = "";
        for (std::string_view sq : {"^2", "^3", "^{2}", "^{3}"})  // "5 \text{cm}^2": the square goes with the unit
          if (s.compare(end, sq.size(), sq) == 0) end += sq.size();
      }
      s.replace(pos, end - pos, repl);
    }
  }
}

// Thousands separators: "{,}" before exactly three digits is one (else a decimal comma); "1,234,567" at bracket
// depth 0 with no spaces is one number. "32, 349" (a space) stays a list of two.
void resolve_separators(std::string& s) {
  for (std::size_t pos = 0; (pos = s.find("{,}", pos)) != std::string::npos;) {
    std::size_t d = pos + 3, n = 0;
    while (d + n < s.size() && is_digit(s[d + n])) ++n;
    s.replace(pos, 3, n == 3 ? "" : ".");
  }
  std::string out;
  int depth = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '(' || c == '[' || c == '{') ++depth;
    if (c == ')' || c == ']' || c == '}') --depth;
    if (c == ',' && depth == 0 && i > 0 && is_digit(s[i - 1])) {
      // the digits before this comma (back to a non-digit) and the group after it
      std::size_t b = i;
      while (b > 0 && is_digit(s[b - 1])) --b;
      std::size_t n = 0;
      while (i + 1 + n < s.size() && is_digit(s[i + 1 + n])) ++n;
      const bool starts_ok = b == 0 || !(s[b - 1] == '.' || is_alpha(s[b - 1]));
      if (n == 3 && starts_ok && i - b <= 3) continue;  // the group before is 1-3 digits (or the previous group)
    }
    out += c;
  }
  s = out;
}

// "5 cm", "12.50 dollars", "7 apples": trailing words after a value are units.
void drop_trailing_words(std::string& s) {
  for (;;) {
    std::size_t e = s.size();
    while (e > 0 && s[e - 1] == ' ') --e;
    std::size_t b = e;
    while (b > 0 && (is_alpha(s[b - 1]) || s[b - 1] == '.')) --b;
    if (b == e || e - b < 2 || b == 0 || s[b - 1] != ' ' || (b >= 2 && s[b - 2] == '\\')) return;
    std::size_t p = b;
    while (p > 0 && s[p - 1] == ' ') --p;
    if (p == 0 || !(is_digit(s[p - 1]) || s[p - 1] == '}' || s[p - 1] == ')' || s[p - 1] == '%')) return;
    s.erase(p);
  }
}

}  // namespace

std::string normalize_latex(std::string_view in) {
  std::string s = trim(in.substr(0, std::min(in.size(), kMaxAnswerBytes + 1)));
  const std::pair<std::string_view, std::string_view> unicode[] = {
      {"\xE2\x88\x92", "-"}, {"\xC2\xB0", ""}, {"\xC3\x97", "\\times "}, {"\xC2\xB7", "\\cdot "}, {"\xE2\x89\xA4", "\\le "},
      {"\xE2\x89\xA5", "\\ge "}, {"\xE2\x89\xA0", "\\ne "}, {"\xCF\x80", "\\pi "}, {"\xE2\x88\x9E", "\\infty "},
      {"\xE2\x88\x9A", "\\sqrt "}, {"\xE2\x88\x88", "\\in "}, {"\xE2\x88\xAA", "\\cup "}};
  for (auto [from, to] : unicode) replace_all(s, from, to);
  for (int pass = 0; pass < 3; ++pass) {  // math delimiters around the whole answer
    if (s.size() >= 4 && s.rfind("$$", 0) == 0 && s.compare(s.size() - 2, 2, "$$") == 0) s = trim(std::string_view(s).substr(2, s.size() - 4));
    if (s.size() >= 2 && s.front() == '$' && s.back() == '$') s = trim(std::string_view(s).substr(1, s.size() - 2));
    if (s.size() >= 4 && (s.rfind("\\(", 0) == 0 || s.rfind("\\[", 0) == 0) &&
        (s.compare(s.size() - 2, 2, "\\)") == 0 || s.compare(s.size() - 2, 2, "\\]") == 0))
      s = trim(std::string_view(s).substr(2, s.size() - 4));
  }
  replace_all(s, "\\$", "");
  replace_all(s, "$", "");
  for (std::string_view c : {"\\dfrac", "\\tfrac", "\\cfrac"}) replace_all(s, c, "\\frac");
  replace_all(s, "\\dbinom", "\\binom");
  replace_all(s, "\\tbinom", "\\binom");
  for (std::string_view c : {"^{\\circ}", "^\\circ", "{}^\\circ", "\\circ", "\\degree"}) replace_all(s, c, "");
  for (std::string_view c : {"\\left", "\\right", "\\displaystyle", "\\textstyle", "\\bigl", "\\bigr", "\\Bigl", "\\Bigr",
                             "\\big", "\\Big", "\\qquad", "\\quad"})
    drop_command(s, c);
  replace_all(s, "\\\\", " \\cr ");  // a matrix row break, before "\ " (a space) is taken out
  for (std::string_view c : {"\\!", "\\,", "\\;", "\\:", "\\ ", "~"}) replace_all(s, c, c == "\\ " || c == "~" ? " " : "");
  replace_all(s, "\\mathbb{R}", "(-\\infty,\\infty)");
  unwrap_text(s);
  replace_all(s, "\\%", "%");
  for (std::string_view w : {" percent", "percent"}) replace_all(s, w, "%");
  resolve_separators(s);
  s = trim(s);
  while (!s.empty() && (s.back() == '.' || s.back() == ';' || (s.back() == ',' && s.size() > 1))) s = trim(std::string_view(s).substr(0, s.size() - 1));
  drop_trailing_words(s);
  return trim(s);
}

std::size_t Expr::nodes() const {
  std::size_t n = 1;
  for (const auto& a : args) n += a.nodes();
  return n;
}

std::string Expr::str() const {
  auto join = [&](const char* open, const char* close) {
    std::string o = open;
    for (std::size_t i = 0; i < args.size(); ++i) o += (i ? "," : "") + args[i].str();
    return o + close;
  };
  switch (kind) {
    case Kind::number: case Kind::symbol: case Kind::constant: case Kind::text: return text;
    case Kind::add: return join("add(", ")");
    case Kind::mul: return join("mul(", ")");
    case Kind::div: return join("div(", ")");
    case Kind::pow: return join("pow(", ")");
    case Kind::neg: return join("neg(", ")");
    case Kind::func: return join((text + "(").c_str(), ")");
    case Kind::percent: return join("percent(", ")");
    case Kind::tuple: return join("(", ")");
    case Kind::set: return join("{", "}");
    case Kind::list: return join("list(", ")");
    case Kind::interval: return join(left_closed ? "[" : "(", right_closed ? "]" : ")");
    case Kind::union_: return join("union(", ")");
    case Kind::matrix: return join(("matrix" + std::to_string(rows) + "x" + std::to_string(cols) + "(").c_str(), ")");
    case Kind::relation: return join(("rel" + text + "(").c_str(), ")");
    case Kind::choice: return join(("choice" + text + "(").c_str(), ")");
    case Kind::empty_set: return "{}";
  }
  return "?";
}

namespace {

struct Token {
  enum Type { num, letter, word, cmd, op, end } type = end;
  std::string text;
};

struct ParseError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "1.5" with exponent "3" -> "1500"; "2" with "-2" -> "0.02": scientific notation as an exact decimal.
std::string shift_decimal(std::string m, long e) {
  if (e > 400 || e < -400) throw ParseError("exponent out of range");
  std::size_t dot = m.find('.');
  std::string digits = m;
  long point = long(m.size());
  if (dot != std::string::npos) { digits.erase(dot, 1); point = long(dot); }
  point += e;
  if (point <= 0) return "0." + std::string(std::size_t(-point), '0') + digits;
  if (point >= long(digits.size())) return digits + std::string(std::size_t(point - long(digits.size())), '0');
  return digits.substr(0, std::size_t(point)) + "." + digits.substr(std::size_t(point));
}

// In mathematics a short run of letters is a product ("xy", "abc" in \frac{x+y}{xy}); in a text answer it is a
// word ("no", "odd"). Runs of 2-3 letters are split into letters only where the answer is visibly mathematics (it
// has a number, an operator or a command) and the run is not a function name written without its backslash.
std::vector<Token> split_letter_products(std::vector<Token> toks) {
  bool math = false;
  for (const auto& t : toks)
    math = math || t.type == Token::num || t.type == Token::cmd ||
           (t.type == Token::op && t.text != "," && t.text != "(" && t.text != ")" && t.text != ".");
  if (!math) return toks;
  static const char* const kNames[] = {"sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "exp", "lim", "max",
                                       "min", "gcd", "lcm", "deg", "mod", "arg", "det", "dim", "ker", "and", "or"};
  std::vector<Token> out;
  for (auto& t : toks) {
    const bool name = std::find(std::begin(kNames), std::end(kNames), t.text) != std::end(kNames);
    if (t.type != Token::word || t.text.size() > 3 || name) {
      out.push_back(std::move(t));
      continue;
    }
    for (char c : t.text) out.push_back({Token::letter, std::string(1, c)});
  }
  return out;
}

std::vector<Token> tokenize(std::string_view s) {
  std::vector<Token> out;
  for (std::size_t i = 0; i < s.size();) {
    const char c = s[i];
    if (is_space(c)) { ++i; continue; }
    if (is_digit(c) || (c == '.' && i + 1 < s.size() && is_digit(s[i + 1]))) {
      std::size_t j = i;
      while (j < s.size() && is_digit(s[j])) ++j;
      if (j < s.size() && s[j] == '.' && j + 1 < s.size() && is_digit(s[j + 1])) {
        ++j;
        while (j < s.size() && is_digit(s[j])) ++j;
      }
      std::string m(s.substr(i, j - i));
      if (m.front() == '.') m = "0" + m;
      // 1.5e3, 2E-4: scientific notation (a letter e followed by a signed integer)
      if (j + 1 < s.size() && (s[j] == 'e' || s[j] == 'E')) {
        std::size_t k = j + 1;
        if (k < s.size() && (s[k] == '+' || s[k] == '-')) ++k;
        std::size_t d = k;
        while (d < s.size() && is_digit(s[d])) ++d;
        if (d > k && d - k <= 4 && (d >= s.size() || !is_alpha(s[d]))) {
          m = shift_decimal(m, std::stol(std::string(s.substr(j + 1, d - j - 1))));
          j = d;
        }
      }
      out.push_back({Token::num, m});
      i = j;
    } else if (is_alpha(c)) {
      std::size_t j = i;
      while (j < s.size() && is_alpha(s[j])) ++j;
      std::string w(s.substr(i, j - i));
      if (w == "and" || w == "or") out.push_back({Token::op, ","});
      else if (w.size() == 1) out.push_back({Token::letter, w});
      else out.push_back({Token::word, w});
      i = j;
    } else if (c == '\\') {
      std::size_t j = i + 1;
      while (j < s.size() && is_alpha(s[j])) ++j;
      if (j == i + 1 && j < s.size()) ++j;  // \{ \} \\ \|
      out.push_back({Token::cmd, std::string(s.substr(i + 1, j - i - 1))});
      i = j;
    } else if ((c == '<' || c == '>' || c == '!') && i + 1 < s.size() && s[i + 1] == '=') {
      out.push_back({Token::op, std::string(1, c) + "="});
      i += 2;
    } else {
      out.push_back({Token::op, std::string(1, c)});
      ++i;
    }
  }
  out.push_back({Token::end, ""});
  return split_letter_products(std::move(out));
}

Expr node(Kind k, std::vector<Expr> args = {}, std::string text = {}) {
  Expr e;
  e.kind = k;
  e.args = std::move(args);
  e.text = std::move(text);
  return e;
}

const char* relation_of(const Token& t) {
  if (t.type == Token::op) {
    if (t.text == "=") return "=";
    if (t.text == "<") return "<";
    if (t.text == ">") return ">";
    if (t.text == "<=") return "<=";
    if (t.text == ">=") return ">=";
    if (t.text == "!=") return "!=";
  }
  if (t.type == Token::cmd) {
    if (t.text == "le" || t.text == "leq" || t.text == "leqslant") return "<=";
    if (t.text == "ge" || t.text == "geq" || t.text == "geqslant") return ">=";
    if (t.text == "lt") return "<";
    if (t.text == "gt") return ">";
    if (t.text == "ne" || t.text == "neq") return "!=";
    if (t.text == "in") return "in";
  }
  return nullptr;
}

bool is_function(const std::string& c) {
  static const char* const fns[] = {"sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan",
                                    "sinh", "cosh", "tanh", "ln", "log", "exp"};
  return std::any_of(std::begin(fns), std::end(fns), [&](const char* f) { return c == f; });
}

bool is_greek(const std::string& c) {
  static const char* const g[] = {"alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta",
                                  "vartheta", "iota", "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma", "tau",
                                  "upsilon", "phi", "varphi", "chi", "psi", "omega", "Gamma", "Delta", "Theta",
                                  "Lambda", "Sigma", "Phi", "Psi", "Omega"};
  return std::any_of(std::begin(g), std::end(g), [&](const char* f) { return c == f; });
}

class Parser {
 public:
  explicit Parser(std::vector<Token> t) : toks_(std::move(t)) {}

  Expr parse() {
    Expr e = top();
    if (peek().type != Token::end) throw ParseError("trailing input");
    return e;
  }

 private:
  std::vector<Token> toks_;
  std::size_t pos_ = 0;
  int depth_ = 0;

  struct Depth {
    int& d;
    explicit Depth(int& x) : d(x) {
      if (++d > kMaxDepth) throw ParseError("nested too deeply");
    }
    ~Depth() { --d; }
  };

  const Token& peek(std::size_t k = 0) const { return toks_[std::min(pos_ + k, toks_.size() - 1)]; }
  Token next() { return toks_[std::min(pos_++, toks_.size() - 1)]; }
  bool is_op(const char* o, std::size_t k = 0) const { return peek(k).type == Token::op && peek(k).text == o; }
  bool is_cmd(const char* c, std::size_t k = 0) const { return peek(k).type == Token::cmd && peek(k).text == c; }
  void expect_op(const char* o) {
    if (!is_op(o)) throw ParseError(std::string("expected ") + o);
    ++pos_;
  }

  // Comma-separated items up to (not including) a closer; one item is returned as itself.
  std::vector<Expr> items() {
    std::vector<Expr> v{relation()};
    while (is_op(",") || is_op(";")) {
      ++pos_;
      v.push_back(relation());
    }
    return v;
  }

  Expr top() {
    auto v = items();
    return v.size() == 1 ? std::move(v[0]) : node(Kind::list, std::move(v));
  }

  Expr relation() {
    Depth d(depth_);
    Expr lhs = union_expr();
    if (const char* r = relation_of(peek())) {
      ++pos_;
      Expr rhs = union_expr();
      if (const char* r2 = relation_of(peek())) {
        ++pos_;
        return chained(std::move(lhs), r, std::move(rhs), r2, union_expr());
      }
      return node(Kind::relation, {std::move(lhs), std::move(rhs)}, r);
    }
    return lhs;
  }

  // "a <= x < b" is x in [a, b); "a > x >= b" is x in [b, a). Other chains ("a < x > b", "a = b = c") are refused.
  Expr chained(Expr a, std::string_view r1, Expr x, std::string_view r2, Expr b) {
    const auto up = [](std::string_view r) { return r == "<" || r == "<="; };
    const auto down = [](std::string_view r) { return r == ">" || r == ">="; };
    if (x.kind != Kind::symbol || !((up(r1) && up(r2)) || (down(r1) && down(r2)))) throw ParseError("chained relation");
    if (down(r1)) std::swap(a, b), std::swap(r1, r2);
    Expr iv = node(Kind::interval, {std::move(a), std::move(b)});
    iv.left_closed = r1 == "<=" || r1 == ">=";
    iv.right_closed = r2 == "<=" || r2 == ">=";
    return node(Kind::relation, {std::move(x), std::move(iv)}, "in");
  }

  Expr union_expr() {
    Expr e = expr();
    if (!is_cmd("cup")) return e;
    std::vector<Expr> parts{std::move(e)};
    while (is_cmd("cup")) {
      ++pos_;
      parts.push_back(expr());
    }
    return node(Kind::union_, std::move(parts));
  }

  Expr expr() {
    Depth d(depth_);
    std::vector<Expr> terms{unary_term()};
    while (is_op("+") || is_op("-")) {
      const bool minus = next().text == "-";
      Expr t = term();
      terms.push_back(minus ? node(Kind::neg, {std::move(t)}) : std::move(t));
    }
    return terms.size() == 1 ? std::move(terms[0]) : node(Kind::add, std::move(terms));
  }

  Expr unary_term() {
    if (is_op("-")) {
      ++pos_;
      return node(Kind::neg, {unary_term()});
    }
    if (is_op("+")) ++pos_;
    return term();
  }

  bool starts_factor() const {
    const Token& t = peek();
    if (t.type == Token::num || t.type == Token::letter) return true;
    if (t.type == Token::op) return t.text == "(" || t.text == "{";
    if (t.type == Token::cmd)
      return t.text == "frac" || t.text == "sqrt" || t.text == "pi" || t.text == "infty" || t.text == "binom" ||
             is_function(t.text) || is_greek(t.text) || t.text == "{";
    return false;
  }

  Expr term() {
    Depth d(depth_);
    std::vector<Expr> factors{postfix()};
    for (;;) {
      if (is_op("*") || is_cmd("cdot") || is_cmd("times") || is_cmd("ast")) {
        ++pos_;
        factors.push_back(signed_postfix());
      } else if (is_op("/") || is_cmd("div")) {
        ++pos_;
        Expr num = factors.size() == 1 ? std::move(factors[0]) : node(Kind::mul, std::move(factors));
        factors.clear();
        factors.push_back(node(Kind::div, {std::move(num), signed_postfix()}));
      } else if (starts_factor()) {
        if (peek().type == Token::num && (factors.back().kind == Kind::number || factors.back().kind == Kind::percent))
          throw ParseError("two numbers side by side");
        factors.push_back(postfix());
      } else {
        break;
      }
    }
    return factors.size() == 1 ? std::move(factors[0]) : node(Kind::mul, std::move(factors));
  }

  Expr signed_postfix() {
    if (is_op("-")) {
      ++pos_;
      return node(Kind::neg, {signed_postfix()});
    }
    return postfix();
  }

  Expr postfix() {
    Depth d(depth_);
    Expr p = primary();
    for (;;) {
      if (is_op("^")) {
        ++pos_;
        p = node(Kind::pow, {std::move(p), argument()});
      } else if (is_op("!")) {
        ++pos_;
        p = node(Kind::func, {std::move(p)}, "factorial");
      } else if (is_op("%")) {
        ++pos_;
        p = node(Kind::percent, {std::move(p)});
      } else if (is_op("_") && p.kind == Kind::symbol) {
        ++pos_;
        p.text += "_" + argument().str();
      } else {
        return p;
      }
    }
  }

  // A ^ or \frac argument: a braced group, or a single character (x^23 is x^2 times 3 in LaTeX).
  Expr argument() {
    Depth d(depth_);
    if (is_op("{")) {
      ++pos_;
      Expr e = top();
      expect_op("}");
      return e;
    }
    if (peek().type == Token::num && peek().text.size() > 1) {
      Token& t = toks_[pos_];
      Expr e = node(Kind::number, {}, t.text.substr(0, 1));
      t.text.erase(0, 1);
      if (t.text.front() == '.') throw ParseError("split decimal");
      return e;
    }
    if (is_op("-")) {
      ++pos_;
      return node(Kind::neg, {argument()});
    }
    return primary();
  }

  // A function's argument: (..), {..}, or the next factor (\sin x, \ln 2).
  Expr function_argument() {
    if (is_op("(") || is_op("{")) return primary();
    return postfix();
  }

  Expr bracketed(const std::string& open) {
    // after "(" or "[": items, then ")" or "]"
    auto v = items();
    const Token close = next();
    if (close.type != Token::op || (close.text != ")" && close.text != "]")) throw ParseError("unclosed bracket");
    const bool lc = open == "[", rc = close.text == "]";
    if (v.size() == 1) {
      if (lc != rc) throw ParseError("half-open group of one");
      return std::move(v[0]);
    }
    if (v.size() == 2 && (lc || rc)) {
      Expr e = node(Kind::interval, std::move(v));
      e.left_closed = lc, e.right_closed = rc;
      return e;
    }
    if (lc != rc) throw ParseError("mismatched brackets");
    return node(Kind::tuple, std::move(v));  // (a, b) stays a tuple; an open interval compares equal to it
  }

  Expr matrix() {
    expect_op("{");
    std::string env;
    while (!is_op("}") && peek().type != Token::end) env += next().text;
    expect_op("}");
    static const char* const kinds[] = {"pmatrix", "bmatrix", "matrix", "smallmatrix", "Bmatrix", "array"};
    if (std::none_of(std::begin(kinds), std::end(kinds), [&](const char* k) { return env == k; }))
      throw ParseError("environment " + env);
    if (env == "array") {  // its column spec: {ccc}
      expect_op("{");
      while (!is_op("}") && peek().type != Token::end) ++pos_;
      expect_op("}");
    }
    std::vector<std::vector<Expr>> rows(1);
    for (;;) {
      if (is_cmd("end")) {
        ++pos_;
        expect_op("{");
        while (!is_op("}") && peek().type != Token::end) ++pos_;
        expect_op("}");
        break;
      }
      if (peek().type == Token::end) throw ParseError("unterminated matrix");
      rows.back().push_back(expr());
      if (is_op("&")) { ++pos_; continue; }
      if (is_cmd("cr")) {
        ++pos_;
        if (!is_cmd("end")) rows.emplace_back();
        continue;
      }
      if (!is_cmd("end")) throw ParseError("matrix entry");
    }
    Expr m = node(Kind::matrix);
    m.rows = std::int64_t(rows.size());
    m.cols = std::int64_t(rows[0].size());
    for (auto& r : rows) {
      if (std::int64_t(r.size()) != m.cols) throw ParseError("ragged matrix");
      for (auto& e : r) m.args.push_back(std::move(e));
    }
    return m;
  }

  Expr primary() {
    Depth d(depth_);
    const Token t = next();
    switch (t.type) {
      case Token::num: return node(Kind::number, {}, t.text);
      case Token::letter: return t.text == "e" ? node(Kind::constant, {}, "e") : node(Kind::symbol, {}, t.text);
      case Token::word: throw ParseError("word " + t.text);
      case Token::end: throw ParseError("unexpected end");
      case Token::op:
        if (t.text == "(" || t.text == "[") return bracketed(t.text);
        if (t.text == "{") {
          if (is_op("}")) { ++pos_; return node(Kind::empty_set); }
          auto v = items();
          expect_op("}");
          return v.size() == 1 ? std::move(v[0]) : node(Kind::set, std::move(v));
        }
        throw ParseError("unexpected " + t.text);
      case Token::cmd: break;
    }
    const std::string& c = t.text;
    if (c == "{") {
      if (is_cmd("}")) { ++pos_; return node(Kind::empty_set); }
      auto v = items();
      if (!is_cmd("}")) throw ParseError("unclosed \\{");
      ++pos_;
      return node(Kind::set, std::move(v));
    }
    if (c == "frac") {
      Expr a = argument();
      Expr b = argument();
      return node(Kind::div, {std::move(a), std::move(b)});
    }
    if (c == "binom") {
      Expr a = argument();
      Expr b = argument();
      return node(Kind::func, {std::move(a), std::move(b)}, "binom");
    }
    if (c == "sqrt") {
      if (is_op("[")) {
        ++pos_;
        Expr index = expr();
        expect_op("]");
        return node(Kind::func, {argument(), std::move(index)}, "root");
      }
      return node(Kind::func, {argument()}, "sqrt");
    }
    if (c == "pi") return node(Kind::constant, {}, "pi");
    if (c == "infty" || c == "infin") return node(Kind::constant, {}, "inf");
    if (c == "emptyset" || c == "varnothing") return node(Kind::empty_set);
    if (is_greek(c)) return node(Kind::symbol, {}, c);
    if (c == "begin") return matrix();
    if (is_function(c)) {
      Expr power;
      if (is_op("^")) {  // \sin^2 x = (\sin x)^2
        ++pos_;
        power = argument();
      }
      Expr f;
      if (c == "log" && is_op("_")) {
        ++pos_;
        Expr base = argument();
        f = node(Kind::func, {function_argument(), std::move(base)}, "log");
      } else {
        f = node(Kind::func, {function_argument()}, c == "ln" ? "log" : c);
      }
      return power.args.empty() && power.text.empty() ? f : node(Kind::pow, {std::move(f), std::move(power)});
    }
    throw ParseError("command \\" + c);
  }
};

// "C", "(C)", "(C) 12", "C) 12": a multiple-choice letter A-E, with the option's value when written after it.
std::optional<Expr> choice(const std::string& s) {
  std::size_t i = 0;
  const bool paren = i < s.size() && s[i] == '(';
  if (paren) ++i;
  if (i >= s.size() || s[i] < 'A' || s[i] > 'E') return std::nullopt;
  const char letter = s[i++];
  if (paren || (i < s.size() && s[i] == ')')) {
    if (i >= s.size() || s[i] != ')') return std::nullopt;
    ++i;
  } else if (i != s.size()) {
    return std::nullopt;  // "C12" or "Cx" is no choice
  }
  Expr e = node(Kind::choice, {}, std::string(1, letter));
  const std::string rest = trim(std::string_view(s).substr(i));
  if (!rest.empty()) {
    try {
      e.args.push_back(Parser(tokenize(rest)).parse());
    } catch (const ParseError&) {
      e.args.push_back(node(Kind::text, {}, rest));
    }
  }
  return e;
}

}  // namespace

std::optional<Expr> parse_answer(std::string_view answer) {
  if (answer.size() > kMaxAnswerBytes) return std::nullopt;
  return parse_normalized(normalize_latex(answer));
}

std::optional<Expr> parse_normalized(std::string_view normalized) {
  const std::string s(normalized);
  if (s.empty() || s.size() > kMaxAnswerBytes) return std::nullopt;
  if (auto c = choice(s)) return c;
  try {
    return Parser(tokenize(s)).parse();
  } catch (const ParseError&) {
    return std::nullopt;
  } catch (const std::out_of_range&) {  // an exponent stol could not hold
    return std::nullopt;
  }
}

}  // namespace distill::dataset::math
