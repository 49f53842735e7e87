// student/tokenizer_export.cpp: see tokenizer_export.h.
#include "student/tokenizer_export.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <tuple>

#include "common/errors.h"

namespace distill::student {

using json = nlohmann::ordered_json;

namespace {

constexpr const char* kSpace = "\xE2\x96\x81";  // U+2581

json added_token(int id, const std::string& text, bool special) {
  return {{"id", id},          {"content", text},   {"single_word", false}, {"lstrip", false},
          {"rstrip", false},   {"normalized", false}, {"special", special}};
}

// Every (left, right) split of a normal piece into two vocabulary entries, ranked as SentencePiece's BPE merges:
// the better the merged piece's score, the earlier; ties by the ids of the parts.
json bpe_merges(const model::SpModel& m, const std::map<std::string, int>& vocab) {
  std::vector<std::tuple<float, int, int, int>> ranked;  // (-score, piece id, left id, right id)
  for (std::size_t id = 0; id < m.pieces.size(); ++id) {
    const auto& p = m.pieces[id];
    if (p.type != model::SpPiece::normal) continue;
    for (std::size_t k = 1; k < p.text.size(); ++k) {
      if ((static_cast<unsigned char>(p.text[k]) & 0xC0) == 0x80) continue;  // inside a UTF-8 character
      const auto l = vocab.find(p.text.substr(0, k)), r = vocab.find(p.text.substr(k));
      if (l == vocab.end() || r == vocab.end()) continue;
      if (m.pieces[l->second].type != model::SpPiece::normal || m.pieces[r->second].type != model::SpPiece::normal) continue;
      ranked.emplace_back(-p.score, int(id), l->second, r->second);
    }
  }
  std::sort(ranked.begin(), ranked.end());
  json merges = json::array();
  for (const auto& [s, id, l, r] : ranked) merges.push_back({m.pieces[l].text, m.pieces[r].text});
  return merges;
}

}  // namespace

namespace {
[[noreturn]] void refuse(const std::string& source, const std::string& what) {
  throw InputError(source + ": " + what + " (export writes SentencePiece BPE models with the identity "
                   "normalization and byte fallback, as `distill tokenizer train` makes them)");
}
}  // namespace

void check_exportable(const model::SpModel& m, const std::string& source) {
  if (m.model_type != "bpe") refuse(source, "model type " + m.model_type + " is not exported");
  if (m.normalizer != "identity") refuse(source, "normalization rule '" + m.normalizer + "' is not exported");
  if (m.remove_extra_whitespaces) refuse(source, "remove_extra_whitespaces is set");
  if (m.treat_whitespace_as_suffix) refuse(source, "treat_whitespace_as_suffix is set");
  if (!m.escape_whitespaces) refuse(source, "escape_whitespaces is off");
  if (!m.byte_fallback) refuse(source, "byte_fallback is off");
}

std::string tokenizer_json_from_sentencepiece(const model::SpModel& m, const std::string& source) {
  check_exportable(m, source);
  auto refuse = [&](const std::string& what) { student::refuse(source, what); };
  std::map<std::string, int> vocab;
  json vocab_json = json::object(), added = json::array();
  std::string unk, bos;
  int bos_id = -1;
  for (std::size_t id = 0; id < m.pieces.size(); ++id) {
    const auto& p = m.pieces[id];
    if (!vocab.emplace(p.text, int(id)).second) refuse("piece '" + p.text + "' appears twice");
    vocab_json[p.text] = id;
    if (p.type == model::SpPiece::unknown) unk = p.text;
    if (p.type == model::SpPiece::control && p.text == "<s>") bos = p.text, bos_id = int(id);
    if (p.type == model::SpPiece::control || p.type == model::SpPiece::unknown)
      added.push_back(added_token(int(id), p.text, true));
    if (p.type == model::SpPiece::user_defined) added.push_back(added_token(int(id), p.text, false));
  }
  if (unk.empty()) refuse("no unknown piece");
  json normalizer = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpace}};
  json decoders = json::array({json{{"type", "Replace"}, {"pattern", {{"String", kSpace}}}, {"content", " "}},
                               json{{"type", "ByteFallback"}}, json{{"type", "Fuse"}}});
  if (m.add_dummy_prefix) {
    normalizer = {{"type", "Sequence"}, {"normalizers", json::array({json{{"type", "Prepend"}, {"prepend", kSpace}},
                                                                      normalizer})}};
    decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
  }
  json post = nullptr;
  if (bos_id >= 0) {
    auto seq = [](const char* id) { return json{{"Sequence", {{"id", id}, {"type_id", 0}}}}; };
    const json bos_tok = {{"SpecialToken", {{"id", bos}, {"type_id", 0}}}};
    post = {{"type", "TemplateProcessing"},
            {"single", json::array({bos_tok, seq("A")})},
            {"pair", json::array({bos_tok, seq("A"), bos_tok, seq("B")})},
            {"special_tokens", {{bos, {{"id", bos}, {"ids", {bos_id}}, {"tokens", {bos}}}}}}};
  }
  json t = {{"version", "1.0"},
            {"truncation", nullptr},
            {"padding", nullptr},
            {"added_tokens", added},
            {"normalizer", normalizer},
            {"pre_tokenizer", nullptr},
            {"post_processor", post},
            {"decoder", {{"type", "Sequence"}, {"decoders", decoders}}},
            {"model", {{"type", "BPE"},
                       {"dropout", nullptr},
                       {"unk_token", unk},
                       {"continuing_subword_prefix", nullptr},
                       {"end_of_word_suffix", nullptr},
                       {"fuse_unk", true},
                       {"byte_fallback", true},
                       {"ignore_merges", false},
                       {"vocab", vocab_json},
                       {"merges", bpe_merges(m, vocab)}}}};
  return t.dump(2) + "\n";
}

std::string tokenizer_config_json(const std::string& bos, const std::string& eos, const std::string& pad,
                                  const std::string& unk, std::int64_t model_max_length) {
  json c = {{"tokenizer_class", "PreTrainedTokenizerFast"}, {"model_max_length", model_max_length},
            {"clean_up_tokenization_spaces", false}};
  if (!bos.empty()) c["bos_token"] = bos;
  if (!eos.empty()) c["eos_token"] = eos;
  if (!pad.empty()) c["pad_token"] = pad;
  if (!unk.empty()) c["unk_token"] = unk;
  return c.dump(2) + "\n";
}

const char* const kR1ChatTemplate =
    "{{ bos_token }}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'system' %}{{ message['content'] + '\\n' }}"
    "{%- elif message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\\n' }}"
    "{%- elif message['role'] == 'assistant' %}{{ 'Assistant: ' + message['content'] + eos_token + '\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ 'Assistant: <think>\\n' }}{%- endif %}";

}  // namespace distill::student
