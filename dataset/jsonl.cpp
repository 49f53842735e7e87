// dataset/jsonl.cpp: see jsonl.h.
#include "dataset/jsonl.h"

#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "common/utf8.h"

namespace distill::dataset {

void LineError::operator()(const std::string& what) const {
  throw InputError(file + ":" + std::to_string(line) + ": " + what);
}

void for_each_line(std::string_view bytes, const std::string& file,
                   const std::function<void(std::string_view, const LineError&)>& fn) {
  std::size_t line_no = 0, pos = 0;
  while (pos < bytes.size()) {
    std::size_t end = bytes.find('\n', pos);
    if (end == std::string_view::npos) end = bytes.size();
    std::string_view line = bytes.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    fn(line, LineError{file, line_no});
  }
}

nlohmann::json parse_object_line(std::string_view line, const LineError& fail) {
  if (auto bad = first_invalid_utf8(line))
    fail("invalid UTF-8 at byte " + std::to_string(*bad + 1) + " of the line (the file must be UTF-8)");
  nlohmann::json obj;
  try {
    obj = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {  // parse errors, and numbers past double's range (out_of_range)
    // the parser counts lines within this one line: "at line 1, column 27" says only the column
    std::string why = without_library_tag(e.what());
    if (why.rfind("parse error at line 1, column ", 0) == 0) why = "parse error at byte " + why.substr(30);
    fail("malformed JSON: " + why);
  }
  if (!obj.is_object()) fail(std::string("expected a JSON object per line, got ") + obj.type_name());
  return obj;
}

std::string string_field(const nlohmann::json& obj, const std::string& key, const LineError& fail, const std::string& hint) {
  auto it = obj.find(key);
  if (it == obj.end()) fail("missing field '" + key + "' (" + hint + ")");
  if (it->is_string()) {
    auto text = it->get<std::string>();
    // JSON may escape U+0000, but no text we store, tokenise or show carries it: a sign of a damaged export
    if (text.find('\0') != std::string::npos) fail("field '" + key + "' holds a NUL character (\\u0000), which text cannot carry");
    return text;
  }
  fail("field '" + key + "' holds a JSON " + std::string(it->type_name()) + ", expected a string (write it in quotes)");
}

}  // namespace distill::dataset
