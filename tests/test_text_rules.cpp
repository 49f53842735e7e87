// tests/test_text_rules.cpp: the pure text measures curation decides on (format, scripts, paragraphs, code
// blocks, repetition, normalisation, n-grams) and MinHash/LSH against exact Jaccard similarity.
#include <catch2/catch.hpp>

#include <random>
#include <set>

#include "common/config_text.h"
#include "dataset/minhash.h"
#include "dataset/text_rules.h"

using namespace distill::dataset;

TEST_CASE("text rules: the R1 format check names what is wrong") {
  CHECK(format_problem("<think>\n3+5=8\n</think>\n\\boxed{8}") == "");
  CHECK(format_problem("  \n<think>a</think> so \\boxed{\\frac{1}{2}}.") == "");
  CHECK(format_problem("3+5=8 \\boxed{8}") == "no <think>");
  CHECK(format_problem("<think>a<think>b</think>\\boxed{1}") == "2 <think>");
  CHECK(format_problem("<think>a \\boxed{8}") == "the think block never closes");
  CHECK(format_problem("<think>a</think>b</think>\\boxed{1}") == "2 </think>");
  CHECK(format_problem("hi <think>a</think>\\boxed{1}") == "text before <think>");
  CHECK(format_problem("<think>\\boxed{1}</think> 1") == "no \\boxed{} after </think>");
  CHECK(format_problem("<think>a</think>\\boxed{1") == "unbalanced \\boxed{");
  // The box is the final answer: closing delimiters and a full stop may follow it, more text may not.
  CHECK(format_problem("<think>a</think>\n$\\boxed{7}$.\n") == "");
  CHECK(format_problem("<think>a</think>\\[\\boxed{7}\\]") == "");
  CHECK(format_problem("<think>a</think>**\\boxed{7}**") == "");
  CHECK(format_problem("<think>a</think>\\boxed{7} Wait, let me check that again.") == "text after the final \\boxed{}");
  CHECK(format_problem("<think>a</think>\\boxed{7}\n\n```python\nprint(7)\n```") == "text after the final \\boxed{}");
  CHECK(reasoning_of("<think>\nabc\n</think>\n\\boxed{1}") == "\nabc\n");
  CHECK(reasoning_of("<think>open") == "open");
  CHECK(reasoning_of("plain") == "plain");
}

TEST_CASE("text rules: scripts are counted per letter, Greek and symbols are not letters") {
  auto one = script_letters("Let x = 3 \xC3\x97 4; so \xCF\x80 r\xC2\xB2 and \xCE\xB8 stay math.");  // × π ² θ
  CHECK(one.size() == 1);
  CHECK(one.count("latin") == 1);
  CHECK(foreign_script_letters(one) == 0);
  auto mixed = script_letters("First add 3 \xE7\x84\xB6\xE5\x90\x8E then 4");  // 然后 (Han)
  CHECK(mixed.at("cjk") == 2);
  CHECK(foreign_script_letters(mixed) == 2);
  auto cyr = script_letters("\xD0\xBF\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 ok");  // привет ok
  CHECK(cyr.at("cyrillic") == 6);
  CHECK(foreign_script_letters(cyr) == 2);  // the minority is Latin here
  CHECK(script_letters("\xFF\xFE broken").at("latin") == 6);  // invalid bytes are skipped, not fatal
}

TEST_CASE("text rules: paragraphs, code fences, repetition") {
  CHECK(longest_paragraph("ab\ncd\n\nefghij") == 6);  // "ab\ncd" is 5, "efghij" 6
  CHECK(longest_paragraph("ab\ncd\n \nx") == 5);     // a whitespace-only line separates too
  CHECK(longest_paragraph("\xE4\xB8\x80\xE4\xBA\x8C") == 2);  // code points, not bytes
  CHECK(has_code_block("text\n```python\nx=1\n```"));
  CHECK(has_code_block("  ~~~\ncode"));
  CHECK_FALSE(has_code_block("inline `code` and ``two``"));
  CHECK(repetition_ratio("a b c d e f g h", 2) == 0.0);
  CHECK(repetition_ratio("a b", 4) == 0.0);
  const double loop = repetition_ratio("so so so so so so so so so so so so", 3);  // 10 trigrams, 1 distinct
  CHECK(loop == Approx(0.9));
  CHECK(repetition_ratio("The cat. the CAT!", 2) == Approx(1.0 / 3.0));  // case and punctuation do not count
}

