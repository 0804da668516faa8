"""jena.data: strict parsing, repair policy, spec parsing, download/caching, info.

Everything runs on small files under tmp_path; nothing here touches the network.
"""

from __future__ import annotations

import json
import sys
import types
import urllib.error
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from jena import data, schema, synthetic
from jena.errors import DataError
from jena.schema import COLUMNS, DATE_COLUMN, HEADER_LINE, JENA_FILENAME

WV, MAXWV, WD, T = "wv (m/s)", "max. wv (m/s)", "wd (deg)", "T (degC)"


# --------------------------------------------------------------------------- helpers


def make_frame(rows: int = 60, start: str = "2009-01-01 00:10:00", seed: int = 0) -> pd.DataFrame:
    """A small physically plausible frame on the 10-minute grid, values with two decimals.

    ``p``, ``T``, ``Tdew`` and the wind are random; the other columns follow from them by the
    relations of ``shared/reference/jena-data.md``, so the file passes the loader's checks."""
    rng = np.random.default_rng(seed)
    index = pd.date_range(start, periods=rows, freq=schema.STEP, name=DATE_COLUMN)
    p = np.round(rng.uniform(970.0, 1010.0, rows), 2)
    t = np.round(rng.uniform(-5.0, 25.0, rows), 2)
    tdew = np.round(t - rng.uniform(0.5, 8.0, rows), 2)
    wv = rng.uniform(0.5, 6.0, rows)
    return synthetic.assemble(
        index,
        p=p,
        t=t,
        tdew=tdew,
        wv=wv,
        max_wv=wv + rng.uniform(0.0, 3.0, rows),
        wd=rng.uniform(0.0, 359.0, rows),
    )


def write(tmp_path: Path, frame: pd.DataFrame, name: str = "d.csv") -> Path:
    return schema.write_jena_csv(frame, tmp_path / name)


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")


def set_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def edit_line(path: Path, lineno: int, text: str) -> Path:
    lines = lines_of(path)
    lines[lineno - 1] = text
    return set_lines(path, lines)


def edit_field(path: Path, lineno: int, column: str, value: str) -> Path:
    fields = lines_of(path)[lineno - 1].split(",")
    fields[(DATE_COLUMN, *COLUMNS).index(column)] = value
    return edit_line(path, lineno, ",".join(fields))


def error_of(path: Path) -> str:
    with pytest.raises(DataError) as info:
        data.read_csv(path)
    message = str(info.value)
    assert "\n" not in message, message
    assert str(path) in message, message
    return message


def reconciles(report: data.RepairReport) -> bool:
    return (
        report.input_rows
        - report.exact_duplicates
        - report.conflicting_duplicates
        + report.inserted_rows
        == report.output_rows
    )


# --------------------------------------------------------------------------- clean round trip


def test_written_file_loads_back_equal(tmp_path: Path) -> None:
    frame = make_frame(100)
    path = write(tmp_path, frame)
    back = data.read_csv(path)
    assert list(back.columns) == list(COLUMNS)
    assert back.index.name == DATE_COLUMN
    assert (back.dtypes == np.float64).all()
    pd.testing.assert_index_equal(back.index, frame.index, check_names=True, exact=False)
    np.testing.assert_allclose(back.to_numpy(), frame.to_numpy(), rtol=0, atol=0.005)


def test_clean_file_comes_through_unchanged(tmp_path: Path) -> None:
    path = write(tmp_path, make_frame(300, seed=3))
    ds = data.load(str(path))
    # The book's own parsing: float() of each field, line by line, in file order.
    body = path.read_text().splitlines()[1:]
    book = np.array([[float(x) for x in line.split(",")[1:]] for line in body])
    assert ds.frame.to_numpy().tobytes() == book.tobytes()
    times = pd.to_datetime([line.split(",")[0] for line in body], format=schema.DATE_FORMAT)
    assert (ds.frame.index == times).all()
    assert ds.valid.dtype == np.bool_ and ds.valid.all()
    assert ds.report.clean
    assert ds.report.defects() == []
    assert ds.report.lines()[-1] == "no defects found: data used as is"
    assert ds.source == str(path)
    assert ds.report.input_rows == ds.report.output_rows == 300


def test_digest_is_stable_and_data_dependent(tmp_path: Path) -> None:
    a = data.load(str(write(tmp_path, make_frame(50), "a.csv")))
    b = data.load(str(write(tmp_path, make_frame(50), "b.csv")))
    c = data.load(str(write(tmp_path, make_frame(50, seed=1), "c.csv")))
    assert a.digest == b.digest != c.digest
    assert len(a.digest) == 16 and int(a.digest, 16) >= 0


def test_crlf_and_trailing_newlines_are_accepted(tmp_path: Path) -> None:
    frame = make_frame(20)
    path = write(tmp_path, frame)
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n") + b"\r\n\r\n")
    back = data.read_csv(path)
    assert len(back) == 20
    np.testing.assert_allclose(back.to_numpy(), frame.to_numpy(), atol=0.005)


def test_columns_in_another_order_are_reordered(tmp_path: Path) -> None:
    frame = make_frame(10)
    path = tmp_path / "perm.csv"
    cols = [DATE_COLUMN, *reversed(COLUMNS)]
    out = frame[list(reversed(COLUMNS))].copy()
    out.insert(0, DATE_COLUMN, pd.DatetimeIndex(frame.index).strftime(schema.DATE_FORMAT))
    out.to_csv(path, index=False, header=[f'"{c}"' for c in cols], quoting=3, float_format="%.2f")
    back = data.read_csv(path)
    assert list(back.columns) == list(COLUMNS)
    np.testing.assert_allclose(back.to_numpy(), frame.to_numpy(), atol=0.005)


