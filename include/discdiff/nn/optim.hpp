// discdiff/nn/optim.hpp: AdamW, learning-rate schedules, global-norm clipping and the
// parameter EMA (spec/MODELS.md 6).
//
// Every operation is element-wise over the flat slab or a reduction over fixed-size
// chunks summed in ascending order, so a training run is reproducible bit for bit.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "parallel.hpp"

namespace discdiff {
namespace nn {

/// Learning rate at step n >= 1: base * min(1, n / warmup), then constant or a cosine
/// decay to min_ratio * base over [warmup, total] (MODELS.md 6.2; MD4 uses min_ratio 0).
struct LrSchedule {
  enum class Kind { constant, cosine };
  double base = 3e-4;
  long warmup = 0;
  long total = 0;  ///< last step of the cosine decay (cosine only)
  Kind kind = Kind::constant;
  double min_ratio = 0.0;

  double at(long n) const {
    double lr = base;
    if (warmup > 0 && n < warmup) lr = base * double(n) / double(warmup);
    if (kind == Kind::cosine && n >= warmup) {
      const double span = double(total > warmup ? total - warmup : 1);
      double frac = double(n - warmup) / span;
      frac = frac < 0 ? 0 : (frac > 1 ? 1 : frac);
      const double cosv = 0.5 * (1.0 + std::cos(3.14159265358979323846 * frac));
      lr = base * (min_ratio + (1.0 - min_ratio) * cosv);
    }
    return lr;
  }
};

namespace detail {
constexpr std::size_t kReduceChunk = std::size_t(1) << 14;
}

/// ||g||_2 over the slab: per-chunk sums of squares in double (chunks of 2^14 elements,
/// in parallel), added in ascending chunk order; independent of the thread count.
template <class T>
double global_norm(const T* g, std::size_t n) {
  const std::size_t nc = (n + detail::kReduceChunk - 1) / detail::kReduceChunk;
  std::vector<double> part(nc, 0.0);
#pragma omp parallel for schedule(static) if(long(n) >= parallel_min_work())
  for (long c = 0; c < long(nc); ++c) {
    const std::size_t i0 = std::size_t(c) * detail::kReduceChunk;
    const std::size_t i1 = i0 + detail::kReduceChunk < n ? i0 + detail::kReduceChunk : n;
    double s = 0.0;
    for (std::size_t i = i0; i < i1; ++i) s += double(g[i]) * double(g[i]);
    part[c] = s;
  }
  double s = 0.0;
  for (double p : part) s += p;
  return std::sqrt(s);
}

/// Clip by global norm as torch.nn.utils.clip_grad_norm_: g *= min(1, max_norm/(||g|| + 1e-6)).
/// Returns the norm before clipping.
template <class T>
double clip_grad_norm(T* g, std::size_t n, double max_norm) {
  require_positive("nn::clip_grad_norm", "max_norm", max_norm);
  const double norm = global_norm(g, n);
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0) {
    const T c = T(coef);
#pragma omp parallel for schedule(static) if(long(n) >= parallel_min_work())
    for (long i = 0; i < long(n); ++i) g[i] *= c;
  }
  return norm;
}

/// AdamW hyper-parameters (PyTorch defaults except the learning rate, which the schedule sets).
struct AdamWConfig {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

/// AdamW with decoupled weight decay, in PyTorch's order (MODELS.md 6.1):
///   theta <- theta (1 - lr wd);  m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;
///   theta <- theta - (lr / (1 - b1^n)) m / (sqrt(v) / sqrt(1 - b2^n) + eps).
template <class T>
class AdamW {
 public:
  AdamW(std::size_t n, const AdamWConfig& c = {}) : cfg_(c), m_(n, T(0)), v_(n, T(0)) {
    require_in_closed("nn::AdamW", "beta1", c.beta1, 0.0, 1.0);
    require_in_closed("nn::AdamW", "beta2", c.beta2, 0.0, 1.0);
    require_positive("nn::AdamW", "eps", c.eps);
    require_nonnegative("nn::AdamW", "weight_decay", c.weight_decay);
  }

