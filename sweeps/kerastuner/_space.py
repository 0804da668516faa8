"""The one search space (:mod:`jena.space`) as a Keras Tuner search space
(:class:`SpaceHyperModel`); see :mod:`sweeps.kerastuner` for the mapping."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import keras_tuner as kt

from jena.config import TrialConfig
from jena.errors import ConfigError
from jena.space import Param, Space


class SpaceHyperModel(kt.HyperModel):
    """The sweep's part of ``jena.space`` as a Keras Tuner search space.

    ``build(hp)`` declares every hyperparameter and returns the :class:`TrialConfig` the current
    values map to (``None`` if they make no valid configuration; such a trial fails with the
    reason when it runs). ``point(values)`` turns a trial's values into the flat search values
    ``Space.to_config`` and ``run_trial`` take (active params only, Keras Tuner's own
    ``tuner/*`` keys dropped). Both go through the space's one walk (``Space.walk``).
    """

    def __init__(
        self,
        space: Space,
        base: TrialConfig,
        grid: Mapping[str, list[Any]] | None = None,
        *,
        finite: bool = False,
    ) -> None:
        super().__init__(name="jena_space", tunable=True)
        self.space = space
        self.base = base
        self.grid = {k: list(v) for k, v in (grid or {}).items()}
        self.finite = finite  # grid search: every param needs a finite list of values
        unknown = sorted(set(self.grid) - set(space.names))
        if unknown:
            raise ConfigError(
                f"[tuner.options.grid]: {', '.join(unknown)} not searched in this sweep "
                f"(searched: {', '.join(space.names) or 'none'})"
            )

    # -- declaring
    def build(self, hp: kt.HyperParameters) -> TrialConfig | None:
        values = self.declare(hp)
        try:
            return self.space.to_config(values, self.base)
        except ConfigError:
            return None

    def declare(self, hp: kt.HyperParameters) -> dict[str, Any]:
        """Register every hyperparameter in ``hp`` (every conditional branch, each scoped on the
        first of its searched parents); return the active values (``point``)."""
        registered: set[str] = set()

        def ask(p: Param) -> Any:
            searched = [(n, list(v)) for n, v in p.when.items() if n in registered]
            with _scope(hp, searched[0] if searched else None):
                value = self._declare_one(hp, p)
            registered.add(p.name)
            return p.default if value is None else _legal(p, value)

        self.space.walk(ask, self.base, all_branches=True)
        return self.point(hp.values)

    def _declare_one(self, hp: kt.HyperParameters, p: Param) -> Any:
        if p.name in self.grid:
            values = [p.check(v) for v in self.grid[p.name]]
            return hp.Choice(p.name, values, ordered=p.kind in ("int", "float"))
        if p.kind == "categorical":
            return hp.Choice(p.name, list(p.choices or ()))
        if p.kind == "bool":
            return hp.Boolean(p.name)
        assert p.low is not None and p.high is not None
        if p.log and p.step is not None:  # KT's log step multiplies; ours adds
            return hp.Choice(p.name, p.grid(), ordered=True)
        if self.finite and p.grid() is None:
            raise ConfigError(
                f"grid tuner: give values for {p.name!r} in [tuner.options] grid = "
                f"{{ {p.name} = [...] }} (it is a {'log-scaled ' if p.log else ''}{p.kind} range)"
            )
        sampling = "log" if p.log else "linear"
        if p.kind == "int":
            step = int(p.step) if p.step is not None else None
            return hp.Int(p.name, int(p.low), int(p.high), step=step, sampling=sampling)
        return hp.Float(p.name, float(p.low), float(p.high), step=p.step, sampling=sampling)

    # -- reading a trial's values back
    def point(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The active values of this sweep's params in ``values`` (legal values, in order)."""
        return self.space.walk(lambda p: _legal(p, values.get(p.name, p.default)), self.base)


@contextlib.contextmanager
def _scope(hp: kt.HyperParameters, condition: tuple[str, list[Any]] | None) -> Iterator[None]:
    """``hp.conditional_scope(parent, values)``, or no scope."""
    if condition is None:
        yield
        return
    with hp.conditional_scope(*condition):
        yield


def _legal(p: Param, value: Any) -> Any:
    """A Keras Tuner value as the Param's type, clipped into its range (float round-off)."""
    if p.kind == "categorical":
        return next((c for c in p.choices or () if c == value), value)
    if p.kind == "bool":
        return bool(value)
    assert p.low is not None and p.high is not None
    if p.kind == "int":
        return int(min(max(round(value), p.low), p.high))
    return float(min(max(float(value), p.low), p.high))
