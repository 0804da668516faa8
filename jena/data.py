"""Load the Jena climate record: the real file, a synthetic stand-in or any CSV in the Jena format.

``load(spec)`` accepts

* ``"jena"``: the real ``jena_climate_2009_2016.csv``, downloaded once into :func:`cache_dir`
  (``$JENA_DATA_DIR``, else ``$XDG_CACHE_HOME/jena`` or ``~/.cache/jena``) and verified (header,
  first data row, row count) every time it is used; a file (or the ``.zip``) already in the cache
  is used without any network access;
* ``"synthetic"``, ``"synthetic:ROWS"`` or ``"synthetic:ROWS:SEED"``: the stand-in of
  :func:`jena.synthetic.generate` (default 420,551 rows, seed 0);
* a path to a CSV file in the Jena format (see :mod:`jena.schema`).

Parsing (:func:`read_csv`) is strict: any problem is a :class:`~jena.errors.DataError` with a
one-line message naming the file, the 1-based line (the header is line 1), the column and what to
do. The file is parsed by pandas' C parser; line numbers are found afterwards by vectorised checks.

Repair policy (:func:`repair`; every count is in the :class:`RepairReport`):

1. Timestamps off the 10-minute grid are rounded to the nearest grid point (``off_grid``).
2. Rows out of order are sorted by time (stable sort; ``out_of_order`` counts the places where a
   timestamp is earlier than the one on the row before).
3. Duplicated timestamps: the first row (in file order) is kept; the others are dropped and
   counted as ``exact_duplicates`` (same values) or ``conflicting_duplicates`` (different values).
4. Wind sentinels (``-9999``, and any negative value, in ``wv`` and ``max. wv``) and any NaN in an
   input frame are missing values, filled by time-linear interpolation (the nearest value at the
   ends of the record; ``0.0`` for a column with no value at all; the wind direction ``wd`` is
   interpolated as a unit vector, so 350° and 10° give 0°, not 180°).
5. Missing timestamps: the frame is reindexed to the full 10-minute grid from the first to the
   last timestamp, and the inserted rows are filled by time-linear interpolation, so that
   positional sampling (``rows[5::6]``) stays on the hour. Runs of at most ``max_gap_rows``
   (:data:`MAX_GAP_ROWS` = 36 rows = 6 hours) are short gaps; rows in a longer run (a long
   timestamp gap, or a longer run of missing values in one column) are marked ``valid=False`` so
   that windows touching them can be excluded downstream.

Nothing else is dropped: ``input_rows - exact_duplicates - conflicting_duplicates + inserted_rows
== output_rows`` always holds. A file without defects comes through unchanged: same values (bit
for bit), same order, all rows valid, and the report says nothing was found.
"""

from __future__ import annotations

import csv
import hashlib
import http.client
import importlib
import itertools
import math
import os
import re
import shutil
import tempfile
import urllib.error
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from urllib.request import urlopen

import numpy as np
import numpy.typing as npt
import pandas as pd

from . import schema
from .errors import DataError
from .schema import (
    COLUMNS,
    DATE_COLUMN,
    HEADER_LINE,
    JENA_FILENAME,
    STEP,
    WIND_COLUMNS,
)

__all__ = [
    "DOWNLOAD_TIMEOUT",
    "JENA_URLS",
    "MAX_GAP_ROWS",
    "DataSpec",
    "Dataset",
    "Gap",
    "RepairReport",
    "ValueRun",
    "cache_dir",
    "fetch_jena",
    "info",
    "load",
    "parse_spec",
    "read_csv",
    "repair",
    "verify_jena_file",
]

