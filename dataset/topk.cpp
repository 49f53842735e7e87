// dataset/topk.cpp: see topk.h.
#include "dataset/topk.h"

#include <cmath>
#include <cstring>
#include <stdexcept>

#include "common/errors.h"

namespace distill::dataset {

namespace {

constexpr char kMagic[3] = {'D', 'T', 'K'};
constexpr std::size_t kHeader = 12, kRecord = 8;

void put_u32(std::string& out, std::uint32_t v) {
  const char b[4] = {char(v & 0xff), char(v >> 8 & 0xff), char(v >> 16 & 0xff), char(v >> 24 & 0xff)};
  out.append(b, 4);
}
std::uint32_t get_u32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return std::uint32_t(u[0]) | std::uint32_t(u[1]) << 8 | std::uint32_t(u[2]) << 16 | std::uint32_t(u[3]) << 24;
}

}  // namespace

std::string encode_topk(const std::vector<std::vector<std::pair<int, float>>>& rows, std::int64_t k_in) {
  if (k_in < 1 || k_in > 0xffffffffLL || rows.size() > 0xffffffffu) throw std::invalid_argument("encode_topk: bad shape");
  const auto k = std::size_t(k_in);
  std::string out;
  out.reserve(kHeader + rows.size() * k * kRecord);
  out.append(kMagic, 3);
  out.push_back(char(kTopkVersion));
  put_u32(out, std::uint32_t(k));
  put_u32(out, std::uint32_t(rows.size()));
  for (const auto& row : rows) {
    if (row.size() != k) throw std::invalid_argument("encode_topk: rows of different k");
    for (const auto& [id, lp] : row) {
      put_u32(out, std::uint32_t(std::int32_t(id)));
      std::uint32_t bits;
      std::memcpy(&bits, &lp, 4);
      put_u32(out, bits);
    }
  }
  return out;
}

TopK decode_topk(std::string_view blob, std::int64_t k, const std::string& where) {
  auto bad = [&](const std::string& what) { throw InputError(where + ": teacher top-k blob " + what); };
  if (k < 1) bad("has k " + std::to_string(k) + ": expected >= 1");
  TopK t;
  t.k = k;
  std::string_view body = blob;
  if (blob.size() >= 4 && std::memcmp(blob.data(), kMagic, 3) == 0) {
    t.version = static_cast<unsigned char>(blob[3]);
    if (t.version != kTopkVersion)
      bad("has version " + std::to_string(t.version) + ": this build reads 0 and " + std::to_string(kTopkVersion));
    if (blob.size() < kHeader) bad("has " + std::to_string(blob.size()) + " bytes: shorter than its 12-byte header");
    const auto hk = get_u32(blob.data() + 4), n = get_u32(blob.data() + 8);
    if (std::int64_t(hk) != k) bad("says k " + std::to_string(hk) + " but its row says " + std::to_string(k));
    body = blob.substr(kHeader);
    if (body.size() != std::size_t(n) * std::size_t(k) * kRecord)
      bad("says " + std::to_string(n) + " positions of " + std::to_string(k) + " but holds " +
          std::to_string(body.size()) + " bytes of records (expected " +
          std::to_string(std::size_t(n) * std::size_t(k) * kRecord) + ")");
  } else {
    t.version = 0;
    if (body.size() % (std::size_t(k) * kRecord) != 0)
      bad("(headerless, version 0) has " + std::to_string(body.size()) + " bytes: not whole positions of " +
          std::to_string(k) + " 8-byte records");
  }
  const std::size_t records = body.size() / kRecord;
  t.positions = std::int64_t(records / std::size_t(k));
  t.ids.resize(records);
  t.logprobs.resize(records);
  for (std::size_t i = 0; i < records; ++i) {
    const auto id = std::int32_t(get_u32(body.data() + i * kRecord));
    const auto bits = get_u32(body.data() + i * kRecord + 4);
    float lp;
    std::memcpy(&lp, &bits, 4);
    if (id < 0) bad("has token id " + std::to_string(id) + " at record " + std::to_string(i) + ": expected >= 0");
    if (!(lp <= 1e-3f)) bad("has logprob " + number_text(lp) + " at record " + std::to_string(i) + ": expected <= 0");
    t.ids[i] = id;
    t.logprobs[i] = lp;
  }
  return t;
}

}  // namespace distill::dataset
