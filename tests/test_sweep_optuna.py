"""End to end: Optuna sweeps on tiny synthetic data, tracked in a real MLflow store."""

from __future__ import annotations

import math

import mlflow
import optuna
import pytest
from optuna.trial import TrialState

import sweeps.trial as trial_module
from jena.tracking import default_tracking_uri, load_trial_model, trials_frame
from sweeps import apply_overrides, optuna_driver, run_sweep
from sweeps import config as sweep_config

TINY_SWEEP = """
name = "tiny"
trials = 3
seed = 1
[data]
source = "synthetic:24000:3"
[fidelity]
max_epochs = 2
steps_per_epoch = 2
validation_steps = 2
[sampler]
type = "random"
[space]
include = ["architecture", "units", "learning_rate"]
fixed = { sequence_length_hours = 48, normalise_target = true, rnn_layers = 1 }
"""


def tiny(tmp_path, *sets: str):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_SWEEP)
    cfg = sweep_config.load(path)
    # keep the space to cheap architectures
    cfg = apply_overrides(cfg, list(sets))
    return cfg


def uri():
    # absolute: MLflow caches database engines by URI, and every test runs in its own directory
    return default_tracking_uri()


def client():
    return mlflow.MlflowClient(uri())


def runs(experiment="tiny"):
    c = client()
    exp = c.get_experiment_by_name(experiment)
    return c.search_runs([exp.experiment_id], max_results=1000)


def parents(all_runs):
    return [r for r in all_runs if "mlflow.parentRunId" not in r.data.tags]


def children(all_runs, parent_id=None):
    return [
        r
        for r in all_runs
        if "mlflow.parentRunId" in r.data.tags
        and (parent_id is None or r.data.tags["mlflow.parentRunId"] == parent_id)
    ]


def study(cfg):
    return optuna.load_study(study_name=cfg.name, storage=optuna_driver.storage(cfg))


def test_sweep_end_to_end_and_resume(in_tmp):
    cfg = tiny(in_tmp)
    summary = run_sweep(cfg, quiet=True)
    s = study(cfg)
    assert len(s.trials) == 3
    assert all(
        t.state in (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED) for t in s.trials
    )

    all_runs = runs()
    (parent,) = parents(all_runs)
    assert parent.info.run_id == summary["parent_run_id"]
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["baseline_val_mae"] == pytest.approx(summary["baseline_val_mae"])
    kids = children(all_runs, parent.info.run_id)
    assert sorted(int(k.data.tags["trial_number"]) for k in kids) == [0, 1, 2]
    arts = [a.path for a in client().list_artifacts(parent.info.run_id)]
    assert any(a.startswith("sweep") for a in arts)  # the sweep definition travels with it

    done = [k for k in kids if k.data.tags["state"] == "completed"]
    assert done, "at least one trial completes on this tiny space"
    for k in done:
        assert k.data.tags["driver"] == "optuna"
        for tag in (
            "architecture",
            "data_source",
            "data_digest",
            "preset",
            "backend",
            "seed",
            "git_commit",
        ):
            assert tag in k.data.tags, tag
        assert k.data.params["sequence_length"] == "48"  # 48 h, one step an hour
        hist = client().get_metric_history(k.info.run_id, "val_loss")
        assert [m.step for m in hist] == [1, 2]
        assert math.isfinite(k.data.metrics["val_mae"]) and "val_skill" in k.data.metrics
        model, data_config = load_trial_model(uri(), k.info.run_id)
        assert model.count_params() == k.data.metrics["param_count"]
        assert data_config["sequence_length"] == 48
    best = summary["best"]
    assert best["val_mae"] == pytest.approx(min(k.data.metrics["val_mae"] for k in done))
    assert parent.data.tags["best_trial_number"] == str(best["number"])

    # resume: same command, higher total → earlier trials kept, numbering continues
    run_sweep(apply_overrides(cfg, ["trials=5"]), quiet=True)
    s = study(cfg)
    assert [t.number for t in s.trials] == [0, 1, 2, 3, 4]
    all_runs = runs()
    assert len(parents(all_runs)) == 2
    assert sorted(int(k.data.tags["trial_number"]) for k in children(all_runs)) == [0, 1, 2, 3, 4]
    # and a re-run at the total does nothing but say so
    again = run_sweep(apply_overrides(cfg, ["trials=5"]), quiet=True)
    assert again["finished"] == 5 and sum(again["counts"].values()) == 0


