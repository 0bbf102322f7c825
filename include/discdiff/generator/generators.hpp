// discdiff/generator/generators.hpp: the closed-form generators of spec/MATH.md section 3 and
// their host-checked wrappers.
//
// The dense oracle (generator/dense.hpp) needs Eigen and is host only, so it is not included
// here; include it explicitly where Eigen is available.
#pragma once

#include "absorbing.hpp"
#include "checked.hpp"
#include "roulette.hpp"
#include "state_dependent.hpp"
#include "uniform.hpp"
