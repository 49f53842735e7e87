// model/chat_template_value.cpp: the chat template interpreter's values: conversion from JSON, and Python's str
// semantics over them (UTF-8 code points, strip, str(), repr(), truthiness) where templates can observe them.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "model/chat_template_impl.h"

namespace distill::model::chat_detail {

const Value* dict_find(const Dict& d, std::string_view key) {
  for (const auto& [k, v] : d)
    if (k == key) return &v;
  return nullptr;
}

void dict_set(Dict& d, const std::string& key, Value v) {
  for (auto& [k, old] : d)
    if (k == key) { old = std::move(v); return; }
  d.emplace_back(key, std::move(v));
}

Value from_json(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null: return Value::none();
    case nlohmann::json::value_t::boolean: return Value::boolean(j.get<bool>());
    case nlohmann::json::value_t::number_integer: return Value::integer(j.get<std::int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      const auto u = j.get<std::uint64_t>();
      return u <= std::uint64_t(INT64_MAX) ? Value::integer(std::int64_t(u)) : Value::real(double(u));
    }
    case nlohmann::json::value_t::number_float: return Value::real(j.get<double>());
    case nlohmann::json::value_t::string: return Value::str(j.get<std::string>());
    case nlohmann::json::value_t::array: {
      List items;
      for (const auto& e : j) items.push_back(from_json(e));
      return Value::of_list(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      Dict items;
      for (auto it = j.begin(); it != j.end(); ++it) items.emplace_back(it.key(), from_json(it.value()));
      return Value::of_dict(std::move(items));
    }
    default: return Value::none();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Text helpers: Python's str semantics over UTF-8 (indexing counts code points).

// Byte offsets of each code point of `s`, plus s.size(); an invalid byte counts as one code point.
std::vector<std::size_t> code_points(std::string_view s) {
  std::vector<std::size_t> at;
  at.reserve(s.size() + 1);
  for (std::size_t p = 0; p < s.size();) {
    at.push_back(p);
    const unsigned char c = s[p];
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (p + n > s.size()) n = 1;
    p += n;
  }
  at.push_back(s.size());
  return at;
}

std::size_t length_cp(std::string_view s) { return code_points(s).size() - 1; }

// Decodes the code point starting at byte `p` (invalid bytes decode as themselves); sets `n` to its byte length.
std::uint32_t decode_at(std::string_view s, std::size_t p, std::size_t& n) {
  const unsigned char c = s[p];
  n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
  if (n == 1 || p + n > s.size()) { n = 1; return c; }
  std::uint32_t cp = c & (0x7F >> n);
  for (std::size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[p + k]) & 0x3F);
  return cp;
}

// Python's str.isspace() set.
bool is_py_space(std::uint32_t c) {
  return (c >= 9 && c <= 13) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// str.strip/lstrip/rstrip: without `chars`, Python whitespace; with them, any of their code points.
std::string py_strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right) {
  std::vector<std::uint32_t> set;
  if (chars)
    for (std::size_t p = 0, n = 0; p < chars->size(); p += n) set.push_back(decode_at(*chars, p, n));
  auto strip_it = [&](std::uint32_t c) {
    return chars ? std::find(set.begin(), set.end(), c) != set.end() : is_py_space(c);
  };
  const auto at = code_points(s);
  std::size_t lo = 0, hi = at.size() - 1, n = 0;
  while (left && lo < hi && strip_it(decode_at(s, at[lo], n))) ++lo;
  while (right && hi > lo && strip_it(decode_at(s, at[hi - 1], n))) --hi;
  return std::string(s.substr(at[lo], at[hi] - at[lo]));
}

std::string ascii_lower(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string ascii_upper(std::string s) {
  for (auto& c : s) c = char(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to, std::int64_t count) {
  std::string out;
  std::size_t p = 0;
  if (from.empty()) {  // Python inserts `to` around every code point
    const auto at = code_points(s);
    for (std::size_t k = 0; k + 1 < at.size(); ++k) {
      if (count < 0 || std::int64_t(k) < count) out += to;
      out.append(s, at[k], at[k + 1] - at[k]);
    }
    if (count < 0 || std::int64_t(at.size() - 1) < count) out += to;
    return out;
  }
  for (std::int64_t done = 0; count < 0 || done < count; ++done) {
    const auto q = s.find(from, p);
    if (q == std::string::npos) break;
    out.append(s, p, q - p);
    out += to;
    p = q + from.size();
  }
  return out + s.substr(p);
}

// Python's repr(float): the shortest round-trip digits, fixed notation for exponents in [-4, 16).
std::string py_float(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string sci(buf, r.ptr);
  const auto e = sci.find('e');
  const int exp = std::stoi(sci.substr(e + 1));
  std::string mant = sci.substr(0, e);
  const bool neg = mant[0] == '-';
  if (neg) mant.erase(0, 1);
  std::string digits;
  for (char c : mant)
    if (c != '.') digits += c;
  std::string out;
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      out = "0." + std::string(std::size_t(-exp - 1), '0') + digits;
    } else {
      if (digits.size() <= std::size_t(exp) + 1) digits += std::string(std::size_t(exp) + 1 - digits.size(), '0');
      out = digits.substr(0, std::size_t(exp) + 1) + "." + digits.substr(std::size_t(exp) + 1);
      if (out.back() == '.') out += '0';
    }
  } else {
    out = digits.substr(0, 1) + (digits.size() > 1 ? "." + digits.substr(1) : "");
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out += eb;
  }
  return neg ? "-" + out : out;
}

namespace {

std::string py_repr_str(const std::string& s) {
  const bool dq = s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
  const char q = dq ? '"' : '\'';
  std::string out(1, q);
  for (unsigned char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == q) out += std::string("\\") + char(c);
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7F) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    } else out += char(c);
  }
  return out + q;
}

}  // namespace

