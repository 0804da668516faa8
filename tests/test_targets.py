"""Every forecaster of a split is scored on the same target rows, whatever its window.

Expected targets are computed here by hand from the split's bounds (the first target of a part
lies 858 rows — the preset's 120 hourly steps + 24 h — after its first row), not by the code
under test."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import mlflow_client, tiny_sweep

from jena.config import TrialConfig
from jena.data import load
from jena.errors import ConfigError
from jena.prepare import prepare
from jena.splits import get_preset
from jena.tracking import names
from jena.train import Fidelity, FitPlan, validation_targets
from sweeps import run_sweep

ROWS = 200 * 144  # a simulated 200-day station, as in the issue
WINDOWS = [(6, 24), (6, 120), (3, 48), (6, 240)]  # (sampling rate, steps): 1 to 10 days
FIRST = 119 * 6 + 144  # rows from a part's first row to its first target


@pytest.fixture(scope="module")
def station():
    return load(f"synthetic:{ROWS}:1")


def _by_hand(spec: str, split: str) -> np.ndarray:
    """The targets of ``split`` from its bounds alone."""
    b = get_preset(spec).bounds(ROWS)
    if spec == "book2" and split == "test":  # the book's test windows: last target rows - 714
        lo, hi = b.test
        return np.arange(lo + FIRST, min(hi, ROWS - FIRST) - 714 + FIRST)
    parts = [np.arange(lo + FIRST, hi) for lo, hi in b.segments(split)]  # type: ignore[arg-type]
    return np.concatenate(parts)


@pytest.mark.parametrize("spec", ["blocked", "book2"])
def test_windows_of_every_length_score_the_same_targets(station, spec):
    """Two (four) configurations with different windows report the same persistence MAE over
    the same number of validation and test targets: the split's. (Before: blocked 1.8849 /
    1.8256 / 1.8830 for 24 / 120 / 48-step windows, each on its own targets.)"""
    prepared = prepare(station, spec, include_test=True)
    for split in ("val", "test"):
        expected = _by_hand(spec, split)
        seen = []
        for r, n in WINDOWS:
            starts = prepared.starts(split, r, n)
            np.testing.assert_array_equal(starts + prepared.preset.offset(r, n), expected)
            seen.append(prepared.persistence_mae(split, r, n))
        maes, counts = zip(*seen, strict=True)
        assert counts == (len(expected),) * len(WINDOWS), (split, counts)
        assert max(maes) - min(maes) == 0.0, (split, maes)
        # persistence by hand: the temperature 24 h before each target
        t = station.frame["T (degC)"].to_numpy()
        assert maes[0] == pytest.approx(np.mean(np.abs(t[expected - 144] - t[expected])))


@pytest.mark.parametrize("spec", ["blocked", "book2"])
def test_a_trials_validation_slice_and_baseline_do_not_depend_on_its_window(station, spec):
    prepared = prepare(station, spec)
    fidelity = Fidelity(max_epochs=1, steps_per_epoch=1, validation_steps=2)
    configs = [TrialConfig(architecture="dense", sampling_rate=r, sequence_length=n)
               for r, n in WINDOWS]  # fmt: skip
    plans = [FitPlan.of(c, prepared, fidelity) for c in configs]
    targets = {tuple(p.val_starts + prepared.preset.offset(p.config.sampling_rate,
                                                           p.config.sequence_length))
               for p in plans}  # fmt: skip
    assert len(targets) == 1
    everything = _by_hand(spec, "val")
    chosen = np.array(next(iter(targets)))
    assert len(chosen) == 2 * 256 and set(chosen) <= set(everything)
    assert chosen[0] == everything[0] and chosen[-1] == everything[-1]  # spread over the split
    np.testing.assert_array_equal(validation_targets(prepared, fidelity), chosen)
    assert len({p.baseline_val_mae for p in plans}) == 1


def test_a_window_too_long_for_the_blocks_is_refused_before_training(station):
    """A 10-day history fits the 14 days of training blocks, but on 7-day blocks in the rotation
    train,train,test,val a validation block follows a test block: from its first target (858
    rows in) the window reaches a test row. FitPlan refuses it in one line, naming what fits:
    the 119 h of the preset's own window."""
    prepared = prepare(station, "blocked:7:train,train,test,val")
    config = TrialConfig(architecture="dense", sampling_rate=6, sequence_length=10 * 24)
    with pytest.raises(ConfigError, match=r"use at most 119 h of history") as err:
        FitPlan.of(config, prepared, Fidelity(max_epochs=1))
    assert "\n" not in str(err.value) and "test row" in str(err.value)
    fits = TrialConfig(architecture="dense", sampling_rate=6, sequence_length=120)
    assert len(FitPlan.of(fits, prepared, Fidelity(max_epochs=1)).val_starts)


def test_a_sweeps_trials_persistence_and_ridge_share_one_validation_slice(in_tmp):
    """Trials with different sequence lengths record the same validation targets and the same
    persistence MAE; the parent run's persistence and ridge are measured on the same count."""
    cfg = tiny_sweep(
        'space.include=["sequence_length_hours"]',
        'space.fixed={architecture="dense", normalise_target=true}',
        "space.ranges={sequence_length_hours=[24, 96]}",
        trials=4,
        seed=3,
    )
    summary = run_sweep(cfg)
    assert summary.counts["completed"] >= 2, summary
    client = mlflow_client(cfg)
    experiment = client.get_experiment_by_name(cfg.name)
    runs = client.search_runs([experiment.experiment_id])
    trials = [r for r in runs if r.data.tags.get(names.TAG_PARENT)]
    parent = next(r for r in runs if not r.data.tags.get(names.TAG_PARENT))
    assert len({r.data.params.get("sequence_length") for r in trials}) >= 2  # different windows
    slice_size = cfg.fidelity.validation_steps * 256  # batches of the preset's 256
    assert {r.data.metrics[names.METRIC_VAL_TARGETS] for r in trials} == {slice_size}
    assert parent.data.metrics[names.METRIC_VAL_TARGETS] == slice_size
    baselines = {round(r.data.metrics[names.METRIC_BASELINE_VAL], 9) for r in trials}
    assert baselines == {round(parent.data.metrics[names.METRIC_BASELINE_VAL], 9)}
    assert summary.val_targets == slice_size
