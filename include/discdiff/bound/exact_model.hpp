// discdiff/bound/exact_model.hpp: exact-enumeration denoisers as Monte Carlo models, and draws
// from the data distribution, so that the estimators of bound/monte_carlo.hpp can be checked
// against the exact integrals of exact_theorems.hpp and exact_md4.hpp (tests, docs/math/bounds.md).
//
//   ExactModel<Gen, Den>(fwd, den, kind)   a model callable (model/model.hpp ModelQuery) whose
//       outputs at (x_t, u) are, per position i,
//         ModelOutput::logits      log f^i(h | x_t, u), h < N       (V = N; log 0 = -inf)
//         ModelOutput::log_scores  log s_b, b < D, s = naive_probs_to_score(P_u, x_t^i, f^i)
//                                  (V = D; s_x = 1 gives 0, a zero score -inf)
//       with f^i = den.predict(...) (exact_denoiser.hpp). For each row it evaluates P_u and, for
//       the one queried state x_t, p_u(x_t) and the joints J_i(x_t, h) by a sum over the N^L clean
//       sequences (O(L N^L) per row instead of a full ForwardSlice): the slice handed to the
//       denoiser is valid at x_t only, which is all the denoisers of exact_denoiser.hpp read.
//       The slice is cached in the model (mutable), so one model object serves one call at a
//       time (the estimators call the model from the host thread only).
//   sample_data(fwd, count, seed, stream)  count i.i.d. clean sequences x_0 ~ p_0 (count x L
//       tokens, row-major), inverse-CDF draws from CounterRng(seed, stream, k).
//
// Host only.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "exact_denoiser.hpp"
#include "exact_marginals.hpp"
#include "exact_score.hpp"
#include "monte_carlo.hpp"

namespace discdiff {
namespace exact {

/// Fills slice.P for u (when u changed), and p_u(x), J_i(x, .) for the one state x.
template <class Gen>
void fill_state_slice(const ExactForward<Gen>& fwd, ForwardSlice<typename Gen::value_type>& s,
                      typename Gen::value_type u, std::int64_t x) {
  using T = typename Gen::value_type;
  const int n = fwd.num_regular(), d = fwd.num_states(), L = fwd.length();
  const SequenceSpace& S = fwd.state_space();
  const SequenceSpace& C = fwd.clean_space();
  if (s.states != &S) {
    s.n = n;
    s.d = d;
    s.length = L;
    s.states = &S;
    s.p.assign(static_cast<std::size_t>(S.size()), T(0));
    s.joint.assign(static_cast<std::size_t>(S.size() * L * n), T(0));
    s.u = std::numeric_limits<T>::quiet_NaN();
  }
  if (!(s.u == u)) {
    s.u = u;
    s.P = transition_table(fwd.generator(), u);
  }
  T* J = s.joint.data() + x * L * n;
  for (int k = 0; k < L * n; ++k) J[k] = T(0);
  std::vector<int> xs(static_cast<std::size_t>(L));
  S.decode(x, xs.data());
  discdiff::detail::CompensatedSum<T> px;
  const std::vector<T>& p0 = fwd.data();
  for (std::int64_t k0 = 0; k0 < C.size(); ++k0) {
    T w = p0[static_cast<std::size_t>(k0)];
    if (w == T(0)) continue;
    for (int j = 0; j < L && w != T(0); ++j)
      w *= s.P[static_cast<std::size_t>(xs[static_cast<std::size_t>(j)]) * d + C.digit(k0, j)];
    if (w == T(0)) continue;
    px.add(w);
    for (int i = 0; i < L; ++i) J[i * n + C.digit(k0, i)] += w;
  }
  s.p[static_cast<std::size_t>(x)] = px.value();
}

/// An exact-enumeration denoiser as a Monte Carlo model (see the file comment).
template <class Gen, class Den>
class ExactModel {
 public:
  using T = typename Gen::value_type;

  ExactModel(const ExactForward<Gen>& fwd, Den den, ModelOutput kind = ModelOutput::logits)
      : fwd_(&fwd), den_(den), kind_(kind) {}

  int output_size() const {
    return kind_ == ModelOutput::logits ? fwd_->num_regular() : fwd_->num_states();
  }
  ModelOutput output_kind() const { return kind_; }

  void operator()(const ModelQuery<T>& q, T* out) const {
    const char* where = "discdiff::exact::ExactModel";
    const int n = fwd_->num_regular(), d = fwd_->num_states(), L = fwd_->length();
    if (q.L != L)
      throw_invalid(where, "L", q.L,
                    ("the exact forward process has length " + std::to_string(L)).c_str());
    const SequenceSpace& S = fwd_->state_space();
    const int V = output_size();
    std::vector<T> f(static_cast<std::size_t>(n)), s(static_cast<std::size_t>(d));
    for (std::int64_t b = 0; b < q.B; ++b) {
      const int* row = q.xt + b * L;
      for (int i = 0; i < L; ++i) require_token(where, "x_t", row[i], d);
      const std::int64_t x = S.encode(row);
      fill_state_slice(*fwd_, slice_, q.sigma_bar[b], x);
      if (!(slice_.p[static_cast<std::size_t>(x)] > T(0)))
        throw_invalid(where, "p_u(x_t)", slice_.p[static_cast<std::size_t>(x)],
                      "the queried state is unreachable under the forward process");
      for (int i = 0; i < L; ++i) {
        den_.predict(slice_, x, i, f.data());
        T* o = out + (b * L + i) * V;
        if (kind_ == ModelOutput::logits) {
          for (int h = 0; h < n; ++h)
            o[h] = f[static_cast<std::size_t>(h)] > T(0) ? std::log(f[static_cast<std::size_t>(h)])
                                                         : -std::numeric_limits<T>::infinity();
        } else {
          naive_probs_to_score(slice_.P.data(), d, n, row[i], f.data(), s.data());
          for (int v = 0; v < d; ++v)
            o[v] = s[static_cast<std::size_t>(v)] > T(0) ? std::log(s[static_cast<std::size_t>(v)])
                                                         : -std::numeric_limits<T>::infinity();
        }
      }
    }
  }

 private:
  const ExactForward<Gen>* fwd_;
  Den den_;
  ModelOutput kind_;
  mutable ForwardSlice<T> slice_;
};

/// count i.i.d. draws x_0 ~ p_0 as count x L tokens (row-major).
template <class Gen>
std::vector<int> sample_data(const ExactForward<Gen>& fwd, std::int64_t count, std::uint64_t seed,
                             std::uint32_t stream) {
  if (count < 1) throw_invalid("discdiff::exact::sample_data", "count", count, "must be >= 1");
  const std::vector<typename Gen::value_type>& p0 = fwd.data();
  std::vector<double> cdf(p0.size());
  double c = 0.0;
  for (std::size_t k = 0; k < p0.size(); ++k) cdf[k] = (c += static_cast<double>(p0[k]));
  const int L = fwd.length();
  std::vector<int> out(static_cast<std::size_t>(count * L));
  for (std::int64_t r = 0; r < count; ++r) {
    const double v = uniform<double>(seed, stream, static_cast<std::uint64_t>(r)) * c;
    std::size_t k = static_cast<std::size_t>(std::upper_bound(cdf.begin(), cdf.end(), v) - cdf.begin());
    if (k >= cdf.size()) k = cdf.size() - 1;
    fwd.clean_space().decode(static_cast<std::int64_t>(k), out.data() + r * L);
  }
  return out;
}

}  // namespace exact
}  // namespace discdiff
