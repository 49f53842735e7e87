// model/chat_template.cpp: a small Jinja2 interpreter for Hugging Face chat templates: a lexer that applies
// transformers' whitespace settings, a recursive-descent parser to an AST, and a tree-walking renderer whose values
// follow Python's semantics (truthiness, str(), repr(), slicing, json.dumps) where templates can observe them.
#include "model/chat_template.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <functional>
#include <map>
#include <unordered_map>

#include "common/errors.h"
#include "common/fs.h"
#include "common/utf8.h"

namespace distill::model {
namespace {

// ---------------------------------------------------------------------------------------------------------------
// Values

struct Value;
struct Node;
using List = std::vector<Value>;
using Dict = std::vector<std::pair<std::string, Value>>;  // insertion-ordered, as Python dicts

struct Renderer;
struct Args;
using Builtin = std::function<Value(Renderer&, Args&)>;

struct Callable {
  std::string name;
  Builtin builtin;                // a global function, or
  const Node* macro = nullptr;    // a macro defined by the template
};

struct Value {
  enum class Kind { undefined, none, boolean, integer, real, string, list, dict, ns, callable };
  Kind kind = Kind::undefined;
  bool b = false;
  std::int64_t i = 0;
  double f = 0;
  std::string s;                    // string; for undefined: why it is undefined (the error if it is used)
  std::shared_ptr<List> list;
  bool tuple = false;               // a list that prints as a Python tuple
  std::shared_ptr<Dict> dict;       // dict or namespace (a namespace's dict is shared and mutable)
  std::shared_ptr<const Callable> fn;

  static Value undef(std::string why) { Value v; v.s = std::move(why); return v; }
  static Value none() { Value v; v.kind = Kind::none; return v; }
  static Value boolean(bool x) { Value v; v.kind = Kind::boolean; v.b = x; return v; }
  static Value integer(std::int64_t x) { Value v; v.kind = Kind::integer; v.i = x; return v; }
  static Value real(double x) { Value v; v.kind = Kind::real; v.f = x; return v; }
  static Value str(std::string x) { Value v; v.kind = Kind::string; v.s = std::move(x); return v; }
  static Value of_list(List items, bool tuple = false) {
    Value v; v.kind = Kind::list; v.list = std::make_shared<List>(std::move(items)); v.tuple = tuple; return v;
  }
  static Value of_dict(Dict items, Kind k = Kind::dict) {
    Value v; v.kind = k; v.dict = std::make_shared<Dict>(std::move(items)); return v;
  }
  static Value function(std::string name, Builtin f) {
    Value v; v.kind = Kind::callable; v.fn = std::make_shared<Callable>(Callable{std::move(name), std::move(f)}); return v;
  }

  bool is(Kind k) const { return kind == k; }
  bool is_undefined() const { return kind == Kind::undefined; }
  bool is_number() const { return kind == Kind::integer || kind == Kind::real || kind == Kind::boolean; }
  bool is_int() const { return kind == Kind::integer || kind == Kind::boolean; }
  std::int64_t as_int() const { return kind == Kind::boolean ? std::int64_t(b) : i; }
  double as_real() const { return kind == Kind::real ? f : double(as_int()); }
};

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

std::string to_str(const Value& v);

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

// ---------------------------------------------------------------------------------------------------------------
// Errors

struct Where {
  const std::string* name;
  std::vector<std::size_t> line_starts;  // byte offset of each line's start

  std::pair<int, int> line_col(std::size_t offset) const {
    const auto it = std::upper_bound(line_starts.begin(), line_starts.end(), offset);
    const auto line = std::size_t(it - line_starts.begin());
    return {int(line), int(offset - line_starts[line - 1]) + 1};
  }
  [[noreturn]] void syntax(std::size_t offset, const std::string& what) const {
    const auto [l, c] = line_col(offset);
    throw InputError(*name + ":" + std::to_string(l) + ":" + std::to_string(c) + ": " + what);
  }
};

// ---------------------------------------------------------------------------------------------------------------
// Lexer: template text and tags, with transformers' whitespace control applied (trim_blocks, lstrip_blocks, -/+).

struct Tok {
  enum class K { text, var_begin, var_end, block_begin, block_end, name, integer, real, string, op, eof };
  K k = K::eof;
  std::string s;  // text, name, string value, operator
  std::int64_t i = 0;
  double f = 0;
  std::size_t at = 0;  // byte offset in the (newline-normalised) source
};

class Lexer {
 public:
  Lexer(const std::string& src, const Where& where) : src_(src), w_(where) {}
  std::vector<Tok> run();

 private:
  void text_before_tag(std::size_t tag_at, char kind, char sign);
  void comment(std::size_t tag_at, char sign);
  void tag(std::size_t tag_at, char kind, char sign);
  bool tag_end(char kind, std::size_t& after);
  void after_tag(char kind, char closer_sign);
  void string_literal();
  void number();
  void op();
  void emit(Tok::K k, std::size_t at, std::string s = {}) { toks_.push_back(Tok{k, std::move(s), 0, 0, at}); }

