// CPU handlers of the Hodgkin-Huxley gate step (hh.mod's m, h, n by exponential
// Euler) on the typed XLA FFI, exported to Python as PyCapsules by a nanobind module.
//
// XLA:CPU evaluates the gate step of python/dendrax/mechanisms/hh.py as several loops
// over memory with a float64 exp of ~2 ns per element; here it is one pass over blocks
// of nodes that stay in L1 (gates_range), whose exponentials are a branch-free
// polynomial the compiler vectorises, and divisions (the slowest vector instruction) are
// one per rate quotient. The formulas are HH.alpha_beta's
// and dendrax.mechanisms.cnexp's, so the results differ from that pure-JAX twin only by
// rounding (~1e-14 relative).
//
// Operands: v, m, h, n of shape [*rows, C] (float32 or float64, one dtype); q (the
// temperature factor) and dt (ms) of shape [*rows, 1]: one per row (jax's
// "broadcast_all" vmap method gives every operand the batch axes). Float32 is computed
// in float64 and rounded once.
//
//   dendrax_hh_gates:      -> m', h', n'
//   dendrax_hh_gates_jvp:  -> m', h', n', then their slopes d x'/d v, then their decays
//                             d x'/d x: the tangent of x' is slope dv + decay dx.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <string>

#include "isa.h"
#include "nanobind/nanobind.h"
#include "threads.h"
#include "xla/ffi/api/ffi.h"

namespace nb = nanobind;
namespace ffi = xla::ffi;

