"""What a new user meets in the first hour (issue 11): a live display that moves in a real
terminal, a time budget that holds, an honest champion, and clear command-line messages."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import mlflow
import pytest
from conftest import TINY
from optuna.trial import TrialState
from rich.console import Console

import sweeps.trial as trial_module
from jena import cli
from jena.tracking import default_tracking_uri, trials_frame
from sweeps import apply_overrides, load, run_sweep
from sweeps.optuna import SweepStudy

ANSI = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|[()][0-9A-Za-z]|[=>])")
ROW = re.compile(r"^(\d+)\s+(\d+)/(\d+)\s+(\d+/\d+|—)\s+", re.M)
ELAPSED = re.compile(r"elapsed (\d\d:\d\d)")

# A small space whose trials take a few seconds each: windows of 48 hourly steps, an LSTM.
SMALL = [
    'space.include=["units", "learning_rate"]',
    'space.fixed={architecture="lstm", sequence_length_hours=48, normalise_target=true, '
    "rnn_layers=1}",
    'sampler.type="random"',
    "sampler.options={}",
    'pruner.type="none"',
    "pruner.options={}",
    'tuner.type="random"',
    "fidelity.validation_steps=2",
    "space.ranges={}",
    'space.warm_start=""',
]


def small_sweep(*sets: str, data: str = TINY, name: str = "first") -> Any:
    base = [f'name="{name}"', f'data.source="{data}"', "seed=1", "fidelity.max_epochs=2",
            "fidelity.steps_per_epoch=2", "trials=2", *SMALL]  # fmt: skip
    return apply_overrides(load("default"), [*base, *sets])


def runs(experiment: str) -> list[Any]:
    client = mlflow.MlflowClient(default_tracking_uri())
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id], max_results=1000)


# --------------------------------------------------------------------------- a real terminal


def run_in_pty(argv: list[str], cwd: Path, *, cols: int = 160, rows: int = 40,
               timeout: float = 300) -> str:  # fmt: skip
    """Run ``argv`` with a pseudo-terminal as stdin/stdout/stderr; everything it wrote."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows)}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env)
    os.close(slave)
    out = bytearray()
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 1 << 16)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                out += data
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
            pytest.fail(f"{argv} did not finish in {timeout} s")
    finally:
        proc.wait(timeout=60)
        os.close(master)
    assert proc.returncode == 0, out.decode(errors="replace")[-3000:]
    return ANSI.sub("", out.decode(errors="replace")).replace("\r", "\n")


def frames(text: str, title: str) -> list[str]:
    """The display's successive frames (each starts with the sweep's title line)."""
    return [title + part for part in text.split(title)[1:]]


@pytest.mark.slow
@pytest.mark.parametrize(("driver", "workers"), [("optuna", 1), ("optuna", 2), ("kerastuner", 1)])
def test_the_live_display_moves_during_a_trial(in_tmp: Path, driver: str, workers: int) -> None:
    """In a terminal the board shows the running trial, its epoch and batch advancing, and the
    elapsed time moving while it trains — with one worker as with several."""
    sets: list[str] = []
    for item in [*SMALL, f'driver="{driver}"', "fidelity.steps_per_epoch=400",
                 "fidelity.max_epochs=2"]:  # fmt: skip
        sets += ["--set", item]
    argv = [sys.executable, "-m", "jena.cli", "sweep", "default", "--name", "live", "--data",
            "synthetic:60000:3", "--trials", str(workers), "--workers", str(workers),
            *sets]  # fmt: skip
    text = run_in_pty(argv, in_tmp)
    shown = frames(text, "sweep live ·")
    assert len(shown) >= 8, text[-2000:]
    running = [(f, ROW.findall(f)) for f in shown]
    running = [(f, rows) for f, rows in running if rows]
    assert running, "no frame showed a running trial"
    by_trial: dict[str, list[tuple[str, str, str]]] = {}
    for f, rows in running:
        elapsed = ELAPSED.search(f)
        assert elapsed is not None
        for number, epoch, _epochs, batch in rows:
            by_trial.setdefault(number, []).append((elapsed.group(1), epoch, batch))
    for number, seen in by_trial.items():
        times = {t for t, _, _ in seen}
        assert len(times) >= 3, (number, seen)  # elapsed advances during the trial
    epochs = {e for seen in by_trial.values() for _, e, _ in seen}
    assert {"1", "2"} <= epochs  # the running trial's epoch advances
    mid_epoch = [b for seen in by_trial.values() for _, _, b in seen if b != "—"]
    assert any(0 < int(b.split("/")[0]) < int(b.split("/")[1]) for b in mid_epoch)
    if workers > 1:
        assert any(len(rows) >= 2 for _, rows in running)  # trials side by side
    assert "ended: trial budget reached" in text


