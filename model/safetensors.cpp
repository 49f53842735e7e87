// model/safetensors.cpp: the pure (LibTorch-free) half of safetensors: header parsing, validation, writing.
#include "model/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "common/utf8.h"

namespace distill::model {

namespace {
struct DtypeRow {
  StDtype d;
  const char* name;
  std::size_t size;
};
constexpr DtypeRow kDtypes[] = {{StDtype::F64, "F64", 8}, {StDtype::F32, "F32", 4}, {StDtype::F16, "F16", 2},
                                {StDtype::BF16, "BF16", 2}, {StDtype::I64, "I64", 8}, {StDtype::I32, "I32", 4},
                                {StDtype::I16, "I16", 2}, {StDtype::I8, "I8", 1}, {StDtype::U8, "U8", 1},
                                {StDtype::BOOL, "BOOL", 1}};
}  // namespace

std::size_t dtype_size(StDtype d) {
  for (const auto& r : kDtypes)
    if (r.d == d) return r.size;
  return 0;
}
const char* dtype_name(StDtype d) {
  for (const auto& r : kDtypes)
    if (r.d == d) return r.name;
  return "?";
}

StHeader parse_safetensors_header(std::string_view bytes, std::uint64_t file_size, const std::string& name) {
  auto fail = [&](const std::string& what) -> void { throw InputError(name + ": " + what); };
  if (bytes.size() < 8 || file_size < 8) fail("too short for a safetensors file (needs an 8-byte header length)");
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[std::size_t(i)]);
  if (n > kMaxHeaderBytes)
    fail("header length " + std::to_string(n) + " exceeds the " + std::to_string(kMaxHeaderBytes) + "-byte cap");
  if (8 + n > file_size) fail("header length " + std::to_string(n) + " runs past the end of the file");
  if (8 + n > bytes.size()) fail("header truncated");
  std::string_view js = bytes.substr(8, std::size_t(n));
  if (auto bad = first_invalid_utf8(js)) fail("header is not UTF-8 (byte " + std::to_string(*bad) + ")");
  if (js.empty() || js.front() != '{') fail("header does not start with a JSON object");
  nlohmann::json h;
  try {
    h = nlohmann::json::parse(js);
  } catch (const nlohmann::json::exception& e) {  // parse errors, and numbers past double's range (out_of_range)
    fail(std::string("header is not valid JSON: ") + without_library_tag(e.what()));
  }
  if (!h.is_object()) fail("header is not a JSON object");
  StHeader out;
  out.data_start = 8 + n;
  const std::uint64_t data_len = file_size - out.data_start;
  for (auto& [key, v] : h.items()) {
    if (key == "__metadata__") {
      if (!v.is_object()) fail("__metadata__ must be an object of strings");
      for (auto& [mk, mv] : v.items()) {
        if (!mv.is_string()) fail("__metadata__['" + mk + "'] must be a string");
        out.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    const std::string tn = "tensor '" + key + "': ";
    if (!v.is_object()) fail(tn + "entry must be an object");
    for (auto& [f, _] : v.items())
      if (f != "dtype" && f != "shape" && f != "data_offsets") fail(tn + "unknown field '" + f + "'");
    StTensorInfo t;
    t.name = key;
    if (!v.contains("dtype") || !v["dtype"].is_string()) fail(tn + "missing dtype");
    const std::string dt = v["dtype"].get<std::string>();
    bool found = false;
    for (const auto& r : kDtypes)
      if (dt == r.name) { t.dtype = r.d; found = true; }
    if (!found) fail(tn + "unsupported dtype '" + dt + "' (expected F64, F32, F16, BF16, I64, I32, I16, I8, U8 or BOOL)");
    if (!v.contains("shape") || !v["shape"].is_array()) fail(tn + "missing shape");
    std::uint64_t numel = 1;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned()) fail(tn + "shape entries must be non-negative integers");
      const std::uint64_t dim = d.get<std::uint64_t>();
      if (dim && numel > (std::uint64_t(1) << 62) / dim) fail(tn + "shape overflows");
      numel *= dim;
      t.shape.push_back(std::int64_t(dim));
    }
    const auto& off = v.contains("data_offsets") ? v["data_offsets"] : nlohmann::json();
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      fail(tn + "data_offsets must be [begin, end]");
    t.begin = off[0].get<std::uint64_t>();
    t.end = off[1].get<std::uint64_t>();
    if (t.begin > t.end) fail(tn + "data_offsets begin > end");
    if (t.end > data_len)
      fail(tn + "data_offsets end " + std::to_string(t.end) + " is past the data buffer (" + std::to_string(data_len) +
           " bytes)");
    const std::uint64_t want = numel * dtype_size(t.dtype);
    if (t.end - t.begin != want)
      fail(tn + "shape x dtype is " + std::to_string(want) + " bytes but data_offsets span " +
           std::to_string(t.end - t.begin));
    out.tensors.push_back(std::move(t));
  }
  std::sort(out.tensors.begin(), out.tensors.end(),
            [](const auto& a, const auto& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  std::uint64_t cursor = 0;
  for (const auto& t : out.tensors) {
    if (t.begin < cursor) fail("tensor '" + t.name + "': data overlaps the previous tensor");
    if (t.begin > cursor) fail("tensor '" + t.name + "': hole of " + std::to_string(t.begin - cursor) + " bytes before it");
    cursor = t.end;
  }
  if (cursor != data_len) fail(std::to_string(data_len - cursor) + " trailing bytes after the last tensor");
  return out;
}

std::string build_safetensors_header(std::vector<StTensorInfo>& tensors,
                                     const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  std::uint64_t off = 0;
  for (auto& t : tensors) {
    std::uint64_t numel = 1;
    for (auto d : t.shape) numel *= std::uint64_t(d);
    t.begin = off;
    t.end = off + numel * dtype_size(t.dtype);
    off = t.end;
    h[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {t.begin, t.end}}};
  }
  std::string js = h.dump();
  while ((8 + js.size()) % 8) js += ' ';
  std::string out(8, '\0');
  std::uint64_t n = js.size();
  for (int i = 0; i < 8; ++i) out[std::size_t(i)] = char((n >> (8 * i)) & 0xFF);
  return out + js;
}

}  // namespace distill::model
