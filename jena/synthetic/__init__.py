"""A deterministic, Jena-like weather record for offline development and CI, as hard to forecast
as the station (issue 29; :mod:`jena.difficulty` measures how hard).

The model of the weather (all times in hours, one row every 10 minutes; :class:`Weather` holds its
constants, tuned so that ``synthetic:52704`` matches the statistics of :mod:`jena.difficulty`
measured on the station's 2020):

* **Drivers**: the random processes are drawn a year (366 days) at a time, each a Gaussian process
  with a fixed power spectrum and random phases over the year; the years fade into each other
  over 3 days. A year depends on the seed and its number only: a record is the prefix of a
  longer one.
* **Pressure**: systems of 2–7 days around 989 mbar, stronger in winter, a trough at each front,
  a small 12-hour tide.
* **Fronts** pass about every 3.7 days (one at a random time in each of a year's 100 slots): a
  warm sector (southerly wind, cloud), then the cold front: a sharp drop of heavy-tailed size
  (a year holds the same set of sizes, in random order), the pressure's trough, gusts,
  north-westerly wind and the dry air behind it; the cold air stays until the weather moves on.
* **Temperature** = seasonal climatology (coldest in late January) + fronts + a radiative anomaly
  (clear skies cool in winter and warm in summer) + a synoptic anomaly + a daily cycle damped by
  cloud + sensor noise. The synoptic anomaly's periods under two days are rough innovations (a
  fixed spectrum, random phases); its longer periods complete the rest so that the daily means
  have the spectrum of a fast (days) and a slow (weeks) process: each year has the station's
  day-to-day statistics. A year whose 24-h change has tails outside the station's (excess
  kurtosis outside ``Weather.kurtosis``) gets heavier or lighter fronts of the same variance.
* **Cloud** (0–1) follows low pressure, moist air, its own day-to-day process and the fronts'
  bands; it damps the daily cycle and the radiation and brings the dew point close to ``T``.
* **Wind**: southerly with falling pressure and in a warm sector, north-westerly behind a front;
  damped to roof-anemometer levels, gusty by day; ``max. wv`` a gust factor above it.
* **Humidity**: the dew point follows the temperature without its daily cycle, minus a depression
  that is small under cloud, larger in summer, in dry air masses and behind a front; never above
  ``T``. Vapour pressures (Magnus), ``rh``, ``VPdef``, ``sh``, ``H2OC``, ``rho`` and ``Tpot``
  follow from ``T``, ``Tdew`` and ``p`` by the formulas in ``shared/reference/jena-data.md``.

:func:`generate` gives a clean frame on the 10-minute grid (``synthetic:ROWS[:SEED]``);
:func:`generate_v1` the first generator, kinder than the station, for old results
(``synthetic-v1:ROWS[:SEED]``); :func:`inject_defects` adds the real file's known defects (wind
sentinels, duplicated and missing timestamps, rows out of order); :func:`calibration` measures the
book-2 persistence and ridge figures of the first calibration.
"""

from __future__ import annotations

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
from ._columns import DEFAULT_START, assemble, magnus
from ._defects import DEFECTS_ATTR, DefectCounts, defect_counts, inject_defects
from ._v1 import generate_v1
from ._weather import WEATHER, YEAR_ROWS, Weather, generate, weather_frame

__all__ = [
    "BOOK2_LOOKBACK",
    "BOOK2_SAMPLING_RATE",
    "DEFAULT_START",
    "DEFECTS_ATTR",
    "WEATHER",
    "YEAR_ROWS",
    "Calibration",
    "DefectCounts",
    "Weather",
    "assemble",
    "book2_delay",
    "book2_splits",
    "calibration",
    "defect_counts",
    "generate",
    "generate_v1",
    "inject_defects",
    "magnus",
    "persistence_mae",
    "ridge_mae",
    "weather_frame",
]
