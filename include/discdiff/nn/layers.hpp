// discdiff/nn/layers.hpp: every layer family of the transformer (umbrella header).
//
// Each family is one header under nn/ops/ with its kernel structs (DD_HD, trivially
// copyable, run by any executor) and their drivers, forward and backward side by side.
// A driver takes the backend first (nn/backend.hpp: executor + GEMM + memory space) and raw
// pointers in the backend's memory:
//   ops/linear.hpp          linear_forward / linear_backward (GEMM + bias kernels)
//   ops/norm.hpp            norm_mod_forward / norm_mod_backward (LayerNorm/RMSNorm + adaLN)
//   ops/residual.hpp        gated_residual_forward / _backward
//   ops/embedding.hpp       embedding_forward / _backward
//   ops/embedding_time.hpp  timestep_embedding, RopeTables, rope_apply
//   ops/activation.hpp      gelu_*, bias_gelu_forward, glu_*, silu_* (+ naive references)
//   ops/attention.hpp       attention_forward / _backward (+ naive references)
//   ops/dropout.hpp         dropout_forward / _backward
// The losses are in nn/loss.hpp, AdamW, clipping and the EMA in nn/optim.hpp.
#pragma once

#include "backend.hpp"
#include "ops/activation.hpp"
#include "ops/attention.hpp"
#include "ops/dropout.hpp"
#include "ops/embedding.hpp"
#include "ops/embedding_time.hpp"
#include "ops/linear.hpp"
#include "ops/norm.hpp"
#include "ops/residual.hpp"
