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
from typing import Any

import optuna
from optuna.trial import TrialState

from jena import tracking as T
from jena._filelock import file_lock
from jena._owner import owner, owner_is_dead
from jena.errors import ConfigError, WorkerError
from jena.space import Param, Space
from jena.train import TrialPruned

from .config import SweepConfig
from .display import Board, QueueSink, pump
from .drivers import Best, Resume
from .stop import stop_reason
from .trial import SweepContext, make_context, make_space, record_failure, run_trial

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
optuna.logging.set_verbosity(optuna.logging.WARNING)


# ------------------------------------------------------------------ storage, sampler, pruner
def storage(cfg: SweepConfig) -> optuna.storages.BaseStorage:
    url = cfg.optuna_storage()
    if url == "memory" and cfg.workers > 1:
        raise ConfigError("storage.optuna = 'memory' cannot be shared by several workers")
    opened = open_storage(url, name=cfg.name)
    assert opened is not None
    return opened


def open_storage(
    url: str, *, name: str = "", create: bool = True
) -> optuna.storages.BaseStorage | None:
    """The Optuna storage of ``url`` (``journal:PATH``, ``sqlite:///…``, ``postgresql://…``,
    ``memory``). ``create=False``: None where nothing is stored yet (no journal file, no SQLite
    file, an in-memory study of another process)."""
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
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url))
    except Exception as exc:  # bad URL, server down, driver missing
        first = " ".join(str(exc).split())[:300]  # drivers' messages span lines
        raise ConfigError(
            f"Optuna storage {url!r} is not usable: {type(exc).__name__}: {first}"
        ) from None


_memory_storages: dict[str, optuna.storages.BaseStorage] = {}


def _engine_kwargs(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}
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
            defaults = {"multivariate": True, "group": True, "constant_liar": cfg.workers > 1}
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
def _fail_stale(s: optuna.Study) -> None:
    """A RUNNING trial whose process on this host is gone (kill -9, power loss) is failed."""
    for t in s.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if owner_is_dead(t.user_attrs.get("host"), t.user_attrs.get("pid")):
            s._storage.set_trial_user_attr(t._trial_id, "fail_reason", "stale: its process died")
            s._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)


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
    """The trials this sweep ran itself (not the ones a warm start added from another)."""
    return [t for t in trials if IMPORTED not in t.user_attrs]


class OptunaDriver:
    name = "optuna"

    def warm_start(self, cfg: SweepConfig, points: list[Any]) -> list[str]:
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
        _fail_stale(s)
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
    mp_ctx = mp.get_context("spawn")
    q = mp_ctx.Queue()
    left = None if deadline is None else deadline - time.monotonic()
    procs = [
        mp_ctx.Process(target=_worker, args=(cfg, ctx.parent_run_id, q, left, i), daemon=False)
        for i in range(cfg.workers)
    ]
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
            pump(q, board)
            for i, p in enumerate(procs):
                if i not in ended and not p.is_alive():
                    ended[i] = time.monotonic()
        pump(q, board, timeout=0.05)
        board.workers_wall_s = sum(t - started for t in ended.values())
    except KeyboardInterrupt:
        for p in procs:  # they got the same SIGINT: let them end their trials cleanly
            p.join(timeout=60)
        pump(q, board, timeout=0.05)
        raise
    failed = [p.exitcode for p in procs if p.exitcode not in (0, None)]
    if failed:
        raise WorkerError(
            f"{len(failed)} of {len(procs)} sweep workers failed (exit codes {failed}): see "
            f"{logs}/{cfg.name}-worker*.log"
        )


def _worker(
    cfg: SweepConfig, parent_run_id: str, q: Any, seconds_left: float | None, index: int
) -> None:
    from jena._quiet import import_keras_quietly

    import_keras_quietly()
    deadline = None if seconds_left is None else time.monotonic() + seconds_left
    ctx = make_context(cfg, QueueSink(q), parent_run_id, deadline)
    with contextlib.suppress(KeyboardInterrupt):  # the trial already ended FAILED/KILLED
        loop(ctx, deadline, worker=index)


def loop(ctx: SweepContext, deadline: float | None, worker: int = 0) -> None:
    """Ask → train → tell until the study holds ``trials`` trials or the time is up.

    The sampler's seed differs per worker and per invocation (it counts the trials already in
    the study), so workers and resumed runs do not replay the same points; a given history and
    worker still give the same proposals.
    """
    cfg = ctx.cfg
    done = len(study(cfg, ctx.space).get_trials(deepcopy=False))
    s = study(cfg, ctx.space, seed=cfg.seed + 100_003 * worker + done)
    base = ctx.base
    lock = lock_path(cfg)
    if reason := stop_reason(cfg, completed(s)):  # met already (by an earlier invocation)
        ctx.events.stopped(reason)
        return
    while deadline is None or time.monotonic() < deadline:
        trial = None
        try:
            with file_lock(lock):
                states = (*FINISHED, TrialState.RUNNING)
                finished = run_here(s.get_trials(deepcopy=False, states=states))
                if len(finished) >= cfg.trials:
                    return
                trial = s.ask()
                for key, value in owner().items():
                    trial.set_user_attr(key, value)
            try:
                values = suggest(trial, ctx.space, base)
            except Exception as exc:  # the sampler itself raised: a failed trial, go on
                reason = f"{type(exc).__name__}: {exc}"
                trial.set_user_attr("fail_reason", reason)
                record_failure(ctx, trial.number, dict(trial.params), reason)
                if not _tell(s, trial, state=TrialState.FAIL):
                    return
                continue

            def report(
                epoch: int, val_mae: float, final: bool, trial: optuna.Trial = trial
            ) -> None:
                if cfg.multi_objective or not math.isfinite(val_mae):
                    return
                trial.report(val_mae, epoch)
                if not final and trial.should_prune():
                    raise TrialPruned(f"pruned by {cfg.pruner.type} after epoch {epoch}")

            label = trial.user_attrs.get(T.TAG_WARM_START)
            tags = {T.TAG_WARM_START: label} if label else None
            result = run_trial(ctx, trial.number, values, report=report, tags=tags)
        except KeyboardInterrupt:
            if trial is not None:
                trial.set_user_attr("fail_reason", "interrupted (Ctrl-C)")
                _tell(s, trial, state=TrialState.FAIL)
            raise
        except Exception as exc:  # tracking broke after training: the child run is closed
            assert trial is not None
            trial.set_user_attr("fail_reason", f"{type(exc).__name__}: {exc}")
            if not _tell(s, trial, state=TrialState.FAIL):
                return
            continue
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
        if not go_on:
            return
        reason = stop_reason(cfg, completed(s))
        if reason:
            ctx.events.stopped(reason)
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
