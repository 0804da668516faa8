"""Optuna-only behaviour on tiny synthetic data, tracked in a real MLflow store: workers,
pruning, NSGA-II, grids, every sampler and pruner, the data check, stale runs. What every driver
does (resume, failures, Ctrl-C, curves, the run layout) is in test_driver_contract.py."""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
import pytest
from conftest import children, mlflow_client, offline_context, runs, tiny_sweep, tracking_uri_of
from optuna.trial import TrialState

import sweeps.optuna._loop as loop_module
import sweeps.trial as trial_module
from jena.tracking import LOST_PREFIX, trials_frame
from sweeps import apply_overrides, run_sweep
from sweeps.optuna import OptunaDriver, SweepStudy


def study(cfg):
    return SweepStudy(cfg).study


def test_two_workers_share_one_study_and_one_parent(in_tmp):
    cfg = tiny_sweep("trials=4", "workers=2", 'architecture="dense"')
    summary = run_sweep(cfg)
    s = study(cfg)
    assert len(s.trials) == 4  # the budget holds with two workers
    pids = {t.user_attrs["pid"] for t in s.trials}
    assert len(pids) == 2
    kids = children(runs(), summary.parent_run_id)
    assert len(kids) == 4
    assert all(k.info.status == "FINISHED" for k in kids)


