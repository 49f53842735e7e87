// student/gguf.h: a GGUF v3 file writer (the format llama.cpp loads: header, typed key/values, tensor infos, then
// 32-byte-aligned tensor data) and the Q8_0 block quantizer, as ggml defines them. Pure, no LibTorch: tensors come
// as raw little-endian bytes with their GGML type.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <variant>
#include <vector>

namespace distill::student {

enum class GgmlType : std::uint32_t { f32 = 0, f16 = 1, q8_0 = 8, bf16 = 30 };

inline constexpr std::uint32_t kGgufVersion = 3;
inline constexpr std::size_t kGgufAlignment = 32;
inline constexpr int kQ8Block = 32;  // values per Q8_0 block: an f16 scale then 32 int8s (34 bytes)

class GgufWriter {
 public:
  using Value = std::variant<std::uint32_t, std::int32_t, float, bool, std::string, std::vector<std::string>,
                             std::vector<std::int32_t>, std::vector<float>>;
  void set(const std::string& key, Value v);  // a key set twice keeps its last value, in its first place
  // dims as torch lists them (outermost first); GGUF stores them innermost first. `make` gives the tensor's bytes
  // when the file is written, so only one tensor's bytes are in memory at a time.
  void add_tensor(const std::string& name, const std::vector<std::int64_t>& dims, GgmlType type,
                  std::function<std::string()> make);
  void add_tensor(const std::string& name, const std::vector<std::int64_t>& dims, GgmlType type, std::string bytes);
  // The whole file, in memory (tests). Throws InputError for a tensor whose byte count does not match its dims and
  // type, or whose rows are not whole Q8_0 blocks.
  std::string serialize() const;
  // The same bytes written to `path`, one tensor at a time, then flushed to disk (the caller renames it into place).
  void write(const std::string& path) const;
  std::size_t tensor_count() const { return tensors_.size(); }

 private:
  struct Tensor {
    std::string name;
    std::vector<std::int64_t> dims;
    GgmlType type;
    std::function<std::string()> make;
    std::size_t nbytes;
  };
  std::string header() const;  // magic to the padding before the data (checks every tensor's size)
  void each_tensor(const std::function<void(const std::string&)>& sink) const;  // data and padding
  std::vector<std::pair<std::string, Value>> kv_;
  std::vector<Tensor> tensors_;
};

// Bytes a tensor of n values takes in this type (n a multiple of 32 for q8_0).
std::size_t ggml_nbytes(GgmlType t, std::int64_t n);
// Q8_0 blocks of `values` (a multiple of 32): per block d = max|x| / 127 as f16, then round(x / d) as int8.
std::string quantize_q8_0(const float* values, std::int64_t n);
std::uint16_t f32_to_f16_bits(float f);  // round to nearest even, as ggml's converter

}  // namespace distill::student