JENA_URLS: tuple[str, ...] = (
    "https://s3.amazonaws.com/keras-datasets/jena_climate_2009_2016.csv.zip",
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/jena_climate_2009_2016.csv.zip",
)
JENA_ZIPNAME = JENA_FILENAME + ".zip"
DOWNLOAD_TIMEOUT = 60.0  # seconds without data before a download attempt is given up
MAX_GAP_ROWS = 36  # 6 hours: longer runs of synthesised values are marked invalid
DATE_HINT = "dd.mm.YYYY HH:MM:SS (e.g. 01.01.2009 00:10:00)"
_NFIELDS = 1 + len(COLUMNS)
_STEP_NS = int(STEP.value)
_TS_FORMAT = "%Y-%m-%d %H:%M:%S"
_WIND_DIRECTION = "wd (deg)"

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
    """A run of missing values (sentinels) longer than ``max_gap_rows`` in one column."""

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
            add(f"wind sentinels (-9999 or < 0) in {col}", n, "interpolated in time")
        for col, n in self.missing_values.items():
            add(f"missing values (NaN) in {col}", n, "interpolated in time")
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
        return out


# --------------------------------------------------------------------------- dataset


@dataclass(frozen=True, eq=False)
class Dataset:
    """A repaired record: ``frame`` (10-minute DatetimeIndex, the 14 float64 columns, no NaN),
    ``valid`` (False for rows synthesised inside a long gap), where it came from and the report."""

    frame: pd.DataFrame
    valid: BoolArray
    source: str
    report: RepairReport

    @cached_property
    def digest(self) -> str:
        """Short sha256 of the repaired index and values (identifies the data in tracking)."""
        h = hashlib.sha256(b"jena-data-v1\n")
        h.update("\x1f".join(map(str, self.frame.columns)).encode())
        index = pd.DatetimeIndex(self.frame.index).as_unit("ns")
        h.update(np.ascontiguousarray(index.asi8, dtype="<i8").tobytes())
        h.update(np.ascontiguousarray(self.frame.to_numpy(np.float64), dtype="<f8").tobytes())
        h.update(np.ascontiguousarray(self.valid, dtype=np.bool_).tobytes())
        return h.hexdigest()[:16]

    def __len__(self) -> int:
        return len(self.frame)


@dataclass(frozen=True)
class DataSpec:
    """A parsed ``--data`` value."""

    kind: Literal["jena", "synthetic", "csv"]
    rows: int = schema.JENA_ROWS
    seed: int = 0
    path: Path | None = None


_SPEC_HELP = (
    "use 'jena' (the real file), 'synthetic', 'synthetic:ROWS' or 'synthetic:ROWS:SEED'"
    " (e.g. synthetic:50000:1), or a path to a CSV file in the Jena format"
)


def parse_spec(spec: str | os.PathLike[str]) -> DataSpec:
    """Parse a data spec (see :func:`load`); raises :class:`DataError` for anything else."""
    if not isinstance(spec, str):
        return DataSpec("csv", path=Path(spec))
    text = spec.strip()
    if text == "jena":
        return DataSpec("jena")
    if text == "synthetic" or text.startswith("synthetic:"):
        parts = text.split(":")[1:]
        if len(parts) > 2 or not all(re.fullmatch(r"\d[\d_]*", p) for p in parts):
            raise DataError(f"bad data spec {spec!r}: {_SPEC_HELP}")
        rows = int(parts[0]) if parts else schema.JENA_ROWS
        seed = int(parts[1]) if len(parts) > 1 else 0
        if rows < 2:
            raise DataError(f"bad data spec {spec!r}: synthetic needs at least 2 rows")
        return DataSpec("synthetic", rows=rows, seed=seed)
    path = Path(text).expanduser()
    if text and (
        path.is_file()
        or text.lower().endswith((".csv", ".txt"))
        or os.sep in text
        or (os.altsep is not None and os.altsep in text)
    ):
        return DataSpec("csv", path=path)
    raise DataError(f"unknown data spec {spec!r}: {_SPEC_HELP}")


