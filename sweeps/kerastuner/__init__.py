"""The Keras Tuner driver: maps ``jena.space`` Params onto a ``keras_tuner.HyperModel`` and runs
the trainer from a custom ``keras_tuner.Tuner``.

Search space: :class:`SpaceHyperModel` translates the one declarative space (no second copy of
ranges or conditions): categorical → ``hp.Choice``, bool → ``hp.Boolean``, int → ``hp.Int``,
float → ``hp.Float`` (``sampling="log"`` for log-scaled ranges; a log range on a step grid becomes
a ``hp.Choice`` of its grid values, since Keras Tuner's log ``step`` is a multiplier). A ``when``
condition on a searched param becomes ``hp.conditional_scope(parent, values)``; a condition on a
param that is not searched (fixed, or left at the base config's value) is decided once, up front
(never active: not a hyperparameter at all). Keras Tuner's public API gives a hyperparameter one
parent (nested scopes only work when the inner parent was itself declared in the outer scope),
so a condition with several searched parents is declared on the first of them; the rest is
applied when a trial's values are read back (:meth:`SpaceHyperModel.point` drops inactive
values, as ``Space.to_config`` would). Sweeps with
``space.presets`` search ``hp.Choice("preset", presets)``. Data-level hyperparameters
(``sampling_rate``, ``sequence_length_hours``, ``wind_vector``, ``time_features``) are ordinary
hyperparameters: :func:`sweeps.trial.run_trial` builds each trial's windows from its config.

Trials: :class:`SweepTuner` (a ``keras_tuner.Tuner``) hands each trial's active values to
:func:`sweeps.trial.run_trial` — the one trial → train → MLflow path shared with the Optuna
driver — and returns ``{"val_mae": ...}`` to the oracle. Trial ``"07"`` is trial number 7,
MLflow child run ``t0007-…`` (:func:`sweeps.trial.run_name`). Keras Tuner saves no models:
``save_model`` is a no-op, models live in MLflow (:func:`jena.tracking.load_trial_model`), and
``load_model`` / ``get_best_models`` say so.

Oracles (``[tuner].type``): ``random`` → RandomSearchOracle, ``bayesian`` →
BayesianOptimizationOracle, ``hyperband`` → HyperbandOracle, ``grid`` → GridSearchOracle, with
objective ``val_mae`` (min), ``seed`` and ``[tuner].options`` (e.g. ``num_initial_points``,
``factor``, ``hyperband_iterations``; for ``grid``, ``grid = {units = [16, 32]}`` lists the
values of ranges that have no finite grid). Hyperband: a trial trains for
``tuner/epochs`` epochs; a trial promoted to the next round (``tuner/trial_id``) is retrained from
scratch, not continued from ``tuner/initial_epoch`` (the earlier model lives in MLflow, and
training from scratch keeps every trial's MLflow run self-contained). Keras Tuner has no pruning
besides Hyperband's own schedule.

Storage, resume, budget: the project is ``<storage.kerastuner_dir>/<name>/`` (``oracle.json``,
``tuner0.json``, ``trial_*/trial.json``, and ``jena_sweep.json`` naming the tuner type), opened
with ``overwrite=False``: running the same command again reloads it and goes on (with another
``[tuner].type`` it is a ConfigError; ranges of params already in the project are kept as they
were, params new to the sweep are added). ``trials`` is the total over all invocations (the oracle's
``max_trials``; Hyperband may stop earlier, when its brackets are done). A trial left RUNNING by a
crash or Ctrl-C is put back in the oracle's retry queue on reload and runs again first, under its
own number (it already counts against the budget). ``timeout_minutes``: no trial starts after the
deadline.

Failures: a trial that fails (exception, NaN loss, a window that does not fit) ends FAILED in
MLflow with ``failure_reason`` (by ``run_trial``) and, via ``keras_tuner.errors.FailedTrialError``,
FAILED in Keras Tuner with the reason in the trial's ``message``; the sweep goes on. After
``[faults].max_consecutive_failed_trials`` (``[tuner].max_consecutive_failed_trials``, its old
name, still reads) failures of the same kind in a row (in this invocation) the sweep stops with
:class:`TooManyFailures` (:class:`sweeps.faults.FailureStreak`, as for Optuna). This driver counts
them itself instead of the oracle's own check, which in keras-tuner 1.4.8 raises before the
oracle saves the trial (so a resume re-runs it) and counts over the whole history (so a resumed
project that once hit the limit stops at its next trial, whatever happens). An infrastructure
failure (:class:`jena.errors.InfrastructureError`: a full disk, the tracking store gone) stops the
search at once and leaves the trial RUNNING in the project: the next run re-runs it first, under
its own number, as after a crash.

One process only (its :class:`~sweeps.drivers.Capabilities` say so: ``--workers > 1`` is a
ConfigError; distributed Keras Tuner needs a chief oracle server and ``KERASTUNER_*`` environment
variables). Importing this package does not import Keras Tuner; running the driver does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from ..config import SweepConfig
from ..drivers import Best, Capabilities, Resume, StopSignal, one_of

if TYPE_CHECKING:
    from ..trial import SweepContext
    from ..warm import WarmPoint

__all__ = ["TUNERS", "KerasTunerDriver", "SpaceHyperModel", "hypermodel", "kt_trials", "oracle"]

TUNERS = ("random", "bayesian", "hyperband", "grid")  # [tuner].type: its oracles


class KerasTunerDriver:
    name: ClassVar[str] = "kerastuner"
    capabilities: ClassVar[Capabilities] = Capabilities()  # one process, one objective

    def __init__(self, cfg: SweepConfig) -> None:
        self.cfg = cfg

    @classmethod
    def problems(cls, cfg: SweepConfig) -> Iterator[tuple[str, str]]:
        """Its own settings: ``[tuner]`` (the options are checked by the oracle it builds)."""
        return one_of("[tuner].type", cfg.tuner.type, TUNERS)

    @property
    def algorithm(self) -> str:
        return self.cfg.tuner.type

    def resume(self) -> Resume:
        from . import _tuner

        return _tuner.resume(self.cfg)

    def best(self) -> Best | None:
        from . import _tuner

        return _tuner.best(self.cfg)

    def warm_start(self, points: list[WarmPoint]) -> list[str]:
        from . import _tuner

        return _tuner.warm_start(self.cfg, points)

    def run(
        self,
        ctx: SweepContext,
        deadline: float | None,
        *,
        worker: int = 0,
        stop: StopSignal | None = None,
    ) -> None:
        from . import _tuner

        _tuner.search(ctx, deadline)


def __getattr__(name: str) -> Any:  # the tuner's side imports Keras Tuner: only when asked
    if name == "SpaceHyperModel":
        from . import _space

        return _space.SpaceHyperModel
    if name in ("hypermodel", "kt_trials", "oracle", "kt_seed", "project_dir"):
        from . import _tuner

        return getattr(_tuner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
