"""The one declarative search space.

A ``Param`` is plain data (name, kind, choices or low/high/step/log, default, condition) so that
a driver (Optuna, Keras Tuner, random search) only translates Params; this module never imports
a tuner. Search values are flat (``units=32, rnn_layers=2``); ``to_config`` maps them onto a
``TrialConfig`` (``rnn_units=(32, 32)``, ``sequence_length_hours`` -> ``sequence_length`` steps).

A param with a ``when`` condition is active only if every listed param takes one of the listed
values (``when={"architecture": RECURRENT}``); inactive params are neither sampled nor applied.
Params are ordered so that a condition only refers to params listed before it.
"""

from __future__ import annotations

import difflib
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from jena.architectures import ARCHITECTURES, CONVOLUTIONAL, GLOBAL_POOLED, RECURRENT
from jena.config import LOSSES, OPTIMIZERS, RESIDUALS, ROWS_PER_HOUR, TrialConfig
from jena.errors import ConfigError
from jena.param import Param, int_if_whole


def active(param: Param, values: Mapping[str, Any]) -> bool:
    """True if every ``param.when`` entry holds in ``values`` (a missing name takes its default)."""
    return all(values.get(n, _default(n)) in allowed for n, allowed in param.when.items())


def _default(name: str) -> Any:
    return _BY_NAME[name].default


# --- the space ----------------------------------------------------------------------------

# live views of the registry (jena.architectures): a registered architecture is searched at once
_REC = {"architecture": RECURRENT}
_CONV = {"architecture": CONVOLUTIONAL}

PARAMS: tuple[Param, ...] = (
    Param("architecture", "categorical", "lstm", choices=ARCHITECTURES,
          help="network body"),
    # recurrent
    Param("bidirectional", "bool", False, when=_REC, off=False,
          help="wrap each recurrent layer in Bidirectional"),
    Param("reverse", "bool", False, when=_REC, off=False,
          help="feed the window newest-first"),
    Param("rnn_layers", "int", 1, low=1, high=3, when=_REC,
          help="stacked recurrent layers"),
    Param("units", "int", 16, low=8, high=128, log=True, when=_REC,
          help="units of every recurrent layer"),
    Param("dropout", "float", 0.0, low=0.0, high=0.5, when=_REC, off=0.0,
          help="recurrent layers' input dropout"),
    Param("recurrent_dropout", "float", 0.0, low=0.0, high=0.5, when=_REC, off=0.0,
          help="recurrent layers' recurrent dropout (disables cuDNN)"),
    # convolutional
    Param("conv_layers", "int", 3, low=1, high=3, when=_CONV,
          help="Conv1D layers"),
    Param("conv_filters", "int", 16, low=8, high=64, log=True, when=_CONV,
          help="filters of every Conv1D layer"),
    Param("conv_kernel", "int", 5, low=3, high=24, when=_CONV,
          help="kernel size of every Conv1D layer"),
    Param("conv_pool", "int", 2, low=1, high=4, when=_CONV,
          help="MaxPooling1D size between conv layers (1 = none)"),
    Param("conv_global_pool", "categorical", "avg", choices=("avg", "max"),
          when={"architecture": GLOBAL_POOLED},
          help="global pooling after the conv stack"),
    # head
    Param("dense_layers", "int", 0, low=0, high=2,
          help="hidden Dense layers before the output"),
    Param("dense_units", "int", 16, low=8, high=128, log=True, when={"dense_layers": (1, 2)},
          help="units of every hidden Dense layer"),
    Param("head_dropout", "float", 0.0, low=0.0, high=0.5,
          help="Dropout before the output layer"),
    # optimisation
    Param("optimizer", "categorical", "rmsprop", choices=OPTIMIZERS),
    Param("learning_rate", "float", 1e-3, low=1e-4, high=1e-2, log=True),
    Param("batch_size", "categorical", 256, choices=(64, 128, 256, 512)),
    Param("loss", "categorical", "mse", choices=LOSSES),
    # data windows
    Param("sampling_rate", "categorical", 6, choices=(1, 2, 3, 6),
          help="rows per step (6 = hourly)"),
    Param("sequence_length_hours", "int", 120, low=24, high=240, step=24,
          help="hours of history per window (steps = hours * 6 / sampling_rate)"),
    Param("wind_vector", "bool", False, help="wind as (x, y) vector components"),
    Param("time_features", "bool", False, help="sin/cos of time of day and of year"),
    Param("normalise_target", "bool", False,
          help="train on the normalised temperature (MAE still reported in °C)"),
    Param("residual", "categorical", "none", choices=RESIDUALS,
          legacy={True: "persistence", False: "none", "True": "persistence", "False": "none",
                  "true": "persistence", "false": "none"},
          help="what the output is added to: none, the last temperature (persistence) or the "
               "linear reference's forecast (ridge); untrained = that forecast"),
)  # fmt: skip