def test_two_workers_share_one_study_and_one_parent(in_tmp):
    cfg = tiny(in_tmp, "trials=4", "workers=2", 'architecture="dense"')
    summary = run_sweep(cfg, quiet=True)
    s = study(cfg)
    assert len(s.trials) == 4  # the budget holds with two workers
    pids = {t.user_attrs["pid"] for t in s.trials}
    assert len(pids) == 2
    kids = children(runs(), summary["parent_run_id"])
    assert len(kids) == 4
    assert all(k.info.status == "FINISHED" for k in kids)


def test_a_failing_trial_is_failed_everywhere_and_the_sweep_goes_on(in_tmp, monkeypatch):
    real_train = trial_module.train
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("disk on fire")
        return real_train(*args, **kwargs)

    monkeypatch.setattr(trial_module, "train", flaky)
    cfg = tiny(in_tmp, 'architecture="dense"')
    run_sweep(cfg, quiet=True)
    s = study(cfg)
    states = [t.state for t in s.trials]
    assert states[0] == TrialState.FAIL and states[1:] == [TrialState.COMPLETE] * 2
    assert "disk on fire" in s.trials[0].user_attrs["fail_reason"]
    failed = [k for k in children(runs()) if k.data.tags["trial_number"] == "0"]
    assert failed[0].info.status == "FAILED"
    assert failed[0].data.tags["state"] == "failed"
    assert "RuntimeError: disk on fire" in failed[0].data.tags["failure_reason"]


def test_ctrl_c_leaves_nothing_running(in_tmp, monkeypatch):
    def interrupted(*args, on_epoch=None, **kwargs):
        on_epoch(1, {"loss": 1.0, "mae": 1.0, "val_loss": 1.0, "val_mae": 3.0})
        raise KeyboardInterrupt

    monkeypatch.setattr(trial_module, "train", interrupted)
    cfg = tiny(in_tmp)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(cfg, quiet=True)
    all_runs = runs()
    assert all(r.info.status != "RUNNING" for r in all_runs)
    (parent,) = parents(all_runs)
    assert parent.info.status == "KILLED"
    kids = children(all_runs)  # an invalid point may come first: it fails before training
    assert [k.info.status for k in kids].count("KILLED") == 1
    assert {k.info.status for k in kids} <= {"KILLED", "FAILED"}
    last = study(cfg).trials[-1]
    assert last.state == TrialState.FAIL and "interrupted" in last.user_attrs["fail_reason"]
    assert all(t.state == TrialState.FAIL for t in study(cfg).trials)


def test_pruned_trials_are_pruned_in_optuna_and_mlflow(in_tmp):
    cfg = tiny(
        in_tmp,
        "trials=4",
        "fidelity.max_epochs=3",
        'pruner.type="median"',
        "pruner.options.n_startup_trials=1",
        "pruner.options.n_warmup_steps=0",
        'architecture="dense"',
        "learning_rate=0.0001",
    )
    # Force pruning deterministically: every epoch after the first trial looks worse.
    real = trial_module.train

    def worse(config, cache, fidelity, *, on_epoch=None, on_batch=None):
        n = worse.calls = getattr(worse, "calls", 0) + 1

        def hook(epoch, metrics):
            on_epoch(epoch, {**metrics, "val_mae": metrics["val_mae"] + (0 if n == 1 else 100)})

        return real(config, cache, fidelity, on_epoch=hook, on_batch=on_batch)

    trial_module.train, saved = worse, trial_module.train
    try:
        run_sweep(cfg, quiet=True)
    finally:
        trial_module.train = saved
    s = study(cfg)
    assert s.trials[0].state == TrialState.COMPLETE
    assert all(t.state == TrialState.PRUNED for t in s.trials[1:])
    frame = trials_frame(uri(), "tiny")
    assert sorted(frame["state"]) == ["completed", "pruned", "pruned", "pruned"]


