"""Reading a sweep back: its trials as a frame, its candidates best first (and the best), a
trial's model, the parent runs, metric histories and artifacts.

**The candidates** of a sweep are its trials with a measured result: state ``completed``, or
``stopped`` (cut short by the time budget after at least one finished epoch: its best epoch is as
valid a measurement as a completed trial's — nobody judged it worse), with a finite
``best_val_mae``; best first. A ``pruned`` trial was judged worse than others at the same epoch
by the pruner and is not one, nor is a failed, killed or running trial. :func:`candidates` ranks
a frame; :data:`CANDIDATES_FILTER` and :data:`CANDIDATES_ORDER` are the same set and order as an
MLflow search (the UI link :func:`runs_page`). The live board, the printed summary, the report,
the refit's top-k, ``jena best`` and ``--warm-start SWEEP`` all rank these."""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from mlflow.exceptions import MlflowException

from jena.errors import ConfigError

from . import names as N
from ._encode import finite
from ._store import client, resolve_uri, search_all

if TYPE_CHECKING:
    import keras


@contextlib.contextmanager
def quiet_downloads() -> Iterator[None]:
    """No tqdm progress bar for small artifact downloads (unless the user asked for one)."""
    name = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    if name in os.environ:
        yield
        return
    os.environ[name] = "false"
    try:
        yield
    finally:
        os.environ.pop(name, None)


def experiment_id(tracking_uri: str | None, experiment: str) -> str:
    """The id of the sweep's experiment; ConfigError naming the sweeps that exist otherwise."""
    uri = resolve_uri(tracking_uri)
    found = client(uri).get_experiment_by_name(experiment)
    if found is None or found.lifecycle_stage == "deleted":
        known = experiment_names(uri)
        hint = f"; sweeps here: {', '.join(known)}" if known else "; run a sweep first"
        raise ConfigError(f"no sweep (MLflow experiment) named {experiment!r} in {uri}{hint}")
    return str(found.experiment_id)


def experiment_tags(tracking_uri: str | None, experiment: str) -> dict[str, str]:
    """The tags of a sweep's experiment (ConfigError naming the sweeps if there is none)."""
    uri = resolve_uri(tracking_uri)
    return dict(client(uri).get_experiment(experiment_id(uri, experiment)).tags)


def latest_sweep(tracking_uri: str | None = None) -> str:
    """The name of the most recently run sweep in the store (ConfigError if there is none)."""
    uri = resolve_uri(tracking_uri)
    c = client(uri)
    ids = [e.experiment_id for e in c.search_experiments()]
    found = c.search_runs(ids, f"tags.{N.TAG_RUN_TYPE} = '{N.RUN_SWEEP}'", max_results=1,
                          order_by=["attributes.start_time DESC"]) if ids else []  # fmt: skip
    if not found:
        raise ConfigError(f"no sweep in {uri} yet: run one first (jena sweep, or nox -s sweep)")
    return str(c.get_experiment(found[0].info.experiment_id).name)


def experiment_names(tracking_uri: str | None = None) -> list[str]:
    """Names of the experiments in the store (MLflow's ``Default`` left out), most recently
    updated first."""
    c = client(resolve_uri(tracking_uri))
    exps = [e for e in c.search_experiments() if e.name != "Default"]
    exps.sort(key=lambda e: e.last_update_time or e.creation_time or 0, reverse=True)
    return [e.name for e in exps]


CANDIDATE_STATES = ("completed", "stopped")  # the others: pruned, failed, killed (running)
_OTHER_STATES = ("pruned", "failed", "killed")
# MLflow's search has no IN for tags: "not any other state" (a run without a state tag, still
# running, matches no comparison), and a best_val_mae (a trial stopped before its first epoch
# has none)
CANDIDATES_FILTER = " AND ".join([
    f"tags.{N.TAG_RUN_TYPE} = '{N.RUN_TRIAL}'",
    *(f"tags.{N.TAG_STATE} != '{s}'" for s in _OTHER_STATES),
    f"metrics.`{N.METRIC_BEST_VAL}` >= 0",
])  # fmt: skip
CANDIDATES_ORDER = f"metrics.`{N.METRIC_BEST_VAL}` ASC"  # ties: the earlier (frame only)


