// discdiff/nn/optim.hpp: AdamW, learning-rate schedules, global-norm clipping and the
// parameter EMA (spec/MODELS.md 6), on a backend.
//
// Every operation is an element-wise kernel over the flat slab, or the executor's
// fixed-order block sum (chunks of 2^14 elements in double, added in ascending order), so
// a training run is reproducible bit for bit on every backend and thread count. Moments and
// the EMA shadow live in the backend's memory space.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/config.hpp"
#include "../core/error.hpp"
#include "../core/numerics.hpp"
#include "../exec/algorithm.hpp"
#include "../exec/memory.hpp"
#include "backend.hpp"

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
constexpr std::int64_t kReduceChunk = std::int64_t(1) << 14;
template <class T>
struct SquareTerm {
  const T* g;
  DD_HD double operator()(std::int64_t i) const { return double(g[i]) * double(g[i]); }
};
}  // namespace detail

/// ||g||_2 over n elements (backend memory): sums of squares in double per chunk of 2^14,
/// chunks added in ascending order.
template <class Be, class T>
double global_norm(const Be& be, const T* g, std::size_t n) {
  const double s = reduce_sum_value<typename Be::exec_type, double>(
      be.exec, std::int64_t(n), detail::kReduceChunk, detail::SquareTerm<T>{g});
  return std::sqrt(s);
}

/// Clip by global norm as torch.nn.utils.clip_grad_norm_: g *= min(1, max_norm/(||g|| + 1e-6)).
/// Returns the norm before clipping.
template <class Be, class T>
double clip_grad_norm(const Be& be, T* g, std::size_t n, double max_norm) {
  require_positive("nn::clip_grad_norm", "max_norm", max_norm);
  const double norm = global_norm(be, g, n);
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0) scale_n(be.exec, g, std::int64_t(n), T(coef));
  return norm;
}

/// AdamW hyper-parameters (PyTorch defaults except the learning rate, which the schedule sets).
struct AdamWConfig {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

/// One AdamW element update (see AdamW::step).
template <class T>
struct AdamWKernel {
  T* theta;
  const T* g;
  T* m;
  T* v;
  T b1, b2, ob1, ob2, decay, step_size, bc2s, eps;
  DD_HD void operator()(std::int64_t i) const {
    theta[i] *= decay;
    m[i] = b1 * m[i] + ob1 * g[i];
    v[i] = b2 * v[i] + ob2 * g[i] * g[i];
    const T denom = math::sqrt(v[i]) / bc2s + eps;
    theta[i] -= step_size * (m[i] / denom);
  }
};

/// AdamW with decoupled weight decay, in PyTorch's order (MODELS.md 6.1):
///   theta <- theta (1 - lr wd);  m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;
///   theta <- theta - (lr / (1 - b1^n)) m / (sqrt(v) / sqrt(1 - b2^n) + eps).
/// The moments live in memory space Space (that of the backend passed to step()).
template <class T, class Space = HostSpace>
class AdamW {
 public:
  AdamW(std::size_t n, const AdamWConfig& c = {}) : cfg_(c), m_(n), v_(n) {
    require_in_closed("nn::AdamW", "beta1", c.beta1, 0.0, 1.0);
    require_in_closed("nn::AdamW", "beta2", c.beta2, 0.0, 1.0);
    require_positive("nn::AdamW", "eps", c.eps);
    require_nonnegative("nn::AdamW", "weight_decay", c.weight_decay);
    const std::vector<T> zero(n, T(0));
    copy_from_host(m_, zero.data(), n);
    copy_from_host(v_, zero.data(), n);
  }

