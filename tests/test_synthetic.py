"""Tests of the synthetic Jena-like weather generator (jena.synthetic)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from jena import schema, synthetic
from jena.data import load
from jena.data.dataset import spec_from_source
from jena.synthetic import DefectCounts, defect_counts, generate, inject_defects, magnus

TWO_YEARS = 2 * 365 * schema.ROWS_PER_DAY  # 105,120 rows: the fast tests' length

# Mean / std of the real file (shared/reference/jena-data.md, wind sentinels set to 0).
REFERENCE: dict[str, tuple[float, float]] = {
    "p (mbar)": (989.21, 8.36),
    "T (degC)": (9.45, 8.42),
    "Tpot (K)": (283.49, 8.50),
    "Tdew (degC)": (4.96, 6.73),
    "rh (%)": (76.0, 16.48),
    "VPmax (mbar)": (13.58, 7.74),
    "VPact (mbar)": (9.53, 4.18),
    "VPdef (mbar)": (4.04, 4.90),
    "sh (g/kg)": (6.02, 2.66),
    "H2OC (mmol/mol)": (9.64, 4.24),
    "rho (g/m**3)": (1216.06, 39.98),
    "wv (m/s)": (2.13, 1.54),
    "max. wv (m/s)": (3.53, 2.34),
    "wd (deg)": (174.7, 86.7),
}


@pytest.fixture(scope="module")
def two_years() -> pd.DataFrame:
    return generate(TWO_YEARS, seed=0)


# --------------------------------------------------------------------------- shape, determinism


def test_shape_columns_and_grid(two_years: pd.DataFrame) -> None:
    frame = two_years
    assert list(frame.columns) == list(schema.COLUMNS)
    assert len(frame) == TWO_YEARS
    assert all(dtype == np.float64 for dtype in frame.dtypes)
    assert isinstance(frame.index, pd.DatetimeIndex)
    assert frame.index.name == schema.DATE_COLUMN
    assert frame.index[0] == pd.Timestamp("2009-01-01 00:10:00")
    steps = np.diff(frame.index.to_numpy())
    assert np.all(steps == schema.STEP.to_timedelta64())
    values = frame.to_numpy()
    assert np.isfinite(values).all()
    np.testing.assert_array_equal(values, np.round(values, 2))


def test_default_length_and_start() -> None:
    frame = generate(1000, start="2012-06-30 12:00:00")
    assert frame.index[0] == pd.Timestamp("2012-06-30 12:00:00")
    assert synthetic.generate.__defaults__ == (schema.JENA_ROWS, 0, synthetic.DEFAULT_START)


def test_same_seed_same_frame_and_prefix_stable() -> None:
    a = generate(5000, seed=3)
    b = generate(5000, seed=3)
    pd.testing.assert_frame_equal(a, b)
    longer = generate(8000, seed=3)
    pd.testing.assert_frame_equal(a, longer.iloc[:5000])


def test_different_seed_different_frame() -> None:
    a = generate(5000, seed=0)
    b = generate(5000, seed=1)
    assert not np.allclose(a[schema.TARGET], b[schema.TARGET])
    assert (a["p (mbar)"] != b["p (mbar)"]).mean() > 0.9


def test_rejects_no_rows() -> None:
    with pytest.raises(ValueError, match="rows"):
        generate(0)


# --------------------------------------------------------------------------- physics


def test_physical_relations(two_years: pd.DataFrame) -> None:
    f = {c: two_years[c].to_numpy() for c in schema.COLUMNS}
    t, tdew, p = f["T (degC)"], f["Tdew (degC)"], f["p (mbar)"]
    half = 0.005 + 1e-9  # one rounding to two decimals
    assert np.all(tdew <= t)
    assert np.all((f["rh (%)"] > 0) & (f["rh (%)"] <= 100))
    np.testing.assert_allclose(f["VPmax (mbar)"], magnus(t), rtol=0, atol=half)
    np.testing.assert_allclose(f["VPact (mbar)"], magnus(tdew), rtol=0, atol=half)
    np.testing.assert_allclose(f["rh (%)"], 100 * magnus(tdew) / magnus(t), rtol=0, atol=half)
    np.testing.assert_allclose(
        f["VPdef (mbar)"], f["VPmax (mbar)"] - f["VPact (mbar)"], rtol=0, atol=3 * half
    )
    vpact = magnus(tdew)
    np.testing.assert_allclose(f["sh (g/kg)"], 622 * vpact / (p - 0.378 * vpact), rtol=0, atol=half)
    np.testing.assert_allclose(f["H2OC (mmol/mol)"], 1000 * vpact / p, rtol=0, atol=half)
    np.testing.assert_allclose(
        f["rho (g/m**3)"], 100 * p / (287.05 * (t + 273.15)) * 1000, rtol=0, atol=half
    )
    np.testing.assert_allclose(f["Tpot (K)"], (t + 273.15) * (1000 / p) ** 0.286, rtol=0, atol=half)
    assert np.all(f["wv (m/s)"] >= 0)
    assert np.all(f["max. wv (m/s)"] >= f["wv (m/s)"])
    assert np.all((f["wd (deg)"] >= 0) & (f["wd (deg)"] < 360))
    assert abs(p.mean() - 989) < 2


def test_daily_cycle_larger_in_summer(two_years: pd.DataFrame) -> None:
    t = two_years[schema.TARGET]
    index = pd.DatetimeIndex(t.index)
    day_range = t.groupby(index.date).agg(lambda x: x.max() - x.min())
    months = pd.DatetimeIndex(day_range.index).month
    summer = day_range[np.isin(months, [6, 7])].mean()
    winter = day_range[np.isin(months, [12, 1])].mean()
    assert summer > 1.5 * winter
    # warmest hour in the afternoon, coldest around dawn
    by_hour = t.groupby(index.hour).mean().to_numpy()
    assert 12 <= int(np.argmax(by_hour)) <= 17
    assert int(np.argmin(by_hour)) <= 7


def test_v1_falling_pressure_and_southerly_wind_lead_warming() -> None:
    # the first generator's designed signal beyond persistence (kept for old results)
    frame = synthetic.generate_v1(TWO_YEARS, seed=0)
    t = frame[schema.TARGET].to_numpy()
    p = frame["p (mbar)"].to_numpy()
    wv = frame["wv (m/s)"].to_numpy()
    wd = np.radians(frame["wd (deg)"].to_numpy())
    day = schema.ROWS_PER_DAY
    rows = np.arange(day, len(t) - day, 3)
    warming = t[rows + day] - t[rows]
    tendency = p[rows] - p[rows - 6 * schema.ROWS_PER_HOUR]
    northward = -wv[rows] * np.cos(wd[rows])  # wind from the south blows northward
    assert np.corrcoef(tendency, warming)[0, 1] < -0.1
    assert np.corrcoef(northward, warming)[0, 1] > 0.1


def test_fronts_move_temperature_pressure_wind_and_humidity_together(
    two_years: pd.DataFrame,
) -> None:
    """At the sharpest 3-hour drops of T beyond the daily cycle's (cold fronts; one a day at
    most), the pressure has fallen before and rises after, the wind turns to the north and
    blows harder, and the dew point falls with the temperature."""
    f = {c: two_years[c].to_numpy() for c in schema.COLUMNS}
    t, p, tdew, wv = f["T (degC)"], f["p (mbar)"], f["Tdew (degC)"], f["wv (m/s)"]
    northward = -wv * np.cos(np.radians(f["wd (deg)"]))
    h, day = schema.ROWS_PER_HOUR, schema.ROWS_PER_DAY
    rows = np.arange(day + 3 * h, len(t) - day)
    drop = np.full(len(t), np.inf)  # the 3-h change less the same 3 h of the day before
    drop[rows] = (t[rows] - t[rows - 3 * h]) - (t[rows - day] - t[rows - day - 3 * h])
    fronts: list[int] = []
    for row in np.argsort(drop):
        if all(abs(row - other) > day for other in fronts):
            fronts.append(int(row))
        if len(fronts) == 50:
            break
    at = np.array(fronts)
    assert drop[at].mean() < -5.0
    assert (p[at] - p[at - 6 * h]).mean() < -0.5  # falls before the front
    assert (p[at + 6 * h] - p[at]).mean() > 0.5  # and rises behind it
    assert northward[at + 6 * h].mean() < northward[at - 6 * h].mean() - 1.0
    speed_near = np.array([wv[a - 3 * h : a + 3 * h].mean() for a in at])
    assert speed_near.mean() > 1.5 * np.median(wv)
    assert (tdew[at + 12 * h] - tdew[at - 6 * h]).mean() < -2.0


# --------------------------------------------------------------------------- calibration


def _assert_like_reference(frame: pd.DataFrame) -> None:
    for column, (mean, std) in REFERENCE.items():
        values = frame[column]
        assert abs(values.mean() - mean) <= 0.3 * std, column
        assert 0.7 * std <= values.std() <= 1.3 * std, column


def test_calibration_fast(two_years: pd.DataFrame) -> None:
    t = two_years[schema.TARGET]
    assert abs(t.mean() - 9.5) <= 1.0
    assert abs(t.std() - 8.4) <= 0.7
    _assert_like_reference(two_years)


def test_ridge_gains_no_more_than_learned_models_at_the_station_fast(
    two_years: pd.DataFrame,
) -> None:
    # On the real record learned models gain about 7-10 % over persistence
    # (shared/reference/jena-data.md): a simple linear model on the calibrated generator must not
    # gain more than 12 %, nor lose to persistence. (The issue-29 band of the project's ridge on
    # a year is tested in test_difficulty.py.)
    t = two_years[schema.TARGET].to_numpy()
    for split in ("val", "test"):
        persistence = synthetic.persistence_mae(t, split)
        assert 2.0 <= persistence <= 3.1, split
        skill = 1.0 - synthetic.ridge_mae(two_years, split) / persistence
        assert 0.0 <= skill <= 0.12, (split, skill)


def test_v1_ridge_beats_persistence_fast() -> None:
    frame = synthetic.generate_v1(TWO_YEARS, seed=0)
    t = frame[schema.TARGET].to_numpy()
    for split in ("val", "test"):
        persistence = synthetic.persistence_mae(t, split)
        assert 2.0 <= persistence <= 3.1, split
        assert synthetic.ridge_mae(frame, split) < 0.97 * persistence, split


def test_v1_is_the_first_generator() -> None:
    # values of generate(60_000, seed=2) at commit a535a8a, before issue 29
    frame = synthetic.generate_v1(60_000, seed=2)
    expected = {0: (984.19, 0.53, 0.29, 3.65), 30_000: (1000.79, 10.46, 2.83, 1.63),
                59_999: (997.54, 7.30, 0.29, 1.06)}  # fmt: skip
    columns = ["p (mbar)", "T (degC)", "Tdew (degC)", "wv (m/s)"]
    for row, values in expected.items():
        assert tuple(frame[columns].iloc[row]) == pytest.approx(values, abs=1e-9), row
    loaded = load("synthetic-v1:60000:2")
    np.testing.assert_array_equal(loaded.frame.to_numpy(), frame.to_numpy())
    assert (loaded.frame.index == frame.index).all()
    assert loaded.source == "synthetic-v1(rows=60000, seed=2)"
    assert spec_from_source(loaded.source) == "synthetic-v1:60000:2"
    assert load("synthetic:3000:2").source == "synthetic(rows=3000, seed=2)"
    calibrated = load("synthetic:3000:2").frame[schema.TARGET]
    assert not np.allclose(calibrated, frame[schema.TARGET][:3000])


def test_book2_splits_match_the_book() -> None:
    splits = synthetic.book2_splits(schema.JENA_ROWS)
    assert synthetic.book2_delay() == 858
    assert splits["train"] == (0, 210_275 - 714)
    assert splits["val"] == (210_275, 210_275 + 105_137 - 714)
    assert splits["test"] == (315_412, schema.JENA_ROWS - 858 - 714)


def test_persistence_mae_by_hand() -> None:
    t = np.arange(10_000, dtype=np.float64)  # T rises 1 per row: every error is 144
    assert synthetic.persistence_mae(t, "test") == pytest.approx(144.0)
    with pytest.raises(ValueError, match="no test windows"):
        synthetic.persistence_mae(t[:5000], "test")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("make", "skill_band"),
    [
        # issue 29: no more than learned models gain on the real record (7-10 %, jena-data.md)
        (synthetic.generate, (0.0, 0.10)),
        # the first generator, kinder: 5 % to 15 %
        (synthetic.generate_v1, (0.05, 0.15)),
    ],
    ids=["calibrated", "v1"],
)
def test_full_length_calibration(make: Any, skill_band: tuple[float, float]) -> None:
    started = time.perf_counter()
    full = make()
    assert time.perf_counter() - started < 30  # a few seconds when the machine is idle
    c = synthetic.calibration(full)
    assert c.rows == schema.JENA_ROWS
    assert abs(c.t_mean - 9.5) <= 0.7
    assert abs(c.t_std - 8.4) <= 0.7
    assert 2.2 <= c.persistence_val <= 2.9
    assert 2.2 <= c.persistence_test <= 2.9
    assert skill_band[0] <= c.ridge_skill <= skill_band[1]
    _assert_like_reference(full)


# --------------------------------------------------------------------------- defects


def _runs(mask: np.ndarray) -> list[int]:
    """Lengths of the runs of True in ``mask``."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(edges[1::2] - edges[::2])


