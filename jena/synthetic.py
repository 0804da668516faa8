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

from jena.schema import (
    COLUMNS,
    DATE_COLUMN,
    JENA_ROWS,
    ROWS_PER_DAY,
    ROWS_PER_HOUR,
    STEP,
    TARGET,
    WIND_SENTINEL,
)

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
DEFECTS_ATTR = "defects"  # key of the DefectCounts in the attrs of inject_defects()'s result

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


# --------------------------------------------------------------------------- defects


@dataclass(frozen=True)
class DefectCounts:
    """How many of each defect :func:`inject_defects` put in (what a loader should report).

    ``duplicate_rows`` counts the extra rows (``index.duplicated().sum()``), all exact copies of an
    earlier row, including the ``duplicated_days`` whole-day blocks. ``missing_rows`` counts the
    grid timestamps between the first and the last that are absent, in ``gaps`` runs (the longest
    is ``longest_gap_rows`` long). ``out_of_order`` counts the swapped adjacent pairs; with the
    duplicated days (each repeated as a block right after the day) they make ``descents`` places
    where a timestamp is earlier than the one before it.
    """

    sentinel_rows: int
    wv_sentinels: int
    max_wv_sentinels: int
    duplicate_rows: int
    duplicated_days: int
    missing_rows: int
    gaps: int
    longest_gap_rows: int
    out_of_order: int
    descents: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def inject_defects(
    frame: pd.DataFrame,
    seed: int = 0,
    *,
    sentinels: int = 5,
    duplicates: int = 4,
    duplicated_days: int = 1,
    gaps: int = 3,
    long_gaps: int = 1,
    long_gap_rows: int = 368,
    shuffled: int = 3,
) -> pd.DataFrame:
    """Copy ``frame`` (from :func:`generate`) with the real file's known defects.

    * ``sentinels`` rows get ``-9999.0`` in ``wv (m/s)``; about half of them in ``max. wv`` too;
    * ``duplicates`` single rows appear twice in a row, and ``duplicated_days`` whole days (144
      rows, midnight to 23:50) are repeated as a block right after the day;
    * ``gaps`` short gaps of 1-6 rows, and ``long_gaps`` gaps of ``long_gap_rows`` rows
      (default 368: like the real file's 25-27 October 2016, about 2.5 days);
    * ``shuffled`` pairs of adjacent rows are swapped.

    The defects never overlap and never touch the first or last rows. The result keeps the
    ``"Date Time"`` DatetimeIndex, now non-unique and not sorted, which
    :func:`jena.schema.write_jena_csv` writes as is. What was injected is a :class:`DefectCounts`
    in ``result.attrs["defects"]``; read it with :func:`defect_counts`.
    """
    counts = {"sentinel": sentinels, "duplicate": duplicates, "day": duplicated_days,
              "gap": gaps, "long_gap": long_gaps, "swap": shuffled}  # fmt: skip
    for kind, value in counts.items():
        if value < 0:
            raise ValueError(f"{_DEFECT_ARGS[kind]} must be >= 0, got {value}")
    if long_gaps and long_gap_rows < 1:
        raise ValueError(f"long_gap_rows must be >= 1, got {long_gap_rows}")
    rng = np.random.default_rng(seed)
    kinds = [kind for kind, count in counts.items() for _ in range(count)]
    need = {"sentinel": 1, "duplicate": 1, "day": 2 * ROWS_PER_DAY, "gap": 6, "swap": 2,
            "long_gap": long_gap_rows}  # fmt: skip
    injected = _Injected(frame, long_gap_rows)
    for kind, at in _slots(len(frame), kinds, need, rng):
        injected.add(kind, at, rng)
    out = frame.copy()
    out["wv (m/s)"], out["max. wv (m/s)"] = injected.wv, injected.max_wv
    out = out.iloc[injected.rows()]
    out.attrs = {DEFECTS_ATTR: injected.counts()}
    return out


_DEFECT_ARGS = {"sentinel": "sentinels", "duplicate": "duplicates", "day": "duplicated_days",
                "gap": "gaps", "long_gap": "long_gaps", "swap": "shuffled"}  # fmt: skip


def _slots(
    n: int, kinds: list[str], need: dict[str, int], rng: np.random.Generator
) -> Iterator[tuple[str, int]]:
    """(kind, row) of each defect, each in its own slot of the ``n`` rows (in a random order)
    so that none overlap, away from the first and last rows. Drawn one at a time: the caller's
    own draws for a defect come between, as they always did (the same seed, the same file)."""
    margin = 2
    slot = max([need[k] for k in kinds], default=1) + 2 * margin + ROWS_PER_DAY
    if kinds and n < slot * len(kinds) + 2:
        raise ValueError(f"frame too short for the defects: {n} rows, need {slot * len(kinds) + 2}")
    order = rng.permutation(len(kinds))
    usable = (n - 2) // max(len(kinds), 1)
    for slot_number, kind_index in enumerate(order):
        kind = kinds[kind_index]
        lo = 1 + slot_number * usable + margin
        hi = 1 + (slot_number + 1) * usable - margin - need[kind]
        yield kind, int(rng.integers(lo, max(lo + 1, hi)))


