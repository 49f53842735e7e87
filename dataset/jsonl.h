// dataset/jsonl.h: JSON Lines input, pure functions over bytes: the non-blank lines of a file with their numbers,
// and each line as one JSON object, or an InputError naming the file and line (invalid UTF-8, malformed JSON, not
// an object). Shared by `data import` (dataset/import.cpp) and `data check-answers`.
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

}  // namespace distill::dataset
