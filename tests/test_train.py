"""The trainer (issue 3): every book model trains, runs are reproducible, MAEs are in °C, early
stopping keeps the best weights, pruning and NaN losses end a run cleanly, bad configurations
fail before any training, fidelity caps the work, and the test split is never read.

All on a small synthetic record (loaded once per module) at very low fidelity.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from conftest import TINY

import jena.models
import jena.windows
from jena.book import BOOK_MODELS
from jena.config import TrialConfig
from jena.data import Dataset, load
from jena.errors import ConfigError
from jena.models import count_params
from jena.prepare import Prepared, prepare
from jena.schema import COLUMNS, TARGET
from jena.splits import HORIZON
from jena.train import DataCache, Fidelity, TrialPruned, TrialResult, train

# TINY (conftest.py): 24,000 rows, book2 bounds 12,000/18,000

# A small, fast model on the book2 windows: 24 hourly steps, 32 windows a batch.
SMALL = TrialConfig(
    architecture="dense", dense_units=(8,), sequence_length=24, sampling_rate=6, batch_size=32
)
QUICK = Fidelity(max_epochs=2, steps_per_epoch=3, validation_steps=2)


@pytest.fixture(scope="module")
def ds() -> Dataset:
    return load(TINY)


@pytest.fixture(scope="module")
def caches(ds: Dataset) -> dict[str, DataCache]:
    return {"book1": DataCache(ds, "book1"), "book2": DataCache(ds, "book2")}


@pytest.fixture(scope="module")
def cache(caches: dict[str, DataCache]) -> DataCache:
    return caches["book2"]


def _history(result: TrialResult) -> np.ndarray:
    keys = ("epoch", "loss", "mae", "val_loss", "val_mae")
    return np.array([[h[k] for k in keys] for h in result.history], dtype=np.float64)


def _one_line_config_error(excinfo: pytest.ExceptionInfo[ConfigError]) -> str:
    message = str(excinfo.value)
    assert message and "\n" not in message, f"not one line: {message!r}"
    return message


# --------------------------------------------------------------------------- every book model


# Stacked and bidirectional recurrent models over 240-step windows take 5-11 s each to trace on
# two CPU cores: in the full run only.
PRESETS = {name: m.config for name, m in BOOK_MODELS.items()}
PRESET_DATA = {name: m.data for name, m in BOOK_MODELS.items()}
SLOW_PRESETS = ("stacked_gru", "stacked_gru_dropout", "bilstm", "bigru")


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_PRESETS else n for n in PRESETS],
)
def test_every_preset_trains_on_its_own_data_preset(
    name: str, caches: dict[str, DataCache]
) -> None:
    # The preset's architecture as published; a small batch only to keep the test fast.
    config = PRESETS[name].replace(batch_size=16)
    cache = caches[PRESET_DATA[name]]
    result = train(config, cache, Fidelity(max_epochs=1, steps_per_epoch=1, validation_steps=1))

    assert result.state == "completed", result.reason
    assert result.val_mae is not None and math.isfinite(result.val_mae)
    assert 0 < result.val_mae < 100  # °C, an untrained model on Jena-like temperatures
    assert math.isfinite(result.baseline_val_mae) and 0 < result.baseline_val_mae < 20
    assert result.best_epoch == 1 and len(result.history) == 1
    assert result.model is not None
    prepared = cache.for_config(config)
    assert prepared.preset.name == PRESET_DATA[name]
    shape = (config.sequence_length, prepared.features)
    assert result.param_count == count_params(PRESETS[name], shape) == result.model.count_params()
    assert result.data_config["preset"] == PRESET_DATA[name]
    assert result.data_config["trial_config"] == config.to_dict()


# --------------------------------------------------------------------------- determinism


def test_same_config_and_seed_give_the_same_run(cache: DataCache) -> None:
    config = SMALL.replace(seed=7)
    first = train(config, cache, QUICK)
    second = train(config, cache, QUICK)
    assert first.state == second.state == "completed"
    assert first.val_mae == pytest.approx(second.val_mae, abs=1e-6)
    assert first.best_epoch == second.best_epoch
    np.testing.assert_allclose(_history(first), _history(second), rtol=0, atol=1e-6)
    for a, b in zip(first.model.get_weights(), second.model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)

    other = train(config.replace(seed=8), cache, QUICK)
    assert other.state == "completed"
    assert abs(other.val_mae - first.val_mae) > 1e-6
    assert not np.allclose(_history(other), _history(first), rtol=0, atol=1e-6)


# --------------------------------------------------------------------------- per-epoch metrics


def _val_mae_by_hand(ds: Dataset, model: Any, config: TrialConfig) -> tuple[float, int]:
    """The model's MAE (°C) on every book2 validation target, computed from the raw frame: the
    split's targets (from 858 rows into the validation rows: the preset's 120 hourly steps and
    24 h), each forecast by the window of the model's own length ending 24 h before it."""
    frame = ds.frame
    rows = len(frame)
    n_train, n_val = int(0.5 * rows), int(0.25 * rows)
    values = frame[list(COLUMNS)].to_numpy(np.float64)
    mean = values[:n_train].mean(axis=0)
    std = values[:n_train].std(axis=0)
    r, n = config.sampling_rate, config.sequence_length
    offset = (n - 1) * r + HORIZON  # 24 h after the last input row
    assert ds.valid.all()  # a synthetic record without defects: every window is trusted
    targets = np.arange(n_train + 119 * 6 + HORIZON, n_train + n_val)
    starts = targets - offset
    x = ((values[starts[:, None] + np.arange(n) * r] - mean) / std).astype(np.float32)
    pred = np.asarray(model.predict(x, batch_size=1024, verbose=0), np.float64).reshape(-1)
    normalised = bool(config.normalise_target)
    t = COLUMNS.index(TARGET)
    celsius = pred * std[t] + mean[t] if normalised else pred
    truth = frame[TARGET].to_numpy(np.float64)[starts + offset]
    return float(np.mean(np.abs(celsius - truth))), len(starts)


