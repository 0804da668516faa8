"""Run or resume a sweep, as Keras Tuner's ``search`` does: open the sweep (data, store,
experiment, what earlier invocations left), start a parent run, let the driver run its trials
(in this process or in worker processes) into a :class:`~sweeps.state.SweepState`, record why
it ended, and return a :class:`~sweeps.state.SweepSummary`. Printing is the caller's: a
:class:`SweepView` hears the notes before the trials and watches the state while they run."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from jena import tracking as T
from jena.data import Dataset
from jena.data import load as load_data
from jena.errors import ConfigError, InfrastructureError
from jena.linear import RidgeReference, ridge_reference
from jena.owner import owner_is_dead
from jena.recording import run_tags
from jena.splits import AUTO_PRESET, default_preset, default_preset_note, get_preset, season_note
from jena.tracking import names as N
from jena.train import DataCache, validation_targets

from .config import SweepConfig
from .drivers import Best, Driver, Resume, get_driver
from .faults import all_failed, unfittable
from .pool import run_workers
from .state import SweepState, SweepSummary, Timing
from .stop import why_ended
from .trial import make_context, make_space
from .warm import warm_start


class SweepView(Protocol):
    """Who watches a sweep: lines said before its trials (notes, warm start), and a live view
    of its state while they run."""

    def note(self, line: str) -> None: ...
    def watch(self, state: SweepState) -> AbstractContextManager[Any]: ...


class QuietView:
    def note(self, line: str) -> None:
        pass

    def watch(self, state: SweepState) -> AbstractContextManager[Any]:
        return contextlib.nullcontext()


@dataclass
class Opened:
    """A sweep opened for an invocation: its data, its store, and what is there already."""

    ds: Dataset
    cache: DataCache
    baseline: float  # persistence on the preset's validation windows, °C
    reference: RidgeReference  # the linear reference on the same windows
    season: str | None  # a chronological split of a short record: its splits' seasons differ
    preset_choice: str | None  # no preset given: which split the record got, and why (a line)
    tracker: T.Tracker
    shared: bool  # a store other machines write to: runs beat, any host reaps
    resume: Resume
    started: float  # time.monotonic()


def run_sweep(cfg: SweepConfig, view: SweepView | None = None) -> SweepSummary:
    """Run (or resume) a sweep. A sweep whose store already holds its total of trials runs
    nothing and creates no parent run: its summary says it is complete."""
    view = view or QuietView()
    _quiet_loggers()
    driver = get_driver(cfg)
    opened = open_sweep(cfg, driver)
    if opened.resume.finished >= cfg.trials:
        return summarise(cfg, driver, opened, None, None,
                         T.trials_frame(opened.tracker.tracking_uri, cfg.name))  # fmt: skip
    bounds_note = get_preset(cfg.data.preset).bounds_note(len(opened.ds))
    with opened.tracker.start_sweep(definition=cfg.to_dict(), params=_params(cfg, driver, opened),
                                    tags=_tags(cfg, opened, bounds_note)) as parent:  # fmt: skip
        if opened.shared:
            parent.start_heartbeat(cfg.faults.heartbeat_interval_s)
        parent.log_metrics({N.METRIC_BASELINE_VAL: opened.baseline,
                            N.METRIC_VAL_TARGETS: opened.reference.comparison.windows,
                            **opened.reference.metrics()})  # fmt: skip
        deadline = time.monotonic() + cfg.timeout_minutes * 60 if cfg.timeout_minutes else None
        before = T.best_trial(T.trials_frame(opened.tracker.tracking_uri, cfg.name))
        state = SweepState(
            f"sweep {cfg.name} · {cfg.driver}/{driver.algorithm} · {opened.ds.source} · "
            f"{cfg.data.preset}", total=cfg.trials, done_before=opened.resume.finished,
            baseline=opened.baseline, reference=opened.reference.mae,
            targets=opened.reference.comparison.windows,
            best=before.val_mae if before else None,
            best_number=before.number if before else None, deadline=deadline,
        )  # fmt: skip
        for note in _notes(opened, bounds_note):
            view.note(note)
        started_from = warm_start(cfg, driver, opened.ds, opened.resume.finished)
        if started_from:
            parent.set_tags({N.TAG_WARM_START: "\n".join(started_from)})
        for line in started_from:
            view.note(line)
        run_trials(cfg, driver, opened, parent.run_id, state, view)
        frame = T.trials_frame(opened.tracker.tracking_uri, cfg.name)  # the one read at the end
        if state.all_failed:
            raise all_failed(T.failure_reasons(frame, parent.run_id), state.ran)
        record_end(cfg, driver, opened, parent, state, frame)
    return summarise(cfg, driver, opened, parent.run_id, state, frame)


def _notes(opened: Opened, bounds_note: str | None) -> list[str]:
    """What the user should know before the trials: the split's bounds, its seasons, the linear
    reference a model must beat."""
    notes = [f"note: {opened.preset_choice}"] if opened.preset_choice else []
    notes += [f"note: {bounds_note}"] if bounds_note else []
    if opened.season:
        notes.append(f"note: {opened.season} (in a sweep: --set data.preset=blocked)")
    return [*notes, opened.reference.text()]


def open_sweep(cfg: SweepConfig, driver: Driver) -> Opened:
    """Check the store and the data before anything runs, claim the experiment for this data,
    close what dead processes left open, and read what earlier invocations did."""
    started = time.monotonic()
    T.set_retry_window(cfg.faults.tracking_retry_s)
    T.check_store(cfg.storage.tracking_uri)  # seconds, not minutes of silent retries
    ds = load_data(cfg.data.source)
    preset_choice = choose_preset(cfg, ds, _experiment_tags(cfg))
    cache = DataCache(ds, cfg.data.preset)
    never = unfittable(cfg, make_space(cfg), cache)
    if never is not None:
        raise ConfigError(
            f"{cfg.path or 'sweep'}: no trial of this sweep can fit the data: {never}"
        )
    prepared = cache.get()
    targets = validation_targets(prepared, cfg.fidelity)  # the rows every trial is scored on
    baseline = float(np.mean(prepared.persistence_at(targets)))
    reference = ridge_reference(prepared, targets=targets)  # seconds: what a model must beat
    season = season_note(cfg.data.preset, ds.frame.index)
    tracker = T.Tracker(cfg.storage.tracking_uri, experiment=cfg.name)
    claim_experiment(tracker, cfg, ds)
    shared = T.is_shared(tracker.tracking_uri)
    T.close_stale_runs(tracker, grace_s=cfg.faults.grace_period_s if shared else None)
    return Opened(ds, cache, baseline, reference, season, preset_choice, tracker, shared,
                  driver.resume(), started)  # fmt: skip


def choose_preset(cfg: SweepConfig, ds: Dataset, experiment_tags: Mapping[str, str]) -> str | None:
    """No preset given (``[data] preset = "auto"``): the sweep's split, chosen once per sweep
    and set on ``cfg`` (its driver, its workers, its runs and ``jena best`` take it from there):
    the split the sweep's experiment already holds, the named book models' own edition, else
    :func:`jena.splits.default_preset` of the record. The line that says which (None when a
    preset was given)."""
    if cfg.data.preset != AUTO_PRESET:
        return None
    held = experiment_tags.get(N.EXP_DATA_PRESET)
    if cfg.space.presets:
        from jena.book import BOOK_MODELS

        cfg.data.preset = BOOK_MODELS[cfg.space.presets[0]].data
        return f"the book's models on their own split, `{cfg.data.preset}`"
    if held:
        cfg.data.preset = held
        return f"the split this sweep started with, `{held}` (chosen then from the record)"
    chosen = default_preset(ds.frame.index)
    cfg.data.preset = chosen.name
    return default_preset_note(chosen, ds.frame.index)


def _experiment_tags(cfg: SweepConfig) -> dict[str, str]:
    """The tags of the sweep's experiment; none before its first invocation."""
    try:
        return T.experiment_tags(cfg.storage.tracking_uri, cfg.name)
    except ConfigError:
        return {}


