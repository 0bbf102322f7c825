// discdiff/bound/exact_reference.hpp: the deterministic setup of spec/MATH.md 7.1 and its
// regression table 7.2.
//
//   N = 3, L = 2; u in [1e-3, 6]; p_0(k) ~ 0.05 + ((7k + 3) mod 11)/10; the imperfect denoiser
//   f ~ p_{0|u} exp(0.6 sin(1.3 + 2.1 i + 0.7 h + 0.37 idx(x))) (spec_reference_denoiser());
//   q_T = 0.7 pi + 0.3 p_{u_max}. Columns: uniform, absorbing, roulette (p_m = 0.9), and roulette
//   with the exact denoiser.
//
// run_spec_reference(column, options) computes one column with compute_exact_bounds();
// spec_reference_values() holds the printed table (K = 1200, double precision).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "../generator/absorbing.hpp"
#include "../generator/roulette.hpp"
#include "../generator/uniform.hpp"
#include "exact_denoiser.hpp"
#include "exact_theorems.hpp"

namespace discdiff {
namespace exact {

/// p_0(k) proportional to 0.05 + ((7k + 3) mod 11)/10, k < N^L (spec 7.1 "Data").
inline std::vector<double> spec_reference_data(int n, int length) {
  const std::int64_t size = checked_power("discdiff::exact::spec_reference_data", n, length,
                                          kMaxExactStates);
  std::vector<double> p(static_cast<std::size_t>(size));
  double s = 0.0;
  for (std::int64_t k = 0; k < size; ++k) {
    p[static_cast<std::size_t>(k)] = 0.05 + static_cast<double>((7 * k + 3) % 11) / 10.0;
    s += p[static_cast<std::size_t>(k)];
  }
  for (double& v : p) v /= s;
  return p;
}

/// The four columns of the 7.2 table.
enum class SpecColumn { uniform = 0, absorbing = 1, roulette = 2, roulette_exact = 3 };

inline const char* spec_column_name(SpecColumn c) {
  switch (c) {
    case SpecColumn::uniform: return "uniform";
    case SpecColumn::absorbing: return "absorbing";
    case SpecColumn::roulette: return "roulette (p_m = 0.9)";
    case SpecColumn::roulette_exact: return "roulette, exact denoiser";
  }
  return "?";
}

/// One column of the printed 7.2 table.
struct SpecReferenceColumn {
  double kl_eps, thmA_rhs, thmB_bound, ce_eps, j2, j1, eh, j1_plus_eh, nll_eps, i_exit;
};

/// The printed reference values of spec 7.2 (K = 1200), indexed by SpecColumn.
inline std::array<SpecReferenceColumn, 4> spec_reference_values() {
  return {{
      {0.020491971, 0.020491971, 0.032947784, 2.079472918, 2.091928732, 2.079926022, 0.012002710,
       2.091928732, 2.079135505, 7.998666667},
      {0.023299863, 0.023299827, 0.044870973, 2.095732248, 2.117303357, 2.101495751, 0.015807606,
       2.117303357, 2.083991867, 1.993043495},
      {0.015581393, 0.015581359, 0.047968579, 2.086858821, 2.119246007, 2.103322456, 0.015923551,
       2.119246007, 2.076069808, 2.136513400},
      {0.000000009, -0.000000022, 0.004562185, 2.071277437, 2.075839613, 2.059916062, 0.015923551,
       2.075839613, 2.060484672, 2.136513400},
  }};
}

inline constexpr double kSpecUMin = 1e-3;
inline constexpr double kSpecUMax = 6.0;
inline constexpr int kSpecN = 3;
inline constexpr int kSpecL = 2;
inline constexpr double kSpecRoulettePm = 0.9;

/// Computes one column of the 7.2 table with the 7.1 setup.
inline ExactBounds run_spec_reference(SpecColumn col, const ExactOptions& opt = {}) {
  const std::vector<double> p0 = spec_reference_data(kSpecN, kSpecL);
  const ReverseStart start{StartReference::limit, 0.7};
  switch (col) {
    case SpecColumn::uniform: {
      const ExactForward<UniformGenerator<double>> fwd(UniformGenerator<double>(kSpecN), kSpecL, p0);
      return compute_exact_bounds(fwd, spec_reference_denoiser(), kSpecUMin, kSpecUMax, start, opt);
    }
    case SpecColumn::absorbing: {
      const ExactForward<AbsorbingGenerator<double>> fwd(AbsorbingGenerator<double>(kSpecN), kSpecL,
                                                         p0);
      return compute_exact_bounds(fwd, spec_reference_denoiser(), kSpecUMin, kSpecUMax, start, opt);
    }
    case SpecColumn::roulette:
    case SpecColumn::roulette_exact: {
      const ExactForward<RouletteGenerator<double>> fwd(
          RouletteGenerator<double>(kSpecN, kSpecRoulettePm), kSpecL, p0);
      if (col == SpecColumn::roulette)
        return compute_exact_bounds(fwd, spec_reference_denoiser(), kSpecUMin, kSpecUMax, start,
                                    opt);
      return compute_exact_bounds(fwd, ExactDenoiser{}, kSpecUMin, kSpecUMax, start, opt);
    }
  }
  return {};
}

}  // namespace exact
}  // namespace discdiff
