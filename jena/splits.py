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

- ``blocked[:DAYS[:ROLES]]`` (season-aware, any record): the record is cut into blocks of
  ``DAYS`` days (default 14) from its first row, assigned the roles ``ROLES`` in rotation
  (default ``train,train,val,test``); adjacent blocks of one role form one segment. Every window
  lies inside one segment (inputs and target), so none crosses into a block of another role.
  A role recurs every ``DAYS x len(ROLES)`` days (56 by default), so each split holds at least
  14 days of any stretch of 59 days or more (a whole season, or the January-February part of a
  calendar year's winter): every split covers every season of a record of a year or more, where
  a chronological split of a short record trains on some seasons, selects on another and tests
  on a third (:func:`season_note`). Blocks of 2 weeks lose the first 6 days of each block to
  window history (5 days of inputs + 24 h). The 2nd edition's windows and defaults (hourly,
  120 steps, batch 256).

Scored targets (:meth:`SplitPreset.targets`): validation and test are scored on target rows
that the split defines, not the model. They are the targets of the preset's own window (its
sampling rate and sequence length: 120 hourly steps for ``book2`` and ``blocked``, so the
first target of a part lies 858 rows, 6 days, after its first row; 240 steps for ``book1``),
and every configuration, refit seed, champion, the ridge, persistence and the book's models is
scored on exactly those rows: a window with less history simply reads less of it, a window
with more history reaches back before the part's first row. (A window that started where its
own history fits would score a longer window on fewer, later targets — 3 % apart in persistence
MAE between windows on a 200-day ``blocked`` record, more than most gaps a sweep ranks on.)
A window's extra history may read the rows before the part as far as they are rows the split
may read: a validation window never reads a test row (or a row before the record), a test
window reads any earlier row; otherwise it is refused in one line, before training, naming the
most history that fits. This leaks nothing the split holds apart: the rows read are inputs
from the past of the target (training or validation rows, which a forecaster in use has too);
no target row moves, so the gap between the last training target and the first validation
(or test) target stays the preset window's 6 days whatever the history; and training windows
are unchanged (each configuration's own, inside the training rows, so training never reads a
validation or test row). With the default ``blocked`` roles a validation block follows two
training blocks and a test block a validation block, so a validation window fits up to 33 days
(4,746 rows) of history.
Which targets count is decided by the preset's window only, including the trust check: a
target is scored when that window's rows and the target are trusted (not in a long gap of the
record); a longer history reading an interpolated row of a long gap reads its interpolated
values (finite), so the targets never depend on the model.

