"""Keras backends on this machine: a slice of a book2 epoch (the same batches: same seed, same
windows) of ``lstm`` and ``stacked_gru_dropout`` through the project's trainer, under TensorFlow
and under JAX (where installed), each backend in its own process (``KERAS_BACKEND``).

The time of the second epoch is taken (the first one compiles); the figure is seconds per
batch of 256 and the ratio JAX / TensorFlow.

    python benchmarks/bench_backends.py [--steps N] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import SYNTHETIC, has_jax, run_child, save, table

CHILD = """
import json, time
import keras
from jena.book import BOOK_MODELS
from jena.data import load
from jena.train import DataCache, Fidelity, train

cache = DataCache(load({source!r}), "book2")
out = {{"backend": keras.backend.backend()}}
for name in {models!r}:
    stamps = []
    fid = Fidelity(max_epochs=2, steps_per_epoch={steps}, validation_steps=1, patience=5)
    started = time.perf_counter()
    result = train(BOOK_MODELS[name].config, cache, fid,
                   on_epoch=lambda e, m: stamps.append(time.perf_counter()))
    out[name] = {{"first_s": stamps[0] - started, "epoch_s": stamps[1] - stamps[0],
                 "val_mae": result.history[-1]["val_mae"], "state": result.state}}
print(json.dumps(out))
"""

MODELS = ("lstm", "stacked_gru_dropout")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="batches of 256 per epoch")
    parser.add_argument("--json", default=None, help="where to write the figures")
    args = parser.parse_args()
    backends = ["tensorflow"] + (["jax"] if has_jax() else [])
    code = CHILD.format(source=SYNTHETIC, models=MODELS, steps=args.steps)
    got: dict[str, Any] = {b: run_child(code, b) for b in backends}
    rows = []
    for name in MODELS:
        row: list[Any] = [name]
        for b in backends:
            row.append(f"{got[b][name]['epoch_s'] / args.steps * 1000:.0f} ms")
            row.append(f"{got[b][name]['first_s']:.1f} s")
        if "jax" in got:
            row.append(f"{got['jax'][name]['epoch_s'] / got['tensorflow'][name]['epoch_s']:.2f}x")
        rows.append(row)
    headers = ["model"]
    for b in backends:
        headers += [f"{b} /batch", f"{b} 1st epoch"]
    if "jax" in got:
        headers.append("jax / tf time")
    print(f"book2 epoch slice: {args.steps} batches of 256 (second epoch timed), {SYNTHETIC}")
    print(table(headers, rows))
    if "jax" not in got:
        print("JAX is not installed: pip install jax")
    figures = {
        "steps": args.steps,
        "backends": backends,
        "seconds_per_batch": {
            b: {m: got[b][m]["epoch_s"] / args.steps for m in MODELS} for b in backends
        },
        "first_epoch_s": {b: {m: got[b][m]["first_s"] for m in MODELS} for b in backends},
    }
    if "jax" in got:
        figures["jax_over_tf"] = {m: got["jax"][m]["epoch_s"] / got["tensorflow"][m]["epoch_s"]
                                  for m in MODELS}  # fmt: skip
    save("backends", figures, args.json)


if __name__ == "__main__":
    main()
