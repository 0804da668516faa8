"""The report's search section, driver-neutral: what the trials tried and what it gave, drawn
from the MLflow store's trials (:func:`jena.tracking.proposals`), so an Optuna sweep, a Keras
Tuner sweep and a sweep of both are drawn the same way, and no tuner is imported.

Three figures: the optimisation history (each candidate's validation MAE in the order the trials
started, and the best so far), the hyperparameters' importances (the share of the candidates'
validation-MAE variance each explains on its own: :func:`importances`) and parallel coordinates
of the most important ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from jena import tracking as T

from ._data import ReportData
from ._figures import COLOURS, GREY, no_warnings, pyplot, save

PARALLEL_PARAMS = 6  # the parallel-coordinates plot shows this many of the most important params
BINS = 4  # a number with more distinct values than this is grouped in quantile bins
MIN_TRIALS = 3  # candidates needed before importances mean anything at all
HEAD = ("number", "driver", "state", "val_mae")


@dataclass
class SearchPlots:
    """The search section: what it was drawn from, the figures written (file name, alt text,
    caption) and notes for what could not be drawn."""

    origin: str
    figures: list[tuple[Path, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _log_scaled(values: pd.Series) -> bool:
    """Numbers spanning more than two decades, all positive: on a log scale."""
    return bool((values > 0).all()) and float(values.max()) / float(values.min()) > 100


def _numeric(values: pd.Series) -> pd.Series | None:
    """``values`` as floats (log10 when log-scaled) when every one is a number, else None."""
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return None
    numbers = values.astype(float)
    return _log10(numbers) if _log_scaled(numbers) else numbers


def _log10(numbers: pd.Series) -> pd.Series:
    return pd.Series(np.log10(numbers.to_numpy(float)), index=numbers.index)


def _groups(values: pd.Series) -> pd.Series:
    """The group of each value: itself, or its quantile bin for a number of many values."""
    numbers = _numeric(values)
    if numbers is not None and numbers.nunique() > BINS:
        return pd.qcut(numbers.rank(method="first"), BINS, labels=False)
    return values.map(str)


def importances(done: pd.DataFrame) -> dict[str, float]:
    """For each hyperparameter that varies over the candidate trials ``done`` (rows of
    :func:`jena.tracking.proposals` with a ``val_mae``): the share of the validation MAE's
    variance it explains on its own — the between-group variance over the total (η²), its values
    as groups (numbers of many values: in quartile bins). Marginal, not joint: parameters that
    interact or vary together share the credit. Most important first; {} when fewer than
    :data:`MIN_TRIALS` candidates or no spread."""
    y = done["val_mae"].astype(float)
    total = float(((y - y.mean()) ** 2).sum())
    if len(done) < MIN_TRIALS or not total > 0:
        return {}
    found = {}
    for name in (c for c in done.columns if c not in HEAD):
        values = done[name]
        known = values.notna()
        if values[known].map(str).nunique() < 2:
            continue
        groups = _groups(values[known])
        kept = y[known]
        means = kept.groupby(groups).transform("mean")
        found[name] = float(((means - y.mean()) ** 2).sum()) / total
    return dict(sorted(found.items(), key=lambda kv: -kv[1]))


def _history(done: pd.DataFrame, order: pd.Series, path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for i, (driver, rows) in enumerate(done.fillna({"driver": "?"}).groupby("driver")):
        ax.scatter(order[rows.index], rows["val_mae"], s=22, color=COLOURS[i % len(COLOURS)],
                   label=f"{driver} trial", zorder=3)  # fmt: skip
    best = done["val_mae"].cummin()
    ax.step(order[done.index], best, where="post", color="#d62728", label="best so far")
    ax.set_xlabel("trial, in the order they started (every driver, every invocation)")
    ax.set_ylabel("validation MAE (°C)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save(fig, path)


def _importances(found: dict[str, float], path: Path) -> Path:
    plt = pyplot()
    names, shares = list(found)[::-1], list(found.values())[::-1]
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.4 * len(names) + 1.2)))
    bars = ax.barh(names, shares, color=COLOURS[0])
    for bar, share in zip(bars, shares, strict=True):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {share:.0%}",
                va="center", fontsize=9)  # fmt: skip
    ax.set_xlim(0, 1.1)
    ax.set_xlabel("share of the validation MAE's variance it explains on its own (η²)")
    return save(fig, path)


def _axis(values: pd.Series) -> tuple[np.ndarray, list[tuple[float, str]]]:
    """One axis of the parallel coordinates: each value's height in [0, 1] and the ticks."""
    numbers = _numeric(values.dropna())
    if numbers is not None and numbers.nunique() > 1:
        log = _log_scaled(values.dropna().astype(float))
        x = _log10(values.astype(float)) if log else values.astype(float)
        lo, hi = float(numbers.min()), float(numbers.max())
        heights = ((x - lo) / (hi - lo)).to_numpy()
        shown = [(0.0, 10**lo if log else lo), (1.0, 10**hi if log else hi)]
        return heights, [(h, f"{v:.4g}") for h, v in shown]
    labels = sorted(values.dropna().map(str).unique())
    place = {v: (i / (len(labels) - 1) if len(labels) > 1 else 0.5) for i, v in enumerate(labels)}
    heights = np.array([place.get(str(v), math.nan) if pd.notna(v) else math.nan for v in values])
    return heights, [(place[v], v) for v in labels]


