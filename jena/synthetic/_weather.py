"""The calibrated generator (issue 29): a Jena-like record as hard to forecast as the station.

See :mod:`jena.synthetic` for the model in words. The weather's random drivers are drawn a year at
a time (:data:`YEAR_ROWS`, 366 days): each is a Gaussian process with a fixed power spectrum and
random phases over the year, and the synoptic anomaly completes the daily means of everything
else to a fixed spectrum (:func:`_completion`), so every synthetic year has the same day-to-day
statistics (those of :mod:`jena.difficulty` vary little from seed to seed); the years are joined
by a short crossfade. Fronts are a fixed number of events per year with a fixed set of strengths
(quantiles of a heavy-tailed law) in random order at random times. A year's drivers depend only
on the seed and the year's number, so a record is the prefix of a longer one (the generator
always computes whole years and cuts).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..schema import JENA_ROWS, ROWS_PER_DAY, ROWS_PER_HOUR, STEP
from ._columns import DEFAULT_START, assemble
from ._processes import DT, ar1, sigmoid, smooth

FloatArray = npt.NDArray[np.float64]

YEAR_ROWS = 366 * ROWS_PER_DAY  # the period of the drivers: 52,704 rows
CROSSFADE_ROWS = 3 * ROWS_PER_DAY  # one year's drivers fade into the next over 3 days
_SALT = 29  # keeps these streams apart from the v1 generator's


@dataclass(frozen=True)
class Weather:
    """The constants of the weather model. The fronts', the synoptic anomaly's and the daily
    cycle's were tuned (Nelder–Mead on seeds 3–8, then checked on 0–2) so that
    ``synthetic:52704`` matches the station's 2020 statistics of :mod:`jena.difficulty`; the
    air mass's so that the ridge gains no more than at the station."""

    p_mean: float = 989.2  # mbar (the station is at ~155 m)
    p_std: float = 7.4  # of the pressure systems
    p_taus: tuple[float, ...] = (18.0, 36.0)  # h: systems of 2–7 days
    t_mean: float = 9.3  # °C, the climatology's mean
    t_year_amp: float = 9.0  # half the July–January difference of the daily means
    t_coldest: float = 0.05  # fraction of the year: about 20 January
    # the synoptic anomaly (°C): a fast part (days) and a slow one (weeks); first-order filters
    fast_std: float = 3.34
    fast_taus: tuple[float, ...] = (40.6, 3.22)
    slow_std: float = 1.59
    slow_taus: tuple[float, ...] = (217.0, 217.0)
    # fronts: events per year; the cold front's drop (°C, Weibull quantiles: shape < 1 has heavy
    # tails); the warm sector's rise, a share of the drop, and its lead; the cold air's e-folding
    fronts_per_year: int = 100
    front_drop: float = 2.62
    front_shape: float = 0.914
    warm_share: float = 0.0
    warm_lead_h: float = 10.0
    recovery_h: float = 1000.0
    front_p: float = 0.6  # mbar of trough per °C of front
    # the daily cycle: half the clear day's range, its seasonal swing, the damping by cloud
    day_amp_mean: float = 3.50
    day_amp_season: float = 2.0
    cloud_damping: float = 1.38  # amplitude × (1 + damping/2 − damping × cloud)
    cloud_taus: tuple[float, ...] = (16.0, 24.0)
    cloud_gain: float = 2.61
    radiation: float = 0.02  # °C/h between clear and overcast skies
    radiation_tau_h: float = 36.0
    noise_c: float = 0.08  # sensor noise, °C
    # each year's fronts given heavier or lighter tails (the same variance) until its 24-h
    # change's excess kurtosis is within this range (None: the fronts as drawn)
    kurtosis: tuple[float, float] | None = (1.10, 1.36)
    # the dew-point depression's own air-mass variation (log scale) and its time scales (h)
    air_mass: float = 0.8
    air_mass_taus: tuple[float, ...] = (48.0, 96.0)


WEATHER = Weather()


# --------------------------------------------------------------------------- yearly drivers


