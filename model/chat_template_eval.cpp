// model/chat_template_eval.cpp: the chat template renderer: evaluating expressions with Python's semantics
// (comparison, arithmetic, indexing, slicing, calls and macros) and executing statements.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "model/chat_template_impl.h"

namespace distill::model::chat_detail {

// ---------------------------------------------------------------------------------------------------------------
// Renderer

namespace {

[[noreturn]] void undefined_error(Renderer& r, const Value& v, std::size_t at) {
  r.fail(at, v.s.empty() ? "a value is undefined" : v.s);
}

}  // namespace

std::string need_str(Renderer& r, const Value& v, const Args& a, const char* what) {
  if (!v.is(Value::Kind::string)) r.fail(a.at, a.fn + ": " + what + " must be a string, got " + type_name(v));
  return v.s;
}

std::int64_t need_int(Renderer& r, const Value& v, const Args& a, const char* what) {
  if (!v.is_int()) r.fail(a.at, a.fn + ": " + what + " must be an integer, got " + type_name(v));
  return v.as_int();
}

// Iterating a value as Python does: lists, a dict's keys, a string's characters; undefined is empty.
List iterate(Renderer& r, const Value& v, std::size_t at) {
  using K = Value::Kind;
  switch (v.kind) {
    case K::undefined: return {};
    case K::list: return *v.list;
    case K::dict: {
      List keys;
      for (const auto& kv : *v.dict) keys.push_back(Value::str(kv.first));
      return keys;
    }
    case K::string: {
      List chars;
      const auto at_cp = code_points(v.s);
      for (std::size_t k = 0; k + 1 < at_cp.size(); ++k) chars.push_back(Value::str(v.s.substr(at_cp[k], at_cp[k + 1] - at_cp[k])));
      return chars;
    }
    default: r.fail(at, "'" + type_name(v) + "' object is not iterable");
  }
}

bool equal(const Value& a, const Value& b) {
  using K = Value::Kind;
  if (a.is_number() && b.is_number())
    return a.is(K::real) || b.is(K::real) ? a.as_real() == b.as_real() : a.as_int() == b.as_int();
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case K::undefined:
    case K::none: return true;
    case K::string: return a.s == b.s;
    case K::list:
      return a.list->size() == b.list->size() && std::equal(a.list->begin(), a.list->end(), b.list->begin(), equal);
    case K::dict: {
      if (a.dict->size() != b.dict->size()) return false;
      for (const auto& [k, v] : *a.dict) {
        const Value* o = dict_find(*b.dict, k);
        if (!o || !equal(v, *o)) return false;
      }
      return true;
    }
    default: return a.dict == b.dict && a.fn == b.fn;
  }
}

// Python's ordering: numbers with numbers, strings with strings, lists element-wise. -1, 0 or 1.
int compare_values(Renderer& r, const Value& a, const Value& b, std::size_t at, const std::string& op) {
  if (a.is_number() && b.is_number()) {
    if (a.is(Value::Kind::real) || b.is(Value::Kind::real)) return a.as_real() < b.as_real() ? -1 : a.as_real() > b.as_real();
    return a.as_int() < b.as_int() ? -1 : a.as_int() > b.as_int();
  }
  if (a.is(Value::Kind::string) && b.is(Value::Kind::string)) return a.s < b.s ? -1 : a.s > b.s;
  if (a.is(Value::Kind::list) && b.is(Value::Kind::list)) {
    for (std::size_t k = 0; k < std::min(a.list->size(), b.list->size()); ++k) {
      if (equal((*a.list)[k], (*b.list)[k])) continue;
      return compare_values(r, (*a.list)[k], (*b.list)[k], at, op);
    }
    return a.list->size() < b.list->size() ? -1 : a.list->size() > b.list->size();
  }
  if (a.is_undefined()) undefined_error(r, a, at);
  if (b.is_undefined()) undefined_error(r, b, at);
  r.fail(at, "'" + op + "' not supported between instances of '" + type_name(a) + "' and '" + type_name(b) + "'");
}

