"""The Jena climate CSV format: column names, date format, writer.

One place for the facts of the file format, shared by the loader, the synthetic
generator and ``jena data synth``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

DATE_COLUMN = "Date Time"
DATE_FORMAT = "%d.%m.%Y %H:%M:%S"
COLUMNS: tuple[str, ...] = (
    "p (mbar)",
    "T (degC)",
    "Tpot (K)",
    "Tdew (degC)",
    "rh (%)",
    "VPmax (mbar)",
    "VPact (mbar)",
    "VPdef (mbar)",
    "sh (g/kg)",
    "H2OC (mmol/mol)",
    "rho (g/m**3)",
    "wv (m/s)",
    "max. wv (m/s)",
    "wd (deg)",
)
TARGET = "T (degC)"
TARGET_INDEX = COLUMNS.index(TARGET)  # 1, as in the book
WIND_COLUMNS = ("wv (m/s)", "max. wv (m/s)")
WIND_SENTINEL = -9999.0
STEP = pd.Timedelta(minutes=10)
DATE_HINT = "dd.mm.YYYY HH:MM:SS (e.g. 01.01.2009 00:10:00)"
# Physical ranges, inclusive and generous (jena.data.repair's docstring gives the real file's)
PHYSICAL_RANGES: dict[str, tuple[float, float]] = {
    "p (mbar)": (800.0, 1100.0),
    "T (degC)": (-60.0, 60.0),
    "Tpot (K)": (200.0, 350.0),  # legitimately kelvin
    "Tdew (degC)": (-80.0, 60.0),
    "rh (%)": (0.0, 105.0),
    "VPmax (mbar)": (0.0, 200.0),
    "VPact (mbar)": (0.0, 200.0),
    "VPdef (mbar)": (-1.0, 200.0),
    "sh (g/kg)": (0.0, 100.0),
    "H2OC (mmol/mol)": (0.0, 150.0),
    "rho (g/m**3)": (900.0, 1600.0),
    "wv (m/s)": (0.0, 100.0),
    "max. wv (m/s)": (0.0, 100.0),
    "wd (deg)": (0.0, 360.0),
}
_CELSIUS = ("T (degC)", "Tdew (degC)")
# (columns, low, high, what a median in [low, high] gives away, how to convert)
UNIT_HINTS: tuple[tuple[tuple[str, ...], float, float, str, str], ...] = (
    (_CELSIUS, 173.15, 373.15, "looks like kelvin", "convert to °C (subtract 273.15)"),
    (("Tpot (K)",), -100.0, 100.0, "looks like °C", "convert to K (add 273.15)"),
    (("p (mbar)",), 80.0, 110.0, "looks like it is in kPa", "multiply by 10 for mbar (hPa)"),
    (("p (mbar)",), 80_000.0, 110_000.0, "looks like it is in Pa", "divide by 100 for mbar (hPa)"),
    (("rho (g/m**3)",), 0.8, 1.8, "looks like it is in kg/m³", "multiply by 1000 for g/m³"),
)
ROWS_PER_HOUR = 6
ROWS_PER_DAY = 144
HEADER_LINE = ",".join(f'"{c}"' for c in (DATE_COLUMN, *COLUMNS))

# The real file, as distributed by the Keras team.
JENA_FILENAME = "jena_climate_2009_2016.csv"
JENA_ROWS = 420_551
JENA_FIRST_ROW = (
    "01.01.2009 00:10:00,996.52,-8.02,265.40,-8.90,93.30,3.33,3.11,0.22,1.94,3.12,1307.75,"
    "1.03,1.75,152.30"
)


def write_jena_csv(
    frame: pd.DataFrame, path: str | os.PathLike[str], *, final_newline: bool = True
) -> Path:
    """Write ``frame`` in the exact Jena format (quoted header, dd.mm.YYYY HH:MM:SS, 2 decimals).

    ``frame`` has a DatetimeIndex (or a ``Date Time`` column of timestamps) and the 14 columns.
    The file is written to a temporary name and renamed, so a crash never leaves half a file.
    It ends with a newline, as a text file should; the real file has none (``final_newline=False``
    writes it byte for byte like that: the book's ``data.split("\n")`` parser needs it so). The
    loader accepts both.
    """
    path = Path(path)
    times = frame[DATE_COLUMN] if DATE_COLUMN in frame.columns else frame.index.to_series()
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"cannot write {path}: missing columns {missing}")
    dates = pd.to_datetime(times).dt.strftime(DATE_FORMAT).to_numpy()
    values = np.asarray(frame[list(COLUMNS)], dtype=np.float64)
    body = np.char.mod("%.2f", np.round(values, 2))
    # "-0.00" is never written by the station: normalise negative zero.
    body[body == "-0.00"] = "0.00"
    lines = [HEADER_LINE]
    lines.extend(d + "," + ",".join(row) for d, row in zip(dates, body, strict=True))
    tmp = path.with_name(path.name + ".part")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text("\n".join(lines) + ("\n" if final_newline else ""), encoding="utf-8")
    os.replace(tmp, path)
    return path


def unit_hint(column: str, median: float) -> str | None:
    """What a column's median gives away about a wrong unit, and the fix (None: nothing)."""
    for columns, low, high, looks, fix in UNIT_HINTS:
        if column in columns and low <= median <= high:
            return f"{looks} (median {median:.1f}): {fix}"
    return None
