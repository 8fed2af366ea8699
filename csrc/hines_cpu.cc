// CPU handlers of the Hines solve on the typed XLA FFI, exported to Python
// as PyCapsules by a nanobind module.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <string>
#include <type_traits>
#include <vector>

#include "hines_kernel.h"
#include "isa.h"
#include "layout.h"
#include "nanobind/nanobind.h"
#include "threads.h"
#include "xla/ffi/api/ffi.h"

namespace nb = nanobind;
namespace ffi = xla::ffi;

namespace dendrax {
namespace {

// --- threads -------------------------------------------------------------------

// Node-systems a thread must get before a call is split over threads: ~0.5 ms in the
// row kernel (SIMD across systems, ~2 ns per node-system, bound by memory: 1000-node
// trees, 64 or 128 systems, ran no faster on two threads than on one), ~16-32 us where
// systems are solved one scalar chain at a time (short rows, interleaved or entry by
// entry: 4-8 ns). The threads are XLA's (threads.h: ScopedThreads), awake between the
// step's operations: handing one work costs microseconds, where starting a thread cost
// tens. HH, 100 ms, cells of 985 nodes under vmap: a batch of 100 (98,500 node-systems a
// call) 11.1 ns per compartment-step with threads started per call, 9.5 on threads kept
// by the kernel library, 8.7 on XLA's (with which threads of our own competed for the
// two cores); a batch of 10 (9,850) on one thread 14.8, split at 4,096 12.2.
constexpr int64_t kMinWorkPerThread = int64_t{1} << 18;
constexpr int64_t kMinScalarWorkPerThread = int64_t{1} << 12;

// Calls body(l, t0, t1) over all leading batch entries l and systems [0, nt), in
// about 2 items per thread: whole leading entries, or equal chunks of the systems
// axis (whole cache lines, at least kMinChunk systems so that rows stay long).
constexpr int64_t kMinChunk = 32;

template <typename Body>
void parallel_systems(const Layout& L, Body body) {
  const int threads = max_threads();
  const int64_t want = 2 * static_cast<int64_t>(threads);
  int64_t k = std::min<int64_t>((want + L.nlead - 1) / L.nlead, L.nt / kMinChunk);
  if (k > threads) k -= k % threads;  // a multiple of the threads: equal shares
  k = std::max<int64_t>(k, 1);
  const int64_t chunk = ((L.nt + k - 1) / k + 7) / 8 * 8;
  const int64_t chunks = (L.nt + chunk - 1) / chunk;
  parallel_for(L.nlead * chunks, L.n * L.nt * L.nlead, kMinWorkPerThread, threads,
               [&](int64_t item, int) {
    const int64_t l = item / chunks, t0 = (item % chunks) * chunk;
    body(l, t0, std::min(t0 + chunk, L.nt));
  });
}

// --- interleaved leading entries ------------------------------------------------------
//
// vmap of a solve of [N] (or [N, few]) systems gives rows of nt < kInterleaveBelow
// systems and many leading entries: solved one by one, each system is a chain of
// dependent divisions. Leading entries that share a parent array are solved together
// instead, node by node with the systems of all entries side by side (independent work
// that fills the pipeline), each entry read and written where it lies (no packing into
// scratch), so that a vmapped batch needs no transposes in XLA either. The arithmetic is
// factor_solve's and substitute's, system by system (the same results, bit for bit).
constexpr int64_t kInterleaveBelow = 8;
// Entries solved together, at most.
constexpr int64_t kGroup = 32;
// Interleaving pays while the data of kMinGroup entries (their six arrays: four
// operands, two results) fits in kGroupBytes, and a group's stays in L2 between its
// copy, elimination and back substitution passes; larger systems are solved entry by
// entry. Batch of 100, float64, ns per node-system: trees of 34-400 nodes, 32 entries
// together 4-5.5, one by one 6-8; 985-node tree (HH NMO_49821, in a jitted loop), one by
// one 7.8, 32 together (1.5 MB) 9.5, 5 together 10.
constexpr int64_t kMinGroup = 8;
constexpr int64_t kGroupBytes = int64_t{256} << 10;

template <typename T>
int64_t group_fit(const Layout& L) {
  return kGroupBytes / (6 * L.n * L.nt * static_cast<int64_t>(sizeof(T)));
}

// Leading entries solved together (one parent array): block pointers of each entry.
template <typename T>
struct Group {
  int64_t count = 0;
  int64_t parent = 0;      // offset of the entries' parent array
  const T* in[4][kGroup];  // the call's four float operands
  T* out[2][kGroup];       // its results (x, and dinv for factor_solve)
};

// The groups of a call: the entries split evenly over the threads parallel_for will
// start (in groups of at most kGroup), never mixing parent arrays.
template <typename T>
std::vector<Group<T>> make_groups(const Layout& L, const T* const in[4], T* const out[2]) {
  const int64_t threads = std::max<int64_t>(
      1, std::min<int64_t>(max_threads(), L.n * L.nt * L.nlead / kMinScalarWorkPerThread));
  const int64_t blk = L.n * L.nt;
  const int64_t size =
      std::min<int64_t>({kGroup, group_fit<T>(L), (L.nlead + threads - 1) / threads});
  std::vector<Group<T>> groups;
  for (int64_t l = 0; l < L.nlead;) {
    Group<T>& g = groups.emplace_back();
    const int64_t pb = L.block(0, l);
    g.parent = pb * L.n;
    for (; g.count < size && l < L.nlead && L.block(0, l) == pb; ++g.count, ++l) {
      for (int op = 0; op < 4; ++op) g.in[op][g.count] = in[op] + L.block(op + 1, l) * blk;
      for (int k = 0; k < 2; ++k) g.out[k][g.count] = out[k] ? out[k] + l * blk : nullptr;
    }
  }
  return groups;
}

// Back substitution of a group: x_i = (y_i - lower_i x_p) dinv_i, y_i in x.
template <typename T>
void back_group(const int32_t* parent, const T* const* lo, const T* const* dinv, T* const* x,
                int64_t count, int64_t n, int64_t nt) {
  for (int64_t i = 0; i < n; ++i) {
    const int64_t p = parent[i];
    for (int64_t g = 0; g < count; ++g) {
      const T* __restrict__ l = lo[g];
      const T* __restrict__ di = dinv[g];
      T* __restrict__ xg = x[g];
      for (int64_t t = 0; t < nt; ++t) {
        const int64_t k = i * nt + t;
        xg[k] = p < 0 ? xg[k] * di[k] : (xg[k] - l[k] * xg[p * nt + t]) * di[k];
      }
    }
  }
}

// factor_solve of a group: operands lower, diag, upper, rhs; results x, dinv. (A copy
// pass first: reading leaves and first children from the inputs instead, as
// factor_solve_rows does, measured slower here.)
template <typename T>
void factor_group(const int32_t* parent, const Group<T>& G, int64_t n, int64_t nt) {
  const int64_t blk = n * nt;
  for (int64_t g = 0; g < G.count; ++g)
    for (int64_t k = 0; k < blk; ++k) {
      G.out[1][g][k] = G.in[1][g][k];
      G.out[0][g][k] = G.in[3][g][k];
    }
  for (int64_t i = n - 1; i >= 0; --i) {
    const int64_t p = parent[i];
    for (int64_t g = 0; g < G.count; ++g) {
      const T* __restrict__ lo = G.in[0][g];
      const T* __restrict__ up = G.in[2][g];
      T* __restrict__ x = G.out[0][g];
      T* __restrict__ dinv = G.out[1][g];
      for (int64_t t = 0; t < nt; ++t) {
        const int64_t k = i * nt + t;
        const T inv = T(1) / dinv[k];
        dinv[k] = inv;
        if (p >= 0) {
          const T f = up[k] * inv;
          dinv[p * nt + t] = dinv[p * nt + t] - f * lo[k];
          x[p * nt + t] = x[p * nt + t] - f * x[k];
        }
      }
    }
  }
  back_group<T>(parent, G.in[0], G.out[1], G.out[0], G.count, n, nt);
}

// substitute of a group: operands lower, upper, dinv, rhs; result x.
template <typename T>
void substitute_group(const int32_t* parent, const Group<T>& G, int64_t n, int64_t nt) {
  const int64_t blk = n * nt;
  for (int64_t g = 0; g < G.count; ++g)
    for (int64_t k = 0; k < blk; ++k) G.out[0][g][k] = G.in[3][g][k];
  for (int64_t i = n - 1; i > 0; --i) {
    const int64_t p = parent[i];
    if (p < 0) continue;
    for (int64_t g = 0; g < G.count; ++g) {
      const T* __restrict__ up = G.in[1][g];
      const T* __restrict__ dinv = G.in[2][g];
      T* __restrict__ x = G.out[0][g];
      for (int64_t t = 0; t < nt; ++t) {
        const int64_t k = i * nt + t;
        const T f = up[k] * dinv[k];
        x[p * nt + t] = x[p * nt + t] - f * x[k];
      }
    }
  }
  back_group<T>(parent, G.in[0], G.in[2], G.out[0], G.count, n, nt);
}

// Runs solve(group) over the call's groups in parallel. False when interleaving does
// not apply (rows of kInterleaveBelow systems or more, a single leading entry, or
// systems too large: group_fit).
template <typename T, typename Solve>
bool run_interleaved(const Layout& L, const T* const in[4], T* const out[2], Solve solve) {
  if (L.nt >= kInterleaveBelow || L.nlead < 2 || group_fit<T>(L) < kMinGroup) return false;
  const std::vector<Group<T>> groups = make_groups(L, in, out);
  parallel_for(static_cast<int64_t>(groups.size()), L.n * L.nt * L.nlead,
               kMinScalarWorkPerThread, max_threads(),
               [&](int64_t k, int) { solve(groups[k]); });
  return true;
}

// --- short rows: entry by entry ---------------------------------------------------
//
// One system (a cell's time step), or rows of 2 to kInterleaveBelow - 1 systems whose
// entries are not interleaved (systems too large): each entry is solved on its own by
// factor_solve / substitute (the formulation with a copy pass), in parallel over the
// entries (several entries of one system each go to one_system_entries instead). On
// rows this short the row kernel's per-node dispatch costs more than it saves: 985-node
// tree, 100 entries of one system, float64, one thread: 6.2 ns per node-system, against
// 15 with the row kernel.

// Runs body(l, nt) for every leading entry l in parallel, or returns false when the
// rows are long enough for the row kernel (nt >= kInterleaveBelow). One system per row
// (nt = 1) comes as a compile-time constant: its loops over the row vanish (~4x faster).
template <typename Body>
bool short_rows(const Layout& L, Body body) {
  if (L.nt >= kInterleaveBelow) return false;
  parallel_for(L.nlead, L.n * L.nt * L.nlead, kMinScalarWorkPerThread, max_threads(),
               [&](int64_t l, int) {
                 if (L.nt == 1) body(l, std::integral_constant<int64_t, 1>());
                 else body(l, L.nt);
               });
  return true;
}

// --- instruction sets ------------------------------------------------------------
//
// The same kernel compiled twice: for the baseline ISA of the build and, on x86-64,
// for AVX2 (isa.h: chosen at run time, also on an AVX-512 CPU). No FMA: both variants
// round identically.

template <typename T>
using FactorFn = void (*)(const int32_t*, const uint8_t*, const T*, const T*, const T*, const T*,
                          T*, T*, int64_t, int64_t, int64_t, int64_t);
template <typename T>
using SubstituteFn = void (*)(const int32_t*, const uint8_t*, const T*, const T*, const T*,
                              const T*, T*, int64_t, int64_t, int64_t, int64_t);

template <typename T>
void factor_baseline(const int32_t* par, const uint8_t* fl, const T* lo, const T* d, const T* up,
                     const T* r, T* x, T* dinv, int64_t n, int64_t nt, int64_t t0, int64_t t1) {
  factor_solve_rows(par, fl, lo, d, up, r, x, dinv, n, nt, t0, t1);
}
template <typename T>
void substitute_baseline(const int32_t* par, const uint8_t* fl, const T* lo, const T* up,
                         const T* dinv, const T* r, T* x, int64_t n, int64_t nt, int64_t t0,
                         int64_t t1) {
  substitute_rows(par, fl, lo, up, dinv, r, x, n, nt, t0, t1);
}

#ifdef DENDRAX_HAVE_AVX2
template <typename T>
__attribute__((target("avx2"))) void factor_avx2(const int32_t* par, const uint8_t* fl,
                                                 const T* lo, const T* d, const T* up, const T* r,
                                                 T* x, T* dinv, int64_t n, int64_t nt, int64_t t0,
                                                 int64_t t1) {
  factor_solve_rows(par, fl, lo, d, up, r, x, dinv, n, nt, t0, t1);
}
template <typename T>
__attribute__((target("avx2"))) void substitute_avx2(const int32_t* par, const uint8_t* fl,
                                                     const T* lo, const T* up, const T* dinv,
                                                     const T* r, T* x, int64_t n, int64_t nt,
                                                     int64_t t0, int64_t t1) {
  substitute_rows(par, fl, lo, up, dinv, r, x, n, nt, t0, t1);
}
#endif

bool use_avx2() { return cpu_isa() != Isa::kBaseline; }

template <typename T>
FactorFn<T> factor_kernel() {
#ifdef DENDRAX_HAVE_AVX2
  if (use_avx2()) return factor_avx2<T>;
#endif
  return factor_baseline<T>;
}
template <typename T>
SubstituteFn<T> substitute_kernel() {
#ifdef DENDRAX_HAVE_AVX2
  if (use_avx2()) return substitute_avx2<T>;
#endif
  return substitute_baseline<T>;
}

// --- handlers --------------------------------------------------------------------

ffi::Error check_dtypes(std::initializer_list<const ffi::AnyBuffer*> bufs, ffi::DataType* dtype) {
  *dtype = (*bufs.begin())->element_type();
  if (*dtype != ffi::DataType::F32 && *dtype != ffi::DataType::F64)
    return ffi::Error::InvalidArgument("hines: float operands must be float32 or float64");
  for (const ffi::AnyBuffer* b : bufs)
    if (b->element_type() != *dtype)
      return ffi::Error::InvalidArgument("hines: float operands must share one dtype");
  return ffi::Error::Success();
}

// Parent arrays of the call: leading entry l reads the one at L.block(0, l) * L.n.
int64_t parent_blocks(const Layout& L) {
  int64_t blocks = 1;
  for (int d = 0; d < L.rank_lead; ++d)
    if (L.stride[0][d] != 0) blocks *= L.lead[d];
  return blocks;
}

// Checks every parent array of the call.
ffi::Error check_parents(const Layout& L, const int32_t* parent) {
  for (int64_t b = 0, blocks = parent_blocks(L); b < blocks; ++b)
    if (!valid_parents(parent + b * L.n, L.n))
      return ffi::Error::InvalidArgument(
          "hines: parent must satisfy -1 <= parent[i] < i for every node i");
  return ffi::Error::Success();
}

// The tree_flags of every (checked) parent array of the call, at the same offsets.
std::vector<uint8_t> parent_flags(const Layout& L, const int32_t* parent) {
  const int64_t blocks = parent_blocks(L);
  std::vector<uint8_t> flags(static_cast<size_t>(blocks * L.n));
  for (int64_t b = 0; b < blocks; ++b) tree_flags(parent + b * L.n, L.n, flags.data() + b * L.n);
  return flags;
}

// Leading entries of one system each (nt = 1), more than one: the flags of their parent
// arrays computed once, then body(l, flags of entry l) for every entry in parallel, which
// solves it without a copy pass (factor_solve_one, substitute_one). False otherwise.
// (One system alone keeps factor_solve's copy pass: its flags would cost more than the
// pass.) Batch of 100 of a 985-node tree, one thread: 3.1 -> 2.5 ns per node-system.
template <typename Body>
bool one_system_entries(const Layout& L, const int32_t* parent, Body body) {
  if (L.nt != 1 || L.nlead < 2) return false;
  const std::vector<uint8_t> flags = parent_flags(L, parent);
  parallel_for(L.nlead, L.n * L.nlead, kMinScalarWorkPerThread, max_threads(),
               [&](int64_t l, int) { body(l, flags.data() + L.block(0, l) * L.n); });
  return true;
}

template <typename T>
ffi::Error factor_solve_typed(const Layout& L, const int32_t* parent, const T* lo, const T* d,
                              const T* up, const T* r, T* x, T* dinv) {
  if (L.n == 0 || L.nt == 0 || L.nlead == 0) return ffi::Error::Success();
  if (auto e = check_parents(L, parent); !e.success()) return e;
  const int64_t blk = L.n * L.nt;
  const T* const in[4] = {lo, d, up, r};
  T* const out[2] = {x, dinv};
  if (run_interleaved<T>(L, in, out, [&](const Group<T>& g) {
        factor_group(parent + g.parent, g, L.n, L.nt);
      }))
    return ffi::Error::Success();
  if (one_system_entries(L, parent, [&](int64_t l, const uint8_t* flags) {
        factor_solve_one(parent + L.block(0, l) * L.n, flags, lo + L.block(1, l) * blk,
                         d + L.block(2, l) * blk, up + L.block(3, l) * blk,
                         r + L.block(4, l) * blk, x + l * blk, dinv + l * blk, L.n);
      }))
    return ffi::Error::Success();
  if (short_rows(L, [&](int64_t l, auto nt) {
        factor_solve(parent + L.block(0, l) * L.n, lo + L.block(1, l) * blk,
                     d + L.block(2, l) * blk, up + L.block(3, l) * blk, r + L.block(4, l) * blk,
                     x + l * blk, dinv + l * blk, L.n, nt, 0, nt);
      }))
    return ffi::Error::Success();
  const std::vector<uint8_t> flags = parent_flags(L, parent);
  const FactorFn<T> kernel = factor_kernel<T>();
  parallel_systems(L, [&](int64_t l, int64_t t0, int64_t t1) {
    const int64_t pb = L.block(0, l) * L.n;
    kernel(parent + pb, flags.data() + pb, lo + L.block(1, l) * blk, d + L.block(2, l) * blk,
           up + L.block(3, l) * blk, r + L.block(4, l) * blk, x + l * blk, dinv + l * blk, L.n,
           L.nt, t0, t1);
  });
  return ffi::Error::Success();
}

template <typename T>
ffi::Error substitute_typed(const Layout& L, const int32_t* parent, const T* lo, const T* up,
                            const T* dinv, const T* r, T* x) {
  if (L.n == 0 || L.nt == 0 || L.nlead == 0) return ffi::Error::Success();
  if (auto e = check_parents(L, parent); !e.success()) return e;
  const int64_t blk = L.n * L.nt;
  const T* const in[4] = {lo, up, dinv, r};
  T* const out[2] = {x, nullptr};
  if (run_interleaved<T>(L, in, out, [&](const Group<T>& g) {
        substitute_group(parent + g.parent, g, L.n, L.nt);
      }))
    return ffi::Error::Success();
  if (one_system_entries(L, parent, [&](int64_t l, const uint8_t* flags) {
        substitute_one(parent + L.block(0, l) * L.n, flags, lo + L.block(1, l) * blk,
                       up + L.block(2, l) * blk, dinv + L.block(3, l) * blk,
                       r + L.block(4, l) * blk, x + l * blk, L.n);
      }))
    return ffi::Error::Success();
  if (short_rows(L, [&](int64_t l, auto nt) {
        substitute(parent + L.block(0, l) * L.n, lo + L.block(1, l) * blk,
                   up + L.block(2, l) * blk, dinv + L.block(3, l) * blk, r + L.block(4, l) * blk,
                   x + l * blk, L.n, nt, 0, nt);
      }))
    return ffi::Error::Success();
  const std::vector<uint8_t> flags = parent_flags(L, parent);
  const SubstituteFn<T> kernel = substitute_kernel<T>();
  parallel_systems(L, [&](int64_t l, int64_t t0, int64_t t1) {
    const int64_t pb = L.block(0, l) * L.n;
    kernel(parent + pb, flags.data() + pb, lo + L.block(1, l) * blk, up + L.block(2, l) * blk,
           dinv + L.block(3, l) * blk, r + L.block(4, l) * blk, x + l * blk, L.n, L.nt, t0, t1);
  });
  return ffi::Error::Success();
}

const char* const kFactorNames[kOperands] = {"parent", "lower", "diag", "upper", "rhs"};
const char* const kSubstituteNames[kOperands] = {"parent", "lower", "upper", "dinv", "rhs"};

ffi::Error FactorSolveImpl(ffi::Buffer<ffi::S32> parent, ffi::AnyBuffer lower, ffi::AnyBuffer diag,
                           ffi::AnyBuffer upper, ffi::AnyBuffer rhs,
                           ffi::Result<ffi::AnyBuffer> x, ffi::Result<ffi::AnyBuffer> dinv,
                           ffi::ThreadPool threads) {
  ScopedThreads<ffi::ThreadPool> use(threads);
  ffi::DataType dtype;
  if (auto e = check_dtypes({&lower, &diag, &upper, &rhs, &(*x), &(*dinv)}, &dtype); !e.success())
    return e;
  Layout L;
  const ffi::Span<const int64_t> dims[kOperands] = {parent.dimensions(), lower.dimensions(),
                                                    diag.dimensions(), upper.dimensions(),
                                                    rhs.dimensions()};
  if (auto e = make_layout(dims, x->dimensions(), kFactorNames, &L); !e.success()) return e;
  try {
    if (dtype == ffi::DataType::F64)
      return factor_solve_typed(L, parent.typed_data(), lower.typed_data<double>(),
                                diag.typed_data<double>(), upper.typed_data<double>(),
                                rhs.typed_data<double>(), x->typed_data<double>(),
                                dinv->typed_data<double>());
    return factor_solve_typed(L, parent.typed_data(), lower.typed_data<float>(),
                              diag.typed_data<float>(), upper.typed_data<float>(),
                              rhs.typed_data<float>(), x->typed_data<float>(),
                              dinv->typed_data<float>());
  } catch (const std::exception& err) {  // out of memory for flags or groups
    return ffi::Error::Internal(std::string("hines: ") + err.what());
  }
}

ffi::Error SubstituteImpl(ffi::Buffer<ffi::S32> parent, ffi::AnyBuffer lower, ffi::AnyBuffer upper,
                          ffi::AnyBuffer dinv, ffi::AnyBuffer rhs, ffi::Result<ffi::AnyBuffer> x,
                          ffi::ThreadPool threads) {
  ScopedThreads<ffi::ThreadPool> use(threads);
  ffi::DataType dtype;
  if (auto e = check_dtypes({&lower, &upper, &dinv, &rhs, &(*x)}, &dtype); !e.success()) return e;
  Layout L;
  const ffi::Span<const int64_t> dims[kOperands] = {parent.dimensions(), lower.dimensions(),
                                                    upper.dimensions(), dinv.dimensions(),
                                                    rhs.dimensions()};
  if (auto e = make_layout(dims, x->dimensions(), kSubstituteNames, &L); !e.success()) return e;
  try {
    if (dtype == ffi::DataType::F64)
      return substitute_typed(L, parent.typed_data(), lower.typed_data<double>(),
                              upper.typed_data<double>(), dinv.typed_data<double>(),
                              rhs.typed_data<double>(), x->typed_data<double>());
    return substitute_typed(L, parent.typed_data(), lower.typed_data<float>(),
                            upper.typed_data<float>(), dinv.typed_data<float>(),
                            rhs.typed_data<float>(), x->typed_data<float>());
  } catch (const std::exception& err) {  // out of memory for flags or groups
    return ffi::Error::Internal(std::string("hines: ") + err.what());
  }
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
                                  .Ret<xla::ffi::AnyBuffer>()
                                  .Ctx<xla::ffi::ThreadPool>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(DendraxHinesSubstitute, dendrax::SubstituteImpl,
                              xla::ffi::Ffi::Bind()
                                  .Arg<xla::ffi::Buffer<xla::ffi::S32>>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Arg<xla::ffi::AnyBuffer>()
                                  .Ret<xla::ffi::AnyBuffer>()
                                  .Ctx<xla::ffi::ThreadPool>());

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