bool contains(Renderer& r, const Value& container, const Value& item, std::size_t at) {
  using K = Value::Kind;
  if (container.is(K::string)) {
    if (!item.is(K::string)) r.fail(at, "'in <string>' requires string as left operand, not " + type_name(item));
    return container.s.find(item.s) != std::string::npos;
  }
  if (container.is(K::dict) || container.is(K::ns))
    return item.is(K::string) && dict_find(*container.dict, item.s) != nullptr;
  for (const auto& e : iterate(r, container, at))
    if (equal(e, item)) return true;
  return false;
}

namespace {

// Python slice indices for a sequence of `len` items.
std::vector<std::int64_t> slice_indices(Renderer& r, std::int64_t len, const Value& start, const Value& stop,
                                        const Value& step, std::size_t at) {
  auto given = [](const Value& v) { return !v.is_undefined() && !v.is(Value::Kind::none); };
  auto as_index = [&](const Value& v) {
    if (!v.is_int()) r.fail(at, "slice indices must be integers or None, got " + type_name(v));
    return v.as_int();
  };
  const std::int64_t st = given(step) ? as_index(step) : 1;
  if (st == 0) r.fail(at, "slice step cannot be zero");
  auto clamp = [&](const Value& v, std::int64_t dflt) {
    if (!given(v)) return dflt;
    std::int64_t x = as_index(v);
    if (x < 0) x = std::max<std::int64_t>(x + len, st < 0 ? -1 : 0);
    return std::min(x, st < 0 ? len - 1 : len);
  };
  const std::int64_t b = clamp(start, st < 0 ? len - 1 : 0), e = clamp(stop, st < 0 ? -1 : len);
  std::vector<std::int64_t> idx;
  for (std::int64_t k = b; st > 0 ? k < e : k > e; k += st) idx.push_back(k);
  return idx;
}

}  // namespace

Value Renderer::eval_slice(const Expr& e) {
  const Value obj = eval(*e.a[0]);
  const Value parts[3] = {e.a[1] ? eval(*e.a[1]) : Value::none(), e.a[2] ? eval(*e.a[2]) : Value::none(),
                          e.a[3] ? eval(*e.a[3]) : Value::none()};
  if (obj.is(Value::Kind::string)) {
    const auto at = code_points(obj.s);
    std::string out;
    for (auto k : slice_indices(*this, std::int64_t(at.size() - 1), parts[0], parts[1], parts[2], e.at))
      out.append(obj.s, at[std::size_t(k)], at[std::size_t(k) + 1] - at[std::size_t(k)]);
    return Value::str(std::move(out));
  }
  if (obj.is(Value::Kind::list)) {
    List out;
    for (auto k : slice_indices(*this, std::int64_t(obj.list->size()), parts[0], parts[1], parts[2], e.at))
      out.push_back((*obj.list)[std::size_t(k)]);
    return Value::of_list(std::move(out), obj.tuple);
  }
  if (obj.is_undefined()) undefined_error(*this, obj, e.at);
  fail(e.at, "'" + type_name(obj) + "' object is not subscriptable");
}

// obj[key] and obj.key: Jinja returns undefined for a missing key or index, and fails on undefined objects.
Value get_item(Renderer& r, const Value& obj, const Value& key, std::size_t at) {
  using K = Value::Kind;
  if (obj.is_undefined()) undefined_error(r, obj, at);
  if ((obj.is(K::dict) || obj.is(K::ns)) && key.is(K::string)) {
    if (const Value* v = dict_find(*obj.dict, key.s)) return *v;
    return Value::undef("'" + type_name(obj) + " object' has no attribute '" + key.s + "'");
  }
  if ((obj.is(K::list) || obj.is(K::string)) && key.is_int()) {
    const auto at_cp = obj.is(K::string) ? code_points(obj.s) : std::vector<std::size_t>{};
    const std::int64_t len = obj.is(K::list) ? std::int64_t(obj.list->size()) : std::int64_t(at_cp.size() - 1);
    std::int64_t k = key.as_int();
    if (k < 0) k += len;
    if (k >= 0 && k < len) {
      if (obj.is(K::list)) return (*obj.list)[std::size_t(k)];
      return Value::str(obj.s.substr(at_cp[std::size_t(k)], at_cp[std::size_t(k) + 1] - at_cp[std::size_t(k)]));
    }
  }
  return Value::undef("'" + type_name(obj) + " object' has no attribute " + py_repr(key));
}

