#!/usr/bin/env python3
"""Splits MAWPS test into the problems whose question the training split also asks and the rest.

    scripts/mawps_test_by_repeat.py SHARED/data/mawps OUT_DIR

writes OUT_DIR/test_repeated.json and OUT_DIR/test_new.json (MAWPS format, records as given), so that a
sweep can score the two apart (`"eval_data": ["mawps:OUT_DIR/test_new.json", ...]`). A question is
compared as hyplora's loaders compare it (data/repeats.hpp): its text with runs of white space as one
space. The shared copy gives 28 repeated and 210 new problems.
"""
import json
import os
import sys


def key(record):
    return " ".join(record["original_text"].split())


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    with open(os.path.join(src, "trainset.json"), encoding="utf-8") as f:
        asked = {key(r) for r in json.load(f)}
    with open(os.path.join(src, "testset.json"), encoding="utf-8") as f:
        test = json.load(f)
    repeated = [r for r in test if key(r) in asked]
    new = [r for r in test if key(r) not in asked]
    os.makedirs(out, exist_ok=True)
    for name, records in (("test_repeated.json", repeated), ("test_new.json", new)):
        path = os.path.join(out, name)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(records, f, indent=1)
        os.replace(tmp, path)  # never a half-written file
        print(f"{path}: {len(records)} problems")


if __name__ == "__main__":
    main()
