"""Run or resume a sweep: the data, the experiment's claim on it, the parent run, the live
display, the driver's loop, and the summary. The driver comes from :data:`sweeps.registry.DRIVERS`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from jena import tracking as T
from jena.data import Dataset
from jena.data import load as load_data
from jena.errors import ConfigError, InfrastructureError, JenaError
from jena.splits import get_preset
from jena.train import DataCache

from .config import SweepConfig
from .display import Board, fmt_time, summary_table
from .drivers import Driver, get_driver
from .faults import all_failed, unfittable
from .trial import book_warm_points, make_context, make_space, sweep_warm_points


def claim_experiment(tracker: T.Tracker, cfg: SweepConfig, ds: Dataset) -> None:
    """One sweep name = one record and one split: resuming on other data would rank val MAEs
    that cannot be compared, and resume a study whose trials were trained on something else."""
    mine = {T.EXP_DATA_DIGEST: ds.digest, T.EXP_DATA_PRESET: cfg.data.preset}
    for claimed in (False, True):  # again once set: another worker may have claimed it first
        tags = tracker.experiment_tags()
        for key, value in mine.items():
            if key in tags and tags[key] != value:
                data = key == T.EXP_DATA_DIGEST
                what = f"data {tags.get(T.EXP_DATA_SOURCE, '?')}" if data else "split"
                raise ConfigError(
                    f"sweep {cfg.name!r} already holds trials on {what} ({key} {tags[key]}), "
                    f"not {ds.source if data else cfg.data.preset} ({value}): start a "
                    "separate sweep with --name NEW, or resume it with the same --data"
                )
        if not claimed:
            tracker.set_missing_experiment_tags({**mine, T.EXP_DATA_SOURCE: ds.source})
    tracker.mark_model_training()


def run_sweep(cfg: SweepConfig, *, console: Any = None, quiet: bool = False) -> dict[str, Any]:
    """Run (or resume) a sweep; returns a summary dict (also printed as a table).

    A sweep whose store already holds its total of trials runs nothing and creates no parent
    run: it says it is complete."""
    from rich.console import Console

    # Tracker and TensorFlow chatter (retracing warnings) would break the live display; so
    # would MLflow's traceback of a database that went away (the sweep says it in one line).
    for name, level in (("mlflow", logging.WARNING), ("alembic", logging.WARNING),
                        ("tensorflow", logging.ERROR), ("absl", logging.ERROR),
                        ("mlflow.store.db.utils", logging.CRITICAL)):  # fmt: skip
        logging.getLogger(name).setLevel(level)
    if console is None:
        console = Console(stderr=True)
        if not console.is_terminal:  # piped: tables keep whole names
            console = Console(stderr=True, width=160)
    driver = get_driver(cfg.driver)
    started = time.monotonic()
    T.set_retry_window(cfg.faults.tracking_retry_s)
    T.check_store(cfg.storage.tracking_uri)  # seconds, not minutes of silent retries
    ds = load_data(cfg.data.source)
    cache = DataCache(ds, cfg.data.preset)
    never = unfittable(cfg, make_space(cfg), cache)
    if never is not None:
        where = cfg.path or "sweep"
        raise ConfigError(f"{where}: no trial of this sweep can fit the data: {never}")
    baseline, _ = cache.get().persistence_mae("val")
    tracker = T.Tracker(cfg.storage.tracking_uri, experiment=cfg.name)
    claim_experiment(tracker, cfg, ds)
    shared = T.is_shared(tracker.tracking_uri)  # several machines: runs beat, any host reaps
    T.close_stale_runs(tracker, grace_s=cfg.faults.grace_period_s if shared else None)
    before = driver.resume(cfg)
    summary: dict[str, Any] = {
        "experiment": cfg.name,
        "parent_run_id": None,
        "baseline_val_mae": baseline,
        "counts": {"completed": 0, "pruned": 0, "failed": 0},
        "finished": before.finished,
        "tracking_uri": tracker.tracking_uri,
    }
    if before.finished >= cfg.trials:
        best = driver.best(cfg)
        reason = f"complete: {before.finished} of {cfg.trials} trials"
        summary.update(best=None if best is None else vars(best), complete=True, stop_reason=reason)
        if not quiet:
            console.print(
                f"sweep {cfg.name!r} is complete: {before.finished} of {cfg.trials} trials "
                "(nothing to run, no run created). Raise the total (--trials N) to search more."
            )
            print_summary(cfg, tracker, baseline, console)
        return summary

    algorithm = driver.algorithm(cfg)
    params = {
        "driver": cfg.driver,
        "trials": cfg.trials,
        "workers": cfg.workers,
        "seed": cfg.seed,
        "data_source": ds.source,
        "data_preset": cfg.data.preset,
        "sampler": algorithm,
        "max_epochs": cfg.fidelity.max_epochs,
    }
    bounds_note = get_preset(cfg.data.preset).bounds_note(len(ds))
    tags = {
        **({T.TAG_SWEEP_FILE: cfg.path} if cfg.path else {}),
        T.TAG_BOUNDS_NOTE: bounds_note,
        T.TAG_DRIVER: cfg.driver,
        T.TAG_SWEEP: cfg.name,
        T.TAG_DATA_SOURCE: ds.source,
        T.TAG_DATA_DIGEST: ds.digest,
        T.TAG_PRESET: cfg.data.preset,
    }
    # the effective definition (the file plus command-line overrides) travels with the run
    with tracker.start_sweep(definition=cfg.to_dict(), params=params, tags=tags) as parent:
        if shared:
            parent.start_heartbeat(cfg.faults.heartbeat_interval_s)
        parent.log_metrics({T.METRIC_BASELINE_VAL: baseline})
        deadline = time.monotonic() + cfg.timeout_minutes * 60 if cfg.timeout_minutes else None
        board = Board(
            f"sweep {cfg.name} · {cfg.driver}/{algorithm} · {ds.source} · {cfg.data.preset}",
            total=cfg.trials,
            done_before=before.finished,
            baseline=baseline,
            best_before=before.best_val_mae,
            deadline=deadline,
            best_number_before=before.best_number,
        )
        if bounds_note and not quiet:
            console.print(f"[yellow]note:[/] {bounds_note}")
        started_from = warm_start(cfg, driver, ds, before.finished)
        if started_from:
            parent.set_tags({T.TAG_WARM_START: "\n".join(started_from)})
        for line in [] if quiet else started_from:
            console.print(line, markup=False, soft_wrap=True)
        ctx = make_context(cfg, board, parent.run_id, deadline)
        ctx.caches[cfg.data.preset] = cache
        run_started = time.monotonic()
        try:
            if quiet:
                driver.run(ctx, board, deadline)
            else:
                with board.live(console):
                    driver.run(ctx, board, deadline)
            if board.counts["failed"] and not board.counts["completed"] + board.counts["pruned"]:
                raise all_failed(failure_reasons(tracker, cfg.name, parent.run_id),
                                 board.counts["failed"])  # fmt: skip
        except JenaError as exc:
            if not quiet:
                console.print()  # the display's last line is ended before the error is said
            if isinstance(exc, InfrastructureError):
                raise InfrastructureError(
                    f"{exc}. The sweep stopped; the trials this interrupted do not count: fix it "
                    "and run the same command again to resume"
                ) from None
            raise
        board.stop_reason = board.stop_reason or stop_reason(cfg, board, deadline)
        best = driver.best(cfg)
        if best is not None:
            parent.log_best(best.number, best.params, best.val_mae)
        wall_s = time.monotonic() - started
        workers_s = board.workers_wall_s
        if workers_s is None:  # one worker: the whole invocation; several: they ran side by side
            ran = time.monotonic() - run_started
            workers_s = wall_s if cfg.workers == 1 else ran * cfg.workers
        timing = _timing(tracker, cfg.name, parent.run_id, wall_s, workers_s)
        # tags, not metrics: the UI's charts compare trials, not the parents' timings
        beaten = compute_to_beat(T.trials_frame(tracker.tracking_uri, cfg.name))
        parent.set_tags({T.TAG_STOP_REASON: board.stop_reason, **timing,
                         **{f"{T.TAG_BEAT_PREFIX}{k}": v for k, v in beaten.items()}})  # fmt: skip
    summary.update(
        parent_run_id=parent.run_id,
        counts=board.counts,
        finished=board.finished,
        best=None if best is None else vars(best),
        stop_reason=board.stop_reason,
        stopped=list(board.notes),
        beats_persistence=beats_persistence(tracker, cfg.name),
        **timing,
    )
    if not quiet:
        console.print()
        print_summary(cfg, tracker, baseline, console)
        console.print(f"ended: {board.stop_reason}")
        for note in board.notes:
            console.print(f"  {note}")
        share = 1 - timing["outside_fit_fraction"]
        if cfg.workers == 1:
            spent = f"{timing['fit_s']:.0f} s in model.fit ({share:.0%})"
        else:
            spent = (f"{timing['fit_s']:.0f} s in model.fit = {share:.0%} of the "
                     f"{cfg.workers} workers' {timing['workers_wall_s']:.0f} s")  # fmt: skip
        console.print(f"this run: {fmt_time(wall_s)} wall, {spent}; parent run {parent.run_id}")
    return summary


def failure_reasons(tracker: T.Tracker, experiment: str, parent_run_id: str) -> list[str]:
    """The failure reasons of the failed trials of one invocation (its parent run)."""
    frame = T.trials_frame(tracker.tracking_uri, experiment)
    column = f"tags.{T.TAG_FAILURE}"
    if frame.empty or column not in frame:
        return []
    mine = frame[(frame["parent_run_id"] == parent_run_id) & (frame["state"] == "failed")]
    return [str(r) for r in mine[column].dropna()]


def warm_start(cfg: SweepConfig, driver: Driver, ds: Dataset, finished: int) -> list[str]:
    """Start a new sweep from the book's models or another sweep's trials; what was done and
    what was skipped, one line each (nothing once the sweep has trials)."""
    source = cfg.space.warm_start  # "book", another sweep's name, or "" / unset: none
    if not source or finished:
        return []
    space = make_space(cfg)
    if source == "book":
        points, skipped = book_warm_points(cfg, space)
    else:
        try:
            other = T.experiment_tags(cfg.storage.tracking_uri, source)
        except ConfigError as exc:
            raise ConfigError(f"--warm-start {source}: {exc}") from None
        if other.get(T.EXP_DATA_DIGEST) not in (None, ds.digest):
            raise ConfigError(
                f"--warm-start {source}: that sweep was run on data "
                f"{other.get(T.EXP_DATA_SOURCE, '?')} (digest {other.get(T.EXP_DATA_DIGEST)}), "
                f"not {ds.source} ({ds.digest})"
            )
        points, skipped = sweep_warm_points(cfg, space, source)
        if not points:
            raise ConfigError(
                f"--warm-start {source}: none of its completed trials is a point of this "
                f"sweep's space ({len(skipped)} skipped; first: "
                f"{skipped[0] if skipped else 'it has no completed trial'})"
            )
    notes = driver.warm_start(cfg, points) if points else []
    return notes + [f"  skipped {line}" for line in skipped]


def compute_to_beat(frame: Any) -> dict[str, str]:
    """For each book model the sweep started from: the training compute (seconds in model.fit,
    trials in the order they started) at which another trial first beat its validation MAE."""
    column = f"tags.{T.TAG_WARM_START}"
    if frame.empty or column not in frame.columns:
        return {}
    rows = frame.sort_values("start_time", kind="stable").to_dict("records")
    fit = [T.finite(r.get(f"metrics.{T.METRIC_FIT_S}")) or 0.0 for r in rows]
    out = {}
    for book in rows:
        tag, target = book.get(column), T.finite(book["val_mae"])
        if not (isinstance(tag, str) and tag.startswith("book:")) or target is None:
            continue
        spent, found = 0.0, "not yet"
        for r, seconds in zip(rows, fit, strict=True):
            spent += seconds
            value = T.finite(r["val_mae"]) if r.get("state") == "completed" else None
            if r is not book and value is not None and value < target:
                found = f"{spent:.0f} s"
                break
        out[tag.removeprefix("book:")] = found
    return out


def stop_reason(cfg: SweepConfig, board: Board, deadline: float | None) -> str:
    """Which rule ended this invocation."""
    if board.finished >= cfg.trials:
        return f"trial budget reached ({board.finished} of {cfg.trials} trials)"
    if deadline is not None and time.monotonic() >= deadline:
        return f"time budget reached ({cfg.timeout_minutes:g} min)"
    return f"the search is over ({board.finished} of {cfg.trials} trials: the sampler has no more)"


def beats_persistence(tracker: T.Tracker, experiment: str) -> bool:
    """Whether a completed trial has a positive skill (beats persistence on its own windows)."""
    done = T.completed_trials(T.trials_frame(tracker.tracking_uri, experiment))
    if done.empty:
        return False
    skills = done["val_skill"].map(T.finite).dropna()
    return bool(len(skills) and skills.max() > 0)


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


def _timing(
    tracker: T.Tracker, experiment: str, parent_run_id: str, wall_s: float, workers_s: float
) -> dict[str, float]:
    """Wall time of this invocation, the workers' summed wall time, time inside
    ``model.fit``, and the share of the workers' time spent outside it (data loading, model
    building, tracking, the tuner's own work)."""
    frame = T.trials_frame(tracker.tracking_uri, experiment)
    fit_s = 0.0
    column = f"metrics.{T.METRIC_FIT_S}"
    if len(frame) and column in frame:
        mine = frame[frame["parent_run_id"] == parent_run_id]
        fit_s = float(mine[column].fillna(0).sum())
    return {
        "wall_s": wall_s,
        "workers_wall_s": workers_s,
        "fit_s": fit_s,
        "outside_fit_fraction": 1 - fit_s / workers_s if workers_s else 0.0,
    }


