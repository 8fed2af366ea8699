// CUDA handlers of the Hines solve on the typed XLA FFI: one thread per
// system, node-major layout so the threads of a warp read consecutive systems.
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "hines_kernel.h"
#include "layout.h"
#include "nanobind/nanobind.h"
#include "xla/ffi/api/ffi.h"

namespace nb = nanobind;
namespace ffi = xla::ffi;

namespace dendrax {
namespace {

constexpr int kThreads = 128;

// Systems with an invalid parent array are filled with NaN and flagged; the
// host turns the flag into an FFI error.
template <typename T>
__global__ void factor_solve_kernel(Layout L, const int32_t* parent, const T* lo, const T* d,
                                    const T* up, const T* r, T* x, T* dinv, int* bad) {
  const int64_t g = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (g >= L.nlead * L.nt) return;
  const int64_t l = g / L.nt, t = g % L.nt, blk = L.n * L.nt;
  const int32_t* par = parent + L.block(0, l) * L.n;
  if (!valid_parents(par, L.n)) {
    for (int64_t i = 0; i < L.n; ++i) x[l * blk + i * L.nt + t] = dinv[l * blk + i * L.nt + t] = NAN;
    atomicExch(bad, 1);
    return;
  }
  factor_solve(par, lo + L.block(1, l) * blk, d + L.block(2, l) * blk, up + L.block(3, l) * blk,
               r + L.block(4, l) * blk, x + l * blk, dinv + l * blk, L.n, L.nt, t, t + 1);
}

template <typename T>
__global__ void substitute_kernel(Layout L, const int32_t* parent, const T* lo, const T* up,
                                  const T* dinv, const T* r, T* x, int* bad) {
  const int64_t g = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (g >= L.nlead * L.nt) return;
  const int64_t l = g / L.nt, t = g % L.nt, blk = L.n * L.nt;
  const int32_t* par = parent + L.block(0, l) * L.n;
  if (!valid_parents(par, L.n)) {
    for (int64_t i = 0; i < L.n; ++i) x[l * blk + i * L.nt + t] = NAN;
    atomicExch(bad, 1);
    return;
  }
  substitute(par, lo + L.block(1, l) * blk, up + L.block(2, l) * blk, dinv + L.block(3, l) * blk,
             r + L.block(4, l) * blk, x + l * blk, L.n, L.nt, t, t + 1);
}

ffi::Error cuda_error(const char* what) {
  cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? ffi::Error::Success()
                          : ffi::Error::Internal(std::string("hines (CUDA) ") + what + ": " +
                                                 cudaGetErrorString(e));
}

// Launches `launch(bad)` and reports invalid parents as an FFI error.
template <typename Launch>
ffi::Error run_checked(cudaStream_t stream, ffi::ScratchAllocator& scratch, Launch launch) {
  auto mem = scratch.Allocate(sizeof(int));
  if (!mem.has_value()) return ffi::Error::Internal("hines (CUDA): scratch allocation failed");
  int* bad = static_cast<int*>(*mem);
  cudaMemsetAsync(bad, 0, sizeof(int), stream);
  launch(bad);
  if (auto e = cuda_error("launch"); !e.success()) return e;
  int host_bad = 0;
  cudaMemcpyAsync(&host_bad, bad, sizeof(int), cudaMemcpyDeviceToHost, stream);
  cudaStreamSynchronize(stream);
  if (auto e = cuda_error("sync"); !e.success()) return e;
  if (host_bad)
    return ffi::Error::InvalidArgument(
        "hines: parent must satisfy -1 <= parent[i] < i for every node i");
  return ffi::Error::Success();
}

int64_t n_blocks(const Layout& L) { return (L.nlead * L.nt + kThreads - 1) / kThreads; }

const char* const kFactorNames[kOperands] = {"parent", "lower", "diag", "upper", "rhs"};
const char* const kSubstituteNames[kOperands] = {"parent", "lower", "upper", "dinv", "rhs"};

ffi::Error FactorSolveCuda(cudaStream_t stream, ffi::ScratchAllocator scratch,
                           ffi::Buffer<ffi::S32> parent, ffi::AnyBuffer lower, ffi::AnyBuffer diag,
                           ffi::AnyBuffer upper, ffi::AnyBuffer rhs,
                           ffi::Result<ffi::AnyBuffer> x, ffi::Result<ffi::AnyBuffer> dinv) {
  const ffi::DataType dtype = lower.element_type();
  for (auto t : {diag.element_type(), upper.element_type(), rhs.element_type(),
                 x->element_type(), dinv->element_type()})
    if (t != dtype) return ffi::Error::InvalidArgument("hines: float operands must share one dtype");
  if (dtype != ffi::DataType::F32 && dtype != ffi::DataType::F64)
    return ffi::Error::InvalidArgument("hines: float operands must be float32 or float64");
  Layout L;
  const ffi::Span<const int64_t> dims[kOperands] = {parent.dimensions(), lower.dimensions(),
                                                    diag.dimensions(), upper.dimensions(),
                                                    rhs.dimensions()};
  if (auto e = make_layout(dims, x->dimensions(), kFactorNames, &L); !e.success()) return e;
  if (L.nlead * L.nt == 0 || L.n == 0) return ffi::Error::Success();
  return run_checked(stream, scratch, [&](int* bad) {
    if (dtype == ffi::DataType::F64)
      factor_solve_kernel<double><<<n_blocks(L), kThreads, 0, stream>>>(
          L, parent.typed_data(), lower.typed_data<double>(), diag.typed_data<double>(),
          upper.typed_data<double>(), rhs.typed_data<double>(), x->typed_data<double>(),
          dinv->typed_data<double>(), bad);
    else
      factor_solve_kernel<float><<<n_blocks(L), kThreads, 0, stream>>>(
          L, parent.typed_data(), lower.typed_data<float>(), diag.typed_data<float>(),
          upper.typed_data<float>(), rhs.typed_data<float>(), x->typed_data<float>(),
          dinv->typed_data<float>(), bad);
  });
}

ffi::Error SubstituteCuda(cudaStream_t stream, ffi::ScratchAllocator scratch,
                          ffi::Buffer<ffi::S32> parent, ffi::AnyBuffer lower, ffi::AnyBuffer upper,
                          ffi::AnyBuffer dinv, ffi::AnyBuffer rhs, ffi::Result<ffi::AnyBuffer> x) {
  const ffi::DataType dtype = lower.element_type();
  for (auto t : {upper.element_type(), dinv.element_type(), rhs.element_type(), x->element_type()})
    if (t != dtype) return ffi::Error::InvalidArgument("hines: float operands must share one dtype");
  if (dtype != ffi::DataType::F32 && dtype != ffi::DataType::F64)
    return ffi::Error::InvalidArgument("hines: float operands must be float32 or float64");
  Layout L;
  const ffi::Span<const int64_t> dims[kOperands] = {parent.dimensions(), lower.dimensions(),
                                                    upper.dimensions(), dinv.dimensions(),
                                                    rhs.dimensions()};
  if (auto e = make_layout(dims, x->dimensions(), kSubstituteNames, &L); !e.success()) return e;
  if (L.nlead * L.nt == 0 || L.n == 0) return ffi::Error::Success();
  return run_checked(stream, scratch, [&](int* bad) {
    if (dtype == ffi::DataType::F64)
      substitute_kernel<double><<<n_blocks(L), kThreads, 0, stream>>>(
          L, parent.typed_data(), lower.typed_data<double>(), upper.typed_data<double>(),
          dinv.typed_data<double>(), rhs.typed_data<double>(), x->typed_data<double>(), bad);
    else
      substitute_kernel<float><<<n_blocks(L), kThreads, 0, stream>>>(
          L, parent.typed_data(), lower.typed_data<float>(), upper.typed_data<float>(),
          dinv.typed_data<float>(), rhs.typed_data<float>(), x->typed_data<float>(), bad);
  });
}

}  // namespace
}  // namespace dendrax

