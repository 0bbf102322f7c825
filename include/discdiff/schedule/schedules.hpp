// discdiff/schedule/schedules.hpp: every noise / masking schedule (spec/MATH.md section 2).
//
//   LinearSchedule             S-LIN-MD4        linear.hpp
//   PolynomialSchedule         S-POLY-MD4(K)    polynomial.hpp
//   CosineSchedule             S-COS-MD4        cosine.hpp
//   MdlmCosineSchedule         S-COS-MDLM       cosine.hpp
//   MdlmCosineSquaredSchedule  S-COSSQ-MDLM     cosine.hpp
//   GeometricSchedule          S-GEO            geometric.hpp
//   MdlmLinearSigmaSchedule    S-LINSIG-MDLM    linear_sigma.hpp
//   LogLinearSchedule          S-LOGLIN         loglinear.hpp
//   RouletteLogLinearSchedule  S-LOGLIN-ROU     loglinear.hpp
//   PerTokenPolynomialView /
//   PerTokenPolynomialSchedule S-GEN-POLY       per_token_polynomial.hpp
//   ScheduleValues, evaluate   (host validation) evaluate.hpp
#pragma once

#include "cosine.hpp"
#include "evaluate.hpp"
#include "geometric.hpp"
#include "linear.hpp"
#include "linear_sigma.hpp"
#include "loglinear.hpp"
#include "per_token_polynomial.hpp"
#include "polynomial.hpp"
