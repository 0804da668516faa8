"""What the generator is tuned to (:func:`calibration`): the temperature's mean and std, the
book's 2nd-edition persistence baseline and a ridge regression that beats it, measured the same
way on a synthetic record and on the real file's figures (``shared/reference/jena-data.md``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..schema import ROWS_PER_DAY, ROWS_PER_HOUR, TARGET

FloatArray = npt.NDArray[np.float64]

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
