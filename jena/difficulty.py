"""How hard a record is to forecast 24 h ahead: the statistics of issue 29, for any record.

Every statistic is of the air temperature ``T (degC)`` on the record's 10-minute grid (rows the
repair marked untrusted count as missing: a pair or a day touching one is left out). "The 24-h
change" is ``d[i] = T[i + 144] − T[i]`` for every row ``i`` (= the error of persistence 24 h ahead
at every row). Autocorrelations are Pearson's on the overlapping parts (``x[:-k]`` against
``x[k:]``, pairs with a missing value left out). Daily statistics resample ``T`` by calendar day
(every day holding at least one row, a partial first or last day too). :data:`REAL_2020` holds
the values of a real year of the Jena roof station (2020) measured with the same definitions.

:func:`temperature_statistics` gives the statistics of ``T`` alone; :func:`difficulty` adds the
linear reference's skill over persistence (:func:`jena.baseline.persistence` with
``ridge=True``: the ridge of :mod:`jena.linear`) on the ``blocked`` and ``book2`` splits, each with
its 95 % interval. ``jena data info --stats`` prints them beside :data:`REAL_2020`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from .data import Dataset
from .errors import ConfigError, DataError
from .schema import ROWS_PER_DAY, STEP, TARGET
from .uncertainty import Interval

FloatArray = npt.NDArray[np.float64]

DAY = ROWS_PER_DAY  # rows in 24 h
RUNNING_DAYS = 31  # the centred running mean of the daily-mean anomaly
RIDGE_PRESETS = ("blocked", "book2")


@dataclass(frozen=True)
class TemperatureStatistics:
    """The statistics of ``T`` of one record (see the module docstring for the common terms)."""

    change_mae: float
    """Mean of ``|d|``, the 24-h change (= persistence's MAE over the whole record), °C."""
    change_std: float
    """Standard deviation (population, ddof 0) of the 24-h change, °C."""
    change_kurtosis: float
    """Excess kurtosis of the 24-h change: ``mean((d − mean d)^4) / var(d)^2 − 3`` (population
    moments; 0 for a normal law; fronts give heavy tails)."""
    change_acf24: float
    """Autocorrelation of the 24-h change at lag 24 h: Pearson's r of ``d[i]`` and ``d[i+144]``."""
    t_acf24: float
    """Autocorrelation of ``T`` at lag 24 h: Pearson's r of ``T[i]`` and ``T[i+144]``."""
    daily_change_std: float
    """Standard deviation (ddof 0) of the day-to-day change of the daily mean ``T``, °C."""
    daily_change_acf1: float
    """Lag-1 autocorrelation (one day) of the day-to-day change of the daily mean ``T``."""
    daily_anomaly_acf1: float
    """Lag-1 autocorrelation of the daily mean ``T``'s anomaly from its centred 31-day running
    mean (the running mean over the days present in the window, at least one)."""
    diurnal_range_mean: float
    """Mean over days of the diurnal range, the day's ``max T − min T``, °C."""
    diurnal_range_cv: float
    """Coefficient of variation of the diurnal range: its std (ddof 0) over its mean."""

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class RidgeSkill:
    """The ridge's skill over persistence (1 − MAE / persistence MAE) on one split preset's
    validation and test windows, with 95 % day-block intervals."""

    preset: str
    val: Interval
    test: Interval

    def to_dict(self) -> dict[str, Any]:
        return {"preset": self.preset, "val": self.val.to_dict(), "test": self.test.to_dict()}


@dataclass(frozen=True)
class Difficulty:
    """The statistics of a record: ``T``'s and the ridge's skill per split preset (``None``
    where the record is too short for the preset; ``ridge_notes`` says why)."""

    source: str
    rows: int
    temperature: TemperatureStatistics
    ridge: dict[str, RidgeSkill | None]
    ridge_notes: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "rows": self.rows,
            **self.temperature.to_dict(),
            "ridge": {k: (v.to_dict() if v else None) for k, v in self.ridge.items()},
            "ridge_notes": dict(self.ridge_notes),
            "real_2020": dict(REAL_2020),
        }

    def rows_table(self) -> list[tuple[str, str, str]]:
        """(statistic, this record, real 2020) as text, in the issue's order."""
        t, r = self.temperature, REAL_2020
        out = [(LABELS[f], f"{getattr(t, f):{FORMATS[f]}}", f"{r[f]:{FORMATS[f]}}")
               for f in STATISTICS]  # fmt: skip
        for preset in RIDGE_PRESETS:
            skill = self.ridge.get(preset)
            mine = (f"{skill.val.text('+.1%')} / {skill.test.text('+.1%')}" if skill
                    else f"— ({self.ridge_notes.get(preset, 'not measured')})")  # fmt: skip
            real = f"{r[f'ridge_{preset}_val']:+.1%} / {r[f'ridge_{preset}_test']:+.1%}"
            out.append((f"ridge skill vs persistence, {preset} split, val / test", mine, real))
        return out


STATISTICS = tuple(f.name for f in fields(TemperatureStatistics))
LABELS = {
    "change_mae": "mean absolute 24-h change (= persistence MAE), °C",
    "change_std": "std of the 24-h change, °C",
    "change_kurtosis": "excess kurtosis of the 24-h change",
    "change_acf24": "autocorrelation of the 24-h change at lag 24 h",
    "t_acf24": "autocorrelation of T at lag 24 h",
    "daily_change_std": "daily mean T: std of its day-to-day change, °C",
    "daily_change_acf1": "daily mean T: lag-1 autocorrelation of its day-to-day change",
    "daily_anomaly_acf1": "daily mean T: lag-1 autocorrelation of its 31-day anomaly",
    "diurnal_range_mean": "diurnal range (daily max − min): mean, °C",
    "diurnal_range_cv": "diurnal range: coefficient of variation",
}
FORMATS = {f: ("+.3f" if "acf" in f else ".3f") for f in STATISTICS}

