// model/chat_template_filters.cpp: the chat template built-ins: Jinja's filters (tojson as Python's json.dumps) and
// tests, the str and dict methods templates call, and the globals (range, dict, namespace, raise_exception, ...).
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "model/chat_template_impl.h"

namespace distill::model::chat_detail {

namespace {

// ---------------------------------------------------------------------------------------------------------------
// tojson: Python's json.dumps(x, ensure_ascii=False, indent=..., separators=..., sort_keys=...)

struct JsonStyle {
  std::optional<std::string> indent;
  std::string item_sep = ", ", key_sep = ": ";
  bool sort_keys = false, ensure_ascii = false;
};

void json_string(const std::string& s, bool ensure_ascii, std::string& out) {
  out += '"';
  for (std::size_t p = 0, n = 0; p < s.size(); p += n) {
    const std::uint32_t c = decode_at(s, p, n);
    char b[16];
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c == '\b') out += "\\b";
    else if (c == '\f') out += "\\f";
    else if (c < 0x20 || (ensure_ascii && c >= 0x7F)) {
      if (c > 0xFFFF) {
        const std::uint32_t v = c - 0x10000;
        std::snprintf(b, sizeof b, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
      } else {
        std::snprintf(b, sizeof b, "\\u%04x", c);
      }
      out += b;
    } else out.append(s, p, n);
  }
  out += '"';
}

void to_json(Renderer& r, const Value& v, const JsonStyle& st, int level, std::string& out, std::size_t at) {
  using K = Value::Kind;
  if (level > 200) r.fail(at, "tojson: value nested too deeply");
  r.check_size(out.size(), at);
  auto newline = [&](int lv) {
    if (!st.indent) return;
    out += '\n';
    for (int k = 0; k < lv; ++k) out += *st.indent;
  };
  switch (v.kind) {
    case K::none: out += "null"; return;
    case K::boolean: out += v.b ? "true" : "false"; return;
    case K::integer: out += std::to_string(v.i); return;
    case K::real: out += std::isnan(v.f) ? "NaN" : std::isinf(v.f) ? (v.f < 0 ? "-Infinity" : "Infinity") : py_float(v.f); return;
    case K::string: json_string(v.s, st.ensure_ascii, out); return;
    case K::list: {
      if (v.list->empty()) { out += "[]"; return; }
      out += '[';
      for (std::size_t k = 0; k < v.list->size(); ++k) {
        if (k) out += st.item_sep;
        newline(level + 1);
        to_json(r, (*v.list)[k], st, level + 1, out, at);
      }
      newline(level);
      out += ']';
      return;
    }
    case K::dict: {
      if (v.dict->empty()) { out += "{}"; return; }
      std::vector<const std::pair<std::string, Value>*> items;
      for (const auto& kv : *v.dict) items.push_back(&kv);
      if (st.sort_keys) std::stable_sort(items.begin(), items.end(), [](auto* x, auto* y) { return x->first < y->first; });
      out += '{';
      for (std::size_t k = 0; k < items.size(); ++k) {
        if (k) out += st.item_sep;
        newline(level + 1);
        json_string(items[k]->first, st.ensure_ascii, out);
        out += st.key_sep;
        to_json(r, items[k]->second, st, level + 1, out, at);
      }
      newline(level);
      out += '}';
      return;
    }
    default: r.fail(at, "tojson: Object of type " + type_name(v) + " is not JSON serializable");
  }
}

Value filter_tojson(Renderer& r, const Value& v, Args& a) {
  JsonStyle st;
  const Value indent = a.get(1, "indent", Value::none()), sep = a.get(2, "separators", Value::none());
  st.ensure_ascii = truthy(a.get(0, "ensure_ascii", Value::boolean(false)));
  st.sort_keys = truthy(a.get(3, "sort_keys", Value::boolean(false)));
  if (indent.is_int()) st.indent = std::string(std::size_t(std::clamp<std::int64_t>(indent.as_int(), 0, 64)), ' ');
  else if (indent.is(Value::Kind::string)) st.indent = indent.s;
  if (st.indent) st.item_sep = ",";
  if (sep.is(Value::Kind::list) && sep.list->size() == 2) {
    st.item_sep = need_str(r, (*sep.list)[0], a, "separators");
    st.key_sep = need_str(r, (*sep.list)[1], a, "separators");
  }
  std::string out;
  to_json(r, v, st, 0, out, a.at);
  return Value::str(std::move(out));
}

// ---------------------------------------------------------------------------------------------------------------
// Filters

Value attribute_of(Renderer& r, const Value& item, const Value& attr, std::size_t at) {
  if (attr.is_int()) return get_item(r, item, attr, at);
  Value v = item;
  const std::string path = to_str(attr);
  for (std::size_t p = 0; p <= path.size();) {  // "a.b" walks nested attributes
    const auto q = std::min(path.find('.', p), path.size());
    v = v.is_undefined() ? v : get_item(r, v, Value::str(path.substr(p, q - p)), at);
    p = q + 1;
  }
  return v;
}

bool run_test(Renderer& r, const std::string& name, const Value& v, const List& args, std::size_t at) {
  const auto it = tests().find(name);
  if (it == tests().end()) r.fail(at, "no test named '" + name + "'");
  Args a;
  a.pos = args;
  a.at = at;
  a.fn = name;
  return it->second(r, v, a);
}

// select/reject/selectattr/rejectattr: keep the items whose test (or truthiness) matches `keep`.
Value select_items(Renderer& r, const Value& seq, Args& a, bool by_attr, bool keep) {
  const std::size_t first_test_arg = by_attr ? 1 : 0;
  List out;
  for (const auto& item : iterate(r, seq, a.at)) {
    const Value v = by_attr ? attribute_of(r, item, a.get(0, "attribute"), a.at) : item;
    bool ok;
    if (a.pos.size() > first_test_arg) {
      const std::string test = need_str(r, a.pos[first_test_arg], a, "the test name");
      ok = run_test(r, test, v, List(a.pos.begin() + std::ptrdiff_t(first_test_arg) + 1, a.pos.end()), a.at);
    } else {
      ok = truthy(v);
    }
    if (ok == keep) out.push_back(item);
  }
  return Value::of_list(std::move(out));
}

Value filter_map(Renderer& r, const Value& seq, Args& a) {
  List out;
  const Value attr = a.get(99, "attribute");
  for (const auto& item : iterate(r, seq, a.at)) {
    if (!attr.is_undefined()) {
      Value v = attribute_of(r, item, attr, a.at);
      out.push_back(v.is_undefined() ? a.get(99, "default", v) : v);
      continue;
    }
    if (a.pos.empty()) r.fail(a.at, "map: expected a filter name or attribute=");
    const std::string name = need_str(r, a.pos[0], a, "the filter name");
    const auto f = filters().find(name);
    if (f == filters().end()) r.fail(a.at, "no filter named '" + name + "'");
    Args inner;
    inner.pos.assign(a.pos.begin() + 1, a.pos.end());
    inner.at = a.at;
    inner.fn = name;
    out.push_back(f->second(r, item, inner));
  }
  return Value::of_list(std::move(out));
}

Value filter_join(Renderer& r, const Value& seq, Args& a) {
  const std::string sep = to_str(a.get(0, "d", Value::str("")));
  const Value attr = a.get(1, "attribute");
  std::string out;
  bool first = true;
  for (const auto& item : iterate(r, seq, a.at)) {
    out += (first ? "" : sep) + to_str(attr.is_undefined() ? item : attribute_of(r, item, attr, a.at));
    first = false;
    r.check_size(out.size(), a.at);
  }
  return Value::str(std::move(out));
}

Value filter_length(Renderer& r, const Value& v, Args& a) {
  using K = Value::Kind;
  if (v.is(K::string)) return Value::integer(std::int64_t(length_cp(v.s)));
  if (v.is(K::list)) return Value::integer(std::int64_t(v.list->size()));
  if (v.is(K::dict) || v.is(K::ns)) return Value::integer(std::int64_t(v.dict->size()));
  if (v.is_undefined()) return Value::integer(0);
  r.fail(a.at, "object of type '" + type_name(v) + "' has no len()");
}

Value filter_int(Renderer&, const Value& v, Args& a) {
  const Value dflt = a.get(0, "default", Value::integer(0));
  if (v.is_int()) return Value::integer(v.as_int());
  if (v.is(Value::Kind::real)) {
    if (!std::isfinite(v.f) || std::fabs(v.f) >= 9.2e18) return dflt;
    return Value::integer(std::int64_t(v.f));
  }
  if (v.is(Value::Kind::string)) {
    const std::string s = py_strip(v.s, std::nullopt, true, true);
    std::int64_t x = 0;
    auto r = std::from_chars(s.data() + (!s.empty() && s[0] == '+'), s.data() + s.size(), x);
    if (r.ec == std::errc() && r.ptr == s.data() + s.size() && !s.empty()) return Value::integer(x);
    char* end = nullptr;
    const double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size() && std::isfinite(d) && std::fabs(d) < 9.2e18) return Value::integer(std::int64_t(d));
  }
  return dflt;
}

Value filter_indent(Renderer& r, const Value& v, Args& a) {
  const Value width = a.get(0, "width", Value::integer(4));
  const std::string pad = width.is(Value::Kind::string) ? width.s : std::string(std::size_t(std::clamp<std::int64_t>(need_int(r, width, a, "width"), 0, 256)), ' ');
  const bool first = truthy(a.get(1, "first", Value::boolean(false))), blank = truthy(a.get(2, "blank", Value::boolean(false)));
  const std::string s = to_str(v);
  std::string out;
  std::size_t p = 0;
  for (bool line0 = true; p <= s.size(); line0 = false) {
    const auto q = std::min(s.find('\n', p), s.size());
    const std::string line = s.substr(p, q - p);
    if ((!line0 || first) && (blank || !line.empty())) out += pad;
    out += line;
    if (q < s.size()) out += '\n';
    p = q + 1;
  }
  r.check_size(out.size(), a.at);
  return Value::str(std::move(out));
}

Value filter_sort(Renderer& r, const Value& v, Args& a) {
  List items = iterate(r, v, a.at);
  const bool reverse = truthy(a.get(0, "reverse", Value::boolean(false)));
  const bool case_sensitive = truthy(a.get(1, "case_sensitive", Value::boolean(false)));
  const Value attr = a.get(2, "attribute");
  auto key = [&](const Value& x) {
    Value k = attr.is_undefined() ? x : attribute_of(r, x, attr, a.at);
    if (!case_sensitive && k.is(Value::Kind::string)) k.s = ascii_lower(k.s);
    return k;
  };
  std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
    const int c = compare_values(r, key(x), key(y), a.at, "<");
    return reverse ? c > 0 : c < 0;
  });
  return Value::of_list(std::move(items));
}

