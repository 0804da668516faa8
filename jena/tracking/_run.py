"""The run objects a :class:`~jena.tracking._runs.Tracker` hands out: :class:`SweepRun` (the
parent run of one invocation) and :class:`TrialRun` (the nested run of one trial).

They are context managers that never leave a run RUNNING: FINISHED, FAILED on an exception (tag
``failure_reason``) or KILLED on ``KeyboardInterrupt``; finishing a sweep also closes (KILLED)
any child run that a dead worker left RUNNING.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self, SupportsFloat

import mlflow
from mlflow.entities import LoggedModelOutput, Metric

from jena.errors import InfrastructureError
from jena.infrastructure import as_infrastructure

from . import _encode as enc
from . import names as N
from ._store import search_all

if TYPE_CHECKING:
    import keras

    from ._runs import DatasetInfo, Tracker

_log = logging.getLogger(__name__)

# stopped: cut short by the time budget (not judged by a pruner: a candidate, see _read.py)
TrialState = Literal["completed", "stopped", "pruned", "failed", "killed"]
TRIAL_STATUS: dict[str, str] = {
    "completed": "FINISHED",
    "stopped": "FINISHED",
    "pruned": "FINISHED",
    "failed": "FAILED",
    "killed": "KILLED",
}
SWEEP_STATUSES = ("FINISHED", "FAILED", "KILLED")
# failure_reason of a trial the infrastructure interrupted (re-run by the next invocation)
LOST_PREFIX = "lost (not the trial's fault; the next run re-runs it): "


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
                # the original error is what the user hears about; a run left RUNNING is
                # closed later (by its heartbeat, or the next start on this host)
                _log.debug("could not close MLflow run %s", self.run_id, exc_info=True)
        return False


class SweepRun(_RunContext):
    """The parent run of one sweep invocation (a context manager)."""

    def __init__(self, tracker: Tracker, run_id: str) -> None:
        self.tracker = tracker
        self.run_id = run_id
        self._heartbeat: threading.Event | None = None

    def __repr__(self) -> str:
        return f"SweepRun({self.run_id!r})"

    def start_heartbeat(self, interval_s: float) -> None:
        """Tag the run with a sign of life (``heartbeat_at``, ms) every ``interval_s`` seconds
        until :meth:`finish`, from a daemon thread: on a store shared by several machines, a
        worker on another one ends the run when its process is gone
        (:func:`jena.tracking.close_stale_runs`)."""
        if self._heartbeat is not None:
            return
        self.set_tags({N.TAG_HEARTBEAT: enc.now_ms(), N.TAG_HEARTBEAT_S: interval_s})
        stop = self._heartbeat = threading.Event()
        raw = getattr(self.client, "_client", self.client)  # no long retries from a thread

        def beat() -> None:
            while not stop.wait(interval_s):
                with contextlib.suppress(Exception):
                    raw.set_tag(self.run_id, N.TAG_HEARTBEAT, str(enc.now_ms()))

        threading.Thread(target=beat, name=f"jena-heartbeat-{self.run_id[:8]}",
                         daemon=True).start()  # fmt: skip

    @property
    def client(self) -> mlflow.MlflowClient:
        return self.tracker.client

    def log_metrics(self, metrics: Mapping[str, SupportsFloat], step: int = 0) -> None:
        """Finite values only; others are skipped."""
        enc.log_batch(self.client, self.run_id, metrics=enc.metrics(metrics, step))

    def log_params(self, params: Mapping[str, Any]) -> None:
        enc.log_batch(self.client, self.run_id, params=enc.params(params))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        enc.log_batch(self.client, self.run_id, tags=enc.tags(tags))

    def log_json(self, value: Any, name: str) -> None:
        """An artifact ``name`` holding ``value`` as JSON."""
        self.client.log_text(self.run_id, enc.to_json(value), name)

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
        tags: dict[str, Any] = {N.TAG_BEST_NUMBER: int(number), N.TAG_BEST_RUN_ID: run_id}
        tags.update({f"{N.TAG_BEST_PARAM_PREFIX}{k}": v for k, v in enc.flatten(params).items()})
        best = enc.metric(N.METRIC_BEST_VAL, val_mae, int(number))
        enc.log_batch(self.client, self.run_id, metrics=[best] if best else [], tags=enc.tags(tags))
        record = {"number": int(number), "run_id": run_id, "val_mae": val_mae, "params": params}
        self.client.log_text(self.run_id, enc.to_json(record), N.BEST_TRIAL_FILE)

    def finish(self, status: str = "FINISHED", exc: BaseException | None = None) -> None:
        """End the run with ``status`` (FINISHED / FAILED / KILLED). Child runs still
        RUNNING (their worker died) are ended KILLED; trial counts per state are logged."""
        if self.finished:
            return
        if self._heartbeat is not None:
            self._heartbeat.set()
        status = status.upper()
        if status not in SWEEP_STATUSES:
            raise ValueError(f"status must be one of {SWEEP_STATUSES}, not {status!r}")
        counts = dict.fromkeys(TRIAL_STATUS, 0)
        for run in search_all(
            self.client,
            [self.tracker.experiment_id],
            f"tags.{N.TAG_PARENT} = '{self.run_id}'",
        ):
            state = run.data.tags.get(N.TAG_STATE)
            if run.info.status == "RUNNING":
                self.tracker.close_run(
                    run.info.run_id, "killed", "the trial's run was not closed (worker died?)"
                )
                state = "killed"
            if state in counts:
                counts[state] += 1
        # counts are tags, not metrics: the UI's charts compare trials, not the parents' counters
        counted = {f"{N.TAG_TRIALS_PREFIX}{k}": v for k, v in counts.items()}
        tags = enc.tags({**counted, N.TAG_FAILURE: enc.reason(exc) or None})
        enc.log_batch(self.client, self.run_id, tags=tags)
        self.client.set_terminated(self.run_id, status, enc.now_ms())
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
        self._nan_epoch: int | None = None
        self.model_id: str | None = None  # the logged model, once there is one

    def __repr__(self) -> str:
        return f"TrialRun({self.run_id!r}, number={self.number})"

    @property
    def client(self) -> mlflow.MlflowClient:
        return self.tracker.client

    def log_epoch(self, epoch: int, metrics: Mapping[str, SupportsFloat]) -> None:
        """Buffer one epoch's metrics (step = ``epoch``); non-finite values are skipped
        and the first such epoch is recorded in the tag ``nan_at_epoch``."""
        epoch = int(epoch)
        now = enc.now_ms()
        for key, value in metrics.items():
            name = enc.sanitize_key(key)
            number = enc.finite(value)
            if number is None:
                if self._nan_epoch is None:
                    self._nan_epoch = epoch
                    self._pending_tags[N.TAG_NAN_EPOCH] = str(epoch)
                continue
            self._pending.append(Metric(name, number, now, epoch))
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
            enc.log_batch(
                self.client,
                self.run_id,
                metrics=self._pending,
                tags=enc.tags(self._pending_tags),
            )
        self._pending = []
        self._pending_tags = {}
        self._pending_epochs = 0
        self._last_flush = time.monotonic()

    def log_metrics(self, metrics: Mapping[str, SupportsFloat], step: int = 0) -> None:
        """Other metrics (e.g. the baseline's val MAE), written with the next flush."""
        self._pending.extend(enc.metrics(metrics, step))

    def log_params(self, params: Mapping[str, Any]) -> None:
        """More hyperparameters (written now; a param's value cannot change)."""
        enc.log_batch(self.client, self.run_id, params=enc.params(params))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Tags written with the next flush."""
        self._pending_tags.update({t.key: t.value for t in enc.tags(tags)})

    def log_datasets(self, datasets: Sequence[DatasetInfo]) -> None:
        """Record the data the trial trained and was validated on (MLflow dataset inputs:
        the UI's Dataset column)."""
        self.client.log_inputs(self.run_id, datasets=[d.entity() for d in datasets])

    def log_model(
        self,
        model: keras.Model,
        data_config: Mapping[str, Any],
        *,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        step: int = 0,
    ) -> str:
        """Save the trained model (Keras format) and its data configuration (normalisation
        statistics etc.) under the artifact directory ``model/``, and as an MLflow logged model
        (the UI's Models column and page; ``step``: the epoch whose weights it holds). The
        trial's final metrics are linked to it. Returns the logged model's id.

        A write that fails (a full disk, the store gone) leaves nothing attached to the run: the
        partial ``model/`` folder and the logged model are removed, and a full disk is an
        :class:`~jena.errors.InfrastructureError`."""
        made: list[str] = []
        try:
            with tempfile.TemporaryDirectory(prefix="jena-model-") as tmp:
                folder = Path(tmp, N.MODEL_DIR)
                folder.mkdir()
                model.save(folder / N.MODEL_FILE)
                (folder / N.DATA_CONFIG_FILE).write_text(enc.to_json(dict(data_config)))
                self.client.log_artifacts(self.run_id, str(folder), N.MODEL_DIR)
                logged = self.client.create_logged_model(
                    self.tracker.experiment_id,
                    name=name or f"trial-{self.number:04d}",
                    source_run_id=self.run_id,
                    params=dict(enc.flatten(params or {})),
                    model_type="keras",
                )
                made.append(logged.model_id)
                self.client.log_model_artifacts(logged.model_id, str(folder))
                self.client.finalize_logged_model(logged.model_id, "READY")
            self.client.log_outputs(self.run_id, [LoggedModelOutput(logged.model_id, int(step))])
        except BaseException as exc:
            self._discard_model(made[0] if made else None)
            lost = as_infrastructure(exc, f"saving the model of trial {self.number}")
            if lost is not None and lost is not exc:
                raise lost from exc
            raise
        self.model_id = logged.model_id
        self._pending_tags[N.TAG_MODEL_ARTIFACT] = f"{N.MODEL_DIR}/{N.MODEL_FILE}"
        self._pending_tags[N.TAG_MODEL_ID] = logged.model_id
        return str(logged.model_id)

    def _discard_model(self, model_id: str | None) -> None:
        """Remove what a failed :meth:`log_model` wrote (best effort, no retries)."""
        raw = getattr(self.client, "_client", self.client)
        with contextlib.suppress(Exception):
            raw._tracking_client._get_artifact_repo(self.run_id).delete_artifacts(N.MODEL_DIR)
        if model_id is None:
            return
        with contextlib.suppress(Exception):
            repo = raw._tracking_client._get_artifact_repo(model_id, resource="logged_model")
            repo.delete_artifacts()
        with contextlib.suppress(Exception):
            raw.finalize_logged_model(model_id, "FAILED")
        with contextlib.suppress(Exception):
            raw.delete_logged_model(model_id)

    def finish(
        self,
        state: TrialState,
        *,
        val_mae: float | None = None,
        val_skill: float | None = None,
        reason: str | None = None,
        duration_s: float | None = None,
        param_count: int | None = None,
        best_epoch: int | None = None,
    ) -> None:
        """End the run: tag ``state`` (status FINISHED for completed / stopped / pruned, FAILED
        for failed, KILLED for killed), final metrics, buffered epochs, all in one batch.

        Per-epoch metrics have one point per epoch that ran; the trial's result is apart:
        ``best_val_mae`` (the best epoch's validation MAE, at that epoch's step) and
        ``val_skill``, linked to the logged model if there is one. ``duration_s`` defaults to
        the time since the run was created."""
        if self.finished:
            return
        if state not in TRIAL_STATUS:
            raise ValueError(f"state must be one of {tuple(TRIAL_STATUS)}, not {state!r}")
        now = enc.now_ms()
        step = int(best_epoch) if best_epoch is not None else 0
        results = ((N.METRIC_BEST_VAL, val_mae, step), (N.METRIC_VAL_SKILL, val_skill, 0))
        for key, value, at in results:
            number = enc.finite(value)
            if number is not None:
                self._pending.append(Metric(key, number, now, at, model_id=self.model_id))
        if duration_s is None:
            duration_s = time.monotonic() - self._started
        self._pending.append(Metric(N.METRIC_DURATION, float(duration_s), now, 0))
        if param_count is not None:
            self._pending.append(Metric(N.METRIC_PARAM_COUNT, float(param_count), now, 0))
        self._pending.append(Metric(N.METRIC_EPOCHS, float(len(self._epochs)), now, 0))
        self._pending_tags[N.TAG_STATE] = state
        if reason:
            self._pending_tags[N.TAG_FAILURE] = reason[: enc.MAX_REASON_LENGTH]
        self.flush()
        self.client.set_terminated(self.run_id, TRIAL_STATUS[state], now)
        self.state = state
        self.finished = True

    def _on_exit(self, exc: BaseException | None) -> None:
        if exc is None:
            self.finish("completed")
        elif isinstance(exc, InfrastructureError):  # not the trial's fault: not counted
            self.finish("killed", reason=f"{LOST_PREFIX}{exc}")
        elif isinstance(exc, Exception):
            self.finish("failed", reason=enc.reason(exc))
        else:  # KeyboardInterrupt, SystemExit
            self.finish("killed", reason=enc.reason(exc))
