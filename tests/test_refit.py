"""From a sweep to a champion (issue 10): the refit of the top-k distinct configurations over
seeds, the averaged champion, and its one look at the test split."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import TINY, mlflow_client, runs, tiny_sweep

import jena.config
import jena.evaluate
import jena.refit as refit_module
from jena import cli
from jena import tracking as T
from jena.data import load
from jena.errors import ConfigError
from jena.evaluate import evaluate_best
from jena.refit import RefitSettings, candidates, config_key, refit, refit_status
from jena.schema import COLUMNS
from jena.tracking import default_tracking_uri, load_forecaster, trials_frame
from sweeps import run_sweep

QUICK = RefitSettings(top_k=2, seeds=2, epochs=1, patience=1)
# the resume test's own refit (members are matched by epochs and patience): whichever test runs
# first on the module's store, each finds only its own members
RESUMED = RefitSettings(top_k=2, seeds=2, epochs=1, patience=2)
# one searched choice, everything else fixed: trials repeat configurations; they add to
# persistence, so on this 5.5-month record (where the ridge is far worse than persistence on
# validation) the refit's configuration stays the champion
SMALL = ('space.include=["optimizer"]',
         'space.fixed={architecture="gru", units=8, sequence_length_hours=24, rnn_layers=1, '
         'normalise_target=true, residual="persistence"}')  # fmt: skip


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An Optuna sweep and a Keras Tuner sweep in one experiment, on one store."""
    root = tmp_path_factory.mktemp("refit")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("JENA_TRACKING_URI", raising=False)
        uri = default_tracking_uri()
        run_sweep(tiny_sweep(*SMALL, name="rf", trials=4))
        run_sweep(tiny_sweep(*SMALL, 'space.include=["optimizer", "batch_size"]', name="rf",
                             driver="kerastuner", trials=3))  # fmt: skip
        yield {"root": root, "uri": uri}


def test_settings_must_be_positive_integers() -> None:
    for bad in ({"top_k": 0}, {"seeds": -1}, {"epochs": 2.5}, {"patience": True}):
        with pytest.raises(ConfigError, match=r"\[refit\]\.\w+: must be a positive integer"):
            RefitSettings(**bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"--set: \[refit\]\.seeds: must be a positive integer"):
        tiny_sweep("refit.seeds=0")


def test_top_k_distinct_configurations_across_drivers(swept: dict[str, Any]) -> None:
    uri = swept["uri"]
    frame = T.completed_trials(trials_frame(uri, "rf"), with_model=True)
    assert set(frame["driver"]) == {"optuna", "kerastuner"}
    found = candidates(uri, "rf", top_k=10)
    keys = [c.key for c in found]
    assert len(keys) == len(set(keys)) and len(found) < len(frame)  # duplicates folded
    maes = [c.val_mae for c in found]
    assert maes == sorted(maes)  # each from its best trial, best first
    # every distinct configuration of the trials is there, once
    configs = set()
    for row in frame.to_dict("records"):
        _, cfg = T.load_trial_model(uri, row["run_id"])
        configs.add(config_key(jena.config.TrialConfig.from_dict(cfg["trial_config"]),
                               cfg["preset"]))  # fmt: skip
    assert set(keys) == configs
    assert [c.key for c in candidates(uri, "rf", top_k=2)] == keys[:2]