Normalisation statistics come from the training rows only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import pandas as pd

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
BLOCK_DAYS = 14  # blocked: default block length (a role recurs every 56 days: every season)
BLOCK_ROLES: tuple[Split, ...] = ("train", "train", "val", "test")
PRESET_HELP = "book2, book1 or blocked[:DAYS[:ROLES]] (e.g. blocked:28:train,train,val,test)"
SEASONS = {"winter": (12, 1, 2), "spring": (3, 4, 5), "summer": (6, 7, 8), "autumn": (9, 10, 11)}
SEASON_MIN_DAYS = 14  # a split covers a season when it holds at least this many of its days
Segment = tuple[int, int]


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
    """Row segments ``[start, stop)`` of the three splits, in row order: one per split for the
    chronological presets (``book2``, ``book1``), several for ``blocked``.

    ``bounds[split]`` and ``bounds.train`` / ``.val`` / ``.test`` give one range per split: the
    only segment, or the hull (first row, stop row) of several; :meth:`segments` gives them all.
    ``to_dict`` keeps the chronological form ``{split: [start, stop]}`` (stored with models);
    a blocked split is ``{split: [[start, stop], ...]}``."""

    train_segments: tuple[Segment, ...]
    val_segments: tuple[Segment, ...]
    test_segments: tuple[Segment, ...]

    @classmethod
    def ranges(cls, train: Segment, val: Segment, test: Segment) -> Bounds:
        """One segment per split (the chronological presets)."""
        return cls((train,), (val,), (test,))

    def segments(self, split: Split) -> tuple[Segment, ...]:
        return {"train": self.train_segments, "val": self.val_segments,
                "test": self.test_segments}[split]  # fmt: skip

    def __getitem__(self, split: Split) -> Segment:
        segs = self.segments(split)
        return (segs[0][0], segs[-1][1]) if segs else (0, 0)

    @property
    def train(self) -> Segment:
        return self["train"]

    @property
    def val(self) -> Segment:
        return self["val"]

    @property
    def test(self) -> Segment:
        return self["test"]

    @property
    def chronological(self) -> bool:
        return all(len(self.segments(s)) == 1 for s in SPLITS)

    def rows(self, split: Split) -> int:
        """Rows the split holds (all its segments)."""
        return sum(hi - lo for lo, hi in self.segments(split))

    def mask(self, split: Split, rows: int) -> np.ndarray:
        """True on the split's rows.  # (rows,) bool"""
        out = np.zeros(rows, dtype=bool)
        for lo, hi in self.segments(split):
            out[lo:hi] = True
        return out

    def to_dict(self) -> dict[str, list[Any]]:
        if self.chronological:
            return {s: list(self[s]) for s in SPLITS}
        return {s: [list(seg) for seg in self.segments(s)] for s in SPLITS}


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
    block_days: int | None = None  # blocked: days per block (None: a chronological split)
    roles: tuple[Split, ...] = ()  # blocked: the blocks' roles, in rotation

    @property
    def blocked(self) -> bool:
        return self.block_days is not None

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
        if self.block_days is not None:
            return self._blocks(rows, self.block_days * ROWS_PER_DAY)
        if self.edition == 2:
            n_train = int(0.5 * rows)
            n_val = int(0.25 * rows)
            return Bounds.ranges((0, n_train), (n_train, n_train + n_val), (n_train + n_val, rows))
        # 1st ed.: rows 0-200,000 / 200,001-300,000 / 300,001-end (row 200,000 unused).
        if not self.bounds_scaled(rows):
            return Bounds.ranges((0, BOOK1_TRAIN_STOP), BOOK1_VAL, (BOOK1_TEST_START, rows))
        scale = rows / BOOK1_REFERENCE_ROWS
        a = round(BOOK1_TRAIN_STOP * scale)
        b = round(BOOK1_VAL[1] * scale)
        return Bounds.ranges((0, a), (a + 1, b), (b + 1, rows))

    def _blocks(self, rows: int, block: int) -> Bounds:
        """Blocks of ``block`` rows from row 0, roles in rotation; a run of one role is one
        segment (the last block may be short)."""
        segs: dict[Split, list[Segment]] = {s: [] for s in SPLITS}
        for k, lo in enumerate(range(0, rows, block)):
            role, hi = self.roles[k % len(self.roles)], min(lo + block, rows)
            if segs[role] and segs[role][-1][1] == lo:
                segs[role][-1] = (segs[role][-1][0], hi)
            else:
                segs[role].append((lo, hi))
        return Bounds(*(tuple(segs[s]) for s in SPLITS))

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
        if self.blocked:
            raise ValueError(f"{self.name}: a split of several segments; use window_starts")
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
            raise self._no_window(rows, split, r, n, f"the {split} split of {hi - lo} rows")
        return lo, stop

    def _no_window(self, rows: int, split: Split, r: int, n: int, where: str) -> ConfigError:
        hours = (n - 1) * r / 6
        longer = ", or longer blocks (blocked:DAYS)" if self.blocked else ""
        return ConfigError(
            f"a window of {n} steps every {r} rows ({hours:g} h of history) plus the 24 h "
            f"horizon does not fit {where} ({self.name}, {rows} rows in all): use a shorter "
            f"sequence_length or sampling_rate, or more data{longer}"
        )

    def own_starts(
        self,
        rows: int,
        split: Split,
        *,
        mode: Mode | None = None,
        sampling_rate: int | None = None,
        sequence_length: int | None = None,
    ) -> np.ndarray:
        """Start rows of the windows of ``split`` that lie wholly inside it, ascending — the
        windows a configuration would have of its own (:meth:`window_range` for a chronological
        preset; for ``blocked``, every strict window of each segment, inputs and target inside
        it). Training uses these; validation and test are scored on :meth:`targets`. Raises
        ConfigError if none fits."""
        if not self.blocked:
            lo, stop = self.window_range(rows, split, mode=mode, sampling_rate=sampling_rate,
                                         sequence_length=sequence_length)  # fmt: skip
            return np.arange(lo, stop, dtype=np.int64)
        if mode == "book":
            raise ConfigError(f"{self.name}: the book's windows are book2's and book1's only")
        r = sampling_rate or self.sampling_rate
        n = sequence_length or self.sequence_length
        offset = self.offset(r, n)
        segs = self.bounds(rows).segments(split)
        starts = [np.arange(lo, hi - offset, dtype=np.int64) for lo, hi in segs]
        out = np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)
        if not len(out):
            longest = max((hi - lo for lo, hi in segs), default=0)
            raise self._no_window(rows, split, r, n, f"the {split} split's blocks ({longest} "
                                  "rows at most)")  # fmt: skip
        return out

    def targets(self, rows: int, split: Split, *, mode: Mode | None = None) -> np.ndarray:
        """The target rows ``split`` is scored on, ascending: those of the preset's own window
        (its sampling rate and sequence length; see "Scored targets" in the module docstring),
        whatever window a configuration has.  # (targets,) int"""
        if not self.blocked or mode == "book":
            return self.own_starts(rows, split, mode=mode) + self.offset()
        first = self.offset() / ROWS_PER_DAY
        if first >= (self.block_days or 0):  # blocked: no row of a block is a target
            raise ConfigError(
                f"{self.name}: the {split} targets start {self.offset()} rows ({first:.1f} "
                f"days: the preset's {(self.sequence_length - 1) * self.sampling_rate / 6:g} h "
                f"window + 24 h) into each block, so blocks of {self.block_days} days hold "
                f"none: use blocks of at least {math.ceil(first) + 1} days (blocked:DAYS)"
            )
        return self.own_starts(rows, split, mode=mode) + self.offset()

    def window_starts(
        self,
        rows: int,
        split: Split,
        *,
        mode: Mode | None = None,
        sampling_rate: int | None = None,
        sequence_length: int | None = None,
    ) -> np.ndarray:
        """Window start rows of ``split`` for a window of ``sequence_length`` steps every
        ``sampling_rate`` rows, ascending. Training: :meth:`own_starts` (a configuration trains
        on the windows of its own that fit the training rows). Validation and test: one window
        per target of :meth:`targets`, the same targets for every window; a window whose
        history would reach a row the split may not read (before the record, or a test row
        from a validation target) is refused with a ConfigError naming the most history that
        fits."""
        if split == "train":
            return self.own_starts(rows, split, mode=mode, sampling_rate=sampling_rate,
                                   sequence_length=sequence_length)  # fmt: skip
        r = sampling_rate or self.sampling_rate
        n = sequence_length or self.sequence_length
        targets = self.targets(rows, split, mode=mode)
        span = (n - 1) * r  # first to last input row
        last = targets - (self.offset(r, n) - span)  # each window's last input row
        reach = last - self._barrier(rows, split)[last] - 1  # rows it may read before `last`
        if span > reach.min():
            held = "a test row or " if split == "val" and self.blocked else ""
            raise ConfigError(
                f"a window of {n} steps every {r} rows ({span / 6:g} h of history) reaches "
                f"{held}before the record's first row from the first {split} targets "
                f"({self.name}, {rows} rows: every window is scored on the same {split} "
                f"targets, from {self.offset()} rows ({self.offset() / ROWS_PER_DAY:g} days) "
                f"into each part): use at most {int(reach.min()) // 6} h of history"
                + (", or longer blocks (blocked:DAYS)" if self.blocked else "")
            )
        return last - span

    def _barrier(self, rows: int, split: Split) -> np.ndarray:
        """For each row, the last row at or before it that ``split``'s windows may not read
        (-1: none): a validation window never reads a test row; a test window may read any
        earlier row.  # (rows,) int"""
        forbidden = np.full(rows, -1, dtype=np.int64)
        if split == "val":
            test = self.bounds(rows).mask("test", rows)
            forbidden[test] = np.flatnonzero(test)
        return np.maximum.accumulate(forbidden)


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


