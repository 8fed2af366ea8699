// Shapes of one event-delivery FFI call (CPU and CUDA handlers).
//
// deliver: buffer [*lead, D, 2, P] (float), fired [*lead, S] (bool), ptr [*lead, S+1],
// target, delay [*lead, C] (int32), weight [*lead, C] (float), step [*lead] (int32);
// the result is [*lead_out, D, 2, P].
// take: buffer [*lead, D, 2, P], step [*lead]; the results are [*lead_out, D, 2, P]
// and [*lead_out, 2, P].
// vmap adds leading axes ("expand_dims": an operand that is not batched carries size
// 1 there and is broadcast), so a batch of networks can share one connectivity.
#pragma once

#include <cstdint>
#include <string>

#include "xla/ffi/api/ffi.h"

namespace dendrax {
namespace events {

constexpr int kMaxLead = 8;
constexpr int kOperands = 7;
enum Operand { kBuffer = 0, kFired, kPtr, kTarget, kDelay, kWeight, kStep };

struct Layout {
  int64_t d = 0, s = 0, p = 0, c = 0;  // ring rows, sources, targets, connections
  int64_t nlead = 1;
  int rank_lead = 0;
  int64_t lead[kMaxLead] = {};
  int64_t stride[kOperands][kMaxLead] = {};  // in whole blocks; 0 = broadcast

