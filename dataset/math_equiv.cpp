// dataset/math_equiv.cpp: see math_equiv.h. Structures are compared here, element by element; scalars go to
// GiNaC through to_ex(), which refuses (nullopt) anything whose exact value would be too large to compute.
#include "dataset/math_equiv.h"

#include <ginac/ginac.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <optional>

namespace distill::dataset::math {

namespace {

using GiNaC::ex;
using GiNaC::numeric;

constexpr std::size_t kMaxSymbolicNodes = 400;  // larger trees skip expansion and are compared at points only
constexpr long kMaxExponent = 4096;              // |n| of a power GiNaC may compute exactly
constexpr double kMaxDigits = 20000;             // digits of an exact power's value
constexpr long kMaxFactorial = 1000;

bool is_scalar(const Expr& e) {
  switch (e.kind) {
    case Kind::number: case Kind::symbol: case Kind::constant: case Kind::add: case Kind::mul: case Kind::div:
    case Kind::pow: case Kind::neg: case Kind::func: case Kind::percent:
      return true;
    default:
      return false;
  }
}

// Decimal text "12.50" as the exact rational 1250/100.
numeric exact_decimal(const std::string& t) {
  const auto dot = t.find('.');
  if (dot == std::string::npos) return numeric(t.c_str());
  std::string digits = t.substr(0, dot) + t.substr(dot + 1);
  digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size() - 1));
  return numeric(digits.c_str()) / numeric(10).power(long(t.size() - dot - 1));
}

struct Converter {
  std::map<std::string, GiNaC::symbol>& symbols;
  bool has_decimal = false;  // a non-integer written as a decimal: the value may be rounded

  std::optional<ex> operator()(const Expr& e) {
    switch (e.kind) {
      case Kind::number:
        if (e.text.find('.') != std::string::npos) has_decimal = true;
        return ex(exact_decimal(e.text));
      case Kind::symbol: {
        auto it = symbols.find(e.text);
        if (it == symbols.end()) it = symbols.emplace(e.text, GiNaC::symbol(e.text)).first;
        return ex(it->second);
      }
      case Kind::constant:
        if (e.text == "pi") return ex(GiNaC::Pi);
        if (e.text == "e") return GiNaC::exp(ex(1));
        return std::nullopt;  // infinity: compared structurally
      case Kind::add: case Kind::mul: {
        ex acc = e.kind == Kind::add ? ex(0) : ex(1);
        for (const auto& a : e.args) {
          auto x = (*this)(a);
          if (!x) return std::nullopt;
          acc = e.kind == Kind::add ? acc + *x : acc * *x;
        }
        return acc;
      }
      case Kind::neg: {
        auto x = (*this)(e.args[0]);
        return x ? std::optional<ex>(-*x) : std::nullopt;
      }
      case Kind::percent: {
        auto x = (*this)(e.args[0]);
        return x ? std::optional<ex>(*x / 100) : std::nullopt;
      }
      case Kind::div: {
        auto a = (*this)(e.args[0]), b = (*this)(e.args[1]);
        if (!a || !b || b->is_zero()) return std::nullopt;
        return *a / *b;
      }
      case Kind::pow: return power(e);
      case Kind::func: return function(e);
      default: return std::nullopt;
    }
  }

  std::optional<ex> power(const Expr& e) {
    auto b = (*this)(e.args[0]);
    if (!b) return std::nullopt;
    auto x = (*this)(e.args[1]);
    if (!x) return std::nullopt;
    if (GiNaC::is_a<numeric>(*x)) {
      const numeric n = GiNaC::ex_to<numeric>(*x);
      if (n.is_integer()) {
        if (GiNaC::abs(n) > kMaxExponent) {
          // only 0, 1 and -1 may be raised that high
          if (!(GiNaC::is_a<numeric>(*b) && (b->is_zero() || GiNaC::abs(GiNaC::ex_to<numeric>(*b)) == 1))) return std::nullopt;
        } else if (GiNaC::is_a<numeric>(*b)) {
          const double mag = std::fabs(GiNaC::ex_to<numeric>(*b).to_double());
          if (mag > 1 && n.to_double() * std::log10(mag) > kMaxDigits) return std::nullopt;
        }
      } else if (!n.is_real() || GiNaC::abs(n) > kMaxExponent) {
        return std::nullopt;
      }
    }
    // 0^0 and 0^-n are undefined. GiNaC throws for them from inside pow(), after allocating the power it was
    // building, which then leaks (fuzz/regressions/answer/zero_to_the_zero)
    if (b->is_zero() && GiNaC::is_a<numeric>(*x) && !x->info(GiNaC::info_flags::positive)) return std::nullopt;
    return GiNaC::pow(*b, *x);
  }