def blocked_preset(days: int = BLOCK_DAYS, roles: Sequence[Split] = BLOCK_ROLES) -> SplitPreset:
    """The season-aware split: blocks of ``days`` days in the rotation ``roles``, with the 2nd
    edition's windows. Named ``blocked`` with the defaults, else ``blocked:DAYS:ROLES``."""
    roles = tuple(roles)
    default = days == BLOCK_DAYS and roles == BLOCK_ROLES
    return SplitPreset(
        name="blocked" if default else f"blocked:{days}:{','.join(roles)}",
        edition=2,
        sampling_rate=6,
        sequence_length=120,
        batch_size=256,
        normalised_target=False,
        description=f"{days}-day blocks in rotation {', '.join(roles)} (every split in every "
        "season); hourly points, 5 days of history, 24 h ahead",
        block_days=days,
        roles=roles,
    )


DATA_PRESETS["blocked"] = blocked_preset()


def _parse_blocked(name: str) -> SplitPreset:
    """``blocked[:DAYS[:ROLES]]``: DAYS a whole number of days >= 1; ROLES comma-separated
    train / val / test, each at least once."""
    parts = name.split(":")
    if parts[0] != "blocked" or len(parts) > 3:
        raise ConfigError(f"unknown data preset {name!r}: choose {PRESET_HELP}")
    days = BLOCK_DAYS
    if len(parts) > 1:
        if not re.fullmatch(r"\d+", parts[1]) or int(parts[1]) < 1:
            raise ConfigError(
                f"data preset {name!r}: block length {parts[1]!r} is not a whole number of days "
                ">= 1 (blocked[:DAYS[:ROLES]])"
            )
        days = int(parts[1])
    roles: tuple[str, ...] = BLOCK_ROLES
    if len(parts) > 2:
        roles = tuple(r.strip() for r in parts[2].split(","))
        bad = [r for r in roles if r not in SPLITS]
        if bad:
            raise ConfigError(
                f"data preset {name!r}: role {bad[0]!r} is not train, val or test "
                "(ROLES: e.g. train,train,val,test)"
            )
        missing = [s for s in SPLITS if s not in roles]
        if missing:
            raise ConfigError(f"data preset {name!r}: the roles lack {missing[0]!r}: every "
                              "split needs a block")  # fmt: skip
    return blocked_preset(days, cast(tuple[Split, ...], roles))


