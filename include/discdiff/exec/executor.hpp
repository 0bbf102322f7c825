// discdiff/exec/executor.hpp: every executor (umbrella header).
//
// SequentialExecutor, OpenMPExecutor and, where Thrust is available
// (DISCDIFF_HAVE_THRUST_EXECUTOR == 1), ThrustExecutor. See docs/math/ctmc.md.
#pragma once

#include "openmp.hpp"
#include "sequential.hpp"
#include "thrust.hpp"
