#!/usr/bin/env python3
"""PyTorch interop test of discdiff's checkpoints (docs/nn.md, "Upstream names and formats").

    /usr/bin/python3 tests/interop/test_interop_torch.py DISCDIFF INTEROP_LOGITS WORKDIR

DISCDIFF is the `discdiff` program, INTEROP_LOGITS is tests/tools/interop_logits.cpp (the raw
network output of a checkpoint on given inputs). The script holds its own PyTorch DDiT, written
after the module structure and parameter names of SEDD's model/transformer.py and MDLM's
models/dit.py / models/autoregressive.py (vocab_embed, sigma_map, rotary_emb, blocks,
output_layer), not discdiff's layout, and checks:

  export  a trained discdiff checkpoint (sedd absorbing and uniform, md4, ar), written with
          `discdiff export --format sedd|mdlm`, loads into that module with strict=True, and its
          logits equal discdiff's within 1e-5; the checkpoint file itself loads too after
          dropping the optimiser / EMA entries and adding the rotary buffer;
  import  a randomly initialised module's state dict, written here, goes through
          `discdiff import` and gives the same logits in discdiff within 1e-5; exporting that
          checkpoint again gives back the same tensors bit for bit.

Debian 12 has no python3-safetensors: the files are read and written by the few lines below
(an 8-byte little-endian header length, a JSON header, the raw little-endian bytes).
Exits 77 (CTest: skipped) when torch is not installed (scripts/install-deps.sh installs it).
"""
import json
import math
import os
import shutil
import struct
import subprocess
import sys

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    print("SKIP: python3-torch is not installed (scripts/install-deps.sh installs it)")
    sys.exit(77)

torch.set_num_threads(1)
TOL = 1e-5

# ----------------------------------------------------------------------------- safetensors
_DT = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "I32": torch.int32}
_DT_NAME = {v: k for k, v in _DT.items()}


def st_load(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    buf = data[8 + n:]
    meta = header.pop("__metadata__", {})
    out = {}
    for name, t in header.items():
        b, e = t["data_offsets"]
        out[name] = torch.frombuffer(bytearray(buf[b:e]), dtype=_DT[t["dtype"]]).reshape(t["shape"]).clone()
    return out, meta


def st_save(path, tensors, metadata=None):
    header, chunks, off = {}, [], 0
    for name, t in tensors.items():
        raw = t.detach().contiguous().cpu().numpy().tobytes()
        header[name] = {"dtype": _DT_NAME[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))


# ----------------------------------------------------------------------------- the DDiT
class LayerNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.ones([dim]))
        self.dim = dim

    def forward(self, x):
        return F.layer_norm(x, [self.dim]) * self.weight


class TimestepEmbedder(nn.Module):
    def __init__(self, hidden, frequency_embedding_size=256):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(frequency_embedding_size, hidden), nn.SiLU(),
                                 nn.Linear(hidden, hidden))
        self.freq = frequency_embedding_size

    def forward(self, t):
        half = self.freq // 2
        f = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
        a = t[:, None].float() * f[None]
        return self.mlp(torch.cat([torch.cos(a), torch.sin(a)], dim=-1))


class EmbeddingLayer(nn.Module):
    def __init__(self, dim, vocab):
        super().__init__()
        self.embedding = nn.Parameter(torch.empty(vocab, dim))
        nn.init.kaiming_uniform_(self.embedding, a=math.sqrt(5))

    def forward(self, x):
        return self.embedding[x]


class Rotary(nn.Module):
    def __init__(self, head_dim, base=10000):
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (base ** (torch.arange(0, head_dim, 2).float() / head_dim)))

    def forward(self, L):
        ang = torch.outer(torch.arange(L, dtype=torch.float32), self.inv_freq)
        return torch.cos(ang), torch.sin(ang)  # [L, hd/2]


def rope(x, cos, sin):  # x [B, L, H, hd], rotate-half pairs (k, k + hd/2)
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1)


class DDiTBlock(nn.Module):
    def __init__(self, dim, n_heads, cond_dim, causal=False):
        super().__init__()
        self.n_heads, self.causal = n_heads, causal
        self.norm1 = LayerNorm(dim)
        self.attn_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.attn_out = nn.Linear(dim, dim, bias=False)
        self.norm2 = LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(approximate="tanh"),
                                 nn.Linear(4 * dim, dim))
        if not causal:  # MDLM's AR block has no modulation
            self.adaLN_modulation = nn.Linear(cond_dim, 6 * dim)

    def forward(self, x, cos, sin, c):
        B, L, D = x.shape
        H = self.n_heads
        if c is None:
            z = torch.zeros(B, 1, D)
            sa, ca, ga, sm, cm, gm = z, z, z + 1, z, z, z + 1
        else:
            sa, ca, ga, sm, cm, gm = self.adaLN_modulation(c)[:, None].chunk(6, dim=2)
        h = self.norm1(x) * (1 + ca) + sa
        q, k, v = self.attn_qkv(h).view(B, L, 3, H, D // H).unbind(2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        s = q @ k.transpose(-1, -2) / math.sqrt(D // H)
        if self.causal:
            s = s.masked_fill(torch.triu(torch.ones(L, L, dtype=torch.bool), 1), float("-inf"))
        o = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, L, D)
        x = x + ga * self.attn_out(o)
        return x + gm * self.mlp(self.norm2(x) * (1 + cm) + sm)