  const std::string& src_;
  const Where& w_;
  std::size_t pos_ = 0;
  std::vector<Tok> toks_;
  std::vector<char> brackets_;
};

std::vector<Tok> Lexer::run() {
  while (pos_ < src_.size()) {
    std::size_t p = pos_;
    while ((p = src_.find('{', p)) != std::string::npos &&
           !(p + 1 < src_.size() && (src_[p + 1] == '{' || src_[p + 1] == '%' || src_[p + 1] == '#')))
      ++p;
    if (p == std::string::npos) {
      emit(Tok::K::text, pos_, src_.substr(pos_));
      break;
    }
    const char kind = src_[p + 1];
    const char sign = p + 2 < src_.size() && (src_[p + 2] == '-' || src_[p + 2] == '+') ? src_[p + 2] : 0;
    text_before_tag(p, kind, sign);
    if (kind == '#') comment(p, sign);
    else tag(p, kind, sign);
  }
  emit(Tok::K::eof, src_.size());
  return std::move(toks_);
}

void Lexer::text_before_tag(std::size_t tag_at, char kind, char sign) {
  std::string text = src_.substr(pos_, tag_at - pos_);
  if (sign == '-') {
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  } else if (sign != '+' && kind != '{') {  // lstrip_blocks: a block or comment tag alone after indentation
    const auto l = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
    const bool line_starting = pos_ == 0 || src_[pos_ - 1] == '\n';
    const bool only_space = l < text.size() && std::all_of(text.begin() + std::ptrdiff_t(l), text.end(), [](char c) {
                              return std::isspace(static_cast<unsigned char>(c)) != 0;
                            });
    if ((l > 0 || line_starting) && only_space) text.resize(l);
  }
  if (!text.empty()) emit(Tok::K::text, pos_, std::move(text));
}

void Lexer::comment(std::size_t tag_at, char sign) {
  const auto end = src_.find("#}", tag_at + 2 + (sign ? 1 : 0));
  if (end == std::string::npos) w_.syntax(tag_at, "unterminated comment: expected '#}'");
  const char closer = end > tag_at + 2 && (src_[end - 1] == '-' || src_[end - 1] == '+') ? src_[end - 1] : 0;
  pos_ = end + 2;
  after_tag('#', closer);
}

// After a block or comment tag: `-` eats all following whitespace; otherwise trim_blocks eats one newline.
void Lexer::after_tag(char kind, char closer_sign) {
  if (closer_sign == '-') {
    while (pos_ < src_.size() && std::isspace(static_cast<unsigned char>(src_[pos_]))) ++pos_;
  } else if (closer_sign != '+' && kind != '{' && pos_ < src_.size() && src_[pos_] == '\n') {
    ++pos_;
  }
}

bool Lexer::tag_end(char kind, std::size_t& after) {
  const char first = kind == '{' ? '}' : '%';
  std::size_t p = pos_;
  if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ++p;
  if (p + 1 < src_.size() && src_[p] == first && src_[p + 1] == '}' && brackets_.empty()) {
    after = p + 2;
    return true;
  }
  return false;
}

void Lexer::tag(std::size_t tag_at, char kind, char sign) {
  emit(kind == '{' ? Tok::K::var_begin : Tok::K::block_begin, tag_at);
  pos_ = tag_at + 2 + (sign ? 1 : 0);
  brackets_.clear();
  for (;;) {
    while (pos_ < src_.size() && std::isspace(static_cast<unsigned char>(src_[pos_]))) ++pos_;
    if (pos_ >= src_.size())
      w_.syntax(tag_at, std::string("unterminated tag: expected '") + (kind == '{' ? "}}" : "%}") + "'");
    std::size_t after = 0;
    if (tag_end(kind, after)) {
      const char closer = src_[pos_] == '-' || src_[pos_] == '+' ? src_[pos_] : 0;
      emit(kind == '{' ? Tok::K::var_end : Tok::K::block_end, pos_);
      pos_ = after;
      after_tag(kind, closer);
      return;
    }
    const char c = src_[pos_];
    if (c == '\'' || c == '"') string_literal();
    else if (std::isdigit(static_cast<unsigned char>(c))) number();
    else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      const auto start = pos_;
      while (pos_ < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) ++pos_;
      emit(Tok::K::name, start, src_.substr(start, pos_ - start));
    } else op();
  }
}

// Python's string escapes, as Jinja decodes literals ("unicode-escape"): unknown escapes stay as written.
std::size_t decode_escape(const std::string& src, std::size_t p, std::string& out, const Where& w) {
  static const std::map<char, char> simple = {{'n', '\n'}, {'t', '\t'}, {'r', '\r'}, {'\\', '\\'}, {'\'', '\''},
                                              {'"', '"'},  {'a', '\a'}, {'b', '\b'}, {'f', '\f'}, {'v', '\v'},
                                              {'\n', 0}};
  const char e = src[p];
  if (auto it = simple.find(e); it != simple.end()) {
    if (it->second) out += it->second;
    return p + 1;
  }
  std::uint32_t cp = 0;
  std::size_t digits = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0, q = p + 1;
  if (e >= '0' && e <= '7') {  // up to three octal digits
    q = p;
    for (int k = 0; k < 3 && q < src.size() && src[q] >= '0' && src[q] <= '7'; ++k, ++q) cp = cp * 8 + std::uint32_t(src[q] - '0');
  } else if (digits) {
    for (std::size_t k = 0; k < digits; ++k, ++q) {
      if (q >= src.size() || !std::isxdigit(static_cast<unsigned char>(src[q])))
        w.syntax(p - 1, "truncated \\" + std::string(1, e) + " escape in a string literal");
      cp = cp * 16 + std::uint32_t(std::isdigit(static_cast<unsigned char>(src[q])) ? src[q] - '0'
                                                                                     : std::tolower(src[q]) - 'a' + 10);
    }
  } else {
    out += '\\';
    return p;
  }
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) w.syntax(p - 1, "invalid code point escape in a string literal");
  if (cp < 0x80) out += char(cp);
  else if (cp < 0x800) out += char(0xC0 | (cp >> 6)), out += char(0x80 | (cp & 0x3F));
  else if (cp < 0x10000) out += char(0xE0 | (cp >> 12)), out += char(0x80 | ((cp >> 6) & 0x3F)), out += char(0x80 | (cp & 0x3F));
  else
    out += char(0xF0 | (cp >> 18)), out += char(0x80 | ((cp >> 12) & 0x3F)), out += char(0x80 | ((cp >> 6) & 0x3F)),
        out += char(0x80 | (cp & 0x3F));
  return q;
}

