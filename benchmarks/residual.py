"""What the network's output is added to, in the default sweep (issues 14, 28).

The default sweep (sweeps/default.toml: book warm start, TPE, median pruning, its fidelity) is
run once per arm and record with the same seed and trial count, ``residual`` fixed to the arm
(``none``, ``persistence``: the last temperature, ``ridge``: the linear reference's forecast).
Printed side by side: best validation MAE, its skill against persistence and against the ridge
(all on the sweep's validation targets, the same rows for every trial and arm), and the share
of completed trials that beat each.

    python benchmarks/residual.py                       # full synthetic record and 43,200 rows
    python benchmarks/residual.py --data synthetic:52704 --preset blocked --arms persistence,ridge
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def arm(
    data: str, residual: str, trials: int, minutes: float, root: Path, preset: str | None
) -> dict[str, Any]:
    from _sweeps import default_sweep

    from jena import tracking
    from sweeps import run_sweep

    label = data.replace(":", "-")
    name = f"{label}-residual-{residual}"
    fixed = f'space.fixed={{normalise_target=true, residual="{residual}"}}'
    sets = [fixed] + ([f'data.preset="{preset}"'] if preset else [])
    cfg = default_sweep(name, data, trials, minutes, root, *sets)
    started = time.monotonic()
    summary = run_sweep(cfg)
    frame = tracking.completed_trials(tracking.trials_frame(cfg.storage.tracking_uri, name))
    maes = frame["val_mae"].map(tracking.finite).dropna()
    best = frame.iloc[0] if len(frame) else None
    ridge, base = summary.reference_val_mae, summary.baseline_val_mae
    return {
        "data": data,
        "preset": preset,
        "residual": residual,
        "trials": summary.finished,
        "completed": len(frame),
        "val_targets": summary.val_targets,
        "best_val_mae": None if best is None else float(best["val_mae"]),
        "best_val_skill": None if best is None else tracking.finite(best["val_skill"]),
        "persistence_val_mae": base,
        "ridge_val_mae": ridge,
        "best_skill_vs_ridge": None if best is None or not ridge else 1 - best["val_mae"] / ridge,
        "share_beating_persistence": float((maes < base).mean()) if len(maes) else 0.0,
        "share_beating_ridge": float((maes < ridge).mean()) if len(maes) and ridge else 0.0,
        "wall_s": time.monotonic() - started,
        "fit_s": summary.timing.fit_s if summary.timing else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", action="append", default=None,
                        help="records (default: synthetic and synthetic:43200)")  # fmt: skip
    parser.add_argument("--trials", type=int, default=10, help="trials per arm (default 10)")
    parser.add_argument("--minutes", type=float, default=8.0, help="time budget per arm")
    parser.add_argument("--preset", default=None, help="the split (default: the sweep file's)")
    parser.add_argument(
        "--arms",
        default="none,persistence",
        help="residual choices, comma-separated (default: none,persistence)",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/residual.json"))
    args = parser.parse_args(argv)
    from jena.quiet import import_keras_quietly

    import_keras_quietly()
    rows = []
    with tempfile.TemporaryDirectory(prefix="jena-bench-residual-") as tmp:
        for data in args.data or ["synthetic", "synthetic:43200"]:
            for residual in args.arms.split(","):
                row = arm(data, residual.strip(), args.trials, args.minutes, Path(tmp),
                          args.preset)  # fmt: skip
                rows.append(row)
                print(f"  {data:18} residual={residual:11}  best {row['best_val_mae']}  "
                      f"({row['wall_s']:.0f} s)", file=sys.stderr, flush=True)  # fmt: skip
    print(f"\n{'record':18} {'residual':>11} {'targets':>7} {'trials':>6} {'best val MAE':>12} "
          f"{'vs persistence':>14} {'vs ridge':>8} {'beat pers.':>12} {'beat ridge':>12} "
          f"{'fit s':>6}")  # fmt: skip
    for r in rows:
        best = "—" if r["best_val_mae"] is None else f"{r['best_val_mae']:.4f}"
        skill = "—" if r["best_val_skill"] is None else f"{r['best_val_skill']:+.1%}"
        ridge = "—" if r.get("best_skill_vs_ridge") is None else f"{r['best_skill_vs_ridge']:+.1%}"
        share = f"{r['share_beating_persistence']:.0%} of {r['completed']}"
        beat = f"{r.get('share_beating_ridge', 0):.0%} of {r['completed']}"
        print(f"{r['data']:18} {r['residual']!s:>11} {r.get('val_targets') or '':>7} "
              f"{r['trials']:>6} {best:>12} {skill:>14} {ridge:>8} {share:>12} {beat:>12} "
              f"{r['fit_s']:>6.0f}")  # fmt: skip
    print("(synthetic records: gains are upper bounds for the real station)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "trials": args.trials}, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
