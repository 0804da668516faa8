"""Conformal intervals (jena.conformal) and their check on held-out windows (jena.coverage,
jena.uncertainty.proportion): the finite-sample ranks, coverage on a simulated AR process with a
known error distribution, wider intervals where the errors are larger (Mondrian groups), the
merge rule, the stored form, the levels."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from jena.conformal import (
    MIN_SEASON_DAYS,
    Calibration,
    CalibrationError,
    calibrate,
    parse_levels,
    tail_offsets,
)
from jena.coverage import coverage
from jena.forecasting import Forecaster
from jena.uncertainty import day_of, proportion

YEAR = 52_560  # 10-minute rows in 365 days
H = 144  # 24 h ahead


def test_finite_sample_ranks_by_hand() -> None:
    r = np.arange(1.0, 20.0)[::-1]  # 19 residuals, unsorted
    # a = 0.1: k = ceil(20 * 0.95) = 19, j = floor(20 * 0.05) = 1
    assert tail_offsets(r, 0.9) == (1.0, 19.0)
    # 18 residuals are too few for a 90 % interval with a finite-sample guarantee
    assert tail_offsets(np.arange(1.0, 19.0), 0.9) == (-math.inf, math.inf)
    # n = 39: k = ceil(40 * 0.95) = 38, j = floor(40 * 0.05) = 2
    assert tail_offsets(np.arange(1.0, 40.0), 0.9) == (2.0, 38.0)
    # n = 9, 50 %: k = ceil(10 * 0.75) = 8, j = floor(10 * 0.25) = 2
    assert tail_offsets(np.arange(1.0, 10.0), 0.5) == (2.0, 8.0)


def ar_windows(seed: int, years: int = 2, phi: float = 0.95, sigma: float = 0.3):
    """An AR(1) series on the 10-minute grid and its optimal 24-hour forecast: the error of
    ``phi**H * y[t]`` for ``y[t + H]`` is Gaussian with the known standard deviation
    ``sigma * sqrt((1 - phi**(2H)) / (1 - phi**2))``."""
    rng = np.random.default_rng(seed)
    n = years * YEAR + H
    eps = rng.normal(0.0, sigma, n)
    y = np.empty(n)
    y[0] = eps[0] / math.sqrt(1 - phi**2)
    for t in range(1, n):
        y[t] = phi * y[t - 1] + eps[t]
    times = pd.date_range("2010-01-01", periods=n, freq="10min")
    last = np.arange(n - H)
    sd = sigma * math.sqrt((1 - phi ** (2 * H)) / (1 - phi**2))
    return times[last + H], phi**H * y[last], y[last + H], last + H, sd


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_ar_process_90_percent_interval_covers_88_to_92(seed: int) -> None:
    times, forecast, actual, rows, sd = ar_windows(seed)
    half = YEAR  # calibrate on the first year, hold out the second
    cal = calibrate(times[:half], forecast[:half], actual[:half], [0.9])
    # the calibrated offsets are the known error distribution's 5 % and 95 % quantiles: on
    # average over the groups (each group's own rests on ~90 days of correlated errors)
    z = 1.6448536269514722 * sd
    weights = [g.windows for g in cal.groups]
    assert np.average([g.low[0] for g in cal.groups], weights=weights) == pytest.approx(-z, 0.06)
    assert np.average([g.high[0] for g in cal.groups], weights=weights) == pytest.approx(z, 0.06)
    lows, highs = cal.bounds(times[half:], forecast[half:])
    held = actual[half:]
    covered = float(np.mean((lows[0] <= held) & (held <= highs[0])))
    assert 0.88 <= covered <= 0.92, covered
    # the check on held-out windows reports the same share, with an interval around it
    (checked,) = coverage("champion", cal, times[half:], forecast[half:], held,
                          day_of(rows[half:]))  # fmt: skip
    assert checked.coverage.estimate == pytest.approx(covered)
    assert checked.coverage.low < covered < checked.coverage.high
    assert checked.width == pytest.approx(float(np.mean(highs[0] - lows[0])))


def heteroscedastic(seed: int, days: int = 2 * 365):
    """Forecast errors three times larger for summer afternoon targets (12-18 h) than
    elsewhere: (times, forecast, actual)."""
    rng = np.random.default_rng(seed)
    times = pd.date_range("2011-01-01", periods=days * 144, freq="10min")
    loud = times.month.isin([6, 7, 8]) & (times.hour >= 12) & (times.hour < 18)
    sd = np.where(loud, 3.0, 1.0)
    forecast = 10 + 8 * np.sin(2 * np.pi * np.arange(len(times)) / (365 * 144))
    return times, forecast, forecast + rng.normal(0.0, 1.0, len(times)) * sd, np.asarray(loud)


def test_conditional_calibration_is_wider_where_the_errors_are_larger() -> None:
    times, forecast, actual, loud = heteroscedastic(5)
    half = len(times) // 2
    cal = calibrate(times[:half], forecast[:half], actual[:half], [0.9])
    lows, highs = cal.bounds(times[half:], forecast[half:])
    width = highs[0] - lows[0]
    quiet = ~loud[half:]
    ratio = width[loud[half:]].mean() / width[quiet].mean()
    assert ratio > 2.4, ratio  # the errors' spread is 3x; one global width would give 1
    held = actual[half:]
    hit = (lows[0] <= held) & (held <= highs[0])
    # coverage holds in the loud group too, which a single pooled width would miss badly
    assert 0.86 <= hit[loud[half:]].mean() <= 0.94
    assert 0.88 <= hit[quiet].mean() <= 0.92
    pooled_low, pooled_high = tail_offsets(actual[:half] - forecast[:half], 0.9)
    pooled_hit = (held - forecast[half:] >= pooled_low) & (held - forecast[half:] <= pooled_high)
    assert pooled_hit[loud[half:]].mean() < 0.75


def test_a_season_with_few_days_and_an_unseen_season_use_the_pooled_groups() -> None:
    winter = pd.date_range("2012-01-01", periods=60 * 144, freq="10min")
    spring = pd.date_range("2012-04-01", periods=(MIN_SEASON_DAYS - 1) * 144, freq="10min")
    times = winter.append(spring)
    rng = np.random.default_rng(0)
    cal = calibrate(times, np.zeros(len(times)), rng.normal(size=len(times)), [0.9, 0.5])
    seasons = {g.season for g in cal.groups}
    assert seasons == {"winter", None}
    probe = pd.DatetimeIndex(["2012-01-05 13:00", "2012-04-05 13:00", "2012-07-05 13:00"])
    winter_g, spring_g, summer_g = (cal.groups[i] for i in cal.group_of(probe))
    assert winter_g.season == "winter" and spring_g.season is None and summer_g == spring_g
    assert summer_g.days == 60 + MIN_SEASON_DAYS - 1  # pooled over every validation day
    # 60 winter days: 4-hour bands (60 x 4 = 240 day-hours); pooled 80 days: 3-hour bands
    assert winter_g.hours == (12, 16) and spring_g.hours == (12, 15)
    lows, highs = cal.bounds(probe, np.zeros(3))
    assert np.all(lows[0] < lows[1]) and np.all(highs[1] < highs[0])  # 50 % inside 90 %


def test_the_stored_calibration_reads_back_and_a_damaged_one_is_one_line() -> None:
    times, forecast, actual, _ = heteroscedastic(1, days=200)
    cal = calibrate(times, forecast, actual, [0.9, 0.8])
    again = Calibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert again == cal
    broken = cal.to_dict()
    broken["table"] = broken["table"][:3]
    with pytest.raises(CalibrationError, match="inconsistent"):
        Calibration.from_dict(broken)
    with pytest.raises(CalibrationError, match="unreadable"):
        Calibration.from_dict({"levels": [0.9]})


def test_a_forecaster_with_a_damaged_calibration_is_refused_in_one_line() -> None:
    from jena.forecasting import ModelError

    cfg = {"sampling_rate": 6, "sequence_length": 24, "offset": 282, "mean": [0.0],
           "std": [1.0], "normalised_target": False, "calibration": {"levels": [0.9]}}  # fmt: skip
    with pytest.raises(ModelError, match="stored interval calibration is unreadable"):
        Forecaster([object()], cfg)  # type: ignore[list-item]


def test_levels() -> None:
    assert parse_levels(90) == (0.9,)
    assert parse_levels([0.9, "80", 0.9]) == (0.9, 0.8)
    for bad in (0, 100, 1.0000001 * 100, "ninety", -5):
        with pytest.raises(CalibrationError, match="--level"):
            parse_levels(bad)


def test_day_block_interval_of_a_share_widens_when_whole_days_miss_together() -> None:
    rng = np.random.default_rng(3)
    days = np.repeat(np.arange(300), 144)
    independent = rng.random(len(days)) < 0.9
    by_day = np.repeat(rng.random(300) < 0.9, 144)  # a day is covered or missed as a whole
    a, b = proportion(independent, days), proportion(by_day, days)
    assert a.low < 0.9 < a.high and a.high - a.low < 0.01
    assert b.low < b.estimate < b.high and b.high - b.low > 4 * (a.high - a.low)
    assert proportion(np.ones(len(days), bool), days) == proportion(np.ones(10, bool), days[:10])


def test_too_few_windows_for_the_level_is_one_line() -> None:
    times = pd.date_range("2012-01-01", periods=50, freq="10min")
    with pytest.raises(CalibrationError, match="too few for a 99 % interval"):
        calibrate(times, np.zeros(50), np.arange(50.0), [0.9, 0.99])


def test_an_interval_always_holds_its_forecast() -> None:
    """A forecaster that under-forecasts by 5 °C with errors of ±1 °C: its 50 % and 90 %
    intervals' equal tails both lie above the forecast; the interval starts at the forecast."""
    times = pd.date_range("2012-01-01", periods=90 * 144, freq="10min")
    rng = np.random.default_rng(2)
    actual = 5.0 + rng.normal(0.0, 1.0, len(times))
    cal = calibrate(times, np.zeros(len(times)), actual, [0.9, 0.5])
    lows, highs = cal.bounds(times, np.zeros(len(times)))
    assert np.all(lows == 0.0) and np.all(highs > 5.0)  # starts at the forecast, not above it
    assert np.mean(actual <= highs[0]) > 0.93  # wider on one side: coverage only grows
