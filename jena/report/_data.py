"""What the report shows, read from the MLflow store: trials, the leaderboard, the baseline,
the learning curves of the top trials, the champion's test predictions."""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from jena import tracking as T
from jena.tracking import names as N
from jena.tracking import parse_text

TOP_CURVES = 5
TOP_TABLE = 10


def short(text: str) -> str:
    """A proposed value as shown: floats with 4 significant digits."""
    value = parse_text(text)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Champion:
    """What was evaluated on the test split (the latest look), however it was made."""

    kind: str  # "refit": the refit's seeds averaged; "trial": a sweep trial's own model
    label: str
    run_id: str
    val_mae: float | None
    val_skill: float | None
    test_mae: float
    baseline_test_mae: float | None
    uses: str  # how many looks at the test split this record holds
    members: list[tuple[str, float]]  # (seed, test MAE) of a refit champion's members
    metrics: dict[str, float] = field(default_factory=dict)  # the record's (intervals, DM, ridge)

    def interval(self, name: str) -> tuple[float, float] | None:
        """The 95 % interval ``name_low``, ``name_high`` ``jena best`` recorded, or None."""
        low, high = (T.finite(self.metrics.get(f"{name}_{end}")) for end in ("low", "high"))
        return None if low is None or high is None else (low, high)

    @property
    def worse_than_persistence_on_test(self) -> bool:
        return self.baseline_test_mae is not None and self.test_mae > self.baseline_test_mae


@dataclass
class ReportData:
    experiment: str
    uri: str
    frame: pd.DataFrame  # every trial (tracking.trials_frame)
    parents: list[T.RunRecord]  # the sweep runs, newest first
    done: pd.DataFrame  # the candidates (completed, or stopped by the time budget), best first
    baseline: float | None  # persistence val MAE (°C) of the sweep's own windows
    refits: list[T.RunRecord]  # the refit runs, newest first

    @property
    def parent(self) -> T.RunRecord | None:
        return self.parents[0] if self.parents else None


def read(experiment: str, uri: str) -> ReportData:
    frame = T.trials_frame(uri, experiment)
    parents = T.sweep_runs(uri, experiment)
    refits = T.find_runs(uri, experiment, f"tags.{N.TAG_RUN_TYPE} = '{N.RUN_REFIT}'")
    return ReportData(
        experiment=experiment,
        uri=uri,
        frame=frame,
        parents=parents,
        done=T.candidates(frame),
        baseline=baseline(frame, parents[0] if parents else None),
        refits=sorted(refits, key=lambda r: r.start_time or 0, reverse=True),
    )


def champion(data: ReportData) -> Champion | None:
    """The latest champion evaluated on the test split: a refit's or the ridge's (when no
    network beat it), else the best trial's."""
    tested = [r for r in data.refits if T.finite(r.metrics.get(N.METRIC_TEST_MAE)) is not None]
    ridges = [r for r in T.find_runs(data.uri, data.experiment,
                                     f"tags.{N.TAG_RUN_TYPE} = '{N.RUN_RIDGE}'")
              if T.finite(r.metrics.get(N.METRIC_TEST_MAE)) is not None]  # fmt: skip
    ridge = max(ridges, key=lambda r: r.start_time or 0) if ridges else None
    if ridge is not None and (not tested or (ridge.start_time or 0) > (tested[0].start_time or 0)):
        return Champion(
            kind="ridge",
            label="ridge (linear reference): no network beat it on validation",
            run_id=ridge.run_id,
            val_mae=T.finite(ridge.metrics.get(N.METRIC_CHAMPION_VAL)),
            val_skill=T.finite(ridge.metrics.get(N.METRIC_CHAMPION_VAL_SKILL)),
            test_mae=float(ridge.metrics[N.METRIC_TEST_MAE]),
            baseline_test_mae=T.finite(ridge.metrics.get(N.METRIC_BASELINE_TEST)),
            uses=ridge.tags.get(N.TAG_TEST_COUNT, "?"),
            members=[],
            metrics=dict(ridge.metrics),
        )
    if tested:
        r = tested[0]
        members = sorted(
            (k.removeprefix(f"{N.METRIC_TEST_MAE}_seed"), v)
            for k, v in r.metrics.items()
            if k.startswith(f"{N.METRIC_TEST_MAE}_seed")
        )
        return Champion(
            kind="refit",
            label=r.tags.get(N.TAG_LABEL, "?"),
            run_id=r.run_id,
            val_mae=T.finite(r.metrics.get(N.METRIC_CHAMPION_VAL)),
            val_skill=T.finite(r.metrics.get(N.METRIC_CHAMPION_VAL_SKILL)),
            test_mae=float(r.metrics[N.METRIC_TEST_MAE]),
            baseline_test_mae=T.finite(r.metrics.get(N.METRIC_BASELINE_TEST)),
            uses=r.tags.get(N.TAG_TEST_COUNT, "?"),
            members=members,
            metrics=dict(r.metrics),
        )
    column = f"metrics.{N.METRIC_TEST_MAE}"
    if column not in data.frame.columns:
        return None
    tested_trials = data.frame[data.frame[column].map(T.finite).notna()]
    if tested_trials.empty:
        return None
    row = tested_trials.sort_values("end_time").iloc[-1].to_dict()
    return Champion(
        kind="trial",
        label=f"trial {row['number']} ({row.get('driver')}, {T.label(row)})",
        run_id=str(row["run_id"]),
        val_mae=T.finite(row["val_mae"]),
        val_skill=T.finite(row.get("val_skill")),
        test_mae=float(row[column]),
        baseline_test_mae=T.finite(row.get(f"metrics.{N.METRIC_BASELINE_TEST}")),
        uses=str(row.get(f"tags.{N.TAG_TEST_COUNT}") or "?"),
        members=[],
        metrics={
            str(k).removeprefix("metrics."): float(v)
            for k, v in row.items()
            if str(k).startswith("metrics.") and T.finite(v) is not None
        },
    )


