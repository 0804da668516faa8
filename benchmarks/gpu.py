"""The accelerator path (Keras 3 on JAX): (a) one full book2 epoch (≈819 batches of 256) of the
book's dense, lstm, lstm_dropout, stacked_gru_dropout and bilstm through the project's trainer,
against reference figures measured on one H100 with Keras 3 + JAX and plain in-memory arrays
(goal ≤ 1.1× them); (b) trials per hour with 1, 4 and 8 LSTM(16) trials sharing the device, as
separate processes (``--workers``-style, XLA preallocation off) and as packed trials.

Without an accelerator it runs on the CPU at a tiny size (``--tiny``, the default there: a slice
of an epoch, projected to 819 batches; short trials) and says so: CPU figures say nothing about
the H100 goals.

    python benchmarks/gpu.py [--tiny | --full] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import accelerator, has_jax, run_child, save, table
from _packing import packed_rates, process_rates

H100_S = {
    "dense": 2.6,
    "lstm": 5.6,
    "lstm_dropout": 8.8,
    "stacked_gru_dropout": 18.4,
    "bilstm": 9.3,
}  # one full book2 epoch, Keras 3 + JAX, plain arrays (the figures)
FULL_EPOCH = 819

EPOCH = """
import json, time
from jena.book import BOOK_MODELS
from jena.data import load
from jena.train import DataCache, Fidelity, train

cache = DataCache(load({source!r}), "book2")
out = {{}}
for name in {models!r}:
    stamps = []
    fid = Fidelity(max_epochs=2, steps_per_epoch={steps}, validation_steps=1, patience=5)
    train(BOOK_MODELS[name].config, cache, fid,
          on_epoch=lambda e, m: stamps.append(time.perf_counter()))
    out[name] = stamps[1] - stamps[0]  # the second epoch (the first compiles)
print(json.dumps(out))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--tiny", action="store_true", help="CPU size (default without a GPU)")
    size.add_argument("--full", action="store_true", help="full size (default with a GPU)")
    parser.add_argument("--json", default=None, help="where to write the figures")
    args = parser.parse_args()
    if not has_jax():
        print("the accelerator path runs on JAX: pip install jax (or jax[cuda12]); skipped")
        save("gpu", {"skipped": "JAX is not installed"}, args.json)
        return
    device = accelerator()
    tiny = args.tiny or (device is None and not args.full)
    where = device or f"CPU ({os.cpu_count()} cores)"
    if tiny:
        print(f"no accelerator here: running on the {where} at a tiny size; these figures say "
              "nothing about the H100 goals")  # fmt: skip
    steps = 6 if tiny else FULL_EPOCH
    source = "synthetic:100000:7" if tiny else "synthetic"  # the full record's length
    models = list(H100_S)
    epoch = run_child(EPOCH.format(source=source, models=models, steps=steps), "jax",
                      timeout=3600)  # fmt: skip
    projected = {m: epoch[m] / steps * FULL_EPOCH for m in models}
    print(
        f"(a) one book2 epoch ({FULL_EPOCH} batches of 256; "
        f"{'projected from ' + str(steps) + ' batches' if tiny else 'measured'}), JAX on {where}"
    )
    print(table(["model", "seconds", "H100 reference", "ratio", "goal <= 1.1x"], [
        [m, f"{projected[m]:.1f}", f"{H100_S[m]:.1f}", f"{projected[m] / H100_S[m]:.2f}x",
         "- (CPU)" if tiny else ("met" if projected[m] <= 1.1 * H100_S[m] else "not met")]
        for m in models]))  # fmt: skip

    counts = (1, 4, 8)
    trial = {"steps": 4, "val": 1} if tiny else {"steps": 200, "val": 20}
    procs = process_rates(counts, steps=trial["steps"], val=trial["val"])
    packs = packed_rates(packs=counts, alone=0, steps=trial["steps"], val=trial["val"])
    base = procs["1"]["trials_per_hour"]
    print(f"(b) LSTM(16) trials of {trial['steps']} batches sharing the device ({where})")
    rows: list[list[Any]] = []
    for n in counts:
        p, k = procs[str(n)], packs[str(n)]
        rows.append(
            [
                n,
                f"{p['trials_per_hour']:,.0f}",
                f"{p['trials_per_hour'] / base:.2f}x",
                f"{k['trials_per_hour']:,.0f}",
                f"{k['trials_per_hour'] / base:.2f}x",
            ]
        )
    print(table(["trials at once", "processes: trials/h", "vs 1", "packed: trials/h",
                 "vs 1 process"], rows))  # fmt: skip
    print("(processes: launch to exit, each compiling its trial; packed: one compiled program)")
    save("gpu", {"device": where, "tiny": tiny, "epoch_steps": steps,
                 "epoch_s_projected": projected, "h100_reference_s": H100_S,
                 "epoch_vs_h100": {m: projected[m] / H100_S[m] for m in models},
                 "processes": procs, "packed": packs,
                 "packed_8_vs_one_process": packs["8"]["trials_per_hour"] / base},
         args.json)  # fmt: skip


if __name__ == "__main__":
    main()