Value items_of(Renderer& r, const Value& v, std::size_t at) {
  if (v.is_undefined()) return Value::of_list({});
  if (!v.is(Value::Kind::dict)) r.fail(at, "items: expected a mapping, got " + type_name(v));
  List out;
  for (const auto& [k, x] : *v.dict) out.push_back(Value::of_list({Value::str(k), x}, true));
  return Value::of_list(std::move(out));
}

Value first_or_last(Renderer& r, const Value& v, Args& a, bool first) {
  List items = iterate(r, v, a.at);
  if (items.empty()) return Value::undef("'" + type_name(v) + " object' has no " + (first ? "first" : "last") + " item");
  return first ? items.front() : items.back();
}

Value filter_default(Renderer&, const Value& v, Args& a) {
  const bool boolean = truthy(a.get(1, "boolean", Value::boolean(false)));
  if (v.is_undefined() || (boolean && !truthy(v))) return a.get(0, "default_value", Value::str(""));
  return v;
}

Value filter_replace(Renderer& r, const Value& v, Args& a) {
  const std::string s = to_str(v);
  const std::string from = to_str(a.get(0, "old")), to = to_str(a.get(1, "new"));
  const Value count = a.get(2, "count", Value::none());
  std::string out = replace_all(s, from, to, count.is_int() ? count.as_int() : -1);
  r.check_size(out.size(), a.at);
  return Value::str(std::move(out));
}

