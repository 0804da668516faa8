"""Prediction intervals around a forecaster's forecasts: split conformal calibration on its
residuals over the full validation split, conditional on when the forecast is for.

**Calibration** (:func:`calibrate`): the forecaster has already forecast every validation window
(the windows it was selected on, ``Prepared.starts("val", ...)`` for its window); its residuals
``r = actual − forecast`` (°C) are sorted within each group (below). A central interval at level
``1 − a`` is ``[forecast + r_(j), forecast + r_(k)]`` with ``k = ceil((n + 1)(1 − a/2))`` and
``j = floor((n + 1) a/2)``, the ``n`` residuals of the forecast's group in ascending order:
split conformal's finite-sample quantile ``ceil((n + 1)(1 − a)) / n`` applied to each tail at
``a/2``, so each tail misses at most ``a/2`` and the interval covers at least ``1 − a`` of
exchangeable new windows. Equal tails on signed residuals, not ``± |r|``: where a forecaster is
biased (warm afternoons under-forecast, say) the interval follows the bias instead of widening
on both sides. An interval always holds its own forecast (``r_(j)`` at most 0, ``r_(k)`` at
least 0): a forecaster so biased that a tail's quantile has the other sign gets an interval
that starts at its forecast — wider, so its coverage only grows, and never a range that
excludes the number it is quoted with.

**Groups** (Mondrian conformal prediction): the residuals of a 24-hour forecast are larger in
some seasons and hours than in others, so one global width would be too wide in calm weeks and
too narrow in changeable ones. A window's group is fixed by its *target time*: its season
(meteorological: winter = December–February, spring, summer, autumn) and its hour of the day.
The rule, on the validation windows:

1. A season with at least :data:`MIN_SEASON_DAYS` (21) distinct target days of validation
   windows has groups of its own; a season with fewer (and a season validation never saw) uses
   the *pooled* groups, calibrated on every validation window of every season.
2. Within a season (and in the pooled set) the hours of the day are cut into bands of ``w``
   hours starting at 00:00, ``w`` the narrowest of 1, 2, 3, 4, 6, 8, 12, 24 for which every band
   holds at least :data:`MIN_DAY_HOURS` (240) distinct (day, hour) pairs — the windows of one
   hour of one day are minutes apart and nearly the same forecast, so they count once. Two
   years of validation (``book2`` on the real record, ~180 days a season) give 2-hour bands;
   ~23 days a season (``blocked`` on one year) 12-hour bands. A set that fails even at 24
   hours keeps one band (then its tails rest on few days: the test check says how it went).

Exchangeability does not hold for consecutive windows of a weather record, so the guarantee is
an aim, not a proof: ``jena best`` checks the coverage once on the test split, with a day-block
interval (:mod:`jena.coverage`).

**Why not MAPIE**: MAPIE 1.x's split conformal regressor (``prefit``) takes a scikit-learn
regressor and calls its ``predict`` on a 2-D ``X`` itself; the champion is the average of
several Keras models fed 3-D windows through a ``PyDataset``, which it could only take through
a shim whose ``predict`` returns forecasts made beforehand, one shim and one regressor per
group for the Mondrian part, with equal tails on signed residuals still to configure — and it
would bring scikit-learn and MAPIE into the project (and the question of shipping them) for what
is, once the forecasts exist, two order statistics per group.

This module imports numpy and pandas only: the registered model ships it beside
:mod:`jena.forecasting`, which applies a stored calibration (:meth:`Calibration.from_dict`) to
its forecast without ``jena`` installed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_LEVELS = (0.9,)
SEASON_NAMES = ("winter", "spring", "summer", "autumn")  # December–February, ...
BAND_HOURS = (1, 2, 3, 4, 6, 8, 12, 24)
MIN_SEASON_DAYS = 21  # distinct target days for a season to have groups of its own
MIN_DAY_HOURS = 240  # distinct (day, hour) pairs in every band of a set of groups
MAX_LEVEL = 0.99
FORMAT = 1  # of :meth:`Calibration.to_dict`
METHOD = (
    "split conformal on validation residuals, equal tails with the finite-sample quantile "
    "ceil((n+1)(1-a/2))/n, Mondrian groups by season and hour of the target"
)


class CalibrationError(ValueError):
    """Levels or a stored calibration that cannot be used; the message is one line."""


def parse_levels(value: Any, where: str = "--level") -> tuple[float, ...]:
    """Interval levels from a number or a list of numbers, as fractions (``0.9``) or percent
    (``90``); the first is the main one. One-line :class:`CalibrationError` otherwise."""
    items = list(value) if isinstance(value, list | tuple) else [value]
    if not items:
        raise CalibrationError(f"{where}: give at least one level, e.g. 0.9 or 90")
    out: list[float] = []
    for item in items:
        try:
            level = float(item)
        except (TypeError, ValueError):
            raise CalibrationError(
                f"{where}: {item!r} is not a level (0.9 or 90 for 90 %)"
            ) from None
        level = level / 100 if level > 1 else level
        if not 0 < level <= MAX_LEVEL:
            raise CalibrationError(
                f"{where}: {item!r} is outside 0..{MAX_LEVEL:g} (or 0..{MAX_LEVEL:.0%} in percent)"
            )
        if level not in out:
            out.append(round(level, 6))
    return tuple(out)


def percent(level: float) -> str:
    """``90 %``, ``97.5 %``."""
    return f"{level * 100:g} %"


def level_key(level: float) -> str:
    """The suffix of a level's columns and metrics: ``90``, ``97_5``."""
    return f"{level * 100:g}".replace(".", "_")


