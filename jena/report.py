"""``jena report``: one HTML page (plus PNG figures) that sums up a sweep.

Everything comes from the MLflow store (and the Optuna study when it can be reached), so the
page covers every driver and every invocation of the sweep:

* the counts of completed / pruned / failed trials and the compute time;
* the leaderboard per architecture (or named book model): best validation MAE against the
  persistence baseline, as a bar chart and a table — the chapter's table, produced automatically;
* training and validation MAE curves of the top trials (per-epoch history);
* for the champion (the best completed trial), if ``jena best`` has evaluated it: a week of test
  forecasts against the actual temperature, and the error by hour of day and by month against
  persistence. These come from the ``test_predictions.csv`` that ``jena best`` logged: the report
  itself never reads a test row;
* optimisation history, parameter importances and parallel coordinates (Optuna's matplotlib
  visualisations, on the sweep's Optuna study if every trial is an Optuna trial and the study is
  reachable, else on a study rebuilt from the trials' ``hp.*`` params, so that Keras Tuner sweeps
  get them too).

The page and figures are written to ``reports/<experiment>/`` (or ``--out``) and logged to the
latest parent run of the experiment under ``report/``.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import math
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import ConfigError
from .evaluate import PREDICTIONS_FILE, TAG_COUNT, _client, _finite, _label, _quiet, _uri
from .evaluate import select_best as _select_best
from .tracking import trials_frame

__all__ = ["ReportResult", "study_from_frame", "write_report"]

_log = logging.getLogger(__name__)

TOP_CURVES = 5
TOP_TABLE = 10
WEEK = pd.Timedelta(days=7)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
GREY = "#7f7f7f"
NUM_CELL = '<td class="num">'


@dataclass
class ReportResult:
    html: Path
    figures: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    logged_to: str | None = None


# --------------------------------------------------------------------------- helpers


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)
    return path


@contextlib.contextmanager
def _no_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _fmt(value: Any, spec: str = ".4f", empty: str = "") -> str:
    number = _finite(value)
    return empty if number is None else format(number, spec)


def _duration(seconds: float) -> str:
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def _short(text: str) -> str:
    """A proposed value as shown: floats with 4 significant digits."""
    value = _parse(text)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _table(headers: list[str], rows: list[list[str]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            (NUM_CELL if i in numeric else "<td>") + html.escape(c) + "</td>"
            for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figure(name: str, alt: str, caption: str) -> str:
    return (
        f'<figure><img src="{html.escape(name)}" alt="{html.escape(alt)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


# --------------------------------------------------------------------------- data


def _completed(frame: pd.DataFrame) -> pd.DataFrame:
    done = frame[(frame["state"] == "completed") & frame["val_mae"].map(_finite).notna()]
    return done.sort_values(["val_mae", "start_time"], kind="stable")


def leaderboard(frame: pd.DataFrame) -> pd.DataFrame:
    """Best completed trial per architecture / model preset, best first."""
    done = _completed(frame).copy()
    if done.empty:
        return done
    done["label"] = [_label(r) for r in done.to_dict("records")]
    counts = done.groupby("label").size()
    best = done.groupby("label", sort=False).head(1).copy()
    best["trials"] = best["label"].map(counts)
    return best.reset_index(drop=True)


def _baseline(frame: pd.DataFrame, parent: Any | None) -> float | None:
    if parent is not None:
        value = _finite(parent.data.metrics.get("baseline_val_mae"))
        if value is not None:
            return value
    if "metrics.baseline_val_mae" in frame.columns:
        values = frame["metrics.baseline_val_mae"].map(_finite).dropna()
        if len(values):
            return float(values.median())
    return None


def _parse(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() and "." not in value and "e" not in value else number


def study_from_frame(frame: pd.DataFrame, name: str = "from-mlflow") -> Any:
    """An in-memory Optuna study rebuilt from the trials' proposed values (params ``hp.*``):
    completed, pruned and failed trials in start order, with distributions inferred from the
    values seen (numbers: a range, log-scaled when it spans more than two decades)."""
    import optuna
    from optuna.distributions import (
        BaseDistribution,
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )
    from optuna.trial import TrialState, create_trial

    frame = frame.copy()
    columns = [c for c in frame.columns if c.startswith("params.hp.")]
    for column in columns:
        # a value a driver did not propose (fixed, or its default) is the trial's actual one
        actual = "params." + column.removeprefix("params.hp.")
        if actual in frame.columns:
            frame[column] = frame[column].where(frame[column].notna(), frame[actual])
    dists: dict[str, BaseDistribution] = {}
    for column in columns:
        name_ = column.removeprefix("params.hp.")
        values = [_parse(v) for v in frame[column].dropna()]
        if not values:
            continue
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if numeric:
            lo, hi = float(min(values)), float(max(values))
            log = lo > 0 and hi / lo > 100
            if all(isinstance(v, int) for v in values):
                dists[name_] = IntDistribution(int(lo), int(hi), log=log)
            else:
                dists[name_] = FloatDistribution(lo, hi, log=log)
        else:
            dists[name_] = CategoricalDistribution(sorted({str(v) for v in values}))
    study = optuna.create_study(study_name=name, direction="minimize")
    states = {
        "completed": TrialState.COMPLETE,
        "pruned": TrialState.PRUNED,
        "failed": TrialState.FAIL,
    }
    for row in frame.sort_values("start_time", kind="stable").to_dict("records"):
        state = states.get(str(row.get("state")))
        if state is None:
            continue
        value = _finite(row.get("val_mae"))
        if state == TrialState.COMPLETE and value is None:
            continue
        params: dict[str, Any] = {}
        for column in columns:
            name_ = column.removeprefix("params.hp.")
            raw = row.get(column)
            if name_ not in dists or raw is None or (isinstance(raw, float) and math.isnan(raw)):
                continue
            v = _parse(raw)
            params[name_] = str(v) if isinstance(dists[name_], CategoricalDistribution) else v
        if state == TrialState.FAIL:
            params = {}
        study.add_trial(
            create_trial(
                state=state,
                value=value if state == TrialState.COMPLETE else None,
                params=params,
                distributions={k: dists[k] for k in params},
            )
        )
    return study


def _optuna_study(
    experiment: str, frame: pd.DataFrame, storage: str | None, parent: Any, client: Any
) -> tuple[Any | None, str]:
    """(study, where it came from): the sweep's own study if it covers every trial, else a
    study rebuilt from MLflow."""
    drivers = set(frame["driver"].dropna())
    reason = ""
    if drivers == {"optuna"}:
        url = (
            storage
            or _storage_from_parent(client, parent)
            or (f"journal:mlruns/optuna/{experiment}.journal")
        )
        try:
            study = _load_study(url, experiment)
        except Exception as exc:  # unreachable, missing, another name
            reason = f"the Optuna study at {url} is not reachable ({type(exc).__name__}: {exc})"
        else:
            if study is not None:
                return study, f"Optuna study {experiment!r} ({url})"
            reason = f"no Optuna study at {url}"
    else:
        reason = "the sweep ran with " + ", ".join(sorted(drivers)) if drivers else "no driver"
    try:
        return study_from_frame(frame, experiment), (
            f"rebuilt from the MLflow trials ({reason})" if reason else "rebuilt from MLflow"
        )
    except Exception as exc:
        return None, f"no study ({type(exc).__name__}: {exc})"


def _storage_from_parent(client: Any, parent: Any) -> str | None:
    """The ``[storage].optuna`` of the sweep definition logged on the parent run."""
    if parent is None:
        return None
    import tomllib

    with tempfile.TemporaryDirectory(prefix="jena-report-") as tmp, _quiet():
        for name in ("sweep.toml", "sweep.json"):
            try:
                path = Path(client.download_artifacts(parent.info.run_id, name, tmp))
            except Exception:
                continue
            text = path.read_text()
            try:
                raw = tomllib.loads(text) if name.endswith(".toml") else json.loads(text)
            except (tomllib.TOMLDecodeError, json.JSONDecodeError):
                return None
            value = (raw.get("storage") or {}).get("optuna")
            return str(value) if value else None
    return None


def _load_study(url: str, name: str) -> Any | None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:"))
        if not path.is_file():
            return None
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        storage: Any = JournalStorage(JournalFileBackend(str(path)))
    elif url == "memory":
        return None
    else:
        if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
            return None
        storage = url
    return optuna.load_study(study_name=name, storage=storage)


# --------------------------------------------------------------------------- figures


def fig_leaderboard(board: pd.DataFrame, baseline: float | None, path: Path) -> Path:
    plt = _pyplot()
    labels = list(board["label"])[::-1]
    values = list(board["val_mae"])[::-1]
    colours = [COLOURS[0]] * len(values)
    if baseline is not None:
        labels = ["persistence", *labels]
        values = [baseline, *values]
        colours = [GREY, *colours]
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(labels) + 1.5))
    bars = ax.barh(labels, values, color=colours)
    for bar, value in zip(bars, values, strict=True):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {value:.3f}",
                va="center", fontsize=9)  # fmt: skip
    if baseline is not None:
        ax.axvline(baseline, color=GREY, linestyle="--", linewidth=1)
    ax.set_xlabel("best validation MAE (°C)")
    ax.set_xlim(0, max(values) * 1.18)
    ax.set_title("best validation MAE per architecture vs persistence")
    return _save(fig, path)


def fig_curves(
    curves: list[tuple[str, list[tuple[int, float]], list[tuple[int, float]]]],
    baseline: float | None,
    path: Path,
) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 5))
    for i, (label, train, val) in enumerate(curves):
        colour = COLOURS[i % len(COLOURS)]
        if train:
            ax.plot(*zip(*train, strict=True), "o--", color=colour, alpha=0.6, markersize=3)
        if val:
            ax.plot(*zip(*val, strict=True), "-", color=colour, label=label, linewidth=2)
    if baseline is not None:
        ax.axhline(baseline, color=GREY, linestyle=":", label=f"persistence {baseline:.3f}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MAE (°C)")
    ax.set_title("training (dashed) and validation (solid) MAE of the top trials")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def fig_week(pred: pd.DataFrame, path: Path) -> Path:
    plt = _pyplot()
    start = pred["time"].iloc[0]
    week = pred[pred["time"] < start + WEEK]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.plot(week["time"], week["actual"], color="black", linewidth=1.5, label="actual")
    ax.plot(week["time"], week["forecast"], color=COLOURS[0], linewidth=1.2,
            label="model (24 h ahead)")  # fmt: skip
    ax.plot(week["time"], week["persistence"], color=GREY, linewidth=1, linestyle="--",
            label="persistence (last T of the window)")  # fmt: skip
    ax.set_ylabel("temperature (°C)")
    ax.set_title(f"test week from {start:%Y-%m-%d}: forecast vs actual")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    return _save(fig, path)


def fig_errors(pred: pd.DataFrame, path: Path) -> Path:
    plt = _pyplot()
    err = pd.DataFrame(
        {
            "hour": pred["time"].dt.hour,
            "month": pred["time"].dt.month,
            "model": (pred["forecast"] - pred["actual"]).abs(),
            "persistence": (pred["persistence"] - pred["actual"]).abs(),
        }
    )
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    by_hour = err.groupby("hour")[["model", "persistence"]].mean()
    left.plot(by_hour.index, by_hour["model"], "o-", color=COLOURS[0], label="model")
    left.plot(by_hour.index, by_hour["persistence"], "s--", color=GREY, label="persistence")
    left.set_xticks(range(0, 24, 3))
    left.set_xlabel("hour of day (target time)")
    left.set_ylabel("MAE (°C)")
    left.set_title("test error by hour of day")
    left.set_ylim(bottom=0)
    left.legend(fontsize=8)
    left.grid(alpha=0.3)
    by_month = err.groupby("month")[["model", "persistence"]].mean()
    x = np.arange(len(by_month))
    right.bar(x - 0.2, by_month["model"], width=0.4, color=COLOURS[0], label="model")
    right.bar(x + 0.2, by_month["persistence"], width=0.4, color=GREY, label="persistence")
    right.set_xticks(x, [MONTHS[m - 1] for m in by_month.index])
    right.set_ylabel("MAE (°C)")
    right.set_title("test error by month")
    right.legend(fontsize=8)
    right.grid(alpha=0.3, axis="y")
    return _save(fig, path)


def _optuna_figure(
    draw: Callable[..., Any], study: Any, path: Path, size: tuple[float, float], **kwargs: Any
) -> Path:
    plt = _pyplot()
    from matplotlib.collections import LineCollection
    from matplotlib.ticker import MaxNLocator

    if len(study.directions) > 1:
        kwargs.setdefault("target", lambda t: t.values[0])
    kwargs.setdefault("target_name", "val MAE (°C)")
    # Optuna switches the global style to ggplot: keep that inside this figure.
    with plt.style.context("default"), _no_warnings():
        ax = draw(study, **kwargs)
        axes = ax if isinstance(ax, np.ndarray) else np.array([ax])
        fig = axes.flat[0].figure
        fig.set_size_inches(*size)
        for a in fig.axes:
            if a.get_xlabel() == "Trial":
                a.xaxis.set_major_locator(MaxNLocator(integer=True))
            for collection in a.collections:
                if isinstance(collection, LineCollection):  # parallel coordinates
                    collection.set_cmap("viridis")
                    collection.set_linewidth(2)
        return _save(fig, path)


# --------------------------------------------------------------------------- the page

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
.meta { color: #666; font-size: 0.9em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.7em; text-align: left; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.baseline td { color: #666; font-style: italic; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #666; font-size: 0.88em; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 0.5em 0.8em; }
.warn { background: #fdecea; border-left: 4px solid #d62728; padding: 0.5em 0.8em; }
.counts span { display: inline-block; margin-right: 1.5em; }
"""


