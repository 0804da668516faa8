"""Packed trials (``[packing] size = K``): trials per hour of K LSTM(16) trials trained in one
compiled JAX program, against the same trials trained one by one through the project's trainer
(``jena.train.train``, JAX backend), on whatever device is at hand.

Each trial: one epoch of ``--steps`` batches of 256 (book2 windows, 120 hourly steps) and 2
validation batches. Packs are timed once compiled (a sweep compiles each shape once per
process); one-by-one trials compile each (a new Keras model per trial), as in a sweep. On a CPU
little gain is expected (the cores are busy already); the goal (8 packed ≥ 6× one) is for an
accelerator, where small recurrent steps are launch-bound.

    python benchmarks/bench_packed.py [--steps N] [--packs 1,4,8,16] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import accelerator, has_jax, save, table
from _packing import packed_rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="training batches per trial")
    parser.add_argument("--packs", default="1,4,8,16", help="pack sizes K")
    parser.add_argument("--json", default=None, help="where to write the figures")
    args = parser.parse_args()
    if not has_jax():
        print("packed trials need JAX: pip install jax (skipped)")
        save("packed", {"skipped": "JAX is not installed"}, args.json)
        return
    packs = tuple(int(k) for k in args.packs.split(","))
    got = packed_rates(steps=args.steps, packs=packs)
    alone = got["alone"]["trials_per_hour"]
    one = got["1"]["trials_per_hour"] if "1" in got else alone
    device = accelerator() or f"CPU ({os.cpu_count()} cores)"
    print(f"LSTM(16) trials, 1 epoch x {args.steps} batches of 256, JAX on {device}")
    rows = [["one by one (jena.train)", 1, f"{got['alone']['seconds'] / 3:.1f}",
             f"{alone:,.0f}", "1.00x", ""]]  # fmt: skip
    for k in packs:
        r = got[str(k)]
        rows.append(
            [
                f"packed K={k}",
                k,
                f"{r['seconds']:.1f}",
                f"{r['trials_per_hour']:,.0f}",
                f"{r['trials_per_hour'] / alone:.2f}x",
                f"{r['trials_per_hour'] / one:.2f}x",
            ]
        )
    print(table(["", "trials", "seconds", "trials/hour", "vs one by one", "vs packed K=1"], rows))
    ratios = {str(k): got[str(k)]["trials_per_hour"] / alone for k in packs}
    save("packed", {"device": device, "steps": args.steps, "runs": got,
                    "vs_one_by_one": ratios,
                    "vs_packed_1": {str(k): got[str(k)]["trials_per_hour"] / one for k in packs},
                    "on_accelerator": accelerator() is not None,  # the goal is a GPU's
                    "goal_8_packed_6x": accelerator() is not None and ratios.get("8", 0) >= 6},
         args.json)  # fmt: skip


if __name__ == "__main__":
    main()