def _amplitudes(taus: tuple[float, ...], rows: int = YEAR_ROWS) -> FloatArray:
    """rFFT amplitudes of white noise through first-order filters ``taus`` (h) over a period of
    ``rows``, scaled to a unit-variance process, the mean bin 0."""
    f = np.fft.rfftfreq(rows, d=DT)  # cycles per hour
    power = np.ones_like(f)
    for tau in taus:
        power /= 1.0 + (2.0 * math.pi * f * tau) ** 2
    power[0] = 0.0
    # x = irfft(X): var(x) = (2 sum |X_k|^2 - |X_0|^2 - |X_nyq|^2) / rows^2
    weight = np.full_like(f, 2.0)
    weight[0] = 1.0
    if rows % 2 == 0:
        weight[-1] = 1.0
    scale = math.sqrt(rows**2 / float(np.sum(weight * power)))
    return np.sqrt(power) * scale


def _year(rng: np.random.Generator, amplitudes: FloatArray, rows: int = YEAR_ROWS) -> FloatArray:
    """One year of a periodic process: ``amplitudes`` with random phases.  # (rows,)"""
    phases: FloatArray = np.asarray(rng.uniform(0.0, 2.0 * math.pi, size=amplitudes.shape[0]))
    spectrum = amplitudes * np.exp(1j * phases)
    if rows % 2 == 0:
        spectrum[-1] = amplitudes[-1] * np.cos(phases[-1])
    return np.fft.irfft(spectrum, n=rows)


