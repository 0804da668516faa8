"""One searchable hyperparameter (:class:`Param`): plain data — name, kind, choices or
low/high/step/log, default, condition — that every driver translates (:mod:`jena.space` lists
them and walks them)."""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from jena.errors import ConfigError

Kind = Literal["categorical", "int", "float", "bool"]


@dataclass(frozen=True)
class Param:
    """One searchable hyperparameter.

    categorical: ``choices``; int/float: ``low``..``high`` inclusive, optional ``step``, ``log``;
    bool: no range. ``when`` = condition; ``off`` = value applied when the param is inactive
    (None: leave the base config's value). ``legacy``: values of an older form of the param
    (a bool before it became a choice) and what each means now; :meth:`check` maps them.
    """

    name: str
    kind: Kind
    default: Any
    choices: Sequence[Any] | None = None  # a tuple, or a live view (jena.architectures.Names)
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    when: Mapping[str, Sequence[Any]] = field(default_factory=dict, hash=False)
    off: Any = None
    help: str = ""
    legacy: Mapping[Any, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "when", MappingProxyType(dict(self.when)))

    def check(self, value: Any) -> Any:
        """Return ``value`` (an old form mapped by ``legacy``) if it is a legal value of this
        param, else raise ConfigError."""
        for old, new in self.legacy.items():
            if value == old and type(value) is type(old):
                value = new
        if self.kind == "categorical":
            assert self.choices is not None
            if not any(value == c and type(value) is type(c) for c in self.choices):
                raise ConfigError(
                    f"{self.name}={value!r} is not one of {', '.join(map(str, self.choices))}"
                )
            return value
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ConfigError(f"{self.name} must be true or false, got {value!r}")
            return value
        assert self.low is not None and self.high is not None
        numeric = int if self.kind == "int" else (int, float)
        if not isinstance(value, numeric) or isinstance(value, bool):
            what = "an integer" if self.kind == "int" else "a number"
            raise ConfigError(f"{self.name} must be {what}, got {value!r}")
        span = f"{_fmt(self.low)}..{_fmt(self.high)}"
        if not self.low <= value <= self.high:
            raise ConfigError(f"{self.name}={value} is outside {span}")
        if self.step is not None and not _on_grid(value, self.low, self.step):
            raise ConfigError(f"{self.name}={value} is not on the grid {span} step {self.step:g}")
        return value

    def draw(self, rng: random.Random) -> Any:
        """A uniformly random legal value (log-uniform when ``log``)."""
        if self.kind == "categorical":
            assert self.choices is not None
            return rng.choice(self.choices)
        if self.kind == "bool":
            return rng.random() < 0.5
        assert self.low is not None and self.high is not None
        low, high = self.low, self.high
        if self.kind == "int":
            if self.log:
                value = round(math.exp(rng.uniform(math.log(low), math.log(high))))
                return int(min(max(value, low), high))
            return rng.randrange(int(low), int(high) + 1, int(self.step or 1))
        if self.log:
            return math.exp(rng.uniform(math.log(low), math.log(high)))
        if self.step is not None:
            return low + self.step * rng.randrange(round((high - low) / self.step) + 1)
        return rng.uniform(low, high)

    def narrow(self, values: Sequence[Any]) -> Param:
        """This param searched over less: ``[low, high]`` inside a numeric range, or a subset
        of a categorical's choices. ConfigError for anything else."""
        values = list(values)
        try:
            return self._narrow(values)
        except ConfigError as exc:
            raise ConfigError(f"ranges: {exc}") from None

    def _narrow(self, values: list[Any]) -> Param:
        if self.kind == "bool":
            raise ConfigError(f"{self.name}: a boolean cannot be narrowed; fix it instead")
        if self.kind == "categorical":
            if not values:
                raise ConfigError(f"{self.name}: give at least one of its choices")
            for v in values:
                self.check(v)
            choices = tuple(c for c in self.choices or () if c in values)
            default = self.default if self.default in choices else choices[0]
            return dataclasses.replace(self, choices=choices, default=default)
        if len(values) != 2:
            raise ConfigError(f"{self.name}: give [low, high], got {values!r}")
        low, high = (self.check(v) for v in values)
        if low > high:
            raise ConfigError(f"{self.name}: low {low} is above high {high}")
        default = min(max(self.default, low), high)
        if self.step is not None and not _on_grid(default, low, self.step):
            default = low
        return dataclasses.replace(self, low=low, high=high, default=default)

    def grid(self) -> list[Any] | None:
        """Every legal value, when there are finitely many (categorical, bool, a stepped
        range); None for a continuous range."""
        if self.kind == "categorical":
            return list(self.choices or ())
        if self.kind == "bool":
            return [False, True]
        assert self.low is not None and self.high is not None
        if self.step is None and not (self.kind == "int" and not self.log):
            return None
        step = self.step if self.step is not None else 1
        n = round((self.high - self.low) / step)
        values = [self.low + i * step for i in range(n + 1)]
        return [int(v) for v in values] if self.kind == "int" else values

    def describe(self) -> dict[str, Any]:
        """One row for ``jena space``: name, type, range, scale, default, condition, help."""
        if self.kind == "categorical":
            assert self.choices is not None
            rng = ", ".join(map(str, self.choices))
        elif self.kind == "bool":
            rng = "true, false"
        else:
            rng = f"{_fmt(self.low)}..{_fmt(self.high)}"
            if self.step is not None:
                rng += f" step {_fmt(self.step)}"
        return {
            "name": self.name,
            "type": self.kind,
            "range": rng,
            "scale": "log" if self.log else ("linear" if self.kind in ("int", "float") else ""),
            "default": self.default,
            "condition": _condition_text(self.when),
            "help": self.help,
        }


def int_if_whole(x: float) -> float:
    return int(x) if float(x).is_integer() else x


def _on_grid(value: float, low: float, step: float) -> bool:
    k = (value - low) / step
    return abs(k - round(k)) < 1e-9


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:g}"


def _condition_text(when: Mapping[str, Sequence[Any]]) -> str:
    return " and ".join(f"{k} in {{{', '.join(map(str, v))}}}" for k, v in when.items())
