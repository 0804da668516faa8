"""The one look at the test split: pick a sweep's best model, evaluate it, register it.

``jena best`` (:func:`evaluate_best`):

1. selects the best *completed* trial of an experiment by validation MAE, over every driver and
   every invocation of the sweep (:func:`jena.tracking.select_best`); pruned, failed and killed
   trials never win;
2. downloads its model and data configuration (:func:`jena.tracking.load_trial_model`), reloads
   the record it was trained on (the run's ``data_source`` tag, or ``--data``) and refuses data
   whose digest differs from the run's ``data_digest`` tag;
3. rebuilds the test windows with the trial's preset, sampling rate, sequence length and feature
   flags, normalised with the statistics stored with the model (checked against the ones
   recomputed from the training rows), and computes the model's and the persistence baseline's
   MAE in °C on the same windows;
4. records the evaluation on the trial's run (:func:`jena.tracking.log_test_evaluation`):
   metrics ``test_mae``, ``test_skill``, ``baseline_test_mae``, ``test_windows`` and
   ``test_evaluations`` (step = evaluation number), tags ``test_evaluations`` (count) and
   ``test_evaluated_at`` (JSON list of UTC timestamps), and the artifact
   ``test_predictions.csv`` (the report plots it, so the report never reads test rows itself).
   Evaluating the same run again is allowed but is announced as what it is: the test figure
   stops being an unbiased estimate once it has guided a decision;
5. registers the model's pyfunc (:func:`jena.tracking.register_model`, default
   ``jena-temperature`` with alias ``champion``), so that ``models:/jena-temperature@champion``
   carries everything ``jena predict`` needs.

Only this module (and ``jena baseline``) ever asks :func:`jena.prepare.prepare` for test rows.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from . import tracking as T
from .data import Dataset
from .data import load as load_data
from .errors import ConfigError, JenaError
from .prepare import Prepared, feature_matrix, prepare
from .serve import Forecaster

__all__ = ["Evaluation", "NotBetterThanPersistence", "evaluate_best", "spec_from_source"]


class NotBetterThanPersistence(JenaError):
    """The sweep's best model does not beat persistence on validation: it is not promoted (and
    the test split is not looked at) unless the user insists (``--force``)."""

STATS_RTOL = 1e-9

_SYNTHETIC_SOURCE = re.compile(r"synthetic\(rows=(\d+), seed=(\d+)\)")


def spec_from_source(source: str) -> str:
    """The ``--data`` spec that reloads a :attr:`jena.data.Dataset.source`."""
    match = _SYNTHETIC_SOURCE.fullmatch(source.strip())
    if match:
        return f"synthetic:{match.group(1)}:{match.group(2)}"
    return source.strip()


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
    forecast: np.ndarray  # the members' mean
    persistence: np.ndarray
    members: np.ndarray | None = None  # (members, windows): each member's forecasts

    def member_mae(self) -> list[float]:
        members = self.members if self.members is not None else self.forecast[None, :]
        return [float(np.mean(np.abs(m - self.actual))) for m in members]

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
    members = forecaster.predict_members(windows)  # (members, windows)
    if members.shape[1] != len(starts):
        raise RuntimeError(f"{members.shape[1]} forecasts for {len(starts)} test windows")
    return WindowPredictions(
        time=pd.DatetimeIndex(frame_index[starts + forecaster.offset]),
        actual=prepared.temperature[starts + forecaster.offset],
        forecast=members.mean(axis=0),
        persistence=prepared.temperature[starts + forecaster.span],
        members=members,
    )


def evaluate_best(
    experiment: str,
    *,
    tracking_uri: str | None = None,
    data: str | None = None,
    register_name: str | None = T.REGISTERED_NAME,
    alias: str = T.ALIAS,
    dataset: Dataset | None = None,
    force: bool = False,
) -> Evaluation:
    """Evaluate the best completed trial of ``experiment`` once on the test split (see the
    module docstring). ``dataset`` skips loading (tests); ``register_name=None`` skips the
    registry. A best trial that does not beat persistence on validation raises
    :class:`NotBetterThanPersistence` before the test split is read, unless ``force``."""
    uri = T.resolve_uri(tracking_uri)
    frame = T.trials_frame(uri, experiment)
    best = T.select_best(frame)
    skill = T.finite(best.get("val_skill"))
    if not force and (skill is None or skill <= 0):
        base = T.finite(best.get(f"metrics.{T.METRIC_BASELINE_VAL}"))
        raise NotBetterThanPersistence(
            f"sweep {experiment!r} has not yet found a model better than persistence: its best "
            f"trial {best['number']} ({T.label(best.to_dict())}) has validation MAE "
            f"{best['val_mae']:.4f} °C against persistence "
            f"{'?' if base is None else f'{base:.4f}'} °C on the same windows (skill "
            f"{'?' if skill is None else f'{skill:+.1%}'}); nothing was evaluated on the test "
            "split and nothing registered. Run more trials (jena sweep NAME --trials N), start "
            "from the book's models (warm start), or give trials more fidelity; --force "
            "evaluates and registers it anyway"
        )
    run_id = str(best["run_id"])
    run = T.get_run(uri, run_id)
    tags = run.tags
    model, cfg = T.load_trial_model(uri, run_id)
    forecaster = Forecaster(model, cfg)

    source = tags.get(T.TAG_DATA_SOURCE) or str(cfg.get("source", ""))
    expected = tags.get(T.TAG_DATA_DIGEST) or str(cfg.get("digest", ""))
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

    previous = T.previous_test_evaluations(tags)
    others = 0
    for _, row in frame.iterrows():
        count = row.get(f"tags.{T.TAG_TEST_COUNT}")
        if row["run_id"] != run_id and isinstance(count, str) and count.isdigit():
            others += int(count)
    evaluation = Evaluation(
        experiment=experiment,
        run_id=run_id,
        trial=None if pd.isna(best["number"]) else int(best["number"]),
        driver=best.get("driver") if isinstance(best.get("driver"), str) else None,
        architecture=T.label(best.to_dict()),
        val_mae=float(best["val_mae"]),
        baseline_val_mae=T.finite(run.metrics.get(T.METRIC_BASELINE_VAL)),
        test_mae=test_mae,
        baseline_test_mae=baseline,
        test_windows=windows,
        data_source=dataset.source,
        data_digest=dataset.digest,
        evaluation=len(previous) + 1,
        previous=previous,
        other_runs_evaluated=others,
    )
    metrics = {
        T.METRIC_TEST_MAE: evaluation.test_mae,
        T.METRIC_BASELINE_TEST: evaluation.baseline_test_mae,
        T.METRIC_TEST_WINDOWS: float(evaluation.test_windows),
        T.METRIC_TEST_SKILL: evaluation.test_skill,
    }
    T.log_test_evaluation(
        uri,
        run_id,
        evaluation=evaluation.evaluation,
        when=datetime.now(UTC).replace(microsecond=0),
        previous=previous,
        metrics=metrics,
        data_source=evaluation.data_source,
        predictions=result.frame(),
        summary=evaluation.to_dict(),
    )
    if register_name:
        version = T.register_model(
            uri,
            run_id,
            cfg,
            name=register_name,
            alias=alias,
            description=f"trial {evaluation.trial} of {experiment}",
            version_tags={
                "experiment": experiment,
                "trial": evaluation.trial,
                "architecture": evaluation.architecture,
                "val_mae": f"{evaluation.val_mae:.4f}",
                "test_mae": f"{evaluation.test_mae:.4f}",
                "baseline_test_mae": f"{evaluation.baseline_test_mae:.4f}",
                "data_digest": evaluation.data_digest,
                "beats_persistence_on_val": str(skill is not None and skill > 0).lower(),
            },
        )
        evaluation.registered_model, evaluation.version = register_name, version
        evaluation.alias, evaluation.model_uri = alias, f"models:/{register_name}@{alias}"
    return evaluation
