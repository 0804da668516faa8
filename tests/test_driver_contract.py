"""One contract, every sweep driver (:data:`sweeps.registry.DRIVERS`), as Optuna's storage tests
run one suite over every storage: resume up to the total, a failing trial fails in both stores
and the sweep goes on, Ctrl-C leaves nothing RUNNING, per-epoch curves, and the parent/child
layout of the MLflow runs. A new driver gets the suite by its line in ``DRIVERS`` (plus a reader
of its own store in ``conftest.STORE_TRIALS``); what only one driver does is tested in its own
file (test_sweep_optuna.py, test_sweep_kerastuner.py)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import (
    STORE_TRIALS,
    children,
    ended,
    history_steps,
    mlflow_client,
    numbers,
    parents,
    runs,
    store_states,
    store_trials,
    tiny_sweep,
)

import sweeps.trial as trial_module
from jena import tracking
from jena.tracking import names
from sweeps import apply_overrides, run_sweep
from sweeps.drivers import get_driver
from sweeps.registry import DRIVERS

ENDED_STATUS = {"completed": "FINISHED", "pruned": "FINISHED", "failed": "FAILED",
                "killed": "KILLED"}  # fmt: skip


TRIAL_TAGS = (names.TAG_ARCHITECTURE, names.TAG_DATA_SOURCE, names.TAG_DATA_DIGEST,
              names.TAG_PRESET, names.TAG_BACKEND, names.TAG_SEED, names.TAG_GIT_COMMIT,
              names.TAG_HOST, names.TAG_PID)  # fmt: skip


def test_every_driver_has_a_store_reader() -> None:
    assert set(DRIVERS) <= set(STORE_TRIALS), "add the driver's reader to conftest.STORE_TRIALS"


@pytest.fixture(scope="module", params=sorted(DRIVERS))
def driver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def store_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One MLflow store for the module (its schema migration takes seconds); one experiment
    (sweep name) per test and driver."""
    return f"sqlite:///{tmp_path_factory.mktemp('contract-mlflow') / 'mlflow.db'}"


