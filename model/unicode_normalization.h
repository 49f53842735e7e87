// model/unicode_normalization.h: Unicode normalization forms (UAX #15) over UTF-8, for tokenizer normalizers.
// Self-contained: the tables are generated from Python's unicodedata (model/unicode_normalization_gen.py), so no
// ICU is needed. They hold the characters of Unicode 9.0, the data HF tokenizers normalizes with, so results
// equal HF's exactly (checked on every code point); a later character is left as it is, as HF leaves it.
// Input must be valid UTF-8 (callers validate once at the door).
#pragma once

#include <string>
#include <string_view>

namespace distill::model {

enum class UnicodeForm { NFC, NFD, NFKC, NFKD };

std::string unicode_normalize(std::string_view utf8, UnicodeForm form);

}  // namespace distill::model