def refit_table(data: ReportData) -> dict[str, Any] | None:
    """The latest refit's configurations with their seeds (its ``refit.json``), or None."""
    import json

    for r in data.refits:
        with tempfile.TemporaryDirectory(prefix="jena-report-") as tmp:
            path = T.download_artifact(data.uri, r.run_id, N.REFIT_FILE, tmp)
            if path is not None:
                return dict(json.loads(Path(path).read_text()))
    return None


Curve2 = tuple[list[float], list[float]]


def compute_curve(
    data: ReportData,
) -> tuple[list[float], list[float], list[tuple[str, float]], Curve2]:
    """(cumulative fit seconds, best validation MAE so far) over the sweep's trials in the
    order they started; the warm-start book models' (label, validation MAE); and the refit's
    members, continuing the compute (full fidelity: every window, the full validation split)."""
    frame = data.frame.sort_values("start_time", kind="stable")
    fit = frame.get(f"metrics.{N.METRIC_FIT_S}", pd.Series(0.0, index=frame.index))
    spent, best, xs, ys = 0.0, math.inf, [], []
    for row, seconds in zip(frame.to_dict("records"), fit, strict=True):
        spent += T.finite(seconds) or 0.0
        value = T.finite(row["val_mae"]) if row.get("state") == "completed" else None
        if value is not None and value < best:
            best = value
        if math.isfinite(best):
            xs.append(spent)
            ys.append(best)
    books = []
    column = f"tags.{N.TAG_WARM_START}"
    if column in frame.columns:
        for row in frame.to_dict("records"):
            tag, value = row.get(column), T.finite(row["val_mae"])
            if isinstance(tag, str) and tag.startswith("book:") and value is not None:
                books.append((tag.removeprefix("book:"), value))
    query = f"tags.{N.TAG_RUN_TYPE} = '{N.RUN_REFIT_MEMBER}'"
    members = sorted(T.find_runs(data.uri, data.experiment, query), key=lambda r: r.start_time or 0)
    rx: list[float] = [xs[-1]] if xs else []
    ry: list[float] = []
    refit_best = math.inf
    for r in members:
        spent += T.finite(r.metrics.get(N.METRIC_FIT_S)) or 0.0
        value = T.finite(r.metrics.get(N.METRIC_BEST_VAL))
        if value is not None and r.tags.get(N.TAG_STATE) == "completed":
            refit_best = min(refit_best, value)
        if math.isfinite(refit_best):
            if not ry and rx:
                ry.append(refit_best)
            rx.append(spent)
            ry.append(refit_best)
    return xs, ys, books, (rx[: len(ry)], ry)


def leaderboard(frame: pd.DataFrame) -> pd.DataFrame:
    """Best candidate (completed, or stopped by the time budget: jena.tracking ``candidates``)
    per architecture / model preset, best first."""
    done = T.candidates(frame).copy()
    if done.empty:
        return done
    done["label"] = [T.label(r) for r in done.to_dict("records")]
    counts = done.groupby("label").size()
    best = done.groupby("label", sort=False).head(1).copy()
    best["trials"] = best["label"].map(counts)
    return best.reset_index(drop=True)


def baseline(frame: pd.DataFrame, parent: T.RunRecord | None) -> float | None:
    if parent is not None:
        value = T.finite(parent.metrics.get(N.METRIC_BASELINE_VAL))
        if value is not None:
            return value
    column = f"metrics.{N.METRIC_BASELINE_VAL}"
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
        epochs = int(T.finite(r.get(f"metrics.{N.METRIC_EPOCHS}")) or 10**6)
        series = {}
        for key in (N.METRIC_MAE, N.METRIC_VAL_MAE):
            history = T.metric_history(data.uri, r["run_id"], key)
            series[key] = [(s, v) for s, v in history if 1 <= s <= epochs]
        val = T.finite(r["val_mae"])
        label = f"{r.get('driver')} #{r['number']} {T.label(r)} ({val:.3f})"
        out.append((label, series[N.METRIC_MAE], series[N.METRIC_VAL_MAE]))
    return out


def test_predictions(uri: str, run_id: str) -> pd.DataFrame | None:
    """The champion's ``test_predictions.csv`` (logged by ``jena best``), or None."""
    with tempfile.TemporaryDirectory(prefix="jena-report-") as tmp:
        local = T.download_artifact(uri, run_id, N.PREDICTIONS_FILE, tmp)
        if local is None:
            return None
        return pd.read_csv(Path(local), parse_dates=["time"])


def compute_seconds(frame: pd.DataFrame) -> float:
    values = frame["duration_s"].map(T.finite).dropna()
    return float(values.sum()) if len(values) else 0.0


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
