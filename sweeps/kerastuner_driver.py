"""Keras Tuner driver: maps ``jena.space`` Params onto a ``keras_tuner.HyperModel`` and runs the
trainer from a custom ``keras_tuner.Tuner``.

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
driver — and returns ``{"val_mae": ...}`` to the oracle. Trial ``"07"`` is MLflow child run
``trial-0007``. Keras Tuner saves no models: ``save_model`` is a no-op, models live in MLflow
(:func:`jena.tracking.load_trial_model`), and ``load_model`` / ``get_best_models`` say so.

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
``[faults].max_consecutive_failed_trials`` (or ``[tuner].max_consecutive_failed_trials``)
failures of the same kind in a row (in this invocation) the sweep stops with
:class:`TooManyFailures` (:class:`sweeps.faults.FailureStreak`, as for Optuna). This driver counts
them itself instead of the oracle's own check, which in keras-tuner 1.4.8 raises before the
oracle saves the trial (so a resume re-runs it) and counts over the whole history (so a resumed
project that once hit the limit stops at its next trial, whatever happens). An infrastructure
failure (:class:`jena.errors.InfrastructureError`: a full disk, the tracking store gone) stops the
search at once and leaves the trial RUNNING in the project: the next run re-runs it first, under
its own number, as after a crash.

One process only: ``--workers > 1`` is a ConfigError (distributed Keras Tuner needs a chief
oracle server and ``KERASTUNER_*`` environment variables; use the Optuna driver for workers).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import keras_tuner as kt

from jena import tracking as T
from jena.book import preset_defaults
from jena.config import TrialConfig
from jena.errors import ConfigError, InfrastructureError
from jena.space import Param, Space

from .config import SweepConfig
from .display import Board
from .drivers import Best, Resume
from .faults import FailureStreak
from .faults import TooManyFailures as TooManyFailures  # this driver's name for it, as before
from .stop import stop_reason
from .trial import SweepContext, make_space, run_trial

OBJECTIVE = "val_mae"
TUNER_ID = "tuner0"
MARKER = "jena_sweep.json"  # which [tuner].type made the project
WARM = "jena_warm_start.json"  # the points the project's first trials are (a warm start)
_FINISHED = ("COMPLETED", "FAILED")
# Keys the driver sets itself; [tuner].options must not.
_RESERVED = ("objective", "seed", "max_trials", "hyperparameters", "max_consecutive_failed_trials",
             "allow_new_entries", "tune_new_entries")  # fmt: skip


class _Lost(kt.errors.FatalError):
    """An InfrastructureError, carried out of Keras Tuner's loop (which fails any other error
    as the trial's own)."""

    def __init__(self, error: InfrastructureError) -> None:
        super().__init__(str(error))
        self.error = error


class _OutOfTime(Exception):
    """The sweep's deadline passed: start no new trial."""


class _StopRule(Exception):
    """A ``[stop]`` rule is met: start no new trial."""


# ------------------------------------------------------------------ space → hyperparameters
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


# ------------------------------------------------------------------ oracle and tuner
def kt_seed(seed: int) -> int:
    """Keras Tuner draws a random seed when given 0 (``seed or random.randint(...)``)."""
    return seed + 1 if seed >= 0 else seed


def oracle(cfg: SweepConfig) -> kt.Oracle:
    """The oracle of ``[tuner].type`` with ``[tuner].options`` (budget: ``trials``)."""
    opts = {k: v for k, v in cfg.tuner.options.items() if k != "grid"}
    where = f"{cfg.path or 'sweep'}: [tuner.options]"
    bad = [k for k in opts if k in _RESERVED]
    if bad:
        hint = {"max_consecutive_failed_trials": " (use [tuner].max_consecutive_failed_trials)",
                "max_trials": " (use trials)", "seed": " (use seed)"}  # fmt: skip
        raise ConfigError(f"{where}: {bad[0]!r} is set by the sweep{hint.get(bad[0], '')}")
    common: dict[str, Any] = {
        "objective": kt.Objective(OBJECTIVE, "min"),
        "seed": kt_seed(cfg.seed),
        # Counted by SweepTuner instead (see the module docstring).
        "max_consecutive_failed_trials": None,
    }
    kind = cfg.tuner.type
    try:
        if kind == "random":
            o = kt.oracles.RandomSearchOracle(max_trials=cfg.trials, **common, **opts)
        elif kind == "bayesian":
            o = kt.oracles.BayesianOptimizationOracle(max_trials=cfg.trials, **common, **opts)
        elif kind == "hyperband":
            opts = {"max_epochs": cfg.fidelity.max_epochs, "factor": 3, **opts}
            o = kt.oracles.HyperbandOracle(**common, **opts)
        elif kind == "grid":
            o = kt.oracles.GridSearchOracle(max_trials=cfg.trials, **common, **opts)
        else:
            raise ConfigError(f"unknown Keras Tuner type {kind!r}")
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except ImportError as exc:  # BayesianOptimizationOracle needs scipy and scikit-learn
        raise ConfigError(f"tuner {kind!r}: {exc}") from None
    o.max_trials = cfg.trials  # the total over invocations (Hyperband takes none itself)
    return o


