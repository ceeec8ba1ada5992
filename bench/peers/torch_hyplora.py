#!/usr/bin/env python3
"""PyTorch CPU peer of bench/bench_adapter.cpp: one adapted linear layer Y = X W^T + b +
(alpha/r) Delta(X) with autograd, for every variant of SPEC section 3:

  lora              Delta = B A x
  lora_scaled       Delta = B A (x / s)
  naive             Delta = log0(exp0(B A log0(exp0(x))))  on the Lorentz model, computed literally
  hyplora_lorentz   the consistent map, written as a researcher would with the hyperboloid:
                    x_H = expmap0(x / s) (cosh / sinh), y_s = B A x_H,s, time sqrt(|y_s|^2 + K),
                    Delta = logmap0(y) = sqrt K arcosh(y_0 / sqrt K) y_s / |y_s|
  hyplora_poincare  p = expmap0(x / s) on the ball (c = 1/K), y = B A p projected into the ball of
                    radius (1 - 4e-3) sqrt K (geoopt's float32 margin), Delta = logmap0(y)
  paper             the layer of the published code (marlin-codes/HypLoRA, peft/tuners/lora/layer.py)
                    as SPEC section 3 describes it: learnable norm scale s, sinh argument clamped to
                    12, K = softplus(k) + 1e-6 with the gradient of k clamped to [-0.01, 0.01], time
                    coordinate sqrt(|y|^2 + 1/K), arcosh argument kept >= 1 + 1e-6. Dropout is 0 here
                    (as in the benchmark) so that outputs are comparable.

Jobs (one JSON object on stdout):
  --time --shapes 4096x8,4096x32,288x8,64x8 --tokens 512 --reps 7 --threads 2
      float32 forward + backward (dX and every trainable parameter) per variant and for the frozen
      layer alone, methods interleaved round by round, median / min / max after two warm-up rounds
      (one at d >= 2048, as bench_adapter).
  --crosscheck DIR
      every DIR/adapter_*.json that bench_adapter --dump wrote: recompute Y, dX and the parameter
      gradients from the same float32 inputs in float64 (reference) and in float32, and report the
      largest normwise relative difference max|a - ref| / max|ref| per output. Tolerance:
          tol = 8 (d_in + r) eps_float32,
      the rounding bound gamma_{d_in + r} of the two chained dot-product lengths of the branch,
      times 8 for the four GEMMs and the radial maps of forward + backward. An output passes when
      our float32 result is within tol of the float64 value, or within tol of torch's float32
      result (where the formula itself is ill-conditioned in float32, e.g. the paper's arcosh near
      1, both float32 results move away from float64 together). Scalar gradients (dk, ds) are
      also checked on their own; one that sums to nearly 0 is compared with tol * max|gradient|.
      Exit 3 when an output fails.
"""
import argparse
import glob
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

EPS32 = float(torch.finfo(torch.float32).eps)
VARIANTS = ["lora", "lora_scaled", "naive", "hyplora_lorentz", "hyplora_poincare", "paper"]


def _tiny(dtype):
    return 1e-15 if dtype == torch.float32 else 1e-150


def _sqrt(K):
    """sqrt K, keeping the autograd graph when K is a learnable tensor."""
    return torch.sqrt(K) if torch.is_tensor(K) else math.sqrt(K)


# ---- hyperboloid / ball maps as a geoopt user writes them ---------------------------------------
def lorentz_expmap0_space(v, K, clamp=None):
    """space part of expmap0 of the tangent vector (0, v)."""
    sk = _sqrt(K)
    n = v.norm(dim=-1, keepdim=True).clamp_min(_tiny(v.dtype))
    t = n / sk
    if clamp is not None:
        t = t.clamp(max=clamp)
    return sk * torch.sinh(t) * v / n


