"""What ``jena best`` leaves in the store: the record of each look at the test split, the
pyfunc of a trained model, and its registration (``models:/jena-temperature@champion``).

The pyfunc is self-contained (MLflow's models from code): its code is ``_model_code.py`` and a
copy of :mod:`jena.forecasting`, :mod:`jena.conformal`, :mod:`jena.schema` and
:mod:`jena.layers` as the package ``jena_forecaster``; its requirements pin Keras, NumPy,
pandas, MLflow and the backend the members were trained under (TensorFlow, or JAX and jaxlib);
its signature names the Jena columns and the answer's (with ``level``, ``low``, ``high`` where
the data configuration carries an interval calibration), and its input example is a window's
worth of the training record's first rows.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import Model, ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types.schema import ColSpec, Schema, TensorSpec

from jena.conformal import level_key, percent
from jena.devices import keras_backend
from jena.errors import ConfigError, JenaError
from jena.forecasting import OUTPUT, duration, interval_columns, window_rows
from jena.schema import COLUMNS, DATE_COLUMN, DATE_FORMAT, DATE_HINT

from . import _encode as enc
from . import names as N
from ._read import load_model_dir, load_model_files
from ._store import client, resolve_uri

if TYPE_CHECKING:
    import keras

    from jena.serve import ProjectForecaster

_log = logging.getLogger(__name__)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
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


# --------------------------------------------------------------------------- test evaluations


def previous_test_evaluations(tags: Mapping[str, str]) -> list[str]:
    """UTC times of the earlier test evaluations recorded on a run (tags)."""
    raw = tags.get(N.TAG_TEST_TIMES)
    if raw:
        try:
            times = json.loads(raw)
            if isinstance(times, list):
                return [str(t) for t in times]
        except json.JSONDecodeError:
            pass
    count = int(tags.get(N.TAG_TEST_COUNT, "0") or 0)
    return ["unknown time"] * count


def log_test_evaluation(
    tracking_uri: str | None,
    run_id: str,
    *,
    evaluation: int,
    when: datetime,
    previous: list[str],
    metrics: Mapping[str, float],
    data_source: str,
    predictions: pd.DataFrame,
    summary: Mapping[str, Any],
    tags: Mapping[str, str] | None = None,
) -> None:
    """Record one look at the test split on ``run_id``: metrics at step ``evaluation``, the
    count and times of every evaluation and ``tags`` (tags), the predictions and a JSON
    summary."""
    c = client(resolve_uri(tracking_uri))
    ms = int(when.timestamp() * 1000)
    batch = [enc.metric(k, v, evaluation, ms) for k, v in metrics.items()]
    batch.append(enc.metric(N.TAG_TEST_COUNT, evaluation, evaluation, ms))
    every = {
        **(tags or {}),
        N.TAG_TEST_COUNT: str(evaluation),
        N.TAG_TEST_TIMES: json.dumps([*previous, when.isoformat()]),
        N.TAG_TEST_DATA: data_source,
    }
    enc.log_batch(c, run_id, metrics=[m for m in batch if m is not None], tags=enc.tags(every))
    with tempfile.TemporaryDirectory(prefix="jena-test-") as tmp:
        path = Path(tmp, N.PREDICTIONS_FILE)
        predictions.to_csv(path, index=False)
        record = Path(tmp, N.EVALUATION_FILE)
        record.write_text(json.dumps(dict(summary), indent=2, default=str))
        with quiet():
            c.log_artifact(run_id, str(path))
            c.log_artifact(run_id, str(record))


# --------------------------------------------------------------------------- the pyfunc


PYFUNC_FORMAT = 2  # 1: a pickled ForecastModel (below); 2: models from code, self-contained
MODEL_CODE = Path(__file__).with_name("_model_code.py")
SHIPPED = "jena_forecaster"  # the package in the model's code/
SHIPPED_MODULES = ("schema", "conformal", "forecasting", "layers")
_BACKEND_PACKAGES = {"jax": ("jax", "jaxlib"), "torch": ("torch",)}


class ForecastModel(PythonModel):
    """What models logged before the self-contained format pickled: it still loads them (in a
    process where ``jena`` is installed)."""

    forecaster: ProjectForecaster

    def load_context(self, context: Any) -> None:
        from jena.serve import ProjectForecaster

        names = sorted(k for k in context.artifacts if k.startswith("keras_model"))
        config_file = Path(context.artifacts["data_config"])
        models = [load_model_files(Path(context.artifacts[k]), config_file)[0] for k in names]
        self.forecaster = ProjectForecaster(models, json.loads(config_file.read_text()))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        return pd.DataFrame([self.forecaster.forecast(model_input).row()])


def _installed(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{name}=={version(name)}"
    except PackageNotFoundError:
        return None


def _pip_requirements(backend: str) -> list[str]:
    """Keras, NumPy, pandas, MLflow and the packages of ``backend``, pinned to the installed
    versions (TensorFlow: ``tensorflow-cpu`` where that is what is installed)."""
    found = [_installed(name) for name in ("keras", "numpy", "pandas", "mlflow")]
    if backend == "tensorflow":
        found.append(_installed("tensorflow-cpu") or _installed("tensorflow"))
    else:
        found += [_installed(name) for name in _BACKEND_PACKAGES.get(backend, ())]
    return [pin for pin in found if pin]


def _members_backend(c: mlflow.MlflowClient, members: Sequence[str]) -> str:
    """The Keras backend the members were trained under (their runs' tag), else this one's."""
    found = {c.get_run(m).data.tags.get(N.TAG_BACKEND) for m in members} - {None, ""}
    return str(found.pop()) if len(found) == 1 else keras_backend()


def _ship(folder: Path) -> Path:
    """The package the model carries: copies of the modules of :data:`SHIPPED_MODULES`."""
    import jena

    package = folder / SHIPPED
    package.mkdir()
    (package / "__init__.py").write_text(
        f'"""jena {jena.__version__}\'s forecasting code, shipped with a registered model."""\n'
    )
    for name in SHIPPED_MODULES:
        shutil.copyfile(Path(jena.__file__).with_name(f"{name}.py"), package / f"{name}.py")
    return package