def test_inject_defects_counts_match_the_frame() -> None:
    clean = generate(30_000, seed=5)
    dirty = inject_defects(clean, seed=2)
    counts = defect_counts(dirty)
    assert isinstance(counts, DefectCounts)
    assert counts == DefectCounts(
        sentinel_rows=5,
        wv_sentinels=5,
        max_wv_sentinels=counts.max_wv_sentinels,
        duplicate_rows=4 + 144,
        duplicated_days=1,
        missing_rows=counts.missing_rows,
        gaps=4,
        longest_gap_rows=368,
        out_of_order=3,
        descents=4,
    )
    assert 368 + 3 <= counts.missing_rows <= 368 + 18
    assert len(dirty) == len(clean) + counts.duplicate_rows - counts.missing_rows

    # sentinels
    assert (dirty["wv (m/s)"] == schema.WIND_SENTINEL).sum() == counts.wv_sentinels
    assert (dirty["max. wv (m/s)"] == schema.WIND_SENTINEL).sum() == counts.max_wv_sentinels
    other = [c for c in schema.COLUMNS if c not in schema.WIND_COLUMNS]
    assert (dirty[other] > -9000).all().all()

    # duplicates are exact copies of rows of the clean frame
    index = pd.DatetimeIndex(dirty.index)
    assert index.duplicated().sum() == counts.duplicate_rows
    assert dirty.reset_index().duplicated().sum() == counts.duplicate_rows
    per_day = pd.Series(1, index=index).groupby(index.date).size()
    assert (per_day == 2 * schema.ROWS_PER_DAY).sum() == 1

    # gaps
    unique = index.unique().sort_values()
    grid = pd.date_range(unique[0], unique[-1], freq=schema.STEP)
    absent = ~grid.isin(unique)
    assert absent.sum() == counts.missing_rows
    runs = _runs(absent)
    assert len(runs) == counts.gaps
    assert max(runs) == counts.longest_gap_rows
    assert index[0] == clean.index[0] and index[-1] == clean.index[-1]

    # order
    assert (np.diff(index.asi8) < 0).sum() == counts.descents
    assert counts.as_dict()["out_of_order"] == 3

    # the clean frame is untouched, and the defects are deterministic
    pd.testing.assert_frame_equal(clean, generate(30_000, seed=5))
    again = inject_defects(clean, seed=2)
    pd.testing.assert_frame_equal(dirty, again)
    assert defect_counts(again) == counts
    with pytest.raises(ValueError, match="no defect counts"):
        defect_counts(clean)