  /// One step with learning rate lr; increments the step count n.
  void step(T* theta, const T* g, double lr) {
    ++n_;
    const T b1 = T(cfg_.beta1), b2 = T(cfg_.beta2);
    const T ob1 = T(1.0 - cfg_.beta1), ob2 = T(1.0 - cfg_.beta2);
    const T decay = T(1.0 - lr * cfg_.weight_decay);
    const double bc1 = 1.0 - std::pow(cfg_.beta1, double(n_));
    const double bc2 = 1.0 - std::pow(cfg_.beta2, double(n_));
    const T step_size = T(lr / bc1);
    const T bc2s = T(std::sqrt(bc2));
    const T eps = T(cfg_.eps);
    T* m = m_.data();
    T* v = v_.data();
    const long n = long(m_.size());
#pragma omp parallel for schedule(static) if(n >= parallel_min_work())
    for (long i = 0; i < n; ++i) {
      theta[i] *= decay;
      m[i] = b1 * m[i] + ob1 * g[i];
      v[i] = b2 * v[i] + ob2 * g[i] * g[i];
      const T denom = std::sqrt(v[i]) / bc2s + eps;
      theta[i] -= step_size * (m[i] / denom);
    }
  }

  long steps() const { return n_; }
  /// Restores the moments and the step count (resuming from a checkpoint); throws
  /// std::invalid_argument for a size mismatch or a negative count.
  void restore(const std::vector<T>& m, const std::vector<T>& v, long n) {
    if (m.size() != m_.size() || v.size() != v_.size())
      throw_invalid("nn::AdamW::restore", "moments size", m.size(),
                    ("must equal the parameter count " + std::to_string(m_.size())).c_str());
    if (n < 0) throw_invalid("nn::AdamW::restore", "steps", n, "must be >= 0");
    m_ = m;
    v_ = v;
    n_ = n;
  }
  const std::vector<T>& first_moment() const { return m_; }
  const std::vector<T>& second_moment() const { return v_; }

 private:
  AdamWConfig cfg_;
  std::vector<T> m_, v_;
  long n_ = 0;
};

/// EMA of the parameters after every optimiser step n = 1, 2, ...:
/// shadow <- d_n shadow + (1 - d_n) theta, d_n = min(decay, (1 + n)/(10 + n)) with warm-up
/// (SEDD/MDLM) or d_n = decay (MD4).
template <class T>
class Ema {
 public:
  Ema(const T* theta, std::size_t n, double decay = 0.9999, bool warmup = true)
      : shadow_(theta, theta + n), decay_(decay), warmup_(warmup) {
    require_in_closed("nn::Ema", "decay", decay, 0.0, 1.0);
  }
  void update(const T* theta) {
    ++n_;
    double dn = decay_;
    if (warmup_) {
      const double w = (1.0 + double(n_)) / (10.0 + double(n_));
      dn = w < dn ? w : dn;
    }
    const T a = T(dn), b = T(1.0 - dn);
    T* s = shadow_.data();
    const long n = long(shadow_.size());
#pragma omp parallel for schedule(static) if(n >= parallel_min_work())
    for (long i = 0; i < n; ++i) s[i] = a * s[i] + b * theta[i];
  }
  const std::vector<T>& shadow() const { return shadow_; }
  long updates() const { return n_; }
  /// Restores the shadow parameters and the update count (resuming from a checkpoint).
  void restore(const std::vector<T>& shadow, long n) {
    if (shadow.size() != shadow_.size())
      throw_invalid("nn::Ema::restore", "shadow size", shadow.size(),
                    ("must equal the parameter count " + std::to_string(shadow_.size())).c_str());
    if (n < 0) throw_invalid("nn::Ema::restore", "updates", n, "must be >= 0");
    shadow_ = shadow;
    n_ = n;
  }

 private:
  std::vector<T> shadow_;
  double decay_;
  bool warmup_;
  long n_ = 0;
};

}  // namespace nn
}  // namespace discdiff