def runs_page(experiment_id: str) -> str:
    """The MLflow UI's page of a sweep's candidates, best first (:data:`CANDIDATES_FILTER`,
    :data:`CANDIDATES_ORDER`), in its model-training view (the UI opens on its GenAI pages
    otherwise): the part of the URL after the host."""
    from urllib.parse import quote

    key, direction = CANDIDATES_ORDER.rsplit(" ", 1)
    query = {
        "workflowType": "machine_learning",
        "searchFilter": CANDIDATES_FILTER,
        "orderByKey": key,
        "orderByAsc": str(direction == "ASC").lower(),
    }
    text = "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())
    return f"#/experiments/{experiment_id}/runs?{text}"


def load_model_files(
    model_file: Path, config_file: Path, *, compile: bool = False
) -> tuple[keras.Model, dict[str, Any]]:
    """A saved ``.keras`` model and its ``data_config.json``: (model, data config)."""
    import keras

    import jena.models  # noqa: F401  (registers custom layers such as ReverseTime)

    model = keras.saving.load_model(model_file, compile=compile)
    return model, json.loads(Path(config_file).read_text())


def load_model_dir(folder: Path, *, compile: bool = False) -> tuple[keras.Model, dict[str, Any]]:
    """A ``model/`` folder (``model.keras`` + ``data_config.json``): (model, data config)."""
    return load_model_files(folder / N.MODEL_FILE, folder / N.DATA_CONFIG_FILE, compile=compile)


def load_trial_model(
    tracking_uri: str | None, run_id: str, *, compile: bool = False
) -> tuple[keras.Model, dict[str, Any]]:
    """Download a trial's ``model/`` artifacts and load them: (model, data config)."""
    c = client(resolve_uri(tracking_uri))
    with tempfile.TemporaryDirectory(prefix="jena-model-") as tmp, quiet_downloads():
        try:
            local = Path(c.download_artifacts(run_id, N.MODEL_DIR, tmp))
        except (MlflowException, OSError) as exc:
            raise ConfigError(f"run {run_id} has no logged model ({exc})") from exc
        return load_model_dir(local, compile=compile)


def download_artifact(
    tracking_uri: str | None, run_id: str, path: str, dest: str | Path
) -> Path | None:
    """Download one artifact of a run into ``dest``; None when the run has no such artifact."""
    with quiet_downloads():
        try:
            return Path(
                client(resolve_uri(tracking_uri)).download_artifacts(run_id, path, str(dest))
            )
        except (MlflowException, OSError):
            return None


def log_artifacts(tracking_uri: str | None, run_id: str, folder: Path, path: str) -> None:
    with quiet_downloads():
        client(resolve_uri(tracking_uri)).log_artifacts(run_id, str(folder), path)


def metric_history(tracking_uri: str | None, run_id: str, key: str) -> list[tuple[int, float]]:
    """(step, value) of every logged value of ``key``, by step."""
    history = client(resolve_uri(tracking_uri)).get_metric_history(run_id, key)
    return sorted((m.step, m.value) for m in history)


@dataclass(frozen=True)
class RunRecord:
    """What the report and ``jena best`` read of one run."""

    run_id: str
    status: str
    start_time: int | None  # ms since the epoch
    end_time: int | None
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def wall_s(self) -> float:
        if self.start_time and self.end_time:
            return (self.end_time - self.start_time) / 1000
        return 0.0


def _record(run: Any) -> RunRecord:
    return RunRecord(
        run_id=run.info.run_id,
        status=run.info.status,
        start_time=run.info.start_time,
        end_time=run.info.end_time,
        metrics=dict(run.data.metrics),
        params=dict(run.data.params),
        tags=dict(run.data.tags),
    )


def get_run(tracking_uri: str | None, run_id: str) -> RunRecord:
    return _record(client(resolve_uri(tracking_uri)).get_run(run_id))


