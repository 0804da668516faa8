"""Keras Tuner-only behaviour on tiny synthetic data: the space as a HyperModel, the deadline,
consecutive failures, the crash re-run and its project, Hyperband's epochs, and one experiment
ranked across both drivers. What every driver does (resume, failures, Ctrl-C, curves, the run
layout) is in test_driver_contract.py."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import keras_tuner as kt
import pytest
from conftest import children, offline_context, runs, tiny_sweep, toml_str

import sweeps.kerastuner._tuner as tuner_module
import sweeps.trial as trial_module
from jena.book import preset_defaults
from jena.config import RECURRENT
from jena.errors import ConfigError
from jena.space import SPACE, Param, Space
from jena.tracking import trials_frame
from jena.train import TrialResult
from sweeps import kerastuner as ktd
from sweeps import run_sweep
from sweeps.config import SweepConfig, apply_overrides
from sweeps.drivers import Best, Resume
from sweeps.faults import TooManyFailures
from sweeps.kerastuner import KerasTunerDriver
from sweeps.state import SweepState

# a cheap recurrent space whose two params both reach Keras Tuner (units is conditional on a
# recurrent architecture, which is fixed here)
KT_SPACE = (
    'space.include=["units", "learning_rate"]',
    'space.fixed={architecture="lstm", sequence_length_hours=24, sampling_rate=6}',
)


@pytest.fixture(scope="module")
def store_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite store for the module (its schema migration takes seconds); one experiment
    (sweep name) per test."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def sweep_cfg(uri: str, name: str, *sets: str, trials: int = 3, tuner: str = "random",
              driver: str = "kerastuner") -> SweepConfig:  # fmt: skip
    """A tiny sweep (conftest.tiny_sweep) over :data:`KT_SPACE` in the module's store."""
    return tiny_sweep(*KT_SPACE, f"tuner.type={toml_str(tuner)}", *sets, name=name,
                      driver=driver, trials=trials, tracking_uri=uri)  # fmt: skip


def statuses(cfg: SweepConfig) -> list[str]:
    return [t.status for t in ktd.kt_trials(cfg)]


# ------------------------------------------------------------------ space → hyperparameters
def test_hypermodel_translates_the_space() -> None:
    base = preset_defaults("book2", 0)
    space = SPACE.subspace(["architecture", "units", "learning_rate", "dense_layers",
                            "dense_units", "sequence_length_hours"])  # fmt: skip
    hm = ktd.SpaceHyperModel(space, base)
    hp = kt.HyperParameters()
    config = hm.build(hp)
    assert config is not None and config.architecture == hp["architecture"]
    by_name = {h.name: h for h in hp.space}
    assert set(by_name) == set(space.names)
    assert isinstance(by_name["architecture"], kt.engine.hyperparameters.Choice)
    assert list(by_name["architecture"].values) == list(SPACE["architecture"].choices or ())
    units, lr = by_name["units"], by_name["learning_rate"]
    assert isinstance(units, kt.engine.hyperparameters.Int) and units.sampling == "log"
    assert (units.min_value, units.max_value) == (8, 128)
    assert isinstance(lr, kt.engine.hyperparameters.Float) and lr.sampling == "log"
    assert by_name["sequence_length_hours"].step == 24
    # conditions from Param.when: units only for recurrent architectures
    assert [(c.name, c.values) for c in units.conditions] == [("architecture", list(RECURRENT))]
    assert [(c.name, c.values) for c in by_name["dense_units"].conditions] == [
        ("dense_layers", [1, 2])
    ]
    # point(): active values only, Keras Tuner's own keys dropped, values clipped into range
    values = {"architecture": "dense", "units": 32, "learning_rate": 0.0100000000001,
              "dense_layers": 0, "dense_units": 16, "sequence_length_hours": 48,
              "tuner/epochs": 3}  # fmt: skip
    assert hm.point(values) == {"architecture": "dense", "learning_rate": 0.01,
                                "dense_layers": 0, "sequence_length_hours": 48}  # fmt: skip


