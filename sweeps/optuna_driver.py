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
from jena._owner import owner, owner_is_dead
from jena.devices import share_device
from jena.errors import ConfigError, InfrastructureError, JenaError, WorkerError
from jena.space import Param, Space
from jena.train import TrialPruned

from . import optuna_faults as F
from .config import SweepConfig
from .display import Board, QueueSink, pump
from .drivers import Best, Resume
from .faults import FailureStreak, TooManyFailures
from .stop import stop_reason
from .trial import SweepContext, make_context, make_space, record_failure, run_trial

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
optuna.logging.set_verbosity(optuna.logging.WARNING)


# ------------------------------------------------------------------ storage, sampler, pruner
def storage(cfg: SweepConfig) -> optuna.storages.BaseStorage:
    url = cfg.optuna_storage()
    if url == "memory" and cfg.workers > 1:
        raise ConfigError("storage.optuna = 'memory' cannot be shared by several workers")
    opened = open_storage(url, name=cfg.name, rdb=F.rdb_kwargs(cfg) if F.is_rdb(url) else None)
    assert opened is not None
    return opened


def open_storage(
    url: str, *, name: str = "", create: bool = True, rdb: dict[str, Any] | None = None
) -> optuna.storages.BaseStorage | None:
    """The Optuna storage of ``url`` (``journal:PATH``, ``sqlite:///…``, ``postgresql://…``,
    ``memory``). ``create=False``: None where nothing is stored yet (no journal file, no SQLite
    file, an in-memory study of another process). ``rdb``: more RDBStorage arguments (the
    heartbeat, :func:`sweeps.optuna_faults.rdb_kwargs`); an RDB storage is opened once per
    process and settings, its tables created under a lock (many workers may start at once)."""
    if url == "memory":
        if not create:
            return None
        return _memory_storages.setdefault(name, optuna.storages.InMemoryStorage())
    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:"))
        if not create and not path.is_file():
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(str(path)))
    if url.startswith("sqlite:///"):
        db = Path(url.removeprefix("sqlite:///"))
        if not create and not db.is_file():
            return None
        db.parent.mkdir(parents=True, exist_ok=True)
    extra = dict(rdb or {})
    key = (url, name, *(f"{k}={extra[k]!r}" for k in sorted(extra)))
    if key in _rdb_storages:
        return _rdb_storages[key]
    try:
        with F.creation_lock(url), F.quiet_optuna():
            made = optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url), **extra)
    except Exception as exc:  # bad URL, server down, driver missing
        first = " ".join(str(exc).split())[:300]  # drivers' messages span lines
        raise ConfigError(
            f"Optuna storage {F.redact(url)!r} is not usable: {type(exc).__name__}: {first}"
        ) from None
    _rdb_storages[key] = made
    return made


_memory_storages: dict[str, optuna.storages.BaseStorage] = {}
_rdb_storages: dict[tuple[str, ...], optuna.storages.BaseStorage] = {}


def _engine_kwargs(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}
    if url.startswith("postgres"):  # a server that is not there: seconds, not minutes
        return {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    return {"pool_pre_ping": True}


def lock_path(cfg: SweepConfig) -> Path:
    url = cfg.optuna_storage()
    if url.startswith("journal:"):
        return Path(url.removeprefix("journal:") + ".budget-lock")
    return Path("mlruns/optuna") / f"{cfg.name}.budget-lock"


def grid_space(space: Space, cfg: SweepConfig) -> dict[str, list[Any]]:
    """A finite grid for GridSampler: every free param's values (``[sampler.options.grid]``
    lists them for continuous ranges)."""
    explicit = dict(cfg.sampler.options.get("grid", {}))
    grid: dict[str, list[Any]] = {}
    for p in space:
        values = [p.check(v) for v in explicit[p.name]] if p.name in explicit else p.grid()
        if values is None:
            raise ConfigError(
                f"{cfg.path or 'sweep'}: grid sampler: give values for {p.name!r} in "
                f"[sampler.options.grid] (it is a {'log-scaled ' if p.log else ''}{p.kind} range)"
            )
        grid[p.name] = values
    return grid


def sampler(cfg: SweepConfig, space: Space, seed: int | None = None) -> optuna.samplers.BaseSampler:
    opts = {k: v for k, v in cfg.sampler.options.items() if k != "grid"}
    kind, seed = cfg.sampler.type, cfg.seed if seed is None else seed
    try:
        if kind == "tpe":
            liar = cfg.workers > 1 or cfg.packing.size > 1  # several trials running at once
            defaults = {"multivariate": True, "group": True, "constant_liar": liar}
            return optuna.samplers.TPESampler(seed=seed, **{**defaults, **opts})
        if kind == "random":
            return optuna.samplers.RandomSampler(seed=seed, **opts)
        if kind == "grid":
            return optuna.samplers.GridSampler(grid_space(space, cfg), seed=seed, **opts)
        if kind == "cmaes":
            return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False, **opts)
        if kind == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed, **opts)
        if kind == "gp":
            try:
                import scipy  # noqa: F401
                import torch  # noqa: F401
            except ImportError:
                raise ConfigError(
                    "sampler 'gp' needs PyTorch and SciPy: pip install 'jena[gp]'"
                ) from None
            return optuna.samplers.GPSampler(seed=seed, **opts)
    except TypeError as exc:
        raise ConfigError(f"{cfg.path or 'sweep'}: [sampler.options]: {exc}") from None
    raise ConfigError(f"unknown sampler {kind!r}")


