#!/usr/bin/env python3
"""Turns the raw outputs of bench/run.sh (OUT/raw/) into OUT/results.md and plots (gnuplot, PNG + SVG).

    python3 bench/report/make_report.py OUT

Python 3 standard library only. Reads: raw/machine.txt, raw/steps.tsv, raw/commands.sh,
raw/geometry.md (+ geometry_peer.json), raw/adapter.md (+ adapter_peer.json), raw/model.txt (+ model_adapters_15m.txt, model_adapters_260k.txt),
raw/accuracy/ (accuracy.md written by bench/report/accuracy.sh). Pairs our figures with the peer's
by (operation, shape) / (d, r, method): ratios are taken only between figures of the same run.
Every file is written atomically (temporary file, rename).
"""
import json
import os
import re
import shutil
import subprocess
import sys


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def load_json(path):
    t = read(path)
    if not t:
        return None
    try:
        return json.loads(t[t.find("{"):])
    except ValueError:
        return None


def md_rows(text):
    """Rows of the first Markdown table in text, as lists of cell strings (header excluded). A row
    with another number of cells than the header (a run cut off mid-line) is left out."""
    rows, width = [], None
    for line in (text or "").splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if width is None:
                width = len(cells)
                continue
            if all(set(c) <= set("-: ") for c in cells):
                continue
            if len(cells) == width:
                rows.append(cells)
            else:
                sys.stderr.write(f"make_report: row with {len(cells)} cells instead of {width} left out: {line[:120]}\n")
        elif width is not None and rows:
            break
    return rows


def fnum(x, nd=3):
    if x is None:
        return "—"
    if x == 0:
        return "0"
    a = abs(x)
    if a >= 1000 or a < 1e-3:
        return f"{x:.2e}"
    return f"{x:.{nd}f}" if a < 100 else f"{x:.1f}"


def gnuplot(script, outbase, outdir):
    """Runs a gnuplot script body twice (PNG and SVG); returns the file names written."""
    if not shutil.which("gnuplot"):
        return []
    made = []
    for term, ext in (("pngcairo size 1000,560 font ',10'", "png"), ("svg size 1000,560", "svg")):
        path = os.path.join(outdir, f"{outbase}.{ext}")
        # "-" in a data file is a missing value (a peer that did not run): no bar, not a bar of 0
        full = f"set terminal {term} noenhanced\nset datafile missing '-'\nset output '{path}.tmp'\n{script}\nset output\n"
        gp = os.path.join(outdir, "raw", f"{outbase}.gp")
        with open(gp, "w") as f:
            f.write(full)
        r = subprocess.run(["gnuplot", gp], capture_output=True, text=True)
        if r.returncode == 0 and os.path.exists(path + ".tmp"):
            os.replace(path + ".tmp", path)
            made.append(os.path.basename(path))
        else:
            sys.stderr.write(f"gnuplot {outbase}.{ext}: {r.stderr.strip()[:300]}\n")
    return made


def not_run(raw, step):
    """What the report says for a section whose output is missing: the step's exit status when it ran
    and failed (its output is kept as raw/FILE.failed), else "not run"."""
    for line in (read(os.path.join(raw, "steps.tsv")) or "").splitlines():
        f = line.split("\t")
        if len(f) >= 4 and f[0] == step and f[1] not in ("0", "4"):
            return [f"_failed (exit status {f[1]}): see raw/{os.path.basename(f[3])}.failed and .err_"]
    return ["_not run_"]


def gp_text(text):
    """text inside a single-quoted gnuplot string (a quote is written twice: "item's" broke the script)."""
    return text.replace("'", "''")


def peer_series(plot_lines, column, title):
    """', '' using COLUMN title TITLE' when some line has a peer value in that column, else '' (no legend
    entry for a peer that never ran)."""
    has = any(l.rsplit('"', 1)[-1].split()[column - 2] != "-" for l in plot_lines)
    return f", '' using {column} title '{gp_text(title)}'" if has else ""


def dat(outdir, name, lines):
    p = os.path.join(outdir, "raw", name)
    with open(p, "w") as f:
        f.write("\n".join(lines) + "\n")
    return p


