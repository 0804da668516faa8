"""From the last rows of a Jena record to a °C forecast: the one copy of what a trained model
needs around it (the record's times, checks, features, normalisation, window, members).

``jena predict`` and ``jena best`` use it through :mod:`jena.serve`; every registered model
carries a copy. It imports numpy, pandas and its siblings :mod:`jena.schema` and
:mod:`jena.conformal` only (Keras inside :func:`load_members`, after :func:`use_backend`, with
:mod:`jena.layers`), so :func:`jena.tracking.register_model` ships the four files as the package
``jena_forecaster`` (the model's ``code/``) and the model runs where ``jena`` is not installed.

A data configuration with a ``calibration`` (:class:`jena.conformal.Calibration`, stored by
``jena best``) gives every forecast its intervals (:attr:`Forecast.intervals`; the answer's
``level``, ``low`` and ``high``, and ``low_80``, ``high_80`` … for further levels); one without
(a model registered before) answers without them.

Times are compared as timestamps and timedeltas, never as integers: a record indexed at any
``datetime64`` resolution works (pandas 3 parses to microseconds, ``jena.data`` gives
nanoseconds). What makes an input unusable is an :class:`InputError` of one line; the project
turns it into a ``DataError``, the registered model into MLflow's ``INVALID_PARAMETER_VALUE``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .conformal import Calibration, level_key
from .schema import (
    COLUMNS,
    DATE_COLUMN,
    DATE_FORMAT,
    DATE_HINT,
    PHYSICAL_RANGES,
    STEP,
    TARGET,
    TARGET_INDEX,
    unit_hint,
)

if TYPE_CHECKING:
    import keras

WIND_VECTOR = ("Wx", "Wy", "max Wx", "max Wy")
TIME_FEATURES = ("day sin", "day cos", "year sin", "year cos")
SECONDS_PER_DAY = 24 * 60 * 60
SECONDS_PER_YEAR = 365.2425 * SECONDS_PER_DAY
EPOCH = pd.Timestamp("1970-01-01")
OUTPUT = ("last_time", "target_time", "forecast", "persistence")  # a forecast row's columns
INTERVAL_OUTPUT = ("level", "low", "high")  # after OUTPUT, where the model is calibrated


class InputError(ValueError):
    """The input cannot be forecast from; the message is one line saying why."""


class ModelError(ValueError):
    """A model and its data configuration do not fit together."""


# --------------------------------------------------------------------------- times


def epoch_seconds(index: pd.DatetimeIndex) -> np.ndarray:
    """Seconds since 1970-01-01 (float64) at any resolution (a tz-aware index: UTC)."""
    if index.tz is not None:
        index = index.tz_convert(None)
    return np.asarray((index - EPOCH) / pd.Timedelta(seconds=1), dtype=np.float64)


def _when(t: pd.Timestamp) -> str:
    return t.strftime(DATE_FORMAT)  # as the record writes it


def _parse_times(column: pd.Series) -> pd.DatetimeIndex:
    """A ``Date Time`` column: datetimes, or strings in the Jena format or ISO 8601."""
    if pd.api.types.is_datetime64_any_dtype(column):
        return pd.DatetimeIndex(column)
    for form in (DATE_FORMAT, "ISO8601"):
        try:
            return pd.DatetimeIndex(pd.to_datetime(column, format=form))
        except (ValueError, TypeError):
            continue
    parsed = pd.to_datetime(column, format=DATE_FORMAT, errors="coerce")
    bad = np.flatnonzero(parsed.isna().to_numpy() & column.notna().to_numpy())
    row = int(bad[0]) if len(bad) else 0
    raise InputError(
        f'"{DATE_COLUMN}" of row {row + 1}: {column.iloc[row]!r} is not a time like {DATE_HINT}'
    )


def record(frame: Any) -> pd.DataFrame:
    """``frame`` indexed by time (its DatetimeIndex, or its parsed ``Date Time`` column), with
    the 14 columns of the Jena record."""
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"expected a table of Jena records, got {type(frame).__name__}")
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        names = ", ".join(f'"{c}"' for c in missing)
        raise InputError(
            f"the input lacks the column{'s' if len(missing) > 1 else ''} {names} (it needs the "
            f"{len(COLUMNS)} columns of the Jena record)"
        )
    if isinstance(frame.index, pd.DatetimeIndex):
        return frame
    if DATE_COLUMN in frame.columns:
        return frame.drop(columns=[DATE_COLUMN]).set_index(_parse_times(frame[DATE_COLUMN]))
    raise InputError(f'the input needs a "{DATE_COLUMN}" column, {DATE_HINT}, or a DatetimeIndex')


def _step_problem(a: pd.Timestamp, b: pd.Timestamp) -> str:
    step = b - a
    if step > STEP and step % STEP == pd.Timedelta(0):
        lost = step // STEP - 1
        return (f"a gap in the last window: {_when(a)} is followed by {_when(b)} "
                f"({lost} row{'s' if lost > 1 else ''} missing)")  # fmt: skip
    if step == pd.Timedelta(0):
        return f"a repeated time in the last window: {_when(a)}"
    if step < pd.Timedelta(0):
        return f"the last window is out of order: {_when(b)} comes after {_when(a)}"
    return f"the last window leaves the 10-minute grid: {_when(b)} is {step} after {_when(a)}"


def check_window(window: pd.DataFrame) -> None:
    """The rows a forecast reads: consecutive 10-minute times, and in every column numbers
    inside its physical range (a median that gives a wrong unit away says so)."""
    times = pd.DatetimeIndex(window.index)
    if times.hasnans:
        row = int(np.flatnonzero(times.isna())[0])
        raise InputError(f"row {row + 1} of the last window ({len(times)} rows) has no time")
    bad = np.flatnonzero((times[1:] - times[:-1]) != STEP)
    if len(bad):
        i = int(bad[0])
        raise InputError(
            f"{_step_problem(times[i], times[i + 1])}: the window needs {len(times)} "
            "consecutive 10-minute records"
        )
    for column in COLUMNS:
        try:
            values = window[column].to_numpy(np.float64)
        except (ValueError, TypeError):
            raise InputError(f'column "{column}" holds values that are not numbers') from None
        lo, hi = PHYSICAL_RANGES[column]
        if np.isnan(values).any():
            first = int(np.flatnonzero(np.isnan(values))[0])
            raise InputError(
                f'column "{column}" has {int(np.isnan(values).sum())} missing value(s) in the '
                f"last window (the first at {_when(times[first])})"
            )
        outside = (values < lo) | (values > hi)
        if outside.any():
            hint = unit_hint(column, float(np.median(values)))
            if hint:
                raise InputError(f'column "{column}" {hint}')
            first = int(np.flatnonzero(outside)[0])
            raise InputError(
                f'column "{column}": {int(outside.sum())} value(s) outside the physical range '
                f"{lo:g}..{hi:g} in the last window (the first: {values[first]:g} at "
                f"{_when(times[first])})"
            )


# --------------------------------------------------------------------------- features


def feature_matrix(
    frame: pd.DataFrame, *, wind_vector: bool = False, time_features: bool = False
) -> tuple[np.ndarray, list[str]]:
    """The model's input columns.  # (rows, features)

    ``wind_vector`` replaces speed/max speed/direction by their x/y components (as TensorFlow's
    time-series tutorial does); ``time_features`` adds sin/cos of the time of day and of the year.
    The temperature stays at column 1, as in the book.
    """
    names = list(COLUMNS)
    cols = [frame[c].to_numpy(np.float64) for c in COLUMNS]
    if wind_vector:
        rad = np.deg2rad(frame["wd (deg)"].to_numpy(np.float64))
        wv, mwv = (
            frame["wv (m/s)"].to_numpy(np.float64),
            frame["max. wv (m/s)"].to_numpy(np.float64),
        )
        keep = [
            i for i, c in enumerate(COLUMNS) if c not in ("wv (m/s)", "max. wv (m/s)", "wd (deg)")
        ]
        cols = [cols[i] for i in keep]
        names = [names[i] for i in keep]
        cols += [wv * np.cos(rad), wv * np.sin(rad), mwv * np.cos(rad), mwv * np.sin(rad)]
        names += list(WIND_VECTOR)
    if time_features:
        if not isinstance(frame.index, pd.DatetimeIndex):
            raise InputError("time_features needs a record indexed by time")
        seconds = epoch_seconds(frame.index)
        for period in (SECONDS_PER_DAY, SECONDS_PER_YEAR):
            cols += [np.sin(2 * np.pi * seconds / period), np.cos(2 * np.pi * seconds / period)]
        names += list(TIME_FEATURES)
    assert names[TARGET_INDEX] == TARGET
    return np.stack(cols, axis=1), names


# --------------------------------------------------------------------------- the forecaster


def window_rows(data_config: Mapping[str, Any]) -> int:
    """Rows a model's window reads: from its first input row to its last one, inclusive."""
    return (int(data_config["sequence_length"]) - 1) * int(data_config["sampling_rate"]) + 1


