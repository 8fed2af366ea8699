// CUDA handlers of the Hines solve on the typed XLA FFI. No handler synchronises the
// host: each enqueues one kernel on XLA's stream and returns. So each is marked
// command-buffer compatible (it launches on XLA's stream only, allocates nothing and
// never queries the stream): XLA:GPU may then record it into one CUDA graph with the
// ops around it, e.g. a whole time step, instead of launching it on its own.
//
// Two kinds of targets:
//  * dendrax_hines_factor_solve / dendrax_hines_substitute (parent traced, e.g. one
//    tree per vmapped system): one thread per system (hines_kernel.h's device-portable
//    loops), node-major layout so a warp reads consecutive systems. The parent array is
//    unknown to the host, so each thread checks its own (O(N) reads) and, when it breaks
//    -1 <= parent[i] < i, fills its system with NaN instead of solving (no error: an FFI
//    error would need the flag on the host, i.e. a synchronisation per call).
//  * dendrax_hines_factor_solve_scheduled / dendrax_hines_substitute_scheduled (parent
//    concrete when traced, validated in Python, one tree for the whole call): the
//    branch-level schedule of hines_schedule.h, built on the host from that parent array,
//    is one more operand; the attribute `width` is its widest level (branches). The
//    kernels trust parent and schedule. A block solves a tile of up to 32 consecutive
//    systems (threadIdx.x, coalesced) with `slots` threads per system (threadIdx.y)
//    sharing the branches of a level, __syncthreads between levels; one cell is then
//    solved by up to 256 threads. When one thread per system already fills the device
//    (systems >= 2048 per multiprocessor, decided per call from the static shapes) the
//    slots are 1 and the plain one-thread-per-system kernel runs, unchecked.
// All kernels round as the CPU kernel does (products through `mul`, never fused): the
// same results bit for bit.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "hines_kernel.h"
#include "hines_schedule.h"
#include "layout.h"
// nanobind compares an unsigned index with 0 for zero-argument functions (registrations());
// nvcc warns (#186) at that line of nb_func.h wherever the template is instantiated.
#pragma nv_diag_suppress 186
#include "nanobind/nanobind.h"
#pragma nv_diag_default 186
#include "xla/ffi/api/ffi.h"

namespace nb = nanobind;
namespace ffi = xla::ffi;

