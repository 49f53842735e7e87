// student/gguf.cpp: see gguf.h. Layout: "GGUF", u32 version, u64 tensor count, u64 kv count; each kv as a
// u64-length string key, a u32 type and the value; each tensor info as name, u32 n_dims, u64 dims (innermost
// first), u32 type, u64 offset into the data section; padding to 32; the data, each tensor aligned to 32.
#include "student/gguf.h"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include "common/errors.h"
#include "common/fs.h"

namespace distill::student {

namespace {

enum : std::uint32_t { kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7, kString = 8, kArray = 9, kU64 = 10 };

struct Out {
  std::string b;
  template <class T>
  void raw(T v) {
    char c[sizeof(T)];
    std::memcpy(c, &v, sizeof(T));  // GGUF is little-endian, as every machine distill runs on
    b.append(c, sizeof(T));
  }
  void str(const std::string& s) {
    raw<std::uint64_t>(s.size());
    b += s;
  }
  void pad() { b.append((kGgufAlignment - b.size() % kGgufAlignment) % kGgufAlignment, '\0'); }
};

void write_value(Out& o, const GgufWriter::Value& v) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::uint32_t>) o.raw(kU32), o.raw(x);
        else if constexpr (std::is_same_v<T, std::int32_t>) o.raw(kI32), o.raw(x);
        else if constexpr (std::is_same_v<T, float>) o.raw(kF32), o.raw(x);
        else if constexpr (std::is_same_v<T, bool>) o.raw(kBool), o.raw<std::uint8_t>(x ? 1 : 0);
        else if constexpr (std::is_same_v<T, std::string>) o.raw(kString), o.str(x);
        else {
          o.raw(kArray);
          using E = typename T::value_type;
          o.raw(std::is_same_v<E, std::string> ? kString : std::is_same_v<E, float> ? kF32 : kI32);
          o.raw<std::uint64_t>(x.size());
          for (const auto& e : x) {
            if constexpr (std::is_same_v<E, std::string>) o.str(e);
            else o.raw(e);
          }
        }
      },
      v);
}

}  // namespace

std::uint16_t f32_to_f16_bits(float f) {
  std::uint32_t x;
  std::memcpy(&x, &f, 4);
  const std::uint32_t sign = (x >> 16) & 0x8000;
  std::uint32_t mag = x & 0x7FFFFFFF;
  if (mag >= 0x7F800000) return std::uint16_t(sign | 0x7C00 | (mag > 0x7F800000 ? 0x200 : 0));  // inf, nan
  if (mag >= 0x477FF000) return std::uint16_t(sign | 0x7C00);                                    // overflow
  if (mag < 0x38800000) {  // a subnormal half (or zero): m * 2^(e-150) in units of 2^-24, rounded to even
    const int shift = 126 - int(mag >> 23);
    if (shift > 24) return std::uint16_t(sign);  // under half the smallest subnormal
    const std::uint32_t m = (mag & 0x7FFFFF) | 0x800000;
    std::uint32_t h = m >> shift;
    const std::uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) ++h;
    return std::uint16_t(sign | h);
  }
  std::uint32_t h = ((mag - 0x38000000) >> 13);
  const std::uint32_t rem = mag & 0x1FFF;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) ++h;
  return std::uint16_t(sign | h);
}

std::size_t ggml_nbytes(GgmlType t, std::int64_t n) {
  switch (t) {
    case GgmlType::f32: return std::size_t(n) * 4;
    case GgmlType::f16:
    case GgmlType::bf16: return std::size_t(n) * 2;
    case GgmlType::q8_0: return std::size_t(n / kQ8Block) * 34;
  }
  return 0;
}

std::string quantize_q8_0(const float* x, std::int64_t n) {
  std::string out;
  out.reserve(ggml_nbytes(GgmlType::q8_0, n));
  for (std::int64_t b = 0; b + kQ8Block <= n; b += kQ8Block) {
    float amax = 0;
    for (int i = 0; i < kQ8Block; ++i) amax = std::max(amax, std::fabs(x[b + i]));
    const float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
    const std::uint16_t dh = f32_to_f16_bits(d);
    out.append(reinterpret_cast<const char*>(&dh), 2);
    for (int i = 0; i < kQ8Block; ++i) out.push_back(char(std::int8_t(std::lround(x[b + i] * id))));
  }
  return out;
}

void GgufWriter::set(const std::string& key, Value v) {
  for (auto& [k, old] : kv_)
    if (k == key) {
      old = std::move(v);
      return;
    }
  kv_.emplace_back(key, std::move(v));
}

void GgufWriter::add_tensor(const std::string& name, const std::vector<std::int64_t>& dims, GgmlType type,
                            std::function<std::string()> make) {
  std::int64_t n = 1;
  for (auto d : dims) n *= d;
  if (type == GgmlType::q8_0 && (dims.empty() || dims.back() % kQ8Block))
    throw InputError("tensor " + name + ": q8_0 needs rows that are a multiple of 32 values");
  tensors_.push_back({name, dims, type, std::move(make), ggml_nbytes(type, n)});
}

void GgufWriter::add_tensor(const std::string& name, const std::vector<std::int64_t>& dims, GgmlType type,
                            std::string bytes) {
  auto held = std::make_shared<std::string>(std::move(bytes));
  add_tensor(name, dims, type, [held] { return *held; });
}

std::string GgufWriter::header() const {
  Out o;
  o.b = "GGUF";
  o.raw(kGgufVersion);
  o.raw<std::uint64_t>(tensors_.size());
  o.raw<std::uint64_t>(kv_.size());
  for (const auto& [k, v] : kv_) o.str(k), write_value(o, v);
  std::uint64_t offset = 0;
  for (const auto& t : tensors_) {
    o.str(t.name);
    o.raw<std::uint32_t>(t.dims.size());
    for (auto it = t.dims.rbegin(); it != t.dims.rend(); ++it) o.raw<std::uint64_t>(*it);
    o.raw(static_cast<std::uint32_t>(t.type));
    o.raw(offset);
    offset += (t.nbytes + kGgufAlignment - 1) / kGgufAlignment * kGgufAlignment;
  }
  o.pad();
  return o.b;
}

void GgufWriter::each_tensor(const std::function<void(const std::string&)>& sink) const {
  for (const auto& t : tensors_) {
    auto bytes = t.make();
    if (bytes.size() != t.nbytes)
      throw InputError("tensor " + t.name + ": " + std::to_string(bytes.size()) + " bytes where its dims and type "
                       "take " + std::to_string(t.nbytes));
    bytes.append((kGgufAlignment - bytes.size() % kGgufAlignment) % kGgufAlignment, '\0');
    sink(bytes);
  }
}

std::string GgufWriter::serialize() const {
  std::string out = header();
  each_tensor([&](const std::string& b) { out += b; });
  return out;
}

void GgufWriter::write(const std::string& path) const {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw RuntimeFailure(path + ": cannot be created (" + std::strerror(errno) + ")");
  auto put = [&](const std::string& b) {  // the handler below closes f
    if (std::fwrite(b.data(), 1, b.size(), f) != b.size()) throw RuntimeFailure(write_failure(path, errno));
  };
  try {
    put(header());
    each_tensor(put);
  } catch (...) {
    std::fclose(f);
    throw;
  }
  const bool ok = std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
  const int e = errno;
  if (std::fclose(f) != 0 || !ok) throw RuntimeFailure(write_failure(path, ok ? errno : e));
}

}  // namespace distill::student