def test_multi_objective_nsga2(in_tmp):
    cfg = tiny(
        in_tmp,
        'sampler.type="nsga2"',
        'objectives=["val_mae", "param_count"]',
        "trials=3",
        'architecture="dense"',
    )
    run_sweep(cfg, quiet=True)
    s = study(cfg)
    done = [t for t in s.trials if t.state == TrialState.COMPLETE]
    assert done and all(len(t.values) == 2 for t in done)
    assert len(s.best_trials) >= 1


def test_book_presets_grid(in_tmp):
    cfg = tiny(
        in_tmp,
        'sampler.type="grid"',
        'space.presets=["dense", "lstm"]',
        "space.include=[]",
        "trials=2",
        "fidelity.max_epochs=1",
    )
    cfg.space.fixed = {}
    run_sweep(cfg, quiet=True)
    frame = trials_frame(uri(), "tiny")
    assert sorted(frame["tags.model_preset"]) == ["dense", "lstm"]
    assert set(frame["state"]) == {"completed"}


@pytest.mark.parametrize(
    ("sampler", "pruner"),
    [("tpe", "hyperband"), ("cmaes", "halving"), ("gp", "median"), ("grid", "none")],
)
def test_every_sampler_and_pruner_runs(in_tmp, sampler, pruner):
    if sampler == "gp":
        pytest.importorskip("torch", reason="Optuna's GPSampler needs PyTorch (jena[gp])")
    sets = [
        f'sampler.type="{sampler}"',
        f'pruner.type="{pruner}"',
        "trials=2",
        'architecture="dense"',
        'space.include=["learning_rate", "head_dropout"]',
    ]
    if sampler == "grid":
        sets += [
            "sampler.options.grid.learning_rate=[0.001, 0.003]",
            "sampler.options.grid.head_dropout=[0.0]",
        ]
    cfg = tiny(in_tmp, *sets)
    summary = run_sweep(cfg, quiet=True)
    assert summary["finished"] == 2
    s = study(cfg)
    assert all(t.state == TrialState.COMPLETE for t in s.trials)
    if sampler == "grid":
        assert sorted(t.params["learning_rate"] for t in s.trials) == [0.001, 0.003]


def test_grid_needs_values_for_continuous_ranges(in_tmp):
    from jena.errors import ConfigError

    cfg = tiny(in_tmp, 'sampler.type="grid"')
    with pytest.raises(ConfigError, match="grid sampler: give values for 'units'"):
        run_sweep(cfg, quiet=True)


def test_a_sweep_name_keeps_its_data(in_tmp):
    from jena.errors import ConfigError

    cfg = tiny(in_tmp, "trials=1", 'architecture="dense"')
    run_sweep(cfg, quiet=True)
    other = apply_overrides(cfg, ['data.source="synthetic:24000:4"', "trials=2"])
    with pytest.raises(ConfigError, match=r"already holds trials on data synthetic.*--name NEW"):
        run_sweep(other, quiet=True)
    assert len(study(cfg).trials) == 1  # nothing was added to the study


def test_runs_of_a_dead_process_are_closed_at_the_next_start(in_tmp):
    import subprocess
    import sys

    from jena.tracking import Tracker

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    tracker = Tracker(experiment="tiny")
    orphan = tracker.client.create_run(tracker.experiment_id, tags={"pid": str(dead.pid)})
    tracker.client.set_tag(orphan.info.run_id, "host", __import__("socket").gethostname())
    run_sweep(tiny(in_tmp, "trials=1", 'architecture="dense"'), quiet=True)
    closed = client().get_run(orphan.info.run_id)
    assert closed.info.status == "KILLED"
    assert closed.data.tags["failure_reason"] == "stale: its process died"
    assert all(r.info.status != "RUNNING" for r in runs())
