// CUDA handlers of event delivery (dendrax.events.deliver and take) on the typed XLA FFI.
//
// deliver: one warp per (batch entry, source): a warp whose source did not fire returns at
// once, the others split the source's connections over their 32 lanes (consecutive
// lanes read consecutive connections: coalesced) and add with atomicAdd. Work is
// O(S + spikes x fan-out). The order of the additions into one target is not fixed,
// so float sums may differ in the last bits from run to run and from the CPU.
// Bad traced data is clamped or skipped (see events_kernel.h); nothing is reported
// back, so the call never waits for the device.
// take: one thread per element of the row: copy it out, zero it.
// Both are command-buffer compatible (as the Hines handlers, hines_cuda.cu): XLA:GPU may
// record them into a CUDA graph.
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "events_kernel.h"
#include "events_layout.h"
// nanobind compares an unsigned index with 0 for zero-argument functions (registrations());
// nvcc warns (#186) at that line of nb_func.h wherever the template is instantiated.
#pragma nv_diag_suppress 186
#include "nanobind/nanobind.h"
#pragma nv_diag_default 186
#include "xla/ffi/api/ffi.h"

namespace nb = nanobind;
namespace ffi = xla::ffi;

namespace dendrax {
namespace events {
namespace {

constexpr int kThreads = 256;
constexpr int kWarp = 32;

struct AtomicAdd {
  template <typename T>
  __host__ __device__ void operator()(T* p, T v) const {
#if defined(__CUDA_ARCH__)
    atomicAdd(p, v);
#else
    *p += v;
#endif
  }
};

template <typename T>
__global__ void deliver_kernel(Layout L, const bool* fired, const int32_t* ptr,
                               const int32_t* target, const int32_t* delay, const T* weight,
                               const int32_t* step, T* out) {
  const int64_t g = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const int64_t w = g / kWarp, lane = g % kWarp;
  if (w >= L.nlead * L.s) return;
  const int64_t l = w / L.s, s = w % L.s;
  if (!fired[L.block(kFired, l) * L.s + s]) return;
  const Sizes n{L.d, L.s, L.p, L.c};
  int64_t b, e;
  source_range(ptr + L.block(kPtr, l) * (L.s + 1), s, L.c, &b, &e);
  const int64_t row0 = ring_row(step[L.block(kStep, l)], L.d);
  deliver_range(n, row0, target + L.block(kTarget, l) * L.c, delay + L.block(kDelay, l) * L.c,
                weight + L.block(kWeight, l) * L.c, b, e, lane, kWarp,
                out + l * L.d * 2 * L.p, AtomicAdd{});
}

ffi::Error cuda_error(const char* what) {
  cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? ffi::Error::Success()
                          : ffi::Error::Internal(std::string("deliver (CUDA) ") + what + ": " +
                                                 cudaGetErrorString(e));
}

// out <- buffer (broadcast over the batch where it is), unless XLA aliased them.
template <typename T>
ffi::Error copy_buffer(cudaStream_t stream, const Layout& L, const T* buffer, T* out,
                       bool buffer_full) {
  const int64_t blk = L.d * 2 * L.p;
  const size_t bytes = static_cast<size_t>(blk) * sizeof(T);
  if (static_cast<const void*>(out) == static_cast<const void*>(buffer) || blk == 0)
    return ffi::Error::Success();
  if (buffer_full) {
    cudaMemcpyAsync(out, buffer, bytes * L.nlead, cudaMemcpyDeviceToDevice, stream);
  } else {
    for (int64_t l = 0; l < L.nlead; ++l)
      cudaMemcpyAsync(out + l * blk, buffer + L.block(kBuffer, l) * blk, bytes,
                      cudaMemcpyDeviceToDevice, stream);
  }
  return cuda_error("copy");
}

bool same_dims(ffi::Span<const int64_t> a, ffi::Span<const int64_t> b) {
  if (a.size() != b.size()) return false;
  for (size_t k = 0; k < a.size(); ++k)
    if (a[k] != b[k]) return false;
  return true;
}

template <typename T>
ffi::Error deliver_typed(cudaStream_t stream, const Layout& L, const T* buffer, const bool* fired,
                         const int32_t* ptr, const int32_t* target, const int32_t* delay,
                         const T* weight, const int32_t* step, T* out, bool buffer_full) {
  const int64_t blk = L.d * 2 * L.p;
  if (auto e = copy_buffer(stream, L, buffer, out, buffer_full); !e.success()) return e;
  const int64_t threads = L.nlead * L.s * kWarp;
  if (threads == 0 || blk == 0) return ffi::Error::Success();
  const int64_t blocks = (threads + kThreads - 1) / kThreads;
  if (blocks > INT32_MAX) return ffi::Error::InvalidArgument("deliver (CUDA): too many sources");
  deliver_kernel<T><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      L, fired, ptr, target, delay, weight, step, out);
  return cuda_error("launch");
}

ffi::Error DeliverCuda(cudaStream_t stream, ffi::AnyBuffer buffer, ffi::Buffer<ffi::PRED> fired,
                       ffi::Buffer<ffi::S32> ptr, ffi::Buffer<ffi::S32> target,
                       ffi::Buffer<ffi::S32> delay, ffi::AnyBuffer weight,
                       ffi::Buffer<ffi::S32> step, ffi::Result<ffi::AnyBuffer> out) {
  const ffi::DataType dtype = buffer.element_type();
  if (dtype != ffi::DataType::F32 && dtype != ffi::DataType::F64)
    return ffi::Error::InvalidArgument("deliver: buffer must be float32 or float64");
  if (weight.element_type() != dtype || out->element_type() != dtype)
    return ffi::Error::InvalidArgument("deliver: buffer and weight must share one dtype");
  Layout L;
  const ffi::Span<const int64_t> dims[kOperands] = {
      buffer.dimensions(), fired.dimensions(), ptr.dimensions(),  target.dimensions(),
      delay.dimensions(),  weight.dimensions(), step.dimensions()};
  if (auto e = make_layout(dims, out->dimensions(), &L); !e.success()) return e;
  if (L.nlead == 0) return ffi::Error::Success();
  const bool full = same_dims(buffer.dimensions(), out->dimensions());
  if (dtype == ffi::DataType::F64)
    return deliver_typed(stream, L, buffer.typed_data<double>(), fired.typed_data(),
                         ptr.typed_data(), target.typed_data(), delay.typed_data(),
                         weight.typed_data<double>(), step.typed_data(),
                         out->typed_data<double>(), full);
  return deliver_typed(stream, L, buffer.typed_data<float>(), fired.typed_data(), ptr.typed_data(),
                       target.typed_data(), delay.typed_data(), weight.typed_data<float>(),
                       step.typed_data(), out->typed_data<float>(), full);
}

template <typename T>
__global__ void take_kernel(Layout L, const int32_t* step, T* out, T* row) {
  const int64_t rs = 2 * L.p;
  const int64_t g = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (g >= L.nlead * rs) return;
  const int64_t l = g / rs, k = g % rs;
  T* r = out + l * L.d * rs + ring_row(step[L.block(kStep, l)], L.d) * rs;
  row[g] = r[k];
  r[k] = T(0);
}

template <typename T>
ffi::Error take_typed(cudaStream_t stream, const Layout& L, const T* buffer, const int32_t* step,
                      T* out, T* row, bool buffer_full) {
  if (auto e = copy_buffer(stream, L, buffer, out, buffer_full); !e.success()) return e;
  const int64_t threads = L.nlead * 2 * L.p;
  if (threads == 0) return ffi::Error::Success();
  const int64_t blocks = (threads + kThreads - 1) / kThreads;
  if (blocks > INT32_MAX) return ffi::Error::InvalidArgument("take (CUDA): buffer too large");
  take_kernel<T><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(L, step, out, row);
  return cuda_error("launch");
}

ffi::Error TakeCuda(cudaStream_t stream, ffi::AnyBuffer buffer, ffi::Buffer<ffi::S32> step,
                    ffi::Result<ffi::AnyBuffer> out, ffi::Result<ffi::AnyBuffer> row) {
  const ffi::DataType dtype = buffer.element_type();
  if (dtype != ffi::DataType::F32 && dtype != ffi::DataType::F64)
    return ffi::Error::InvalidArgument("take: buffer must be float32 or float64");
  if (out->element_type() != dtype || row->element_type() != dtype)
    return ffi::Error::InvalidArgument("take: results must have the dtype of buffer");
  Layout L;
  if (auto e = make_take_layout(buffer.dimensions(), step.dimensions(), out->dimensions(),
                                row->dimensions(), &L);
      !e.success())
    return e;
  if (L.nlead == 0 || L.d == 0) return ffi::Error::Success();
  const bool full = same_dims(buffer.dimensions(), out->dimensions());
  if (dtype == ffi::DataType::F64)
    return take_typed(stream, L, buffer.typed_data<double>(), step.typed_data(),
                      out->typed_data<double>(), row->typed_data<double>(), full);
  return take_typed(stream, L, buffer.typed_data<float>(), step.typed_data(),
                    out->typed_data<float>(), row->typed_data<float>(), full);
}

}  // namespace
}  // namespace events
}  // namespace dendrax

