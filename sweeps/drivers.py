"""The driver interface: what a tuner must do to run a sweep, and what it can do.

A driver is built once from the sweep's config (``driver = DriverClass(cfg)``: it opens its
study or project then) and proposes points of the sweep's space; everything else — the parent
run, data, training, tracking, the live display, worker processes, the summary — is the
runner's (:mod:`sweeps.runner`), the pool's (:mod:`sweeps.pool`) and the trial's
(:mod:`sweeps.trial`). Config validation asks a driver's :class:`Capabilities`, never its name,
and each driver checks its own settings (its sections of the sweep file: ``problems``).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from jena.errors import ConfigError

from .registry import DRIVERS

if TYPE_CHECKING:
    from .config import SweepConfig
    from .trial import SweepContext
    from .warm import WarmPoint


@dataclass(frozen=True)
class Capabilities:
    """What a driver can do beyond proposing points and running them one at a time."""

    workers: bool = False  # several processes share one study (--workers N, several machines)
    packing: bool = False  # several proposals at a time, trained as one program ([packing])
    warm_start_from_sweep: bool = False  # add another sweep's finished trials (--warm-start S)
    multi_objective: bool = False  # objectives = ["val_mae", "param_count"]

    def others(self, capability: str) -> str:
        """The registered drivers that have ``capability`` (for error messages)."""
        names = [n for n in DRIVERS if getattr(driver_class(n).capabilities, capability)]
        return ", ".join(repr(n) for n in names) or "none"


@dataclass(frozen=True)
class Resume:
    """What a sweep's store already holds when an invocation starts."""

    finished: int  # trials that ended (completed, pruned or failed) and count
    best_val_mae: float | None = None
    best_number: int | None = None


@dataclass(frozen=True)
class Best:
    number: int
    params: dict[str, Any]
    val_mae: float


class StopSignal(Protocol):
    """Set when the sweep must start no new trial (another worker stopped it)."""

    def is_set(self) -> bool: ...


class Driver(Protocol):
    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def __init__(self, cfg: SweepConfig) -> None: ...

    @classmethod
    def problems(cls, cfg: SweepConfig) -> Iterator[tuple[str, str]]:
        """(key, what is wrong) of each bad value of this driver's own settings (its sections
        of the sweep file: Optuna's ``[sampler]``/``[pruner]``, Keras Tuner's ``[tuner]``); the
        generic keys are :class:`~sweeps.config.SweepConfig`'s to check."""
        ...

    @property
    def algorithm(self) -> str:
        """The search algorithm as shown and logged (``tpe``, ``bayesian``, ...)."""
        ...

    def resume(self) -> Resume:
        """Check what this driver cannot do with its store, close what a dead process left
        open, and say what the store holds already."""
        ...

    def best(self) -> Best | None:
        """The best completed trial so far (over every invocation)."""
        ...

    def warm_start(self, points: list[WarmPoint]) -> list[str]:
        """Start a new sweep from ``points``: run them first (no known result) or add them as
        finished trials (a result from another sweep: :attr:`Capabilities.warm_start_from_sweep`).
        A sweep that already has trials is left as it is. Returns what was done, one line each."""
        ...

    def run(
        self,
        ctx: SweepContext,
        deadline: float | None,
        *,
        worker: int = 0,
        stop: StopSignal | None = None,
    ) -> None:
        """Propose and run trials (:func:`sweeps.trial.run_trial`) in this process until the
        budget is spent, the search is over, ``deadline`` (``time.monotonic()``) has passed or
        ``stop`` is set; ``worker``: this process's index among the sweep's workers. Events go
        to ``ctx.events``."""
        ...


def one_of(key: str, value: str, known: Sequence[str]) -> Iterator[tuple[str, str]]:
    """A driver's check of a kind setting (``[sampler].type``): a problem unless ``value`` is
    one of ``known``."""
    if value not in known:
        yield key, f"{value!r} is not one of {', '.join(known)}"


def driver_class(name: str, where: str = "sweep") -> type[Driver]:
    """The class registered as ``name`` (its package is imported; its tuner is not)."""
    if name not in DRIVERS:
        raise ConfigError(
            f"{where}: driver: expected {' or '.join(map(repr, DRIVERS))}, got {name!r}"
        )
    module, _, cls = DRIVERS[name].partition(":")
    found: type[Driver] = getattr(importlib.import_module(module), cls)
    return found


def get_driver(cfg: SweepConfig) -> Driver:
    """The sweep's driver, built once from its config."""
    return driver_class(cfg.driver)(cfg)
