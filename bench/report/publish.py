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
    # every input is read before anything in docs/ changes (a wrong folder used to empty the plots)
    texts = []
    for res in args:
        path = os.path.join(res, "results.md")
        if not os.path.isfile(path):
            sys.exit(f"publish.py: {path} not found: give bench/run.sh results folders")
        with open(path) as f:
            texts.append((res, f.read()))
    # plots are named "<folder name>-<plot>": two folders of one name (a/full, b/full) overwrote each other's
    tags = [os.path.basename(os.path.normpath(res)) for res in args]
    if len(set(tags)) != len(tags):
        sys.exit(f"publish.py: results folders must have different names (their plots are named after them): {', '.join(args)}")
    # the new plots go to a fresh folder that replaces the old one at the end
    staging = img_dir + ".new"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    parts = [BEGIN, "## Latest full run", "",
             "Produced by `bench/run.sh` (see [bench.md](bench.md)); each block below is one invocation's "
             "`results.md`, with its command, machine, load, commit and date. Plots: `docs/bench/latest/`.", ""]
    if note:
        parts += [note, ""]
    for res, text in texts:
        tag = os.path.basename(os.path.normpath(res))
        for f in os.listdir(res):
            if f.endswith(".png"):
                shutil.copy(os.path.join(res, f), os.path.join(staging, f"{tag}-{f}"))
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
    old_dir = img_dir + ".old"
    shutil.rmtree(old_dir, ignore_errors=True)
    if os.path.isdir(img_dir):
        os.rename(img_dir, old_dir)
    os.rename(staging, img_dir)
    os.replace(tmp, path)
    shutil.rmtree(old_dir, ignore_errors=True)
    print(f"docs/results.md: section updated from {', '.join(args)}")


if __name__ == "__main__":
    main()