_BY_NAME: dict[str, Param] = {p.name: p for p in PARAMS}

# How a model is trained rather than what it is: a warm start takes the sweep's values of these.
TRAINING_FIELDS = ("optimizer", "learning_rate", "batch_size", "loss", "normalise_target",
                   "residual", "wind_vector", "time_features", "seed")  # fmt: skip


PRESET = "preset"  # the pseudo-param of a space of named book models


def preset_param(names: Sequence[str]) -> Param:
    return Param(PRESET, "categorical", names[0], choices=tuple(names),
                 help="a named book model (jena.book)")  # fmt: skip


Ask = Callable[[Param], Any]  # a driver's "give me a value for this param"


@dataclass(frozen=True)
class Space:
    """A (sub)space: the free ``params`` in order, plus ``fixed`` values of other params.

    With ``presets`` (names of book models) the space searches one pseudo-param, ``preset``,
    instead: a point is a named model of :mod:`jena.book`, with the fixed values on top.
    Iterating a Space yields its free Params; ``space["units"]`` looks one up by name.
    """

    params: tuple[Param, ...] = PARAMS
    fixed: Mapping[str, Any] = field(default_factory=dict, hash=False)
    presets: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "fixed", MappingProxyType(dict(self.fixed)))
        if self.presets is not None:
            if not self.presets:
                raise ConfigError("presets: name at least one book model")
            from jena.book import book_model

            for name in self.presets:
                book_model(name)
            object.__setattr__(self, "presets", tuple(self.presets))
            object.__setattr__(self, "params", (preset_param(self.presets),))

    def __iter__(self) -> Iterator[Param]:
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def __getitem__(self, key: int | str) -> Param:
        if isinstance(key, int):
            return self.params[key]
        for p in self.params:
            if p.name == key:
                return p
        raise KeyError(key)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def walk(self, ask: Ask, base: TrialConfig | None = None, *, all_branches: bool = False
             ) -> dict[str, Any]:  # fmt: skip
        """Visit the free params in order and ``ask`` for the value of each active one; the
        values given so far decide which later params are active (conditions). Returns the
        point (active params only). Every driver proposes through this one walk.

        ``all_branches``: also ask for params inactive at this point that other values of the
        searched params could activate (Keras Tuner declares every conditional branch); those
        values are not kept."""
        ctx = {**from_config(base if base is not None else TrialConfig()), **self.fixed}
        searched: set[str] = set()
        point: dict[str, Any] = {}
        for p in self.params:
            if active(p, ctx):
                point[p.name] = ctx[p.name] = ask(p)
            elif all_branches and all(
                ctx.get(n, _default(n)) in allowed
                for n, allowed in p.when.items()
                if n not in searched
            ):
                ask(p)
            else:
                continue  # never active for any value of the params searched so far
            searched.add(p.name)
        return point

    def point_of(
        self, config: TrialConfig, base: TrialConfig | None = None, *, strict: bool = False
    ) -> tuple[dict[str, Any], list[str]]:
        """The point of this space that builds ``config``'s model (a book model, say), and why
        it cannot (empty when it can). The model must come out the same — layers, units,
        dropouts, window; training settings (optimizer, learning rate, batch size, loss,
        target units, residual, features) are the sweep's where it fixes them, unless
        ``strict`` (a finished trial's result holds for its own settings only)."""
        base = base if base is not None else TrialConfig()
        want = from_config(config)
        problems: list[str] = []

        def ask(p: Param) -> Any:
            try:
                return p.check(want[p.name])
            except ConfigError as exc:
                problems.append(f"{exc} in this sweep")
                return p.default

        point = self.walk(ask, base)
        if problems:
            return point, problems
        try:
            got = self.to_config(point, base).active_dict()
        except ConfigError as exc:
            return point, [str(exc)]
        theirs = config.active_dict()
        skip = ("seed",) if strict else TRAINING_FIELDS
        for key, value in theirs.items():
            if key not in skip and got.get(key) != value:
                problems.append(f"{key} = {value} (this sweep gives {got.get(key)})")
        return point, problems

    def grid(self) -> dict[str, list[Any]] | None:
        """Every free param's finite list of values, or None if one is a continuous range."""
        out: dict[str, list[Any]] = {}
        for p in self.params:
            values = p.grid()
            if values is None:
                return None
            out[p.name] = values
        return out

    def defaults(self) -> dict[str, Any]:
        """Every free param's default (active or not), with the fixed values."""
        return {**{p.name: p.default for p in self.params}, **self.fixed}

    def subspace(
        self,
        include: Sequence[str] | None = None,
        fixed: Mapping[str, Any] | None = None,
        presets: Sequence[str] | None = None,
        ranges: Mapping[str, Sequence[Any]] | None = None,
    ) -> Space:
        """Search only ``include`` (default: every free param) over ``ranges`` (narrower
        ``[low, high]`` or a subset of choices) and pin ``fixed`` values; or, with
        ``presets``, search those named book models (and pin ``fixed`` on top)."""
        fixed = dict(fixed or {})
        ranges = dict(ranges or {})
        if ranges:
            narrowed = self.subspace(include, fixed)
            for name in ranges:
                _param(name)
                if name not in narrowed.names:
                    raise ConfigError(f"ranges: {name} is not searched in this space")
            params = tuple(p.narrow(ranges[p.name]) if p.name in ranges else p for p in narrowed)
            return Space(params=params, fixed=narrowed.fixed)
        fixed = {name: _param(name).check(value) for name, value in fixed.items()}
        if presets is not None:
            return Space(params=(), fixed={**self.fixed, **fixed}, presets=tuple(presets))
        for name, value in fixed.items():
            if name in self.fixed and self.fixed[name] != value:
                raise ConfigError(f"{name} is already fixed to {self.fixed[name]!r}")
        names = self.names if include is None else tuple(include)
        for name in names:
            _param(name)
            if name not in self.names:
                raise ConfigError(f"{name} is not a free parameter of this space")
            if include is not None and name in fixed:
                raise ConfigError(f"{name} is both searched (include) and fixed")
        keep = set(names) - set(fixed)
        return Space(
            params=tuple(p for p in self.params if p.name in keep),
            fixed={**self.fixed, **fixed},
        )

    def to_config(self, values: Mapping[str, Any], base: TrialConfig | None = None) -> TrialConfig:
        """Map flat search ``values`` (+ this space's fixed values) onto ``base``.

        Inactive params are ignored (a recurrent-only flag is reset to its ``off`` value when the
        architecture is not recurrent); names outside PARAMS and illegal values -> ConfigError.
        Not validated: call ``.validate()`` on the result.
        """
        base = base if base is not None else TrialConfig()
        given = {**self.fixed, **values}
        if PRESET in given:
            from jena.book import book_model

            base = book_model(given.pop(PRESET)).config.replace(seed=base.seed)
        given = {name: _param(name).check(value) for name, value in given.items()}
        ctx = {**from_config(base), **given}
        live = {n: v for n, v in given.items() if active(_BY_NAME[n], ctx)}
        kw: dict[str, Any] = {
            p.name: p.off for p in PARAMS if p.off is not None and not active(p, ctx)
        }

        for name in ("architecture", "bidirectional", "reverse", "dropout", "recurrent_dropout",
                     "head_dropout", "conv_pool", "conv_global_pool", "optimizer",
                     "learning_rate", "batch_size", "loss", "sampling_rate", "wind_vector",
                     "time_features", "normalise_target", "residual"):  # fmt: skip
            if name in live:
                kw[name] = live[name]
        if {"rnn_layers", "units"} & live.keys():
            n = ctx["rnn_layers"]
            kw["rnn_units"] = (ctx["units"],) * n
            if not isinstance(base.rnn_activation, str) and len(base.rnn_activation) != n:
                kw["rnn_activation"] = "tanh"  # per-layer activations no longer line up
        if {"conv_layers", "conv_filters", "conv_kernel"} & live.keys():
            n = ctx["conv_layers"]
            kw["conv_filters"] = (ctx["conv_filters"],) * n
            kw["conv_kernel"] = (ctx["conv_kernel"],) * n
        if {"dense_layers", "dense_units"} & live.keys():
            kw["dense_units"] = (ctx["dense_units"],) * ctx["dense_layers"]
        if {"sampling_rate", "sequence_length_hours"} & live.keys():
            if "sequence_length_hours" in live:
                rows = live["sequence_length_hours"] * ROWS_PER_HOUR
            else:  # keep the base window's span in rows
                rows = base.sequence_length * base.sampling_rate
            rate = ctx["sampling_rate"]
            if rows % rate:
                raise ConfigError(
                    f"{ctx['sequence_length_hours']} h is not a whole number of "
                    f"{rate}-row steps; pick another sequence_length_hours"
                )
            kw["sequence_length"] = int(rows // rate)
        return base.replace(**kw)

    def sample(
        self, rng: random.Random | int | None = None, base: TrialConfig | None = None
    ) -> dict[str, Any]:
        """A random point: values of the free params active there, drawn in order.

        Points whose config fails ``validate()`` (e.g. a conv stack longer than the window)
        are redrawn.
        """
        rng = rng if isinstance(rng, random.Random) else random.Random(rng)
        base = base if base is not None else TrialConfig()
        for _ in range(1000):
            point = self.walk(lambda p: p.draw(rng), base)
            try:
                self.to_config(point, base).validate()
            except ConfigError:
                continue
            return point
        raise ConfigError("could not draw a valid point in 1000 tries; the space is too narrow")

    def describe(self) -> list[dict[str, Any]]:
        """Rows for ``jena space``: free params, then fixed ones (``range`` = ``= value``)."""
        rows = [{**p.describe(), "fixed": False} for p in self.params]
        for name, value in self.fixed.items():
            row = _BY_NAME[name].describe()
            rows.append({**row, "range": f"= {value}", "scale": "", "fixed": True})
        return rows


SPACE = Space()


def from_config(config: TrialConfig) -> dict[str, Any]:
    """The search values a config corresponds to (per-layer sizes collapse to the first)."""
    return {
        "architecture": config.architecture,
        "bidirectional": config.bidirectional,
        "reverse": config.reverse,
        "rnn_layers": config.rnn_layers,
        "units": config.rnn_units[0] if config.rnn_units else _BY_NAME["units"].default,
        "dropout": config.dropout,
        "recurrent_dropout": config.recurrent_dropout,
        "conv_layers": config.conv_layers,
        "conv_filters": (
            config.conv_filters[0] if config.conv_filters else _BY_NAME["conv_filters"].default
        ),
        "conv_kernel": (
            config.conv_kernel[0] if config.conv_kernel else _BY_NAME["conv_kernel"].default
        ),
        "conv_pool": config.conv_pool,
        "conv_global_pool": config.conv_global_pool,
        "dense_layers": config.dense_layers,
        "dense_units": (
            config.dense_units[0] if config.dense_units else _BY_NAME["dense_units"].default
        ),
        "head_dropout": config.head_dropout,
        "optimizer": config.optimizer,
        "learning_rate": config.learning_rate,
        "batch_size": config.batch_size,
        "loss": config.loss,
        "sampling_rate": config.sampling_rate,
        "sequence_length_hours": int_if_whole(config.sequence_hours),
        "wind_vector": config.wind_vector,
        "time_features": config.time_features,
        "normalise_target": config.normalise_target,
        "residual": config.residual,
    }


# --- module-level shortcuts on the full space ---------------------------------------------


def defaults() -> dict[str, Any]:
    return SPACE.defaults()


def to_config(values: Mapping[str, Any], base: TrialConfig | None = None) -> TrialConfig:
    return SPACE.to_config(values, base)


def subspace(include: Sequence[str] | None = None, fixed: Mapping[str, Any] | None = None) -> Space:
    return SPACE.subspace(include, fixed)


def sample(
    rng: random.Random | int | None = None, base: TrialConfig | None = None
) -> dict[str, Any]:
    return SPACE.sample(rng, base)


def describe() -> list[dict[str, Any]]:
    return SPACE.describe()


# --- helpers ------------------------------------------------------------------------------


def _param(name: str) -> Param:
    if name not in _BY_NAME:
        close = difflib.get_close_matches(name, list(_BY_NAME), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(_BY_NAME)}"
        raise ConfigError(f"unknown search parameter {name!r}{hint}")
    return _BY_NAME[name]
