// model/chat_template_parse.cpp: the chat template lexer, which applies transformers' whitespace settings, and the
// recursive-descent parser from its tokens to the AST.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <map>

#include "model/chat_template_impl.h"

namespace distill::model::chat_detail {

// ---------------------------------------------------------------------------------------------------------------
// Lexer: template text and tags, with transformers' whitespace control applied (trim_blocks, lstrip_blocks, -/+).

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

namespace {

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

}  // namespace

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
// Parser

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

}  // namespace distill::model::chat_detail
