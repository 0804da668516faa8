"""The command line, run in-process through ``jena.cli.main`` (plus one smoke test of the
installed ``jena`` script): help everywhere, the exact Jena CSV from ``data synth``, ``data info``
reports and one-line errors, the persistence baseline, the search space, and ``train``.

Nothing here touches the network: the one test that asks for the real file blocks ``urlopen``.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import TINY

import jena.data
from jena.book import BOOK_MODELS
from jena.cli import build_parser, main
from jena.data import JENA_URLS, load
from jena.schema import COLUMNS, HEADER_LINE
from jena.space import SPACE

PRESETS = {name: m.config for name, m in BOOK_MODELS.items()}

QUICK = ["--epochs", "1", "--steps-per-epoch", "2", "--validation-steps", "1"]
DATE = re.compile(r"\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}:\d{2}")
VALUE = re.compile(r"-?\d+\.\d{2}")


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich tables as wide as they like (no wrapped or shortened names)."""
    monkeypatch.setenv("COLUMNS", "240")


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def assert_one_line_error(code: int, err: str, *words: str) -> str:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got:\n{err}"
    line = lines[0]
    assert line.startswith("error: ")
    for word in words:
        assert word in line, f"{word!r} not in {line!r}"
    return line


# --------------------------------------------------------------------------- help