@pytest.mark.parametrize("normalise_target", [True, False])
def test_epoch_hook_gets_every_epoch_with_maes_in_celsius(
    normalise_target: bool, ds: Dataset, cache: DataCache
) -> None:
    # loss = MAE: the hook reports both in °C (the loss is rescaled from training units too).
    config = SMALL.replace(loss="mae", normalise_target=normalise_target, seed=3)
    calls: list[tuple[int, dict[str, float]]] = []
    fidelity = Fidelity(max_epochs=3, steps_per_epoch=2, validation_steps=None, patience=10)
    result = train(config, cache, fidelity, on_epoch=lambda e, m: calls.append((e, dict(m))))

    assert result.state == "completed"
    assert [e for e, _ in calls] == [1, 2, 3]
    scale = cache.get().target_std if normalise_target else 1.0
    if normalise_target:
        assert scale > 2  # a real rescaling: °C differ from normalised units
    for epoch, metrics in calls:
        assert set(metrics) == {"loss", "mae", "val_loss", "val_mae"}
        assert all(math.isfinite(v) for v in metrics.values())
        assert metrics["mae"] == pytest.approx(metrics["loss"], rel=1e-4)
        assert metrics["val_mae"] == pytest.approx(metrics["val_loss"], rel=1e-4)
        assert result.history[epoch - 1]["val_mae"] == metrics["val_mae"]

    # The reported best val MAE is the restored model's MAE in °C on the validation windows.
    by_hand, windows = _val_mae_by_hand(ds, result.model, config)
    assert windows > 5000
    assert result.val_mae == pytest.approx(by_hand, rel=1e-4)
    assert result.data_config["normalised_target"] is normalise_target


# --------------------------------------------------------------------------- early stopping


def test_early_stopping_restores_the_best_weights(ds: Dataset, cache: DataCache) -> None:
    # A large learning rate makes the validation MAE jump about (deterministic on CPU).
    config = SMALL.replace(optimizer="adam", learning_rate=0.05, seed=0)
    fidelity = Fidelity(max_epochs=8, steps_per_epoch=3, validation_steps=None, patience=2)
    result = train(config, cache, fidelity)

    assert result.state == "completed"
    curve = [h["val_mae"] for h in result.history]
    assert result.val_mae == min(curve)
    assert result.best_epoch == curve.index(min(curve)) + 1
    assert result.best_epoch < len(curve), f"the last epoch was the best; pick another: {curve}"
    # stopped after `patience` epochs without improvement
    assert len(curve) == min(fidelity.max_epochs, result.best_epoch + fidelity.patience)
    # the model returned holds the best epoch's weights, not the last epoch's
    by_hand, _ = _val_mae_by_hand(ds, result.model, config)
    assert by_hand == pytest.approx(result.val_mae, rel=1e-4)
    assert by_hand != pytest.approx(curve[-1], rel=1e-3)