def find_runs(tracking_uri: str | None, experiment: str, filter_string: str) -> list[RunRecord]:
    """The runs of a sweep's experiment that match an MLflow filter (all pages)."""
    uri = resolve_uri(tracking_uri)
    return [_record(r) for r in search_all(client(uri), [experiment_id(uri, experiment)],
                                           filter_string)]  # fmt: skip


def sweep_runs(tracking_uri: str | None, experiment: str) -> list[RunRecord]:
    """The parent runs (one per invocation) of a sweep, newest first."""
    uri = resolve_uri(tracking_uri)
    exp_id = experiment_id(uri, experiment)
    runs = [
        _record(r)
        for r in search_all(client(uri), [exp_id], f"tags.{N.TAG_RUN_TYPE} = '{N.RUN_SWEEP}'")
    ]
    return sorted(runs, key=lambda r: r.start_time or 0, reverse=True)


def sweep_definition(tracking_uri: str | None, parent_run_id: str) -> dict[str, Any] | None:
    """The effective sweep definition logged on a parent run (``sweep.toml`` / ``sweep.json``)."""
    import tomllib

    with tempfile.TemporaryDirectory(prefix="jena-sweep-") as tmp:
        for name in N.SWEEP_DEFINITIONS:
            path = download_artifact(tracking_uri, parent_run_id, name, tmp)
            if path is None:
                continue
            text = path.read_text()
            try:
                return dict(tomllib.loads(text) if name.endswith(".toml") else json.loads(text))
            except (tomllib.TOMLDecodeError, json.JSONDecodeError):
                return None
    return None


_FRAME_COLUMNS = [
    "run_id",
    "parent_run_id",
    "run_name",
    "number",
    "state",
    "status",
    "driver",
    "val_mae",
    "val_skill",
    "duration_s",
    "param_count",
    "start_time",
    "end_time",
]


def trials_frame(tracking_uri: str | None = None, experiment: str = "default") -> pd.DataFrame:
    """All trial runs of every invocation of a sweep, best ``val_mae`` first (runs without
    one last). Columns: ``run_id parent_run_id run_name number state status driver val_mae
    val_skill duration_s param_count start_time end_time`` then ``params.*``,
    ``metrics.*`` (latest values) and ``tags.*`` (without MLflow's own)."""
    uri = resolve_uri(tracking_uri)
    exp_id = experiment_id(uri, experiment)
    rows: list[dict[str, Any]] = []
    for run in search_all(client(uri), [exp_id], f"tags.{N.TAG_RUN_TYPE} = '{N.RUN_TRIAL}'"):
        info, data = run.info, run.data
        number = data.tags.get(N.TAG_TRIAL_NUMBER)
        row: dict[str, Any] = {
            "run_id": info.run_id,
            "parent_run_id": data.tags.get(N.TAG_PARENT),
            "run_name": info.run_name,
            "number": int(number) if number and number.isdigit() else None,
            "state": data.tags.get(N.TAG_STATE, "running" if info.status == "RUNNING" else None),
            "status": info.status,
            "driver": data.tags.get(N.TAG_DRIVER),
            # the trial's result: its best epoch (runs from before best_val_mae: val_mae's
            # latest value, which was the best then)
            "val_mae": data.metrics.get(
                N.METRIC_BEST_VAL, data.metrics.get(N.METRIC_VAL_MAE, math.nan)
            ),
            "val_skill": data.metrics.get(N.METRIC_VAL_SKILL, math.nan),
            "duration_s": data.metrics.get(N.METRIC_DURATION, math.nan),
            "param_count": data.metrics.get(N.METRIC_PARAM_COUNT, math.nan),
            "start_time": pd.to_datetime(info.start_time, unit="ms", utc=True),
            "end_time": pd.to_datetime(info.end_time, unit="ms", utc=True)
            if info.end_time
            else pd.NaT,
        }
        row.update({f"params.{k}": v for k, v in data.params.items()})
        row.update({f"metrics.{k}": v for k, v in data.metrics.items()})
        row.update({f"tags.{k}": v for k, v in data.tags.items() if not k.startswith("mlflow.")})
        rows.append(row)
    frame = pd.DataFrame(rows, columns=None if rows else _FRAME_COLUMNS)
    if frame.empty:
        return frame
    extra = sorted(c for c in frame.columns if c not in _FRAME_COLUMNS)
    frame = frame[_FRAME_COLUMNS + extra]
    frame = frame.sort_values(["val_mae", "start_time"], na_position="last", kind="stable")
    return frame.reset_index(drop=True)


