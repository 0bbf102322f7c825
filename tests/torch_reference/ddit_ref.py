"""PyTorch reference of discdiff's nn/ transformer (include/discdiff/nn/model.hpp).

The model is written functionally over ONE flat float tensor laid out exactly like
the C++ parameter slab (include/discdiff/nn/layout.hpp), so that parameters and
gradients can be exchanged as single arrays. It follows spec/MODELS.md 1.2 (DDiT with
adaLN-zero, rotate-half RoPE, weight-only LayerNorm, GELU-tanh MLP, final adaLN and
an untied head) and 5 (causal variant without modulation).
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

FIELDS = ["n_layer", "n_head", "d_model", "d_ff", "seq_len", "vocab_in", "vocab_out",
          "cond_dim", "temb_dim", "time_cond", "causal", "norm", "mlp", "zero_time"]
# norm: 0 LayerNorm, 1 RMSNorm; mlp: 0 GELU-tanh, 1 SwiGLU, 2 GeGLU (nn::NormType, nn::MlpType)
# zero_time: 1 = MDLM's time-independent network (time_conditioning=False): the same adaLN-zero
# DDiT fed the noise level 0 whatever sbar is given (absent: 0)


def fc1_rows(cfg):
    return cfg["d_ff"] * (1 if cfg.get("mlp", 0) == 0 else 2)


def config_vector(cfg):
    return np.array([int(cfg.get(k, 0)) for k in FIELDS], dtype=np.int64)


def param_layout(cfg):
    """[(name, shape)] in the order of nn::ParamLayout."""
    d, c, f = cfg["d_model"], cfg["cond_dim"], cfg["d_ff"]
    out = [("tok_emb", (cfg["vocab_in"], d))]
    if cfg["time_cond"]:
        out += [("t_w1", (c, cfg["temb_dim"])), ("t_b1", (c,)), ("t_w2", (c, c)), ("t_b2", (c,))]
    for l in range(cfg["n_layer"]):
        p = f"blocks.{l}."
        out.append((p + "ln1_w", (d,)))
        if cfg["time_cond"]:
            out += [(p + "ada_w", (6 * d, c)), (p + "ada_b", (6 * d,))]
        out += [(p + "qkv_w", (3 * d, d)), (p + "out_w", (d, d)), (p + "ln2_w", (d,)),
                (p + "fc1_w", (fc1_rows(cfg), d)), (p + "fc1_b", (fc1_rows(cfg),)),
                (p + "fc2_w", (d, f)), (p + "fc2_b", (d,))]
    out.append(("lnf_w", (d,)))
    if cfg["time_cond"]:
        out += [("adaf_w", (2 * d, c)), ("adaf_b", (2 * d,))]
    out += [("head_w", (cfg["vocab_out"], d)), ("head_b", (cfg["vocab_out"],))]
    return out


def num_params(cfg):
    return sum(int(np.prod(s)) for _, s in param_layout(cfg))


def views(cfg, flat):
    out, off = {}, 0
    for name, shape in param_layout(cfg):
        n = int(np.prod(shape))
        out[name] = flat[off:off + n].view(*shape)
        off += n
    assert off == flat.numel(), (off, flat.numel())
    return out


def timestep_embedding(sbar, dim, dtype):
    """MODELS.md 3.1: [cos(sbar f), sin(sbar f)], f_k = exp(-ln(1e4) k / half); in float64."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / half)
    args = sbar.to(torch.float64)[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1).to(dtype)


def rope_tables(L, hd, base, dtype):
    """Rotate-half tables (MODELS.md 4), angles p * base^(-2k/hd), in float64."""
    k = torch.arange(hd // 2, dtype=torch.float64)
    theta = base ** (-2.0 * k / hd)
    ang = torch.arange(L, dtype=torch.float64)[:, None] * theta[None]
    return torch.cos(ang).to(dtype), torch.sin(ang).to(dtype)


def apply_rope(x, cos, sin):
    """x: (B, L, H, hd); pairs (k, k + hd/2)."""
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1)


def norm(x, w, cfg, eps=1e-5):
    if cfg["norm"] == 0:
        return F.layer_norm(x, (x.shape[-1],), weight=w, bias=None, eps=eps)
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def mlp_act(u, mlp):
    """GELU-tanh, or the gated units act(a) * b of u = [a, b] (SwiGLU: SiLU, GeGLU: GELU-tanh)."""
    if mlp == 0:
        return F.gelu(u, approximate="tanh")
    a, b = u.chunk(2, dim=-1)
    return (F.silu(a) if mlp == 1 else F.gelu(a, approximate="tanh")) * b