def write_report(
    experiment: str,
    *,
    out: Path | str | None = None,
    tracking_uri: str | None = None,
    storage: str | None = None,
    log: bool = True,
) -> ReportResult:
    """Write ``index.html`` and its figures; log them to the latest parent run."""
    uri = _uri(tracking_uri)
    client = _client(uri)
    frame = trials_frame(uri, experiment)
    if frame.empty:
        raise ConfigError(f"experiment {experiment!r} has no trials yet: nothing to report")
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise ConfigError(f"no experiment named {experiment!r} in {uri}")
    parents = client.search_runs(
        [exp.experiment_id], "tags.run_type = 'sweep'", order_by=["attributes.start_time DESC"]
    )
    parent = parents[0] if parents else None
    folder = Path(out) if out is not None else Path("reports") / experiment
    folder.mkdir(parents=True, exist_ok=True)
    result = ReportResult(html=folder / "index.html")
    notes = result.notes
    sections: list[str] = []
    baseline = _baseline(frame, parent)

    # -- summary -------------------------------------------------------------------
    states = frame["state"].fillna("unknown").value_counts().to_dict()
    compute = float(frame["duration_s"].map(_finite).dropna().sum())
    wall = 0.0
    for run in parents:
        if run.info.end_time and run.info.start_time:
            wall += (run.info.end_time - run.info.start_time) / 1000
    drivers = ", ".join(sorted(set(frame["driver"].dropna()))) or "?"
    counts = "".join(
        f"<span><b>{states.get(k, 0)}</b> {k}</span>"
        for k in ("completed", "pruned", "failed", "killed")
    )
    if states.get("running"):
        counts += f"<span><b>{states['running']}</b> running</span>"
    sources = sorted(set(frame.get("tags.data_source", pd.Series(dtype=str)).dropna()))
    sections.append(
        "<h2>Trials</h2>"
        f'<p class="counts">{counts}</p>'
        f"<p>{len(frame)} trials in {len(parents)} invocation(s) · drivers: {html.escape(drivers)}"
        f" · total compute time {_duration(compute)} (sum of trial durations), wall time "
        f"{_duration(wall)} · persistence baseline (validation) "
        f"{_fmt(baseline, '.4f', '?')} °C</p>"
    )

    # -- leaderboard ---------------------------------------------------------------
    board = leaderboard(frame)
    if board.empty:
        sections.append("<h2>Leaderboard</h2>" + _note("No completed trial yet."))
    else:
        result.figures.append(fig_leaderboard(board, baseline, folder / "leaderboard.png"))
        rows = []
        for r in board.to_dict("records"):
            own = _finite(r.get("metrics.baseline_val_mae")) or baseline
            skill = 1 - r["val_mae"] / own if own else None
            rows.append([
                str(r["label"]), str(r["trials"]), _fmt(r["val_mae"]), _fmt(own),
                _fmt(skill, "+.1%"), _fmt(r.get("metrics.test_mae")),
                f"{int(r['param_count']):,}" if _finite(r.get("param_count")) else "",
                f"{r.get('number')} ({r.get('driver')})",
            ])  # fmt: skip
        table = _table(
            ["architecture / model", "completed trials", "best val MAE (°C)",
             "persistence, same windows (°C)", "skill", "test MAE (°C)", "parameters",
             "best trial (driver)"],
            rows, numeric={1, 2, 3, 4, 5, 6},
        )  # fmt: skip
        base_row = (
            '<tr class="baseline"><td>persistence (last T)</td><td class="num"></td>'
            f'<td class="num">{_fmt(baseline)}</td><td></td><td class="num">0.0%</td><td></td>'
            "<td></td><td></td></tr>"
        )
        table = table.replace("</tbody>", base_row + "</tbody>")
        sections.append(
            "<h2>Leaderboard</h2>"
            + _figure(
                "leaderboard.png",
                "leaderboard bar chart",
                "Best validation MAE per architecture (or named book model); grey: the "
                "persistence baseline. Lower is better.",
            )
            + table
            + '<p class="meta">Skill = 1 − model / persistence on the trial\'s own validation '
            "windows (its sequence length and validation subset); the persistence row and the "
            "grey bar use the preset's full validation windows. Test MAE appears once "
            "<code>jena best</code> has evaluated that trial.</p>"
        )

    # -- learning curves -----------------------------------------------------------
    done = _completed(frame)
    curves = []
    for r in done.head(TOP_CURVES).to_dict("records"):
        epochs = int(_finite(r.get("metrics.epochs")) or 10**6)
        series = {}
        for key in ("mae", "val_mae"):
            history = client.get_metric_history(r["run_id"], key)
            series[key] = sorted((m.step, m.value) for m in history if 1 <= m.step <= epochs)
        label = f"{r.get('driver')} #{r['number']} {_label(r)} ({_fmt(r['val_mae'], '.3f')})"
        curves.append((label, series["mae"], series["val_mae"]))
    if any(c[1] or c[2] for c in curves):
        result.figures.append(fig_curves(curves, baseline, folder / "learning_curves.png"))
        sections.append(
            "<h2>Training and validation MAE</h2>"
            + _figure(
                "learning_curves.png",
                "learning curves",
                f"Per-epoch MAE (°C) of the top {len(curves)} completed trials.",
            )
        )
    else:
        sections.append("<h2>Training and validation MAE</h2>" + _note("No epoch history."))

    # -- champion on the test split ------------------------------------------------
    sections.append("<h2>Champion on the test split</h2>")
    champion = None
    with contextlib.suppress(ConfigError):
        champion = _select_best(frame)
    if champion is None:
        sections.append(_note("No completed trial with a model: no champion."))
    elif _finite(champion.get("metrics.test_mae")) is None:
        text = (
            f"The champion (trial {champion['number']}, {_label(champion.to_dict())}, run "
            f"{champion['run_id']}) has not been evaluated on the test split yet: run "
            f"`jena best --experiment {experiment}` once, then write this report again."
        )
        notes.append("champion not evaluated on the test split: no forecast figures")
        sections.append(_note(text))
    else:
        sections.append(_champion_section(client, champion, folder, result))

    # -- search --------------------------------------------------------------------
    sections.append("<h2>Search</h2>")
    study, origin = _optuna_study(experiment, frame, storage, parent, client)
    sections.append(f'<p class="meta">Study: {html.escape(origin)}.</p>')
    complete = 0 if study is None else sum(t.state.name == "COMPLETE" for t in study.trials)
    if study is None:
        sections.append(_note("No study: no optimisation history or importances."))
    elif not complete:
        notes.append("no completed trial in the study: no search plots")
        sections.append(_note("No completed trial in the study: no search plots."))
    else:
        import optuna
        from optuna.visualization import matplotlib as ovm

        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.ERROR)  # "too few trials" chatter
        for name, draw, size, title, kwargs in (
            ("optimisation_history.png", ovm.plot_optimization_history, (9, 4.5),
             "Optimisation history: validation MAE of each trial and the best so far.", {}),
            ("param_importances.png", ovm.plot_param_importances, (8, 4),
             "Hyperparameter importances for the validation MAE (Optuna's default evaluator).",
             {}),
            ("parallel_coordinates.png", ovm.plot_parallel_coordinate, (11, 5),
             "Parallel coordinates: each line a completed trial, coloured by validation MAE.",
             {}),
        ):  # fmt: skip
            try:
                result.figures.append(_optuna_figure(draw, study, folder / name, size, **kwargs))
                sections.append(_figure(name, name.removesuffix(".png"), title))
            except Exception as exc:  # too few trials, no varying parameter, ...
                message = f"{name.removesuffix('.png').replace('_', ' ')}: not drawn ({exc})"
                notes.append(message)
                sections.append(_note(message))
                _pyplot().close("all")
        optuna.logging.set_verbosity(verbosity)

    # -- top trials ----------------------------------------------------------------
    hp_columns = sorted(c for c in frame.columns if c.startswith("params.hp."))
    rows = []
    for r in done.head(TOP_TABLE).to_dict("records"):
        values = ", ".join(
            f"{c.removeprefix('params.hp.')}={_short(r[c])}" for c in hp_columns
            if isinstance(r.get(c), str)
        )  # fmt: skip
        rows.append([str(r["number"]), str(r.get("driver")), _label(r), _fmt(r["val_mae"]),
                     _fmt(r.get("duration_s"), ".0f"), values])  # fmt: skip
    if rows:
        sections.append(
            f"<h2>Top {len(rows)} trials</h2>"
            + _table(
                ["trial", "driver", "architecture", "val MAE (°C)", "seconds", "proposed values"],
                rows,
                numeric={3, 4},
            )
        )

    # -- page ----------------------------------------------------------------------
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    meta = (
        f"generated {generated} · MLflow {html.escape(uri)} · latest invocation "
        f"{html.escape(parent.info.run_id if parent else '?')} · data "
        f"{html.escape(', '.join(sources) or '?')}"
    )
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>jena · {html.escape(experiment)}</title><style>{_CSS}</style></head><body>"
        f"<h1>Sweep {html.escape(experiment)}: 24-hour temperature forecasts</h1>"
        f'<p class="meta">{meta}</p>' + "".join(sections) + "</body></html>\n"
    )
    result.html.write_text(page, encoding="utf-8")

    if log and parent is not None:
        with _quiet():
            client.log_artifacts(parent.info.run_id, str(folder), "report")
        result.logged_to = parent.info.run_id
    return result


