"""Optuna driver: maps ``jena.space`` Params onto an Optuna trial and runs the trainer.

Storage: by default an Optuna *journal file* under ``mlruns/optuna/`` — an append-only log
guarded by file locks, safe for several processes on one machine (several writers on one SQLite
file are known to fail with "database is locked"). Any storage URL works instead
(``sqlite:///…``, ``postgresql://…``; ``memory`` for a throwaway single-process study).

Budget: ``trials`` is the total over all invocations; a re-run resumes the study and adds trials
until the total is reached. Workers take a file lock around "count the trials, ask for one",
so several workers never overshoot it.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path
from typing import Any, cast

import optuna
from optuna.trial import TrialState

from jena import tracking as T
from jena.devices import share_device
from jena.errors import ConfigError, InfrastructureError, JenaError, WorkerError
from jena.owner import owner, owner_is_dead
from jena.train import TrialPruned

from . import optuna_faults as F
from .config import SweepConfig
from .display import Board, QueueSink, pump
from .drivers import Best, Resume
from .faults import FailureStreak, TooManyFailures
from .optuna_study import (  # the study's side, shared with the packed loop
    FINISHED,
    IMPORTED,
    completed,
    distribution,
    lock_path,
    run_here,
    study,
    suggest,
    tell,
    tell_result,
)
from .stop import stop_reason
from .trial import SweepContext, make_context, make_space, record_failure, run_trial


# ------------------------------------------------------------------ the driver
def _fail_stale(s: optuna.Study, cfg: SweepConfig) -> None:
    """A RUNNING trial whose process on this host is gone (kill -9, power loss) is failed (and
    run again, as a stale trial of the heartbeat is: sweeps/optuna_faults.py); on an RDB
    storage, so is one of any host whose heartbeat stopped."""
    for t in s.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if owner_is_dead(t.user_attrs.get("host"), t.user_attrs.get("pid")):
            failed = F.fail(s, t._trial_id, T.STALE_REASON)
            if failed is not None:
                F.stale_trial(s, failed, T.STALE_REASON, cfg)
    F.fail_stale(s, cfg)


class OptunaDriver:
    name = "optuna"

    def warm_start(self, cfg: SweepConfig, points: list[Any]) -> list[str]:
        # under the budget's lock: of workers starting a new sweep at once, one adds the points
        with F.budget_lock(cfg.optuna_storage(), cfg.name, lock_path(cfg)):
            return self._warm_start(cfg, points)

    def _warm_start(self, cfg: SweepConfig, points: list[Any]) -> list[str]:
        space = make_space(cfg)
        s = study(cfg, space)
        if s.get_trials(deepcopy=False):
            return ["warm start: the study has trials already, nothing added"]
        if cfg.sampler.type == "grid":
            raise ConfigError(f"{cfg.path or 'sweep'}: warm_start: a grid sampler runs its grid")
        from optuna.trial import create_trial

        queued, added = [], []
        for point in points:
            attrs = {T.TAG_WARM_START: point.label}
            if point.val_mae is None:
                s.enqueue_trial(point.values, user_attrs=attrs, skip_if_exists=True)
                queued.append(point.label)
            else:
                dists = {name: distribution(space[name]) for name in point.values}
                s.add_trial(create_trial(params=point.values, distributions=dists,
                                         value=point.val_mae,
                                         user_attrs={**attrs, IMPORTED: point.label}))  # fmt: skip
                added.append(point.label)
        notes = []
        if queued:
            notes.append(f"warm start: the first trials are {', '.join(queued)}")
        if added:
            notes.append(f"warm start: {len(added)} finished trials added ({', '.join(added[:8])}"
                         + (", ..." if len(added) > 8 else "") + ")")  # fmt: skip
        return notes

    def algorithm(self, cfg: SweepConfig) -> str:
        return cfg.sampler.type

    def resume(self, cfg: SweepConfig) -> Resume:
        """Trials already in the study (those of dead processes failed first), the best."""
        s = study(cfg)
        _fail_stale(s, cfg)
        finished = run_here(s.get_trials(deepcopy=False, states=FINISHED))
        best = self.best(cfg) if finished else None
        return Resume(
            len(finished),
            best.val_mae if best else None,
            best.number if best else None,
        )

    def best(self, cfg: SweepConfig) -> Best | None:
        s = study(cfg)
        done = [t for t in s.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.values]
        if not done:
            return None
        t = min(done, key=lambda t: t.values[0])
        return Best(t.number, dict(t.params), t.values[0])

    def run(self, ctx: SweepContext, board: Board, deadline: float | None) -> None:
        run(ctx, board, deadline)


def run(ctx: SweepContext, board: Board, deadline: float | None) -> None:
    cfg = ctx.cfg
    if cfg.workers == 1:
        loop(ctx, deadline)
        return
    share_device(cfg.workers)  # JAX: workers share one accelerator (no XLA preallocation)
    mp_ctx = mp.get_context("spawn")
    q = mp_ctx.Queue()
    left = None if deadline is None else deadline - time.monotonic()
    stop = mp_ctx.Event()  # a worker hit a fault: the others start no new trial
    procs = [
        mp_ctx.Process(
            target=_worker, args=(cfg, ctx.parent_run_id, q, left, i, stop), daemon=False
        )
        for i in range(cfg.workers)
    ]
    relay = _Faults(board, stop)
    sink = cast(Board, relay)
    logs = Path("mlruns/logs")
    logs.mkdir(parents=True, exist_ok=True)
    for i, p in enumerate(procs):
        # A worker's stderr (TensorFlow's start-up lines, tracebacks) goes to its log file, not
        # through the live display.
        with open(logs / f"{cfg.name}-worker{i}.log", "a") as log:
            sys.stderr.flush()
            saved = os.dup(2)
            os.dup2(log.fileno(), 2)
            try:
                p.start()
            finally:
                os.dup2(saved, 2)
                os.close(saved)
    started = time.monotonic()
    ended: dict[int, float] = {}
    try:
        while len(ended) < len(procs):
            pump(q, sink)
            for i, p in enumerate(procs):
                if i not in ended and not p.is_alive():
                    ended[i] = time.monotonic()
        pump(q, sink, timeout=0.05)
        board.workers_wall_s = sum(t - started for t in ended.values())
    except KeyboardInterrupt:
        for p in procs:  # they got the same SIGINT: let them end their trials cleanly
            p.join(timeout=60)
        pump(q, sink, timeout=0.05)
        raise
    if relay.faults:  # what stopped the first worker that stopped the sweep
        raise relay.error()
    failed = [p.exitcode for p in procs if p.exitcode not in (0, None)]
    if failed:
        raise WorkerError(
            f"{len(failed)} of {len(procs)} sweep workers failed (exit codes {failed}): see "
            f"{logs}/{cfg.name}-worker*.log"
        )


class _Faults:
    """The board, plus what a worker process reports when it stops the sweep (an
    infrastructure failure, too many failed trials): the others are told to stop."""

    def __init__(self, board: Board, stop: Any) -> None:
        self.board = board
        self.stop = stop
        self.faults: list[tuple[str, str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.board, name)

    def fault(self, kind: str, message: str) -> None:
        self.faults.append((kind, message))
        self.stop.set()

    def error(self) -> JenaError:
        kinds = {"InfrastructureError": InfrastructureError, "TooManyFailures": TooManyFailures,
                 "ConfigError": ConfigError}  # fmt: skip
        kind, message = self.faults[0]
        return kinds.get(kind, JenaError)(message)


def _worker(
    cfg: SweepConfig,
    parent_run_id: str,
    q: Any,
    seconds_left: float | None,
    index: int,
    stop: Any = None,
) -> None:
    from jena._quiet import import_keras_quietly

    import_keras_quietly()
    T.set_retry_window(cfg.faults.tracking_retry_s)
    deadline = None if seconds_left is None else time.monotonic() + seconds_left
    ctx = make_context(cfg, QueueSink(q), parent_run_id, deadline)
    try:
        with contextlib.suppress(KeyboardInterrupt):  # the trial already ended FAILED/KILLED
            loop(ctx, deadline, worker=index, stop=stop)
    except JenaError as exc:  # the main process says it, once, and stops the others
        q.put(("fault", (type(exc).__name__, str(exc)), {}))
        raise SystemExit(3) from None


def loop(ctx: SweepContext, deadline: float | None, worker: int = 0, stop: Any = None) -> None:
    """Ask → train → tell until the study holds ``trials`` trials or the time is up (or
    ``stop``, an event, is set: another worker stopped the sweep).

    The sampler's seed differs per worker and per invocation (it counts the trials already in
    the study), so workers and resumed runs do not replay the same points; a given history and
    worker still give the same proposals.

    Before each ask, stale trials of dead workers are failed (and queued again) and dead
    invocations' parent runs ended (:class:`sweeps.optuna_faults.Reaper`); a running trial
    beats. An infrastructure failure fails the trial as lost (not counted, queued again) and
    stops the sweep; ``[faults].max_consecutive_failed_trials`` failures of one kind in a row
    stop it too (:class:`sweeps.faults.TooManyFailures`).
    """
    cfg = ctx.cfg
    if cfg.packing.size > 1:  # K proposals at a time, trained in packs (sweeps/packed.py)
        from .packed import packed_loop

        return packed_loop(ctx, deadline, worker)
    done = len(study(cfg, ctx.space).get_trials(deepcopy=False))
    s = study(cfg, ctx.space, seed=cfg.seed + 100_003 * worker + done)
    lock = lock_path(cfg)
    url = cfg.optuna_storage()
    reaper = F.Reaper(cfg, ctx.tracker)
    streak = FailureStreak(cfg.max_failures(), "Optuna")
    if reason := stop_reason(cfg, completed(s)):  # met already (by an earlier invocation)
        ctx.events.stopped(reason)
        return
    with reaper.running(s):
        _loop(ctx, s, deadline, url, lock, reaper, streak, stop)


def _loop(
    ctx: SweepContext,
    s: optuna.Study,
    deadline: float | None,
    url: str,
    lock: Path,
    reaper: F.Reaper,
    streak: FailureStreak,
    stop: Any,
) -> None:
    cfg, base = ctx.cfg, ctx.base
    while deadline is None or time.monotonic() < deadline:
        if stop is not None and stop.is_set():
            return
        trial = None
        try:
            reaper.maybe(s)
            with F.budget_lock(url, cfg.name, lock):
                states = (*FINISHED, TrialState.RUNNING)
                finished = run_here(s.get_trials(deepcopy=False, states=states))
                if len(finished) >= cfg.trials:
                    return
                trial = F.ask(s)
                for key, value in owner().items():
                    trial.set_user_attr(key, value)
            try:
                values = suggest(trial, ctx.space, base)
            except Exception as exc:  # the sampler itself raised: a failed trial, go on
                if F.as_lost(exc, url) is not None:
                    raise
                reason = f"{type(exc).__name__}: {exc}"
                trial.set_user_attr("fail_reason", reason)
                record_failure(ctx, trial.number, dict(trial.params), reason)
                if not tell(s, trial, state=TrialState.FAIL):
                    return
                streak.add("failed", reason)
                continue

            def report(
                epoch: int, val_mae: float, final: bool, trial: optuna.Trial = trial
            ) -> None:
                if cfg.multi_objective or not math.isfinite(val_mae):
                    return
                try:
                    trial.report(val_mae, epoch)
                    prune = not final and trial.should_prune()
                except Exception as exc:  # the storage is gone: not the trial's fault
                    lost = F.as_lost(exc, url)
                    if lost is None:
                        raise
                    raise lost from exc
                if prune:
                    raise TrialPruned(f"pruned by {cfg.pruner.type} after epoch {epoch}")

            label = trial.user_attrs.get(T.TAG_WARM_START)
            tags = {T.TAG_WARM_START: label} if label else None
            with F.heartbeat(s._storage, trial._trial_id):
                result = run_trial(ctx, trial.number, values, report=report, tags=tags)
            go_on = tell_result(s, trial, result, cfg)
        except KeyboardInterrupt:
            if trial is not None:
                trial.set_user_attr("fail_reason", "interrupted (Ctrl-C)")
                tell(s, trial, state=TrialState.FAIL)
            raise
        except TooManyFailures:  # the trial is told already
            raise
        except Exception as exc:
            lost = F.as_lost(exc, url)
            if lost is not None:  # the disk, the tracking store, the storage: stop here
                if trial is not None:
                    F.mark_lost(s, trial, lost)
                if lost is exc:
                    raise
                raise lost from exc
            if trial is None:
                raise
            # tracking broke after training (the child run is closed): a failed trial
            reason = f"{type(exc).__name__}: {exc}"
            trial.set_user_attr("fail_reason", reason)
            if not tell(s, trial, state=TrialState.FAIL):
                return
            streak.add("failed", reason)
            continue
        if not go_on:
            return
        streak.add(result.state, result.reason)
        rule = stop_reason(cfg, completed(s))
        if rule:
            ctx.events.stopped(rule)
            return


DRIVER = OptunaDriver()