def _commands(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    """Every command and subcommand path of the parser, e.g. ("data", "info")."""
    found: list[tuple[str, ...]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((*prefix, name))
                found.extend(_commands(sub, (*prefix, name)))
    return found


COMMANDS = [(), *_commands(build_parser())]
# Commands that read a record take --data; the others do not.
TAKES_DATA = {
    ("data", "info"): True,
    ("data", "synth"): False,
    ("baseline",): True,
    ("train",): True,
    ("space",): False,
    ("sweep",): True,
}


def test_every_documented_command_exists() -> None:
    for command in [("data",), *TAKES_DATA]:
        assert command in COMMANDS


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(("jena", *c)))
def test_help_everywhere(command: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main([*command, "--help"])
    assert excinfo.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(" ".join(("usage: jena", *command)))
    if command in TAKES_DATA:
        assert ("--data" in out) is TAKES_DATA[command]
    if command == ():
        for name in ("data", "baseline", "train", "space", "sweep"):
            assert name in out


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main([])
    assert excinfo.value.code == 2
    assert "usage: jena" in capsys.readouterr().err


def test_installed_script_help() -> None:
    script = Path(sys.executable).with_name("jena")
    exe = str(script) if script.exists() else shutil.which("jena")
    if exe is None:
        pytest.skip("the jena script is not installed")
    proc = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: jena")
    assert "Traceback" not in proc.stderr


# --------------------------------------------------------------------------- data synth / info


def test_data_synth_writes_the_exact_jena_format(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = in_tmp / "synth.csv"
    code, out, _ = run(["data", "synth", "--out", str(path), "--rows", "5000"], capsys)
    assert code == 0 and "5,000 rows" in out and str(path) in out
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == HEADER_LINE
    assert len(lines) == 1 + 5000
    for line in lines[1:]:
        date, *values = line.split(",")
        assert DATE.fullmatch(date), line
        assert len(values) == len(COLUMNS), line
        assert all(VALUE.fullmatch(v) for v in values), line
        assert "-0.00" not in values
    assert lines[1].startswith("01.01.2009 00:10:00,")
    assert lines[2].startswith("01.01.2009 00:20:00,")
    assert path.read_bytes().endswith(b"\n")  # a text file: `cat` leaves the prompt alone
    assert not (in_tmp / "synth.csv.part").exists()

    ds = load(path)  # reads back clean, row for row
    assert len(ds) == 5000 and ds.report.clean and ds.valid.all()


def test_data_synth_is_deterministic_and_seeded(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, seed in (("a.csv", "1"), ("b.csv", "1"), ("c.csv", "2")):
        run(["data", "synth", "--out", name, "--rows", "2000", "--seed", seed], capsys)
    a, b, c = ((in_tmp / n).read_bytes() for n in ("a.csv", "b.csv", "c.csv"))
    assert a == b and a != c


def test_data_synth_defects_and_data_info_reports_them(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = in_tmp / "defects.csv"
    code, out, _ = run(
        ["data", "synth", "--out", str(path), "--rows", "20000", "--defects"], capsys
    )
    assert code == 0 and "defects" in out
    assert path.read_text(encoding="utf-8").splitlines()[0] == HEADER_LINE

    code, out, _ = run(["data", "info", "--data", str(path), "--json"], capsys)
    assert code == 0
    report = json.loads(out)
    assert report["rows"] == 20000  # repaired back onto the full 10-minute grid
    assert report["clean"] is False
    found = " | ".join(d["defect"] for d in report["defects"])
    for defect in ("out of order", "duplicate", "wind sentinels", "short gaps", "long gaps"):
        assert defect in found, found
    assert all(d["count"] > 0 and d["action"] for d in report["defects"])
    assert report["invalid_rows"] > 0  # the long gap
    assert report["reconciliation"]["reconciles"] is True
    assert list(report["columns"]) == list(COLUMNS)

    code, out, _ = run(["data", "info", "--data", str(path)], capsys)  # the tables
    assert code == 0
    assert "wind sentinels" in out and "long gap" in out and "T (degC)" in out


def test_data_synth_defects_on_a_short_record(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The 17 default defects (5 sentinels, 4 duplicates, 1 duplicated day, 3 gaps, 1 long gap,
    # 3 swaps) each take a slot of the largest defect (the 368-row long gap) + 2 × 2 margin +
    # one day (144 rows): 17 × 516 + 2 = 8,774 rows. 5,000 rows: refused in one line, no file;
    # 8,774 rows: every defect, repaired on load.
    code, _, err = run(["data", "synth", "--out", "short.csv", "--rows", "5000", "--defects"],
                       capsys)  # fmt: skip
    assert_one_line_error(code, err, "--defects", "5000 rows, need 8774", "--rows")
    assert not (in_tmp / "short.csv").exists()
    code, out, _ = run(["data", "synth", "--out", "enough.csv", "--rows", "8774", "--defects"],
                       capsys)  # fmt: skip
    assert code == 0 and "wrote" in out and "(with injected defects)" in out
    report = load(in_tmp / "enough.csv").report
    assert not report.clean
    found = " | ".join(d["defect"] for d in report.defects())
    for defect in ("out of order", "duplicate", "wind sentinels", "short gaps", "long gaps"):
        assert defect in found, found
    assert len(report.long_gaps) == 1


def test_data_info_json_on_a_clean_file(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(["data", "synth", "--out", "clean.csv", "--rows", "3000"], capsys)
    code, out, _ = run(["data", "info", "--data", "clean.csv", "--json"], capsys)
    assert code == 0
    report = json.loads(out)
    assert report["rows"] == 3000 and report["invalid_rows"] == 0
    assert report["defects"] == [] and report["clean"] is True
    assert report["start"] == "2009-01-01 00:10:00" and report["step_minutes"] == 10
    assert list(report["columns"]) == list(COLUMNS)
    for stats in report["columns"].values():
        assert stats["count"] == 3000 and stats["min"] <= stats["mean"] <= stats["max"]

    code, out, _ = run(["data", "info", "--data", TINY, "--json"], capsys)
    assert code == 0 and json.loads(out)["rows"] == 24000


def _good_lines(n: int = 4) -> list[str]:
    rows = [
        f"01.01.2009 00:{10 * i:02d}:00,996.52,-8.02,265.40,-8.90,93.30,3.33,3.11,0.22,1.94,"
        "3.12,1307.75,1.03,1.75,152.30"
        for i in range(1, n + 1)
    ]
    return [HEADER_LINE, *rows]


BAD_FILES: dict[str, tuple[bytes, str]] = {
    "empty.csv": (b"", "empty"),
    "missing_column.csv": (
        "\n".join(
            [HEADER_LINE.replace(',"wd (deg)"', "")]
            + [line.rsplit(",", 1)[0] for line in _good_lines()[1:]]
        ).encode(),
        "wd (deg)",
    ),
    "non_numeric.csv": (
        "\n".join([*_good_lines()[:3], _good_lines()[3].replace("996.52", "abc")]).encode(),
        "abc",
    ),
    "html.csv": (b"<html><body>Not Found</body></html>\n", "HTML"),
    "binary.csv": (bytes(range(256)) * 8, "binary"),
    "archive.csv": (b"PK\x03\x04" + b"\x00" * 100, "zip"),
    "prose.csv": (b"hello, world\nthis is not the climate record\n", "header"),
    "utf16.csv": ("\n".join(_good_lines()).encode("utf-16"), "UTF-16 text"),
    "kelvin.csv": (
        "\n".join(_good_lines()).replace(",-8.02,", ",265.13,").encode(),
        "T (degC) looks like kelvin (median 265.1): convert to °C (subtract 273.15)",
    ),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_data_info_on_a_bad_file_is_one_line(
    name: str, in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, word = BAD_FILES[name]
    (in_tmp / name).write_bytes(content)
    code, out, err = run(["data", "info", "--data", str(in_tmp / name)], capsys)
    assert out == ""
    assert_one_line_error(code, err, name, word)


def test_data_info_reports_implausible_values(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(["data", "synth", "--out", "odd.csv", "--rows", "3000"], capsys)
    path = in_tmp / "odd.csv"
    lines = path.read_text(encoding="utf-8").split("\n")

    def put(lineno: int, column: str, value: str) -> None:
        fields = lines[lineno - 1].split(",")
        fields[1 + COLUMNS.index(column)] = value
        lines[lineno - 1] = ",".join(fields)

    for lineno in (500, 1500, 2500):
        put(lineno, "T (degC)", "-9999.00")
    put(1000, "p (mbar)", "9870.00")
    put(2000, "Tdew (degC)", "45.00")  # above T: the row is kept as read and marked invalid
    path.write_text("\n".join(lines), encoding="utf-8")

    code, out, _ = run(["data", "info", "--data", "odd.csv", "--json"], capsys)
    assert code == 0
    report = json.loads(out)
    assert report["clean"] is False and report["invalid_rows"] == 1
    found = {d["defect"]: (d["count"], d["action"]) for d in report["defects"]}
    sentinels = "missing-value sentinels (<= -999, e.g. -9999) in T (degC)"
    assert found[sentinels] == (3, "interpolated in time")
    assert found["values outside the physical range of p (mbar)"][0] == 1
    assert found["rows breaking Tdew (degC) <= T (degC) + 1"] == (1, "marked invalid (values kept)")
    assert report["repair"]["sentinels"] == {"T (degC)": 3}
    assert report["repair"]["out_of_range"] == {"p (mbar)": 1}
    assert -60 < report["columns"]["T (degC)"]["min"] < 60

    code, out, _ = run(["data", "info", "--data", "odd.csv"], capsys)
    assert code == 0
    assert "missing-value sentinels (<= -999, e.g. -9999) in T (degC): 3 -> interpolated" in out
    assert "values outside the physical range of p (mbar): 1 -> interpolated" in out
    assert "rows breaking Tdew (degC) <= T (degC) + 1: 1 -> marked invalid" in out


def test_data_info_on_a_missing_file_or_bad_spec(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["data", "info", "--data", "nowhere.csv"], capsys)
    assert_one_line_error(code, err, "nowhere.csv")
    code, _, err = run(["data", "info", "--data", "synthetic:many"], capsys)
    assert_one_line_error(code, err, "synthetic:many")


# --------------------------------------------------------------------------- baseline


@pytest.mark.parametrize(
    ("preset", "sequence_length", "val_windows", "test_windows"),
    [
        # book2: val rows 12,000-18,000, offset 119*6+144 = 858, span 714 (see jena.splits)
        ("book2", 120, 6000 - 858, 24000 - 858 - 714 - 18000),
        # book1: rows 0-11,413 / 11,415-17,120 / 17,121-24,000; offset 240*6+144 = 1,584
        ("book1", 240, 17120 - 11415 - 1584, None),
    ],
)
def test_baseline_json(
    preset: str,
    sequence_length: int,
    val_windows: int,
    test_windows: int | None,
    in_tmp: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(["baseline", "--data", TINY, "--preset", preset, "--json"], capsys)
    assert code == 0
    result = json.loads(out)
    assert result["preset"] == preset and result["rows"] == 24000
    assert result["sequence_length"] == sequence_length and result["sampling_rate"] == 6
    assert result["val_windows"] == val_windows
    if test_windows is not None:
        assert result["test_windows"] == test_windows
    for key in ("val_mae", "val_book_mae", "test_mae"):
        assert math.isfinite(result[key]) and 0.5 < result[key] < 10, (key, result[key])
    assert result["val_book_windows"] >= result["val_windows"] > 0
    assert result["test_windows"] > 0


def test_baseline_table(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["baseline", "--data", TINY, "--json"], capsys)
    result = json.loads(out)
    code, out, _ = run(["baseline", "--data", TINY], capsys)  # blocked on 5.5 months
    assert code == 0
    assert "persistence" in out and f"· {result['preset']} ·" in out
    for label, key in (("val", "val_mae"), ("test", "test_mae")):
        assert label in out and f"{result[key]:.4f}" in out
    assert f"{result['val_windows']:,}" in out


def test_book1_bounds_are_said_to_be_scaled_on_a_short_record(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["baseline", "--data", TINY, "--preset", "book1"], capsys)
    assert code == 0 and "bounds scaled by" in " ".join(out.split())
    code, out, _ = run(["baseline", "--data", TINY, "--preset", "book2"], capsys)
    assert code == 0 and "scaled" not in out
    code, out, _ = run(["data", "info", "--data", TINY, "--json"], capsys)
    splits = json.loads(out)["splits"]
    assert splits["book1"]["bounds_scaled"] and "24,000 rows" in splits["book1"]["bounds_note"]
    # 200,000 and 300,000 × 24,000 / 420,551 = 11,413.6 and 17,120.4, rounded
    assert splits["book1"]["bounds"] == {"train": [0, 11_414], "val": [11_415, 17_120],
                                         "test": [17_121, 24_000]}  # fmt: skip
    assert not splits["book2"]["bounds_scaled"] and splits["book2"]["bounds_note"] is None
    code, out, _ = run(["data", "info", "--data", TINY], capsys)
    assert "book1 split: train rows 0–" in out and "bounds scaled by" in " ".join(out.split())


def test_baseline_on_the_real_file_offline_says_use_synthetic(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = in_tmp / "no-data-here"
    empty.mkdir()
    monkeypatch.setenv("JENA_DATA_DIR", str(empty))
    tried: list[str] = []

    def offline(url: Any, *args: Any, **kwargs: Any) -> Any:
        tried.append(str(getattr(url, "full_url", url)))
        raise urllib.error.URLError("network blocked by the test")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setattr(jena.data.download, "urlopen", offline)  # it imported the name

    code, out, err = run(["baseline", "--data", "jena"], capsys)
    assert out == ""
    assert_one_line_error(code, err, "--data synthetic", str(empty))
    assert tried == list(JENA_URLS)  # both addresses tried, no other network use
    assert list(empty.iterdir()) == []  # no half-downloaded file left behind


def test_baseline_rejects_an_unknown_preset(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(["baseline", "--data", TINY, "--preset", "book3"])
    assert excinfo.value.code == 2
    assert "book3" in capsys.readouterr().err


def test_a_one_year_record_is_told_to_use_the_blocked_split(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`data info` and `baseline` say that book2 puts a one-year record's splits in different
    seasons and what to use instead; blocked is listed, covers every season, and says nothing."""
    year = "synthetic:52704"
    code, out, _ = run(["data", "info", "--data", year, "--json"], capsys)
    splits = json.loads(out)["splits"]
    assert code == 0 and set(splits) == {"book2", "book1", "blocked"}
    assert "different seasons" in splits["book2"]["season_note"]
    assert splits["blocked"]["season_note"] is None
    assert splits["blocked"]["seasons"]["test"] == ["winter", "spring", "summer", "autumn"]
    code, out, _ = run(["data", "info", "--data", year], capsys)
    text = " ".join(out.split())
    assert "blocked split: 14-day blocks in rotation train, train, val, test" in text
    assert "puts the splits in different seasons" in text and "--preset blocked" in text
    code, out, _ = run(["baseline", "--data", year, "--preset", "book2"], capsys)
    assert code == 0 and "--preset blocked" in " ".join(out.split())
    code, out, _ = run(["baseline", "--data", year, "--preset", "blocked", "--json"], capsys)
    result = json.loads(out)
    assert code == 0 and result["preset"] == "blocked" and result["season_note"] is None
    for split in ("val", "test"):
        c = result["ridge"][split]["comparison"]
        assert c["reference_mae"]["estimate"] == pytest.approx(result[f"{split}_mae"])
        assert c["windows"] == result[f"{split}_windows"]
        assert c["skill"]["low"] < c["skill"]["estimate"] < c["skill"]["high"]
        assert 0 <= c["dm"]["p_value"] <= 1
    code, out, _ = run(["baseline", "--data", year, "--preset", "blocked"], capsys)
    assert "ridge" in out and "[95 %]" in out and "%, +" in out


def test_a_bad_blocked_preset_names_its_bad_part(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(["baseline", "--data", TINY, "--preset", "blocked:14:train,vaal,test"])
    err = capsys.readouterr().err
    assert excinfo.value.code == 2 and "role 'vaal' is not train, val or test" in err


# --------------------------------------------------------------------------- space

# Parameters of the book's models on the 14 Jena columns, by hand: Dense in*out + out; LSTM(u)
# 4(u(f + u) + u); GRU(u) (reset_after) 3u(f + u) + 6u; Conv1D(n, k) k·c·n + n.
BOOK_PARAMS = {
    "dense": 120 * 14 * 16 + 16 + 17,
    "conv1d": (24 * 14 * 8 + 8) + (12 * 8 * 8 + 8) + (6 * 8 * 8 + 8) + 9,
    "lstm": 4 * (16 * 30 + 16) + 17,
    "lstm_dropout": 4 * (32 * 46 + 32) + 33,
    "stacked_gru_dropout": (3 * 32 * 46 + 192) + (3 * 32 * 64 + 192) + 33,
    "bilstm": 2 * 4 * (16 * 30 + 16) + 33,
    "dense32": 240 * 14 * 32 + 32 + 33,
    "gru": 3 * 32 * 46 + 192 + 33,
    "gru_dropout": 3 * 32 * 46 + 192 + 33,
    "stacked_gru": (3 * 32 * 46 + 192) + (3 * 64 * 96 + 384) + 65,
    "bigru": 2 * (3 * 32 * 46 + 192) + 65,
    "gru_reversed": 3 * 32 * 46 + 192 + 33,
    "conv1d_1st": (5 * 14 * 32 + 32) + 2 * (5 * 32 * 32 + 32) + 33,
    "conv_gru": (5 * 14 * 32 + 32) + (5 * 32 * 32 + 32) + (3 * 32 * 64 + 192) + 33,
}


def test_space_lists_every_param_and_every_book_model(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(["space"], capsys)
    assert code == 0
    for name in SPACE.names:
        assert re.search(rf"\b{name}\b", out), name
    for name in PRESETS:
        assert re.search(rf"\b{name}\b", out), name
        row = next(line for line in out.splitlines() if re.match(rf"│ {name}\s+│ book", line))
        assert f"{BOOK_PARAMS[name]:,}" in row, name


def test_space_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["space", "--json"], capsys)
    assert code == 0
    rows = json.loads(out)
    assert [r["name"] for r in rows] == list(SPACE.names)
    for row in rows:
        assert {"name", "type", "range", "default", "condition"} <= set(row)


# --------------------------------------------------------------------------- train


def train_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, _ = run(["train", "--data", TINY, *QUICK, "--json", *argv], capsys)
    assert code == 0, out
    result = json.loads(out)  # stdout is the JSON document and nothing else
    assert isinstance(result, dict)
    return result


def test_train_json(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = train_json(["--model", "dense"], capsys)
    assert result["state"] == "completed" and result["reason"] is None
    assert math.isfinite(result["val_mae"]) and result["val_mae"] > 0
    assert math.isfinite(result["baseline_val_mae"]) and result["baseline_val_mae"] > 0
    assert result["val_skill"] == pytest.approx(1 - result["val_mae"] / result["baseline_val_mae"])
    assert result["best_epoch"] == 1 and len(result["history"]) == 1
    assert set(result["history"][0]) >= {"epoch", "loss", "mae", "val_loss", "val_mae"}
    assert result["config"] == PRESETS["dense"].to_dict()
    assert result["param_count"] == 120 * 14 * 16 + 16 + 16 + 1  # Flatten → Dense(16) → Dense(1)


def test_train_set_overrides(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = train_json(
        ["--model", "lstm", "--set", "units=32", "--set", "learning_rate=0.01",
         "--set", "sequence_length=24", "--seed", "5"],
        capsys,
    )  # fmt: skip
    config = result["config"]
    assert config["architecture"] == "lstm"
    assert config["rnn_units"] == [32]
    assert config["learning_rate"] == pytest.approx(0.01)
    assert config["sequence_length"] == 24 and config["seed"] == 5
    assert result["param_count"] == 4 * (32 * (14 + 32) + 32) + 32 + 1  # LSTM(32) → Dense(1)
    assert result["state"] == "completed"


def test_train_config_file(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = in_tmp / "small.toml"
    path.write_text(
        'architecture = "dense"\n'
        "dense_units = [8]\n"
        "sequence_length = 24\n"
        "batch_size = 32\n"
        'optimizer = "adam"\n'
        "learning_rate = 0.002\n",
        encoding="utf-8",
    )
    result = train_json(["--config", str(path)], capsys)
    config = result["config"]
    assert config["architecture"] == "dense" and config["dense_units"] == [8]
    assert config["sequence_length"] == 24 and config["batch_size"] == 32
    assert config["optimizer"] == "adam" and config["learning_rate"] == pytest.approx(0.002)
    assert result["state"] == "completed" and math.isfinite(result["val_mae"])


def test_train_table(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        ["train", "--data", TINY, *QUICK, "--set", "architecture=dense",
         "--set", "sequence_length=24", "--set", "dense_units=[8]"],
        capsys,
    )  # fmt: skip
    assert code == 0
    assert "completed" in out and "persistence (same targets)" in out
    assert "validation targets" in out  # how many targets the MAEs cover
    assert "val MAE" in out and "epoch   1" in out


BAD_TRAIN = {
    "--set without =": (["--set", "units"], "units"),
    "--set unknown name": (["--set", "nonsense=3"], "nonsense"),
    "--set out of range": (["--set", "units=100000"], "units"),
    "--set wrong type": (["--set", "learning_rate=fast"], "learning_rate"),
    "--set bad value": (["--set", "dropout=1.5"], "dropout"),
    "unknown model": (["--model", "transformer"], "transformer"),
    "model and config": (["--model", "dense", "--config", "x.toml"], "--config"),
    "no such config file": (["--config", "missing.toml"], "missing.toml"),
}


@pytest.mark.parametrize("case", list(BAD_TRAIN))
def test_train_bad_arguments_are_one_line_errors(
    case: str, in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, word = BAD_TRAIN[case]
    code, out, err = run(["train", "--data", TINY, *QUICK, *argv], capsys)
    assert out == ""  # nothing started
    assert_one_line_error(code, err, word)


BAD_CONFIG_FILES = {
    "broken.toml": ('architecture = "dense\n', "TOML"),
    "unknown_key.toml": ("unit = 32\n", "unit"),
    "wrong_type.toml": ('sequence_length = "long"\n', "sequence_length"),
    "bad_value.toml": ('architecture = "transformer"\n', "transformer"),
    "broken.json": ('{"architecture": ', "JSON"),
}


@pytest.mark.parametrize("name", list(BAD_CONFIG_FILES))
def test_train_bad_config_files_are_one_line_errors(
    name: str, in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, word = BAD_CONFIG_FILES[name]
    (in_tmp / name).write_text(text, encoding="utf-8")
    code, out, err = run(["train", "--data", TINY, *QUICK, "--config", name], capsys)
    assert out == ""
    line = assert_one_line_error(code, err, word)
    if name != "bad_value.toml":  # parse errors name the file
        assert name in line
