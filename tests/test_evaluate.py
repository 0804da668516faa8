"""`jena best` and `jena predict` on tiny synthetic sweeps: selection across drivers and
invocations, test-set hygiene, the registry alias, forecasts from the registered model, and the
data-digest check."""

from __future__ import annotations

import contextlib
import io
import json
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import TINY, mlflow_uris, tiny_sweep, toml_str

import jena.evaluate
import jena.train
from jena import cli
from jena.data import load, spec_from_source
from jena.errors import ConfigError
from jena.prepare import Prepared, prepare
from jena.schema import COLUMNS, DATE_COLUMN, DATE_FORMAT, TARGET, write_jena_csv
from jena.splits import get_preset
from jena.tracking import Tracker, load_trial_model, select_best, trials_frame
from jena.tracking.names import PREDICTIONS_FILE
from sweeps import run_sweep

EXPERIMENT = "evalmix"
# --force: trials this tiny never beat persistence, and `jena best` refuses such a champion
BEST = ("best", "--force", "--no-refit", "--experiment", EXPERIMENT)  # the trial path


def sweep(
    root: Path, uri: str, name: str, *, driver: str = "optuna", trials: int = 2, seed: int = 0,
    data: str = TINY, architecture: str = "gru", normalise: bool | None = None,
    preset: str = "book2",
) -> dict[str, Any]:  # fmt: skip
    """Run one tiny sweep invocation (quietly; its Optuna/Keras Tuner stores under ``root``)
    and return its summary. Its trials add to persistence (``residual``): on this 5.5-month
    record the ridge is far worse than persistence on validation (another season), so a trial
    stays the champion and these tests see the trial path (the ridge as champion is
    test_ridge_champion's)."""
    fixed = f"architecture={toml_str(architecture)}, sequence_length_hours=24, "
    fixed += 'residual="persistence"'
    if normalise is not None:
        fixed += f", normalise_target={str(normalise).lower()}"
    cfg = tiny_sweep(f"data.source={toml_str(data)}", 'space.include=["units", "learning_rate"]',
                     f"space.fixed={{{fixed}}}", f"data.preset={toml_str(preset)}", name=name,
                     driver=driver, trials=trials, seed=seed, tracking_uri=uri,
                     root=root)  # fmt: skip
    return run_sweep(cfg)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """One experiment, two drivers, three invocations (built once for the module)."""
    root = tmp_path_factory.mktemp("evalstore")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("JENA_TRACKING_URI", raising=False)
        summaries = [
            sweep(root, uri, EXPERIMENT, driver="optuna", trials=2, normalise=True),
            sweep(root, uri, EXPERIMENT, driver="kerastuner", trials=2, architecture="lstm"),
            sweep(root, uri, EXPERIMENT, driver="optuna", trials=3, seed=1, normalise=True),
        ]
    for summary in summaries:
        assert summary.counts["completed"] >= 1, summary
    yield root, uri


@pytest.fixture(scope="module")
def evaluated(store: tuple[Path, str]) -> dict[str, Any]:
    """`jena best --json` once on the experiment: the JSON it printed."""
    root, uri = store
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        calls: list[bool] = []
        real = jena.evaluate.prepare

        def spy(*args: Any, **kwargs: Any) -> Prepared:
            calls.append(bool(kwargs.get("include_test")))
            return real(*args, **kwargs)

        mp.setattr(jena.evaluate, "prepare", spy)
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            code = cli.main([*BEST, "--tracking-uri", uri, "--json"])
    assert code == 0
    out = json.loads(buffer.getvalue())
    out["_prepare_calls"] = calls
    return out


def _expected_best(uri: str) -> pd.Series:
    """Independently of select_best: the min val_mae among completed trials with a model."""
    frame = trials_frame(uri, EXPERIMENT)
    done = frame[(frame["state"] == "completed") & frame["tags.model_artifact"].notna()]
    return done.sort_values("val_mae", kind="stable").iloc[0]


