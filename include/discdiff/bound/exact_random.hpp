// discdiff/bound/exact_random.hpp: reproducible random data distributions for exact enumeration.
//
// dirichlet_like(size, seed, stream, sharpness, floor) draws w_k = E_k^sharpness with
// E_k = -log U_k standard exponentials from CounterRng(seed, stream, k), normalises, and mixes in
// the uniform distribution with weight `floor`:
//   p_k = (1 - floor) w_k / sum_j w_j + floor / size.
// sharpness = 1 is exactly a Dirichlet(1, ..., 1) draw (the uniform law on the simplex); larger
// values concentrate the mass on fewer sequences. floor > 0 keeps every p_k > 0 (assumption A3 of
// spec 6.1 with full support). The result is a pure function of the arguments.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "../core/error.hpp"
#include "../core/random.hpp"

namespace discdiff {
namespace exact {

inline std::vector<double> dirichlet_like(std::int64_t size, std::uint64_t seed,
                                          std::uint32_t stream, double sharpness = 1.0,
                                          double floor = 0.0) {
  const char* where = "discdiff::exact::dirichlet_like";
  if (size < 1) throw_invalid(where, "size", size, "must be >= 1");
  require_positive(where, "sharpness", sharpness);
  require_in_closed(where, "floor", floor, 0.0, 1.0);
  std::vector<double> p(static_cast<std::size_t>(size));
  double s = 0.0;
  for (std::int64_t k = 0; k < size; ++k) {
    CounterRng rng(seed, stream, static_cast<std::uint64_t>(k));
    const double e = -std::log(rng.uniform_open<double>());
    p[static_cast<std::size_t>(k)] = std::pow(e, sharpness);
    s += p[static_cast<std::size_t>(k)];
  }
  for (double& v : p) v = (1.0 - floor) * v / s + floor / static_cast<double>(size);
  return p;
}

}  // namespace exact
}  // namespace discdiff
