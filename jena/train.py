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
from typing import Any, Literal

import numpy as np

from .config import TrialConfig
from .data import Dataset
from .errors import ConfigError
from .prepare import Prepared, prepare
from .splits import SplitPreset, get_preset

State = Literal["completed", "pruned", "failed"]
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

    def __post_init__(self) -> None:
        for name in ("max_epochs", "steps_per_epoch", "validation_steps", "patience"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value < 1):  # no bool, no float
                raise ConfigError(f"fidelity.{name} must be a positive integer, got {value!r}")


@dataclass
class TrialResult:
    state: State
    val_mae: float | None  # °C, best epoch; None if failed
    baseline_val_mae: float  # persistence on the same validation windows
    best_epoch: int | None
    history: list[dict[str, float]] = field(default_factory=list)  # one dict per epoch
    param_count: int = 0
    duration_s: float = 0.0
    reason: str | None = None
    stopped: bool = False  # stopped from outside in mid-epoch (the sweep's time budget)
    windows_seen: int = 0  # training windows fed to the model (compute, with duration_s)
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

    def get(self, *, wind_vector: bool = False, time_features: bool = False) -> Prepared:
        key = (wind_vector, time_features)
        if key not in self._prepared:
            self._prepared[key] = prepare(
                self.dataset, self.preset, wind_vector=wind_vector, time_features=time_features
            )
        return self._prepared[key]

    def for_config(self, config: TrialConfig) -> Prepared:
        return self.get(wind_vector=config.wind_vector, time_features=config.time_features)


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


def _evenly(starts: np.ndarray, count: int | None) -> np.ndarray:
    if count is None or count >= len(starts):
        return starts
    return starts[np.linspace(0, len(starts) - 1, count).round().astype(np.int64)]


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
    from .models import build_model
    from .windows import WindowDataset

    fidelity = fidelity or Fidelity()
    config.validate()
    prepared = data.for_config(config) if isinstance(data, DataCache) else data
    check_fits(config, prepared)
    r, n = config.sampling_rate, config.sequence_length
    offset = prepared.preset.offset(r, n)
    normalised = config.normalise_target
    targets = prepared.targets(offset, normalised)

    # Fidelity is counted in batches of the data preset's size (256 for book2), so every trial
    # sees the same number of windows per epoch and the same validation windows, whatever its
    # own batch size.
    unit = prepared.preset.batch_size
    limit = (
        None
        if fidelity.steps_per_epoch is None
        else max(1, math.ceil(fidelity.steps_per_epoch * unit / config.batch_size))
    )
    train_ds = WindowDataset(
        prepared.x,
        targets,
        prepared.starts("train", r, n),
        sequence_length=n,
        sampling_rate=r,
        batch_size=config.batch_size,
        shuffle=True,
        seed=config.seed,
        limit=limit,
    )
    val_starts = prepared.starts("val", r, n)
    if fidelity.validation_steps is not None:
        val_starts = _evenly(val_starts, fidelity.validation_steps * unit)
    val_ds = WindowDataset(
        prepared.x,
        targets,
        val_starts,
        sequence_length=n,
        sampling_rate=r,
        batch_size=config.batch_size,
        shuffle=False,
    )
    baseline = float(np.mean(prepared.persistence_errors(val_starts, r, n)))

    seed_everything(config.seed)
    model = build_model(config, (n, prepared.features), (prepared.target_mean, prepared.target_std))
    result = TrialResult(
        state="completed",
        val_mae=None,
        baseline_val_mae=baseline,
        best_epoch=None,
        param_count=int(model.count_params()),
        data_config=_data_config(prepared, config),
    )
    scale = prepared.target_std if normalised else 1.0  # training units → °C
    loss_scale = scale**2 if config.loss == "mse" else scale  # mse → °C², mae → °C
    tracker = _BestWeights(
        scale, loss_scale, result, on_epoch, on_batch, fidelity.patience, should_stop
    )
    started = time.perf_counter()
    try:
        model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=fidelity.max_epochs,
            callbacks=[tracker],
            verbose=0,
        )
    except TrialPruned as exc:
        result.state, result.reason = "pruned", str(exc) or "pruned"
        result.stopped = isinstance(exc, TrialStopped)
    result.duration_s = time.perf_counter() - started
    result.windows_seen = train_ds.windows_in(tracker.batches)
    if tracker.nan_epoch is not None:
        result.state = "failed"
        result.reason = f"NaN loss (or NaN weights) in epoch {tracker.nan_epoch}"
        result.val_mae = None
        return result
    if tracker.best_weights is not None:
        model.set_weights(tracker.best_weights)
        result.model = model
    result.val_mae = tracker.best
    result.best_epoch = tracker.best_epoch
    if result.val_mae is None and result.state == "completed":
        result.state, result.reason = "failed", "no epoch finished"
    return result