@dataclass(frozen=True)
class RidgeRecipe:
    """The linear reference (:mod:`jena.linear`) as a ``residual = "ridge"`` model carries it:
    its coefficients and how it reads a record — the record's plain columns normalised with its
    training statistics at ``hours`` points ``step`` rows apart ending at the last input row,
    and sin/cos of the time of day and of the year at the target, ``horizon`` rows later — so
    the forecast (ridge + network) needs nothing of ``jena``."""

    coef: np.ndarray  # (hours * columns + 4,)
    intercept: float
    centre: np.ndarray  # the training features' means (the columns are centred)
    mean: np.ndarray  # (columns,): the plain columns' training statistics
    std: np.ndarray
    horizon: int  # rows from its last input row to the target
    hours: int = 24
    step: int = 6

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RidgeRecipe:
        arr = {k: np.asarray(d[k], dtype=np.float64) for k in ("coef", "centre", "mean", "std")}
        return cls(intercept=float(d["intercept"]), horizon=int(d["horizon"]),
                   hours=int(d.get("hours", 24)), step=int(d.get("step", 6)), **arr)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {"coef": self.coef.tolist(), "intercept": self.intercept,
                "centre": self.centre.tolist(), "mean": self.mean.tolist(),
                "std": self.std.tolist(), "horizon": self.horizon, "hours": self.hours,
                "step": self.step}  # fmt: skip

    @property
    def span(self) -> int:
        """Rows from its first input row to its last."""
        return (self.hours - 1) * self.step

    def predict(self, frame: pd.DataFrame, last: np.ndarray) -> np.ndarray:
        """Its forecasts (°C) of the targets ``horizon`` rows after each row ``last`` of
        ``frame`` (a record on the 10-minute grid, indexed by time).  # (w,)"""
        values, _ = feature_matrix(frame)
        x = (values - self.mean) / self.std
        rows = last[:, None] + np.arange(-self.span, 1, self.step)  # (w, hours)
        target = pd.DatetimeIndex(frame.index[last]) + self.horizon * STEP
        seconds = epoch_seconds(target)
        angles = [2 * np.pi * seconds / p for p in (SECONDS_PER_DAY, SECONDS_PER_YEAR)]
        cyc = np.column_stack([f(a) for a in angles for f in (np.sin, np.cos)])
        features = np.hstack([x[rows].reshape(len(last), -1), cyc])
        change = (features - self.centre) @ self.coef + self.intercept
        return frame[TARGET].to_numpy(np.float64)[last] + change


