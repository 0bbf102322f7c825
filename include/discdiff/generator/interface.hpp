// discdiff/generator/interface.hpp: compile-time checks of the Generator concept and of the
// generators' extension points (docs/architecture.md, "Generator extension points").
//
// One detection trait per member (C++17 detection idiom over std::void_t), each true iff the
// member exists with exactly the documented signature and result type:
//
//   generator_traits::has_rate<G, Extra...>            g.rate(int, int, extra...)        -> T
//   generator_traits::has_transition<G, U>             g.transition(int, int, U)         -> T
//   generator_traits::has_sedd_coeffs<G>               g.sedd_coeffs(int, int, T)        -> SeddCoeffs<T>
//   ...                                                (the full list is below)
//
// where T = G::value_type and U is the noise argument: T for the scalar-noise generators
// (uniform, absorbing, roulette), const T* for per-token noise (state-dependent masking). The
// aggregates
//
//   is_scalar_noise_generator<G>   the core concept with U = T and every closed form the generic
//                                  algorithms of score/, objective/, sampler/, bound/ call
//   is_token_noise_generator<G>    the core concept with U = const T* (rates take the per-token
//                                  rate vector), probs_to_score and the host validate_noise hook
//
// are std::bool_constant; `check_scalar_noise_generator<G>()` and `check_token_noise_generator<G>()`
// static_assert every member one by one, so a new generator's missing member is named in the
// compiler's message. The dense oracle (generator/dense.hpp) is neither: it has the core members
// (host only, not trivially copyable) and none of the closed forms.
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/random.hpp"
#include "detail.hpp"
#include "extension_types.hpp"

