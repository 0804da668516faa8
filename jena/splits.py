"""Split presets of both editions, leakage-safe window ranges, normalisation statistics.

A window starting at row ``s`` reads rows ``s, s+r, ..., s+(L-1)r`` (r = sampling rate,
L = sequence length) and predicts the temperature at row ``s + offset``:

- ``book2`` (2nd ed.): ``offset = r (L + 24 - 1)``, i.e. 24 h after the last input row when r = 6;
  we keep the horizon at 144 rows (24 h) after the last input row for every r and L.
- ``book1`` (1st ed.): the generator's window ends one step before row ``i`` and the target is
  ``i + 144``, so ``offset = L r + 144`` (the target is 24 h + one step after the last input).

Window ranges per split (``mode``):

- ``"strict"`` (the default for train and val): every input row *and* the target row lie inside
  the split. Training never sees a validation row; validation never reads a test row.
- ``"book"``: exactly the book's windows (its inputs start inside the split, targets may reach up
  to 24 h into the next split; the 1st edition evaluates whole batches only). Used to check the
  persistence baseline against the book's own procedure. The default for test, where the book's
  windows already lie inside the test rows, so test figures are comparable with the book's.

Normalisation statistics come from the training rows only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .errors import ConfigError
from .schema import ROWS_PER_DAY

Split = Literal["train", "val", "test"]
Mode = Literal["strict", "book"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")
HORIZON = ROWS_PER_DAY  # 24 h of 10-minute rows
BOOK1_REFERENCE_ROWS = 420_551


@dataclass(frozen=True)
class Bounds:
    """Row ranges ``[start, stop)`` of the three splits."""

    train: tuple[int, int]
    val: tuple[int, int]
    test: tuple[int, int]

    def __getitem__(self, split: Split) -> tuple[int, int]:
        return {"train": self.train, "val": self.val, "test": self.test}[split]

    def to_dict(self) -> dict[str, list[int]]:
        return {s: list(self[s]) for s in SPLITS}


@dataclass(frozen=True)
class SplitPreset:
    """How one edition of the book splits, windows and batches the record."""

    name: str
    edition: int
    sampling_rate: int
    sequence_length: int
    batch_size: int
    normalised_target: bool  # 1st ed. trains on the normalised temperature
    description: str

    def offset(self, sampling_rate: int | None = None, sequence_length: int | None = None) -> int:
        """Rows from a window's first input row to its target row."""
        r = sampling_rate or self.sampling_rate
        n = sequence_length or self.sequence_length
        if self.edition == 1:
            return n * r + HORIZON
        return (n - 1) * r + HORIZON

    def bounds(self, rows: int) -> Bounds:
        """Split boundaries for a record of ``rows`` rows (scaled by fraction for short data)."""
        if self.edition == 2:
            n_train = int(0.5 * rows)
            n_val = int(0.25 * rows)
            return Bounds((0, n_train), (n_train, n_train + n_val), (n_train + n_val, rows))
        # 1st ed.: rows 0-200,000 / 200,001-300,000 / 300,001-end of 420,551 (row 200,000 unused).
        scale = rows / BOOK1_REFERENCE_ROWS
        a = round(200_000 * scale)
        b = round(300_000 * scale)
        return Bounds((0, a), (a + 1, b), (b + 1, rows))

    def window_range(
        self,
        rows: int,
        split: Split,
        *,
        mode: Mode | None = None,
        sampling_rate: int | None = None,
        sequence_length: int | None = None,
    ) -> tuple[int, int]:
        """Range ``[first, stop)`` of window start rows for ``split``.

        ``mode`` defaults to ``"strict"`` for train and val and to ``"book"`` for test (the
        book's test windows already lie wholly inside the test rows). Raises ConfigError if no
        window fits.
        """
        mode = mode or ("book" if split == "test" else "strict")
        r = sampling_rate or self.sampling_rate
        n = sequence_length or self.sequence_length
        lo, hi = self.bounds(rows)[split]
        offset = self.offset(r, n)
        span = (n - 1) * r  # first to last input row
        if mode == "strict":
            stop = hi - offset  # target row s + offset < hi, and offset > span
        elif self.edition == 2:
            # keras.utils.timeseries_dataset_from_array(raw[:-delay], temperature[delay:], ...,
            # start_index=lo, end_index=hi): starts s < hi - span, and s < rows - offset.
            stop = min(hi, rows - offset) - span
        else:
            # The 1st-ed. generator: window ends i in [lo + lookback, max_index), max_index =
            # hi for train/val and rows - delay - 1 for test; evaluation runs whole batches.
            lookback = n * r
            max_index = rows - HORIZON - 1 if split == "test" else hi
            stop = max_index - lookback
            if split != "train":
                count = max(stop - lo, 0) // self.batch_size * self.batch_size
                stop = lo + count
        if stop <= lo:
            hours = (n - 1) * r / 6
            raise ConfigError(
                f"a window of {n} steps every {r} rows ({hours:g} h of history) plus the 24 h "
                f"horizon does not fit the {split} split of {hi - lo} rows "
                f"({self.name}, {rows} rows "
                "in all): use a shorter sequence_length or sampling_rate, or more data"
            )
        return lo, stop


DATA_PRESETS: dict[str, SplitPreset] = {
    "book2": SplitPreset(
        name="book2",
        edition=2,
        sampling_rate=6,
        sequence_length=120,
        batch_size=256,
        normalised_target=False,
        description="2nd ed. ch. 10: rows 50/25/25, hourly points, 5 days of history, 24 h ahead",
    ),
    "book1": SplitPreset(
        name="book1",
        edition=1,
        sampling_rate=6,
        sequence_length=240,
        batch_size=128,
        normalised_target=True,
        description="1st ed. ch. 6: rows 0-200k/200k-300k/rest, lookback 1440, step 6, delay 144",
    ),
}


def get_preset(name: str) -> SplitPreset:
    try:
        return DATA_PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown data preset {name!r}: choose one of {', '.join(DATA_PRESETS)}"
        ) from None


def normalisation(values: np.ndarray, bounds: Bounds) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std per column over the training rows only.  # values: (rows, features)"""
    lo, hi = bounds.train
    train = values[lo:hi].astype(np.float64)
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std[std == 0] = 1.0  # a constant column stays constant, not NaN
    return mean, std


def valid_starts(valid: np.ndarray, starts: np.ndarray, span: int, offset: int) -> np.ndarray:
    """Keep the window starts whose input rows and target row are all trusted (``valid``)."""
    if valid.all():
        return starts
    bad = np.concatenate([[0], np.cumsum(~valid)])  # bad[i] = untrusted rows before row i
    ok = (bad[starts + span + 1] - bad[starts] == 0) & valid[starts + offset]
    return starts[ok]