# The Jena roof station in 2020 (the same sensors and units), measured with these definitions
# (issue 29; the record itself is kept out of the repository).
REAL_2020: dict[str, float] = {
    "change_mae": 2.658,
    "change_std": 3.498,
    "change_kurtosis": 1.23,
    "change_acf24": -0.157,
    "t_acf24": 0.890,
    "daily_change_std": 2.43,
    "daily_change_acf1": 0.084,
    "daily_anomaly_acf1": 0.671,
    "diurnal_range_mean": 9.15,
    "diurnal_range_cv": 0.48,
    "ridge_blocked_val": 0.048,
    "ridge_blocked_test": -0.003,
    "ridge_book2_val": -0.014,
    "ridge_book2_test": -0.058,
}


def autocorrelation(x: npt.ArrayLike, lag: int) -> float:
    """Pearson's r of ``x[:-lag]`` and ``x[lag:]``, pairs holding a NaN left out (NaN if fewer
    than 3 pairs are left)."""
    v = np.asarray(x, dtype=np.float64)
    if lag < 1 or lag >= len(v):
        return float("nan")
    a, b = v[:-lag], v[lag:]
    ok = np.isfinite(a) & np.isfinite(b)
    if np.count_nonzero(ok) < 3:
        return float("nan")
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    denominator = float(np.sqrt(np.sum(a * a) * np.sum(b * b)))
    return float(np.sum(a * b) / denominator) if denominator > 0 else float("nan")


def _moments(d: FloatArray) -> tuple[float, float, float]:
    """Mean |d|, std (ddof 0) and excess kurtosis of the finite values of ``d``."""
    d = d[np.isfinite(d)]
    if len(d) < 2:
        return float("nan"), float("nan"), float("nan")
    c = d - d.mean()
    var = float(np.mean(c * c))
    kurtosis = float(np.mean(c**4) / var**2 - 3.0) if var > 0 else float("nan")
    return float(np.mean(np.abs(d))), float(np.sqrt(var)), kurtosis


def temperature_statistics(
    temperature: pd.Series, valid: npt.ArrayLike | None = None
) -> TemperatureStatistics:
    """The statistics of ``temperature`` (a Series on a regular 10-minute DatetimeIndex; rows
    where ``valid`` is False count as missing). Raises ValueError for another index or for a
    record shorter than three days."""
    index = pd.DatetimeIndex(temperature.index)
    if len(index) < 3 * DAY:
        raise ValueError(f"{len(index)} rows: the statistics need at least 3 days ({3 * DAY})")
    steps = np.diff(index.asi8)
    if not (steps == steps[0]).all() or index[1] - index[0] != STEP:
        raise ValueError("the statistics need a regular 10-minute grid (a repaired record)")
    t = temperature.to_numpy(dtype=np.float64, copy=True)
    if valid is not None:
        t[~np.asarray(valid, dtype=bool)] = np.nan
    d = t[DAY:] - t[:-DAY]
    change_mae, change_std, kurtosis = _moments(d)

    series = pd.Series(t, index=index)
    days = series.resample("D")
    mean = days.mean()  # NaN for a day without a row
    diurnal = (days.max() - days.min()).to_numpy(dtype=np.float64)
    daily = mean.to_numpy(dtype=np.float64)
    daily_change = np.diff(daily)
    running = mean.rolling(RUNNING_DAYS, center=True, min_periods=1).mean()
    anomaly = (mean - running).to_numpy(dtype=np.float64)
    ranges = diurnal[np.isfinite(diurnal)]
    finite_change = daily_change[np.isfinite(daily_change)]
    return TemperatureStatistics(
        change_mae=change_mae,
        change_std=change_std,
        change_kurtosis=kurtosis,
        change_acf24=autocorrelation(d, DAY),
        t_acf24=autocorrelation(t, DAY),
        daily_change_std=float(np.std(finite_change)) if len(finite_change) else float("nan"),
        daily_change_acf1=autocorrelation(daily_change, 1),
        daily_anomaly_acf1=autocorrelation(anomaly, 1),
        diurnal_range_mean=float(np.mean(ranges)) if len(ranges) else float("nan"),
        diurnal_range_cv=float(np.std(ranges) / np.mean(ranges))
        if len(ranges) and np.mean(ranges) > 0
        else float("nan"),
    )


def ridge_skill(ds: Dataset, preset: str) -> RidgeSkill:
    """The ridge's skill over persistence on ``preset``'s validation and test windows (raises
    :class:`jena.errors.ConfigError` / :class:`jena.errors.DataError` for a record too short)."""
    from .baseline import persistence

    ridge = persistence(ds, preset, ridge=True).ridge
    assert ridge is not None
    return RidgeSkill(preset, *(ridge[split].comparison.skill for split in ("val", "test")))


def difficulty(ds: Dataset, *, ridge: bool = True) -> Difficulty:
    """The statistics of a loaded record: ``T``'s, and (``ridge``) the ridge's skill on the
    ``blocked`` and ``book2`` splits, ``None`` with a note where the record is too short."""
    skills: dict[str, RidgeSkill | None] = {}
    notes: dict[str, str] = {}
    for preset in RIDGE_PRESETS if ridge else ():
        try:
            skills[preset] = ridge_skill(ds, preset)
        except (ConfigError, DataError, ValueError) as exc:
            skills[preset] = None
            notes[preset] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return Difficulty(
        source=ds.source,
        rows=len(ds),
        temperature=temperature_statistics(ds.frame[TARGET], ds.valid),
        ridge=skills,
        ridge_notes=notes,
    )
