"""One configuration trained and recorded in one MLflow child run: each epoch as it ends, the
live progress, the model, the result. Sweep trials (:mod:`sweeps.trial`) and refits
(:mod:`jena.refit`) both train through :func:`train_recorded`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from . import tracking as T
from .config import TrialConfig
from .errors import ConfigError, TrialError
from .faults import as_infrastructure
from .train import DataCache, Fidelity, StopCheck, TrialResult, train

BATCH_EVENT_INTERVAL_S = 0.5  # batch progress goes to the display at most this often

# (epoch, val_mae °C, final: the trial's last epoch); raises TrialPruned to prune
Report = Callable[[int, float, bool], None]


class Events(Protocol):
    """What the live display hears about a run (``sweeps.display.Board`` and its queue)."""

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


def train_recorded(
    run: T.TrialRun,
    config: TrialConfig,
    cache: DataCache,
    fidelity: Fidelity,
    *,
    number: int,
    events: Events,
    name: str,
    report: Report | None = None,
    should_stop: StopCheck | None = None,
    started: float | None = None,
    trainer: Callable[..., TrialResult] = train,
) -> TrialResult:
    """Train ``config`` into the open child run ``run`` and finish it. A configuration that
    cannot be trained here (a window that does not fit) or a training that raises ends the run
    as failed with the reason. ``trainer`` is :func:`jena.train.train` (tests swap it)."""
    started = time.perf_counter() if started is None else started
    epochs_done = [0]
    last_sent = [0.0]

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        epochs_done[0] = epoch
        run.log_epoch(epoch, metrics)
        events.epoch(number, epoch, metrics[T.METRIC_VAL_MAE])
        if report is not None:
            final = epoch >= fidelity.max_epochs  # a trial at its last epoch is not pruned
            report(epoch, metrics[T.METRIC_VAL_MAE], final)

    def on_batch(batch: int, batches: int) -> None:
        now = time.monotonic()
        if now - last_sent[0] >= BATCH_EVENT_INTERVAL_S or batch == batches:
            last_sent[0] = now
            events.progress(number, epochs_done[0] + 1, batch, batches)

    try:
        result = trainer(config, cache, fidelity, on_epoch=on_epoch, on_batch=on_batch,
                         should_stop=should_stop)  # fmt: skip
    except (ConfigError, TrialError) as exc:  # the window does not fit this record
        result = failed(str(exc))
    except Exception as exc:  # a run that raises fails; the caller goes on
        lost = as_infrastructure(exc)  # unless the disk or the store failed: not its fault
        if lost is exc:
            raise
        if lost is not None:
            raise lost from exc
        result = failed(f"{type(exc).__name__}: {exc}")
    if result.state == "completed" and result.model is not None:
        run.log_model(result.model, result.data_config, name=name,
                      params=config.active_dict(), step=result.best_epoch or 0)  # fmt: skip
    metrics: dict[str, Any] = {
        T.METRIC_BASELINE_VAL: result.baseline_val_mae,
        T.METRIC_FIT_S: result.duration_s,
        T.METRIC_WINDOWS: result.windows_seen,
    }
    run.log_metrics(metrics)
    run.finish(
        result.state,
        val_mae=result.val_mae,
        val_skill=result.val_skill,
        reason=result.reason,
        duration_s=time.perf_counter() - started,
        param_count=result.param_count or None,
        best_epoch=result.best_epoch,
    )
    return result