Value filter_capitalize(Renderer&, const Value& v, Args&) {
  std::string s = ascii_lower(to_str(v));
  if (!s.empty()) s[0] = char(std::toupper(static_cast<unsigned char>(s[0])));
  return Value::str(std::move(s));
}

Value filter_title(Renderer&, const Value& v, Args&) {
  std::string s = to_str(v);
  bool start = true;
  for (auto& c : s) {
    const bool alpha = std::isalpha(static_cast<unsigned char>(c)) != 0;
    c = char(alpha ? (start ? std::toupper(static_cast<unsigned char>(c)) : std::tolower(static_cast<unsigned char>(c))) : c);
    start = !alpha && !std::isdigit(static_cast<unsigned char>(c)) && c != '\'';
  }
  return Value::str(std::move(s));
}

Value min_max(Renderer& r, const Value& v, Args& a, bool want_max) {
  List items = iterate(r, v, a.at);
  if (items.empty()) return Value::undef("no items to compare");
  Value best = items[0];
  for (const auto& x : items)
    if ((compare_values(r, x, best, a.at, "<") > 0) == want_max && !equal(x, best)) best = x;
  return best;
}

Value filter_sum(Renderer& r, const Value& v, Args& a) {
  Value total = a.get(1, "start", Value::integer(0));
  const Value attr = a.get(0, "attribute");
  for (const auto& x : iterate(r, v, a.at))
    total = arithmetic(r, "+", total, attr.is_undefined() ? x : attribute_of(r, x, attr, a.at), a.at);
  return total;
}

