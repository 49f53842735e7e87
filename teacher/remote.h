// teacher/remote.h: the remote teacher: `generate --teacher http(s)://HOST:PORT/v1 --teacher-model NAME` draws
// its samples from an OpenAI-compatible endpoint (vLLM, SGLang, llama.cpp's server, DeepSeek's API,
// `distill serve`) with N requests in flight, retries with backoff, spending guards, and the same resume keys,
// summary and store rows as the local engine. Each request's lineage (or failure) goes to remote_requests.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "net/openai_wire.h"
#include "teacher/generate.h"

namespace distill::teacher {

// Whether --teacher names an endpoint (http:// or https://) rather than a model directory.
bool is_url_teacher(std::string_view teacher);

// The models row of a remote teacher: path the URL without credentials, arch "remote:MODEL", and an identity
// (the sha256 column) from the URL and model alone, so a rerun against the same endpoint resumes.
dataset::ModelRow remote_model_row(const GenerateConfig& cfg);

GenerateSummary generate_remote(dataset::Store& store, const GenerateConfig& cfg, const std::string& config_toml,
                                const ProgressFn& progress);

// The completion stored for a remote choice. Reasoning sent apart (reasoning_content) becomes the think block,
// "<think>\n{reasoning}\n</think>\n\n{content}" give or take the newlines already there; content that opens its
// own think block is kept as it is; content that only closes one (the template opened it, as DeepSeek-R1's does)
// gets "<think>\n" in front, as a local generation does.
std::string remote_completion(const net::Choice& c);

// The stored finish reason: "length", "eos" or "stop". OpenAI's "stop" covers both EOS and a stop string;
// vLLM's stop_reason and SGLang's matched_stop tell them apart (null: EOS), and with no stop strings sent it can
// only be EOS. nullopt for a reason that is neither (content_filter, tool_calls): no honest sample is stored.
std::optional<std::string> remote_finish_reason(const net::Choice& c, bool stop_strings_sent);

}  // namespace distill::teacher
