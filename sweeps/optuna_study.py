"""The Optuna side of a sweep's study: its storage, sampler and pruner, how the one search
space becomes an Optuna trial, and the bookkeeping of the budget. The driver's loop
(:mod:`sweeps.optuna_driver`) and the packed loop (:mod:`sweeps.packed`) both use it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from jena.errors import ConfigError
from jena.space import Param, Space

from . import optuna_faults as F
from .config import SweepConfig
from .trial import make_space

if TYPE_CHECKING:
    from jena.train import TrialResult

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


def completed(s: optuna.Study) -> list[tuple[int, float]]:
    """(number, val MAE) of the study's completed trials."""
    trials = s.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return [(t.number, t.values[0]) for t in trials if t.values]


def tell(s: optuna.Study, trial: optuna.Trial, **kwargs: Any) -> bool:
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


def tell_result(
    s: optuna.Study, trial: optuna.Trial, result: TrialResult, cfg: SweepConfig
) -> bool:
    """Tell a trial's result as Optuna states it (completed: its values, the parameter count
    too for a multi-objective sweep; pruned; failed with its reason); False as :func:`tell`."""
    trial.set_user_attr("state", result.state)
    if result.state == "completed" and result.val_mae is not None:
        values = [result.val_mae]
        if cfg.multi_objective:
            values.append(float(result.param_count))
        trial.set_user_attr("val_skill", result.val_skill)
        return tell(s, trial, values=values)
    if result.state == "pruned":
        return tell(s, trial, state=TrialState.PRUNED)
    trial.set_user_attr("fail_reason", result.reason or "failed")
    return tell(s, trial, state=TrialState.FAIL)