namespace dendrax {
namespace {

// Elements a thread must get before a call is split over threads (~25 us; on XLA's
// threads, see hines_cpu.cc's kMinWorkPerThread).
constexpr int64_t kMinElementsPerThread = int64_t{1} << 12;

// exp(x) within ~1 ulp for x in [-708, 709] (clamped there: exp(-708) ~ 3e-308 stands for
// 0), branch-free: x = k ln2 + r, |r| <= ln2 / 2 (Cody-Waite), exp(r) by a polynomial of
// degree 11, 2^k from the exponent bits. NaN stays NaN. The polynomial is the Chebyshev
// fit of exp on [-ln2/2, ln2/2] (mpmath.chebyfit(mpmath.exp, [-a, a], 12) at 50 digits,
// rounded to double): < 0.2 ulp from exp there, as the degree-13 Taylor polynomial it
// replaced (both ~1.1 ulp in all, measured against mpmath), with two multiply-adds less
// per exponential (the gate kernel 5.3 -> 4.8 ns per node).
__attribute__((always_inline)) inline double exp_poly(double x) {
  constexpr double kShift = 0x1.8p52;  // adding it rounds to an integer in the low bits
  constexpr double kLog2e = 0x1.71547652b82fep+0;
  constexpr double kLn2Hi = 0x1.62e42fee00000p-1;  // k * kLn2Hi is exact for |k| < 2^11
  constexpr double kLn2Lo = 0x1.a39ef35793c76p-33;
  x = x < -708.0 ? -708.0 : (x > 709.0 ? 709.0 : x);
  const double kd = x * kLog2e + kShift;
  const double k = kd - kShift;
  const double r = (x - k * kLn2Hi) - k * kLn2Lo;
  double p = 0x1.af631d0059becp-26;
  p = p * r + 0x1.28b4057f44145p-22;
  p = p * r + 0x1.71ddf5749d126p-19;
  p = p * r + 0x1.a01991ac8730ap-16;
  p = p * r + 0x1.a01a01b14378fp-13;
  p = p * r + 0x1.6c16c187fbe02p-10;
  p = p * r + 0x1.111111110f225p-7;
  p = p * r + 0x1.555555554f0cfp-5;
  p = p * r + 0x1.555555555555ap-3;
  p = p * r + 0x1.0000000000011p-1;
  p = p * r + 0x1.0000000000000p+0;
  p = p * r + 0x1.0000000000000p+0;
  int64_t kbits, shift_bits;
  std::memcpy(&kbits, &kd, sizeof kd);
  std::memcpy(&shift_bits, &kShift, sizeof kShift);
  const int64_t bits = (kbits - shift_bits + 1023) << 52;  // 2^k, k in [-1021, 1023]
  double scale;
  std::memcpy(&scale, &bits, sizeof bits);
  return p * scale;
}

// hh.py's vtrap(x, 10, e) * c with e = exp(x / 10) given, and its derivative in v
// (dx/dv = -1, de/dv = -e / 10): x / (e - 1), continued smoothly through x = 0. Both
// sides are computed and one selected (no branch: the loop vectorises); one division.
struct Vtrap {
  double value, dv;
};
__attribute__((always_inline)) inline Vtrap vtrap10(double x, double e, double c) {
  const bool small = std::fabs(x * 0.1) < 1e-6;
  const double rden = 1.0 / (small ? 1.0 : e - 1.0);
  const double ratio = (small ? 1.0 : x) * rden;
  const double series = 10.0 * (1.0 - x * 0.1 * 0.5);
  // d/dv [x / (e - 1)] = (-(e - 1) + x e / 10) / (e - 1)^2; small: d/dv 10 (1 - x/20) = 1/2
  const double slope = rden * (ratio * e * 0.1 - 1.0);
  return {c * (small ? series : ratio), c * (small ? 0.5 : slope)};
}

struct Gate {
  double alpha, beta, dalpha, dbeta;
};

// One gate's exponential Euler step, as dendrax.mechanisms.cnexp (x_inf = alpha / s,
// tau = 1 / (q s), s = alpha + beta; one division): x' and, with kJvp, its slope
// d x'/d v and decay d x'/d x.
template <bool kJvp>
__attribute__((always_inline)) inline void step(const Gate& g, double x, double q, double dt,
                                                double* out, double* a, double* e_out) {
  const double s = g.alpha + g.beta;
  const double rs = 1.0 / s;  // = q tau
  const double inf = g.alpha * rs;
  const double e = exp_poly(-dt * q * s);
  *out = inf + (x - inf) * e;
  if (kJvp) {
    const double ds = g.dalpha + g.dbeta;
    *a = (1.0 - e) * (g.dalpha - inf * ds) * rs - (x - inf) * e * (dt * q) * ds;
    *e_out = e;
  }
}

constexpr double kExpHalf = 0x1.a61298e1e069cp+0;        // exp(0.5), as Python's math.exp
constexpr double kExpMinus1p5 = 0x1.c8f87724b5c1dp-3;    // exp(-1.5)

// Elements per block of gates_range: its rate arrays (6 or 12 of them) stay in L1.
constexpr int64_t kBlock = 256;

// Elements [off, off + count) of one row; the row's q and dt are scalars. out: m', h',
// n', and with kJvp the slopes d x'/d v and decays d x'/d x of m, h, n.
//
// Two loops per block of kBlock elements: the rates (three exponentials, vtrap's two
// quotients and beta_h's) into arrays on the stack, then the gates' steps (a quotient and
// an exponential each). One loop doing both runs at the latency of its chain exponential
// -> quotient -> quotient -> exponential (about two elements' worth in flight); the two
// shorter chains keep more in flight: 6.1 -> 5.3 ns per node (AVX-512), with the same
// operations in the same order (the same bits).
template <bool kJvp, typename T>
__attribute__((always_inline)) inline void gates_range(const T* __restrict v, const T* m,
                                                       const T* h, const T* n, double q,
                                                       double dt, T* const* out, int64_t off,
                                                       int64_t count) {
  // m', h', n' may be m, h, n themselves (the call aliases them: an update in place), so
  // these six are not __restrict; ivdep below states what holds either way.
  T* m1 = out[0] + off;
  T* h1 = out[1] + off;
  T* n1 = out[2] + off;
  T* __restrict slope_m = kJvp ? out[3] + off : nullptr;
  T* __restrict slope_h = kJvp ? out[4] + off : nullptr;
  T* __restrict slope_n = kJvp ? out[5] + off : nullptr;
  T* __restrict decay_m = kJvp ? out[6] + off : nullptr;
  T* __restrict decay_h = kJvp ? out[7] + off : nullptr;
  T* __restrict decay_n = kJvp ? out[8] + off : nullptr;
  v += off, m += off, h += off, n += off;
  // alpha, beta of m, h, n; with kJvp then their derivatives in v
  alignas(64) double rate[kJvp ? 12 : 6][kBlock];
  for (int64_t b = 0; b < count; b += kBlock) {
    const int64_t size = std::min(kBlock, count - b);
    for (int64_t i = 0; i < size; ++i) {
      const double vi = v[b + i];
      const double e40 = exp_poly(-(vi + 40.0) * 0.1);
      const double e80 = exp_poly(-(vi + 65.0) * (1.0 / 80.0));
      const double e18 = exp_poly(-(vi + 65.0) * (1.0 / 18.0));
      const Vtrap alpha_m = vtrap10(-(vi + 40.0), e40, 0.1);
      const Vtrap alpha_n = vtrap10(-(vi + 55.0), e40 * kExpMinus1p5, 0.01);
      const double beta_m = 4.0 * e18;
      const double e80sq = e80 * e80;
      const double alpha_h = 0.07 * (e80sq * e80sq);
      const double beta_h = 1.0 / (e40 * kExpHalf + 1.0);
      const double beta_n = 0.125 * e80;
      rate[0][i] = alpha_m.value, rate[1][i] = beta_m;
      rate[2][i] = alpha_h, rate[3][i] = beta_h;
      rate[4][i] = alpha_n.value, rate[5][i] = beta_n;
      if (kJvp) {
        rate[6][i] = alpha_m.dv, rate[7][i] = beta_m * (-1.0 / 18.0);
        rate[8][i] = alpha_h * -0.05, rate[9][i] = kExpHalf * 0.1 * e40 * beta_h * beta_h;
        rate[10][i] = alpha_n.dv, rate[11][i] = beta_n * (-1.0 / 80.0);
      }
    }
    // element i reads and writes element i only: no dependence between iterations
#pragma GCC ivdep
    for (int64_t i = 0; i < size; ++i) {
      const int64_t j = b + i;
      const Gate gm{rate[0][i], rate[1][i], kJvp ? rate[6][i] : 0.0, kJvp ? rate[7][i] : 0.0};
      const Gate gh{rate[2][i], rate[3][i], kJvp ? rate[8][i] : 0.0, kJvp ? rate[9][i] : 0.0};
      const Gate gn{rate[4][i], rate[5][i], kJvp ? rate[10][i] : 0.0, kJvp ? rate[11][i] : 0.0};
      double x, a, e;
      step<kJvp>(gm, m[j], q, dt, &x, &a, &e);
      m1[j] = static_cast<T>(x);
      if (kJvp) slope_m[j] = static_cast<T>(a), decay_m[j] = static_cast<T>(e);
      step<kJvp>(gh, h[j], q, dt, &x, &a, &e);
      h1[j] = static_cast<T>(x);
      if (kJvp) slope_h[j] = static_cast<T>(a), decay_h[j] = static_cast<T>(e);
      step<kJvp>(gn, n[j], q, dt, &x, &a, &e);
      n1[j] = static_cast<T>(x);
      if (kJvp) slope_n[j] = static_cast<T>(a), decay_n[j] = static_cast<T>(e);
    }
  }
}

// --- instruction sets ------------------------------------------------------------
//
// Compiled for the build's baseline and, on x86-64, for AVX2 with FMA and for AVX-512
// (isa.h: chosen at run time). AVX-512's 8 lanes halve the time of AVX2's 4 here: the
// loop is bound by arithmetic, not memory.

template <bool kJvp, typename T>
using GatesFn = void (*)(const T*, const T*, const T*, const T*, double, double, T* const*,
                         int64_t, int64_t);

template <bool kJvp, typename T>
void gates_baseline(const T* v, const T* m, const T* h, const T* n, double q, double dt,
                    T* const* out, int64_t off, int64_t count) {
  gates_range<kJvp>(v, m, h, n, q, dt, out, off, count);
}

#ifdef DENDRAX_HAVE_AVX2
template <bool kJvp, typename T>
__attribute__((target("avx2,fma"))) void gates_avx2(const T* v, const T* m, const T* h,
                                                    const T* n, double q, double dt,
                                                    T* const* out, int64_t off, int64_t count) {
  gates_range<kJvp>(v, m, h, n, q, dt, out, off, count);
}
template <bool kJvp, typename T>
__attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma,prefer-vector-width=512"))) void
gates_avx512(const T* v, const T* m, const T* h, const T* n, double q, double dt, T* const* out,
             int64_t off, int64_t count) {
  gates_range<kJvp>(v, m, h, n, q, dt, out, off, count);
}
#endif


template <bool kJvp, typename T>
GatesFn<kJvp, T> gates_kernel() {
#ifdef DENDRAX_HAVE_AVX2
  if (cpu_isa() == Isa::kAvx512) return gates_avx512<kJvp, T>;
  if (cpu_isa() == Isa::kAvx2) return gates_avx2<kJvp, T>;
#endif
  return gates_baseline<kJvp, T>;
}

// --- handlers --------------------------------------------------------------------

constexpr int64_t kChunk = 1024;  // elements per work item, at most

// Work items: pieces of at most kChunk elements of one row each.
template <bool kJvp, typename T>
void run(const ffi::AnyBuffer* in, T* const* out, int64_t size, int64_t cols) {
  const GatesFn<kJvp, T> kernel = gates_kernel<kJvp, T>();
  const T* p[6];
  for (int k = 0; k < 6; ++k) p[k] = in[k].typed_data<T>();
  const int64_t pieces = (cols + kChunk - 1) / kChunk;
  parallel_for(size / cols * pieces, size, kMinElementsPerThread, max_threads(),
               [&](int64_t item, int) {
                 const int64_t row = item / pieces, c0 = (item % pieces) * kChunk;
                 kernel(p[0], p[1], p[2], p[3], static_cast<double>(p[4][row]),
                        static_cast<double>(p[5][row]), out, row * cols + c0,
                        std::min(kChunk, cols - c0));
               });
}

// The operands' dtypes and shapes, or an InvalidArgument error naming the problem.
ffi::Error check(const ffi::AnyBuffer* in, int64_t* size, int64_t* cols) {
  static const char* const kNames[6] = {"v", "m", "h", "n", "q", "dt"};
  const ffi::DataType dtype = in[0].element_type();
  if (dtype != ffi::DataType::F32 && dtype != ffi::DataType::F64)
    return ffi::Error::InvalidArgument("hh gates: operands must be float32 or float64");
  const auto dims = in[0].dimensions();
  if (dims.size() == 0) return ffi::Error::InvalidArgument("hh gates: v needs a node axis");
  *cols = dims[dims.size() - 1];
  *size = static_cast<int64_t>(in[0].element_count());
  for (int k = 1; k < 6; ++k) {
    if (in[k].element_type() != dtype)
      return ffi::Error::InvalidArgument(std::string("hh gates: ") + kNames[k] +
                                         " has another dtype than v");
    const auto d = in[k].dimensions();
    bool ok = d.size() == dims.size();
    for (size_t j = 0; ok && j + 1 < d.size(); ++j) ok = d[j] == dims[j];
    ok = ok && d[d.size() - 1] == (k < 4 ? *cols : 1);
    if (!ok)
      return ffi::Error::InvalidArgument(std::string("hh gates: ") + kNames[k] +
                                         (k < 4 ? " must have v's shape"
                                                : " must have v's shape with a last axis of 1"));
  }
  return ffi::Error::Success();
}

template <bool kJvp>
ffi::Error gates(const ffi::AnyBuffer* in, ffi::Result<ffi::AnyBuffer>* const* res) {
  int64_t size = 0, cols = 1;
  if (auto e = check(in, &size, &cols); !e.success()) return e;
  if (size == 0 || cols == 0) return ffi::Error::Success();
  constexpr int kOut = kJvp ? 9 : 3;
  try {
    if (in[0].element_type() == ffi::DataType::F64) {
      double* out[kOut];
      for (int k = 0; k < kOut; ++k) out[k] = (*res[k])->typed_data<double>();
      run<kJvp, double>(in, out, size, cols);
    } else {
      float* out[kOut];
      for (int k = 0; k < kOut; ++k) out[k] = (*res[k])->typed_data<float>();
      run<kJvp, float>(in, out, size, cols);
    }
  } catch (const std::exception& err) {
    return ffi::Error::Internal(std::string("hh gates: ") + err.what());
  }
  return ffi::Error::Success();
}

using R = ffi::Result<ffi::AnyBuffer>;

ffi::Error GatesImpl(ffi::AnyBuffer v, ffi::AnyBuffer m, ffi::AnyBuffer h, ffi::AnyBuffer n,
                     ffi::AnyBuffer q, ffi::AnyBuffer dt, R m1, R h1, R n1,
                     ffi::ThreadPool threads) {
  ScopedThreads<ffi::ThreadPool> use(threads);
  const ffi::AnyBuffer in[6] = {v, m, h, n, q, dt};
  R* const res[3] = {&m1, &h1, &n1};
  return gates<false>(in, res);
}

ffi::Error GatesJvpImpl(ffi::AnyBuffer v, ffi::AnyBuffer m, ffi::AnyBuffer h, ffi::AnyBuffer n,
                        ffi::AnyBuffer q, ffi::AnyBuffer dt, R m1, R h1, R n1, R am, R ah, R an,
                        R em, R eh, R en, ffi::ThreadPool threads) {
  ScopedThreads<ffi::ThreadPool> use(threads);
  const ffi::AnyBuffer in[6] = {v, m, h, n, q, dt};
  R* const res[9] = {&m1, &h1, &n1, &am, &ah, &an, &em, &eh, &en};
  return gates<true>(in, res);
}

}  // namespace
}  // namespace dendrax