def test_inject_defects_none_is_identity() -> None:
    clean = generate(2000)
    same = inject_defects(
        clean, sentinels=0, duplicates=0, duplicated_days=0, gaps=0, long_gaps=0, shuffled=0
    )
    pd.testing.assert_frame_equal(same, clean)
    assert sum(defect_counts(same).as_dict().values()) == 0


def test_inject_defects_rejects_bad_requests() -> None:
    with pytest.raises(ValueError, match="too short"):
        inject_defects(generate(2000))
    with pytest.raises(ValueError, match="gaps"):
        inject_defects(generate(2000), gaps=-1)


# --------------------------------------------------------------------------- writing


def test_round_trip_through_write_jena_csv(tmp_path: Path) -> None:
    clean = generate(20_000, seed=1)
    dirty = inject_defects(clean, seed=1)
    counts = defect_counts(dirty)
    path = schema.write_jena_csv(dirty, tmp_path / schema.JENA_FILENAME, final_newline=False)
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    assert lines[0] == schema.HEADER_LINE
    assert not text.endswith("\n")  # byte for byte like the real file
    assert len(lines) == 1 + len(dirty)
    assert lines[1].startswith("01.01.2009 00:10:00,")
    for line in lines[1:50]:
        fields = line.split(",")
        assert len(fields) == 1 + len(schema.COLUMNS)
        assert dt.datetime.strptime(fields[0], schema.DATE_FORMAT).second == 0
        assert all(len(v.split(".")[1]) == 2 for v in fields[1:])
    assert "-0.00" not in text
    assert text.count(",-9999.00") == counts.wv_sentinels + counts.max_wv_sentinels

    back = pd.read_csv(path)
    assert list(back.columns) == [schema.DATE_COLUMN, *schema.COLUMNS]
    times = pd.to_datetime(back[schema.DATE_COLUMN], format=schema.DATE_FORMAT)
    np.testing.assert_array_equal(times.to_numpy(), dirty.index.to_numpy())
    np.testing.assert_array_equal(back[list(schema.COLUMNS)].to_numpy(), dirty.to_numpy())
