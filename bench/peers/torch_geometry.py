#!/usr/bin/env python3
"""PyTorch CPU peer of bench/bench_geometry.cpp: the batched operations with the formulas geoopt
uses (Lorentz: expmap0 by cosh/sinh of the Minkowski norm, logmap0 by arcosh of x0/sqrt K, dist by
arcosh of -<x,y>_L/K; Poincare ball: tanh/artanh maps at the origin and dist through the Mobius
addition), written here with plain torch ops so that geoopt itself is not needed.

Two jobs, both optional, one JSON object on stdout:

  --time --shapes 1048576x64,4096x4096 --reps 7 --threads 2
      float32 timings of every operation bench_geometry times, on inputs of the same shape and
      distribution (N(0, 1/d) rows); median, min, max of --reps runs after two warm-up runs.
      A geoopt user gets freshly allocated outputs; so does this peer. The Lorentz space-part
      operations are done the way a geoopt user would: full (d+1)-vectors, then the space part.
  --crosscheck FILE
      reads the file bench_geometry --dump wrote (float32 inputs and this library's outputs),
      recomputes every operation in float64 from the same float32 inputs (Lorentz points for dist
      projected onto H_K first: time coordinate from the space part), and reports for each
      operation the largest row-wise relative difference of our float32 output and of torch's
      float32 output from that float64 value, against the tolerance
          tol = cond * (d + 2) * eps_float32,
      cond = the largest argument |v|/sqrt K in the file (a bound on the condition number of
      sinh(t)/t, asinh(t)/t, ... for these inputs) and (d + 2) eps the rounding bound of the
      norm's d-term sum plus the map. An operation passes when our float32 output is within tol
      of the float64 value or of torch's float32 output; exit status 3 when one fails.
"""
import argparse
import json
import math
import statistics
import sys
import time

import torch

EPS32 = float(torch.finfo(torch.float32).eps)


# ---- geoopt-style formulas (dtype follows the inputs) ------------------------------------------
def _min_norm(dtype):
    return 1e-15 if dtype == torch.float64 else 1e-7


def lorentz_inner(x, y):
    return -x[..., :1] * y[..., :1] + (x[..., 1:] * y[..., 1:]).sum(-1, keepdim=True)


def lorentz_expmap0(u, K):  # u: (.., d+1) tangent at the origin (u0 ignored)
    sk = math.sqrt(K)
    us = u[..., 1:]
    nomin = us.norm(dim=-1, keepdim=True).clamp_min(_min_norm(u.dtype))
    t = nomin / sk
    return torch.cat((sk * torch.cosh(t), sk * torch.sinh(t) * us / nomin), dim=-1)


def lorentz_logmap0(x, K):  # tangent at the origin, time component 0
    sk = math.sqrt(K)
    alpha = (x[..., :1] / sk).clamp_min(1.0 + _min_norm(x.dtype))
    xs = x[..., 1:]
    nomin = xs.norm(dim=-1, keepdim=True).clamp_min(_min_norm(x.dtype))
    return torch.cat((torch.zeros_like(alpha), sk * torch.acosh(alpha) * xs / nomin), dim=-1)


def lorentz_dist(x, y, K):
    z = (-lorentz_inner(x, y) / K).clamp_min(1.0 + _min_norm(x.dtype))
    return (math.sqrt(K) * torch.acosh(z)).squeeze(-1)


def lorentz_time(xs, K):
    return torch.sqrt(K + (xs * xs).sum(-1, keepdim=True))


def artanh(x):
    x = x.clamp(-1 + 1e-7, 1 - 1e-7) if x.dtype == torch.float32 else x.clamp(-1 + 1e-15, 1 - 1e-15)
    return 0.5 * (torch.log1p(x) - torch.log1p(-x))


def poincare_expmap0(u, c):
    sc = math.sqrt(c)
    n = u.norm(dim=-1, keepdim=True).clamp_min(_min_norm(u.dtype))
    return torch.tanh(sc * n) * u / (sc * n)


def poincare_logmap0(y, c):
    sc = math.sqrt(c)
    n = y.norm(dim=-1, keepdim=True).clamp_min(_min_norm(y.dtype))
    return artanh(sc * n) * y / (sc * n)


