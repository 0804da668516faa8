"""``residual = "ridge"`` (issue 28): a network added to the linear reference; untrained, such a
model *is* the ridge (:mod:`jena.linear`), through the trainer, the forecaster and the
registered model alike."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TINY
from test_residual import ARCHITECTURES  # one small model of each architecture

from jena.config import TrialConfig
from jena.data import load
from jena.errors import ConfigError
from jena.forecasting import Forecaster, InputError
from jena.linear import fit_ridge
from jena.space import SPACE
from jena.train import DataCache, Fidelity, FitPlan, train


@pytest.fixture(scope="module")
def cache() -> DataCache:
    return DataCache(load(TINY), "book2")


def _by_hand(cache: DataCache, config: TrialConfig, count: int = 400):  # type: ignore[no-untyped-def]
    """Validation targets and windows cut by hand from the bounds (book2: the first target
    858 rows into the validation rows); the windows end 144 rows before their targets."""
    p = cache.get(wind_vector=config.wind_vector, time_features=config.time_features)
    lo, hi = p.bounds.val
    targets = np.arange(lo + 858, hi)[:: max(1, (hi - lo - 858) // count)]
    r, n = config.sampling_rate, config.sequence_length
    last = targets - 144
    starts = last - (n - 1) * r
    x = p.x[starts[:, None] + np.arange(n) * r]  # (windows, steps, features)
    return p, targets, last, x


@pytest.mark.parametrize("normalised", [False, True], ids=["celsius", "normalised"])
@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_an_untrained_ridge_residual_model_is_the_ridge(  # type: ignore[no-untyped-def]
    cache, name: str, normalised: bool
) -> None:
    """Its forecasts (network output + the ridge it carries, read off the raw record) equal
    jena.linear's fitted on the plain record, on windows cut by hand, 12 h of history at
    30-minute steps (shorter than the ridge's 24 h: it reads further back)."""
    config = (
        ARCHITECTURES[name]
        .replace(residual="ridge", normalise_target=normalised, sampling_rate=3, sequence_length=24)
        .validate()
    )
    plan = FitPlan.of(config, cache, Fidelity(max_epochs=1))
    model = plan.build(config)
    forecaster = Forecaster(model, plan.data_config(config))
    plain, _, last, x = _by_hand(cache, config)
    base = forecaster.ridge_forecasts(cache.dataset.frame, last)
    forecast = forecaster.predict(x, base)
    ridge = fit_ridge(plain)
    np.testing.assert_allclose(forecast, ridge.predict(plain, last), atol=1e-4, rtol=0)
    persistence = plain.temperature[last]
    assert np.mean(np.abs(forecast - persistence)) > 0.3  # not persistence: the ridge


def test_with_extra_features_the_network_reads_them_and_the_ridge_the_plain_columns(
    cache: DataCache,
) -> None:
    config = ARCHITECTURES["gru"].replace(residual="ridge", wind_vector=True,
                                          time_features=True, sequence_length=24)  # fmt: skip
    plan = FitPlan.of(config, cache, Fidelity(max_epochs=1))
    forecaster = Forecaster(plan.build(config), plan.data_config(config))
    p, _, last, x = _by_hand(cache, config)
    assert x.shape[-1] == p.features != cache.get().features
    forecast = forecaster.predict(x, forecaster.ridge_forecasts(cache.dataset.frame, last))
    np.testing.assert_allclose(forecast, fit_ridge(cache.get()).predict(cache.get(), last),
                               atol=1e-4, rtol=0)  # fmt: skip


def test_training_starts_from_the_ridge_on_the_same_targets(cache: DataCache) -> None:
    """With a learning rate of ~0 the trainer's validation MAE is the ridge's on the same
    validation slice (computed here from jena.linear and the slice's targets by hand)."""
    config = ARCHITECTURES["dense"].replace(residual="ridge", learning_rate=1e-12,
                                            sequence_length=24)  # fmt: skip
    fidelity = Fidelity(max_epochs=1, steps_per_epoch=2, validation_steps=2)
    result = train(config, cache, fidelity)
    p = cache.get()
    lo, hi = p.bounds.val
    everything = np.arange(lo + 858, hi)
    chosen = everything[np.linspace(0, len(everything) - 1, 512).round().astype(int)]
    ridge = fit_ridge(p)
    expected = np.mean(np.abs(ridge.predict(p, chosen - 144) - p.temperature[chosen]))
    assert result.val_targets == 512
    assert result.val_mae == pytest.approx(expected, rel=1e-4)


def test_training_windows_never_read_another_split_through_the_ridge(cache: DataCache) -> None:
    """On blocked:7:val,train,train,test a training block follows a validation block: a 6-hour
    window's ridge would read 24 h back, into it. Those windows are left out."""
    data = DataCache(cache.dataset, "blocked:7:val,train,train,test")
    config = ARCHITECTURES["dense"].replace(residual="ridge", sampling_rate=1,
                                            sequence_length=36)  # fmt: skip
    plan = FitPlan.of(config, data, Fidelity(max_epochs=1))
    p = plan.prepared
    offset = p.preset.offset(1, 36)
    first_ridge_row = plan.train_starts + offset - 144 - 138
    val = p.bounds.mask("val", p.rows)
    assert not val[first_ridge_row].any()
    plain = FitPlan.of(config.replace(residual="persistence"), data, Fidelity(max_epochs=1))
    assert len(plan.train_starts) < len(plain.train_starts)  # some did reach back


def test_a_ridge_residual_model_needs_the_ridges_24_hours(cache: DataCache) -> None:
    config = ARCHITECTURES["dense"].replace(residual="ridge", sampling_rate=3,
                                            sequence_length=16)  # 7.5 h of history  # fmt: skip
    plan = FitPlan.of(config, cache, Fidelity(max_epochs=1))
    forecaster = Forecaster(plan.build(config), plan.data_config(config))
    assert forecaster.rows_needed == 139  # 24 hourly points, 23 h apart, + the last row
    frame = cache.dataset.frame
    assert np.isfinite(forecaster.forecast(frame.iloc[:5000]).forecast)
    with pytest.raises(InputError, match="139 rows") as err:
        forecaster.forecast(frame.iloc[:138])
    assert "\n" not in str(err.value) and "ridge" in str(err.value)


def test_residual_is_a_choice_and_old_booleans_still_read() -> None:
    assert SPACE["residual"].choices == ("none", "persistence", "ridge")
    assert SPACE.to_config({"residual": True, "architecture": "dense"}).residual == "persistence"
    assert SPACE.to_config({"residual": False, "architecture": "dense"}).residual == "none"
    assert TrialConfig.from_dict({"residual": True}).residual == "persistence"
    assert TrialConfig.from_dict({"residual": "True"}).residual == "persistence"  # a run's param
    assert SPACE.subspace(fixed={"residual": True}).fixed["residual"] == "persistence"
    with pytest.raises(ConfigError, match="residual"):
        TrialConfig(residual="linear").validate()