def _champion_section(client: Any, champion: pd.Series, folder: Path, result: ReportResult) -> str:
    row = champion.to_dict()
    run_id = str(row["run_id"])
    test_mae = _finite(row.get("metrics.test_mae"))
    base = _finite(row.get("metrics.baseline_test_mae"))
    skill = 1 - test_mae / base if test_mae is not None and base else None
    uses = row.get(f"tags.{TAG_COUNT}")
    parts = [
        _table(
            [
                "trial",
                "architecture",
                "val MAE (°C)",
                "test MAE (°C)",
                "persistence test MAE (°C)",
                "skill",
                "test evaluations",
            ],
            [
                [
                    f"{row['number']} ({row.get('driver')})",
                    _label(row),
                    _fmt(row["val_mae"]),
                    _fmt(test_mae),
                    _fmt(base),
                    _fmt(skill, "+.1%"),
                    str(uses or "?"),
                ]
            ],
            numeric={2, 3, 4, 5, 6},
        )
    ]
    if isinstance(uses, str) and uses.isdigit() and int(uses) > 1:
        parts.append(
            f'<p class="warn">The test set of this run was used {uses} times: the test MAE has '
            "informed decisions and is no longer an unbiased estimate.</p>"
        )
    with tempfile.TemporaryDirectory(prefix="jena-report-") as tmp, _quiet():
        try:
            local = Path(client.download_artifacts(run_id, PREDICTIONS_FILE, tmp))
            pred = pd.read_csv(local, parse_dates=["time"])
        except Exception as exc:
            message = f"the champion's {PREDICTIONS_FILE} is missing ({type(exc).__name__})"
            result.notes.append(message)
            return "".join(parts) + _note(message + ": run `jena best` again to log it.")
    if pred.empty:
        return "".join(parts) + _note("No test windows.")
    result.figures.append(fig_week(pred, folder / "forecast_week.png"))
    result.figures.append(fig_errors(pred, folder / "error_by_time.png"))
    parts.append(
        _figure("forecast_week.png", "forecast vs actual over a test week",
                "One week of the test split: the champion's 24-hour-ahead forecast, the actual "
                "temperature and the persistence forecast, at the target times.")
        + _figure("error_by_time.png", "test error by hour of day and by month",
                  "Mean absolute error on the test windows by the hour of day and the month of "
                  "the target time: champion vs persistence.")
    )  # fmt: skip
    return "".join(parts)
