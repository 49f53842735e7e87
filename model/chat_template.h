// model/chat_template.h: renders Hugging Face chat templates (the Jinja2 subset they use) exactly as transformers'
// apply_chat_template(..., tokenize=False) does: the same environment (trim_blocks, lstrip_blocks, loop controls),
// the same extra globals (raise_exception, strftime_now, namespace, dict) and its tojson filter.
// Parsing is a pure function over the template's bytes; rendering is a pure function of the context (and the clock,
// only when a template calls strftime_now and no fixed time is given).
// Bad templates and failing renders throw distill::InputError naming the template, line and problem.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace distill::model {

struct ChatRenderOptions {
  // The time strftime_now formats (seconds since the epoch, formatted as UTC); unset: the wall clock, local time,
  // as transformers' datetime.now(). Templates such as Llama 3.x read `date_string` from the context first, so a
  // fixed date can also be passed there.
  std::optional<std::int64_t> now_unix;
  // Runaway-template guards: the rendered text's size, loop iterations over the whole render, call depth.
  std::size_t max_output_bytes = 16u << 20;
  std::int64_t max_loop_iterations = 1'000'000;
  int max_call_depth = 64;
};

class ChatTemplate {
 public:
  // Parses `source` once; `name` (a file name or family) prefixes every error message: "NAME:LINE:COL: ...".
  static ChatTemplate parse(std::string_view source, const std::string& name);

  // Renders with `context` (an object: messages, add_generation_prompt, bos_token, ...). Thread-safe.
  std::string render(const nlohmann::json& context, const ChatRenderOptions& options = {}) const;

  const std::string& name() const;

  struct Program;  // the parsed template (model/chat_template_impl.h)

 private:
  explicit ChatTemplate(std::shared_ptr<const Program> program) : program_(std::move(program)) {}
  std::shared_ptr<const Program> program_;
};

// apply_chat_template's context: messages [{role, content}], add_generation_prompt, then every key of `extra`
// (bos_token, eos_token, enable_thinking, date_string, ...; a null value leaves the name undefined, as transformers
// leaves out special tokens a tokenizer lacks).
std::string render_chat(const ChatTemplate& tpl, const std::vector<std::pair<std::string, std::string>>& messages,
                        bool add_generation_prompt, const nlohmann::json& extra = nlohmann::json::object(),
                        const ChatRenderOptions& options = {});

// The chat template a model directory ships, as transformers finds it: chat_template.jinja (5.x), else
// chat_template.json's or tokenizer_config.json's "chat_template" (a string, or a list of {name, template} of
// which "default" is used). nullopt when the model has none; InputError naming the file when it is malformed or
// the template does not parse.
std::optional<ChatTemplate> load_chat_template(const std::string& dir);
// The same template's text and where it was found, unparsed (export copies it into GGUF metadata).
std::optional<std::pair<std::string, std::string>> chat_template_source(const std::string& dir);

}  // namespace distill::model
