"""Sweep definitions (``*.toml``) and the drivers that run them (Optuna, Keras Tuner).

``config`` reads a sweep file into a typed :class:`SweepConfig`; ``runner`` runs or resumes it
(parent run, live display, summary); ``trial`` is the one trial → train → MLflow path;
``drivers`` holds the :class:`~sweeps.drivers.Driver` interface and the registry
(``optuna_driver``, ``kerastuner_driver``); ``display`` is the live board.
"""

import warnings

from .config import SweepConfig, apply_overrides, load
from .runner import run_sweep

warnings.filterwarnings("ignore", message=".*is an experimental feature.*")

__all__ = ["SweepConfig", "apply_overrides", "load", "run_sweep"]
