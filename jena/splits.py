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
  to 24 h into the next split). Used to check the persistence baseline against the book's own
  procedure. The default for test, where the book's windows already lie inside the test rows, so
  test figures are comparable with the book's. For the 1st edition's val and test these are the
  distinct windows its ``evaluate_naive_method`` visits (:meth:`SplitPreset.book_batches`): the
  generator yields batches of 128 consecutive windows and starts again at its first row when
  ``i + batch_size >= max_index``, so ``test_steps`` repeats the first test batch once or twice;
  a range cannot repeat a batch, and the baseline weighs the repeats itself
  (:func:`jena.baseline.persistence`, ``test_book_mae``).

Split bounds (:meth:`SplitPreset.bounds`):

- ``book2``: ``int(0.5 N)`` / ``int(0.25 N)`` / the rest, as the 2nd edition's code computes them
  on any record of ``N`` rows.
- ``book1``: the 1st edition's absolute rows 0-200,000 / 200,001-300,000 / 300,001-end on every
  record long enough for them: ``N >= 300,001 + lookback + delay + 2 = 301,587`` rows (with the
  preset's lookback 1,440 = 240 x 6 and delay 144), the shortest record on which the book's test
  generator yields a window (``min_index + lookback < max_index = N - delay - 1``). On shorter
  records the bounds are scaled by ``N / 420,551`` (the real file's length);
  :meth:`SplitPreset.bounds_note` says so in one line.

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
BOOK1_REFERENCE_ROWS = 420_551  # the real file: book1 scales its bounds from it on short records
BOOK1_TRAIN_STOP = 200_000  # 1st ed.: train rows 0-200,000 (row 200,000 itself unused)
BOOK1_VAL = (200_001, 300_000)  # the val generator's min_index, max_index
BOOK1_TEST_START = 300_001  # the test generator's min_index (max_index: len - delay - 1)


@dataclass(frozen=True)
class BookBatches:
    """The batches the 1st edition's ``evaluate_naive_method`` draws from its generator.

    The generator (listing 6-33, ``shuffle=False``) yields ``distinct`` consecutive batches of
    ``size`` consecutive windows, the first window starting at row ``first`` (its generator row
    ``i = first + lookback``), then starts again at ``first``: batch ``j`` of the ``steps`` drawn
    (``val_steps`` / ``test_steps``) is batch ``j % distinct``. ``size`` is the batch size, or
    fewer windows when not one whole batch fits (the generator then yields the same short batch
    every time).
    """

    first: int
    size: int
    distinct: int
    steps: int

    @property
    def wrapped(self) -> int:
        """Batches drawn again after the generator wrapped around."""
        return max(self.steps - self.distinct, 0)

    @property
    def windows(self) -> int:
        """Windows drawn, repeats counted."""
        return self.steps * self.size if self.distinct else 0

    def draws(self) -> np.ndarray:
        """How often each distinct batch is drawn.  # (distinct,) int"""
        if not self.distinct:
            return np.zeros(0, dtype=np.int64)
        k = np.arange(self.distinct)
        return self.steps // self.distinct + (k < self.steps % self.distinct).astype(np.int64)

    def to_dict(self) -> dict[str, int]:
        return {
            "steps": self.steps,
            "distinct": self.distinct,
            "size": self.size,
            "wrapped": self.wrapped,
        }


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

    @property
    def absolute_min_rows(self) -> int | None:
        """Rows a record needs for the 1st edition's absolute bounds; None for ``book2``.

        ``300,001 + lookback + delay + 2`` (301,587 with lookback 1,440): the test generator's
        first window row ``i = 300,001 + lookback`` must lie below its ``max_index = rows - delay
        - 1``. Always the preset's own lookback: the bounds (and the training statistics) must
        not change with a trial's window.
        """
        if self.edition == 2:
            return None
        return BOOK1_TEST_START + self.sequence_length * self.sampling_rate + HORIZON + 2

    def bounds_scaled(self, rows: int) -> bool:
        """Whether ``bounds(rows)`` scales the 1st edition's absolute bounds by fraction."""
        minimum = self.absolute_min_rows
        return minimum is not None and rows < minimum

    def bounds_note(self, rows: int) -> str | None:
        """One line saying how the bounds were scaled, or None when the book's bounds apply."""
        if not self.bounds_scaled(rows):
            return None
        b = self.bounds(rows)
        lookback = self.sequence_length * self.sampling_rate
        return (
            f"{self.name}: the record has {rows:,} rows, fewer than the "
            f"{self.absolute_min_rows:,} (row {BOOK1_TEST_START:,} + one test window: lookback "
            f"{lookback:,} + delay {HORIZON} + 2) the 1st edition's absolute bounds need: bounds "
            f"scaled by {rows / BOOK1_REFERENCE_ROWS:.4f} ({rows:,} / {BOOK1_REFERENCE_ROWS:,} "
            f"rows): train {b.train[0]:,}–{b.train[1]:,}, val {b.val[0]:,}–{b.val[1]:,}, "
            f"test {b.test[0]:,}–{b.test[1]:,}"
        )

    def bounds(self, rows: int) -> Bounds:
        """Split boundaries for a record of ``rows`` rows (see the module docstring)."""
        if self.edition == 2:
            n_train = int(0.5 * rows)
            n_val = int(0.25 * rows)
            return Bounds((0, n_train), (n_train, n_train + n_val), (n_train + n_val, rows))
        # 1st ed.: rows 0-200,000 / 200,001-300,000 / 300,001-end (row 200,000 unused).
        if not self.bounds_scaled(rows):
            return Bounds((0, BOOK1_TRAIN_STOP), BOOK1_VAL, (BOOK1_TEST_START, rows))
        scale = rows / BOOK1_REFERENCE_ROWS
        a = round(BOOK1_TRAIN_STOP * scale)
        b = round(BOOK1_VAL[1] * scale)
        return Bounds((0, a), (a + 1, b), (b + 1, rows))

    def book_batches(
        self,
        rows: int,
        split: Split,
        *,
        sampling_rate: int | None = None,
        sequence_length: int | None = None,
    ) -> BookBatches:
        """The batches the 1st edition's ``evaluate_naive_method`` draws from ``split`` (val or
        test) of a record of ``rows`` rows, on ``bounds(rows)`` (the book's own, or scaled).

        ``val_steps = (max_index - min_index - lookback) // batch_size`` (max_index = the val
        split's end) and ``test_steps = (rows - min_index - lookback) // batch_size``, as the book
        computes them; the generator (``max_index = rows - delay - 1`` for test) holds
        ``(max_index - min_index - lookback - 1) // batch_size`` whole batches before it wraps.
        """
        if self.edition != 1 or split == "train":
            raise ValueError(f"book_batches is for the 1st edition's val and test, not {split}")
        r = sampling_rate or self.sampling_rate
        n = sequence_length or self.sequence_length
        lookback = n * r
        bs = self.batch_size
        lo, hi = self.bounds(rows)[split]
        max_index = rows - HORIZON - 1 if split == "test" else hi
        steps = max((hi if split == "val" else rows) - lo - lookback, 0) // bs
        i0 = lo + lookback  # the generator's first row i
        whole = max(max_index - i0 - 1, 0) // bs  # batches before `i + batch_size >= max_index`
        if whole:
            return BookBatches(first=lo, size=bs, distinct=whole, steps=steps)
        if max_index > i0:  # it resets every time and yields rows i0 .. max_index - 1
            return BookBatches(first=lo, size=max_index - i0, distinct=1, steps=steps)
        return BookBatches(first=lo, size=0, distinct=0, steps=steps)

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
        elif split == "train":
            # The 1st-ed. generator (shuffled): window ends i in [lo + lookback, hi).
            stop = hi - n * r
        else:
            # The distinct windows evaluate_naive_method visits (see book_batches).
            bb = self.book_batches(rows, split, sampling_rate=r, sequence_length=n)
            stop = lo + min(bb.steps, bb.distinct) * bb.size
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