def _parallel(done: pd.DataFrame, names: list[str], path: Path) -> Path:
    plt = pyplot()
    from matplotlib import cm
    from matplotlib.colors import Normalize

    columns = [*names, "val_mae"]
    axes = [_axis(done[c]) for c in columns]
    fig, ax = plt.subplots(figsize=(11, 5))
    norm = Normalize(float(done["val_mae"].min()), float(done["val_mae"].max()))
    colours = cm.viridis(norm(done["val_mae"].to_numpy(float)))
    heights = np.stack([h for h, _ in axes], axis=1)  # (trials, axes)
    xs = np.arange(len(columns))
    for row, colour in zip(heights, colours, strict=True):
        ax.plot(xs, row, color=colour, linewidth=2, alpha=0.8)
    for x, (_, ticks) in zip(xs, axes, strict=True):
        ax.axvline(x, color=GREY, linewidth=1)
        for h, text in ticks:
            ax.text(x + 0.03, h, text, fontsize=8, va="center")
    ax.set_xticks(xs, [*names, "val MAE (°C)"], rotation=15)
    ax.set_yticks([])
    ax.set_ylim(-0.08, 1.08)
    ax.set_xlim(-0.2, len(columns) - 0.5)
    fig.colorbar(cm.ScalarMappable(norm=norm, cmap="viridis"), ax=ax, label="val MAE (°C)")
    return save(fig, path)


def search_plots(data: ReportData, folder: Path) -> SearchPlots:
    """The report's search section: three figures of what the trials tried (every driver)."""
    tried = T.proposals(data.frame)
    drivers = sorted(set(tried["driver"].dropna()))
    done = tried[tried["val_mae"].notna()]
    plots = SearchPlots(
        f"the MLflow trials of every driver ({', '.join(drivers) or 'none'}): {len(done)} "
        f"candidates of {len(tried)} trials that ended"
    )
    if done.empty:
        plots.notes.append("no completed trial: no search plots")
        return plots
    order = pd.Series(np.arange(1, len(tried) + 1), index=tried.index)
    found = importances(done)
    names = (
        list(found)[:PARALLEL_PARAMS]
        or [c for c in tried.columns if c not in HEAD][:PARALLEL_PARAMS]
    )
    for name, draw, caption in (
        ("optimisation_history.png", lambda p: _history(done, order, p),
         "Optimisation history: the validation MAE of each candidate trial (completed, or "
         "stopped by the time budget) in the order the trials started, and the best so far."),
        ("param_importances.png", lambda p: _importances(found, p) if found else None,
         "Hyperparameter importances: the share of the candidates' validation-MAE variance "
         "each hyperparameter explains on its own (between-group over total variance; numbers "
         f"in quartile bins). Marginal, not joint, and noisy over few trials ({len(done)})."),
        ("parallel_coordinates.png", lambda p: _parallel(done, names, p) if names else None,
         "Parallel coordinates of the most important hyperparameters: each line a candidate "
         "trial, coloured by validation MAE."),
    ):  # fmt: skip
        what = name.removesuffix(".png").replace("_", " ")
        try:
            with no_warnings():
                path = draw(folder / name)
        except Exception as exc:  # a figure that cannot be drawn must not lose the page
            plots.notes.append(f"{what}: not drawn ({type(exc).__name__}: {exc})")
            pyplot().close("all")
            continue
        if path is None:
            plots.notes.append(f"{what}: not drawn (fewer than {MIN_TRIALS} candidate trials, "
                               "or no hyperparameter varies)")  # fmt: skip
        else:
            plots.figures.append((path, name.removesuffix(".png"), caption))
    return plots