# --------------------------------------------------------------------------- pruning, NaN


def test_a_hook_raising_trial_pruned_prunes_the_run(cache: DataCache) -> None:
    seen: list[int] = []

    def hook(epoch: int, metrics: dict[str, float]) -> None:
        seen.append(epoch)
        if epoch == 2:
            raise TrialPruned("not promising")

    fidelity = Fidelity(max_epochs=5, steps_per_epoch=2, validation_steps=1, patience=10)
    result = train(SMALL, cache, fidelity, on_epoch=hook)
    assert seen == [1, 2]
    assert result.state == "pruned"
    assert result.reason == "not promising"
    assert len(result.history) == 2
    assert result.val_mae == min(h["val_mae"] for h in result.history)
    assert result.best_epoch in (1, 2)
    assert result.model is not None


def _assert_failed_on_nan(result: TrialResult, max_epochs: int) -> None:
    assert result.state == "failed"
    assert result.reason is not None and "nan" in result.reason.lower()
    assert result.val_mae is None
    assert result.val_skill is None
    assert len(result.history) < max_epochs  # the run stopped
    assert math.isfinite(result.baseline_val_mae)


def test_a_nan_loss_fails_the_run_huge_learning_rate(cache: DataCache) -> None:
    config = SMALL.replace(learning_rate=1e30, loss="mse")
    _assert_failed_on_nan(train(config, cache, Fidelity(max_epochs=3, steps_per_epoch=3)), 3)


def test_a_nan_loss_fails_the_run_nan_in_the_training_rows(ds: Dataset) -> None:
    prepared = prepare(ds, "book2")
    x = prepared.x.copy()
    x[: prepared.bounds.train[1]] = np.nan  # every training window reads NaN, validation not
    poisoned = dataclasses.replace(prepared, x=x, _target_cache={})
    fidelity = Fidelity(max_epochs=3, steps_per_epoch=2, validation_steps=1)
    # A linear hidden layer: TensorFlow's relu maps NaN to 0 and would hide the NaN (see below).
    config = SMALL.replace(dense_activation="linear")
    _assert_failed_on_nan(train(config, poisoned, fidelity), 3)


def test_a_completed_run_never_returns_non_finite_weights(ds: Dataset) -> None:
    prepared = prepare(ds, "book2")
    x = prepared.x.copy()
    x[: prepared.bounds.train[1]] = np.nan
    poisoned = dataclasses.replace(prepared, x=x, _target_cache={})
    result = train(SMALL, poisoned, Fidelity(max_epochs=2, steps_per_epoch=2, validation_steps=1))
    # relu maps the NaN inputs to 0: the loss stays finite while the weights turn NaN
    _assert_failed_on_nan(result, 2)
    assert result.model is None  # no model with NaN weights is handed back


# --------------------------------------------------------------------------- bad configurations