  // Block index of operand `op` for leading batch entry l.
#if defined(__CUDACC__)
  __host__ __device__
#endif
  int64_t block(int op, int64_t l) const {
    int64_t off = 0;
    for (int k = rank_lead - 1; k >= 0; --k) {
      const int64_t idx = l % lead[k];
      l /= lead[k];
      off += idx * stride[op][k];
    }
    return off;
  }
};

inline std::string dims_string(xla::ffi::Span<const int64_t> dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

// Fills `layout` from the operand dims (in Operand order) and the result dims, or
// returns an InvalidArgument error naming the offending operand.
inline xla::ffi::Error make_layout(const xla::ffi::Span<const int64_t> (&dims)[kOperands],
                                   xla::ffi::Span<const int64_t> out, Layout* L) {
  using xla::ffi::Error;
  static const char* const names[kOperands] = {"buffer", "fired",  "ptr", "target",
                                               "delay",  "weight", "step"};
  if (out.size() < 3 || out[out.size() - 2] != 2)
    return Error::InvalidArgument("deliver: result must be [..., D, 2, P], got " +
                                  dims_string(out));
  const int rl = static_cast<int>(out.size()) - 3;
  if (rl > kMaxLead) return Error::InvalidArgument("deliver: too many batch axes");
  L->rank_lead = rl;
  L->d = out[rl];
  L->p = out[rl + 2];
  L->nlead = 1;
  for (int k = 0; k < rl; ++k) {
    L->lead[k] = out[k];
    L->nlead *= out[k];
  }
  const auto& fired = dims[kFired];
  const auto& conn = dims[kTarget];
  if (static_cast<int>(fired.size()) != rl + 1 || static_cast<int>(conn.size()) != rl + 1)
    return Error::InvalidArgument("deliver: fired and target must be [..., S] and [..., C]");
  L->s = fired[rl];
  L->c = conn[rl];
  if (L->c > INT32_MAX) return Error::InvalidArgument("deliver: more than 2^31 - 1 connections");
  for (int op = 0; op < kOperands; ++op) {
    const auto& s = dims[op];
    bool ok = false;
    const char* want = "";
    switch (op) {
      case kBuffer:
        want = "[D, 2, P]";
        ok = static_cast<int>(s.size()) == rl + 3 && s[rl] == L->d && s[rl + 1] == 2 &&
             s[rl + 2] == L->p;
        break;
      case kFired:
        want = "[S]";
        ok = static_cast<int>(s.size()) == rl + 1 && s[rl] == L->s;
        break;
      case kPtr:
        want = "[S + 1]";
        ok = static_cast<int>(s.size()) == rl + 1 && s[rl] == L->s + 1;
        break;
      case kTarget: case kDelay: case kWeight:
        want = "[C]";
        ok = static_cast<int>(s.size()) == rl + 1 && s[rl] == L->c;
        break;
      default:
        want = "[]";
        ok = static_cast<int>(s.size()) == rl;
    }
    if (!ok)
      return Error::InvalidArgument(std::string("deliver: operand '") + names[op] +
                                    "' has shape " + dims_string(s) +
                                    ", expected batch axes then " + want + " (D=" +
                                    std::to_string(L->d) + ", P=" + std::to_string(L->p) +
                                    ", S=" + std::to_string(L->s) +
                                    ", C=" + std::to_string(L->c) + ")");
    int64_t block = 1;
    for (int k = rl - 1; k >= 0; --k) {
      if (s[k] != 1 && s[k] != out[k])
        return Error::InvalidArgument(std::string("deliver: operand '") + names[op] +
                                      "' has batch shape " + dims_string(s) +
                                      " that does not broadcast to the result");
      L->stride[op][k] = s[k] == 1 ? 0 : block;
      block *= s[k];
    }
  }
  return Error::Success();
}

// The layout of a take call (operands buffer and step; the other strides stay 0).
inline xla::ffi::Error make_take_layout(xla::ffi::Span<const int64_t> buffer,
                                        xla::ffi::Span<const int64_t> step,
                                        xla::ffi::Span<const int64_t> out,
                                        xla::ffi::Span<const int64_t> row, Layout* L) {
  using xla::ffi::Error;
  if (out.size() < 3 || out[out.size() - 2] != 2)
    return Error::InvalidArgument("take: result must be [..., D, 2, P], got " + dims_string(out));
  const int rl = static_cast<int>(out.size()) - 3;
  if (rl > kMaxLead) return Error::InvalidArgument("take: too many batch axes");
  L->rank_lead = rl;
  L->d = out[rl];
  L->p = out[rl + 2];
  L->nlead = 1;
  for (int k = 0; k < rl; ++k) {
    L->lead[k] = out[k];
    L->nlead *= out[k];
  }
  bool ok = static_cast<int>(row.size()) == rl + 2 && row[rl] == 2 && row[rl + 1] == L->p;
  for (int k = 0; ok && k < rl; ++k) ok = row[k] == out[k];
  if (!ok)
    return Error::InvalidArgument("take: row result has shape " + dims_string(row) +
                                  ", expected [..., 2, P] with the batch axes of " +
                                  dims_string(out));
  const xla::ffi::Span<const int64_t>* ops[2] = {&buffer, &step};
  const int which[2] = {kBuffer, kStep};
  for (int i = 0; i < 2; ++i) {
    const auto& s = *ops[i];
    const bool shape_ok =
        i == 0 ? static_cast<int>(s.size()) == rl + 3 && s[rl] == L->d && s[rl + 1] == 2 &&
                     s[rl + 2] == L->p
               : static_cast<int>(s.size()) == rl;
    if (!shape_ok)
      return Error::InvalidArgument(std::string("take: operand '") + (i ? "step" : "buffer") +
                                    "' has shape " + dims_string(s) + ", expected batch axes then " +
                                    (i ? "[]" : "[D, 2, P]"));
    int64_t block = 1;
    for (int k = rl - 1; k >= 0; --k) {
      if (s[k] != 1 && s[k] != out[k])
        return Error::InvalidArgument(std::string("take: operand '") + (i ? "step" : "buffer") +
                                      "' has batch shape " + dims_string(s) +
                                      " that does not broadcast to the result");
      L->stride[which[i]][k] = s[k] == 1 ? 0 : block;
      block *= s[k];
    }
  }
  return Error::Success();
}

}  // namespace events
}  // namespace dendrax
