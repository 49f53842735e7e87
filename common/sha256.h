// common/sha256.h: SHA-256 (FIPS 180-4) for content hashes and model fingerprints.
// Streaming interface so large weight files hash without being loaded whole; no other digests here.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace distill {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  std::array<std::uint8_t, 32> digest();  // finalises; the object must not be updated afterwards
  std::string hex();                       // digest() as 64 lowercase hex digits

 private:
  void block(const std::uint8_t* p);
  std::array<std::uint32_t, 8> h_;
  std::array<std::uint8_t, 64> buf_{};
  std::size_t buf_len_ = 0;
  std::uint64_t total_ = 0;
};

std::string sha256_hex(std::string_view s);
std::string sha256_file_hex(const std::string& path);  // throws InputError if unreadable

}  // namespace distill
