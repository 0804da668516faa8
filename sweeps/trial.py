"""One trial, the same for every driver and every trainer: proposed values → configuration →
one nested MLflow run. Trained alone (:func:`run_trial`) or as a member of a pack
(:func:`start_trial`, then the packed trainer runs its steps through the same
:class:`~jena.recording.Recorder`); a driver only proposes the values."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

from jena import signals
from jena import tracking as T
from jena.book import BookModel, book_model, preset_defaults
from jena.config import TrialConfig
from jena.data import load as load_data
from jena.errors import ConfigError, TrialError
from jena.faults import as_infrastructure
from jena.recording import Events, Recorder, Report, failed
from jena.space import PRESET, SPACE, Space
from jena.splits import Split
from jena.tracking import names as N
from jena.train import DataCache, Fidelity, TrialResult, train

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
class SweepContext:
    """Everything a worker needs to run trials (rebuilt in each worker process)."""

    cfg: SweepConfig
    space: Space
    events: Events
    parent_run_id: str
    tracker: T.Tracker
    deadline: float | None = None  # time.monotonic() at which running trials are stopped
    caches: dict[str, DataCache] = field(default_factory=dict)

    @property
    def fidelity(self) -> Fidelity:
        return self.cfg.fidelity

    def should_stop(self) -> str | None:
        """Asked between two batches: a stop signal received meanwhile is raised here (the
        trial is lost, :func:`jena.signals.check`), else :meth:`out_of_time`."""
        signals.check()
        return self.out_of_time()

    def out_of_time(self) -> str | None:
        """The reason to stop a running trial now (the sweep's time budget), or None."""
        if self.deadline is not None and time.monotonic() >= self.deadline:
            minutes = self.cfg.timeout_minutes or 0
            return f"the sweep's time budget ({minutes:g} min) ran out"
        return None

    @property
    def base(self) -> TrialConfig:
        """The configuration a search starts from: the data preset's defaults."""
        return preset_defaults(self.cfg.data.preset, self.cfg.seed)

    def cache(self, data_preset: str) -> DataCache:
        if data_preset not in self.caches:
            first = next(iter(self.caches.values()), None)
            ds = first.dataset if first is not None else load_data(self.cfg.data.source)
            self.caches[data_preset] = DataCache(ds, data_preset)
        return self.caches[data_preset]

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


def datasets(ctx: SweepContext, point: Point) -> list[T.DatasetInfo]:
    """The training and validation splits this trial reads, as MLflow dataset inputs."""
    cache = ctx.cache(point.data_preset)
    ds, prepared = cache.dataset, cache.for_config(point.config)
    source, kind = ds.source, "local"
    if source == "jena":
        from jena.data import JENA_URLS

        source, kind = JENA_URLS[0], "http"
    elif source.startswith("synthetic("):
        source, kind = f"jena.synthetic.generate: {source}", "code"
    c = point.config
    out = []
    splits: tuple[tuple[Split, str], ...] = (("train", "training"), ("val", "validation"))
    for split, context in splits:
        lo, hi = prepared.bounds[split]  # the first and the stop row of its segments
        segments = prepared.bounds.segments(split)
        windows = len(prepared.starts(split, c.sampling_rate, c.sequence_length))
        out.append(T.DatasetInfo(
            name=f"jena-{point.data_preset}-{split}",
            digest=ds.digest,
            source=source,
            source_type=kind,
            context=context,
            columns=prepared.feature_names,
            profile={"split": split, "rows": prepared.bounds.rows(split), "first_row": lo,
                     "stop_row": hi, "segments": len(segments), "windows": windows,
                     "record_rows": prepared.rows},
        ))  # fmt: skip
    return out


def sweep_tags(ctx: SweepContext, data_preset: str) -> dict[str, str]:
    """What every trial run of the sweep is tagged with, trained or not."""
    cache = ctx.cache(data_preset)
    return {
        N.TAG_DRIVER: ctx.cfg.driver,
        N.TAG_SWEEP: ctx.cfg.name,
        N.TAG_DATA_SOURCE: cache.dataset.source,
        N.TAG_DATA_DIGEST: cache.dataset.digest,
        N.TAG_PRESET: data_preset,
    }


def trial_tags(ctx: SweepContext, point: Point) -> dict[str, str]:
    tags = {
        **sweep_tags(ctx, point.data_preset),
        N.TAG_ARCHITECTURE: point.config.architecture,
        N.TAG_SEED: str(point.config.seed),
    }
    if point.book is not None:
        tags[N.TAG_MODEL_PRESET] = point.book.name
    return tags


def search_params(values: dict[str, Any]) -> dict[str, Any]:
    """The raw proposal, as params (``hp.units``: ``names.PARAM_SEARCH_PREFIX``)."""
    return {f"{N.PARAM_SEARCH_PREFIX}{k}": v for k, v in values.items()}


def record_failure(ctx: SweepContext, number: int, values: dict[str, Any], reason: str) -> None:
    """A trial that failed before it could train (an invalid point, a sampler that raised): a
    failed child run with the reason."""
    ctx.events.trial_started(number, "failed before training", 0)
    tags = sweep_tags(ctx, ctx.cfg.data.preset)
    if isinstance(values.get("architecture"), str):
        tags[N.TAG_ARCHITECTURE] = values["architecture"]
    with ctx.tracker.trial(ctx.parent_run_id, number, search_params(values), tags,
                           run_name=run_name(number)) as run:  # fmt: skip
        run.finish("failed", reason=reason)
    ctx.events.trial_finished(number, "failed", None, 0.0)


@dataclass
class TrialRecording:
    """A started trial: its open child run and its :class:`~jena.recording.Recorder`, whose
    hooks a trainer calls; :meth:`end` records its result."""

    ctx: SweepContext
    number: int
    point: Point
    recorder: Recorder

    def end(self, result: TrialResult) -> TrialResult:
        """Record ``result`` (the model, the compute, the state) and tell the display. Tracking
        that breaks now fails the trial (its run is closed); a fault of the infrastructure is
        raised. A trial the time budget stopped (not the pruner) ends ``stopped``: with a
        finished epoch, a candidate like a completed trial (jena.tracking's ``candidates``)."""
        if result.stopped and result.state == "pruned":
            result.state = "stopped"
        try:
            self.recorder.finish(result)
        except Exception as exc:
            if as_infrastructure(exc) is not None:
                raise
            self.recorder.run.__exit__(type(exc), exc, exc.__traceback__)
            result = failed(f"{type(exc).__name__}: {exc}")
        note = result.reason if result.stopped else None
        seconds = time.perf_counter() - self.recorder.started
        self.ctx.events.trial_finished(self.number, result.state, result.val_mae, seconds,
                                       result.val_skill, note)  # fmt: skip
        result.model = None  # free memory; the model lives in MLflow now
        return result


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
    params = {**point.config.active_dict(), **search_params(values)}
    ctx.events.trial_started(number, summarise(point) + note, point.fidelity.max_epochs)
    name = run_name(number, point)
    run = ctx.tracker.trial(ctx.parent_run_id, number, params,
                            {**trial_tags(ctx, point), **(tags or {})}, run_name=name)  # fmt: skip
    try:
        run.log_datasets(datasets(ctx, point))
    except BaseException as exc:
        run.__exit__(type(exc), exc, exc.__traceback__)
        raise
    recorder = Recorder(run, point.config, point.fidelity, number=number, events=ctx.events,
                        name=name, report=report, started=started)  # fmt: skip
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