class FinalLayer(nn.Module):
    def __init__(self, dim, out, cond_dim, causal=False):
        super().__init__()
        self.norm_final = LayerNorm(dim)
        self.linear = nn.Linear(dim, out)
        if not causal:
            self.adaLN_modulation = nn.Linear(cond_dim, 2 * dim)

    def forward(self, x, c):
        if c is None:
            return self.linear(self.norm_final(x))
        shift, scale = self.adaLN_modulation(c)[:, None].chunk(2, dim=2)
        return self.linear(self.norm_final(x) * (1 + scale) + shift)


class DDiT(nn.Module):
    """SEDD's `SEDD` / MDLM's `DIT` (causal=False) or MDLM's `AR` (causal=True) network; the
    output is the head's raw output (before SEDD's scale_by_sigma and MDLM's MASK logit)."""

    def __init__(self, vocab, dim, n_heads, n_blocks, cond_dim, causal=False):
        super().__init__()
        self.causal = causal
        self.vocab_embed = EmbeddingLayer(dim, vocab)
        if not causal:
            self.sigma_map = TimestepEmbedder(cond_dim)
        self.rotary_emb = Rotary(dim // n_heads)
        self.blocks = nn.ModuleList([DDiTBlock(dim, n_heads, cond_dim, causal) for _ in range(n_blocks)])
        self.output_layer = FinalLayer(dim, vocab, cond_dim, causal)

    def forward(self, indices, sigma=None):
        x = self.vocab_embed(indices)
        c = None if self.causal else F.silu(self.sigma_map(sigma))
        cos, sin = self.rotary_emb(indices.shape[1])
        for b in self.blocks:
            x = b(x, cos, sin, c)
        return self.output_layer(x, c)


# ----------------------------------------------------------------------------- helpers
D_MODEL, N_HEAD, N_BLOCKS, COND, L, B = 16, 2, 2, 128, 16, 3
failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)


def run(*args):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if r.returncode != 0:
        print("command failed:", " ".join(map(str, args)), "\n", r.stdout, r.stderr)
        sys.exit(1)
    return r.stdout


def inputs(path, vocab, causal, seed):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, vocab, (B, L), generator=g, dtype=torch.int64)
    sigma = 0.1 + 3.0 * torch.rand(B, generator=g)
    st_save(path, {"tokens": tokens, "sigma": sigma})
    return tokens, (None if causal else sigma)


def discdiff_logits(ck, inp, out, which="raw"):
    run(LOGITS, ck, inp, out, which)
    return st_load(out)[0]["logits"]


def compare(name, got, want):
    d = (got - want).abs().max().item()
    check(d <= TOL, f"{name}: max |torch - discdiff| = {d:.2e} (max |logit| {want.abs().max().item():.2f})")


def model_for(objective, generator):
    causal = objective == "ar"
    vocab = 27 if generator == "uniform" else 28  # text8: 27 symbols (+ MASK)
    return DDiT(vocab, D_MODEL, N_HEAD, N_BLOCKS, COND, causal), vocab, causal


COMMON = ["--n-layer", N_BLOCKS, "--d-model", D_MODEL, "--n-head", N_HEAD, "--cond-dim", COND,
          "--seq-len", L, "--synthetic-tokens", 20000]

# (objective, generator, export format, head columns discdiff has)
CASES = [("sedd", "absorbing", "sedd", 28), ("sedd", "uniform", "sedd", 27),
         ("md4", "absorbing", "mdlm", 27), ("ar", "none", "mdlm", 27)]


def export_case(objective, generator, fmt, vout, seed):
    tag = f"{objective}-{generator}"
    d = os.path.join(WORK, "export-" + tag)
    ck = os.path.join(d, "checkpoint.safetensors")
    gen = [] if generator == "none" else ["--generator", generator]
    run(DISCDIFF, "train", "--objective", objective, *gen, *COMMON, "--batch", 4, "--steps", 40,
        "--lr", 1e-2, "--warmup", 2, "--val-every", 0, "--val-sequences", 8, "--val-batch", 4,
        "--seed", seed, "--out", d, "--quiet")
    sd_path = os.path.join(WORK, f"export-{tag}.safetensors")
    run(DISCDIFF, "export", ck, "--format", fmt, "--raw", "-o", sd_path)
    model, vocab, causal = model_for(objective, generator)
    sd, meta = st_load(sd_path)
    model.load_state_dict(sd, strict=True)  # raises on a missing, unexpected or misshapen tensor
    check(True, f"{tag}: `discdiff export --format {fmt}` loads with strict=True ({len(sd)} tensors)")
    tokens, sigma = inputs(os.path.join(WORK, f"in-{tag}.safetensors"), vocab, causal, seed)
    want = discdiff_logits(ck, os.path.join(WORK, f"in-{tag}.safetensors"),
                           os.path.join(WORK, f"out-{tag}.safetensors"))
    with torch.no_grad():
        got = model(tokens, sigma)
    compare(f"{tag}: exported state dict", got[..., :vout], want)
    if fmt == "mdlm":
        check(sd["output_layer.linear.weight"][27].abs().max().item() == 0.0,
              f"{tag}: the MASK row added to MDLM's head is zero")
    # The checkpoint itself: the network entries under their upstream names.
    ckt, _ = st_load(ck)
    net = {k: v for k, v in ckt.items() if not k.startswith(("adam.", "ema.", "w_"))}
    adam = [k for k in ckt if k.startswith("adam.m.")]
    check(len(adam) == len(net) and all(("adam.m." + k) in ckt for k in net),
          f"{tag}: the checkpoint's AdamW moments are named like the parameters")
    if fmt == "sedd" and generator == "absorbing":
        net["rotary_emb.inv_freq"] = model.rotary_emb.inv_freq.clone()
        model2, _, _ = model_for(objective, generator)
        model2.load_state_dict(net, strict=True)
        with torch.no_grad():
            compare(f"{tag}: checkpoint file loaded directly (strict=True)", model2(tokens, sigma), want)