def season_of(times: pd.DatetimeIndex) -> np.ndarray:
    """The meteorological season of each time: 0 winter (Dec–Feb) … 3 autumn.  # (w,) int"""
    return np.asarray((pd.DatetimeIndex(times).month % 12) // 3, dtype=np.int64)


def _hour_of(times: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(pd.DatetimeIndex(times).hour, dtype=np.int64)


def _day_hours(times: pd.DatetimeIndex) -> np.ndarray:
    """A number per (calendar day, hour) of each time.  # (w,) int"""
    t = pd.DatetimeIndex(times)
    if t.tz is not None:
        t = t.tz_convert(None)
    return np.asarray(t.floor("h").as_unit("s").asi8 // 3600, dtype=np.int64)


def tail_offsets(residuals: np.ndarray, level: float) -> tuple[float, float]:
    """(low, high) offsets of the central ``level`` interval from ``n`` residuals (actual −
    forecast): the ``floor((n+1) a/2)``-th and ``ceil((n+1)(1 − a/2))``-th smallest, 1-based
    (−inf / +inf where the rank falls outside 1..n: too few residuals for the level)."""
    r = np.sort(np.asarray(residuals, dtype=np.float64))
    n, tail = len(r), (1.0 - level) / 2
    k = math.ceil((n + 1) * (1 - tail) - 1e-9)  # the tolerance: (n+1)(1-a/2) exact in decimal
    j = math.floor((n + 1) * tail + 1e-9)
    low = float(r[j - 1]) if 1 <= j <= n else -math.inf
    high = float(r[k - 1]) if 1 <= k <= n else math.inf
    return low, high


@dataclass(frozen=True)
class Group:
    """One Mondrian group: a season (None: pooled over every season) and a band of hours."""

    season: str | None
    hours: tuple[int, int]  # [start, stop) hours of the target's day
    windows: int
    days: int
    low: tuple[float, ...]  # per level: added to the forecast (°C)
    high: tuple[float, ...]

    @property
    def name(self) -> str:
        where = self.season or "all seasons"
        a, b = self.hours
        return where if (a, b) == (0, 24) else f"{where} {a:02d}-{b:02d} h"

    def to_dict(self) -> dict[str, Any]:
        return {
            "season": self.season,
            "hours": list(self.hours),
            "windows": self.windows,
            "days": self.days,
            "low": list(self.low),
            "high": list(self.high),
        }


def _band_width(day_hours: np.ndarray, hours: np.ndarray) -> int:
    """The narrowest band width (hours) whose every band holds :data:`MIN_DAY_HOURS` distinct
    (day, hour) pairs; 24 where none does."""
    for width in BAND_HOURS:
        band = hours // width
        counts = [len(np.unique(day_hours[band == b])) for b in range(24 // width)]
        if min(counts) >= MIN_DAY_HOURS:
            return width
    return 24


@dataclass(frozen=True)
class Calibration:
    """Conformal offsets by group (see the module docstring): ``table[season, hour]`` is the
    group of a target time, ``groups[g].low[i]`` / ``.high[i]`` its offsets at ``levels[i]``."""

    levels: tuple[float, ...]
    groups: tuple[Group, ...]
    table: tuple[tuple[int, ...], ...]  # (4 seasons, 24 hours) → index into groups
    windows: int
    days: int

    @property
    def level(self) -> float:
        """The main level (the first)."""
        return self.levels[0]

    def group_of(self, times: pd.DatetimeIndex) -> np.ndarray:
        """The group of each target time.  # (w,) int"""
        return np.asarray(self.table)[season_of(times), _hour_of(times)]

    def bounds(
        self, times: pd.DatetimeIndex, forecast: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) of every level for forecasts of the target ``times`` (°C).
        # (levels, w) each"""
        g = self.group_of(times)
        lows = np.array([grp.low for grp in self.groups])[g].T  # (levels, w)
        highs = np.array([grp.high for grp in self.groups])[g].T
        f = np.asarray(forecast, dtype=np.float64)[None, :]
        return f + lows, f + highs

    def describe(self) -> str:
        """One line: which groups, from how much validation."""
        own = sorted({g.season for g in self.groups if g.season}, key=SEASON_NAMES.index)
        parts = []
        for season in own:
            bands = [g for g in self.groups if g.season == season]
            parts.append(f"{season} in {len(bands)} band{'s' if len(bands) > 1 else ''}")
        pooled = [g for g in self.groups if g.season is None]
        rest = [s for s in SEASON_NAMES if s not in own]
        if rest:
            parts.append(
                f"{', '.join(rest)} pooled over all seasons in {len(pooled)} band"
                f"{'s' if len(pooled) > 1 else ''}"
            )
        return (
            f"{len({int(i) for row in self.table for i in row})} groups by season and hour "
            f"of the target ({'; '.join(parts)}) from {self.windows:,} validation windows, "
            f"{self.days} days"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; :meth:`from_dict` reads it back (the registered model stores it)."""
        return {
            "format": FORMAT,
            "method": METHOD,
            "levels": list(self.levels),
            "windows": self.windows,
            "days": self.days,
            "groups": [g.to_dict() for g in self.groups],
            "table": [list(row) for row in self.table],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Calibration:
        try:
            levels = tuple(float(x) for x in d["levels"])
            groups = tuple(
                Group(
                    g["season"],
                    (int(g["hours"][0]), int(g["hours"][1])),
                    int(g["windows"]),
                    int(g["days"]),
                    tuple(float(x) for x in g["low"]),
                    tuple(float(x) for x in g["high"]),
                )
                for g in d["groups"]
            )
            table = tuple(tuple(int(i) for i in row) for row in d["table"])
            ok = (
                int(d.get("format", 0)) == FORMAT
                and levels
                and len(table) == 4
                and all(len(row) == 24 and all(0 <= i < len(groups) for i in row) for row in table)
                and all(len(g.low) == len(g.high) == len(levels) for g in groups)
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise CalibrationError(
                f"the stored interval calibration is unreadable: {exc}"
            ) from None
        if not ok:
            raise CalibrationError(
                f"the stored interval calibration is not of format {FORMAT} or inconsistent"
            )
        return cls(levels, groups, table, int(d["windows"]), int(d["days"]))


def calibrate(
    times: pd.DatetimeIndex,
    forecast: np.ndarray,
    actual: np.ndarray,
    levels: Sequence[float] = DEFAULT_LEVELS,
) -> Calibration:
    """The calibration of a forecaster from its validation windows: target ``times``, its
    ``forecast`` and the ``actual`` temperature (°C), aligned (see the module docstring)."""
    times = pd.DatetimeIndex(times)
    residual = np.asarray(actual, dtype=np.float64) - np.asarray(forecast, dtype=np.float64)
    if len(residual) != len(times) or not len(times):
        raise CalibrationError(f"{len(times)} target times for {len(residual)} residuals")
    if not np.isfinite(residual).all():
        raise CalibrationError("the validation residuals are not all finite")
    levels = parse_levels(list(levels), "levels")
    season, hour, day_hour = season_of(times), _hour_of(times), _day_hours(times)
    day = day_hour // 24
    groups: list[Group] = []
    table = np.full((4, 24), -1, dtype=np.int64)

    def add(label: str | None, keep: np.ndarray) -> np.ndarray:
        """Groups for the windows ``keep``; returns (24,) the group of each hour."""
        width = _band_width(day_hour[keep], hour[keep])
        of_hour = np.empty(24, dtype=np.int64)
        for start in range(0, 24, width):
            inside = keep & (hour >= start) & (hour < start + width)
            found = [tail_offsets(residual[inside], lv) for lv in levels]
            offsets = [(min(lo, 0.0), max(hi, 0.0)) for lo, hi in found]  # holds the forecast
            of_hour[start : start + width] = len(groups)
            groups.append(
                Group(
                    label,
                    (start, start + width),
                    int(inside.sum()),
                    len(np.unique(day[inside])),
                    tuple(lo for lo, _ in offsets),
                    tuple(hi for _, hi in offsets),
                )
            )
        return of_hour

    pooled = add(None, np.ones(len(times), dtype=bool))
    for s, name in enumerate(SEASON_NAMES):
        keep = season == s
        if len(np.unique(day[keep])) >= MIN_SEASON_DAYS:
            table[s] = add(name, keep)
        else:
            table[s] = pooled
    thin = [g for g in groups if not np.isfinite([*g.low, *g.high]).all()]
    if thin:
        raise CalibrationError(
            f"{thin[0].windows} validation windows in the group {thin[0].name!r} are too few for "
            f"a {percent(max(levels))} interval (each tail needs (n + 1) a/2 >= 1): use a "
            "lower --level or a longer validation split"
        )
    used = sorted({int(i) for i in table.ravel()})
    renumber = {old: new for new, old in enumerate(used)}  # drop pooled groups nobody uses
    table = np.vectorize(renumber.__getitem__)(table)
    return Calibration(
        levels=levels,
        groups=tuple(groups[i] for i in used),
        table=tuple(tuple(int(i) for i in row) for row in table),
        windows=len(times),
        days=len(np.unique(day)),
    )
