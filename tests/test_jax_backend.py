"""The GPU path: under ``KERAS_BACKEND=jax`` with TensorFlow absent (as on a CUDA machine with
only JAX installed), the user's commands run unchanged: ``jena train``, a sweep with each driver
(and packed), ``jena best``, ``jena predict``. Run on the CPU in a subprocess whose
``import tensorflow`` fails; and workers spawned to share a device get XLA's preallocation off.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import require_in_ci

from jena.devices import MEM_FRACTION, PREALLOCATE, share_device

TESTS = Path(__file__).resolve().parent

NO_TENSORFLOW = """
import sys

class _NoTensorFlow:
    # `import tensorflow` fails, as on a machine where only JAX is installed
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoTensorFlow())
"""

COMMANDS = """
import contextlib, io, json, os, sys, time
sys.path.insert(0, os.environ["JENA_TESTS"])
from conftest import TINY, TINY_SETS, children, runs
import keras
import numpy as np
from jena.cli import main
from jena.data import load
from jena.schema import COLUMNS, write_jena_csv
from jena.tracking import default_tracking_uri, load_trial_model

assert keras.backend.backend() == "jax", keras.backend.backend()
seconds, printed = {}, {}

def cli(name, *args):
    started = time.perf_counter()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(args))
    seconds[name] = round(time.perf_counter() - started, 1)
    printed[name] = out.getvalue()
    assert code == 0, (name, code)

sets = [a for s in TINY_SETS for a in ("--set", s)]
fits = ["--set", 'space.ranges={architecture=["dense", "lstm", "gru"]}']  # all fit 48 steps
cli("train", "train", "--model", "lstm", "--data", TINY, "--epochs", "1", "--steps-per-epoch",
    "1", "--validation-steps", "1", "--set", "sequence_length=24", "--json")
residual = ["--set",  # the models `best` and `predict` reload are residual (LastValue) ones
            "space.fixed={sequence_length_hours=48, normalise_target=true, rnn_layers=1, "
            "residual=true}"]
cli("sweep optuna", "sweep", "default", "--name", "jx", "--trials", "2", *sets, *fits, *residual)
cli("sweep kerastuner", "sweep", "default", "--name", "jxk", "--trials", "2", *sets, *fits,
    "--set", 'driver="kerastuner"')
cli("sweep packed", "sweep", "default", "--name", "jxp", "--trials", "3", *sets,
    "--set", "packing.size=2", "--set", 'space.include=["learning_rate"]',
    "--set", 'space.fixed={architecture="lstm", units=8, sequence_length_hours=48, rnn_layers=1}')
cli("best", "best", "--experiment", "jx", "--force", "--no-refit", "--json")
csv = write_jena_csv(load(TINY).frame.iloc[-3 * 144:], "last_days.csv")
cli("predict", "predict", "--data", str(csv), "--json")
states = {name: sorted(k.data.tags.get("state", "") for k in children(runs(name)))
          for name in ("jx", "jxk", "jxp")}
kids = children(runs("jx"))
residual = sorted({str(k.data.params.get("residual")).lower() for k in kids})
best = json.loads(printed["best"])
done = [k for k in kids if k.data.tags.get("state") == "completed"]
winner = min(done, key=lambda k: k.data.metrics["best_val_mae"])
# the forecast by hand: the winner's own Keras model on the last window, normalised with the
# statistics stored with it
model, cfg = load_trial_model(default_tracking_uri(), winner.info.run_id)
frame = load(str(csv)).frame
x = (frame[list(COLUMNS)].to_numpy(np.float64) - cfg["mean"]) / cfg["std"]
r, n = cfg["sampling_rate"], cfg["sequence_length"]
window = x[len(frame) - (n - 1) * r - 1 + np.arange(n) * r][None].astype(np.float32)
y = float(model.predict(window, verbose=0).reshape(-1)[0])
if cfg["normalised_target"]:
    y = y * cfg["std"][1] + cfg["mean"][1]
print(json.dumps({"seconds": seconds, "states": states, "residual": residual,
                  "tensorflow": "tensorflow" in sys.modules, "best": best,
                  "winner": winner.info.run_id, "plain": not (cfg["wind_vector"]
                  or cfg["time_features"]), "predicted": json.loads(printed["predict"]),
                  "by_hand": y, "last_t": float(frame["T (degC)"].iloc[-1])}))
"""


def jax_without_tensorflow(tmp_path: Path) -> dict[str, str]:
    """The environment of a subprocess under JAX whose ``import tensorflow`` fails (skips, or
    fails under CI=true, where JAX is not installed)."""
    try:
        import jax  # noqa: F401
    except ImportError:
        require_in_ci("JAX is not installed (pip install jax; the `test` extra has it)")
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent(NO_TENSORFLOW))
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
           "JENA_TESTS": str(TESTS), "JENA_DATA_DIR": str(tmp_path / "data"),
           "PYTHONPATH": os.pathsep.join([str(site), str(TESTS.parent),
                                          os.environ.get("PYTHONPATH", "")])}  # fmt: skip
    for name in ("JENA_TRACKING_URI", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        env.pop(name, None)  # the subprocess's stores are its own
    return env


def test_commands_run_unchanged_under_jax_without_tensorflow(tmp_path: Path) -> None:
    env = jax_without_tensorflow(tmp_path)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(COMMANDS)], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=400)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["tensorflow"] is False  # nothing imported it (and nothing needed it)
    for name, states in out["states"].items():
        assert states and all(s in ("completed", "pruned") for s in states), (name, states)
    assert len(out["states"]["jxp"]) == 3
    assert out["residual"] == ["persistence"]  # `residual=true`, read as persistence, under JAX
    best, predicted = out["best"], out["predicted"]
    assert best["run_id"] == out["winner"]  # the completed trial with the lowest val MAE
    assert math.isfinite(best["test_mae"]) and best["test_mae"] > 0
    assert out["plain"]  # the 14 columns as they are: the window by hand above is the model's
    assert predicted["forecast"] == pytest.approx(out["by_hand"], abs=1e-4)
    assert predicted["persistence"] == pytest.approx(out["last_t"])


def test_workers_sharing_a_device_get_no_preallocation() -> None:
    env = {"KERAS_BACKEND": "jax"}
    assert share_device(4, env) == {PREALLOCATE: "false", MEM_FRACTION: "0.23"}
    assert env[PREALLOCATE] == "false"
    mine = {"KERAS_BACKEND": "jax", PREALLOCATE: "true"}  # the user's setting wins
    assert share_device(2, mine) == {MEM_FRACTION: "0.45"} and mine[PREALLOCATE] == "true"
    assert share_device(1, {"KERAS_BACKEND": "jax"}) == {}  # one process: XLA's default
    assert share_device(4, {"KERAS_BACKEND": "tensorflow"}) == {}
