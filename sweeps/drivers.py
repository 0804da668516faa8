"""The driver interface and the registry of drivers.

A driver proposes points of the sweep's space and runs its tuner's loop; everything else (the
parent run, data, training, tracking, the display, the summary) is the runner's
(:mod:`sweeps.runner`) and the trial's (:mod:`sweeps.trial`). Adding a driver is one module that
defines ``DRIVER`` plus one line in :data:`sweeps.registry.DRIVERS`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from jena.errors import ConfigError

from .registry import DRIVERS

if TYPE_CHECKING:
    from .config import SweepConfig
    from .display import Board
    from .trial import SweepContext, WarmPoint


@dataclass(frozen=True)
class Resume:
    """What a sweep's store already holds when an invocation starts."""

    finished: int  # trials that ended (completed, pruned or failed)
    best_val_mae: float | None = None
    best_number: int | None = None


@dataclass(frozen=True)
class Best:
    number: int
    params: dict[str, Any]
    val_mae: float


class Driver(Protocol):
    name: str

    def algorithm(self, cfg: SweepConfig) -> str:
        """The search algorithm as shown and logged (``tpe``, ``bayesian``, ...)."""
        ...

    def resume(self, cfg: SweepConfig) -> Resume:
        """Check what this driver cannot do, close what a dead process left open, and say what
        the store holds already."""
        ...

    def best(self, cfg: SweepConfig) -> Best | None:
        """The best completed trial so far (over every invocation)."""
        ...

    def warm_start(self, cfg: SweepConfig, points: list[WarmPoint]) -> list[str]:
        """Start a new sweep from ``points``: run them first (no known result) or add them as
        finished trials (a result from another sweep). A sweep that already has trials is left
        as it is. Returns what was done, one line each."""
        ...

    def run(self, ctx: SweepContext, board: Board, deadline: float | None) -> None:
        """Propose and run trials (:func:`sweeps.trial.run_trial`) until the budget is spent,
        the search is over, or ``deadline`` (``time.monotonic()``) has passed."""
        ...


def get_driver(name: str) -> Driver:
    if name not in DRIVERS:
        raise ConfigError(f"unknown driver {name!r}: choose one of {', '.join(DRIVERS)}")
    driver: Driver = importlib.import_module(DRIVERS[name]).DRIVER
    return driver
