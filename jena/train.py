"""Train one configuration: windows → model → early stopping on validation MAE (°C).

The trainer never touches the test split (its :class:`~jena.prepare.Prepared` arrays hold no
test rows). A per-epoch hook receives ``loss``, ``mae``, ``val_loss``, ``val_mae`` (MAE in °C);
it may raise :class:`TrialPruned` to stop the run early (pruning), and the trainer reports the
state as ``pruned`` with the best validation MAE reached so far.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .config import TrialConfig
from .data import Dataset
from .errors import ConfigError
from .prepare import Prepared, prepare
from .splits import SplitPreset, get_preset

if TYPE_CHECKING:
    import keras

    from .windows import WindowDataset

# "stopped": a sweep's trial cut short by its time budget (sweeps.trial; train() itself ends it
# "pruned" with ``stopped`` set, as a refit member stopped at its deadline stays)
State = Literal["completed", "stopped", "pruned", "failed"]
EpochHook = Callable[[int, dict[str, float]], None]
BatchHook = Callable[[int, int], None]  # (batch index within the epoch, batches per epoch)
StopCheck = Callable[[], str | None]  # a reason to stop now (e.g. the time budget), or None


class TrialPruned(Exception):
    """Raised by an epoch hook to stop a trial that is not promising."""


class TrialStopped(TrialPruned):
    """The trial was stopped from outside (the sweep's time budget ran out) in mid-epoch: it
    ends as pruned, with its best finished epoch."""


@dataclass(frozen=True)
class Fidelity:
    """How much work one trial gets (sweeps train at low fidelity and prune)."""

    max_epochs: int = 10
    # counted in batches of the data preset's batch size (256 for book2, 128 for book1):
    steps_per_epoch: int | None = None  # training batches per epoch (None: all windows)
    validation_steps: int | None = None  # validation batches (None: all windows), spread evenly
    patience: int = 3  # early stopping on val MAE
    preset_epochs: bool = False  # a sweep trains named book models for the book's epochs

    def __post_init__(self) -> None:
        for name in ("max_epochs", "steps_per_epoch", "validation_steps", "patience"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value < 1):  # no bool, no float
                raise ConfigError(f"fidelity.{name} must be a positive integer, got {value!r}")


@dataclass
class TrialResult:
    state: State
    val_mae: float | None  # °C, best epoch; None if failed
    baseline_val_mae: float  # persistence on the same validation targets
    best_epoch: int | None
    history: list[dict[str, float]] = field(default_factory=list)  # one dict per epoch
    param_count: int = 0
    duration_s: float = 0.0
    reason: str | None = None
    stopped: bool = False  # stopped from outside in mid-epoch (the sweep's time budget)
    windows_seen: int = 0  # training windows fed to the model (compute, with duration_s)
    val_targets: int = 0  # validation target rows val_mae covers (the same for every window)
    model: Any = None  # keras.Model with the best weights (completed/pruned)
    data_config: dict[str, Any] = field(default_factory=dict)

    @property
    def val_skill(self) -> float | None:
        """1 - model / persistence: the fraction of the baseline's error removed."""
        if self.val_mae is None or not self.baseline_val_mae:
            return None
        return 1.0 - self.val_mae / self.baseline_val_mae


class DataCache:
    """One loaded record, prepared once per feature set and shared by every trial."""

    def __init__(self, ds: Dataset, preset: SplitPreset | str = "book2") -> None:
        self.dataset = ds
        self.preset = get_preset(preset) if isinstance(preset, str) else preset
        self._prepared: dict[tuple[bool, bool], Prepared] = {}
        self._ridge_base: np.ndarray | None = None

    def get(self, *, wind_vector: bool = False, time_features: bool = False) -> Prepared:
        key = (wind_vector, time_features)
        if key not in self._prepared:
            self._prepared[key] = prepare(
                self.dataset, self.preset, wind_vector=wind_vector, time_features=time_features
            )
        return self._prepared[key]

    def for_config(self, config: TrialConfig) -> Prepared:
        return self.get(wind_vector=config.wind_vector, time_features=config.time_features)

    def ridge_recipe(self) -> dict[str, Any]:
        """The shared ridge as a ``residual = "ridge"`` model carries it."""
        from .linear import shared_ridge

        plain = self.get()
        return shared_ridge(plain).recipe(plain)

    def ridge_base(self) -> np.ndarray:
        """The linear reference's forecast for the target at each loaded row (NaN where it
        cannot forecast; :func:`jena.linear.ridge_base`), fitted once on the training windows
        of the record's plain columns and shared by every ``residual = "ridge"`` trial, whatever
        its own features (the rows are the same).  # (rows,) °C"""
        if self._ridge_base is None:
            from .linear import ridge_base, shared_ridge

            plain = self.get()
            self._ridge_base = ridge_base(plain, shared_ridge(plain))
        return self._ridge_base


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the Keras backend; make TensorFlow's kernels deterministic."""
    import keras

    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def check_fits(config: TrialConfig, prepared: Prepared) -> None:
    """Reject a window that does not fit a split, with a clear message, before any training."""
    for split in ("train", "val"):
        starts = prepared.starts(split, config.sampling_rate, config.sequence_length)
        if len(starts) == 0:
            raise ConfigError(
                f"no {split} window is left once windows touching long gaps of the record are "
                "removed: see `jena data info` for the gaps, or use a shorter sequence_length"
            )


def ridge_base_of(
    data: DataCache | Prepared, prepared: Prepared
) -> tuple[np.ndarray, dict[str, Any]]:
    """The ridge's forecast per row for a ``residual = "ridge"`` plan, and its recipe: the
    cache's shared one, or one fitted on ``data`` itself when it is a record of plain
    columns.  # (rows,) °C"""
    if isinstance(data, DataCache):
        return data.ridge_base(), data.ridge_recipe()
    if prepared.wind_vector or prepared.time_features:
        raise ConfigError('residual = "ridge" with extra features needs a DataCache (the ridge '
                          "reads the record's plain columns)")  # fmt: skip
    from .linear import ridge_base, shared_ridge

    ridge = shared_ridge(prepared)
    return ridge_base(prepared, ridge), ridge.recipe(prepared)


def ridge_readable(
    prepared: Prepared, starts: np.ndarray, offset: int, base: np.ndarray
) -> np.ndarray:
    """The training windows a ``residual = "ridge"`` model can train on: the ridge forecasts
    their target, and its 24 h of inputs lie in the window's own training part, as the window
    does (a short window near a part's start would otherwise read, through the ridge, the rows
    before it: another split's)."""
    from .linear import HOURS, STEP

    targets = starts + offset
    first = targets - (prepared.preset.offset() - (prepared.preset.sequence_length - 1)
                       * prepared.preset.sampling_rate) - (HOURS - 1) * STEP  # fmt: skip
    lows = np.array([lo for lo, _ in prepared.bounds.train_segments])
    part = np.searchsorted(lows, starts, side="right") - 1  # each window's training part
    return starts[np.isfinite(base[targets]) & (first >= lows[part])]


def evenly(starts: np.ndarray, count: int | None) -> np.ndarray:
    """At most ``count`` of ``starts``, spread evenly over them (first and last kept)."""
    if count is None or count >= len(starts):
        return starts
    return starts[np.linspace(0, len(starts) - 1, count).round().astype(np.int64)]


def validation_slice(prepared: Prepared, fidelity: Fidelity) -> int | None:
    """How many validation targets ``fidelity`` scores a trial on (None: all of them)."""
    steps = fidelity.validation_steps
    return None if steps is None else steps * prepared.preset.batch_size


def validation_targets(prepared: Prepared, fidelity: Fidelity) -> np.ndarray:
    """The validation target rows every trial at ``fidelity`` is scored on: all of the split's
    (:meth:`~jena.prepare.Prepared.scored_targets`), or an even slice of them — the same rows
    whatever a trial's window, so a sweep's trials, persistence and the ridge share them.
    # (targets,) int"""
    return evenly(prepared.scored_targets("val"), validation_slice(prepared, fidelity))


@dataclass(frozen=True)
class FitPlan:
    """What a configuration trains and validates on, the same for every trainer
    (:func:`train`, :func:`jena.packed.train_packed`): windows, batches per epoch, the
    validation slice, the units of the loss.

    Fidelity is counted in batches of the data preset's size (256 for book2), so every trial
    sees the same number of windows per epoch and the same validation windows, whatever its own
    batch size. Configurations that share their windows and batch size (a pack's members) share
    one plan."""

    config: TrialConfig
    prepared: Prepared
    fidelity: Fidelity
    targets: np.ndarray  # (rows,): the target of the window starting at each row
    train_starts: np.ndarray  # (windows,)
    val_starts: np.ndarray  # (windows,): all, or an even slice (fidelity.validation_steps)
    batches_per_epoch: int | None  # in the configuration's batch size; None: every window
    baseline_val_mae: float  # persistence on val_starts, °C
    ridge: dict[str, Any] | None = None  # residual = "ridge": the ridge the output is added to

    @classmethod
    def of(cls, config: TrialConfig, data: DataCache | Prepared, fidelity: Fidelity) -> FitPlan:
        config.validate()
        prepared = data.for_config(config) if isinstance(data, DataCache) else data
        check_fits(config, prepared)
        r, n = config.sampling_rate, config.sequence_length
        unit = prepared.preset.batch_size
        steps = fidelity.steps_per_epoch
        offset = prepared.preset.offset(r, n)
        # one window per scored target: the slice's positions are the same for every window
        val_starts = evenly(prepared.starts("val", r, n), validation_slice(prepared, fidelity))
        train_starts = prepared.starts("train", r, n)
        base, recipe = None, None
        if config.residual == "ridge":
            base, recipe = ridge_base_of(data, prepared)
            train_starts = ridge_readable(prepared, train_starts, offset, base)
        return cls(
            config=config,
            prepared=prepared,
            fidelity=fidelity,
            targets=prepared.targets(offset, config.normalise_target, base=base),
            train_starts=train_starts,
            val_starts=val_starts,
            batches_per_epoch=None
            if steps is None
            else max(1, math.ceil(steps * unit / config.batch_size)),
            baseline_val_mae=float(np.mean(prepared.persistence_errors(val_starts, r, n))),
            ridge=recipe,
        )

    def _windows(self, starts: np.ndarray, **kwargs: Any) -> WindowDataset:
        from .windows import WindowDataset

        c = self.config
        return WindowDataset(
            self.prepared.x,
            self.targets,
            starts,
            sequence_length=c.sequence_length,
            sampling_rate=c.sampling_rate,
            batch_size=c.batch_size,
            **kwargs,
        )

    def train_windows(self, seed: int) -> WindowDataset:
        """The training windows, shuffled with ``seed`` every epoch.  # (batch, steps, features)"""
        return self._windows(
            self.train_starts, shuffle=True, seed=seed, limit=self.batches_per_epoch
        )

    def val_windows(self) -> WindowDataset:
        return self._windows(self.val_starts, shuffle=False)

    @property
    def scale(self) -> float:
        """Training units → °C (the target's std when the model learns it normalised)."""
        return self.prepared.target_std if self.config.normalise_target else 1.0

    @property
    def loss_scale(self) -> float:
        """The loss in training units → °C² (mse) or °C (mae)."""
        return self.scale**2 if self.config.loss == "mse" else self.scale

    def build(self, config: TrialConfig) -> keras.Model:
        """``config``'s model (one of this plan's configurations), seeded as every trainer seeds
        it: the same initial weights wherever it trains."""
        from .models import build_model

        seed_everything(config.seed)
        p = self.prepared
        return build_model(
            config, (config.sequence_length, p.features), (p.target_mean, p.target_std)
        )

    def data_config(self, config: TrialConfig) -> dict[str, Any]:
        """What a trained model of ``config`` needs to be used again (stored with it)."""
        out = self.prepared.data_config()
        r, n = config.sampling_rate, config.sequence_length
        out.update(normalised_target=config.normalise_target, sampling_rate=r,
                   sequence_length=n, offset=self.prepared.preset.offset(r, n),
                   trial_config=config.to_dict())  # fmt: skip
        if self.ridge is not None:
            out["ridge"] = self.ridge
        return out

    def result(self, config: TrialConfig, model: keras.Model) -> TrialResult:
        """A result to fill as ``config`` trains."""
        return TrialResult(state="completed", val_mae=None, baseline_val_mae=self.baseline_val_mae,
                           best_epoch=None, param_count=int(model.count_params()),
                           val_targets=len(self.val_starts),
                           data_config=self.data_config(config))  # fmt: skip


@dataclass
class EarlyStop:
    """Early stopping on validation MAE (°C) that keeps the best weights; a NaN loss, or NaN
    weights behind a finite loss (relu maps NaN to 0), ends the run as failed. Every trainer
    observes its epochs with it."""

    patience: int
    best: float | None = None
    best_epoch: int | None = None
    best_weights: list[np.ndarray] | None = None
    wait: int = 0
    nan_epoch: int | None = None

    def observe(
        self, epoch: int, metrics: dict[str, float], weights: Callable[[], list[Any]]
    ) -> bool:
        """Take epoch ``epoch``'s metrics (``weights()``: the model's weights now); True when
        training should stop (patience spent, or NaN)."""
        if self.nan_epoch is not None or not math.isfinite(metrics["loss"]):
            self.nan_epoch = self.nan_epoch or epoch
            return True
        val = metrics["val_mae"]
        if math.isfinite(val) and (self.best is None or val < self.best):
            now = [np.asarray(w) for w in weights()]
            if not all(np.isfinite(w).all() for w in now):
                self.nan_epoch = epoch
                return True
            self.best, self.best_epoch, self.wait, self.best_weights = val, epoch, 0, now
            return False
        self.wait += 1
        return self.wait >= self.patience

    def conclude(self, result: TrialResult, model: Any) -> TrialResult:
        """Fill ``result`` from what was observed: the best epoch's MAE, the model holding its
        weights; failed on NaN or when no epoch finished."""
        if self.nan_epoch is not None:
            result.state, result.val_mae = "failed", None
            result.reason = f"NaN loss (or NaN weights) in epoch {self.nan_epoch}"
            return result
        if self.best_weights is not None:
            model.set_weights(self.best_weights)
            result.model = model
        result.val_mae, result.best_epoch = self.best, self.best_epoch
        if result.val_mae is None and result.state == "completed":
            result.state, result.reason = "failed", "no epoch finished"
        return result


def stopped_reason(reason: str, where: str, finished_epochs: int) -> str:
    """Why a trial stopped from outside (:class:`TrialStopped`), and where."""
    return f"{reason}: stopped {where}, after {finished_epochs} finished epoch(s)"


def train(
    config: TrialConfig,
    data: DataCache | Prepared,
    fidelity: Fidelity | None = None,
    *,
    on_epoch: EpochHook | None = None,
    on_batch: BatchHook | None = None,
    should_stop: StopCheck | None = None,
) -> TrialResult:
    """Train ``config`` and return its best validation MAE in °C (test rows are never read).

    ``should_stop`` is asked after every training and validation batch; a reason stops the
    trial at once (state ``pruned``, the best finished epoch kept)."""
    plan = FitPlan.of(config, data, fidelity or Fidelity())
    train_ds = plan.train_windows(config.seed)
    model = plan.build(config)
    result = plan.result(config, model)
    watch = _Epochs(plan, result, on_epoch, on_batch, should_stop)
    started = time.perf_counter()
    try:
        model.fit(train_ds, validation_data=plan.val_windows(), epochs=plan.fidelity.max_epochs,
                  callbacks=[watch], verbose=0)  # fmt: skip
    except TrialPruned as exc:
        result.state, result.reason = "pruned", str(exc) or "pruned"
        result.stopped = isinstance(exc, TrialStopped)
    result.duration_s = time.perf_counter() - started
    result.windows_seen = train_ds.windows_in(watch.batches)
    return watch.stop.conclude(result, model)


def _callback_base() -> type:
    import keras

    return keras.callbacks.Callback


class _Epochs(_callback_base()):  # type: ignore[misc]
    """Keras's side of :func:`train`: each epoch's metrics in °C to :class:`EarlyStop` and the
    hooks; NaN losses and outside stops (``should_stop``) within the epoch."""

    def __init__(
        self,
        plan: FitPlan,
        result: TrialResult,
        on_epoch: EpochHook | None,
        on_batch: BatchHook | None,
        should_stop: StopCheck | None = None,
    ) -> None:
        super().__init__()
        self.plan = plan
        self.result = result
        self.on_epoch = on_epoch
        self.on_batch = on_batch
        self.should_stop = should_stop
        self.stop = EarlyStop(plan.fidelity.patience)
        self._epoch = 0
        self.batches = 0  # training batches seen

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch + 1

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.batches += 1
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.stop.nan_epoch = self.stop.nan_epoch or self._epoch
            self.model.stop_training = True
        if self.on_batch is not None:
            self.on_batch(batch + 1, self.params.get("steps") or 0)
        self._check_stop(f"in epoch {self._epoch} (batch {batch + 1})")

    def on_test_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._check_stop(f"while validating epoch {self._epoch}")

    def _check_stop(self, where: str) -> None:
        if self.should_stop is not None and (reason := self.should_stop()):
            raise TrialStopped(stopped_reason(reason, where, self._epoch - 1))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        scale, loss_scale = self.plan.scale, self.plan.loss_scale
        metrics = {
            "loss": float(logs.get("loss", math.nan)) * loss_scale,  # °C² (mse) or °C
            "val_loss": float(logs.get("val_loss", math.nan)) * loss_scale,
            "mae": float(logs.get("mae", math.nan)) * scale,  # °C
            "val_mae": float(logs.get("val_mae", math.nan)) * scale,  # °C
        }
        self.result.history.append({"epoch": float(epoch + 1), **metrics})
        if self.stop.observe(epoch + 1, metrics, self.model.get_weights):
            self.model.stop_training = True
            if self.stop.nan_epoch is not None:
                return
        if self.on_epoch is not None:
            self.on_epoch(epoch + 1, metrics)  # may raise TrialPruned