def hypermodel(cfg: SweepConfig, space: Space | None = None) -> SpaceHyperModel:
    return SpaceHyperModel(
        space if space is not None else make_space(cfg),
        preset_defaults(cfg.data.preset, cfg.seed),
        dict(cfg.tuner.options.get("grid", {})),
        finite=cfg.tuner.type == "grid",
    )


def project_dir(cfg: SweepConfig) -> Path:
    return Path(cfg.storage.kerastuner_dir) / cfg.name


class SweepTuner(kt.Tuner):
    """Runs each trial through :func:`sweeps.trial.run_trial`; no Keras Tuner checkpoints."""

    def __init__(
        self,
        ctx: SweepContext,
        oracle: kt.Oracle,
        hypermodel: SpaceHyperModel,
        *,
        deadline: float | None = None,
        board: Board | None = None,
    ) -> None:
        self.ctx = ctx
        self.deadline = deadline
        self.board = board
        self.streak = FailureStreak(ctx.cfg.max_failures(), "Keras Tuner")
        super().__init__(
            oracle=oracle,
            hypermodel=hypermodel,
            directory=str(Path(ctx.cfg.storage.kerastuner_dir)),
            project_name=ctx.cfg.name,
            overwrite=False,
            tuner_id=TUNER_ID,
        )
        # Register params added to the sweep since the project was made (a reload keeps the
        # oracle's space; ranges of params already known are kept as they were).
        hp = self.oracle.get_space()
        self.hypermodel.build(hp)
        self.oracle.update_space(hp)
        self.save()  # the project is resumable from now on, even if the first trial crashes
        self.warm_labels: dict[str, str] = {}
        warm = project_dir(ctx.cfg) / WARM
        if warm.is_file():
            self._start_from(json.loads(warm.read_text()))

    def _start_from(self, points: list[dict[str, Any]]) -> None:
        """The project's first trials are ``points`` (the oracle proposes the rest)."""
        propose = self.oracle.populate_space

        def populate(trial_id: str) -> dict[str, Any]:
            index = int(trial_id)
            if index >= len(points):
                return dict(propose(trial_id))
            values = {h.name: h.default for h in self.oracle.get_space().space}
            values.update(points[index]["values"])
            self.warm_labels[trial_id] = points[index]["label"]
            return {"status": "RUNNING", "values": values}

        self.oracle.populate_space = populate

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
        hp = trial.hyperparameters
        values = self.hypermodel.point(hp.values)
        epochs = hp.values.get("tuner/epochs")  # Hyperband's budget for this trial
        label = self.warm_labels.get(trial.trial_id)
        try:
            result = run_trial(
                self.ctx,
                int(trial.trial_id),
                values,
                report=None,
                max_epochs=int(epochs) if epochs else None,
                tags={T.TAG_WARM_START: label} if label else None,
            )
        except InfrastructureError as exc:
            raise _Lost(exc) from exc
        if self.board is not None:
            self.board.refresh()
        if (
            result.stopped  # the time budget ran out mid-trial: Keras Tuner has no "pruned"
            or result.state == "failed"
            or result.val_mae is None
            or not math.isfinite(result.val_mae)
        ):
            raise kt.errors.FailedTrialError(result.reason or "failed")
        return {OBJECTIVE: float(result.val_mae)}

    def pre_create_trial(self) -> None:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise _OutOfTime
        done = [
            (int(t.trial_id), float(t.score)) for t in _completed(list(self.oracle.trials.values()))
        ]
        if reason := stop_reason(self.ctx.cfg, done):
            self.ctx.events.stopped(reason)
            raise _StopRule(reason)

    def on_trial_end(self, trial: Any) -> None:
        super().on_trial_end(trial)  # the oracle ends and saves the trial
        ended = self.oracle.get_trial(trial.trial_id)
        if ended.status == "FAILED":
            self.streak.add("failed", _reason(ended.message))
        elif ended.status == "COMPLETED":
            self.streak.add("completed")

    # Models are logged to MLflow by run_trial; Keras Tuner keeps none.
    def save_model(self, trial_id: str, model: Any, step: int = 0) -> None:
        pass

    def load_model(self, trial: Any) -> Any:
        raise NotImplementedError(
            "Keras Tuner keeps no models here: load a trial's model from MLflow with "
            "jena.tracking.load_trial_model(tracking_uri, run_id)"
        )

    def get_best_models(self, num_models: int = 1) -> list[Any]:
        return [self.load_model(t) for t in self.oracle.get_best_trials(num_models)]


def _reason(message: str | None) -> str:
    """The reason in the traceback Keras Tuner stores (``...FailedTrialError: <reason>``)."""
    lines = [ln for ln in (message or "").strip().splitlines() if ln.strip()]
    if not lines:
        return "failed"
    head, sep, rest = lines[-1].partition(": ")
    return rest if sep and head.endswith(("Error", "Exception")) else lines[-1]


