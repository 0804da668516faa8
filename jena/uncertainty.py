"""How uncertain a figure is: 95 % intervals from a block bootstrap over whole days of windows,
and the Diebold–Mariano test of one forecaster against another.

Consecutive windows (one per 10-minute row) share most of their inputs and their targets are
minutes apart, so their errors are strongly correlated, and so are the errors of consecutive
days (weather regimes last days). A plain bootstrap of windows treats 10,000 windows as 10,000
independent draws and gives intervals several times too narrow. Here:

* **Intervals** (:func:`compare`): the windows are grouped into days (of their target row);
  each day contributes its window count and the sums of both forecasters' absolute errors. Days
  are resampled in blocks of consecutive days with ``arch``'s circular block bootstrap, the block
  length from Politis & White's rule (``arch.bootstrap.optimal_block_length``, Patton, Politis &
  White's correction) on the daily mean errors and their difference, rounded up, at least
  :data:`MIN_BLOCK_DAYS` days (weather regimes) and short enough for :data:`MIN_BLOCKS` blocks
  (a resample's standard error is estimated from its blocks). Every
  statistic is recomputed from the resampled sums (MAE = errors / windows, skill = 1 − model /
  reference, difference = model − reference, in °C). The interval is the studentized
  (bootstrap-t) one of ``arch``: each resample's statistic is standardised by its own standard
  error, from its linearised day contributions summed block by block (Götze & Künsch's
  block-consistent variance), over :data:`REPS` resamples, seeded (the same data give the same
  interval). On 60 days of errors as correlated as a forecast's, the plain percentile interval
  covered the true MAE in 88 % of 200 simulated records, this one in 94 % (and a true skill of
  0 in 92 %; tests/test_uncertainty.py); a bootstrap of single windows covers in well under
  half. With fewer days, read an interval whose end is near zero as inconclusive.
* **Diebold–Mariano** (:func:`diebold_mariano`): the loss differential is ``d_t = |e_t| −
  |r_t|`` per window, in window order. Its long-run variance is Newey–West's (Bartlett
  kernel, ``arch.covariance.kernel.Bartlett``) with lag ``h − 1`` = 143 windows for the 24-hour
  horizon ``h`` = 144 ten-minute rows — the serial correlation an ``h``-step forecast's errors
  have even when the forecast is optimal. The statistic ``mean(d) / sqrt(lrv / T)`` gets Harvey,
  Leybourne & Newbold's (1997) small-sample correction ``sqrt((T + 1 − 2h + h(h − 1)/T) / T)``
  and a two-sided p-value from Student's t with ``T − 1`` degrees of freedom. Negative: the
  first forecaster has the smaller errors.

* **A share** (:func:`proportion`: how often a calibrated interval held the truth,
  :mod:`jena.coverage`): the same day-block studentized interval on each day's (windows, hits).

The DM test looks at correlation within a day; the day-block bootstrap also at correlation
between days: when they disagree, trust the interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .schema import ROWS_PER_DAY

HORIZON = ROWS_PER_DAY  # 24 h of 10-minute rows
CONFIDENCE = 0.95
REPS = 2000
SEED = 0
MIN_BLOCK_DAYS = 3
MIN_BLOCKS = 10  # blocks in a resample at least: its standard error needs them
# run metrics of the linear reference (jena.linear): a sweep's parent run, a champion's run


@dataclass(frozen=True)
class Interval:
    """An estimate and its 95 % interval."""

    estimate: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def text(self, spec: str = ".3f") -> str:
        """``2.556 [2.480, 2.631]``; ``spec`` ``+.1%`` for a skill."""
        return f"{self.estimate:{spec}} [{self.low:{spec}}, {self.high:{spec}}]"

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class DieboldMariano:
    """The DM test of a forecaster (``a``) against a reference (``b``) on the same windows."""

    statistic: float  # HLN-corrected; negative: ``a`` has the smaller errors
    p_value: float  # two-sided, Student's t with windows − 1 degrees of freedom
    lag: int  # Newey–West lag (windows)
    windows: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True)
class Comparison:
    """A forecaster against a reference on the same windows, with 95 % intervals."""

    windows: int
    days: int
    block_days: int  # the bootstrap's block length
    mae: Interval  # the forecaster's MAE (°C)
    reference_mae: Interval
    skill: Interval  # 1 − MAE / reference MAE
    difference: Interval  # MAE − reference MAE (°C)
    dm: DieboldMariano

    @property
    def beats_reference(self) -> bool:
        """Better than the reference with an interval that excludes zero."""
        return self.skill.low > 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "beats_reference": self.beats_reference}


def day_of(rows: np.ndarray) -> np.ndarray:
    """The day (of the record) of each row: the bootstrap's unit.  # (windows,) int"""
    return np.asarray(rows, dtype=np.int64) // ROWS_PER_DAY


