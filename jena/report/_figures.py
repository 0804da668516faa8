"""The report's figures (matplotlib, Agg backend): one function per PNG."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

WEEK = pd.Timedelta(days=7)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
GREY = "#7f7f7f"


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    pyplot().close(fig)
    return path


@contextlib.contextmanager
def no_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def fig_leaderboard(board: pd.DataFrame, baseline: float | None, path: Path) -> Path:
    plt = pyplot()
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
    return save(fig, path)


def fig_curves(
    curves: list[tuple[str, list[tuple[int, float]], list[tuple[int, float]]]],
    baseline: float | None,
    path: Path,
) -> Path:
    plt = pyplot()
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
    return save(fig, path)


def fig_week(pred: pd.DataFrame, path: Path) -> Path:
    plt = pyplot()
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
    return save(fig, path)


BAND_DAYS = pd.Timedelta(days=21)  # of each season in the band figure
SEASONS = {"winter": (12, 1, 2), "spring": (3, 4, 5), "summer": (6, 7, 8), "autumn": (9, 10, 11)}


def fig_bands(pred: pd.DataFrame, path: Path) -> Path:
    """The champion's test forecasts with their calibrated band against the truth: up to three
    weeks from the first test target of each season (a gap in the test rows stays a gap)."""
    plt = pyplot()
    shown = [(name, pred[pred["time"].dt.month.isin(months)])
             for name, months in SEASONS.items()]  # fmt: skip
    shown = [(name, part) for name, part in shown if not part.empty]
    level = float(pred["level"].iloc[0]) if "level" in pred.columns else None
    fig, axes = plt.subplots(len(shown), 1, figsize=(10, 2.6 * len(shown)), squeeze=False)
    for ax, (name, part) in zip(axes[:, 0], shown, strict=True):
        start = part["time"].iloc[0]
        part = part[part["time"] < start + BAND_DAYS].set_index("time")
        grid = pd.date_range(part.index[0], part.index[-1], freq="10min")
        part = part[~part.index.duplicated()].reindex(grid)  # NaN across gaps: no bridging line
        band = f"{level:.0%} interval" if level else "interval"
        ax.fill_between(part.index, part["low"], part["high"], color=COLOURS[0], alpha=0.25,
                        linewidth=0, label=band)  # fmt: skip
        ax.plot(part.index, part["forecast"], color=COLOURS[0], linewidth=1, label="forecast")
        ax.plot(part.index, part["actual"], color="black", linewidth=1, label="actual")
        outside = (part["actual"] < part["low"]) | (part["actual"] > part["high"])
        ax.plot(part.index[outside], part["actual"][outside], ".", color=COLOURS[3],
                markersize=2, label="outside the interval")  # fmt: skip
        covered = 1 - outside[part["actual"].notna()].mean()
        ax.set_title(f"{name}: {start:%Y-%m-%d} + {BAND_DAYS.days} days, {covered:.0%} inside",
                     fontsize=9)  # fmt: skip
        ax.set_ylabel("°C")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, ncol=4, loc="upper left")
    fig.tight_layout()
    return save(fig, path)


def fig_errors(pred: pd.DataFrame, path: Path) -> Path:
    plt = pyplot()
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
    return save(fig, path)


def fig_compute(
    spent: list[float],
    best: list[float],
    references: list[tuple[str, float]],
    baseline: float | None,
    path: Path,
    refit: tuple[list[float], list[float]] = ([], []),
) -> Path:
    """Best validation MAE so far against the training compute spent (cumulative seconds in
    model.fit), with reference lines (the book's models, persistence); the refit continues."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.8))
    ax.step(spent, best, where="post", color=COLOURS[0], linewidth=2, label="sweep: best so far")
    if refit[1]:
        ax.step(*refit, where="post", color=COLOURS[3], linewidth=2,
                label="refit (full fidelity): best so far")  # fmt: skip
    # from the best reached to 1.6 × persistence: the first, untrained trials can be far worse
    low = min([*best, *refit[1]])
    high = max(best) if baseline is None else min(max(best), 1.6 * baseline)
    high = max(high, baseline or high, low + 0.1)
    ax.set_ylim(low - 0.05 * (high - low), high + 0.05 * (high - low))
    for i, (label, value) in enumerate(references):
        ax.axhline(value, color=COLOURS[(i + 1) % len(COLOURS)], linestyle="--", linewidth=1,
                   label=f"{label} {value:.3f}")  # fmt: skip
    if baseline is not None:
        ax.axhline(baseline, color=GREY, linestyle=":", label=f"persistence {baseline:.3f}")
    ax.set_xlabel("training compute spent (cumulative seconds in model.fit)")
    ax.set_ylabel("best validation MAE (°C)")
    ax.set_title("best validation MAE against compute")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save(fig, path)
