"""The split a record gets when no preset is given (issue 35): the book's ``book2`` where a
chronological split holds every season in each part, the season-aware ``blocked`` on a shorter
record — chosen once per sweep, said in one line, recorded on the parent run, and used by
``jena best``; ``jena baseline`` and ``jena train`` follow the same rule; an explicit preset
wins."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import pytest
from conftest import TINY_SETS, mlflow_uris, runs, tiny_sweep, tracking_uri_of

from jena import cli
from jena.data import load
from jena.splits import default_preset, season_note

YEAR = "synthetic:52704"  # one year of 10-minute rows: book2 trains, selects, tests in 3 seasons
FULL = "synthetic:420551"  # the full length, 8 years
CHOSEN = "a 1-year record: the season-aware `blocked` split; `--preset book2` for the book's"
QUICK = ["--epochs", "1", "--steps-per-epoch", "2", "--validation-steps", "1"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, (out + err)[-3000:]
    return code, out, err


def flat(text: str) -> str:
    return " ".join(text.split())


def test_the_rule_follows_the_season_note() -> None:
    """blocked exactly where book2's chronological split puts the parts in different seasons."""
    year = load(YEAR).frame.index
    assert season_note("book2", year) is not None
    assert default_preset(year).name == "blocked"
    full = load(FULL).frame.index
    assert season_note("book2", full) is None
    assert default_preset(full).name == "book2"


def test_the_default_sweep_leaves_the_split_to_the_record() -> None:
    """sweeps/default.toml says ``preset = "auto"``; a sweep file without the key means the
    same; the book's sweeps keep their editions' splits."""
    from sweeps.config import DataSection, load

    assert load("default").data.preset == "auto"
    assert DataSection().preset == "auto"
    assert load("book").data.preset == "book2" and load("book1").data.preset == "book1"


def test_baseline_on_a_year_uses_blocked_and_says_so(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "baseline", "--data", YEAR, "--json")
    result = json.loads(out)
    assert code == 0 and result["preset"] == "blocked"
    assert result["preset_note"].startswith(CHOSEN) and result["season_note"] is None
    code, out, _ = run(capsys, "baseline", "--data", YEAR)
    assert code == 0 and CHOSEN in flat(out) and "· blocked ·" in out


def test_an_explicit_book2_on_a_year_is_respected_with_the_season_note(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "baseline", "--data", YEAR, "--preset", "book2", "--json")
    result = json.loads(out)
    assert code == 0 and result["preset"] == "book2" and result["preset_note"] is None
    assert result["season_note"] == season_note("book2", load(YEAR).frame.index)
    code, out, _ = run(capsys, "baseline", "--data", YEAR, "--preset", "book2")
    assert "puts the splits in different seasons" in flat(out) and "season-aware" not in out


def test_train_on_a_year_uses_blocked_and_says_so(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small = ["--set", "architecture=dense", "--set", "sequence_length=24",
             "--set", "dense_units=[4]"]  # fmt: skip
    code, out, err = run(capsys, "train", "--data", YEAR, *QUICK, *small, "--json")
    result = json.loads(out)
    assert code == 0 and result["preset"] == "blocked" and CHOSEN in flat(err)
    # a named book model of the 2nd edition on a year: the same rule
    code, out, err = run(capsys, "train", "--data", YEAR, *QUICK, "--model", "dense", "--json")
    assert code == 0 and json.loads(out)["preset"] == "blocked"
    code, out, err = run(capsys, "train", "--data", YEAR, *QUICK, *small, "--preset", "book2",
                         "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["preset"] == "book2" and "season-aware" not in err


def test_the_sweeps_choice_on_the_full_length_keeps_book2() -> None:
    from sweeps.runner import choose_preset

    cfg = tiny_sweep('data.preset="auto"')
    line = choose_preset(cfg, load(FULL), {})
    assert cfg.data.preset == "book2"
    assert line is not None and line.startswith("an 8-year record: the book's chronological")


def tiny_cli_sweep(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """``jena sweep`` of the tiny sweep of conftest without its preset, on a year."""
    sets: list[str] = []
    for item in TINY_SETS:
        if not item.startswith("data."):
            sets += ["--set", item]
    code, _, err = run(capsys, "sweep", "default", *sets, "--set", 'architecture="dense"',
                       "--name", "tiny", "--trials", "1", "--data", YEAR, *argv)  # fmt: skip
    return code, err


def parent_tags() -> dict[str, Any]:
    (parent,) = [r for r in runs() if "mlflow.parentRunId" not in r.data.tags]
    return dict(parent.data.tags)


def test_a_sweep_on_a_year_uses_blocked_and_jena_best_uses_the_sweeps(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = tiny_cli_sweep(capsys)
    assert code == 0 and CHOSEN in flat(err)
    assert "puts the splits in different seasons" not in flat(err)
    tags = parent_tags()
    assert tags["preset"] == "blocked" and tags["preset_choice"].startswith(CHOSEN)
    trials = [r for r in runs() if "mlflow.parentRunId" in r.data.tags]
    assert trials and {r.data.tags["preset"] for r in trials} == {"blocked"}
    code, out, err = run(capsys, "best", "--experiment", "tiny", "--no-refit", "--force", "--json")
    assert code == 0, err[-2000:]
    uri = json.loads(out)["model_uri"]
    with mlflow_uris(tracking_uri_of()):
        assert mlflow.models.get_model_info(uri).metadata["preset"] == "blocked"
    # run again: the sweep's split, not chosen anew
    code, err = tiny_cli_sweep(capsys, "--trials", "2")
    assert code == 0 and "`blocked`" in flat(err)


def test_a_sweep_given_book2_on_a_year_keeps_it_with_the_season_note(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = tiny_cli_sweep(capsys, "--preset", "book2")
    assert code == 0 and "puts the splits in different seasons" in flat(err)
    assert "season-aware `blocked` split;" not in flat(err)
    tags = parent_tags()
    assert tags["preset"] == "book2" and "preset_choice" not in tags