@pytest.fixture
def build_spy(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record every call of jena.models.build_model (the trainer imports it at call time)."""
    calls: list[Any] = []
    real = jena.models.build_model

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(jena.models, "build_model", spy)
    return calls


BAD_CONFIGS = {
    "unknown architecture": (SMALL.replace(architecture="transformer"), "architecture"),
    "dense units 0": (SMALL.replace(dense_units=(0,)), "dense_units"),
    "rnn units 0": (TrialConfig(rnn_units=(0,), sequence_length=24), "rnn_units"),
    "rnn units < 0": (TrialConfig(rnn_units=(16, -4), sequence_length=24), "rnn_units"),
    "dropout 1": (TrialConfig(dropout=1.0, sequence_length=24), "dropout"),
    "dropout < 0": (TrialConfig(dropout=-0.1, sequence_length=24), "dropout"),
    "recurrent dropout 1.5": (TrialConfig(recurrent_dropout=1.5, sequence_length=24), "dropout"),
    "head dropout 1": (SMALL.replace(head_dropout=1.0), "head_dropout"),
    "learning rate 0": (SMALL.replace(learning_rate=0.0), "learning_rate"),
    "window longer than the split": (SMALL.replace(sequence_length=100_000), "does not fit"),
    "sampling rate too large": (SMALL.replace(sampling_rate=2_000), "does not fit"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_configurations_fail_before_any_training(
    case: str, cache: DataCache, build_spy: list[Any]
) -> None:
    config, words = BAD_CONFIGS[case]
    epochs: list[int] = []
    with pytest.raises(ConfigError) as excinfo:
        train(config, cache, QUICK, on_epoch=lambda e, m: epochs.append(e))
    assert words in _one_line_config_error(excinfo)
    assert build_spy == [] and epochs == []


def test_a_window_that_fits_book2_but_not_book1_fails_there(
    caches: dict[str, DataCache], build_spy: list[Any]
) -> None:
    # book1's training split of 24,000 rows is ~11,400 rows: 2,000 hourly steps (12,000 rows)
    # do not fit. (1,000 steps now do: a validation window reads back into the training rows,
    # from the split's own targets.)
    with pytest.raises(ConfigError) as excinfo:
        train(PRESETS["gru"].replace(sequence_length=2000), caches["book1"], QUICK)
    message = _one_line_config_error(excinfo)
    assert "book1" in message and "sequence_length" in message
    assert build_spy == []


def test_the_spy_sees_a_good_configuration(cache: DataCache, build_spy: list[Any]) -> None:
    result = train(SMALL, cache, Fidelity(max_epochs=1, steps_per_epoch=1, validation_steps=1))
    assert result.state == "completed" and len(build_spy) == 1


# --------------------------------------------------------------------------- the test split


def test_training_data_hold_no_test_rows(cache: DataCache) -> None:
    for wind_vector in (False, True):
        prepared = cache.get(wind_vector=wind_vector)
        test_start = prepared.bounds.test[0]
        assert test_start == 18_000 and prepared.rows == 24_000
        assert len(prepared.x) == len(prepared.temperature) == len(prepared.valid) == test_start
        assert not prepared.include_test
        with pytest.raises(ConfigError):
            prepared.starts("test")
    train(SMALL, cache, Fidelity(max_epochs=1, steps_per_epoch=1, validation_steps=1))
    assert all(len(p.x) == p.bounds.test[0] for p in cache._prepared.values())


def test_poisoned_test_rows_change_nothing(ds: Dataset, cache: DataCache) -> None:
    frame = ds.frame.copy()
    test_start = cache.get().bounds.test[0]
    frame.iloc[test_start:, : len(COLUMNS) // 2] = 1e9
    frame.iloc[test_start:, len(COLUMNS) // 2 :] = np.nan
    poisoned = Dataset(frame=frame, valid=ds.valid, source=ds.source, report=ds.report)
    poisoned_cache = DataCache(poisoned, "book2")
    np.testing.assert_array_equal(poisoned_cache.get().x, cache.get().x)

    config = SMALL.replace(seed=11, time_features=True)
    clean = train(config, cache, QUICK)
    dirty = train(config, poisoned_cache, QUICK)
    assert clean.state == dirty.state == "completed"
    assert dirty.val_mae == clean.val_mae
    assert dirty.baseline_val_mae == clean.baseline_val_mae
    np.testing.assert_array_equal(_history(dirty), _history(clean))


# --------------------------------------------------------------------------- fidelity


@pytest.fixture
def datasets(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every WindowDataset the trainer makes, with the batch indices Keras asked it for."""
    made: list[Any] = []

    class Recording(jena.windows.WindowDataset):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.requested: list[int] = []
            made.append(self)

        def __getitem__(self, index: int) -> Any:
            self.requested.append(int(index))
            return super().__getitem__(index)

    monkeypatch.setattr(jena.windows, "WindowDataset", Recording)
    yield made


def test_steps_per_epoch_caps_the_training_batches(cache: DataCache, datasets: list[Any]) -> None:
    """Steps count batches of the split's batch size (256), whatever the trial's batch size:
    3 steps of 256 windows = 24 batches of SMALL's 32."""
    batches: list[tuple[int, int]] = []
    fidelity = Fidelity(max_epochs=2, steps_per_epoch=3, validation_steps=1, patience=10)
    result = train(SMALL, cache, fidelity, on_batch=lambda b, total: batches.append((b, total)))
    assert result.state == "completed" and len(result.history) == 2
    per_epoch = 3 * 256 // SMALL.batch_size
    assert batches == [(b, per_epoch) for b in range(1, per_epoch + 1)] * 2
    train_ds = next(d for d in datasets if d.shuffle)
    assert train_ds.num_windows > 3 * 256  # the cap, not the data, limits it
    assert train_ds.windows_per_epoch == 3 * 256 and len(train_ds) == per_epoch
    assert set(train_ds.requested) <= set(range(per_epoch))


def test_validation_steps_caps_and_spreads_the_validation_windows(
    cache: DataCache, datasets: list[Any]
) -> None:
    fidelity = Fidelity(max_epochs=1, steps_per_epoch=1, validation_steps=2)
    train(SMALL, cache, fidelity)
    val_ds = next(d for d in datasets if not d.shuffle)
    all_starts = cache.get().starts("val", SMALL.sampling_rate, SMALL.sequence_length)
    assert len(all_starts) > 2 * 256
    per_val = 2 * 256 // SMALL.batch_size  # steps of the split's batch size (256)
    assert val_ds.num_windows == 2 * 256 and len(val_ds) == per_val
    assert set(val_ds.requested) == set(range(per_val))
    starts = val_ds.starts
    assert set(starts.tolist()) <= set(all_starts.tolist())
    assert starts[0] == all_starts[0] and starts[-1] == all_starts[-1]  # spread over the split
    assert np.all(np.diff(starts) > 0)


def test_no_validation_cap_uses_every_validation_window(
    cache: DataCache, datasets: list[Any]
) -> None:
    train(SMALL, cache, Fidelity(max_epochs=1, steps_per_epoch=1, validation_steps=None))
    val_ds = next(d for d in datasets if not d.shuffle)
    all_starts = cache.get().starts("val", SMALL.sampling_rate, SMALL.sequence_length)
    np.testing.assert_array_equal(val_ds.starts, all_starts)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_epochs": 0},
        {"max_epochs": -1},
        {"max_epochs": 1.5},
        {"max_epochs": True},
        {"steps_per_epoch": 0},
        {"steps_per_epoch": "3"},
        {"validation_steps": -2},
        {"validation_steps": 0},
        {"patience": 0},
    ],
    ids=str,
)
def test_invalid_fidelity_values_raise_config_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as excinfo:
        Fidelity(**kwargs)
    assert next(iter(kwargs)) in _one_line_config_error(excinfo)