def print_summary(
    cfg: SweepConfig, tracker: T.Tracker, baseline: float, console: Any, top: int = 10
) -> None:
    frame = T.trials_frame(tracker.tracking_uri, cfg.name)
    rows: list[dict[str, Any]] = []
    done = T.completed_trials(frame)
    for _, r in done.head(top).iterrows():
        row = {k: r.get(k) for k in ("number", "driver", "val_mae", "state")}
        row["val_skill"] = T.finite(r.get("val_skill"))
        row["architecture"] = T.label(r)
        count = T.finite(r.get("param_count"))
        row["param_count"] = f"{int(count):,}" if count is not None else ""
        rows.append(row)
    console.print(summary_table(rows, baseline, f"top trials of experiment {cfg.name!r}"))
    skills = [r["val_skill"] for r in rows if r["val_skill"] is not None]
    if not skills or max(skills) <= 0:
        shown = f"{max(skills):+.1%}" if skills else "none yet"
        console.print(f"note: {not_yet_better(cfg, shown)}", style="bold yellow", markup=False)
    uri = tracker.tracking_uri
    if uri.startswith("sqlite:///"):
        command = f"nox -s ui   (or: mlflow ui --backend-store-uri {uri})"
        host = "http://127.0.0.1:5000"
    elif T.is_remote(uri):
        command, host = "", uri.rstrip("/")
    else:
        command, host = f"mlflow ui --backend-store-uri {uri}", "http://127.0.0.1:5000"
    if command:
        console.print(f"Open the MLflow UI:  {command}", markup=False, soft_wrap=True)
    console.print(
        f"then the trials, best first:  {host}/{T.runs_page(tracker.experiment_id)}",
        markup=False,
        soft_wrap=True,
    )