def tuner(
    ctx: SweepContext, deadline: float | None = None, board: Board | None = None
) -> SweepTuner:
    """Open (or create) the sweep's Keras Tuner project."""
    cfg = ctx.cfg
    _check(cfg)
    path = project_dir(cfg)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # "Reloading Tuner from ..."
            t = SweepTuner(ctx, oracle(cfg), hypermodel(cfg, ctx.space), deadline=deadline,
                           board=board)  # fmt: skip
    except RuntimeError as exc:  # an oracle state this oracle cannot read
        raise ConfigError(
            f"the Keras Tuner project {path} cannot be resumed with [tuner].type = "
            f"{cfg.tuner.type!r} ({str(exc).splitlines()[0]}); delete it or rename the sweep"
        ) from None
    (path / MARKER).write_text(json.dumps({"tuner": cfg.tuner.type}) + "\n")
    return t


# ------------------------------------------------------------------ the driver
def _check(cfg: SweepConfig) -> None:
    """What this driver cannot do, before anything runs."""
    if cfg.workers > 1:
        raise ConfigError(
            f"{cfg.path or 'sweep'}: workers = {cfg.workers}: the Keras Tuner driver runs one "
            "process (distributed Keras Tuner needs a chief oracle server); use workers = 1, "
            "or driver = 'optuna' for several workers"
        )
    marker = project_dir(cfg) / MARKER
    made_by = json.loads(marker.read_text())["tuner"] if marker.exists() else cfg.tuner.type
    if made_by != cfg.tuner.type:
        raise ConfigError(
            f"the Keras Tuner project {project_dir(cfg)} was made by [tuner].type = "
            f"{made_by!r}, not {cfg.tuner.type!r}: delete it or rename the sweep"
        )


def kt_trials(cfg: SweepConfig) -> list[Any]:
    """The project's trials as saved (``trial_*/trial.json``), by number."""
    found = []
    for fname in sorted(project_dir(cfg).glob("trial_*/trial.json")):
        found.append(kt.engine.trial.Trial.load(str(fname)))
    return sorted(found, key=lambda t: int(t.trial_id))


def _completed(trials: list[Any]) -> list[Any]:
    return [t for t in trials if t.status == "COMPLETED" and t.score is not None
            and math.isfinite(t.score)]  # fmt: skip


class KerasTunerDriver:
    name = "kerastuner"

    def warm_start(self, cfg: SweepConfig, points: list[Any]) -> list[str]:
        if kt_trials(cfg):
            return ["warm start: the Keras Tuner project has trials already, nothing added"]
        if cfg.tuner.type not in ("random", "bayesian"):
            raise ConfigError(
                f"{cfg.path or 'sweep'}: warm_start: Keras Tuner's {cfg.tuner.type!r} oracle "
                "runs its own schedule; warm starts work with tuner.type random or bayesian"
            )
        if any(p.val_mae is not None for p in points):
            raise ConfigError(
                "--warm-start from another sweep adds finished trials: that needs the Optuna "
                "driver (Keras Tuner has no way to add them)"
            )
        path = project_dir(cfg)
        path.mkdir(parents=True, exist_ok=True)
        records = [{"label": p.label, "values": p.values} for p in points]
        (path / WARM).write_text(json.dumps(records, indent=2) + "\n")
        return [f"warm start: the first trials are {', '.join(p.label for p in points)}"]

    def algorithm(self, cfg: SweepConfig) -> str:
        return cfg.tuner.type

    def resume(self, cfg: SweepConfig) -> Resume:
        """Trials already in the project (a trial left RUNNING re-runs), and the best."""
        _check(cfg)
        trials = kt_trials(cfg)
        best = self.best(cfg)
        return Resume(
            sum(t.status in _FINISHED for t in trials),
            best.val_mae if best else None,
            best.number if best else None,
        )

    def best(self, cfg: SweepConfig) -> Best | None:
        done = _completed(kt_trials(cfg))
        if not done:
            return None
        t = min(done, key=lambda t: t.score)
        params = {k: v for k, v in t.hyperparameters.values.items() if not k.startswith("tuner/")}
        return Best(int(t.trial_id), params, float(t.score))

    def run(self, ctx: SweepContext, board: Board, deadline: float | None) -> None:
        """Search until the oracle has ``trials`` trials (or stops), or the time is up."""
        t = tuner(ctx, deadline, board)
        try:
            with _quiet_failures():
                t.search(verbose=0)
        except (_OutOfTime, _StopRule):
            pass
        except _Lost as lost:
            raise lost.error from None
        finally:
            board.refresh()


@contextlib.contextmanager
def _quiet_failures() -> Iterator[None]:
    """Keras Tuner prints the traceback of every failed trial to stderr (``config.DEBUG``);
    the reason is in MLflow and in the trial's ``message`` already."""
    from keras_tuner.src import config as kt_config

    debug = kt_config.DEBUG
    kt_config.DEBUG = False
    try:
        yield
    finally:
        kt_config.DEBUG = debug


DRIVER = KerasTunerDriver()