def test_valid_fidelity_values() -> None:
    assert Fidelity() == Fidelity(max_epochs=10, steps_per_epoch=None, validation_steps=None)
    Fidelity(max_epochs=1, steps_per_epoch=1, validation_steps=1, patience=1)


def test_train_accepts_prepared_arrays_directly(ds: Dataset) -> None:
    prepared: Prepared = prepare(ds, "book2")
    result = train(SMALL, prepared, Fidelity(max_epochs=1, steps_per_epoch=1, validation_steps=1))
    assert result.state == "completed" and result.val_mae is not None


# --------------------------------------------------------------------------- other backends

JAX_SCRIPT = textwrap.dedent(
    """
    import json, math
    import keras
    from jena.book import BOOK_MODELS
    from jena.data import load
    from jena.train import DataCache, Fidelity, train

    assert keras.backend.backend() == "jax", keras.backend.backend()
    config = BOOK_MODELS["lstm"].config.replace(sequence_length=24, batch_size=32)
    fidelity = Fidelity(max_epochs=2, steps_per_epoch=2, validation_steps=1)
    result = train(config, DataCache(load("synthetic:24000:3"), "book2"), fidelity)
    print(json.dumps({"state": result.state, "val_mae": result.val_mae,
                      "epochs": len(result.history), "backend": keras.backend.backend()}))
    """
)


def test_trains_under_the_jax_backend() -> None:
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-c", JAX_SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["backend"] == "jax" and out["state"] == "completed" and out["epochs"] == 2
    assert math.isfinite(out["val_mae"])
