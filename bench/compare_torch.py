#!/usr/bin/python3
"""PyTorch side of bench/compare_torch.sh: one training step (forward, masked-token
cross-entropy, backward, clip_grad_norm_(1.0), AdamW) of the transformer of
include/discdiff/nn/ (the nn.Module twin in tests/torch_reference/ddit_ref.py), on the
config of bench/bench_nn_step.cpp: 6 layers, d_model 256, 4 heads, d_ff 1024,
L = 256, B = 16, V = 28, time-conditioned, float32.

    OMP_NUM_THREADS=2 /usr/bin/python3 bench/compare_torch.py --threads 2 --steps 5

Prints one line `torch tokens_per_s=... step_ms=... tokens_per_cpu_s=... peak_rss_mb=...`
(medians over the timed steps; CPU time of the process, all threads), in the format
bench_nn_step --plain prints, so that compare_torch.sh can parse both. Needs Debian's python3-torch; it uses OpenBLAS where libopenblas0-openmp is
installed (see torch_blas below).
"""
import argparse
import os
import resource
import statistics
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "torch_reference"))
import ddit_ref as R  # noqa: E402


def bench_config():
    return dict(n_layer=6, n_head=4, d_model=256, d_ff=1024, seq_len=256, vocab_in=28,
                vocab_out=28, cond_dim=128, temb_dim=256, time_cond=1, causal=0, norm=0)


def init_params(cfg, rng):
    """Uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) everywhere, norm weights 1, and (unlike
    the adaLN-zero init) nonzero adaLN and head, so every GEMM does real work."""
    parts = []
    for name, shape in R.param_layout(cfg):
        if name.endswith(("ln1_w", "ln2_w", "lnf_w")):
            v = np.ones(shape)
        else:
            fan_in = shape[1] if len(shape) == 2 else cfg["d_model"]
            v = rng.uniform(-1.0, 1.0, size=shape) / np.sqrt(fan_in)
        parts.append(v.reshape(-1))
    return torch.tensor(np.concatenate(parts).astype(np.float32))


def torch_blas():
    cfg = torch.__config__.show()
    for line in cfg.splitlines():
        if "BLAS_INFO" in line:
            return line.strip().split(",")[0]
    return "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5, help="timed steps")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--foreach", action="store_true", help="AdamW(foreach=True)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = bench_config()
    B, L, V = args.batch, cfg["seq_len"], cfg["vocab_in"]
    rng = np.random.default_rng(0)
    model = R.DDiT(cfg, init_params(cfg, rng))
    mask_id = V - 1
    x0 = torch.from_numpy(rng.integers(0, mask_id, size=(B, L))).long()
    mask = torch.from_numpy(rng.uniform(size=(B, L)) < 0.5)
    xt = torch.where(mask, torch.full_like(x0, mask_id), x0)
    sbar = torch.from_numpy(rng.uniform(0.1, 5.0, size=(B,)).astype(np.float32))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=0.01, foreach=args.foreach or None)

    def step():
        opt.zero_grad(set_to_none=True)
        logits = model(xt, sbar)
        loss = R.masked_ce(logits, x0, mask)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    for _ in range(args.warmup):
        step()
    times, cpu = [], []
    for _ in range(args.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    med = statistics.median(times)
    cpu_med = statistics.median(cpu)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"torch tokens_per_s={B * L / med:.1f} step_ms={1e3 * med:.1f} "
          f"min_step_ms={1e3 * min(times):.1f} tokens_per_cpu_s={B * L / cpu_med:.1f} "
          f"cpu_ms={1e3 * cpu_med:.1f} threads={torch.get_num_threads()} "
          f"peak_rss_mb={rss:.0f} params={R.num_params(cfg)} torch={torch.__version__} "
          f"{torch_blas()}", flush=True)


if __name__ == "__main__":
    main()