def run_trials(
    cfg: SweepConfig, driver: Driver, opened: Opened, parent_run_id: str, state: SweepState,
    view: SweepView,
) -> None:  # fmt: skip
    """The driver's trials, here or in ``cfg.workers`` processes, into ``state`` (whether they
    all failed is the caller's to say, from the trials it reads once at the end)."""
    deadline = state.deadline
    state.started = time.monotonic()
    try:
        with view.watch(state):
            if cfg.workers > 1:
                run_workers(cfg, parent_run_id, state, deadline)
            else:
                ctx = make_context(cfg, state, parent_run_id, deadline)
                ctx.caches[cfg.data.preset] = opened.cache
                driver.run(ctx, deadline)
    except InfrastructureError as exc:
        raise InfrastructureError(
            f"{exc}. The sweep stopped; the trials this interrupted do not count: fix it and run "
            "the same command again to resume"
        ) from None
    if state.workers_wall_s is None:  # one process: its whole invocation
        state.workers_wall_s = time.monotonic() - opened.started


def record_end(
    cfg: SweepConfig, driver: Driver, opened: Opened, parent: T.SweepRun, state: SweepState,
    frame: pd.DataFrame,
) -> None:  # fmt: skip
    """Why the invocation ended, the best trial, timings and the compute at which each book
    model was beaten, on the parent run (``frame``: the sweep's trials, read at its end)."""
    held = driver.resume()  # the store now: other invocations may have finished trials too
    state.done_before = max(state.done_before, held.finished - state.ran)
    state.running_elsewhere = running_elsewhere(opened.tracker, parent.run_id)
    state.stop_reason = why_ended(cfg, state, state.deadline)
    best = T.best_trial(frame)
    if best is not None:
        parent.log_best(best.number, best.params, best.val_mae)
    timing = state.timing = _timing(opened, T.fit_seconds(frame, parent.run_id), state)
    beaten = T.compute_to_beat(frame)
    # tags, not metrics: the UI's charts compare trials, not the parents' timings
    parent.set_tags({N.TAG_STOP_REASON: state.stop_reason, "wall_s": timing.wall_s,
                     "workers_wall_s": timing.workers_wall_s, "fit_s": timing.fit_s,
                     "outside_fit_fraction": timing.outside_fit_fraction,
                     **{f"{N.TAG_BEAT_PREFIX}{k}": v for k, v in beaten.items()}})  # fmt: skip