namespace dendrax {
namespace {

constexpr int kThreads = 128;        // one-thread-per-system kernels
constexpr int kTileSystems = 32;     // scheduled kernels: systems per block (a warp's width)
constexpr int kBlockThreads = 256;   // scheduled kernels: at most this many threads a block
constexpr int kThreadsPerSm = 2048;  // resident threads a multiprocessor holds (sm_75+: 1024-2048)

// --- one thread per system -------------------------------------------------------------

// kGuard: the parent array was not validated (traced): a thread whose parent array is
// invalid writes NaN to its system.
template <typename T, bool kGuard>
__global__ void factor_solve_kernel(Layout L, const int32_t* parent, const T* lo, const T* d,
                                    const T* up, const T* r, T* x, T* dinv) {
  const int64_t g = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (g >= L.nlead * L.nt) return;
  const int64_t l = g / L.nt, t = g % L.nt, blk = L.n * L.nt;
  const int32_t* par = parent + L.block(0, l) * L.n;
  if (kGuard && !valid_parents(par, L.n)) {
    for (int64_t i = 0; i < L.n; ++i) x[l * blk + i * L.nt + t] = dinv[l * blk + i * L.nt + t] = NAN;
    return;
  }
  factor_solve(par, lo + L.block(1, l) * blk, d + L.block(2, l) * blk, up + L.block(3, l) * blk,
               r + L.block(4, l) * blk, x + l * blk, dinv + l * blk, L.n, L.nt, t, t + 1);
}

template <typename T, bool kGuard>
__global__ void substitute_kernel(Layout L, const int32_t* parent, const T* lo, const T* up,
                                  const T* dinv, const T* r, T* x) {
  const int64_t g = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (g >= L.nlead * L.nt) return;
  const int64_t l = g / L.nt, t = g % L.nt, blk = L.n * L.nt;
  const int32_t* par = parent + L.block(0, l) * L.n;
  if (kGuard && !valid_parents(par, L.n)) {
    for (int64_t i = 0; i < L.n; ++i) x[l * blk + i * L.nt + t] = NAN;
    return;
  }
  substitute(par, lo + L.block(1, l) * blk, up + L.block(2, l) * blk, dinv + L.block(3, l) * blk,
             r + L.block(4, l) * blk, x + l * blk, L.n, L.nt, t, t + 1);
}

// --- branch-level schedule: threads of a block share one tile of systems ------------------

// Block b: leading entry b / tiles, systems [tile * blockDim.x, +blockDim.x) of it.
template <typename T>
__global__ void factor_solve_scheduled_kernel(Layout L, int64_t tiles, const int32_t* sched,
                                              const int32_t* parent, const T* lo, const T* d,
                                              const T* up, const T* r, T* x, T* dinv) {
  const int64_t l = blockIdx.x / tiles, blk = L.n * L.nt;
  const int64_t t = (blockIdx.x % tiles) * blockDim.x + threadIdx.x;
  const bool active = t < L.nt;
  const Schedule S = unpack_schedule(sched);
  const int32_t* par = parent + L.block(0, l) * L.n;
  lo += L.block(1, l) * blk;
  d += L.block(2, l) * blk;
  up += L.block(3, l) * blk;
  r += L.block(4, l) * blk;
  x += l * blk;
  dinv += l * blk;
  for (int32_t lev = S.n_levels - 1; lev >= 0; --lev) {
    if (active)
      for (int32_t b = S.level_ptr[lev] + threadIdx.y; b < S.level_ptr[lev + 1]; b += blockDim.y)
        factor_branch(S, b, lo, d, up, r, x, dinv, L.nt, t);
    __syncthreads();
  }
  for (int32_t lev = 0; lev < S.n_levels; ++lev) {
    if (active)
      for (int32_t b = S.level_ptr[lev] + threadIdx.y; b < S.level_ptr[lev + 1]; b += blockDim.y)
        back_branch(S, b, par, lo, dinv, x, L.nt, t);
    if (lev + 1 < S.n_levels) __syncthreads();
  }
}

template <typename T>
__global__ void substitute_scheduled_kernel(Layout L, int64_t tiles, const int32_t* sched,
                                            const int32_t* parent, const T* lo, const T* up,
                                            const T* dinv, const T* r, T* x) {
  const int64_t l = blockIdx.x / tiles, blk = L.n * L.nt;
  const int64_t t = (blockIdx.x % tiles) * blockDim.x + threadIdx.x;
  const bool active = t < L.nt;
  const Schedule S = unpack_schedule(sched);
  const int32_t* par = parent + L.block(0, l) * L.n;
  lo += L.block(1, l) * blk;
  up += L.block(2, l) * blk;
  dinv += L.block(3, l) * blk;
  r += L.block(4, l) * blk;
  x += l * blk;
  for (int32_t lev = S.n_levels - 1; lev >= 0; --lev) {
    if (active)
      for (int32_t b = S.level_ptr[lev] + threadIdx.y; b < S.level_ptr[lev + 1]; b += blockDim.y)
        substitute_branch(S, b, up, dinv, r, x, L.nt, t);
    __syncthreads();
  }
  for (int32_t lev = 0; lev < S.n_levels; ++lev) {
    if (active)
      for (int32_t b = S.level_ptr[lev] + threadIdx.y; b < S.level_ptr[lev + 1]; b += blockDim.y)
        back_branch(S, b, par, lo, dinv, x, L.nt, t);
    if (lev + 1 < S.n_levels) __syncthreads();
  }
}

// --- launch configuration -------------------------------------------------------------

ffi::Error cuda_error(const char* what) {
  cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? ffi::Error::Success()
                          : ffi::Error::Internal(std::string("hines (CUDA) ") + what + ": " +
                                                 cudaGetErrorString(e));
}

// Multiprocessors of the current device: host-side queries only, no synchronisation.
int64_t multiprocessors() {
  int dev = 0, sms = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) {
    cudaGetLastError();  // clear: fall back to a guess
    sms = 80;
  }
  return std::max(1, sms);
}

// How a scheduled call runs: `slots` threads per system, a tile of `lanes` systems a
// block, `tiles` blocks per leading entry. slots == 0: one thread per system instead.
struct Plan {
  int lanes = 1, slots = 0;
  int64_t tiles = 1;
};

Plan plan(const Layout& L, int64_t width) {
  Plan p;
  const int64_t systems = L.nlead * L.nt;
  if (systems >= multiprocessors() * kThreadsPerSm) return p;  // slots = 0
  p.lanes = static_cast<int>(std::min<int64_t>(L.nt, kTileSystems));
  p.tiles = (L.nt + p.lanes - 1) / p.lanes;
  p.slots = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(width, kBlockThreads / p.lanes)));
  return p;
}