def _data_config(prepared: Prepared, config: TrialConfig) -> dict[str, Any]:
    cfg = prepared.data_config()
    cfg.update(
        normalised_target=config.normalise_target,
        sampling_rate=config.sampling_rate,
        sequence_length=config.sequence_length,
        offset=prepared.preset.offset(config.sampling_rate, config.sequence_length),
        trial_config=config.to_dict(),
    )
    return cfg


def _callback_base() -> type:
    import keras

    return keras.callbacks.Callback


class _BestWeights(_callback_base()):  # type: ignore[misc]
    """Early stopping on val MAE (°C) that keeps the best weights; stops at a NaN loss."""

    def __init__(
        self,
        scale: float,
        loss_scale: float,
        result: TrialResult,
        on_epoch: EpochHook | None,
        on_batch: BatchHook | None,
        patience: int,
        should_stop: StopCheck | None = None,
    ) -> None:
        super().__init__()
        self.should_stop = should_stop
        self.scale = scale
        self.loss_scale = loss_scale
        self.result = result
        self.on_epoch = on_epoch
        self.on_batch = on_batch
        self.patience = patience
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.best_weights: list[Any] | None = None
        self.nan_epoch: int | None = None
        self._epoch = 0
        self._wait = 0
        self.batches = 0  # training batches seen

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch + 1

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.batches += 1
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.nan_epoch = self._epoch
            self.model.stop_training = True
        if self.on_batch is not None:
            self.on_batch(batch + 1, self.params.get("steps") or 0)
        self._check_stop(f"in epoch {self._epoch} (batch {batch + 1})")

    def on_test_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._check_stop(f"while validating epoch {self._epoch}")

    def _check_stop(self, where: str) -> None:
        if self.should_stop is not None and (reason := self.should_stop()):
            done = self._epoch - 1
            raise TrialStopped(f"{reason}: stopped {where}, after {done} finished epoch(s)")

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        scale = self.scale
        metrics = {
            "loss": float(logs.get("loss", math.nan)) * self.loss_scale,  # °C² (mse) or °C
            "val_loss": float(logs.get("val_loss", math.nan)) * self.loss_scale,
            "mae": float(logs.get("mae", math.nan)) * scale,  # °C
            "val_mae": float(logs.get("val_mae", math.nan)) * scale,  # °C
        }
        self.result.history.append({"epoch": float(epoch + 1), **metrics})
        if self.nan_epoch is not None or not math.isfinite(metrics["loss"]):
            self.nan_epoch = self.nan_epoch or epoch + 1
            self.model.stop_training = True
            return
        val = metrics["val_mae"]
        if math.isfinite(val) and (self.best is None or val < self.best):
            weights = self.model.get_weights()
            if not all(np.isfinite(w).all() for w in weights):
                # NaN can hide behind a finite loss (relu maps NaN to 0): a failed run all the same
                self.nan_epoch = epoch + 1
                self.model.stop_training = True
                return
            self.best, self.best_epoch, self._wait = val, epoch + 1, 0
            self.best_weights = weights
        else:
            self._wait += 1
            if self._wait >= self.patience:
                self.model.stop_training = True
        if self.on_epoch is not None:
            self.on_epoch(epoch + 1, metrics)  # may raise TrialPruned