Value Renderer::eval_attr(const Expr& e) { return get_item(*this, eval(*e.a[0]), Value::str(e.s), e.at); }

Value Renderer::eval_item(const Expr& e) {
  const Value obj = eval(*e.a[0]);
  return get_item(*this, obj, eval(*e.a[1]), e.at);
}

namespace {

// x op y on 64-bit integers; Python's integers are unbounded, so an overflow is refused rather than wrapped.
std::int64_t checked(Renderer& r, char op, std::int64_t x, std::int64_t y, std::size_t at) {
  std::int64_t z = 0;
  const bool overflow = op == '+' ? __builtin_add_overflow(x, y, &z)
                        : op == '-' ? __builtin_sub_overflow(x, y, &z)
                                    : __builtin_mul_overflow(x, y, &z);
  if (overflow) r.fail(at, "integer overflow (the renderer's integers are 64-bit)");
  return z;
}

}  // namespace

Value arithmetic(Renderer& r, const std::string& op, const Value& a, const Value& b, std::size_t at) {
  using K = Value::Kind;
  if (a.is_undefined()) undefined_error(r, a, at);
  if (b.is_undefined()) undefined_error(r, b, at);
  if (a.is_number() && b.is_number()) {
    if (a.is_int() && b.is_int() && op != "/") {
      const std::int64_t x = a.as_int(), y = b.as_int();
      if (op == "+" || op == "-" || op == "*") return Value::integer(checked(r, op[0], x, y, at));
      if (y == 0 && (op == "//" || op == "%")) r.fail(at, "integer division or modulo by zero");
      if (op == "//" || op == "%") {
        if (x == INT64_MIN && y == -1) r.fail(at, "integer overflow (the renderer's integers are 64-bit)");
        std::int64_t q = x / y, m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) --q, m += y;
        return Value::integer(op == "//" ? q : m);
      }
      if (op == "**" && y >= 0) {
        std::int64_t p = 1;
        for (std::int64_t k = 0; k < y; ++k) {
          p = checked(r, '*', p, x, at);
          if (p == 0 || p == 1) break;
        }
        return Value::integer(x == -1 ? (y % 2 ? -1 : 1) : p);
      }
    }
    const double x = a.as_real(), y = b.as_real();
    if (op == "+") return Value::real(x + y);
    if (op == "-") return Value::real(x - y);
    if (op == "*") return Value::real(x * y);
    if (op == "**") return Value::real(std::pow(x, y));
    if (y == 0) r.fail(at, "division by zero");
    if (op == "/") return Value::real(x / y);
    if (op == "//") return Value::real(std::floor(x / y));
    if (op == "%") { const double m = std::fmod(x, y); return Value::real(m != 0 && ((m < 0) != (y < 0)) ? m + y : m); }
  }
  if (op == "+" && a.is(K::string) && b.is(K::string)) {
    r.check_size(a.s.size() + b.s.size(), at);
    return Value::str(a.s + b.s);
  }
  if (op == "+" && a.is(K::list) && b.is(K::list)) {
    r.check_size((a.list->size() + b.list->size()) * sizeof(Value), at);
    List l = *a.list;
    l.insert(l.end(), b.list->begin(), b.list->end());
    return Value::of_list(std::move(l), a.tuple);
  }
  if (op == "*" && (a.is(K::string) || a.is(K::list)) && b.is_int()) {
    const std::int64_t n = std::max<std::int64_t>(b.as_int(), 0);
    const std::size_t unit = a.is(K::string) ? a.s.size() : a.list->size() * sizeof(Value);
    if (unit && std::uint64_t(n) > r.opt.max_output_bytes / unit) r.fail(at, "a repeated value would be too large");
    if (a.is(K::string)) {
      std::string s;
      for (std::int64_t k = 0; k < n; ++k) s += a.s;
      return Value::str(std::move(s));
    }
    List l;
    for (std::int64_t k = 0; k < n; ++k) l.insert(l.end(), a.list->begin(), a.list->end());
    return Value::of_list(std::move(l), a.tuple);
  }
  if (op == "*" && a.is_int() && (b.is(K::string) || b.is(K::list))) return arithmetic(r, op, b, a, at);
  r.fail(at, "unsupported operand type(s) for " + op + ": '" + type_name(a) + "' and '" + type_name(b) + "'");
}