def load(
    spec: str | os.PathLike[str] = "jena",
    *,
    cache_dir: Path | None = None,
    download: bool = True,
    max_gap_rows: int = MAX_GAP_ROWS,
) -> Dataset:
    """Load, validate and repair the data named by ``spec`` (see the module docstring)."""
    parsed = parse_spec(spec)
    if parsed.kind == "jena":
        path = fetch_jena(cache_dir, download=download)
        frame = read_csv(path)
        source = "jena"
    elif parsed.kind == "synthetic":
        try:
            synthetic = importlib.import_module("jena.synthetic")
        except ImportError as exc:  # pragma: no cover - the module ships with the package
            raise DataError(f"synthetic data unavailable ({exc}); use --data jena") from exc
        try:
            frame = synthetic.generate(rows=parsed.rows, seed=parsed.seed)
        except ValueError as exc:
            raise DataError(f"bad data spec {spec!r}: {_one_line(exc)}") from exc
        source = f"synthetic(rows={parsed.rows}, seed={parsed.seed})"
    else:
        assert parsed.path is not None
        frame = read_csv(parsed.path)
        source = str(parsed.path)
    repaired, valid, report = repair(frame, max_gap_rows=max_gap_rows)
    return Dataset(frame=repaired, valid=valid, source=source, report=report)


# --------------------------------------------------------------------------- parsing


def _one_line(exc: BaseException | str) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _sniff(name: str, head: bytes) -> None:
    """Reject empty files and files that are clearly not a text CSV."""
    if not head.strip():
        raise DataError(
            f"{name}: the file is empty; expected a CSV in the Jena format"
            f" (write one with 'jena data synth' or use --data synthetic)"
        )
    if head.startswith(b"PK\x03\x04"):
        raise DataError(
            f"{name}: is a zip archive, not a CSV; extract {JENA_FILENAME} from it"
            f" and give that path"
        )
    if head.startswith(b"\x1f\x8b"):
        raise DataError(f"{name}: is gzip-compressed, not a CSV; decompress it first")
    if b"\x00" in head:
        raise DataError(f"{name}: is a binary file, not a CSV; give a CSV in the Jena format")
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        raise DataError(
            f"{name}: looks like an HTML/XML page, not a CSV (a failed download?);"
            f" give a CSV in the Jena format"
        )


def _check_header(name: str, first_line: str) -> list[str]:
    """The column names of the header line; DataError unless they are exactly the Jena columns."""
    line = first_line.lstrip("\ufeff").rstrip("\r\n")
    try:
        names = [c.strip() for c in next(csv.reader([line]))]
    except (csv.Error, StopIteration):
        names = []
    expected = (DATE_COLUMN, *COLUMNS)
    if sorted(names) == sorted(expected):
        return names
    if names and _parse_dates(pd.Series([names[0]]))[1].sum() == 0:
        raise DataError(
            f"{name}:1: no header line (line 1 is data); the first line must be the Jena header"
            f" {HEADER_LINE}"
        )
    if len(names) <= 1 and any(sep in line for sep in (";", "\t", "|")):
        raise DataError(
            f"{name}:1: the fields are not separated by ','; write the file as a comma-separated"
            f" CSV in the Jena format"
        )
    missing = [c for c in expected if c not in names]
    unexpected = [c for c in names if c not in expected]
    doubled = sorted({c for c in names if c in expected and names.count(c) > 1})
    parts = []
    if missing:
        parts.append("missing column(s) " + ", ".join(f'"{c}"' for c in missing))
    if unexpected:
        shown = unexpected[:5] + (["..."] if len(unexpected) > 5 else [])
        parts.append("unexpected column(s) " + ", ".join(f'"{c[:40]}"' for c in shown))
    if doubled:
        parts.append("repeated column(s) " + ", ".join(f'"{c}"' for c in doubled))
    raise DataError(
        f"{name}:1: header is not the Jena header: {'; '.join(parts)}; rename the columns to"
        f" the 15 Jena names ({HEADER_LINE})"
    )