void Lexer::string_literal() {
  const auto start = pos_;
  const char q = src_[pos_++];
  std::string value;
  while (pos_ < src_.size() && src_[pos_] != q) {
    if (src_[pos_] == '\\' && pos_ + 1 < src_.size()) pos_ = decode_escape(src_, pos_ + 1, value, w_);
    else value += src_[pos_++];
  }
  if (pos_ >= src_.size()) w_.syntax(start, "unterminated string literal");
  ++pos_;
  emit(Tok::K::string, start, std::move(value));
}

void Lexer::number() {
  const auto start = pos_;
  auto digits = [&] {
    while (pos_ < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) ++pos_;
  };
  digits();
  bool is_real = false;
  // A fraction needs a digit after the dot, so `x.0.y` and `1.` stay attribute syntax, as in Jinja.
  const bool after_dot = start > 0 && src_[start - 1] == '.';
  if (!after_dot && pos_ + 1 < src_.size() && src_[pos_] == '.' && std::isdigit(static_cast<unsigned char>(src_[pos_ + 1])))
    ++pos_, digits(), is_real = true;
  if (!after_dot && pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
    auto q = pos_ + 1;
    if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
    if (q < src_.size() && std::isdigit(static_cast<unsigned char>(src_[q]))) pos_ = q, digits(), is_real = true;
  }
  std::string text;
  for (auto k = start; k < pos_; ++k)
    if (src_[k] != '_') text += src_[k];
  Tok t{is_real ? Tok::K::real : Tok::K::integer, text, 0, 0, start};
  if (is_real) {
    t.f = std::strtod(text.c_str(), nullptr);
  } else {
    auto r = std::from_chars(text.data(), text.data() + text.size(), t.i);
    if (r.ec != std::errc()) w_.syntax(start, "integer literal out of range");
  }
  toks_.push_back(std::move(t));
}

void Lexer::op() {
  static const char* two[] = {"//", "**", "==", "!=", "<=", ">="};
  const auto start = pos_;
  for (const char* o : two)
    if (src_.compare(pos_, 2, o) == 0) {
      pos_ += 2;
      emit(Tok::K::op, start, o);
      return;
    }
  const char c = src_[pos_];
  if (std::string_view("+-*/%~()[]{},.:|=<>").find(c) == std::string_view::npos)
    w_.syntax(start, std::string("unexpected character '") + c + "' in a tag");
  if (c == '(' || c == '[' || c == '{') brackets_.push_back(c);
  if (c == ')' || c == ']' || c == '}') {
    const char open = c == ')' ? '(' : c == ']' ? '[' : '{';
    if (brackets_.empty() || brackets_.back() != open) w_.syntax(start, std::string("unbalanced '") + c + "'");
    brackets_.pop_back();
  }
  ++pos_;
  emit(Tok::K::op, start, std::string(1, c));
}

// ---------------------------------------------------------------------------------------------------------------
// AST

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class K { literal, name, list, tuple, dict, attr, item, slice, call, filter, test, unary, binary, cond };
  K k = K::literal;
  std::size_t at = 0;
  std::string s;                                      // name, attribute, filter, test or operator
  Value lit;                                          // literal
  std::vector<ExprPtr> a;                             // operands; call: callee then args; slice: obj,start,stop,step
  std::vector<std::pair<std::string, ExprPtr>> kw;    // keyword arguments
  bool negated = false;                               // `is not`
};

using Body = std::vector<std::unique_ptr<Node>>;

struct Node {
  enum class K { text, output, if_, for_, set, set_block, macro, break_, continue_, block };
  K k = K::text;
  std::size_t at = 0;
  std::string s;                      // text; set: variable; macro: name
  std::string attr;                   // set ns.attr
  std::vector<std::string> names;     // for: targets; macro: parameters
  std::vector<ExprPtr> e;             // output: [expr]; if: conditions; for: [iter, filter?]; set: [value];
                                      // macro: parameter defaults (null where none)
  std::vector<Body> bodies;           // if: one per condition, then else; for: [body, else]; others: [body]
};

// ---------------------------------------------------------------------------------------------------------------
// Parser

using FilterFn = std::function<Value(Renderer&, const Value&, Args&)>;
using TestFn = std::function<bool(Renderer&, const Value&, Args&)>;
const std::unordered_map<std::string, FilterFn>& filters();
const std::unordered_map<std::string, TestFn>& tests();

