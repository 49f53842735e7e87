// tests/test_chat_template.cpp: the chat-template renderer: byte parity with transformers' apply_chat_template on
// the published family templates (fixtures from tests/fixtures/hf/gen_chat_templates.py), the interpreter's tricky
// parts (whitespace control, loops, namespaces, slicing, filters, undefined values, string escapes; expectations
// taken from jinja2 3.1.6 with transformers' settings), its syntax errors, and its robustness to mutated templates.
#include <catch2/catch.hpp>

#include <fstream>
#include <map>

#include "common/errors.h"
#include "model/chat_template.h"
#include "test_paths.h"
#include "tests/helpers.h"

using namespace distill;
using model::ChatTemplate;
using nlohmann::json;

namespace {

const std::string kChatDir = std::string(DISTILL_HF_FIXTURES) + "/chat/";

std::string render(const std::string& src, const json& ctx = json::object()) {
  return ChatTemplate::parse(src, "t.jinja").render(ctx);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no InputError)";
}

json expected_doc() {
  std::ifstream in(kChatDir + "expected.json");
  REQUIRE(in.good());
  return json::parse(in);
}

ChatTemplate family_template(const json& doc, const std::string& family) {
  const auto file = doc["families"][family]["template"].get<std::string>();
  return ChatTemplate::parse(test::read_text(kChatDir + file), file);
}

// What apply_chat_template puts in the context: the tokenizer's special tokens, the caller's kwargs, messages.
json case_context(const json& doc, const json& c) {
  json ctx = doc["families"][c["family"].get<std::string>()]["tokens"];
  for (auto it = c["extra"].begin(); it != c["extra"].end(); ++it) ctx[it.key()] = it.value();
  ctx["messages"] = c["messages"];
  ctx["add_generation_prompt"] = true;
  return ctx;
}

}  // namespace

TEST_CASE("chat template: every family and conversation renders exactly as transformers does") {
  const json doc = expected_doc();
  std::map<std::string, int> passed, total;
  for (const auto& c : doc["cases"]) {
    const auto family = c["family"].get<std::string>();
    const auto tpl = family_template(doc, family);
    const auto got = tpl.render(case_context(doc, c));
    const auto want = c["expected"].get<std::string>();
    ++total[family];
    if (got == want) {
      ++passed[family];
      continue;
    }
    FAIL_CHECK(family << "/" << c["name"].get<std::string>() << "\n--- expected ---\n"
                      << want << "\n--- got ---\n" << got << "\n---");
  }
  CHECK(total.size() == 5);
  for (const auto& [family, n] : total) {
    INFO(family);
    CHECK(passed[family] == n);
    CHECK(n >= 5);
  }
}

TEST_CASE("chat template: render_chat builds apply_chat_template's context") {
  const json doc = expected_doc();
  for (const auto& c : doc["cases"]) {
    if (c["family"] != "qwen3" || c["name"] != "multi_turn_think_off") continue;
    std::vector<std::pair<std::string, std::string>> messages;
    for (const auto& m : c["messages"]) messages.emplace_back(m["role"], m["content"]);
    json extra = c["extra"];
    extra["bos_token"] = nullptr;  // a null token stays undefined, as for a tokenizer without one
    extra["eos_token"] = "<|im_end|>";
    CHECK(model::render_chat(family_template(doc, "qwen3"), messages, true, extra) == c["expected"].get<std::string>());
    return;
  }
  FAIL("expected.json has no qwen3/multi_turn_think_off case");
}

TEST_CASE("chat template: a template's raise_exception is an InputError with its message and line") {
  const json doc = expected_doc();
  REQUIRE(doc["errors"].size() >= 1);
  for (const auto& c : doc["errors"]) {
    const auto tpl = family_template(doc, c["family"].get<std::string>());
    const std::string msg = error_of([&] { tpl.render(case_context(doc, c)); });
    INFO(msg);
    CHECK(msg.find(c["error"].get<std::string>()) != std::string::npos);
    CHECK(msg.rfind("mistral.jinja:", 0) == 0);
  }
}

TEST_CASE("chat template: whitespace control follows trim_blocks and lstrip_blocks") {
  CHECK(render("  {% if true %}\n  x\n  {% endif %}\n  y {# c #}\nz") == "  x\n  y z");
  CHECK(render("a  {%- if true -%}  b  {%- endif -%}\n\n c") == "abc");
  CHECK(render("{{ 'a' }}\n{{ 'b' }}\n") == "a\nb");  // no trim after }}, one trailing newline dropped
  CHECK(render("x\r\n{% if true %}\r\ny{% endif %}") == "x\ny");
  CHECK(render("  {%+ if true %}x{% endif +%}\n") == "  x");
}