# --------------------------------------------------------------------------- the time budget


@pytest.mark.parametrize("driver", ["optuna", "kerastuner"])
def test_the_time_budget_stops_the_running_trial(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, driver: str
) -> None:
    """At the deadline the running trial ends at once — stopped in MLflow (not pruned: a
    candidate), with its best finished epoch and its model; PRUNED in Optuna, FAILED in Keras
    Tuner (it has no pruned state) — and nothing is left RUNNING. The clock is the trial's own:
    stop in the 2nd epoch."""
    calls = {"n": 0}

    def out_of_time(self: Any) -> str | None:
        calls["n"] += 1  # after each batch: epoch 1 = 2 train + 2 val batches
        return "the sweep's time budget (1 min) ran out" if calls["n"] >= 6 else None

    monkeypatch.setattr(trial_module.SweepContext, "out_of_time", out_of_time)
    cfg = small_sweep(f'driver="{driver}"', "trials=1", "fidelity.max_epochs=5",
                      "fidelity.patience=5")  # fmt: skip
    summary = run_sweep(cfg)
    frame = trials_frame(default_tracking_uri(), cfg.name)
    (row,) = frame.to_dict("records")
    assert row["state"] == "stopped" and row["status"] == "FINISHED"
    assert isinstance(row["tags.model_artifact"], str)
    assert "time budget" in row["tags.failure_reason"]
    assert "stopped in epoch 2" in row["tags.failure_reason"]
    history = mlflow.MlflowClient(default_tracking_uri()).get_metric_history(
        row["run_id"], "val_mae"
    )
    assert [m.step for m in history if m.step <= 1] == [1]
    assert row["val_mae"] == pytest.approx(history[0].value)  # the best finished epoch
    assert all(r.info.status != "RUNNING" for r in runs(cfg.name))
    assert any("time budget" in n for n in summary.notes)
    if driver == "optuna":
        (t,) = SweepStudy(cfg).study.trials
        assert t.state == TrialState.PRUNED and t.intermediate_values == {1: history[0].value}
    else:
        from sweeps import kerastuner

        (t,) = kerastuner.kt_trials(cfg)
        assert t.status == "FAILED" and "time budget" in t.message


def test_a_sweep_ends_close_to_its_time_budget(in_tmp: Path) -> None:
    """A trial that would train for minutes is stopped at the deadline: the sweep ends within
    seconds of its budget, and says why."""
    # 200,000 rows (book2): a first epoch of 100,000 training windows cannot end in 6 s (on
    # 60,000 rows, now split in blocks, an epoch's 80 batches sometimes did)
    cfg = small_sweep("timeout_minutes=0.1", "fidelity.max_epochs=100", "fidelity.patience=100",
                      "fidelity.steps_per_epoch=4000", "trials=3",
                      data="synthetic:200000:3")  # fmt: skip
    started = time.monotonic()
    summary = run_sweep(cfg)
    wall = time.monotonic() - started
    assert wall < 6 + 20, wall  # 6 s of budget, data loading, one model build and save
    assert summary.stop_reason == "time budget reached (0.1 min)"
    frame = trials_frame(default_tracking_uri(), cfg.name)
    assert list(frame["state"]) == ["stopped"]  # before its first epoch: no result, no rank
    assert summary.top == []
    assert all(r.info.status != "RUNNING" for r in runs(cfg.name))


# --------------------------------------------------------------------------- an honest champion


