"""One trial, the same for every driver and every trainer: proposed values → configuration →
one nested MLflow run, whose life (open, record, end) is :mod:`jena.recording`'s, as a refit
seed's. Trained alone (:func:`run_trial`) or as a member of a pack (:func:`start_trial`, then
the packed trainer runs its steps through the same :class:`~jena.recording.Recorder`); a driver
only proposes the values."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

from jena import signals
from jena import tracking as T
from jena.book import BookModel, book_model, preset_defaults
from jena.config import TrialConfig
from jena.data import Dataset
from jena.data import load as load_data
from jena.errors import ConfigError, TrialError
from jena.recording import Events, Recorder, Report, RunContext, failed, run_tags
from jena.space import PRESET, SPACE, Space
from jena.tracking import names as N
from jena.train import Fidelity, TrialResult, train

from .config import SweepConfig


def make_space(cfg: SweepConfig) -> Space:
    """The part of the one search space this sweep explores (or its named book models)."""
    return SPACE.subspace(cfg.space.include, cfg.space.fixed, cfg.space.presets, cfg.space.ranges)


@dataclass(frozen=True)
class Point:
    """A proposed point, resolved: what to train, on which split, for how long."""

    config: TrialConfig
    data_preset: str
    book: BookModel | None
    fidelity: Fidelity


@dataclass
class SweepContext(RunContext):
    """Everything a worker needs to run trials (rebuilt in each worker process); its trials'
    runs are children of the invocation's ``parent_run_id``."""

    cfg: SweepConfig
    space: Space

    @property
    def fidelity(self) -> Fidelity:
        return self.cfg.fidelity

    def should_stop(self) -> str | None:
        """Asked between two batches: a stop signal received meanwhile is raised here (the
        trial is lost, :func:`jena.signals.check`), else :meth:`out_of_time`."""
        signals.check()
        return self.out_of_time()

    def budget_text(self) -> str:
        return f"the sweep's time budget ({self.cfg.timeout_minutes or 0:g} min)"

    @property
    def base(self) -> TrialConfig:
        """The configuration a search starts from: the data preset's defaults."""
        return preset_defaults(self.cfg.data.preset, self.cfg.seed)

    def record(self) -> Dataset:
        """The sweep's record, loaded by its first trial."""
        first = next(iter(self.caches.values()), None)
        return first.dataset if first is not None else load_data(self.cfg.data.source)

    def resolve(self, values: dict[str, Any], max_epochs: int | None = None) -> Point:
        """The point of ``values``; a point that makes no valid configuration is a TrialError."""
        try:
            book = book_model(values[PRESET]) if PRESET in values else None
            data_preset = book.data if book is not None else self.cfg.data.preset
            config = self.space.to_config(values, self.base).validate()
        except ConfigError as exc:
            raise TrialError(str(exc)) from None
        fidelity = self.fidelity
        if book is not None and fidelity.preset_epochs:
            fidelity = dataclasses.replace(
                fidelity,
                max_epochs=book.epochs,
                steps_per_epoch=fidelity.steps_per_epoch or book.steps_per_epoch,
                patience=max(fidelity.patience, book.epochs),
            )
        if max_epochs is not None:
            fidelity = dataclasses.replace(fidelity, max_epochs=max_epochs)
        return Point(config, data_preset, book, fidelity)


def make_context(
    cfg: SweepConfig, events: Events, parent_run_id: str, deadline: float | None = None
) -> SweepContext:
    return SweepContext(
        cfg=cfg,
        space=make_space(cfg),
        events=events,
        parent_run_id=parent_run_id,
        tracker=T.Tracker(cfg.storage.tracking_uri, experiment=cfg.name),
        deadline=deadline,
    )


def summarise(point: Point) -> str:
    """One line for the live display: the model and the settings that matter."""
    c = point.config
    if point.book is not None:
        head = point.book.name
    elif c.is_recurrent:
        head = f"{c.architecture}{'x'.join(map(str, c.rnn_units))}"
        head += " bi" if c.bidirectional else ""
        head += " rev" if c.reverse else ""
        if c.dropout or c.recurrent_dropout:
            head += f" do={c.dropout:.2f}/{c.recurrent_dropout:.2f}"
    else:
        head = c.architecture
    return (
        f"{head}  lr={c.learning_rate:.1e} {c.optimizer} {c.loss} bs={c.batch_size}  "
        f"every {c.sampling_rate * 10} min × {c.sequence_length}"
    )


