// fuzz/fuzz_common.h: what every libFuzzer target here shares. A parser may refuse its input only the documented
// way (InputError, or the exception type its header names); anything else escaping, and every ASan/UBSan report,
// is a finding. Each target's input is the bytes an outside party controls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/errors.h"

namespace distill::fuzz {

inline std::string_view bytes(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Runs f; InputError (bad input, refused with a message) is the expected way out.
template <class F>
void refusing(F&& f) {
  try {
    f();
  } catch (const InputError&) {
  }
}

}  // namespace distill::fuzz
