"""The one look at the test split: pick a sweep's best model, evaluate it, register it, forecast.

``jena best`` (:func:`evaluate_best`):

1. selects the best *completed* trial of an experiment by validation MAE, over every driver and
   every invocation of the sweep (:func:`jena.tracking.trials_frame`); pruned, failed and killed
   trials never win;
2. downloads its model and data configuration (:func:`jena.tracking.load_trial_model`), reloads
   the record it was trained on (the run's ``data_source`` tag, or ``--data``) and refuses data
   whose digest differs from the run's ``data_digest`` tag;
3. rebuilds the test windows with the trial's preset, sampling rate, sequence length and feature
   flags, normalised with the statistics stored with the model (checked against the ones
   recomputed from the training rows), and computes the model's and the persistence baseline's
   MAE in °C on the same windows;
4. records the evaluation on the trial's run: metrics ``test_mae``, ``test_skill``,
   ``baseline_test_mae``, ``test_windows`` and ``test_evaluations`` (step = evaluation number),
   tags ``test_evaluations`` (count) and ``test_evaluated_at`` (JSON list of UTC timestamps), and
   the artifact ``test_predictions.csv`` (the report plots it, so the report never reads test
   rows itself). Evaluating the same run again is allowed but is announced as what it is: the
   test figure stops being an unbiased estimate once it has guided a decision;
5. logs an :mod:`mlflow.pyfunc` model (:class:`ForecastModel`: the ``.keras`` file plus
   ``data_config.json``) under the run's artifact directory ``forecaster/`` and registers it in
   the MLflow Model Registry (default ``jena-temperature``, alias ``champion``), so that
   ``models:/jena-temperature@champion`` carries everything ``jena predict`` needs.

Only this module (and ``jena baseline``) ever asks :func:`jena.prepare.prepare` for test rows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import re
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PythonModel

from .data import Dataset
from .data import load as load_data
from .errors import ConfigError, DataError
from .prepare import Prepared, feature_matrix, prepare
from .schema import DATE_COLUMN, DATE_FORMAT, STEP, TARGET, TARGET_INDEX
from .tracking import (
    DATA_CONFIG_FILE,
    MODEL_DIR,
    MODEL_FILE,
    default_tracking_uri,
    load_trial_model,
    trials_frame,
)

if TYPE_CHECKING:
    import keras

__all__ = [
    "ALIAS",
    "PREDICTIONS_FILE",
    "PYFUNC_DIR",
    "REGISTERED_NAME",
    "Evaluation",
    "Forecast",
    "ForecastModel",
    "Forecaster",
    "evaluate_best",
    "load_forecaster",
    "select_best",
    "spec_from_source",
]

REGISTERED_NAME = "jena-temperature"
ALIAS = "champion"
PYFUNC_DIR = "forecaster"
PREDICTIONS_FILE = "test_predictions.csv"
EVALUATION_FILE = "test_evaluation.json"
TAG_COUNT = "test_evaluations"
TAG_TIMES = "test_evaluated_at"
STATS_RTOL = 1e-9
PYFUNC_MARKER = "jena_forecaster"

_log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- helpers


def _uri(tracking_uri: str | None) -> str:
    from .tracking import _absolute_uri

    return _absolute_uri(tracking_uri) if tracking_uri else default_tracking_uri()


def _client(uri: str) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No progress bars, no MLflow advice about signatures or pickling for our own wrapper."""
    name = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    old = os.environ.get(name)
    os.environ[name] = "false"
    level = logging.getLogger("mlflow").level
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.getLogger("mlflow").setLevel(level)
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


_SYNTHETIC_SOURCE = re.compile(r"synthetic\(rows=(\d+), seed=(\d+)\)")


def spec_from_source(source: str) -> str:
    """The ``--data`` spec that reloads a :attr:`jena.data.Dataset.source`."""
    match = _SYNTHETIC_SOURCE.fullmatch(source.strip())
    if match:
        return f"synthetic:{match.group(1)}:{match.group(2)}"
    return source.strip()


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _label(row: Mapping[Any, Any]) -> str:
    """The model preset of a trial if it has one, else its architecture."""
    for key in ("tags.model_preset", "tags.architecture", "params.architecture"):
        value = row.get(key)
        if isinstance(value, str) and value:
            return value
    return "?"


# --------------------------------------------------------------------------- selection


