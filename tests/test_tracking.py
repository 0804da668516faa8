"""The MLflow convention of jena.tracking, against a real SQLite store under tmp_path."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest

from jena import tracking
from jena.errors import ConfigError
from jena.tracking import Tracker, default_tracking_uri, load_trial_model, trials_frame


@pytest.fixture(scope="module")
def store_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite store per module: its schema migration takes seconds."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def tracker(store_uri: str, request: pytest.FixtureRequest) -> Tracker:
    """A fresh experiment (sweep name) per test."""
    return Tracker(store_uri, experiment=request.node.name)


def _client(tracker: Tracker) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=tracker.tracking_uri)


def _children(tracker: Tracker, parent_run_id: str) -> list[Any]:
    return list(
        _client(tracker).search_runs(
            [tracker.experiment_id], f"tags.mlflow.parentRunId = '{parent_run_id}'"
        )
    )


def test_default_tracking_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(tracking.ENV_TRACKING_URI, raising=False)
    assert default_tracking_uri() == f"sqlite:///{tmp_path.resolve()}/mlruns/mlflow.db"
    monkeypatch.setenv(tracking.ENV_TRACKING_URI, "sqlite:///elsewhere/x.db")
    assert default_tracking_uri() == f"sqlite:///{tmp_path.resolve()}/elsewhere/x.db"
    monkeypatch.setenv(tracking.ENV_TRACKING_URI, "postgresql://u@db/mlflow")
    assert default_tracking_uri() == "postgresql://u@db/mlflow"


def test_experiment_artifacts_next_to_database(tracker: Tracker, store_uri: str) -> None:
    experiment = _client(tracker).get_experiment(tracker.experiment_id)
    db = Path(store_uri.removeprefix("sqlite:///"))
    assert experiment.name == tracker.experiment
    assert experiment.artifact_location == (db.parent / "artifacts").as_uri()
    # The same name again: the same experiment.
    assert Tracker(store_uri, tracker.experiment).experiment_id == tracker.experiment_id


def test_parent_and_nested_children(tracker: Tracker) -> None:
    definition = {"name": "demo", "trials": 2, "space": {"units": [16, 32]}}
    with tracker.start_sweep(
        definition=definition, params={"n_trials": 2, "sampler": "tpe"}, tags={"driver": "optuna"}
    ) as sweep:
        for number in range(2):
            params = {"units": 16 * (number + 1), "optimizer": {"name": "adam", "lr": 1e-3}}
            with tracker.trial(sweep.run_id, number, params, {"driver": "optuna"}) as trial:
                trial.log_epoch(0, {"loss": 1.0, "val_mae": 0.5})
                trial.finish("completed", val_mae=0.5 - number / 10, val_skill=0.1, param_count=99)
        sweep.log_best(1, {"units": 32}, 0.4)

    client = _client(tracker)
    parent = client.get_run(sweep.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["run_type"] == "sweep"
    assert parent.data.params == {"n_trials": "2", "sampler": "tpe"}
    assert parent.data.tags["best_trial_number"] == "1"
    assert parent.data.tags["best.units"] == "32"
    assert parent.data.metrics["best_val_mae"] == pytest.approx(0.4)
    assert parent.data.tags["trials_completed"] == "2"  # a tag: the UI charts trials only
    assert set(parent.data.metrics) == {"best_val_mae"}
    artifacts = {a.path for a in client.list_artifacts(sweep.run_id)}
    assert {"sweep.json", "best_trial.json"} <= artifacts
    logged = json.loads(Path(client.download_artifacts(sweep.run_id, "sweep.json")).read_text())
    assert logged == definition

    children = sorted(_children(tracker, sweep.run_id), key=lambda r: r.info.run_name)
    assert [c.info.run_name for c in children] == ["trial-0000", "trial-0001"]
    for number, child in enumerate(children):
        tags = child.data.tags
        assert child.info.status == "FINISHED"
        assert tags["state"] == "completed"
        assert tags["trial_number"] == str(number)
        assert tags["run_type"] == "trial"
        assert tags["driver"] == "optuna"
        assert {"backend", "git_commit", "jena_version", "host"} <= set(tags)
        assert child.data.params["units"] == str(16 * (number + 1))
        assert child.data.params["optimizer.lr"] == "0.001"
        assert child.data.metrics["val_mae"] == pytest.approx(0.5)  # the one epoch logged
        assert child.data.metrics["best_val_mae"] == pytest.approx(0.5 - number / 10)
        assert child.data.metrics["param_count"] == 99
        assert child.data.metrics["duration_s"] >= 0


def test_sweep_definition_from_toml(tracker: Tracker, tmp_path: Path) -> None:
    text = 'name = "demo"\n[space]\nunits = [16, 32]\n'
    (tmp_path / "demo.toml").write_text(text)
    client = _client(tracker)
    for definition in (tmp_path / "demo.toml", text):
        with tracker.start_sweep(definition=definition) as sweep:
            pass
        assert Path(client.download_artifacts(sweep.run_id, "sweep.toml")).read_text() == text
    with pytest.raises(FileNotFoundError):
        tracker.start_sweep(definition=tmp_path / "missing.toml")


def test_epoch_history_is_batched(tracker: Tracker, monkeypatch: pytest.MonkeyPatch) -> None:
    sweep = tracker.start_sweep(params={})
    trial = tracker.trial(sweep.run_id, 7, {"units": 8}, flush_every=10, flush_interval_s=1e9)
    client = tracker.client
    calls: list[int] = []
    real_log_batch: Callable[..., Any] = client.log_batch

    def spy(run_id: str, metrics: Any = (), params: Any = (), tags: Any = (), **kw: Any) -> Any:
        calls.append(len(metrics))
        return real_log_batch(run_id, metrics=metrics, params=params, tags=tags, **kw)

    monkeypatch.setattr(client, "log_batch", spy)
    keys = ("loss", "mae", "val_loss", "val_mae")
    for epoch in range(20):
        trial.log_epoch(epoch, {k: 1.0 / (epoch + 1) + i for i, k in enumerate(keys)})
    assert calls == [40, 40]  # two flushes of 10 epochs x 4 metrics, nothing per epoch
    trial.finish("completed", val_mae=3.01, val_skill=0.25)
    assert len(calls) == 3  # final metrics + state tag: one more batch
    monkeypatch.undo()
    sweep.finish()

    verify = _client(tracker)
    for key in keys[:3]:
        history = verify.get_metric_history(trial.run_id, key)
        assert sorted(m.step for m in history) == list(range(20))
    val_mae = sorted(verify.get_metric_history(trial.run_id, "val_mae"), key=lambda m: m.step)
    assert [m.step for m in val_mae] == list(range(20))  # one point per epoch, no more
    assert val_mae[3].value == pytest.approx(1.0 / 4 + 3)
    run = verify.get_run(trial.run_id)
    assert run.data.metrics["best_val_mae"] == pytest.approx(3.01)  # the result, apart
    assert run.data.metrics["epochs"] == 20
    assert run.info.run_name == "trial-0007"


def test_non_finite_metrics_are_skipped(tracker: Tracker) -> None:
    with tracker.start_sweep() as sweep, tracker.trial(sweep.run_id, 0, {}) as trial:
        trial.log_epoch(0, {"loss": 1.0, "val_loss": 2.0})
        trial.log_epoch(1, {"loss": math.nan, "val_loss": math.inf})
        trial.log_epoch(2, {"loss": float("nan"), "val_loss": np.float32("nan")})
        trial.finish("failed", val_mae=math.nan, reason="diverged")
    run = _client(tracker).get_run(trial.run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["nan_at_epoch"] == "1"
    assert run.data.tags["failure_reason"] == "diverged"
    assert "val_mae" not in run.data.metrics
    assert [m.step for m in _client(tracker).get_metric_history(trial.run_id, "loss")] == [0]


def test_exception_ends_failed(tracker: Tracker) -> None:
    with (
        pytest.raises(ValueError, match="boom"),
        tracker.start_sweep() as sweep,
        tracker.trial(sweep.run_id, 3, {"units": 4}) as trial,
    ):
        trial.log_epoch(0, {"loss": 1.0})
        raise ValueError("boom")
    client = _client(tracker)
    child = client.get_run(trial.run_id)
    assert child.info.status == "FAILED"
    assert child.data.tags["state"] == "failed"
    assert child.data.tags["failure_reason"] == "ValueError: boom"
    assert [m.value for m in client.get_metric_history(trial.run_id, "loss")] == [1.0]
    parent = client.get_run(sweep.run_id)
    assert parent.info.status == "FAILED"
    assert parent.data.tags["failure_reason"] == "ValueError: boom"


def test_keyboard_interrupt_ends_killed(tracker: Tracker) -> None:
    with (
        pytest.raises(KeyboardInterrupt),
        tracker.start_sweep() as sweep,
        tracker.trial(sweep.run_id, 0, {}) as trial,
    ):
        trial.log_epoch(0, {"loss": 1.0})
        raise KeyboardInterrupt
    client = _client(tracker)
    assert client.get_run(trial.run_id).info.status == "KILLED"
    assert client.get_run(trial.run_id).data.tags["state"] == "killed"
    assert client.get_run(sweep.run_id).info.status == "KILLED"


def test_explicit_finish_wins_and_orphans_are_closed(tracker: Tracker) -> None:
    class Pruned(Exception):
        pass

    with tracker.start_sweep() as sweep:
        with pytest.raises(Pruned), tracker.trial(sweep.run_id, 0, {}) as pruned:
            pruned.log_epoch(0, {"val_mae": 0.9})
            pruned.finish("pruned", val_mae=0.9)
            raise Pruned
        orphan = tracker.trial(sweep.run_id, 1, {})  # its worker "dies": never closed
        orphan.log_epoch(0, {"val_mae": 0.8})
    client = _client(tracker)
    run = client.get_run(pruned.run_id)
    assert (run.info.status, run.data.tags["state"]) == ("FINISHED", "pruned")
    assert [m.step for m in client.get_metric_history(pruned.run_id, "val_mae")] == [0]
    run = client.get_run(orphan.run_id)
    assert (run.info.status, run.data.tags["state"]) == ("KILLED", "killed")
    tags = client.get_run(sweep.run_id).data.tags
    assert (tags["trials_pruned"], tags["trials_killed"]) == ("1", "1")


def test_awkward_params_and_tags(tracker: Tracker) -> None:
    params = {"a b/c?d": 1, "long": "x" * 7000, "layers": [64, 32], "flag": True, "none": None}
    with tracker.start_sweep() as sweep, tracker.trial(sweep.run_id, 0, params) as trial:
        trial.set_tags({"data digest": "abc", "ignored": None})
    run = _client(tracker).get_run(trial.run_id)
    assert run.data.params["a b/c_d"] == "1"
    assert len(run.data.params["long"]) == 6000
    assert run.data.params["layers"] == "[64, 32]"
    assert run.data.params["flag"] == "True"
    assert run.data.params["none"] == "None"
    assert run.data.tags["data digest"] == "abc"
    assert "ignored" not in run.data.tags


def test_model_roundtrip(tracker: Tracker) -> None:
    import keras

    model = keras.Sequential([keras.Input((5, 3)), keras.layers.Flatten(), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    config = {"mean": np.arange(3, dtype="float32"), "std": np.ones(3), "lookback": 5}
    with tracker.start_sweep() as sweep, tracker.trial(sweep.run_id, 0, {}) as trial:
        trial.log_model(model, config)
        trial.finish("completed", val_mae=0.1, param_count=model.count_params())
    loaded, loaded_config = load_trial_model(tracker.tracking_uri, trial.run_id)
    x = np.random.default_rng(0).normal(size=(4, 5, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded_config == {"mean": [0.0, 1.0, 2.0], "std": [1.0, 1.0, 1.0], "lookback": 5}
    assert _client(tracker).get_run(trial.run_id).data.tags["model_artifact"] == "model/model.keras"
    with pytest.raises(ConfigError, match="no logged model"):
        load_trial_model(tracker.tracking_uri, sweep.run_id)


def _worker(fresh_uri: str, uri: str, experiment: str, parent: str, numbers: list[int]) -> None:
    Tracker(fresh_uri, "race")  # both processes create a brand-new store at once
    tracker = Tracker(uri, experiment)
    for number in numbers:
        with tracker.trial(parent, number, {"units": number}, {"driver": "keras_tuner"}) as trial:
            for epoch in range(3):
                trial.log_epoch(epoch, {"loss": 1.0 / (epoch + 1), "val_mae": number + 0.5})
            trial.finish("completed", val_mae=number + 0.5)


def test_two_processes_log_children_to_one_parent(tracker: Tracker, tmp_path: Path) -> None:
    fresh_uri = f"sqlite:///{tmp_path / 'fresh' / 'mlflow.db'}"
    context = multiprocessing.get_context("spawn")
    with tracker.start_sweep(tags={"driver": "keras_tuner"}) as sweep:
        workers = [
            context.Process(
                target=_worker,
                args=(fresh_uri, tracker.tracking_uri, tracker.experiment, sweep.run_id, numbers),
            )
            for numbers in ([0, 2], [1, 3])
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
        assert [w.exitcode for w in workers] == [0, 0]
    children = _children(tracker, sweep.run_id)
    assert sorted(int(c.data.tags["trial_number"]) for c in children) == [0, 1, 2, 3]
    assert {c.info.status for c in children} == {"FINISHED"}
    client = _client(tracker)
    for child in children:
        assert len(client.get_metric_history(child.info.run_id, "loss")) == 3
    assert client.get_run(sweep.run_id).data.tags["trials_completed"] == "4"
    assert Tracker(fresh_uri, "race").experiment_id == Tracker(fresh_uri, "race").experiment_id


def test_trials_frame_ranks_across_invocations(tracker: Tracker) -> None:
    results: dict[str, list[float | None]] = {"optuna": [0.7, 0.3], "keras_tuner": [0.5, None]}
    parents = []
    for driver, maes in results.items():
        with tracker.start_sweep(tags={"driver": driver}) as sweep:
            parents.append(sweep.run_id)
            for number, mae in enumerate(maes):
                with tracker.trial(sweep.run_id, number, {"lr": 0.01}, {"driver": driver}) as t:
                    if mae is None:
                        t.finish("failed", reason="out of memory")
                    else:
                        t.finish("completed", val_mae=mae, val_skill=1 - mae)

    frame = trials_frame(tracker.tracking_uri, tracker.experiment)
    assert list(frame["val_mae"].iloc[:3]) == pytest.approx([0.3, 0.5, 0.7])
    assert math.isnan(frame["val_mae"].iloc[3])
    assert list(frame["driver"]) == ["optuna", "keras_tuner", "optuna", "keras_tuner"]
    assert list(frame["state"]) == ["completed"] * 3 + ["failed"]
    assert list(frame["number"]) == [1, 0, 0, 1]
    assert set(frame["parent_run_id"]) == set(parents)
    assert frame["params.lr"].eq("0.01").all()
    assert frame["val_skill"].iloc[0] == pytest.approx(0.7)
    assert frame["tags.failure_reason"].iloc[3] == "out of memory"
    with pytest.raises(ConfigError, match="no sweep"):
        trials_frame(tracker.tracking_uri, "no-such-sweep")


def test_tracker_pickles_and_standard_tags(
    tracker: Tracker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clone = pickle.loads(pickle.dumps(tracker))
    assert (clone.tracking_uri, clone.experiment_id) == (
        tracker.tracking_uri,
        tracker.experiment_id,
    )
    assert clone.client is tracker.client
    tags = tracking.standard_tags("jena sweep demo")
    ours = {"backend", "git_commit", "jena_version", "host", "pid"}
    mlflow_own = {"mlflow.source.name", "mlflow.source.type", "mlflow.user"}
    assert (
        ours | mlflow_own
        <= set(tags)
        <= ours
        | mlflow_own
        | {"mlflow.source.git.commit", "mlflow.source.git.branch", "mlflow.source.git.repoURL"}
    )
    assert tags["pid"] == str(os.getpid())
    assert (tags["mlflow.source.name"], tags["mlflow.source.type"]) == ("jena sweep demo", "LOCAL")
    monkeypatch.chdir(tmp_path)  # not a git repository
    from jena.tracking._runs import git_commit  # the tag's source, behind standard_tags

    git_commit.cache_clear()
    try:
        assert git_commit() == "unknown"
    finally:
        git_commit.cache_clear()


@pytest.fixture(autouse=True)
def _no_repo_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Nothing here may fall back to the repository's mlruns/."""
    monkeypatch.setenv(tracking.ENV_TRACKING_URI, "sqlite:////nonexistent-dir/forbidden.db")
    yield