# --------------------------------------------------------------------------- selection


def test_select_best_ignores_pruned_failed_and_spans_invocations(in_tmp: Path) -> None:
    uri = f"sqlite:///{in_tmp / 'mlruns' / 'mlflow.db'}"
    tracker = Tracker(uri, experiment="fake")
    model = {"model_artifact": "model/model.keras"}

    def trial(parent: Any, n: int, driver: str, state: Any, val: float | None, **tags: Any) -> str:
        run = tracker.trial(parent.run_id, n, {"hp.units": 8}, {"driver": driver, **tags})
        run.set_tags(model if state == "completed" and not tags.get("no_model") else {})
        run.finish(state, val_mae=val)
        return run.run_id

    with tracker.start_sweep(tags={"driver": "optuna"}) as first:
        trial(first, 0, "optuna", "completed", 2.5, architecture="lstm")
        trial(first, 1, "optuna", "pruned", 0.5, architecture="gru")  # lower, but pruned
        trial(first, 2, "optuna", "failed", None, architecture="conv")
    with tracker.start_sweep(tags={"driver": "kerastuner"}) as second:
        best = trial(second, 0, "kerastuner", "completed", 2.1, architecture="gru")
        trial(second, 1, "kerastuner", "completed", 2.1, architecture="dense")  # tie: later
        trial(second, 2, "kerastuner", "killed", None)
    frame = trials_frame(uri, "fake")
    assert set(frame["driver"]) == {"optuna", "kerastuner"}
    chosen = select_best(frame)
    assert chosen["run_id"] == best
    assert chosen["driver"] == "kerastuner"

    only_bad = frame[frame["state"] != "completed"]
    with pytest.raises(ConfigError, match="no completed trial"):
        select_best(only_bad)


def test_spec_from_source() -> None:
    assert spec_from_source("synthetic(rows=24000, seed=3)") == "synthetic:24000:3"
    assert spec_from_source("jena") == "jena"
    assert spec_from_source("/data/station.csv") == "/data/station.csv"


# --------------------------------------------------------------------------- hygiene


@pytest.mark.parametrize("preset", ["book2", "blocked"])
def test_sweep_never_reads_test_rows(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, preset: str
) -> None:
    """A sweep on a record whose test rows are other weather (the first training rows again:
    physically valid, so the loader keeps them, but not this record's) gives exactly the results
    of a sweep on the clean record: it never loads those rows. book2's test rows end the record;
    blocked's are blocks inside it (every fourth 14-day block), blanked in memory."""
    frame = load(TINY).frame
    bounds = get_preset(preset).bounds(len(frame))
    poisoned = frame.copy()
    test = bounds.mask("test", len(frame))
    n_test = int(test.sum())
    poisoned.iloc[test, :] = frame.iloc[:n_test].to_numpy() + 0.5  # +0.5: no clash
    clean_csv = write_jena_csv(frame, in_tmp / "clean.csv")
    poisoned_csv = write_jena_csv(poisoned, in_tmp / "poisoned.csv")
    loaded = load(poisoned_csv).frame[TARGET].to_numpy()
    other = frame[TARGET].to_numpy()
    assert not np.allclose(loaded[test], other[test], atol=0.1)

    prepared: list[Prepared] = []
    real = jena.train.prepare

    def spy(*args: Any, **kwargs: Any) -> Prepared:
        p = real(*args, **kwargs)
        prepared.append(p)
        return p

    monkeypatch.setattr(jena.train, "prepare", spy)
    uri = f"sqlite:///{in_tmp / 'mlruns' / 'mlflow.db'}"
    results = {}
    for name, path in (("clean", clean_csv), ("poisoned", poisoned_csv)):
        sweep(in_tmp, uri, name, data=str(path), trials=2, normalise=True, preset=preset)
        f = trials_frame(uri, name).sort_values("number")
        assert list(f["state"]) == ["completed", "completed"]
        assert set(f["tags.preset"]) == {preset}
        results[name] = f
    for column in ("val_mae", "metrics.loss", "metrics.mae", "metrics.baseline_val_mae"):
        assert list(results["clean"][column]) == list(results["poisoned"][column]), column
    assert (
        results["clean"]["tags.data_digest"].iloc[0]
        != results["poisoned"]["tags.data_digest"].iloc[0]
    )
    assert prepared, "the sweep prepared no data?"
    for p in prepared:
        assert not p.include_test and p.preset.name == preset
        assert len(p.x) == len(p.temperature) == len(p.valid) <= len(frame)
        kept = test[: len(p.x)]
        assert np.isnan(p.temperature[kept]).all() and not p.valid[kept].any()
        np.testing.assert_array_equal(p.temperature[~kept], other[: len(p.x)][~kept])
        with pytest.raises(ConfigError, match="test split is not loaded"):
            p.starts("test")