class Parser {
 public:
  Parser(std::vector<Tok> toks, const Where& w) : t_(std::move(toks)), w_(w) {}
  Body parse_template();

 private:
  const Tok& peek(std::size_t ahead = 0) const { return t_[std::min(p_ + ahead, t_.size() - 1)]; }
  const Tok& next() { const Tok& t = t_[p_]; if (p_ + 1 < t_.size()) ++p_; return t; }
  bool is_op(const char* o, std::size_t ahead = 0) const { return peek(ahead).k == Tok::K::op && peek(ahead).s == o; }
  bool is_name(const char* n, std::size_t ahead = 0) const { return peek(ahead).k == Tok::K::name && peek(ahead).s == n; }
  [[noreturn]] void expected(const std::string& what) const;
  void expect_op(const char* o) { if (!is_op(o)) expected(std::string("'") + o + "'"); next(); }
  std::string expect_name();
  void expect_block_end() { if (peek().k != Tok::K::block_end) expected("'%}'"); next(); }

  Body subparse(const std::vector<std::string>& stop, std::string& stopped_at);
  std::unique_ptr<Node> statement();
  std::unique_ptr<Node> parse_if();
  std::unique_ptr<Node> parse_for();
  std::unique_ptr<Node> parse_set();
  std::unique_ptr<Node> parse_macro();
  std::unique_ptr<Node> parse_block_tag(Node::K k, const char* end);

  ExprPtr expr(bool with_cond = true);
  ExprPtr or_expr();
  ExprPtr and_expr();
  ExprPtr not_expr();
  ExprPtr compare();
  ExprPtr math1();
  ExprPtr concat();
  ExprPtr math2();
  ExprPtr power();
  ExprPtr unary(bool with_filter = true);
  ExprPtr primary();
  ExprPtr postfix(ExprPtr e);
  ExprPtr filters_and_tests(ExprPtr e);
  ExprPtr subscript(ExprPtr obj, std::size_t at);
  ExprPtr tuple_or_expr();
  void call_args(Expr& call);
  ExprPtr make(Expr::K k, std::size_t at, std::string s = {});
  ExprPtr binary(std::string op, ExprPtr l, ExprPtr r);

  std::vector<Tok> t_;
  const Where& w_;
  std::size_t p_ = 0;
  int depth_ = 0;
  std::vector<std::string> open_;  // the end tags of the enclosing blocks, for messages
};

constexpr int kMaxNesting = 200;  // expression and block nesting: deeper templates are refused, not overflowed

void Parser::expected(const std::string& what) const {
  const Tok& t = peek();
  std::string got = t.k == Tok::K::eof ? "end of template" : t.k == Tok::K::block_end ? "'%}'"
                    : t.k == Tok::K::var_end ? "'}}'" : t.k == Tok::K::text ? "text" : "'" + t.s + "'";
  w_.syntax(t.at, "expected " + what + ", got " + got);
}

std::string Parser::expect_name() {
  if (peek().k != Tok::K::name) expected("a name");
  return next().s;
}

ExprPtr Parser::make(Expr::K k, std::size_t at, std::string s) {
  auto e = std::make_unique<Expr>();
  e->k = k, e->at = at, e->s = std::move(s);
  return e;
}

ExprPtr Parser::binary(std::string op, ExprPtr l, ExprPtr r) {
  auto e = make(Expr::K::binary, l->at, std::move(op));
  e->a.push_back(std::move(l));
  e->a.push_back(std::move(r));
  return e;
}

Body Parser::parse_template() {
  std::string stopped;
  Body body = subparse({}, stopped);
  if (peek().k != Tok::K::eof) expected("end of template");
  return body;
}

// Nodes until a block tag named in `stop` (its name is left unread, in `stopped_at`) or the end of the template.
Body Parser::subparse(const std::vector<std::string>& stop, std::string& stopped_at) {
  if (++depth_ > kMaxNesting) w_.syntax(peek().at, "blocks nested too deeply");
  if (!stop.empty()) open_.push_back(stop.back());
  Body body;
  for (;;) {
    const Tok& t = peek();
    if (t.k == Tok::K::eof) {
      if (!stop.empty()) w_.syntax(t.at, "unexpected end of template: expected '{% " + stop.back() + " %}'");
      break;
    }
    if (t.k == Tok::K::text) {
      auto n = std::make_unique<Node>();
      n->k = Node::K::text, n->at = t.at, n->s = next().s;
      body.push_back(std::move(n));
    } else if (t.k == Tok::K::var_begin) {
      auto n = std::make_unique<Node>();
      n->k = Node::K::output, n->at = next().at;
      n->e.push_back(tuple_or_expr());
      if (peek().k != Tok::K::var_end) expected("'}}'");
      next();
      body.push_back(std::move(n));
    } else if (t.k == Tok::K::block_begin) {
      if (peek(1).k == Tok::K::name && std::find(stop.begin(), stop.end(), peek(1).s) != stop.end()) {
        next();
        stopped_at = peek().s;
        --depth_;
        open_.pop_back();
        return body;
      }
      next();
      body.push_back(statement());
    } else {
      expected("text or a tag");
    }
  }
  --depth_;
  return body;
}