class _Injected:
    """The defects injected so far: wind sentinels, how often each row is written (0: missing),
    the rows' order, repeated days."""

    def __init__(self, frame: pd.DataFrame, long_gap_rows: int) -> None:
        n = len(frame)
        self.long_gap_rows = long_gap_rows
        self.wv = frame["wv (m/s)"].to_numpy(dtype=np.float64, copy=True)
        self.max_wv = frame["max. wv (m/s)"].to_numpy(dtype=np.float64, copy=True)
        self.repeat = np.ones(n, dtype=np.int64)  # how many times each row is written
        self.position = np.arange(n, dtype=np.float64)  # sort key for the written rows
        self.day_blocks: list[tuple[int, int]] = []
        index = pd.DatetimeIndex(frame.index)
        self.minutes = (index.hour * 60 + index.minute).to_numpy()
        self.n = dict.fromkeys(("wv", "max_wv", "dup", "missing", "gaps", "longest", "swap"), 0)

    def add(self, kind: str, at: int, rng: np.random.Generator) -> None:
        n = self.n
        if kind == "sentinel":
            self.wv[at] = WIND_SENTINEL
            n["wv"] += 1
            if rng.random() < 0.5:
                self.max_wv[at] = WIND_SENTINEL
                n["max_wv"] += 1
        elif kind == "duplicate":
            self.repeat[at] = 2
            n["dup"] += 1
        elif kind == "day":  # from the first midnight (00:00) at or after ``at``
            midnights = np.flatnonzero(self.minutes[at : at + ROWS_PER_DAY] == 0)
            begin = at + int(midnights[0]) if midnights.size else at
            self.day_blocks.append((begin, begin + ROWS_PER_DAY))
            n["dup"] += ROWS_PER_DAY
        elif kind in ("gap", "long_gap"):
            length = int(rng.integers(1, 7)) if kind == "gap" else self.long_gap_rows
            self.repeat[at : at + length] = 0
            n["missing"] += length
            n["gaps"] += 1
            n["longest"] = max(n["longest"], length)
        else:  # swap
            self.position[at], self.position[at + 1] = self.position[at + 1], self.position[at]
            n["swap"] += 1

    def rows(self) -> np.ndarray:
        """The frame's rows as written: repeats, gaps, swaps; a repeated day after the day."""
        rows = np.repeat(np.arange(len(self.repeat)), self.repeat)
        keys = np.repeat(self.position, self.repeat)
        for begin, end in self.day_blocks:
            block = np.arange(begin, end)
            rows = np.concatenate([rows, block])
            keys = np.concatenate([keys, np.full(block.size, end - 0.5)])
        return rows[np.argsort(keys, kind="stable")]

    def counts(self) -> DefectCounts:
        n, days = self.n, len(self.day_blocks)
        return DefectCounts(
            sentinel_rows=n["wv"], wv_sentinels=n["wv"], max_wv_sentinels=n["max_wv"],
            duplicate_rows=n["dup"], duplicated_days=days, missing_rows=n["missing"],
            gaps=n["gaps"], longest_gap_rows=n["longest"], out_of_order=n["swap"],
            descents=n["swap"] + days,
        )  # fmt: skip


def defect_counts(frame: pd.DataFrame) -> DefectCounts:
    """The :class:`DefectCounts` that :func:`inject_defects` stored in ``frame.attrs``."""
    counts = frame.attrs.get(DEFECTS_ATTR)
    if not isinstance(counts, DefectCounts):
        raise ValueError("frame has no defect counts: it did not come from inject_defects()")
    return counts


# --------------------------------------------------------------------------- calibration

BOOK2_SAMPLING_RATE = 6
BOOK2_LOOKBACK = 120  # sampled steps in a window


def book2_delay(sampling_rate: int = BOOK2_SAMPLING_RATE, lookback: int = BOOK2_LOOKBACK) -> int:
    """Rows between a window's first row and its target: ``r (L + 24 - 1)`` = 858."""
    return sampling_rate * (lookback + 24 - 1)


def book2_splits(rows: int) -> dict[str, tuple[int, int]]:
    """Window start rows ``[begin, end)`` of each split, as the book's 2nd edition makes them.

    ``timeseries_dataset_from_array(raw[:-delay], targets=T[delay:], sampling_rate=6,
    sequence_length=120, start_index/end_index)`` with rows split 50/25/25: a window starting at
    ``s`` has its last input row at ``s + 714`` and its target at ``s + 858`` (24 h later).
    """
    span = (BOOK2_LOOKBACK - 1) * BOOK2_SAMPLING_RATE
    num_train = int(0.5 * rows)
    num_val = int(0.25 * rows)
    delay = book2_delay()
    return {
        "train": (0, max(0, num_train - span)),
        "val": (num_train, max(num_train, num_train + num_val - span)),
        "test": (num_train + num_val, max(num_train + num_val, rows - delay - span)),
    }


