"""The repair policy and its report.

:func:`repair` takes a frame as :func:`jena.data.reading.read_csv` returns it (any order, maybe
duplicated or missing timestamps) and returns it on the full 10-minute grid, with a ``valid`` mask
and a :class:`RepairReport` counting everything it found and did:

1. Timestamps off the 10-minute grid are rounded to the nearest grid point (``off_grid``).
2. Rows out of order are sorted by time (stable sort; ``out_of_order`` counts the places where a
   timestamp is earlier than the one on the row before).
3. Duplicated timestamps: the first row (in file order) is kept; the others are dropped and
   counted as ``exact_duplicates`` (same values) or ``conflicting_duplicates`` (different values).
4. Missing values: sentinels (in every column any value <= :data:`SENTINEL_MAX` = -999, so
   ``-9999``, ``-9999.00``, ``-999.99``; in ``wv`` and ``max. wv`` also any negative value), any NaN
   in an input frame, and values outside the column's physical range
   (:data:`jena.schema.PHYSICAL_RANGES`, listed below; unless they are the bulk of the column:
   refused, below) are missing values, counted per column (``sentinels``,
   ``missing_values``, ``out_of_range``) and filled by time-linear interpolation (the nearest value
   at the ends of the record; ``0.0`` for a column with no value at all; the wind direction ``wd``
   is interpolated as a unit vector, so 350° and 10° give 0°, not 180°).
5. Missing timestamps: the frame is reindexed to the full 10-minute grid from the first to the
   last timestamp, and the inserted rows are filled by time-linear interpolation, so that
   positional sampling (``rows[5::6]``) stays on the hour. Runs of at most ``max_gap_rows``
   (:data:`MAX_GAP_ROWS` = 36 rows = 6 hours) are short gaps; rows in a longer run (a long
   timestamp gap, or a longer run of missing values in one column) are marked ``valid=False`` so
   that windows touching them can be excluded downstream.
6. Physical relations between the columns (:data:`RELATIONS`, below) are checked on the rows where
   every value involved was read (not missing): a row that breaks one is kept as read and marked
   ``valid=False`` (``relation_violations`` counts the rows per relation), because nothing says
   which of its values is wrong.

Refused (a one-line :class:`~jena.errors.DataError` naming the file, the column and what to do),
because interpolating would invent the bulk of a column: a column with more than
:data:`REFUSE_FRACTION` (10%) of its values outside the physical range (with a unit hint where the
median gives one away: temperatures in kelvin, ``Tpot`` in °C, pressure in Pa or kPa, density in
kg/m³), and a relation broken by more than 10% of the rows it can be checked on.

Physical ranges (inclusive; generous: the real file's minima and maxima, in
``shared/reference/jena-data.md``, lie well inside)::

    p (mbar)         800 .. 1100     station at ~155 m: real 913.6 .. 1015.35
    T (degC)         -60 .. 60       real -23.01 .. 37.28; a median of 173..373 reads as kelvin
    Tpot (K)         200 .. 350      real 250.6 .. 311.34 (legitimately kelvin)
    Tdew (degC)      -80 .. 60       real -25.01 .. 23.11
    rh (%)             0 .. 105      the station reports at most 100
    VPmax (mbar)       0 .. 200      Magnus at 60 °C is 199 mbar
    VPact (mbar)       0 .. 200
    VPdef (mbar)      -1 .. 200      VPmax - VPact (rounding)
    sh (g/kg)          0 .. 100      real max 18.13
    H2OC (mmol/mol)    0 .. 150      real max 28.82
    rho (g/m**3)     900 .. 1600     real 1059.45 .. 1393.54
    wv (m/s)           0 .. 100      real max 28.49
    max. wv (m/s)      0 .. 100      real max 23.5
    wd (deg)           0 .. 360      360 occurs in the real file

Relations (tolerances cover the two-decimal rounding with a wide margin)::

    Tpot  |Tpot - (T + 273.15) (1000 / p)^0.286| <= 5 K
    Tdew  Tdew <= T + 1 °C
    VPact VPact <= 1.05 VPmax + 0.05 mbar          (rh <= 105)
    rh    |rh - 100 VPact / VPmax| <= 5 points     (where VPmax >= 0.5 mbar)

``max. wv >= wv`` is not checked: the real file breaks it (its largest ``wv``, 28.49 m/s, is above
its largest ``max. wv``, 23.5 m/s).

Nothing else is dropped: ``input_rows - exact_duplicates - conflicting_duplicates + inserted_rows
== output_rows`` always holds. A frame without defects comes through unchanged: same values (bit
for bit), same order, all rows valid, and the report says nothing was found.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..errors import DataError
from ..schema import COLUMNS, DATE_COLUMN, PHYSICAL_RANGES, STEP, WIND_COLUMNS, unit_hint

__all__ = [
    "MAX_GAP_ROWS",
    "PHYSICAL_RANGES",
    "REFUSE_FRACTION",
    "RELATIONS",
    "RH_TOLERANCE",
    "SENTINEL_MAX",
    "TDEW_TOLERANCE",
    "TPOT_TOLERANCE",
    "TS_FORMAT",
    "Gap",
    "RepairReport",
    "ValueRun",
    "repair",
]

MAX_GAP_ROWS = 36  # 6 hours: longer runs of synthesised values are marked invalid
SENTINEL_MAX = -999.0  # any value <= this is a missing-value code (-9999, -999.99 ...)
REFUSE_FRACTION = 0.1  # more implausible values (or rows) than this: refuse, do not interpolate
# PHYSICAL_RANGES (jena.schema): see the module docstring
TPOT_TOLERANCE = 5.0  # K
TDEW_TOLERANCE = 1.0  # °C
RH_TOLERANCE = 5.0  # percentage points
RELATIONS: dict[str, tuple[str, ...]] = {  # name -> the columns it involves (see _relations)
    f"Tpot (K) = (T + 273.15) (1000 / p)^0.286 within {TPOT_TOLERANCE:g} K": (
        "Tpot (K)",
        "T (degC)",
        "p (mbar)",
    ),
    f"Tdew (degC) <= T (degC) + {TDEW_TOLERANCE:g}": ("Tdew (degC)", "T (degC)"),
    "VPact (mbar) <= 1.05 VPmax (mbar) + 0.05": ("VPact (mbar)", "VPmax (mbar)"),
    f"rh (%) = 100 VPact / VPmax within {RH_TOLERANCE:g}": (
        "rh (%)",
        "VPact (mbar)",
        "VPmax (mbar)",
    ),
}
TS_FORMAT = "%Y-%m-%d %H:%M:%S"  # how the report and info write timestamps
_STEP_NS = int(STEP.value)
_WIND_DIRECTION = "wd (deg)"
_WIND_INDEX = [COLUMNS.index(c) for c in WIND_COLUMNS]
_LOW = np.array([PHYSICAL_RANGES[c][0] for c in COLUMNS])
_HIGH = np.array([PHYSICAL_RANGES[c][1] for c in COLUMNS])

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Gap:
    """A run of missing grid timestamps, ``start`` and ``end`` inclusive."""

    start: str
    end: str
    rows: int


@dataclass(frozen=True)
class ValueRun:
    """A run of missing values (sentinels, NaN, values outside the physical range) longer than
    ``max_gap_rows`` in one column."""

    column: str
    start: str
    end: str
    rows: int


@dataclass(frozen=True)
class RepairReport:
    """What :func:`repair` found and did. Counts reconcile: see :attr:`reconciles`."""

    input_rows: int
    output_rows: int
    max_gap_rows: int = MAX_GAP_ROWS
    off_grid: int = 0
    out_of_order: int = 0
    exact_duplicates: int = 0
    conflicting_duplicates: int = 0
    conflict_examples: tuple[str, ...] = ()
    sentinels: dict[str, int] = field(default_factory=dict)
    missing_values: dict[str, int] = field(default_factory=dict)
    out_of_range: dict[str, int] = field(default_factory=dict)
    relation_violations: dict[str, int] = field(default_factory=dict)
    relation_examples: dict[str, str] = field(default_factory=dict)
    inserted_rows: int = 0
    short_gaps: int = 0
    short_gap_rows: int = 0
    long_gaps: tuple[Gap, ...] = ()
    long_value_runs: tuple[ValueRun, ...] = ()
    zero_filled: tuple[str, ...] = ()
    invalid_rows: int = 0

    @property
    def dropped_rows(self) -> int:
        return self.exact_duplicates + self.conflicting_duplicates

    @property
    def reconciles(self) -> bool:
        return self.input_rows - self.dropped_rows + self.inserted_rows == self.output_rows

    @property
    def clean(self) -> bool:
        """True when nothing was found (the data came through unchanged)."""
        return not self.defects()

    def defects(self) -> list[dict[str, Any]]:
        """Each defect found: ``{"defect", "count", "action"}`` (empty for a clean file)."""
        out: list[dict[str, Any]] = []

        def add(defect: str, count: int, action: str) -> None:
            if count:
                out.append({"defect": defect, "count": int(count), "action": action})

        add("timestamps off the 10-minute grid", self.off_grid, "rounded to the nearest grid point")
        add("timestamps out of order", self.out_of_order, "sorted by time")
        add("exact duplicate rows", self.exact_duplicates, "dropped")
        add(
            "duplicated timestamps with different values",
            self.conflicting_duplicates,
            "kept the first row, dropped the others",
        )
        for col, n in self.sentinels.items():
            if col in WIND_COLUMNS:
                add(f"wind sentinels (-9999 or < 0) in {col}", n, "interpolated in time")
            else:
                what = f"missing-value sentinels (<= -999, e.g. -9999) in {col}"
                add(what, n, "interpolated in time")
        for col, n in self.missing_values.items():
            add(f"missing values (NaN) in {col}", n, "interpolated in time")
        for col, n in self.out_of_range.items():
            lo, hi = PHYSICAL_RANGES[col]
            add(
                f"values outside the physical range of {col}",
                n,
                f"interpolated in time (range {lo:g}..{hi:g})",
            )
        for name, n in self.relation_violations.items():
            add(f"rows breaking {name}", n, "marked invalid (values kept)")
        add(
            f"short gaps (<= {self.max_gap_rows} rows)",
            self.short_gaps,
            f"{self.short_gap_rows} rows inserted and interpolated",
        )
        long_rows = sum(g.rows for g in self.long_gaps)
        add(
            f"long gaps (> {self.max_gap_rows} rows)",
            len(self.long_gaps),
            f"{long_rows} rows inserted, interpolated, marked invalid",
        )
        add(
            f"long runs of missing values (> {self.max_gap_rows} rows in one column)",
            len(self.long_value_runs),
            "interpolated and marked invalid",
        )
        add(
            "columns without any value",
            len(self.zero_filled),
            "filled with 0.0: " + ", ".join(self.zero_filled),
        )
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field plus the derived totals."""
        return {
            "input_rows": self.input_rows,
            "dropped_rows": self.dropped_rows,
            "inserted_rows": self.inserted_rows,
            "output_rows": self.output_rows,
            "invalid_rows": self.invalid_rows,
            "reconciles": self.reconciles,
            "clean": self.clean,
            "max_gap_rows": self.max_gap_rows,
            "off_grid": self.off_grid,
            "out_of_order": self.out_of_order,
            "exact_duplicates": self.exact_duplicates,
            "conflicting_duplicates": self.conflicting_duplicates,
            "conflict_examples": list(self.conflict_examples),
            "sentinels": dict(self.sentinels),
            "missing_values": dict(self.missing_values),
            "out_of_range": dict(self.out_of_range),
            "relation_violations": dict(self.relation_violations),
            "relation_examples": dict(self.relation_examples),
            "short_gaps": self.short_gaps,
            "short_gap_rows": self.short_gap_rows,
            "long_gaps": [vars(g).copy() for g in self.long_gaps],
            "long_value_runs": [vars(r).copy() for r in self.long_value_runs],
            "zero_filled": list(self.zero_filled),
        }

    def lines(self) -> list[str]:
        """A short human summary, one string per line."""
        head = (
            f"{self.input_rows:,} rows read - {self.dropped_rows:,} dropped"
            f" + {self.inserted_rows:,} inserted = {self.output_rows:,} rows"
            f" ({self.invalid_rows:,} marked invalid)"
        )
        found = self.defects()
        if not found:
            return [head, "no defects found: data used as is"]
        out = [head]
        out.extend(f"{d['defect']}: {d['count']:,} -> {d['action']}" for d in found)
        out.extend(f"  long gap {g.start} .. {g.end} ({g.rows} rows)" for g in self.long_gaps)
        out.extend(
            f"  long run of missing {r.column!r} {r.start} .. {r.end} ({r.rows} rows)"
            for r in self.long_value_runs
        )
        if self.conflict_examples:
            out.append("  conflicting duplicates at " + ", ".join(self.conflict_examples))
        out.extend(
            f"  first row breaking {name}: {when}" for name, when in self.relation_examples.items()
        )
        return out


