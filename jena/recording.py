"""One configuration trained into one MLflow child run: each epoch as it ends, the live progress,
the pruner's look, the model, the result. :class:`Recorder` is the one way a training is
recorded — a sweep trial trained alone (:mod:`sweeps.trial`), a packed member
(:mod:`sweeps.optuna._packed`: the same hooks, only another trainer runs its steps) and a refit
member (:mod:`jena.refit`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from . import tracking as T
from .config import TrialConfig
from .errors import ConfigError, TrialError
from .infrastructure import as_infrastructure
from .tracking import names as N
from .train import DataCache, Fidelity, StopCheck, TrialResult, train

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