  std::optional<numeric> small_integer(const ex& x, long limit) {
    if (!GiNaC::is_a<numeric>(x)) return std::nullopt;
    const numeric n = GiNaC::ex_to<numeric>(x);
    if (!n.is_nonneg_integer() || n > limit) return std::nullopt;
    return n;
  }

  std::optional<ex> function(const Expr& e) {
    std::vector<ex> a;
    for (const auto& arg : e.args) {
      auto x = (*this)(arg);
      if (!x) return std::nullopt;
      a.push_back(*x);
    }
    const std::string& f = e.text;
    if (f == "sqrt") return GiNaC::sqrt(a[0]);
    if (f == "root") return a[1].is_zero() ? std::nullopt : std::optional<ex>(GiNaC::pow(a[0], 1 / a[1]));
    if (f == "sin") return GiNaC::sin(a[0]);
    if (f == "cos") return GiNaC::cos(a[0]);
    if (f == "tan") return GiNaC::tan(a[0]);
    if (f == "cot") return 1 / GiNaC::tan(a[0]);
    if (f == "sec") return 1 / GiNaC::cos(a[0]);
    if (f == "csc") return 1 / GiNaC::sin(a[0]);
    if (f == "arcsin") return GiNaC::asin(a[0]);
    if (f == "arccos") return GiNaC::acos(a[0]);
    if (f == "arctan") return GiNaC::atan(a[0]);
    if (f == "sinh") return GiNaC::sinh(a[0]);
    if (f == "cosh") return GiNaC::cosh(a[0]);
    if (f == "tanh") return GiNaC::tanh(a[0]);
    if (f == "exp") return GiNaC::exp(a[0]);
    if (f == "log") {
      if (a.size() == 1) return GiNaC::log(a[0]);
      return GiNaC::log(a[0]) / GiNaC::log(a[1]);
    }
    if (f == "factorial") {
      auto n = small_integer(a[0], kMaxFactorial);
      return n ? std::optional<ex>(GiNaC::factorial(*n)) : std::nullopt;
    }
    if (f == "binom") {
      auto n = small_integer(a[0], kMaxFactorial), k = small_integer(a[1], kMaxFactorial);
      return n && k ? std::optional<ex>(GiNaC::binomial(*n, *k)) : std::nullopt;
    }
    return std::nullopt;
  }
};

bool has_large_symbolic_power(const ex& x) {
  if (GiNaC::is_a<GiNaC::power>(x)) {
    const ex n = x.op(1);
    if (GiNaC::is_a<numeric>(n) && GiNaC::abs(GiNaC::ex_to<numeric>(n)) > 32 && !GiNaC::is_a<numeric>(x.op(0))) return true;
  }
  for (std::size_t i = 0; i < x.nops(); ++i)
    if (has_large_symbolic_power(x.op(i))) return true;
  return false;
}

// |a - b| small against the size of the values: the bound is 1e-6 relative when a decimal was involved.
bool close(const numeric& a, const numeric& b, bool rounded) {
  if (!a.is_real() || !b.is_real()) return false;
  const double x = a.to_double(), y = b.to_double();
  if (!std::isfinite(x) || !std::isfinite(y)) return false;
  const double tol = rounded ? 1e-9 + 1e-6 * std::max(std::fabs(x), std::fabs(y)) : 1e-12 * std::max(1.0, std::fabs(x));
  return std::fabs(x - y) <= tol;
}

std::optional<numeric> numeric_value(const ex& x) {
  ex v = GiNaC::evalf(x);
  if (!GiNaC::is_a<numeric>(v)) return std::nullopt;
  return GiNaC::ex_to<numeric>(v);
}

