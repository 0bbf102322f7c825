// discdiff/sampler/grid.hpp: sampler time grids (spec/MATH.md 9.0, 9.3).
//
//   GridKind::sedd     t_k = 1 - k (1 - eps)/S,   k = 0..S   (SEDD/PBRC/MDLM; ends at eps)
//   GridKind::uniform  t_k = (S - k)/S                       (MD4 uniform grid; ends at 0)
//   GridKind::cosine   t_k = cos(pi/2 (1 - (S - k)/S)) = cos(pi k / (2 S)), t_S := 0 exactly
//                                                            (MD4 cosine grid)
// Every grid is strictly decreasing from t_0 = 1. Step k of a sampler goes from t_k to t_{k+1}.
#pragma once

#include <cmath>
#include <vector>

#include "../core/error.hpp"
#include "../core/numerics.hpp"

namespace discdiff {

/// The time discretisation of a sampler.
enum class GridKind { sedd, uniform, cosine };

/// Name of a grid kind (for messages and tables).
inline const char* grid_name(GridKind g) {
  switch (g) {
    case GridKind::sedd: return "sedd";
    case GridKind::uniform: return "uniform";
    case GridKind::cosine: return "cosine";
  }
  return "?";
}

/// The S + 1 grid times t_0 = 1 > t_1 > ... > t_S (see the file comment). steps >= 1; eps in
/// (0, 1) is used by GridKind::sedd only. Throws std::invalid_argument otherwise.
inline std::vector<double> time_grid(GridKind kind, int steps, double eps = 1e-5) {
  const char* where = "discdiff::time_grid";
  if (steps < 1) throw_invalid(where, "steps", steps, "must be >= 1");
  std::vector<double> t(static_cast<std::size_t>(steps) + 1);
  const double S = steps;
  switch (kind) {
    case GridKind::sedd:
      if (!(eps > 0 && eps < 1)) throw_invalid(where, "eps", eps, "must lie in (0, 1)");
      for (int k = 0; k <= steps; ++k) t[static_cast<std::size_t>(k)] = 1.0 - k * ((1.0 - eps) / S);
      t.back() = eps;
      break;
    case GridKind::uniform:
      for (int k = 0; k <= steps; ++k) t[static_cast<std::size_t>(k)] = (S - k) / S;
      break;
    case GridKind::cosine:
      for (int k = 0; k <= steps; ++k)
        t[static_cast<std::size_t>(k)] = std::cos(math::pi<double>() / 2.0 * (k / S));
      t.front() = 1.0;
      t.back() = 0.0;
      break;
  }
  return t;
}

}  // namespace discdiff