def duration(rows: int) -> str:
    """How long ``rows`` 10-minute records last: '23 h 10 min'."""
    hours, rest = divmod(rows * 10, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


@dataclass(frozen=True)
class Forecast:
    """One forecast from the window that ends at the last row of a record."""

    last_time: pd.Timestamp
    target_time: pd.Timestamp
    forecast: float  # °C
    persistence: float  # °C: the last temperature of the window
    rows_used: int
    invalid_rows: int = 0  # rows of the window that the loader synthesised inside a long gap
    intervals: tuple[tuple[float, float, float], ...] = ()  # (level, low, high) °C; main first

    def to_dict(self) -> dict[str, Any]:
        out = {
            "last_time": self.last_time.isoformat(),
            "target_time": self.target_time.isoformat(),
            "forecast": self.forecast,
            "persistence": self.persistence,
            "rows_used": self.rows_used,
            "invalid_rows": self.invalid_rows,
        }
        if self.intervals:
            level, low, high = self.intervals[0]
            out |= {"level": level, "low": low, "high": high}
            out["intervals"] = [{"level": lv, "low": lo, "high": hi}
                                for lv, lo, hi in self.intervals]  # fmt: skip
        return out

    def row(self) -> dict[str, Any]:
        """The registered model's answer: :data:`OUTPUT`, then :func:`interval_columns`."""
        out = {k: v for k, v in self.to_dict().items() if k in OUTPUT}
        if self.intervals:
            level, low, high = self.intervals[0]
            out |= {"level": level, "low": low, "high": high}
            for level, low, high in self.intervals[1:]:
                out |= {f"low_{level_key(level)}": low, f"high_{level_key(level)}": high}
        return out


def interval_columns(levels: Sequence[float]) -> tuple[str, ...]:
    """The answer's interval columns for a calibration at ``levels`` (main first): level, low,
    high, then low_80, high_80 … for each further level (none without a calibration)."""
    if not levels:
        return ()
    extra = [f"{side}_{level_key(lv)}" for lv in levels[1:] for side in ("low", "high")]
    return (*INTERVAL_OUTPUT, *extra)


class Forecaster:
    """One trained model — or several trained alike (seeds of one configuration), whose
    forecasts it averages — with their data configuration: from raw records to °C forecasts.

    Inputs are normalised with the statistics stored with the model (those of its training
    rows), never with statistics of the data it is applied to."""

    def __init__(
        self, model: keras.Model | Sequence[keras.Model], data_config: Mapping[str, Any]
    ) -> None:
        self.models: list[keras.Model] = list(model) if isinstance(model, list | tuple) else [model]
        if not self.models:
            raise ModelError("a forecaster needs at least one model")
        self.data_config = dict(data_config)
        cfg = self.data_config
        self.sampling_rate = int(cfg["sampling_rate"])
        self.sequence_length = int(cfg["sequence_length"])
        self.offset = int(cfg["offset"])
        self.mean = np.asarray(cfg["mean"], dtype=np.float64)
        self.std = np.asarray(cfg["std"], dtype=np.float64)
        self.normalised_target = bool(cfg["normalised_target"])
        self.target_index = int(cfg.get("target_index", TARGET_INDEX))
        self.wind_vector = bool(cfg.get("wind_vector", False))
        self.time_features = bool(cfg.get("time_features", False))
        self.feature_names = list(cfg.get("feature_names", []))
        trial = cfg.get("trial_config") or {}
        self.batch_size = int(trial.get("batch_size") or 256)
        self.ridge = RidgeRecipe.from_dict(cfg["ridge"]) if cfg.get("ridge") else None
        stored = cfg.get("calibration")
        try:
            self.calibration = Calibration.from_dict(stored) if stored else None
        except ValueError as exc:
            raise ModelError(str(exc)) from None

    @property
    def model(self) -> keras.Model:
        """The first (or only) member."""
        return self.models[0]

    def predict_members(self, x: Any, base: np.ndarray | None = None) -> np.ndarray:
        """Each member's forecasts (°C) of the windows ``x`` (an array or a PyDataset):
        (members, windows). ``base``: the ridge's forecasts of the same windows, which a
        ``residual = "ridge"`` model's output is added to (:meth:`ridge_forecasts`)."""
        return np.stack([self.to_celsius(m.predict(x, verbose=0), base) for m in self.models])

    def predict(self, x: Any, base: np.ndarray | None = None) -> np.ndarray:
        """The forecasts (°C) of the windows ``x``: the members' mean."""
        return self.predict_members(x, base).mean(axis=0)

    def ridge_forecasts(self, frame: pd.DataFrame, last: np.ndarray) -> np.ndarray | None:
        """The ridge's forecasts (°C) of the windows whose last input row is ``last`` in
        ``frame`` (None: the model adds nothing to its output).  # (w,)"""
        if self.ridge is None:
            return None
        return self.ridge.predict(frame, last + (self.offset - self.span) - self.ridge.horizon)

    @property
    def span(self) -> int:
        """Rows from a window's first input row to its last one."""
        return (self.sequence_length - 1) * self.sampling_rate

    @property
    def rows_needed(self) -> int:
        """Rows a forecast reads: the model's window, or the ridge's 24 hours where longer."""
        rows = window_rows(self.data_config)
        if self.ridge is not None:  # the ridge's first row, counted back from the last input
            rows = max(rows, self.ridge.span + 1 + self.ridge.horizon - (self.offset - self.span))
        return rows

    @property
    def lead(self) -> pd.Timedelta:
        """From the last input row to the forecast's target time (24 h for book2)."""
        return (self.offset - self.span) * STEP

    def features(self, frame: pd.DataFrame) -> np.ndarray:
        """Normalised model inputs (rows, features) float32, with the stored statistics."""
        values, names = feature_matrix(
            frame, wind_vector=self.wind_vector, time_features=self.time_features
        )
        if self.feature_names and names != self.feature_names:
            raise ModelError(
                f"the model expects the features {self.feature_names}, the data gives {names}"
            )
        if values.shape[1] != len(self.mean):
            raise ModelError(
                f"the model's statistics cover {len(self.mean)} features, the data has "
                f"{values.shape[1]}"
            )
        return ((values - self.mean) / self.std).astype(np.float32)

    def to_celsius(self, outputs: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
        """The model's outputs in °C (``base``: the ridge's forecasts they are added to)."""
        y = np.asarray(outputs, dtype=np.float64).reshape(-1)
        if self.ridge is not None:
            if base is None:
                raise ModelError("this model adds its output to the ridge's forecast: give it")
            scale = self.std[self.target_index] if self.normalised_target else 1.0
            return y * scale + np.asarray(base, dtype=np.float64).reshape(-1)
        if self.normalised_target:
            y = y * self.std[self.target_index] + self.mean[self.target_index]
        return y

    def window(self, x: np.ndarray, start: int) -> np.ndarray:
        """The window starting at row ``start`` of the normalised inputs: (1, steps, features)."""
        rows = start + np.arange(self.sequence_length) * self.sampling_rate
        return x[rows][None, ...]

    def forecast(
        self, frame: Any, valid: np.ndarray | None = None, *, source: str | None = None
    ) -> Forecast:
        """Forecast from the window that ends at the last row of ``frame``: the last rows of a
        Jena record (a :attr:`jena.data.Dataset.frame`, or rows as read from the CSV), indexed by
        time or with a ``Date Time`` column, on the 10-minute grid."""
        frame = record(frame)
        if len(frame) < self.rows_needed:
            where = f"{source}: " if source else ""
            raise InputError(
                f"{where}{len(frame):,} rows ({duration(len(frame))}) are too few for this model: "
                f"its window needs {self.rows_needed:,} rows ({duration(self.rows_needed)}) of "
                f"10-minute records ending at the last row ({self.sequence_length} steps every "
                f"{self.sampling_rate * 10} min"
                + (", and the ridge it adds to its 24 hourly points" if self.ridge else "")
                + ")"
            )
        start = len(frame) - self.rows_needed
        tail = frame.iloc[start:]
        check_window(tail)
        x = self.features(tail)
        first = self.rows_needed - window_rows(self.data_config)  # the window ends at the end
        base = self.ridge_forecasts(tail, np.array([len(tail) - 1]))
        forecast = float(self.predict(self.window(x, first), base)[0])
        temperature = tail[TARGET].to_numpy(np.float64)
        invalid = 0
        if valid is not None:
            invalid = int(np.sum(~np.asarray(valid, dtype=bool)[start:]))
        last_time = pd.Timestamp(tail.index[-1])
        target_time = last_time + self.lead
        return Forecast(
            last_time=last_time,
            target_time=target_time,
            forecast=forecast,
            persistence=float(temperature[-1]),
            rows_used=self.rows_needed,
            invalid_rows=invalid,
            intervals=self.intervals(target_time, forecast),
        )

    def intervals(
        self, target_time: pd.Timestamp, forecast: float
    ) -> tuple[tuple[float, float, float], ...]:
        """(level, low, high) of the stored calibration for one forecast (none without)."""
        cal = self.calibration
        if cal is None:
            return ()
        lows, highs = cal.bounds(pd.DatetimeIndex([target_time]), np.array([forecast]))
        pairs = zip(cal.levels, lows[:, 0], highs[:, 0], strict=True)
        return tuple((lv, float(lo), float(hi)) for lv, lo, hi in pairs)


# --------------------------------------------------------------------------- loading


def use_backend(wanted: str | None) -> str | None:
    """Make Keras load ``wanted`` (the backend the members were trained under) when it is
    imported: call it first. Returns why it could not (Keras already imported with another
    backend, or ``wanted`` not installed: the members then run on the backend Keras has, as a
    ``.keras`` file is backend-agnostic), else None."""
    if not wanted:
        return None
    if "keras" in sys.modules:
        have = str(sys.modules["keras"].backend.backend())
        if have == wanted:
            return None
        return (
            f"Keras is already imported with the {have} backend: the members, trained under "
            f"{wanted}, run under {have}"
        )
    try:
        found = importlib.util.find_spec(wanted) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        have = os.environ.get("KERAS_BACKEND") or "its default backend"
        return f"the members were trained under {wanted}, not installed here: Keras loads {have}"
    os.environ["KERAS_BACKEND"] = wanted
    return None


def load_members(files: Sequence[str | os.PathLike[str]]) -> list[keras.Model]:
    """Saved ``.keras`` members, loaded uncompiled, their custom layers from :mod:`.layers`."""
    import keras

    from .layers import CUSTOM_OBJECTS

    return [keras.saving.load_model(f, custom_objects=CUSTOM_OBJECTS, compile=False) for f in files]