def pruner(cfg: SweepConfig) -> optuna.pruners.BasePruner:
    opts = dict(cfg.pruner.options)
    kind = cfg.pruner.type
    if cfg.multi_objective or kind == "none":
        return optuna.pruners.NopPruner()
    try:
        if kind == "median":
            return optuna.pruners.MedianPruner(
                **{"n_startup_trials": 4, "n_warmup_steps": 1, **opts}
            )
        if kind == "halving":
            return optuna.pruners.SuccessiveHalvingPruner(**opts)
        if kind == "hyperband":
            return optuna.pruners.HyperbandPruner(
                **{"min_resource": 1, "max_resource": cfg.fidelity.max_epochs, **opts}
            )
    except TypeError as exc:
        raise ConfigError(f"{cfg.path or 'sweep'}: [pruner.options]: {exc}") from None
    raise ConfigError(f"unknown pruner {kind!r}")


def study(cfg: SweepConfig, space: Space | None = None, seed: int | None = None) -> optuna.Study:
    space = space or make_space(cfg)
    directions: list[optuna.study.StudyDirection] = [optuna.study.StudyDirection.MINIMIZE] * len(
        cfg.objectives
    )
    return optuna.create_study(
        study_name=cfg.name,
        storage=storage(cfg),
        sampler=sampler(cfg, space, seed),
        pruner=pruner(cfg),
        directions=directions,
        load_if_exists=True,
    )


# ------------------------------------------------------------------ space → trial
def suggest(trial: optuna.Trial, space: Space, base: Any) -> dict[str, Any]:
    """Ask the trial for every free, active Param, in order (the space's one walk)."""
    return space.walk(lambda p: _suggest_one(trial, p), base)


def _suggest_one(trial: optuna.Trial, p: Param) -> Any:
    if p.kind == "categorical":
        return trial.suggest_categorical(p.name, list(p.choices or ()))
    if p.kind == "bool":
        return trial.suggest_categorical(p.name, [False, True])
    assert p.low is not None and p.high is not None
    if p.kind == "int":
        return trial.suggest_int(p.name, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
    return trial.suggest_float(p.name, p.low, p.high, step=p.step, log=p.log)


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


IMPORTED = "imported_from"  # user attr of a trial added from another sweep (not run here)


def distribution(p: Param) -> optuna.distributions.BaseDistribution:
    """The Optuna distribution ``_suggest_one`` samples ``p`` from."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if p.kind == "categorical":
        return CategoricalDistribution(list(p.choices or ()))
    if p.kind == "bool":
        return CategoricalDistribution([False, True])
    assert p.low is not None and p.high is not None
    if p.kind == "int":
        return IntDistribution(int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
    return FloatDistribution(p.low, p.high, step=p.step, log=p.log)


def run_here(trials: list[Any]) -> list[Any]:
    """The trials that count against the budget: those this sweep ran itself (not the ones a
    warm start added from another), except those the infrastructure interrupted (lost: run
    again)."""
    return [t for t in trials if IMPORTED not in t.user_attrs and F.LOST not in t.user_attrs]


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
        q.put(("fault", (type(exc).__name__, str(exc))))
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
                if not _tell(s, trial, state=TrialState.FAIL):
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
            trial.set_user_attr("state", result.state)
            if result.state == "completed" and result.val_mae is not None:
                values_out = [result.val_mae]
                if cfg.multi_objective:
                    values_out.append(float(result.param_count))
                trial.set_user_attr("val_skill", result.val_skill)
                go_on = _tell(s, trial, values=values_out)
            elif result.state == "pruned":
                go_on = _tell(s, trial, state=TrialState.PRUNED)
            else:
                trial.set_user_attr("fail_reason", result.reason or "failed")
                go_on = _tell(s, trial, state=TrialState.FAIL)
        except KeyboardInterrupt:
            if trial is not None:
                trial.set_user_attr("fail_reason", "interrupted (Ctrl-C)")
                _tell(s, trial, state=TrialState.FAIL)
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
            if not _tell(s, trial, state=TrialState.FAIL):
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


def completed(s: optuna.Study) -> list[tuple[int, float]]:
    """(number, val MAE) of the study's completed trials."""
    trials = s.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return [(t.number, t.values[0]) for t in trials if t.values]


def _tell(s: optuna.Study, trial: optuna.Trial, **kwargs: Any) -> bool:
    """``study.tell``; False when the sampler says the search is over (a grid is exhausted).

    GridSampler calls ``study.stop()``, which Optuna only allows inside ``optimize``; the trial's
    state is stored before that call, so the exception only tells us to stop.
    """
    try:
        s.tell(trial, **kwargs)
    except RuntimeError as exc:
        if "Study.stop" not in str(exc):
            raise
        return False
    return True


DRIVER = OptunaDriver()
