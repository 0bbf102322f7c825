// discdiff/objective/objectives.hpp: every training objective of spec/MATH.md section 5 (raw,
// executor-generic kernels; no xtensor). The validated xtensor host API is
// objective/checked_xt.hpp.
//
//   common.hpp   LossBatch, softmax_xent_row, WeightedXentKernel, RowSumKernel, LossPositions
//   sedd.hpp     SEDD DWDSE (5.1): sedd_position, sedd_loss_raw, log-score head offsets (4.4)
//   cedd.hpp     CEDD / CEDD* (5.2): cedd_weight, cedd_loss_raw
//   md4.hpp      MD4 / MDLM ELBO (5.3): continuous and discrete time, md4_loss_raw
//   genmd4.hpp   GenMD4 RLOO surrogate (5.4): genmd4_position, genmd4_loss_raw
//   validate.hpp host validation over raw pointers (objective_check::)
#pragma once

#include "cedd.hpp"
#include "common.hpp"
#include "genmd4.hpp"
#include "md4.hpp"
#include "sedd.hpp"
#include "validate.hpp"