# --------------------------------------------------------------------------- jena best


def test_best_picks_min_completed_across_drivers(
    store: tuple[Path, str], evaluated: dict[str, Any]
) -> None:
    _, uri = store
    frame = trials_frame(uri, EXPERIMENT)
    assert {"optuna", "kerastuner"} <= set(frame["driver"]), frame[["driver", "state"]]
    assert frame["parent_run_id"].nunique() == 3
    expected = _expected_best(uri)
    assert evaluated["run_id"] == expected["run_id"]
    assert evaluated["val_mae"] == pytest.approx(expected["val_mae"])
    assert evaluated["evaluation"] == 1 and evaluated["warning"] is None
    assert evaluated["_prepare_calls"] == [True]  # the only reader of test rows


def test_best_test_mae_matches_independent_computation(
    store: tuple[Path, str], evaluated: dict[str, Any]
) -> None:
    _, uri = store
    model, cfg = load_trial_model(uri, evaluated["run_id"])
    p = prepare(load(TINY), cfg["preset"], include_test=True)
    r, n, offset = cfg["sampling_rate"], cfg["sequence_length"], cfg["offset"]
    np.testing.assert_allclose(p.mean, cfg["mean"], rtol=1e-12)
    starts = p.starts("test", r, n)
    x = p.x[starts[:, None] + np.arange(n) * r]
    y = model.predict(x, verbose=0).reshape(-1).astype(np.float64)
    if cfg["normalised_target"]:
        y = y * cfg["std"][1] + cfg["mean"][1]
    actual = p.temperature[starts + offset]
    assert evaluated["test_windows"] == len(starts)
    assert evaluated["test_mae"] == pytest.approx(np.mean(np.abs(y - actual)), rel=1e-5)
    persistence = np.mean(np.abs(p.temperature[starts + (n - 1) * r] - actual))
    assert evaluated["baseline_test_mae"] == pytest.approx(persistence, rel=1e-12)
    assert evaluated["test_skill"] == pytest.approx(
        1 - evaluated["test_mae"] / evaluated["baseline_test_mae"]
    )

    run = mlflow.MlflowClient(uri).get_run(evaluated["run_id"])
    assert run.data.metrics["test_mae"] == pytest.approx(evaluated["test_mae"])
    assert run.data.metrics["baseline_test_mae"] == pytest.approx(persistence)
    assert "test_skill" in run.data.metrics
    assert run.data.tags["test_evaluations"] == "1"
    assert len(json.loads(run.data.tags["test_evaluated_at"])) == 1
    names = {a.path for a in mlflow.MlflowClient(uri).list_artifacts(evaluated["run_id"])}
    assert PREDICTIONS_FILE in names and "forecaster" in names


