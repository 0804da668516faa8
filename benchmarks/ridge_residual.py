"""What a network on the ridge needs (issue 28): one recurrent configuration trained with its
output added to the ridge's forecast (``residual = "ridge"``) under a few learning rates, with
recurrent dropout, and in °C instead of the normalised temperature (the residual's scale), beside
the same network on persistence. Each arm: a fixed number of epochs, the best epoch chosen by
validation MAE; that epoch's model scored on every validation and test target of the split (the
same rows for every arm, the ridge and persistence), with its skill against the ridge and a
day-block bootstrap interval.

    python benchmarks/ridge_residual.py --data synthetic:52704 --preset blocked
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# label -> overrides of the base configuration
ARMS: dict[str, dict[str, Any]] = {
    "persistence": {"residual": "persistence"},
    "ridge": {"residual": "ridge"},
    "ridge lr 3e-4": {"residual": "ridge", "learning_rate": 3e-4},
    "ridge lr 1e-4": {"residual": "ridge", "learning_rate": 1e-4},
    "ridge dropout 0.25": {"residual": "ridge", "dropout": 0.25, "recurrent_dropout": 0.25},
    "ridge in °C": {"residual": "ridge", "normalise_target": False},
}


def forecasts(config: Any, model: Any, full: Any, split: str, ridge: Any) -> Any:
    """The model's forecasts in °C for every window of ``split`` of ``full`` (the record with
    its test rows; the training statistics are the same). ``ridge``: the ridge's forecast per
    row.  # (windows,)"""
    r, n = config.sampling_rate, config.sequence_length
    windows = full.windows(split, sampling_rate=r, sequence_length=n, batch_size=256)
    out = model.predict(windows, verbose=0).reshape(-1)
    scale = full.target_std if config.normalise_target else 1.0
    if config.residual == "ridge":  # trained on (t − ridge) / scale
        return out * scale + ridge[full.starts(split, r, n) + full.preset.offset(r, n)]
    # none / persistence: the temperature in training units
    return out * scale + (full.target_mean if config.normalise_target else 0.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="synthetic:52704")
    parser.add_argument("--preset", default="blocked")
    parser.add_argument("--architecture", default="gru")
    parser.add_argument("--units", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=100, help="batches per epoch")
    parser.add_argument("--seeds", default="0", help="comma-separated")
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ridge_residual.json"))
    args = parser.parse_args()

    from jena.quiet import import_keras_quietly

    import_keras_quietly()
    import numpy as np

    from jena.config import TrialConfig
    from jena.data import load
    from jena.linear import ridge_base, shared_ridge
    from jena.prepare import prepare
    from jena.train import DataCache, Fidelity, train
    from jena.uncertainty import compare, day_of

    arms = [a.strip() for a in args.arms.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"ridge-residual probe on {args.data} ({args.preset}): {len(arms)} arms x "
          f"{len(seeds)} seed(s), {args.architecture}({args.units}), {args.epochs} epochs of "
          f"{args.steps} batches; about 1-2 minutes each on 2 cores", flush=True)  # fmt: skip
    cache = DataCache(load(args.data), args.preset)
    base = TrialConfig(architecture=args.architecture, rnn_units=(args.units,),
                       normalise_target=True)  # fmt: skip
    fidelity = Fidelity(max_epochs=args.epochs, steps_per_epoch=args.steps,
                        validation_steps=None, patience=args.epochs)  # fmt: skip
    full = prepare(cache.dataset, cache.preset, include_test=True)  # scored here only
    p = full
    offset = p.preset.offset()
    ridge_all = ridge_base(full, shared_ridge(cache.get()))  # fitted on the training rows
    splits: dict[str, Any] = {}
    for split in ("val", "test"):
        starts = p.starts(split)
        targets = starts + offset
        actual = p.temperature[targets]
        splits[split] = {"starts": starts, "targets": targets, "actual": actual,
                         "ridge": ridge_all[targets] - actual,
                         "persistence": p.persistence_at(targets)}  # fmt: skip
        assert np.isfinite(splits[split]["ridge"]).all(), split
    rows = []
    for label in arms:
        for seed in seeds:
            config = replace(base, seed=seed, **ARMS[label])
            curve: list[float] = []
            started = time.perf_counter()
            result = train(config, cache, fidelity, on_epoch=_recorder(curve))
            seconds = time.perf_counter() - started
            row: dict[str, Any] = {"arm": label, "seed": seed, "best_epoch": result.best_epoch,
                                   "train_val_mae": result.val_mae, "curve": curve,
                                   "seconds": seconds}  # fmt: skip
            for split, s in splits.items():
                error = forecasts(config, result.model, full, split, ridge_all) - s["actual"]
                days = day_of(s["targets"])
                vs_ridge = compare(error, s["ridge"], days)
                vs_pers = compare(error, s["persistence"], days)
                row[split] = {"mae": vs_ridge.mae.estimate, "vs_ridge": vs_ridge.to_dict(),
                              "vs_persistence": vs_pers.to_dict(),
                              "windows": len(error)}  # fmt: skip
            # the check: the model scored here is the one validation chose
            assert abs(row["val"]["mae"] - result.val_mae) < 1e-3, (row["val"]["mae"], result)
            rows.append(row)
            v, t = row["val"]["vs_ridge"], row["test"]["vs_ridge"]
            print(
                f"  {label:<20} seed {seed}: best epoch {result.best_epoch} of {len(curve)} "
                f"(val MAE by epoch {' '.join(f'{x:.3f}' for x in curve)}), {seconds:.0f} s; "
                f"val {row['val']['mae']:.3f} ({_pct(v['skill'])} vs ridge), "
                f"test {row['test']['mae']:.3f} ({_pct(t['skill'])} vs ridge)",
                flush=True,
            )
    ridge = {split: float(np.mean(np.abs(s["ridge"]))) for split, s in splits.items()}
    pers = {split: float(np.mean(s["persistence"])) for split, s in splits.items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"data": args.data, "preset": args.preset,
                                    "config": base.to_dict(), "epochs": args.epochs,
                                    "steps": args.steps, "ridge": ridge, "persistence": pers,
                                    "rows": rows}, indent=1, default=str))  # fmt: skip
    print(
        f"\nsame targets for every row: {len(splits['val']['starts']):,} validation, "
        f"{len(splits['test']['starts']):,} test; ridge val {ridge['val']:.3f} / test "
        f"{ridge['test']:.3f}, persistence {pers['val']:.3f} / {pers['test']:.3f} °C"
    )
    print(
        "| arm | seed | best epoch | val MAE | val skill vs ridge [95 %] | test MAE | "
        "test skill vs ridge [95 %] |\n|---|---|---|---|---|---|---|"
    )
    for r in rows:
        print(
            f"| {r['arm']} | {r['seed']} | {r['best_epoch']} | {r['val']['mae']:.3f} | "
            f"{_pct(r['val']['vs_ridge']['skill'])} | {r['test']['mae']:.3f} | "
            f"{_pct(r['test']['vs_ridge']['skill'])} |"
        )
    print(f"written: {args.out}")
    return 0


def _recorder(curve: list[float]) -> Any:
    return lambda epoch, metrics: curve.append(metrics["val_mae"])


def _pct(interval: dict[str, float]) -> str:
    return (f"{interval['estimate']:+.1%} [{interval['low']:+.1%}, "
            f"{interval['high']:+.1%}]")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
