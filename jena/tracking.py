"""The one MLflow convention shared by every sweep driver.

* A sweep is an MLflow **experiment** (one per sweep name). Each invocation of a sweep
  is one **parent run** (tag ``run_type=sweep``) that holds the sweep definition as an
  artifact (``sweep.toml`` / ``sweep.json``), the sweep's settings as params and, at the
  end, the best trial (tags ``best_trial_*``, metric ``best_val_mae``,
  artifact ``best_trial.json``) and per-state trial counts.
* Each trial is a **nested child run** of that parent (tag ``mlflow.parentRunId``, tag
  ``run_type=trial``, run name ``trial-0007``), also when it runs in another worker
  process: the parent's run id is passed explicitly; nothing relies on MLflow's fluent
  "active run" state. Everything goes through an explicit :class:`mlflow.MlflowClient`.
* A child run holds every hyperparameter as a param (nested dicts flattened to
  ``a.b``), per-epoch metrics with the epoch as step (buffered and written with
  ``log_batch``), the final ``val_mae`` / ``val_skill``, ``duration_s``,
  ``param_count``, ``epochs``, the tags ``state`` (completed / pruned / failed / killed),
  ``failure_reason``, ``trial_number``, ``nan_at_epoch`` (first epoch with a
  non-finite metric; such values are not logged), the caller's tags (driver,
  architecture, data source, ...) over :func:`standard_tags`, and optionally the trained
  model under the artifact directory ``model/`` (``model.keras`` + ``data_config.json``).
* Runs are never left RUNNING: the context managers end FINISHED, FAILED on an exception
  (tag ``failure_reason``) or KILLED on ``KeyboardInterrupt``; finishing a sweep also
  closes (KILLED) any child run that a dead worker left RUNNING.

The store defaults to ``sqlite:///mlruns/mlflow.db`` under the current directory with
artifacts in ``mlruns/artifacts``; ``JENA_TRACKING_URI`` or an explicit URI overrides.

This module imports no tuner; Keras is imported only to save / load models.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import math
import os
import posixpath
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self, SupportsFloat

import mlflow
import pandas as pd
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException

import jena
from jena.errors import ConfigError

if TYPE_CHECKING:
    import keras

__all__ = [
    "ENV_TRACKING_URI",
    "SweepRun",
    "Tracker",
    "TrialRun",
    "TrialState",
    "default_tracking_uri",
    "git_commit",
    "load_trial_model",
    "standard_tags",
    "trials_frame",
]

_log = logging.getLogger(__name__)

ENV_TRACKING_URI = "JENA_TRACKING_URI"
DEFAULT_DIR = "mlruns"

TrialState = Literal["completed", "pruned", "failed", "killed"]
_TRIAL_STATUS: dict[str, str] = {
    "completed": "FINISHED",
    "pruned": "FINISHED",
    "failed": "FAILED",
    "killed": "KILLED",
}
_SWEEP_STATUSES = ("FINISHED", "FAILED", "KILLED")

# MLflow limits (mlflow/utils/validation.py).
_MAX_METRICS_PER_BATCH = 1000
_MAX_PARAMS_TAGS_PER_BATCH = 100
_MAX_KEY_LENGTH = 250
_MAX_PARAM_LENGTH = 6000
_MAX_TAG_LENGTH = 8000
_MAX_REASON_LENGTH = 2000

MODEL_DIR = "model"
MODEL_FILE = "model.keras"
DATA_CONFIG_FILE = "data_config.json"

_BAD_KEY_CHARS = re.compile(r"[^/\w.\- :]")


# --------------------------------------------------------------------------- helpers


def default_tracking_uri() -> str:
    """The URI used when none is given: ``$JENA_TRACKING_URI``, else the SQLite store
    ``mlruns/mlflow.db`` under the current directory (as an absolute ``sqlite:///`` URI,
    so worker processes agree on it)."""
    uri = os.environ.get(ENV_TRACKING_URI, "").strip()
    if not uri:
        uri = f"sqlite:///{DEFAULT_DIR}/mlflow.db"
    return _absolute_uri(uri)


def _absolute_uri(uri: str) -> str:
    """Make a relative ``sqlite:///`` path absolute against the current directory."""
    path = _sqlite_path(uri)
    if path is None:
        return uri
    return "sqlite:///" + str(path)