def _levels(cfg: Mapping[str, Any]) -> list[float]:
    """The levels of the data configuration's interval calibration (none: not calibrated)."""
    return [float(x) for x in (cfg.get("calibration") or {}).get("levels", [])]


def _signature(cfg: Mapping[str, Any]) -> ModelSignature:
    """The Jena columns in, the forecast row out (with the interval's columns where ``cfg``
    carries a calibration). The inputs are optional for MLflow: the model's own check names a
    missing one in one line (MLflow's enforcement would answer with the whole input frame)."""
    inputs: list[ColSpec | TensorSpec] = [ColSpec("string", DATE_COLUMN, required=False)]
    inputs += [ColSpec("double", c, required=False) for c in COLUMNS]
    outputs: list[ColSpec | TensorSpec] = [
        ColSpec("string" if k.endswith("_time") else "double", k)
        for k in (*OUTPUT, *interval_columns(_levels(cfg)))
    ]
    return ModelSignature(Schema(inputs), Schema(outputs))


def _input_note(cfg: Mapping[str, Any]) -> str:
    """What the model's input must hold, and its output (the model version's description)."""
    rows = window_rows(cfg)
    levels = _levels(cfg)
    interval = (
        f", and level, low, high: its central {percent(levels[0])} interval (°C), calibrated on "
        "its validation residuals by season and hour of the target"
        + "".join(
            f"; low_{level_key(lv)}, high_{level_key(lv)}: at {percent(lv)}" for lv in levels[1:]
        )
        if levels
        else ""
    )
    return (
        f"Input: the last {rows} rows ({duration(rows)}) of a Jena-format record, oldest first: "
        f'"{DATE_COLUMN}", {DATE_HINT}, or a DatetimeIndex, and the {len(COLUMNS)} columns '
        "(°C, Tpot in K), one row every 10 minutes without gaps. Output: one row, "
        f"{', '.join(OUTPUT)} (°C){interval}."
    )


def _input_example(cfg: Mapping[str, Any]) -> pd.DataFrame | None:
    """The first window's worth of rows of the training record, as its CSV holds them (None,
    with a warning, where the record cannot be loaded here)."""
    from jena.data import load, spec_from_source

    try:
        frame = load(spec_from_source(str(cfg["source"])), download=False).frame
    except (JenaError, OSError, KeyError) as exc:
        _log.warning("the model is logged without an input example: %s", exc)
        return None
    frame = frame.iloc[: window_rows(cfg)]
    times = pd.DatetimeIndex(frame.index).strftime(DATE_FORMAT)
    return pd.DataFrame({DATE_COLUMN: times, **{c: frame[c].to_numpy(np.float64) for c in COLUMNS}})


