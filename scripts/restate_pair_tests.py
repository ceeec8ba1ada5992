#!/usr/bin/env python3
"""Restates the paired comparisons of a sweep summary written before 2026-11-26 22:00 UTC, whose
p-values came from a paired bootstrap of the centred differences (its p fell to the floor 1/(R+1)
whenever all of 3-5 differences had one sign: far too small). From the per-seed test accuracies in
summary.json it recomputes, as `hyplora sweep` now does (eval::paired_permutation_p_value,
eval::holm_adjust, eval::sign_test_p_value):

  - the exact paired permutation (sign-flip) p: #{s in {+-1}^n : |sum s_i |d_i|| >= |sum d_i|} / 2^n;
  - Holm's adjustment over all the pairs of the table;
  - the exact sign test.

Those summaries kept no per-seed validation losses, so in the loss table the permutation p is exact
only where every difference has one sign (then it is 2/2^n whatever the sizes); otherwise the table
gives its lower bound 2^(k+1)/2^n (k = differences of the minority sign: flipping any of them only
makes the sum larger) and no Holm column.

    python3 scripts/restate_pair_tests.py SUMMARY.json [[--after LINE] FILE.md ...]
    python3 scripts/restate_pair_tests.py --counts-only [--after LINE] FILE.md ...   (no summary.json)

prints the accuracy table; with Markdown files, replaces the first tables under the headings "Paired
comparisons of test accuracy ..." and "Paired comparisons of the best validation loss ..." in each
(after the line that starts with LINE, when given; files written atomically). Python 3 standard library only.
"""
import json
import math
import os
import re
import sys


def permutation_p(d):
    m = [abs(x) for x in d]
    total = sum(m)
    if total == 0:
        return 1.0
    observed = abs(sum(d))
    tol = 8 * sys.float_info.epsilon * total * len(d)
    n = len(d)
    hits = 0
    for signs in range(1 << n):
        s = sum(-m[i] if signs >> i & 1 else m[i] for i in range(n))
        hits += abs(s) >= observed - tol
    return hits / (1 << n)


def holm(ps):
    order = sorted(range(len(ps)), key=lambda i: ps[i])
    out, running = [0.0] * len(ps), 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (len(ps) - k) * ps[i]))
        out[i] = running
    return out


def sign_p(wins, losses):
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)


def fmt_p(p):
    return "<0.001" if p < 0.001 else f"{p:.3f}"


NOTE = ("Exact paired permutation test (sign flips of the per-seed differences; its smallest p is "
        "2/2^seeds: 0.0625 with 5 seeds), the same p adjusted by Holm over all the pairs of the table, and "
        "the exact sign test. Restated on 2026-11-26 with `scripts/restate_pair_tests.py` from the "
        "per-seed accuracies in summary.json (the first version of this table gave paired-bootstrap p "
        "values, too small at this number of seeds).")
LOSS_NOTE = ("Exact sign test; the permutation p is exact (2/2^seeds) where every difference has one "
             "sign, otherwise its lower bound (\u2265): this summary kept no per-seed losses. Restated "
             "on 2026-11-26 with `scripts/restate_pair_tests.py` (the first version gave paired-bootstrap "
             "p values, too small at this number of seeds).")


COUNTS_NOTE = ("Exact sign test; the exact permutation p where every non-tied difference has one sign, "
               "otherwise its lower bound (\u2265): the per-seed values of this run were not kept. Restated "
               "on 2026-11-26 with `scripts/restate_pair_tests.py --counts-only` (the first version gave "
               "paired-bootstrap p values, too small at this number of seeds).")