def _sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (absolute), or None for other stores."""
    if not uri.startswith("sqlite:///"):
        return None
    raw = uri[len("sqlite:///") :].split("?", 1)[0]
    if not raw or raw == ":memory:":
        return None
    return Path(raw).expanduser().resolve() if not raw.startswith("/") else Path(raw)


def _default_artifact_location(uri: str) -> str | None:
    """Where a new experiment keeps its artifacts: next to a SQLite file, under
    ``./mlruns/artifacts`` for other databases, and wherever a tracking server decides."""
    if uri.split(":", 1)[0] in ("http", "https", "databricks"):
        return None
    db = _sqlite_path(uri)
    folder = db.parent / "artifacts" if db is not None else Path.cwd() / DEFAULT_DIR / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder.resolve().as_uri()


@contextlib.contextmanager
def _store_lock(uri: str) -> Iterator[None]:
    """Serialise first-time store creation (schema migration) between processes."""
    if os.name == "nt" or uri.split(":", 1)[0] in ("http", "https", "databricks", "file"):
        yield
        return
    from ._filelock import file_lock

    db = _sqlite_path(uri)
    if db is not None:
        lock_path = db.with_name(db.name + ".lock")
    else:
        digest = hashlib.sha256(uri.encode()).hexdigest()[:16]
        lock_path = Path(tempfile.gettempdir()) / f"jena-mlflow-{digest}.lock"
    with file_lock(lock_path):
        yield


_CLIENTS: dict[str, mlflow.MlflowClient] = {}


def _client(uri: str) -> mlflow.MlflowClient:
    """A per-process MlflowClient for ``uri``; creates (migrates) the store if needed."""
    client = _CLIENTS.get(uri)
    if client is not None:
        return client
    for attempt in range(3):
        try:
            with _store_lock(uri):
                client = mlflow.MlflowClient(tracking_uri=uri)
            break
        except Exception:  # a racing process outside our lock (e.g. `mlflow ui`)
            if attempt == 2:
                raise
            time.sleep(0.5 * (attempt + 1))
    assert client is not None
    _CLIENTS[uri] = client
    return client


def _after_fork_in_child() -> None:
    # A forked child must not reuse the parent's pooled database connections.
    _CLIENTS.clear()
    store_module = sys.modules.get("mlflow.store.tracking.sqlalchemy_store")
    if store_module is None:
        return
    with contextlib.suppress(Exception):
        for engine in store_module.SqlAlchemyStore._engine_map.values():
            engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@functools.cache
def git_commit() -> str:
    """Short sha of the git repository at the current directory, or ``"unknown"``."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and sha else "unknown"


def _keras_backend() -> str:
    """``keras.backend.backend()``, without importing Keras (seconds) when not loaded yet:
    same resolution order as Keras ($KERAS_BACKEND, then $KERAS_HOME/keras.json)."""
    if "keras" in sys.modules:
        import keras

        return str(keras.backend.backend())
    env = os.environ.get("KERAS_BACKEND")
    if env:
        return env
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        config = json.loads(Path(home, "keras.json").read_text())
        return str(config.get("backend", "tensorflow"))
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def standard_tags() -> dict[str, str]:
    """Tags every run gets (the caller's tags override them)."""
    return {
        "backend": _keras_backend(),
        "git_commit": git_commit(),
        "jena_version": jena.__version__,
        "hostname": socket.gethostname(),
        "pid": str(os.getpid()),
    }


def _sanitize_key(key: object) -> str:
    """A valid MLflow param / metric / tag key."""
    text = _BAD_KEY_CHARS.sub("_", str(key)).strip("/")
    text = re.sub(r"/+", "/", text)
    if posixpath.normpath(text) != text:
        text = text.replace("/", "_")
    return (text or "_")[:_MAX_KEY_LENGTH]