def test_a_model_worse_than_persistence_is_not_promoted(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two batches of training cannot beat persistence: the sweep's summary says so, `jena best`
    refuses (nothing evaluated, nothing registered) and names what to do; --force promotes."""
    cfg = small_sweep("trials=1", "fidelity.max_epochs=1")
    summary = run_sweep(cfg)
    assert summary.advice and "has not yet found a model better than persistence" in summary.advice
    out = io.StringIO()
    cli.print_sweep(summary, Console(file=out, width=200))
    text = out.getvalue()
    assert "the sweep has not yet found a model better than persistence" in text
    assert "--trials N" in text and "--warm-start book" in text

    quick = ["--top-k", "1", "--seeds", "2", "--epochs", "1"]  # the refit champion, quickly
    code = cli.main(["best", "--experiment", cfg.name, *quick])
    err = " ".join(capsys.readouterr().err.split())
    refused = (
        "has not yet found a model better than persistence",  # skill <= 0
        "cannot be told apart from persistence",  # skill > 0, its interval holds zero
    )
    assert code == 2 and any(why in err for why in refused), err[-2000:]
    assert "--force" in err and "more trials" in err
    uri = default_tracking_uri()
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    assert client.search_registered_models() == []
    (row,) = trials_frame(default_tracking_uri(), cfg.name).to_dict("records")
    assert "tags.test_evaluations" not in row  # the test split was not read

    assert cli.main(["best", "--experiment", cfg.name, "--force", *quick]) == 0
    (version,) = client.search_model_versions("name = 'jena-temperature'")
    assert version.tags["beats_persistence_on_val"] == "false"
    assert cli.main(["report", "--experiment", cfg.name, "--no-log"]) == 0
    page = (in_tmp / "reports" / cfg.name / "index.html").read_text()
    assert "cannot be told apart from persistence on validation" in page


# --------------------------------------------------------------------------- command line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trials", "0"], "error: --trials: must be at least 1, got 0"),
        (["--workers", "0"], "error: --workers: must be at least 1, got 0"),
        (["--timeout-minutes", "0"], "error: --timeout-minutes: must be positive"),
    ],
)
def test_flag_errors_name_the_flag(
    in_tmp: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert cli.main(["sweep", "--data", TINY, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err == message and "default.toml" not in err


def test_best_with_a_typo_lists_the_sweeps(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_sweep(small_sweep("trials=1", "fidelity.max_epochs=1"))
    assert cli.main(["best", "--experiment", "frist"]) == 2
    err = capsys.readouterr().err
    assert "no sweep (MLflow experiment) named 'frist'" in err and "sweeps here: first" in err


def test_space_never_cuts_names(in_tmp: Path) -> None:
    """Names are whole on a narrow terminal and when piped; the help column is there."""
    from jena.space import SPACE

    narrow = run_in_pty([sys.executable, "-m", "jena.cli", "space"], in_tmp, cols=70)
    piped = subprocess.run([sys.executable, "-m", "jena.cli", "space"], cwd=in_tmp,
                           capture_output=True, text=True, check=True).stdout  # fmt: skip
    for text in (narrow, piped):
        for name in SPACE.names:
            assert re.search(rf"\b{name}\b", text), name
        assert "help" in text and "…" not in text
    assert "hours of history per window" in piped


def test_a_complete_sweep_creates_nothing(in_tmp: Path) -> None:
    cfg = small_sweep("trials=1", "fidelity.max_epochs=1")
    run_sweep(cfg)
    before = len(runs(cfg.name))
    summary = run_sweep(cfg)
    assert summary.complete and summary.parent_run_id is None
    out = io.StringIO()
    cli.print_sweep(summary, Console(file=out, width=200))
    assert len(runs(cfg.name)) == before  # no empty parent run
    assert f"sweep {cfg.name!r} is complete: 1 of 1 trials" in out.getvalue()


def test_fit_time_is_a_share_of_the_workers_summed_wall_time(in_tmp: Path) -> None:
    cfg = small_sweep("trials=2", "workers=2", "fidelity.max_epochs=1")
    summary = run_sweep(cfg)
    assert summary.timing.workers_wall_s >= summary.timing.wall_s * 0.5 > 0
    assert 0 < summary.timing.fit_s <= summary.timing.workers_wall_s
    assert 0 <= summary.timing.outside_fit_fraction < 1
    parent = mlflow.MlflowClient(default_tracking_uri()).get_run(summary.parent_run_id)
    assert float(parent.data.tags["workers_wall_s"]) == pytest.approx(summary.timing.workers_wall_s)