def _parse_dates(strings: pd.Series) -> tuple[npt.NDArray[np.datetime64], BoolArray]:
    """Parse ``dd.mm.YYYY HH:MM:SS`` strings, vectorised; return (datetime64[ns], bad mask)."""
    n = len(strings)
    text = strings.fillna("").astype(object)
    try:
        raw = np.asarray(text, dtype="S20")
    except UnicodeEncodeError:  # non-ASCII somewhere: replace it by "?", which fails the checks
        raw = np.asarray(text.map(lambda x: str(x).encode("ascii", "replace")), dtype="S20")
    b = np.ascontiguousarray(raw).view(np.uint8).reshape(n, 20)
    d = b[:, [0, 1, 3, 4, 6, 7, 8, 9, 11, 12, 14, 15, 17, 18]].astype(np.int64) - 48
    ok = ((d >= 0) & (d <= 9)).all(axis=1)
    for pos, char in ((2, "."), (5, "."), (10, " "), (13, ":"), (16, ":")):
        ok &= b[:, pos] == ord(char)
    ok &= b[:, 19] == 0
    d = np.where(ok[:, None], d, 0)
    day = d[:, 0] * 10 + d[:, 1]
    month = d[:, 2] * 10 + d[:, 3]
    year = d[:, 4] * 1000 + d[:, 5] * 100 + d[:, 6] * 10 + d[:, 7]
    hour = d[:, 8] * 10 + d[:, 9]
    minute = d[:, 10] * 10 + d[:, 11]
    second = d[:, 12] * 10 + d[:, 13]
    ok &= (month >= 1) & (month <= 12) & (day >= 1) & (hour <= 23) & (minute <= 59)
    ok &= (second <= 59) & (year >= 1700) & (year <= 2200)  # inside datetime64[ns]
    months = np.where(ok, (year - 1970) * 12 + month - 1, 0).astype("datetime64[M]")
    first_day = months.astype("datetime64[D]")
    month_days = ((months + 1).astype("datetime64[D]") - first_day).astype(np.int64)
    ok &= day <= month_days
    seconds = np.where(ok, (day - 1) * 86_400 + hour * 3600 + minute * 60 + second, 0)
    values = (first_day.astype("datetime64[s]") + seconds).astype("datetime64[ns]")
    return values, ~ok


def _line_text(path: Path, lineno: int) -> str:
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        for line in itertools.islice(f, lineno - 1, lineno):
            return line.rstrip("\r\n")
    return ""


def _fields(line: str) -> list[str]:
    try:
        return next(csv.reader([line]))
    except (csv.Error, StopIteration):
        return line.split(",")


def _field_count_error(name: str, lineno: int, line: str, last: bool) -> DataError:
    n = len(_fields(line))
    what = "a damaged line, or a ',' in a value?"
    if last and n < _NFIELDS:
        what = "truncated last line?"
    return DataError(
        f"{name}:{lineno}: expected {_NFIELDS} comma-separated fields, found {n} ({what});"
        f" fix or delete the line"
    )


def _find_long_line(path: Path, name: str) -> DataError:
    """After pandas' 'too many fields' error: find the first line with too many fields."""
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        for lineno, line in enumerate(f, start=1):
            if lineno > 1 and len(_fields(line.rstrip("\r\n"))) > _NFIELDS:
                return _field_count_error(name, lineno, line.rstrip("\r\n"), last=False)
    return DataError(f"{name}: malformed CSV (rows with too many fields); fix the file")