def test_ctrl_c_fails_the_interrupted_trial_in_the_study(
    in_tmp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Optuna's own record of a Ctrl-C: the trial ends FAILED as lost, "interrupted" (not
    counted; a copy waits to run first), not left RUNNING to hold a place in the budget
    (MLflow's side: test_driver_contract.py; real signals: test_signals.py)."""

    def interrupted(ctx: Any, number: int, values: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(loop_module, "run_trial", interrupted)
    cfg = tiny_sweep()
    with pytest.raises(KeyboardInterrupt):
        OptunaDriver(cfg).run(offline_context(cfg), None)
    trial, copy = study(cfg).trials
    assert trial.state == TrialState.FAIL and trial.user_attrs["lost"] == "interrupted"
    assert trial.user_attrs["fail_reason"] == f"{LOST_PREFIX}interrupted"
    assert copy.state == TrialState.WAITING and copy.user_attrs["retry_of"] == trial.number


def test_pruned_trials_are_pruned_in_optuna_and_mlflow(in_tmp):
    cfg = tiny_sweep(
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

    def worse(config, cache, fidelity, *, on_epoch=None, **kwargs):
        n = worse.calls = getattr(worse, "calls", 0) + 1

        def hook(epoch, metrics):
            on_epoch(epoch, {**metrics, "val_mae": metrics["val_mae"] + (0 if n == 1 else 100)})

        return real(config, cache, fidelity, on_epoch=hook, **kwargs)

    trial_module.train, saved = worse, trial_module.train
    try:
        run_sweep(cfg)
    finally:
        trial_module.train = saved
    s = study(cfg)
    assert s.trials[0].state == TrialState.COMPLETE
    assert all(t.state == TrialState.PRUNED for t in s.trials[1:])
    frame = trials_frame(tracking_uri_of(cfg), "tiny")
    assert sorted(frame["state"]) == ["completed", "pruned", "pruned", "pruned"]


def test_multi_objective_nsga2(in_tmp):
    cfg = tiny_sweep(
        'sampler.type="nsga2"',
        'objectives=["val_mae", "param_count"]',
        "trials=3",
        'architecture="dense"',
    )
    run_sweep(cfg)
    s = study(cfg)
    done = [t for t in s.trials if t.state == TrialState.COMPLETE]
    assert done and all(len(t.values) == 2 for t in done)
    assert len(s.best_trials) >= 1


def test_book_presets_grid(in_tmp):
    cfg = tiny_sweep(
        'sampler.type="grid"',
        'space.presets=["dense", "lstm"]',
        "space.include=[]",
        "trials=2",
        "fidelity.max_epochs=1",
    )
    cfg.space.fixed = {}
    run_sweep(cfg)
    frame = trials_frame(tracking_uri_of(cfg), "tiny")
    assert sorted(frame["tags.model_preset"]) == ["dense", "lstm"]
    assert set(frame["state"]) == {"completed"}


SAMPLERS = {
    "tpe": optuna.samplers.TPESampler,
    "cmaes": optuna.samplers.CmaEsSampler,
    "gp": optuna.samplers.GPSampler,
    "grid": optuna.samplers.GridSampler,
}
PRUNERS = {
    "hyperband": optuna.pruners.HyperbandPruner,
    "median": optuna.pruners.MedianPruner,
    "halving": optuna.pruners.SuccessiveHalvingPruner,
    "none": optuna.pruners.NopPruner,
}


@pytest.mark.parametrize(
    ("sampler", "pruner"),
    [("tpe", "hyperband"), ("cmaes", "halving"), ("gp", "median"), ("grid", "none")],
)
def test_every_sampler_and_pruner_runs(in_tmp, sampler, pruner, monkeypatch):
    """The sampler and pruner the sweep names are the ones Optuna asks: spies on their classes
    count each trial's ``before_trial`` and each pruning decision."""
    if sampler == "gp":
        pytest.importorskip("torch", reason="Optuna's GPSampler needs PyTorch (jena[gp])")
    calls: dict[str, int] = {"sampler": 0, "pruner": 0}

    def spy(cls: type, method: str, key: str) -> None:
        real = getattr(cls, method)

        def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
            if type(self) is cls:
                calls[key] += 1
            return real(self, *args, **kwargs)

        monkeypatch.setattr(cls, method, counted)

    spy(SAMPLERS[sampler], "before_trial", "sampler")
    spy(PRUNERS[pruner], "prune", "pruner")
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
    cfg = tiny_sweep(*sets)
    summary = run_sweep(cfg)
    assert summary.finished == 2
    assert calls["sampler"] >= 2  # once per trial at least
    assert calls["pruner"] >= 2  # each trial's first epoch (of 2) was put to the pruner
    s = study(cfg)
    assert all(t.state == TrialState.COMPLETE for t in s.trials)
    if sampler == "grid":
        assert sorted(t.params["learning_rate"] for t in s.trials) == [0.001, 0.003]


def test_grid_needs_values_for_continuous_ranges(in_tmp):
    from jena.errors import ConfigError

    cfg = tiny_sweep('sampler.type="grid"')
    with pytest.raises(ConfigError, match="grid sampler: give values for 'units'"):
        run_sweep(cfg)


def test_a_sweep_name_keeps_its_data(in_tmp):
    from jena.errors import ConfigError

    cfg = tiny_sweep("trials=1", 'architecture="dense"')
    run_sweep(cfg)
    other = apply_overrides(cfg, ['data.source="synthetic:24000:4"', "trials=2"])
    with pytest.raises(ConfigError, match=r"already holds trials on data synthetic.*--name NEW"):
        run_sweep(other)
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
    run_sweep(tiny_sweep("trials=1", 'architecture="dense"'))
    closed = mlflow_client().get_run(orphan.info.run_id)
    assert closed.info.status == "KILLED"
    assert closed.data.tags["failure_reason"] == "stale: its process died"
    assert all(r.info.status != "RUNNING" for r in runs())


def test_a_sweep_starts_with_its_seasons_and_the_linear_reference(in_tmp):
    """A chronological split of a short record (5.5 months) is said to mix seasons, with what
    to use instead; the ridge reference is said, logged on the parent run and in the summary;
    the blocked split of the same record says nothing about seasons."""
    from jena.data import load
    from jena.linear import fit_ridge
    from jena.prepare import prepare
    from sweeps.runner import QuietView

    class Notes(QuietView):
        def __init__(self) -> None:
            self.lines: list[str] = []

        def note(self, line: str) -> None:
            self.lines.append(line)

    seen = Notes()
    summary = run_sweep(tiny_sweep("trials=1", 'architecture="dense"'), seen)
    season = [n for n in seen.lines if "puts the splits in different seasons" in n]
    assert len(season) == 1 and "--set data.preset=blocked" in season[0]
    (ridge,) = [n for n in seen.lines if n.startswith("ridge (linear reference) val MAE")]
    # the ridge on the sweep's validation slice, the targets every trial is scored on: two
    # batches of 256 spread evenly over the split's targets (from 858 rows into it), by hand
    p = prepare(load("synthetic:24000:3"), "book2")
    lo, hi = p.bounds.val
    every = np.arange(lo + 858, hi)
    chosen = every[np.linspace(0, len(every) - 1, 512).round().astype(int)]
    expected = float(np.mean(np.abs(fit_ridge(p).predict(p, chosen - 144) - p.temperature[chosen])))
    assert f"{expected:.3f} °C" in ridge and "the same 512 val targets" in ridge
    (parent,) = [r for r in runs() if "mlflow.parentRunId" not in r.data.tags]
    assert parent.data.metrics["ridge_val_mae"] == pytest.approx(expected)
    assert parent.data.tags["season_note"] == season[0].removeprefix("note: ").split(" (in a")[0]
    assert summary.reference_val_mae == pytest.approx(expected)

    blocked = Notes()
    run_sweep(tiny_sweep("trials=1", 'architecture="dense"', 'data.preset="blocked"',
                         name="blocked"), blocked)  # fmt: skip
    assert not any("seasons" in n for n in blocked.lines)
    assert any(n.startswith("ridge (linear reference) val MAE") for n in blocked.lines)