int64_t n_blocks(const Layout& L) { return (L.nlead * L.nt + kThreads - 1) / kThreads; }

// The schedule operand: leading axes of size 1 (it is never batched), then [K].
ffi::Error check_schedule(const Layout& L, ffi::Buffer<ffi::S32>& sched, int64_t width) {
  const auto dims = sched.dimensions();
  bool ok = static_cast<int>(dims.size()) == L.rank_lead + 1;
  for (int d = 0; ok && d < L.rank_lead; ++d) ok = dims[d] == 1;
  // at least one branch of one node, at most one branch per node
  ok = ok && dims[dims.size() - 1] >= schedule_size(L.n, 1, 1, 0) &&
       dims[dims.size() - 1] <= schedule_size(L.n, L.n, L.n, L.n);
  if (!ok)
    return ffi::Error::InvalidArgument("hines: the schedule operand has shape " +
                                       dims_str(dims) + ", not that of a tree of " +
                                       std::to_string(L.n) + " nodes without batch axes");
  if (width < 1 || width > L.n)
    return ffi::Error::InvalidArgument("hines: width = " + std::to_string(width) +
                                       " must lie in [1, " + std::to_string(L.n) + "]");
  return ffi::Error::Success();
}

ffi::Error check_dtypes(std::initializer_list<ffi::DataType> types) {
  const ffi::DataType dtype = *types.begin();
  for (auto t : types)
    if (t != dtype) return ffi::Error::InvalidArgument("hines: float operands must share one dtype");
  if (dtype != ffi::DataType::F32 && dtype != ffi::DataType::F64)
    return ffi::Error::InvalidArgument("hines: float operands must be float32 or float64");
  return ffi::Error::Success();
}

const char* const kFactorNames[kOperands] = {"parent", "lower", "diag", "upper", "rhs"};
const char* const kSubstituteNames[kOperands] = {"parent", "lower", "upper", "dinv", "rhs"};

// --- handlers -------------------------------------------------------------------------

// sched == nullptr: parent traced, guarded one-thread-per-system kernel.
template <typename T>
void launch_factor(cudaStream_t stream, const Layout& L, const int32_t* sched, int64_t width,
                   const int32_t* parent, const T* lo, const T* d, const T* up, const T* r, T* x,
                   T* dinv) {
  if (sched == nullptr) {
    factor_solve_kernel<T, true><<<n_blocks(L), kThreads, 0, stream>>>(L, parent, lo, d, up, r, x, dinv);
    return;
  }
  const Plan p = plan(L, width);
  if (p.slots == 0) {
    factor_solve_kernel<T, false><<<n_blocks(L), kThreads, 0, stream>>>(L, parent, lo, d, up, r, x, dinv);
    return;
  }
  factor_solve_scheduled_kernel<T><<<L.nlead * p.tiles, dim3(p.lanes, p.slots), 0, stream>>>(
      L, p.tiles, sched, parent, lo, d, up, r, x, dinv);
}

template <typename T>
void launch_substitute(cudaStream_t stream, const Layout& L, const int32_t* sched, int64_t width,
                       const int32_t* parent, const T* lo, const T* up, const T* dinv, const T* r,
                       T* x) {
  if (sched == nullptr) {
    substitute_kernel<T, true><<<n_blocks(L), kThreads, 0, stream>>>(L, parent, lo, up, dinv, r, x);
    return;
  }
  const Plan p = plan(L, width);
  if (p.slots == 0) {
    substitute_kernel<T, false><<<n_blocks(L), kThreads, 0, stream>>>(L, parent, lo, up, dinv, r, x);
    return;
  }
  substitute_scheduled_kernel<T><<<L.nlead * p.tiles, dim3(p.lanes, p.slots), 0, stream>>>(
      L, p.tiles, sched, parent, lo, up, dinv, r, x);
}

