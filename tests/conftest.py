"""Shared fixtures and helpers: tiny synthetic data, isolated MLflow/Optuna stores under
tmp_path, tiny sweeps derived from the shipped ``sweeps/default.toml``, and readers of what a
sweep left in MLflow and in its driver's own store."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import jena  # noqa: F401  (first: psycopg's OpenSSL before TensorFlow's, see jena/quiet.py)

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

    from jena.recording import Events
    from sweeps.config import SweepConfig
    from sweeps.trial import SweepContext

# Deterministic, quiet, CPU-only Keras for every test process.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

TINY = "synthetic:24000:3"  # 24,000 rows ≈ 5.5 months


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in an empty directory: mlruns/ (MLflow, Optuna journals) lands under tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JENA_TRACKING_URI", raising=False)
    monkeypatch.setenv("JENA_DATA_DIR", str(tmp_path / "data-cache"))
    return tmp_path


def require_in_ci(reason: str) -> None:
    """Skip locally with ``reason``; under CI=true a missing service is a failure."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"required under CI=true: {reason}")
    pytest.skip(reason)


# ------------------------------------------------------------------ tiny sweeps
def toml_str(text: str | os.PathLike[str]) -> str:
    """A TOML string value for an override (``key=<this>``)."""
    return json.dumps(str(text))


# The shipped default sweep, shrunk: tiny data, 2 epochs x 2 batches x 2 validation batches,
# random search, no pruning, no tuner options, and a small space of cheap models.
TINY_SETS: tuple[str, ...] = (
    'description="a tiny test sweep (sweeps/default.toml, shrunk)"',
    f"data.source={toml_str(TINY)}",
    'data.preset="book2"',
    "fidelity.max_epochs=2",
    "fidelity.steps_per_epoch=2",
    "fidelity.validation_steps=2",
    'sampler.type="random"',
    "sampler.options={}",
    'pruner.type="none"',
    "pruner.options={}",
    'tuner.type="random"',
    "tuner.options={}",
    'space.include=["architecture", "units", "learning_rate"]',
    "space.fixed={sequence_length_hours=48, normalise_target=true, rnn_layers=1}",
    "space.ranges={}",
    'space.warm_start=""',
    "stop.patience_trials=1000",
)


def tiny_sweep(
    *sets: str,
    name: str = "tiny",
    driver: str = "optuna",
    trials: int = 3,
    seed: int = 0,
    tracking_uri: str | None = None,
    root: str | os.PathLike[str] | None = None,
) -> SweepConfig:
    """``sweeps/default.toml`` shrunk to a sweep that runs in seconds (:data:`TINY_SETS`), then
    ``sets`` (``--set`` overrides, TOML values), which win.

    ``tracking_uri``: the MLflow store (default: ``$JENA_TRACKING_URI`` or ``mlruns/`` of the
    working directory, as for a real sweep). ``root``: keep the Optuna journal and the Keras
    Tuner projects under this folder, by absolute path (default: ``mlruns/`` of the working
    directory)."""
    from sweeps.config import apply_overrides, load

    head = [f"name={toml_str(name)}", f"driver={toml_str(driver)}", f"trials={trials}",
            f"seed={seed}"]  # fmt: skip
    if tracking_uri is not None:
        head.append(f"storage.tracking_uri={toml_str(tracking_uri)}")
    if root is not None:
        where = Path(root).resolve()
        head += [
            f"storage.optuna={toml_str(f'journal:{where}/optuna/{name}.journal')}",
            f"storage.kerastuner_dir={toml_str(where / 'kerastuner')}",
        ]
    return apply_overrides(load("default"), [*TINY_SETS, *head, *sets])


def offline_context(cfg: SweepConfig, events: Events | None = None) -> SweepContext:
    """A driver's context with no MLflow behind it, for a driver loop whose ``run_trial`` is
    faked (no parent run, no tracker)."""
    from sweeps.state import SweepState
    from sweeps.trial import SweepContext, make_space

    return SweepContext(
        cfg=cfg,
        space=make_space(cfg),
        events=events if events is not None else SweepState("test", total=cfg.trials),
        parent_run_id="-",
        tracker=None,  # type: ignore[arg-type]
    )


# ------------------------------------------------------------------ MLflow, read back
def tracking_uri_of(sweep: SweepConfig | None = None, uri: str | None = None) -> str:
    """The absolute tracking URI a sweep uses (MLflow caches database engines by URI, and
    every test runs in its own directory)."""
    from jena.tracking import resolve_uri

    return resolve_uri(uri or (sweep.storage.tracking_uri if sweep is not None else None))