Value filter_round(Renderer& r, const Value& v, Args& a) {
  if (!v.is_number()) r.fail(a.at, "round: expected a number, got " + type_name(v));
  const std::int64_t precision = std::clamp<std::int64_t>(need_int(r, a.get(0, "precision", Value::integer(0)), a, "precision"), 0, 15);
  const std::string method = to_str(a.get(1, "method", Value::str("common")));
  const double scale = std::pow(10.0, double(precision)), x = v.as_real() * scale;
  const double y = method == "ceil" ? std::ceil(x) : method == "floor" ? std::floor(x) : std::round(x);
  return Value::real(y / scale);
}

Value filter_unique(Renderer& r, const Value& v, Args& a) {
  List out;
  for (const auto& x : iterate(r, v, a.at))
    if (std::none_of(out.begin(), out.end(), [&](const Value& y) { return equal(x, y); })) out.push_back(x);
  return Value::of_list(std::move(out));
}

Value filter_dictsort(Renderer& r, const Value& v, Args& a) {
  Value items = items_of(r, v, a.at);
  List l = *items.list;
  const bool by_value = to_str(a.get(1, "by", Value::str("key"))) == "value";
  const bool reverse = truthy(a.get(2, "reverse", Value::boolean(false)));
  std::stable_sort(l.begin(), l.end(), [&](const Value& x, const Value& y) {
    const int c = compare_values(r, (*x.list)[by_value], (*y.list)[by_value], a.at, "<");
    return reverse ? c > 0 : c < 0;
  });
  return Value::of_list(std::move(l));
}

}  // namespace