def forward(cfg, flat, tokens, sbar=None):
    """tokens: (B, L) long; sbar: (B,) (time_cond). Returns logits (B, L, V_out)."""
    return forward_params(cfg, views(cfg, flat), tokens, sbar)


def forward_params(cfg, P, tokens, sbar=None):
    """The forward pass over a dict {layout name: tensor} (views of one flat slab, or
    the separate nn.Parameter leaves of DDiT below)."""
    B, L = tokens.shape
    d, H = cfg["d_model"], cfg["n_head"]
    hd = d // H
    dtype = P["tok_emb"].dtype
    cos, sin = rope_tables(L, hd, 10000.0, dtype)
    h = P["tok_emb"][tokens]
    if cfg["time_cond"]:
        if cfg.get("zero_time", 0):
            sbar = torch.zeros_like(sbar)  # MDLM: sigma = 0 without time conditioning
        temb = timestep_embedding(sbar, cfg["temb_dim"], dtype)
        c = F.silu(F.linear(F.silu(F.linear(temb, P["t_w1"], P["t_b1"])), P["t_w2"], P["t_b2"]))
    mask = None
    if cfg["causal"]:
        mask = torch.ones(L, L, dtype=torch.bool).triu(1)
    for l in range(cfg["n_layer"]):
        p = f"blocks.{l}."
        if cfg["time_cond"]:
            sh_a, sc_a, g_a, sh_m, sc_m, g_m = F.linear(c, P[p + "ada_w"], P[p + "ada_b"])[:, None, :].chunk(6, dim=2)
        x = norm(h, P[p + "ln1_w"], cfg)
        if cfg["time_cond"]:
            x = x * (1 + sc_a) + sh_a
        qkv = F.linear(x, P[p + "qkv_w"]).view(B, L, 3, H, hd)
        q = apply_rope(qkv[:, :, 0], cos, sin).transpose(1, 2)
        k = apply_rope(qkv[:, :, 1], cos, sin).transpose(1, 2)
        v = qkv[:, :, 2].transpose(1, 2)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        if mask is not None:
            s = s.masked_fill(mask, float("-inf"))
        o = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(B, L, d)
        a = F.linear(o, P[p + "out_w"])
        h = h + (g_a * a if cfg["time_cond"] else a)
        x = norm(h, P[p + "ln2_w"], cfg)
        if cfg["time_cond"]:
            x = x * (1 + sc_m) + sh_m
        u = F.linear(x, P[p + "fc1_w"], P[p + "fc1_b"])
        m = F.linear(mlp_act(u, cfg.get("mlp", 0)), P[p + "fc2_w"], P[p + "fc2_b"])
        h = h + (g_m * m if cfg["time_cond"] else m)
    x = norm(h, P["lnf_w"], cfg)
    if cfg["time_cond"]:
        sh_f, sc_f = F.linear(c, P["adaf_w"], P["adaf_b"])[:, None, :].chunk(2, dim=2)
        x = x * (1 + sc_f) + sh_f
    return F.linear(x, P["head_w"], P["head_b"])


def masked_ce(logits, x0, mask):
    V = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, V)[mask.reshape(-1)], x0.reshape(-1)[mask.reshape(-1)])


def causal_ce(logits, tokens):
    V = logits.shape[-1]
    return F.cross_entropy(logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1))


def lr_at(n, base, warmup):
    """LrSchedule constant with linear warm-up (MODELS.md 6.2)."""
    return base * min(1.0, n / warmup) if warmup > 0 else base


class DDiT(torch.nn.Module):
    """The same network as a torch.nn.Module with one nn.Parameter per layout tensor
    (the idiomatic PyTorch form, used by bench/compare_torch.py; a flat slab with views
    would make autograd scatter every gradient into the full slab)."""

    def __init__(self, cfg, flat):
        super().__init__()
        self.cfg = cfg
        self.names = [n for n, _ in param_layout(cfg)]
        self.params = torch.nn.ParameterList(
            [torch.nn.Parameter(v.detach().clone()) for v in views(cfg, flat).values()])

    def forward(self, tokens, sbar=None):
        return forward_params(self.cfg, dict(zip(self.names, self.params)), tokens, sbar)

    def flat(self):
        return torch.cat([p.detach().reshape(-1) for p in self.params])

    def flat_grad(self):
        return torch.cat([p.grad.reshape(-1) for p in self.params])
