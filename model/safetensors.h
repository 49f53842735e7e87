// model/safetensors.h: the safetensors format (our own reader/writer), validated to the last byte.
// Layout: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}, "__metadata__"},
// then the data buffer. The parser is a pure function over bytes (no LibTorch) so it can be fuzzed; the
// torch glue maps files with mmap and hands out tensors without copying.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace distill::model {

enum class StDtype { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };
std::size_t dtype_size(StDtype d);
const char* dtype_name(StDtype d);

struct StTensorInfo {
  std::string name;
  StDtype dtype;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0, end = 0;  // byte offsets into the data buffer
};

struct StHeader {
  std::vector<StTensorInfo> tensors;          // in file order of their offsets
  std::map<std::string, std::string> metadata;  // "__metadata__" (string -> string)
  std::uint64_t data_start = 0;               // 8 + header length
};

inline constexpr std::uint64_t kMaxHeaderBytes = 100ull << 20;  // as the reference implementation

// Validates and parses a whole file's bytes (or at least its first 8 + N bytes, with `file_size` the total).
// Checks: header length within the cap and the file; JSON object; known dtypes; non-negative shapes;
// offsets in bounds; (end - begin) == numel * dtype size; no overlaps and no holes in the data buffer.
// Throws InputError "NAME: tensor 'T': ..." naming the file and the tensor.
StHeader parse_safetensors_header(std::string_view bytes, std::uint64_t file_size, const std::string& name);

// Serialises a header for tensors laid out in the given order (offsets are assigned here); returns the
// 8-byte length + JSON, padded with spaces so the data starts 8-byte aligned.
std::string build_safetensors_header(std::vector<StTensorInfo>& tensors,
                                     const std::map<std::string, std::string>& metadata);

}  // namespace distill::model
