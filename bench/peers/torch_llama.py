#!/usr/bin/env python3
"""PyTorch CPU peer of bench/bench_model.cpp: the same Llama (llama2.c model.py architecture:
RMSNorm, interleaved-pair RoPE, GQA causal attention, SwiGLU, tied classifier), the same shape,
batch and threads; forward (loss, no grad), training step with gradients to every weight, and
training step with frozen weights (gradient to the embedded input only). Prints JSON.

    /usr/bin/python3 bench/peers/torch_llama.py --shape stories15M --batch 8 --seq 256 --threads 2

--crosscheck FILE (written by bench_model --dump FILE) instead loads that file's weights into the
same module, computes the loss and every weight's gradient on its tokens in float64 (reference)
and float32, and prints the largest normwise relative differences of ours from them; exit status 3
when ours is further than tol = 8 (hidden_dim + dim) eps_float32 from both (the rounding bound of
the longest chained dot products of a block, times 8 for forward + backward).
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn.functional as F

SHAPES = {  # dim, hidden, layers, heads, kv_heads, vocab, seq
    "stories260K": (64, 172, 5, 8, 4, 512, 512),
    "stories15M": (288, 768, 6, 6, 6, 32000, 256),
    "stories42M": (512, 1376, 8, 8, 8, 32000, 1024),
    "stories110M": (768, 2048, 12, 12, 12, 32000, 1024),
}


class RMSNorm(torch.nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = torch.nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(head_dim, seq, theta=10000.0):
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 2).float() / head_dim))
    t = torch.arange(seq).float()
    ang = torch.outer(t, freqs)
    return torch.cos(ang), torch.sin(ang)


def apply_rope(x, cos, sin):  # x (B, T, H, hs), adjacent pairs rotate
    xr = x.reshape(*x.shape[:-1], -1, 2)  # keeps the dtype (float32 runs; float64 for --crosscheck)
    x0, x1 = xr[..., 0], xr[..., 1]
    c = cos[None, :, None, :]
    s = sin[None, :, None, :]
    return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(3)


class Block(torch.nn.Module):
    def __init__(self, dim, hidden, heads, kv_heads):
        super().__init__()
        self.h, self.kvh, self.hs = heads, kv_heads, dim // heads
        self.wq = torch.nn.Linear(dim, dim, bias=False)
        self.wk = torch.nn.Linear(dim, kv_heads * self.hs, bias=False)
        self.wv = torch.nn.Linear(dim, kv_heads * self.hs, bias=False)
        self.wo = torch.nn.Linear(dim, dim, bias=False)
        self.w1 = torch.nn.Linear(dim, hidden, bias=False)
        self.w2 = torch.nn.Linear(hidden, dim, bias=False)
        self.w3 = torch.nn.Linear(dim, hidden, bias=False)
        self.n1, self.n2 = RMSNorm(dim), RMSNorm(dim)

    def forward(self, x, cos, sin):
        B, T, D = x.shape
        xn = self.n1(x)
        q = apply_rope(self.wq(xn).view(B, T, self.h, self.hs), cos, sin)
        k = apply_rope(self.wk(xn).view(B, T, self.kvh, self.hs), cos, sin)
        v = self.wv(xn).view(B, T, self.kvh, self.hs)
        if self.kvh != self.h:
            k = k.repeat_interleave(self.h // self.kvh, dim=2)
            v = v.repeat_interleave(self.h // self.kvh, dim=2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True) if hasattr(F, "scaled_dot_product_attention") \
            else self._attention(q, k, v)
        x = x + self.wo(a.transpose(1, 2).reshape(B, T, D))
        xn = self.n2(x)
        return x + self.w2(F.silu(self.w1(xn)) * self.w3(xn))

    def _attention(self, q, k, v):
        T = q.shape[2]
        s = (q @ k.transpose(-2, -1)) / math.sqrt(self.hs)
        mask = torch.full((T, T), float("-inf")).triu(1)
        return torch.softmax(s + mask, dim=-1) @ v


class Llama(torch.nn.Module):
    def __init__(self, dim, hidden, layers, heads, kv_heads, vocab, seq):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, dim)
        self.blocks = torch.nn.ModuleList(Block(dim, hidden, heads, kv_heads) for _ in range(layers))
        self.norm = RMSNorm(dim)
        cos, sin = rope_tables(dim // heads, seq)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        for p in self.parameters():
            if p.dim() == 2:
                torch.nn.init.normal_(p, std=0.02)

    def forward(self, tokens, targets, x0=None):
        T = tokens.shape[1]
        x = self.emb(tokens) if x0 is None else x0
        cos, sin = self.cos[:T], self.sin[:T]
        for b in self.blocks:
            x = b(x, cos, sin)
        logits = self.norm(x) @ self.emb.weight.t()  # tied classifier
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def timed(fn, warmup, reps):
    for _ in range(warmup):
        fn()
    t = []
    for _ in range(reps):
        a = time.perf_counter()
        fn()
        t.append(time.perf_counter() - a)
    return statistics.median(t), min(t), max(t)


def crosscheck(path):
    """Loss and gradients of our runtime (bench_model --dump) against this module on the same weights."""
    with open(path) as f:
        j = json.load(f)
    if j.get("format") != "hyplora-model-crosscheck-1":
        raise SystemExit(f"{path}: not a bench_model --dump file")
    shape = SHAPES[j["shape"]]
    dim, hidden, layers, heads, kvh, vocab, seq = shape
    eps32 = float(torch.finfo(torch.float32).eps)
    tol = 8 * (hidden + dim) * eps32
    W, G = j["weights"], j["grads"]
    names = {"token_embedding": lambda m: [m.emb.weight], "rms_final": lambda m: [m.norm.weight]}
    per_layer = {"rms_att": "n1", "wq": "wq", "wk": "wk", "wv": "wv", "wo": "wo", "rms_ffn": "n2",
                 "w1": "w1", "w2": "w2", "w3": "w3"}

    def params(m, name):
        if name in names:
            return names[name](m)
        return [getattr(b, per_layer[name]).weight for b in m.blocks]

    def run(dtype):
        torch.manual_seed(0)
        m = Llama(*shape).to(dtype)
        with torch.no_grad():
            for name, flat in W.items():
                ps = params(m, name)
                t = torch.tensor(flat, dtype=torch.float32).to(dtype).view(len(ps), *ps[0].shape)
                for p, v in zip(ps, t):
                    p.copy_(v)
            m.cos, m.sin = m.cos.to(dtype), m.sin.to(dtype)
        for blk in m.blocks:
            blk.n1.eps = blk.n2.eps = float(j["norm_eps"])
        m.norm.eps = float(j["norm_eps"])
        tok = torch.tensor(j["tokens"]).view(j["B"], j["T"])
        tgt = torch.tensor(j["targets"]).view(j["B"], j["T"])
        loss = m(tok, tgt)
        loss.backward()
        return float(loss), {n: torch.cat([p.grad.double().flatten() for p in params(m, n)]) for n in W}

    l64, g64 = run(torch.float64)
    l32, g32 = run(torch.float32)
    out, ok = [], True
    rel = lambda a, r: float((a - r).abs().max() / r.abs().max().clamp_min(1e-300))  # noqa: E731
    e, e32 = abs(j["loss"] - l64) / abs(l64), abs(j["loss"] - l32) / abs(l32)
    out.append({"output": "loss", "ours": j["loss"], "f64": l64, "torch32": l32, "max_rel_diff_ours_vs_f64": e,
                "max_rel_diff_torch32_vs_f64": abs(l32 - l64) / abs(l64), "max_rel_diff_ours_vs_torch32": e32,
                "tolerance": tol, "pass": e <= tol or e32 <= tol})
    for n in W:
        ours = torch.tensor(G[n], dtype=torch.float32).double()
        e, e32 = rel(ours, g64[n]), rel(ours, g32[n])
        out.append({"output": "grad " + n, "max_rel_diff_ours_vs_f64": e, "max_rel_diff_torch32_vs_f64": rel(g32[n], g64[n]),
                    "max_rel_diff_ours_vs_torch32": e32, "tolerance": tol, "pass": e <= tol or e32 <= tol})
    for o in out:
        ok &= o["pass"]
    print(json.dumps({"peer": "pytorch-cpu", "torch": torch.__version__, "shape": j["shape"], "B": j["B"], "T": j["T"],
                      "crosscheck": out}))
    return 0 if ok else 3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="stories15M")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--crosscheck", default="", help="bench_model --dump file: compare loss and gradients")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    if a.crosscheck:
        return crosscheck(a.crosscheck)
    torch.manual_seed(0)
    model = Llama(*SHAPES[a.shape])
    V = SHAPES[a.shape][5]
    tokens = torch.randint(0, V, (a.batch, a.seq))
    targets = torch.randint(0, V, (a.batch, a.seq))
    N = a.batch * a.seq

    def fwd():
        with torch.no_grad():
            model(tokens, targets)

    def train_full():
        model.zero_grad(set_to_none=False)
        model(tokens, targets).backward()

    def train_frozen():
        for p in model.parameters():
            p.requires_grad_(False)
        x0 = model.emb(tokens).detach().requires_grad_(True)
        model(tokens, targets, x0).backward()
        for p in model.parameters():
            p.requires_grad_(True)

    f = timed(fwd, 1, a.reps)
    t = timed(train_full, 1, a.reps)
    z = timed(train_frozen, 1, a.reps)
    print(json.dumps({
        "peer": "pytorch-cpu", "torch": torch.__version__, "threads": torch.get_num_threads(),
        "shape": a.shape, "batch": a.batch, "seq": a.seq, "reps": a.reps,
        "forward_tokens_per_s": N / f[0], "forward_s": {"median": f[0], "min": f[1], "max": f[2]},
        "train_tokens_per_s": N / t[0], "train_s": {"median": t[0], "min": t[1], "max": t[2]},
        "train_frozen_tokens_per_s": N / z[0], "train_frozen_s": {"median": z[0], "min": z[1], "max": z[2]},
        "sdpa": hasattr(F, "scaled_dot_product_attention"),
    }))


if __name__ == "__main__":
    import sys
    sys.exit(main())
