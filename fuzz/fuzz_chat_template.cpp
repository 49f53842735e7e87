// fuzz/fuzz_chat_template.cpp: a chat template (model/chat_template.h), parsed and, when it parses, rendered with
// a system, a user and an assistant message under tight runaway guards.
#include <string>

#include "fuzz/fuzz_common.h"
#include "model/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace distill::model;
  distill::fuzz::refusing([&] {
    const auto tpl = ChatTemplate::parse(distill::fuzz::bytes(data, size), "fuzz.jinja");
    ChatRenderOptions o;
    o.now_unix = 0;
    o.max_output_bytes = 1 << 16;
    o.max_loop_iterations = 10'000;
    o.max_call_depth = 16;
    render_chat(tpl, {{"system", "Be brief."}, {"user", "What is 2 + 2?"}, {"assistant", "4"}}, true,
                {{"bos_token", "<s>"}, {"eos_token", "</s>"}}, o);
  });
  return 0;
}
