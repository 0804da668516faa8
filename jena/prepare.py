"""From a loaded record to normalised arrays and the windows of each split.

The CSV is read once; every trial reuses the same :class:`Prepared` arrays (one per feature
set), and builds only its own windows (sampling rate, sequence length) over them.

Test rows are not even in memory unless asked for (``include_test=True``): sweeps and training
cannot read them. Only ``jena best`` (one test evaluation) and ``jena baseline`` ask. Without
them the arrays stop at the first row of a final test segment (all of ``book2``'s and
``book1``'s test split) and a test segment inside the record (``blocked``) is blanked: NaN in
``x`` and ``temperature``, ``valid`` False, so row indices stay absolute and a window that read
one would be dropped (and, if it were not, its NaN would fail the trial loudly).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .data import Dataset
from .errors import ConfigError
from .forecasting import feature_matrix
from .schema import TARGET, TARGET_INDEX
from .splits import (
    Bounds,
    Mode,
    Split,
    SplitPreset,
    get_preset,
    normalisation,
    trusted,
    valid_starts,
)
from .windows import WindowDataset


@dataclass
class Prepared:
    """Normalised inputs, temperature in °C, split bounds: all a trial needs from the data."""

    source: str
    digest: str
    preset: SplitPreset
    rows: int  # rows of the whole record (split bounds are computed from it)
    bounds: Bounds
    x: np.ndarray  # (kept rows, features) float32, normalised with training statistics
    temperature: np.ndarray  # (kept rows,) float64, °C
    valid: np.ndarray  # (kept rows,) bool: False inside long gaps and blanked test rows
    index: pd.DatetimeIndex  # (kept rows,) the rows' times
    mean: np.ndarray  # (features,)
    std: np.ndarray  # (features,)
    feature_names: list[str]
    wind_vector: bool
    time_features: bool
    include_test: bool
    _target_cache: dict[tuple[int, bool, bool], np.ndarray] = field(default_factory=dict,
                                                                    repr=False)  # fmt: skip

    @property
    def features(self) -> int:
        return self.x.shape[1]

    @property
    def target_mean(self) -> float:
        return float(self.mean[TARGET_INDEX])

    @property
    def target_std(self) -> float:
        return float(self.std[TARGET_INDEX])

    def starts(
        self,
        split: Split,
        sampling_rate: int | None = None,
        sequence_length: int | None = None,
        mode: Mode | None = None,
    ) -> np.ndarray:
        """Absolute start rows of the windows of ``split`` (untrusted windows removed)."""
        if split == "test" and not self.include_test:
            raise ConfigError("the test split is not loaded here: only `jena best` evaluates on it")
        r = sampling_rate or self.preset.sampling_rate
        n = sequence_length or self.preset.sequence_length
        starts = self.preset.window_starts(
            self.rows, split, mode=mode, sampling_rate=r, sequence_length=n
        )
        offset = self.preset.offset(r, n)
        if starts[-1] + offset >= len(self.temperature):
            raise ConfigError(f"the {split} windows ({mode} mode) reach rows that are not loaded")
        if split == "train":
            return valid_starts(self.valid, starts, (n - 1) * r, offset)
        # Scored splits: a target counts when the preset's own window is trusted (jena.splits,
        # "Scored targets"), so every window keeps the same targets.
        p = self.preset
        own = starts + offset - p.offset()
        return starts[trusted(self.valid, own, (p.sequence_length - 1) * p.sampling_rate,
                              p.offset())]  # fmt: skip

    def scored_targets(self, split: Split, mode: Mode | None = None) -> np.ndarray:
        """The target rows ``split`` is scored on (the same for every window).  # (targets,)"""
        return self.starts(split, mode=mode) + self.preset.offset()

    def persistence_at(self, targets: np.ndarray) -> np.ndarray:
        """Persistence's absolute errors (°C) on the target rows ``targets``, from the preset's
        own window (its last row).  # (targets,)"""
        p = self.preset
        return self.persistence_errors(targets - p.offset(), p.sampling_rate, p.sequence_length)

    def targets(
        self, offset: int, normalised: bool | None = None, *, base: np.ndarray | None = None
    ) -> np.ndarray:
        """Targets aligned to window starts: ``targets(offset)[s]`` is the target of window ``s``.

        In °C, or normalised with the training statistics (``normalised``; default: the preset's).
        ``base``: a forecast per row the model's output is added to (``residual = "ridge"``):
        the targets are then ``temperature − base`` (scaled by the training std when
        normalised, not shifted), NaN where ``base`` is.
        """
        normalised = self.preset.normalised_target if normalised is None else normalised
        key = (offset, normalised, base is not None)
        if key not in self._target_cache:
            if base is None:
                t = self.temperature[offset:]
                t = (t - self.target_mean) / self.target_std if normalised else t
            else:
                t = (self.temperature - base)[offset:]
                t = t / self.target_std if normalised else t
            self._target_cache[key] = t.astype(np.float32)
        return self._target_cache[key]

    def windows(
        self,
        split: Split,
        *,
        sampling_rate: int | None = None,
        sequence_length: int | None = None,
        batch_size: int | None = None,
        shuffle: bool = False,
        seed: int | None = None,
        mode: Mode | None = None,
        limit: int | None = None,
    ) -> WindowDataset:
        r = sampling_rate or self.preset.sampling_rate
        n = sequence_length or self.preset.sequence_length
        return WindowDataset(
            self.x,
            self.targets(self.preset.offset(r, n)),
            self.starts(split, r, n, mode),
            sequence_length=n,
            sampling_rate=r,
            batch_size=batch_size or self.preset.batch_size,
            shuffle=shuffle,
            seed=seed,
            limit=limit,
        )

    def persistence_mae(
        self,
        split: Split,
        sampling_rate: int | None = None,
        sequence_length: int | None = None,
        mode: Mode | None = None,
    ) -> tuple[float, int]:
        """Persistence: the window's last temperature predicts the target. MAE in °C."""
        r = sampling_rate or self.preset.sampling_rate
        n = sequence_length or self.preset.sequence_length
        s = self.starts(split, r, n, mode)
        return float(np.mean(self.persistence_errors(s, r, n))), len(s)

    def persistence_errors(
        self, starts: np.ndarray, sampling_rate: int, sequence_length: int
    ) -> np.ndarray:
        """|last temperature of the window − target| (°C) of the windows at ``starts``: the one
        persistence computation (train, evaluate and the baselines use it)."""
        span = (sequence_length - 1) * sampling_rate
        offset = self.preset.offset(sampling_rate, sequence_length)
        return np.abs(self.temperature[starts + span] - self.temperature[starts + offset])

    def data_config(self) -> dict[str, Any]:
        """What a trained model needs to be used again: preset, features, normalisation."""
        return {
            "preset": self.preset.name,
            "source": self.source,
            "digest": self.digest,
            "rows": self.rows,
            "bounds": self.bounds.to_dict(),
            "feature_names": self.feature_names,
            "wind_vector": self.wind_vector,
            "time_features": self.time_features,
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "normalised_target": self.preset.normalised_target,
            "target_index": TARGET_INDEX,
        }


