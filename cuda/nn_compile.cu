// Compile check: the transformer (nn/) on a device backend, ThrustExecutor with the CUDA
// device system, the naive GEMM on Thrust and every buffer in DeviceSpace: forward, both
// losses, backward, clipping, AdamW and the EMA, in float and double. (The cuBLAS engine of the
// GPU issue replaces NaiveGemm here.)
#include <discdiff/exec/thrust.hpp>
#include <discdiff/nn/nn.hpp>
using namespace discdiff;
using namespace discdiff::nn;

using DeviceBackend = PortableBackend<ThrustExecutor>;
static_assert(std::is_same<DeviceBackend::memory_space, DeviceSpace>::value,
              "Thrust-CUDA backends keep the network in device memory");

template <class T>
double step(const ModelConfig& cfg, const int* tokens, const T* sbar, const int* targets,
            const unsigned char* mask, int B, int L) {
  Transformer<T, DeviceBackend> net(cfg);
  net.init(1);
  AdamW<T, DeviceSpace> opt(net.num_params());
  Ema<T, DeviceSpace> ema(net.params().data(), net.num_params());
  const T* lg = net.forward(tokens, sbar, B, L);
  double loss = cfg.causal
                    ? double(causal_cross_entropy(net.backend(), lg, tokens, B, L, cfg.vocab_out, net.dlogits()))
                    : double(masked_cross_entropy(net.backend(), lg, targets, mask, long(B) * L,
                                                  cfg.vocab_out, net.dlogits()));
  net.zero_grad();
  net.backward();
  clip_grad_norm(net.backend(), net.grads().data(), net.num_params(), 1.0);
  opt.step(net.backend(), net.params().data(), net.grads().data(), 1e-3);
  ema.update(net.backend(), net.params().data());
  return loss;
}
template double step<float>(const ModelConfig&, const int*, const float*, const int*,
                            const unsigned char*, int, int);
template double step<double>(const ModelConfig&, const int*, const double*, const int*,
                             const unsigned char*, int, int);
