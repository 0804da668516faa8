"""The Keras Tuner side of a sweep: the oracle of ``[tuner].type``, the project on disk, and
:class:`SweepTuner`, which runs each trial through :func:`sweeps.trial.run_trial`."""

from __future__ import annotations

import contextlib
import io
import json
import math
import time
from pathlib import Path
from typing import Any

import keras_tuner as kt

from jena.book import preset_defaults
from jena.errors import ConfigError, InfrastructureError
from jena.space import Space
from jena.tracking import names

from ..config import SweepConfig
from ..drivers import Best, Resume
from ..faults import FailureStreak
from ..stop import stop_rule
from ..trial import SweepContext, make_space, run_trial
from ..warm import WarmPoint
from . import _compat
from ._space import SpaceHyperModel

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


def kt_seed(seed: int) -> int:
    """Keras Tuner draws a random seed when given 0 (``seed or random.randint(...)``)."""
    return seed + 1 if seed >= 0 else seed


def oracle(cfg: SweepConfig) -> kt.Oracle:
    """The oracle of ``[tuner].type`` with ``[tuner].options`` (budget: ``trials``)."""
    opts = {k: v for k, v in cfg.tuner.options.items() if k != "grid"}
    where = f"{cfg.path or 'sweep'}: [tuner.options]"
    bad = [k for k in opts if k in _RESERVED]
    if bad:
        hint = {"max_consecutive_failed_trials": " (use [faults].max_consecutive_failed_trials)",
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
    ) -> None:
        self.ctx = ctx
        self.deadline = deadline
        self.streak = FailureStreak(ctx.cfg.faults.max_consecutive_failed_trials, "Keras Tuner")
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
        self.warm_labels = _compat.first_proposals(self.oracle, [p["values"] for p in points],
                                             [p["label"] for p in points])  # fmt: skip

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
                tags={names.TAG_WARM_START: label} if label else None,
            )
        except InfrastructureError as exc:
            raise _Lost(exc) from exc
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
        if reason := stop_rule(self.ctx.cfg, done):
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


def tuner(ctx: SweepContext, deadline: float | None = None) -> SweepTuner:
    """Open (or create) the sweep's Keras Tuner project."""
    cfg = ctx.cfg
    _check(cfg)
    path = project_dir(cfg)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # "Reloading Tuner from ..."
            t = SweepTuner(ctx, oracle(cfg), hypermodel(cfg, ctx.space), deadline=deadline)
    except RuntimeError as exc:  # an oracle state this oracle cannot read
        raise ConfigError(
            f"the Keras Tuner project {path} cannot be resumed with [tuner].type = "
            f"{cfg.tuner.type!r} ({str(exc).splitlines()[0]}); delete it or rename the sweep"
        ) from None
    (path / MARKER).write_text(json.dumps({"tuner": cfg.tuner.type}) + "\n")
    return t


# ------------------------------------------------------------------ the driver
def _check(cfg: SweepConfig) -> None:
    """The project on disk was made by this ``[tuner].type``."""
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
        found.append(_compat.load_trial(fname))
    return sorted(found, key=lambda t: int(t.trial_id))


def _completed(trials: list[Any]) -> list[Any]:
    return [t for t in trials if t.status == "COMPLETED" and t.score is not None
            and math.isfinite(t.score)]  # fmt: skip


def warm_start(cfg: SweepConfig, points: list[WarmPoint]) -> list[str]:
    """The project's first trials are ``points`` (written next to it; a new project only)."""
    if kt_trials(cfg):
        return ["warm start: the Keras Tuner project has trials already, nothing added"]
    if cfg.tuner.type not in ("random", "bayesian"):
        raise ConfigError(
            f"{cfg.path or 'sweep'}: warm_start: Keras Tuner's {cfg.tuner.type!r} oracle "
            "runs its own schedule; warm starts work with tuner.type random or bayesian"
        )
    path = project_dir(cfg)
    path.mkdir(parents=True, exist_ok=True)
    records = [{"label": p.label, "values": p.values} for p in points]
    (path / WARM).write_text(json.dumps(records, indent=2) + "\n")
    return [f"warm start: the first trials are {', '.join(p.label for p in points)}"]


def resume(cfg: SweepConfig) -> Resume:
    """Trials already in the project (a trial left RUNNING re-runs), and the best."""
    _check(cfg)
    trials = kt_trials(cfg)
    top = best(cfg)
    return Resume(sum(t.status in _FINISHED for t in trials), top.val_mae if top else None,
                  top.number if top else None)  # fmt: skip


def best(cfg: SweepConfig) -> Best | None:
    done = _completed(kt_trials(cfg))
    if not done:
        return None
    t = min(done, key=lambda t: t.score)
    params = {k: v for k, v in t.hyperparameters.values.items() if not k.startswith("tuner/")}
    return Best(int(t.trial_id), params, float(t.score))


def search(ctx: SweepContext, deadline: float | None) -> None:
    """Search until the oracle has ``trials`` trials (or stops), or the time is up."""
    t = tuner(ctx, deadline)
    try:
        with _compat.quiet_failures():
            t.search(verbose=0)
    except (_OutOfTime, _StopRule):
        pass
    except _Lost as lost:
        raise lost.error from None