def _statistics(daily: np.ndarray) -> np.ndarray:
    """MAE, reference MAE, skill, difference from daily (windows, |e| sum, |r| sum)."""
    n, e, r = daily.sum(axis=0)
    return np.array([e / n, r / n, 1 - e / r, (e - r) / n])


def _standard_errors(block: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The standard errors of :func:`_statistics` on a resample: each day's linearised
    contribution, summed over the resample's blocks (its consecutive runs of ``block`` days)."""

    def std_err(stat: np.ndarray, daily: np.ndarray) -> np.ndarray:
        n, e, r = daily.T
        total_n, total_r = n.sum(), r.sum()
        mae, ref, _, diff = stat
        ratio = mae / ref  # = 1 − skill
        u = np.column_stack([(e - mae * n) / total_n, (r - ref * n) / total_n,
                             -(e - ratio * r) / total_r, (e - r - diff * n) / total_n])  # fmt: skip
        sums = np.add.reduceat(u, np.arange(0, len(u), block), axis=0)
        return np.maximum(np.sqrt((sums**2).sum(axis=0)), 1e-12)

    return std_err


def block_days(daily: np.ndarray) -> int:
    """The bootstrap's block length in days (see the module docstring)."""
    from arch.bootstrap import optimal_block_length

    days = len(daily)
    if days < 3 * MIN_BLOCK_DAYS:
        return max(1, days // 3)
    n = daily[:, 0]
    series = np.column_stack([daily[:, 1] / n, (daily[:, 1] - daily[:, 2]) / n])
    if np.ptp(series, axis=0).min() == 0:  # a constant series has no correlation to measure
        return MIN_BLOCK_DAYS
    found = float(np.nanmax(optimal_block_length(series)["circular"].to_numpy()))
    found = found if math.isfinite(found) else MIN_BLOCK_DAYS
    longest = max(days // MIN_BLOCKS, MIN_BLOCK_DAYS)
    return int(min(max(math.ceil(found), MIN_BLOCK_DAYS), longest))


def compare(
    errors: np.ndarray,
    reference: np.ndarray,
    days: np.ndarray,
    *,
    horizon: int = HORIZON,
    reps: int = REPS,
    seed: int = SEED,
    size: float = CONFIDENCE,
) -> Comparison:
    """Errors of a forecaster and of a reference on the same windows (any sign: absolute
    values are taken), with each window's day (:func:`day_of` of its target row), in window
    order: MAE, skill and difference with intervals, and the DM test."""
    from arch.bootstrap import CircularBlockBootstrap

    e, r = np.abs(np.asarray(errors, float)), np.abs(np.asarray(reference, float))
    if not (len(e) == len(r) == len(days)) or not len(e):
        raise ValueError(f"{len(e)} errors, {len(r)} reference errors, {len(days)} days")
    _, day = np.unique(np.asarray(days), return_inverse=True)
    daily = np.column_stack([np.bincount(day), np.bincount(day, e), np.bincount(day, r)])
    block = block_days(daily)
    point = _statistics(daily)
    bootstrap = CircularBlockBootstrap(block, daily, seed=seed)
    low, high = bootstrap.conf_int(_statistics, reps=reps, method="studentized", size=size,
                                   std_err_func=_standard_errors(block))  # fmt: skip
    mae, ref, skill, diff = (Interval(float(p), float(lo), float(hi))
                             for p, lo, hi in zip(point, low, high, strict=True))  # fmt: skip
    return Comparison(
        windows=len(e),
        days=len(daily),
        block_days=block,
        mae=mae,
        reference_mae=ref,
        skill=skill,
        difference=diff,
        dm=diebold_mariano(e, r, horizon),
    )


def diebold_mariano(
    errors: np.ndarray, reference: np.ndarray, horizon: int = HORIZON
) -> DieboldMariano:
    """The Diebold–Mariano test on absolute errors, Newey–West variance with lag ``horizon − 1``
    and the HLN correction (see the module docstring). ``statistic`` is NaN when the series is
    too short for the correction (``T <= 2 horizon`` about)."""
    from arch.covariance.kernel import Bartlett
    from scipy import stats

    d = np.abs(np.asarray(errors, float)) - np.abs(np.asarray(reference, float))
    t, h = len(d), int(horizon)
    lag = max(min(h - 1, t - 1), 0)
    correction = (t + 1 - 2 * h + h * (h - 1) / t) / t
    if t < 2 or correction <= 0:
        return DieboldMariano(math.nan, math.nan, lag, t)
    if not np.any(d - d[0]):  # a constant differential: no variance to speak of
        return DieboldMariano(0.0 if d[0] == 0 else math.copysign(math.inf, d[0]),
                              1.0 if d[0] == 0 else 0.0, lag, t)  # fmt: skip
    lrv = float(np.asarray(Bartlett(d, bandwidth=lag).cov.long_run)[0, 0])
    statistic = float(np.mean(d) / math.sqrt(lrv / t) * math.sqrt(correction))
    return DieboldMariano(statistic, float(2 * stats.t.sf(abs(statistic), t - 1)), lag, t)


def proportion(
    hits: np.ndarray,
    days: np.ndarray,
    *,
    reps: int = REPS,
    seed: int = SEED,
    size: float = CONFIDENCE,
) -> Interval:
    """The share of windows where ``hits`` holds (an interval's coverage), with each window's
    day (:func:`day_of` of its target row), in window order: the estimate and its studentized
    day-block interval, as :func:`compare`'s (block length by the same rule, on the daily
    shares), clipped to [0, 1]."""
    from arch.bootstrap import CircularBlockBootstrap

    h = np.asarray(hits, dtype=np.float64)
    if len(h) != len(days) or not len(h):
        raise ValueError(f"{len(h)} hits for {len(days)} days")
    _, day = np.unique(np.asarray(days), return_inverse=True)
    daily = np.column_stack([np.bincount(day), np.bincount(day, h)])  # (days, 2): windows, hits
    point = float(daily[:, 1].sum() / daily[:, 0].sum())
    shares = daily[:, 1] / daily[:, 0]
    if len(daily) < 2 or np.ptp(shares) == 0:  # no spread between days: nothing to resample
        return Interval(point, point, point)
    block = block_days(np.column_stack([daily, np.zeros(len(daily))]))

    def share(d: np.ndarray) -> np.ndarray:
        return np.array([d[:, 1].sum() / d[:, 0].sum()])

    def std_err(stat: np.ndarray, d: np.ndarray) -> np.ndarray:
        u = (d[:, 1] - stat[0] * d[:, 0]) / d[:, 0].sum()
        sums = np.add.reduceat(u, np.arange(0, len(u), block))
        return np.array([max(float(np.sqrt((sums**2).sum())), 1e-12)])

    bootstrap = CircularBlockBootstrap(block, daily, seed=seed)
    low, high = bootstrap.conf_int(share, reps=reps, method="studentized", size=size,
                                   std_err_func=std_err)  # fmt: skip
    return Interval(point, float(np.clip(low[0], 0, 1)), float(np.clip(high[0], 0, 1)))
