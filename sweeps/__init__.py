"""Sweep definitions (``*.toml``) and the drivers that run them (Optuna, Keras Tuner).

``config`` reads a sweep file into a typed :class:`SweepConfig`; ``runner`` runs or resumes it
(:func:`run_sweep` → :class:`SweepSummary`); ``trial`` is the one trial → train → MLflow path;
``drivers`` is the :class:`~sweeps.drivers.Driver` interface (``registry``: the drivers,
``optuna/``, ``kerastuner/``); ``pool`` runs worker processes; ``state`` is what a running
sweep knows, ``display`` draws it.
"""

import warnings

from .config import SweepConfig, apply_flags, apply_overrides, load
from .runner import SweepView, run_sweep
from .state import SweepState, SweepSummary

warnings.filterwarnings("ignore", message=".*is an experimental feature.*")

__all__ = [
    "SweepConfig",
    "SweepState",
    "SweepSummary",
    "SweepView",
    "apply_flags",
    "apply_overrides",
    "load",
    "run_sweep",
]