@contextlib.contextmanager
def mlflow_uris(uri: str) -> Iterator[None]:
    """MLflow's process-wide tracking and registry URIs set to ``uri`` for the block, then put
    back as they were (``mlflow.set_*_uri`` also sets environment variables that subprocesses
    inherit)."""
    import mlflow

    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    saved = {n: os.environ.get(n) for n in names}
    before = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def mlflow_client(sweep: SweepConfig | None = None, uri: str | None = None) -> MlflowClient:
    import mlflow

    return mlflow.MlflowClient(tracking_uri_of(sweep, uri))


def runs(sweep: SweepConfig | str = "tiny", uri: str | None = None) -> list[Run]:
    """Every run of a sweep's experiment (a config, or an experiment name with ``uri``)."""
    cfg = None if isinstance(sweep, str) else sweep
    name = sweep if isinstance(sweep, str) else sweep.name
    client = mlflow_client(cfg, uri)
    exp = client.get_experiment_by_name(name)
    assert exp is not None, f"no experiment {name!r}"
    return list(client.search_runs([exp.experiment_id], max_results=1000))


def parents(all_runs: Sequence[Run]) -> list[Run]:
    """The parent (sweep) runs, oldest first."""
    found = [r for r in all_runs if "mlflow.parentRunId" not in r.data.tags]
    return sorted(found, key=lambda r: r.info.start_time)


def children(all_runs: Sequence[Run], parent_id: str | None = None) -> list[Run]:
    """The trial runs (of one parent, or of all), by trial number (a re-run trial's runs in
    the order they started)."""
    found = [
        r
        for r in all_runs
        if "mlflow.parentRunId" in r.data.tags
        and (parent_id is None or r.data.tags["mlflow.parentRunId"] == parent_id)
    ]
    return sorted(found, key=lambda r: (int(r.data.tags["trial_number"]), r.info.start_time))


def numbers(kids: Sequence[Run]) -> list[int]:
    return [int(k.data.tags["trial_number"]) for k in kids]


# ------------------------------------------------------------------ the driver's own store
@dataclass(frozen=True)
class StoreTrial:
    """One trial as the driver's own store (Optuna study, Keras Tuner project) holds it."""

    number: int
    state: str  # completed | pruned | failed | running (else the store's own word, lowercase)
    reason: str  # why it failed, as the store keeps it ("" if it keeps none)


def _optuna_trials(cfg: SweepConfig) -> list[StoreTrial]:
    from optuna.trial import TrialState

    from sweeps.optuna import SweepStudy

    words = {TrialState.COMPLETE: "completed", TrialState.PRUNED: "pruned",
             TrialState.FAIL: "failed", TrialState.RUNNING: "running"}  # fmt: skip
    study = SweepStudy(cfg).study
    return [
        StoreTrial(
            t.number,
            words.get(t.state, t.state.name.lower()),
            str(t.user_attrs.get("fail_reason", "")),
        )
        for t in sorted(study.trials, key=lambda t: t.number)
    ]


def _kerastuner_trials(cfg: SweepConfig) -> list[StoreTrial]:
    from sweeps import kerastuner

    words = {"COMPLETED": "completed", "FAILED": "failed", "INVALID": "failed",
             "RUNNING": "running"}  # fmt: skip
    return [
        StoreTrial(int(t.trial_id), words.get(t.status, t.status.lower()), t.message or "")
        for t in kerastuner.kt_trials(cfg)
    ]


# driver -> its store's trials; a new driver adds one line (test_driver_contract checks it)
STORE_TRIALS: dict[str, Callable[[SweepConfig], list[StoreTrial]]] = {
    "optuna": _optuna_trials,
    "kerastuner": _kerastuner_trials,
}


def store_trials(cfg: SweepConfig) -> list[StoreTrial]:
    """The sweep's trials in its driver's own store, by number."""
    if cfg.driver not in STORE_TRIALS:
        raise NotImplementedError(
            f"tests/conftest.py: STORE_TRIALS has no reader for driver {cfg.driver!r}"
        )
    return STORE_TRIALS[cfg.driver](cfg)


def store_states(cfg: SweepConfig) -> list[str]:
    """The states of the sweep's trials in its driver's own store, by number."""
    return [t.state for t in store_trials(cfg)]


def history_steps(client: MlflowClient, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def ended(states: Sequence[str]) -> bool:
    return all(s in ("completed", "pruned", "failed") for s in states)