#define DENDRAX_HH_ARGS                                                                     \
  xla::ffi::Ffi::Bind()                                                                     \
      .Arg<xla::ffi::AnyBuffer>()                                                           \
      .Arg<xla::ffi::AnyBuffer>()                                                           \
      .Arg<xla::ffi::AnyBuffer>()                                                           \
      .Arg<xla::ffi::AnyBuffer>()                                                           \
      .Arg<xla::ffi::AnyBuffer>()                                                           \
      .Arg<xla::ffi::AnyBuffer>()                                                           \
      .Ret<xla::ffi::AnyBuffer>()                                                           \
      .Ret<xla::ffi::AnyBuffer>()                                                           \
      .Ret<xla::ffi::AnyBuffer>()

XLA_FFI_DEFINE_HANDLER_SYMBOL(DendraxHHGates, dendrax::GatesImpl,
                              DENDRAX_HH_ARGS.Ctx<xla::ffi::ThreadPool>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(DendraxHHGatesJvp, dendrax::GatesJvpImpl,
                              DENDRAX_HH_ARGS.Ret<xla::ffi::AnyBuffer>()
                                  .Ret<xla::ffi::AnyBuffer>()
                                  .Ret<xla::ffi::AnyBuffer>()
                                  .Ret<xla::ffi::AnyBuffer>()
                                  .Ret<xla::ffi::AnyBuffer>()
                                  .Ret<xla::ffi::AnyBuffer>()
                                  .Ctx<xla::ffi::ThreadPool>());

NB_MODULE(_hh_cpu, m) {
  m.doc() = "CPU handlers of dendrax's Hodgkin-Huxley gate step for the XLA FFI.";
  m.def("registrations", []() {
    nb::dict d;
    d["dendrax_hh_gates"] = nb::capsule(reinterpret_cast<void*>(DendraxHHGates));
    d["dendrax_hh_gates_jvp"] = nb::capsule(reinterpret_cast<void*>(DendraxHHGatesJvp));
    return d;
  });
}
