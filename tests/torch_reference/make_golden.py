#!/usr/bin/python3
"""Writes the golden files of tests/test_nn_torch.cpp (run by hand, not in CI):

    /usr/bin/python3 tests/torch_reference/make_golden.py

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
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ddit_ref as R  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

CASES = {
    "bidir_timecond": dict(cfg=dict(n_layer=2, n_head=2, d_model=16, d_ff=64, seq_len=8, vocab_in=12,
                                    vocab_out=12, cond_dim=8, temb_dim=16, time_cond=1, causal=0, norm=0),
                           B=2, L=8, seed=1),
    "causal": dict(cfg=dict(n_layer=2, n_head=2, d_model=16, d_ff=64, seq_len=8, vocab_in=12,
                            vocab_out=11, cond_dim=0, temb_dim=0, time_cond=0, causal=1, norm=0),
                   B=2, L=7, seed=2),
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


def make_case(name, spec):
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

    out = os.path.join(HERE, "golden", name)
    os.makedirs(out, exist_ok=True)
    cfgv = dict(cfg)
    if not cfg["time_cond"]:  # unused by the model; match the C++ defaults
        cfgv["cond_dim"], cfgv["temb_dim"] = 128, 256
    files = dict(config=R.config_vector(cfgv), tokens=tokens, targets=x0, mask=mask, sbar=sbar,
                 params=params, logits=logits.detach().numpy().astype(np.float32),
                 loss=np.array([loss.item()], dtype=np.float32), grads=grads.numpy().astype(np.float32),
                 params_adamw5=flat2.detach().numpy().astype(np.float32),
                 optim=np.array([o[k] for k in ("lr", "warmup", "beta1", "beta2", "eps",
                                                "weight_decay", "clip", "steps")], dtype=np.float64))
    for k, v in files.items():
        np.save(os.path.join(out, k + ".npy"), v)
    print(f"{name}: {R.num_params(cfg)} parameters, loss {loss.item():.6f}, "
          f"|grad| {grads.norm().item():.4f}, written to {out}")


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    for name, spec in CASES.items():
        make_case(name, spec)


if __name__ == "__main__":
    main()