def candidates(frame: pd.DataFrame, *, with_model: bool = False) -> pd.DataFrame:
    """The sweep's candidates (the module docstring), best first (ties: the earlier one);
    ``with_model``: only those that logged a model."""
    if frame.empty:
        return frame
    done = frame[frame["state"].isin(CANDIDATE_STATES) & frame["val_mae"].map(finite).notna()]
    if with_model:
        column = f"tags.{N.TAG_MODEL_ARTIFACT}"
        done = done[done[column].notna()] if column in done.columns else done.iloc[0:0]
    return done.sort_values(["val_mae", "start_time"], kind="stable")


def completed_trials(frame: pd.DataFrame, *, with_model: bool = False) -> pd.DataFrame:
    """Only the completed trials among :func:`candidates` (best first)."""
    done = candidates(frame, with_model=with_model)
    return done if done.empty else done[done["state"] == "completed"]


def select_best(frame: pd.DataFrame) -> pd.Series:
    """The best candidate (the module docstring) with a logged model (something to evaluate).

    Pruned, failed, killed and running trials are ignored."""
    if frame.empty:
        raise ConfigError("the experiment has no trials yet: run a sweep first")
    done = candidates(frame, with_model=True)
    if done.empty:
        counts = frame["state"].value_counts().to_dict()
        shown = ", ".join(f"{v} {k}" for k, v in counts.items())
        raise ConfigError(
            "no completed trial (nor one the time budget stopped after a finished epoch) with a "
            f"logged model in the experiment ({shown})"
        )
    return done.iloc[0]


def label(row: Any) -> str:
    """The model preset of a trial if it has one, else its architecture."""
    for key in (f"tags.{N.TAG_MODEL_PRESET}", f"tags.{N.TAG_ARCHITECTURE}", "params.architecture"):
        value = row.get(key)
        if isinstance(value, str) and value:
            return value
    return "?"


# --------------------------------------------------------------------------- a sweep's end
# What a sweep's runner says at its end, read from the one trials frame it reads then.


@dataclass(frozen=True)
class TopTrial:
    """One row of the end-of-sweep table (:func:`jena.board.summary_table`)."""

    number: int | None
    driver: str
    architecture: str
    val_mae: float | None
    val_skill: float | None
    param_count: int | None
    state: str


def top_trials(frame: pd.DataFrame, top: int = 10) -> list[TopTrial]:
    """The sweep's best candidates (every invocation), best first: the ranking of the live
    board, the report, the refit, ``jena best`` and the UI link (:func:`candidates`)."""
    rows = []
    for _, r in candidates(frame).head(top).iterrows():
        count = finite(r.get("param_count"))
        number = finite(r.get("number"))
        rows.append(TopTrial(
            number=None if number is None else int(number), driver=str(r.get("driver") or ""),
            architecture=label(r), val_mae=finite(r.get("val_mae")),
            val_skill=finite(r.get("val_skill")),
            param_count=None if count is None else int(count), state=str(r.get("state") or ""),
        ))  # fmt: skip
    return rows


@dataclass(frozen=True)
class BestTrial:
    """The sweep's best candidate with what its driver proposed (params ``hp.*``, parsed)."""

    number: int
    params: dict[str, Any]
    val_mae: float


