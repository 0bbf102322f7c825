// discdiff/nn/ops/attention.hpp: multi-head self-attention core (after the qkv projection
// and RoPE), forward and backward (spec/MODELS.md 1.2, 1.4):
//   P = softmax(Q K^T / sqrt(hd) [+ causal mask]);  O = P V
// qkv: N x 3C (q, k, v column blocks; head h at h hd); att: B x H x L x L (probabilities,
// saved); out: N x C (heads concatenated). The per-head products are strided-batched GEMMs
// of the backend (GemmBatch: outer = b, inner = h); the softmax rows and their backward are
// kernels (float rows on a host_simd backend: the AVX2 twin simd::softmax_row).
#pragma once

#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "../../core/config.hpp"
#include "../../core/numerics.hpp"
#include "../../exec/openmp.hpp"
#include "../gemm.hpp"
#include "../simd.hpp"
#include "activation.hpp"
#include "common.hpp"

namespace discdiff {
namespace nn {

/// In-place softmax of one attention row r = (b h) L + i over its first jn entries
/// (jn = i + 1 when causal, else L); the masked tail is zeroed. Sums in 8 lanes.
template <class T>
struct SoftmaxRowKernel {
  T* att;
  int L;
  bool causal;
  DD_HD void operator()(std::int64_t r) const {
    T* row = att + r * L;
    const int i = int(r % L);
    const int jn = causal ? i + 1 : L;
    T mx = row[0];
    for (int j = 1; j < jn; ++j) mx = row[j] > mx ? row[j] : mx;
    T a[8] = {T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0)};
    for (int j = 0; j < jn; ++j) {
      row[j] = math::exp(row[j] - mx);
      a[j & 7] += row[j];
    }
    const T inv = T(1) / detail::combine8(a);
    for (int j = 0; j < jn; ++j) row[j] *= inv;
    for (int j = jn; j < L; ++j) row[j] = T(0);
  }
};

#if DISCDIFF_NN_SIMD
/// Host-only SIMD twin of SoftmaxRowKernel (float, AVX2/FMA).
struct SoftmaxRowSimdTwin {
  float* att;
  int L;
  bool causal;
  void operator()(std::int64_t r) const {
    float* row = att + r * L;
    const int i = int(r % L);
    const int jn = causal ? i + 1 : L;
    simd::softmax_row(row, jn);
    for (int j = jn; j < L; ++j) row[j] = 0.0f;
  }
};
#endif

/// dS = P (dP - rowsum(P dP)) scale, in place over dP, one row per element.
template <class T>
struct SoftmaxBackwardRowKernel {
  T* dP;
  const T* P;
  int L;
  T scale;
  DD_HD void operator()(std::int64_t r) const {
    const T* pr = P + r * L;
    T* dr = dP + r * L;
    const T s = detail::dot8(pr, dr, L);
    for (int j = 0; j < L; ++j) dr[j] = pr[j] * (dr[j] - s) * scale;
  }
};

namespace detail {
/// Strides of the attention products: q/k/v/dq/dk/dv in an N x 3C buffer (row stride
/// 3C), O/dO in N x C, P/dP in B x H x L x L.
struct AttnStrides {
  std::int64_t qkv_outer, head, o_outer, p_outer, p_inner;
  AttnStrides(int L, int C, int H)
      : qkv_outer(std::int64_t(L) * 3 * C),
        head(C / H),
        o_outer(std::int64_t(L) * C),
        p_outer(std::int64_t(H) * L * L),
        p_inner(std::int64_t(L) * L) {}
};
inline GemmBatch make_batch(int B, int H, std::int64_t ao, std::int64_t ai, std::int64_t bo,
                            std::int64_t bi, std::int64_t co, std::int64_t ci) {
  GemmBatch g;
  g.outer = B;
  g.inner = H;
  g.a_outer = ao;
  g.a_inner = ai;
  g.b_outer = bo;
  g.b_inner = bi;
  g.c_outer = co;
  g.c_inner = ci;
  return g;
}
}  // namespace detail

namespace detail {
/// True when every thread of the executor's team can own one of `items` scratch blocks.
template <class Exec>
bool team_fits(const Exec& ex, std::int64_t items) {
  if constexpr (std::is_same<Exec, OpenMPExecutor>::value) return ex.team_size() <= items;
  (void)ex;
  (void)items;
  return false;
}
/// (sequence, head) items per pass of the attention: on a host executor, groups whose
/// probabilities (L^2 each) fit in about 1 MB, so that the scores, the softmax and the second
/// product of a group run while its rows are in cache; on a device, every item at once.
template <class Be, class T>
std::int64_t attention_chunk(std::int64_t items, int L) {
  if (!Be::exec_type::host_memory) return items;
  const std::int64_t per = std::int64_t(L) * L * std::int64_t(sizeof(T));
  std::int64_t c = (std::int64_t(1) << 20) / (per > 0 ? per : 1);
  c = c < 2 ? 2 : c;
  return c < items ? c : items;
}
}  // namespace detail

#if !defined(__CUDACC__)
/// Host-only twin of the forward composition (backends with host_simd): item k = (b, h)
/// runs its two products and its softmax rows on one thread (the GEMM engine called per
/// item inside the executor's parallel region, where OpenBLAS and Eigen run single-
/// threaded), so an item's L x L probabilities stay in that core's cache and the whole
/// attention is one parallel region. Same operations per item as the batched composition.
template <class Be, class T>
struct AttentionForwardItemTwin {
  const Be* be;
  T* out;
  T* att;
  const T* qkv;
  int L, C, H;
  bool causal;
  GemmBatch qk, pv;
  void operator()(std::int64_t k) const {
    const int hd = C / H, ld = 3 * C;
    const T scale = T(1) / math::sqrt(T(hd));
    be->gemm.gemm_batched(false, true, L, L, hd, scale, qkv, ld, qkv + C, ld, T(0), att, L, qk.slice(k, 1));
    T* P = att + k * L * L;
#if DISCDIFF_NN_SIMD
    if constexpr (std::is_same<T, float>::value)
      if (detail::use_simd_twin<Be, T>()) {
        const SoftmaxRowSimdTwin row{P, L, causal};
        for (int i = 0; i < L; ++i) row(i);
        be->gemm.gemm_batched(false, false, L, hd, L, T(1), att, L, qkv + 2 * C, ld, T(0), out, C, pv.slice(k, 1));
        return;
      }
#endif
    const SoftmaxRowKernel<T> row{P, L, causal};
    for (int i = 0; i < L; ++i) row(i);
    be->gemm.gemm_batched(false, false, L, hd, L, T(1), att, L, qkv + 2 * C, ld, T(0), out, C, pv.slice(k, 1));
  }
};
/// Host-only twin of the backward composition: item k's five steps on one thread. On the
/// OpenMP executor each thread reuses one L x L block of scratch for dP (it stays in cache);
/// otherwise item k uses block k.
template <class Be, class T>
struct AttentionBackwardItemTwin {
  const Be* be;
  T* dqkv;
  T* scratch;
  const T* dout;
  const T* att;
  const T* qkv;
  int L, C, H;
  GemmBatch pdo, dov, dsk;
  bool per_worker;  // scratch slot = OpenMP thread index (needs team size <= B H)
  void operator()(std::int64_t k) const {
    const int hd = C / H, ld = 3 * C;
    const T scale = T(1) / math::sqrt(T(hd));
    be->gemm.gemm_batched(true, false, L, hd, L, T(1), att, L, dout, C, T(0), dqkv + 2 * C, ld, pdo.slice(k, 1));
    std::int64_t slot = k;
    if constexpr (std::is_same<typename Be::exec_type, OpenMPExecutor>::value)
      if (per_worker) slot = OpenMPExecutor::worker_index();
    T* dP = scratch + slot * L * L;
    const GemmBatch vs = dov.slice(k, 1);  // dP = dO V^T into this item's slot
    be->gemm.gemm(false, true, L, L, hd, T(1), dout + vs.a_off(0), C, qkv + 2 * C + vs.b_off(0), ld,
                  T(0), dP, L);
    const SoftmaxBackwardRowKernel<T> row{dP, att + k * L * L, L, scale};
    for (int i = 0; i < L; ++i) row(i);
    const GemmBatch ks = dsk.slice(k, 1);
    be->gemm.gemm(false, false, L, hd, L, T(1), dP, L, qkv + C + ks.b_off(0), ld, T(0), dqkv + ks.c_off(0), ld);
    be->gemm.gemm(true, false, L, hd, L, T(1), dP, L, qkv + ks.b_off(0), ld, T(0), dqkv + C + ks.c_off(0), ld);
  }
};
#endif

/// Forward: att = softmax(scale Q K^T [masked]), out = att V: strided-batched products and a
/// row kernel, in groups of detail::attention_chunk items (the results do not depend on the
/// grouping); host_simd backends run AttentionForwardItemTwin instead.
template <class Be, class T>
void attention_forward(const Be& be, T* out, T* att, const T* qkv, int B, int L, int C, int H,
                       bool causal) {
  const int hd = C / H;
  const T scale = T(1) / math::sqrt(T(hd));
  const int ld = 3 * C;
  const detail::AttnStrides s(L, C, H);
  const GemmBatch qk = detail::make_batch(B, H, s.qkv_outer, s.head, s.qkv_outer, s.head, s.p_outer, s.p_inner);
  const GemmBatch pv = detail::make_batch(B, H, s.p_outer, s.p_inner, s.qkv_outer, s.head, s.o_outer, s.head);
  const std::int64_t items = std::int64_t(B) * H;
#if !defined(__CUDACC__)
  if constexpr (Be::host_simd) {
    be.exec.for_each(items, AttentionForwardItemTwin<Be, T>{&be, out, att, qkv, L, C, H, causal, qk, pv},
                     double(items) * L * L * hd);
    return;
  }
#endif
  const std::int64_t chunk = detail::attention_chunk<Be, T>(items, L);
  for (std::int64_t k0 = 0; k0 < items; k0 += chunk) {
    const std::int64_t n = k0 + chunk < items ? chunk : items - k0;
    // S = scale Q K^T
    be.gemm.gemm_batched(false, true, L, L, hd, scale, qkv, ld, qkv + C, ld, T(0), att, L, qk.slice(k0, n));
    T* rows0 = att + k0 * L * L;
    const std::int64_t rows = n * L;
    bool done = false;
#if DISCDIFF_NN_SIMD
    if constexpr (std::is_same<T, float>::value)
      if (detail::use_simd_twin<Be, T>()) {
        be.exec.for_each(rows, SoftmaxRowSimdTwin{rows0, L, causal}, double(rows) * L);
        done = true;
      }
#endif
    if (!done) be.exec.for_each(rows, SoftmaxRowKernel<T>{rows0, L, causal}, double(rows) * L);
    // O = P V
    be.gemm.gemm_batched(false, false, L, hd, L, T(1), att, L, qkv + 2 * C, ld, T(0), out, C, pv.slice(k0, n));
  }
}

/// Backward. dqkv (N x 3C) is written (gradients w.r.t. the rotated q, k and v); scratch
/// holds B H L L elements (backend memory), in groups of detail::attention_chunk items
/// (host_simd backends: AttentionBackwardItemTwin, one item per kernel element).
///   dV = P^T dO;  dP = dO V^T;  dS = P (dP - rowsum(P dP)) / sqrt(hd);  dQ = dS K;  dK = dS^T Q.
/// Masked (causal) entries have P = 0, hence dS = 0.
template <class Be, class T>
void attention_backward(const Be& be, T* dqkv, T* scratch, const T* dout, const T* att,
                        const T* qkv, int B, int L, int C, int H) {
  const int hd = C / H;
  const T scale = T(1) / math::sqrt(T(hd));
  const int ld = 3 * C;
  const detail::AttnStrides s(L, C, H);
  const std::int64_t items = std::int64_t(B) * H;
  const std::int64_t chunk = detail::attention_chunk<Be, T>(items, L);
  const GemmBatch pdo = detail::make_batch(B, H, s.p_outer, s.p_inner, s.o_outer, s.head, s.qkv_outer, s.head);
  const GemmBatch dov = detail::make_batch(B, H, s.o_outer, s.head, s.qkv_outer, s.head, s.p_outer, s.p_inner);
  const GemmBatch dsk = detail::make_batch(B, H, s.p_outer, s.p_inner, s.qkv_outer, s.head, s.qkv_outer, s.head);
#if !defined(__CUDACC__)
  if constexpr (Be::host_simd) {
    be.exec.for_each(items, AttentionBackwardItemTwin<Be, T>{&be, dqkv, scratch, dout, att, qkv, L, C, H, pdo, dov, dsk,
                                                     detail::team_fits(be.exec, items)},
                     double(items) * L * L * hd);
    return;
  }
#endif
  for (std::int64_t k0 = 0; k0 < items; k0 += chunk) {
    const std::int64_t n = k0 + chunk < items ? chunk : items - k0;
    T* dP = scratch;  // item k's dP at scratch + k L L
    // dV = P^T dO
    be.gemm.gemm_batched(true, false, L, hd, L, T(1), att, L, dout, C, T(0), dqkv + 2 * C, ld, pdo.slice(k0, n));
    // dP = dO V^T
    be.gemm.gemm_batched(false, true, L, L, hd, T(1), dout, C, qkv + 2 * C, ld, T(0), dP, L, dov.slice(k0, n));
    const std::int64_t rows = n * L;
    be.exec.for_each(rows, SoftmaxBackwardRowKernel<T>{scratch + k0 * L * L, att + k0 * L * L, L, scale}, double(rows) * L);
    // dQ = dS K
    be.gemm.gemm_batched(false, false, L, hd, L, T(1), dP, L, qkv + C, ld, T(0), dqkv, ld, dsk.slice(k0, n));
    // dK = dS^T Q
    be.gemm.gemm_batched(true, false, L, hd, L, T(1), dP, L, qkv, ld, T(0), dqkv + C, ld, dsk.slice(k0, n));
  }
}

/// Naive host reference of attention_forward (loops; same outputs and saved probabilities).
template <class T>
void attention_forward_naive(T* out, T* att, const T* qkv, int B, int L, int C, int H,
                             bool causal) {
  const int hd = C / H;
  const T scale = T(1) / std::sqrt(T(hd));
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < L; ++i) {
        const T* q = qkv + (std::size_t(b) * L + i) * 3 * C + std::size_t(h) * hd;
        T* P = att + ((std::size_t(b) * H + h) * L + i) * L;
        T mx = -std::numeric_limits<T>::infinity();
        for (int j = 0; j < L; ++j) {
          if (causal && j > i) { P[j] = T(0); continue; }
          const T* k = qkv + (std::size_t(b) * L + j) * 3 * C + C + std::size_t(h) * hd;
          T s = T(0);
          for (int c = 0; c < hd; ++c) s += q[c] * k[c];
          P[j] = s * scale;
          mx = P[j] > mx ? P[j] : mx;
        }
        T z = T(0);
        for (int j = 0; j < L; ++j) {
          if (causal && j > i) continue;
          P[j] = std::exp(P[j] - mx);
          z += P[j];
        }
        for (int j = 0; j < L; ++j) P[j] /= z;
        T* o = out + (std::size_t(b) * L + i) * C + std::size_t(h) * hd;
        for (int c = 0; c < hd; ++c) {
          T s = T(0);
          for (int j = 0; j < L; ++j)
            s += P[j] * qkv[(std::size_t(b) * L + j) * 3 * C + 2 * C + std::size_t(h) * hd + c];
          o[c] = s;
        }
      }
}

