// discdiff/generator/dense.hpp: a general dense rate matrix Q, the numerical oracle of
// spec/MATH.md 3.4 (host only; needs Eigen 3.4 and its unsupported MatrixFunctions module).
//
//   P_u = exp(uQ) by Eigen's scaling-and-squaring Pade approximant (Higham 2005), O(D^3);
//   ratios, columns, rows, apply_exp and forward draws are read off P_u.
//
// Implements the members of the Generator concept (docs/architecture.md) with the same
// signatures, but host only (no DD_HD) and not trivially copyable. Intended for D <= 256 or so.
// P_u is cached for the last u, so the const members mutate a cache: one DenseGenerator must not
// be used by two threads at once (copy it per thread). Not included by generators.hpp.
#pragma once

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

#include <Eigen/Dense>
#include <unsupported/Eigen/MatrixFunctions>

#include "../core/error.hpp"
#include "../core/random.hpp"

namespace discdiff {

/// Dense CTMC generator Q (column convention: Q[y,x] is the rate of x -> y, columns sum to 0).
template <class T>
class DenseGenerator {
 public:
  using value_type = T;
  using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
  using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;
  static constexpr const char* name = "dense";

  /// Validates q and throws std::invalid_argument naming the bad entry and value when q is not
  /// square with D >= 2, has a non-finite entry or a negative off-diagonal entry, or a column
  /// sum exceeds column_sum_tolerance. mask is -1 (no MASK) or D - 1 (the MASK id).
  explicit DenseGenerator(Matrix q, int mask = -1) : q_(std::move(q)), mask_(mask) {
    const char* where = "DenseGenerator";
    if (q_.rows() != q_.cols())
      throw_invalid(where, "Q.cols()", q_.cols(),
                    ("Q must be square; Q.rows() = " + std::to_string(q_.rows())).c_str());
    if (q_.rows() < 2) throw_invalid(where, "Q.rows()", q_.rows(), "need D >= 2 states");
    d_ = static_cast<int>(q_.rows());
    if (mask_ != -1 && mask_ != d_ - 1)
      throw_invalid(where, "mask", mask_, "must be -1 (no MASK) or D - 1");
    for (int x = 0; x < d_; ++x) {
      T sum = T(0), scale = T(0);
      for (int y = 0; y < d_; ++y) {
        const T qyx = q_(y, x);
        if (!std::isfinite(static_cast<double>(qyx)))
          throw_invalid(where, entry_name(y, x).c_str(), qyx, "must be finite");
        if (y != x && qyx < T(0))
          throw_invalid(where, entry_name(y, x).c_str(), qyx, "off-diagonal rates must be >= 0");
        sum += qyx;
        scale += std::abs(qyx);
      }
      if (std::abs(sum) > column_sum_tolerance(scale, d_)) {
        const std::string nm = "sum of Q column " + std::to_string(x);
        throw_invalid(where, nm.c_str(), sum, "columns of a rate matrix must sum to 0");
      }
    }
    compute_limit();
  }

  /// Allowed |column sum| for a column with sum_y |Q[y,x]| = scale: 8 D eps scale.
  static T column_sum_tolerance(T scale, int d) {
    return T(8) * T(d) * std::numeric_limits<T>::epsilon() * scale;
  }

  int num_regular() const { return mask_ >= 0 ? d_ - 1 : d_; }
  int num_states() const { return d_; }
  bool has_mask() const { return mask_ >= 0; }
  int mask() const { return mask_; }

  /// Q[y,x].
  T rate(int y, int x) const { return q_(y, x); }
  /// exit(x) = -Q[x,x].
  T exit_rate(int x) const { return -q_(x, x); }
  /// The validated Q.
  const Matrix& generator_matrix() const { return q_; }

  /// P_u = exp(uQ) (Eigen's matrix exponential), recomputed only when u differs from the last
  /// call's u. The reference stays valid until the next call with another u.
  const Matrix& transition_matrix(T u) const {
    if (!(has_cache_ && cached_u_ == u)) {
      p_ = (u * q_).exp();
      cached_u_ = u;
      has_cache_ = true;
    }
    return p_;
  }