def _window_rows(rows: int, split: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    begin, end = book2_splits(rows)[split]
    start = np.arange(begin, end, dtype=np.int64)
    last = start + (BOOK2_LOOKBACK - 1) * BOOK2_SAMPLING_RATE
    return last, start + book2_delay()


def persistence_mae(temperature: npt.ArrayLike, split: str = "test") -> float:
    """The book's baseline on ``split``: mean ``|T(last row of the window) - T(target)|``."""
    t = np.asarray(temperature, dtype=np.float64)
    last, target = _window_rows(t.shape[0], split)
    if last.size == 0:
        raise ValueError(f"{t.shape[0]} rows leave no {split} windows")
    return float(np.mean(np.abs(t[last] - t[target])))


def _features(frame: pd.DataFrame, last: npt.NDArray[np.int64]) -> FloatArray:
    """Simple features of the window ending at row ``last`` (all from rows <= ``last``)."""
    t = frame[TARGET].to_numpy(dtype=np.float64)
    p = frame["p (mbar)"].to_numpy(dtype=np.float64)
    wv = np.maximum(frame["wv (m/s)"].to_numpy(dtype=np.float64), 0.0)
    wd = np.radians(frame["wd (deg)"].to_numpy(dtype=np.float64))
    tdew = frame["Tdew (degC)"].to_numpy(dtype=np.float64)
    cumulative = np.concatenate([[0.0], np.cumsum(t)])
    day_mean = (cumulative[last + 1] - cumulative[last + 1 - ROWS_PER_DAY]) / ROWS_PER_DAY
    index = pd.DatetimeIndex(frame.index)
    hour = (index.hour + index.minute / 60.0).to_numpy(dtype=np.float64)[last]
    year = index.dayofyear.to_numpy(dtype=np.float64)[last] / 365.25
    hours = ROWS_PER_HOUR
    columns = [
        np.ones(last.size),
        t[last],
        t[last - ROWS_PER_DAY],
        day_mean,
        p[last] - p[last - 3 * hours],
        p[last] - p[last - 6 * hours],
        p[last] - p[last - 12 * hours],
        -wv[last] * np.sin(wd[last]),  # eastward
        -wv[last] * np.cos(wd[last]),  # northward
        tdew[last],
        np.sin(2 * np.pi * hour / 24),
        np.cos(2 * np.pi * hour / 24),
        np.sin(2 * np.pi * year),
        np.cos(2 * np.pi * year),
    ]
    return np.stack(columns, axis=1)


def ridge_mae(frame: pd.DataFrame, split: str = "test", alpha: float = 1.0) -> float:
    """MAE on ``split`` of a ridge regression of ``T`` 24 h ahead, fitted on the training windows.

    The features are simple summaries of the window's last day (see ``_features``): the last
    temperature, the temperature 24 h before and the last day's mean, the pressure change over
    3/6/12 h, the last wind vector, the dew point, and the hour and day of the year as sin/cos.
    """
    t = frame[TARGET].to_numpy(dtype=np.float64)
    train_last, train_target = _window_rows(len(frame), "train")
    last, target = _window_rows(len(frame), split)
    if train_last.size == 0 or last.size == 0:
        raise ValueError(f"{len(frame)} rows leave no train or {split} windows")
    x = _features(frame, train_last)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    mean[0], std[0] = 0.0, 1.0
    std[std == 0] = 1.0
    xs = (x - mean) / std
    y = t[train_target] - t[train_last]
    penalty = math.sqrt(alpha) * np.eye(xs.shape[1])
    penalty[0, 0] = 0.0
    coef, *_ = np.linalg.lstsq(
        np.vstack([xs, penalty]), np.concatenate([y, np.zeros(xs.shape[1])]), rcond=None
    )
    prediction = t[last] + ((_features(frame, last) - mean) / std) @ coef
    return float(np.mean(np.abs(prediction - t[target])))


@dataclass(frozen=True)
class Calibration:
    """The statistics :func:`generate` is tuned to (see :func:`calibration`)."""

    rows: int
    t_mean: float
    t_std: float
    persistence_val: float
    persistence_test: float
    ridge_val: float
    ridge_test: float

    @property
    def ridge_skill(self) -> float:
        """The ridge's improvement over persistence on the test split (0.1 = 10% lower MAE)."""
        return 1.0 - self.ridge_test / self.persistence_test


def calibration(frame: pd.DataFrame) -> Calibration:
    """Measure the temperature's mean/std and the book-2 persistence and ridge MAE of ``frame``."""
    t = frame[TARGET].to_numpy(dtype=np.float64)
    return Calibration(
        rows=len(frame),
        t_mean=float(t.mean()),
        t_std=float(t.std()),
        persistence_val=persistence_mae(t, "val"),
        persistence_test=persistence_mae(t, "test"),
        ridge_val=ridge_mae(frame, "val"),
        ridge_test=ridge_mae(frame, "test"),
    )
