// apps/dyn_schedule.hpp: a scalar noise schedule chosen at run time.
//
// The library's schedules are distinct types (schedule/*.hpp), which is what the kernels want;
// the program picks one by name, so DynSchedule<T> wraps any of them behind the same six
// methods (alpha, one_minus_alpha, dalpha, sigma, sigma_bar, elbo_weight) through one virtual
// call per row, and is accepted wherever a schedule is (objectives, bounds, samplers on host
// executors).
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include <discdiff/schedule/schedules.hpp>

namespace discdiff {
namespace app {

template <class T>
class DynSchedule {
 public:
  using value_type = T;
  static constexpr const char* name = "dynamic";

  DynSchedule() = default;
  template <class S>
  static DynSchedule wrap(S s, std::string label) {
    DynSchedule d;
    d.impl_ = std::make_shared<Impl<S>>(std::move(s));
    d.label_ = std::move(label);
    return d;
  }

  /// The same schedule under another label (also on an empty DynSchedule: a label for a
  /// problem given by its noise range rather than a schedule, as in `discdiff verify`).
  DynSchedule with_label(std::string label) const {
    DynSchedule d = *this;
    d.label_ = std::move(label);
    return d;
  }

  bool valid() const { return impl_ != nullptr; }
  const std::string& label() const { return label_; }
  T alpha(T t) const { return impl_->alpha(t); }
  T one_minus_alpha(T t) const { return impl_->one_minus_alpha(t); }
  T dalpha(T t) const { return impl_->dalpha(t); }
  T sigma(T t) const { return impl_->sigma(t); }
  T sigma_bar(T t) const { return impl_->sigma_bar(t); }
  T elbo_weight(T t) const { return impl_->elbo_weight(t); }

 private:
  struct Base {
    virtual ~Base() = default;
    virtual T alpha(T) const = 0;
    virtual T one_minus_alpha(T) const = 0;
    virtual T dalpha(T) const = 0;
    virtual T sigma(T) const = 0;
    virtual T sigma_bar(T) const = 0;
    virtual T elbo_weight(T) const = 0;
  };
  template <class S>
  struct Impl final : Base {
    explicit Impl(S s) : s_(std::move(s)) {}
    T alpha(T t) const override { return s_.alpha(t); }
    T one_minus_alpha(T t) const override { return s_.one_minus_alpha(t); }
    T dalpha(T t) const override { return s_.dalpha(t); }
    T sigma(T t) const override { return s_.sigma(t); }
    T sigma_bar(T t) const override { return s_.sigma_bar(t); }
    T elbo_weight(T t) const override { return s_.elbo_weight(t); }
    S s_;
  };
  std::shared_ptr<const Base> impl_;
  std::string label_;
};

/// The schedule named `name` with its parameters (see RunConfig); throws std::invalid_argument
/// for an unknown name (parameter errors come from the schedule constructors).
template <class T>
DynSchedule<T> make_schedule(const std::string& name, double eta, double d, double poly_k,
                             double sigma_min, double sigma_max, double p_m) {
  using D = DynSchedule<T>;
  if (name == "linear") return D::wrap(LinearSchedule<T>(T(eta)), "S-LIN-MD4");
  if (name == "cosine") return D::wrap(CosineSchedule<T>(T(eta)), "S-COS-MD4");
  if (name == "poly") return D::wrap(PolynomialSchedule<T>(T(poly_k), T(eta)), "S-POLY-MD4");
  if (name == "geometric")
    return D::wrap(GeometricSchedule<T>(T(sigma_min), T(sigma_max)), "S-GEO");
  if (name == "loglinear") return D::wrap(LogLinearSchedule<T>(T(d)), "S-LOGLIN");
  if (name == "roulette-loglinear")
    return D::wrap(RouletteLogLinearSchedule<T>(T(p_m), T(d)), "S-LOGLIN-ROU");
  if (name == "mdlm-cosine") return D::wrap(MdlmCosineSchedule<T>(T(d)), "S-COS-MDLM");
  if (name == "mdlm-cosine2") return D::wrap(MdlmCosineSquaredSchedule<T>(T(d)), "S-COSSQ-MDLM");
  if (name == "mdlm-linear")
    return D::wrap(MdlmLinearSigmaSchedule<T>(T(sigma_min), T(sigma_max)), "S-LINSIG-MDLM");
  throw std::invalid_argument("unknown schedule '" + name + "'");
}

}  // namespace app
}  // namespace discdiff
