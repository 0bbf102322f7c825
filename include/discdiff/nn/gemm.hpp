// discdiff/nn/gemm.hpp: the GEMM interface of a backend, its implementations, and the
// batch descriptor of attention's per-head products.
//
//   C[M, N] = alpha op(A) op(B) + beta C     (row-major, leading dimensions lda/ldb/ldc)
//
// A GEMM engine is a value type with
//   template <class T> void gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) const;
//   template <class T> void gemm_batched(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc,
//                                         const GemmBatch& batch) const;
// over pointers in its executor's memory space. Implementations:
//  * NaiveGemm<Exec>: one DD_HD kernel element per output entry, k ascending; runs on any
//    executor (the reference, and the portable path of every backend);
//  * BlasGemm (OpenBLAS, where the target links discdiff_blas: DISCDIFF_USE_BLAS = 1) and
//    EigenGemm (Eigen threaded by the OpenMP executor); HostGemm is the first where it
//    exists, else the second. A batched call runs its items on the executor's threads,
//    each a single-threaded product;
//  * a cuBLAS engine (cublasGemmStridedBatchedEx) fills the same slot on the GPU.
// The host engines are in gemm_host.hpp (Eigen, OpenBLAS), which nvcc never needs.
// Each engine keeps the k-order of every sum fixed for a given thread count, so a product
// is reproducible bit for bit; engines differ from each other within rounding.
// gemm_naive is the plain host triple loop (tests).
#pragma once

#include <cstddef>
#include <cstdint>

#include "../core/config.hpp"
#include "../exec/sequential.hpp"

namespace discdiff {
namespace nn {

/// A two-level strided batch: item (o, i), o < outer, i < inner, multiplies
/// A + o a_outer + i a_inner by B + o b_outer + i b_inner into C + o c_outer + i c_inner.
/// (Attention: outer = batch rows b, inner = heads h.) Items are numbered k = o inner + i;
/// a call runs the `limit` items first, first + 1, ... (limit < 0: all from first on).
/// The default is one product.
struct GemmBatch {
  int outer = 1, inner = 1;
  std::int64_t a_outer = 0, a_inner = 0, b_outer = 0, b_inner = 0, c_outer = 0, c_inner = 0;
  std::int64_t first = 0, limit = -1;
  DD_HD std::int64_t count() const {
    return limit >= 0 ? limit : std::int64_t(outer) * inner - first;
  }
  /// The same batch restricted to items [k0, k0 + n) of the full numbering.
  GemmBatch slice(std::int64_t k0, std::int64_t n) const {
    GemmBatch g = *this;
    g.first = k0;
    g.limit = n;
    return g;
  }
  DD_HD std::int64_t a_off(std::int64_t item) const {
    const std::int64_t k = first + item;
    return (k / inner) * a_outer + (k % inner) * a_inner;
  }
  DD_HD std::int64_t b_off(std::int64_t item) const {
    const std::int64_t k = first + item;
    return (k / inner) * b_outer + (k % inner) * b_inner;
  }
  DD_HD std::int64_t c_off(std::int64_t item) const {
    const std::int64_t k = first + item;
    return (k / inner) * c_outer + (k % inner) * c_inner;
  }
};

/// Reference GEMM on the host: C = alpha op(A) op(B) + beta C, sums over k ascending.
template <class T>
void gemm_naive(bool ta, bool tb, int M, int N, int K, T alpha, const T* A, int lda,
                const T* B, int ldb, T beta, T* C, int ldc) {
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      T s = T(0);
      for (int k = 0; k < K; ++k) {
        const T a = ta ? A[std::size_t(k) * lda + i] : A[std::size_t(i) * lda + k];
        const T b = tb ? B[std::size_t(j) * ldb + k] : B[std::size_t(k) * ldb + j];
        s += a * b;
      }
      T& c = C[std::size_t(i) * ldc + j];
      c = (beta == T(0) ? T(0) : beta * c) + alpha * s;
    }
}

/// One output entry of a (batched) product per element: element e = item M N + i N + j.
/// beta = 0 overwrites C (NaN in C does not propagate), as BLAS does.
template <class T>
struct GemmEntryKernel {
  bool ta, tb;
  int M, N, K;
  T alpha, beta;
  const T* A;
  int lda;
  const T* B;
  int ldb;
  T* C;
  int ldc;
  GemmBatch batch;
  DD_HD void operator()(std::int64_t e) const {
    const std::int64_t mn = std::int64_t(M) * N;
    const std::int64_t item = e / mn, r = e - item * mn;
    const std::int64_t i = r / N, j = r - i * N;
    const T* a = A + batch.a_off(item);
    const T* b = B + batch.b_off(item);
    T s = T(0);
    for (int k = 0; k < K; ++k) {
      const T av = ta ? a[std::int64_t(k) * lda + i] : a[i * lda + k];
      const T bv = tb ? b[j * ldb + k] : b[std::int64_t(k) * ldb + j];
      s += av * bv;
    }
    T& c = C[batch.c_off(item) + i * ldc + j];
    c = (beta == T(0) ? T(0) : beta * c) + alpha * s;
  }
};

/// The portable GEMM: GemmEntryKernel on any executor (O(MNK) per call, k ascending).
template <class Exec>
struct NaiveGemm {
  Exec exec{};
  static constexpr const char* name = "naive";

  template <class T>
  void gemm(bool ta, bool tb, int M, int N, int K, T alpha, const T* A, int lda, const T* B,
            int ldb, T beta, T* C, int ldc) const {
    gemm_batched(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, GemmBatch{});
  }
  template <class T>
  void gemm_batched(bool ta, bool tb, int M, int N, int K, T alpha, const T* A, int lda,
                    const T* B, int ldb, T beta, T* C, int ldc, const GemmBatch& batch) const {
    const std::int64_t n = std::int64_t(M) * N * batch.count();
    if (n == 0) return;
    exec.for_each(n, GemmEntryKernel<T>{ta, tb, M, N, K, alpha, beta, A, lda, B, ldb, C, ldc, batch},
                  double(n) * (K + 1));
  }
};

}  // namespace nn
}  // namespace discdiff