def select_best(frame: pd.DataFrame) -> pd.Series:
    """The completed trial with the lowest validation MAE (ties: the earlier one).

    Pruned, failed, killed and running trials are ignored, and so are trials without a logged
    model (nothing to evaluate)."""
    if frame.empty:
        raise ConfigError("the experiment has no trials yet: run a sweep first")
    done = frame[(frame["state"] == "completed") & frame["val_mae"].map(_finite).notna()]
    if "tags.model_artifact" in done.columns:
        done = done[done["tags.model_artifact"].notna()]
    else:
        done = done.iloc[0:0]
    if done.empty:
        counts = frame["state"].value_counts().to_dict()
        shown = ", ".join(f"{v} {k}" for k, v in counts.items())
        raise ConfigError(f"no completed trial with a logged model in the experiment ({shown})")
    done = done.sort_values(["val_mae", "start_time"], kind="stable")
    return done.iloc[0]


# --------------------------------------------------------------------------- forecasting


@dataclass(frozen=True)
class Forecast:
    """One forecast from the window that ends at the last row of a record."""

    last_time: pd.Timestamp
    target_time: pd.Timestamp
    forecast: float  # °C
    persistence: float  # °C: the last temperature of the window
    rows_used: int
    invalid_rows: int = 0  # rows of the window that the loader synthesised inside a long gap

    def to_dict(self) -> dict[str, Any]:
        return {
            "last_time": self.last_time.isoformat(),
            "target_time": self.target_time.isoformat(),
            "forecast": self.forecast,
            "persistence": self.persistence,
            "rows_used": self.rows_used,
            "invalid_rows": self.invalid_rows,
        }


class Forecaster:
    """A trained model with its data configuration: from raw records to °C forecasts.

    Inputs are normalised with the statistics stored with the model (those of its training
    rows), never with statistics of the data it is applied to."""

    def __init__(self, model: keras.Model, data_config: Mapping[str, Any]) -> None:
        self.model = model
        self.data_config = dict(data_config)
        cfg = self.data_config
        self.sampling_rate = int(cfg["sampling_rate"])
        self.sequence_length = int(cfg["sequence_length"])
        self.offset = int(cfg["offset"])
        self.mean = np.asarray(cfg["mean"], dtype=np.float64)
        self.std = np.asarray(cfg["std"], dtype=np.float64)
        self.normalised_target = bool(cfg["normalised_target"])
        self.target_index = int(cfg.get("target_index", TARGET_INDEX))
        self.wind_vector = bool(cfg.get("wind_vector", False))
        self.time_features = bool(cfg.get("time_features", False))
        self.feature_names = list(cfg.get("feature_names", []))
        trial = cfg.get("trial_config") or {}
        self.batch_size = int(trial.get("batch_size") or 256)

    @property
    def span(self) -> int:
        """Rows from a window's first input row to its last one."""
        return (self.sequence_length - 1) * self.sampling_rate

    @property
    def rows_needed(self) -> int:
        return self.span + 1

    @property
    def lead(self) -> pd.Timedelta:
        """From the last input row to the forecast's target time (24 h for book2)."""
        return (self.offset - self.span) * STEP

    def features(self, frame: pd.DataFrame) -> np.ndarray:
        """Normalised model inputs (rows, features) float32, with the stored statistics."""
        values, names = feature_matrix(
            frame, wind_vector=self.wind_vector, time_features=self.time_features
        )
        if self.feature_names and names != self.feature_names:
            raise ConfigError(
                f"the model expects the features {self.feature_names}, the data gives {names}"
            )
        if values.shape[1] != len(self.mean):
            raise ConfigError(
                f"the model's statistics cover {len(self.mean)} features, the data has "
                f"{values.shape[1]}"
            )
        return ((values - self.mean) / self.std).astype(np.float32)

    def to_celsius(self, outputs: np.ndarray) -> np.ndarray:
        y = np.asarray(outputs, dtype=np.float64).reshape(-1)
        if self.normalised_target:
            y = y * self.std[self.target_index] + self.mean[self.target_index]
        return y

    def window(self, x: np.ndarray, start: int) -> np.ndarray:
        """The window starting at row ``start`` of the normalised inputs: (1, steps, features)."""
        rows = start + np.arange(self.sequence_length) * self.sampling_rate
        return x[rows][None, ...]

    def forecast(
        self, frame: pd.DataFrame, valid: np.ndarray | None = None, *, source: str | None = None
    ) -> Forecast:
        """Forecast from the window that ends at the last row of ``frame`` (a repaired record
        on the 10-minute grid: a :attr:`jena.data.Dataset.frame`)."""
        frame = _as_record(frame)
        if len(frame) < self.rows_needed:
            where = f"{source}: " if source else ""
            raise DataError(
                f"{where}{len(frame):,} rows ({_hours(len(frame))}) are too few for this model: "
                f"its window needs {self.rows_needed:,} rows ({_hours(self.rows_needed)}) of "
                f"10-minute records ending at the last row ({self.sequence_length} steps every "
                f"{self.sampling_rate * 10} min)"
            )
        start = len(frame) - self.rows_needed
        tail = frame.iloc[start:]
        gaps = np.diff(pd.DatetimeIndex(tail.index).asi8)
        if len(gaps) and not np.all(gaps == STEP.value):
            raise DataError(
                "the last window is not on a regular 10-minute grid: load the file with "
                "jena.data.load (it repairs missing and duplicated timestamps)"
            )
        x = self.features(tail)
        window = self.window(x, 0)
        output = self.model.predict(window, verbose=0)
        temperature = tail[TARGET].to_numpy(np.float64)
        invalid = 0
        if valid is not None:
            invalid = int(np.sum(~np.asarray(valid, dtype=bool)[start:]))
        last_time = pd.Timestamp(tail.index[-1])
        return Forecast(
            last_time=last_time,
            target_time=last_time + self.lead,
            forecast=float(self.to_celsius(output)[0]),
            persistence=float(temperature[-1]),
            rows_used=self.rows_needed,
            invalid_rows=invalid,
        )