def mobius_add(x, y, c):
    x2 = (x * x).sum(-1, keepdim=True)
    y2 = (y * y).sum(-1, keepdim=True)
    xy = (x * y).sum(-1, keepdim=True)
    num = (1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y
    den = 1 + 2 * c * xy + c * c * x2 * y2
    return num / den.clamp_min(_min_norm(x.dtype))


def poincare_dist(x, y, c):
    sc = math.sqrt(c)
    return (2 / sc * artanh(sc * mobius_add(-x, y, c).norm(dim=-1, keepdim=True))).squeeze(-1)


def pad0(vs):
    return torch.cat((torch.zeros_like(vs[..., :1]), vs), dim=-1)


# the operations bench_geometry times, by its names; f(inputs) -> output
def make_ops(K):
    c = 1.0 / K
    return {
        "Lorentz expmap0_space": lambda a: lorentz_expmap0(pad0(a["vs"]), K)[..., 1:],
        "Lorentz logmap0_space": lambda a: lorentz_logmap0(torch.cat((lorentz_time(a["xs"], K), a["xs"]), -1), K)[..., 1:],
        "Lorentz expmap0 (d+1)": lambda a: lorentz_expmap0(a["v"], K),
        "Lorentz dist (d+1)": lambda a: lorentz_dist(a["x"], a["y"], K),
        "Poincare expmap0": lambda a: poincare_expmap0(a["vs"], c),
        "Poincare logmap0": lambda a: poincare_logmap0(a["p"], c),
        "Poincare dist": lambda a: poincare_dist(a["p"], a["q"], c),
    }


def timed(fn, reps):
    fn(), fn()
    t = []
    for _ in range(reps):
        a = time.perf_counter()
        fn()
        t.append(time.perf_counter() - a)
    return {"median": statistics.median(t), "min": min(t), "max": max(t)}


def run_timing(shapes, reps, K):
    ops = make_ops(K)
    out = []
    g = torch.Generator().manual_seed(1)
    for rows, d in shapes:
        s = 1.0 / math.sqrt(d)
        vs = torch.randn(rows, d, generator=g) * s
        ws = torch.randn(rows, d, generator=g) * s
        v, w = pad0(vs), pad0(ws)
        x, y = lorentz_expmap0(v, K), lorentz_expmap0(w, K)
        p, q = poincare_expmap0(vs, 1 / K), poincare_expmap0(ws, 1 / K)
        a = {"vs": vs, "xs": x[..., 1:].contiguous(), "v": v, "x": x, "y": y, "p": p, "q": q}
        for name, f in ops.items():
            out.append({"op": name, "shape": f"{rows} x {d}", "s": timed(lambda: f(a), reps)})
    return out


def row_rel_err(ours, ref):
    """max over rows of max_j |ours - ref| / max(max_j |ref|, tiny)."""
    diff = (ours - ref).abs()
    if ref.dim() == 1:
        return float((diff / ref.abs().clamp_min(1e-30)).max())
    return float((diff.amax(-1) / ref.abs().amax(-1).clamp_min(1e-30)).max())


def run_crosscheck(path):
    with open(path) as f:
        j = json.load(f)
    if j.get("format") != "hyplora-geometry-crosscheck-1":
        raise SystemExit(f"{path}: not a bench_geometry --dump file (format {j.get('format')!r})")
    K, R, d = float(j["K"]), int(j["rows"]), int(j["d"])

    def arr(name, cols):
        t = torch.tensor(j[name], dtype=torch.float32)
        return t.view(R, cols) if cols else t

    vs, ws = arr("lorentz_v_space", d), arr("lorentz_w_space", d)
    pv, pw = arr("poincare_v", d), arr("poincare_w", d)
    ours = {k[4:]: arr(k, 0).view(R, -1).squeeze(-1) for k in j if k.startswith("out ")}
    ins = {
        "Lorentz expmap0_space": {"vs": vs},
        "Lorentz logmap0_space": {"xs": ours["Lorentz expmap0_space"]},
        "Lorentz expmap0 (d+1)": {"v": pad0(vs)},
        "Lorentz dist (d+1)": {"x": ours["Lorentz expmap0 (d+1)"], "y": ours["Lorentz expmap0 (d+1) of w"]},
        "Poincare expmap0": {"vs": pv},
        "Poincare logmap0": {"p": ours["Poincare expmap0"]},
        "Poincare dist": {"p": ours["Poincare expmap0"], "q": ours["Poincare expmap0 of w"]},
    }
    cond_l = float(vs.norm(dim=-1).max()) / math.sqrt(K)
    cond_p = max(float(pv.norm(dim=-1).max()) / math.sqrt(K), 1.0)
    # condition of artanh(x)/x at the largest ball radius: 1 / ((1 - x^2) artanh(x))
    xmax = math.tanh(cond_p)
    cond_p = max(cond_p, 1.0 / ((1 - xmax * xmax) * math.atanh(xmax)))
    res = []
    ok = True
    for name, f in make_ops(K).items():
        a = ins[name]
        a64 = {k: v.double() for k, v in a.items()}
        if name == "Lorentz dist (d+1)":
            # the float32 points are on H_K only up to rounding, which is amplified by arcosh near 1:
            # the reference distance is that of their projections (time recomputed from the space part)
            a64 = {k: torch.cat((lorentz_time(v[..., 1:], K), v[..., 1:]), -1) for k, v in a64.items()}
        ref = f(a64)
        peer32 = f(a).double()
        cond = max(cond_l if name.startswith("Lorentz") else cond_p, 1.0)
        tol = cond * (d + 2) * EPS32
        e_ours = row_rel_err(ours[name].double(), ref)
        e_torch = row_rel_err(peer32, ref)
        e_pair = row_rel_err(ours[name].double(), peer32)
        passed = e_ours <= tol or e_pair <= tol
        ok &= passed
        res.append({"op": name, "rows": R, "d": d, "max_rel_diff_ours_vs_f64": e_ours,
                    "max_rel_diff_torch32_vs_f64": e_torch,
                    "max_rel_diff_ours_vs_torch32": e_pair,
                    "tolerance": tol, "pass": passed})
    return res, ok


def parse_shapes(s):
    out = []
    for part in s.split(","):
        r, d = part.lower().split("x")
        out.append((int(r), int(d)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--time", action="store_true")
    ap.add_argument("--shapes", default="4096x64,64x1024")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--K", type=float, default=1.0)
    ap.add_argument("--crosscheck", default="")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    out = {"peer": "pytorch-cpu geoopt formulas", "torch": torch.__version__, "threads": torch.get_num_threads()}
    ok = True
    if a.crosscheck:
        out["crosscheck"], ok = run_crosscheck(a.crosscheck)
    if a.time:
        out["reps"] = a.reps
        out["timings"] = run_timing(parse_shapes(a.shapes), a.reps, a.K)
    print(json.dumps(out))
    return 0 if ok else 3


if __name__ == "__main__":
    sys.exit(main())