def summarise(
    cfg: SweepConfig, driver: Driver, opened: Opened, parent_run_id: str | None,
    state: SweepState | None, frame: pd.DataFrame,
) -> SweepSummary:  # fmt: skip
    """What the invocation did and where the sweep stands (``frame``: its trials, read at its
    end; ``state`` None: the store held the total already)."""
    uri = opened.tracker.tracking_uri
    top = T.top_trials(frame)
    skills = [t.val_skill for t in top if t.val_skill is not None]
    beats = bool(skills) and max(skills) > 0
    shown = f"{max(skills):+.1%}" if skills else "none yet"
    summary = SweepSummary(
        experiment=cfg.name, tracking_uri=uri, runs_page=T.runs_page(opened.tracker.experiment_id),
        baseline_val_mae=opened.baseline, reference_val_mae=opened.reference.mae,
        total=cfg.trials, val_targets=opened.reference.comparison.windows,
        finished=opened.resume.finished if state is None else state.finished,
        workers=cfg.workers, complete=state is None, parent_run_id=parent_run_id,
        best=best_candidate(frame), beats_persistence=beats, top=top,
        advice=None if beats else not_yet_better(cfg, shown),
    )  # fmt: skip
    if state is None:
        summary.stop_reason = f"complete: {opened.resume.finished} of {cfg.trials} trials"
        return summary
    summary.counts, summary.stop_reason = dict(state.counts), state.stop_reason
    summary.notes = list(state.notes)
    summary.timing = state.timing
    return summary