def read_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Parse a CSV in the Jena format strictly, as is (no repair).

    Returns a frame indexed by a DatetimeIndex named ``"Date Time"`` (file order) with the 14
    columns of :data:`jena.schema.COLUMNS` as float64. Raises :class:`DataError` with a one-line
    message (file:line, column, what to do) for anything that is not such a file.
    """
    p = Path(path)
    name = str(path)
    if not p.exists():
        raise DataError(f"{name}: no such file; {_SPEC_HELP}")
    if p.is_dir():
        raise DataError(f"{name}: is a directory, not a CSV file; {_SPEC_HELP}")
    try:
        with p.open("rb") as f:
            head = f.read(1 << 16)
    except OSError as exc:
        raise DataError(f"{name}: cannot read the file: {_one_line(exc)}") from exc
    _sniff(name, head)
    first = head.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    names = _check_header(name, first)
    try:
        df = pd.read_csv(
            p,
            header=0,
            dtype={DATE_COLUMN: str},
            keep_default_na=False,
            na_values=[""],
            skip_blank_lines=False,
            encoding="utf-8",
            engine="c",
            low_memory=False,
        )
    except pd.errors.ParserError as exc:
        raise _find_long_line(p, name) from exc
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{name}: is not UTF-8 text (byte {exc.start}); give a CSV in the Jena format"
        ) from exc
    except (pd.errors.EmptyDataError, OSError, ValueError) as exc:
        raise DataError(f"{name}: cannot parse the CSV: {_one_line(exc)}") from exc
    df.columns = pd.Index(names)

    # Trailing blank lines (all fields empty) are harmless: drop them.
    blank = np.asarray(df.isna().all(axis=1), dtype=bool)
    n = len(df)
    while n and blank[n - 1]:
        n -= 1
    if n < len(df):
        df = df.iloc[:n]
    if n == 0:
        raise DataError(
            f"{name}: has a header but no data rows; expected one line per 10 minutes after it"
        )

    dates, bad_date = _parse_dates(df[DATE_COLUMN])
    values = np.empty((n, len(COLUMNS)), dtype=np.float64)
    bad_any = bad_date.copy()
    bad_cols: dict[str, BoolArray] = {}
    for j, col in enumerate(COLUMNS):
        s = df[col]
        if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
            v = s.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            v = pd.to_numeric(s.astype(object), errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan
            )
        values[:, j] = v
        bad = ~np.isfinite(v)
        if bad.any():
            bad_cols[col] = bad
            bad_any |= bad
    if bad_any.any():
        raise _row_error(p, name, df, int(np.argmax(bad_any)), bad_date, bad_cols, n)

    index = pd.DatetimeIndex(dates, name=DATE_COLUMN)
    return pd.DataFrame(values, index=index, columns=list(COLUMNS), copy=False)


def _row_error(
    p: Path,
    name: str,
    df: pd.DataFrame,
    row: int,
    bad_date: BoolArray,
    bad_cols: dict[str, BoolArray],
    n: int,
) -> DataError:
    """The one-line error for the first bad row ``row`` (file line ``row + 2``)."""
    lineno = row + 2
    raw = _line_text(p, lineno)
    if not raw.strip():
        return DataError(f"{name}:{lineno}: empty line in the data; delete it")
    if len(_fields(raw)) != _NFIELDS:
        return _field_count_error(name, lineno, raw, last=row == n - 1)
    if bad_date[row]:
        value = df[DATE_COLUMN].iloc[row]
        shown = "" if pd.isna(value) else str(value)
        return DataError(
            f'{name}:{lineno}: column "{DATE_COLUMN}": bad date {shown!r}, expected {DATE_HINT};'
            f" fix the value or delete the line"
        )
    for col in COLUMNS:
        if col in bad_cols and bad_cols[col][row]:
            value = df[col].iloc[row]
            if pd.isna(value):
                return DataError(
                    f'{name}:{lineno}: column "{col}": empty value; every field must be a number,'
                    f" fix the value or delete the line"
                )
            return DataError(
                f'{name}:{lineno}: column "{col}": not a finite number: {str(value)[:40]!r};'
                f" write numbers with '.' as decimal point, fix the value or delete the line"
            )
    return DataError(f"{name}:{lineno}: malformed line; fix or delete it")  # pragma: no cover


# --------------------------------------------------------------------------- repair


def _runs(mask: BoolArray) -> tuple[IntArray, IntArray]:
    """Start and stop (exclusive) of each run of True in ``mask``."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _fmt(ns: int) -> str:
    return pd.Timestamp(ns).strftime(_TS_FORMAT)


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


