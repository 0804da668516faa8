"""A sweep's own costs, on a short sweep run as a user runs it (``jena sweep`` in a fresh process):

* ``overhead``: the share of the sweep's wall time spent outside ``model.fit`` (tracking, model
  saving, data preparation, the sampler, and the process's own start: launch to first trial);
  goal ≤ 3 %.
* ``pruning``: the same sweep (same seed, same number of trials, TPE) with and without median
  pruning: epochs trained and the best validation MAE; goal: within 2 % of the unpruned best
  with ≤ 40 % of its epochs.
* ``workers``: trials per minute with 1 and 2 local worker processes (and 4 where the machine
  has the cores).

    python benchmarks/bench_sweep.py overhead|pruning|workers [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import save, sweep_sets, table
from _sweeps import run_sweep_cli


def overhead(quick: bool) -> dict[str, Any]:
    trials = 4 if quick else 6
    steps = 20 if quick else 60
    r = run_sweep_cli(sweep_sets(f"fidelity.steps_per_epoch={steps}", "fidelity.max_epochs=3",
                                 'sampler.type="random"', 'pruner.type="none"'),
                      trials=trials, name="overhead")  # fmt: skip
    inside = r["fit_s"]
    print(f"short sweep: {trials} trials x 3 epochs x {steps} batches of 256 (dense/lstm/gru)")
    print(table(["", "seconds", "share of process"], [
        ["process (launch to exit)", f"{r['process_s']:.1f}", "100%"],
        ["inside model.fit", f"{inside:.1f}", f"{inside / r['process_s']:.1%}"],
        ["process start (launch to first trial)", f"{r['start_s']:.1f}",
         f"{r['start_s'] / r['process_s']:.1%}"],
        ["outside fit, within the run (summary)", f"{r['wall_s'] - inside:.1f}",
         f"{r['outside_fit_fraction']:.1%} of run wall"],
    ]))  # fmt: skip
    print(
        f"outside model.fit: {r['outside_fit_with_start']:.1%} of the process "
        f"({r['outside_fit_fraction']:.1%} once started); goal <= 3%"
    )
    return {"trials": trials, "steps_per_epoch": steps, "process_s": r["process_s"],
            "start_s": r["start_s"], "fit_s": inside, "run_wall_s": r["wall_s"],
            "outside_fit_fraction_run": r["outside_fit_fraction"],
            "outside_fit_fraction": r["outside_fit_with_start"],
            "goal_met": r["outside_fit_with_start"] <= 0.03}  # fmt: skip


def pruning(quick: bool) -> dict[str, Any]:
    trials = 8 if quick else 12
    common = sweep_sets("fidelity.max_epochs=6", "fidelity.steps_per_epoch=8",
                        "fidelity.patience=6", 'sampler.type="tpe"',
                        "sampler.options={n_startup_trials=5}")  # fmt: skip
    runs = {
        "no pruning": run_sweep_cli([*common, 'pruner.type="none"'], trials=trials, name="np"),
        "median pruning": run_sweep_cli([*common, 'pruner.type="median"',
                                         "pruner.options={n_startup_trials=4, "
                                         "n_warmup_steps=1}"], trials=trials, name="mp"),
    }  # fmt: skip
    full, pruned = runs["no pruning"], runs["median pruning"]
    best = {k: r["best"]["val_mae"] for k, r in runs.items()}
    epochs_ratio = pruned["epochs"] / full["epochs"]
    best_ratio = best["median pruning"] / best["no pruning"]
    print(f"TPE, seed 0, {trials} trials, at most 6 epochs x 8 batches each")
    print(table(["", "epochs", "wall s", "best val MAE °C", "pruned"], [
        [k, r["epochs"], f"{r['wall_s']:.0f}", f"{best[k]:.4f}", r["counts"]["pruned"]]
        for k, r in runs.items()]))  # fmt: skip
    print(
        f"pruning: {epochs_ratio:.0%} of the epochs, best {best_ratio - 1:+.1%} vs unpruned; "
        f"goal: <= 40% of the epochs, within 2%"
    )
    return {"trials": trials, "epochs": {k: r["epochs"] for k, r in runs.items()},
            "best_val_mae": best, "wall_s": {k: r["wall_s"] for k, r in runs.items()},
            "epochs_ratio": epochs_ratio, "best_ratio": best_ratio,
            "goal_met": epochs_ratio <= 0.40 and best_ratio <= 1.02}  # fmt: skip


def workers(quick: bool) -> dict[str, Any]:
    trials = 6 if quick else 8
    counts = [1, 2] + ([4] if (os.cpu_count() or 1) >= 8 else [])
    sets = sweep_sets("fidelity.max_epochs=2", "fidelity.steps_per_epoch=20",
                      'sampler.type="random"', 'pruner.type="none"')  # fmt: skip
    runs = {w: run_sweep_cli(sets, trials=trials, workers=w, name=f"w{w}") for w in counts}
    base = runs[1]["trials_per_minute"]
    print(
        f"{trials} trials of 2 epochs x 20 batches (random search, no pruning), "
        f"{os.cpu_count()} cores"
    )
    print(table(["workers", "wall s", "trials/min", "vs 1 worker"], [
        [w, f"{r['wall_s']:.0f}", f"{r['trials_per_minute']:.2f}",
         f"{r['trials_per_minute'] / base:.2f}x"] for w, r in runs.items()]))  # fmt: skip
    rates = {str(w): r["trials_per_minute"] for w, r in runs.items()}
    return {
        "trials": trials,
        "cores": os.cpu_count(),
        "trials_per_minute": rates,
        "speedup": {w: rate / base for w, rate in rates.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("overhead", "pruning", "workers"))
    parser.add_argument("--quick", action="store_true", help="fewer, shorter trials")
    parser.add_argument("--json", default=None, help="where to write the figures")
    args = parser.parse_args()
    figures = {"overhead": overhead, "pruning": pruning, "workers": workers}[args.what](args.quick)
    save(args.what, figures, args.json)


if __name__ == "__main__":
    main()