def test_best_gives_intervals_dm_and_the_linear_reference(
    store: tuple[Path, str], evaluated: dict[str, Any]
) -> None:
    """`jena best --json` carries the champion against persistence and against the ridge
    reference on validation and test (95 % intervals, DM test), says plainly whether the
    champion is worse than persistence on test, and records it on the run and the version."""
    _, uri = store
    test = evaluated["test_vs_persistence"]
    assert test["mae"]["estimate"] == pytest.approx(evaluated["test_mae"])
    assert test["reference_mae"]["estimate"] == pytest.approx(evaluated["baseline_test_mae"])
    assert test["windows"] == evaluated["test_windows"] and test["days"] > 10
    for key in ("mae", "skill", "difference"):
        assert test[key]["low"] <= test[key]["estimate"] <= test[key]["high"], key
    assert 0 <= test["dm"]["p_value"] <= 1 and test["dm"]["lag"] == 143
    val = evaluated["val_vs_persistence"]
    assert val["windows"] > 0 and val["beats_reference"] == (val["skill"]["low"] > 0)
    assert evaluated["forced"] == (not val["beats_reference"])  # --force: promoted anyway
    for split in ("val", "test"):
        ridge = evaluated[f"{split}_vs_ridge"]
        assert ridge["mae"]["estimate"] == pytest.approx(evaluated[f"{split}_vs_persistence"]
                                                         ["mae"]["estimate"], rel=0.05)  # fmt: skip
        assert 0.5 < ridge["reference_mae"]["estimate"] < 10
    worse = evaluated["test_mae"] > evaluated["baseline_test_mae"]
    assert evaluated["worse_than_persistence_on_test"] == worse
    assert ("WORSE than persistence on the test split" in evaluated["test_verdict"]) == worse
    run = mlflow.MlflowClient(uri).get_run(evaluated["run_id"])
    m = run.data.metrics
    assert m["test_mae_low"] == pytest.approx(test["mae"]["low"])
    assert m["test_skill_high"] == pytest.approx(test["skill"]["high"])
    assert m["test_dm_pvalue"] == pytest.approx(test["dm"]["p_value"])
    assert m["ridge_test_mae"] == pytest.approx(evaluated["test_vs_ridge"]["reference_mae"]
                                                ["estimate"])  # fmt: skip
    assert "champion_val_skill_low" in m and "val_skill_vs_ridge_high" in m
    version = mlflow.MlflowClient(uri, registry_uri=uri).get_model_version_by_alias(
        "jena-temperature", "champion"
    )
    assert version.tags["worse_than_persistence_on_test"] == str(worse).lower()
    assert version.tags["promoted_on"] == ("force" if evaluated["forced"] else "evidence")
    assert version.tags["test_skill_interval"].startswith(f"{test['skill']['estimate']:+.2%} [")