# --------------------------------------------------------------------------- bad input


def test_missing_file(tmp_path: Path) -> None:
    message = error_of(tmp_path / "nope.csv")
    assert "no such file" in message


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    assert "empty" in error_of(path)
    path.write_text("  \n\n")
    assert "empty" in error_of(path)


def test_header_only(tmp_path: Path) -> None:
    path = tmp_path / "head.csv"
    path.write_text(HEADER_LINE + "\n")
    assert "no data rows" in error_of(path)


def test_missing_and_renamed_columns_are_named(tmp_path: Path) -> None:
    path = write(tmp_path, make_frame(5))
    edit_line(path, 1, HEADER_LINE.replace('"T (degC)"', '"Temp"').replace(',"wd (deg)"', ""))
    message = error_of(path)
    assert f"{path}:1:" in message
    assert '"T (degC)"' in message and '"wd (deg)"' in message and '"Temp"' in message
    assert "missing" in message and "unexpected" in message


def test_no_header_line(tmp_path: Path) -> None:
    path = write(tmp_path, make_frame(5))
    set_lines(path, lines_of(path)[1:])
    message = error_of(path)
    assert f"{path}:1:" in message and "no header" in message


def test_wrong_separator(tmp_path: Path) -> None:
    path = write(tmp_path, make_frame(5))
    path.write_text(path.read_text().replace(",", ";"))
    assert "separated by ','" in error_of(path)


def test_non_numeric_value_names_line_column_value(tmp_path: Path) -> None:
    path = edit_field(write(tmp_path, make_frame(30)), 17, T, "12,5x")
    message = error_of(path)
    # "12,5x" adds a field: that is reported as such
    assert f"{path}:17:" in message and "fields" in message
    path = edit_field(write(tmp_path, make_frame(30)), 17, T, "abc")
    message = error_of(path)
    assert f"{path}:17:" in message and '"T (degC)"' in message and "'abc'" in message


@pytest.mark.parametrize("value", ["NA", "nan", "inf", "-", "1.2.3"])
def test_non_finite_or_garbage_values(tmp_path: Path, value: str) -> None:
    path = edit_field(write(tmp_path, make_frame(30)), 9, "rh (%)", value)
    message = error_of(path)
    assert f"{path}:9:" in message and '"rh (%)"' in message and repr(value) in message


def test_empty_value(tmp_path: Path) -> None:
    path = edit_field(write(tmp_path, make_frame(30)), 4, "p (mbar)", "")
    message = error_of(path)
    assert f"{path}:4:" in message and '"p (mbar)"' in message and "empty value" in message


def test_first_bad_line_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, make_frame(30))
    edit_field(path, 20, "p (mbar)", "x")
    edit_field(path, 12, WD, "y")
    message = error_of(path)
    assert f"{path}:12:" in message and '"wd (deg)"' in message


def test_truncated_last_line(tmp_path: Path) -> None:
    path = write(tmp_path, make_frame(30))
    path.write_bytes(path.read_bytes()[:-25])
    message = error_of(path)
    assert f"{path}:31:" in message and "truncated last line" in message
    assert "expected 15" in message


def test_line_with_too_many_fields(tmp_path: Path) -> None:
    path = write(tmp_path, make_frame(30))
    edit_line(path, 8, lines_of(path)[7] + ",1.00")
    message = error_of(path)
    assert f"{path}:8:" in message and "found 16" in message


def test_empty_line_in_the_middle(tmp_path: Path) -> None:
    path = write(tmp_path, make_frame(30))
    lines = lines_of(path)
    set_lines(path, [*lines[:5], "", *lines[5:]])
    message = error_of(path)
    assert f"{path}:6:" in message and "empty line" in message