XLA_FFI_DEFINE_HANDLER_SYMBOL(DendraxEventsTakeCuda, dendrax::events::TakeCuda,
                              xla::ffi::Ffi::Bind()
                                  .Ctx<xla::ffi::PlatformStream<cudaStream_t>>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::Buffer<xla::ffi::S32>>()
                                  .Ret<xla::ffi::AnyBuffer>()
                                  .Ret<xla::ffi::AnyBuffer>(),
                              {xla::ffi::Traits::kCmdBufferCompatible});

XLA_FFI_DEFINE_HANDLER_SYMBOL(DendraxEventsDeliverCuda, dendrax::events::DeliverCuda,
                              xla::ffi::Ffi::Bind()
                                  .Ctx<xla::ffi::PlatformStream<cudaStream_t>>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::Buffer<xla::ffi::PRED>>()
                                  .Arg<xla::ffi::Buffer<xla::ffi::S32>>()
                                  .Arg<xla::ffi::Buffer<xla::ffi::S32>>()
                                  .Arg<xla::ffi::Buffer<xla::ffi::S32>>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::Buffer<xla::ffi::S32>>()
                                  .Ret<xla::ffi::AnyBuffer>(),
                              {xla::ffi::Traits::kCmdBufferCompatible});

NB_MODULE(_events_cuda, m) {
  m.doc() = "CUDA handlers of dendrax's event delivery (dendrax.events) for the XLA FFI.";
  m.def("registrations", []() {
    nb::dict d;
    d["dendrax_events_deliver"] = nb::capsule(reinterpret_cast<void*>(DendraxEventsDeliverCuda));
    d["dendrax_events_take"] = nb::capsule(reinterpret_cast<void*>(DendraxEventsTakeCuda));
    return d;
  });
}