def get_preset(name: str) -> SplitPreset:
    """The one entry point from a preset's name: ``book2``, ``book1`` or
    ``blocked[:DAYS[:ROLES]]`` (see the module docstring); a one-line ConfigError naming the
    bad part otherwise."""
    text = name.strip() if isinstance(name, str) else name
    if text in DATA_PRESETS:
        return DATA_PRESETS[text]
    if isinstance(text, str) and text.split(":")[0] == "blocked":
        return _parse_blocked(text)
    raise ConfigError(f"unknown data preset {name!r}: choose {PRESET_HELP}")


def normalisation(values: np.ndarray, bounds: Bounds) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std per column over the training rows only.  # values: (rows, features)"""
    train = np.concatenate([values[lo:hi] for lo, hi in bounds.train_segments]).astype(np.float64)
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std[std == 0] = 1.0  # a constant column stays constant, not NaN
    return mean, std


def trusted(valid: np.ndarray, starts: np.ndarray, span: int, offset: int) -> np.ndarray:
    """Whether each window's input rows and target row are all trusted (``valid``).
    # (windows,) bool"""
    if valid.all():
        return np.ones(len(starts), dtype=bool)
    bad = np.concatenate([[0], np.cumsum(~valid)])  # bad[i] = untrusted rows before row i
    return (bad[starts + span + 1] - bad[starts] == 0) & valid[starts + offset]