TEST_CASE("text rules: normalisation and word n-grams") {
  CHECK(normalize_text("  Hello\n\tWORLD  ") == "hello world");
  CHECK(normalize_text("") == "");
  std::string low;
  auto w = words("Add 7, then x-2=5!", low);
  REQUIRE(w.size() == 6);
  CHECK(w[0] == "add");
  CHECK(w[5] == "5");
  CHECK(words("3\xC3\x97" "4 x\xC2\xB2y caf\xC3\xA9", low).size() == 5);  // 3 × 4, x ² y, café
  CHECK(words("\xE7\x84\xB6\xE5\x90\x8E\xEF\xBC\x8C\xE5\x8A\xA0", low).size() == 3);  // 然后，加: 3 characters
  auto jp = script_letters("\xE8\xA8\x88\xE7\xAE\x97\xE3\x81\x99\xE3\x82\x8B");  // 計算する
  CHECK(foreign_script_letters(jp) == 0);
  CHECK(ngram_hashes("a b c a b c", 3) == ngram_hashes("A  b, c; a b C", 3));
  CHECK(ngram_hashes("a b c a b c", 3).size() == 3);  // abc, bca, cab
  CHECK(ngram_hashes("a b", 3).size() == 1);          // short texts hash as one shingle
  CHECK(ngram_hashes("", 3).empty());
  CHECK(hash64("abc") != hash64("abd"));
}

TEST_CASE("minhash: the estimated Jaccard tracks the exact one, and LSH finds planted near duplicates") {
  std::mt19937_64 rng(7);
  MinHasher mh(256);
  for (double target : {0.2, 0.5, 0.8, 0.95}) {
    // Two sets of 400 with an overlap giving Jaccard = target.
    const int n = 400;
    const int shared = int(std::lround(2.0 * n * target / (1.0 + target)));
    std::vector<std::uint64_t> a, b;
    for (int i = 0; i < shared; ++i) { auto x = rng(); a.push_back(x); b.push_back(x); }
    for (int i = shared; i < n; ++i) { a.push_back(rng()); b.push_back(rng()); }
    const double exact = double(shared) / double(2 * n - shared);
    INFO("target " << target);
    CHECK(std::abs(estimated_jaccard(mh.signature(a), mh.signature(b)) - exact) < 0.08);
  }
  CHECK(estimated_jaccard(mh.signature({1, 2, 3}), mh.signature({3, 2, 1})) == 1.0);

  auto [bands, rows] = lsh_bands_for(0.8, 128);
  CHECK(bands * rows <= 128);
  CHECK(std::pow(1.0 / bands, 1.0 / rows) == Approx(0.8).margin(0.15));  // the S-curve's knee sits near 0.8

  // 200 random documents; 10 of them get a near copy (one word of 60 changed) appended.
  MinHasher m128(128);
  std::vector<std::vector<std::uint64_t>> docs;
  for (int d = 0; d < 200; ++d) {
    std::vector<std::uint64_t> s;
    for (int i = 0; i < 60; ++i) s.push_back(rng());
    docs.push_back(s);
  }
  for (int d = 0; d < 10; ++d) {
    auto copy = docs[std::size_t(d * 7)];
    copy[5] = rng();
    docs.push_back(copy);
  }
  std::vector<Signature> sigs;
  for (const auto& s : docs) sigs.push_back(m128.signature(s));
  auto dups = near_duplicates(sigs, bands, rows, 0.8);
  REQUIRE(dups.size() == 10);
  for (int d = 0; d < 10; ++d) {
    CHECK(dups[std::size_t(d)].doc == std::size_t(200 + d));
    CHECK(dups[std::size_t(d)].survivor == std::size_t(d * 7));  // the lowest index survives
    CHECK(dups[std::size_t(d)].jaccard > 0.8);
  }
}

TEST_CASE("text rules: a completion splits into its think block and answer as a reader sees them") {
  auto p = split_completion("<think>\nstep 1\nstep 2\n</think>\n\\boxed{3}\n");
  CHECK(p.think == "step 1\nstep 2");
  CHECK(p.answer == "\\boxed{3}");
  CHECK_FALSE(p.open_unclosed);
  p = split_completion("The answer is 3.");  // no tags: all answer
  CHECK(p.think.empty());
  CHECK(p.answer == "The answer is 3.");
  p = split_completion("<think>\nstill going");  // cut off mid-thought: all reasoning
  CHECK(p.think == "still going");
  CHECK(p.answer.empty());
  CHECK(p.open_unclosed);
  p = split_completion("reasoning without an opening tag\n</think>\nso 4");  // a template that put <think> in the prompt
  CHECK(p.think == "reasoning without an opening tag");
  CHECK(p.answer == "so 4");
  using distill::split_list;
  CHECK(split_list("kept,rejected") == std::vector<std::string>{"kept", "rejected"});
  CHECK(split_list("a,,b") == std::vector<std::string>{"a", "", "b"});
  CHECK(split_list("").empty());
}
