// model/chat_template.cpp: the public face of the chat template interpreter (model/chat_template_impl.h holds
// its pieces): parsing a template, rendering it, apply_chat_template's context, and finding a model's template.
#include "model/chat_template.h"

#include <filesystem>

#include "common/errors.h"
#include "common/fs.h"
#include "common/utf8.h"
#include "model/chat_template_impl.h"

namespace distill::model {

using namespace chat_detail;  // the interpreter's pieces (model/chat_template_impl.h)

namespace {

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
      if (e.is_object() && e.value("name", nlohmann::json()) == "default" && e.contains("template") && e["template"].is_string())
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