bool scalars_equal(const Expr& a, const Expr& g) {
  std::map<std::string, GiNaC::symbol> symbols;
  Converter ca{symbols}, cg{symbols};
  try {
    auto x = ca(a), y = cg(g);
    if (!x || !y) return a.str() == g.str();
    const bool rounded = ca.has_decimal || cg.has_decimal;
    if (GiNaC::is_a<numeric>(*x) && GiNaC::is_a<numeric>(*y)) {
      const numeric p = GiNaC::ex_to<numeric>(*x), q = GiNaC::ex_to<numeric>(*y);
      if (p.is_integer() && q.is_integer()) return p == q;  // whole numbers exactly: 1234568 is not 1234567
      return p == q || (rounded && close(p, q, true));
    }
    const ex d = *x - *y;
    if (symbols.empty()) {
      if (d.is_zero()) return true;
      auto v = numeric_value(*x), w = numeric_value(*y);
      return v && w && close(*v, *w, rounded);
    }
    if (a.nodes() + g.nodes() <= kMaxSymbolicNodes && !has_large_symbolic_power(d) && GiNaC::normal(GiNaC::expand(d)).is_zero())
      return true;
    // Second opinion at points where real-valued functions of positive arguments are defined.
    static const double points[][3] = {{0.6180, 1.3247, 2.7183}, {1.4142, 0.5772, 1.7321}, {2.2361, 1.6180, 0.9159}};
    int agreed = 0;
    for (const auto& p : points) {
      GiNaC::lst subs;
      std::size_t k = 0;
      for (auto& [name, sym] : symbols) {
        subs.append(sym == numeric(p[k % 3] * (1 + double(k / 3) * 0.37)));
        ++k;
      }
      auto v = numeric_value(x->subs(subs)), w = numeric_value(y->subs(subs));
      if (!v || !w) continue;
      if (!close(*v, *w, rounded)) return false;
      ++agreed;
    }
    return agreed >= 2;
  } catch (const std::exception&) {  // GiNaC: division by zero, log(0), a value it cannot represent
    return false;
  }
}

bool assigns(const Expr& lhs) {
  if (lhs.kind == Kind::symbol) return true;
  if (lhs.kind == Kind::tuple)
    return std::all_of(lhs.args.begin(), lhs.args.end(), [](const Expr& e) { return e.kind == Kind::symbol; });
  return false;
}

// The value a relation gives when it answers with one: "x = 3" -> 3, "x \in [a,b]" -> [a,b].
const Expr* answered_value(const Expr& r) {
  if (r.kind != Kind::relation) return nullptr;
  if ((r.text == "=" || r.text == "in") && assigns(r.args[0])) return &r.args[1];
  return nullptr;
}

bool eq(const Expr& a, const Expr& g);

bool unordered_equal(const std::vector<Expr>& a, const std::vector<Expr>& g) {
  if (a.size() != g.size()) return false;
  std::vector<bool> used(g.size(), false);
  for (const auto& x : a) {
    bool found = false;
    for (std::size_t j = 0; j < g.size() && !found; ++j)
      if (!used[j] && eq(x, g[j])) used[j] = found = true;
    if (!found) return false;
  }
  return true;
}

// Every element of `a` equals some element of `b` (set semantics: repeats do not count).
bool covers(const std::vector<Expr>& a, const std::vector<Expr>& b) {
  return std::all_of(a.begin(), a.end(), [&](const Expr& x) {
    return std::any_of(b.begin(), b.end(), [&](const Expr& y) { return eq(x, y); });
  });
}

bool ordered_equal(const std::vector<Expr>& a, const std::vector<Expr>& g) {
  if (a.size() != g.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!eq(a[i], g[i])) return false;
  return true;
}

// x > y as y < x, x >= y as y <= x.
Expr oriented(const Expr& r) {
  if (r.text != ">" && r.text != ">=") return r;
  Expr o = r;
  o.text = r.text == ">" ? "<" : "<=";
  std::swap(o.args[0], o.args[1]);
  return o;
}

// Two equations with the same solutions: lhs - rhs of one is a nonzero constant times the other's
// ("2y = 4x + 2" and "y = 2x + 1"; "2x - y + 1 = 0").
bool equations_proportional(const Expr& a, const Expr& g) {
  if (a.nodes() + g.nodes() > kMaxSymbolicNodes) return false;
  std::map<std::string, GiNaC::symbol> symbols;
  Converter c{symbols};
  try {
    auto l1 = c(a.args[0]), r1 = c(a.args[1]), l2 = c(g.args[0]), r2 = c(g.args[1]);
    if (!l1 || !r1 || !l2 || !r2 || symbols.empty()) return false;
    if (has_large_symbolic_power(*l1 - *r1) || has_large_symbolic_power(*l2 - *r2)) return false;  // before expanding
    const ex d1 = GiNaC::expand(*l1 - *r1), d2 = GiNaC::expand(*l2 - *r2);
    if (d1.is_zero() || d2.is_zero()) return false;
    const ex q = GiNaC::normal(d1 / d2);
    return GiNaC::is_a<numeric>(q) && !q.is_zero();
  } catch (const std::exception&) {
    return false;
  }
}

bool relations_equal(const Expr& a, const Expr& g) {
  const Expr x = oriented(a), y = oriented(g);
  if (x.text != y.text) return false;
  if (ordered_equal(x.args, y.args)) return true;
  if ((x.text == "=" || x.text == "!=") && eq(x.args[0], y.args[1]) && eq(x.args[1], y.args[0])) return true;
  return x.text == "=" && equations_proportional(x, y);
}

