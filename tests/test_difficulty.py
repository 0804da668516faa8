"""The statistics of a record's difficulty (jena.difficulty): each definition against a hand
computation on a tiny series, and ``jena data info --stats`` on a synthetic and a CSV record."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jena.cli import main
from jena.difficulty import REAL_2020, STATISTICS, autocorrelation, temperature_statistics
from jena.schema import ROWS_PER_DAY

DAY = ROWS_PER_DAY


def _series(levels: list[float], ranges: list[float]) -> pd.Series:
    """Whole calendar days from midnight: day ``k`` is ``levels[k]`` in its first 12 hours and
    ``levels[k] + ranges[k]`` in its last 12 (so its range is ``ranges[k]``)."""
    values = np.concatenate(
        [
            np.r_[np.full(DAY // 2, a), np.full(DAY // 2, a + c)]
            for a, c in zip(levels, ranges, strict=True)
        ]
    )
    index = pd.date_range("2020-03-01 00:00", periods=len(values), freq="10min")
    return pd.Series(values, index=index, name="T (degC)")


def test_24h_change_statistics_by_hand() -> None:
    # Levels 0, 2, 1, 4, 0 with the same 6 °C daily step: every 24-h change within day k is
    # levels[k+1] − levels[k]: 2, −1, 3, −4, 144 rows each.
    s = temperature_statistics(_series([0, 2, 1, 4, 0], [6, 6, 6, 6, 6]))
    assert s.change_mae == pytest.approx((2 + 1 + 3 + 4) / 4)
    assert s.change_std == pytest.approx(math.sqrt((4 + 1 + 9 + 16) / 4))  # the mean is 0
    assert s.change_kurtosis == pytest.approx(((16 + 1 + 81 + 256) / 4) / 7.5**2 - 3)
    # lag 24 h: the pairs (2, −1), (−1, 3), (3, −4), 144 times each
    assert s.change_acf24 == pytest.approx(-129 / math.sqrt(78 * 222))
    # T against T 24 h later: levels (0,2,1,4) vs (2,1,4,0), each plus the same 0/6 step:
    # var 2.1875 + 9 each side, covariance −1.5625 + 9
    assert s.t_acf24 == pytest.approx(7.4375 / 11.1875)
    assert s.diurnal_range_mean == pytest.approx(6.0)
    assert s.diurnal_range_cv == pytest.approx(0.0)


def test_daily_statistics_by_hand() -> None:
    # Daily means: level + range / 2 = 2, 6, 3, 8, 3; day-to-day changes 4, −3, 5, −5.
    s = temperature_statistics(_series([0, 2, 1, 4, 0], [4, 8, 4, 8, 6]))
    assert s.daily_change_std == pytest.approx(math.sqrt(74.75 / 4))
    assert s.daily_change_acf1 == pytest.approx(-46 / math.sqrt(38 * 56))
    # 5 days: every centred 31-day window holds them all, so the running mean is their mean
    # 4.4 and the anomalies are −2.4, 1.6, −1.4, 3.6, −1.4.
    assert s.daily_anomaly_acf1 == pytest.approx(-17 / math.sqrt(22.75 * 18))
    assert s.diurnal_range_mean == pytest.approx(6.0)
    assert s.diurnal_range_cv == pytest.approx(math.sqrt(16 / 5) / 6)


def test_partial_days_and_untrusted_rows() -> None:
    series = _series([0, 2, 1, 4, 0], [6, 6, 6, 6, 6])
    # untrusted rows count as missing: without day 4 the changes are 2, −1, 3
    valid = np.ones(len(series), dtype=bool)
    valid[4 * DAY :] = False
    s = temperature_statistics(series, valid)
    assert s.change_mae == pytest.approx(2.0)
    assert s.daily_change_std == pytest.approx(np.std([2, -1, 3]))
    # a partial last day (one row, range 0) counts as a day, as a calendar resample gives it
    one_more = pd.concat(
        [series, pd.Series([0.0], index=[series.index[-1] + pd.Timedelta("10min")])]
    )
    assert temperature_statistics(one_more).diurnal_range_mean == pytest.approx(5 * 6 / 6)


def test_autocorrelation_skips_missing_pairs() -> None:
    x = np.array([1.0, 2.0, np.nan, 4.0, 3.0, 5.0])
    # lag 1 pairs without a NaN: (1,2), (4,3), (3,5)
    assert autocorrelation(x, 1) == pytest.approx(np.corrcoef([1, 4, 3], [2, 3, 5])[0, 1])
    assert math.isnan(autocorrelation(x, 6))


def test_rejects_short_or_irregular_records() -> None:
    with pytest.raises(ValueError, match="3 days"):
        temperature_statistics(_series([0], [1]))
    series = _series([0, 1, 2, 3], [1, 1, 1, 1])
    with pytest.raises(ValueError, match="10-minute grid"):
        temperature_statistics(series.drop(series.index[100]))


def test_data_info_stats_json_and_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "240")
    monkeypatch.chdir(tmp_path)
    # a small record in the Jena format: the T statistics, no ridge on a split it cannot fill
    assert main(["data", "synth", "--out", "small.csv", "--rows", "3000"]) == 0
    capsys.readouterr()
    assert main(["data", "info", "--data", "small.csv", "--stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)["difficulty"]
    for name in STATISTICS:
        assert math.isfinite(stats[name]), name
    assert stats["real_2020"] == REAL_2020
    assert stats["ridge"]["book2"] is None and stats["ridge_notes"]["book2"]

    # the synthetic year: every row of the table, the ridge with its intervals
    code = main(["data", "info", "--data", "synthetic:52704", "--stats"])
    out, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in out + err
    for label in ("mean absolute 24-h change", "excess kurtosis", "lag-1 autocorrelation of its "
                  "31-day anomaly", "diurnal range", "blocked split", "book2 split"):  # fmt: skip
        assert label in out, label
    assert "real 2020" in out and "2.658" in out


# ---------------------------------------------------------------- the calibrated generator

# The issue-29 targets: within ±15 % of the real 2020 value (the kurtosis at least 1.0, the
# lag-24-h autocorrelation of the 24-h change at most −0.10), the ridge's blocked skill in
# [−2 %, +7 %] on validation and on test.
TOLERANCE = 0.15
RIDGE_BAND = (-0.02, 0.07)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_synthetic_year_is_as_hard_as_the_station(seed: int) -> None:
    from jena.data import load
    from jena.difficulty import difficulty

    d = difficulty(load(f"synthetic:52704:{seed}"))
    stats = d.temperature.to_dict()
    misses = [
        f"{name} {stats[name]:+.3f} vs real {REAL_2020[name]:+.3f}"
        for name in STATISTICS
        if abs(stats[name] - REAL_2020[name]) > TOLERANCE * abs(REAL_2020[name])
    ]
    assert not misses, misses
    assert stats["change_kurtosis"] >= 1.0
    assert stats["change_acf24"] <= -0.10
    blocked = d.ridge["blocked"]
    assert blocked is not None
    for split in ("val", "test"):
        skill = getattr(blocked, split).estimate
        assert RIDGE_BAND[0] <= skill <= RIDGE_BAND[1], (split, skill)
