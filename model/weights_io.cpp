// model/weights_io.cpp: see weights_io.h. Assumes a little-endian host, as safetensors does.
#include "model/weights_io.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <torch/torch.h>

#include "common/errors.h"
#include "common/fs.h"

namespace distill::model {

torch::ScalarType to_scalar_type(StDtype d) {
  switch (d) {
    case StDtype::F64: return torch::kFloat64;
    case StDtype::F32: return torch::kFloat32;
    case StDtype::F16: return torch::kFloat16;
    case StDtype::BF16: return torch::kBFloat16;
    case StDtype::I64: return torch::kInt64;
    case StDtype::I32: return torch::kInt32;
    case StDtype::I16: return torch::kInt16;
    case StDtype::I8: return torch::kInt8;
    case StDtype::U8: return torch::kUInt8;
    case StDtype::BOOL: return torch::kBool;
  }
  return torch::kFloat32;
}

StDtype from_scalar_type(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat64: return StDtype::F64;
    case torch::kFloat32: return StDtype::F32;
    case torch::kFloat16: return StDtype::F16;
    case torch::kBFloat16: return StDtype::BF16;
    case torch::kInt64: return StDtype::I64;
    case torch::kInt32: return StDtype::I32;
    case torch::kInt16: return StDtype::I16;
    case torch::kInt8: return StDtype::I8;
    case torch::kUInt8: return StDtype::U8;
    case torch::kBool: return StDtype::BOOL;
    default: throw InputError(std::string("dtype ") + c10::toString(t) + " cannot be stored in safetensors here");
  }
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->self_ = f;
  f->path_ = path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw InputError(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw InputError(path + ": cannot stat");
  }
  f->size_ = std::size_t(st.st_size);
  if (f->size_ > 0) {
    f->map_ = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (f->map_ == MAP_FAILED) {
      f->map_ = nullptr;
      ::close(fd);
      throw InputError(path + ": mmap failed: " + std::strerror(errno));
    }
  }
  ::close(fd);
  std::string_view bytes(static_cast<const char*>(f->map_), f->size_);
  f->header_ = parse_safetensors_header(bytes, f->size_, path);
  for (std::size_t i = 0; i < f->header_.tensors.size(); ++i) f->index_[f->header_.tensors[i].name] = i;
  return f;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, size_);
}

bool SafetensorsFile::contains(const std::string& name) const { return index_.count(name) > 0; }

torch::Tensor SafetensorsFile::get(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) throw InputError(path_ + ": no tensor '" + name + "'");
  const auto& t = header_.tensors[it->second];
  char* p = static_cast<char*>(map_) + header_.data_start + t.begin;
  const auto opts = torch::TensorOptions().dtype(to_scalar_type(t.dtype));
  if (t.end == t.begin) return torch::empty(t.shape, opts);
  auto keep = self_.lock();
  torch::Tensor view = torch::from_blob(p, t.shape, [keep](void*) {}, opts);
  if (reinterpret_cast<std::uintptr_t>(p) % dtype_size(t.dtype) != 0) return view.clone();
  return view;
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<StTensorInfo> infos;
  std::vector<torch::Tensor> cpu;
  for (const auto& [name, t] : tensors) {
    StTensorInfo i;
    i.name = name;
    i.dtype = from_scalar_type(t.scalar_type());
    i.shape = t.sizes().vec();
    infos.push_back(i);
    cpu.push_back(t.detach().to(torch::kCPU).contiguous());
  }
  // streamed from the tensors: a checkpoint's file is never held a second time in memory
  const std::string header = build_safetensors_header(infos, metadata);
  std::vector<std::string_view> parts = {header};
  for (const auto& t : cpu) parts.emplace_back(static_cast<const char*>(t.data_ptr()), t.nbytes());
  write_file_atomic(path, parts);
}

}  // namespace distill::model