TEST_CASE("chat template: for loops, loop variables, filters on the loop, else, break and continue") {
  const json ms = {{"ms", {"a", "b", "c"}}};
  CHECK(render("{% for m in ms %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}"
               "{{ loop.revindex }};{% endfor %}", ms) == "10TrueFalse33;21FalseFalse32;32FalseTrue31;");
  CHECK(render("{% for m in ms if m != 'b' %}{{ loop.index }}{{ m }}{% else %}none{% endfor %}|"
               "{% for m in [] %}x{% else %}empty{% endfor %}", ms) == "1a2c|empty");
  CHECK(render("{% for m in ms %}{% if m == 'b' %}{% continue %}{% endif %}{% if m == 'd' %}{% break %}{% endif %}"
               "{{ m }}{% endfor %}", {{"ms", {"a", "b", "c", "d", "e"}}}) == "ac");
  CHECK(render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", {{"d", {{"a", 1}, {"b", 2}}}}) == "a=1;b=2;");
  // A name set inside a loop lives for one iteration only.
  CHECK(render("{% set x = 1 %}{% for i in range(3) %}{% set x = x + 1 %}{{ x }}{% endfor %}{{ x }}") == "2221");
}

TEST_CASE("chat template: namespaces carry state out of loops, macros and block set work") {
  CHECK(render("{% set ns = namespace(n=0, s='') %}{% for x in [1,2,3] %}{% set ns.n = ns.n + x %}"
               "{% set ns.s = ns.s ~ x %}{% endfor %}{{ ns.n }} {{ ns.s }}") == "6 123");
  CHECK(render("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}"
               "{{ greet('a') }} {{ greet('b', '?') }} {{ greet(name='c') }}") == "Hi a! Hi b? Hi c!");
  CHECK(render("{% set block %}inside {{ n }}{% endset %}[{{ block }}]", {{"n", 7}}) == "[inside 7]");
  CHECK_THROWS_AS(render("{% set ns = 1 %}{% set ns.x = 2 %}"), InputError);
  CHECK_THROWS_AS(render("{% set ns = namespace() %}{% set ns._x = 2 %}"), InputError);
}

TEST_CASE("chat template: slicing and indexing follow Python, by code point") {
  CHECK(render("{{ ms[1:] }} {{ ms[::-1] }} {{ ms[-1] }} {{ ms[0:2] }} {{ 'h\xc3\xa9llo'[1:3] }} {{ 'abc'[::-1] }}"
               " {{ ms[5] }}|", {{"ms", {"a", "b", "c"}}}) == "['b', 'c'] ['c', 'b', 'a'] c ['a', 'b'] \xc3\xa9l cba |");
  CHECK_THROWS_AS(render("{{ [1][::0] }}"), InputError);
}

TEST_CASE("chat template: filters, string and dict methods") {
  const json ctx = {{"ms", {"a", "b", "c"}}, {"d", {{"k", "v"}}}};
  CHECK(render("{{ '  x  '|trim }}|{{ ms|length }}|{{ 'AbC'|lower }}{{ 'abc'|upper }}|{{ ms|join(', ') }}|"
               "{{ ms|first }}{{ ms|last }}|{{ 'a-b-c'|replace('-', '+') }}|{{ 'hello world'|capitalize }}|"
               "{{ '42'|int + 1 }}|{{ d|items|list }}|{{ none|default('dflt') }}{{ missing|default('dflt') }}"
               "{{ missing|d('x') }}", ctx) == "x|3|abcABC|a, b, c|ac|a+b+c|Hello world|43|[('k', 'v')]|Nonedfltx");
  CHECK(render("{{ 'a,b,,c'.split(',') }} {{ '  a  b '.split() }} {{ 'xxhixx'.strip('x') }} "
               "{{ '\\n\\nhi\\n'.lstrip('\\n') }}|{{ 'hi'.startswith('h') }}{{ 'hi'.endswith(('x', 'i')) }}|"
               "{{ d.get('k') }}{{ d.get('z', 'dz') }}{{ d.get('z') }}|{{ d.keys()|list }}", ctx) ==
        "['a', 'b', '', 'c'] ['a', 'b'] hi hi\n|TrueTrue|vdzNone|['k']");
  const json users = {{"users", {{{"name", "b"}, {"age", 3}}, {{"name", "a"}, {"age", 1}, {"x", 1}}}}};
  CHECK(render("{{ users|selectattr('age', 'gt', 1)|map(attribute='name')|join(',') }} "
               "{{ users|rejectattr('x')|map(attribute='name')|list }} {{ users|selectattr('x')|list|length }}",
               users) == "b ['b'] 1");
  CHECK(render("{{ 'line1\\nline2\\n\\nline4'|indent(2) }}|{{ 'a\\nb'|indent(2, true) }}") ==
        "line1\n  line2\n\n  line4|  a\n  b");
}

TEST_CASE("chat template: tojson is transformers' json.dumps (ensure_ascii off, key order kept)") {
  CHECK(render("{% set d = {'b': 1, 'a': [1, {}]} %}{{ d|tojson }}|{{ d|tojson(indent=2) }}|"
               "{{ '\xc3\xa9\"\\n<'|tojson }}|{{ [1, 2.5, none, true]|tojson }}|{{ d|tojson(sort_keys=true) }}") ==
        "{\"b\": 1, \"a\": [1, {}]}|{\n  \"b\": 1,\n  \"a\": [\n    1,\n    {}\n  ]\n}|\"\xc3\xa9\\\"\\n<\"|"
        "[1, 2.5, null, true]|{\"a\": [1, {}], \"b\": 1}");
  CHECK_THROWS_AS(render("{{ missing|tojson }}"), InputError);
}

TEST_CASE("chat template: undefined values print empty, are falsy, and fail where Jinja fails") {
  CHECK(render("{{ missing }}|{{ missing is defined }}|{{ missing is undefined }}|{{ d.nope is defined }}|"
               "{{ d.nope }}|{% if not missing %}falsy{% endif %}|{{ missing|length }}|{{ d.nope == none }}",
               {{"d", json::object()}}) == "|False|True|False||falsy|0|False");
  CHECK(render("{% for x in missing %}x{% endfor %}{{ d.nope ~ 'x' }}", {{"d", json::object()}}) == "x");
  const std::string chained = error_of([] { render("{{ d.b.c }}", {{"d", json::object()}}); });
  CHECK(chained.find("t.jinja:1: 'dict object' has no attribute 'b'") != std::string::npos);
  CHECK(error_of([] { render("\n{{ a.b }}"); }).find("t.jinja:2: 'a' is undefined") != std::string::npos);
  CHECK_THROWS_AS(render("{{ d.b + 'x' }}", {{"d", json::object()}}), InputError);
}

TEST_CASE("chat template: literals, string escapes, arithmetic, tests and Python's printing") {
  CHECK(render("{{ 'a\\nb' }}|{{ 'tab\\there' }}|{{ \"dq'\" }}|{{ 'sq\\'' }}|{{ '\\u00e9\\x41' }}|{{ '\\boxed' }}|"
               "{{ 'q\\d' }}") == "a\nb|tab\there|dq'|sq'|\xc3\xa9" "A|\boxed|q\\d");
  CHECK(render("{{ 1 + 2 * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 7 / 2 }} "
               "{{ 1.5 + 1 }} {{ 'a' ~ 1 ~ none }} {{ [1] + [2] }} {{ 'ab' * 2 }} {{ 1 if false }}|"
               "{{ 'y' if 1 > 0 else 'n' }}") == "7 3 -4 1 2 1024 3.5 2.5 a1None [1, 2] abab |y");
  CHECK(render("{{ 'b' in 'abc' }} {{ 'z' not in ['a'] }} {{ 'k' in d }} {{ 3 is odd }} {{ 4 is divisibleby 2 }} "
               "{{ 'x' is string }} {{ d is mapping }} {{ ms is iterable }} {{ ms is sequence }} {{ 1.5 is number }} "
               "{{ true is true }} {{ false is false }} {{ none is none }}",
               {{"ms", {1}}, {"d", {{"k", 1}}}}) == "True True True True True True True True True True True True True");
  CHECK(render("{{ [1, 'a', none, true, 1.5, {'k': (1, 2)}] }} {{ 1e16 }} {{ 1.5e-5 }} {{ 0.1 + 0.2 }} {{ 1/3 }} "
               "{{ 3.0 }}") == "[1, 'a', None, True, 1.5, {'k': (1, 2)}] 1e+16 1.5e-05 0.30000000000000004 "
                               "0.3333333333333333 3.0");
  CHECK(render("{{ True and False }} {{ None }} {{ 0 or 'x' }}") == "False None x");
}

TEST_CASE("chat template: strftime_now takes a fixed time from the render options") {
  const auto tpl = ChatTemplate::parse("{{ strftime_now('%d %b %Y') }}|{{ strftime_now is defined }}", "t");
  model::ChatRenderOptions opt;
  opt.now_unix = 1742040000;  // 2025-03-15 12:00 UTC
  CHECK(tpl.render(json::object(), opt) == "15 Mar 2025|True");
}

TEST_CASE("chat template: runaway templates are refused, not crashed") {
  model::ChatRenderOptions opt;
  opt.max_output_bytes = 1000;
  const auto big = ChatTemplate::parse("{% for i in range(100000) %}xxxxxxxxxx{% endfor %}", "t");
  CHECK_THROWS_AS(big.render(json::object(), opt), InputError);
  const auto rec = ChatTemplate::parse("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "t");
  CHECK(error_of([&] { rec.render(json::object()); }).find("nested deeper") != std::string::npos);
  opt = {};
  opt.max_loop_iterations = 50;
  const auto loops = ChatTemplate::parse("{% for i in range(10) %}{% for j in range(10) %}{% endfor %}{% endfor %}", "t");
  CHECK_THROWS_AS(loops.render(json::object(), opt), InputError);
  CHECK_THROWS_AS(render("{{ 'x' * 100000000000 }}"), InputError);
  CHECK_THROWS_AS(render("{{ 9223372036854775807 + 1 }}"), InputError);
  CHECK_THROWS_AS(ChatTemplate::parse("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}", "t"), InputError);
}

TEST_CASE("chat template: bad templates are InputErrors naming line and column") {
  auto syntax = [](const std::string& src) { return error_of([&] { ChatTemplate::parse(src, "bad.jinja"); }); };
  CHECK(syntax("ok\n{% if x %}\nno end").find("bad.jinja:3:7: unexpected end of template: expected '{% endif %}'") !=
        std::string::npos);
  CHECK(syntax("a {{ x ").find("bad.jinja:1:3: unterminated tag: expected '}}'") != std::string::npos);
  CHECK(syntax("{% frobnicate %}").find("bad.jinja:1:4: unknown tag 'frobnicate'") != std::string::npos);
  CHECK(syntax("{% for x in y %}{% endif %}").find("bad.jinja:1:20: unknown tag 'endif', expected '{% endfor %}'") != std::string::npos);
  CHECK(syntax("{% endfor %}").find("bad.jinja:1:4: unknown tag 'endfor'") != std::string::npos);
  CHECK(syntax("\n  {{ x | nosuch }}").find("bad.jinja:2:8: no filter named 'nosuch'") != std::string::npos);
  CHECK(syntax("{{ 'abc }}").find("bad.jinja:1:4: unterminated string literal") != std::string::npos);
  CHECK(syntax("{# open").find("bad.jinja:1:1: unterminated comment") != std::string::npos);
  CHECK(syntax("{% break %}").find("bad.jinja:1:4: 'break' outside a for loop") != std::string::npos);
  CHECK(syntax("{{ (1 }}").find("bad.jinja:1:") != std::string::npos);
  CHECK(syntax("{% include 'x' %}").find("unsupported tag 'include'") != std::string::npos);
  CHECK_THROWS_AS(render("{{ raise_exception('boom') }}"), InputError);
  CHECK(error_of([] { render("\n\n{{ 1 | int }}{{ x() }}", {{"x", 1}}); }).find("t.jinja:3: 'int' object is not callable") !=
        std::string::npos);
}

TEST_CASE("chat template: mutated family templates parse and render or refuse, never crash or hang") {
  const json doc = expected_doc();
  std::vector<std::string> seeds;
  for (auto it = doc["families"].begin(); it != doc["families"].end(); ++it)
    seeds.push_back(test::read_text(kChatDir + it.value()["template"].get<std::string>()));
  json ctx = {{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"add_generation_prompt", true}, {"date_string", "1 Jan 2025"},
              {"messages", {{{"role", "system"}, {"content", "sys"}}, {{"role", "user"}, {"content", "hi"}},
                            {{"role", "assistant"}, {"content", "<think>r</think>a"}}, {{"role", "user"}, {"content", "q"}}}}};
  model::ChatRenderOptions opt;
  opt.max_output_bytes = 1 << 20;
  opt.max_loop_iterations = 100000;
  test::survive_mutations(seeds, 3000, 20260306, [&](const std::string& src) {
    ChatTemplate::parse(src, "mut.jinja").render(ctx, opt);
  });
}

TEST_CASE("chat template: tokenizer_config.json's named templates are read, and any other shape is refused by file") {
  test::TempDir d;
  auto with = [&](const std::string& config) {
    std::ofstream(d / "tokenizer_config.json") << config;
    return model::load_chat_template(d.path);
  };
  CHECK(with(R"({"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]})")
            ->render(json::object()) == "D");
  CHECK_FALSE(with(R"({"bos_token": "<s>"})").has_value());
  // a name of another type (found by the sanitizer build's mutations: it escaped as a JSON type error)
  for (const char* bad : {R"({"chat_template": [{"name": 5, "template": "T"}]})", R"({"chat_template": 5})",
                          R"({"chat_template": [{"name": "default", "template": 7}]})"})
    CHECK_THROWS_WITH(with(bad), Catch::Contains("tokenizer_config.json") && Catch::Contains("'chat_template' must be"));
}
