"""The adapters over upstream libraries' private APIs (``sweeps/optuna/_compat.py``,
``sweeps/kerastuner/_compat.py``): one test per function, against the installed library, so that
a release that changes what they rely on fails here, loudly, and not in a sweep."""

from __future__ import annotations

import json
import time
from pathlib import Path

import keras_tuner as kt
import optuna
import pytest
from optuna.trial import TrialState

from sweeps.kerastuner import _compat as KT
from sweeps.optuna import _compat as OP


@pytest.fixture
def rdb_study(tmp_path: Path) -> optuna.Study:
    """A study on an SQLite RDB storage with heartbeats (1 s, grace 2 s)."""
    storage = optuna.storages.RDBStorage(
        f"sqlite:///{tmp_path / 'o.db'}", heartbeat_interval=1, grace_period=2
    )
    return optuna.create_study(study_name="s", storage=storage)


def test_storage_and_ids(rdb_study: optuna.Study) -> None:
    storage = OP.storage_of(rdb_study)
    assert isinstance(storage, optuna.storages.BaseStorage)
    assert storage.get_study_id_from_name("s") == OP.study_id(rdb_study)
    trial = rdb_study.ask()
    frozen = storage.get_trial(OP.trial_id(trial))
    assert frozen.number == trial.number and OP.trial_id(frozen) == OP.trial_id(trial)


def test_heartbeat_enabled_only_with_an_interval(rdb_study: optuna.Study, tmp_path: Path) -> None:
    assert OP.heartbeat_enabled(OP.storage_of(rdb_study))
    plain = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'p.db'}")
    assert not OP.heartbeat_enabled(plain)
    assert not OP.heartbeat_enabled(optuna.storages.InMemoryStorage())
    assert OP.heartbeat_interval(OP.storage_of(rdb_study)) == 1.0


def test_a_trial_without_beats_goes_stale(rdb_study: optuna.Study) -> None:
    storage = OP.storage_of(rdb_study)
    beating, silent = rdb_study.ask(), rdb_study.ask()
    OP.record_heartbeat(storage, OP.trial_id(silent))  # one beat, then silence
    deadline = time.monotonic() + 10
    stale: list[int] = []
    while time.monotonic() < deadline:
        OP.record_heartbeat(storage, OP.trial_id(beating))
        stale = OP.stale_trial_ids(rdb_study)
        if stale:
            break
        time.sleep(0.5)
    assert stale == [OP.trial_id(silent)]  # not the trial that beats
    assert storage.get_trial(stale[0]).state == TrialState.RUNNING  # listing fails nothing


def test_keras_tuner_debug_switch_is_restored() -> None:
    from keras_tuner.src import config

    before = config.DEBUG
    config.DEBUG = True  # Keras Tuner's default: tracebacks of failed trials on stderr
    try:
        with KT.quiet_failures():
            assert config.DEBUG is False
        assert config.DEBUG is True
    finally:
        config.DEBUG = before


def test_keras_tuner_trial_round_trip(tmp_path: Path) -> None:
    hp = kt.HyperParameters()
    hp.Int("units", 8, 64, step=8, default=16)
    trial = kt.engine.trial.Trial(hp, trial_id="3", status="COMPLETED")
    trial.score = 1.25
    path = tmp_path / "trial.json"
    path.write_text(json.dumps(trial.get_state()))
    loaded = KT.load_trial(path)
    assert (loaded.trial_id, loaded.status, loaded.score) == ("3", "COMPLETED", 1.25)
    assert loaded.hyperparameters.values == {"units": 16}


def test_keras_tuner_first_proposals(tmp_path: Path) -> None:
    hp = kt.HyperParameters()
    hp.Int("units", 8, 64, step=8, default=16)
    hp.Float("lr", 1e-4, 1e-2, sampling="log", default=1e-3)
    oracle = kt.oracles.RandomSearchOracle(objective=kt.Objective("val_mae", "min"),
                                           max_trials=5, seed=1, hyperparameters=hp)  # fmt: skip
    oracle._set_project_dir(str(tmp_path), "p")
    labels = KT.first_proposals(oracle, [{"units": 48}], ["book:lstm"])
    first, second = oracle.create_trial("t0"), oracle.create_trial("t1")  # two tuners
    assert first.hyperparameters.values == {"units": 48, "lr": 1e-3}  # the rest: defaults
    assert labels == {first.trial_id: "book:lstm"}
    assert second.trial_id not in labels  # the oracle's own proposal