# --------------------------------------------------------------------------- repair


def _runs(mask: BoolArray) -> tuple[IntArray, IntArray]:
    """Start and stop (exclusive) of each run of True in ``mask``."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _fmt(ns: int) -> str:
    return pd.Timestamp(ns).strftime(TS_FORMAT)


def _check_frame(frame: pd.DataFrame) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"expected a DataFrame, got {type(frame).__name__}")
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise DataError(
            f'the frame needs a DatetimeIndex named "{DATE_COLUMN}",'
            f" got {type(frame.index).__name__}"
        )
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError("the frame lacks column(s) " + ", ".join(f'"{c}"' for c in missing))
    if len(frame) == 0:
        raise DataError("the data has no rows")
    if frame.index.hasnans:
        raise DataError("the frame's index has missing timestamps (NaT)")


def _counts(mask: BoolArray) -> dict[str, int]:
    """``{column: count}`` of the True values in each column of ``mask``, nonzero counts only."""
    counts = np.count_nonzero(mask, axis=0)
    return {COLUMNS[j]: int(counts[j]) for j in np.flatnonzero(counts)}


def _range_refusal(where: str, col: str, read: FloatArray, n_bad: int) -> DataError:
    """The one-line error for a column with too many values outside its physical range."""
    lo, hi = PHYSICAL_RANGES[col]
    median = float(np.median(read))
    what = (
        f'{where}: column "{col}": {n_bad / len(read):.0%} of the values ({n_bad:,} of'
        f" {len(read):,}) are outside the physical range {lo:g}..{hi:g}"
    )
    hint = unit_hint(col, median)
    if hint:
        return DataError(f"{what}: {col} {hint} and load again")
    return DataError(
        f"{what} (median {median:.2f}; wrong unit or wrong column?): fix the column, or delete"
        f" the bad rows, and load again"
    )


def _relations(values: FloatArray) -> dict[str, tuple[BoolArray, int]]:
    """For each of :data:`RELATIONS` that some row breaks: those rows, and how many rows it was
    checked on (rows with every value involved present: NaN compares False, so it breaks none)."""
    col = {c: values[:, j] for j, c in enumerate(COLUMNS)}
    p, t, tpot, tdew = col["p (mbar)"], col["T (degC)"], col["Tpot (K)"], col["Tdew (degC)"]
    rh, vpmax, vpact = col["rh (%)"], col["VPmax (mbar)"], col["VPact (mbar)"]
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = (t + 273.15) * (1000.0 / p) ** 0.286
        breaks = (
            np.abs(tpot - expected) > TPOT_TOLERANCE,
            tdew > t + TDEW_TOLERANCE,
            vpact > 1.05 * vpmax + 0.05,
            (vpmax >= 0.5) & (np.abs(rh - 100.0 * vpact / vpmax) > RH_TOLERANCE),
        )
    out: dict[str, tuple[BoolArray, int]] = {}
    for (name, columns), bad in zip(RELATIONS.items(), breaks, strict=True):
        if bad.any():  # count the rows it was checked on only when it is broken
            present = ~np.isnan(values[:, [COLUMNS.index(c) for c in columns]]).any(axis=1)
            out[name] = (np.asarray(bad, dtype=bool), int(present.sum()))
    return out


@dataclass
class _Read:
    """The rows as read, on their way to the grid: times (ns), values, and what was found."""

    t: IntArray  # (rows,) ns since the epoch
    values: FloatArray  # (rows, columns)
    found: dict[str, Any] = field(default_factory=dict)  # RepairReport fields


def repair(
    frame: pd.DataFrame, *, max_gap_rows: int = MAX_GAP_ROWS, name: str | None = None
) -> tuple[pd.DataFrame, BoolArray, RepairReport]:
    """Repair ``frame`` (as from :func:`read_csv`) by the policy of the module docstring.

    Returns the frame on the full 10-minute grid (no NaN), the ``valid`` mask and the report.
    ``name`` (the file) starts the message of a :class:`DataError` for data that is refused.
    """
    where = name or "the data"
    _check_frame(frame)
    if max_gap_rows < 0:
        raise DataError(f"max_gap_rows must be >= 0, got {max_gap_rows}")
    index = pd.DatetimeIndex(frame.index)
    if index.tz is not None:
        index = index.tz_localize(None)
    rows = _Read(index.as_unit("ns").asi8.astype(np.int64, copy=True),
                 frame[list(COLUMNS)].to_numpy(dtype=np.float64, copy=True))  # fmt: skip
    _onto_grid(rows)  # 1
    _in_order(rows)  # 2
    _first_of_duplicates(rows)  # 3
    _missing_values(rows, where)  # 4
    broken = _broken_relations(rows, where)  # 4b
    grid = _Grid.of(rows, broken, max_gap_rows)  # 5
    grid.interpolate(rows.found)  # 6
    invalid = int((~grid.valid).sum())
    report = RepairReport(input_rows=len(frame), output_rows=grid.n, max_gap_rows=max_gap_rows,
                          **rows.found, **grid.found, invalid_rows=invalid)  # fmt: skip
    if not report.reconciles:  # pragma: no cover - an invariant of the code above
        raise AssertionError(f"repair counts do not reconcile: {report.to_dict()}")
    return grid.frame(), grid.valid, report


def _onto_grid(rows: _Read) -> None:
    """1. Off-grid timestamps → the nearest grid point."""
    off = (rows.t % _STEP_NS) != 0
    rows.found["off_grid"] = int(off.sum())
    if off.any():
        rows.t = ((rows.t + _STEP_NS // 2) // _STEP_NS) * _STEP_NS


def _in_order(rows: _Read) -> None:
    """2. Order: a stable sort keeps duplicates in file order."""
    descents = int((rows.t[1:] < rows.t[:-1]).sum())
    rows.found["out_of_order"] = descents
    if descents:
        order = np.argsort(rows.t, kind="stable")
        rows.t, rows.values = rows.t[order], rows.values[order]


def _first_of_duplicates(rows: _Read) -> None:
    """3. Duplicated timestamps: keep the first; count exact and conflicting copies."""
    t, values = rows.t, rows.values
    dup = np.concatenate(([False], t[1:] == t[:-1]))
    n_exact = n_conflict = 0
    examples: list[str] = []
    if dup.any():
        first = np.maximum.accumulate(np.where(dup, 0, np.arange(len(t))))
        a, b = values[dup], values[first[dup]]
        same = ((a == b) | (np.isnan(a) & np.isnan(b))).all(axis=1)
        n_exact, n_conflict = int(same.sum()), int((~same).sum())
        examples = [_fmt(int(x)) for x in np.unique(t[dup][~same])[:5]]
        rows.t, rows.values = t[~dup], values[~dup]
    rows.found.update(exact_duplicates=n_exact, conflicting_duplicates=n_conflict,
                      conflict_examples=tuple(examples))  # fmt: skip


def _missing_values(rows: _Read, where: str) -> None:
    """4. Missing values: NaN, sentinels (and negative wind), values outside the physical range
    (refused when they are the bulk of a column); all become NaN, to be interpolated."""
    values = rows.values
    nan = np.isnan(values)
    sentinel = values <= SENTINEL_MAX
    sentinel[:, _WIND_INDEX] |= values[:, _WIND_INDEX] < 0
    outside = ((values < _LOW) | (values > _HIGH)) & ~sentinel
    missing, sentinels, out_of_range = _counts(nan), _counts(sentinel), _counts(outside)
    for col, n_bad in out_of_range.items():
        j = COLUMNS.index(col)
        n_read = len(rows.t) - missing.get(col, 0) - sentinels.get(col, 0)
        if n_bad > REFUSE_FRACTION * n_read:
            raise _range_refusal(where, col, values[~(nan[:, j] | sentinel[:, j]), j], n_bad)
    if sentinels or out_of_range:
        values[sentinel | outside] = np.nan
    rows.found.update(sentinels=sentinels, missing_values=missing, out_of_range=out_of_range)


def _broken_relations(rows: _Read, where: str) -> BoolArray:
    """4b. Physical relations on the rows where every value involved was read: the rows that
    break one (refused when they are the bulk of the rows it can be checked on)."""
    broken = np.zeros(len(rows.t), dtype=bool)
    violations: dict[str, int] = {}
    examples: dict[str, str] = {}
    for relation, (bad, checked) in _relations(rows.values).items():
        n_bad = int(bad.sum())
        first_at = _fmt(int(rows.t[np.argmax(bad)]))
        if n_bad > REFUSE_FRACTION * checked:
            columns = ", ".join(f'"{c}"' for c in RELATIONS[relation])
            raise DataError(
                f"{where}: columns {columns} are inconsistent: {n_bad / checked:.0%} of the rows"
                f" ({n_bad:,} of {checked:,}, the first at {first_at}) break {relation}; check the"
                f" units and the column names (swapped columns?) and fix the file"
            )
        violations[relation], examples[relation] = n_bad, first_at
        broken |= bad
    rows.found.update(relation_violations=violations, relation_examples=examples)
    return broken


@dataclass
class _Grid:
    """5. The rows on the full 10-minute grid from the first to the last timestamp."""

    start: int  # ns of the first row
    values: FloatArray  # (n, columns), NaN where nothing was read
    present: BoolArray  # (n,) a row was read there
    valid: BoolArray  # (n,)
    max_gap_rows: int
    found: dict[str, Any] = field(default_factory=dict)  # RepairReport fields

    @property
    def n(self) -> int:
        return len(self.present)

    @classmethod
    def of(cls, rows: _Read, broken: BoolArray, max_gap_rows: int) -> _Grid:
        start = int(rows.t[0])
        n = (int(rows.t[-1]) - start) // _STEP_NS + 1
        pos = (rows.t - start) // _STEP_NS
        present = np.zeros(n, dtype=bool)
        present[pos] = True
        values = rows.values
        if n != len(rows.t):
            values = np.full((n, len(COLUMNS)), np.nan)
            values[pos] = rows.values
        valid = np.ones(n, dtype=bool)
        valid[pos[broken]] = False
        grid = cls(start, values, present, valid, max_gap_rows)
        grid.mark_gaps()
        return grid

    def when(self, row: int) -> str:
        return _fmt(self.start + int(row) * _STEP_NS)

    def mark_gaps(self) -> None:
        """Inserted rows: runs longer than ``max_gap_rows`` are long gaps (invalid)."""
        inserted = self.n - int(self.present.sum())
        long_gaps: list[Gap] = []
        n_short = short_rows = 0
        if inserted:
            g0, g1 = _runs(~self.present)
            lengths = g1 - g0
            for s, e in zip(g0, g1, strict=True):
                if e - s > self.max_gap_rows:
                    self.valid[s:e] = False
                    long_gaps.append(Gap(self.when(s), self.when(e - 1), int(e - s)))
            short = lengths <= self.max_gap_rows
            n_short, short_rows = int(short.sum()), int(lengths[short].sum())
        self.found.update(inserted_rows=inserted, short_gaps=n_short, short_gap_rows=short_rows,
                          long_gaps=tuple(long_gaps))  # fmt: skip

    def interpolate(self, found: dict[str, Any]) -> None:
        """6. Every missing value, in time (the wind direction as a unit vector); a column with
        no value at all is 0.0 (and every row invalid); long runs of missing values are invalid."""
        long_runs: list[ValueRun] = []
        zero_filled: list[str] = []
        counted = {**found["sentinels"], **found["missing_values"], **found["out_of_range"]}
        x = np.arange(self.n, dtype=np.float64)
        for j, col in enumerate(COLUMNS):
            miss = np.isnan(self.values[:, j])
            if not miss.any():
                continue
            if miss.all():
                self.values[:, j] = 0.0
                zero_filled.append(col)
                self.valid[:] = False
                continue
            self.values[miss, j] = _interpolated(col, x[miss], x[~miss], self.values[~miss, j])
            if col in counted:
                long_runs += self._long_runs(col, miss)
        self.found.update(long_value_runs=tuple(long_runs), zero_filled=tuple(zero_filled))

    def _long_runs(self, col: str, miss: BoolArray) -> list[ValueRun]:
        out = []
        for s, e in zip(*_runs(miss), strict=True):
            if e - s > self.max_gap_rows and self.present[s:e].any():
                self.valid[s:e] = False
                out.append(ValueRun(col, self.when(s), self.when(e - 1), int(e - s)))
        return out

    def frame(self) -> pd.DataFrame:
        times = self.start + np.arange(self.n, dtype=np.int64) * _STEP_NS
        index = pd.DatetimeIndex(times.astype("datetime64[ns]"), name=DATE_COLUMN)
        return pd.DataFrame(self.values, index=index, columns=list(COLUMNS), copy=False)


def _interpolated(col: str, at: FloatArray, known: FloatArray, values: FloatArray) -> FloatArray:
    """Time-linear interpolation; the wind direction is circular: its unit vector is
    interpolated, not the angle (350° and 10° give 0°)."""
    if col != _WIND_DIRECTION:
        return np.interp(at, known, values)
    rad = np.deg2rad(values)
    sin, cos = np.interp(at, known, np.sin(rad)), np.interp(at, known, np.cos(rad))
    return np.mod(np.rad2deg(np.arctan2(sin, cos)), 360.0)
