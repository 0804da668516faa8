"""Several processes on one accelerator under JAX.

XLA's GPU client preallocates 75 % of the device's memory in the first process that touches it,
so a second worker on the same GPU fails with an out-of-memory error. Where workers are spawned
(``jena sweep --workers N``, the benchmarks), :func:`share_device` turns preallocation off and
caps each process at its share, unless the user set these variables. Nothing here imports Keras
or JAX: the spawning process must not initialise the device itself.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import MutableMapping
from pathlib import Path

PREALLOCATE = "XLA_PYTHON_CLIENT_PREALLOCATE"
MEM_FRACTION = "XLA_PYTHON_CLIENT_MEM_FRACTION"


def keras_backend_name(environ: MutableMapping[str, str] | None = None) -> str:
    """The backend Keras will load, without importing it ($KERAS_BACKEND, then
    $KERAS_HOME/keras.json, then tensorflow)."""
    env = os.environ if environ is None else environ
    if env.get("KERAS_BACKEND"):
        return env["KERAS_BACKEND"]
    home = env.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        return str(json.loads(Path(home, "keras.json").read_text()).get("backend", "tensorflow"))
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def keras_backend() -> str:
    """``keras.backend.backend()`` when Keras is loaded, else the one it will load
    (:func:`keras_backend_name`), without importing it (seconds)."""
    if "keras" in sys.modules:
        import keras

        return str(keras.backend.backend())
    return keras_backend_name()


def share_device(processes: int, environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set (in ``environ``, default ``os.environ``, which spawned workers inherit) what lets
    ``processes`` JAX processes share one device: no preallocation, and at most
    ``0.9 / processes`` of its memory each. Only under the JAX backend, only for several
    processes, and never over a value the user set. Returns what it set."""
    env = os.environ if environ is None else environ
    if processes < 2 or keras_backend_name(env) != "jax":
        return {}
    wanted = {PREALLOCATE: "false", MEM_FRACTION: f"{0.9 / processes:.2f}"}
    added = {k: v for k, v in wanted.items() if k not in env}
    env.update(added)
    return added
