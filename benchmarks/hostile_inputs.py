"""Hostile inputs and faults: how many get a clear answer, and how many do not.

Runs every case of :mod:`diffinv.testing.hostile_cases` (bad shapes, dtypes and types for
operators, impossible data for noise models, sampling requests that cannot work, every reader
on empty / text / truncated / damaged / wrong-kind files, output directories that would lose
data, a process killed during a write), each in its own scratch directory, classifies the
outcome by running it (:func:`diffinv.testing.hostile.classify`) and prints the counts:
tried / clear / obscure / silent wrong / data loss.  ``--verbose`` lists every case.

Usage: OMP_NUM_THREADS=1 python benchmarks/hostile_inputs.py [--verbose]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch

from diffinv.testing.hostile import OUTCOMES, classify
from diffinv.testing.hostile_cases import all_cases

LABELS = {"clear": "clear", "obscure": "obscure", "silent": "silent wrong", "loss": "data loss"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="print every case")
    args = parser.parse_args()
    torch.set_num_threads(1)
    counts: Counter[str] = Counter()
    start = time.perf_counter()
    for case in all_cases():
        with tempfile.TemporaryDirectory(prefix="diffinv-hostile-") as tmp:
            outcome, detail = classify(case, Path(tmp))
        counts[outcome] += 1
        if args.verbose or outcome != "clear":
            print(f"{LABELS[outcome]:>12}  {case.name}: {detail[:160]}")
    total = sum(counts.values())
    print(f"threads: 1; wall: {time.perf_counter() - start:.1f} s")
    print("tried " + str(total) + " / " + " / ".join(
        f"{LABELS[o]} {counts[o]}" for o in OUTCOMES))
    return 0 if counts["clear"] == total else 1


if __name__ == "__main__":
    raise SystemExit(main())