def _value_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple | set | frozenset | dict):
        seq = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return json.dumps(seq, default=str)
    return str(value)


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested dicts become ``a.b`` keys; values become strings."""
    out: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, name + "."))
        else:
            out[_sanitize_key(name)] = _value_text(value)
    return out


def _params(values: Mapping[str, Any]) -> list[Param]:
    return [Param(k, v[:_MAX_PARAM_LENGTH]) for k, v in _flatten(values).items()]


def _tags(values: Mapping[str, Any]) -> list[RunTag]:
    return [
        RunTag(_sanitize_key(k), _value_text(v)[:_MAX_TAG_LENGTH])
        for k, v in values.items()
        if v is not None
    ]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _finite(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _log_batch(
    client: mlflow.MlflowClient,
    run_id: str,
    metrics: Sequence[Metric] = (),
    params: Sequence[Param] = (),
    tags: Sequence[RunTag] = (),
) -> None:
    """``client.log_batch`` split to MLflow's limits (usually a single call)."""
    metrics, params, tags = list(metrics), list(params), list(tags)
    while metrics or params or tags:
        p, params = params[:_MAX_PARAMS_TAGS_PER_BATCH], params[_MAX_PARAMS_TAGS_PER_BATCH:]
        t, tags = tags[:_MAX_PARAMS_TAGS_PER_BATCH], tags[_MAX_PARAMS_TAGS_PER_BATCH:]
        room = _MAX_METRICS_PER_BATCH - len(p) - len(t)
        m, metrics = metrics[:room], metrics[room:]
        client.log_batch(run_id, metrics=m, params=p, tags=t)


class _JSONEncoder(json.JSONEncoder):
    """Numpy arrays / scalars, paths and the like in data configurations."""

    def default(self, o: Any) -> Any:
        if hasattr(o, "tolist"):
            return o.tolist()
        if isinstance(o, Path):
            return str(o)
        if isinstance(o, set | frozenset):
            return sorted(o, key=str)
        return super().default(o)


def _reason(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:_MAX_REASON_LENGTH]


# --------------------------------------------------------------------------- tracker


