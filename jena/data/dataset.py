"""A loaded, repaired record: :class:`Dataset`, ``--data`` specs, :func:`load`, :func:`info`."""

from __future__ import annotations

import hashlib
import importlib
import math
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from .. import schema
from ..errors import DataError
from ..schema import STEP
from .download import JENA_URLS, fetch_jena
from .reading import SPEC_HELP, one_line, read_csv
from .repair import MAX_GAP_ROWS, TS_FORMAT, BoolArray, RepairReport, repair

__all__ = ["DataSpec", "Dataset", "Provenance", "info", "load", "parse_spec"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """A repaired record: ``frame`` (10-minute DatetimeIndex, the 14 float64 columns, no NaN),
    ``valid`` (False for rows synthesised inside a long gap or a long run of missing values, and
    for rows that break a physical relation), where it came from and the report."""

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

    @property
    def provenance(self) -> Provenance:
        """Where the record came from, as a run's dataset inputs say it."""
        if self.source == "jena":
            return Provenance(JENA_URLS[0], "http")
        if self.source.startswith("synthetic"):
            return Provenance(f"jena.synthetic.generate: {self.source}", "code")
        return Provenance(self.source, "local")


@dataclass(frozen=True)
class Provenance:
    """Where a record came from: ``uri`` (a URL, a path, the generator and its arguments) and
    its ``kind`` (http | local | code)."""

    uri: str
    kind: Literal["http", "local", "code"]


@dataclass(frozen=True)
class DataSpec:
    """A parsed ``--data`` value."""

    kind: Literal["jena", "synthetic", "synthetic-v1", "csv"]
    rows: int = schema.JENA_ROWS
    seed: int = 0
    path: Path | None = None


def parse_spec(spec: str | os.PathLike[str]) -> DataSpec:
    """Parse a data spec (see :func:`load`); raises :class:`DataError` for anything else."""
    if not isinstance(spec, str):
        return DataSpec("csv", path=Path(spec))
    text = spec.strip()
    if text == "jena":
        return DataSpec("jena")
    generator = text.split(":")[0]
    if generator in ("synthetic", "synthetic-v1"):
        parts = text.split(":")[1:]
        if len(parts) > 2 or not all(re.fullmatch(r"\d[\d_]*", p) for p in parts):
            raise DataError(f"bad data spec {spec!r}: {SPEC_HELP}")
        rows = int(parts[0]) if parts else schema.JENA_ROWS
        seed = int(parts[1]) if len(parts) > 1 else 0
        if rows < 2:
            raise DataError(f"bad data spec {spec!r}: {generator} needs at least 2 rows")
        if generator == "synthetic-v1":
            return DataSpec("synthetic-v1", rows=rows, seed=seed)
        return DataSpec("synthetic", rows=rows, seed=seed)
    path = Path(text).expanduser()
    if text and (
        path.is_file()
        or text.lower().endswith((".csv", ".txt"))
        or os.sep in text
        or (os.altsep is not None and os.altsep in text)
    ):
        return DataSpec("csv", path=path)
    raise DataError(f"unknown data spec {spec!r}: {SPEC_HELP}")


def load(
    spec: str | os.PathLike[str] = "jena",
    *,
    cache_dir: Path | None = None,
    download: bool = True,
    max_gap_rows: int = MAX_GAP_ROWS,
) -> Dataset:
    """Load, validate and repair the data named by ``spec``.

    ``spec`` is ``"jena"`` (the real file, see :func:`jena.data.download.fetch_jena`),
    ``"synthetic[:ROWS[:SEED]]"`` (:func:`jena.synthetic.generate`),
    ``"synthetic-v1[:ROWS[:SEED]]"`` (:func:`jena.synthetic.generate_v1`, the first generator, for
    old results) or a path to a CSV in the Jena format (:func:`jena.data.reading.read_csv`); the
    frame is repaired by :func:`jena.data.repair.repair`.
    """
    parsed = parse_spec(spec)
    if parsed.kind == "jena":
        path = fetch_jena(cache_dir, download=download)
        frame = read_csv(path)
        source, name = "jena", str(path)
    elif parsed.kind in ("synthetic", "synthetic-v1"):
        try:
            synthetic = importlib.import_module("jena.synthetic")
        except ImportError as exc:  # pragma: no cover - the module ships with the package
            raise DataError(f"synthetic data unavailable ({exc}); use --data jena") from exc
        try:
            make = synthetic.generate if parsed.kind == "synthetic" else synthetic.generate_v1
            frame = make(rows=parsed.rows, seed=parsed.seed)
        except ValueError as exc:
            raise DataError(f"bad data spec {spec!r}: {one_line(exc)}") from exc
        source = name = f"{parsed.kind}(rows={parsed.rows}, seed={parsed.seed})"
    else:
        assert parsed.path is not None
        frame = read_csv(parsed.path)
        source = name = str(parsed.path)
    repaired, valid, report = repair(frame, max_gap_rows=max_gap_rows, name=name)
    return Dataset(frame=repaired, valid=valid, source=source, report=report)


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
        "start": start.strftime(TS_FORMAT),
        "end": end.strftime(TS_FORMAT),
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


_SYNTHETIC_SOURCE = re.compile(r"(synthetic(?:-v1)?)\(rows=(\d+), seed=(\d+)\)")


def spec_from_source(source: str) -> str:
    """The ``--data`` spec that reloads a :attr:`jena.data.Dataset.source`."""
    match = _SYNTHETIC_SOURCE.fullmatch(source.strip())
    if match:
        return f"{match.group(1)}:{match.group(2)}:{match.group(3)}"
    return source.strip()
