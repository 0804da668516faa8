"""A deterministic, Jena-like weather record for offline development and CI.

The model of the weather (all times in hours, one row every 10 minutes):

* **Pressure** is a smooth random process (white noise through two first-order filters of 18 h
  and 36 h, so weather systems last 2–7 days) around 989 mbar, with more variance in winter and a
  small 12-hour atmospheric tide.
* **Wind** follows the weather system: a system moving east makes the pressure tendency a proxy of
  the east-west pressure gradient, so *falling pressure means southerly wind* and rising pressure
  northerly wind; an independent slow process plus a westerly mean gives the east-west component.
  Speed is damped to roof-anemometer levels, gusty by day; ``max. wv`` is a gust factor above it.
* **Temperature** = seasonal climatology (coldest in late January) + a weather anomaly + a daily
  cycle whose amplitude grows in summer and shrinks under cloud. The anomaly is *advected*: it is
  driven by the north-south wind of 6 h before (the air mass arrives after the wind has turned:
  warm with southerly wind ahead of a low, cold behind it), by radiation (clear skies cool in
  winter and warm in summer) and by noise, and relaxes to the climatology in about 3 days. So the
  temperature 24 h ahead is partly predictable beyond "the temperature now" from the pressure
  tendency and the wind (about 4% lower MAE), the anomaly's relaxation and the daily cycle (about
  7%), and the humidity and cloud (non-linearly, through the season).
* **Humidity**: the dew point follows the daily-mean temperature minus a dew-point depression that
  is small under cloud (low pressure, moist air) and larger in summer; at night the air may
  saturate (``Tdew = T``, ``rh = 100``). Vapour pressures (Magnus), ``rh``, ``VPdef``, ``sh``,
  ``H2OC``, ``rho`` and ``Tpot`` follow from ``T``, ``Tdew`` and ``p`` by the formulas in
  ``shared/reference/jena-data.md``.

:func:`generate` gives a clean frame on the 10-minute grid; :func:`inject_defects` adds the real
file's known defects (wind sentinels, duplicated and missing timestamps, rows out of order);
:func:`calibration` measures the statistics the generator is tuned to (the temperature's mean and
std, the book's 2nd-edition persistence baseline, and a ridge regression that beats it).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..schema import (
    COLUMNS,
    DATE_COLUMN,
    JENA_ROWS,
    ROWS_PER_DAY,
    ROWS_PER_HOUR,
    STEP,
    TARGET,
    WIND_SENTINEL,
)
from ._calibration import (
    BOOK2_LOOKBACK,
    BOOK2_SAMPLING_RATE,
    Calibration,
    book2_delay,
    book2_splits,
    calibration,
    persistence_mae,
    ridge_mae,
)
from ._defects import DEFECTS_ATTR, DefectCounts, defect_counts, inject_defects

FloatArray = npt.NDArray[np.float64]

__all__ = [
    "BOOK2_LOOKBACK",
    "BOOK2_SAMPLING_RATE",
    "DEFECTS_ATTR",
    "Calibration",
    "DefectCounts",
    "assemble",
    "book2_delay",
    "book2_splits",
    "calibration",
    "defect_counts",
    "generate",
    "inject_defects",
    "magnus",
    "persistence_mae",
    "ridge_mae",
]

DEFAULT_START = "2009-01-01 00:10:00"
_DT = 1.0 / ROWS_PER_HOUR  # hours per row
_BURN_ROWS = 30 * ROWS_PER_DAY  # spin-up of the random processes, discarded
_N_STREAMS = 12

# --- the weather model's constants (tuned against jena-data.md; see calibration()) ---
_P_MEAN = 989.2  # mbar, the station is at ~155 m
_P_STD = 8.0
_T_MEAN = 9.25
_T_YEAR_AMP = 9.2  # half the July-January difference of the daily means
_T_COLDEST = 0.05  # fraction of the year: about 20 January
_DAY_AMP_MEAN = 3.6  # half the clear-ish day's range, averaged over the year
_DAY_AMP_SEASON = 2.2
_TAU_T = 80.0  # h, relaxation of the temperature anomaly
_K_ADVECTION = 0.09  # degC/h per unit of north-south wind
_ADVECTION_LAG = 6 * ROWS_PER_HOUR  # the air mass arrives after the wind has turned
_K_NOISE = 0.24  # degC/h of unpredictable forcing
_K_RADIATION = 0.12  # degC/h between clear and overcast skies


def magnus(t: npt.ArrayLike) -> FloatArray:
    """Saturation vapour pressure in mbar at ``t`` °C (the Magnus formula of jena-data.md)."""
    t = np.asarray(t, dtype=np.float64)
    return np.asarray(6.1078 * np.exp(17.27 * t / (t + 237.3)), dtype=np.float64)


# --------------------------------------------------------------------------- random processes


def _ar1(e: FloatArray, a: float) -> FloatArray:
    """``x[n] = a x[n-1] + e[n]`` with ``x[-1] = 0``, vectorised in blocks (exact, stable)."""
    n = e.shape[0]
    if n == 0:
        return e.copy()
    # a**-block must stay far from overflow: block * (-ln a) <= 30 ln 10.
    block = max(1, min(n, int(30.0 * math.log(10.0) / -math.log(a))))
    n_blocks = -(-n // block)
    padded = np.zeros(n_blocks * block)
    padded[:n] = e
    grid = padded.reshape(n_blocks, block)
    j = np.arange(block, dtype=np.float64)
    up = a ** (-j)
    down = a**j
    local = np.cumsum(grid * up, axis=1) * down  # each block started from zero
    carry_weight = a ** (j + 1.0)
    out = np.empty_like(local)
    state = 0.0
    for b in range(n_blocks):
        out[b] = local[b] + carry_weight * state
        state = float(out[b, -1])
    return out.reshape(-1)[:n]


def _filter(e: FloatArray, taus: tuple[float, ...]) -> FloatArray:
    """White noise through a cascade of first-order filters with time constants ``taus`` (h)."""
    x = e
    for tau in taus:
        a = math.exp(-_DT / tau)
        x = _ar1(x, a) * (1.0 - a)
    return x


def _filter_std(taus: tuple[float, ...], lag: int = 0) -> float:
    """Stationary std of ``_filter(white, taus)`` (or of its ``lag``-row difference)."""
    length = int(12 * sum(taus) / _DT) + lag + 1
    impulse = np.zeros(length)
    impulse[0] = 1.0
    h = _filter(impulse, taus)
    if lag:
        h = h - np.concatenate([np.zeros(lag), h[:-lag]])
    return float(np.sqrt(np.sum(h * h)))


def _smooth(rng: np.random.Generator, n: int, taus: tuple[float, ...]) -> FloatArray:
    """A unit-variance smooth Gaussian process (after the spin-up) of ``n`` rows."""
    return _filter(rng.standard_normal(n), taus) / _filter_std(taus)


def _lagged_diff(x: FloatArray, lag: int) -> FloatArray:
    out = np.zeros_like(x)
    out[lag:] = x[lag:] - x[:-lag]
    return out


def _lagged(x: FloatArray, lag: int) -> FloatArray:
    """``x`` delayed by ``lag`` rows (the first rows repeat ``x[0]``)."""
    if lag <= 0:
        return x
    return np.concatenate([np.full(lag, x[0]), x[:-lag]])


def _sigmoid(x: FloatArray) -> FloatArray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)), dtype=np.float64)


# --------------------------------------------------------------------------- generate


def generate(rows: int = JENA_ROWS, seed: int = 0, start: str = DEFAULT_START) -> pd.DataFrame:
    """A clean Jena-like record: ``rows`` rows on the 10-minute grid from ``start``.

    Returns a frame indexed by a DatetimeIndex named ``"Date Time"`` with the 14 columns of
    :data:`jena.schema.COLUMNS` in order, float64, rounded to two decimals. The same ``seed`` gives
    the same frame, and ``generate(n, seed)`` is the first ``n`` rows of ``generate(m, seed)`` for
    ``m > n`` (with the same ``start``).
    """
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    first = pd.Timestamp(start)
    total = rows + _BURN_ROWS
    times = pd.date_range(first - _BURN_ROWS * STEP, periods=total, freq=STEP)
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(_N_STREAMS)]

    minutes = (times.hour * 60 + times.minute).to_numpy(dtype=np.float64)
    hour = minutes / 60.0
    year = (times.dayofyear.to_numpy(dtype=np.float64) - 1.0 + minutes / 1440.0) / 365.25
    season = np.cos(2.0 * np.pi * (year - 0.47))  # +1 near the summer solstice, -1 in winter

    # Pressure: weather systems of 2-7 days, stronger in winter, plus the 12-hour tide.
    pressure_taus = (18.0, 36.0)
    system = _smooth(rngs[0], total, pressure_taus)
    p = (
        _P_MEAN
        + _P_STD * (1.0 - 0.15 * season) * system
        + 0.5 * np.cos(2.0 * np.pi * (hour - 10.0) / 12.0)
    )
    # Pressure tendency over 3 h, unit variance; falling pressure -> southerly (northward) wind.
    tendency = (
        _lagged_diff(system, 18) * _filter_std(pressure_taus) / _filter_std(pressure_taus, lag=18)
    )
    v_large = -0.9 * tendency + 0.45 * _smooth(rngs[1], total, (10.0,))
    u_large = 0.1 + 0.8 * _smooth(rngs[2], total, (24.0, 36.0))

    # Clouds: more with low pressure and moist air.
    moisture = _smooth(rngs[3], total, (12.0, 24.0))
    cloud = _sigmoid(1.6 * (-0.7 * system + 0.6 * moisture + 0.5 * _smooth(rngs[4], total, (6.0,))))

    # Temperature anomaly: advection + radiation + noise, relaxing in _TAU_T hours.
    radiation = _K_RADIATION * (0.1 + 0.9 * season) * (0.5 - cloud)
    forcing = (
        _K_ADVECTION * _lagged(v_large, _ADVECTION_LAG)
        + radiation
        + _K_NOISE * _smooth(rngs[5], total, (4.0,))
    )
    anomaly = _ar1(forcing * _DT, math.exp(-_DT / _TAU_T))
    t_daily = _T_MEAN - _T_YEAR_AMP * np.cos(2.0 * np.pi * (year - _T_COLDEST)) + anomaly
    amplitude = (_DAY_AMP_MEAN + _DAY_AMP_SEASON * season) * (1.35 - 1.0 * cloud)
    shape = np.cos(2.0 * np.pi * (hour - 14.5) / 24.0) + 0.25 * np.cos(
        4.0 * np.pi * (hour - 14.5) / 24.0
    )
    t = t_daily + amplitude * shape + 0.15 * _smooth(rngs[6], total, (0.5,))

    # Dew point: daily-mean temperature minus a depression, never above T.
    depression = (3.6 + 2.4 * season) * np.exp(
        -0.35 * moisture - 0.9 * (cloud - 0.5)
    ) + 0.3 * np.maximum(anomaly, 0.0)
    tdew = t_daily + 0.2 * amplitude * shape - depression

    # Wind at the roof: damped, gusty by day, more with strong systems.
    daylight = np.clip(np.cos(2.0 * np.pi * (hour - 13.5) / 24.0), 0.0, None)
    turbulence = _smooth(rngs[7], total, (1.0,))
    speed = (
        1.85
        * np.hypot(u_large, v_large)
        * (0.75 + 0.6 * daylight)
        * np.exp(0.3 * turbulence - 0.1 * system)
    )
    gust = np.abs(_smooth(rngs[8], total, (0.5,)))
    max_speed = speed * (1.35 + 0.3 * gust) + 0.25 * gust
    jitter = 25.0 * _smooth(rngs[9], total, (0.5,)) / np.sqrt(0.3 + speed)
    wd = np.degrees(np.arctan2(-u_large, -v_large)) + jitter

    keep = slice(_BURN_ROWS, None)
    return assemble(
        times[keep],
        p=p[keep],
        t=t[keep],
        tdew=tdew[keep],
        wv=speed[keep],
        max_wv=max_speed[keep],
        wd=wd[keep],
    )


def _round2(x: npt.ArrayLike) -> FloatArray:
    """Round to two decimals like the real file, without negative zeros."""
    return np.asarray(np.round(np.asarray(x, dtype=np.float64), 2) + 0.0, dtype=np.float64)


def assemble(
    times: pd.DatetimeIndex,
    *,
    p: FloatArray,
    t: FloatArray,
    tdew: FloatArray,
    wv: FloatArray,
    max_wv: FloatArray,
    wd: FloatArray,
) -> pd.DataFrame:
    """The 14 columns on ``times``: the primary variables rounded to two decimals like the real
    file, the rest derived from the rounded values by the relations of the data reference."""
    p = _round2(p)
    t = _round2(t)
    tdew = np.minimum(_round2(tdew), t)
    vpmax = magnus(t)
    vpact = magnus(tdew)
    wv = _round2(np.maximum(wv, 0.0))
    max_wv = np.maximum(_round2(max_wv), wv)
    wd = _round2(np.mod(wd, 360.0))
    wd[wd >= 360.0] = 0.0
    values = {
        "p (mbar)": p,
        "T (degC)": t,
        "Tpot (K)": (t + 273.15) * (1000.0 / p) ** 0.286,
        "Tdew (degC)": tdew,
        "rh (%)": 100.0 * vpact / vpmax,
        "VPmax (mbar)": vpmax,
        "VPact (mbar)": vpact,
        "VPdef (mbar)": vpmax - vpact,
        "sh (g/kg)": 622.0 * vpact / (p - 0.378 * vpact),
        "H2OC (mmol/mol)": 1000.0 * vpact / p,
        "rho (g/m**3)": 100.0 * p / (287.05 * (t + 273.15)) * 1000.0,
        "wv (m/s)": wv,
        "max. wv (m/s)": max_wv,
        "wd (deg)": wd,
    }
    assert tuple(values) == COLUMNS
    frame = pd.DataFrame(
        {c: _round2(v) for c, v in values.items()},
        index=pd.DatetimeIndex(times, name=DATE_COLUMN),
    )
    return frame
