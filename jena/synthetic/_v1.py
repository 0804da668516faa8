"""The first synthetic generator (``synthetic-v1:ROWS[:SEED]``), kept for old results: a Jena-like
record whose weather is kinder than the station's (issue 29; :func:`jena.synthetic.generate` is the
calibrated one).

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

:func:`generate_v1` gives a clean frame on the 10-minute grid, the same as ``generate`` gave before
issue 29 (the same seed, the same values).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..schema import JENA_ROWS, ROWS_PER_DAY, ROWS_PER_HOUR, STEP
from ._columns import DEFAULT_START, assemble
from ._processes import (
    ar1,
    filter_std,
    lagged,
    lagged_diff,
    sigmoid,
    smooth,
)

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


def generate_v1(rows: int = JENA_ROWS, seed: int = 0, start: str = DEFAULT_START) -> pd.DataFrame:
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
    system = smooth(rngs[0], total, pressure_taus)
    p = (
        _P_MEAN
        + _P_STD * (1.0 - 0.15 * season) * system
        + 0.5 * np.cos(2.0 * np.pi * (hour - 10.0) / 12.0)
    )
    # Pressure tendency over 3 h, unit variance; falling pressure -> southerly (northward) wind.
    tendency = (
        lagged_diff(system, 18) * filter_std(pressure_taus) / filter_std(pressure_taus, lag=18)
    )
    v_large = -0.9 * tendency + 0.45 * smooth(rngs[1], total, (10.0,))
    u_large = 0.1 + 0.8 * smooth(rngs[2], total, (24.0, 36.0))

    # Clouds: more with low pressure and moist air.
    moisture = smooth(rngs[3], total, (12.0, 24.0))
    cloud = sigmoid(1.6 * (-0.7 * system + 0.6 * moisture + 0.5 * smooth(rngs[4], total, (6.0,))))

    # Temperature anomaly: advection + radiation + noise, relaxing in _TAU_T hours.
    radiation = _K_RADIATION * (0.1 + 0.9 * season) * (0.5 - cloud)
    forcing = (
        _K_ADVECTION * lagged(v_large, _ADVECTION_LAG)
        + radiation
        + _K_NOISE * smooth(rngs[5], total, (4.0,))
    )
    anomaly = ar1(forcing * _DT, math.exp(-_DT / _TAU_T))
    t_daily = _T_MEAN - _T_YEAR_AMP * np.cos(2.0 * np.pi * (year - _T_COLDEST)) + anomaly
    amplitude = (_DAY_AMP_MEAN + _DAY_AMP_SEASON * season) * (1.35 - 1.0 * cloud)
    shape = np.cos(2.0 * np.pi * (hour - 14.5) / 24.0) + 0.25 * np.cos(
        4.0 * np.pi * (hour - 14.5) / 24.0
    )
    t = t_daily + amplitude * shape + 0.15 * smooth(rngs[6], total, (0.5,))

    # Dew point: daily-mean temperature minus a depression, never above T.
    depression = (3.6 + 2.4 * season) * np.exp(
        -0.35 * moisture - 0.9 * (cloud - 0.5)
    ) + 0.3 * np.maximum(anomaly, 0.0)
    tdew = t_daily + 0.2 * amplitude * shape - depression

    # Wind at the roof: damped, gusty by day, more with strong systems.
    daylight = np.clip(np.cos(2.0 * np.pi * (hour - 13.5) / 24.0), 0.0, None)
    turbulence = smooth(rngs[7], total, (1.0,))
    speed = (
        1.85
        * np.hypot(u_large, v_large)
        * (0.75 + 0.6 * daylight)
        * np.exp(0.3 * turbulence - 0.1 * system)
    )
    gust = np.abs(smooth(rngs[8], total, (0.5,)))
    max_speed = speed * (1.35 + 0.3 * gust) + 0.25 * gust
    jitter = 25.0 * smooth(rngs[9], total, (0.5,)) / np.sqrt(0.3 + speed)
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