  /// P_u[y,x].
  T transition(int y, int x, T u) const { return transition_matrix(u)(y, x); }

  /// out[y] = P_u[y,x], y < D.
  void transition_column(int x, T u, T* out) const {
    Eigen::Map<Vector>(out, d_) = transition_matrix(u).col(x);
  }

  /// out[x] = P_u[y,x], x < D.
  void transition_row(int y, T u, T* out) const {
    Eigen::Map<Vector>(out, d_) = transition_matrix(u).row(y).transpose();
  }

  /// out = P_u v (O(D^2) after the exponential); out may alias v.
  void apply_exp(T u, const T* v, T* out) const {
    const Vector r = transition_matrix(u) * Eigen::Map<const Vector>(v, d_);
    Eigen::Map<Vector>(out, d_) = r;
  }

  /// P_u[b,a] / P_u[x,a] by direct division (the generic replacement of spec 3.4).
  T ratio(int x, int b, int a, T u) const {
    const Matrix& p = transition_matrix(u);
    return p(b, a) / p(x, a);
  }

  /// x_t ~ P_u[., x0] for u >= 0: one rng.uniform<T>() and the inverse CDF of column x0
  /// (entries below 0 from rounding count as 0).
  int sample_forward(int x0, T u, CounterRng& rng) const {
    const Vector col = transition_matrix(u).col(x0).cwiseMax(T(0));
    return categorical_inverse_cdf(col.data(), d_, rng.template uniform<T>());
  }

  /// True when Q has a unique stationary distribution (one-dimensional kernel).
  bool has_unique_limit() const { return unique_limit_; }

  /// The stationary distribution pi (Q pi = 0, sum pi = 1) when it is unique; empty otherwise.
  const Vector& limit_distribution() const { return pi_; }

  /// A draw from pi: one rng.uniform<T>() and the inverse CDF. Throws std::logic_error when Q
  /// has no unique stationary distribution (several closed classes).
  int sample_limit(CounterRng& rng) const {
    if (!unique_limit_)
      throw std::logic_error("DenseGenerator::sample_limit: Q has no unique stationary distribution");
    return categorical_inverse_cdf(pi_.data(), d_, rng.template uniform<T>());
  }

 private:
  static std::string entry_name(int y, int x) {
    return "Q[" + std::to_string(y) + "," + std::to_string(x) + "]";
  }

  // pi spans the kernel of Q when that kernel is one-dimensional (a single closed class).
  void compute_limit() {
    Eigen::FullPivLU<Matrix> lu(q_);
    const Matrix k = lu.kernel();
    unique_limit_ = k.cols() == 1 && k.col(0).sum() != T(0);
    if (!unique_limit_) return;
    pi_ = (k.col(0) / k.col(0).sum()).cwiseMax(T(0));
    pi_ /= pi_.sum();
  }

  Matrix q_;
  int mask_;
  int d_ = 0;
  bool unique_limit_ = false;
  Vector pi_;
  mutable Matrix p_;
  mutable T cached_u_ = T(0);
  mutable bool has_cache_ = false;
};

/// A DenseGenerator with Q[y,x] = g.rate(y, x, extra...) and g's MASK: the oracle twin of a
/// closed-form generator. For StateDependentMaskingGenerator pass the rate vector beta (with
/// beta = ubar, P_1 of the result is the transition of ubar).
template <class Gen, class... Extra>
DenseGenerator<typename Gen::value_type> make_dense(const Gen& g, const Extra&... extra) {
  using T = typename Gen::value_type;
  const int d = g.num_states();
  typename DenseGenerator<T>::Matrix q(d, d);
  for (int x = 0; x < d; ++x)
    for (int y = 0; y < d; ++y) q(y, x) = g.rate(y, x, extra...);
  return DenseGenerator<T>(std::move(q), g.mask());
}

}  // namespace discdiff