const std::unordered_map<std::string, FilterFn>& filters() {
  using V = const Value&;
  static const std::unordered_map<std::string, FilterFn> table = {
      {"trim", [](Renderer&, V v, Args& a) {
         const Value chars = a.get(0, "chars", Value::none());
         return Value::str(py_strip(to_str(v), chars.is(Value::Kind::string) ? std::optional(chars.s) : std::nullopt, true, true));
       }},
      {"length", filter_length},
      {"count", filter_length},
      {"lower", [](Renderer&, V v, Args&) { return Value::str(ascii_lower(to_str(v))); }},
      {"upper", [](Renderer&, V v, Args&) { return Value::str(ascii_upper(to_str(v))); }},
      {"capitalize", filter_capitalize},
      {"title", filter_title},
      {"tojson", filter_tojson},
      {"string", [](Renderer&, V v, Args&) { return Value::str(to_str(v)); }},
      {"safe", [](Renderer&, V v, Args&) { return v; }},
      {"default", filter_default},
      {"d", filter_default},
      {"join", filter_join},
      {"first", [](Renderer& r, V v, Args& a) { return first_or_last(r, v, a, true); }},
      {"last", [](Renderer& r, V v, Args& a) { return first_or_last(r, v, a, false); }},
      {"replace", filter_replace},
      {"list", [](Renderer& r, V v, Args& a) { return Value::of_list(iterate(r, v, a.at)); }},
      {"items", [](Renderer& r, V v, Args& a) { return items_of(r, v, a.at); }},
      {"dictsort", filter_dictsort},
      {"select", [](Renderer& r, V v, Args& a) { return select_items(r, v, a, false, true); }},
      {"reject", [](Renderer& r, V v, Args& a) { return select_items(r, v, a, false, false); }},
      {"selectattr", [](Renderer& r, V v, Args& a) { return select_items(r, v, a, true, true); }},
      {"rejectattr", [](Renderer& r, V v, Args& a) { return select_items(r, v, a, true, false); }},
      {"map", filter_map},
      {"int", filter_int},
      {"float", [](Renderer&, V v, Args& a) {
         if (v.is_number()) return Value::real(v.as_real());
         char* end = nullptr;
         const std::string s = py_strip(to_str(v), std::nullopt, true, true);
         const double d = std::strtod(s.c_str(), &end);
         return !s.empty() && end == s.c_str() + s.size() ? Value::real(d) : a.get(0, "default", Value::real(0));
       }},
      {"abs", [](Renderer& r, V v, Args& a) {
         if (v.is(Value::Kind::real)) return Value::real(std::fabs(v.f));
         std::int64_t x = need_int(r, v, a, "the value");
         if (x == INT64_MIN) r.fail(a.at, "integer overflow (the renderer's integers are 64-bit)");
         return Value::integer(x < 0 ? -x : x);
       }},
      {"round", filter_round},
      {"indent", filter_indent},
      {"reverse", [](Renderer& r, V v, Args& a) {
         if (v.is(Value::Kind::string)) {
           const auto at = code_points(v.s);
           std::string out;
           for (std::size_t k = at.size() - 1; k > 0; --k) out.append(v.s, at[k - 1], at[k] - at[k - 1]);
           return Value::str(std::move(out));
         }
         List l = iterate(r, v, a.at);
         std::reverse(l.begin(), l.end());
         return Value::of_list(std::move(l));
       }},
      {"sort", filter_sort},
      {"unique", filter_unique},
      {"min", [](Renderer& r, V v, Args& a) { return min_max(r, v, a, false); }},
      {"max", [](Renderer& r, V v, Args& a) { return min_max(r, v, a, true); }},
      {"sum", filter_sum},
  };
  return table;
}

// ---------------------------------------------------------------------------------------------------------------
// Tests