def run_name(number: int, point: Point | None = None) -> str:
    """What the MLflow UI lists for a trial: ``t0005-lstm-64u``, ``t0002-bigru-32x32u``,
    ``t0007-conv1d-3x16f``, ``t0001-dense-16``, ``t0003-lstm_dropout`` (a book model)."""
    head = f"t{int(number):04d}"
    if point is None:
        return head
    c = point.config
    if point.book is not None:
        body = point.book.name
    elif c.is_recurrent:
        body = f"{'bi' if c.bidirectional else ''}{c.architecture}-"
        body += "x".join(map(str, c.rnn_units)) + "u" + ("-rev" if c.reverse else "")
    elif c.is_convolutional:
        body = f"{c.architecture}-{c.conv_layers}x{c.conv_filters[0]}f"
    else:
        body = f"{c.architecture}-{'x'.join(map(str, c.dense_units)) or 'linear'}"
    return f"{head}-{body}"


def sweep_tags(ctx: SweepContext, data_preset: str) -> dict[str, Any]:
    """What every trial run of the sweep is tagged with, trained or not."""
    return run_tags(ctx.cfg.name, ctx.cache(data_preset).dataset, data_preset,
                    driver=ctx.cfg.driver)  # fmt: skip


def trial_tags(ctx: SweepContext, point: Point) -> dict[str, Any]:
    tags = run_tags(ctx.cfg.name, ctx.cache(point.data_preset).dataset, point.data_preset,
                    driver=ctx.cfg.driver, config=point.config)  # fmt: skip
    if point.book is not None:
        tags[N.TAG_MODEL_PRESET] = point.book.name
    return tags


def search_params(values: dict[str, Any]) -> dict[str, Any]:
    """The raw proposal, as params (``hp.units``: ``names.PARAM_SEARCH_PREFIX``)."""
    return {f"{N.PARAM_SEARCH_PREFIX}{k}": v for k, v in values.items()}


def record_failure(ctx: SweepContext, number: int, values: dict[str, Any], reason: str) -> None:
    """A trial that failed before it could train (an invalid point, a sampler that raised): a
    failed child run with the reason."""
    tags = sweep_tags(ctx, ctx.cfg.data.preset)
    if isinstance(values.get("architecture"), str):
        tags[N.TAG_ARCHITECTURE] = values["architecture"]
    ctx.fail(number, name=run_name(number), tags=tags, params=search_params(values),
             reason=reason)  # fmt: skip


@dataclass
class TrialRecording:
    """A started trial: its open child run and its :class:`~jena.recording.Recorder`, whose
    hooks a trainer calls; :meth:`end` records its result."""

    ctx: SweepContext
    number: int
    point: Point
    recorder: Recorder

    def end(self, result: TrialResult) -> TrialResult:
        """Record ``result`` and end its run (:meth:`jena.recording.Recorder.end`). A trial the
        time budget stopped (not the pruner) ends ``stopped``: with a finished epoch, a
        candidate like a completed trial (jena.tracking's ``candidates``)."""
        if result.stopped and result.state == "pruned":
            result.state = "stopped"
        return self.recorder.end(result)


def start_trial(
    ctx: SweepContext,
    number: int,
    values: dict[str, Any],
    *,
    report: Report | None = None,
    max_epochs: int | None = None,
    tags: dict[str, str] | None = None,
    note: str = "",
) -> TrialRecording | TrialResult:
    """Open trial ``number``'s child run of the sweep's parent run (its configuration's active
    fields and the raw proposal as params; ``tags``: more, e.g. the book model a warm start
    proposed) and tell the display (``note``: after its summary). A point that makes no valid
    configuration is recorded as failed instead, and its failed result returned."""
    started = time.perf_counter()
    try:
        point = ctx.resolve(values, max_epochs)
    except TrialError as exc:  # an invalid point fails before training; the sweep goes on
        record_failure(ctx, number, values, str(exc))
        return failed(str(exc))
    recorder = ctx.open(number, point.config, point.fidelity, preset=point.data_preset,
                        name=run_name(number, point), summary=summarise(point) + note,
                        tags={**trial_tags(ctx, point), **(tags or {})},
                        params=search_params(values), report=report, started=started)  # fmt: skip
    return TrialRecording(ctx, number, point, recorder)


def run_trial(
    ctx: SweepContext,
    number: int,
    values: dict[str, Any],
    *,
    report: Report | None = None,
    max_epochs: int | None = None,
    tags: dict[str, str] | None = None,
) -> TrialResult:
    """Train one proposed point alone and record it (see :func:`start_trial`). A point that
    cannot be trained (an invalid combination, a window that does not fit) or a training that
    raises ends the trial as failed with the reason. ``report`` is the driver's pruning hook."""
    trial = start_trial(ctx, number, values, report=report, max_epochs=max_epochs, tags=tags)
    if isinstance(trial, TrialResult):
        return trial
    with trial.recorder.run:  # closed KILLED/FAILED if anything below raises
        cache = ctx.cache(trial.point.data_preset)
        with signals.deferred():  # a stop signal stops it between two batches: lost
            result = trial.recorder.train(cache, trainer=train, should_stop=ctx.should_stop)
        return trial.end(result)
