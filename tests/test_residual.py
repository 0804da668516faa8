"""Residual forecasting (issue 14): every architecture can predict the change from the window's
last temperature; untrained, such a model *is* the persistence forecast."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import TINY

from jena.config import TrialConfig
from jena.data import load
from jena.models import LastValue, build_model
from jena.prepare import prepare
from jena.serve import ProjectForecaster
from jena.space import SPACE
from jena.tracking import load_model_dir
from jena.train import Fidelity, train

ARCHITECTURES = {
    "dense": TrialConfig(architecture="dense", dense_units=(16,)),
    "conv1d": TrialConfig(architecture="conv1d", conv_filters=(8, 8), conv_kernel=(5, 3)),
    "lstm": TrialConfig(architecture="lstm", rnn_units=(8,)),
    "gru": TrialConfig(architecture="gru", rnn_units=(8, 8), reverse=True),
    "conv_gru": TrialConfig(
        architecture="conv_gru", conv_filters=(8,), conv_kernel=(3,), rnn_units=(8,)
    ),
}


@pytest.fixture(scope="module")
def prepared():  # type: ignore[no-untyped-def]
    return prepare(load(TINY), "book2")


def _window_batch(prepared, config: TrialConfig, count: int = 300):  # type: ignore[no-untyped-def]
    r, n = config.sampling_rate, config.sequence_length
    starts = prepared.starts("val", r, n)[:count]
    rows = starts[:, None] + np.arange(n)[None, :] * r
    return prepared.x[rows], starts  # (windows, steps, features)


def _celsius(prepared, config: TrialConfig, outputs: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    y = np.asarray(outputs, dtype=np.float64).reshape(-1)
    return y * prepared.target_std + prepared.target_mean if config.normalise_target else y


@pytest.mark.parametrize("normalised", [False, True], ids=["celsius", "normalised"])
@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_an_untrained_residual_model_is_persistence(prepared, name: str, normalised: bool) -> None:  # type: ignore[no-untyped-def]
    config = ARCHITECTURES[name].replace(residual=True, normalise_target=normalised,
                                         sequence_length=48).validate()  # fmt: skip
    x, starts = _window_batch(prepared, config)
    model = build_model(config, x.shape[1:], (prepared.target_mean, prepared.target_std))
    forecast = _celsius(prepared, config, model.predict(x, verbose=0))
    span = (config.sequence_length - 1) * config.sampling_rate
    persistence = prepared.temperature[starts + span]
    np.testing.assert_allclose(forecast, persistence, atol=1e-4, rtol=0)
    absolute = build_model(config.replace(residual=False), x.shape[1:])
    plain = _celsius(prepared, config, absolute.predict(x, verbose=0))
    assert np.max(np.abs(plain - persistence)) > 0.5  # a plain untrained model is not


def test_the_output_layer_starts_at_zero(prepared) -> None:  # type: ignore[no-untyped-def]
    config = ARCHITECTURES["lstm"].replace(residual=True, sequence_length=24)
    model = build_model(config, (24, prepared.features), (9.0, 8.0))
    change = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)][-1]
    assert all(not np.any(w) for w in change.get_weights())
    (last,) = [layer for layer in model.layers if isinstance(layer, LastValue)]
    assert (last.index, last.scale, last.offset) == (1, 8.0, 9.0)  # T is feature 1, in °C


@pytest.mark.parametrize("normalised", [False, True], ids=["celsius", "normalised"])
def test_a_trained_residual_model_reloads_with_the_same_forecasts(  # type: ignore[no-untyped-def]
    prepared, tmp_path: Path, normalised: bool
) -> None:
    config = ARCHITECTURES["gru"].replace(residual=True, normalise_target=normalised,
                                          sequence_length=24, batch_size=64)  # fmt: skip
    result = train(config, prepared, Fidelity(max_epochs=2, steps_per_epoch=4,
                                              validation_steps=2))  # fmt: skip
    assert result.state == "completed" and result.model is not None
    # saved with its constants (the temperature's mean and std in °C), it forecasts the same
    x, _ = _window_batch(prepared, config, 200)
    before = result.model.predict(x, verbose=0)
    folder = tmp_path / "model"
    folder.mkdir()
    result.model.save(folder / "model.keras")
    import json

    (folder / "data_config.json").write_text(json.dumps(result.data_config))
    model, data_config = load_model_dir(folder)
    np.testing.assert_allclose(model.predict(x, verbose=0), before, atol=1e-6)
    forecaster = ProjectForecaster(model, data_config)
    np.testing.assert_allclose(forecaster.to_celsius(before),
                               _celsius(prepared, config, before), atol=1e-9)  # fmt: skip


def test_residual_is_searched_for_every_architecture() -> None:
    assert "residual" in SPACE.names and not SPACE["residual"].when
    assert SPACE.to_config({"residual": True, "architecture": "dense"}).residual


@pytest.mark.parametrize("driver", ["optuna", "kerastuner"])
def test_residual_trials_run_in_both_drivers(in_tmp: Path, driver: str) -> None:
    from conftest import tiny_sweep

    from jena.tracking import default_tracking_uri, load_trial_model, trials_frame
    from sweeps import run_sweep

    cfg = tiny_sweep("residual=true", name="residual", driver=driver, trials=2)
    run_sweep(cfg)
    frame = trials_frame(default_tracking_uri(), "residual")
    done = frame[frame["state"] == "completed"]
    assert len(done) >= 1 and set(done["params.residual"]) == {"persistence"}  # was a bool
    model, _ = load_trial_model(default_tracking_uri(), done.iloc[0]["run_id"])
    assert any(isinstance(layer, LastValue) for layer in model.layers)