@pytest.fixture(scope="module")
def resumed(driver: str, store_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One sweep, three invocations: trials = 2, then 3 (a resume), then 3 again (nothing left
    to do); what each left in the driver's store and in MLflow."""
    root = tmp_path_factory.mktemp(f"contract-{driver}")
    cfg = tiny_sweep(name=f"resume-{driver}", driver=driver, tracking_uri=store_uri, root=root)
    out = SimpleNamespace(cfg=cfg, summaries=[], states=[], numbers=[], children=[], parents=[])
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("JENA_TRACKING_URI", raising=False)
        mp.setenv("JENA_DATA_DIR", str(root / "data-cache"))
        for total in (2, 3, 3):
            out.summaries.append(run_sweep(apply_overrides(cfg, [f"trials={total}"])))
            trials = store_trials(cfg)
            out.states.append([t.state for t in trials])
            out.numbers.append([t.number for t in trials])
            everything = runs(cfg)
            out.children.append(children(everything))
            out.parents.append(parents(everything))
    return out


# ------------------------------------------------------------------ resume up to the total
def test_resume_runs_up_to_the_total(resumed: Any) -> None:
    first, second, third = resumed.summaries
    # the driver's store: 2 trials, then 3, then still the same 3
    assert resumed.numbers == [[0, 1], [0, 1, 2], [0, 1, 2]]
    assert all(ended(s) for s in resumed.states)
    assert resumed.states[2] == resumed.states[1]
    assert resumed.states[1][:2] == resumed.states[0]  # earlier trials are kept as they were
    assert (first.finished, second.finished, third.finished) == (2, 3, 3)
    assert sum(first.counts.values()) == 2 and sum(second.counts.values()) == 1
    assert sum(third.counts.values()) == 0  # at the total: runs nothing, and says so

    # MLflow: one child run per trial, numbered on across invocations, under two parents
    kids = resumed.children[1]
    assert numbers(kids) == [0, 1, 2]
    assert len(resumed.parents[1]) == 2
    assert numbers(children(kids, first.parent_run_id)) == [0, 1]
    assert numbers(children(kids, second.parent_run_id)) == [2]
    assert numbers(resumed.children[2]) == [0, 1, 2]  # the third invocation trained nothing
    # both stores agree on every trial's end
    assert [k.data.tags[names.TAG_STATE] for k in kids] == resumed.states[1]
    assert all(r.info.status != "RUNNING" for r in runs(resumed.cfg))


# ------------------------------------------------------------------ a failing trial
def test_a_failing_trial_fails_in_both_stores_and_the_sweep_goes_on(
    driver: str, store_uri: str, in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, calls = trial_module.train, []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("disk on fire")
        return real(*args, **kwargs)

    monkeypatch.setattr(trial_module, "train", flaky)
    cfg = tiny_sweep('architecture="dense"', name=f"fail-{driver}", driver=driver,
                     tracking_uri=store_uri)  # fmt: skip
    summary = run_sweep(cfg)
    assert store_states(cfg) == ["failed", "completed", "completed"]
    assert "disk on fire" in store_trials(cfg)[0].reason
    kids = children(runs(cfg), summary.parent_run_id)
    assert [k.info.status for k in kids] == ["FAILED", "FINISHED", "FINISHED"]
    assert [k.data.tags[names.TAG_STATE] for k in kids] == ["failed", "completed", "completed"]
    assert kids[0].data.tags[names.TAG_FAILURE] == "RuntimeError: disk on fire"
    assert names.TAG_MODEL_ARTIFACT not in kids[0].data.tags
    assert summary.counts == {"completed": 2, "pruned": 0, "failed": 1}
    assert summary.finished == 3


# ------------------------------------------------------------------ Ctrl-C
def test_ctrl_c_leaves_nothing_running(
    driver: str, store_uri: str, in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: Any, on_epoch: Any = None, **kwargs: Any) -> Any:
        on_epoch(1, {"loss": 1.0, "mae": 1.0, "val_loss": 1.0, "val_mae": 3.0})
        raise KeyboardInterrupt

    monkeypatch.setattr(trial_module, "train", interrupted)
    cfg = tiny_sweep('architecture="dense"', name=f"ctrl-c-{driver}", driver=driver,
                     tracking_uri=store_uri)  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        run_sweep(cfg)
    all_runs = runs(cfg)
    assert all(r.info.status != "RUNNING" for r in all_runs)
    (parent,) = parents(all_runs)
    assert parent.info.status == "KILLED"
    (kid,) = children(all_runs, parent.info.run_id)  # the interrupted trial; nothing after it
    assert kid.info.status == "KILLED" and kid.data.tags[names.TAG_STATE] == "killed"
    client = mlflow_client(cfg)
    assert history_steps(client, kid.info.run_id, names.METRIC_VAL_MAE) == [1]  # the epoch it ran
    # the driver's store does not count it as done: failed as interrupted (lost: a copy waits
    # to run first), or left to re-run
    trial, *copy = store_trials(cfg)
    assert trial.state in ("failed", "running"), trial
    assert [c.state for c in copy] == (["waiting"] if trial.state == "failed" else []), copy
    assert trial.state == "running" or "interrupted" in trial.reason, trial


# ------------------------------------------------------------------ per-epoch curves
def test_every_completed_trial_has_per_epoch_curves(resumed: Any) -> None:
    cfg = resumed.cfg
    client = mlflow_client(cfg)
    done = [k for k in resumed.children[2] if k.data.tags[names.TAG_STATE] == "completed"]
    assert done, "at least one trial completes on this tiny space"
    for kid in done:
        epochs = int(kid.data.metrics[names.METRIC_EPOCHS])
        assert 1 <= epochs <= cfg.fidelity.max_epochs
        for key in names.EPOCH_METRICS:  # one point per epoch that ran, nothing else
            assert history_steps(client, kid.info.run_id, key) == list(range(1, epochs + 1)), key
        # the result is apart: the best epoch's val MAE, at that epoch
        (best,) = client.get_metric_history(kid.info.run_id, names.METRIC_BEST_VAL)
        assert 1 <= best.step <= epochs
        curve = {m.step: m.value for m in client.get_metric_history(kid.info.run_id, "val_mae")}
        assert best.value == pytest.approx(curve[best.step])
        assert best.value == pytest.approx(min(curve.values()))


# ------------------------------------------------------------------ parent/child layout
def test_parent_and_child_runs_layout(resumed: Any, driver: str) -> None:
    cfg, uri = resumed.cfg, resumed.cfg.storage.tracking_uri
    client = mlflow_client(cfg)
    digest = None
    for total, summary in zip((2, 3), resumed.summaries[:2], strict=True):
        parent = client.get_run(summary.parent_run_id)
        tags = parent.data.tags
        assert names.TAG_PARENT not in tags and parent.info.status == "FINISHED"
        assert tags[names.TAG_RUN_TYPE] == names.RUN_SWEEP
        assert tags[names.TAG_DRIVER] == driver and tags[names.TAG_SWEEP] == cfg.name
        assert tags[names.TAG_PRESET] == "book2" and names.TAG_DATA_SOURCE in tags
        digest = digest or tags[names.TAG_DATA_DIGEST]
        assert tags[names.TAG_DATA_DIGEST] == digest
        arts = {a.path for a in client.list_artifacts(parent.info.run_id)}
        assert "sweep.json" in arts  # the effective definition travels with the run
        definition = tracking.sweep_definition(uri, parent.info.run_id)
        assert definition is not None
        assert (definition["driver"], definition["trials"]) == (driver, total)
        metrics = parent.data.metrics
        assert metrics[names.METRIC_BASELINE_VAL] == pytest.approx(summary.baseline_val_mae)
        best = summary.best
        assert best is not None
        assert tags[names.TAG_BEST_NUMBER] == str(best.number)
        assert metrics[names.METRIC_BEST_VAL] == pytest.approx(best.val_mae)

    parent_ids = {s.parent_run_id for s in resumed.summaries[:2]}
    kids = resumed.children[2]
    for kid in kids:
        n, tags = int(kid.data.tags[names.TAG_TRIAL_NUMBER]), kid.data.tags
        assert re.fullmatch(rf"t{n:04d}(-\S+)?", kid.info.run_name), kid.info.run_name
        assert tags[names.TAG_RUN_TYPE] == names.RUN_TRIAL and tags[names.TAG_PARENT] in parent_ids
        assert tags[names.TAG_DRIVER] == driver
        assert kid.info.status == ENDED_STATUS[tags[names.TAG_STATE]]
        if tags[names.TAG_STATE] == "failed":  # an invalid point: fails before training
            assert tags[names.TAG_FAILURE]
            continue
        for tag in TRIAL_TAGS:
            assert tags.get(tag), tag
        assert tags[names.TAG_SWEEP] == cfg.name and tags[names.TAG_DATA_DIGEST] == digest
        assert tags[names.TAG_SEED] == str(cfg.seed)
        assert kid.data.params["sequence_length"] == "48"  # 48 h, one step an hour

    done = [k for k in kids if k.data.tags[names.TAG_STATE] == "completed"]
    assert done, "at least one trial completes on this tiny space"
    for kid in done:
        assert math.isfinite(kid.data.metrics[names.METRIC_BEST_VAL])
        assert names.METRIC_VAL_SKILL in kid.data.metrics
        model, data_config = tracking.load_trial_model(uri, kid.info.run_id)
        assert model.count_params() == kid.data.metrics[names.METRIC_PARAM_COUNT]
        assert model.output_shape[-1] == 1 and data_config["sequence_length"] == 48

    # the best: the lowest val MAE of every completed trial, by the driver and in MLflow
    winner = min(done, key=lambda k: k.data.metrics[names.METRIC_BEST_VAL])
    best = resumed.summaries[1].best
    assert best.number == int(winner.data.tags[names.TAG_TRIAL_NUMBER])
    assert best.val_mae == pytest.approx(winner.data.metrics[names.METRIC_BEST_VAL])
    found = get_driver(cfg).best()
    assert found == best
