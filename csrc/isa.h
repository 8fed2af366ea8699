// Which instruction sets the CPU kernels use: each kernel is compiled for the build's
// baseline and, on x86-64 with GCC or Clang, again for wider vectors (target
// attributes), and picks a variant at run time, so the wheel needs no -march flag.
// DENDRAX_DISABLE_AVX2=1 forces the baseline. Read once per process.
#pragma once

#include <cstdlib>
#include <string>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define DENDRAX_HAVE_AVX2 1
#endif

namespace dendrax {

enum class Isa { kBaseline, kAvx2, kAvx512 };  // AVX2 with FMA; AVX-512 F, DQ and VL

inline Isa cpu_isa() {
#ifdef DENDRAX_HAVE_AVX2
  static const Isa k = [] {
    const char* off = std::getenv("DENDRAX_DISABLE_AVX2");
    if (off && *off && std::string(off) != "0") return Isa::kBaseline;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl"))
      return Isa::kAvx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::kAvx2;
    return Isa::kBaseline;
  }();
  return k;
#else
  return Isa::kBaseline;
#endif
}

}  // namespace dendrax