def _by_year(
    seed: int, rows: int, stream: int, year_of: Callable[[np.random.Generator, int], FloatArray]
) -> FloatArray:
    """A process over ``rows`` rows built a year at a time by ``year_of(rng, k)`` (a periodic
    year; ``rng`` from the seed, ``stream`` and ``k`` only), each year crossfaded over
    :data:`CROSSFADE_ROWS` into the next (the past year wraps on past its end)."""
    out = np.empty(rows)
    fade = (np.arange(CROSSFADE_ROWS) + 0.5) / CROSSFADE_ROWS * (math.pi / 2)
    previous = np.zeros(0)
    for k in range(-(-rows // YEAR_ROWS)):
        lo, hi = k * YEAR_ROWS, min(rows, (k + 1) * YEAR_ROWS)
        year = year_of(np.random.default_rng([seed, _SALT, k, stream]), k)
        part = year[: hi - lo].copy()
        if k:
            m = min(CROSSFADE_ROWS, hi - lo)
            part[:m] = np.cos(fade[:m]) * previous[:m] + np.sin(fade[:m]) * part[:m]
        out[lo:hi] = part
        previous = year
    return out


def _drivers(seed: int, rows: int, specs: dict[str, tuple[float, ...]]) -> dict[str, FloatArray]:
    """Unit-variance Gaussian drivers (first-order filters ``taus``) over ``rows`` rows, drawn a
    year at a time with fixed amplitudes and random phases."""
    out = {}
    for i, (name, taus) in enumerate(specs.items()):
        amplitudes = _amplitudes(taus)

        def year_of(rng: np.random.Generator, _k: int, a: FloatArray = amplitudes) -> FloatArray:
            return _year(rng, a)

        out[name] = _by_year(seed, rows, i, year_of)
    return out


DAYS = YEAR_ROWS // ROWS_PER_DAY
SEASONAL_BINS = 3  # periods of half a year and longer: left to the climatology


def _daily_amplitudes(w: Weather) -> FloatArray:
    """rFFT amplitudes (366-day period, one value a day) of the daily means of the synoptic
    anomaly: a fast and a slow process (first-order filters), each its own variance."""
    f = np.fft.rfftfreq(DAYS, d=24.0)  # cycles per hour
    power = np.zeros_like(f)
    for std, taus in ((w.fast_std, w.fast_taus), (w.slow_std, w.slow_taus)):
        part = np.ones_like(f)
        for tau in taus:
            part /= 1.0 + (2.0 * math.pi * f * tau) ** 2
        part[0] = 0.0
        power += std**2 * part / (2.0 * float(np.sum(part)) / DAYS**2)  # var(part) = std**2
    # a day's mean of a process sampled every 10 minutes: the boxcar's gain
    box = np.abs(np.sinc(f * 24.0))
    return np.sqrt(power) * box


def _completion(
    seed: int, clim: FloatArray, weather: FloatArray, daily: FloatArray, rough: FloatArray
) -> FloatArray:
    """The synoptic anomaly ``G`` (rows a whole number of years), a year at a time. Its periods
    under two days have the amplitudes ``rough`` (rFFT of a year of rows) with random phases:
    the weather's unpredictable innovations. Its longer periods are chosen so that the daily
    means of ``clim + weather + G`` have the amplitude spectrum ``daily`` (rFFT of a year of
    days): where the rest's daily means have less, ``G`` adds it in quadrature (a random sign at
    each frequency); where they have more, ``G`` scales them down (their phase, the fronts'
    timing, kept). The year's mean and seasons (periods of half a year and longer) and the drift
    from its first day to its last are the climatology's: ``G`` takes ``weather``'s away. So the
    day-to-day statistics of the temperature are the same every year."""
    low = DAYS // 2 + 1  # row frequencies whose period is two days or longer
    m = np.arange(low)
    r = np.arange(ROWS_PER_DAY)
    # the daily mean of row-frequency m: B[m] = mean over a day's rows of exp(2 pi i m r / Y)
    box = np.exp(2j * np.pi * np.outer(m, r) / YEAR_ROWS).mean(axis=1)
    day = np.arange(DAYS)
    row_day = (np.arange(YEAR_ROWS) - (ROWS_PER_DAY - 1) / 2) / ROWS_PER_DAY  # its daily mean: j

    def year_of(rng: np.random.Generator, k: int) -> FloatArray:
        spectrum = np.zeros(YEAR_ROWS // 2 + 1, dtype=np.complex128)
        spectrum[low:] = rough[low:] * np.exp(2j * np.pi * rng.uniform(size=rough.shape[0] - low))
        spectrum[-1] = spectrum[-1].real
        year = slice(k * YEAR_ROWS, (k + 1) * YEAR_ROWS)
        rest = (weather[year] + np.fft.irfft(spectrum, n=YEAR_ROWS)).reshape(DAYS, ROWS_PER_DAY)
        days = rest.mean(axis=1)
        drift = (days[-1] - days[0]) / (DAYS - 1)  # °C a day from the first day to the last
        days -= drift * day
        w = np.fft.rfft(days)
        f = w + np.fft.rfft(clim[year].reshape(DAYS, ROWS_PER_DAY).mean(axis=1))
        size = np.abs(f)
        room = np.sqrt(np.maximum(daily**2 - size**2, 0.0))
        phase = np.where(size > 0, f / np.where(size > 0, size, 1.0), 1.0)
        sign = rng.choice(np.array([-1.0, 1.0]), size=f.shape[0])
        # where the rest's own daily amplitude exceeds the target: scale it down, phase kept
        h = np.where(size > daily, f * (daily / np.maximum(size, 1e-300) - 1.0),
                     1j * sign * room * phase)  # fmt: skip
        h[:SEASONAL_BINS] = -w[:SEASONAL_BINS]  # the mean and the seasons: the climatology's
        # the daily Nyquist (a two-day period; 366 days: even) is real: its size set, sign kept
        nyquist = f[-1].real
        h[-1] = (1.0 if nyquist >= 0 else -1.0) * daily[-1] - nyquist
        spectrum[:low] = ROWS_PER_DAY * h / box
        spectrum[low - 1] /= 2.0  # a row frequency, not a Nyquist: its conjugate counts too
        return np.fft.irfft(spectrum, n=YEAR_ROWS) - drift * row_day

    return _by_year(seed, len(weather), 50, year_of)


# --------------------------------------------------------------------------- fronts


@dataclass(frozen=True)
class Fronts:
    """Front passages: the cold front's row (absolute, from the first kept row), the warm
    sector's rise and the cold front's drop (°C)."""

    rows: npt.NDArray[np.int64]
    rise: FloatArray
    drop: FloatArray


def _fronts(seed: int, rows: int, w: Weather) -> Fronts:
    """``w.fronts_per_year`` events in every year (the year before the record too, for the
    tails that reach into it): one at a uniform random row of the middle half of each of the
    year's equal slots (fronts at least half a slot apart), the year's drops the Weibull quantiles
    at (i + ½)/n in random order, the warm sectors' rises a share of them (½ to 1½ times
    ``w.warm_share``, evenly spread, in random order)."""
    n = w.fronts_per_year
    u = (np.arange(n) + 0.5) / n
    drops = w.front_drop * (-np.log1p(-u)) ** (1.0 / w.front_shape)
    slot = YEAR_ROWS // n
    at, rise, drop = [], [], []
    for k in range(-1, -(-rows // YEAR_ROWS)):
        rng = np.random.default_rng([seed, _SALT, 1000 + k + 1])
        at.append(k * YEAR_ROWS + slot * np.arange(n) + slot // 4 + rng.integers(0, slot // 2, n))
        d = rng.permutation(drops)
        drop.append(d)
        rise.append(w.warm_share * d * rng.permutation(0.5 + u))
    return Fronts(np.concatenate(at), np.concatenate(rise), np.concatenate(drop))


def _place(
    rows: int, fronts: Fronts, weights: FloatArray, template: FloatArray, lead: int
) -> FloatArray:
    """Sum of ``weights[j] × template`` placed with its row ``lead`` at each front's row."""
    out = np.zeros(rows)
    offsets = np.arange(template.shape[0]) - lead
    for at, weight in zip(fronts.rows, weights, strict=True):
        idx = at + offsets
        keep = (idx >= 0) & (idx < rows)
        if keep.any():
            out[idx[keep]] += weight * template[keep]
    return out


# --------------------------------------------------------------------------- generate


def generate(rows: int = JENA_ROWS, seed: int = 0, start: str = DEFAULT_START) -> pd.DataFrame:
    """A clean Jena-like record as hard to forecast as the station: ``rows`` rows on the
    10-minute grid from ``start``.

    Returns a frame indexed by a DatetimeIndex named ``"Date Time"`` with the 14 columns of
    :data:`jena.schema.COLUMNS` in order, float64, rounded to two decimals. The same ``seed`` gives
    the same frame, and ``generate(n, seed)`` is the first ``n`` rows of ``generate(m, seed)`` for
    ``m > n`` (with the same ``start``).
    """
    return weather_frame(rows, seed, start, WEATHER)


def weather_frame(rows: int, seed: int, start: str, w: Weather) -> pd.DataFrame:
    """:func:`generate` with the model's constants ``w``."""
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    if seed < 0:
        raise ValueError(f"seed must be at least 0, got {seed}")
    wanted, rows = rows, -(-rows // YEAR_ROWS) * YEAR_ROWS  # whole years, cut at the end
    times = pd.date_range(pd.Timestamp(start), periods=rows, freq=STEP)
    fixed = _Fixed.draw(times, seed, w)
    years = rows // YEAR_ROWS
    f = _fields(fixed, seed, w, np.ones(years))
    if w.kurtosis is not None:
        # a year whose 24-h change has an excess kurtosis outside w.kurtosis: its fronts' sizes
        # raised to a power (their mean square kept; secant steps on a log scale) until it is at
        # the nearer end. At fixed constants the kurtosis spreads about ±0.3 between years, more
        # than the station's one figure can tell.
        lo, hi = w.kurtosis
        drawn = _kurtosis(f["t"], years)
        goal = np.clip(drawn, lo + 0.005, hi - 0.005)
        if np.any(goal != drawn):
            x0, k0 = np.zeros(years), drawn - goal
            x1 = np.where(k0 < 0, 0.15, -0.15) * (goal != drawn)
            for _ in range(8):
                f = _fields(fixed, seed, w, np.exp(x1))  # the tails' power
                k1 = _kurtosis(f["t"], years) - goal
                if np.all((np.abs(k1) < 0.004) | (goal == drawn)):
                    break
                slope = np.maximum((k1 - k0) / np.where(x1 == x0, 1.0, x1 - x0), 0.5)
                x0, k0 = x1, k1
                x1 = np.clip(x1 - k1 / slope * (goal != drawn), -0.7, 0.7)
    keep = slice(0, wanted)
    return assemble(
        times[keep],
        p=f["p"][keep],
        t=f["t"][keep],
        tdew=f["tdew"][keep],
        wv=f["wv"][keep],
        max_wv=f["max_wv"][keep],
        wd=f["wd"][keep],
    )


def _kurtosis(t: FloatArray, years: int) -> FloatArray:
    """Excess kurtosis of the 24-h change within each year.  # (years,)"""
    out = np.empty(years)
    for k in range(years):
        y = t[k * YEAR_ROWS : (k + 1) * YEAR_ROWS]
        d = y[ROWS_PER_DAY:] - y[:-ROWS_PER_DAY]
        c = d - d.mean()
        out[k] = np.mean(c**4) / np.mean(c**2) ** 2 - 3.0
    return out


@dataclass(frozen=True)
class _Fixed:
    """What does not depend on the fronts' strength: the calendar, the drivers, the fronts'
    times and nominal sizes, the fast time-domain processes."""

    hour: FloatArray
    year: FloatArray
    season: FloatArray
    g: dict[str, FloatArray]
    fronts: Fronts
    fast: list[FloatArray]

    @classmethod
    def draw(cls, times: pd.DatetimeIndex, seed: int, w: Weather) -> _Fixed:
        rows = len(times)
        minutes = (times.hour * 60 + times.minute).to_numpy(dtype=np.float64)
        year = (times.dayofyear.to_numpy(dtype=np.float64) - 1.0 + minutes / 1440.0) / 365.25
        g = _drivers(
            seed,
            rows,
            {
                "system": w.p_taus,
                "moisture": (12.0, 24.0),
                "air_mass": w.air_mass_taus,
                "cloud": w.cloud_taus,
                "u": (24.0, 36.0),
                "v": (10.0,),
            },
        )
        # the fast processes in the time domain, one stream each (a record stays a prefix)
        rng = [np.random.default_rng([seed, _SALT, 99, i]) for i in range(6)]
        fast = [
            smooth(rng[0], rows, (0.5,)),
            rng[1].standard_normal(rows),
            rng[2].standard_normal(rows),
            smooth(rng[3], rows, (1.0,)),
            np.abs(smooth(rng[4], rows, (0.5,))),
            smooth(rng[5], rows, (0.5,)),
        ]
        return cls(
            hour=minutes / 60.0,
            year=year,
            season=np.cos(2.0 * np.pi * (year - 0.47)),  # +1 near the summer solstice
            g=g,
            fronts=_fronts(seed, rows, w),
            fast=fast,
        )


def _fields(fixed: _Fixed, seed: int, w: Weather, tail: FloatArray) -> dict[str, FloatArray]:
    """The primary variables, each year's front sizes raised to the power ``tail`` (its years'
    values; rescaled to the same mean square: heavier tails for ``tail > 1``, the same
    variance)."""
    hour, year, season, g = fixed.hour, fixed.year, fixed.season, fixed.g
    rows = len(hour)
    drop, rise = fixed.fronts.drop, fixed.fronts.rise
    of_year = np.clip(fixed.fronts.rows // YEAR_ROWS, 0, len(tail) - 1)
    power = tail[of_year]
    bent = drop**power
    norm = np.sqrt(np.mean(drop**2) / np.array([np.mean(drop**e) for e in 2.0 * tail]))
    bent *= norm[of_year]
    fronts = Fronts(fixed.fronts.rows, rise * bent / drop, bent)
    hours = ROWS_PER_HOUR
    tau = (np.arange(-2 * ROWS_PER_DAY, 8 * ROWS_PER_DAY) / hours).astype(np.float64)  # h
    first = 2 * ROWS_PER_DAY  # the template's row at the cold front
    warm_sector = sigmoid((tau + w.warm_lead_h) / 1.5) * sigmoid(-tau / 0.7)
    cold_air = sigmoid(tau / 0.7) * np.exp(-np.maximum(tau, 0.0) / w.recovery_h)
    near = np.exp(-0.5 * (tau / 3.0) ** 2)  # around the passage
    behind = sigmoid(tau / 1.0) * np.exp(-np.maximum(tau, 0.0) / 18.0)
    strength = fronts.rise + fronts.drop  # °C
    front_t = _place(rows, fronts, fronts.rise, warm_sector, first) - _place(
        rows, fronts, fronts.drop, cold_air, first
    )
    front_near = _place(rows, fronts, strength, near, first)
    front_behind = _place(rows, fronts, strength, behind, first)
    front_warm = _place(rows, fronts, strength, warm_sector, first)
    # the wind's share of a front saturates: an anemometer on a roof, not a storm's core
    wind_behind, wind_warm = 6.0 * np.tanh(front_behind / 6.0), 6.0 * np.tanh(front_warm / 6.0)

    # Pressure: systems of 2–7 days, stronger in winter; a trough at each front; the 12-h tide.
    p = (
        w.p_mean
        + w.p_std * (1.0 - 0.15 * season) * g["system"]
        - w.front_p * front_near
        + 0.5 * np.cos(2.0 * np.pi * (hour - 10.0) / 12.0)
    )
    tendency = np.zeros(rows)
    tendency[18:] = (g["system"][18:] - g["system"][:-18]) / 0.3
    # Wind: southerly with falling pressure and in the warm sector, north-westerly behind a front.
    v_large = -0.5 * tendency + 0.45 * g["v"] + 0.1 * wind_warm - 0.2 * wind_behind
    u_large = 0.1 + 0.8 * g["u"] + 0.25 * wind_behind

    # Cloud: low pressure, moist air, the fronts' bands; clears behind them.
    cloud = sigmoid(
        w.cloud_gain
        * (-0.35 * g["system"] + 0.35 * g["moisture"] + 0.7 * g["cloud"] + 0.25 * front_near
           - 0.15 * front_behind)
    )  # fmt: skip

    # Temperature: climatology + fronts + radiation + the synoptic anomaly (completing their
    # sum to the spectrum of a fast and a slow process) + the daily cycle + sensor noise.
    clim = w.t_mean - w.t_year_amp * np.cos(2.0 * np.pi * (year - w.t_coldest))
    forcing = w.radiation * (0.1 + 0.9 * season) * (0.5 - cloud)
    radiative = ar1(forcing * DT, math.exp(-DT / w.radiation_tau_h))
    amplitude = (w.day_amp_mean + w.day_amp_season * season) * (
        1.0 + 0.5 * w.cloud_damping - w.cloud_damping * cloud
    )
    shape = np.cos(2.0 * np.pi * (hour - 14.5) / 24.0) + 0.25 * np.cos(
        4.0 * np.pi * (hour - 14.5) / 24.0
    )
    weather = (
        front_t + radiative + amplitude * shape + 0.12 * fixed.fast[0] + w.noise_c * fixed.fast[1]
    )
    rough = np.sqrt(
        (w.fast_std * _amplitudes(w.fast_taus)) ** 2 + (w.slow_std * _amplitudes(w.slow_taus)) ** 2
    )
    anomaly = _completion(seed, clim, weather, _daily_amplitudes(w), rough)
    t_daily = clim + anomaly + front_t + radiative
    t = clim + anomaly + weather

    # Dew point: the temperature without its daily cycle minus a depression, small under cloud,
    # larger in summer, in a dry air mass and behind a front (at most about 30 °C); never above T.
    dryness = (
        -0.35 * g["moisture"]
        - w.air_mass * 1.5 * np.tanh(g["air_mass"] / 1.5)  # at most e^(±1.5 air_mass)
        - 0.9 * (cloud - 0.5)
    )
    depression = (2.5 + 1.7 * season) * np.exp(dryness) + 0.3 * np.maximum(anomaly, 0.0)
    depression = 30.0 * np.tanh((depression + 0.25 * front_behind) / 30.0)
    tdew = t_daily + 0.2 * amplitude * shape - depression + 0.1 * fixed.fast[2]

    # Wind at the roof: damped, gusty by day, more with strong systems and at fronts.
    daylight = np.clip(np.cos(2.0 * np.pi * (hour - 13.5) / 24.0), 0.0, None)
    turbulence = fixed.fast[3]
    speed = (
        2.3
        * np.hypot(u_large, v_large)
        * (0.75 + 0.6 * daylight)
        * np.exp(0.3 * turbulence - 0.1 * g["system"] + 0.4 * np.tanh(front_near / 8.0))
    )
    gust = fixed.fast[4]
    max_speed = speed * (1.35 + 0.3 * gust) + 0.25 * gust
    jitter = 25.0 * fixed.fast[5] / np.sqrt(0.3 + speed)
    wd = np.degrees(np.arctan2(-u_large, -v_large)) + jitter
    return {"p": p, "t": t, "tdew": tdew, "wv": speed, "max_wv": max_speed, "wd": wd}
