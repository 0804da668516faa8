"""`jena report` on a tiny two-driver sweep: files, figures, notes, the MLflow artifacts, and the
page rendered by headless Chromium."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import require_in_ci, tiny_sweep

from jena import cli
from jena.report import ReportResult, importances, write_report
from jena.tracking import proposals, trials_frame
from sweeps import run_sweep

EXPERIMENT = "reportmix"
PNG = b"\x89PNG\r\n\x1a\n"
ALWAYS = ("leaderboard.png", "learning_curves.png", "optimisation_history.png",
          "param_importances.png", "parallel_coordinates.png", "compute.png")  # fmt: skip
CHAMPION = ("forecast_week.png", "error_by_time.png", "interval_bands.png")
REFIT = ("--top-k", "2", "--seeds", "2", "--epochs", "1", "--patience", "1")  # a quick refit


def sweep(root: Path, uri: str, driver: str, trials: int, include: str) -> dict[str, Any]:
    """One invocation of the report's sweep: its Optuna journal and Keras Tuner projects under
    ``root`` (the report reads them back). Its trials add to persistence: on this 5.5-month
    record the ridge is far worse than persistence on validation, so the refit's configuration
    stays the champion (the ridge as champion is test_ridge_champion's)."""
    cfg = tiny_sweep(
        "fidelity.max_epochs=3",
        f"space.include=[{include}]",
        'space.fixed={sequence_length_hours=24, residual="persistence"}',
        name=EXPERIMENT,
        driver=driver,
        trials=trials,
        tracking_uri=uri,
        root=root,
    )
    return run_sweep(cfg)


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Report A after an Optuna invocation (champion not evaluated yet); then a Keras Tuner
    invocation, `jena best`, and report B from the command line."""
    root = tmp_path_factory.mktemp("reportstore")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("JENA_TRACKING_URI", raising=False)
        sweep(root, uri, "optuna", 5, '"architecture", "units", "learning_rate"')
        before = write_report(EXPERIMENT, out=root / "A", tracking_uri=uri)
        sweep(root, uri, "kerastuner", 2, '"units", "learning_rate"')
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            # --force: trials this tiny never beat persistence, and `jena best` refuses them
            best = ["best", "--force", "--experiment", EXPERIMENT, "--tracking-uri", uri, *REFIT]
            assert cli.main(best) == 0
            assert cli.main(["report", "--experiment", EXPERIMENT, "--tracking-uri", uri]) == 0
    yield {"root": root, "uri": uri, "before": before, "after": root / "reports" / EXPERIMENT,
           "stdout": out.getvalue()}  # fmt: skip


def _check_figures(folder: Path, names: tuple[str, ...]) -> str:
    page = (folder / "index.html").read_text()
    for name in names:
        path = folder / name
        assert path.is_file(), name
        data = path.read_bytes()
        assert data.startswith(PNG) and len(data) > 5_000, name
        assert f'<img src="{name}"' in page, name
    return page


def test_report_before_evaluation(reports: dict[str, Any]) -> None:
    before: ReportResult = reports["before"]
    folder = before.html.parent
    page = _check_figures(folder, ALWAYS)
    assert {p.name for p in before.figures} == set(ALWAYS)
    assert not any((folder / name).exists() for name in CHAMPION)
    assert "No champion has been evaluated on the test split yet" in page
    assert any("not evaluated" in note for note in before.notes)
    assert "Drawn from the MLflow trials of every driver (optuna): " in page
    # the counts line holds what the store holds (read here with MLflow's own client)
    client = mlflow.MlflowClient(reports["uri"])
    exp = client.get_experiment_by_name(EXPERIMENT)
    found = client.search_runs([exp.experiment_id], max_results=1000)
    tags = [r.data.tags for r in found]
    kids = [t for t in tags if t.get("run_type") == "trial" and t["driver"] == "optuna"]
    assert len(kids) == 5  # the report was written after the Optuna sweep's 5 trials only
    for state in ("completed", "pruned", "failed", "killed"):
        count = sum(k.get("state") == state for k in kids)
        assert f"<b>{count}</b> {state}" in page, state
    assert before.logged_to is not None


def test_report_after_best(reports: dict[str, Any]) -> None:
    folder: Path = reports["after"]
    assert f"wrote reports/{EXPERIMENT}/index.html" in reports["stdout"]
    page = _check_figures(folder, ALWAYS + CHAMPION)
    frame = trials_frame(reports["uri"], EXPERIMENT)
    counts = frame["state"].value_counts().to_dict()
    for state in ("completed", "failed"):
        assert f"<b>{counts.get(state, 0)}</b> {state}" in page
    assert "total compute time" in page
    # two drivers, drawn the same way from the store (no tuner's study)
    assert "Drawn from the MLflow trials of every driver (kerastuner, optuna): " in page
    assert "persistence (last T)" in page and "test MAE (°C)" in page
    # the champion is the refit's: its configurations with their seeds, and its members
    assert "<h2>Refit at full fidelity</h2>" in page and "(selected)" in page
    assert "2 seeds averaged (refit)" in page and "seed 0" in page and "seed 1" in page
    assert "Quality against compute" in page
    # intervals, the linear reference, and a plain word when the champion loses on test
    assert "[95 %]" in page and "ridge (linear reference)" in page and "Diebold–Mariano" in page
    assert "block bootstrap over whole days" in page and "upper bounds" in page  # synthetic
    champion = next(r for r in mlflow.MlflowClient(reports["uri"]).search_runs(
        [mlflow.MlflowClient(reports["uri"]).get_experiment_by_name(EXPERIMENT).experiment_id],
        "tags.run_type = 'refit'") if "test_mae" in r.data.metrics)  # fmt: skip
    worse = champion.data.metrics["test_mae"] > champion.data.metrics["baseline_test_mae"]
    assert ("worse than persistence on the test split" in page) == worse
    # the calibrated intervals: the champion, the ridge and persistence, coverage by season
    assert "90 % intervals, calibrated on validation, checked on test" in page
    m = champion.data.metrics
    coverage = f"{m['interval_coverage']:.1%} [{m['interval_coverage_low']:.1%}, "
    assert coverage in page and "<td>persistence</td>" in page and "mean width" in page
    off = not m["interval_coverage_low"] <= 0.9 <= m["interval_coverage_high"]
    assert ("The champion's 90 % interval <b>" in page) == off
    # every architecture that completed a trial is on the leaderboard
    done = frame[frame["state"] == "completed"]
    for arch in set(done["tags.architecture"]):
        assert f"<td>{arch}</td>" in page

    client = mlflow.MlflowClient(reports["uri"])
    parents = client.search_runs(
        [client.get_experiment_by_name(EXPERIMENT).experiment_id],
        "tags.run_type = 'sweep'", order_by=["attributes.start_time DESC"],
    )  # fmt: skip
    logged = {Path(a.path).name for a in client.list_artifacts(parents[0].info.run_id, "report")}
    assert {"index.html", *ALWAYS, *CHAMPION} <= logged


def test_the_search_covers_both_drivers(reports: dict[str, Any]) -> None:
    """What the trials tried, read back for every driver: each ended trial once, in the order
    they started, its proposal with the actual value where a driver proposed none (counted here
    with MLflow's own client)."""
    client = mlflow.MlflowClient(reports["uri"])
    exp = client.get_experiment_by_name(EXPERIMENT)
    runs = [r for r in client.search_runs([exp.experiment_id], max_results=1000)
            if r.data.tags.get("run_type") == "trial"]  # fmt: skip
    ended = [r for r in runs if r.data.tags.get("state") in ("completed", "stopped", "pruned",
                                                             "failed")]  # fmt: skip
    done = [r for r in ended if r.data.tags["state"] in ("completed", "stopped")]
    tried = proposals(trials_frame(reports["uri"], EXPERIMENT))
    assert len(tried) == len(ended) and set(tried["driver"]) == {"optuna", "kerastuner"}
    assert int(tried["val_mae"].notna().sum()) == len(done)
    assert tried["val_mae"].min() == pytest.approx(min(r.data.metrics["best_val_mae"]
                                                       for r in done))  # fmt: skip
    started = sorted(ended, key=lambda r: r.info.start_time)
    assert list(tried["number"]) == [int(r.data.tags["trial_number"]) for r in started]
    assert {"architecture", "units", "learning_rate"} <= set(tried.columns)
    for r, (_, row) in zip(started, tried.iterrows(), strict=True):
        if r.data.tags["state"] not in ("completed", "stopped"):
            continue  # a failed trial may have logged no params
        # Keras Tuner's trials searched no architecture: theirs is the actual one, as logged
        assert str(row["architecture"]) == r.data.params["architecture"]
        proposed = r.data.params.get("hp.units")  # none where a dense model has no RNN units
        assert pd.isna(row["units"]) if proposed is None else row["units"] == int(proposed)


def test_importances_are_the_share_of_variance_each_explains() -> None:
    """η² by hand: a parameter that splits the MAEs into 1s and 3s explains all of it, one
    balanced across them nothing, a third a quarter; one that never varies is left out."""
    done = pd.DataFrame({
        "number": range(4), "driver": "x", "state": "completed",
        "val_mae": [1.0, 1.0, 3.0, 3.0],
        "a": ["p", "p", "q", "q"],  # group means 1, 3: all of the variance (4 of 4)
        "b": ["p", "q", "p", "q"],  # group means 2, 2: none
        "c": ["p", "p", "p", "q"],  # means 5/3 (3 rows) and 3: 3·(1/3)² + 1² = 4/3 of 4
        "d": [8, 8, 8, 8],  # never varies
    })  # fmt: skip
    found = importances(done)
    assert list(found) == ["a", "c", "b"]
    assert found["a"] == pytest.approx(1.0) and found["b"] == pytest.approx(0.0)
    assert found["c"] == pytest.approx(1 / 3)
    assert importances(done.head(2)) == {}  # two candidates say nothing
    # a number of many values is grouped in quartile bins: 8 values, 2 per bin
    many = pd.DataFrame({"number": range(8), "driver": "x", "state": "completed",
                         "val_mae": [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0],
                         "lr": [1e-4, 2e-4, 1e-3, 2e-3, 1e-2, 2e-2, 1e-1, 2e-1]})  # fmt: skip
    assert importances(many) == {"lr": pytest.approx(1.0)}


@pytest.fixture(scope="module")
def chromium() -> str:
    """The browser (checked before the module's sweeps are built, so a skip is instant)."""
    binary = os.environ.get("JENA_TEST_CHROMIUM") or shutil.which("chromium")
    if not binary:
        require_in_ci("headless Chromium not found (set JENA_TEST_CHROMIUM or install chromium)")
    assert binary is not None
    return binary


def _run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", f"--user-data-dir={profile}", *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)


@pytest.mark.browser
def test_report_renders_in_headless_chromium(
    chromium: str, reports: dict[str, Any], in_tmp: Path
) -> None:
    binary = chromium
    folder: Path = reports["after"]
    # A probe copy of the page (same folder, same relative image paths) that writes, once
    # everything has loaded, how many images decoded with a real size.
    probe = folder / "probe.html"
    script = (
        "<script>window.addEventListener('load', () => {"
        "const imgs = [...document.images];"
        "document.body.dataset.images = imgs.length;"
        "document.body.dataset.loaded = imgs.filter(i => i.complete && i.naturalWidth > 100)"
        ".length;});</script>"
    )
    probe.write_text((folder / "index.html").read_text().replace("</body>", script + "</body>"))
    try:
        dom = _run_chromium(binary, in_tmp / "profile", "--virtual-time-budget=10000",
                            "--dump-dom", probe.as_uri())  # fmt: skip
    finally:
        probe.unlink()
    assert dom.returncode == 0, dom.stderr[-2000:]
    figures = len(ALWAYS + CHAMPION)
    assert f'data-images="{figures}"' in dom.stdout, dom.stdout[:500]
    assert f'data-loaded="{figures}"' in dom.stdout
    for name in ALWAYS + CHAMPION:
        assert f'src="{name}"' in dom.stdout

    shot = in_tmp / "report.png"
    result = _run_chromium(binary, in_tmp / "profile2", f"--screenshot={shot}",
                           "--window-size=1280,2000", (folder / "index.html").as_uri())  # fmt: skip
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.shape[:2] == (2000, 1280)
    not_white = (pixels.sum(axis=2) < 3 * 245).mean()
    assert not_white > 0.05, f"the screenshot is nearly blank ({not_white:.1%} ink)"
    # the leaderboard's bars (matplotlib's first colour) are on screen: the figures rendered
    blue = (np.abs(pixels - np.array([31, 119, 180])).sum(axis=2) < 30).sum()
    assert blue > 2_000, f"no figure on the screenshot ({blue} blue pixels)"
    assert re.search(r"Sweep reportmix", dom.stdout)