ffi::Error factor(cudaStream_t stream, ffi::Buffer<ffi::S32>& parent, ffi::AnyBuffer& lower,
                  ffi::AnyBuffer& diag, ffi::AnyBuffer& upper, ffi::AnyBuffer& rhs,
                  ffi::Result<ffi::AnyBuffer>& x, ffi::Result<ffi::AnyBuffer>& dinv,
                  ffi::Buffer<ffi::S32>* sched, int64_t width) {
  if (auto e = check_dtypes({lower.element_type(), diag.element_type(), upper.element_type(),
                             rhs.element_type(), x->element_type(), dinv->element_type()});
      !e.success())
    return e;
  Layout L;
  const ffi::Span<const int64_t> dims[kOperands] = {parent.dimensions(), lower.dimensions(),
                                                    diag.dimensions(), upper.dimensions(),
                                                    rhs.dimensions()};
  if (auto e = make_layout(dims, x->dimensions(), kFactorNames, &L); !e.success()) return e;
  if (sched != nullptr)
    if (auto e = check_schedule(L, *sched, width); !e.success()) return e;
  if (L.nlead * L.nt == 0 || L.n == 0) return ffi::Error::Success();
  const int32_t* s = sched == nullptr ? nullptr : sched->typed_data();
  if (lower.element_type() == ffi::DataType::F64)
    launch_factor(stream, L, s, width, parent.typed_data(), lower.typed_data<double>(),
                  diag.typed_data<double>(), upper.typed_data<double>(), rhs.typed_data<double>(),
                  x->typed_data<double>(), dinv->typed_data<double>());
  else
    launch_factor(stream, L, s, width, parent.typed_data(), lower.typed_data<float>(),
                  diag.typed_data<float>(), upper.typed_data<float>(), rhs.typed_data<float>(),
                  x->typed_data<float>(), dinv->typed_data<float>());
  return cuda_error("launch");
}

ffi::Error subst(cudaStream_t stream, ffi::Buffer<ffi::S32>& parent, ffi::AnyBuffer& lower,
                 ffi::AnyBuffer& upper, ffi::AnyBuffer& dinv, ffi::AnyBuffer& rhs,
                 ffi::Result<ffi::AnyBuffer>& x, ffi::Buffer<ffi::S32>* sched, int64_t width) {
  if (auto e = check_dtypes({lower.element_type(), upper.element_type(), dinv.element_type(),
                             rhs.element_type(), x->element_type()});
      !e.success())
    return e;
  Layout L;
  const ffi::Span<const int64_t> dims[kOperands] = {parent.dimensions(), lower.dimensions(),
                                                    upper.dimensions(), dinv.dimensions(),
                                                    rhs.dimensions()};
  if (auto e = make_layout(dims, x->dimensions(), kSubstituteNames, &L); !e.success()) return e;
  if (sched != nullptr)
    if (auto e = check_schedule(L, *sched, width); !e.success()) return e;
  if (L.nlead * L.nt == 0 || L.n == 0) return ffi::Error::Success();
  const int32_t* s = sched == nullptr ? nullptr : sched->typed_data();
  if (lower.element_type() == ffi::DataType::F64)
    launch_substitute(stream, L, s, width, parent.typed_data(), lower.typed_data<double>(),
                      upper.typed_data<double>(), dinv.typed_data<double>(),
                      rhs.typed_data<double>(), x->typed_data<double>());
  else
    launch_substitute(stream, L, s, width, parent.typed_data(), lower.typed_data<float>(),
                      upper.typed_data<float>(), dinv.typed_data<float>(),
                      rhs.typed_data<float>(), x->typed_data<float>());
  return cuda_error("launch");
}

ffi::Error FactorSolveCuda(cudaStream_t stream, ffi::Buffer<ffi::S32> parent, ffi::AnyBuffer lower,
                           ffi::AnyBuffer diag, ffi::AnyBuffer upper, ffi::AnyBuffer rhs,
                           ffi::Result<ffi::AnyBuffer> x, ffi::Result<ffi::AnyBuffer> dinv) {
  return factor(stream, parent, lower, diag, upper, rhs, x, dinv, nullptr, 0);
}

ffi::Error SubstituteCuda(cudaStream_t stream, ffi::Buffer<ffi::S32> parent, ffi::AnyBuffer lower,
                          ffi::AnyBuffer upper, ffi::AnyBuffer dinv, ffi::AnyBuffer rhs,
                          ffi::Result<ffi::AnyBuffer> x) {
  return subst(stream, parent, lower, upper, dinv, rhs, x, nullptr, 0);
}

