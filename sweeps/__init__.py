"""Sweep definitions (``*.toml``) and the drivers that run them (Optuna, Keras Tuner).

Drivers stay thin: they translate ``jena.space`` Params into their tuner's terms, and hand each
proposed configuration to :func:`sweeps._common.run_trial`, which trains it with ``jena.train``
and records it with the one MLflow convention of ``jena.tracking``.
"""

import warnings
from typing import Any

from .config import SweepConfig, apply_overrides, load

warnings.filterwarnings("ignore", message=".*is an experimental feature.*")

__all__ = ["SweepConfig", "apply_overrides", "load", "run_sweep"]


def run_sweep(cfg: SweepConfig, *, console: Any = None, quiet: bool = False) -> dict[str, Any]:
    """Run or resume the sweep ``cfg``; returns its summary (see ``sweeps._common.run_sweep``)."""
    from ._common import run_sweep as _run

    return _run(cfg, console=console, quiet=quiet)
