// model/cpu_avx512.h: the AVX-512 code path of the hand-written CPU kernels (cpu_gemv.cpp, cpu_attention.cpp): one
// target attribute for the functions that use it, and one run-time check that the CPU has every feature it names.
// Without them the kernels fall back to the LibTorch ops they replace.
#pragma once

#define DISTILL_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,f16c,fma")))

namespace distill::model {

inline bool avx512_usable() {
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                         __builtin_cpu_supports("f16c") && __builtin_cpu_supports("fma");
  return ok;
}

}  // namespace distill::model
