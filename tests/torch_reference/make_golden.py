#!/usr/bin/python3
"""Writes the golden files of tests/test_nn_torch.cpp (run by hand, not in CI):

    /usr/bin/python3 tests/torch_reference/make_golden.py            # rewrite golden/
    /usr/bin/python3 tests/torch_reference/make_golden.py --out DIR  # write elsewhere
    /usr/bin/python3 tests/torch_reference/make_golden.py --check    # compare with golden/

Needs Debian's python3-torch (and numpy). For each tiny config it draws random
parameters (numpy, fixed seed; every tensor nonzero, so gates and the head get real
gradients), runs the PyTorch reference (ddit_ref.py) in float32 and writes, under
tests/torch_reference/golden/<case>/:
  config.npy (int64, ddit_ref.FIELDS order)   tokens.npy (int32 B x L, the input)
  targets.npy (int32 B x L, clean tokens)     mask.npy (uint8 B x L, loss positions)
  sbar.npy (float32 B)                        params.npy (float32, the flat slab)
  logits.npy (float32 B x L x V_out)          loss.npy (float32 [1])
  grads.npy (float32, flat slab)              optim.npy (float64: lr, warmup, beta1,
  params_adamw5.npy (float32, after 5 steps)  beta2, eps, weight_decay, clip, steps)
The loss is the masked-position CE for the bidirectional case and the causal
next-token CE for the causal one. The 5 steps repeat the same batch: forward, loss,
backward, clip_grad_norm_(1.0), AdamW with lr_n = lr min(1, n / warmup).
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ddit_ref as R  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

CASES = {
    "bidir_timecond": dict(cfg=dict(n_layer=2, n_head=2, d_model=16, d_ff=64, seq_len=8, vocab_in=12,
                                    vocab_out=12, cond_dim=8, temb_dim=16, time_cond=1, causal=0, norm=0,
                                    mlp=0),
                           B=2, L=8, seed=1),
    "causal": dict(cfg=dict(n_layer=2, n_head=2, d_model=16, d_ff=64, seq_len=8, vocab_in=12,
                            vocab_out=11, cond_dim=0, temb_dim=0, time_cond=0, causal=1, norm=0, mlp=0),
                   B=2, L=7, seed=2),
    # the options: RMSNorm and SwiGLU, time-conditioned, bidirectional
    "rms_swiglu": dict(cfg=dict(n_layer=2, n_head=2, d_model=16, d_ff=24, seq_len=8, vocab_in=12,
                                vocab_out=12, cond_dim=8, temb_dim=16, time_cond=1, causal=0, norm=1,
                                mlp=1),
                       B=2, L=6, seed=3),
    # MDLM's time-independent network: adaLN-zero on the noise level 0 (sbar.npy holds random
    # levels, which the network must ignore)
    "bidir_notime": dict(cfg=dict(n_layer=2, n_head=2, d_model=16, d_ff=64, seq_len=8, vocab_in=12,
                                  vocab_out=12, cond_dim=8, temb_dim=16, time_cond=1, causal=0, norm=0,
                                  mlp=0, zero_time=1),
                         B=2, L=8, seed=4),
}
OPTIM = dict(lr=1e-3, warmup=2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, clip=1.0, steps=5)


def random_params(cfg, rng):
    parts = []
    for name, shape in R.param_layout(cfg):
        u = rng.uniform(-1.0, 1.0, size=shape)
        if name.endswith(("ln1_w", "ln2_w", "lnf_w")):
            v = 1.0 + 0.2 * u
        elif name == "tok_emb":
            v = u
        elif len(shape) == 2:
            v = 1.5 * u / np.sqrt(shape[1])
        else:
            v = 0.3 * u
        parts.append(v.reshape(-1))
    return np.concatenate(parts).astype(np.float32)


def make_case(name, spec, out_root, check):
    cfg, B, L = spec["cfg"], spec["B"], spec["L"]
    # config.npy stores cond/temb dims as the C++ ModelConfig defaults when time_cond is off
    rng = np.random.default_rng(spec["seed"])
    V_in, V_out = cfg["vocab_in"], cfg["vocab_out"]
    special = V_in - 1  # MASK (bidirectional) or BOS (causal)
    x0 = rng.integers(0, min(V_in - 1, V_out), size=(B, L)).astype(np.int32)
    if cfg["causal"]:
        x0[:, 0] = special
        tokens, mask = x0.copy(), np.ones((B, L), dtype=np.uint8)
    else:
        mask = (rng.uniform(size=(B, L)) < 0.5).astype(np.uint8)
        mask[0, 0] = 1
        tokens = np.where(mask == 1, special, x0).astype(np.int32)
    sbar = rng.uniform(0.05, 4.0, size=(B,)).astype(np.float32)
    params = random_params(cfg, rng)

    tk, x0t = torch.from_numpy(tokens).long(), torch.from_numpy(x0).long()
    mk, sb = torch.from_numpy(mask).bool(), torch.from_numpy(sbar)

    def loss_of(flat):
        logits = R.forward(cfg, flat, tk, sb if cfg["time_cond"] else None)
        loss = R.causal_ce(logits, tk) if cfg["causal"] else R.masked_ce(logits, x0t, mk)
        return logits, loss

    flat = torch.tensor(params, requires_grad=True)
    logits, loss = loss_of(flat)
    loss.backward()
    grads = flat.grad.detach().clone()

    # The nn.Module form (used by bench/compare_torch.py) is the same network.
    mod = R.DDiT(cfg, torch.tensor(params))
    lm = R.forward_params(cfg, dict(zip(mod.names, mod.params)), tk, sb if cfg["time_cond"] else None)
    lossm = R.causal_ce(lm, tk) if cfg["causal"] else R.masked_ce(lm, x0t, mk)
    lossm.backward()
    assert torch.allclose(lm, logits, rtol=1e-5, atol=1e-6), "DDiT module logits differ"
    assert torch.allclose(mod.flat_grad(), grads, rtol=1e-5, atol=1e-7), "DDiT module grads differ"

    o = OPTIM
    flat2 = torch.tensor(params, requires_grad=True)
    opt = torch.optim.AdamW([flat2], lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"],
                            weight_decay=o["weight_decay"])
    for n in range(1, o["steps"] + 1):
        for g in opt.param_groups:
            g["lr"] = R.lr_at(n, o["lr"], o["warmup"])
        opt.zero_grad()
        _, l2 = loss_of(flat2)
        l2.backward()
        torch.nn.utils.clip_grad_norm_([flat2], o["clip"])
        opt.step()

    out = os.path.join(out_root, name)
    cfgv = dict(cfg)
    if not cfg["time_cond"]:  # unused by the model; match the C++ defaults
        cfgv["cond_dim"], cfgv["temb_dim"] = 128, 256
    files = dict(config=R.config_vector(cfgv), tokens=tokens, targets=x0, mask=mask, sbar=sbar,
                 params=params, logits=logits.detach().numpy().astype(np.float32),
                 loss=np.array([loss.item()], dtype=np.float32), grads=grads.numpy().astype(np.float32),
                 params_adamw5=flat2.detach().numpy().astype(np.float32),
                 optim=np.array([o[k] for k in ("lr", "warmup", "beta1", "beta2", "eps",
                                                "weight_decay", "clip", "steps")], dtype=np.float64))
    if check:  # compare with the committed files instead of writing
        # Another BLAS or torch build changes the float32 results in the last bits only:
        # accept |new - old| <= 1e-6 + 1e-5 |old| (the C++ test allows 1e-5 + 1e-4 |ref|).
        ok = True
        for k, v in files.items():
            old = np.load(os.path.join(out, k + ".npy"))
            same = old.shape == v.shape and old.dtype == v.dtype
            a, b = old.astype(np.float64), v.astype(np.float64)
            diff = float(np.max(np.abs(a - b))) if same and v.size else 0.0
            within = same and bool(np.all(np.abs(a - b) <= 1e-6 + 1e-5 * np.abs(a)))
            ok = ok and within
            print(f"  {name}/{k}.npy: {'ok' if within else 'DIFFERS'} (max |diff| {diff:.3g})")
        return ok
    os.makedirs(out, exist_ok=True)
    for k, v in files.items():
        np.save(os.path.join(out, k + ".npy"), v)
    print(f"{name}: {R.num_params(cfg)} parameters, loss {loss.item():.6f}, "
          f"|grad| {grads.norm().item():.4f}, written to {out}")
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(HERE, "golden"), help="output root (default: golden/)")
    ap.add_argument("--check", action="store_true",
                    help="recompute and compare with the files under --out; write nothing")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    ok = all([make_case(name, spec, args.out, args.check) for name, spec in CASES.items()])
    if args.check:
        print("golden files reproduced (to float32 rounding)" if ok else "golden files DIFFER")
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
