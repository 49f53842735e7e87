// model/weights_io.h: safetensors files <-> LibTorch tensors. Reading maps the file (mmap) and hands out
// tensors that view it without copying; writing goes through a temp file and rename.
#pragma once

#include <torch/types.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/safetensors.h"

namespace distill::model {

class SafetensorsFile {
 public:
  // Maps and validates the file; throws InputError naming the file (and tensor) on any problem.
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);
  ~SafetensorsFile();

  const StHeader& header() const { return header_; }
  const std::string& path() const { return path_; }
  bool contains(const std::string& name) const;
  // A CPU tensor viewing the mapped bytes (copied only if misaligned). Throws InputError if absent.
  torch::Tensor get(const std::string& name) const;

 private:
  SafetensorsFile() = default;
  std::string path_;
  StHeader header_;
  void* map_ = nullptr;
  std::size_t size_ = 0;
  std::map<std::string, std::size_t> index_;
  std::weak_ptr<SafetensorsFile> self_;
};

// Writes tensors (any device; moved to CPU and made contiguous) in the given order. Atomic.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

torch::ScalarType to_scalar_type(StDtype d);
StDtype from_scalar_type(torch::ScalarType t);  // throws InputError for unsupported types

}  // namespace distill::model