std::unique_ptr<Node> Parser::statement() {
  const Tok& t = peek();
  if (t.k != Tok::K::name) expected("a statement name");
  const std::string& n = t.s;
  if (n == "if") return parse_if();
  if (n == "for") return parse_for();
  if (n == "set") return parse_set();
  if (n == "macro") return parse_macro();
  if (n == "generation") return parse_block_tag(Node::K::block, "endgeneration");  // transformers' extension
  if (n == "break" || n == "continue") {
    auto node = std::make_unique<Node>();
    node->k = n == "break" ? Node::K::break_ : Node::K::continue_, node->at = next().at;
    expect_block_end();
    return node;
  }
  static const std::vector<std::string> unsupported = {"include", "import", "from", "extends", "block", "call",
                                                       "filter", "with", "raw", "autoescape", "do"};
  if (std::find(unsupported.begin(), unsupported.end(), n) != unsupported.end())
    w_.syntax(t.at, "unsupported tag '" + n + "'");
  w_.syntax(t.at, "unknown tag '" + n + "'" + (open_.empty() ? "" : ", expected '{% " + open_.back() + " %}'"));
}

std::unique_ptr<Node> Parser::parse_block_tag(Node::K k, const char* end) {
  auto node = std::make_unique<Node>();
  node->k = k, node->at = next().at;
  expect_block_end();
  std::string stopped;
  node->bodies.push_back(subparse({end}, stopped));
  next();
  expect_block_end();
  return node;
}

std::unique_ptr<Node> Parser::parse_if() {
  auto node = std::make_unique<Node>();
  node->k = Node::K::if_, node->at = next().at;
  for (;;) {
    node->e.push_back(tuple_or_expr());
    expect_block_end();
    std::string stopped;
    node->bodies.push_back(subparse({"elif", "else", "endif"}, stopped));
    next();
    if (stopped == "elif") continue;
    if (stopped == "else") {
      expect_block_end();
      node->bodies.push_back(subparse({"endif"}, stopped));
      next();
    }
    expect_block_end();
    return node;
  }
}

std::unique_ptr<Node> Parser::parse_for() {
  auto node = std::make_unique<Node>();
  node->k = Node::K::for_, node->at = next().at;
  node->names.push_back(expect_name());
  while (is_op(",")) next(), node->names.push_back(expect_name());
  if (!is_name("in")) expected("'in'");
  next();
  node->e.push_back(expr(false));
  if (is_name("if")) next(), node->e.push_back(expr());
  if (is_name("recursive")) w_.syntax(peek().at, "unsupported: recursive loops");
  expect_block_end();
  std::string stopped;
  node->bodies.push_back(subparse({"else", "endfor"}, stopped));
  next();
  if (stopped == "else") {
    expect_block_end();
    node->bodies.push_back(subparse({"endfor"}, stopped));
    next();
  }
  expect_block_end();
  return node;
}

std::unique_ptr<Node> Parser::parse_set() {
  auto node = std::make_unique<Node>();
  node->k = Node::K::set, node->at = next().at;
  node->s = expect_name();
  if (is_op(".")) next(), node->attr = expect_name();
  if (is_op("=")) {
    next();
    node->e.push_back(tuple_or_expr());
    expect_block_end();
    return node;
  }
  if (!node->attr.empty()) expected("'='");
  expect_block_end();  // {% set x %}...{% endset %}
  node->k = Node::K::set_block;
  std::string stopped;
  node->bodies.push_back(subparse({"endset"}, stopped));
  next();
  expect_block_end();
  return node;
}

std::unique_ptr<Node> Parser::parse_macro() {
  auto node = std::make_unique<Node>();
  node->k = Node::K::macro, node->at = next().at;
  node->s = expect_name();
  expect_op("(");
  while (!is_op(")")) {
    if (!node->names.empty()) expect_op(",");
    node->names.push_back(expect_name());
    if (is_op("=")) next(), node->e.push_back(expr());
    else node->e.push_back(nullptr);
  }
  next();
  expect_block_end();
  std::string stopped;
  node->bodies.push_back(subparse({"endmacro"}, stopped));
  next();
  if (peek().k == Tok::K::name && peek().s == node->s) next();
  expect_block_end();
  return node;
}

// `a, b` without brackets (as in {{ 1, 2 }} or {% set x = 1, 2 %}) is a tuple.
ExprPtr Parser::tuple_or_expr() {
  auto first = expr();
  if (!is_op(",")) return first;
  auto t = make(Expr::K::tuple, first->at);
  t->a.push_back(std::move(first));
  while (is_op(",")) {
    next();
    if (peek().k == Tok::K::block_end || peek().k == Tok::K::var_end) break;
    t->a.push_back(expr());
  }
  return t;
}

ExprPtr Parser::expr(bool with_cond) {
  if (++depth_ > kMaxNesting) w_.syntax(peek().at, "expression nested too deeply");
  auto e = or_expr();
  while (with_cond && is_name("if")) {  // x if c else y (else optional: undefined)
    const auto at = next().at;
    auto c = make(Expr::K::cond, at);
    c->a.push_back(std::move(e));
    c->a.push_back(or_expr());
    if (is_name("else")) next(), c->a.push_back(expr());
    e = std::move(c);
  }
  --depth_;
  return e;
}

ExprPtr Parser::or_expr() {
  auto e = and_expr();
  while (is_name("or")) next(), e = binary("or", std::move(e), and_expr());
  return e;
}

ExprPtr Parser::and_expr() {
  auto e = not_expr();
  while (is_name("and")) next(), e = binary("and", std::move(e), not_expr());
  return e;
}