Value Renderer::eval_binary(const Expr& e) {
  const std::string& op = e.s;
  if (op == "and" || op == "or") {
    Value l = eval(*e.a[0]);
    if ((op == "and") != truthy(l)) return l;
    return eval(*e.a[1]);
  }
  const Value l = eval(*e.a[0]), r = eval(*e.a[1]);
  if (op == "~") {
    std::string s = to_str(l) + to_str(r);
    check_size(s.size(), e.at);
    return Value::str(std::move(s));
  }
  if (op == "==") return Value::boolean(equal(l, r));
  if (op == "!=") return Value::boolean(!equal(l, r));
  if (op == "in") return Value::boolean(contains(*this, r, l, e.at));
  if (op == "not in") return Value::boolean(!contains(*this, r, l, e.at));
  if (op == "<") return Value::boolean(compare_values(*this, l, r, e.at, op) < 0);
  if (op == ">") return Value::boolean(compare_values(*this, l, r, e.at, op) > 0);
  if (op == "<=") return Value::boolean(compare_values(*this, l, r, e.at, op) <= 0);
  if (op == ">=") return Value::boolean(compare_values(*this, l, r, e.at, op) >= 0);
  return arithmetic(*this, op, l, r, e.at);
}

Value Renderer::eval_unary(const Expr& e) {
  const Value v = eval(*e.a[0]);
  if (e.s == "not") return Value::boolean(!truthy(v));
  if (v.is_undefined()) undefined_error(*this, v, e.at);
  if (!v.is_number()) fail(e.at, "bad operand type for unary " + e.s + ": '" + type_name(v) + "'");
  if (e.s == "+") return v.is(Value::Kind::boolean) ? Value::integer(v.as_int()) : v;
  if (v.is(Value::Kind::real)) return Value::real(-v.f);
  return Value::integer(checked(*this, '-', 0, v.as_int(), e.at));
}

Args Renderer::eval_args(const Expr& e, std::size_t first) {
  Args a;
  a.at = e.at;
  for (std::size_t k = first; k < e.a.size(); ++k) a.pos.push_back(eval(*e.a[k]));
  for (const auto& [name, x] : e.kw) a.kw.emplace_back(name, eval(*x));
  return a;
}

Value Renderer::eval_call(const Expr& e) {
  const Expr& callee = *e.a[0];
  if (callee.k == Expr::K::attr) {  // obj.method(...): Python's str and dict methods
    const Value obj = eval(*callee.a[0]);
    if (obj.is_undefined()) undefined_error(*this, obj, e.at);
    Args a = eval_args(e, 1);
    a.fn = callee.s;
    bool found = false;
    Value v = call_method(*this, obj, callee.s, a, found);
    if (found) return v;
    return call(get_item(*this, obj, Value::str(callee.s), e.at), a);
  }
  const Value fn = eval(callee);
  Args a = eval_args(e, 1);
  a.fn = callee.k == Expr::K::name ? callee.s : "call";
  return call(fn, a);
}

Value Renderer::call(const Value& fn, Args& a) {
  if (fn.is_undefined()) undefined_error(*this, fn, a.at);
  if (!fn.is(Value::Kind::callable)) fail(a.at, "'" + type_name(fn) + "' object is not callable");
  if (++depth > opt.max_call_depth) fail(a.at, "calls nested deeper than " + std::to_string(opt.max_call_depth));
  Value v = fn.fn->macro ? call_macro(*fn.fn->macro, a) : fn.fn->builtin(*this, a);
  --depth;
  return v;
}

