// discdiff/nn/gemm.hpp: row-major GEMM over flat buffers, and the linear layer.
//
//   C[M, N] = alpha op(A) op(B) + beta C     (row-major, leading dimensions lda/ldb/ldc)
//
// Backends, chosen at compile time:
//  * DISCDIFF_USE_BLAS=1: cblas_sgemm / cblas_dgemm (OpenBLAS). Defaults to 1 where the
//    target links discdiff_blas (which defines DISCDIFF_HAVE_CBLAS=1), else 0.
//  * otherwise Eigen's GEMM over Map views, threaded by us (gemm_eigen_mt: one block of
//    rows or columns of C per thread; Eigen is single-threaded inside a parallel region).
// Both partition the output among threads and keep the k-order of every sum fixed,
// so a product is reproducible bit for bit for a given thread count.
// gemm_naive is the reference (triple loop, k ascending).
#pragma once

#include <Eigen/Core>
#include <cstddef>

#include "parallel.hpp"

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
/// Eigen's GEMM with our own threads: the rows (or, when there are few rows, the
/// columns) of C are split into one contiguous block per thread, and each block is an
/// Eigen product on its thread (Eigen runs single-threaded inside a parallel region).
/// This replaces Eigen's own OpenMP GEMM, whose threads busy-wait for each other and
/// collapse on an oversubscribed machine. Each block's result depends only on the
/// sizes, so a product is reproducible for a given thread count.
/// Products below kGemmParallelMinMacs multiply-adds run on the calling thread.
constexpr double kGemmParallelMinMacs = double(1 << 22);

template <class T>
void gemm_eigen_mt(bool ta, bool tb, int M, int N, int K, T alpha, const T* A, int lda,
                   const T* B, int ldb, T beta, T* C, int ldc) {
  const int nt = detail::max_threads();
  if (nt < 2 || double(M) * N * K < kGemmParallelMinMacs || omp_in_parallel_region()) {
    gemm_eigen(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  const bool by_rows = M >= N || M >= 8 * nt;
  const int len = by_rows ? M : N;
#pragma omp parallel for schedule(static, 1) num_threads(nt)
  for (int t = 0; t < nt; ++t) {
    const int i0 = int(long(len) * t / nt), i1 = int(long(len) * (t + 1) / nt);
    if (i1 <= i0) continue;
    if (by_rows) {
      const T* a = ta ? A + i0 : A + std::size_t(i0) * lda;
      gemm_eigen(ta, tb, i1 - i0, N, K, alpha, a, lda, B, ldb, beta, C + std::size_t(i0) * ldc, ldc);
    } else {
      const T* b = tb ? B + std::size_t(i0) * ldb : B + i0;
      gemm_eigen(ta, tb, M, i1 - i0, K, alpha, A, lda, b, ldb, beta, C + i0, ldc);
    }
  }
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
  detail::gemm_eigen_mt(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

/// Single-threaded GEMM for use inside an OpenMP region (attention per head). OpenBLAS
/// when DISCDIFF_USE_BLAS (its OpenMP build runs one thread inside a parallel region, and
/// its kernels are chosen at run time, so they use AVX2/AVX-512 whatever the compile
/// flags), else Eigen (which does not nest threads inside a parallel region either).
template <class T>
void gemm_local(bool ta, bool tb, int M, int N, int K, T alpha, const T* A, int lda,
                const T* B, int ldb, T beta, T* C, int ldc) {
  if (M == 0 || N == 0) return;
#if DISCDIFF_USE_BLAS
  detail::gemm_blas(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#else
  detail::gemm_eigen(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

// ------------------------------------------------------------------ linear layer
// y[N, OC] = x[N, C] W[OC, C]^T + b[OC]     (PyTorch's Linear layout)

/// Forward of the linear layer; b may be null.
template <class T>
void linear_forward(T* y, const T* x, const T* W, const T* b, int N, int C, int OC) {
  gemm<T>(false, true, N, OC, C, T(1), x, C, W, C, T(0), y, OC);
  if (b) {
#pragma omp parallel for schedule(static) if(long(N) * OC >= parallel_min_work())
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
#pragma omp parallel for schedule(static) if(long(N) * OC >= parallel_min_work())
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
