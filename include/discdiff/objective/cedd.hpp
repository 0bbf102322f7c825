// discdiff/objective/cedd.hpp: CEDD and CEDD*, PBRC's ratio matching by denoising cross-entropy
// (spec/MATH.md 5.2).
//
// Network: logits z (B x L x V), f^i = softmax(z^i) over all V outputs (PBRC: V = D, the MASK
// class included; targets are never MASK). Per-sequence loss:
//
//   l_CEDD = omega(t) * sum_{i in I(x_t)} -log f^i(x_0^i)
//
//   I(x_t) = all positions (uniform, roulette); masked positions only (absorbing) [C]
//   omega  = 1 (CEDD);  ln(e + 0.3/t) (CEDD*, e = Euler's number; the public code's active line)
//
// No sigma(t) factor (unlike DWDSE). Gradient:
//   d l / d z^i_v = omega(t) (f^i(v) - [v = x_0^i]) for i in I(x_t) (MASK class included);
//   0 for positions outside I(x_t).
// Fused per position by softmax_xent_row (objective/common.hpp): max pass, exp pass (exp_fast,
// SSE2 on x86-64 hosts), scale pass.
// The ratios for sampling and bounds come from score/probs_to_score.hpp.
#pragma once

#include <cstdint>

#include "../core/config.hpp"
#include "../core/numerics.hpp"
#include "common.hpp"

namespace discdiff {

/// The two time weights of spec 5.2.
enum class CeddVariant {
  cedd,      ///< omega(t) = 1
  cedd_star  ///< omega(t) = ln(e + 0.3/t)
};

/// omega(t) of spec 5.2: 1 (CEDD) or ln(e + 0.3/t) (CEDD*; omega(1) = 1.104688,
/// omega(0.1) = 1.743668, omega(1e-3) = 5.712803). t > 0.
template <class T>
DD_HD T cedd_weight(CeddVariant variant, T t) {
  if (variant == CeddVariant::cedd) return T(1);
  return math::log(T(2.718281828459045235360287471352662498) + T(0.3) / t);
}

/// Raw-pointer CEDD / CEDD* driver on any executor (no validation): weight[b] = omega(t_b),
/// softmax over all batch.V outputs, positions I(x_t) given by `positions`
/// (default_loss_positions<Gen>::value: masked only for absorbing). mask = the MASK id (N).
template <class Exec, class T>
void cedd_loss_raw(const Exec& exec, const LossBatch<T>& batch, const T* weight, int mask,
                   LossPositions positions) {
  weighted_xent_raw(exec, batch, weight, batch.V, mask, positions, T(0));
}

/// Naive reference of cedd_loss_raw.
template <class T>
void cedd_loss_naive(const LossBatch<T>& batch, const T* weight, int mask,
                     LossPositions positions) {
  weighted_xent_naive(batch, weight, batch.V, mask, positions, T(0));
}

}  // namespace discdiff
