"""Sessions: tests, lint, bench, and the user's: sweep (the main job), evaluate, report, predict,
ui.

The user's sessions share ONE environment (``.nox/app``, built once, rebuilt only when
``pyproject.toml`` changes), and a session that needs an argument checks it before building
anything. Arguments after ``--`` go to the command, e.g.
``nox -s sweep -- --data synthetic --trials 5``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import sys
from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
PYTHON = "3.11"
ROOT = Path(__file__).parent
APP = ROOT / ".nox" / "app"  # the environment the user's sessions share
STORE = ROOT / "mlruns" / "mlflow.db"


def _bin(name: str) -> str:
    return str(APP / ("Scripts" if os.name == "nt" else "bin") / name)


def _app(session: nox.Session) -> None:
    """Create (once) and update (when pyproject.toml changed) the shared environment."""
    stamp = APP / ".jena-installed"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text() == want and Path(_bin("jena")).exists():
        return
    if not Path(_bin("python")).exists():
        python = shutil.which(f"python{PYTHON}") or sys.executable
        session.run(python, "-m", "venv", str(APP), external=True)
    session.run(_bin("python"), "-m", "pip", "install", "-q", "-e", str(ROOT), external=True)
    stamp.write_text(want)


def _latest_sweep() -> tuple[str, str] | None:
    """(name, experiment id) of the most recently run sweep of the embedded store (read with
    sqlite3: nothing is installed yet)."""
    if not STORE.is_file():
        return None
    query = (
        "SELECT e.name, e.experiment_id FROM runs r "
        "JOIN experiments e ON e.experiment_id = r.experiment_id "
        "JOIN tags t ON t.run_uuid = r.run_uuid "
        "WHERE t.key = 'run_type' AND t.value = 'sweep' AND e.lifecycle_stage = 'active' "
        "ORDER BY r.start_time DESC LIMIT 1"
    )
    try:
        with sqlite3.connect(f"file:{STORE}?mode=ro", uri=True) as db:
            row = db.execute(query).fetchone()
    except sqlite3.Error:
        return None
    return (str(row[0]), str(row[1])) if row else None


def _experiment_args(session: nox.Session) -> list[str]:
    """``--experiment NAME`` given, or the most recent sweep; an error before installing."""
    args = list(session.posargs)
    if "--experiment" in args or any(a.startswith("--experiment=") for a in args):
        return args
    if "--tracking-uri" in args:  # another store: the command itself finds the latest sweep
        return args
    latest = _latest_sweep()
    if latest is None:
        session.error(f"no sweep in {STORE.relative_to(ROOT)} yet: run `nox -s sweep` first")
    session.log(f"--experiment {latest[0]} (the most recent sweep; pass --experiment NAME)")
    return ["--experiment", latest[0], *args]


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the test suite (slow tests too: add `-- -m 'not slow'` to skip them)."""
    session.install("-e", ".[test]")
    # worksteal: a worker that runs out of tests takes the rest of the other's queue, so the
    # minutes-long real-process tests do not leave one core idle at the end
    session.run("pytest", *(session.posargs or ["-q", "-n", "auto", "--dist", "worksteal"]))


@nox.session(venv_backend="none")
def sweep(session: nox.Session) -> None:
    """Run a sweep (default: sweeps/default.toml on the real data), tracked in mlruns/."""
    _app(session)
    session.run(_bin("jena"), "sweep", *session.posargs, external=True)


@nox.session(venv_backend="none")
def evaluate(session: nox.Session) -> None:
    """Evaluate a sweep's best model once on the test split (default: the latest sweep).

    `nox -s evaluate -- --experiment NAME`
    """
    args = _experiment_args(session)
    _app(session)
    session.run(_bin("jena"), "best", *args, external=True)


@nox.session(venv_backend="none")
def report(session: nox.Session) -> None:
    """Write the HTML report of a sweep (default: the latest one).

    `nox -s report -- --experiment NAME`
    """
    args = _experiment_args(session)
    _app(session)
    session.run(_bin("jena"), "report", *args, external=True)


@nox.session(venv_backend="none")
def predict(session: nox.Session) -> None:
    """The forecast 24 h after the last row of a CSV: `nox -s predict -- --data LAST_DAYS.csv`
    (default model: models:/jena-temperature@champion)."""
    args = list(session.posargs)
    if "--data" not in args and not any(a.startswith("--data=") for a in args):
        session.error("give the records to forecast from: nox -s predict -- --data LAST_DAYS.csv")
    _app(session)
    session.run(_bin("jena"), "predict", *args, external=True)


@nox.session(venv_backend="none")
def ui(session: nox.Session) -> None:
    """Open the MLflow UI on the embedded store in mlruns/ (http://127.0.0.1:5000)."""
    _app(session)
    latest = _latest_sweep()
    if latest:
        session.log(
            f"the trials of sweep {latest[0]!r}: http://127.0.0.1:5000/#/experiments/"
            f"{latest[1]}/runs?workflowType=machine_learning"
        )
    session.run(_bin("mlflow"), "ui", "--backend-store-uri", f"sqlite:///{STORE}",
                *session.posargs, external=True)  # fmt: skip


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (lint + format check) and mypy."""
    session.install("-e", ".[lint,test]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """The CPU benchmark suite (windowing, platform overhead, pruning, workers, backends, packed
    trials) and one summary table; figures in benchmarks/results/ and benchmarks/RESULTS.md.
    `-- --quick` shortens the sweeps, `-- --only packed,backends` picks some. The accelerator
    path is `python benchmarks/gpu.py` on a GPU machine."""
    session.install("-e", ".", "jax")
    session.run("python", "benchmarks/run_all.py", *session.posargs)


@nox.session(python=PYTHON)
def benchmark(session: nox.Session) -> None:
    """Windowing speed and memory against keras.utils.timeseries_dataset_from_array."""
    session.install("-e", ".")
    session.run("python", "benchmarks/bench_windows.py", *session.posargs)
