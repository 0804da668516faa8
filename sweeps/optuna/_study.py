"""A sweep's Optuna study (:class:`SweepStudy`), opened once per process: its storage, sampler
and pruner, how the one search space becomes an Optuna trial, the budget ("under the lock,
count the trials and ask for one", under a lock across workers and machines), telling results,
and the pruner's look at each epoch. The one ask/tell loop (:mod:`sweeps.optuna._loop`) drives
it, whoever trains."""

from __future__ import annotations

import contextlib
import math
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from jena import signals
from jena.errors import ConfigError
from jena.locks import db_lock, file_lock, is_postgres
from jena.owner import owner
from jena.secrets import postgres_login_hint, redact
from jena.space import Param, Space
from jena.train import TrialPruned

from ..config import SweepConfig
from ..drivers import Best
from ..trial import make_space
from . import _faults as F

if TYPE_CHECKING:
    from jena.recording import Report
    from jena.train import TrialResult

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
optuna.logging.set_verbosity(optuna.logging.WARNING)


# ------------------------------------------------------------------ storage, sampler, pruner
def default_storage(name: str) -> str:
    """Where a sweep's study lives unless ``[storage].optuna`` says: a journal file."""
    return f"journal:mlruns/optuna/{name}.journal"


def storage_url(cfg: SweepConfig) -> str:
    return cfg.storage.optuna or default_storage(cfg.name)


def storage(cfg: SweepConfig) -> optuna.storages.BaseStorage:
    url = storage_url(cfg)
    if url == "memory" and cfg.workers > 1:
        raise ConfigError("storage.optuna = 'memory' cannot be shared by several workers")
    opened = open_storage(url, name=cfg.name, rdb=rdb_kwargs(cfg) if is_rdb(url) else None)
    assert opened is not None
    return opened


def open_storage(
    url: str, *, name: str = "", create: bool = True, rdb: dict[str, Any] | None = None
) -> optuna.storages.BaseStorage | None:
    """The Optuna storage of ``url`` (``journal:PATH``, ``sqlite:///…``, ``postgresql://…``,
    ``memory``). ``create=False``: None where nothing is stored yet (no journal file, no SQLite
    file, an in-memory study of another process). ``rdb``: more RDBStorage arguments (the
    heartbeat, :func:`rdb_kwargs`); an RDB storage is opened once per
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
        with creation_lock(url), quiet_optuna():
            made = optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url), **extra)
    except Exception as exc:  # bad URL, server down, driver missing
        first = redact(" ".join(str(exc).split()))  # drivers' messages span lines
        first = re.sub(r" ?\(Background on this error at: [^)]*\)", "", first)[:300]
        login = postgres_login_hint(first)  # the password refused or missing: where it goes
        raise ConfigError(
            f"Optuna storage {redact(url)!r} is not usable: {type(exc).__name__}: {first}"
            + (f": {login}" if login else "")
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


def is_rdb(url: str) -> bool:
    return not (url == "memory" or url.startswith("journal:"))


def rdb_kwargs(cfg: SweepConfig) -> dict[str, Any]:
    """RDBStorage's heartbeat settings for this sweep (stale trials:
    :func:`sweeps.optuna._faults.fail_stale`)."""
    f = cfg.faults
    return {"heartbeat_interval": f.heartbeat_interval_s, "grace_period": f.grace_period_s}


@contextlib.contextmanager
def creation_lock(url: str) -> Iterator[None]:
    """Around creating an RDB storage's tables: many workers may start at the same moment."""
    if is_postgres(url):
        with db_lock(url, "jena-optuna-storage"):
            yield
        return
    yield


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's warnings about experimental heartbeats, and about heartbeats used with
    ask-and-tell (we beat ourselves), stay off the display."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage")
        yield


# ------------------------------------------------------------------ the budget
@contextlib.contextmanager
def budget_lock(url: str, name: str, fallback: Path) -> Iterator[None]:
    """Around "count the trials, ask for one": every worker on every machine (PostgreSQL
    storage: an advisory lock) or on this machine (a lock file)."""
    if is_postgres(url):
        with db_lock(url, f"jena-budget-{name}"):
            yield
        return
    with file_lock(fallback):
        yield


def lock_path(cfg: SweepConfig) -> Path:
    url = storage_url(cfg)
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


