"""The registered champion outside this tool: the pyfunc on a plain ``pd.read_csv`` frame and on
a DatetimeIndex of every resolution, with its calibrated interval, its signature and input
example, one-line refusals (in process and from a real ``mlflow models serve``), loading where
``jena`` cannot be imported, a model registered without an interval calibration, and
requirements that follow the members' Keras backend."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import TINY, TINY_SETS
from mlflow.exceptions import MlflowException

from jena import cli
from jena.data import Dataset, load, repair
from jena.prepare import feature_matrix
from jena.schema import COLUMNS, DATE_COLUMN, DATE_FORMAT, write_jena_csv

CHAMPION = "models:/jena-temperature@champion"
ROWS = 139  # 24 hourly steps: (24 - 1) * 6 + 1 rows
# residual (LastValue), wind vector and time features: every part of the shipped code is used
SETS = ('space.include=["learning_rate"]',
        'space.fixed={architecture="gru", units=8, sequence_length_hours=24, rnn_layers=1, '
        "normalise_target=true, residual=true, wind_vector=true, time_features=true}")  # fmt: skip
UNITS = ("s", "ms", "us", "ns")


@dataclass(frozen=True)
class Champion:
    root: Path
    uri: str
    local: Path  # the registered model, downloaded
    csv: Path  # three days in the Jena format
    expected: dict[str, Any]  # `jena predict --json` on the CSV


def jena_json(*argv: str) -> dict[str, Any]:
    with contextlib.redirect_stdout(buffer := io.StringIO()):
        code = cli.main([*argv, "--json"])
    assert code == 0
    return dict(json.loads(buffer.getvalue()))


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory) -> Champion:
    """A one-trial sweep, `jena best`, the model downloaded and `jena predict` on three days."""
    root = tmp_path_factory.mktemp("serving")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("JENA_TRACKING_URI", raising=False)
        sets = [a for s in (*TINY_SETS, *SETS) for a in ("--set", s)]
        with contextlib.redirect_stdout(io.StringIO()):  # the sweep's display
            assert cli.main(["sweep", "default", "--name", "serving", "--trials", "1",
                             "--tracking-uri", uri, *sets]) == 0  # fmt: skip
        jena_json("best", "--force", "--no-refit", "--experiment", "serving", "--tracking-uri", uri)
        csv = write_jena_csv(load(TINY).frame.iloc[-3 * 144 :], root / "last.csv")
        expected = jena_json("predict", "--data", str(csv), "--tracking-uri", uri)
    client = mlflow.MlflowClient(uri)
    version = client.get_model_version_by_alias("jena-temperature", "champion")
    local = Path(client.download_artifacts(version.run_id, "forecaster", str(root / "model")))
    return Champion(root, uri, local, csv, expected)


@pytest.fixture(scope="module")
def pyfunc(champion: Champion) -> Any:
    return mlflow.pyfunc.load_model(str(champion.local))


def check_forecast(table: pd.DataFrame, expected: dict[str, Any]) -> None:
    """One row equal to ``expected`` (`jena predict --json`), its interval included where
    ``expected`` has one."""
    assert len(table) == 1
    row = table.iloc[0]
    assert float(row["forecast"]) == pytest.approx(expected["forecast"], rel=1e-5, abs=1e-5)
    assert float(row["persistence"]) == pytest.approx(expected["persistence"])
    assert pd.Timestamp(row["last_time"]) == pd.Timestamp(expected["last_time"])
    assert pd.Timestamp(row["target_time"]) == pd.Timestamp(expected["target_time"])
    if "low" not in expected:
        assert not {"level", "low", "high"} & set(table.columns), list(table.columns)
        return
    assert float(row["level"]) == expected["level"] == 0.9
    assert float(row["low"]) == pytest.approx(expected["low"], rel=1e-5, abs=1e-5)
    assert float(row["high"]) == pytest.approx(expected["high"], rel=1e-5, abs=1e-5)
    assert float(row["low"]) <= float(row["forecast"]) <= float(row["high"])
    assert float(row["low"]) < float(row["high"])


# --------------------------------------------------------------------------- time resolution


def test_loading_and_features_do_not_depend_on_the_time_resolution() -> None:
    frame = load("synthetic:2000:1").frame
    gappy = frame.drop(index=frame.index[[5, 6, 300]])  # repaired by interpolation
    base, names = feature_matrix(frame.set_axis(frame.index.as_unit("ns")), wind_vector=True,
                                 time_features=True)  # fmt: skip
    six = frame.index.get_indexer([frame.index[frame.index.hour == 6][0]])[0]
    assert base[six, names.index("day sin")] == pytest.approx(1.0)  # 06:00 is a quarter day
    fixed, valid, report = repair(gappy.set_axis(gappy.index.as_unit("ns")))
    digest = Dataset(fixed, valid, "x", report).digest
    for unit in UNITS:
        got, _ = feature_matrix(frame.set_axis(frame.index.as_unit(unit)), wind_vector=True,
                                time_features=True)  # fmt: skip
        np.testing.assert_array_equal(got, base, err_msg=unit)
        again, valid_again, report_again = repair(gappy.set_axis(gappy.index.as_unit(unit)))
        pd.testing.assert_frame_equal(again, fixed)
        assert report_again.inserted_rows == report.inserted_rows == 3
        assert Dataset(again, valid_again, "x", report_again).digest == digest


def test_pyfunc_reads_a_plain_csv_and_any_resolution(champion: Champion, pyfunc: Any) -> None:
    raw = pd.read_csv(champion.csv)  # `Date Time` as strings
    assert {"level", "low", "high"} <= champion.expected.keys()  # `jena predict --json`
    check_forecast(pyfunc.predict(raw), champion.expected)
    for unit in UNITS:
        times = pd.to_datetime(raw[DATE_COLUMN], format=DATE_FORMAT).astype(f"datetime64[{unit}]")
        frame = raw.drop(columns=[DATE_COLUMN]).set_index(pd.DatetimeIndex(times))
        assert frame.index.unit == unit
        check_forecast(pyfunc.predict(frame), champion.expected)
    iso = raw.assign(**{DATE_COLUMN: pd.to_datetime(raw[DATE_COLUMN], format=DATE_FORMAT)
                        .dt.strftime("%Y-%m-%dT%H:%M:%S")})  # fmt: skip
    check_forecast(pyfunc.predict(iso), champion.expected)


# --------------------------------------------------------------------------- what MLflow shows


def test_signature_input_example_and_description(champion: Champion, pyfunc: Any) -> None:
    schema = pyfunc.metadata.get_input_schema()
    assert schema is not None and schema.input_names() == [DATE_COLUMN, *COLUMNS]
    assert pyfunc.metadata.get_output_schema().input_names() == [
        "last_time", "target_time", "forecast", "persistence", "level", "low", "high"]  # fmt: skip
    example = pyfunc.metadata.load_input_example(str(champion.local))
    assert list(example.columns) == [DATE_COLUMN, *COLUMNS] and len(example) == ROWS
    assert pyfunc.predict(example)["forecast"].notna().all()
    assert pyfunc.metadata.metadata["rows_needed"] == ROWS
    version = mlflow.MlflowClient(champion.uri).get_model_version_by_alias(
        "jena-temperature", "champion")  # fmt: skip
    assert f"the last {ROWS} rows" in version.description
    assert "level, low, high: its central 90 % interval" in version.description
    requirements = (champion.local / "requirements.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in requirements if "==" in line)
    import keras

    assert pins["keras"] == keras.__version__ and "tensorflow-cpu" in pins
    assert not {"jax", "jaxlib"} & pins.keys()


# --------------------------------------------------------------------------- refusals


def bad_inputs(csv: Path) -> dict[str, tuple[pd.DataFrame, str]]:
    """name -> (input, the one line it is refused with)."""
    raw = pd.read_csv(csv)
    gap = raw.drop(index=len(raw) - 40)
    before = raw[DATE_COLUMN].iloc[-41]
    kelvin = raw.assign(**{"T (degC)": raw["T (degC)"] + 273.15})
    median = float(np.median(kelvin["T (degC)"].iloc[-ROWS:]))
    return {
        "too few rows": (
            raw.iloc[-50:],
            "50 rows (8 h 20 min) are too few for this model: its window needs 139 rows "
            "(23 h 10 min) of 10-minute records ending at the last row (24 steps every 60 min)",
        ),
        "a gap": (
            gap,
            f"a gap in the last window: {before} is followed by {raw[DATE_COLUMN].iloc[-39]} "
            "(1 row missing): the window needs 139 consecutive 10-minute records",
        ),
        "a missing column": (
            raw.drop(columns=["rh (%)"]),
            'the input lacks the column "rh (%)" (it needs the 14 columns of the Jena record)',
        ),
        "kelvin": (
            kelvin,
            f'column "T (degC)" looks like kelvin (median {median:.1f}): convert to °C '
            "(subtract 273.15)",
        ),
    }


def test_bad_inputs_are_refused_in_one_line(champion: Champion, pyfunc: Any) -> None:
    for name, (frame, line) in bad_inputs(champion.csv).items():
        with pytest.raises(MlflowException) as caught:
            pyfunc.predict(frame)
        assert caught.value.error_code == "INVALID_PARAMETER_VALUE", name
        assert caught.value.message == line, name


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def split(frame: pd.DataFrame) -> dict[str, Any]:
    """The documented request: ``dataframe_split`` of the last rows."""
    return {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}


def mlflow_env(champion: Champion) -> dict[str, str]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": champion.uri}
    env.pop("MLFLOW_REGISTRY_URI", None)
    return env


@contextlib.contextmanager
def served(root: Path, uri: str) -> Iterator[str]:
    """A real `mlflow models serve` of the champion on a free loopback port, answering /ping:
    its address (the server is stopped on the way out)."""
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    env.pop("MLFLOW_REGISTRY_URI", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # uvicorn
    with (root / "serve.log").open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "models", "serve", "-m", CHAMPION, "--env-manager",
             "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while True:
                assert server.poll() is None, (root / "serve.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "mlflow models serve did not answer /ping"
                with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/ping") as r:
                    if r.status == 200:
                        break
                time.sleep(1)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()


@pytest.mark.slow
def test_mlflow_models_serve_answers_and_refuses(champion: Champion) -> None:
    with served(champion.root, champion.uri) as url:
        raw = pd.read_csv(champion.csv)
        status, answer = post(f"{url}/invocations", split(raw.iloc[-ROWS:]))
        assert status == 200, answer
        assert {"level", "low", "high"} <= answer["predictions"][0].keys(), answer
        check_forecast(pd.DataFrame(answer["predictions"]), champion.expected)
        for name, (frame, line) in bad_inputs(champion.csv).items():
            status, answer = post(f"{url}/invocations", split(frame))
            assert status == 400, (name, answer)
            assert answer["error_code"] == "INVALID_PARAMETER_VALUE", name
            assert answer["message"] == line, name
            assert "stack_trace" not in answer, name


@pytest.mark.slow
def test_mlflow_models_predict_prints_the_forecast(champion: Champion) -> None:
    out = champion.root / "predictions.json"
    proc = subprocess.run(
        [sys.executable, "-m", "mlflow", "models", "predict", "-m", CHAMPION, "-i",
         str(champion.csv), "-t", "csv", "-o", str(out), "--env-manager", "local"],
        cwd=champion.root, env=mlflow_env(champion), capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    answer = json.loads(out.read_text())
    check_forecast(pd.DataFrame(answer["predictions"]), champion.expected)


def without_calibration(model: Path, folder: Path) -> Path:
    """``model`` as a version registered before intervals: its data configuration without a
    calibration, its signature's output without the interval's columns."""
    from mlflow.models import Model
    from mlflow.types.schema import ColSpec, Schema

    old = Path(shutil.copytree(model, folder))
    config = old / "artifacts" / "data_config.json"
    data = json.loads(config.read_text())
    assert data.pop("calibration")
    config.write_text(json.dumps(data))
    meta = Model.load(str(old / "MLmodel"))
    assert meta.signature is not None
    meta.signature.outputs = Schema([ColSpec("string" if k.endswith("_time") else "double", k)
                                     for k in ("last_time", "target_time", "forecast",
                                               "persistence")])  # fmt: skip
    meta.save(str(old / "MLmodel"))
    return old


def test_a_model_without_calibration_still_loads_and_answers(
    champion: Champion, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = without_calibration(champion.local, tmp_path / "old")
    model = mlflow.pyfunc.load_model(str(old))
    answer = model.predict(pd.read_csv(champion.csv))
    assert list(answer.columns) == ["last_time", "target_time", "forecast", "persistence"]
    plain = {k: v for k, v in champion.expected.items() if k not in ("level", "low", "high")}
    check_forecast(answer, plain)
    predicted = jena_json("predict", "--model", str(old), "--data", str(champion.csv))
    assert "low" not in predicted and "intervals" not in predicted
    assert predicted["forecast"] == pytest.approx(champion.expected["forecast"], rel=1e-5)
    assert cli.main(["predict", "--model", str(old), "--data", str(champion.csv)]) == 0
    assert "carries no interval calibration" in capsys.readouterr().out


def test_jena_predict_says_the_interval(
    champion: Champion, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["predict", "--data", str(champion.csv), "--tracking-uri", champion.uri]) == 0
    e = champion.expected
    line = f"forecast {e['forecast']:.1f} °C, 90 % interval [{e['low']:.1f}, {e['high']:.1f}]"
    assert line in capsys.readouterr().out


# --------------------------------------------------------------------------- self-contained

WITHOUT_JENA = """
import json, sys
sys.modules["jena"] = None  # `import jena` fails, as where the project is not installed
sys.modules["sweeps"] = None
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
row = model.predict(pd.read_csv(sys.argv[2])).iloc[0]
import keras
print(json.dumps({"forecast": float(row["forecast"]), "low": float(row["low"]),
                  "high": float(row["high"]), "backend": keras.backend.backend(),
                  "jena": sorted(m for m in sys.modules if m.split(".")[0] in ("jena", "sweeps")
                                 and sys.modules[m] is not None)}))
