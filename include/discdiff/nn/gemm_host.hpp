// discdiff/nn/gemm_host.hpp: the host GEMM engines (see gemm.hpp for the interface):
// BlasGemm (OpenBLAS, where the target links discdiff_blas: DISCDIFF_USE_BLAS = 1),
// EigenGemm (Eigen threaded by the OpenMP executor) and HostGemm (the first where it
// exists). Host-only: not included under nvcc (backend.hpp).
#pragma once

#include <Eigen/Core>
#include <cstddef>
#include <cstdint>

#include "../exec/openmp.hpp"
#include "gemm.hpp"

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

/// Host-only: one contiguous block of rows (or columns) of C per thread, each an Eigen
/// product on its thread (replaces Eigen's own OpenMP GEMM, whose threads busy-wait and
/// collapse on an oversubscribed machine). Block t of nt covers [len t/nt, len (t+1)/nt).
template <class T>
struct EigenBlockGemm {
  bool ta, tb, by_rows;
  int M, N, K, nt, len;
  T alpha, beta;
  const T* A;
  int lda;
  const T* B;
  int ldb;
  T* C;
  int ldc;
  void operator()(std::int64_t t) const {
    const int i0 = int(long(len) * t / nt), i1 = int(long(len) * (t + 1) / nt);
    if (i1 <= i0) return;
    if (by_rows) {
      const T* a = ta ? A + i0 : A + std::size_t(i0) * lda;
      gemm_eigen(ta, tb, i1 - i0, N, K, alpha, a, lda, B, ldb, beta, C + std::size_t(i0) * ldc, ldc);
    } else {
      const T* b = tb ? B + std::size_t(i0) * ldb : B + i0;
      gemm_eigen(ta, tb, M, i1 - i0, K, alpha, A, lda, b, ldb, beta, C + i0, ldc);
    }
  }
};

/// Host-only: item k of a batched product on the calling thread (OpenBLAS when Blas and
/// DISCDIFF_USE_BLAS, else Eigen; OpenBLAS's OpenMP build runs one thread inside a parallel
/// region, and its kernels are chosen at run time, so they use AVX2/AVX-512 whatever the
/// compile flags).
template <class T, bool Blas>
struct BatchItemGemm {
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
  void operator()(std::int64_t item) const {
    const T* a = A + batch.a_off(item);
    const T* b = B + batch.b_off(item);
    T* c = C + batch.c_off(item);
#if DISCDIFF_USE_BLAS
    if (Blas) {
      gemm_blas(ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc);
      return;
    }
#endif
    gemm_eigen(ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc);
  }
};
/// The batched call of the host engines: one item goes to the engine's own (threaded) gemm,
/// several run in parallel on its executor, each a one-thread product (BatchItemGemm).
template <bool Blas, class Engine, class T>
void host_gemm_batched(const Engine& e, bool ta, bool tb, int M, int N, int K, T alpha,
                       const T* A, int lda, const T* B, int ldb, T beta, T* C, int ldc,
                       const GemmBatch& batch) {
  const std::int64_t n = batch.count();
  if (n == 0 || M == 0 || N == 0) return;
  if (n == 1) {
    e.gemm(ta, tb, M, N, K, alpha, A + batch.a_off(0), lda, B + batch.b_off(0), ldb, beta,
           C + batch.c_off(0), ldc);
    return;
  }
  e.exec.for_each(n, BatchItemGemm<T, Blas>{ta, tb, M, N, K, alpha, beta, A, lda, B, ldb, C, ldc, batch},
                  double(n) * M * N * K);
}
}  // namespace detail

/// Eigen's GEMM on the host with our own threads: single products split C into one block
/// of rows (or columns) per thread of the OpenMP executor, each an Eigen product on its
/// thread (Eigen's own OpenMP GEMM busy-waits and collapses on an oversubscribed machine);
/// a batch runs its items in parallel. Products below kParallelMinMacs multiply-adds run on
/// the calling thread. Reproducible for a given thread count.
struct EigenGemm {
  OpenMPExecutor exec{};
  static constexpr const char* name = "eigen";
  static constexpr double kParallelMinMacs = double(1 << 22);

  template <class T>
  void gemm(bool ta, bool tb, int M, int N, int K, T alpha, const T* A, int lda, const T* B,
            int ldb, T beta, T* C, int ldc) const {
    if (M == 0 || N == 0) return;
    const int nt = exec.team_size();
    if (nt < 2 || double(M) * N * K < kParallelMinMacs) {
      detail::gemm_eigen(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      return;
    }
    const bool by_rows = M >= N || M >= 8 * nt;
    OpenMPExecutor team{nt};
    team.for_each(nt, detail::EigenBlockGemm<T>{ta, tb, by_rows, M, N, K, nt, by_rows ? M : N,
                                                alpha, beta, A, lda, B, ldb, C, ldc});
  }
  template <class T>
  void gemm_batched(bool ta, bool tb, int M, int N, int K, T alpha, const T* A, int lda,
                    const T* B, int ldb, T beta, T* C, int ldc, const GemmBatch& batch) const {
    detail::host_gemm_batched<false>(*this, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, batch);
  }
};

#if DISCDIFF_USE_BLAS
/// OpenBLAS (cblas_sgemm / cblas_dgemm; OpenBLAS threads single products itself); a batch
/// runs its items in parallel on the OpenMP executor, each a one-thread BLAS call.
struct BlasGemm {
  OpenMPExecutor exec{};
  static constexpr const char* name = "openblas";

  template <class T>
  void gemm(bool ta, bool tb, int M, int N, int K, T alpha, const T* A, int lda, const T* B,
            int ldb, T beta, T* C, int ldc) const {
    if (M == 0 || N == 0) return;
    detail::gemm_blas(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
  template <class T>
  void gemm_batched(bool ta, bool tb, int M, int N, int K, T alpha, const T* A, int lda,
                    const T* B, int ldb, T beta, T* C, int ldc, const GemmBatch& batch) const {
    detail::host_gemm_batched<true>(*this, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, batch);
  }
};
/// The host engine (the fast path): OpenBLAS where the target links discdiff_blas.
using HostGemm = BlasGemm;
#else
/// The host engine: threaded Eigen where OpenBLAS is not linked.
using HostGemm = EigenGemm;
#endif

}  // namespace nn
}  // namespace discdiff
