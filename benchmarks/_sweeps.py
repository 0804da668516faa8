"""Run a short sweep exactly as a user does (``python -m jena.cli sweep ... --json`` in a fresh
process and an empty folder) and read back what it did: its summary, when its process started
and when its first trial began, and every trial's epochs and state from MLflow."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import env_for


def run_sweep_cli(sets: list[str], *, backend: str = "tensorflow", name: str = "bench",
                  workers: int = 1, trials: int = 8, keep: Path | None = None,
                  timeout: float = 1200) -> dict[str, Any]:  # fmt: skip
    """The sweep's summary plus ``process_s`` (launch to exit), ``start_s`` (launch to the
    first trial's run), ``trials`` (number, state, epochs, fit_s) and ``trials_per_minute``."""
    folder = Path(tempfile.mkdtemp(prefix="jena-bench-", dir=keep))
    args = [sys.executable, "-m", "jena.cli", "sweep", "default", "--name", name,
            "--trials", str(trials), "--workers", str(workers), "--json"]  # fmt: skip
    for s in sets:
        args += ["--set", s]
    launched = time.time()
    t0 = time.perf_counter()
    proc = subprocess.run(args, cwd=folder, env=env_for(backend, JENA_DATA_DIR=str(folder)),
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip
    process_s = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"sweep failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    summary = json.loads(proc.stdout[proc.stdout.index("{") :])
    rows = _trials(folder, name)
    first = min(t["start"] for t in rows)
    done = [t for t in rows if t["state"] in ("completed", "pruned")]
    timing = summary["timing"]
    return {
        "counts": summary["counts"],
        "best": summary["best"],
        **{k: timing[k] for k in ("wall_s", "workers_wall_s", "fit_s", "outside_fit_fraction")},
        "process_s": process_s,
        "start_s": first - launched,
        "outside_fit_with_start": 1 - float(timing["fit_s"]) / (process_s * workers),
        "trials": rows,
        "epochs": sum(t["epochs"] for t in rows),
        "trials_per_minute": len(done) / (float(timing["wall_s"]) / 60),
    }


def _trials(folder: Path, name: str) -> list[dict[str, Any]]:
    from jena import tracking
    from jena.tracking import names

    uri = f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"
    out = []
    for run in tracking.find_runs(uri, name, f"tags.{names.TAG_RUN_TYPE} = '{names.RUN_TRIAL}'"):
        out.append({
            "number": int(run.tags[names.TAG_TRIAL_NUMBER]),
            "state": run.tags.get(names.TAG_STATE),
            "epochs": len(tracking.metric_history(uri, run.run_id, names.METRIC_VAL_MAE)),
            "best_val_mae": run.metrics.get(names.METRIC_BEST_VAL),
            "fit_s": run.metrics.get(names.METRIC_FIT_S),
            "start": (run.start_time or 0) / 1000,
        })  # fmt: skip
    return sorted(out, key=lambda t: t["number"])


def default_sweep(name: str, data: str, trials: int, minutes: float, root: Path,
                  *sets: str) -> Any:  # fmt: skip
    """sweeps/default.toml in this process, named ``name``, on ``data``, with its MLflow store
    and Optuna journal under ``root``, then ``sets`` (``--set`` overrides)."""
    from sweeps import apply_overrides, load

    return apply_overrides(load("default"), [
        f"name={json.dumps(name)}",
        f"data.source={json.dumps(data)}",
        f"trials={trials}",
        f"timeout_minutes={minutes}",
        f"storage.tracking_uri={json.dumps(f'sqlite:///{root}/{name}.db')}",
        f"storage.optuna={json.dumps(f'journal:{root}/{name}.journal')}",
        *sets,
    ])  # fmt: skip