std::string py_repr(const Value& v) {
  return v.is(Value::Kind::string) ? py_repr_str(v.s) : v.is_undefined() ? "Undefined" : to_str(v);
}

// Python's str(): what {{ }} prints.
std::string to_str(const Value& v) {
  using K = Value::Kind;
  switch (v.kind) {
    case K::undefined: return "";
    case K::none: return "None";
    case K::boolean: return v.b ? "True" : "False";
    case K::integer: return std::to_string(v.i);
    case K::real: return py_float(v.f);
    case K::string: return v.s;
    case K::list: {
      std::string out = v.tuple ? "(" : "[";
      for (std::size_t k = 0; k < v.list->size(); ++k) out += (k ? ", " : "") + py_repr((*v.list)[k]);
      if (v.tuple && v.list->size() == 1) out += ",";
      return out + (v.tuple ? ")" : "]");
    }
    case K::dict:
    case K::ns: {
      std::string out = v.is(K::ns) ? "<Namespace {" : "{";
      bool first = true;
      for (const auto& [k, e] : *v.dict) out += (first ? "" : ", ") + py_repr_str(k) + ": " + py_repr(e), first = false;
      return out + (v.is(K::ns) ? "}>" : "}");
    }
    case K::callable: return "<function " + v.fn->name + ">";
  }
  return "";
}

bool truthy(const Value& v) {
  using K = Value::Kind;
  switch (v.kind) {
    case K::undefined:
    case K::none: return false;
    case K::boolean: return v.b;
    case K::integer: return v.i != 0;
    case K::real: return v.f != 0;
    case K::string: return !v.s.empty();
    case K::list: return !v.list->empty();
    case K::dict: return !v.dict->empty();
    default: return true;
  }
}

std::string type_name(const Value& v) {
  static const char* names[] = {"Undefined", "NoneType", "bool", "int",       "float",
                                "str",       "list",     "dict", "Namespace", "function"};
  return v.tuple ? "tuple" : names[int(v.kind)];
}

}  // namespace distill::model::chat_detail