/// Naive host reference of attention_backward (loops).
template <class T>
void attention_backward_naive(T* dqkv, const T* dout, const T* att, const T* qkv, int B, int L,
                              int C, int H) {
  const int hd = C / H;
  const T scale = T(1) / std::sqrt(T(hd));
  const std::size_t ld = 3 * std::size_t(C);
  std::vector<T> dP(L);
  for (std::size_t i = 0; i < std::size_t(B) * L * ld; ++i) dqkv[i] = T(0);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < L; ++i) {
        const T* P = att + ((std::size_t(b) * H + h) * L + i) * L;
        const T* dO = dout + (std::size_t(b) * L + i) * C + std::size_t(h) * hd;
        T s = T(0);
        for (int j = 0; j < L; ++j) {
          const T* v = qkv + (std::size_t(b) * L + j) * ld + 2 * C + std::size_t(h) * hd;
          T* dv = dqkv + (std::size_t(b) * L + j) * ld + 2 * C + std::size_t(h) * hd;
          T acc = T(0);
          for (int c = 0; c < hd; ++c) {
            acc += dO[c] * v[c];
            dv[c] += P[j] * dO[c];
          }
          dP[j] = acc;
          s += P[j] * acc;
        }
        const T* q = qkv + (std::size_t(b) * L + i) * ld + std::size_t(h) * hd;
        T* dq = dqkv + (std::size_t(b) * L + i) * ld + std::size_t(h) * hd;
        for (int j = 0; j < L; ++j) {
          const T ds = P[j] * (dP[j] - s) * scale;
          const T* k = qkv + (std::size_t(b) * L + j) * ld + C + std::size_t(h) * hd;
          T* dk = dqkv + (std::size_t(b) * L + j) * ld + C + std::size_t(h) * hd;
          for (int c = 0; c < hd; ++c) {
            dq[c] += ds * k[c];
            dk[c] += ds * q[c];
          }
        }
      }
}

}  // namespace nn
}  // namespace discdiff