const std::unordered_map<std::string, TestFn>& tests() {
  using K = Value::Kind;
  using V = const Value&;
  auto cmp = [](const char* op) {
    return [op = std::string(op)](Renderer& r, V v, Args& a) {
      const Value other = a.get(0, "other");
      if (op == "==") return equal(v, other);
      if (op == "!=") return !equal(v, other);
      const int c = compare_values(r, v, other, a.at, op);
      return op == "<" ? c < 0 : op == "<=" ? c <= 0 : op == ">" ? c > 0 : c >= 0;
    };
  };
  static const std::unordered_map<std::string, TestFn> table = {
      {"defined", [](Renderer&, V v, Args&) { return !v.is_undefined(); }},
      {"undefined", [](Renderer&, V v, Args&) { return v.is_undefined(); }},
      {"none", [](Renderer&, V v, Args&) { return v.is(K::none); }},
      {"string", [](Renderer&, V v, Args&) { return v.is(K::string); }},
      {"mapping", [](Renderer&, V v, Args&) { return v.is(K::dict); }},
      {"number", [](Renderer&, V v, Args&) { return v.is_number(); }},
      {"integer", [](Renderer&, V v, Args&) { return v.is(K::integer); }},
      {"float", [](Renderer&, V v, Args&) { return v.is(K::real); }},
      {"boolean", [](Renderer&, V v, Args&) { return v.is(K::boolean); }},
      {"true", [](Renderer&, V v, Args&) { return v.is(K::boolean) && v.b; }},
      {"false", [](Renderer&, V v, Args&) { return v.is(K::boolean) && !v.b; }},
      // Jinja's Undefined is iterable and has a length and items, so it passes these two.
      {"iterable", [](Renderer&, V v, Args&) { return v.is(K::string) || v.is(K::list) || v.is(K::dict) || v.is_undefined(); }},
      {"sequence", [](Renderer&, V v, Args&) { return v.is(K::string) || v.is(K::list) || v.is(K::dict) || v.is_undefined(); }},
      {"callable", [](Renderer&, V v, Args&) { return v.is(K::callable); }},
      {"odd", [](Renderer& r, V v, Args& a) { return need_int(r, v, a, "the value") % 2 != 0; }},
      {"even", [](Renderer& r, V v, Args& a) { return need_int(r, v, a, "the value") % 2 == 0; }},
      {"divisibleby", [](Renderer& r, V v, Args& a) {
         const std::int64_t n = need_int(r, a.get(0, "num"), a, "the divisor");
         if (n == 0) r.fail(a.at, "integer division or modulo by zero");
         return n == -1 || need_int(r, v, a, "the value") % n == 0;
       }},
      {"lower", [](Renderer&, V v, Args&) { return v.is(K::string) && ascii_lower(v.s) == v.s; }},
      {"upper", [](Renderer&, V v, Args&) { return v.is(K::string) && ascii_upper(v.s) == v.s; }},
      {"in", [](Renderer& r, V v, Args& a) { return contains(r, a.get(0, "seq"), v, a.at); }},
      {"sameas", [](Renderer&, V v, Args& a) {
         const Value o = a.get(0, "other");
         return v.kind == o.kind && (v.list ? v.list == o.list : v.dict ? v.dict == o.dict : equal(v, o));
       }},
      {"equalto", cmp("==")}, {"eq", cmp("==")}, {"==", cmp("==")}, {"ne", cmp("!=")}, {"!=", cmp("!=")},
      {"lt", cmp("<")}, {"lessthan", cmp("<")}, {"le", cmp("<=")}, {"gt", cmp(">")}, {"greaterthan", cmp(">")},
      {"ge", cmp(">=")},
  };
  return table;
}