def lorentz_logmap0_from_space(ys, K, time_sq_const, theta_eps=None):
    """logmap0 of (y_0, y_s) with y_0 = sqrt(|y_s|^2 + time_sq_const): sqrt K arcosh(y_0/sqrt K) y_s/|y_s|."""
    sk = _sqrt(K)
    n2 = (ys * ys).sum(-1, keepdim=True)
    y0 = torch.sqrt(n2 + time_sq_const)
    theta = y0 / sk
    theta = theta.clamp_min(1.0 + (theta_eps if theta_eps is not None else 0.0))
    n = torch.sqrt(n2).clamp_min(_tiny(ys.dtype))
    return sk * torch.acosh(theta) * ys / n


def paper_logmap0_from_space(ys, K, theta_eps):
    """The published code's lower map (marlin-codes/HypLoRA, peft/tuners/lora/layer.py): time coordinate
    sqrt(|y|^2 + 1/K), arcosh(theta) taken as sqrt(2 max(theta - 1, eps)) below theta = 1.01, the norm
    clamped at 1e-7 (it computes in float32 whatever the model's type)."""
    sk = _sqrt(K)
    y0 = torch.sqrt((ys * ys).sum(-1, keepdim=True) + 1.0 / K)
    theta = y0 / sk
    near = torch.sqrt(2.0 * (theta - 1.0).clamp_min(theta_eps))
    far = torch.acosh(theta.clamp_min(1.0 + 1e-7))
    n = ys.norm(dim=-1, keepdim=True).clamp_min(1e-7)
    return sk * torch.where(theta < 1.01, near, far) * ys / n


def lorentz_logmap0_space_of_point(xs, K):
    return lorentz_logmap0_from_space(xs, K, K)


def poincare_expmap0(v, K):
    sc = 1.0 / _sqrt(K)
    n = v.norm(dim=-1, keepdim=True).clamp_min(_tiny(v.dtype))
    return torch.tanh(sc * n) * v / (sc * n)


def poincare_project(y, K, ball_eps=4e-3):
    maxnorm = (1 - ball_eps) * _sqrt(K)
    n = y.norm(dim=-1, keepdim=True).clamp_min(_tiny(y.dtype))
    return torch.where(n > maxnorm, y / n * maxnorm, y)


def poincare_logmap0(y, K):
    sc = 1.0 / _sqrt(K)
    n = y.norm(dim=-1, keepdim=True).clamp_min(_tiny(y.dtype))
    return torch.atanh(sc * n) * y / (sc * n)


class Layer(torch.nn.Module):
    """Frozen W, b; trainable A, B (+ raw curvature k, norm scale s where the variant learns them)."""

    def __init__(self, variant, W, b, A, B, scaling, K=1.0, s=1.0, k_raw=None, s_learn=False, K_min=1e-6,
                 sinh_clamp=12.0, theta_eps=1e-6, k_grad_clip=0.01):
        super().__init__()
        self.variant, self.scaling = variant, scaling
        self.W, self.b = W, b
        self.A = torch.nn.Parameter(A.clone())
        self.B = torch.nn.Parameter(B.clone())
        self.K_fixed, self.K_min = K, K_min
        self.k = torch.nn.Parameter(torch.tensor(k_raw, dtype=A.dtype)) if k_raw is not None else None
        if self.k is not None and variant == "paper":
            self.k.register_hook(lambda g: g.clamp(-k_grad_clip, k_grad_clip))
        self.s = torch.nn.Parameter(torch.tensor(s, dtype=A.dtype)) if s_learn else s
        self.sinh_clamp, self.theta_eps = sinh_clamp, theta_eps

    def K(self):
        return F.softplus(self.k) + self.K_min if self.k is not None else self.K_fixed

    def delta(self, x):
        v, K = self.variant, self.K()
        A, B = self.A, self.B
        if v == "lora":
            return (x @ A.t()) @ B.t()
        if v == "lora_scaled":
            return ((x / self.s) @ A.t()) @ B.t()
        if v == "naive":
            u = lorentz_logmap0_space_of_point(lorentz_expmap0_space(x, K), K)
            y = (u @ A.t()) @ B.t()
            return lorentz_logmap0_space_of_point(lorentz_expmap0_space(y, K), K)
        if v == "hyplora_lorentz":
            u = lorentz_expmap0_space(x / self.s, K)
            return lorentz_logmap0_from_space((u @ A.t()) @ B.t(), K, K)
        if v == "hyplora_poincare":
            p = poincare_expmap0(x / self.s, K)
            return poincare_logmap0(poincare_project((p @ A.t()) @ B.t(), K), K)
        if v == "paper":
            u = lorentz_expmap0_space(x / self.s, K, clamp=self.sinh_clamp)
            return paper_logmap0_from_space((u @ A.t()) @ B.t(), K, self.theta_eps)
        raise ValueError(f"unknown variant {v!r}")

    def forward(self, x):
        return F.linear(x, self.W, self.b) + self.scaling * self.delta(x)