namespace discdiff {
namespace generator_traits {

// ------------------------------------------------------------------ detection idiom

/// Placeholder for "no such type" in detected_t.
struct nonesuch {
  nonesuch() = delete;
  ~nonesuch() = delete;
  nonesuch(const nonesuch&) = delete;
  void operator=(const nonesuch&) = delete;
};

namespace detection {
template <class Default, class AlwaysVoid, template <class...> class Op, class... Args>
struct detector {
  using value_t = std::false_type;
  using type = Default;
};
template <class Default, template <class...> class Op, class... Args>
struct detector<Default, std::void_t<Op<Args...>>, Op, Args...> {
  using value_t = std::true_type;
  using type = Op<Args...>;
};
}  // namespace detection

/// true_type iff Op<Args...> is a valid type.
template <template <class...> class Op, class... Args>
using is_detected = typename detection::detector<nonesuch, void, Op, Args...>::value_t;
/// Op<Args...>, or nonesuch when it is not valid.
template <template <class...> class Op, class... Args>
using detected_t = typename detection::detector<nonesuch, void, Op, Args...>::type;
/// true_type iff Op<Args...> is valid and exactly Expected.
template <class Expected, template <class...> class Op, class... Args>
using is_detected_exact = std::is_same<Expected, detected_t<Op, Args...>>;

// ------------------------------------------------------------------ member expressions

template <class G>
using value_type_op = typename G::value_type;
/// G::value_type, or nonesuch (every member check then fails instead of a hard error).
template <class G>
using value_t = detected_t<value_type_op, G>;

namespace ops {
template <class G>
using cref = const G&;

template <class G>
using name = decltype(G::name);
template <class G>
using num_regular = decltype(std::declval<cref<G>>().num_regular());
template <class G>
using num_states = decltype(std::declval<cref<G>>().num_states());
template <class G>
using has_mask = decltype(std::declval<cref<G>>().has_mask());
template <class G>
using mask = decltype(std::declval<cref<G>>().mask());
template <class G, class... Extra>
using rate = decltype(std::declval<cref<G>>().rate(0, 0, std::declval<Extra>()...));
template <class G, class... Extra>
using exit_rate = decltype(std::declval<cref<G>>().exit_rate(0, std::declval<Extra>()...));
template <class G, class U>
using transition = decltype(std::declval<cref<G>>().transition(0, 0, std::declval<U>()));
template <class G, class U>
using transition_column = decltype(std::declval<cref<G>>().transition_column(
    0, std::declval<U>(), std::declval<value_t<G>*>()));
template <class G, class U>
using transition_row = decltype(std::declval<cref<G>>().transition_row(
    0, std::declval<U>(), std::declval<value_t<G>*>()));
template <class G, class U>
using apply_exp = decltype(std::declval<cref<G>>().apply_exp(
    std::declval<U>(), std::declval<const value_t<G>*>(), std::declval<value_t<G>*>()));
template <class G, class U>
using ratio = decltype(std::declval<cref<G>>().ratio(0, 0, 0, std::declval<U>()));
template <class G, class U>
using sample_forward =
    decltype(std::declval<cref<G>>().sample_forward(0, std::declval<U>(), std::declval<CounterRng&>()));
template <class G>
using sample_limit = decltype(std::declval<cref<G>>().sample_limit(std::declval<CounterRng&>()));
template <class G>
using pure_masking = std::enable_if_t<std::is_same<decltype(G::pure_masking), const bool>::value,
                                      std::integral_constant<bool, G::pure_masking>>;
template <class G, class U>
using probs_to_score = decltype(std::declval<cref<G>>().probs_to_score(
    std::declval<const value_t<G>*>(), 0, std::declval<U>(), std::declval<value_t<G>>(), false,
    false, std::declval<value_t<G>*>()));
template <class G>
using sedd_log_score_offset =
    decltype(std::declval<cref<G>>().sedd_log_score_offset(0, std::declval<value_t<G>>()));
template <class G>
using sedd_coeffs = decltype(std::declval<cref<G>>().sedd_coeffs(0, 0, std::declval<value_t<G>>()));
template <class G>
using tau_leaping_coefficients = decltype(std::declval<cref<G>>().tau_leaping_coefficients(
    std::declval<const TauStep&>(), 0, 0.0, 0.0));
template <class G>
using uniformization_rate_bound =
    decltype(std::declval<cref<G>>().uniformization_rate_bound(0.0));
template <class G>
using default_prior_reference = decltype(std::declval<cref<G>>().default_prior_reference());
template <class G>
using prior_kl_per_token = decltype(std::declval<cref<G>>().prior_kl_per_token(
    std::declval<value_t<G>>(), PriorReference::limit));
template <class G>
using reference_cross_entropy_per_token =
    decltype(std::declval<cref<G>>().reference_cross_entropy_per_token(std::declval<value_t<G>>(),
                                                                       PriorReference::limit));
template <class G>
using exit_rate_integral = decltype(std::declval<cref<G>>().exit_rate_integral(
    0LL, std::declval<value_t<G>>(), std::declval<value_t<G>>()));
template <class G>
using conditional_entropy_per_token =
    decltype(std::declval<cref<G>>().conditional_entropy_per_token(std::declval<value_t<G>>()));
template <class G>
using pbrc_exit = decltype(std::declval<cref<G>>().pbrc_exit(std::int64_t(0), 0.0, 0.0));
template <class G>
using pbrc_exit_per_sample = decltype(std::declval<cref<G>>().pbrc_exit_per_sample());
template <class G>
using pbrc_reference_ce = decltype(std::declval<cref<G>>().pbrc_reference_ce(std::int64_t(0)));
// The host validation hook of a non-scalar noise (found by argument-dependent lookup).
template <class G>
using validate_noise_vector = decltype(validate_noise(
    std::declval<cref<G>>(), std::declval<const std::vector<value_t<G>>&>(), "", NoiseUse::any));
}  // namespace ops

// ------------------------------------------------------------------ one trait per member

/// `using value_type = T` (float or double).
template <class G>
struct has_value_type : std::bool_constant<std::is_floating_point<value_t<G>>::value> {};
/// `static constexpr const char* name`.
template <class G>
struct has_name : is_detected_exact<const char* const, ops::name, G> {};
/// `int num_regular() const`: N.
template <class G>
struct has_num_regular : is_detected_exact<int, ops::num_regular, G> {};
/// `int num_states() const`: D.
template <class G>
struct has_num_states : is_detected_exact<int, ops::num_states, G> {};
/// `bool has_mask() const`.
template <class G>
struct has_has_mask : is_detected_exact<bool, ops::has_mask, G> {};
/// `int mask() const`: MASK = N, or -1.
template <class G>
struct has_mask_id : is_detected_exact<int, ops::mask, G> {};
/// `T rate(int y, int x, Extra...) const`: Q[y,x] (Extra = const T* beta for per-token noise).
template <class G, class... Extra>
struct has_rate : is_detected_exact<value_t<G>, ops::rate, G, Extra...> {};
/// `T exit_rate(int x, Extra...) const`: -Q[x,x].
template <class G, class... Extra>
struct has_exit_rate : is_detected_exact<value_t<G>, ops::exit_rate, G, Extra...> {};
/// `T transition(int y, int x, U u) const`: P_u[y,x].
template <class G, class U>
struct has_transition : is_detected_exact<value_t<G>, ops::transition, G, U> {};
/// `void transition_column(int x, U u, T* out) const`.
template <class G, class U>
struct has_transition_column : is_detected_exact<void, ops::transition_column, G, U> {};
/// `void transition_row(int y, U u, T* out) const`.
template <class G, class U>
struct has_transition_row : is_detected_exact<void, ops::transition_row, G, U> {};
/// `void apply_exp(U u, const T* v, T* out) const`: out = P_u v.
template <class G, class U>
struct has_apply_exp : is_detected_exact<void, ops::apply_exp, G, U> {};
/// `T ratio(int x, int b, int a, U u) const`: P_u[b,a] / P_u[x,a].
template <class G, class U>
struct has_ratio : is_detected_exact<value_t<G>, ops::ratio, G, U> {};
/// `int sample_forward(int x0, U u, CounterRng& rng) const`.
template <class G, class U>
struct has_sample_forward : is_detected_exact<int, ops::sample_forward, G, U> {};
/// `int sample_limit(CounterRng& rng) const`.
template <class G>
struct has_sample_limit : is_detected_exact<int, ops::sample_limit, G> {};
/// `static constexpr bool pure_masking`: the only moves are regular -> MASK.
template <class G>
struct has_pure_masking : is_detected<ops::pure_masking, G> {};
/// `void probs_to_score(const T* f, int x, U u, T scale, bool phi_ignored, bool pbrc_safeguards,
/// T* s) const`: the closed form of spec 4.2.
template <class G, class U>
struct has_probs_to_score : is_detected_exact<void, ops::probs_to_score, G, U> {};
/// `T sedd_log_score_offset(int x, T u) const` (spec 4.4).
template <class G>
struct has_sedd_log_score_offset : is_detected_exact<value_t<G>, ops::sedd_log_score_offset, G> {};
/// `SeddCoeffs<T> sedd_coeffs(int x, int a, T u) const` (spec 5.1).
template <class G>
struct has_sedd_coeffs : is_detected_exact<SeddCoeffs<value_t<G>>, ops::sedd_coeffs, G> {};
/// `TauCoefficients tau_leaping_coefficients(const TauStep& st, int x, double fx, double R) const`
/// (spec 9.1, 9.2).
template <class G>
struct has_tau_leaping_coefficients
    : is_detected_exact<TauCoefficients, ops::tau_leaping_coefficients, G> {};
/// `double uniformization_rate_bound(double u) const` (spec 10.2).
template <class G>
struct has_uniformization_rate_bound
    : is_detected_exact<double, ops::uniformization_rate_bound, G> {};
/// `PriorReference default_prior_reference() const` (spec 6.7).
template <class G>
struct has_default_prior_reference
    : is_detected_exact<PriorReference, ops::default_prior_reference, G> {};
/// `T prior_kl_per_token(T u_T, PriorReference ref) const` (spec 6.7).
template <class G>
struct has_prior_kl_per_token : is_detected_exact<value_t<G>, ops::prior_kl_per_token, G> {};
/// `T reference_cross_entropy_per_token(T u_T, PriorReference ref) const` (spec 6.7).
template <class G>
struct has_reference_cross_entropy_per_token
    : is_detected_exact<value_t<G>, ops::reference_cross_entropy_per_token, G> {};
/// `T exit_rate_integral(long long L, T u_a, T u_b) const` (spec 7.2, 8.4).
template <class G>
struct has_exit_rate_integral : is_detected_exact<value_t<G>, ops::exit_rate_integral, G> {};
/// `T conditional_entropy_per_token(T u) const` (spec 6.6).
template <class G>
struct has_conditional_entropy_per_token
    : is_detected_exact<value_t<G>, ops::conditional_entropy_per_token, G> {};
/// `double pbrc_exit(std::int64_t L, double eps, double sigma_t) const` (spec 6.7, PBRC code).
template <class G>
struct has_pbrc_exit : is_detected_exact<double, ops::pbrc_exit, G> {};
/// `bool pbrc_exit_per_sample() const` (spec 6.7, PBRC code).
template <class G>
struct has_pbrc_exit_per_sample : is_detected_exact<bool, ops::pbrc_exit_per_sample, G> {};
/// `double pbrc_reference_ce(std::int64_t L) const` (spec 6.7, PBRC code).
template <class G>
struct has_pbrc_reference_ce : is_detected_exact<double, ops::pbrc_reference_ce, G> {};
/// Free `const T* validate_noise(const G&, const std::vector<T>&, const char*, NoiseUse)` (host
/// validation of a per-token noise; generator/checked.hpp).
template <class G>
struct has_validate_noise_vector
    : is_detected_exact<const value_t<G>*, ops::validate_noise_vector, G> {};

/// The members every generator has, for noise argument U (T, or const T*); rate and exit_rate
/// take Extra... (nothing, or the per-token rate vector const T*).
template <class G, class U, class... Extra>
using core_members =
    std::conjunction<has_value_type<G>, has_name<G>, has_num_regular<G>, has_num_states<G>,
                     has_has_mask<G>, has_mask_id<G>, has_rate<G, Extra...>,
                     has_exit_rate<G, Extra...>, has_transition<G, U>,
                     has_transition_column<G, U>, has_transition_row<G, U>, has_apply_exp<G, U>,
                     has_ratio<G, U>, has_sample_forward<G, U>, has_sample_limit<G>,
                     has_pure_masking<G>, has_probs_to_score<G, U>>;

/// The closed forms of a scalar-noise generator beyond the core (SEDD, tau-leaping,
/// uniformization, the bounds' reference terms, the PBRC code convention).
template <class G>
using scalar_closed_forms =
    std::conjunction<has_sedd_log_score_offset<G>, has_sedd_coeffs<G>,
                     has_tau_leaping_coefficients<G>, has_uniformization_rate_bound<G>,
                     has_default_prior_reference<G>, has_prior_kl_per_token<G>,
                     has_reference_cross_entropy_per_token<G>, has_exit_rate_integral<G>,
                     has_conditional_entropy_per_token<G>, has_pbrc_exit<G>,
                     has_pbrc_exit_per_sample<G>, has_pbrc_reference_ce<G>>;

}  // namespace generator_traits

/// True iff G provides the whole interface of a scalar-noise generator (uniform, absorbing,
/// roulette): the core members with a scalar total noise u and every closed form that the
/// generic algorithms call, and G is trivially copyable (kernels copy it to the device).
template <class G>
struct is_scalar_noise_generator
    : std::bool_constant<std::conjunction<
          generator_traits::core_members<G, generator_traits::value_t<G>>,
          generator_traits::scalar_closed_forms<G>>::value &&
                         std::is_trivially_copyable<G>::value> {};
template <class G>
inline constexpr bool is_scalar_noise_generator_v = is_scalar_noise_generator<G>::value;

/// True iff G provides the whole interface of a per-token-noise generator (state-dependent
/// masking): the core members with noise const T* ubar, rate and exit_rate taking the rate
/// vector const T* beta, and the host hook validate_noise(g, std::vector<T>, where, use); G is
/// trivially copyable.
template <class G>
struct is_token_noise_generator
    : std::bool_constant<
          std::conjunction<generator_traits::core_members<G, const generator_traits::value_t<G>*,
                                                          const generator_traits::value_t<G>*>,
                           generator_traits::has_validate_noise_vector<G>>::value &&
          std::is_trivially_copyable<G>::value> {};
template <class G>
inline constexpr bool is_token_noise_generator_v = is_token_noise_generator<G>::value;

/// Compile-time check with one static_assert per member, so that the compiler names what a new
/// scalar-noise generator lacks. Returns true; use as static_assert(check_scalar_noise_generator<G>()).
template <class G>
constexpr bool check_scalar_noise_generator() {
  namespace gt = generator_traits;
  using T = gt::value_t<G>;
  static_assert(gt::has_value_type<G>::value, "Generator: needs `using value_type = float|double`");
  static_assert(gt::has_name<G>::value, "Generator: needs `static constexpr const char* name`");
  static_assert(gt::has_num_regular<G>::value, "Generator: needs `int num_regular() const`");
  static_assert(gt::has_num_states<G>::value, "Generator: needs `int num_states() const`");
  static_assert(gt::has_has_mask<G>::value, "Generator: needs `bool has_mask() const`");
  static_assert(gt::has_mask_id<G>::value, "Generator: needs `int mask() const`");
  static_assert(gt::has_rate<G>::value, "Generator: needs `T rate(int y, int x) const`");
  static_assert(gt::has_exit_rate<G>::value, "Generator: needs `T exit_rate(int x) const`");
  static_assert(gt::has_transition<G, T>::value,
                "Generator: needs `T transition(int y, int x, T u) const`");
  static_assert(gt::has_transition_column<G, T>::value,
                "Generator: needs `void transition_column(int x, T u, T* out) const`");
  static_assert(gt::has_transition_row<G, T>::value,
                "Generator: needs `void transition_row(int y, T u, T* out) const`");
  static_assert(gt::has_apply_exp<G, T>::value,
                "Generator: needs `void apply_exp(T u, const T* v, T* out) const`");
  static_assert(gt::has_ratio<G, T>::value,
                "Generator: needs `T ratio(int x, int b, int a, T u) const`");
  static_assert(gt::has_sample_forward<G, T>::value,
                "Generator: needs `int sample_forward(int x0, T u, CounterRng& rng) const`");
  static_assert(gt::has_sample_limit<G>::value,
                "Generator: needs `int sample_limit(CounterRng& rng) const`");
  static_assert(gt::has_pure_masking<G>::value,
                "Generator: needs `static constexpr bool pure_masking`");
  static_assert(gt::has_probs_to_score<G, T>::value,
                "Generator: needs `void probs_to_score(const T* f, int x, T u, T scale, bool "
                "phi_ignored, bool pbrc_safeguards, T* s) const` (spec 4.2)");
  static_assert(gt::has_sedd_log_score_offset<G>::value,
                "Generator: needs `T sedd_log_score_offset(int x, T u) const` (spec 4.4)");
  static_assert(gt::has_sedd_coeffs<G>::value,
                "Generator: needs `SeddCoeffs<T> sedd_coeffs(int x, int a, T u) const` (spec 5.1)");
  static_assert(gt::has_tau_leaping_coefficients<G>::value,
                "Generator: needs `TauCoefficients tau_leaping_coefficients(const TauStep&, int x, "
                "double fx, double R) const` (spec 9.1, 9.2)");
  static_assert(gt::has_uniformization_rate_bound<G>::value,
                "Generator: needs `double uniformization_rate_bound(double u) const` (spec 10.2)");
  static_assert(gt::has_default_prior_reference<G>::value,
                "Generator: needs `PriorReference default_prior_reference() const` (spec 6.7)");
  static_assert(gt::has_prior_kl_per_token<G>::value,
                "Generator: needs `T prior_kl_per_token(T u_T, PriorReference ref) const` (spec 6.7)");
  static_assert(gt::has_reference_cross_entropy_per_token<G>::value,
                "Generator: needs `T reference_cross_entropy_per_token(T u_T, PriorReference ref) "
                "const` (spec 6.7)");
  static_assert(gt::has_exit_rate_integral<G>::value,
                "Generator: needs `T exit_rate_integral(long long L, T u_a, T u_b) const` (spec 8.4)");
  static_assert(gt::has_conditional_entropy_per_token<G>::value,
                "Generator: needs `T conditional_entropy_per_token(T u) const` (spec 6.6)");
  static_assert(gt::has_pbrc_exit<G>::value,
                "Generator: needs `double pbrc_exit(std::int64_t L, double eps, double sigma_t) "
                "const` (spec 6.7)");
  static_assert(gt::has_pbrc_exit_per_sample<G>::value,
                "Generator: needs `bool pbrc_exit_per_sample() const` (spec 6.7)");
  static_assert(gt::has_pbrc_reference_ce<G>::value,
                "Generator: needs `double pbrc_reference_ce(std::int64_t L) const` (spec 6.7)");
  static_assert(std::is_trivially_copyable<G>::value,
                "Generator: must be trivially copyable (kernels copy it to the device)");
  return true;
}

/// The same for a per-token-noise generator (state-dependent masking).
template <class G>
constexpr bool check_token_noise_generator() {
  namespace gt = generator_traits;
  using T = gt::value_t<G>;
  using P = const T*;
  static_assert(gt::has_value_type<G>::value, "Generator: needs `using value_type = float|double`");
  static_assert(gt::has_name<G>::value, "Generator: needs `static constexpr const char* name`");
  static_assert(gt::has_num_regular<G>::value, "Generator: needs `int num_regular() const`");
  static_assert(gt::has_num_states<G>::value, "Generator: needs `int num_states() const`");
  static_assert(gt::has_has_mask<G>::value, "Generator: needs `bool has_mask() const`");
  static_assert(gt::has_mask_id<G>::value, "Generator: needs `int mask() const`");
  static_assert(gt::has_rate<G, P>::value,
                "Generator: needs `T rate(int y, int x, const T* beta) const`");
  static_assert(gt::has_exit_rate<G, P>::value,
                "Generator: needs `T exit_rate(int x, const T* beta) const`");
  static_assert(gt::has_transition<G, P>::value,
                "Generator: needs `T transition(int y, int x, const T* ubar) const`");
  static_assert(gt::has_transition_column<G, P>::value,
                "Generator: needs `void transition_column(int x, const T* ubar, T* out) const`");
  static_assert(gt::has_transition_row<G, P>::value,
                "Generator: needs `void transition_row(int y, const T* ubar, T* out) const`");
  static_assert(gt::has_apply_exp<G, P>::value,
                "Generator: needs `void apply_exp(const T* ubar, const T* v, T* out) const`");
  static_assert(gt::has_ratio<G, P>::value,
                "Generator: needs `T ratio(int x, int b, int a, const T* ubar) const`");
  static_assert(gt::has_sample_forward<G, P>::value,
                "Generator: needs `int sample_forward(int x0, const T* ubar, CounterRng&) const`");
  static_assert(gt::has_sample_limit<G>::value,
                "Generator: needs `int sample_limit(CounterRng& rng) const`");
  static_assert(gt::has_pure_masking<G>::value,
                "Generator: needs `static constexpr bool pure_masking`");
  static_assert(gt::has_probs_to_score<G, P>::value,
                "Generator: needs `void probs_to_score(const T* f, int x, const T* ubar, T scale, "
                "bool phi_ignored, bool pbrc_safeguards, T* s) const` (spec 4.2)");
  static_assert(gt::has_validate_noise_vector<G>::value,
                "Generator: needs a free `const T* validate_noise(const G&, const std::vector<T>&, "
                "const char* where, NoiseUse use)` found by argument-dependent lookup");
  static_assert(std::is_trivially_copyable<G>::value,
                "Generator: must be trivially copyable (kernels copy it to the device)");
  return true;
}

}  // namespace discdiff