// ---------------------------------------------------------------------------------------------------------------
// Methods: the str and dict methods chat templates call
namespace {

std::optional<std::string> opt_chars(const Args& a) {
  const Value c = a.get(0, "chars", Value::none());
  return c.is(Value::Kind::string) ? std::optional(c.s) : std::nullopt;
}

Value split(Renderer& r, const std::string& s, Args& a) {
  const Value sep = a.get(0, "sep", Value::none());
  const Value maxsplit_v = a.get(1, "maxsplit", Value::integer(-1));
  std::int64_t maxsplit = need_int(r, maxsplit_v, a, "maxsplit");
  List out;
  if (sep.is(Value::Kind::none)) {  // runs of whitespace, no empty pieces
    const auto at = code_points(s);
    std::size_t k = 0, n = 0;
    auto space = [&](std::size_t i) { return is_py_space(decode_at(s, at[i], n)); };
    const std::size_t end = at.size() - 1;
    while (k < end) {
      while (k < end && space(k)) ++k;
      if (k == end) break;
      if (maxsplit >= 0 && std::int64_t(out.size()) == maxsplit) {
        out.push_back(Value::str(py_strip(s.substr(at[k]), std::nullopt, false, true)));
        break;
      }
      const std::size_t b = k;
      while (k < end && !space(k)) ++k;
      out.push_back(Value::str(s.substr(at[b], at[k] - at[b])));
    }
    return Value::of_list(std::move(out));
  }
  const std::string d = need_str(r, sep, a, "the separator");
  if (d.empty()) r.fail(a.at, "split: empty separator");
  std::size_t p = 0;
  for (std::size_t q; (maxsplit < 0 || std::int64_t(out.size()) < maxsplit) && (q = s.find(d, p)) != std::string::npos; p = q + d.size())
    out.push_back(Value::str(s.substr(p, q - p)));
  out.push_back(Value::str(s.substr(p)));
  return Value::of_list(std::move(out));
}

bool affix(Renderer& r, const std::string& s, const Value& arg, Args& a, bool prefix) {
  auto one = [&](const Value& x) {
    const std::string t = need_str(r, x, a, "the affix");
    return t.size() <= s.size() && (prefix ? s.compare(0, t.size(), t) == 0 : s.compare(s.size() - t.size(), t.size(), t) == 0);
  };
  if (arg.is(Value::Kind::list)) return std::any_of(arg.list->begin(), arg.list->end(), one);
  return one(arg);
}

Value string_method(Renderer& r, const std::string& s, const std::string& m, Args& a, bool& found) {
  found = true;
  if (m == "strip") return Value::str(py_strip(s, opt_chars(a), true, true));
  if (m == "lstrip") return Value::str(py_strip(s, opt_chars(a), true, false));
  if (m == "rstrip") return Value::str(py_strip(s, opt_chars(a), false, true));
  if (m == "split") return split(r, s, a);
  if (m == "startswith") return Value::boolean(affix(r, s, a.get(0, "prefix"), a, true));
  if (m == "endswith") return Value::boolean(affix(r, s, a.get(0, "suffix"), a, false));
  if (m == "upper") return Value::str(ascii_upper(s));
  if (m == "lower") return Value::str(ascii_lower(s));
  if (m == "capitalize") return filter_capitalize(r, Value::str(s), a);
  if (m == "title") return filter_title(r, Value::str(s), a);
  if (m == "replace") {
    const Value count = a.get(2, "count", Value::integer(-1));
    std::string out = replace_all(s, need_str(r, a.get(0, "old"), a, "old"), need_str(r, a.get(1, "new"), a, "new"),
                                  need_int(r, count, a, "count"));
    r.check_size(out.size(), a.at);
    return Value::str(std::move(out));
  }
  if (m == "find" || m == "count") {
    const std::string t = need_str(r, a.get(0, "sub"), a, "the substring");
    if (m == "find") {
      const auto p = s.find(t);
      return Value::integer(p == std::string::npos ? -1 : std::int64_t(length_cp(s.substr(0, p))));
    }
    if (t.empty()) return Value::integer(std::int64_t(length_cp(s)) + 1);
    std::int64_t n = 0;
    for (std::size_t p = s.find(t); p != std::string::npos; p = s.find(t, p + t.size())) ++n;
    return Value::integer(n);
  }
  if (m == "join") {
    Args j;
    j.pos = {Value::str(s)};
    j.at = a.at;
    return filter_join(r, a.get(0, "iterable"), j);
  }
  found = false;
  return {};
}

}  // namespace