def _hours(rows: int) -> str:
    minutes = rows * 10
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def _as_record(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame indexed by time: a DatetimeIndex, or a ``Date Time`` column (parsed)."""
    if isinstance(frame.index, pd.DatetimeIndex):
        return frame
    if DATE_COLUMN in frame.columns:
        times = frame[DATE_COLUMN]
        if not pd.api.types.is_datetime64_any_dtype(times):
            times = pd.to_datetime(times, format=DATE_FORMAT)
        return frame.drop(columns=[DATE_COLUMN]).set_index(pd.DatetimeIndex(times))
    raise DataError(f"the record needs a DatetimeIndex or a {DATE_COLUMN!r} column")


class ForecastModel(PythonModel):
    """The registered model: ``predict(frame)`` → one row (last_time, target_time, forecast,
    persistence) for the window that ends at the last row of ``frame`` (the Jena columns,
    indexed by time or with a ``Date Time`` column, on the 10-minute grid)."""

    forecaster: Forecaster

    def load_context(self, context: Any) -> None:
        import keras

        import jena.models  # noqa: F401  (registers custom layers such as ReverseTime)

        model = keras.saving.load_model(context.artifacts["keras_model"], compile=False)
        config = json.loads(Path(context.artifacts["data_config"]).read_text())
        self.forecaster = Forecaster(model, config)

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        result = self.forecaster.forecast(model_input)
        return pd.DataFrame([result.to_dict()])


def _pip_requirements() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for name in ("keras", "tensorflow-cpu", "numpy", "pandas", "mlflow"):
        try:
            out.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return out


def load_forecaster(model_uri: str, tracking_uri: str | None = None) -> Forecaster:
    """A :class:`Forecaster` from ``models:/NAME@ALIAS`` (or ``/VERSION``), ``runs:/RUN[/PATH]``
    (a logged ``forecaster/`` pyfunc or a trial's ``model/`` directory) or a local folder."""
    uri = _uri(tracking_uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        with _quiet():
            if model_uri.startswith("models:/"):
                return _unwrap(mlflow.pyfunc.load_model(model_uri))
            if model_uri.startswith("runs:/"):
                rest = model_uri.removeprefix("runs:/").strip("/")
                run_id, _, path = rest.partition("/")
                candidates = [path] if path else [PYFUNC_DIR, MODEL_DIR]
                client = _client(uri)
                with tempfile.TemporaryDirectory(prefix="jena-predict-") as tmp:
                    for candidate in candidates:
                        try:
                            local = client.download_artifacts(run_id, candidate, tmp)
                        except (MlflowException, OSError):
                            continue
                        return _from_folder(Path(local))
                raise ConfigError(f"{model_uri}: no model there (tried {', '.join(candidates)})")
            return _from_folder(Path(model_uri))
    except MlflowException as exc:
        raise ConfigError(f"cannot load the model {model_uri}: {_first_line(exc)}") from None


def _unwrap(loaded: Any) -> Forecaster:
    inner = loaded.unwrap_python_model()
    if not isinstance(inner, ForecastModel):
        raise ConfigError(f"not a jena forecaster: {type(inner).__name__}")
    return inner.forecaster


def _from_folder(folder: Path) -> Forecaster:
    import keras

    if (folder / "MLmodel").is_file():
        return _unwrap(mlflow.pyfunc.load_model(str(folder)))
    for base in (folder, folder / MODEL_DIR):
        if (base / MODEL_FILE).is_file() and (base / DATA_CONFIG_FILE).is_file():
            import jena.models  # noqa: F401  (registers custom layers such as ReverseTime)

            model = keras.saving.load_model(base / MODEL_FILE, compile=False)
            return Forecaster(model, json.loads((base / DATA_CONFIG_FILE).read_text()))
    raise ConfigError(f"{folder}: neither an MLflow model nor a {MODEL_FILE} with its config")


# --------------------------------------------------------------------------- evaluation


@dataclass
class Evaluation:
    """The outcome of one ``jena best``."""

    experiment: str
    run_id: str
    trial: int | None
    driver: str | None
    architecture: str
    val_mae: float
    baseline_val_mae: float | None
    test_mae: float
    baseline_test_mae: float
    test_windows: int
    data_source: str
    data_digest: str
    evaluation: int  # 1 for the first look at the test split from this run
    previous: list[str] = field(default_factory=list)  # earlier evaluations (UTC, ISO)
    other_runs_evaluated: int = 0  # test evaluations of other trials of this experiment
    registered_model: str | None = None
    version: str | None = None
    alias: str | None = None
    model_uri: str | None = None

    @property
    def test_skill(self) -> float:
        return 1.0 - self.test_mae / self.baseline_test_mae if self.baseline_test_mae else math.nan

    @property
    def warning(self) -> str | None:
        if not self.previous:
            return None
        last = self.previous[-1].replace("T", " ").replace("+00:00", " UTC")
        return (
            f"the test set of this run was already used {len(self.previous)} time(s), last on "
            f"{last}: this test MAE is no longer an unbiased estimate"
        )

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["test_skill"] = self.test_skill
        out["warning"] = self.warning
        return out


def _check_stats(prepared: Prepared, cfg: Mapping[str, Any], dataset: Dataset) -> Prepared:
    """The stored normalisation must be the training rows' statistics; use the stored ones."""
    mean = np.asarray(cfg["mean"], dtype=np.float64)
    std = np.asarray(cfg["std"], dtype=np.float64)
    if prepared.feature_names != list(cfg["feature_names"]):
        raise ConfigError(
            f"the model's features {cfg['feature_names']} differ from the data's "
            f"{prepared.feature_names}"
        )
    if prepared.bounds.to_dict() != {k: list(v) for k, v in cfg["bounds"].items()}:
        raise ConfigError(
            f"the split bounds of the data {prepared.bounds.to_dict()} differ from the model's "
            f"{cfg['bounds']}"
        )
    if not (
        np.allclose(prepared.mean, mean, rtol=STATS_RTOL, atol=0)
        and np.allclose(prepared.std, std, rtol=STATS_RTOL, atol=0)
    ):
        worst = int(np.argmax(np.abs(prepared.mean - mean) + np.abs(prepared.std - std)))
        raise ConfigError(
            "the normalisation statistics stored with the model differ from the training rows' "
            f"(feature {prepared.feature_names[worst]!r}: mean {mean[worst]:.6g} vs "
            f"{prepared.mean[worst]:.6g}): the model was not trained on this data"
        )
    values, _ = feature_matrix(
        dataset.frame.iloc[: len(prepared.x)],
        wind_vector=prepared.wind_vector,
        time_features=prepared.time_features,
    )
    x = ((values - mean) / std).astype(np.float32)
    return dataclasses.replace(prepared, x=x, mean=mean, std=std, _target_cache={})


@dataclass
class WindowPredictions:
    """The test windows' targets and forecasts (°C), aligned by window."""

    time: pd.DatetimeIndex  # target times
    actual: np.ndarray
    forecast: np.ndarray
    persistence: np.ndarray

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "time": self.time.strftime("%Y-%m-%d %H:%M:%S"),
                "actual": np.round(self.actual, 4),
                "forecast": np.round(self.forecast, 4),
                "persistence": np.round(self.persistence, 4),
            }
        )


def predict_test(
    forecaster: Forecaster, prepared: Prepared, frame_index: pd.DatetimeIndex
) -> WindowPredictions:
    """Run the model on every test window of ``prepared`` (which must hold the test rows)."""
    r, n = forecaster.sampling_rate, forecaster.sequence_length
    if prepared.preset.offset(r, n) != forecaster.offset:
        raise ConfigError(
            f"the model's target offset {forecaster.offset} differs from the preset's "
            f"{prepared.preset.offset(r, n)}"
        )
    starts = prepared.starts("test", r, n)
    windows = prepared.windows(
        "test", sampling_rate=r, sequence_length=n, batch_size=forecaster.batch_size
    )
    outputs = forecaster.model.predict(windows, verbose=0)
    forecast = forecaster.to_celsius(outputs)
    if len(forecast) != len(starts):
        raise RuntimeError(f"{len(forecast)} forecasts for {len(starts)} test windows")
    return WindowPredictions(
        time=pd.DatetimeIndex(frame_index[starts + forecaster.offset]),
        actual=prepared.temperature[starts + forecaster.offset],
        forecast=forecast,
        persistence=prepared.temperature[starts + forecaster.span],
    )


def _previous_evaluations(tags: Mapping[str, str]) -> list[str]:
    raw = tags.get(TAG_TIMES)
    if raw:
        try:
            times = json.loads(raw)
            if isinstance(times, list):
                return [str(t) for t in times]
        except json.JSONDecodeError:
            pass
    count = int(tags.get(TAG_COUNT, "0") or 0)
    return ["unknown time"] * count


def evaluate_best(
    experiment: str,
    *,
    tracking_uri: str | None = None,
    data: str | None = None,
    register_name: str | None = REGISTERED_NAME,
    alias: str = ALIAS,
    dataset: Dataset | None = None,
) -> Evaluation:
    """Evaluate the best completed trial of ``experiment`` once on the test split (see the
    module docstring). ``dataset`` skips loading (tests); ``register_name=None`` skips the
    registry."""
    uri = _uri(tracking_uri)
    client = _client(uri)
    frame = trials_frame(uri, experiment)
    best = select_best(frame)
    run_id = str(best["run_id"])
    run = client.get_run(run_id)
    tags = run.data.tags
    model, cfg = load_trial_model(uri, run_id)
    forecaster = Forecaster(model, cfg)

    source = tags.get("data_source") or str(cfg.get("source", ""))
    expected = tags.get("data_digest") or str(cfg.get("digest", ""))
    if dataset is None:
        if not data and not source:
            raise ConfigError(f"run {run_id} records no data source: pass --data")
        dataset = load_data(data or spec_from_source(source))
    if expected and dataset.digest != expected:
        raise ConfigError(
            f"data {dataset.source} (digest {dataset.digest}) is not what trial "
            f"{best['number']} was trained on ({source or '?'}, digest {expected}): "
            "pass --data with that record"
        )
    prepared = prepare(
        dataset,
        str(cfg["preset"]),
        wind_vector=bool(cfg.get("wind_vector", False)),
        time_features=bool(cfg.get("time_features", False)),
        include_test=True,
    )
    prepared = _check_stats(prepared, cfg, dataset)
    result = predict_test(forecaster, prepared, pd.DatetimeIndex(dataset.frame.index))
    test_mae = float(np.mean(np.abs(result.forecast - result.actual)))
    baseline, windows = prepared.persistence_mae(
        "test", forecaster.sampling_rate, forecaster.sequence_length
    )

    previous = _previous_evaluations(tags)
    others = 0
    for _, row in frame.iterrows():
        count = row.get(f"tags.{TAG_COUNT}")
        if row["run_id"] != run_id and isinstance(count, str) and count.isdigit():
            others += int(count)
    evaluation = Evaluation(
        experiment=experiment,
        run_id=run_id,
        trial=None if pd.isna(best["number"]) else int(best["number"]),
        driver=best.get("driver") if isinstance(best.get("driver"), str) else None,
        architecture=_label(best.to_dict()),
        val_mae=float(best["val_mae"]),
        baseline_val_mae=_finite(run.data.metrics.get("baseline_val_mae")),
        test_mae=test_mae,
        baseline_test_mae=baseline,
        test_windows=windows,
        data_source=dataset.source,
        data_digest=dataset.digest,
        evaluation=len(previous) + 1,
        previous=previous,
        other_runs_evaluated=others,
    )
    _record(client, evaluation, result)
    if register_name:
        _register(client, evaluation, cfg, register_name, alias)
    return evaluation


def _record(client: mlflow.MlflowClient, ev: Evaluation, result: WindowPredictions) -> None:
    from mlflow.entities import Metric, RunTag

    now = datetime.now(UTC).replace(microsecond=0)
    ms = int(now.timestamp() * 1000)
    step = ev.evaluation
    metrics = [
        Metric("test_mae", ev.test_mae, ms, step),
        Metric("baseline_test_mae", ev.baseline_test_mae, ms, step),
        Metric("test_windows", float(ev.test_windows), ms, step),
        Metric(TAG_COUNT, float(step), ms, step),
    ]
    if math.isfinite(ev.test_skill):
        metrics.append(Metric("test_skill", ev.test_skill, ms, step))
    times = [*ev.previous, now.isoformat()]
    tags = [
        RunTag(TAG_COUNT, str(step)),
        RunTag(TAG_TIMES, json.dumps(times)),
        RunTag("test_data_source", ev.data_source),
    ]
    client.log_batch(ev.run_id, metrics=metrics, tags=tags)
    with tempfile.TemporaryDirectory(prefix="jena-test-") as tmp:
        path = Path(tmp, PREDICTIONS_FILE)
        result.frame().to_csv(path, index=False)
        summary = Path(tmp, EVALUATION_FILE)
        summary.write_text(json.dumps(ev.to_dict(), indent=2, default=str))
        with _quiet():
            client.log_artifact(ev.run_id, str(path))
            client.log_artifact(ev.run_id, str(summary))


def _log_pyfunc(client: mlflow.MlflowClient, run_id: str, cfg: Mapping[str, Any]) -> None:
    """Log the run's model as a pyfunc under ``forecaster/`` (once)."""
    with tempfile.TemporaryDirectory(prefix="jena-pyfunc-") as tmp, _quiet():
        existing = {Path(f.path).name for f in client.list_artifacts(run_id, PYFUNC_DIR)}
        if "MLmodel" in existing:
            mlmodel = Path(client.download_artifacts(run_id, f"{PYFUNC_DIR}/MLmodel", tmp))
            if PYFUNC_MARKER in mlmodel.read_text():
                return  # logged by an earlier evaluation
        local = Path(client.download_artifacts(run_id, MODEL_DIR, tmp))
        out = Path(tmp, PYFUNC_DIR)
        mlflow.pyfunc.save_model(
            str(out),
            python_model=ForecastModel(),
            artifacts={
                "keras_model": str(local / MODEL_FILE),
                "data_config": str(local / DATA_CONFIG_FILE),
            },
            pip_requirements=_pip_requirements(),
            metadata={
                PYFUNC_MARKER: 1,
                "sampling_rate": cfg["sampling_rate"],
                "sequence_length": cfg["sequence_length"],
                "offset": cfg["offset"],
                "preset": cfg["preset"],
                "data_digest": cfg.get("digest"),
            },
        )
        client.log_artifacts(run_id, str(out), PYFUNC_DIR)


def _register(
    client: mlflow.MlflowClient,
    ev: Evaluation,
    cfg: Mapping[str, Any],
    name: str,
    alias: str,
) -> None:
    try:
        _log_pyfunc(client, ev.run_id, cfg)
        source = f"{client.get_run(ev.run_id).info.artifact_uri.rstrip('/')}/{PYFUNC_DIR}"
        try:
            client.get_registered_model(name)
        except MlflowException:
            client.create_registered_model(
                name, description="24-hour-ahead air temperature (°C), Jena climate record"
            )
        found = [
            v
            for v in client.search_model_versions(f"name = '{name}' and run_id = '{ev.run_id}'")
            if v.source == source
        ]
        with _quiet():
            version = (
                found[0]
                if found
                else client.create_model_version(
                    name,
                    source,
                    run_id=ev.run_id,
                    description=f"trial {ev.trial} of {ev.experiment}",
                )
            )
        for key, value in {
            "experiment": ev.experiment,
            "trial": ev.trial,
            "architecture": ev.architecture,
            "val_mae": f"{ev.val_mae:.4f}",
            "test_mae": f"{ev.test_mae:.4f}",
            "baseline_test_mae": f"{ev.baseline_test_mae:.4f}",
            "data_digest": ev.data_digest,
        }.items():
            client.set_model_version_tag(name, version.version, key, str(value))
        client.set_registered_model_alias(name, alias, version.version)
    except MlflowException as exc:
        raise ConfigError(f"could not register the model as {name!r}: {_first_line(exc)}") from None
    ev.registered_model, ev.version, ev.alias = name, str(version.version), alias
    ev.model_uri = f"models:/{name}@{alias}"