def _logged_format(c: mlflow.MlflowClient, run_id: str, tmp: str) -> int | None:
    """The format of the pyfunc already under ``forecaster/`` of ``run_id`` (None: none)."""
    if "MLmodel" not in {Path(f.path).name for f in c.list_artifacts(run_id, N.PYFUNC_DIR)}:
        return None
    mlmodel = c.download_artifacts(run_id, f"{N.PYFUNC_DIR}/MLmodel", tmp)
    return int((Model.load(mlmodel).metadata or {}).get(N.PYFUNC_MARKER, 0))


def _logged_calibration(c: mlflow.MlflowClient, run_id: str, tmp: str) -> Any:
    """The interval calibration of the pyfunc already under ``forecaster/`` (None: none)."""
    try:
        local = c.download_artifacts(
            run_id, f"{N.PYFUNC_DIR}/artifacts/{N.DATA_CONFIG_FILE}", str(Path(tmp, "logged"))
        )
        return json.loads(Path(local).read_text()).get("calibration")
    except (MlflowException, OSError, ValueError):
        return None


def _log_pyfunc(
    c: mlflow.MlflowClient, run_id: str, cfg: Mapping[str, Any], members: Sequence[str]
) -> None:
    """Log a pyfunc under ``forecaster/`` of ``run_id`` (once): the models of the runs
    ``members`` (one run: a trial's model; several: the seeds of a champion, averaged)."""
    with tempfile.TemporaryDirectory(prefix="jena-pyfunc-") as tmp, quiet():
        if _logged_format(c, run_id, tmp) == PYFUNC_FORMAT and _logged_calibration(
            c, run_id, tmp
        ) == cfg.get("calibration"):
            return  # logged by an earlier evaluation (with the same calibration)
        artifacts: dict[str, str] = {}
        files = Path(tmp, "members")
        files.mkdir()
        for i, member in enumerate(members):  # unique file names: MLflow copies them into one dir
            local = Path(c.download_artifacts(member, N.MODEL_DIR, str(Path(tmp, f"m{i}"))))
            target = files / f"member_{i:02d}.keras"
            shutil.copyfile(local / N.MODEL_FILE, target)
            artifacts[f"keras_model_{i:02d}"] = str(target)
            if i == 0:
                stored = json.loads((local / N.DATA_CONFIG_FILE).read_text())
                if cfg.get("calibration"):  # the champion's intervals (jena.conformal)
                    stored["calibration"] = cfg["calibration"]
                (files / N.DATA_CONFIG_FILE).write_text(json.dumps(stored, indent=2))
                artifacts["data_config"] = str(files / N.DATA_CONFIG_FILE)
        backend = _members_backend(c, members)
        out = Path(tmp, N.PYFUNC_DIR)
        mlflow.pyfunc.save_model(
            str(out),
            python_model=str(MODEL_CODE),
            code_paths=[str(_ship(Path(tmp)))],
            artifacts=artifacts,
            model_config={"keras_backend": backend},
            signature=_signature(cfg),
            input_example=_input_example(cfg),
            pip_requirements=_pip_requirements(backend),
            metadata={
                N.PYFUNC_MARKER: PYFUNC_FORMAT,
                "members": len(members),
                "keras_backend": backend,
                "rows_needed": window_rows(cfg),
                "input": _input_note(cfg),
                "sampling_rate": cfg["sampling_rate"],
                "sequence_length": cfg["sequence_length"],
                "offset": cfg["offset"],
                "preset": cfg["preset"],
                "data_digest": cfg.get("digest"),
                "interval_levels": _levels(cfg),
            },
        )
        c.log_artifacts(run_id, str(out), N.PYFUNC_DIR)


def register_model(
    tracking_uri: str | None,
    run_id: str,
    data_config: Mapping[str, Any],
    *,
    name: str = N.REGISTERED_NAME,
    alias: str = N.ALIAS,
    description: str = "",
    version_tags: Mapping[str, Any] | None = None,
    members: Sequence[str] | None = None,
) -> str:
    """Log a pyfunc on ``run_id`` — the run's own model, or the models of the runs ``members``
    averaged — and register it under ``name`` with ``alias``; returns the version (an existing
    version of the same source is reused)."""
    c = client(resolve_uri(tracking_uri))
    note = _input_note(data_config)
    description = enc.value_text(description)  # recorded: without secrets
    try:
        _log_pyfunc(c, run_id, data_config, members or [run_id])
        source = f"{c.get_run(run_id).info.artifact_uri.rstrip('/')}/{N.PYFUNC_DIR}"
        try:
            c.get_registered_model(name)
        except MlflowException:
            c.create_registered_model(
                name,
                description="24-hour-ahead air temperature (°C) from the last rows of a Jena "
                "climate record: see each version's description for what its input must hold",
            )
        found = [
            v
            for v in c.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
            if v.source == source
        ]
        with quiet():
            version = (
                found[0]
                if found
                else c.create_model_version(
                    name, source, run_id=run_id, description=f"{description}\n\n{note}".strip()
                )
            )
        text = f"{description}\n\n{note}".strip()
        if found and found[0].description != text:  # evaluated again (another interval level)
            c.update_model_version(name, version.version, description=text)
        for key, value in (version_tags or {}).items():
            c.set_model_version_tag(name, version.version, key, enc.value_text(value))
        c.set_registered_model_alias(name, alias, version.version)
    except MlflowException as exc:
        raise ConfigError(
            f"could not register the model as {name!r}: {enc.first_line(exc)}"
        ) from None
    return str(version.version)


