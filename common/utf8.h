// common/utf8.h: UTF-8 validation over raw bytes (a pure function, no locale).
// Used by every parser that accepts text from outside; it does not normalise or transcode.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace distill {

// Returns the byte offset of the first invalid sequence, or nullopt if `s` is valid UTF-8.
// Rejects overlong encodings, surrogates (U+D800..U+DFFF) and code points above U+10FFFF (RFC 3629).
std::optional<std::size_t> first_invalid_utf8(std::string_view s);

inline bool is_valid_utf8(std::string_view s) { return !first_invalid_utf8(s).has_value(); }

// `s` with each ill-formed part replaced by U+FFFD, one per maximal subpart (as Python decodes with
// errors="replace"): for messages that quote bytes from outside (a damaged file's text), and for decoded model
// output, so what reaches the terminal or the store is UTF-8.
std::string printable_utf8(std::string_view s);

}  // namespace distill