def test_best_calibrates_intervals_and_checks_them_once_on_test(
    store: tuple[Path, str], evaluated: dict[str, Any]
) -> None:
    """The champion's, the ridge's and persistence's 90 % intervals, calibrated on validation,
    on the same test windows: coverage with its day-block interval, mean width, by season;
    recorded on the run (metrics, tags, the predictions with the band) and the version."""
    _, uri = store
    check = evaluated["intervals"]
    assert check["levels"] == [0.9] and "groups by season and hour" in check["calibration"]
    found = {c["forecaster"]: c for c in check["results"]}
    compared = {"ridge"} if evaluated["test_vs_ridge"] else set()  # none: the ridge is champion
    assert set(found) == {"champion", "persistence", *compared}
    assert len({c["windows"] for c in found.values()}) == 1  # the same windows
    for c in found.values():
        cov = c["coverage"]
        assert 0 <= cov["low"] <= cov["estimate"] <= cov["high"] <= 1
        assert c["off_nominal"] == (not cov["low"] <= 0.9 <= cov["high"])
        assert c["width"] > 0 and {s["season"] for s in c["by_season"]}
    champion = found["champion"]
    said = evaluated["interval_verdicts"][0]
    assert ("excludes 90 %" in said) == champion["off_nominal"]
    assert check["width_vs_persistence"] == pytest.approx(
        champion["width"] / found["persistence"]["width"])  # fmt: skip
    # the recorded band, checked independently of the code that computed the coverage
    client = mlflow.MlflowClient(uri)
    with tempfile.TemporaryDirectory() as tmp:
        frame = pd.read_csv(client.download_artifacts(evaluated["run_id"], PREDICTIONS_FILE, tmp))
    assert (frame["low"] < frame["forecast"]).all() and (frame["forecast"] < frame["high"]).all()
    if champion["windows"] == len(frame):
        hit = (frame["low"] <= frame["actual"]) & (frame["actual"] <= frame["high"])
        assert champion["coverage"]["estimate"] == pytest.approx(hit.mean(), abs=2e-4)
        assert champion["width"] == pytest.approx((frame["high"] - frame["low"]).mean(), abs=1e-3)
    run = client.get_run(evaluated["run_id"])
    m, tags = run.data.metrics, run.data.tags
    assert m["interval_level"] == 0.9
    assert m["interval_coverage"] == pytest.approx(champion["coverage"]["estimate"])
    assert m["interval_coverage_low"] == pytest.approx(champion["coverage"]["low"])
    assert m["interval_width"] == pytest.approx(champion["width"])
    assert m["persistence_interval_width"] == pytest.approx(found["persistence"]["width"])
    if compared:
        assert m["ridge_interval_coverage"] == pytest.approx(found["ridge"]["coverage"]["estimate"])
    for s in champion["by_season"]:
        assert m[f"interval_coverage_{s['season']}"] == pytest.approx(s["coverage"]["estimate"])
    assert tags["interval_off_nominal"] == str(champion["off_nominal"]).lower()
    version = mlflow.MlflowClient(uri, registry_uri=uri).get_model_version_by_alias(
        "jena-temperature", "champion"
    )
    assert version.tags["interval_level"] == "90 %"
    assert version.tags["interval_coverage"].startswith(f"{champion['coverage']['estimate']:.4f} [")


