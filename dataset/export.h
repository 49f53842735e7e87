// dataset/export.h: curated samples out of the store as training files, and those files back in.
// Formats (one JSON object per line, samples in id order, so the same store gives the same bytes):
//   jsonl        distill's own: the problem, the completion, verdict, sampling lineage and teacher identity,
//                plus the chat `messages`; lossless, so importing it restores every field.
//   sharegpt     {"conversations": [{"from": "human", ...}, {"from": "gpt", ...}], "answer": gold}
//   openai-chat  {"messages": [{"role": "user", ...}, {"role": "assistant", ...}]}, nothing else (the
//                fine-tuning API's shape); it carries no gold answer, so imported samples are 'unverified' unless
//                --gold-field names one or the store already holds the problem with one.
// The user turn is the problem, a newline and the R1 instruction; the assistant turn is the completion as
// generated: "<think>\n...\n</think>\n" then the boxed answer, as the R1 distills were trained.
// Parsing is a pure function over the file's bytes; errors name FILE:LINE.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dataset/curation.h"
#include "dataset/samples.h"

namespace distill::dataset {

enum class ExportFormat { jsonl, sharegpt, openai_chat };
ExportFormat parse_export_format(std::string_view name);  // InputError listing the valid names
const char* export_format_name(ExportFormat f);

struct ExportOptions {
  ExportFormat format = ExportFormat::jsonl;
  std::vector<Status> statuses = {Status::kept};
  std::string split;        // "" = every split
  std::string instruction;  // appended to the problem in the user turn (teacher::kR1Instruction)
};

struct ExportStats {
  std::int64_t samples = 0, problems = 0, tokens = 0;
  std::map<std::string, std::int64_t> by_split, by_verdict;
  std::string sha256;  // of the written file
};

// Writes to `path` through a temporary file renamed into place (no partial file on failure) and returns what
// was written. The caller writes the stats sidecar.
ExportStats export_samples(Store& s, const ExportOptions& o, const std::string& path);

struct ImportedSample {
  ProblemRow problem;
  ModelRow model;
  SampleRow sample;       // problem_id, model_id, run_id are filled in when stored
  bool reverify = false;  // chat formats: verdict against the stored gold answer, once the problem is resolved
  std::string where;      // FILE:LINE, for messages
};

// True when the first non-blank line of `bytes` is a sample record (a distill jsonl export or a chat format)
// rather than a problem record.
bool looks_like_sample_export(std::string_view bytes);

// `format` jsonl means distill's export format here. `split` applies to chat formats (jsonl carries its own), as
// does `gold_field`: the record's field holding the gold answer (default: sharegpt's "answer"; openai-chat none).
// Chat samples get no token count (nullopt: unknown) and a gold answer only from that field.
std::vector<ImportedSample> parse_sample_export(std::string_view bytes, const std::string& filename, ExportFormat format,
                                                std::string_view instruction, const std::string& split,
                                                const std::string& gold_field = "");

struct SampleImportResult {
  std::int64_t problems_new = 0, samples_new = 0, samples_present = 0;
  std::int64_t unverified = 0;   // new samples with no gold answer to check them against
  std::int64_t golds_added = 0;  // problems stored without a gold answer that this import gave one
  std::vector<std::string> unreadable_golds;  // up to 10 "FILE:LINE: gold answer '...'" the verifier cannot read
};
// One transaction: problems (deduplicated by content), teacher rows, samples and a 'data import' run. A sample
// whose key (problem, teacher, index, seed) is already stored with a different completion is an InputError
// naming its line, and nothing is imported. Chat-format samples are verified against the problem's stored gold
// answer (the first one seen for that problem); with none, or one the verifier cannot read, they are
// 'unverified', never correct. Chat formats carry no lineage: the teacher is "import:FORMAT:FILE", the seed a
// hash of the completion (so re-importing adds nothing), the token count unknown unless the caller set it.
SampleImportResult import_samples(Store& s, const std::vector<ImportedSample>& rows, const std::string& config);

}  // namespace distill::dataset