Value call_method(Renderer& r, const Value& obj, const std::string& m, Args& a, bool& found) {
  using K = Value::Kind;
  found = false;
  if (obj.is(K::string)) return string_method(r, obj.s, m, a, found);
  if (!obj.is(K::dict)) return {};
  found = true;
  if (m == "get") {
    const Value key = a.get(0, "key");
    const Value* v = key.is(K::string) ? dict_find(*obj.dict, key.s) : nullptr;
    return v ? *v : a.get(1, "default", Value::none());
  }
  if (m == "items") return items_of(r, obj, a.at);
  if (m == "keys") return Value::of_list(iterate(r, obj, a.at));
  if (m == "values") {
    List out;
    for (const auto& kv : *obj.dict) out.push_back(kv.second);
    return Value::of_list(std::move(out));
  }
  found = false;
  return {};
}

// ---------------------------------------------------------------------------------------------------------------
// Globals: Jinja's range/dict/namespace and transformers' raise_exception/strftime_now

namespace {

Value global_range(Renderer& r, Args& a) {
  std::int64_t start = 0, stop = 0, step = 1;
  if (a.pos.size() == 1) stop = need_int(r, a.pos[0], a, "stop");
  else if (a.pos.size() >= 2) {
    start = need_int(r, a.pos[0], a, "start"), stop = need_int(r, a.pos[1], a, "stop");
    if (a.pos.size() > 2) step = need_int(r, a.pos[2], a, "step");
  } else r.fail(a.at, "range expected at least 1 argument");
  if (step == 0) r.fail(a.at, "range() arg 3 must not be zero");
  const long double count = (static_cast<long double>(stop) - start) / step;
  if (count > 100000) r.fail(a.at, "range() too large (at most 100000 items)");
  List out;
  for (std::int64_t k = start; step > 0 ? k < stop : k > stop; k += step) out.push_back(Value::integer(k));
  return Value::of_list(std::move(out));
}

Value global_namespace(Renderer& r, Args& a, Value::Kind kind) {
  Dict d;
  for (const auto& p : a.pos) {
    if (!p.is(Value::Kind::dict) && !p.is(Value::Kind::ns)) r.fail(a.at, a.fn + "() positional argument must be a mapping");
    for (const auto& kv : *p.dict) dict_set(d, kv.first, kv.second);
  }
  for (const auto& [k, v] : a.kw) {
    if (kind == Value::Kind::ns && !k.empty() && k[0] == '_')
      r.fail(a.at, "Chat templates cannot store underscore-prefixed attributes on a namespace, but got '" + k + "'.");
    dict_set(d, k, v);
  }
  return Value::of_dict(std::move(d), kind);
}

Value global_strftime_now(Renderer& r, Args& a) {
  const std::string fmt = need_str(r, a.get(0, "format"), a, "the format");
  std::tm tm{};
  if (r.opt.now_unix) {
    const std::time_t t = std::time_t(*r.opt.now_unix);
    gmtime_r(&t, &tm);
  } else {
    const std::time_t t = std::time(nullptr);
    localtime_r(&t, &tm);
  }
  std::string buf(256 + fmt.size() * 8, '\0');
  const auto n = std::strftime(buf.data(), buf.size(), fmt.c_str(), &tm);
  buf.resize(n);
  return Value::str(std::move(buf));
}

}  // namespace

const std::unordered_map<std::string, Value>& globals() {
  static const std::unordered_map<std::string, Value> g = {
      {"range", Value::function("range", global_range)},
      {"namespace", Value::function("namespace", [](Renderer& r, Args& a) { return global_namespace(r, a, Value::Kind::ns); })},
      {"dict", Value::function("dict", [](Renderer& r, Args& a) { return global_namespace(r, a, Value::Kind::dict); })},
      {"raise_exception", Value::function("raise_exception", [](Renderer& r, Args& a) -> Value {
         r.fail(a.at, to_str(a.get(0, "message")));
       })},
      {"strftime_now", Value::function("strftime_now", global_strftime_now)},
  };
  return g;
}

}  // namespace distill::model::chat_detail