# --------------------------------------------------------------------------- loading


def load_forecaster(model_uri: str, tracking_uri: str | None = None) -> ProjectForecaster:
    """A :class:`jena.serve.ProjectForecaster` from ``models:/NAME@ALIAS`` (or ``/VERSION``),
    ``runs:/RUN[/PATH]`` or a local folder (see :func:`load_model`)."""
    from jena.serve import ProjectForecaster

    models, config = load_model(model_uri, tracking_uri)
    return ProjectForecaster(models, config)


def load_model(
    model_uri: str, tracking_uri: str | None = None
) -> tuple[list[keras.Model], dict[str, Any]]:
    """(Keras model, data config) from ``models:/NAME@ALIAS`` (or ``/VERSION``),
    ``runs:/RUN[/PATH]`` (a logged ``forecaster/`` pyfunc or a trial's ``model/`` directory) or
    a local folder (an MLflow model, or a ``model.keras`` with its ``data_config.json``)."""
    uri = resolve_uri(tracking_uri)
    with _fluent_uris(uri):
        return _load_model(model_uri, uri)


@contextlib.contextmanager
def _fluent_uris(uri: str) -> Iterator[None]:
    """MLflow's module-level tracking and registry URIs (``models:/`` is resolved through
    them), set for the block only: nothing of it leaks into the caller's process, nor into its
    subprocesses through the variables MLflow sets with them."""
    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    before = {name: os.environ.get(name) for name in names}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        # None (accepted, though not typed so): MLflow's default again
        mlflow.set_tracking_uri(before[names[0]])  # type: ignore[arg-type]
        mlflow.set_registry_uri(before[names[1]])  # type: ignore[arg-type]
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)


def _load_model(model_uri: str, uri: str) -> tuple[list[keras.Model], dict[str, Any]]:
    try:
        with quiet():
            if model_uri.startswith("models:/"):
                return _unwrap(mlflow.pyfunc.load_model(model_uri))
            if model_uri.startswith("runs:/"):
                rest = model_uri.removeprefix("runs:/").strip("/")
                run_id, _, path = rest.partition("/")
                candidates = [path] if path else [N.PYFUNC_DIR, N.MODEL_DIR]
                c = client(uri)
                with tempfile.TemporaryDirectory(prefix="jena-predict-") as tmp:
                    for candidate in candidates:
                        try:
                            local = c.download_artifacts(run_id, candidate, tmp)
                        except (MlflowException, OSError):
                            continue
                        return _from_folder(Path(local))
                raise ConfigError(f"{model_uri}: no model there (tried {', '.join(candidates)})")
            return _from_folder(Path(model_uri))
    except MlflowException as exc:
        raise ConfigError(f"cannot load the model {model_uri}: {enc.first_line(exc)}") from None


def _unwrap(loaded: Any) -> tuple[list[keras.Model], dict[str, Any]]:
    inner = loaded.unwrap_python_model()  # a ForecastModel of _model_code.py, or of this module
    forecaster = getattr(inner, "forecaster", None)
    if type(inner).__name__ != "ForecastModel" or forecaster is None:
        raise ConfigError(f"not a jena forecaster: {type(inner).__name__}")
    return list(forecaster.models), dict(forecaster.data_config)


def _from_folder(folder: Path) -> tuple[list[keras.Model], dict[str, Any]]:
    if (folder / "MLmodel").is_file():
        return _unwrap(mlflow.pyfunc.load_model(str(folder)))
    for base in (folder, folder / N.MODEL_DIR):
        if (base / N.MODEL_FILE).is_file() and (base / N.DATA_CONFIG_FILE).is_file():
            model, config = load_model_dir(base)
            return [model], config
    raise ConfigError(f"{folder}: neither an MLflow model nor a {N.MODEL_FILE} with its config")
