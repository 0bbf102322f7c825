// discdiff/generator/extension_types.hpp: the small value types that the generators' extension
// points (docs/architecture.md, "Generator extension points") take and return.
//
// They are plain aggregates of scalars, trivially copyable and usable on the device. They are
// defined here, beside the generators, so that a generator's closed forms need nothing from the
// modules that use them; objective/sedd.hpp, sampler/kernels.hpp and bound/reference_terms.hpp
// include this header, so the names are available there as before.
#pragma once

namespace discdiff {

/// SEDD's per-position structure (spec/MATH.md 5.1): the weight q = Q[x,b] shared by every
/// candidate b (regular, != x) and the conditional ratios (r_other for b != a, r_a for b = a) of
/// one position with current token x and clean token a; q = 0 means no candidate is weighted.
/// Returned by Gen::sedd_coeffs.
template <class T>
struct SeddCoeffs {
  T q;
  T r_other;
  T r_a;
  bool a_candidate;  ///< b = a is a candidate (a != x)
};

/// Which tau-leaping update a step applies (spec 9.1, 9.2).
enum class TauMethod {
  euler,    ///< spec 9.1: W(b) = h Q[x,b] s_b (b != x), W(x) = 1 - sum, h = dt sigma(t)
  analytic  ///< spec 9.2: p(b) ∝ (P_{-Delta} s)_b P_Delta[x,b]
};

/// The weights of one tau-leaping step at a position with current token x, as a function of the
/// predicted clean posterior f (over the N regular tokens):
///   w(b) = c0 + c1 f(b)   for every regular b != x,
///   w(x) = wx             (x regular: stay; x = MASK: stay masked),
///   w(MASK) = 0           when x is regular (Q[x,MASK] = 0 and P_Delta[x,MASK] = 0).
/// Negative weights (approximate scores) are clamped at 0 by the kernel (spec 9.0). `stay`: the
/// token cannot move (absorbing at a regular token). Returned by Gen::tau_leaping_coefficients.
struct TauCoefficients {
  double c0 = 0, c1 = 0, wx = 1;
  bool stay = false;
};

/// Parameters of one tau-leaping step: u = sbar(t), h = dt sigma(t) (Euler), delta =
/// sbar(t) - sbar(s) (analytic; the final denoising step uses delta = u).
struct TauStep {
  TauMethod method = TauMethod::analytic;
  double u = 0, h = 0, delta = 0;
};

/// The reference distribution q_T the learned reverse chain starts from (spec 6.7).
enum class PriorReference {
  limit,        ///< pi: uniform (uniform graph), all-MASK (absorbing, roulette with p_m > 0)
  masked_prior  ///< pi_alpha: per token (alpha_T/N) on each regular token, 1 - alpha_T on MASK
};

}  // namespace discdiff