ExprPtr Parser::not_expr() {
  if (!is_name("not")) return compare();
  const auto at = next().at;
  if (++depth_ > kMaxNesting) w_.syntax(at, "expression nested too deeply");
  auto e = make(Expr::K::unary, at, "not");
  e->a.push_back(not_expr());
  --depth_;
  return e;
}

ExprPtr Parser::compare() {
  auto e = math1();
  for (;;) {
    static const char* ops[] = {"==", "!=", "<", ">", "<=", ">="};
    std::string op;
    for (const char* o : ops)
      if (is_op(o)) op = o;
    if (!op.empty()) next();
    else if (is_name("in")) next(), op = "in";
    else if (is_name("not") && is_name("in", 1)) next(), next(), op = "not in";
    else return e;
    e = binary(op, std::move(e), math1());
  }
}

ExprPtr Parser::math1() {
  auto e = concat();
  while (is_op("+") || is_op("-")) {
    const std::string op = next().s;
    e = binary(op, std::move(e), concat());
  }
  return e;
}

ExprPtr Parser::concat() {
  auto e = math2();
  while (is_op("~")) next(), e = binary("~", std::move(e), math2());
  return e;
}

ExprPtr Parser::math2() {
  auto e = power();
  while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
    const std::string op = next().s;
    e = binary(op, std::move(e), power());
  }
  return e;
}

ExprPtr Parser::power() {
  auto e = unary();
  while (is_op("**")) next(), e = binary("**", std::move(e), unary());
  return e;
}

ExprPtr Parser::unary(bool with_filter) {
  ExprPtr e;
  if (is_op("-") || is_op("+")) {
    const Tok& t = next();
    if (++depth_ > kMaxNesting) w_.syntax(t.at, "expression nested too deeply");
    e = make(Expr::K::unary, t.at, t.s);
    e->a.push_back(unary(false));
    --depth_;
  } else {
    e = postfix(primary());
  }
  if (with_filter) return filters_and_tests(std::move(e));
  return e;
}

ExprPtr Parser::primary() {
  const Tok& t = peek();
  if (t.k == Tok::K::name) {
    next();
    auto lit = make(Expr::K::literal, t.at);
    if (t.s == "true" || t.s == "True") lit->lit = Value::boolean(true);
    else if (t.s == "false" || t.s == "False") lit->lit = Value::boolean(false);
    else if (t.s == "none" || t.s == "None") lit->lit = Value::none();
    else return make(Expr::K::name, t.at, t.s);
    return lit;
  }
  if (t.k == Tok::K::string) {
    auto lit = make(Expr::K::literal, t.at);
    std::string s = next().s;
    while (peek().k == Tok::K::string) s += next().s;  // adjacent literals concatenate, as in Python
    lit->lit = Value::str(std::move(s));
    return lit;
  }
  if (t.k == Tok::K::integer || t.k == Tok::K::real) {
    auto lit = make(Expr::K::literal, t.at);
    lit->lit = t.k == Tok::K::integer ? Value::integer(t.i) : Value::real(t.f);
    next();
    return lit;
  }
  if (is_op("(")) {
    const auto at = next().at;
    auto tuple = make(Expr::K::tuple, at);
    bool comma = false;
    while (!is_op(")")) {
      if (!tuple->a.empty()) expect_op(","), comma = true;
      if (is_op(")")) break;
      tuple->a.push_back(expr());
    }
    next();
    if (tuple->a.size() == 1 && !comma) return std::move(tuple->a[0]);
    return tuple;
  }
  if (is_op("[") || is_op("{")) {
    const bool is_list = is_op("[");
    auto e = make(is_list ? Expr::K::list : Expr::K::dict, next().at);
    while (!is_op(is_list ? "]" : "}")) {
      if (!e->a.empty()) {
        expect_op(",");
        if (is_op(is_list ? "]" : "}")) break;
      }
      e->a.push_back(expr());
      if (!is_list) expect_op(":"), e->a.push_back(expr());
    }
    next();
    return e;
  }
  expected("an expression");
}

ExprPtr Parser::postfix(ExprPtr e) {
  for (;;) {
    if (is_op(".")) {
      const auto at = next().at;
      if (peek().k == Tok::K::integer) {  // x.0 is x[0]
        auto item = make(Expr::K::item, at);
        auto idx = make(Expr::K::literal, at);
        idx->lit = Value::integer(next().i);
        item->a.push_back(std::move(e));
        item->a.push_back(std::move(idx));
        e = std::move(item);
        continue;
      }
      auto attr = make(Expr::K::attr, at, expect_name());
      attr->a.push_back(std::move(e));
      e = std::move(attr);
    } else if (is_op("[")) {
      e = subscript(std::move(e), next().at);
    } else if (is_op("(")) {
      auto call = make(Expr::K::call, next().at);
      call->a.push_back(std::move(e));
      call_args(*call);
      e = std::move(call);
    } else {
      return e;
    }
  }
}