  /// One step with learning rate lr on backend be (theta, g in its memory); increments n.
  template <class Be>
  void step(const Be& be, T* theta, const T* g, double lr) {
    static_assert(std::is_same<typename Be::memory_space, Space>::value,
                  "AdamW::step: the backend's memory space must hold the moments");
    ++n_;
    const double bc1 = 1.0 - std::pow(cfg_.beta1, double(n_));
    const double bc2 = 1.0 - std::pow(cfg_.beta2, double(n_));
    AdamWKernel<T> k{theta, g, m_.data(), v_.data(), T(cfg_.beta1), T(cfg_.beta2),
                     T(1.0 - cfg_.beta1), T(1.0 - cfg_.beta2), T(1.0 - lr * cfg_.weight_decay),
                     T(lr / bc1), T(std::sqrt(bc2)), T(cfg_.eps)};
    be.exec.for_each(std::int64_t(m_.size()), k, double(m_.size()));
  }

  long steps() const { return n_; }
  /// Restores the moments (host vectors) and the step count (resuming from a checkpoint);
  /// throws std::invalid_argument for a size mismatch or a negative count.
  void restore(const std::vector<T>& m, const std::vector<T>& v, long n) {
    if (m.size() != m_.size() || v.size() != v_.size())
      throw_invalid("nn::AdamW::restore", "moments size", m.size(),
                    ("must equal the parameter count " + std::to_string(m_.size())).c_str());
    if (n < 0) throw_invalid("nn::AdamW::restore", "steps", n, "must be >= 0");
    copy_from_host(m_, m.data(), m.size());
    copy_from_host(v_, v.data(), v.size());
    n_ = n;
  }
  const Buffer<T, Space>& first_moment() const { return m_; }
  const Buffer<T, Space>& second_moment() const { return v_; }

 private:
  AdamWConfig cfg_;
  Buffer<T, Space> m_, v_;
  long n_ = 0;
};

/// s[i] = a s[i] + b theta[i].
template <class T>
struct EmaKernel {
  T* s;
  const T* theta;
  T a, b;
  DD_HD void operator()(std::int64_t i) const { s[i] = a * s[i] + b * theta[i]; }
};

/// EMA of the parameters after every optimiser step n = 1, 2, ...:
/// shadow <- d_n shadow + (1 - d_n) theta, d_n = min(decay, (1 + n)/(10 + n)) with warm-up
/// (SEDD/MDLM) or d_n = decay (MD4). The shadow lives in memory space Space.
template <class T, class Space = HostSpace>
class Ema {
 public:
  /// theta: n parameters in Space.
  Ema(const T* theta, std::size_t n, double decay = 0.9999, bool warmup = true)
      : shadow_(n), decay_(decay), warmup_(warmup) {
    require_in_closed("nn::Ema", "decay", decay, 0.0, 1.0);
    copy_n(Space{}, shadow_.data(), Space{}, theta, n);
  }
  template <class Be>
  void update(const Be& be, const T* theta) {
    static_assert(std::is_same<typename Be::memory_space, Space>::value,
                  "Ema::update: the backend's memory space must hold the shadow");
    ++n_;
    double dn = decay_;
    if (warmup_) {
      const double w = (1.0 + double(n_)) / (10.0 + double(n_));
      dn = w < dn ? w : dn;
    }
    be.exec.for_each(std::int64_t(shadow_.size()),
                     EmaKernel<T>{shadow_.data(), theta, T(dn), T(1.0 - dn)}, double(shadow_.size()));
  }
  const Buffer<T, Space>& shadow() const { return shadow_; }
  long updates() const { return n_; }
  /// Restores the shadow parameters (a host vector) and the update count.
  void restore(const std::vector<T>& shadow, long n) {
    if (shadow.size() != shadow_.size())
      throw_invalid("nn::Ema::restore", "shadow size", shadow.size(),
                    ("must equal the parameter count " + std::to_string(shadow_.size())).c_str());
    if (n < 0) throw_invalid("nn::Ema::restore", "updates", n, "must be >= 0");
    copy_from_host(shadow_, shadow.data(), shadow.size());
    n_ = n;
  }

 private:
  Buffer<T, Space> shadow_;
  double decay_;
  bool warmup_;
  long n_ = 0;
};

}  // namespace nn
}  // namespace discdiff
