"""The life of one run: one configuration trained into one MLflow child run, the same for a
sweep's trial trained alone (:mod:`sweeps.trial`), a packed member (:mod:`sweeps.optuna._packed`,
:mod:`jena.refit._lanes` under JAX: the same hooks, only another trainer runs its steps) and a
refit seed (:mod:`jena.refit._lanes`). They differ only in who resolves the configuration and
who runs the steps.

* open — :meth:`RunContext.open`: the run under its stage's parent run, its tags (from the one
  builder, :func:`run_tags`), params (the configuration's active fields, and the caller's) and
  dataset inputs (the splits it reads, :func:`split_inputs`; where the record came from is
  :attr:`jena.data.Dataset.provenance`); the display hears it started. A run with no valid
  configuration to train opens and ends failed at once (:meth:`RunContext.fail`).
* train — :class:`Recorder`: each epoch as it ends, the live progress, the pruner's look.
* end — :meth:`Recorder.end`: the model, the compute, the state and reason; a tracking failure
  then fails the run (closed), a fault of the infrastructure is raised; the display hears it
  ended; the model is freed.
* read back — :func:`recorded_config`: the configuration a run trained, from its model's
  ``data_config.json``."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from . import tracking as T
from .config import TrialConfig
from .errors import ConfigError, TrialError
from .infrastructure import as_infrastructure
from .tracking import names as N
from .train import DataCache, Fidelity, StopCheck, TrialResult, train

if TYPE_CHECKING:
    from .data import Dataset
    from .packed import PackedTrial
    from .splits import Split

BATCH_EVENT_INTERVAL_S = 0.5  # batch progress goes to the display at most this often

# (epoch, val_mae °C, final: the trial's last epoch); raises TrialPruned to prune
Report = Callable[[int, float, bool], None]


class Events(Protocol):
    """What the live display hears about a run (``sweeps.state.SweepState`` and its queue)."""

    def trial_started(self, number: int, summary: str, max_epochs: int) -> None: ...
    def progress(self, number: int, epoch: int, batch: int, batches: int) -> None: ...
    def epoch(self, number: int, epoch: int, val_mae: float) -> None: ...
    def stopped(self, reason: str) -> None: ...
    def trial_finished(
        self,
        number: int,
        state: str,
        val_mae: float | None,
        seconds: float,
        val_skill: float | None = None,
        note: str | None = None,
    ) -> None: ...


class NoEvents:
    """Events nobody watches."""

    def trial_started(self, number: int, summary: str, max_epochs: int) -> None:
        pass

    def progress(self, number: int, epoch: int, batch: int, batches: int) -> None:
        pass

    def epoch(self, number: int, epoch: int, val_mae: float) -> None:
        pass

    def stopped(self, reason: str) -> None:
        pass

    def trial_finished(self, *args: Any, **kwargs: Any) -> None:
        pass


def failed(reason: str) -> TrialResult:
    nan = float("nan")
    return TrialResult(
        state="failed", val_mae=None, baseline_val_mae=nan, best_epoch=None, reason=reason
    )


class Recorder:
    """The open child run ``run`` of configuration ``config`` (run ``number``, ``name``) while
    it trains: hand :meth:`on_epoch` / :meth:`on_batch` to a trainer, then :meth:`finish` with
    its result. ``report`` is a pruner's look at each epoch (:data:`Report`)."""

    def __init__(
        self,
        run: T.TrialRun,
        config: TrialConfig,
        fidelity: Fidelity,
        *,
        number: int,
        events: Events,
        name: str,
        report: Report | None = None,
        started: float | None = None,
    ) -> None:
        self.run, self.config, self.fidelity = run, config, fidelity
        self.number, self.events, self.name, self.report = number, events, name, report
        self.started = time.perf_counter() if started is None else started
        self.epochs_done = 0
        self._last_sent = 0.0

    def on_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        self.epochs_done = epoch
        self.run.log_epoch(epoch, metrics)
        val = metrics[N.METRIC_VAL_MAE]
        self.events.epoch(self.number, epoch, val)
        if self.report is not None:
            self.report(epoch, val, epoch >= self.fidelity.max_epochs)  # the last is not pruned

    def on_batch(self, batch: int, batches: int) -> None:
        now = time.monotonic()
        if now - self._last_sent >= BATCH_EVENT_INTERVAL_S or batch == batches:
            self._last_sent = now
            self.events.progress(self.number, self.epochs_done + 1, batch, batches)

    def train(
        self,
        cache: DataCache,
        *,
        trainer: Callable[..., TrialResult] = train,
        should_stop: StopCheck | None = None,
    ) -> TrialResult:
        """Train with ``trainer`` (:func:`jena.train.train`; tests swap it). A configuration
        that cannot be trained here (a window that does not fit) or a training that raises is a
        failed result with the reason; a fault of the infrastructure (the disk, the store) is
        raised: not the configuration's fault."""
        try:
            return trainer(self.config, cache, self.fidelity, on_epoch=self.on_epoch,
                           on_batch=self.on_batch, should_stop=should_stop)  # fmt: skip
        except (ConfigError, TrialError) as exc:  # the window does not fit this record
            return failed(str(exc))
        except Exception as exc:
            lost = as_infrastructure(exc)
            if lost is exc:
                raise
            if lost is not None:
                raise lost from exc
            return failed(f"{type(exc).__name__}: {exc}")

    def finish(self, result: TrialResult) -> TrialResult:
        """Log the model (completed, or stopped by the time budget: a candidate at its best
        epoch), the compute and the result, and end the run."""
        run = self.run
        if result.state in ("completed", "stopped") and result.model is not None:
            params, step = self.config.active_dict(), result.best_epoch or 0
            run.log_model(result.model, result.data_config, name=self.name, params=params,
                          step=step)  # fmt: skip
        run.log_metrics({N.METRIC_BASELINE_VAL: result.baseline_val_mae,
                         N.METRIC_FIT_S: result.duration_s,
                         N.METRIC_VAL_TARGETS: result.val_targets,
                         N.METRIC_WINDOWS: result.windows_seen})  # fmt: skip
        run.finish(result.state, val_mae=result.val_mae, val_skill=result.val_skill,
                   reason=result.reason, duration_s=time.perf_counter() - self.started,
                   param_count=result.param_count or None,
                   best_epoch=result.best_epoch)  # fmt: skip
        return result

    def end(self, result: TrialResult) -> TrialResult:
        """End the run with ``result`` (:meth:`finish`), tell the display, free the model; the
        result recorded. Tracking that breaks now fails the run (closed, with the reason); a
        fault of the infrastructure (the disk, the store) is raised: not the run's fault. The
        display's note is the reason of a run stopped from outside (a time budget)."""
        try:
            self.finish(result)
        except Exception as exc:
            if as_infrastructure(exc) is not None:
                raise
            self.run.__exit__(type(exc), exc, exc.__traceback__)
            result.model = None
            result = failed(f"{type(exc).__name__}: {exc}")
        note = result.reason if result.stopped else None
        seconds = time.perf_counter() - self.started
        self.events.trial_finished(self.number, result.state, result.val_mae, seconds,
                                   result.val_skill, note)  # fmt: skip
        result.model = None  # free memory; the model lives in MLflow now
        return result

    def member(self, on_done: Callable[[TrialResult], None], tag: Any = None) -> PackedTrial:
        """This run as a member of a pack (:func:`jena.packed.train_packed`): its hooks, and
        ``on_done(result)`` when it ends; ``tag``: the caller's handle."""
        from .packed import PackedTrial

        return PackedTrial(self.config, on_epoch=self.on_epoch, on_batch=self.on_batch,
                           on_done=on_done, max_epochs=self.fidelity.max_epochs,
                           tag=tag)  # fmt: skip