def repair(
    frame: pd.DataFrame, *, max_gap_rows: int = MAX_GAP_ROWS
) -> tuple[pd.DataFrame, BoolArray, RepairReport]:
    """Repair ``frame`` (as from :func:`read_csv`) by the policy of the module docstring.

    Returns the frame on the full 10-minute grid (no NaN), the ``valid`` mask and the report.
    """
    _check_frame(frame)
    if max_gap_rows < 0:
        raise DataError(f"max_gap_rows must be >= 0, got {max_gap_rows}")
    n_in = len(frame)
    index = pd.DatetimeIndex(frame.index)
    if index.tz is not None:
        index = index.tz_localize(None)
    t: IntArray = index.as_unit("ns").asi8.astype(np.int64, copy=True)
    values: FloatArray = frame[list(COLUMNS)].to_numpy(dtype=np.float64, copy=True)

    # 1. off-grid timestamps -> nearest grid point
    off = (t % _STEP_NS) != 0
    n_off = int(off.sum())
    if n_off:
        t = ((t + _STEP_NS // 2) // _STEP_NS) * _STEP_NS

    # 2. order: stable sort keeps duplicates in file order
    n_descents = int((t[1:] < t[:-1]).sum())
    if n_descents:
        order = np.argsort(t, kind="stable")
        t, values = t[order], values[order]

    # 3. duplicated timestamps: keep the first
    dup = np.concatenate(([False], t[1:] == t[:-1]))
    n_exact = n_conflict = 0
    examples: list[str] = []
    if dup.any():
        positions = np.arange(len(t))
        first = np.maximum.accumulate(np.where(dup, 0, positions))
        a, b = values[dup], values[first[dup]]
        same = ((a == b) | (np.isnan(a) & np.isnan(b))).all(axis=1)
        n_exact = int(same.sum())
        n_conflict = int((~same).sum())
        conflict_times = np.unique(t[dup][~same])
        examples = [_fmt(int(x)) for x in conflict_times[:5]]
        t, values = t[~dup], values[~dup]

    # 4. missing values: wind sentinels / negative wind, NaN
    sentinels: dict[str, int] = {}
    missing_values: dict[str, int] = {}
    for j, col in enumerate(COLUMNS):
        nan = np.isnan(values[:, j])
        if nan.any():
            missing_values[col] = int(nan.sum())
        if col in WIND_COLUMNS:
            neg = values[:, j] < 0
            if neg.any():
                sentinels[col] = int(neg.sum())
                values[neg, j] = np.nan

    # 5. reindex to the full grid
    start = int(t[0])
    n_out = (int(t[-1]) - start) // _STEP_NS + 1
    pos = (t - start) // _STEP_NS
    present = np.zeros(n_out, dtype=bool)
    present[pos] = True
    if n_out == len(t):
        full = values
    else:
        full = np.full((n_out, len(COLUMNS)), np.nan)
        full[pos] = values
    inserted = n_out - len(t)

    valid = np.ones(n_out, dtype=bool)
    long_gaps: list[Gap] = []
    n_short = short_rows = 0
    if inserted:
        g0, g1 = _runs(~present)
        lengths = g1 - g0
        for s, e in zip(g0, g1, strict=True):
            if e - s > max_gap_rows:
                valid[s:e] = False
                long_gaps.append(
                    Gap(
                        _fmt(start + int(s) * _STEP_NS),
                        _fmt(start + int(e - 1) * _STEP_NS),
                        int(e - s),
                    )
                )
        short = lengths <= max_gap_rows
        n_short, short_rows = int(short.sum()), int(lengths[short].sum())

    # 6. interpolate every missing value in time; long runs of missing values are invalid
    long_runs: list[ValueRun] = []
    zero_filled: list[str] = []
    if sentinels or missing_values or inserted:
        x = np.arange(n_out, dtype=np.float64)
        for j, col in enumerate(COLUMNS):
            miss = np.isnan(full[:, j])
            if not miss.any():
                continue
            if miss.all():
                full[:, j] = 0.0
                zero_filled.append(col)
                valid[:] = False
                continue
            known = ~miss
            if col == _WIND_DIRECTION:  # circular: interpolate the unit vector, not the angle
                rad = np.deg2rad(full[known, j])
                sin = np.interp(x[miss], x[known], np.sin(rad))
                cos = np.interp(x[miss], x[known], np.cos(rad))
                full[miss, j] = np.mod(np.rad2deg(np.arctan2(sin, cos)), 360.0)
            else:
                full[miss, j] = np.interp(x[miss], x[known], full[known, j])
            if col in sentinels or col in missing_values:
                r0, r1 = _runs(miss)
                for s, e in zip(r0, r1, strict=True):
                    if e - s > max_gap_rows and present[s:e].any():
                        valid[s:e] = False
                        long_runs.append(
                            ValueRun(
                                col,
                                _fmt(start + int(s) * _STEP_NS),
                                _fmt(start + int(e - 1) * _STEP_NS),
                                int(e - s),
                            )
                        )

    out_index = pd.DatetimeIndex(
        (start + np.arange(n_out, dtype=np.int64) * _STEP_NS).astype("datetime64[ns]"),
        name=DATE_COLUMN,
    )
    out = pd.DataFrame(full, index=out_index, columns=list(COLUMNS), copy=False)
    report = RepairReport(
        input_rows=n_in,
        output_rows=n_out,
        max_gap_rows=max_gap_rows,
        off_grid=n_off,
        out_of_order=n_descents,
        exact_duplicates=n_exact,
        conflicting_duplicates=n_conflict,
        conflict_examples=tuple(examples),
        sentinels=sentinels,
        missing_values=missing_values,
        inserted_rows=inserted,
        short_gaps=n_short,
        short_gap_rows=short_rows,
        long_gaps=tuple(long_gaps),
        long_value_runs=tuple(long_runs),
        zero_filled=tuple(zero_filled),
        invalid_rows=int((~valid).sum()),
    )
    if not report.reconciles:  # pragma: no cover - an invariant of the code above
        raise AssertionError(f"repair counts do not reconcile: {report.to_dict()}")
    return out, valid, report


# --------------------------------------------------------------------------- the real file


def _user_cache_dir() -> Path:
    env = os.environ.get("JENA_DATA_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "jena"


def cache_dir() -> Path:
    """Where the real file lives: ``$JENA_DATA_DIR``, else ``$XDG_CACHE_HOME/jena`` or
    ``~/.cache/jena``."""
    return _user_cache_dir()


def _place_hint(folder: Path) -> str:
    return (
        f"put {JENA_FILENAME} (or {JENA_ZIPNAME}) in {folder} by hand"
        f" (or set JENA_DATA_DIR to a folder holding it), or use --data synthetic"
    )


def verify_jena_file(path: Path) -> None:
    """Check that ``path`` is the real Jena file: header, first data row, row count."""
    fix = f"delete it so it is downloaded again, or replace it with the original {JENA_FILENAME}"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file: {_one_line(exc)}") from exc
    head = data[:4096].decode("utf-8", errors="replace").lstrip("\ufeff").split("\n")
    header = head[0].rstrip("\r")
    if header != HEADER_LINE:
        raise DataError(
            f"{path}:1: not the Jena climate file (line 1 is {header[:60]!r}, expected the Jena"
            f" header); {fix}"
        )
    row1 = head[1].rstrip("\r") if len(head) > 1 else ""
    if row1 != schema.JENA_FIRST_ROW:
        raise DataError(
            f"{path}:2: not the Jena climate file (first data row {row1[:60]!r}, expected"
            f" {schema.JENA_FIRST_ROW[:40]!r}...); {fix}"
        )
    rows = data.rstrip(b"\r\n").count(b"\n")
    if rows != schema.JENA_ROWS:
        raise DataError(
            f"{path}: has {rows:,} data rows, expected {schema.JENA_ROWS:,} (truncated or"
            f" modified?); {fix}"
        )


def _extract(zip_path: Path, target: Path) -> None:
    """Extract the CSV from ``zip_path`` to ``target`` atomically, verified before the rename."""
    try:
        with zipfile.ZipFile(zip_path) as zf:
            members = [m for m in zf.namelist() if Path(m).name == JENA_FILENAME]
            members = [m for m in members if not m.startswith("__MACOSX")] or members
            if not members:
                raise DataError(f"{zip_path}: the archive holds no {JENA_FILENAME}")
            fd, tmp_name = tempfile.mkstemp(
                dir=target.parent, prefix=f".{JENA_FILENAME}.", suffix=".part"
            )
            tmp = Path(tmp_name)
            try:
                with os.fdopen(fd, "wb") as out, zf.open(members[0]) as src:
                    shutil.copyfileobj(src, out, 1 << 20)
                verify_jena_file(tmp)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise DataError(f"{zip_path}: not a valid zip archive ({_one_line(exc)})") from exc


def _download(url: str, dest: Path, timeout: float) -> None:
    """Download ``url`` to ``dest`` via a ``.part`` file and a rename."""
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urlopen(url, timeout=timeout) as response:
            shutil.copyfileobj(response, out, 1 << 20)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or parts.path or url


def fetch_jena(
    cache_dir: Path | None = None,
    *,
    urls: Sequence[str] = JENA_URLS,
    download: bool = True,
    timeout: float = DOWNLOAD_TIMEOUT,
) -> Path:
    """Path of the verified real file, downloading the zip once into ``cache_dir`` if needed.

    A CSV (or zip) already in the cache is verified and used without network access. Downloads go
    to a ``.part`` file that is renamed when complete, so a crash never leaves half a file.
    """
    folder = Path(cache_dir).expanduser() if cache_dir is not None else _user_cache_dir()
    target = folder / JENA_FILENAME
    zip_path = folder / JENA_ZIPNAME
    if target.is_file():
        verify_jena_file(target)
        return target
    if zip_path.is_file():
        try:
            _extract(zip_path, target)
        except DataError as exc:
            raise DataError(f"{_one_line(exc)}; delete {zip_path} and try again") from exc
        return target
    if not download:
        raise DataError(f"{target} not found and downloading is off; {_place_hint(folder)}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the data folder {folder}: {_one_line(exc)}") from exc
    reasons: list[str] = []
    network_only = True
    for url in urls:
        try:
            _download(url, zip_path, timeout)
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            reasons.append(f"{_host(url)}: {_one_line(str(reason))}")
            continue
        try:
            _extract(zip_path, target)
        except DataError as exc:
            zip_path.unlink(missing_ok=True)
            network_only = False
            reasons.append(f"{_host(url)}: {_one_line(exc)}")
            continue
        return target
    why = "no network?" if network_only else "bad download"
    tried = "; ".join(reasons) or "no download addresses given"
    raise DataError(f"cannot download the Jena climate data ({why} {tried}); {_place_hint(folder)}")


# --------------------------------------------------------------------------- info


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def info(ds: Dataset) -> dict[str, Any]:
    """A JSON-serialisable summary: rows, time span, defects and actions, per-column stats."""
    frame = ds.frame
    values = frame.to_numpy(np.float64)
    n = len(frame)
    start, end = frame.index[0], frame.index[-1]
    columns: dict[str, dict[str, Any]] = {}
    for j, col in enumerate(frame.columns):
        v = values[:, j]
        columns[str(col)] = {
            "count": int(n),
            "mean": _finite(float(v.mean())),
            "std": _finite(float(v.std(ddof=1))) if n > 1 else None,
            "min": _finite(float(v.min())),
            "max": _finite(float(v.max())),
        }
    report = ds.report
    return {
        "source": ds.source,
        "digest": ds.digest,
        "rows": int(n),
        "valid_rows": int(np.count_nonzero(ds.valid)),
        "invalid_rows": int(n - np.count_nonzero(ds.valid)),
        "start": start.strftime(_TS_FORMAT),
        "end": end.strftime(_TS_FORMAT),
        "span_days": round((end - start) / pd.Timedelta(days=1), 4),
        "step_minutes": int(STEP / pd.Timedelta(minutes=1)),
        "clean": report.clean,
        "defects": report.defects(),
        "long_gaps": [vars(g).copy() for g in report.long_gaps],
        "reconciliation": {
            "input_rows": report.input_rows,
            "dropped_duplicates": report.dropped_rows,
            "inserted_rows": report.inserted_rows,
            "output_rows": report.output_rows,
            "reconciles": report.reconciles,
        },
        "repair": report.to_dict(),
        "columns": columns,
    }