// A macro runs in its own frame over the template's top-level names; it returns its output as a string.
Value Renderer::call_macro(const Node& m, Args& a) {
  if (a.pos.size() > m.names.size()) fail(a.at, "macro '" + m.s + "' takes " + std::to_string(m.names.size()) + " arguments");
  auto frame = std::make_shared<Frame>();
  for (std::size_t k = 0; k < m.names.size(); ++k) {
    Value v = a.get(k, m.names[k].c_str(), Value::undef("'" + m.names[k] + "' is undefined"));
    if (v.is_undefined() && m.e[k]) v = eval(*m.e[k]);
    (*frame)[m.names[k]] = std::move(v);
  }
  auto saved = std::move(frames);
  frames = {saved.front(), frame};
  std::string text;
  try {
    text = capture(m.bodies[0]);
  } catch (...) {
    frames = std::move(saved);
    throw;
  }
  frames = std::move(saved);
  return Value::str(std::move(text));
}

Value Renderer::eval(const Expr& e) {
  using K = Expr::K;
  switch (e.k) {
    case K::literal: return e.lit;
    case K::name: return lookup(e.s);
    case K::list:
    case K::tuple: {
      List items;
      for (const auto& x : e.a) items.push_back(eval(*x));
      return Value::of_list(std::move(items), e.k == K::tuple);
    }
    case K::dict: {
      Dict items;
      for (std::size_t k = 0; k + 1 < e.a.size(); k += 2) {
        const Value key = eval(*e.a[k]);
        if (!key.is(Value::Kind::string)) fail(e.at, "dict keys must be strings here, got " + type_name(key));
        dict_set(items, key.s, eval(*e.a[k + 1]));
      }
      return Value::of_dict(std::move(items));
    }
    case K::attr: return eval_attr(e);
    case K::item: return eval_item(e);
    case K::slice: return eval_slice(e);
    case K::call: return eval_call(e);
    case K::filter: {
      const Value input = eval(*e.a[0]);
      Args a = eval_args(e, 1);
      a.fn = e.s;
      return filters().at(e.s)(*this, input, a);
    }
    case K::test: {
      const Value input = eval(*e.a[0]);
      Args a = eval_args(e, 1);
      a.fn = e.s;
      return Value::boolean(tests().at(e.s)(*this, input, a) != e.negated);
    }
    case K::unary: return eval_unary(e);
    case K::binary: return eval_binary(e);
    case K::cond:
      if (truthy(eval(*e.a[1]))) return eval(*e.a[0]);
      return e.a.size() > 2 ? eval(*e.a[2]) : Value::undef("the inline if's condition was false and it has no else");
  }
  return {};
}

Value Renderer::lookup(const std::string& name) const {
  for (auto it = frames.rbegin(); it != frames.rend(); ++it)
    if (auto f = (*it)->find(name); f != (*it)->end()) return f->second;
  if (auto g = globals().find(name); g != globals().end()) return g->second;
  return Value::undef("'" + name + "' is undefined");
}

// ---------------------------------------------------------------------------------------------------------------
// Statements

std::string Renderer::capture(const Body& body) {
  std::string text;
  std::string* saved = out;
  out = &text;
  try {
    exec(body);
  } catch (...) {
    out = saved;
    throw;
  }
  out = saved;
  return text;
}

void Renderer::exec(const Body& body) {
  for (const auto& n : body) {
    exec(*n);
    if (flow != Flow::normal) return;
  }
}

void Renderer::exec_if(const Node& n) {
  for (std::size_t k = 0; k < n.e.size(); ++k)
    if (truthy(eval(*n.e[k]))) return exec(n.bodies[k]);
  if (n.bodies.size() > n.e.size()) exec(n.bodies.back());
}

