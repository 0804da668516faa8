"""The one check of calibrated intervals on the test split (``jena best``): how often each
forecaster's interval held the truth, how wide it was, season by season.

For each forecaster — the champion, the linear reference (ridge) and persistence, each
calibrated on its own validation residuals (:func:`jena.conformal.calibrate`) — and each level,
on the same test windows (those all of them forecast): the empirical **coverage** with its 95 %
day-block interval (:func:`jena.uncertainty.proportion`: consecutive windows share their
weather, so days are resampled in blocks, not windows), the **mean width** (°C) and the same by
season of the target. A coverage whose interval excludes the nominal level is said plainly
(:attr:`Coverage.off_nominal`). The widths are fixed by the calibration (one pair of offsets per
group), so they carry no test-split interval; how much sharper the champion is than persistence
is the ratio of the mean widths on the same windows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .conformal import SEASON_NAMES, Calibration, percent, season_of
from .uncertainty import Interval, proportion

FORECASTERS = ("champion", "ridge", "persistence")


@dataclass(frozen=True)
class SeasonCoverage:
    season: str
    windows: int
    days: int
    coverage: Interval
    width: float  # mean width (°C)

    def to_dict(self) -> dict[str, Any]:
        return {
            "season": self.season,
            "windows": self.windows,
            "days": self.days,
            "coverage": self.coverage.to_dict(),
            "width": self.width,
        }


@dataclass(frozen=True)
class Coverage:
    """One forecaster's interval at one level on the test windows."""

    forecaster: str  # champion | ridge | persistence
    level: float
    windows: int
    days: int
    coverage: Interval  # share of windows whose interval held the truth, 95 % day-block interval
    width: float  # mean width (°C)
    by_season: tuple[SeasonCoverage, ...] = ()

    @property
    def off_nominal(self) -> bool:
        """The coverage's interval excludes the nominal level."""
        return not self.coverage.low <= self.level <= self.coverage.high

    def text(self) -> str:
        """``90 % interval: coverage 89.1 % [87.2 %, 90.8 %], mean width 7.31 °C``."""
        return (
            f"{percent(self.level)} interval: coverage {self.coverage.text('.1%')}, mean "
            f"width {self.width:.2f} °C"
        )

    def verdict(self) -> str:
        """One plain line on the coverage against the nominal level."""
        c = self.coverage
        if not self.off_nominal:
            return (
                f"the {self.forecaster}'s {percent(self.level)} interval held on the test split "
                f"(coverage {c.text('.1%')}, which includes {percent(self.level)})"
            )
        way = (
            "too narrow: it UNDER-covers"
            if c.high < self.level
            else "wider than needed: it over-covers"
        )
        return (
            f"the {self.forecaster}'s {percent(self.level)} interval is {way} on the test split: "
            f"coverage {c.text('.1%')} excludes {percent(self.level)}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "forecaster": self.forecaster,
            "level": self.level,
            "windows": self.windows,
            "days": self.days,
            "coverage": self.coverage.to_dict(),
            "width": self.width,
            "off_nominal": self.off_nominal,
            "by_season": [s.to_dict() for s in self.by_season],
        }


@dataclass
class IntervalCheck:
    """Every forecaster's intervals on the same test windows, and how they were calibrated."""

    levels: tuple[float, ...]
    calibration: str  # the champion's (Calibration.describe)
    results: list[Coverage] = field(default_factory=list)

    def get(self, forecaster: str, level: float | None = None) -> Coverage | None:
        level = self.levels[0] if level is None else level
        found = [c for c in self.results if c.forecaster == forecaster and c.level == level]
        return found[0] if found else None

    @property
    def champion(self) -> Coverage:
        found = self.get("champion")
        assert found is not None
        return found

    def sharper_than(self, other: str) -> float | None:
        """The champion's mean width over ``other``'s at the main level (same windows)."""
        theirs = self.get(other)
        return self.champion.width / theirs.width if theirs and theirs.width else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "levels": list(self.levels),
            "calibration": self.calibration,
            "results": [c.to_dict() for c in self.results],
            "width_vs_persistence": self.sharper_than("persistence"),
            "width_vs_ridge": self.sharper_than("ridge"),
        }


def coverage(
    forecaster: str,
    calibration: Calibration,
    times: pd.DatetimeIndex,
    forecast: np.ndarray,
    actual: np.ndarray,
    days: np.ndarray,
    *,
    seasons: bool = True,
) -> list[Coverage]:
    """``forecaster``'s calibrated intervals on held-out windows (target ``times``, forecasts,
    truth, each window's day), one :class:`Coverage` per level of ``calibration``."""
    lows, highs = calibration.bounds(times, forecast)
    truth = np.asarray(actual, dtype=np.float64)
    season = season_of(times)
    out = []
    for i, level in enumerate(calibration.levels):
        hit = (lows[i] <= truth) & (truth <= highs[i])
        width = highs[i] - lows[i]
        parts = []
        for s, name in enumerate(SEASON_NAMES):
            keep = season == s
            if seasons and keep.any():
                parts.append(
                    SeasonCoverage(
                        name,
                        int(keep.sum()),
                        len(np.unique(days[keep])),
                        proportion(hit[keep], days[keep]),
                        float(width[keep].mean()),
                    )
                )
        out.append(
            Coverage(
                forecaster,
                level,
                len(truth),
                len(np.unique(days)),
                proportion(hit, days),
                float(width.mean()),
                tuple(parts),
            )
        )
    return out
