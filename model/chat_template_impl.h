// model/chat_template_impl.h: the chat template interpreter's internals, shared by model/chat_template*.cpp and
// included by nothing else: values, the lexer, the AST, the parser, the renderer, and the helpers used across files.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/errors.h"
#include "model/chat_template.h"

namespace distill::model::chat_detail {

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

// Defined in model/chat_template_value.cpp.
const Value* dict_find(const Dict& d, std::string_view key);
void dict_set(Dict& d, const std::string& key, Value v);
Value from_json(const nlohmann::json& j);

// ---------------------------------------------------------------------------------------------------------------
// Text helpers: Python's str semantics over UTF-8 (indexing counts code points); in model/chat_template_value.cpp.

std::vector<std::size_t> code_points(std::string_view s);
std::size_t length_cp(std::string_view s);
std::uint32_t decode_at(std::string_view s, std::size_t p, std::size_t& n);
bool is_py_space(std::uint32_t c);
std::string py_strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
std::string ascii_lower(std::string s);
std::string ascii_upper(std::string s);
std::string replace_all(const std::string& s, const std::string& from, const std::string& to, std::int64_t count);
std::string py_float(double v);
std::string py_repr(const Value& v);
std::string to_str(const Value& v);
bool truthy(const Value& v);
std::string type_name(const Value& v);

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
// Parser (model/chat_template_parse.cpp)

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

}  // namespace distill::model::chat_detail

namespace distill::model {

// ---------------------------------------------------------------------------------------------------------------
// The parsed template

struct ChatTemplate::Program {
  std::string name;
  std::string source;  // newline-normalised; the AST's offsets point into it
  chat_detail::Where where;
  chat_detail::Body body;
};

}  // namespace distill::model

namespace distill::model::chat_detail {

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

// Defined in model/chat_template_eval.cpp.
std::string need_str(Renderer& r, const Value& v, const Args& a, const char* what);
std::int64_t need_int(Renderer& r, const Value& v, const Args& a, const char* what);
List iterate(Renderer& r, const Value& v, std::size_t at);
bool equal(const Value& a, const Value& b);
int compare_values(Renderer& r, const Value& a, const Value& b, std::size_t at, const std::string& op);
bool contains(Renderer& r, const Value& container, const Value& item, std::size_t at);
Value get_item(Renderer& r, const Value& obj, const Value& key, std::size_t at);
Value arithmetic(Renderer& r, const std::string& op, const Value& a, const Value& b, std::size_t at);

// ---------------------------------------------------------------------------------------------------------------
// Built-ins: filters, tests, str/dict methods and globals (model/chat_template_filters.cpp)

using FilterFn = std::function<Value(Renderer&, const Value&, Args&)>;
using TestFn = std::function<bool(Renderer&, const Value&, Args&)>;
const std::unordered_map<std::string, FilterFn>& filters();
const std::unordered_map<std::string, TestFn>& tests();
const std::unordered_map<std::string, Value>& globals();
// obj.name(...) for Python's str and dict methods; `found` is false when `obj` has no such method.
Value call_method(Renderer& r, const Value& obj, const std::string& name, Args& a, bool& found);

}  // namespace distill::model::chat_detail