# ---- sections ------------------------------------------------------------------------------------------
def geometry_section(out, raw, ci):
    text = read(os.path.join(raw, "geometry.md"))
    if text is None:
        return not_run(raw, "geometry")
    rows = md_rows(text)
    peer = load_json(os.path.join(raw, "geometry_peer.json")) or {}
    pt = {(t["op"], t["shape"]): t["s"] for t in peer.get("timings", [])}
    md = [text.splitlines()[0] if text else "", "",
          "| op | rows x d | MB moved | ours ms median (min–max) | GB/s | memcpy GB/s | of bound | torch ms median (min–max) | ours / torch time |",
          "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    plot = []
    for c in rows:
        op, shape, mb, tm, gbs, mgbs, frac = c[:7]
        med = float(tm.split()[0])
        p = pt.get((op, shape))
        ps = f"{p['median'] * 1e3:.3f} ({p['min'] * 1e3:.3f}–{p['max'] * 1e3:.3f})" if p else "—"
        ratio = f"{med / (p['median'] * 1e3):.3g}" if p else "—"
        md.append(f"| {op} | {shape} | {mb} | {tm.replace('-', '–')} | {gbs} | {mgbs} | {frac} | {ps} | {ratio} |")
        tgbs = f"{float(mb) * 1e6 / p['median'] / 1e9:.4g}" if p else "-"
        plot.append(f'"{op}\\n{shape}" {gbs} {mgbs} {tgbs}')
    cc = peer.get("crosscheck")
    md += ["", "Cross-check on identical float32 inputs (`bench_geometry --dump`, 512 rows x 64, |v| from 0.01 to 20): "
           "largest row-wise relative difference from a float64 evaluation of the geoopt formulas on the same inputs.", ""]
    if cc:
        md += ["| op | ours vs float64 | torch float32 vs float64 | ours vs torch float32 | tolerance | agrees |",
               "|---|---:|---:|---:|---:|---|"]
        for c in cc:
            md.append(f"| {c['op']} | {c['max_rel_diff_ours_vs_f64']:.2e} | {c['max_rel_diff_torch32_vs_f64']:.2e} | "
                      f"{c['max_rel_diff_ours_vs_torch32']:.2e} | {c['tolerance']:.2e} | {'yes' if c['pass'] else '**NO**'} |")
    else:
        md.append("_no peer cross-check (PyTorch missing or the peer failed; see raw/)_")
    if plot and not ci:
        d = dat(out, "geometry.dat", plot)
        files = gnuplot(f"""set title 'Batched geometry, float32: GB/s (bytes read + written), higher is better'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel 'GB/s'
set xtics rotate by -30 font ',8'
set key top right
set yrange [0:*]
plot '{d}' using 2:xtic(1) title 'hyplora', '' using 3 title 'memcpy (bound)'{peer_series(plot, 4, 'PyTorch (geoopt formulas)')}""",
                        "geometry", out)
        md += [""] + [f"![geometry]({f})" for f in files if f.endswith(".png")]
    return md


def adapter_section(out, raw, ci):
    text = read(os.path.join(raw, "adapter.md"))
    if text is None:
        return not_run(raw, "adapter")
    rows = md_rows(text)
    peer = load_json(os.path.join(raw, "adapter_peer.json")) or {}
    pt = {(str(t["d"]), str(t["r"]), t["method"]): t for t in peer.get("timings", [])}
    plora = {(str(t["d"]), str(t["r"])): t["median_ms"] for t in peer.get("timings", []) if t["method"] == "lora"}
    head = [l for l in text.splitlines() if l.startswith("#")]
    md = [" ".join(h.lstrip("# ") for h in head), "",
          "| d | r | method | ours ms median (min–max) | ours / LoRA | ours / frozen | torch ms median (min–max) | torch / torch LoRA | ours / torch |",
          "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    plot = {}
    for c in rows:
        d, r, m, med, mn, mx, rl, rf = c[:8]
        p = pt.get((d, r, m))
        ps = f"{p['median_ms']:.3f} ({p['min_ms']:.3f}–{p['max_ms']:.3f})" if p else "—"
        prl = f"{p['median_ms'] / plora[(d, r)]:.3f}" if p and (d, r) in plora else "—"
        ratio = f"{float(med) / p['median_ms']:.2f}" if p else "—"
        md.append(f"| {d} | {r} | {m} | {med} ({mn}–{mx}) | {rl} | {rf} | {ps} | {prl} | {ratio} |")
        plot.setdefault((d, r), []).append(f'"{m}" {med} {p["median_ms"] if p else "-"}')
    cc = peer.get("crosscheck")
    md += ["", "Cross-check on identical float32 inputs (`bench_adapter --dump`: 32 tokens, rank 8, every variant at d = 64 "
           "and 288, and the hyperbolic ones with learnable K = 0.5 and s): largest normwise relative difference of Y, dX "
           "and the flat gradient from a float64 autograd evaluation of the same layer.", ""]
    if cc:
        md += ["| variant | case | output | ours vs float64 | torch float32 vs float64 | ours vs torch float32 | tolerance | agrees |",
               "|---|---|---|---:|---:|---:|---:|---|"]
        for c in cc:
            extra = ""
            for k in ("dk", "ds"):
                if k in c:
                    extra += f" ({k}: ours {c[k]['ours']:.6g}, f64 {c[k]['f64']:.6g}, torch {c[k]['torch32']:.6g})"
            md.append(f"| {c['variant']} | {c['case']} | {c['output']}{extra} | {c['max_rel_diff_ours_vs_f64']:.2e} | "
                      f"{c['max_rel_diff_torch32_vs_f64']:.2e} | {c['max_rel_diff_ours_vs_torch32']:.2e} | "
                      f"{c['tolerance']:.2e} | {'yes' if c['pass'] else '**NO**'} |")
    else:
        md.append("_no peer cross-check (PyTorch missing or the peer failed; see raw/)_")
    if plot and not ci:
        for (d, r), lines in plot.items():
            f = dat(out, f"adapter_d{d}_r{r}.dat", lines)
            files = gnuplot(f"""set title 'Adapter forward + backward, d = {d}, rank {r}: ms per step, lower is better'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel 'ms'
set xtics rotate by -30
set yrange [0:*]
plot '{f}' using 2:xtic(1) title 'hyplora'{peer_series(lines, 3, 'PyTorch autograd')}""", f"adapter_d{d}_r{r}", out)
            md += [""] + [f"![adapter d={d} r={r}]({x})" for x in files if x.endswith(".png")]
    return md


def model_section(out, raw, ci):
    text = read(os.path.join(raw, "model.txt"))
    if text is None:
        return not_run(raw, "model")
    lines = [l for l in text.splitlines() if not l.startswith("peer_json")]
    md = ["```", *lines, "```"]
    peer = None
    for l in text.splitlines():
        if l.startswith("peer_json "):
            peer = load_json_str(l[len("peer_json "):])
    ours = {}
    for l in lines:
        m = re.match(r"(forward \(loss, no grad\)|train step \(all weights\)|train step \(frozen weights\))\s+(\d+) tok/s\s+"
                     r"\(min ([\d.]+) s, median ([\d.]+) s, max ([\d.]+) s per step\)\s+([\d.]+) GFLOP/s\s+=\s+([\d.]+)% of sgemm", l)
        if m:
            ours[m.group(1)] = m.groups()[1:]
    if ours:
        keys = {"forward (loss, no grad)": "forward", "train step (all weights)": "train", "train step (frozen weights)": "train_frozen"}
        md += ["", "| work | ours tok/s | ours s/step median (min–max) | % of sgemm | torch tok/s | torch s/step median (min–max) | ours / torch throughput |",
               "|---|---:|---:|---:|---:|---:|---:|"]
        plot = []
        for k, v in ours.items():
            tps, mn, med, mx, gf, pct = v
            pk = keys[k]
            if peer:
                ptps = peer[f"{pk}_tokens_per_s"]
                s = peer[f"{pk}_s"]
                md.append(f"| {k} | {tps} | {med} ({mn}–{mx}) | {pct}% | {ptps:.0f} | {s['median']:.3f} ({s['min']:.3f}–{s['max']:.3f}) | {float(tps) / ptps:.2f} |")
                plot.append(f'"{k}" {tps} {ptps:.1f}')
            else:
                md.append(f"| {k} | {tps} | {med} ({mn}–{mx}) | {pct}% | — | — | — |")
                plot.append(f'"{k}" {tps} -')
        cc = (load_json(os.path.join(raw, "model_peer_crosscheck.json")) or {}).get("crosscheck")
        md += ["", "Cross-check on identical inputs (`bench_model --dump`: stories260K shape, random weights, 2 x 16 "
               "tokens): loss and every weight's gradient against the PyTorch module loaded with the same weights, "
               "in float64 and float32 (largest normwise relative difference).", ""]
        if cc:
            md += ["| output | ours vs float64 | torch float32 vs float64 | ours vs torch float32 | tolerance | agrees |",
                   "|---|---:|---:|---:|---:|---|"]
            for c in cc:
                md.append(f"| {c['output']} | {c['max_rel_diff_ours_vs_f64']:.2e} | {c['max_rel_diff_torch32_vs_f64']:.2e} | "
                          f"{c['max_rel_diff_ours_vs_torch32']:.2e} | {c['tolerance']:.2e} | {'yes' if c['pass'] else '**NO**'} |")
        else:
            md.append("_no model cross-check (PyTorch missing or the peer failed; see raw/)_")
        if not ci:
            f = dat(out, "model.dat", plot)
            files = gnuplot(f"""set title 'Llama forward / training step: tokens per second, higher is better'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel 'tokens / s'
set yrange [0:*]
plot '{f}' using 2:xtic(1) title 'hyplora'{peer_series(plot, 3, 'PyTorch')}""", "model", out)
            md += [""] + [f"![model]({x})" for x in files if x.endswith(".png")]
    # --ci runs the comparison inside the model item (tiny shape); the other modes in runs of their own
    md += adapter_step_section(out, os.path.join(raw, "model.txt"), "the model item's shape", "model_adapters", ci)
    md += adapter_step_section(out, os.path.join(raw, "model_adapters_15m.txt"), "stories15M shape (d = 288)",
                               "model_adapters_15m", ci)
    md += adapter_step_section(out, os.path.join(raw, "model_adapters_260k.txt"), "stories260K shape (d = 64)",
                               "model_adapters_260k", ci)
    return md


def adapter_step_section(out, path, label, plot_name, ci):
    """The whole-model cost of each adapter kind (`bench_model --adapters`): its frozen-weight training
    step against LoRA's in the same rounds."""
    text = read(path)
    if text is None:
        return []
    rows = []
    for l in text.splitlines():
        m = re.match(r"\s+(\w+)\s+(\d+) tok/s\s+\(min ([\d.]+) s, median ([\d.]+) s, max ([\d.]+) s per step\)\s+/ (\w+) "
                     r"([\d.]+) \(([\d.]+)-([\d.]+)\)", l)
        if m:
            rows.append(m.groups())
    if not rows:
        return []
    head = [l for l in text.splitlines() if l.startswith("shape ")]
    md = ["", f"Adapters in the whole model, {label} (`bench_model --adapters`): the frozen-weight training step with "
              f"rank-8 adapters on q, k, v, up, down, kinds interleaved round by round; ratio = median (quartiles) over "
              f"the rounds of the step time / {rows[0][5]}'s in the same round. " + (head[0] if head else ""), "",
          "| adapter | tok/s | s/step median (min–max) | / " + rows[0][5] + " |", "|---|---:|---:|---:|"]
    plot = []
    for kind, tps, mn, med, mx, ref, ratio, q1, q3 in rows:
        md.append(f"| {kind} | {tps} | {med} ({mn}–{mx}) | {ratio} ({q1}–{q3}) |")
        plot.append(f'"{kind}" {ratio} {q1} {q3}')
    if not ci:
        f = dat(out, plot_name + ".dat", plot)
        files = gnuplot(f"""set title 'Whole-model training step with adapters, {gp_text(label)}: time / {rows[0][5]} (lower is better)'
set style fill solid 0.8 border -1
set boxwidth 0.6
set ylabel 'step time / {rows[0][5]} (median, quartiles)'
set yrange [0.9:*]
plot '{f}' using 0:2:xtic(1) with boxes notitle, '' using 0:2:3:4 with yerrorbars lc rgb 'black' notitle""",
                        plot_name, out)
        md += [""] + [f"![{plot_name}]({x})" for x in files if x.endswith(".png")]
    return md


def load_json_str(s):
    try:
        return json.loads(s)
    except ValueError:
        return None


def accuracy_section(out, raw):
    acc = read(os.path.join(raw, "accuracy", "accuracy.md"))
    if acc is None:
        return ["_not run (skipped in --ci mode, or no trainer binary; see the step table)_"]
    # plots the accuracy script produced are copied next to results.md
    adir = os.path.join(raw, "accuracy")
    for f in sorted(os.listdir(adir)):
        if f.endswith((".png", ".svg")):  # this run's plots replace any of an earlier run
            shutil.copy(os.path.join(adir, f), os.path.join(out, f))
    return [acc.strip()]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_report.py OUT")
    out = os.path.abspath(sys.argv[1])
    raw = os.path.join(out, "raw")
    mach = dict(l.split("=", 1) for l in (read(os.path.join(raw, "machine.txt")) or "").splitlines() if "=" in l)
    ci = mach.get("ci") == "1"
    steps = [l.split("\t") for l in (read(os.path.join(raw, "steps.tsv")) or "").splitlines() if l.strip()]
    failed = (read(os.path.join(raw, "failed.txt")) or "").split()
    disagree = (read(os.path.join(raw, "disagree.txt")) or "").split()
    md = [f"# hyplora bench suite — {mach.get('mode', '?')} mode{' (CI)' if ci else ''}, {mach.get('threads', '?')} threads"
          f" (OMP_WAIT_POLICY={mach.get('omp_wait_policy', '?')})", "",
          f"- date (UTC): {mach.get('date_utc', '?')}; commit {mach.get('commit', '?')}",
          f"- machine: {mach.get('cpu', '?')}, {mach.get('cores', '?')} cores, {mach.get('memory', '?')}; "
          f"load average before {mach.get('load_before', '?')}, after {mach.get('load_after', '?')}",
          f"- build: {mach.get('build', '?')} ({mach.get('compiler', '?')}); PyTorch: {mach.get('torch', '?')}",
          "- every timing: median of several runs after warm-up, (min–max); ratios pair figures of this run only.",
          ]
    if mach.get("torch") == "missing":
        md.append("- PyTorch peers skipped: `/usr/bin/python3 -c 'import torch'` failed; get them with "
                  "`sudo apt-get install python3-torch` (the driver installs nothing).")
    if ci:
        md.append("- **CI mode: tiny sizes; the timings below show that the suite runs, they are not measurements.**")
    if failed:
        md.append(f"- **failed to run: {', '.join(failed)}**")
    if disagree:
        md.append(f"- **peer cross-check disagrees beyond tolerance: {', '.join(disagree)}**")
    md += ["", "## 1. Geometry throughput (float32) against the memory-bandwidth bound", ""]
    md += geometry_section(out, raw, ci)
    md += ["", "## 2. Adapter forward + backward against LoRA and the frozen layer", ""]
    md += adapter_section(out, raw, ci)
    md += ["", "## 3. Model forward and training step against the sgemm rate", ""]
    md += model_section(out, raw, ci)
    md += ["", "## 4. Accuracy", ""]
    md += accuracy_section(out, raw)
    md += ["", "## Steps and commands", "", "| step | exit status | seconds | output |", "|---|---|---:|---|"]
    md += [f"| {s[0]} | {s[1]} | {s[2]} | {s[3] if len(s) > 3 else ''} |" for s in steps]
    cmds = read(os.path.join(raw, "commands.sh")) or ""
    md += ["", "Environment: `OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=" + mach.get("threads", "?") + "` (the peers get the same count).", "",
           "```sh", cmds.rstrip(), "```", ""]
    write_atomic(os.path.join(out, "results.md"), "\n".join(md))


if __name__ == "__main__":
    main()
