// discdiff/nn/gemm.hpp: row-major GEMM over flat buffers, and the linear layer.
//
//   C[M, N] = alpha op(A) op(B) + beta C     (row-major, leading dimensions lda/ldb/ldc)
//
// Backends, chosen at compile time:
//  * DISCDIFF_USE_BLAS=1: cblas_sgemm / cblas_dgemm (OpenBLAS). Defaults to 1 where the
//    target links discdiff_blas (which defines DISCDIFF_HAVE_CBLAS=1), else 0.
//  * otherwise Eigen's GEMM over Map views (multi-threaded by Eigen's OpenMP when it is
//    called outside a parallel region, single-threaded inside one).
// Both partition the output among threads and keep the k-order of every sum fixed,
// so a product is reproducible bit for bit for a given thread count.
// gemm_naive is the reference (triple loop, k ascending).
#pragma once

#include <Eigen/Core>
#include <cstddef>

#ifndef DISCDIFF_USE_BLAS
#if defined(DISCDIFF_HAVE_CBLAS) && DISCDIFF_HAVE_CBLAS
#define DISCDIFF_USE_BLAS 1
#else
#define DISCDIFF_USE_BLAS 0
#endif
#endif

#if DISCDIFF_USE_BLAS
#include <cblas.h>
#endif

namespace discdiff {
namespace nn {

template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using MapRM = Eigen::Map<RowMat<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <class T>
using CMapRM = Eigen::Map<const RowMat<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

/// A row-major view of rows x cols with leading dimension ld (>= cols).
template <class T>
MapRM<T> view(T* p, long rows, long cols, long ld) {
  return MapRM<T>(p, rows, cols, Eigen::OuterStride<>(ld));
}
template <class T>
CMapRM<T> cview(const T* p, long rows, long cols, long ld) {
  return CMapRM<T>(p, rows, cols, Eigen::OuterStride<>(ld));
}

/// Reference GEMM: C = alpha op(A) op(B) + beta C, sums over k in ascending order.
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

namespace detail {
template <class T>
void gemm_eigen(bool ta, bool tb, int M, int N, int K, T alpha, const T* A, int lda,
                const T* B, int ldb, T beta, T* C, int ldc) {
  auto c = view(C, M, N, ldc);
  const long ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
  auto a = cview(A, ar, ac, lda);
  auto b = cview(B, br, bc, ldb);
  if (beta == T(0)) c.setZero();
  else if (beta != T(1)) c *= beta;
  if (!ta && !tb) c.noalias() += alpha * (a * b);
  else if (!ta && tb) c.noalias() += alpha * (a * b.transpose());
  else if (ta && !tb) c.noalias() += alpha * (a.transpose() * b);
  else c.noalias() += alpha * (a.transpose() * b.transpose());
}
#if DISCDIFF_USE_BLAS
inline void gemm_blas(bool ta, bool tb, int M, int N, int K, float alpha, const float* A,
                      int lda, const float* B, int ldb, float beta, float* C, int ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M,
              N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
inline void gemm_blas(bool ta, bool tb, int M, int N, int K, double alpha, const double* A,
                      int lda, const double* B, int ldb, double beta, double* C, int ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M,
              N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
#endif
}  // namespace detail

/// C = alpha op(A) op(B) + beta C (row-major). Large products go to BLAS when
/// DISCDIFF_USE_BLAS is set, the rest to Eigen.
template <class T>
void gemm(bool ta, bool tb, int M, int N, int K, T alpha, const T* A, int lda, const T* B,
          int ldb, T beta, T* C, int ldc) {
  if (M == 0 || N == 0) return;
#if DISCDIFF_USE_BLAS
  detail::gemm_blas(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#else
  detail::gemm_eigen(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

/// Single-threaded GEMM for use inside an OpenMP region (attention per head):
/// always Eigen (which does not nest threads inside a parallel region).
template <class T>
void gemm_local(bool ta, bool tb, int M, int N, int K, T alpha, const T* A, int lda,
                const T* B, int ldb, T beta, T* C, int ldc) {
  detail::gemm_eigen(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// ------------------------------------------------------------------ linear layer
// y[N, OC] = x[N, C] W[OC, C]^T + b[OC]     (PyTorch's Linear layout)

/// Forward of the linear layer; b may be null.
template <class T>
void linear_forward(T* y, const T* x, const T* W, const T* b, int N, int C, int OC) {
  gemm<T>(false, true, N, OC, C, T(1), x, C, W, C, T(0), y, OC);
  if (b) {
#pragma omp parallel for schedule(static)
    for (long n = 0; n < N; ++n) {
      T* row = y + std::size_t(n) * OC;
      for (int o = 0; o < OC; ++o) row[o] += b[o];
    }
  }
}

/// Backward of the linear layer:
///   dx = dy W (overwritten, or added when accumulate_dx; skipped when dx is null);
///   dW += dy^T x;   db += sum_n dy[n] (rows summed in ascending n; skipped when db is null).
template <class T>
void linear_backward(T* dx, T* dW, T* db, const T* dy, const T* x, const T* W, int N, int C,
                     int OC, bool accumulate_dx = false) {
  if (dx) gemm<T>(false, false, N, C, OC, T(1), dy, OC, W, C, accumulate_dx ? T(1) : T(0), dx, C);
  gemm<T>(true, false, OC, C, N, T(1), dy, OC, x, C, T(1), dW, C);
  if (db) {
    // Columns in parallel; each column sums its N rows in order.
    constexpr int kBlock = 16;
    const int nblk = (OC + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nblk; ++blk) {
      const int o0 = blk * kBlock, o1 = o0 + kBlock < OC ? o0 + kBlock : OC;
      T acc[kBlock];
      for (int o = o0; o < o1; ++o) acc[o - o0] = T(0);
      for (long n = 0; n < N; ++n) {
        const T* row = dy + std::size_t(n) * OC;
        for (int o = o0; o < o1; ++o) acc[o - o0] += row[o];
      }
      for (int o = o0; o < o1; ++o) db[o] += acc[o - o0];
    }
  }
}

}  // namespace nn
}  // namespace discdiff