def test_fixed_parents_and_several_parents() -> None:
    base = preset_defaults("book2", 0)
    # architecture fixed: units' condition is decided up front (registered unconditionally)
    hp = kt.HyperParameters()
    ktd.SpaceHyperModel(SPACE.subspace(["units"], {"architecture": "gru"}), base).build(hp)
    assert [h.conditions for h in hp.space] == [[]]
    hp = kt.HyperParameters()
    ktd.SpaceHyperModel(SPACE.subspace(["units"], {"architecture": "dense"}), base).build(hp)
    assert hp.space == []  # never active in this sweep
    # two searched parents: Keras Tuner conditions it on the first, point() applies both
    both = Param("head_dropout", "float", 0.0, low=0.0, high=0.5,
                 when={"architecture": ("lstm",), "dense_layers": (1, 2)})  # fmt: skip
    space = Space(params=(SPACE["architecture"], SPACE["dense_layers"], both))
    hp = kt.HyperParameters()
    hm = ktd.SpaceHyperModel(space, base)
    hm.build(hp)
    head = next(h for h in hp.space if h.name == "head_dropout")
    assert [c.name for c in head.conditions] == ["architecture"]
    for arch, layers, is_active in (("lstm", 1, True), ("lstm", 0, False), ("gru", 2, False)):
        values = {"architecture": arch, "dense_layers": layers, "head_dropout": 0.1}
        assert ("head_dropout" in hm.point(values)) is is_active


def test_presets_grid_and_workers(in_tmp: Path, store_uri: str) -> None:
    hp = kt.HyperParameters()
    hm = ktd.SpaceHyperModel(SPACE.subspace(presets=["dense", "gru"]), preset_defaults("book2", 0))
    assert hm.build(hp) is not None and [h.name for h in hp.space] == ["preset"]
    assert hm.point({"preset": "gru", "tuner/epochs": 2}) == {"preset": "gru"}
    cfg = sweep_cfg(store_uri, "grid", tuner="grid")
    with pytest.raises(ConfigError, match="grid tuner: give values for 'units'"):
        ktd.hypermodel(cfg).build(kt.HyperParameters())
    cfg = apply_overrides(cfg, ["tuner.options.grid.units=[8, 16]",
                                "tuner.options.grid.learning_rate=[0.001]"])  # fmt: skip
    hp = kt.HyperParameters()
    ktd.hypermodel(cfg).build(hp)
    assert [list(h.values) for h in hp.space] == [[8, 16], [0.001]]
    with pytest.raises(ConfigError, match="'kerastuner' driver runs one worker"):
        apply_overrides(cfg, ["workers=2"])
    with pytest.raises(ConfigError, match="max_consecutive_failed_trials"):
        ktd.oracle(apply_overrides(cfg, ["tuner.options.max_consecutive_failed_trials=2"]))
    with pytest.raises(ConfigError, match=r"\[tuner.options\]"):
        ktd.oracle(apply_overrides(cfg, ["tuner.options.no_such_option=2"]))
    assert ktd.kt_seed(0) != 0  # Keras Tuner would draw a random seed for 0


