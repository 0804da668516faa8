"""Residual forecasting on or off, in the default sweep (issue 14).

The default sweep (sweeps/default.toml: book warm start, TPE, median pruning, its fidelity) is
run twice per record with the same seed and trial count: once with ``residual = true`` fixed,
once with ``residual = false``. Printed side by side: best validation MAE, its skill against
persistence on the same windows, and the share of completed trials that beat persistence.

    python benchmarks/residual.py                       # full synthetic record and 43,200 rows
    python benchmarks/residual.py --trials 12 --data synthetic:43200
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


def arm(data: str, residual: bool, trials: int, minutes: float, root: Path) -> dict[str, Any]:
    from _sweeps import default_sweep

    from jena import tracking as T
    from sweeps import run_sweep

    label = data.replace(":", "-")
    name = f"{label}-residual-{'on' if residual else 'off'}"
    fixed = f"space.fixed={{normalise_target=true, residual={str(residual).lower()}}}"
    cfg = default_sweep(name, data, trials, minutes, root, fixed)
    started = time.monotonic()
    summary = run_sweep(cfg)
    frame = T.completed_trials(T.trials_frame(cfg.storage.tracking_uri, name))
    skills = frame["val_skill"].map(T.finite).dropna()
    best = frame.iloc[0] if len(frame) else None
    return {
        "data": data,
        "residual": residual,
        "trials": summary.finished,
        "completed": len(frame),
        "best_val_mae": None if best is None else float(best["val_mae"]),
        "best_val_skill": None if best is None else T.finite(best["val_skill"]),
        "share_beating_persistence": float((skills > 0).mean()) if len(skills) else 0.0,
        "wall_s": time.monotonic() - started,
        "fit_s": summary.timing.fit_s if summary.timing else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", action="append", default=None,
                        help="records (default: synthetic and synthetic:43200)")  # fmt: skip
    parser.add_argument("--trials", type=int, default=10, help="trials per arm (default 10)")
    parser.add_argument("--minutes", type=float, default=8.0, help="time budget per arm")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/residual.json"))
    args = parser.parse_args(argv)
    from jena.quiet import import_keras_quietly

    import_keras_quietly()
    rows = []
    with tempfile.TemporaryDirectory(prefix="jena-bench-residual-") as tmp:
        for data in args.data or ["synthetic", "synthetic:43200"]:
            for residual in (False, True):
                row = arm(data, residual, args.trials, args.minutes, Path(tmp))
                rows.append(row)
                print(f"  {data:18} residual={residual!s:5}  best {row['best_val_mae']}  "
                      f"({row['wall_s']:.0f} s)", file=sys.stderr, flush=True)  # fmt: skip
    print(f"\n{'record':18} {'residual':>8} {'trials':>6} {'best val MAE':>12} {'skill':>7} "
          f"{'beat persistence':>16} {'fit s':>6}")  # fmt: skip
    for r in rows:
        best = "—" if r["best_val_mae"] is None else f"{r['best_val_mae']:.4f}"
        skill = "—" if r["best_val_skill"] is None else f"{r['best_val_skill']:+.1%}"
        share = f"{r['share_beating_persistence']:.0%} of {r['completed']}"
        print(f"{r['data']:18} {r['residual']!s:>8} {r['trials']:>6} {best:>12} {skill:>7} "
              f"{share:>16} {r['fit_s']:>6.0f}")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "trials": args.trials}, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
