"""Serving: a trained model with its data configuration, from raw records to a °C forecast.

``jena predict`` (``jena.tracking.load_forecaster`` + :meth:`Forecaster.forecast`) and the
registered pyfunc (``jena.tracking.ForecastModel``) both use :class:`Forecaster`. Inputs are
normalised with the statistics stored with the model (those of its training rows), never with
statistics of the data it is applied to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .errors import ConfigError, DataError
from .prepare import feature_matrix
from .schema import DATE_COLUMN, DATE_FORMAT, STEP, TARGET, TARGET_INDEX

if TYPE_CHECKING:
    import keras

__all__ = ["Forecast", "Forecaster"]


@dataclass(frozen=True)
class Forecast:
    """One forecast from the window that ends at the last row of a record."""

    last_time: pd.Timestamp
    target_time: pd.Timestamp
    forecast: float  # °C
    persistence: float  # °C: the last temperature of the window
    rows_used: int
    invalid_rows: int = 0  # rows of the window that the loader synthesised inside a long gap

    def to_dict(self) -> dict[str, Any]:
        return {
            "last_time": self.last_time.isoformat(),
            "target_time": self.target_time.isoformat(),
            "forecast": self.forecast,
            "persistence": self.persistence,
            "rows_used": self.rows_used,
            "invalid_rows": self.invalid_rows,
        }


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
            raise ConfigError("a forecaster needs at least one model")
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

    @property
    def model(self) -> keras.Model:
        """The first (or only) member."""
        return self.models[0]

    def predict_members(self, x: Any) -> np.ndarray:
        """Each member's forecasts (°C) of the windows ``x`` (an array or a PyDataset):
        (members, windows)."""
        return np.stack([self.to_celsius(m.predict(x, verbose=0)) for m in self.models])

    def predict(self, x: Any) -> np.ndarray:
        """The forecasts (°C) of the windows ``x``: the members' mean."""
        return self.predict_members(x).mean(axis=0)

    @property
    def span(self) -> int:
        """Rows from a window's first input row to its last one."""
        return (self.sequence_length - 1) * self.sampling_rate

    @property
    def rows_needed(self) -> int:
        return self.span + 1

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
            raise ConfigError(
                f"the model expects the features {self.feature_names}, the data gives {names}"
            )
        if values.shape[1] != len(self.mean):
            raise ConfigError(
                f"the model's statistics cover {len(self.mean)} features, the data has "
                f"{values.shape[1]}"
            )
        return ((values - self.mean) / self.std).astype(np.float32)

    def to_celsius(self, outputs: np.ndarray) -> np.ndarray:
        y = np.asarray(outputs, dtype=np.float64).reshape(-1)
        if self.normalised_target:
            y = y * self.std[self.target_index] + self.mean[self.target_index]
        return y

    def window(self, x: np.ndarray, start: int) -> np.ndarray:
        """The window starting at row ``start`` of the normalised inputs: (1, steps, features)."""
        rows = start + np.arange(self.sequence_length) * self.sampling_rate
        return x[rows][None, ...]

    def forecast(
        self, frame: pd.DataFrame, valid: np.ndarray | None = None, *, source: str | None = None
    ) -> Forecast:
        """Forecast from the window that ends at the last row of ``frame`` (a repaired record
        on the 10-minute grid: a :attr:`jena.data.Dataset.frame`)."""
        frame = _as_record(frame)
        if len(frame) < self.rows_needed:
            where = f"{source}: " if source else ""
            raise DataError(
                f"{where}{len(frame):,} rows ({_hours(len(frame))}) are too few for this model: "
                f"its window needs {self.rows_needed:,} rows ({_hours(self.rows_needed)}) of "
                f"10-minute records ending at the last row ({self.sequence_length} steps every "
                f"{self.sampling_rate * 10} min)"
            )
        start = len(frame) - self.rows_needed
        tail = frame.iloc[start:]
        gaps = np.diff(pd.DatetimeIndex(tail.index).asi8)
        if len(gaps) and not np.all(gaps == STEP.value):
            raise DataError(
                "the last window is not on a regular 10-minute grid: load the file with "
                "jena.data.load (it repairs missing and duplicated timestamps)"
            )
        x = self.features(tail)
        forecast = float(self.predict(self.window(x, 0))[0])
        temperature = tail[TARGET].to_numpy(np.float64)
        invalid = 0
        if valid is not None:
            invalid = int(np.sum(~np.asarray(valid, dtype=bool)[start:]))
        last_time = pd.Timestamp(tail.index[-1])
        return Forecast(
            last_time=last_time,
            target_time=last_time + self.lead,
            forecast=forecast,
            persistence=float(temperature[-1]),
            rows_used=self.rows_needed,
            invalid_rows=invalid,
        )


def _hours(rows: int) -> str:
    minutes = rows * 10
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def _as_record(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame indexed by time: a DatetimeIndex, or a ``Date Time`` column (parsed)."""
    if isinstance(frame.index, pd.DatetimeIndex):
        return frame
    if DATE_COLUMN in frame.columns:
        times = frame[DATE_COLUMN]
        if not pd.api.types.is_datetime64_any_dtype(times):
            times = pd.to_datetime(times, format=DATE_FORMAT)
        return frame.drop(columns=[DATE_COLUMN]).set_index(pd.DatetimeIndex(times))
    raise DataError(f"the record needs a DatetimeIndex or a {DATE_COLUMN!r} column")
