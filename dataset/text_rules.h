// dataset/text_rules.h: the text measures curation decides on, as pure functions over UTF-8 bytes: the R1
// response format, scripts used in the reasoning, paragraph length, code blocks, n-gram repetition, and the
// word/shingle views that dedup and decontamination hash. No store, no state; invalid UTF-8 bytes count as
// one unknown character each, never as an error (the store only holds valid UTF-8 anyway).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace distill::dataset {

// "" when the completion is one `<think>` block, closed once, followed by a final answer in \boxed{...} with
// balanced braces; otherwise what is wrong ("no <think>", "2 </think>", "no \boxed{} after </think>", ...).
std::string format_problem(std::string_view completion);

// The text inside the think block (everything after <think>, up to </think> or the end); the whole completion
// when there is no <think>.
std::string_view reasoning_of(std::string_view completion);

// A completion as a reader sees it: the think block (after <think>, or from the start when only </think> is
// there) and the answer after </think>, each without surrounding newlines. Without </think>: an opened block
// that never closes is all reasoning (open_unclosed), and text with no think tags at all is all answer.
struct CompletionParts {
  std::string think, answer;
  bool open_unclosed = false;
};
CompletionParts split_completion(std::string_view completion);

// Letters per writing system: "latin", "cyrillic", "cjk" (Han and kana together: Japanese mixes them), "hangul",
// "arabic", "hebrew", "devanagari", "thai". Greek is left out on purpose: math reasoning uses it (pi, theta,
// sigma). Digits, punctuation and symbols are not letters.
std::map<std::string, std::int64_t> script_letters(std::string_view text);

// Letters outside the most used script: 0 for single-script text.
std::int64_t foreign_script_letters(const std::map<std::string, std::int64_t>& letters);

// Longest paragraph (blocks separated by a blank line), in code points.
std::int64_t longest_paragraph(std::string_view text);

// A Markdown code fence (```) or tilde fence (~~~) at the start of a line.
bool has_code_block(std::string_view text);

// 1 - distinct / total over word n-grams (0 for text with fewer than n words): 0 is no repetition, values
// near 1 are degenerate loops.
double repetition_ratio(std::string_view text, int n);

// Lowercased (ASCII) words: runs of letters/digits (ASCII or alphabetic scripts); every CJK character is a word
// by itself; spaces, punctuation and symbols (ASCII or not: NBSP, ×, ², CJK punctuation) separate.
std::vector<std::string_view> words(std::string_view text, std::string& lowered);

// words() plus every other non-blank character (an operator, a bracket, a backslash, ×, ≤) as a token of
// its own: "7+5=2" is [7, +, 5, =, 2]. Near-duplicate shingles are built from these, so "7+5" and "7-5" differ.
std::vector<std::string_view> tokens(std::string_view text, std::string& lowered);

// Whitespace collapsed to one space, ends trimmed, ASCII lowercased: exact-duplicate identity.
std::string normalize_text(std::string_view text);

// 64-bit hashes of the word n-grams of `text` (distinct, sorted). Fewer than n words: one hash of all of them.
std::vector<std::uint64_t> ngram_hashes(std::string_view text, int n);
// The same over tokens(): the shingles of near-duplicate detection.
std::vector<std::uint64_t> shingle_hashes(std::string_view text, int n);
// The same hashes per starting position of `w` (from words()), in order, duplicates kept.
std::vector<std::uint64_t> positional_ngram_hashes(const std::vector<std::string_view>& w, int n);

// FNV-1a 64 of bytes, then a finaliser: the one string hash these measures use (stable across runs).
std::uint64_t hash64(std::string_view bytes);

}  // namespace distill::dataset