"""


def test_the_model_loads_where_jena_cannot_be_imported(champion: Champion, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["KERAS_BACKEND"] = "jax"  # the user's; the members were trained under TensorFlow
    proc = subprocess.run([sys.executable, "-c", WITHOUT_JENA, str(champion.local),
                           str(champion.csv)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["forecast"] == pytest.approx(champion.expected["forecast"], rel=1e-5, abs=1e-5)
    assert out["low"] == pytest.approx(champion.expected["low"], rel=1e-5, abs=1e-5)
    assert out["high"] == pytest.approx(champion.expected["high"], rel=1e-5, abs=1e-5)
    assert out["backend"] == "tensorflow"  # load_context set it before Keras was imported
    assert out["jena"] == []


JAX_CHAMPION = """
import json, sys
from jena.cli import main
assert main(["sweep", "default", "--name", "jx", "--trials", "1", *sys.argv[1:]]) == 0
assert main(["best", "--experiment", "jx", "--force", "--no-refit", "--json"]) == 0
import mlflow
from jena.tracking import default_tracking_uri
mlflow.set_tracking_uri(default_tracking_uri())
path = mlflow.pyfunc.get_model_dependencies("models:/jena-temperature@champion")
meta = mlflow.models.get_model_info("models:/jena-temperature@champion").metadata
print(json.dumps({"requirements": open(path).read().split(), "backend": meta.get("keras_backend"),
                  "tensorflow": "tensorflow" in sys.modules}))
"""


@pytest.mark.slow
def test_a_model_trained_under_jax_requires_no_tensorflow(tmp_path: Path) -> None:
    from test_jax_backend import jax_without_tensorflow

    env = jax_without_tensorflow(tmp_path)
    sets = [a for s in (*TINY_SETS, *SETS) for a in ("--set", s)]
    proc = subprocess.run([sys.executable, "-c", JAX_CHAMPION, *sets], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=400)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    names = {line.split("==")[0] for line in out["requirements"]}
    assert out["backend"] == "jax" and out["tensorflow"] is False, out
    assert {"keras", "jax", "jaxlib", "numpy", "pandas", "mlflow"} <= names
    assert not any(name.startswith("tensorflow") for name in names), out["requirements"]
