// discdiff/nn/nn.hpp: the whole nn module (transformer layers, model, losses,
// optimiser, .npy I/O). See docs/nn.md.
#pragma once

#include "config.hpp"
#include "gemm.hpp"
#include "layers.hpp"
#include "layout.hpp"
#include "loss.hpp"
#include "model.hpp"
#include "npy.hpp"
#include "optim.hpp"
#include "backend.hpp"
