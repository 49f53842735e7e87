// dataset/import.h: parsing problem files (GSM8K, MATH, generic JSONL) into store rows.
// A pure function over the file's bytes: the whole file is validated (UTF-8, JSON, fields) before anything
// reaches the store, so a bad line means nothing is imported. Errors name FILE:LINE and what was expected.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "dataset/store.h"

namespace distill::dataset {

enum class ImportFormat { gsm8k, math, jsonl };
ImportFormat parse_import_format(std::string_view name);  // throws InputError listing the valid names

struct ImportOptions {
  ImportFormat format = ImportFormat::jsonl;
  std::string split = "train";
  std::string prompt_field = "prompt";   // jsonl only
  std::string answer_field = "answer";   // jsonl only
  std::string solution_field;            // jsonl only; empty = none
  std::string source;                    // empty = the format name ("gsm8k", "math", "jsonl")
};

// `filename` is only used in messages. Blank lines are skipped. Fields other than the ones read are kept
// in meta_json. Throws InputError "FILE:LINE: ..." on the first problem found, a text field that is not a JSON
// string included. A gold answer the verifier cannot read is imported, with a line in `warnings` (when given).
std::vector<ProblemRow> parse_import(std::string_view bytes, const std::string& filename, const ImportOptions& opt,
                                     std::vector<std::string>* warnings = nullptr);

}  // namespace distill::dataset