def claim_experiment(tracker: T.Tracker, cfg: SweepConfig, ds: Dataset) -> None:
    """One sweep name = one record and one split: resuming on other data would rank val MAEs
    that cannot be compared, and resume a study whose trials were trained on something else."""
    mine = {N.EXP_DATA_DIGEST: ds.digest, N.EXP_DATA_PRESET: cfg.data.preset}
    for claimed in (False, True):  # again once set: another worker may have claimed it first
        tags = tracker.experiment_tags()
        for key, value in mine.items():
            if key in tags and tags[key] != value:
                data = key == N.EXP_DATA_DIGEST
                what = f"data {tags.get(N.EXP_DATA_SOURCE, '?')}" if data else "split"
                raise ConfigError(
                    f"sweep {cfg.name!r} already holds trials on {what} ({key} {tags[key]}), "
                    f"not {ds.source if data else cfg.data.preset} ({value}): start a "
                    "separate sweep with --name NEW, or resume it with the same --data"
                )
        if not claimed:
            tracker.set_missing_experiment_tags({**mine, N.EXP_DATA_SOURCE: ds.source})
    tracker.mark_model_training()


def running_elsewhere(tracker: T.Tracker, parent_run_id: str) -> int:
    """Trial runs RUNNING under another invocation, in a process that may be alive (any other
    host's, or a live one of this host)."""
    return sum(
        r.data.tags.get(N.TAG_RUN_TYPE) == N.RUN_TRIAL
        and r.data.tags.get(N.TAG_PARENT) != parent_run_id
        and not owner_is_dead(r.data.tags.get(N.TAG_HOST), r.data.tags.get(N.TAG_PID))
        for r in tracker.running_runs()
    )


def best_candidate(frame: pd.DataFrame) -> Best | None:
    """The sweep's best candidate (:func:`jena.tracking.best_trial`) as a driver's ``Best``."""
    found = T.best_trial(frame)
    return None if found is None else Best(found.number, found.params, found.val_mae)


def not_yet_better(cfg: SweepConfig, skill: str) -> str:
    """What to say (and to suggest) when no trial beats persistence yet."""
    todo = ["run more trials (--trials N)"]
    if not cfg.space.warm_start:
        todo.append("start from the book's models (--warm-start book)")
    todo.append("give each trial more fidelity (--set fidelity.steps_per_epoch=N)")
    return (
        "the sweep has not yet found a model better than persistence (best validation skill "
        f"{skill}): {', '.join(todo[:-1])}, or {todo[-1]}"
    )


def _timing(opened: Opened, fit_s: float, state: SweepState) -> Timing:
    wall = time.monotonic() - opened.started
    return Timing(wall_s=wall, workers_wall_s=state.workers_wall_s or wall, fit_s=fit_s)


def _params(cfg: SweepConfig, driver: Driver, opened: Opened) -> dict[str, Any]:
    return {"driver": cfg.driver, "trials": cfg.trials, "workers": cfg.workers, "seed": cfg.seed,
            "data_source": opened.ds.source, "data_preset": cfg.data.preset,
            "sampler": driver.algorithm, "max_epochs": cfg.fidelity.max_epochs}  # fmt: skip


def _tags(cfg: SweepConfig, opened: Opened, bounds_note: str | None) -> dict[str, Any]:
    return {
        **({N.TAG_SWEEP_FILE: cfg.path} if cfg.path else {}),
        N.TAG_BOUNDS_NOTE: bounds_note,
        N.TAG_SEASON_NOTE: opened.season,
        N.TAG_PRESET_CHOICE: opened.preset_choice,
        **run_tags(cfg.name, opened.ds, cfg.data.preset, driver=cfg.driver),
    }


def _quiet_loggers() -> None:
    """Tracker and TensorFlow chatter (retracing warnings) would break the live display; so
    would MLflow's traceback of a database that went away (the sweep says it in one line)."""
    for name, level in (("mlflow", logging.WARNING), ("alembic", logging.WARNING),
                        ("tensorflow", logging.ERROR), ("absl", logging.ERROR),
                        ("mlflow.store.db.utils", logging.CRITICAL)):  # fmt: skip
        logging.getLogger(name).setLevel(level)
