// Shapes of one FFI call: which system of which operand a batch entry reads.
//
// Operands are parent [*lead, N] (int32) and floats [*lead, N, T]; vmap adds
// leading axes (jax's "expand_dims" vmap method), where an operand that is not
// batched carries size 1 and is broadcast. Results are [*lead_out, N, T].
#pragma once

#include <cstdint>
#include <string>

#include "hines_kernel.h"
#include "xla/ffi/api/ffi.h"

namespace dendrax {

constexpr int kMaxLead = 8;
constexpr int kOperands = 5;  // parent and four float operands

struct Layout {
  int64_t n = 0;      // nodes per system
  int64_t nt = 1;     // systems along the trailing axis
  int64_t nlead = 1;  // batch entries along the leading axes
  int rank_lead = 0;
  int64_t lead[kMaxLead] = {};
  int64_t stride[kOperands][kMaxLead] = {};  // in whole blocks; 0 = broadcast

  // Block index of operand `op` for leading batch entry l.
  DENDRAX_HD int64_t block(int op, int64_t l) const {
    int64_t off = 0;
    for (int d = rank_lead - 1; d >= 0; --d) {
      const int64_t idx = l % lead[d];
      l /= lead[d];
      off += idx * stride[op][d];
    }
    return off;
  }
};

inline std::string dims_str(xla::ffi::Span<const int64_t> dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

// Fills `layout` from the operand dims (parent first) and the result dims, or
// returns an InvalidArgument error naming the offending operand.
inline xla::ffi::Error make_layout(const xla::ffi::Span<const int64_t> (&dims)[kOperands],
                                   xla::ffi::Span<const int64_t> out, const char* const* names,
                                   Layout* layout) {
  using xla::ffi::Error;
  if (out.size() < 2) return Error::InvalidArgument("hines: result must be [..., N, T]");
  const int rl = static_cast<int>(out.size()) - 2;
  if (rl > kMaxLead) return Error::InvalidArgument("hines: too many batch axes");
  layout->rank_lead = rl;
  layout->n = out[rl];
  layout->nt = out[rl + 1];
  layout->nlead = 1;
  for (int d = 0; d < rl; ++d) {
    layout->lead[d] = out[d];
    layout->nlead *= out[d];
  }
  for (int op = 0; op < kOperands; ++op) {
    const auto& s = dims[op];
    const int tail = op == 0 ? 1 : 2;
    const bool ok_rank = static_cast<int>(s.size()) == rl + tail;
    const bool ok_tail = ok_rank && s[rl] == layout->n && (op == 0 || s[rl + 1] == layout->nt);
    if (!ok_tail) {
      return Error::InvalidArgument(std::string("hines: operand '") + names[op] + "' has shape " +
                                    dims_str(s) + ", expected batch axes then " +
                                    (op == 0 ? "[N]" : "[N, T]") + " with N=" +
                                    std::to_string(layout->n));
    }
    int64_t block = 1;
    for (int d = rl - 1; d >= 0; --d) {
      if (s[d] != 1 && s[d] != out[d]) {
        return Error::InvalidArgument(std::string("hines: operand '") + names[op] +
                                      "' has batch shape " + dims_str(s) +
                                      " that does not broadcast to the result");
      }
      layout->stride[op][d] = s[d] == 1 ? 0 : block;
      block *= s[d];
    }
  }
  return Error::Success();
}

}  // namespace dendrax