class Tracker:
    """The MLflow experiment of one sweep name in one tracking store.

    Cheap to pickle (the client is re-created in the receiving process), so a driver can
    hand it, or just ``(tracking_uri, experiment, parent_run_id)``, to worker processes.
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        experiment: str = "default",
        *,
        artifact_location: str | None = None,
    ) -> None:
        self.tracking_uri = _absolute_uri(tracking_uri) if tracking_uri else default_tracking_uri()
        self.experiment = experiment
        self.experiment_id = self._get_or_create_experiment(artifact_location)

    @property
    def client(self) -> mlflow.MlflowClient:
        return _client(self.tracking_uri)

    def __getstate__(self) -> dict[str, Any]:
        return {
            "tracking_uri": self.tracking_uri,
            "experiment": self.experiment,
            "experiment_id": self.experiment_id,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"Tracker({self.tracking_uri!r}, {self.experiment!r})"

    def _get_or_create_experiment(self, artifact_location: str | None) -> str:
        client = self.client
        found = client.get_experiment_by_name(self.experiment)
        if found is None:
            location = artifact_location or _default_artifact_location(self.tracking_uri)
            try:
                return str(client.create_experiment(self.experiment, location))
            except MlflowException:  # created meanwhile by another process
                found = client.get_experiment_by_name(self.experiment)
                if found is None:
                    raise
        if found.lifecycle_stage == "deleted":
            client.restore_experiment(found.experiment_id)
        return str(found.experiment_id)

    # ---------------------------------------------------------------- runs

    def start_sweep(
        self,
        *,
        definition: Mapping[str, Any] | str | Path | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        run_name: str | None = None,
    ) -> SweepRun:
        """Create the parent run of one sweep invocation.

        ``definition``: a dict (logged as ``sweep.json``), the TOML text of the sweep
        file (``sweep.toml``) or the path of a file (``sweep<suffix>``).
        """
        artifact: tuple[str, str] | None = None
        if isinstance(definition, Path):
            artifact = definition.read_text(), f"sweep{definition.suffix or '.toml'}"
        elif isinstance(definition, str):
            artifact = definition, "sweep.toml"
        elif definition is not None:
            artifact = json.dumps(dict(definition), indent=2, cls=_JSONEncoder), "sweep.json"
        all_tags = {**standard_tags(), **(tags or {}), "run_type": "sweep"}
        name = run_name or f"{self.experiment}-{time.strftime('%Y%m%d-%H%M%S')}"
        run = self.client.create_run(
            self.experiment_id,
            start_time=_now_ms(),
            tags={t.key: t.value for t in _tags(all_tags)},
            run_name=name,
        )
        sweep = SweepRun(self, run.info.run_id)
        try:
            if params:
                _log_batch(self.client, sweep.run_id, params=_params(params))
            if artifact is not None:
                self.client.log_text(sweep.run_id, *artifact)
        except BaseException as exc:
            sweep.finish("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED", exc)
            raise
        return sweep

    def trial(
        self,
        parent_run_id: str,
        number: int,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        *,
        flush_every: int = 10,
        flush_interval_s: float = 30.0,
    ) -> TrialRun:
        """Create the child run of trial ``number`` under the sweep run ``parent_run_id``.

        Epoch metrics are written every ``flush_every`` epochs or ``flush_interval_s``
        seconds, whichever comes first, and at the end.
        """
        all_tags = {
            **standard_tags(),
            **(tags or {}),
            "run_type": "trial",
            "trial_number": int(number),
            "mlflow.parentRunId": parent_run_id,
        }
        run = self.client.create_run(
            self.experiment_id,
            start_time=_now_ms(),
            tags={t.key: t.value for t in _tags(all_tags)},
            run_name=f"trial-{int(number):04d}",
        )
        trial = TrialRun(
            self,
            run.info.run_id,
            number,
            flush_every=flush_every,
            flush_interval_s=flush_interval_s,
        )
        if params:
            try:
                _log_batch(self.client, trial.run_id, params=_params(params))
            except BaseException as exc:
                trial.__exit__(type(exc), exc, exc.__traceback__)
                raise
        return trial


class _RunContext:
    """Shared context-manager behaviour: never leave a run RUNNING."""

    run_id: str
    finished: bool = False

    def __enter__(self) -> Self:
        return self

    def _on_exit(self, exc: BaseException | None) -> None:
        raise NotImplementedError

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        if not self.finished:
            try:
                self._on_exit(exc)
            except Exception:
                if exc is None:
                    raise
                _log.warning("could not close MLflow run %s", self.run_id, exc_info=True)
        return False


class SweepRun(_RunContext):
    """The parent run of one sweep invocation (a context manager)."""

    def __init__(self, tracker: Tracker, run_id: str) -> None:
        self.tracker = tracker
        self.run_id = run_id

    def __repr__(self) -> str:
        return f"SweepRun({self.run_id!r})"

    @property
    def client(self) -> mlflow.MlflowClient:
        return self.tracker.client

    def log_metrics(self, metrics: Mapping[str, SupportsFloat], step: int = 0) -> None:
        """Finite values only; others are skipped."""
        now = _now_ms()
        batch = [
            Metric(_sanitize_key(k), v, now, step)
            for k, value in metrics.items()
            if (v := _finite(value)) is not None
        ]
        _log_batch(self.client, self.run_id, metrics=batch)

    def log_params(self, params: Mapping[str, Any]) -> None:
        _log_batch(self.client, self.run_id, params=_params(params))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        _log_batch(self.client, self.run_id, tags=_tags(tags))

    def log_best(
        self,
        number: int,
        params: Mapping[str, Any],
        val_mae: float,
        *,
        run_id: str | None = None,
    ) -> None:
        """Record the best trial so far (may be called again when it changes): tags
        ``best_trial_number`` / ``best_trial_run_id`` / ``best.<param>``, metric
        ``best_val_mae`` (step = trial number) and artifact ``best_trial.json``."""
        tags: dict[str, Any] = {"best_trial_number": int(number), "best_trial_run_id": run_id}
        tags.update({f"best.{k}": v for k, v in _flatten(params).items()})
        metrics = []
        if (value := _finite(val_mae)) is not None:
            metrics.append(Metric("best_val_mae", value, _now_ms(), int(number)))
        _log_batch(self.client, self.run_id, metrics=metrics, tags=_tags(tags))
        record = {"number": int(number), "run_id": run_id, "val_mae": val_mae, "params": params}
        self.client.log_text(
            self.run_id, json.dumps(record, indent=2, cls=_JSONEncoder), "best_trial.json"
        )

    def finish(self, status: str = "FINISHED", exc: BaseException | None = None) -> None:
        """End the run with ``status`` (FINISHED / FAILED / KILLED). Child runs still
        RUNNING (their worker died) are ended KILLED; trial counts per state are logged."""
        if self.finished:
            return
        status = status.upper()
        if status not in _SWEEP_STATUSES:
            raise ValueError(f"status must be one of {_SWEEP_STATUSES}, not {status!r}")
        client = self.client
        counts = dict.fromkeys(_TRIAL_STATUS, 0)
        for run in _search_all(
            client,
            [self.tracker.experiment_id],
            f"tags.mlflow.parentRunId = '{self.run_id}'",
        ):
            state = run.data.tags.get("state")
            if run.info.status == "RUNNING":
                _log_batch(
                    client,
                    run.info.run_id,
                    tags=_tags(
                        {
                            "state": "killed",
                            "failure_reason": "the trial's run was not closed (worker died?)",
                        }
                    ),
                )
                client.set_terminated(run.info.run_id, "KILLED", _now_ms())
                state = "killed"
            if state in counts:
                counts[state] += 1
        now = _now_ms()
        tags = _tags({"failure_reason": _reason(exc) or None})
        metrics = [Metric(f"trials_{k}", float(v), now, 0) for k, v in counts.items()]
        _log_batch(client, self.run_id, metrics=metrics, tags=tags)
        client.set_terminated(self.run_id, status, now)
        self.finished = True

    def _on_exit(self, exc: BaseException | None) -> None:
        if exc is None:
            self.finish("FINISHED")
        elif isinstance(exc, Exception):
            self.finish("FAILED", exc)
        else:  # KeyboardInterrupt, SystemExit
            self.finish("KILLED", exc)


class TrialRun(_RunContext):
    """The child run of one trial (a context manager).

    On leaving the ``with`` block without :meth:`finish`: clean exit → completed,
    exception → failed (tag ``failure_reason``), KeyboardInterrupt → killed. A driver
    that prunes calls ``finish("pruned", ...)`` itself before raising its tuner's
    pruning exception; an explicit :meth:`finish` is never overridden.
    """

    def __init__(
        self,
        tracker: Tracker,
        run_id: str,
        number: int,
        *,
        flush_every: int = 10,
        flush_interval_s: float = 30.0,
    ) -> None:
        self.tracker = tracker
        self.run_id = run_id
        self.number = int(number)
        self.flush_every = max(1, int(flush_every))
        self.flush_interval_s = flush_interval_s
        self.state: TrialState | None = None
        self._started = time.monotonic()
        self._last_flush = self._started
        self._pending: list[Metric] = []
        self._pending_tags: dict[str, str] = {}
        self._pending_epochs = 0
        self._epochs: set[int] = set()
        self._last: dict[str, tuple[int, float]] = {}  # key -> (step, value) of last epoch
        self._nan_epoch: int | None = None

    def __repr__(self) -> str:
        return f"TrialRun({self.run_id!r}, number={self.number})"

    @property
    def client(self) -> mlflow.MlflowClient:
        return self.tracker.client

    def log_epoch(self, epoch: int, metrics: Mapping[str, SupportsFloat]) -> None:
        """Buffer one epoch's metrics (step = ``epoch``); non-finite values are skipped
        and the first such epoch is recorded in the tag ``nan_at_epoch``."""
        epoch = int(epoch)
        now = _now_ms()
        for key, value in metrics.items():
            name = _sanitize_key(key)
            number = _finite(value)
            if number is None:
                if self._nan_epoch is None:
                    self._nan_epoch = epoch
                    self._pending_tags["nan_at_epoch"] = str(epoch)
                continue
            self._pending.append(Metric(name, number, now, epoch))
            self._last[name] = (epoch, number)
        self._epochs.add(epoch)
        self._pending_epochs += 1
        if (
            self._pending_epochs >= self.flush_every
            or time.monotonic() - self._last_flush >= self.flush_interval_s
        ):
            self.flush()

    def flush(self) -> None:
        """Write buffered metrics and tags now (one ``log_batch`` call, usually)."""
        if self._pending or self._pending_tags:
            _log_batch(
                self.client,
                self.run_id,
                metrics=self._pending,
                tags=_tags(self._pending_tags),
            )
        self._pending = []
        self._pending_tags = {}
        self._pending_epochs = 0
        self._last_flush = time.monotonic()

    def log_metrics(self, metrics: Mapping[str, SupportsFloat], step: int = 0) -> None:
        """Other metrics (e.g. the baseline's val MAE), written with the next flush."""
        now = _now_ms()
        for key, value in metrics.items():
            number = _finite(value)
            if number is not None:
                self._pending.append(Metric(_sanitize_key(key), number, now, step))

    def log_params(self, params: Mapping[str, Any]) -> None:
        """More hyperparameters (written now; a param's value cannot change)."""
        _log_batch(self.client, self.run_id, params=_params(params))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Tags written with the next flush."""
        self._pending_tags.update({t.key: t.value for t in _tags(tags)})

    def log_model(self, model: keras.Model, data_config: Mapping[str, Any]) -> None:
        """Save the trained model (Keras format) and its data configuration (normalisation
        statistics etc.) under the artifact directory ``model/``."""
        with tempfile.TemporaryDirectory(prefix="jena-model-") as tmp:
            folder = Path(tmp, MODEL_DIR)
            folder.mkdir()
            model.save(folder / MODEL_FILE)
            (folder / DATA_CONFIG_FILE).write_text(
                json.dumps(dict(data_config), indent=2, cls=_JSONEncoder)
            )
            self.client.log_artifacts(self.run_id, str(folder), MODEL_DIR)
        self._pending_tags["model_artifact"] = f"{MODEL_DIR}/{MODEL_FILE}"

    def finish(
        self,
        state: TrialState,
        *,
        val_mae: float | None = None,
        val_skill: float | None = None,
        reason: str | None = None,
        duration_s: float | None = None,
        param_count: int | None = None,
    ) -> None:
        """End the run: tag ``state`` (status FINISHED for completed / pruned, FAILED for
        failed, KILLED for killed), final metrics, buffered epochs, all in one batch.

        ``val_mae`` / ``val_skill`` become the run's latest values of those keys: they are
        logged at the step after the last epoch unless the last epoch already has them.
        ``duration_s`` defaults to the time since the run was created."""
        if self.finished:
            return
        if state not in _TRIAL_STATUS:
            raise ValueError(f"state must be one of {tuple(_TRIAL_STATUS)}, not {state!r}")
        now = _now_ms()
        next_step = max(self._epochs) + 1 if self._epochs else 0
        for key, value in (("val_mae", val_mae), ("val_skill", val_skill)):
            number = _finite(value)
            if number is None or self._last.get(key, (None, None))[1] == number:
                continue
            self._pending.append(Metric(key, number, now, next_step))
        if duration_s is None:
            duration_s = time.monotonic() - self._started
        self._pending.append(Metric("duration_s", float(duration_s), now, 0))
        if param_count is not None:
            self._pending.append(Metric("param_count", float(param_count), now, 0))
        self._pending.append(Metric("epochs", float(len(self._epochs)), now, 0))
        self._pending_tags["state"] = state
        if reason:
            self._pending_tags["failure_reason"] = reason[:_MAX_REASON_LENGTH]
        self.flush()
        self.client.set_terminated(self.run_id, _TRIAL_STATUS[state], now)
        self.state = state
        self.finished = True

    def _on_exit(self, exc: BaseException | None) -> None:
        if exc is None:
            self.finish("completed")
        elif isinstance(exc, Exception):
            self.finish("failed", reason=_reason(exc))
        else:  # KeyboardInterrupt, SystemExit
            self.finish("killed", reason=_reason(exc))


# --------------------------------------------------------------------------- reading back


def _search_all(
    client: mlflow.MlflowClient, experiment_ids: list[str], filter_string: str
) -> Iterator[Any]:
    token: str | None = None
    while True:
        page = client.search_runs(
            experiment_ids,
            filter_string,
            run_view_type=ViewType.ACTIVE_ONLY,
            max_results=1000,
            page_token=token,
        )
        yield from page
        token = page.token
        if not token:
            return


@contextlib.contextmanager
def _quiet_downloads() -> Iterator[None]:
    """No tqdm progress bar for two small files (unless the user asked for one)."""
    name = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    if name in os.environ:
        yield
        return
    os.environ[name] = "false"
    try:
        yield
    finally:
        os.environ.pop(name, None)


def load_trial_model(
    tracking_uri: str | None, run_id: str, *, compile: bool = False
) -> tuple[keras.Model, dict[str, Any]]:
    """Download a trial's ``model/`` artifacts and load them: (model, data config)."""
    import keras

    client = _client(_absolute_uri(tracking_uri) if tracking_uri else default_tracking_uri())
    with tempfile.TemporaryDirectory(prefix="jena-model-") as tmp, _quiet_downloads():
        try:
            local = Path(client.download_artifacts(run_id, MODEL_DIR, tmp))
        except (MlflowException, OSError) as exc:
            raise ConfigError(f"run {run_id} has no logged model ({exc})") from exc
        import jena.models  # noqa: F401  (registers custom layers such as ReverseTime)

        model = keras.saving.load_model(local / MODEL_FILE, compile=compile)
        config = json.loads((local / DATA_CONFIG_FILE).read_text())
    return model, config


_FRAME_COLUMNS = [
    "run_id",
    "parent_run_id",
    "run_name",
    "number",
    "state",
    "status",
    "driver",
    "val_mae",
    "val_skill",
    "duration_s",
    "param_count",
    "start_time",
    "end_time",
]


def trials_frame(tracking_uri: str | None = None, experiment: str = "default") -> pd.DataFrame:
    """All trial runs of every invocation of a sweep, best ``val_mae`` first (runs without
    one last). Columns: ``run_id parent_run_id run_name number state status driver val_mae
    val_skill duration_s param_count start_time end_time`` then ``params.*``,
    ``metrics.*`` (latest values) and ``tags.*`` (without MLflow's own)."""
    uri = _absolute_uri(tracking_uri) if tracking_uri else default_tracking_uri()
    client = _client(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None or found.lifecycle_stage == "deleted":
        raise ConfigError(f"no sweep (MLflow experiment) named {experiment!r} in {uri}")
    rows: list[dict[str, Any]] = []
    for run in _search_all(client, [found.experiment_id], "tags.run_type = 'trial'"):
        info, data = run.info, run.data
        number = data.tags.get("trial_number")
        row: dict[str, Any] = {
            "run_id": info.run_id,
            "parent_run_id": data.tags.get("mlflow.parentRunId"),
            "run_name": info.run_name,
            "number": int(number) if number and number.isdigit() else None,
            "state": data.tags.get("state", "running" if info.status == "RUNNING" else None),
            "status": info.status,
            "driver": data.tags.get("driver"),
            "val_mae": data.metrics.get("val_mae", math.nan),
            "val_skill": data.metrics.get("val_skill", math.nan),
            "duration_s": data.metrics.get("duration_s", math.nan),
            "param_count": data.metrics.get("param_count", math.nan),
            "start_time": pd.to_datetime(info.start_time, unit="ms", utc=True),
            "end_time": pd.to_datetime(info.end_time, unit="ms", utc=True)
            if info.end_time
            else pd.NaT,
        }
        row.update({f"params.{k}": v for k, v in data.params.items()})
        row.update({f"metrics.{k}": v for k, v in data.metrics.items()})
        row.update({f"tags.{k}": v for k, v in data.tags.items() if not k.startswith("mlflow.")})
        rows.append(row)
    frame = pd.DataFrame(rows, columns=None if rows else _FRAME_COLUMNS)
    if frame.empty:
        return frame
    extra = sorted(c for c in frame.columns if c not in _FRAME_COLUMNS)
    frame = frame[_FRAME_COLUMNS + extra]
    frame = frame.sort_values(["val_mae", "start_time"], na_position="last", kind="stable")
    return frame.reset_index(drop=True)