def test_interval_levels_from_the_flag_and_from_the_sweep_file(
    own_store: tuple[str, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    """`--level 95 --level 50` calibrates both (the first is the main one) and the registered
    model (re-logged where it is the same run's) answers with both; without the flag the
    sweep's ``[champion] interval_level`` decides."""
    uri, first = own_store
    assert first["intervals"]["levels"] == [0.9]
    code, out, err = run_cli(capsys, *BEST, "--tracking-uri", uri, "--level", "95",
                             "--level", "0.5", "--json")  # fmt: skip
    assert code == 0, err
    again = json.loads(out)
    assert again["intervals"]["levels"] == [0.95, 0.5]
    assert {c["level"] for c in again["intervals"]["results"]} == {0.95, 0.5}
    m = mlflow.MlflowClient(uri).get_run(again["run_id"]).data.metrics
    assert m["interval_level"] == 0.95 and "interval_coverage_50" in m
    with mlflow_uris(uri):
        model = mlflow.pyfunc.load_model("models:/jena-temperature@champion")
    frame = load(TINY).frame.iloc[-3 * 144 :]
    row = model.predict(frame).iloc[0]
    assert row["level"] == 0.95
    assert row["low"] <= row["low_50"] <= row["forecast"] <= row["high_50"] <= row["high"]
    assert row["low"] < row["high"]
    outputs = model.metadata.get_output_schema().input_names()
    assert outputs[-5:] == ["level", "low", "high", "low_50", "high_50"]

    with Tracker(uri, experiment=EXPERIMENT).start_sweep(
        definition={"champion": {"interval_level": [80, 0.95]}}
    ):
        pass
    code, out, err = run_cli(capsys, *BEST, "--tracking-uri", uri, "--json")
    assert code == 0, err
    assert json.loads(out)["intervals"]["levels"] == [0.8, 0.95]
    code, out, err = run_cli(capsys, *BEST, "--tracking-uri", uri, "--level", "100")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "--level" in err and "outside" in err


def test_the_champion_the_ridge_and_persistence_share_one_target_count(
    store: tuple[Path, str], evaluated: dict[str, Any]
) -> None:
    """The champion (a 24-hour window) is scored on the split's targets, the same rows as the
    ridge and persistence: counted here from the bounds alone (book2 on 24,000 rows: validation
    rows 12,000-18,000, test 18,000-24,000; the first target 858 rows into each, the book's test
    windows' last target 714 rows before the end). Before, its own window gave it more."""
    val_targets = 18_000 - (12_000 + 858)
    test_targets = (24_000 - 714) - (18_000 + 858)
    assert evaluated["test_windows"] == test_targets
    for key, count in (("val", val_targets), ("test", test_targets)):
        assert evaluated[f"{key}_vs_persistence"]["windows"] == count, key
        assert evaluated[f"{key}_vs_ridge"]["windows"] == count, key


def test_registry_alias_points_to_best(store: tuple[Path, str], evaluated: dict[str, Any]) -> None:
    _, uri = store
    version = mlflow.MlflowClient(uri, registry_uri=uri).get_model_version_by_alias(
        "jena-temperature", "champion"
    )
    assert version.run_id == evaluated["run_id"]
    assert evaluated["model_uri"] == "models:/jena-temperature@champion"
    assert version.tags["test_mae"] == f"{evaluated['test_mae']:.4f}"


# --------------------------------------------------------------------------- jena predict


def _independent_forecast(uri: str, run_id: str, csv: Path) -> tuple[float, pd.Timestamp, float]:
    model, cfg = load_trial_model(uri, run_id)
    raw = pd.read_csv(csv)
    times = pd.to_datetime(raw[DATE_COLUMN], format=DATE_FORMAT)
    values = raw[list(COLUMNS)].to_numpy(np.float64)
    x = ((values - np.asarray(cfg["mean"])) / np.asarray(cfg["std"])).astype(np.float32)
    r, n = cfg["sampling_rate"], cfg["sequence_length"]
    window = x[len(x) - 1 - (n - 1) * r :: r]
    assert window.shape == (n, len(COLUMNS))
    y = float(model.predict(window[None], verbose=0).reshape(-1)[0])
    if cfg["normalised_target"]:
        y = y * cfg["std"][1] + cfg["mean"][1]
    return y, times.iloc[-1] + pd.Timedelta(hours=24), float(values[-1, 1])


def test_predict_from_registered_champion(
    store: tuple[Path, str], evaluated: dict[str, Any], in_tmp: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    _, uri = store
    frame = load(TINY).frame
    csv = write_jena_csv(frame.iloc[-3 * 144 :], in_tmp / "last_days.csv")
    code, out, err = run_cli(capsys, "predict", "--model", "models:/jena-temperature@champion",
                             "--data", str(csv), "--tracking-uri", uri, "--json")  # fmt: skip
    assert code == 0, err
    got = json.loads(out)
    forecast, target_time, last_t = _independent_forecast(uri, evaluated["run_id"], csv)
    assert got["forecast"] == pytest.approx(forecast, rel=1e-5, abs=1e-5)
    assert pd.Timestamp(got["target_time"]) == target_time
    assert got["persistence"] == pytest.approx(last_t)

    # the registered pyfunc on its own gives the same forecast
    with mlflow_uris(uri):
        pyfunc = mlflow.pyfunc.load_model("models:/jena-temperature@champion")
    table = pyfunc.predict(load(str(csv)).frame)
    assert float(table["forecast"].iloc[0]) == pytest.approx(forecast, rel=1e-5, abs=1e-5)

    # a runs:/ URI of the trial's own model/ directory works too
    code, out, _ = run_cli(capsys, "predict", "--model", f"runs:/{evaluated['run_id']}/model",
                           "--data", str(csv), "--tracking-uri", uri, "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["forecast"] == pytest.approx(got["forecast"], rel=1e-6)

    # the table names the forecast's target time and the persistence forecast
    code, out, _ = run_cli(capsys, "predict", "--data", str(csv), "--tracking-uri", uri)
    assert code == 0
    assert f"{target_time:%Y-%m-%d %H:%M}" in out and "persistence" in out


def test_predict_too_short_says_how_much_is_needed(
    store: tuple[Path, str], evaluated: dict[str, Any], in_tmp: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    _, uri = store
    csv = write_jena_csv(load(TINY).frame.iloc[-50:], in_tmp / "short.csv")
    code, out, err = run_cli(capsys, "predict", "--data", str(csv), "--tracking-uri", uri)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "50 rows" in lines[0] and "needs 139 rows (23 h 10 min)" in lines[0]


# --------------------------------------------------------------------------- refusals, re-use


def test_best_refuses_other_data(
    store: tuple[Path, str], evaluated: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    _, uri = store
    code, out, err = run_cli(capsys, *BEST, "--tracking-uri", uri, "--data", "synthetic:24000:4")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert "digest" in err and "synthetic(rows=24000, seed=3)" in err
    run = mlflow.MlflowClient(uri).get_run(evaluated["run_id"])
    assert run.data.tags["test_evaluations"] == "1"  # nothing was evaluated


@pytest.fixture
def own_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, dict[str, Any]]:
    """A store of its own (one tiny sweep, one `jena best --json`), for a test that changes it:
    (tracking URI, the JSON `jena best` printed)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JENA_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert sweep(tmp_path, uri, EXPERIMENT, trials=2, normalise=True).counts["completed"] >= 1
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert cli.main([*BEST, "--tracking-uri", uri, "--json"]) == 0
    return uri, json.loads(buffer.getvalue())


def test_reuse_warns_and_a_better_trial_moves_the_alias(
    own_store: tuple[str, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    """A second peek at the test split is announced; a better trial moves the alias."""
    uri, evaluated = own_store
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    code, out, err = run_cli(capsys, *BEST, "--tracking-uri", uri)
    assert code == 0, err
    assert "the test set of this run was already used 1 time(s), last on" in out
    assert "test MAE" in out and "persistence" in out
    run = client.get_run(evaluated["run_id"])
    assert run.data.tags["test_evaluations"] == "2"
    assert len(json.loads(run.data.tags["test_evaluated_at"])) == 2
    assert [m.step for m in client.get_metric_history(evaluated["run_id"], "test_mae")] == [1, 2]

    # a later invocation finds a better trial (here: the same model, a better val MAE)
    model, cfg = load_trial_model(uri, evaluated["run_id"])
    tags = {k: run.data.tags[k] for k in ("architecture", "data_source", "data_digest", "preset")}
    tracker = Tracker(uri, experiment=EXPERIMENT)
    with (
        tracker.start_sweep(tags={"driver": "kerastuner"}) as parent,
        tracker.trial(
            parent.run_id, 99, {"hp.units": 8}, {**tags, "driver": "kerastuner"}
        ) as trial,
    ):
        trial.log_model(model, cfg)
        trial.finish("completed", val_mae=evaluated["val_mae"] - 1.0)
    code, out, err = run_cli(capsys, *BEST, "--tracking-uri", uri, "--json")
    assert code == 0, err
    second = json.loads(out)
    assert second["run_id"] == trial.run_id != evaluated["run_id"]
    assert second["evaluation"] == 1 and second["other_runs_evaluated"] == 2
    assert second["test_mae"] == pytest.approx(evaluated["test_mae"], rel=1e-6)
    champion = client.get_model_version_by_alias("jena-temperature", "champion")
    assert champion.run_id == trial.run_id
    assert int(champion.version) > int(evaluated["version"])
    assert not math.isnan(second["test_skill"])


def test_a_one_seed_champion_is_not_called_averaged() -> None:
    """The registered version's description, `jena best` and the report name the seeds: a
    champion whose refit finished one seed was described as "1 seeds averaged"."""
    from jena.evaluation import seeds_phrase

    assert [seeds_phrase(n) for n in (1, 2, 3)] == [
        "1 seed only", "2 seeds averaged", "3 seeds averaged"]  # fmt: skip
