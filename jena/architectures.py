"""The one registry of architectures (a model's body): what each is, its builder, which
parameter groups it reads, whether the packed trainer computes it.

The configuration (:mod:`jena.config`: the known names, which fields an architecture reads), the
search space (:mod:`jena.space`: the ``architecture`` choices and the ``when`` conditions), the
model (:mod:`jena.models`: the body) and the packed trainer (:mod:`jena.packed`) all read it, so a
new architecture is one builder function plus one :func:`register` call — here for the shipped
ones, or anywhere before a configuration names it (a test registers a fixture, then unregisters
it). Keras-free: a shipped builder is named ``"module:function"`` and imported when a model is
built; a registered one may be the function itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

from jena.errors import ConfigError

# (config, inputs (batch, steps, features)) -> the body's output (batch, ...), before the head
Builder = Callable[[Any, Any], Any]
# the bodies the packed JAX trainer computes (jena.packed._model): flatten, or an LSTM/GRU stack
PACKED_BODIES: tuple[str, ...] = ("flatten", "lstm", "gru")


@dataclass(frozen=True)
class Architecture:
    """One model body.

    ``recurrent``: reads ``rnn_units``, ``rnn_activation``, ``bidirectional``, ``reverse``,
    ``dropout``, ``recurrent_dropout``; ``convolutional``: ``conv_filters``, ``conv_kernel``,
    ``conv_pool``, ``conv_activation``; ``global_pool``: ``conv_global_pool``. Every
    architecture is followed by the same head (``dense_units`` ... ``Dense(1)``).
    ``packs_as``: the body :mod:`jena.packed` computes for it (one of :data:`PACKED_BODIES`),
    or None: trained one by one."""

    name: str
    about: str  # one line: what the body is
    builder: Builder | str  # the function, or "module:function" (imported on first use)
    recurrent: bool = False
    convolutional: bool = False
    global_pool: bool = False
    packs_as: str | None = None

    def build(self, config: Any, inputs: Any) -> Any:
        """The body on ``inputs``: (batch, steps, features) -> (batch, ...)."""
        return _resolve(self.builder)(config, inputs)


def _resolve(builder: Builder | str) -> Builder:
    if not isinstance(builder, str):
        return builder
    module, _, name = builder.partition(":")
    function: Builder = getattr(importlib.import_module(module), name)
    return function


_REGISTRY: dict[str, Architecture] = {}


def register(arch: Architecture) -> Architecture:
    """Add ``arch``; ConfigError for a name taken or a body the packed trainer does not know."""
    if arch.name in _REGISTRY:
        raise ConfigError(f"architecture {arch.name!r} is registered already")
    if arch.packs_as is not None and arch.packs_as not in PACKED_BODIES:
        raise ConfigError(f"architecture {arch.name!r}: packs_as={arch.packs_as!r} is not one of "
                          f"{', '.join(PACKED_BODIES)} (or None: not packable)")  # fmt: skip
    _REGISTRY[arch.name] = arch
    return arch


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def get(name: str) -> Architecture:
    """The registered architecture ``name``; ConfigError naming the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)}"
        ) from None


class Names(Sequence[str]):
    """The names of the registered architectures that ``test`` accepts, in registration order:
    a live view (it follows :func:`register`), usable wherever a tuple of names is (``in``,
    iteration, ``", ".join``, equality with a tuple)."""

    def __init__(self, test: Callable[[Architecture], bool]) -> None:
        self._test = test

    def _names(self) -> tuple[str, ...]:
        return tuple(n for n, a in _REGISTRY.items() if self._test(a))

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[str]: ...
    def __getitem__(self, i: int | slice) -> str | Sequence[str]:
        return self._names()[i]

    def __len__(self) -> int:
        return len(self._names())

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in _REGISTRY and self._test(_REGISTRY[name])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Names):
            return self._names() == other._names()
        return isinstance(other, (tuple, list)) and self._names() == tuple(other)

    def __hash__(self) -> int:  # as the tuple it equals now
        return hash(self._names())

    def __repr__(self) -> str:
        return repr(self._names())


ARCHITECTURES = Names(lambda a: True)
RECURRENT = Names(lambda a: a.recurrent)
CONVOLUTIONAL = Names(lambda a: a.convolutional)
GLOBAL_POOLED = Names(lambda a: a.global_pool)
PACKABLE = Names(lambda a: a.packs_as is not None)


for _arch in (
    Architecture("dense", "the window flattened into the head (steps × features inputs)",
                 "jena.models:build_dense", packs_as="flatten"),
    Architecture("conv1d", "a Conv1D stack (max-pooling between layers), then global pooling",
                 "jena.models:build_conv1d", convolutional=True, global_pool=True),
    Architecture("lstm", "a stack of LSTM layers (optionally bidirectional, reversed)",
                 "jena.models:build_lstm", recurrent=True, packs_as="lstm"),
    Architecture("gru", "a stack of GRU layers (optionally bidirectional, reversed)",
                 "jena.models:build_gru", recurrent=True, packs_as="gru"),
    Architecture("conv_gru", "a Conv1D stack feeding a GRU stack (1st ed. 6-49)",
                 "jena.models:build_conv_gru", recurrent=True, convolutional=True),
):  # fmt: skip
    register(_arch)
