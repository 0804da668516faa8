"""One contract, every Optuna storage the driver accepts: in-memory, SQLite, journal file and a
real PostgreSQL server (started by .ci/run; locally skipped without JENA_TEST_POSTGRES_URL)."""

from __future__ import annotations

import os
import uuid

import pytest
from conftest import require_in_ci, tiny_sweep, toml_str
from optuna.trial import TrialState

from sweeps import apply_overrides, run_sweep
from sweeps.optuna import SweepStudy


@pytest.fixture(params=["memory", "sqlite", "journal", "postgres"])
def storage_url(request, in_tmp):
    kind = request.param
    if kind == "memory":
        return "memory"
    if kind == "sqlite":
        return f"sqlite:///{in_tmp}/optuna.db"
    if kind == "journal":
        return f"journal:{in_tmp}/optuna.journal"
    url = os.environ.get("JENA_TEST_POSTGRES_URL")
    if not url:
        require_in_ci("no PostgreSQL server: set JENA_TEST_POSTGRES_URL (.ci/run starts one)")
    return url


def make(in_tmp, url):
    return tiny_sweep(
        "fidelity.max_epochs=1",
        "fidelity.steps_per_epoch=1",
        "fidelity.validation_steps=1",
        'space.include=["learning_rate", "head_dropout"]',
        'space.fixed={architecture="dense", sequence_length_hours=24}',
        f"storage.optuna={toml_str(url)}",
        name=f"st-{uuid.uuid4().hex[:8]}",
        trials=2,
    )


def test_storage_contract_run_resume_and_record(in_tmp, storage_url):
    cfg = make(in_tmp, storage_url)
    first = run_sweep(cfg)
    assert first.finished == 2
    study = SweepStudy(cfg).study
    assert [t.number for t in study.trials] == [0, 1]
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert all(t.user_attrs["state"] == "completed" and "pid" in t.user_attrs for t in study.trials)
    assert all(set(t.params) == {"learning_rate", "head_dropout"} for t in study.trials)

    # resume on the same storage: the total continues from 2 to 3
    second = run_sweep(apply_overrides(cfg, ["trials=3"]))
    assert second.finished == 3 and second.counts["completed"] == 1
    study = SweepStudy(cfg).study
    assert len(study.trials) == 3
    assert second.best.val_mae == pytest.approx(min(t.value for t in study.trials))


def test_an_unusable_storage_url_is_one_clear_line(in_tmp):
    cfg = make(in_tmp, "postgresql://nobody@127.0.0.1:1/none")
    from jena.errors import ConfigError

    with pytest.raises(ConfigError, match="Optuna storage 'postgresql://") as err:
        SweepStudy(cfg).trials()
    assert "\n" not in str(err.value)


def test_memory_storage_refuses_several_workers(in_tmp):
    from jena.errors import ConfigError

    cfg = apply_overrides(make(in_tmp, "memory"), ["workers=2"])
    with pytest.raises(ConfigError, match="cannot be shared by several workers"):
        SweepStudy(cfg).trials()
