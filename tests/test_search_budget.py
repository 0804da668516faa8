"""A search that spends its budget well (issue 10): warm starts, stop rules, narrowed ranges,
and no pruning at a trial's last epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import parents, runs, store_trials, tiny_sweep
from optuna.trial import TrialState

import sweeps.trial as trial_module
from jena.errors import ConfigError
from jena.tracking import default_tracking_uri, trials_frame
from jena.train import TrialResult
from sweeps import run_sweep
from sweeps.optuna import SweepStudy
from sweeps.trial import make_space

# the conv layers are not searched here: they keep the book's own (the base configuration's)
BOOK2_BUILDABLE = ["book:dense", "book:conv1d", "book:lstm", "book:lstm_dropout", "book:bilstm"]
WIDE = ('space.include=["architecture", "bidirectional", "units", "recurrent_dropout", '
        '"dense_layers", "dense_units", "head_dropout"]',
        "space.fixed={sequence_length_hours=120, rnn_layers=1}")  # fmt: skip


DENSE = (
    'space.include=["learning_rate"]',
    'space.fixed={architecture="dense", sequence_length_hours=24}',
)  # every point valid


def fake_train(values: list[float]) -> Any:
    """A trainer that 'trains' to the given validation MAEs, one per call, in one epoch."""
    calls = {"n": 0}

    def train(config: Any, cache: Any, fidelity: Any, *, on_epoch: Any = None, **kw: Any) -> Any:
        value = values[min(calls["n"], len(values) - 1)]
        calls["n"] += 1
        on_epoch(1, {"loss": value, "mae": value, "val_loss": value, "val_mae": value})
        return TrialResult("completed", value, 3.0, 1, param_count=1)

    return train


@pytest.mark.parametrize("driver", ["optuna", "kerastuner"])
def test_the_first_trials_are_the_books_models(in_tmp: Path, driver: str) -> None:
    cfg = tiny_sweep(*WIDE, "space.warm_start=\"book\"", "fidelity.max_epochs=1", name="warm",
                     driver=driver, trials=6)  # fmt: skip
    summary = run_sweep(cfg)
    assert summary.finished == 6
    frame = trials_frame(default_tracking_uri(), "warm").sort_values("number")
    assert list(frame["tags.warm_start"].iloc[:5]) == BOOK2_BUILDABLE
    assert frame["tags.warm_start"].iloc[5] != frame["tags.warm_start"].iloc[5]  # NaN: sampled
    # the book's LSTM(32) with recurrent dropout 0.25 and Dropout(0.5), at this sweep's fidelity
    row = frame.iloc[3]
    assert (row["params.rnn_units"], row["params.recurrent_dropout"], row["params.head_dropout"]) \
        == ("[32]", "0.25", "0.5")  # fmt: skip
    (p,) = parents(runs("warm"))  # the parent run says what was skipped, and why
    assert "skipped book:stacked_gru_dropout: rnn_units = [32, 32]" in p.data.tags["warm_start"]
    assert store_trials(cfg)[0].state == "completed"


def test_warm_start_from_another_sweep_adds_its_trials(in_tmp: Path) -> None:
    first = tiny_sweep('space.include=["learning_rate", "head_dropout"]',
                       'space.fixed={architecture="dense", sequence_length_hours=24}',
                       name="first", trials=3)  # fmt: skip
    run_sweep(first)
    done_first = trials_frame(default_tracking_uri(), "first")
    done_first = done_first[done_first["state"] == "completed"]
    drops = sorted(done_first["params.head_dropout"].astype(float))
    high = (drops[1] + drops[2]) / 2  # two of its trials inside this sweep's range, one not
    second = tiny_sweep('space.include=["learning_rate", "head_dropout"]',
                        'space.fixed={architecture="dense", sequence_length_hours=24}',
                        f"space.ranges.head_dropout=[0.0, {high}]", 'space.warm_start="first"',
                        name="second", trials=2)  # fmt: skip
    summary = run_sweep(second)
    study = SweepStudy(second).study
    imported = [t for t in study.trials if "imported_from" in t.user_attrs]
    assert len(imported) == 2 and all(t.state == TrialState.COMPLETE for t in imported)
    assert {t.values[0] for t in imported} <= set(done_first["val_mae"])
    (p,) = parents(runs("second"))
    assert "skipped sweep:first#" in p.data.tags["warm_start"] and "is outside" in p.data.tags[
        "warm_start"]  # fmt: skip
    # the added trials inform the sampler but do not use the budget
    assert summary.finished == 2 and len(study.trials) == 2 + len(imported)
    with pytest.raises(ConfigError, match=r"warm-start nope: no sweep .*named 'nope'"):
        run_sweep(tiny_sweep('space.warm_start="nope"', name="third", trials=1))
    other = tiny_sweep('space.warm_start="first"', 'data.source="synthetic:24000:4"',
                       name="fourth", trials=1)  # fmt: skip
    with pytest.raises(ConfigError, match="--warm-start first: that sweep was run on data"):
        run_sweep(other)
    kt = tiny_sweep(
        'space.include=["learning_rate", "head_dropout"]',
        'space.fixed={architecture="dense", sequence_length_hours=24}',
        'space.warm_start="first"',
        name="fifth",
        driver="kerastuner",
        trials=1,
    )
    with pytest.raises(ConfigError, match=r"'kerastuner' driver cannot add another sweep's"):
        run_sweep(kt)


@pytest.mark.parametrize("driver", ["optuna", "kerastuner"])
def test_patience_stops_the_sweep(in_tmp: Path, monkeypatch: pytest.MonkeyPatch,
                                  driver: str) -> None:  # fmt: skip
    monkeypatch.setattr(trial_module, "train", fake_train([2.0, 2.5, 2.4, 2.6, 1.0]))
    cfg = tiny_sweep("stop.patience_trials=3", *DENSE, name="patient", driver=driver, trials=10)
    summary = run_sweep(cfg)
    assert summary.finished == 4  # best at trial 0, then 3 without a new best
    assert summary.stop_reason.startswith("no new best in 3 completed trials")
    assert [t.state for t in store_trials(cfg)] == ["completed"] * 4


@pytest.mark.parametrize("driver", ["optuna", "kerastuner"])
def test_a_target_stops_the_sweep(in_tmp: Path, monkeypatch: pytest.MonkeyPatch,
                                  driver: str) -> None:  # fmt: skip
    monkeypatch.setattr(trial_module, "train", fake_train([3.0, 2.2, 1.9, 1.5]))
    cfg = tiny_sweep("stop.target_val_mae=2.0", *DENSE, name="target", driver=driver, trials=10)
    summary = run_sweep(cfg)
    assert summary.finished == 3
    assert summary.stop_reason == "target validation MAE 2 °C reached (trial 2: 1.9000)"
    (p,) = parents(runs("target"))
    assert p.data.tags["stop_reason"] == summary.stop_reason


def test_stop_rules_are_checked(in_tmp: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[stop\]\.patience_trials: must be at least 1"):
        tiny_sweep("stop.patience_trials=0")
    with pytest.raises(ConfigError, match=r"\[stop\]\.target_val_mae: must be positive"):
        tiny_sweep("stop.target_val_mae=-1.0")


def test_ranges_narrow_the_space(in_tmp: Path) -> None:
    cfg = tiny_sweep("space.ranges.units=[16, 32]", 'space.ranges.architecture=["lstm", "gru"]',
                     "space.ranges.sampling_rate=[3, 6]",
                     'space.include=["architecture", "units", "sampling_rate"]')  # fmt: skip
    space = make_space(cfg)
    assert (space["units"].low, space["units"].high) == (16, 32)
    assert space["architecture"].choices == ("lstm", "gru")
    assert space["sampling_rate"].choices == (3, 6)
    for bad, message in (
        ("space.ranges.units=[4, 32]", "units=4 is outside 8..128"),
        ("space.ranges.units=[64, 32]", "low 64 is above high 32"),
        ("space.ranges.sampling_rate=[5]", "sampling_rate=5 is not one of"),
        ("space.ranges.wind_vector=[true]", "a boolean cannot be narrowed"),
        ("space.ranges.conv_kernel=[3, 5]", "conv_kernel is not searched"),
    ):
        with pytest.raises(ConfigError, match=rf"\[space\]: ranges: .*{message}"):
            tiny_sweep(bad, 'space.include=["architecture", "units", "sampling_rate", '
                            '"wind_vector"]')  # fmt: skip
    run_sweep(cfg)
    frame = trials_frame(default_tracking_uri(), "tiny")
    assert len(frame) == cfg.trials  # every proposal: each run records what was proposed
    assert frame["params.hp.units"].astype(int).between(16, 32).all()
    assert set(frame["params.hp.architecture"]) <= {"lstm", "gru"}
    assert set(frame["params.hp.sampling_rate"].astype(int)) <= {3, 6}


def test_a_trial_at_its_last_epoch_is_not_pruned(in_tmp: Path) -> None:
    """With the median pruner and one epoch per trial, every trial ends at its last epoch:
    finished (completed), never pruned, however bad."""
    cfg = tiny_sweep('pruner.type="median"', "pruner.options={n_startup_trials=1, "
                     "n_warmup_steps=0}", "fidelity.max_epochs=1", trials=4)  # fmt: skip
    run_sweep(cfg)
    study = SweepStudy(cfg).study
    assert TrialState.PRUNED not in {t.state for t in study.trials}
    assert all(len(t.intermediate_values) <= 1 for t in study.trials)
