"""One trial's hyperparameters: a flat, typed, frozen dataclass.

``TrialConfig`` is the single currency between the search space (``jena.space``), the model
builders (``jena.models``), the trainer and the run store. It knows nothing about tuners.

Per-layer sizes are tuples (``rnn_units=(32, 64)`` is a two-layer stack); the layer counts
``rnn_layers``/``conv_layers``/``dense_layers`` are derived from them, so they cannot disagree.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from dataclasses import dataclass
from typing import Any

from jena.architectures import ARCHITECTURES as ARCHITECTURES  # re-exported (the registry's)
from jena.architectures import CONVOLUTIONAL, GLOBAL_POOLED, RECURRENT
from jena.architectures import get as architecture
from jena.errors import ConfigError
from jena.typed import coerce, type_name

OPTIMIZERS: tuple[str, ...] = ("rmsprop", "adam")
LOSSES: tuple[str, ...] = ("mse", "mae")
# what the network's output is added to: nothing, the window's last temperature, or the linear
# reference's forecast (jena.linear): an untrained model is then persistence, or the ridge
RESIDUALS: tuple[str, ...] = ("none", "persistence", "ridge")
_RESIDUAL_ALIASES = {True: "persistence", False: "none", "true": "persistence",
                     "false": "none"}  # fmt: skip  # before there was a choice: a bool


def residual_name(value: Any) -> Any:
    """``residual`` as one of :data:`RESIDUALS`: the bools (and their text, as an old run's
    MLflow param reads back) of sweep files and runs from before the choice map to ``none`` /
    ``persistence``; anything else is returned as it is (validation names it)."""
    key = value.lower() if isinstance(value, str) else value
    if isinstance(key, (bool, str)) and key in _RESIDUAL_ALIASES:
        return _RESIDUAL_ALIASES[key]
    return value


GLOBAL_POOLS: tuple[str, ...] = ("avg", "max", "none")
ACTIVATIONS: tuple[str, ...] = (
    "tanh",
    "relu",
    "sigmoid",
    "elu",
    "selu",
    "gelu",
    "silu",
    "swish",
    "linear",
)
ROWS_PER_HOUR = 6  # the Jena record has one row every 10 minutes


_TUPLE_FIELDS = ("rnn_units", "dense_units", "conv_filters", "conv_kernel")


@dataclass(frozen=True)
class TrialConfig:
    """Every hyperparameter of one trial. Defaults = the 2nd edition's ``LSTM(16)`` model."""

    # --- architecture -------------------------------------------------------------------
    architecture: str = "lstm"  # a registered one (jena.architectures)
    # recurrent (lstm, gru, conv_gru: RECURRENT)
    rnn_units: tuple[int, ...] = (16,)  # one entry per stacked layer
    rnn_activation: str | tuple[str, ...] = "tanh"  # one for all layers, or one per layer
    bidirectional: bool = False  # wrap every recurrent layer in Bidirectional (concat)
    reverse: bool = False  # flip the time axis before the network (1st ed. 6.3.8)
    dropout: float = 0.0  # recurrent layers' input dropout (Keras ``dropout=``)
    recurrent_dropout: float = 0.0  # recurrent layers' ``recurrent_dropout=``
    # convolutional (conv1d, conv_gru: CONVOLUTIONAL)
    conv_filters: tuple[int, ...] = (8, 8, 8)  # one entry per Conv1D layer
    conv_kernel: tuple[int, ...] = (24, 12, 6)  # kernel size per Conv1D layer
    conv_pool: int = 2  # MaxPooling1D size between conv layers (1 = no pooling)
    conv_global_pool: str = "avg"  # GLOBAL_POOLED (conv1d): avg | max | none (= Flatten)
    conv_activation: str = "relu"
    # head: Dense layers -> Dropout(head_dropout) -> Dense(1)
    dense_units: tuple[int, ...] = ()
    dense_activation: str = "relu"
    head_dropout: float = 0.0
    # --- optimisation -------------------------------------------------------------------
    optimizer: str = "rmsprop"
    learning_rate: float = 1e-3  # = Keras' RMSprop/Adam default
    batch_size: int = 256
    loss: str = "mse"
    # --- data windows -------------------------------------------------------------------
    sampling_rate: int = 6  # rows per step (6 = hourly)
    sequence_length: int = 120  # steps per window
    wind_vector: bool = False  # wind speed+direction -> (x, y) vector components
    time_features: bool = False  # sin/cos of time of day and of year
    # train on the normalised temperature (1st ed.) instead of °C (2nd ed.); MAEs are always
    # reported in °C.
    normalise_target: bool = False
    # "persistence": predict the change from the window's last temperature (output = Dense(1,
    # zeros) + last temperature, in the training units): an untrained model is persistence;
    # "ridge": predict the change from the linear reference's forecast (the network learns
    # target − ridge; the forecaster adds the ridge back): an untrained model is the ridge
    residual: str = "none"
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "residual", residual_name(self.residual))
        # lists (from JSON/TOML or a careless caller) -> tuples, so the config stays hashable
        for name in _TUPLE_FIELDS:
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        if isinstance(self.rnn_activation, list):
            object.__setattr__(self, "rnn_activation", tuple(self.rnn_activation))

    # --- derived ------------------------------------------------------------------------
    @property
    def rnn_layers(self) -> int:
        return len(self.rnn_units)

    @property
    def conv_layers(self) -> int:
        return len(self.conv_filters)

    @property
    def dense_layers(self) -> int:
        return len(self.dense_units)

    @property
    def is_recurrent(self) -> bool:
        return self.architecture in RECURRENT

    @property
    def is_convolutional(self) -> bool:
        return self.architecture in CONVOLUTIONAL

    @property
    def rnn_activations(self) -> tuple[str, ...]:
        """The activation of each recurrent layer."""
        if isinstance(self.rnn_activation, str):
            return (self.rnn_activation,) * self.rnn_layers
        return tuple(self.rnn_activation)

    @property
    def history_rows(self) -> int:
        """Raw rows one input window spans: ``(sequence_length - 1) * sampling_rate + 1``."""
        return (self.sequence_length - 1) * self.sampling_rate + 1

    @property
    def sequence_hours(self) -> float:
        """Hours of history one window covers (``sequence_length * sampling_rate / 6``)."""
        return self.sequence_length * self.sampling_rate / ROWS_PER_HOUR

    def conv_output_length(self) -> int:
        """Steps left after the conv stack ('valid' convs, pooling between them); may be ≤ 0."""
        length = self.sequence_length
        for i, kernel in enumerate(self.conv_kernel):
            length = length - kernel + 1  # Conv1D, padding="valid"
            if length < 1:
                return length
            if i < len(self.conv_kernel) - 1 and self.conv_pool > 1:
                length //= self.conv_pool  # MaxPooling1D(pool), padding="valid"
        return length

    # --- (de)serialisation --------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Flat, JSON-friendly dict (tuples -> lists); ``from_dict`` inverts it."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def active_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` without the fields this architecture does not use (an LSTM has no
        ``conv_filters``, a model without hidden Dense layers no ``dense_activation``)."""
        unused: set[str] = set()
        if not self.is_recurrent:
            unused |= {"rnn_units", "rnn_activation", "bidirectional", "reverse", "dropout",
                       "recurrent_dropout"}  # fmt: skip
        if not self.is_convolutional:
            unused |= {"conv_filters", "conv_kernel", "conv_pool", "conv_activation"}
        if self.architecture not in GLOBAL_POOLED:
            unused.add("conv_global_pool")
        if not self.dense_units:
            unused.add("dense_activation")
        return {k: v for k, v in self.to_dict().items() if k not in unused}

    @classmethod
    def from_dict(cls, data: typing.Mapping[str, Any]) -> TrialConfig:
        """Build from a flat dict; unknown keys and wrongly typed values raise ConfigError."""
        hints = _field_types()
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in hints:
                raise ConfigError(f"unknown config field {key!r}{_suggest(key, hints)}")
            value = residual_name(value) if key == "residual" else value
            kwargs[key] = _check_type(key, hints[key], value)
        return cls(**kwargs)

    def replace(self, **changes: Any) -> TrialConfig:
        """A copy with ``changes`` applied (unknown field -> ConfigError)."""
        hints = _field_types()
        for key in changes:
            if key not in hints:
                raise ConfigError(f"unknown config field {key!r}{_suggest(key, hints)}")
        return dataclasses.replace(self, **changes)

    # --- validation ---------------------------------------------------------------------
    def validate(self) -> TrialConfig:
        """Raise ConfigError (one line) for the first bad value; return self when valid.

        Whether the window fits the data split is the trainer's check (see ``history_rows``).
        """
        hints = _field_types()
        for name, hint in hints.items():
            _check_type(name, hint, getattr(self, name))

        arch = architecture(self.architecture).name  # ConfigError naming the known ones
        self._check_values()
        if self.is_recurrent:
            self._check_recurrent()
        else:
            for name in ("bidirectional", "reverse", "dropout", "recurrent_dropout"):
                if value := getattr(self, name):
                    raise ConfigError(
                        f"{name}={value} needs a recurrent architecture "
                        f"({', '.join(RECURRENT)}), not {arch!r}"
                    )
        if self.is_convolutional:
            self._check_convolutional()
        return self

    def _check_values(self) -> None:
        """Choices, rates, sizes: what every architecture checks."""
        _one_of("optimizer", self.optimizer, OPTIMIZERS)
        _one_of("residual", self.residual, RESIDUALS)
        _one_of("loss", self.loss, LOSSES)
        _one_of("conv_global_pool", self.conv_global_pool, GLOBAL_POOLS)
        _one_of("conv_activation", self.conv_activation, ACTIVATIONS)
        _one_of("dense_activation", self.dense_activation, ACTIVATIONS)
        for act in self.rnn_activations:
            _one_of("rnn_activation", act, ACTIVATIONS)
        for name in ("dropout", "recurrent_dropout", "head_dropout"):
            rate = getattr(self, name)
            if not 0.0 <= rate < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {rate}")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate}")
        for name in ("batch_size", "sampling_rate", "sequence_length"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")
        _positive_sizes("dense_units", self.dense_units)

    def _check_recurrent(self) -> None:
        if not self.rnn_units:
            raise ConfigError(
                f"rnn_units must list at least one layer size for {self.architecture!r}"
            )
        _positive_sizes("rnn_units", self.rnn_units)
        if not isinstance(self.rnn_activation, str) and (
            len(self.rnn_activation) != self.rnn_layers
        ):
            raise ConfigError(
                f"rnn_activation lists {len(self.rnn_activation)} activations for "
                f"{self.rnn_layers} recurrent layers; give one, or one per layer"
            )

    def _check_convolutional(self) -> None:
        if not self.conv_filters:
            raise ConfigError(
                f"conv_filters must list at least one layer for {self.architecture!r}"
            )
        _positive_sizes("conv_filters", self.conv_filters)
        _positive_sizes("conv_kernel", self.conv_kernel)
        if len(self.conv_kernel) != len(self.conv_filters):
            raise ConfigError(
                f"conv_kernel has {len(self.conv_kernel)} entries but conv_filters has "
                f"{len(self.conv_filters)}; give one kernel size per conv layer"
            )
        if self.conv_pool < 1:
            raise ConfigError(f"conv_pool must be >= 1 (1 = no pooling), got {self.conv_pool}")
        if self.conv_output_length() < 1:
            raise ConfigError(
                f"the conv stack (kernels {list(self.conv_kernel)}, pool {self.conv_pool}) "
                f"leaves no steps of a {self.sequence_length}-step window; use fewer or "
                "smaller conv layers or a longer sequence"
            )


# --- helpers ------------------------------------------------------------------------------


_HINTS: dict[str, Any] = {}


def _field_types() -> dict[str, Any]:
    """Resolved type hints of the fields (cached)."""
    if not _HINTS:
        hints = typing.get_type_hints(TrialConfig)
        for f in dataclasses.fields(TrialConfig):
            _HINTS[f.name] = hints[f.name]
    return _HINTS


def _suggest(key: str, known: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _check_type(name: str, hint: Any, value: Any) -> Any:
    """Return ``value`` coerced to ``hint`` (int -> float, list -> tuple) or raise ConfigError."""
    ok, coerced = coerce(hint, value)
    if not ok:
        raise ConfigError(f"config field {name!r} must be {type_name(hint)}, got {value!r}")
    return coerced


def _one_of(name: str, value: str, known: tuple[str, ...]) -> None:
    if value not in known:
        raise ConfigError(f"unknown {name} {value!r}; known: {', '.join(known)}")


def _positive_sizes(name: str, sizes: tuple[int, ...]) -> None:
    if any(s <= 0 for s in sizes):
        raise ConfigError(f"{name} must all be > 0, got {list(sizes)}")