# ------------------------------------------------------------------ the loop, without training
def test_deadline_and_nan_failures_without_training(
    in_tmp: Path, store_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No trial starts after the deadline; a failed result (NaN loss) is FAILED in Keras Tuner."""
    clock = [0.0]
    monkeypatch.setattr(tuner_module, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    seen: list[tuple[int, dict[str, Any], int | None]] = []

    def fake_run_trial(ctx: Any, number: int, values: dict[str, Any], *, report: Any = None,
                       max_epochs: int | None = None, **kwargs: Any) -> TrialResult:  # fmt: skip
        assert report is None  # Keras Tuner has no pruning hook
        seen.append((number, values, max_epochs))
        clock[0] += 10.0
        if number == 1:
            return TrialResult("failed", None, 2.0, None, reason="NaN loss in epoch 1")
        return TrialResult("completed", 1.0 + number, 2.0, 1)

    monkeypatch.setattr(tuner_module, "run_trial", fake_run_trial)
    cfg = sweep_cfg(store_uri, "kt_clock", trials=10)
    ctx = offline_context(cfg, SweepState("t", total=cfg.trials))
    KerasTunerDriver(cfg).run(ctx, deadline=25.0)  # trials start at t = 0, 10, 20; not at 30
    assert [n for n, _, _ in seen] == [0, 1, 2]
    assert all(set(v) == {"units", "learning_rate"} and e is None for _, v, e in seen)
    trials = ktd.kt_trials(cfg)
    assert [t.status for t in trials] == ["COMPLETED", "FAILED", "COMPLETED"]
    assert trials[1].message.strip().endswith("NaN loss in epoch 1")
    assert KerasTunerDriver(cfg).resume() == Resume(3, 1.0, 0)
    assert KerasTunerDriver(cfg).best() == Best(0, seen[0][1], 1.0)
    KerasTunerDriver(cfg).run(ctx, deadline=clock[0])  # past the deadline: nothing starts
    assert len(ktd.kt_trials(cfg)) == 3


# ------------------------------------------------------------------ sweeps
def test_consecutive_failures_stop_the_sweep(
    in_tmp: Path, store_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("always broken")

    monkeypatch.setattr(trial_module, "train", broken)
    cfg = sweep_cfg(store_uri, "kt_broken", "faults.max_consecutive_failed_trials=2", trials=5)
    with pytest.raises(TooManyFailures, match="2 Keras Tuner trials failed in a row"):
        run_sweep(cfg)
    assert statuses(cfg) == ["FAILED", "FAILED"]
    oracle_state = json.loads((in_tmp / "mlruns/kerastuner/kt_broken/oracle.json").read_text())
    assert oracle_state["ongoing_trials"] == {}  # saved: a resume does not re-run them
    assert KerasTunerDriver(cfg).resume() == Resume(2, None, None)


def test_crashed_trial_reruns_once_within_the_budget(
    in_tmp: Path, store_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, calls = trial_module.train, []

    def crash_second(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C / the process dies in trial 1
        return real(*args, **kwargs)

    monkeypatch.setattr(trial_module, "train", crash_second)
    cfg = sweep_cfg(store_uri, "kt_crash", trials=3)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(cfg)
    assert statuses(cfg) == ["COMPLETED", "RUNNING"]
    assert KerasTunerDriver(cfg).resume().finished == 1
    hps_before = ktd.kt_trials(cfg)[1].hyperparameters.values
    monkeypatch.setattr(trial_module, "train", real)
    out = run_sweep(cfg)
    trials = ktd.kt_trials(cfg)
    assert [t.status for t in trials] == ["COMPLETED"] * 3  # trial 1 again, then trial 2
    assert trials[1].hyperparameters.values == hps_before
    kids = children(runs(cfg), out.parent_run_id)
    assert [r.data.tags["trial_number"] for r in kids] == ["1", "2"]
    frame = trials_frame(store_uri, "kt_crash")
    assert sorted(frame[frame["number"] == 1]["state"]) == ["completed", "killed"]
    # the project is as if nothing had crashed: one trial.json per trial, nothing left over
    project = in_tmp / "mlruns/kerastuner/kt_crash"
    files = sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file())
    assert files == ["jena_sweep.json", "oracle.json",
                     *(f"trial_{i}/trial.json" for i in range(3)), "tuner0.json"]  # fmt: skip
    with pytest.raises(ConfigError, match=r"was made by \[tuner\].type = 'random'"):
        KerasTunerDriver(apply_overrides(cfg, ["tuner.type=bayesian"])).resume()
    # Keras Tuner's values reach MLflow as the space's types; its own tuner/* keys do not
    every = children(runs(cfg))
    assert all(r.data.params["hp.units"] == str(int(r.data.params["hp.units"])) for r in every)
    best = KerasTunerDriver(cfg).best()
    assert best is not None and out.best == best
    assert set(best.params) == {"units", "learning_rate"}


def test_hyperband_trains_each_trial_for_its_epochs(in_tmp: Path, store_uri: str) -> None:
    # max_epochs 2, factor 2: bracket 1 = 2 trials x 1 epoch, the best promoted to 2 epochs;
    # bracket 0 = 2 trials x 2 epochs. trials = 4 caps it mid-bracket.
    cfg = sweep_cfg(store_uri, "kt_hyperband", "tuner.options.factor=2", trials=4,
                    tuner="hyperband")  # fmt: skip
    out = run_sweep(cfg)
    trials = ktd.kt_trials(cfg)
    assert [t.status for t in trials] == ["COMPLETED"] * 4
    budgets = [t.hyperparameters.values["tuner/epochs"] for t in trials]
    assert budgets == [1, 1, 2, 2]
    promoted = trials[2].hyperparameters.values
    assert promoted["tuner/trial_id"] in (trials[0].trial_id, trials[1].trial_id)
    kids = children(runs(cfg), out.parent_run_id)
    assert [int(r.data.metrics["epochs"]) for r in kids] == budgets
    assert "tuner/epochs" not in KerasTunerDriver(cfg).best().params  # type: ignore[union-attr]


def test_one_experiment_ranks_both_drivers(in_tmp: Path, store_uri: str) -> None:
    optuna_cfg = sweep_cfg(store_uri, "kt_both", trials=2, driver="optuna")
    kt_cfg = sweep_cfg(store_uri, "kt_both", trials=2, tuner="bayesian")
    run_sweep(optuna_cfg)
    run_sweep(kt_cfg)
    frame = trials_frame(store_uri, "kt_both")
    assert sorted(frame["driver"]) == ["kerastuner", "kerastuner", "optuna", "optuna"]
    assert frame["parent_run_id"].nunique() == 2
    maes = list(frame["val_mae"])
    assert all(math.isfinite(v) for v in maes) and maes == sorted(maes)
