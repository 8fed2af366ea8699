// CPU handlers of the Hines solve on the typed XLA FFI, exported to Python
// as PyCapsules by a nanobind module.
#include <algorithm>
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

constexpr int64_t kTile = 64;  // systems solved together: one cache-friendly slab

ffi::Error check_dtypes(std::initializer_list<const ffi::AnyBuffer*> bufs, ffi::DataType* dtype) {
  *dtype = (*bufs.begin())->element_type();
  if (*dtype != ffi::DataType::F32 && *dtype != ffi::DataType::F64)
    return ffi::Error::InvalidArgument("hines: float operands must be float32 or float64");
  for (const ffi::AnyBuffer* b : bufs)
    if (b->element_type() != *dtype)
      return ffi::Error::InvalidArgument("hines: float operands must share one dtype");
  return ffi::Error::Success();
}

// Runs `body(l, parent_block)` for every leading batch entry after checking
// each distinct parent array once.
template <typename Body>
ffi::Error for_each_system(const Layout& L, const int32_t* parent, Body body) {
  int64_t checked = -1;
  for (int64_t l = 0; l < L.nlead; ++l) {
    const int64_t pb = L.block(0, l);
    const int32_t* par = parent + pb * L.n;
    if (pb != checked) {
      if (!valid_parents(par, L.n))
        return ffi::Error::InvalidArgument(
            "hines: parent must satisfy -1 <= parent[i] < i for every node i");
      checked = pb;
    }
    body(l, par);
  }
  return ffi::Error::Success();
}

template <typename T>
ffi::Error factor_solve_typed(const Layout& L, const int32_t* parent, const T* lo, const T* d,
                              const T* up, const T* r, T* x, T* dred) {
  const int64_t blk = L.n * L.nt;
  return for_each_system(L, parent, [&](int64_t l, const int32_t* par) {
    const T* lo_l = lo + L.block(1, l) * blk;
    const T* d_l = d + L.block(2, l) * blk;
    const T* up_l = up + L.block(3, l) * blk;
    const T* r_l = r + L.block(4, l) * blk;
    for (int64_t t0 = 0; t0 < L.nt; t0 += kTile)
      factor_solve(par, lo_l, d_l, up_l, r_l, x + l * blk, dred + l * blk, L.n, L.nt, t0,
                   std::min(t0 + kTile, L.nt));
  });
}

template <typename T>
ffi::Error substitute_typed(const Layout& L, const int32_t* parent, const T* lo, const T* up,
                            const T* dred, const T* r, T* x) {
  const int64_t blk = L.n * L.nt;
  return for_each_system(L, parent, [&](int64_t l, const int32_t* par) {
    const T* lo_l = lo + L.block(1, l) * blk;
    const T* up_l = up + L.block(2, l) * blk;
    const T* dr_l = dred + L.block(3, l) * blk;
    const T* r_l = r + L.block(4, l) * blk;
    for (int64_t t0 = 0; t0 < L.nt; t0 += kTile)
      substitute(par, lo_l, up_l, dr_l, r_l, x + l * blk, L.n, L.nt, t0,
                 std::min(t0 + kTile, L.nt));
  });
}

const char* const kFactorNames[kOperands] = {"parent", "lower", "diag", "upper", "rhs"};
const char* const kSubstituteNames[kOperands] = {"parent", "lower", "upper", "dred", "rhs"};

ffi::Error FactorSolveImpl(ffi::Buffer<ffi::S32> parent, ffi::AnyBuffer lower, ffi::AnyBuffer diag,
                           ffi::AnyBuffer upper, ffi::AnyBuffer rhs,
                           ffi::Result<ffi::AnyBuffer> x, ffi::Result<ffi::AnyBuffer> dred) {
  ffi::DataType dtype;
  if (auto e = check_dtypes({&lower, &diag, &upper, &rhs, &(*x), &(*dred)}, &dtype); !e.success())
    return e;
  Layout L;
  const ffi::Span<const int64_t> dims[kOperands] = {parent.dimensions(), lower.dimensions(),
                                                    diag.dimensions(), upper.dimensions(),
                                                    rhs.dimensions()};
  if (auto e = make_layout(dims, x->dimensions(), kFactorNames, &L); !e.success()) return e;
  if (dtype == ffi::DataType::F64)
    return factor_solve_typed(L, parent.typed_data(), lower.typed_data<double>(),
                              diag.typed_data<double>(), upper.typed_data<double>(),
                              rhs.typed_data<double>(), x->typed_data<double>(),
                              dred->typed_data<double>());
  return factor_solve_typed(L, parent.typed_data(), lower.typed_data<float>(),
                            diag.typed_data<float>(), upper.typed_data<float>(),
                            rhs.typed_data<float>(), x->typed_data<float>(),
                            dred->typed_data<float>());
}

ffi::Error SubstituteImpl(ffi::Buffer<ffi::S32> parent, ffi::AnyBuffer lower, ffi::AnyBuffer upper,
                          ffi::AnyBuffer dred, ffi::AnyBuffer rhs, ffi::Result<ffi::AnyBuffer> x) {
  ffi::DataType dtype;
  if (auto e = check_dtypes({&lower, &upper, &dred, &rhs, &(*x)}, &dtype); !e.success()) return e;
  Layout L;
  const ffi::Span<const int64_t> dims[kOperands] = {parent.dimensions(), lower.dimensions(),
                                                    upper.dimensions(), dred.dimensions(),
                                                    rhs.dimensions()};
  if (auto e = make_layout(dims, x->dimensions(), kSubstituteNames, &L); !e.success()) return e;
  if (dtype == ffi::DataType::F64)
    return substitute_typed(L, parent.typed_data(), lower.typed_data<double>(),
                            upper.typed_data<double>(), dred.typed_data<double>(),
                            rhs.typed_data<double>(), x->typed_data<double>());
  return substitute_typed(L, parent.typed_data(), lower.typed_data<float>(),
                          upper.typed_data<float>(), dred.typed_data<float>(),
                          rhs.typed_data<float>(), x->typed_data<float>());
}

}  // namespace
}  // namespace dendrax

XLA_FFI_DEFINE_HANDLER_SYMBOL(DendraxHinesFactorSolve, dendrax::FactorSolveImpl,
                              xla::ffi::Ffi::Bind()
                                  .Arg<xla::ffi::Buffer<xla::ffi::S32>>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Ret<xla::ffi::AnyBuffer>()
                                  .Ret<xla::ffi::AnyBuffer>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(DendraxHinesSubstitute, dendrax::SubstituteImpl,
                              xla::ffi::Ffi::Bind()
                                  .Arg<xla::ffi::Buffer<xla::ffi::S32>>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Ret<xla::ffi::AnyBuffer>());

NB_MODULE(_hines_cpu, m) {
  m.doc() = "CPU handlers of dendrax's Hines solve for the XLA FFI.";
  m.def("registrations", []() {
    nb::dict d;
    d["dendrax_hines_factor_solve"] =
        nb::capsule(reinterpret_cast<void*>(DendraxHinesFactorSolve));
    d["dendrax_hines_substitute"] = nb::capsule(reinterpret_cast<void*>(DendraxHinesSubstitute));
    return d;
  });
}