# --------------------------------------------------------------------------- opening a run


def run_tags(
    experiment: str,
    dataset: Dataset,
    preset: str | None = None,
    *,
    driver: str | None = None,
    config: TrialConfig | None = None,
) -> dict[str, Any]:
    """The one builder of what a run is tagged with: its sweep, the record (source, digest),
    the split preset, the driver and, for a run that trains, its architecture and seed. The
    stage runs (a sweep's invocation, a refit) and every run they hold take it."""
    tags: dict[str, Any] = {
        N.TAG_SWEEP: experiment,
        N.TAG_DATA_SOURCE: dataset.source,
        N.TAG_DATA_DIGEST: dataset.digest,
    }
    if preset is not None:
        tags[N.TAG_PRESET] = preset
    if driver is not None:
        tags[N.TAG_DRIVER] = driver
    if config is not None:
        tags[N.TAG_ARCHITECTURE] = config.architecture
        tags[N.TAG_SEED] = str(config.seed)
    return tags


def split_inputs(cache: DataCache, config: TrialConfig) -> list[T.DatasetInfo]:
    """The training and validation splits ``config`` reads from ``cache``'s record, as MLflow
    dataset inputs."""
    ds, prepared, preset = cache.dataset, cache.for_config(config), cache.preset.name
    where = ds.provenance
    out = []
    splits: tuple[tuple[Split, str], ...] = (("train", "training"), ("val", "validation"))
    for split, context in splits:
        lo, hi = prepared.bounds[split]  # the first and the stop row of its segments
        segments = prepared.bounds.segments(split)
        windows = len(prepared.starts(split, config.sampling_rate, config.sequence_length))
        out.append(T.DatasetInfo(
            name=f"jena-{preset}-{split}",
            digest=ds.digest,
            source=where.uri,
            source_type=where.kind,
            context=context,
            columns=prepared.feature_names,
            profile={"split": split, "rows": prepared.bounds.rows(split), "first_row": lo,
                     "stop_row": hi, "segments": len(segments), "windows": windows,
                     "record_rows": prepared.rows},
        ))  # fmt: skip
    return out


