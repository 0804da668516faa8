"""Sessions: tests, sweep (the main job), evaluate, report, ui, lint, benchmark.

Arguments after ``--`` go to the command, e.g. ``nox -s sweep -- --data synthetic --trials 5``.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
PYTHON = "3.11"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the test suite (slow tests too: add `-- -m 'not slow'` to skip them)."""
    session.install("-e", ".[test]")
    session.run("pytest", *(session.posargs or ["-q"]))


@nox.session(python=PYTHON)
def sweep(session: nox.Session) -> None:
    """Run a sweep (default: sweeps/default.toml on the real data), tracked in mlruns/."""
    session.install("-e", ".")
    session.run("jena", "sweep", *session.posargs)


@nox.session(python=PYTHON)
def evaluate(session: nox.Session) -> None:
    """Evaluate a sweep's best model once on the test split.

    `nox -s evaluate -- --experiment NAME`
    """
    session.install("-e", ".")
    session.run("jena", "best", *session.posargs)


@nox.session(python=PYTHON)
def report(session: nox.Session) -> None:
    """Write the HTML report of a sweep: `nox -s report -- --experiment NAME`."""
    session.install("-e", ".")
    session.run("jena", "report", *session.posargs)


@nox.session(python=PYTHON)
def ui(session: nox.Session) -> None:
    """Open the MLflow UI on the embedded store in mlruns/ (http://127.0.0.1:5000)."""
    session.install("mlflow>=3.1")
    session.run(
        "mlflow",
        "ui",
        "--backend-store-uri",
        "sqlite:///mlruns/mlflow.db",
        "--default-artifact-root",
        "mlruns/artifacts",
        *session.posargs,
    )


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (lint + format check) and mypy."""
    session.install("-e", ".[lint,test]")
    session.run("ruff", "check", ".")
    session.run("mypy")


@nox.session(python=PYTHON)
def benchmark(session: nox.Session) -> None:
    """Windowing speed and memory against keras.utils.timeseries_dataset_from_array."""
    session.install("-e", ".")
    session.run("python", "benchmarks/bench_windows.py", *session.posargs)