# ---- cross-check -----------------------------------------------------------------------------------
def layer_from_dump(j, dtype):
    n, di, do, r = j["n"], j["d_in"], j["d_out"], j["rank"]
    t = lambda name, shape: torch.tensor(j[name], dtype=torch.float32).to(dtype).view(*shape)  # noqa: E731
    p = torch.tensor(j["params"], dtype=torch.float32).to(dtype)
    A = p[j["A_offset"]:j["A_offset"] + r * di].view(r, di)
    B = p[j["B_offset"]:j["B_offset"] + do * r].view(do, r)
    k_raw = float(p[j["curvature_offset"]]) if j["curvature_offset"] >= 0 else None
    s_learn = j["scale_offset"] >= 0
    s = float(p[j["scale_offset"]]) if s_learn else float(j["s"])
    layer = Layer(j["variant"], t("W", (do, di)), t("b", (do,)), A, B, float(j["scaling"]), K=float(j["K"]), s=s,
                  k_raw=k_raw, s_learn=s_learn, K_min=float(j["K_min"]), sinh_clamp=float(j["paper_sinh_clamp"]),
                  theta_eps=float(j["paper_theta_eps"]), k_grad_clip=float(j["paper_k_grad_clip"]))
    X = t("X", (n, di)).clone().requires_grad_(True)
    return layer, X, t("dY", (n, do))


def run_layer(j, dtype):
    layer, X, dY = layer_from_dump(j, dtype)
    Y = layer(X)
    Y.backward(dY)
    g = torch.zeros(len(j["params"]), dtype=torch.float64)
    r, di, do = j["rank"], j["d_in"], j["d_out"]
    g[j["A_offset"]:j["A_offset"] + r * di] = layer.A.grad.double().flatten()
    g[j["B_offset"]:j["B_offset"] + do * r] = layer.B.grad.double().flatten()
    if layer.k is not None:
        g[j["curvature_offset"]] = float(layer.k.grad)
    if torch.is_tensor(layer.s):
        g[j["scale_offset"]] = float(layer.s.grad)
    return {"Y": Y.detach().double().flatten(), "dX": X.grad.double().flatten(), "grads": g}


def rel(a, ref):
    return float((a - ref).abs().max() / ref.abs().max().clamp_min(1e-300))


def run_crosscheck(folder):
    files = sorted(glob.glob(os.path.join(folder, "adapter_*.json")))
    if not files:
        raise SystemExit(f"--crosscheck {folder}: no adapter_*.json files (run bench_adapter --dump {folder})")
    out, ok = [], True
    for f in files:
        with open(f) as fh:
            j = json.load(fh)
        if j.get("format") != "hyplora-adapter-crosscheck-1":
            raise SystemExit(f"{f}: not a bench_adapter --dump file")
        ref, p32 = run_layer(j, torch.float64), run_layer(j, torch.float32)
        tol = 8 * (j["d_in"] + j["rank"]) * EPS32
        for name in ("Y", "dX", "grads"):
            ours = torch.tensor(j["out " + name], dtype=torch.float32).double()
            e = rel(ours, ref[name])
            e32 = rel(ours, p32[name])
            item = {"variant": j["variant"], "case": j["case"], "output": name, "max_rel_diff_ours_vs_f64": e,
                    "max_rel_diff_torch32_vs_f64": rel(p32[name], ref[name]),
                    "max_rel_diff_ours_vs_torch32": e32, "tolerance": tol, "pass": e <= tol or e32 <= tol}
            if name == "grads":  # scalar parameters separately: a normwise figure would hide them
                for key, label in (("curvature_offset", "dk"), ("scale_offset", "ds")):
                    o = j[key]
                    if o >= 0:
                        item[label] = {"ours": float(ours[o]), "f64": float(ref[name][o]), "torch32": float(p32[name][o])}
                        a, r64, r32 = float(ours[o]), float(ref[name][o]), float(p32[name][o])
                        se = abs(a - r64) / max(abs(r64), 1e-300)
                        se32 = abs(a - r32) / max(abs(r32), 1e-300)
                        scale = float(ref[name].abs().max())
                        item[label].update({"rel_diff_ours_vs_f64": se, "rel_diff_ours_vs_torch32": se32})
                        item[label]["pass"] = se <= tol or se32 <= tol or abs(a - r64) <= tol * scale
                        item["pass"] = item["pass"] and item[label]["pass"]
            ok &= item["pass"]
            out.append(item)
    return out, ok


