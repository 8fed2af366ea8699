// CPU handlers of event delivery (dendrax.events.deliver and take) on the typed XLA
// FFI, exported to Python as PyCapsules by a nanobind module.
//
// deliver: one thread, sources in order, their connections in order: O(S + spikes x
// fan-out) per call, plus a copy of the ring buffer when XLA did not let the result
// alias it (inside a lax.scan carry it does, and the delivery happens in place).
// take: copies ring row step % D out and zeroes it, O(P) (in place, likewise).
#include <cstdint>
#include <cstring>
#include <string>

#include "events_kernel.h"
#include "events_layout.h"
#include "nanobind/nanobind.h"
#include "xla/ffi/api/ffi.h"

namespace nb = nanobind;
namespace ffi = xla::ffi;

namespace dendrax {
namespace events {
namespace {

template <typename T>
void deliver_typed(const Layout& L, const T* buffer, const bool* fired, const int32_t* ptr,
                   const int32_t* target, const int32_t* delay, const T* weight,
                   const int32_t* step, T* out) {
  const int64_t blk = L.d * 2 * L.p;
  const Sizes n{L.d, L.s, L.p, L.c};
  for (int64_t l = 0; l < L.nlead; ++l) {
    T* o = out + l * blk;
    const T* b = buffer + L.block(kBuffer, l) * blk;
    if (o != b && blk > 0) std::memcpy(o, b, static_cast<size_t>(blk) * sizeof(T));
    deliver_all(n, fired + L.block(kFired, l) * L.s, ptr + L.block(kPtr, l) * (L.s + 1),
                target + L.block(kTarget, l) * L.c, delay + L.block(kDelay, l) * L.c,
                weight + L.block(kWeight, l) * L.c, step[L.block(kStep, l)], o);
  }
}

ffi::Error DeliverImpl(ffi::AnyBuffer buffer, ffi::Buffer<ffi::PRED> fired,
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
  if (dtype == ffi::DataType::F64)
    deliver_typed(L, buffer.typed_data<double>(), fired.typed_data(), ptr.typed_data(),
                  target.typed_data(), delay.typed_data(), weight.typed_data<double>(),
                  step.typed_data(), out->typed_data<double>());
  else
    deliver_typed(L, buffer.typed_data<float>(), fired.typed_data(), ptr.typed_data(),
                  target.typed_data(), delay.typed_data(), weight.typed_data<float>(),
                  step.typed_data(), out->typed_data<float>());
  return ffi::Error::Success();
}

template <typename T>
void take_typed(const Layout& L, const T* buffer, const int32_t* step, T* out, T* row) {
  const int64_t blk = L.d * 2 * L.p, rs = 2 * L.p;
  for (int64_t l = 0; l < L.nlead; ++l) {
    T* o = out + l * blk;
    const T* b = buffer + L.block(kBuffer, l) * blk;
    if (o != b && blk > 0) std::memcpy(o, b, static_cast<size_t>(blk) * sizeof(T));
    T* r = o + ring_row(step[L.block(kStep, l)], L.d) * rs;
    if (rs > 0) {
      std::memcpy(row + l * rs, r, static_cast<size_t>(rs) * sizeof(T));
      std::memset(r, 0, static_cast<size_t>(rs) * sizeof(T));  // all-zero bits: +0.0
    }
  }
}

ffi::Error TakeImpl(ffi::AnyBuffer buffer, ffi::Buffer<ffi::S32> step,
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
  if (dtype == ffi::DataType::F64)
    take_typed(L, buffer.typed_data<double>(), step.typed_data(), out->typed_data<double>(),
               row->typed_data<double>());
  else
    take_typed(L, buffer.typed_data<float>(), step.typed_data(), out->typed_data<float>(),
               row->typed_data<float>());
  return ffi::Error::Success();
}

}  // namespace
}  // namespace events
}  // namespace dendrax

XLA_FFI_DEFINE_HANDLER_SYMBOL(DendraxEventsTake, dendrax::events::TakeImpl,
                              xla::ffi::Ffi::Bind()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::Buffer<xla::ffi::S32>>()
                                  .Ret<xla::ffi::AnyBuffer>()
                                  .Ret<xla::ffi::AnyBuffer>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(DendraxEventsDeliver, dendrax::events::DeliverImpl,
                              xla::ffi::Ffi::Bind()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::Buffer<xla::ffi::PRED>>()
                                  .Arg<xla::ffi::Buffer<xla::ffi::S32>>()
                                  .Arg<xla::ffi::Buffer<xla::ffi::S32>>()
                                  .Arg<xla::ffi::Buffer<xla::ffi::S32>>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::Buffer<xla::ffi::S32>>()
                                  .Ret<xla::ffi::AnyBuffer>());

NB_MODULE(_events_cpu, m) {
  m.doc() = "CPU handlers of dendrax's event delivery (dendrax.events) for the XLA FFI.";
  m.def("registrations", []() {
    nb::dict d;
    d["dendrax_events_deliver"] = nb::capsule(reinterpret_cast<void*>(DendraxEventsDeliver));
    d["dendrax_events_take"] = nb::capsule(reinterpret_cast<void*>(DendraxEventsTake));
    return d;
  });
}
