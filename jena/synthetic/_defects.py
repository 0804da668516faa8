"""The real file's known defects, injected into a synthetic record (:func:`inject_defects`): wind
sentinels, duplicated rows and days, short and long gaps, rows out of order — and what was
injected (:class:`DefectCounts`), for the loader's tests to reconcile against."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ..schema import ROWS_PER_DAY, WIND_SENTINEL

DEFECTS_ATTR = "defects"  # key of the DefectCounts in the attrs of inject_defects()'s result


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
