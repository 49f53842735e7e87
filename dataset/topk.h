// dataset/topk.h: the one encoder/decoder of a sample's teacher top-k (token id, logprob) per generated position,
// the blob of sample_logprobs that `generate` writes and logit KD reads. Version 1 is a 12-byte header (magic
// "DTK", version byte 1, uint32 k, uint32 positions) then positions x k records of (int32 id, float32 logprob),
// all little-endian. Version 0, the headerless records that stores written before it hold, is still read: its
// first four bytes, taken as an id, would be 21,713,988, far past any vocabulary, so the two cannot be confused.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace distill::dataset {

inline constexpr int kTopkVersion = 1;

struct TopK {
  std::int64_t k = 0, positions = 0;
  std::vector<std::int32_t> ids;  // positions x k, row-major
  std::vector<float> logprobs;    // the same layout
  int version = kTopkVersion;     // what the blob was written as
};

// rows[p] holds position p's k (id, logprob) pairs, k >= 1 in every row (else std::invalid_argument: a writer's
// bug, not bad input). No rows (a completion of no tokens) is a valid blob of 0 positions.
std::string encode_topk(const std::vector<std::vector<std::pair<int, float>>>& rows, std::int64_t k);

// The blob of sample_logprobs with its `k` column. InputError naming `where` and the problem: a header other than
// version 1's, a k that differs from the column's, a length that is not whole records, a negative id or a
// logprob that is NaN or above 0 (beyond float rounding).
TopK decode_topk(std::string_view blob, std::int64_t k, const std::string& where);

}  // namespace distill::dataset
