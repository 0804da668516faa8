"""What the report shows, read from the MLflow store: trials, the leaderboard, the baseline,
the learning curves of the top trials, the champion's test predictions."""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from jena import tracking as T

TOP_CURVES = 5
TOP_TABLE = 10


def parse_text(value: Any) -> Any:
    """A param's text as the number it spells (int when whole and written so), else as is."""
    if not isinstance(value, str):
        return value
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() and "." not in value and "e" not in value else number


def short(text: str) -> str:
    """A proposed value as shown: floats with 4 significant digits."""
    value = parse_text(text)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@dataclass
class ReportData:
    experiment: str
    uri: str
    frame: pd.DataFrame  # every trial (tracking.trials_frame)
    parents: list[T.RunRecord]  # the sweep runs, newest first
    done: pd.DataFrame  # completed trials, best first
    baseline: float | None  # persistence val MAE (°C) of the sweep's own windows

    @property
    def parent(self) -> T.RunRecord | None:
        return self.parents[0] if self.parents else None


def read(experiment: str, uri: str) -> ReportData:
    frame = T.trials_frame(uri, experiment)
    parents = T.sweep_runs(uri, experiment)
    return ReportData(
        experiment=experiment,
        uri=uri,
        frame=frame,
        parents=parents,
        done=T.completed_trials(frame),
        baseline=baseline(frame, parents[0] if parents else None),
    )


def leaderboard(frame: pd.DataFrame) -> pd.DataFrame:
    """Best completed trial per architecture / model preset, best first."""
    done = T.completed_trials(frame).copy()
    if done.empty:
        return done
    done["label"] = [T.label(r) for r in done.to_dict("records")]
    counts = done.groupby("label").size()
    best = done.groupby("label", sort=False).head(1).copy()
    best["trials"] = best["label"].map(counts)
    return best.reset_index(drop=True)


def baseline(frame: pd.DataFrame, parent: T.RunRecord | None) -> float | None:
    if parent is not None:
        value = T.finite(parent.metrics.get(T.METRIC_BASELINE_VAL))
        if value is not None:
            return value
    column = f"metrics.{T.METRIC_BASELINE_VAL}"
    if column in frame.columns:
        values = frame[column].map(T.finite).dropna()
        if len(values):
            return float(values.median())
    return None


Curve = tuple[str, list[tuple[int, float]], list[tuple[int, float]]]


def curves(data: ReportData, top: int = TOP_CURVES) -> list[Curve]:
    """(label, training MAE, validation MAE) per epoch of the top completed trials."""
    out: list[Curve] = []
    for r in data.done.head(top).to_dict("records"):
        epochs = int(T.finite(r.get(f"metrics.{T.METRIC_EPOCHS}")) or 10**6)
        series = {}
        for key in (T.METRIC_MAE, T.METRIC_VAL_MAE):
            history = T.metric_history(data.uri, r["run_id"], key)
            series[key] = [(s, v) for s, v in history if 1 <= s <= epochs]
        val = T.finite(r["val_mae"])
        label = f"{r.get('driver')} #{r['number']} {T.label(r)} ({val:.3f})"
        out.append((label, series[T.METRIC_MAE], series[T.METRIC_VAL_MAE]))
    return out


def test_predictions(uri: str, run_id: str) -> pd.DataFrame | None:
    """The champion's ``test_predictions.csv`` (logged by ``jena best``), or None."""
    with tempfile.TemporaryDirectory(prefix="jena-report-") as tmp:
        local = T.download_artifact(uri, run_id, T.PREDICTIONS_FILE, tmp)
        if local is None:
            return None
        return pd.read_csv(Path(local), parse_dates=["time"])


def compute_seconds(frame: pd.DataFrame) -> float:
    values = frame["duration_s"].map(T.finite).dropna()
    return float(values.sum()) if len(values) else 0.0


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