ffi::Error FactorSolveScheduledCuda(cudaStream_t stream, ffi::Buffer<ffi::S32> parent,
                                    ffi::AnyBuffer lower, ffi::AnyBuffer diag,
                                    ffi::AnyBuffer upper, ffi::AnyBuffer rhs,
                                    ffi::Buffer<ffi::S32> sched, ffi::Result<ffi::AnyBuffer> x,
                                    ffi::Result<ffi::AnyBuffer> dinv, int64_t width) {
  return factor(stream, parent, lower, diag, upper, rhs, x, dinv, &sched, width);
}

ffi::Error SubstituteScheduledCuda(cudaStream_t stream, ffi::Buffer<ffi::S32> parent,
                                   ffi::AnyBuffer lower, ffi::AnyBuffer upper, ffi::AnyBuffer dinv,
                                   ffi::AnyBuffer rhs, ffi::Buffer<ffi::S32> sched,
                                   ffi::Result<ffi::AnyBuffer> x, int64_t width) {
  return subst(stream, parent, lower, upper, dinv, rhs, x, &sched, width);
}

}  // namespace
}  // namespace dendrax

XLA_FFI_DEFINE_HANDLER_SYMBOL(DendraxHinesFactorSolveCuda, dendrax::FactorSolveCuda,
                              xla::ffi::Ffi::Bind()
                                  .Ctx<xla::ffi::PlatformStream<cudaStream_t>>()
                                  .Arg<xla::ffi::Buffer<xla::ffi::S32>>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Ret<xla::ffi::AnyBuffer>()
                                  .Ret<xla::ffi::AnyBuffer>(),
                              {xla::ffi::Traits::kCmdBufferCompatible});

XLA_FFI_DEFINE_HANDLER_SYMBOL(DendraxHinesSubstituteCuda, dendrax::SubstituteCuda,
                              xla::ffi::Ffi::Bind()
                                  .Ctx<xla::ffi::PlatformStream<cudaStream_t>>()
                                  .Arg<xla::ffi::Buffer<xla::ffi::S32>>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Ret<xla::ffi::AnyBuffer>(),
                              {xla::ffi::Traits::kCmdBufferCompatible});

XLA_FFI_DEFINE_HANDLER_SYMBOL(DendraxHinesFactorSolveScheduledCuda,
                              dendrax::FactorSolveScheduledCuda,
                              xla::ffi::Ffi::Bind()
                                  .Ctx<xla::ffi::PlatformStream<cudaStream_t>>()
                                  .Arg<xla::ffi::Buffer<xla::ffi::S32>>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::Buffer<xla::ffi::S32>>()
                                  .Ret<xla::ffi::AnyBuffer>()
                                  .Ret<xla::ffi::AnyBuffer>()
                                  .Attr<int64_t>("width"),
                              {xla::ffi::Traits::kCmdBufferCompatible});

XLA_FFI_DEFINE_HANDLER_SYMBOL(DendraxHinesSubstituteScheduledCuda,
                              dendrax::SubstituteScheduledCuda,
                              xla::ffi::Ffi::Bind()
                                  .Ctx<xla::ffi::PlatformStream<cudaStream_t>>()
                                  .Arg<xla::ffi::Buffer<xla::ffi::S32>>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::Buffer<xla::ffi::S32>>()
                                  .Ret<xla::ffi::AnyBuffer>()
                                  .Attr<int64_t>("width"),
                              {xla::ffi::Traits::kCmdBufferCompatible});

NB_MODULE(_hines_cuda, m) {
  m.doc() = "CUDA handlers of dendrax's Hines solve for the XLA FFI.";
  m.def("registrations", []() {
    nb::dict d;
    d["dendrax_hines_factor_solve"] =
        nb::capsule(reinterpret_cast<void*>(DendraxHinesFactorSolveCuda));
    d["dendrax_hines_substitute"] =
        nb::capsule(reinterpret_cast<void*>(DendraxHinesSubstituteCuda));
    d["dendrax_hines_factor_solve_scheduled"] =
        nb::capsule(reinterpret_cast<void*>(DendraxHinesFactorSolveScheduledCuda));
    d["dendrax_hines_substitute_scheduled"] =
        nb::capsule(reinterpret_cast<void*>(DendraxHinesSubstituteScheduledCuda));
    return d;
  });
}
