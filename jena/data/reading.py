"""Strict reading of a CSV in the Jena format, with one-line errors.

:func:`read_csv` parses the file with pandas' C parser and finds the line of any problem
afterwards by vectorised checks. Every problem is a :class:`~jena.errors.DataError` with a one-line
message naming the file, the 1-based line (the header is line 1), the column and what to do.
Nothing is repaired here (see :mod:`jena.data.repair`).
"""

from __future__ import annotations

import csv
import itertools
import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..errors import DataError
from ..schema import COLUMNS, DATE_COLUMN, DATE_HINT, HEADER_LINE, JENA_FILENAME

__all__ = ["DATE_HINT", "SPEC_HELP", "one_line", "read_csv"]

SPEC_HELP = (
    "use 'jena' (the real file), 'synthetic', 'synthetic:ROWS' or 'synthetic:ROWS:SEED'"
    " (e.g. synthetic:50000:1; synthetic-v1:... the first generator, for old results),"
    " or a path to a CSV file in the Jena format"
)
_NFIELDS = 1 + len(COLUMNS)

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]


def one_line(exc: BaseException | str) -> str:
    """``exc`` as one line (whitespace collapsed), or its type name when it has no message."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _wide_text(head: bytes) -> str | None:
    """``"UTF-16LE"`` etc. when ``head`` is UTF-16/32 text (a byte-order mark, or ASCII with a NUL
    byte after or before every character), else None."""
    for bom, encoding in (
        (b"\xff\xfe\x00\x00", "UTF-32LE"),
        (b"\x00\x00\xfe\xff", "UTF-32BE"),
        (b"\xff\xfe", "UTF-16LE"),
        (b"\xfe\xff", "UTF-16BE"),
    ):
        if head.startswith(bom):
            return encoding
    sample = head[: 1 << 12]
    half = len(sample) // 2
    if half < 8:
        return None
    even, odd = sample[0 : 2 * half : 2], sample[1 : 2 * half : 2]
    for text, nuls, encoding in ((even, odd, "UTF-16LE"), (odd, even, "UTF-16BE")):
        if nuls.count(0) >= 0.95 * half and text.count(0) <= 0.05 * half:
            return encoding
    return None


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
    wide = _wide_text(head)
    if wide:
        raise DataError(
            f"{name}: is {wide[:6]} text ({wide}), not UTF-8; re-save it as UTF-8 (e.g."
            f" iconv -f {wide} -t UTF-8 IN > OUT.csv) and give that file"
        )
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
    p, name = Path(path), str(path)
    df = _without_trailing_blanks(name, _parsed(p, name))
    n = len(df)
    dates, bad_date = _parse_dates(df[DATE_COLUMN])
    values = np.empty((n, len(COLUMNS)), dtype=np.float64)
    bad_any = bad_date.copy()
    bad_cols: dict[str, BoolArray] = {}
    for j, col in enumerate(COLUMNS):
        values[:, j] = v = _numbers(df[col])
        bad = ~np.isfinite(v)
        if bad.any():
            bad_cols[col] = bad
            bad_any |= bad
    if bad_any.any():
        raise _row_error(p, name, df, int(np.argmax(bad_any)), bad_date, bad_cols, n)
    index = pd.DatetimeIndex(dates, name=DATE_COLUMN)
    return pd.DataFrame(values, index=index, columns=list(COLUMNS), copy=False)


def _parsed(p: Path, name: str) -> pd.DataFrame:
    """The file as text columns under the Jena header, or a one-line DataError saying why not."""
    if not p.exists():
        raise DataError(f"{name}: no such file; {SPEC_HELP}")
    if p.is_dir():
        raise DataError(f"{name}: is a directory, not a CSV file; {SPEC_HELP}")
    try:
        with p.open("rb") as f:
            head = f.read(1 << 16)
    except OSError as exc:
        raise DataError(f"{name}: cannot read the file: {one_line(exc)}") from exc
    _sniff(name, head)
    names = _check_header(name, head.split(b"\n", 1)[0].decode("utf-8", errors="replace"))
    try:
        df = pd.read_csv(p, header=0, dtype={DATE_COLUMN: str}, keep_default_na=False,
                         na_values=[""], skip_blank_lines=False, encoding="utf-8", engine="c",
                         low_memory=False)  # fmt: skip
    except pd.errors.ParserError as exc:
        raise _find_long_line(p, name) from exc
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{name}: is not UTF-8 text (byte {exc.start}); give a CSV in the Jena format"
        ) from exc
    except (pd.errors.EmptyDataError, OSError, ValueError) as exc:
        raise DataError(f"{name}: cannot parse the CSV: {one_line(exc)}") from exc
    df.columns = pd.Index(names)
    return df


def _without_trailing_blanks(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """Trailing blank lines (all fields empty) are harmless: dropped; no data row is an error."""
    blank = np.asarray(df.isna().all(axis=1), dtype=bool)
    n = len(df)
    while n and blank[n - 1]:
        n -= 1
    if n == 0:
        raise DataError(
            f"{name}: has a header but no data rows; expected one line per 10 minutes after it"
        )
    return df.iloc[:n] if n < len(df) else df


def _numbers(s: pd.Series) -> FloatArray:
    """A column as float64 (NaN where a value is not a number)."""
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    as_numbers = pd.to_numeric(s.astype(object), errors="coerce")
    return as_numbers.to_numpy(dtype=np.float64, na_value=np.nan)


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