Expr infinity(bool negative) {
  Expr inf;
  inf.kind = Kind::constant;
  inf.text = "inf";
  if (!negative) return inf;
  Expr neg;
  neg.kind = Kind::neg;
  neg.args.push_back(std::move(inf));
  return neg;
}

bool mentions_symbol(const Expr& e) {
  if (e.kind == Kind::symbol) return true;
  return std::any_of(e.args.begin(), e.args.end(), mentions_symbol);
}

// "x < 5" as the interval (-inf, 5), "x >= 2" as [2, inf): a one-variable inequality is the set it describes.
std::optional<Expr> inequality_interval(const Expr& r) {
  if (r.kind != Kind::relation || (r.text != "<" && r.text != "<=" && r.text != ">" && r.text != ">=")) return std::nullopt;
  const Expr o = oriented(r);  // lhs < rhs or lhs <= rhs
  const bool closed = o.text == "<=";
  Expr iv;
  iv.kind = Kind::interval;
  if (o.args[0].kind == Kind::symbol && !mentions_symbol(o.args[1])) {
    iv.args = {infinity(true), o.args[1]};
    iv.right_closed = closed;
  } else if (o.args[1].kind == Kind::symbol && !mentions_symbol(o.args[0])) {
    iv.args = {o.args[0], infinity(false)};
    iv.left_closed = closed;
  } else {
    return std::nullopt;
  }
  return iv;
}

// A union of intervals with numeric ends, merged where they overlap or touch ([1,3) and [3,5] make [1,5]): one
// interval when that is all it is, else the union of the merged pieces. Anything else comes back as it was.
Expr merged_union(const Expr& u) {
  struct Piece {
    double lo, hi;
    bool lc, rc;
    const Expr *lo_e, *hi_e;
  };
  std::vector<Piece> ps;
  for (const auto& iv : u.args) {  // "(a, b)" parses as a pair: in a union it is the open interval
    if (iv.kind != Kind::interval && !(iv.kind == Kind::tuple && iv.args.size() == 2)) return u;
    double ends[2];
    for (int k = 0; k < 2; ++k) {
      const std::string s = iv.args[std::size_t(k)].str();
      if (s.find("inf") != std::string::npos) {
        if (s != infinity(true).str() && s != infinity(false).str()) return u;
        ends[k] = s == infinity(true).str() ? -HUGE_VAL : HUGE_VAL;
        continue;
      }
      std::map<std::string, GiNaC::symbol> symbols;
      Converter c{symbols};
      auto x = c(iv.args[std::size_t(k)]);
      auto v = x ? numeric_value(*x) : std::nullopt;
      if (!v || !v->is_real()) return u;
      ends[k] = v->to_double();
    }
    ps.push_back({ends[0], ends[1], iv.left_closed, iv.right_closed, &iv.args[0], &iv.args[1]});
  }
  std::sort(ps.begin(), ps.end(), [](const Piece& a, const Piece& b) { return a.lo < b.lo || (a.lo == b.lo && a.lc > b.lc); });
  std::vector<Piece> out;
  for (const auto& p : ps) {
    if (!out.empty() && (p.lo < out.back().hi || (p.lo == out.back().hi && (p.lc || out.back().rc)))) {
      auto& m = out.back();
      if (p.hi > m.hi) m.hi = p.hi, m.hi_e = p.hi_e, m.rc = p.rc;
      else if (p.hi == m.hi) m.rc = m.rc || p.rc;
      continue;
    }
    out.push_back(p);
  }
  Expr r;
  r.kind = Kind::union_;
  for (const auto& p : out) {
    Expr iv;
    iv.kind = Kind::interval;
    iv.args = {*p.lo_e, *p.hi_e};
    iv.left_closed = p.lc;
    iv.right_closed = p.rc;
    r.args.push_back(std::move(iv));
  }
  return r.args.size() == 1 ? r.args[0] : r;
}

bool percent_scalars_equal(const Expr& a, const Expr& g) {
  const bool pa = a.kind == Kind::percent, pg = g.kind == Kind::percent;
  if (pa == pg) return scalars_equal(a, g);
  // "28\%" against "28" (the gold left the sign out) or against "0.28" (the value)
  const Expr& bare = pa ? a.args[0] : g.args[0];
  return pa ? scalars_equal(bare, g) || scalars_equal(a, g) : scalars_equal(a, bare) || scalars_equal(a, g);
}