def best_trial(frame: pd.DataFrame) -> BestTrial | None:
    """The best of :func:`candidates` (every invocation, every driver), with its proposal;
    None when there is none (or it has no trial number)."""
    from jena.typed import parse_value

    done = candidates(frame)
    if done.empty or finite(done.iloc[0].get("number")) is None:
        return None
    row = done.iloc[0]
    prefix = f"params.{N.PARAM_SEARCH_PREFIX}"
    params = {
        key.removeprefix(prefix): {"True": True, "False": False}.get(raw, parse_value(raw))
        for key, raw in row.items()
        if isinstance(key, str) and key.startswith(prefix) and isinstance(raw, str)
    }
    return BestTrial(int(row["number"]), params, float(row["val_mae"]))


def failure_reasons(frame: pd.DataFrame, parent_run_id: str) -> list[str]:
    """The failure reasons of the failed trials of one invocation (its parent run)."""
    column = f"tags.{N.TAG_FAILURE}"
    if frame.empty or column not in frame:
        return []
    mine = frame[(frame["parent_run_id"] == parent_run_id) & (frame["state"] == "failed")]
    return [str(r) for r in mine[column].dropna()]


def fit_seconds(frame: pd.DataFrame, parent_run_id: str) -> float:
    """Seconds inside ``model.fit`` of the trials of one invocation (its parent run)."""
    column = f"metrics.{N.METRIC_FIT_S}"
    if frame.empty or column not in frame:
        return 0.0
    return float(frame[frame["parent_run_id"] == parent_run_id][column].fillna(0).sum())


def compute_to_beat(frame: pd.DataFrame) -> dict[str, str]:
    """For each book model the sweep started from: the training compute (seconds in model.fit,
    trials in the order they started) at which another trial first beat its validation MAE."""
    column = f"tags.{N.TAG_WARM_START}"
    if frame.empty or column not in frame.columns:
        return {}
    rows = frame.sort_values("start_time", kind="stable").to_dict("records")
    fit = [finite(r.get(f"metrics.{N.METRIC_FIT_S}")) or 0.0 for r in rows]
    out = {}
    for book in rows:
        tag, target = book.get(column), finite(book["val_mae"])
        if not (isinstance(tag, str) and tag.startswith("book:")) or target is None:
            continue
        spent, found = 0.0, "not yet"
        for r, seconds in zip(rows, fit, strict=True):
            spent += seconds
            value = finite(r["val_mae"]) if r.get("state") in CANDIDATE_STATES else None
            if r is not book and value is not None and value < target:
                found = f"{spent:.0f} s"
                break
        out[tag.removeprefix("book:")] = found
    return out


# --------------------------------------------------------------------------- the search


def parse_text(value: Any) -> Any:
    """A param's text as the number it spells (int when whole and written so), else as is."""
    if not isinstance(value, str):
        return value
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() and "." not in value and "e" not in value else number


def proposals(frame: pd.DataFrame) -> pd.DataFrame:
    """What each trial of a sweep tried, whichever driver proposed it: one row per trial that
    ended (completed, stopped, pruned, failed), in the order they started, with ``number``,
    ``driver``, ``state``, ``val_mae`` (NaN unless a candidate's) and one column per searched
    hyperparameter (params ``hp.*``; a value a driver did not propose, fixed or its default,
    is the trial's actual one), numbers parsed."""
    prefix = f"params.{N.PARAM_SEARCH_PREFIX}"
    names = sorted(c.removeprefix(prefix) for c in frame.columns if c.startswith(prefix))
    head = ["number", "driver", "state", "val_mae"]
    if frame.empty:
        return pd.DataFrame(columns=head + names)
    ended = frame[frame["state"].isin([*CANDIDATE_STATES, "pruned", "failed"])]
    ended = ended.sort_values("start_time", kind="stable")
    out = ended[head].copy()
    candidate = out["state"].isin(CANDIDATE_STATES)
    out["val_mae"] = out["val_mae"].map(finite).where(candidate).astype(float)
    for name in names:
        proposed = ended[prefix + name]
        actual = f"params.{name}"
        if actual in ended.columns:
            proposed = proposed.where(proposed.notna(), ended[actual])
        out[name] = [parse_text(v) if isinstance(v, str) else None for v in proposed]
    return out.reset_index(drop=True)