namespace {

Value loop_value(const List& items, std::size_t k) {
  const auto len = std::int64_t(items.size()), i = std::int64_t(k);
  Dict d = {{"index", Value::integer(i + 1)},        {"index0", Value::integer(i)},
            {"revindex", Value::integer(len - i)},   {"revindex0", Value::integer(len - i - 1)},
            {"first", Value::boolean(k == 0)},       {"last", Value::boolean(i == len - 1)},
            {"length", Value::integer(len)},         {"depth", Value::integer(1)},
            {"depth0", Value::integer(0)}};
  d.emplace_back("previtem", k > 0 ? items[k - 1] : Value::undef("there is no previous item"));
  d.emplace_back("nextitem", i + 1 < len ? items[k + 1] : Value::undef("there is no next item"));
  return Value::of_dict(std::move(d));
}

void bind_targets(Renderer& r, const Node& n, const Value& item, Frame& frame) {
  if (n.names.size() == 1) {
    frame[n.names[0]] = item;
    return;
  }
  List parts = iterate(r, item, n.at);
  if (parts.size() != n.names.size())
    r.fail(n.at, "cannot unpack " + std::to_string(parts.size()) + " values into " + std::to_string(n.names.size()) + " names");
  for (std::size_t k = 0; k < parts.size(); ++k) frame[n.names[k]] = parts[k];
}

}  // namespace

// Each iteration runs in a fresh frame: names set inside the loop do not outlive the iteration (as in Jinja).
void Renderer::exec_for(const Node& n) {
  List all = iterate(*this, eval(*n.e[0]), n.at);
  List items;
  for (const auto& item : all) {
    if (n.e.size() > 1) {
      auto probe = std::make_shared<Frame>();
      bind_targets(*this, n, item, *probe);
      frames.push_back(probe);
      const bool keep = truthy(eval(*n.e[1]));
      frames.pop_back();
      if (!keep) continue;
    }
    items.push_back(item);
  }
  for (std::size_t k = 0; k < items.size(); ++k) {
    if (++iterations > opt.max_loop_iterations)
      fail(n.at, "more than " + std::to_string(opt.max_loop_iterations) + " loop iterations");
    auto frame = std::make_shared<Frame>();
    bind_targets(*this, n, items[k], *frame);
    (*frame)["loop"] = loop_value(items, k);
    frames.push_back(frame);
    try {
      exec(n.bodies[0]);
    } catch (...) {
      frames.pop_back();
      throw;
    }
    frames.pop_back();
    if (flow == Flow::brk) { flow = Flow::normal; break; }
    flow = Flow::normal;
  }
  if (items.empty() && n.bodies.size() > 1) exec(n.bodies[1]);
}

void Renderer::exec_set(const Node& n) {
  Value v = n.k == Node::K::set_block ? Value::str(capture(n.bodies[0])) : eval(*n.e[0]);
  if (n.attr.empty()) return assign(n.s, std::move(v));
  const Value target = lookup(n.s);
  if (!target.is(Value::Kind::ns)) fail(n.at, "cannot assign attribute on non-namespace object '" + n.s + "'");
  if (!n.attr.empty() && n.attr[0] == '_')
    fail(n.at, "Chat templates cannot store underscore-prefixed attributes on a namespace, but got '" + n.attr + "'.");
  dict_set(*target.dict, n.attr, std::move(v));
}

void Renderer::exec(const Node& n) {
  switch (n.k) {
    case Node::K::text: return emit(n.s, n.at);
    case Node::K::output: return emit(to_str(eval(*n.e[0])), n.at);
    case Node::K::if_: return exec_if(n);
    case Node::K::for_: return exec_for(n);
    case Node::K::set:
    case Node::K::set_block: return exec_set(n);
    case Node::K::macro: {
      Value fn;
      fn.kind = Value::Kind::callable;
      fn.fn = std::make_shared<Callable>(Callable{n.s, nullptr, &n});
      return assign(n.s, std::move(fn));
    }
    case Node::K::break_: flow = Flow::brk; return;
    case Node::K::continue_: flow = Flow::cont; return;
    case Node::K::block: return exec(n.bodies[0]);
  }
}

}  // namespace distill::model::chat_detail