def import_case(objective, generator, fmt, vout, seed):
    tag = f"{objective}-{generator}"
    torch.manual_seed(seed)
    model, vocab, causal = model_for(objective, generator)
    with torch.no_grad():  # every tensor random and nonzero (upstream zero-initialises adaLN and the head)
        for name, p in model.named_parameters():
            p.uniform_(-1.0, 1.0).mul_(1.0 / math.sqrt(p.shape[-1]) if p.dim() == 2 else 0.5)
            if name.endswith("norm1.weight") or name.endswith("norm2.weight") or "norm_final" in name:
                p.add_(1.0)
    sd_path = os.path.join(WORK, f"torch-{tag}.safetensors")
    st_save(sd_path, dict(model.state_dict()), {"format": "pt"})
    ck = os.path.join(WORK, f"imported-{tag}.safetensors")
    gen = [] if generator == "none" else ["--generator", generator]
    run(DISCDIFF, "import", sd_path, "--format", fmt, "--checkpoint", ck, "--force",
        "--objective", objective, *gen, "--seq-len", L, "--synthetic-tokens", 20000)
    inp = os.path.join(WORK, f"in2-{tag}.safetensors")
    tokens, sigma = inputs(inp, vocab, causal, seed + 1)
    for which in ("raw", "ema"):
        want = discdiff_logits(ck, inp, os.path.join(WORK, f"out2-{tag}.safetensors"), which)
        with torch.no_grad():
            got = model(tokens, sigma)
        compare(f"{tag}: PyTorch state dict imported ({which} weights)", got[..., :vout], want)
    again = os.path.join(WORK, f"reexport-{tag}.safetensors")
    run(DISCDIFF, "export", ck, "--format", fmt, "-o", again)
    a, _ = st_load(again)
    ref = dict(model.state_dict())
    same = set(a) == set(ref) and all(torch.equal(a[k], ref[k]) for k in ref if not
                                      (fmt == "mdlm" and k.startswith("output_layer.linear")))
    if fmt == "mdlm":  # the MASK output row is dropped on import and written as zero
        same = same and torch.equal(a["output_layer.linear.weight"][:vout], ref["output_layer.linear.weight"][:vout])
    check(same, f"{tag}: import then export gives back the PyTorch tensors bit for bit")
    # Evaluation runs on the imported model (the J/ELBO bound machinery, a few sequences).
    run(DISCDIFF, "eval", "-c", ck, "--sequences", 8, "--batch", 4)
    check(True, f"{tag}: `discdiff eval` runs on the imported checkpoint")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__)
        sys.exit(2)
    DISCDIFF, LOGITS, WORK = sys.argv[1:]
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    for i, c in enumerate(CASES):
        export_case(*c, seed=11 + i)
        import_case(*c, seed=101 + i)
    # A state dict whose time embedding is not 2 cond_dim wide is refused with a clear error.
    m = DDiT(28, D_MODEL, N_HEAD, 1, 8)
    bad = os.path.join(WORK, "temb256-cond8.safetensors")
    st_save(bad, dict(m.state_dict()))
    r = subprocess.run([DISCDIFF, "import", bad, "--format", "sedd", "--checkpoint",
                        os.path.join(WORK, "x.safetensors"), "--objective", "sedd"],
                       capture_output=True, text=True)
    check(r.returncode == 2 and "2 cond_dim" in r.stderr and len(r.stderr.strip().splitlines()) == 1,
          "a time embedding of width 256 with cond_dim 8 is refused in one line: " + r.stderr.strip())
    r = subprocess.run([DISCDIFF, "import", bad, "--format", "sedd", "--checkpoint",
                        os.path.join(WORK, "y.safetensors"), "--objective", "sedd", "--out", WORK],
                       capture_output=True, text=True)
    check(r.returncode == 2 and "--out does nothing with import" in r.stderr,
          "import refuses --out, which it would ignore: " + r.stderr.strip())
    print(f"{len(failures)} failure(s)")
    sys.exit(1 if failures else 0)