def test_refit_selects_the_lowest_mean_and_resumes(
    swept: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = swept["uri"]
    monkeypatch.chdir(swept["root"])
    # killed mid-way: the third member raises KeyboardInterrupt
    real, calls = refit_module.train, {"n": 0}

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(refit_module, "train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        refit("rf", tracking_uri=uri, settings=RESUMED)
    assert all(r.info.status != "RUNNING" for r in runs("rf", uri))
    partial = refit_status(uri, "rf", RESUMED)
    assert sum(len(c.members) for c in partial.configs) == 2 and not partial.complete
    monkeypatch.undo()
    monkeypatch.chdir(swept["root"])

    done = refit("rf", tracking_uri=uri, settings=RESUMED)  # re-runs only what is missing
    assert done.trained == 2 and done.complete
    assert [len(c.members) for c in done.configs] == [2, 2]
    assert done.selected.mean == min(c.mean for c in done.configs)
    for c in done.configs:
        maes = [m.val_mae for m in c.members]
        assert c.mean == pytest.approx(np.mean(maes)) and c.std == pytest.approx(
            np.std(maes, ddof=1)
        )
        assert [m.seed for m in c.members] == [0, 1]
    again = refit("rf", tracking_uri=uri, settings=RESUMED)
    assert again.trained == 0 and again.stage_run_id is None  # nothing missing: nothing run
    members = [r for r in runs("rf", uri) if r.data.tags.get("run_type") == "refit_member"
               and r.data.tags["refit_patience"] == str(RESUMED.patience)]  # fmt: skip
    assert len({(r.data.tags["refit_config"], r.data.tags["refit_seed"]) for r in members
                if r.data.tags["state"] == "completed"}) == 4  # fmt: skip
    for r in members:
        if r.data.tags["state"] == "completed":
            assert r.data.tags["source_run_id"] and r.data.metrics["windows_seen"] > 0
            steps = mlflow_client(uri=uri).get_metric_history(r.info.run_id, "val_mae")
            assert [m.step for m in steps] == [1]  # per-epoch curve, full fidelity


def test_the_champion_averages_its_seeds_and_reads_the_test_set_once(
    swept: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = swept["uri"]
    monkeypatch.chdir(swept["root"])
    looks: list[bool] = []
    real_prepare = jena.evaluate.prepare

    def spy(*args: Any, **kwargs: Any) -> Any:
        looks.append(bool(kwargs.get("include_test")))
        return real_prepare(*args, **kwargs)

    monkeypatch.setattr(jena.evaluate, "prepare", spy)
    ev = evaluate_best("rf", refit("rf", tracking_uri=uri, settings=QUICK), tracking_uri=uri,
                       force=True)  # fmt: skip
    assert looks == [True]  # one preparation of the test rows, for the one look
    assert ev.kind == "refit" and len(ev.members) == 2
    status = refit_status(uri, "rf", QUICK)
    chosen = status.selected
    assert [m["run_id"] for m in ev.members] == [m.run_id for m in chosen.members]
    best_seed = chosen.best_member().seed
    assert ev.best_val_member_test_mae == next(m["test_mae"] for m in ev.members
                                               if m["seed"] == best_seed)  # fmt: skip
    record = mlflow_client(uri=uri).get_run(ev.run_id)
    assert record.data.tags["run_type"] == "refit" and record.data.tags["test_evaluations"] == "1"
    for m in ev.members:
        assert record.data.metrics[f"test_mae_seed{m['seed']}"] == pytest.approx(m["test_mae"])
    assert record.data.metrics["test_mae"] == pytest.approx(ev.test_mae)
    worse = ev.test_mae > ev.baseline_test_mae  # said plainly, and tagged on the version
    assert ev.worse_than_persistence_on_test == worse
    assert ("WORSE than persistence on the test split" in ev.test_verdict) == worse
    version = mlflow_client(uri=uri).get_model_version_by_alias("jena-temperature", "champion")
    assert version.tags["worse_than_persistence_on_test"] == str(worse).lower()

    # the registered champion is one forecaster, the mean of its members: here each member's
    # own Keras model on windows cut by hand from the record, normalised with the stored stats
    champion = load_forecaster("models:/jena-temperature@champion", uri)
    assert len(champion.models) == 2
    cfg = champion.data_config
    assert not cfg["wind_vector"] and not cfg["time_features"]  # the 14 columns, as they are
    frame = load(TINY).frame
    x = (frame[list(COLUMNS)].to_numpy(np.float64) - cfg["mean"]) / cfg["std"]
    r, n = cfg["sampling_rate"], cfg["sequence_length"]
    last = len(frame) - (n - 1) * r - 1  # the window that ends at the last row
    starts = [*range(last - 600, last, 60), last]
    windows = np.stack([x[s + np.arange(n) * r] for s in starts]).astype(np.float32)
    members = [T.load_trial_model(uri, m["run_id"])[0] for m in ev.members]
    raw = np.stack([m.predict(windows, verbose=0).reshape(-1) for m in members])  # (2, windows)
    scale, shift = (cfg["std"][1], cfg["mean"][1]) if cfg["normalised_target"] else (1.0, 0.0)
    expected = (raw * scale + shift).mean(axis=0)  # °C
    np.testing.assert_allclose(champion.predict(windows), expected, atol=1e-5)
    assert champion.forecast(frame).forecast == pytest.approx(expected[-1], abs=1e-5)
    # its interval calibration is part of it: checked on test, carried by the registered model
    assert ev.intervals is not None and ev.intervals.champion.level == 0.9
    assert {c.forecaster for c in ev.intervals.results} == {"champion", "ridge", "persistence"}
    assert champion.calibration is not None and champion.calibration.levels == (0.9,)
    ((level, low, high),) = champion.forecast(frame).intervals
    assert level == 0.9 and low < expected[-1] < high


def test_the_registered_champion_runs_show_their_data_lineage(
    swept: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runs a registered refit champion averages carry MLflow's dataset inputs (the UI's
    Dataset column) like the sweep's trials they come from: the same record, the same splits."""
    uri = swept["uri"]
    monkeypatch.chdir(swept["root"])
    code = cli.main(["best", "--force", "--experiment", "rf", "--tracking-uri", uri, "--top-k",
                     "2", "--seeds", "2", "--epochs", "1", "--patience", "1"])  # fmt: skip
    assert code == 0
    client = mlflow_client(uri=uri)
    version = client.get_model_version_by_alias("jena-temperature", "champion")
    chosen = refit_status(uri, "rf", QUICK).selected
    assert client.get_run(version.run_id).data.tags["run_type"] == "refit"
    assert version.tags["members"] == str(len(chosen.members)) == "2"  # the champion's runs

    def lineage(run_id: str) -> dict[str, tuple[str, str, dict[str, Any]]]:
        inputs = client.get_run(run_id).inputs.dataset_inputs
        out = {}
        for i in inputs:
            context = {t.key: t.value for t in i.tags}["mlflow.data.context"]
            out[context] = (i.dataset.name, i.dataset.digest, json.loads(i.dataset.profile))
        return out

    digest = load(TINY).digest
    for m in chosen.members:
        member = client.get_run(m.run_id)
        assert member.data.tags["run_type"] == "refit_member"
        mine = lineage(m.run_id)
        assert set(mine) == {"training", "validation"}, mine
        assert mine["training"][:2] == ("jena-book2-train", digest)
        assert mine["validation"][:2] == ("jena-book2-val", digest)
        source = lineage(member.data.tags["source_run_id"])  # the sweep's trial
        assert {k: v[:2] for k, v in source.items()} == {k: v[:2] for k, v in mine.items()}
        for context in ("training", "validation"):  # the same rows of the same record
            assert source[context][2]["rows"] == mine[context][2]["rows"] > 0


def test_a_seed_whose_run_cannot_be_recorded_fails_alone_as_a_trial_does(
    swept: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store refuses one refit seed's model as its run ends (not the disk's fault): that
    seed's run ends FAILED with the reason — as a sweep's trial does — and the refit goes on."""
    uri = swept["uri"]
    monkeypatch.chdir(swept["root"])
    real, refused = T.TrialRun.log_model, []

    def refuse_the_first(self: T.TrialRun, *args: Any, **kwargs: Any) -> str:
        if not refused:
            refused.append(self.run_id)
            raise RuntimeError("the store refused the model")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(T.TrialRun, "log_model", refuse_the_first)
    own = RefitSettings(top_k=1, seeds=2, epochs=1, patience=3, rung_epochs=0)  # its own members
    done = refit("rf", tracking_uri=uri, settings=own)
    (config,) = done.configs
    assert config.outcomes == {0: "failed", 1: "completed"}
    assert [m.seed for m in config.members] == [1] and done.trained == 1
    run = mlflow_client(uri=uri).get_run(refused[0])
    assert run.info.status == "FAILED" and run.data.tags["state"] == "failed"
    assert run.data.tags["failure_reason"] == "RuntimeError: the store refused the model"
    assert "model_id" not in run.data.tags  # nothing half-written left on it
    assert all(r.info.status != "RUNNING" for r in runs("rf", uri))


def test_the_gate_refuses_a_champion_whose_interval_includes_zero(
    swept: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A champion slightly better than persistence on validation (skill > 0: what the old gate
    asked for) but by a margin its day-to-day noise swamps is not promoted: `jena best` says it
    cannot be told apart from persistence, with the interval, reads no test row and registers
    nothing; --force still evaluates it."""
    uri = swept["uri"]
    monkeypatch.chdir(swept["root"])
    real = jena.evaluate.predict_split
    tested: list[str] = []

    def noisy(
        forecaster: Any, prepared: Any, index: Any, split: str = "test", frame: Any = None
    ) -> Any:
        pred = real(forecaster, prepared, index, split, frame)
        if split != "val":
            tested.append(split)
            return pred
        days = np.asarray((pred.time - pred.time[0]) // pd.Timedelta(days=1))
        luck = np.random.default_rng(5).uniform(-0.24, 0.24, days.max() + 1)  # per day
        error = np.abs(pred.persistence - pred.actual)
        weight = np.bincount(days, error, minlength=len(luck))
        luck -= (weight @ luck) / weight.sum()  # no net luck over persistence's errors
        # persistence's errors 2 % smaller on average, ±24 % from day to day: skill +2.0 %
        scale = (0.98 + luck)[days]
        pred.forecast = pred.actual + (pred.persistence - pred.actual) * scale
        return pred

    monkeypatch.setattr(jena.evaluate, "predict_split", noisy)
    client = mlflow_client(uri=uri)
    versions = len(client.search_model_versions("name = 'jena-temperature'"))
    with pytest.raises(jena.evaluate.NotBetterThanPersistence) as err:
        evaluate_best("rf", refit("rf", tracking_uri=uri, settings=QUICK), tracking_uri=uri)
    message = str(err.value)
    assert "cannot be told apart from persistence" in message and "\n" not in message
    skill = re.search(r"skill ([+-][\d.]+)% with a 95 % interval of \[([+-][\d.]+)%, "
                      r"([+-][\d.]+)%\]", message)  # fmt: skip
    assert skill is not None, message
    estimate, low, high = (float(g) for g in skill.groups())
    assert estimate > 0 and low < 0 < high  # better on average, not told apart: refused
    assert tested == [] and len(client.search_model_versions("name = 'jena-temperature'")) == (
        versions
    )
    code = cli.main(["best", "--experiment", "rf", "--tracking-uri", uri, "--top-k", "2",
                     "--seeds", "2", "--epochs", "1", "--patience", "1"])  # fmt: skip
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err_lines) == 1 and "cannot be told apart" in err_lines[0]
    code = cli.main(["best", "--force", "--experiment", "rf", "--tracking-uri", uri,
                     "--register-name", "", "--top-k", "2", "--seeds", "2", "--epochs", "1",
                     "--patience", "1"])  # fmt: skip
    out = " ".join(capsys.readouterr().out.split())
    assert code == 0 and tested == ["test"]
    assert "promoted only because of --force" in out and "[95 % interval]" in out
    assert "ridge (linear reference)" in out and "against the linear reference" in out
    verdict = re.search(r"the champion (is WORSE than|beats) persistence on the test split", out)
    assert verdict is not None, out


def test_refit_of_a_sweep_with_nothing_completed(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sweeps.faults import AllTrialsFailed

    with pytest.raises(AllTrialsFailed):  # a conv stack longer than its window: every trial fails
        run_sweep(tiny_sweep('architecture="conv1d"', "conv_kernel=24", "conv_layers=3",
                             'space.include=["learning_rate"]', name="bad", trials=1))  # fmt: skip
    assert cli.main(["refit", "--experiment", "bad"]) == 2
    assert "has no completed trial with a model yet: nothing to refit" in capsys.readouterr().err
    assert cli.main(["refit", "--experiment", "bad", "--seeds", "0"]) == 2
    assert "[refit].seeds: must be a positive integer, got 0" in capsys.readouterr().err