def prepare(
    ds: Dataset,
    preset: SplitPreset | str = "book2",
    *,
    wind_vector: bool = False,
    time_features: bool = False,
    include_test: bool = False,
) -> Prepared:
    """Normalise ``ds`` with statistics of its training rows; without ``include_test``, drop
    a final test segment and blank the others (see the module docstring)."""
    preset = get_preset(preset) if isinstance(preset, str) else preset
    rows = len(ds.frame)
    bounds = preset.bounds(rows)
    test = [] if include_test else [seg for seg in bounds.test_segments if seg[0] < seg[1]]
    keep = test[-1][0] if test and test[-1][1] == rows else rows
    frame = ds.frame.iloc[:keep]
    values, names = feature_matrix(frame, wind_vector=wind_vector, time_features=time_features)
    temperature = np.array(frame[TARGET], dtype=np.float64)  # a copy: blanked below
    valid = np.array(ds.valid[:keep], dtype=bool)
    for lo, hi in test:
        values[lo:hi], temperature[lo:hi], valid[lo:hi] = np.nan, np.nan, False
    mean, std = normalisation(values, bounds)
    x = ((values - mean) / std).astype(np.float32)
    return Prepared(
        source=ds.source,
        digest=ds.digest,
        preset=preset,
        rows=rows,
        bounds=bounds,
        x=x,
        temperature=temperature,
        valid=valid,
        index=pd.DatetimeIndex(frame.index),
        mean=mean,
        std=std,
        feature_names=names,
        wind_vector=wind_vector,
        time_features=time_features,
        include_test=include_test,
    )