def tables(summary):
    arms = {a["arm"]: a for a in summary["arms"]}
    acc_rows, ps = [], []
    for p in summary["pairs"]:
        A, B = arms[p["a"]], arms[p["b"]]
        d = [A["test_accuracy"][i] - B["test_accuracy"][B["seeds"].index(s)]
             for i, s in enumerate(A["seeds"]) if s in B["seeds"]]
        wins = sum(x > 0 for x in d)
        losses = sum(x < 0 for x in d)
        assert (wins, losses, len(d)) == (p["wins"], p["losses"], p["n"]), p
        ps.append(permutation_p(d))
        acc_rows.append((p, d, wins, losses))
    hs = holm(ps)
    acc = ["| A | B | seeds | mean A-B (points) | A wins / B wins / ties | permutation p | Holm p | sign test p |",
           "|---|---|---|---|---|---|---|---|"]
    for (p, d, w, l), pp, hp in zip(acc_rows, ps, hs):
        acc.append(f"| {p['a']} | {p['b']} | {len(d)} | {100 * sum(d) / len(d):+.1f} | {w} / {l} / {len(d) - w - l} | "
                   f"{fmt_p(pp)} | {fmt_p(hp)} | {sign_p(w, l):.3f} |")
    return acc


def counts_table(header):
    """A table restated from its old rows' counts alone (A, B, seeds, mean, 'h / l / t', old p, sign):
    with t ties and k differences of the minority sign, flipping ties changes nothing and flipping
    minority differences only enlarges |sum|, so p >= 2^(k+1+t) / 2^n, exact when k = 0."""
    def table(old_rows):
        out = [f"| A | B | seeds | {header} | permutation p | sign test p |", "|---|---|---|---|---|---|---|"]
        for c in old_rows:
            n = int(c[2])
            h, l, t = (int(x) for x in c[4].split("/"))
            k = min(h, l)
            if h + l == 0:
                ptxt = "1.000"
            else:
                p = min(1.0, 2 ** (k + 1 + t) / 2 ** n)
                ptxt = fmt_p(p) if k == 0 else "\u2265" + fmt_p(p)
            out.append(f"| {c[0]} | {c[1]} | {n} | {c[3]} | {h} / {l} / {t} | {ptxt} | {sign_p(h, l):.3f} |")
        return out
    return table


loss_table = counts_table("mean A-B | A higher / B higher / ties")


def replace_table(text, heading_start, new_lines, note, after=None):
    lines = text.split("\n")
    first = 0
    if after is not None:  # the tables of the section that starts with this line
        first = next((i for i, l in enumerate(lines) if l.startswith(after)), None)
        if first is None:
            return text, False
    for i, line in enumerate(lines):
        if i < first:
            continue
        if line.lstrip("#").strip().startswith(heading_start):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("|"):
                j += 1
            k = j
            while k < len(lines) and lines[k].startswith("|"):
                k += 1
            old = [[c.strip() for c in l.strip().strip("|").split("|")] for l in lines[j + 2:k]]
            body = new_lines(old) if callable(new_lines) else new_lines
            lines[i + 1:k] = ["", note, ""] + body
            return "\n".join(lines), True
    return text, False


def restate(path, after, acc_table, acc_note, loss_note):
    with open(path) as f:
        text = f.read()
    text, ok1 = replace_table(text, "Paired comparisons of test accuracy", acc_table, acc_note, after)
    text, ok2 = replace_table(text, "Paired comparisons of the best validation loss", loss_table, loss_note, after)
    if not (ok1 and ok2):
        sys.exit(f"{path}: the two paired-comparison headings were not both found")
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
    print(f"{path}: tables restated")


def main():
    args = sys.argv[1:]
    counts_only = bool(args) and args[0] == "--counts-only"
    if not args or (counts_only and len(args) < 2):
        sys.exit(__doc__)
    acc = None
    if not counts_only:
        with open(args[0]) as f:
            acc = tables(json.load(f))
        if len(args) == 1:
            print("\n".join(acc))
            return
    files, after = args[1:], None
    if files and files[0] == "--after":  # only the tables of the section that starts with this line
        files, after = files[2:], files[1]
    for path in files:
        if counts_only:  # no summary.json: both tables from their rows' counts
            restate(path, after, counts_table("mean A-B (points) | A wins / B wins / ties"), COUNTS_NOTE, COUNTS_NOTE)
        else:
            restate(path, after, acc, NOTE, LOSS_NOTE)


if __name__ == "__main__":
    main()