@dataclass(kw_only=True)
class RunContext:
    """What the runs of one stage share — a sweep's invocation (``sweeps.trial.SweepContext``)
    or a refit (``jena.refit._lanes.LaneContext``): where they are recorded (``tracker``, the
    stage's ``parent_run_id``), who hears of them, their deadline and the prepared record."""

    tracker: T.Tracker
    parent_run_id: str
    events: Events
    deadline: float | None = None  # time.monotonic() at which running runs are stopped
    caches: dict[str, DataCache] = field(default_factory=dict)

    def budget_text(self) -> str:
        """What the deadline is, said when it stops a run."""
        return "the time budget"

    def out_of_time(self) -> str | None:
        """The reason to stop a running run now (the stage's time budget ran out), or None."""
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return f"{self.budget_text()} ran out"
        return None

    def record(self) -> Dataset:
        """The record the stage trains on."""
        raise NotImplementedError

    def cache(self, preset: str) -> DataCache:
        """The record prepared for split preset ``preset`` (once, shared by every run)."""
        if preset not in self.caches:
            self.caches[preset] = DataCache(self.record(), preset)
        return self.caches[preset]

    def open(
        self,
        number: int,
        config: TrialConfig,
        fidelity: Fidelity,
        *,
        preset: str,
        name: str,
        tags: Mapping[str, Any],
        summary: str,
        params: Mapping[str, Any] | None = None,
        run_type: str = N.RUN_TRIAL,
        report: Report | None = None,
        started: float | None = None,
    ) -> Recorder:
        """Open run ``number`` (``name``) of ``config`` under the stage's parent run — ``tags``
        (:func:`run_tags` and the caller's), params (its active fields, then ``params``), the
        splits of ``preset`` it reads as dataset inputs — tell the display (``summary``) and
        return its :class:`Recorder`. A run whose opening fails is closed before the error
        goes on. ``started``: its clock's start (default: now)."""
        started = time.perf_counter() if started is None else started
        self.events.trial_started(number, summary, fidelity.max_epochs)
        run = self.tracker.trial(self.parent_run_id, number,
                                 {**config.active_dict(), **(params or {})}, dict(tags),
                                 run_name=name, run_type=run_type)  # fmt: skip
        try:
            run.log_datasets(split_inputs(self.cache(preset), config))
        except BaseException as exc:
            run.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return Recorder(run, config, fidelity, number=number, events=self.events, name=name,
                        report=report, started=started)  # fmt: skip

    def fail(
        self,
        number: int,
        *,
        name: str,
        tags: Mapping[str, Any],
        params: Mapping[str, Any],
        reason: str,
    ) -> None:
        """Run ``number`` failed before it could train (no valid configuration: an invalid
        point, a sampler that raised): opened and ended failed with ``reason``, and the display
        told."""
        self.events.trial_started(number, "failed before training", 0)
        with self.tracker.trial(self.parent_run_id, number, params, dict(tags),
                                run_name=name) as run:  # fmt: skip
            run.finish("failed", reason=reason)
        self.events.trial_finished(number, "failed", None, 0.0)


# --------------------------------------------------------------------------- reading back


@dataclass(frozen=True)
class RecordedConfig:
    """What a trained run says it trained (its model's ``data_config.json``): the
    configuration, the split preset, and the whole data configuration (the record's source and
    digest, the normalisation statistics)."""

    config: TrialConfig
    preset: str
    data_config: dict[str, Any]


def recorded_config(tracking_uri: str | None, run_id: str) -> RecordedConfig:
    """The one way a configuration is read back from a run (a sweep's trial, a refit member):
    from its model's ``data_config.json`` — typed JSON, every field, inactive ones too. A run
    without a model, or whose record is not a configuration of this version, is a
    :class:`~jena.errors.ConfigError` naming the run."""
    where = f"{N.MODEL_DIR}/{N.DATA_CONFIG_FILE}"
    with tempfile.TemporaryDirectory(prefix="jena-config-") as tmp:
        path = T.download_artifact(tracking_uri, run_id, where, tmp)
        if path is None:
            raise ConfigError(f"run {run_id} has no {where}")
        data_config = dict(json.loads(Path(path).read_text()))
    try:
        config = TrialConfig.from_dict(data_config["trial_config"])
        preset = str(data_config["preset"])
    except KeyError as exc:
        raise ConfigError(f"run {run_id}: {where} has no {exc.args[0]!r}") from None
    except ConfigError as exc:
        raise ConfigError(f"run {run_id}: {where}: {exc}") from None
    return RecordedConfig(config, preset, data_config)