ExprPtr Parser::subscript(ExprPtr obj, std::size_t at) {
  ExprPtr parts[3];
  int part = 0;
  bool is_slice = false;
  while (!is_op("]")) {
    if (is_op(":")) {
      next();
      if (++part > 2) expected("']'");
      is_slice = true;
      continue;
    }
    if (parts[part]) expected("':' or ']'");
    parts[part] = expr();
  }
  next();
  if (!is_slice) {
    if (!parts[0]) w_.syntax(at, "expected an index inside '[]'");
    auto item = make(Expr::K::item, at);
    item->a.push_back(std::move(obj));
    item->a.push_back(std::move(parts[0]));
    return item;
  }
  auto slice = make(Expr::K::slice, at);
  slice->a.push_back(std::move(obj));
  for (auto& p : parts) slice->a.push_back(std::move(p));
  return slice;
}

// (a, b, key=value); the opening parenthesis is already read.
void Parser::call_args(Expr& call) {
  bool first = true;
  while (!is_op(")")) {
    if (!first) {
      expect_op(",");
      if (is_op(")")) break;
    }
    first = false;
    if (peek().k == Tok::K::name && is_op("=", 1)) {
      std::string key = next().s;
      next();
      call.kw.emplace_back(std::move(key), expr());
    } else {
      if (!call.kw.empty()) expected("a keyword argument (positional arguments come first)");
      call.a.push_back(expr());
    }
  }
  next();
}

