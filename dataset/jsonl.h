// dataset/jsonl.h: JSON Lines input, pure functions over bytes: the non-blank lines of a file with their numbers,
// and each line as one JSON object, or an InputError naming the file and line (invalid UTF-8, malformed JSON, not
// an object). Shared by `data import` (dataset/import.cpp for problems, dataset/export.cpp for samples) and
// `data check-answers`.
#pragma once

#include <cstddef>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

namespace distill::dataset {

// Throws InputError "FILE:LINE: what".
struct LineError {
  const std::string& file;
  std::size_t line;
  [[noreturn]] void operator()(const std::string& what) const;
};

// fn(line, fail) for each line of `bytes` that is not blank (a trailing CR removed), in order.
void for_each_line(std::string_view bytes, const std::string& file,
                   const std::function<void(std::string_view line, const LineError& fail)>& fn);

// The line as a JSON object; fail() when it is not valid UTF-8, not JSON, or not an object.
nlohmann::json parse_object_line(std::string_view line, const LineError& fail);

// The string field `key` of a line's object; fail() naming it when it is missing (with `hint`) or not a JSON string.
// Text fields must be strings: a number would have to be turned into text, and 0.1, 1e-7 or 12345678901234567890
// do not survive that as written.
std::string string_field(const nlohmann::json& obj, const std::string& key, const LineError& fail, const std::string& hint);

}  // namespace distill::dataset