# ------------------------------------------------------------------ space → trial
def _suggest_one(trial: optuna.Trial, p: Param) -> Any:
    if p.kind == "categorical":
        return trial.suggest_categorical(p.name, list(p.choices or ()))
    if p.kind == "bool":
        return trial.suggest_categorical(p.name, [False, True])
    assert p.low is not None and p.high is not None
    if p.kind == "int":
        return trial.suggest_int(p.name, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
    return trial.suggest_float(p.name, p.low, p.high, step=p.step, log=p.log)


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


class SweepStudy:
    """The sweep's study, opened once (storage, sampler seeded with the sweep's seed, pruner);
    every reader and the loops use this one handle."""

    def __init__(self, cfg: SweepConfig, space: Space | None = None) -> None:
        self.cfg = cfg
        self.space = space or make_space(cfg)
        self.url = storage_url(cfg)
        self._study: optuna.Study | None = None

    @property
    def study(self) -> optuna.Study:
        if self._study is None:
            directions = [optuna.study.StudyDirection.MINIMIZE] * len(self.cfg.objectives)
            self._study = optuna.create_study(
                study_name=self.cfg.name, storage=storage(self.cfg),
                sampler=sampler(self.cfg, self.space), pruner=pruner(self.cfg),
                directions=directions, load_if_exists=True,
            )  # fmt: skip
        return self._study

    def reseed(self, worker: int) -> None:
        """A sampler seed for this worker and invocation (it counts the trials already in the
        study), so that workers and resumed runs do not replay the same points; a given history
        and worker still give the same proposals."""
        done = len(self.trials())
        seed = self.cfg.seed + 100_003 * worker + done
        self.study.sampler = sampler(self.cfg, self.space, seed)

    def trials(self, *states: TrialState) -> list[optuna.trial.FrozenTrial]:
        return self.study.get_trials(deepcopy=False, states=states or None)

    def finished(self) -> int:
        """Trials that ended and count against the budget."""
        return len(run_here(self.trials(*FINISHED)))

    def completed(self) -> list[tuple[int, float]]:
        """(number, val MAE) of the study's completed trials."""
        return [(t.number, t.values[0]) for t in self.trials(TrialState.COMPLETE) if t.values]

    def best(self) -> Best | None:
        done = [t for t in self.trials(TrialState.COMPLETE) if t.values]
        if not done:
            return None
        t = min(done, key=lambda t: t.values[0])
        return Best(t.number, dict(t.params), t.values[0])

    def ask(self) -> optuna.Trial | None:
        """A new trial, or None when the budget is spoken for: under the budget's lock (every
        worker, every machine), count the trials that ended or run, queue stale trials again
        where there is room (:func:`~sweeps.optuna._faults.retry_stale`), and ask for one —
        WAITING retries first, and also when the count says the budget is spent. A stop
        signal meanwhile waits until the trial carries its owner, then leaves it lost."""
        trial: optuna.Trial | None = None
        try:
            with signals.deferred(), budget_lock(self.url, self.cfg.name, lock_path(self.cfg)):
                trials = self.trials()
                held = (*FINISHED, TrialState.RUNNING)
                used = sum(t.state in held for t in run_here(trials))
                F.retry_stale(self.study, trials, self.cfg.trials - used,
                              self.cfg.faults.retry_stale_trials)  # fmt: skip
                if used >= self.cfg.trials and not F.retry_waiting(self.study):
                    return None
                with quiet_optuna():
                    trial = self.study.ask()
                for key, value in owner().items():
                    trial.set_user_attr(key, value)
        except KeyboardInterrupt as exc:
            if trial is not None:
                F.mark_lost(self.study, trial, signals.describe(exc))
            raise
        return trial

    def suggest(self, trial: optuna.Trial, base: Any) -> dict[str, Any]:
        """Ask ``trial`` for every free, active Param, in order (the space's one walk)."""
        return self.space.walk(lambda p: _suggest_one(trial, p), base)

    def pruning(self, trial: optuna.Trial) -> Report:
        """The pruner's look at each of ``trial``'s epochs (:data:`jena.recording.Report`): it
        reports the epoch's validation MAE and raises TrialPruned when the pruner says so (never
        at a trial's last epoch); a storage that fails meanwhile is the infrastructure's fault."""
        cfg, url = self.cfg, self.url

        def report(epoch: int, val_mae: float, final: bool) -> None:
            if cfg.multi_objective or not math.isfinite(val_mae):
                return
            try:
                trial.report(val_mae, epoch)
                prune = not final and trial.should_prune()
            except Exception as exc:
                lost = F.as_lost(exc, url)
                if lost is None:
                    raise
                raise lost from exc
            if prune:
                raise TrialPruned(f"pruned by {cfg.pruner.type} after epoch {epoch}")

        return report

    def tell(self, trial: optuna.Trial, result: TrialResult) -> bool:
        """Tell a trial's result as Optuna states it (completed: its values, the parameter
        count too for a multi-objective sweep; pruned; failed with its reason); False when the
        sampler says the search is over (a grid is exhausted)."""
        trial.set_user_attr("state", result.state)
        if result.state == "completed" and result.val_mae is not None:
            values = [result.val_mae]
            if self.cfg.multi_objective:
                values.append(float(result.param_count))
            trial.set_user_attr("val_skill", result.val_skill)
            return self.tell_state(trial, values=values)
        if result.state in ("pruned", "stopped"):
            # A trial the time budget stopped is PRUNED for Optuna (its user attr "state" says
            # stopped): its samplers take a pruned trial as a partial curve (TPE ranks it by its
            # last reported epoch), which is what it is, where COMPLETE would pass a few epochs
            # off as a full-fidelity value and put a short curve among the completed ones the
            # median pruner compares against. Our rankings read MLflow (jena.tracking
            # candidates), where it is a candidate.
            return self.tell_state(trial, state=TrialState.PRUNED)
        return self.fail(trial, result.reason or "failed")

    def fail(self, trial: optuna.Trial, reason: str) -> bool:
        trial.set_user_attr(F.FAIL_REASON, redact(reason)[:500])
        return self.tell_state(trial, state=TrialState.FAIL)

    def tell_state(self, trial: optuna.Trial, **kwargs: Any) -> bool:
        """``study.tell``; False when the sampler says the search is over.

        GridSampler calls ``study.stop()``, which Optuna only allows inside ``optimize``; the
        trial's state is stored before that call, so the exception only tells us to stop."""
        try:
            self.study.tell(trial, **kwargs)
        except RuntimeError as exc:
            if "Study.stop" not in str(exc):
                raise
            return False
        return True
