#!/usr/bin/env python3
"""Copies one or more bench/run.sh results folders into the docs: the PNG plots into
docs/bench/latest/ and the results.md contents into the delimited "Latest full run" section of
docs/results.md (created if missing; the rest of that file is left as it is).

    python3 bench/report/publish.py [--note FILE] RESULTS_DIR [RESULTS_DIR ...]

--note FILE: a Markdown paragraph placed at the top of the section (what was run, load conditions).

Standard library only; files written atomically.
"""
import os
import re
import shutil
import sys

BEGIN = "<!-- BEGIN latest-full-run (written by bench/report/publish.py from bench/run.sh results) -->"
END = "<!-- END latest-full-run -->"


def main():
    args = sys.argv[1:]
    note = ""
    if len(args) >= 2 and args[0] == "--note":
        note = open(args[1]).read().strip()
        args = args[2:]
    if not args:
        sys.exit(__doc__)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    docs = os.path.join(root, "docs")
    img_dir = os.path.join(docs, "bench", "latest")
    os.makedirs(img_dir, exist_ok=True)
    for f in os.listdir(img_dir):
        os.remove(os.path.join(img_dir, f))
    parts = [BEGIN, "## Latest full run", "",
             "Produced by `bench/run.sh` (see [bench.md](bench.md)); each block below is one invocation's "
             "`results.md`, with its command, machine, load, commit and date. Plots: `docs/bench/latest/`.", ""]
    if note:
        parts += [note, ""]
    for res in args:
        text = open(os.path.join(res, "results.md")).read()
        tag = os.path.basename(os.path.normpath(res))
        for f in os.listdir(res):
            if f.endswith(".png"):
                shutil.copy(os.path.join(res, f), os.path.join(img_dir, f"{tag}-{f}"))
        text = re.sub(r"!\[([^\]]*)\]\(([^)/]+\.png)\)", lambda m: f"![{m.group(1)}](bench/latest/{tag}-{m.group(2)})", text)
        lines = []
        for l in text.splitlines():
            if l.startswith("#"):  # two levels down (each run is a subsection), at most level 6
                n = len(l) - len(l.lstrip("#"))
                l = "#" * min(6, n + 2) + l[n:]
            lines.append(l)
        parts += lines + [""]
    parts.append(END)
    section = "\n".join(parts) + "\n"
    path = os.path.join(docs, "results.md")
    old = open(path).read() if os.path.exists(path) else "# Results\n\n"
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + section + old[old.index(END) + len(END):].lstrip("\n")
    else:
        new = old.rstrip("\n") + "\n\n" + section
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(new)
    os.replace(tmp, path)
    print(f"docs/results.md: section updated from {', '.join(args)}")


if __name__ == "__main__":
    main()
