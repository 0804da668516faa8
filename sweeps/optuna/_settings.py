"""The Optuna driver's own settings: its sections of a sweep file (``[sampler]``, ``[pruner]``),
checked by :meth:`~sweeps.optuna.OptunaDriver.problems` when the sweep file is read."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..drivers import one_of

if TYPE_CHECKING:
    from ..config import SweepConfig

SAMPLERS = ("tpe", "random", "grid", "cmaes", "gp", "nsga2")
PRUNERS = ("none", "median", "halving", "hyperband")
MULTI_OBJECTIVE_SAMPLERS = ("nsga2", "random", "tpe", "gp")


def problems(cfg: SweepConfig) -> Iterator[tuple[str, str]]:
    """(key, what is wrong) of each bad value of ``[sampler]`` and ``[pruner]``."""
    yield from one_of("[sampler].type", cfg.sampler.type, SAMPLERS)
    yield from one_of("[pruner].type", cfg.pruner.type, PRUNERS)
    if cfg.multi_objective and cfg.sampler.type not in MULTI_OBJECTIVE_SAMPLERS:
        yield "objectives", f"sampler {cfg.sampler.type!r} is single-objective"