XLA_FFI_DEFINE_HANDLER_SYMBOL(DendraxHinesFactorSolveCuda, dendrax::FactorSolveCuda,
                              xla::ffi::Ffi::Bind()
                                  .Ctx<xla::ffi::PlatformStream<cudaStream_t>>()
                                  .Ctx<xla::ffi::ScratchAllocator>()
                                  .Arg<xla::ffi::Buffer<xla::ffi::S32>>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Ret<xla::ffi::AnyBuffer>()
                                  .Ret<xla::ffi::AnyBuffer>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(DendraxHinesSubstituteCuda, dendrax::SubstituteCuda,
                              xla::ffi::Ffi::Bind()
                                  .Ctx<xla::ffi::PlatformStream<cudaStream_t>>()
                                  .Ctx<xla::ffi::ScratchAllocator>()
                                  .Arg<xla::ffi::Buffer<xla::ffi::S32>>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Ret<xla::ffi::AnyBuffer>());

NB_MODULE(_hines_cuda, m) {
  m.doc() = "CUDA handlers of dendrax's Hines solve for the XLA FFI.";
  m.def("registrations", []() {
    nb::dict d;
    d["dendrax_hines_factor_solve"] =
        nb::capsule(reinterpret_cast<void*>(DendraxHinesFactorSolveCuda));
    d["dendrax_hines_substitute"] =
        nb::capsule(reinterpret_cast<void*>(DendraxHinesSubstituteCuda));
    return d;
  });
}