# ---- timing ----------------------------------------------------------------------------------------
def run_timing(shapes, tokens, reps):
    g = torch.Generator().manual_seed(1)
    res = []
    for d, r in shapes:
        u = lambda *s: 2 * torch.rand(*s, generator=g) - 1  # noqa: E731 (same distributions as bench_adapter)
        W, b = u(d, d) / math.sqrt(d), 0.1 * u(d)
        X, dY = (1.7 * u(tokens, d)).requires_grad_(True), u(tokens, d)
        A, B = u(r, d) / math.sqrt(d), 0.01 * u(d, r)
        scaling = 2.0
        layers = {v: Layer(v, W, b, A, B, scaling, K=1.0, s=math.sqrt(d) if v in ("lora_scaled", "hyplora_lorentz",
                                                                                   "hyplora_poincare") else 1.0)
                  for v in VARIANTS}
        layers["paper"] = Layer("paper", W, b, A, B, scaling, s=math.sqrt(d), s_learn=True, k_raw=1.0)

        def frozen():
            X.grad = None
            F.linear(X, W, b).backward(dY)

        def step(layer):
            def f():
                X.grad = None
                layer.zero_grad(set_to_none=True)
                layer(X).backward(dY)
            return f

        methods = [("frozen linear", frozen)] + [(v, step(layers[v])) for v in VARIANTS]
        # a sample lasts >= ~20 ms, sized as bench_adapter's calls_per_sample: one cold call, then warm
        # calls timed until they add up to 2 ms
        methods[1][1]()
        a, calls = time.perf_counter(), 0
        while True:
            methods[1][1]()
            calls += 1
            elapsed = time.perf_counter() - a
            if elapsed >= 0.002:
                break
        inner = max(1, int(0.02 / max(elapsed / calls, 1e-9)))
        warm = 1 if d >= 2048 else 2
        times = {m: [] for m, _ in methods}
        for rnd in range(warm + reps):
            for m, f in methods:
                a = time.perf_counter()
                for _ in range(inner):
                    f()
                dt = (time.perf_counter() - a) / inner
                if rnd >= warm:
                    times[m].append(dt * 1e3)
        for m, _ in methods:
            t = times[m]
            res.append({"d": d, "r": r, "method": m, "median_ms": statistics.median(t), "min_ms": min(t),
                        "max_ms": max(t)})
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--time", action="store_true")
    ap.add_argument("--shapes", default="288x8,64x8", help="d x rank, comma separated")
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--crosscheck", default="")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    out = {"peer": "pytorch-cpu autograd", "torch": torch.__version__, "threads": torch.get_num_threads()}
    ok = True
    if a.crosscheck:
        out["crosscheck"], ok = run_crosscheck(a.crosscheck)
    if a.time:
        shapes = [tuple(int(v) for v in s.lower().split("x")) for s in a.shapes.split(",")]
        out["tokens"], out["reps"] = a.tokens, a.reps
        out["timings"] = run_timing(shapes, a.tokens, a.reps)
    print(json.dumps(out))
    return 0 if ok else 3


if __name__ == "__main__":
    sys.exit(main())