@pytest.mark.parametrize(
    "date",
    ["2009-01-01 01:10:00", "01.01.2009 01:10", "31.02.2009 00:00:00", "01/01/2009 01:10:00", ""],
)
def test_wrong_date_format(tmp_path: Path, date: str) -> None:
    path = edit_field(write(tmp_path, make_frame(30)), 8, DATE_COLUMN, date)
    message = error_of(path)
    assert f"{path}:8:" in message and '"Date Time"' in message
    assert "dd.mm.YYYY HH:MM:SS" in message and repr(date) in message


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"PK\x03\x04\x14\x00\x00\x00rest", "zip archive"),
        (b"\x1f\x8b\x08\x00\x00\x00", "gzip"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (b"<!DOCTYPE html>\n<html><body>Access denied</body></html>", "HTML"),
        (b'{"not": "a csv"}\n', "header"),
    ],
)
def test_not_a_csv(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "thing.csv"
    path.write_bytes(content)
    assert words in error_of(path)


def test_real_zip_is_rejected_with_advice(tmp_path: Path) -> None:
    csv_path = write(tmp_path, make_frame(5))
    zpath = tmp_path / "x.csv.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.write(csv_path, JENA_FILENAME)
    message = error_of(zpath)
    assert "zip archive" in message and JENA_FILENAME in message


def test_not_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, make_frame(5))
    path.write_bytes(path.read_bytes() + b"\n01.01.2009 01:00:00,\xff\xfe")
    with pytest.raises(DataError) as info:
        data.read_csv(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_directory(tmp_path: Path) -> None:
    assert "directory" in error_of(tmp_path)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_is_reported_as_utf16_text(tmp_path: Path, encoding: str) -> None:
    """With a byte-order mark or without (NUL-interleaved ASCII): not "binary"."""
    text = write(tmp_path, make_frame(5)).read_text(encoding="utf-8")
    path = tmp_path / f"{encoding}.csv"
    path.write_bytes(text.encode(encoding))
    message = error_of(path)
    assert "UTF-16 text" in message and "re-save it as UTF-8" in message, message
    assert "binary" not in message


def test_written_file_ends_with_a_newline_and_every_form_loads(tmp_path: Path) -> None:
    """A text file ends with a newline; ``final_newline=False`` writes the real file's form."""
    frame = make_frame(20)
    path = write(tmp_path, frame)
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n") and text.count("\n") == 21
    bare = schema.write_jena_csv(frame, tmp_path / "bare.csv", final_newline=False)
    assert bare.read_text(encoding="utf-8") == text[:-1]
    for content in (text, text[:-1], text[:-1] + "\r\n"):
        path.write_text(content, encoding="utf-8")
        back = data.read_csv(path)
        np.testing.assert_allclose(back.to_numpy(), frame.to_numpy(), atol=0.005)


# --------------------------------------------------------------------------- repair


def test_wind_sentinels_are_interpolated(tmp_path: Path) -> None:
    frame = make_frame(40)
    frame.iloc[10, COLUMNS.index(WV)] = schema.WIND_SENTINEL
    frame.iloc[11, COLUMNS.index(WV)] = schema.WIND_SENTINEL
    frame.iloc[20, COLUMNS.index(MAXWV)] = schema.WIND_SENTINEL
    frame.iloc[30, COLUMNS.index(WV)] = -1.5
    ds = data.load(str(write(tmp_path, frame)))
    rep = ds.report
    assert rep.sentinels == {WV: 3, MAXWV: 1}
    assert reconciles(rep) and rep.output_rows == 40 and ds.valid.all()
    wv = ds.frame[WV].to_numpy()
    a, b = frame[WV].iloc[9], frame[WV].iloc[12]
    np.testing.assert_allclose(wv[10:12], [a + (b - a) / 3, a + 2 * (b - a) / 3])
    assert (ds.frame[[WV, MAXWV]].to_numpy() >= 0).all()
    # every other value untouched
    untouched = np.ones(frame.shape, dtype=bool)
    untouched[[10, 11, 30], COLUMNS.index(WV)] = False
    untouched[20, COLUMNS.index(MAXWV)] = False
    assert (ds.frame.to_numpy()[untouched] == frame.to_numpy()[untouched]).all()
    assert any("sentinel" in d["defect"] and d["count"] == 3 for d in rep.defects())


def test_sentinel_at_the_ends_takes_the_nearest_value() -> None:
    frame = make_frame(10)
    frame.iloc[0, COLUMNS.index(WV)] = schema.WIND_SENTINEL
    frame.iloc[-1, COLUMNS.index(WV)] = schema.WIND_SENTINEL
    out, valid, rep = data.repair(frame)
    assert out[WV].iloc[0] == frame[WV].iloc[1]
    assert out[WV].iloc[-1] == frame[WV].iloc[-2]
    assert valid.all() and rep.sentinels == {WV: 2}


def test_long_sentinel_run_is_marked_invalid() -> None:
    frame = make_frame(200)
    frame.iloc[50:100, COLUMNS.index(MAXWV)] = schema.WIND_SENTINEL
    out, valid, rep = data.repair(frame, max_gap_rows=36)
    assert not valid[50:100].any() and valid[:50].all() and valid[100:].all()
    assert rep.invalid_rows == 50
    (run,) = rep.long_value_runs
    assert (run.column, run.rows) == (MAXWV, 50)
    assert not np.isnan(out.to_numpy()).any()


def test_rows_out_of_order_are_sorted(tmp_path: Path) -> None:
    frame = make_frame(50)
    order = np.arange(50)
    order[[10, 11]] = order[[11, 10]]
    order[[30, 31]] = order[[31, 30]]
    ds = data.load(str(write(tmp_path, frame.iloc[order])))
    assert ds.report.out_of_order == 2
    assert reconciles(ds.report) and ds.report.output_rows == 50
    np.testing.assert_array_equal(ds.frame.to_numpy(), frame.to_numpy())
    assert (ds.frame.index == frame.index).all()


def test_exact_duplicates_dropped(tmp_path: Path) -> None:
    frame = make_frame(50)
    order = [*range(0, 21), 20, 20, *range(21, 50)]  # row 20 three times
    ds = data.load(str(write(tmp_path, frame.iloc[order])))
    rep = ds.report
    assert (rep.input_rows, rep.exact_duplicates, rep.conflicting_duplicates) == (52, 2, 0)
    assert rep.output_rows == 50 and reconciles(rep)
    np.testing.assert_array_equal(ds.frame.to_numpy(), frame.to_numpy())


def test_conflicting_duplicates_keep_the_first(tmp_path: Path) -> None:
    frame = make_frame(50)
    dup = frame.iloc[[25]].copy()
    dup[T] = dup[T] + 5.0
    bad = pd.concat([frame.iloc[:26], dup, frame.iloc[26:]])
    ds = data.load(str(write(tmp_path, bad)))
    rep = ds.report
    assert (rep.exact_duplicates, rep.conflicting_duplicates) == (0, 1)
    assert rep.conflict_examples == (frame.index[25].strftime("%Y-%m-%d %H:%M:%S"),)
    assert ds.frame[T].iloc[25] == frame[T].iloc[25]
    assert reconciles(rep) and rep.output_rows == 50


def test_duplicated_day_block_out_of_order(tmp_path: Path) -> None:
    """The real file's defect: a whole day repeated as a block after itself."""
    frame = make_frame(3 * 144, start="2010-01-06 00:00:00")
    day = frame.iloc[144:288]
    bad = pd.concat([frame.iloc[:288], day, frame.iloc[288:]])
    ds = data.load(str(write(tmp_path, bad)))
    rep = ds.report
    assert rep.exact_duplicates == 144 and rep.out_of_order == 1
    assert rep.output_rows == 3 * 144 and reconciles(rep)
    np.testing.assert_array_equal(ds.frame.to_numpy(), frame.to_numpy())


def test_short_gap_filled_linearly(tmp_path: Path) -> None:
    frame = make_frame(100)
    keep = np.ones(100, dtype=bool)
    keep[20:23] = False  # 3 rows
    keep[50:86] = False  # 36 rows: still short (<= 36)
    ds = data.load(str(write(tmp_path, frame[keep])))
    rep = ds.report
    assert rep.inserted_rows == 3 + 36 and rep.short_gaps == 2 and rep.short_gap_rows == 39
    assert rep.long_gaps == () and ds.valid.all()
    assert rep.input_rows + rep.inserted_rows == rep.output_rows == 100 and reconciles(rep)
    assert (ds.frame.index == frame.index).all()
    a, b = frame[T].iloc[19], frame[T].iloc[23]
    np.testing.assert_allclose(ds.frame[T].iloc[20:23], a + (b - a) * np.arange(1, 4) / 4)
    np.testing.assert_array_equal(ds.frame.to_numpy()[keep], frame.to_numpy()[keep])


def test_long_gap_filled_and_marked_invalid(tmp_path: Path) -> None:
    frame = make_frame(300)
    keep = np.ones(300, dtype=bool)
    keep[100:137] = False  # 37 rows: just over the limit
    keep[200:210] = False
    ds = data.load(str(write(tmp_path, frame[keep])))
    rep = ds.report
    assert rep.output_rows == 300 and reconciles(rep)
    (gap,) = rep.long_gaps
    assert gap.rows == 37
    assert gap.start == frame.index[100].strftime("%Y-%m-%d %H:%M:%S")
    assert gap.end == frame.index[136].strftime("%Y-%m-%d %H:%M:%S")
    assert rep.short_gaps == 1 and rep.short_gap_rows == 10
    assert not ds.valid[100:137].any() and ds.valid[:100].all() and ds.valid[137:].all()
    assert rep.invalid_rows == 37
    assert not np.isnan(ds.frame.to_numpy()).any()
    # on the hour: every 6th row from the first full hour is at minute 0
    assert (pd.DatetimeIndex(ds.frame.index[5::6]).minute == 0).all()


def test_gap_limit_is_an_argument() -> None:
    frame = make_frame(100)
    holed = frame.drop(frame.index[40:50])
    _, valid, rep = data.repair(holed, max_gap_rows=5)
    assert len(rep.long_gaps) == 1 and not valid[40:50].any()
    _, valid, rep = data.repair(holed, max_gap_rows=10)
    assert rep.long_gaps == () and valid.all()


def test_wind_direction_interpolated_across_north() -> None:
    frame = make_frame(10)
    frame.iloc[3, COLUMNS.index(WD)] = 350.0
    frame.iloc[5, COLUMNS.index(WD)] = 10.0
    out, _, _ = data.repair(frame.drop(frame.index[4]))
    assert min(out[WD].iloc[4], 360 - out[WD].iloc[4]) < 1e-9


def test_off_grid_timestamps_are_snapped() -> None:
    frame = make_frame(20)
    index = frame.index.to_series()
    index.iloc[7] += pd.Timedelta(minutes=2)
    moved = frame.set_axis(pd.DatetimeIndex(index, name=DATE_COLUMN))
    out, _, rep = data.repair(moved)
    assert rep.off_grid == 1 and rep.output_rows == 20 and reconciles(rep)
    np.testing.assert_array_equal(out.to_numpy(), frame.to_numpy())


def test_synthetic_defects_reconcile(tmp_path: Path) -> None:
    synthetic = pytest.importorskip("jena.synthetic")
    clean = synthetic.generate(rows=10_000, seed=2)
    result = synthetic.inject_defects(clean, seed=2)
    bad = result[0] if isinstance(result, tuple) else result
    ds = data.load(str(write(tmp_path, bad)))
    rep = ds.report
    assert reconciles(rep)
    assert rep.output_rows == len(clean)
    assert (ds.frame.index == clean.index).all()
    # expected counts, measured independently on the defective frame
    first = bad[~bad.index.duplicated()]
    assert rep.exact_duplicates + rep.conflicting_duplicates == bad.index.duplicated().sum() > 0
    assert rep.inserted_rows == len(clean) - len(first) > 0
    assert rep.out_of_order == (np.diff(bad.index.asi8) < 0).sum() > 0
    assert rep.sentinels.get(WV, 0) == (first[WV] < 0).sum() > 0
    assert rep.sentinels.get(MAXWV, 0) == (first[MAXWV] < 0).sum()
    assert rep.long_gaps and rep.invalid_rows == sum(g.rows for g in rep.long_gaps)
    # rows that were in the file and not sentinels come back as written
    present = np.isin(clean.index, bad.index)
    cols = [c for c in COLUMNS if c not in (WV, MAXWV)]
    np.testing.assert_allclose(
        ds.frame[cols].to_numpy()[present], clean[cols].to_numpy()[present], atol=0.005
    )


def test_repair_rejects_bad_frames() -> None:
    frame = make_frame(5)
    with pytest.raises(DataError, match="DatetimeIndex"):
        data.repair(frame.reset_index())
    with pytest.raises(DataError, match="lacks column"):
        data.repair(frame.drop(columns=[T]))
    with pytest.raises(DataError, match="no rows"):
        data.repair(frame.iloc[:0])


def test_nan_in_a_frame_is_interpolated() -> None:
    frame = make_frame(10)
    frame.iloc[4, COLUMNS.index(T)] = np.nan
    out, valid, rep = data.repair(frame)
    assert rep.missing_values == {T: 1} and valid.all()
    assert out[T].iloc[4] == pytest.approx((frame[T].iloc[3] + frame[T].iloc[5]) / 2)


# --------------------------------------------------------------------------- physical checks

# One implausible value per column (none of them a sentinel): what the range check must catch.
OUT_OF_RANGE = {
    "p (mbar)": 1250.0,
    "T (degC)": 75.0,
    "Tpot (K)": 420.0,
    "Tdew (degC)": -95.0,
    "rh (%)": 130.0,
    "VPmax (mbar)": -3.0,
    "VPact (mbar)": 250.0,
    "VPdef (mbar)": -20.0,
    "sh (g/kg)": 140.0,
    "H2OC (mmol/mol)": -2.0,
    "rho (g/m**3)": 2500.0,
    "wv (m/s)": 140.0,
    "max. wv (m/s)": 150.0,
    "wd (deg)": 400.0,
}


def untouched_except(ds: data.Dataset, frame: pd.DataFrame, row: int, col: str) -> None:
    same = np.ones(frame.shape, dtype=bool)
    same[row, COLUMNS.index(col)] = False
    assert (ds.frame.to_numpy()[same] == frame.to_numpy()[same]).all()


def assert_midpoint(ds: data.Dataset, frame: pd.DataFrame, row: int, col: str) -> None:
    got = ds.frame[col].iloc[row]
    a, b = frame[col].iloc[row - 1], frame[col].iloc[row + 1]
    if col == WD:  # circular: the mean direction of the neighbours
        rad = np.radians([a, b])
        mean = np.degrees(np.arctan2(np.sin(rad).sum(), np.cos(rad).sum()))
        assert abs((got - mean + 180.0) % 360.0 - 180.0) < 1e-6
    else:
        assert got == pytest.approx((a + b) / 2)


@pytest.mark.parametrize("col", COLUMNS)
@pytest.mark.parametrize("code", ["-9999", "-9999.00", "-999.99"])
def test_sentinel_in_any_column_is_interpolated(tmp_path: Path, col: str, code: str) -> None:
    frame = make_frame(40)
    path = edit_field(write(tmp_path, frame), 12, col, code)  # line 12 = row 10
    ds = data.load(str(path))
    rep = ds.report
    assert rep.sentinels == {col: 1} and rep.out_of_range == {}
    assert ds.valid.all() and reconciles(rep) and not rep.clean
    assert_midpoint(ds, frame, 10, col)
    untouched_except(ds, frame, 10, col)
    (found,) = rep.defects()
    assert col in found["defect"] and "sentinel" in found["defect"] and found["count"] == 1
    assert found["action"] == "interpolated in time"


def test_temperature_sentinels_do_not_reach_the_baseline(tmp_path: Path) -> None:
    """The finding: three -9999 in T of the validation rows moved persistence 2.8 -> 17 °C."""
    synthetic = pytest.importorskip("jena.synthetic")
    clean = synthetic.generate(rows=24_000, seed=3)
    bad = clean.copy()
    val_begin, val_end = synthetic.book2_splits(len(clean))["val"]
    rows = [val_begin + 1000, val_begin + 2000, val_end - 10]
    bad.iloc[rows, COLUMNS.index(T)] = -9999.0
    ds = data.load(str(write(tmp_path, bad)))
    assert ds.report.sentinels == {T: 3} and ds.valid.all()
    expected = synthetic.persistence_mae(clean[T].to_numpy(), "val")
    got = synthetic.persistence_mae(ds.frame[T].to_numpy(), "val")
    assert got == pytest.approx(expected, abs=0.01)
    assert ds.frame[T].min() == clean[T].min()


@pytest.mark.parametrize("col", COLUMNS)
def test_value_outside_the_physical_range_is_interpolated(tmp_path: Path, col: str) -> None:
    frame = make_frame(60)
    bad = frame.copy()
    bad.iloc[20, COLUMNS.index(col)] = OUT_OF_RANGE[col]
    ds = data.load(str(write(tmp_path, bad)))
    rep = ds.report
    assert rep.out_of_range == {col: 1}, rep.to_dict()
    assert rep.sentinels == {} and rep.relation_violations == {}
    assert ds.valid.all() and reconciles(rep) and not rep.clean
    assert_midpoint(ds, frame, 20, col)
    untouched_except(ds, frame, 20, col)
    assert f"values outside the physical range of {col}: 1 -> interpolated" in "\n".join(
        rep.lines()
    )
    assert rep.to_dict()["out_of_range"] == {col: 1}


def test_long_run_outside_the_range_is_marked_invalid() -> None:
    frame = make_frame(1000)
    frame.iloc[300:350, COLUMNS.index(T)] = 80.0  # 50 rows, 5% of the column
    out, valid, rep = data.repair(frame, max_gap_rows=36)
    assert rep.out_of_range == {T: 50}
    assert not valid[300:350].any() and valid[:300].all() and valid[350:].all()
    (run,) = rep.long_value_runs
    assert (run.column, run.rows) == (T, 50)
    assert out[T].between(-60, 60).all()


def test_wind_gust_below_the_mean_speed_is_accepted(tmp_path: Path) -> None:
    """``max. wv >= wv`` does not hold in the real file (max wv 28.49 > max max.wv 23.5)."""
    frame = make_frame(30)
    frame.iloc[5, COLUMNS.index(MAXWV)] = frame.iloc[5, COLUMNS.index(WV)] - 0.5
    ds = data.load(str(write(tmp_path, frame)))
    assert ds.report.clean and ds.valid.all()


def refusal(path: Path) -> str:
    with pytest.raises(DataError) as info:
        data.load(str(path))
    message = str(info.value)
    assert "\n" not in message and str(path) in message, message
    return message


@pytest.mark.parametrize(
    ("col", "change", "words"),
    [
        ("p (mbar)", lambda v: v * 100.0, ["in Pa", "divide by 100"]),
        ("p (mbar)", lambda v: v / 10.0, ["in kPa", "multiply by 10"]),
        ("rho (g/m**3)", lambda v: v / 1000.0, ["kg/m", "multiply by 1000"]),
        ("Tpot (K)", lambda v: v - 273.15, ["°C", "add 273.15"]),
        ("rh (%)", lambda v: np.where(np.arange(v.size) % 4 == 0, 130.0, v), ["25%", "0..105"]),
        ("wd (deg)", lambda v: v + 400.0, ["100%", "0..360"]),
    ],
)
def test_implausible_column_is_refused(
    tmp_path: Path, col: str, change: Any, words: list[str]
) -> None:
    frame = make_frame(100)
    frame[col] = np.round(change(frame[col].to_numpy()), 2)
    message = refusal(write(tmp_path, frame))
    assert f'"{col}"' in message and "physical range" in message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("col", [T, "Tdew (degC)"])
def test_kelvin_temperature_is_refused(tmp_path: Path, col: str) -> None:
    frame = make_frame(100)
    frame[col] = frame[col] + 273.15
    message = refusal(write(tmp_path, frame))
    median = float(np.median(np.round(frame[col], 2)))
    assert f"{col} looks like kelvin (median {median:.1f})" in message, message
    assert "convert to °C (subtract 273.15)" in message


def test_kelvin_check_sees_a_frame_too() -> None:
    frame = make_frame(100)
    frame[T] = frame[T] + 273.15
    with pytest.raises(DataError, match=r"T \(degC\) looks like kelvin"):
        data.repair(frame)


def _broken(frame: pd.DataFrame, row: int, check: str) -> None:
    j = COLUMNS.index
    if check == "Tpot":
        frame.iloc[row, j("Tpot (K)")] += 20.0
    elif check == "Tdew":
        frame.iloc[row, j("Tdew (degC)")] = frame.iloc[row, j(T)] + 3.0
    elif check == "VPact":
        frame.iloc[row, j("VPact (mbar)")] = round(frame.iloc[row, j("VPmax (mbar)")] * 1.2, 2)
        frame.iloc[row, j("rh (%)")] = 100.0  # keep rh in range: only the relations break
    else:  # rh
        rh = frame.iloc[row, j("rh (%)")]
        frame.iloc[row, j("rh (%)")] = rh - 20.0 if rh > 25 else rh + 20.0


@pytest.mark.parametrize("check", ["Tpot", "Tdew", "VPact", "rh"])
def test_row_breaking_a_physical_relation_is_marked_invalid(tmp_path: Path, check: str) -> None:
    frame = make_frame(60)
    _broken(frame, 30, check)
    path = write(tmp_path, frame)
    ds = data.load(str(path))
    rep = ds.report
    assert any(name.startswith(check) for name in rep.relation_violations), rep.to_dict()
    assert all(n == 1 for n in rep.relation_violations.values())
    assert rep.out_of_range == {} and rep.sentinels == {}
    assert not ds.valid[30] and ds.valid.sum() == 59 and rep.invalid_rows == 1
    assert not rep.clean and reconciles(rep)
    # the values are kept as read: only the row is marked
    assert ds.frame.to_numpy().tobytes() == data.read_csv(path).to_numpy().tobytes()
    text = "\n".join(rep.lines())
    assert "marked invalid" in text and "2009-01-01 05:10:00" in text
    json.dumps(rep.to_dict())


@pytest.mark.parametrize(
    ("col", "change", "words"),
    [
        ("Tpot (K)", lambda v: v + 10.0, ["Tpot (K)", "inconsistent"]),
        ("rh (%)", lambda v: v / 100.0, ["rh (%)", "inconsistent"]),
    ],
)
def test_columns_inconsistent_in_bulk_are_refused(
    tmp_path: Path, col: str, change: Any, words: list[str]
) -> None:
    frame = make_frame(100)
    frame[col] = np.round(change(frame[col].to_numpy()), 2)
    message = refusal(write(tmp_path, frame))
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("seed", range(4))
def test_synthetic_record_passes_the_physical_checks(seed: int) -> None:
    synthetic = pytest.importorskip("jena.synthetic")
    frame = synthetic.generate(seed=seed)
    out, valid, rep = data.repair(frame)
    assert rep.clean, rep.lines()
    assert valid.all() and out.to_numpy().tobytes() == frame.to_numpy().tobytes()


def test_bounds_cover_the_real_files_statistics() -> None:
    """Every min/max of shared/reference/jena-data.md is inside the physical range."""
    from jena.data.repair import PHYSICAL_RANGES

    real = {
        "p (mbar)": (913.6, 1015.35),
        "T (degC)": (-23.01, 37.28),
        "Tpot (K)": (250.6, 311.34),
        "Tdew (degC)": (-25.01, 23.11),
        "rh (%)": (12.95, 100),
        "VPmax (mbar)": (0.95, 63.77),
        "VPact (mbar)": (0.79, 28.32),
        "VPdef (mbar)": (0, 46.01),
        "sh (g/kg)": (0.5, 18.13),
        "H2OC (mmol/mol)": (0.8, 28.82),
        "rho (g/m**3)": (1059.45, 1393.54),
        "wv (m/s)": (0, 28.49),
        "max. wv (m/s)": (0, 23.5),
        "wd (deg)": (0, 360),
    }
    assert set(PHYSICAL_RANGES) == set(COLUMNS)
    for col, (lo, hi) in real.items():
        low, high = PHYSICAL_RANGES[col]
        assert low <= lo and hi <= high, col


# --------------------------------------------------------------------------- report and info


def test_report_to_dict_and_lines(tmp_path: Path) -> None:
    frame = make_frame(300)
    frame.iloc[5, COLUMNS.index(WV)] = schema.WIND_SENTINEL
    bad = pd.concat([frame.iloc[:10], frame.iloc[[9]], frame.iloc[10:100], frame.iloc[150:]])
    ds = data.load(str(write(tmp_path, bad)))
    d = ds.report.to_dict()
    json.dumps(d)
    assert d["reconciles"] is True and d["clean"] is False
    assert d["input_rows"] - d["dropped_rows"] + d["inserted_rows"] == d["output_rows"] == 300
    assert d["long_gaps"] == [
        {"start": "2009-01-01 16:50:00", "end": "2009-01-02 01:00:00", "rows": 50}
    ]
    text = "\n".join(ds.report.lines())
    assert "251 rows read - 1 dropped + 50 inserted = 300 rows (50 marked invalid)" in text
    assert "long gap 2009-01-01 16:50:00 .. 2009-01-02 01:00:00 (50 rows)" in text
    assert "sentinel" in text and "exact duplicate rows: 1 -> dropped" in text


def test_info_content(tmp_path: Path) -> None:
    frame = make_frame(200)
    frame.iloc[5, COLUMNS.index(WV)] = schema.WIND_SENTINEL
    ds = data.load(str(write(tmp_path, frame.drop(frame.index[50:100]))))
    out = data.info(ds)
    assert json.loads(json.dumps(out)) == out
    assert out["rows"] == 200 and out["valid_rows"] == 150 and out["invalid_rows"] == 50
    assert out["start"] == "2009-01-01 00:10:00"
    assert out["end"] == frame.index[-1].strftime("%Y-%m-%d %H:%M:%S")
    assert out["step_minutes"] == 10 and out["source"] == ds.source and out["digest"] == ds.digest
    assert out["reconciliation"] == {
        "input_rows": 150,
        "dropped_duplicates": 0,
        "inserted_rows": 50,
        "output_rows": 200,
        "reconciles": True,
    }
    kinds = {d["defect"]: d for d in out["defects"]}
    assert any("sentinel" in k and v["count"] == 1 for k, v in kinds.items())
    assert any("long gaps" in k and "marked invalid" in v["action"] for k, v in kinds.items())
    assert out["long_gaps"] == [vars(g) for g in ds.report.long_gaps]
    assert list(out["columns"]) == list(COLUMNS)
    st = out["columns"][T]
    assert set(st) == {"count", "mean", "std", "min", "max"} and st["count"] == 200
    assert st["mean"] == pytest.approx(ds.frame[T].mean())
    assert st["std"] == pytest.approx(ds.frame[T].std())
    assert st["min"] == ds.frame[T].min() and st["max"] == ds.frame[T].max()


def test_info_of_a_clean_file(tmp_path: Path) -> None:
    out = data.info(data.load(str(write(tmp_path, make_frame(20)))))
    assert out["clean"] is True and out["defects"] == [] and out["long_gaps"] == []


# --------------------------------------------------------------------------- specs


@pytest.fixture
def fake_synthetic(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    calls: list[tuple[int, int]] = []

    def generate(rows: int = schema.JENA_ROWS, seed: int = 0) -> pd.DataFrame:
        calls.append((rows, seed))
        return make_frame(rows, seed=seed)

    module: Any = types.ModuleType("jena.synthetic")
    module.generate = generate
    monkeypatch.setitem(sys.modules, "jena.synthetic", module)
    return calls


@pytest.mark.parametrize(
    ("spec", "rows", "seed"),
    [("synthetic", schema.JENA_ROWS, 0), ("synthetic:500", 500, 0), ("synthetic:50_0:7", 500, 7)],
)
def test_parse_synthetic_specs(spec: str, rows: int, seed: int) -> None:
    assert data.parse_spec(spec) == data.DataSpec("synthetic", rows=rows, seed=seed)


def test_load_synthetic(fake_synthetic: list[tuple[int, int]]) -> None:
    ds = data.load("synthetic:300:4")
    assert fake_synthetic == [(300, 4)]
    assert ds.source == "synthetic(rows=300, seed=4)"
    assert len(ds.frame) == 300 and ds.report.clean and ds.valid.all()


def test_load_real_synthetic_module() -> None:
    pytest.importorskip("jena.synthetic")
    ds = data.load("synthetic:2000:1")
    assert len(ds.frame) == 2000 and ds.source == "synthetic(rows=2000, seed=1)"
    assert not np.isnan(ds.frame.to_numpy()).any()


@pytest.mark.parametrize(
    "spec",
    ["synthetic:", "synthetic:abc", "synthetic:10:2:3", "synthetic:-5", "synthetic:1", "jenna", ""],
)
def test_bad_specs(spec: str) -> None:
    with pytest.raises(DataError) as info:
        data.parse_spec(spec)
    message = str(info.value)
    assert "\n" not in message and repr(spec) in message


def test_unknown_spec_says_what_is_accepted() -> None:
    with pytest.raises(DataError, match=r"'jena'.*'synthetic.*path to a CSV"):
        data.load("weather")


def test_path_specs(tmp_path: Path) -> None:
    path = write(tmp_path, make_frame(5), "plain")  # no .csv suffix, but exists
    assert data.parse_spec(str(path)) == data.DataSpec("csv", path=path)
    assert data.parse_spec("missing.csv").kind == "csv"
    assert data.load(path).source == str(path)
    with pytest.raises(DataError, match="no such file"):
        data.load(str(tmp_path / "missing.csv"))


# --------------------------------------------------------------------------- the real file


@pytest.fixture
def small_jena(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A file that passes the real file's checks once JENA_ROWS is made small."""
    monkeypatch.setattr(schema, "JENA_ROWS", 30)
    frame = make_frame(30)
    first = [float(x) for x in schema.JENA_FIRST_ROW.split(",")[1:]]
    frame.iloc[0] = first
    path = schema.write_jena_csv(frame, tmp_path / "src" / JENA_FILENAME, final_newline=False)
    assert lines_of(path)[1] == schema.JENA_FIRST_ROW
    return path


def make_zip(src: Path, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(src, JENA_FILENAME)
        zf.writestr("__MACOSX/._" + JENA_FILENAME, b"\x00junk")
    return dest


def no_network(*args: object, **kwargs: object) -> None:
    raise AssertionError("the network must not be used")


def test_cached_file_used_without_download(
    small_jena: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / JENA_FILENAME).write_bytes(small_jena.read_bytes())
    monkeypatch.setattr(data.download, "urlopen", no_network)
    assert data.fetch_jena(cache) == cache / JENA_FILENAME
    ds = data.load("jena", cache_dir=cache)
    assert ds.source == "jena" and len(ds.frame) == 30 and ds.report.clean
    monkeypatch.setenv("JENA_DATA_DIR", str(cache))
    assert data.cache_dir() == cache
    assert len(data.load("jena")) == 30


def test_real_file_check_accepts_a_final_newline_or_none(small_jena: Path) -> None:
    content = small_jena.read_bytes()
    assert not content.endswith(b"\n")  # as distributed
    data.verify_jena_file(small_jena)
    for end in (b"\n", b"\r\n"):
        small_jena.write_bytes(content + end)
        data.verify_jena_file(small_jena)


def test_download_from_local_zip(small_jena: Path, tmp_path: Path) -> None:
    zpath = make_zip(small_jena, tmp_path / "dl.zip")
    cache = tmp_path / "cache"
    urls = ("file:///nonexistent/first.zip", zpath.as_uri())
    path = data.fetch_jena(cache, urls=urls)
    assert path == cache / JENA_FILENAME
    assert path.read_bytes() == small_jena.read_bytes()
    assert not list(cache.glob("*.part")) and not list(cache.glob(".*part"))
    # a second call uses the cache: the addresses may now be unreachable
    assert data.fetch_jena(cache, urls=("file:///nonexistent/x.zip",)) == path


def test_zip_in_cache_is_extracted_without_network(
    small_jena: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    make_zip(small_jena, cache / (JENA_FILENAME + ".zip"))
    monkeypatch.setattr(data.download, "urlopen", no_network)
    assert data.fetch_jena(cache).read_bytes() == small_jena.read_bytes()


def test_downloaded_file_is_verified(small_jena: Path, tmp_path: Path) -> None:
    wrong = write(tmp_path / "w", make_frame(30), JENA_FILENAME)  # right header, wrong first row
    zpath = make_zip(wrong, tmp_path / "wrong.zip")
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as info:
        data.fetch_jena(cache, urls=(zpath.as_uri(),))
    message = str(info.value)
    assert "\n" not in message and "bad download" in message and "first data row" in message
    assert not (cache / JENA_FILENAME).exists()


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda b: b.replace(b'"T (degC)"', b'"T"', 1), "line 1"),
        (lambda b: b.replace(b"-8.02", b"-8.03", 1), "first data row"),
        (lambda b: b[: b.rindex(b"\n")], "29 data rows, expected 30"),
        (lambda b: b"<html>oops</html>", "not the Jena climate file"),
    ],
)
def test_corrupted_cached_file_is_rejected(
    small_jena: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: Any, words: str
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / JENA_FILENAME).write_bytes(damage(small_jena.read_bytes()))
    monkeypatch.setattr(data.download, "urlopen", no_network)
    with pytest.raises(DataError) as info:
        data.load("jena", cache_dir=cache)
    message = str(info.value)
    assert "\n" not in message and words in message
    assert str(cache / JENA_FILENAME) in message and "delete it" in message


def test_unreachable_addresses_give_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(url: str, timeout: float | None = None) -> None:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(data.download, "urlopen", unreachable)
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as info:
        data.load("jena", cache_dir=cache)
    message = str(info.value)
    assert "\n" not in message
    assert "no network" in message and "s3.amazonaws.com" in message
    assert "storage.googleapis.com" in message
    assert str(cache) in message and "JENA_DATA_DIR" in message and "--data synthetic" in message
    assert not list(cache.iterdir())


def test_file_url_missing_gives_no_network_message(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no network"):
        data.fetch_jena(tmp_path / "c", urls=((tmp_path / "absent.zip").as_uri(),))


def test_download_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data.download, "urlopen", no_network)
    with pytest.raises(DataError, match="downloading is off"):
        data.load("jena", cache_dir=tmp_path, download=False)


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("JENA_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert data.cache_dir() == tmp_path / "jena"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data.cache_dir() == Path.home() / ".cache" / "jena"
