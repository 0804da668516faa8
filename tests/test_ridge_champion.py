"""The ridge as a candidate for champion (issue 28): when no refit configuration beats the linear
reference on validation, ``jena best`` registers the ridge — said plainly, evaluated once on
test, served the MLflow way like every champion."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import TINY_SETS
from test_serving import WITHOUT_JENA, jena_json, post, served, split

from jena import cli
from jena.data import load
from jena.linear import fit_ridge
from jena.prepare import prepare
from jena.schema import write_jena_csv

DATA = "synthetic:52704:1"  # a year: blocked, where the ridge is hard to beat
# dense networks without a residual, one epoch of two batches, a one-epoch refit of one seed:
# none of them comes near the ridge
SETS = (*TINY_SETS, f"data.source={json.dumps(DATA)}", 'data.preset="blocked"',
        'space.include=["learning_rate"]',
        'space.fixed={architecture="dense", sequence_length_hours=24, residual="none"}',
        "refit.top_k=1", "refit.seeds=1", "refit.epochs=1", "refit.patience=1",
        "refit.rung_epochs=0")  # fmt: skip


@pytest.fixture(scope="module")
def won(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("ridgewin")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("JENA_TRACKING_URI", raising=False)
        sets = [a for s in SETS for a in ("--set", s)]
        with contextlib.redirect_stdout(io.StringIO()):
            assert cli.main(["sweep", "default", "--name", "ridgewin", "--trials", "2",
                             "--tracking-uri", uri, *sets]) == 0  # fmt: skip
        best = jena_json("best", "--force", "--experiment", "ridgewin", "--tracking-uri", uri)
        frame = load(DATA).frame
        # three days ending a day before the record's end: the forecast's target is its last row
        csv = write_jena_csv(frame.iloc[-4 * 144 - 1 : -144], root / "last.csv")
        expected = jena_json("predict", "--data", str(csv), "--tracking-uri", uri)
    client = mlflow.MlflowClient(uri)
    version = client.get_model_version_by_alias("jena-temperature", "champion")
    local = Path(client.download_artifacts(version.run_id, "forecaster", str(root / "model")))
    return {"root": root, "uri": uri, "best": best, "csv": csv, "expected": expected,
            "version": version, "local": local}  # fmt: skip


def test_the_ridge_is_the_champion_and_says_so(won: dict[str, Any]) -> None:
    best = won["best"]
    assert best["kind"] == "ridge" and best["architecture"] == "ridge (linear reference)"
    assert best["ridge_note"].startswith("the linear reference is the best forecaster here: "
                                         "the networks did not beat it")  # fmt: skip
    assert best["val_vs_ridge"] is None and best["test_vs_ridge"] is None  # not against itself
    assert best["val_vs_persistence"]["windows"] > 0 and best["test_windows"] > 0
    version = won["version"]
    assert version.tags["kind"] == "ridge"
    assert version.run_id == best["run_id"]
    run = mlflow.MlflowClient(won["uri"]).get_run(best["run_id"])
    assert run.data.tags["run_type"] == "ridge" and run.data.params["residual"] == "ridge"


def test_its_forecast_is_the_ridges_by_hand(won: dict[str, Any]) -> None:
    """`jena predict` with the registered ridge equals jena.linear fitted on the training
    windows, at the row 144 before the record's end."""
    p = prepare(load(DATA), "blocked", include_test=True)
    last = np.array([p.rows - 145])
    assert won["expected"]["forecast"] == pytest.approx(
        float(fit_ridge(p).predict(p, last)[0]), abs=1e-4
    )
    assert won["expected"]["low"] < won["expected"]["forecast"] < won["expected"]["high"]


def test_the_registered_ridge_loads_where_jena_cannot_be_imported(
    won: dict[str, Any], tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", WITHOUT_JENA, str(won["local"]),
                           str(won["csv"])], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["forecast"] == pytest.approx(won["expected"]["forecast"], rel=1e-5, abs=1e-5)
    assert out["jena"] == []


@pytest.mark.slow
def test_mlflow_models_serve_answers_with_the_ridges_forecast(won: dict[str, Any]) -> None:
    with served(won["root"], won["uri"]) as url:
        status, answer = post(f"{url}/invocations", split(pd.read_csv(won["csv"])))
        assert status == 200, answer
        row = answer["predictions"][0]
        assert row["forecast"] == pytest.approx(won["expected"]["forecast"], abs=1e-5)
        assert row["low"] == pytest.approx(won["expected"]["low"], abs=1e-5)


def test_the_report_names_the_ridge_as_the_champion(won: dict[str, Any]) -> None:
    out = won["root"] / "report"
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(["report", "--experiment", "ridgewin", "--tracking-uri", won["uri"],
                         "--out", str(out), "--no-log"]) == 0  # fmt: skip
    page = next(out.glob("*.html")).read_text()
    assert "ridge (linear reference): no network beat it on validation" in page
    assert f"{won['best']['test_mae']:.4f}" in page