def valid_starts(valid: np.ndarray, starts: np.ndarray, span: int, offset: int) -> np.ndarray:
    """Keep the window starts whose input rows and target row are all trusted (``valid``)."""
    return starts[trusted(valid, starts, span, offset)]


def split_seasons(
    bounds: Bounds, index: pd.Index, min_days: float = SEASON_MIN_DAYS
) -> dict[Split, list[str]]:
    """The seasons (meteorological: winter = Dec-Feb, ...) each split holds at least
    ``min_days`` days of.  # index: the record's (rows,) times"""
    months = np.asarray(pd.DatetimeIndex(index).month)
    out: dict[Split, list[str]] = {}
    for split in SPLITS:
        held = months[bounds.mask(split, len(months))]
        out[split] = [
            season
            for season, in_season in SEASONS.items()
            if np.isin(held, in_season).sum() >= min_days * ROWS_PER_DAY
        ]
    return out


def season_note(preset: SplitPreset | str, index: pd.Index) -> str | None:
    """One line when a chronological split puts training, validation and test in different
    seasons (a record shorter than about three years: some split lacks a season another one
    holds), saying which and what to use instead; None otherwise (and for ``blocked``)."""
    preset = get_preset(preset) if isinstance(preset, str) else preset
    if preset.blocked or len(index) < 2:
        return None
    held = split_seasons(preset.bounds(len(index)), index)
    seen = {season for seasons in held.values() for season in seasons}
    if all(set(seasons) == seen for seasons in held.values()):
        return None
    times = pd.DatetimeIndex(index)
    years = (times[-1] - times[0]) / pd.Timedelta(days=365.25)
    names = {"train": "training", "val": "validation", "test": "test"}
    where = "; ".join(f"{names[s]} {', '.join(held[s]) or 'no whole season'}" for s in SPLITS)
    return (
        f"{preset.name} on a record of {years:.1f} years puts the splits in different seasons "
        f"({where}): validation and test then measure a change of season as much as a model "
        "(a chronological split needs about three years or more). Use --preset blocked "
        f"({BLOCK_DAYS}-day blocks in rotation {', '.join(BLOCK_ROLES)}: every split in every "
        "season)"
    )


AUTO_PRESET = "auto"  # no preset given: default_preset() chooses from the record


def default_preset(index: pd.Index) -> SplitPreset:
    """The split a record gets when no preset is given: the book's ``book2`` where its
    chronological split holds every season in each part (:func:`season_note` says nothing: about
    three years or more), else the season-aware ``blocked``.  # index: the record's (rows,) times"""
    book2 = DATA_PRESETS["book2"]
    return book2 if season_note(book2, index) is None else DATA_PRESETS["blocked"]


def default_preset_note(preset: SplitPreset, index: pd.Index) -> str:
    """The one line that says which split :func:`default_preset` chose for the record, and how
    to choose the other one ("a 1-year record: the season-aware `blocked` split; ...")."""
    times = pd.DatetimeIndex(index)
    years = (times[-1] - times[0]) / pd.Timedelta(days=365.25) if len(times) > 1 else 0.0
    text = f"{round(years, 1):g}"
    article = "an" if text.startswith("8") or text.split(".")[0] in ("11", "18") else "a"
    if preset.blocked:
        return (f"{article} {text}-year record: the season-aware `{preset.name}` split; "
                "`--preset book2` for the book's chronological one")  # fmt: skip
    return (f"{article} {text}-year record: the book's chronological `{preset.name}` split (every "
            "season in each part); `--preset blocked` for the season-aware one")  # fmt: skip