bool eq(const Expr& a, const Expr& g) {
  if (g.kind == Kind::choice) {
    if (a.kind == Kind::choice) return a.text == g.text;
    return !g.args.empty() && eq(a, g.args[0]);  // the option's value, where the gold gives it
  }
  if (a.kind == Kind::choice) return false;
  if (a.kind == Kind::relation && g.kind == Kind::relation) return relations_equal(a, g);
  if (a.kind == Kind::relation) {
    if (const Expr* v = answered_value(a)) return eq(*v, g);
    const auto iv = inequality_interval(a);
    return iv && eq(*iv, g);
  }
  if (g.kind == Kind::relation) {
    if (const Expr* v = answered_value(g)) return eq(a, *v);
    const auto iv = inequality_interval(g);
    return iv && eq(a, *iv);
  }
  if (a.kind == Kind::union_ || g.kind == Kind::union_) {
    const Expr ma = a.kind == Kind::union_ ? merged_union(a) : a, mg = g.kind == Kind::union_ ? merged_union(g) : g;
    if (ma.kind == Kind::union_ && mg.kind == Kind::union_) return unordered_equal(ma.args, mg.args);
    if (ma.kind == Kind::union_ || mg.kind == Kind::union_) return false;
    return eq(ma, mg);
  }
  const bool a_coll = a.kind == Kind::set || a.kind == Kind::list, g_coll = g.kind == Kind::set || g.kind == Kind::list;
  if (a_coll && g_coll) {
    if (a.kind == Kind::set || g.kind == Kind::set) return covers(a.args, g.args) && covers(g.args, a.args);  // {0, 0} = {0}
    return unordered_equal(a.args, g.args);
  }
  if (a.kind == Kind::tuple && g.kind == Kind::tuple) return ordered_equal(a.args, g.args);
  // an open interval and a pair are written alike: "(1, 2)"
  if (a.kind == Kind::tuple && g.kind == Kind::interval && !g.left_closed && !g.right_closed) return ordered_equal(a.args, g.args);
  if (g.kind == Kind::tuple && a.kind == Kind::interval && !a.left_closed && !a.right_closed) return ordered_equal(a.args, g.args);
  if (a.kind == Kind::interval && g.kind == Kind::interval)
    return a.left_closed == g.left_closed && a.right_closed == g.right_closed && ordered_equal(a.args, g.args);
  if (a.kind == Kind::matrix && g.kind == Kind::matrix)
    return a.rows == g.rows && a.cols == g.cols && ordered_equal(a.args, g.args);
  if (a.kind == Kind::empty_set || g.kind == Kind::empty_set) return a.kind == g.kind;
  if (a.kind == Kind::text || g.kind == Kind::text) return a.kind == g.kind && a.text == g.text;
  if (is_scalar(a) && is_scalar(g)) {
    if (a.str().find("inf") != std::string::npos || g.str().find("inf") != std::string::npos) return a.str() == g.str();
    return percent_scalars_equal(a, g);
  }
  return false;
}

std::string squeezed(std::string s, bool lower) {
  std::string o;
  for (char c : s)
    if (!std::isspace(static_cast<unsigned char>(c))) o += lower ? char(std::tolower(static_cast<unsigned char>(c))) : c;
  return o;
}

}  // namespace

bool equivalent(const Expr& answer, const Expr& gold) { return eq(answer, gold); }

Gold::Gold(std::string_view gold)
    : normalized(gold.size() > kMaxAnswerBytes ? std::string() : normalize_latex(gold)), tree(parse_normalized(normalized)) {}

bool Gold::checkable() const {
  if (normalized.empty()) return false;
  if (tree) return true;
  // Not mathematics: checkable only as plain words ("Monday", "odd"), which are compared as text.
  return std::all_of(normalized.begin(), normalized.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == ' ' || c == '-' || c == '\'' || c == ',' || c == '.' ||
           static_cast<unsigned char>(c) >= 0x80;
  });
}

bool equivalent(std::string_view answer, const Gold& gold) {
  if (answer.size() > kMaxAnswerBytes) return false;
  const std::string na = normalize_latex(answer);
  const std::string& ng = gold.normalized;
  if (na.empty() || ng.empty()) return false;
  if (squeezed(na, false) == squeezed(ng, false)) return true;
  auto a = parse_normalized(na);
  if (a && gold.tree) return eq(*a, *gold.tree);
  if (!a && !gold.tree) return squeezed(na, true) == squeezed(ng, true);  // text answers ("Monday", "\text{odd}")
  return false;
}

bool equivalent(std::string_view answer, std::string_view gold) { return equivalent(answer, Gold(gold)); }

}  // namespace distill::dataset::math