ExprPtr Parser::filters_and_tests(ExprPtr e) {
  for (;;) {
    if (is_op("|")) {
      const auto at = next().at;
      std::string name = expect_name();
      while (is_op(".")) next(), name += "." + expect_name();
      if (!filters().count(name)) w_.syntax(at, "no filter named '" + name + "'");
      auto f = make(Expr::K::filter, at, name);
      f->a.push_back(std::move(e));
      if (is_op("(")) next(), call_args(*f);
      e = std::move(f);
    } else if (is_name("is")) {
      const auto at = next().at;
      auto t = make(Expr::K::test, at);
      if (is_name("not")) next(), t->negated = true;
      t->s = expect_name();
      if (!tests().count(t->s)) w_.syntax(at, "no test named '" + t->s + "'");
      t->a.push_back(std::move(e));
      if (is_op("(")) {
        next(), call_args(*t);
      } else {  // one bare argument: `is divisibleby 3`, `is sameas none`
        const Tok& n = peek();
        const bool starts_expr = n.k == Tok::K::string || n.k == Tok::K::integer || n.k == Tok::K::real ||
                                 is_op("[") || is_op("{") || is_op("-") ||
                                 (n.k == Tok::K::name && n.s != "else" && n.s != "or" && n.s != "and" &&
                                  n.s != "if" && n.s != "in" && n.s != "not" && n.s != "is");
        if (starts_expr) t->a.push_back(postfix(primary()));
      }
      e = std::move(t);
    } else {
      return e;
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// The parsed template

struct ChatTemplate::Program {
  std::string name;
  std::string source;  // newline-normalised; the AST's offsets point into it
  Where where;
  Body body;
};

namespace {

// ---------------------------------------------------------------------------------------------------------------
// Renderer

struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  std::size_t at = 0;
  std::string fn;  // the function, filter or test, for messages

  // The argument at position `i` or named `name`, else `fallback`.
  Value get(std::size_t i, const char* name, Value fallback = Value::undef("")) const {
    if (i < pos.size()) return pos[i];
    for (const auto& [k, v] : kw)
      if (k == name) return v;
    return fallback;
  }
};

using Frame = std::unordered_map<std::string, Value>;
enum class Flow { normal, brk, cont };

struct Renderer {
  const ChatTemplate::Program& prog;
  const ChatRenderOptions& opt;
  std::vector<std::shared_ptr<Frame>> frames;
  std::string* out = nullptr;
  Flow flow = Flow::normal;
  int depth = 0;
  std::int64_t iterations = 0;

  [[noreturn]] void fail(std::size_t at, const std::string& what) const {
    const auto line = prog.where.line_col(at).first;
    throw InputError(prog.name + ":" + std::to_string(line) + ": " + what);
  }
  void emit(const std::string& s, std::size_t at) {
    if (out->size() + s.size() > opt.max_output_bytes)
      fail(at, "rendered text exceeds " + std::to_string(opt.max_output_bytes) + " bytes");
    *out += s;
  }
  void check_size(std::size_t bytes, std::size_t at) const {
    if (bytes > opt.max_output_bytes) fail(at, "a value exceeds " + std::to_string(opt.max_output_bytes) + " bytes");
  }

  Value lookup(const std::string& name) const;
  void assign(const std::string& name, Value v) { (*frames.back())[name] = std::move(v); }

  Value eval(const Expr& e);
  Value eval_attr(const Expr& e);
  Value eval_item(const Expr& e);
  Value eval_slice(const Expr& e);
  Value eval_call(const Expr& e);
  Value eval_binary(const Expr& e);
  Value eval_unary(const Expr& e);
  Args eval_args(const Expr& e, std::size_t first);
  Value call(const Value& fn, Args& args);
  Value call_macro(const Node& macro, Args& args);

  void exec(const Body& body);
  void exec(const Node& n);
  void exec_if(const Node& n);
  void exec_for(const Node& n);
  void exec_set(const Node& n);
  std::string capture(const Body& body);
};

[[noreturn]] void undefined_error(Renderer& r, const Value& v, std::size_t at) {
  r.fail(at, v.s.empty() ? "a value is undefined" : v.s);
}

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

// x op y on 64-bit integers; Python's integers are unbounded, so an overflow is refused rather than wrapped.
std::int64_t checked(Renderer& r, char op, std::int64_t x, std::int64_t y, std::size_t at) {
  std::int64_t z = 0;
  const bool overflow = op == '+' ? __builtin_add_overflow(x, y, &z)
                        : op == '-' ? __builtin_sub_overflow(x, y, &z)
                                    : __builtin_mul_overflow(x, y, &z);
  if (overflow) r.fail(at, "integer overflow (the renderer's integers are 64-bit)");
  return z;
}

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

Value call_method(Renderer& r, const Value& obj, const std::string& name, Args& a, bool& found);

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

// Jinja normalises newlines and drops one trailing newline (keep_trailing_newline=False).
std::string normalise_source(std::string_view source) {
  std::string s;
  s.reserve(source.size());
  for (std::size_t k = 0; k < source.size(); ++k) {
    if (source[k] == '\r') {
      s += '\n';
      if (k + 1 < source.size() && source[k + 1] == '\n') ++k;
    } else {
      s += source[k];
    }
  }
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

// break/continue only make sense inside a for loop; Jinja rejects them elsewhere at compile time.
void check_loop_controls(const Body& body, bool in_loop, const Where& w) {
  for (const auto& n : body) {
    if ((n->k == Node::K::break_ || n->k == Node::K::continue_) && !in_loop)
      w.syntax(n->at, std::string("'") + (n->k == Node::K::break_ ? "break" : "continue") + "' outside a for loop");
    for (std::size_t k = 0; k < n->bodies.size(); ++k) {
      const bool loop_body = n->k == Node::K::for_ && k == 0;
      check_loop_controls(n->bodies[k], n->k == Node::K::macro ? false : in_loop || loop_body, w);
    }
  }
}

}  // namespace

ChatTemplate ChatTemplate::parse(std::string_view source, const std::string& name) {
  auto prog = std::make_shared<Program>();
  prog->name = name;
  prog->source = normalise_source(source);
  prog->where.name = &prog->name;
  prog->where.line_starts.push_back(0);
  for (std::size_t k = 0; k < prog->source.size(); ++k)
    if (prog->source[k] == '\n') prog->where.line_starts.push_back(k + 1);
  if (const auto bad = first_invalid_utf8(prog->source)) prog->where.syntax(*bad, "invalid UTF-8");
  Lexer lexer(prog->source, prog->where);
  Parser parser(lexer.run(), prog->where);
  prog->body = parser.parse_template();
  check_loop_controls(prog->body, false, prog->where);
  return ChatTemplate(std::move(prog));
}

const std::string& ChatTemplate::name() const { return program_->name; }

std::string ChatTemplate::render(const nlohmann::json& context, const ChatRenderOptions& options) const {
  if (!context.is_object()) throw InputError(program_->name + ": the render context must be a JSON object");
  Renderer r{*program_, options, {}, nullptr};
  auto top = std::make_shared<Frame>();
  for (auto it = context.begin(); it != context.end(); ++it) (*top)[it.key()] = from_json(it.value());
  r.frames.push_back(top);
  std::string out;
  r.out = &out;
  r.exec(program_->body);
  return out;
}

std::string render_chat(const ChatTemplate& tpl, const std::vector<std::pair<std::string, std::string>>& messages,
                        bool add_generation_prompt, const nlohmann::json& extra, const ChatRenderOptions& options) {
  nlohmann::json ctx = nlohmann::json::object();
  if (extra.is_object())
    for (auto it = extra.begin(); it != extra.end(); ++it)
      if (!it.value().is_null()) ctx[it.key()] = it.value();
  nlohmann::json msgs = nlohmann::json::array();
  for (const auto& [role, content] : messages) msgs.push_back({{"role", role}, {"content", content}});
  ctx["messages"] = std::move(msgs);
  ctx["add_generation_prompt"] = add_generation_prompt;
  return tpl.render(ctx, options);
}

namespace {

// tokenizer_config.json / chat_template.json's "chat_template": a string, or named templates ("default" first).
std::optional<std::string> template_in_json(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path + ": invalid JSON: " + without_library_tag(e.what()));
  }
  if (!j.is_object() || !j.contains("chat_template") || j["chat_template"].is_null()) return std::nullopt;
  const auto& t = j["chat_template"];
  if (t.is_string()) return t.get<std::string>();
  if (t.is_array())
    for (const auto& e : t)
      if (e.is_object() && e.value("name", "") == "default" && e.contains("template") && e["template"].is_string())
        return e["template"].get<std::string>();
  throw InputError(path + ": 'chat_template' must be a string or a list of {name, template} with a \"default\"");
}

}  // namespace

std::optional<std::pair<std::string, std::string>> chat_template_source(const std::string& dir) {
  namespace fs = std::filesystem;
  const auto jinja = (fs::path(dir) / "chat_template.jinja").string();
  if (fs::exists(jinja)) return std::pair{read_file(jinja), jinja};
  for (const char* f : {"chat_template.json", "tokenizer_config.json"}) {
    const auto path = (fs::path(dir) / f).string();
    if (!fs::exists(path)) continue;
    if (auto src = template_in_json(path)) return std::pair{*src, path + " chat_template"};
  }
  return std::nullopt;
}

std::optional<ChatTemplate> load_chat_template(const std::string& dir) {
  auto src = chat_template_source(dir);
  if (!src) return std::nullopt;
  return ChatTemplate::parse(src->first, src->second);
}

}  // namespace distill::model
