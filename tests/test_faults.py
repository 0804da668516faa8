"""Faults that need no cluster (issue 12): failures of one kind in a row stop an Optuna sweep as
they stop Keras Tuner's; a run whose every trial failed exits non-zero with the most common
reason; a sweep that can never fit its data is refused up front; a tracking server that is not
there fails in seconds with one line; a trial of a dead process is failed and run again; and a
full artifact store (a real, tiny tmpfs) stops the sweep, keeps nothing half-written, and the
next run re-runs the lost trial. The cluster's faults are in test_distributed.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from conftest import (
    TINY_SETS,
    children,
    mlflow_client,
    parents,
    require_in_ci,
    runs,
    store_trials,
    tiny_sweep,
)
from optuna.trial import TrialState

import sweeps.trial as trial_module
from jena import cli
from jena import tracking as T
from jena.errors import InfrastructureError
from jena.tracking import names as N
from sweeps import run_sweep
from sweeps.faults import FailureStreak, TooManyFailures, failure_kind
from sweeps.optuna import SweepStudy, open_storage
from sweeps.trial import make_space


def always_broken(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("always broken")


def cli_sweep(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """``jena sweep`` of the tiny sweep, in this process: (exit status, stderr)."""
    sets: list[str] = []
    for item in TINY_SETS:
        sets += ["--set", item]
    code = cli.main(["sweep", "default", *sets, *argv])
    _, err = capsys.readouterr()
    assert "Traceback" not in err, err[-3000:]
    return code, err


def last_line(err: str) -> str:
    return err.strip().splitlines()[-1]


# ------------------------------------------------------------------ failures of one kind
def test_failure_kinds_and_the_streak() -> None:
    assert failure_kind("RuntimeError: disk on fire") == "RuntimeError"
    assert failure_kind("NaN loss in epoch 3") == failure_kind("NaN loss in epoch 7")
    assert failure_kind("a window of 240 steps: use less") != failure_kind("NaN loss in epoch 1")
    streak = FailureStreak(3, "Optuna")
    for state, reason in [("failed", "ValueError: a"), ("failed", "KeyError: b"),
                          ("completed", None), ("failed", "ValueError: c"),
                          ("failed", "ValueError: d")]:  # fmt: skip
        streak.add(state, reason)  # never three of one kind in a row
    with pytest.raises(TooManyFailures, match=r"3 Optuna trials failed in a row the same way"):
        streak.add("failed", "ValueError: e")
    FailureStreak(0, "Optuna").add("failed", "x")  # 0: no limit


def test_optuna_stops_after_failures_of_one_kind(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Like Keras Tuner's max_consecutive_failed_trials: the sweep stops instead of failing
    every remaining trial, and says why; a re-run resumes it."""
    monkeypatch.setattr(trial_module, "train", always_broken)
    cfg = tiny_sweep('architecture="dense"', "faults.max_consecutive_failed_trials=2", trials=6)
    with pytest.raises(TooManyFailures, match="2 Optuna trials failed in a row") as err:
        run_sweep(cfg)
    assert "RuntimeError: always broken" in str(err.value)
    assert [t.state for t in store_trials(cfg)] == ["failed", "failed"]
    (parent,) = parents(runs(cfg))
    assert parent.info.status == "FAILED"
    assert "TooManyFailures" in parent.data.tags[N.TAG_FAILURE]


def test_every_trial_failed_exits_non_zero_with_the_most_common_reason(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(trial_module, "train", always_broken)
    code, err = cli_sweep(capsys, "--name", "all-failed", "--trials", "2",
                          "--set", 'architecture="dense"')  # fmt: skip
    assert code == 2
    line = last_line(err)
    assert line.startswith("error: every trial of this run failed (2 of 2)"), line
    assert "most common reason (2×): RuntimeError: always broken" in line
    (parent,) = parents(runs("all-failed"))
    assert parent.info.status == "FAILED"


def test_a_sweep_that_can_never_fit_its_data_is_refused_up_front(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """2,500 rows (book2): the training split's 1,250 rows hold a 120 h window, not a 240 h
    one (1,579 rows) — refused before anything is created, not two trials failed and exit 0.
    (Validation no longer limits it: a longer window reads back into the training rows.)"""
    code, err = cli_sweep(capsys, "--name", "never-fits", "--data", "synthetic:2500:3",
                          "--preset", "book2", "--set", "sequence_length_hours=240")  # fmt: skip
    assert code == 2
    line = last_line(err)
    assert "no trial of this sweep can fit the data: a window of 240 steps" in line, line
    assert "use a shorter sequence_length" in line
    assert "never-fits" not in T.experiment_names()  # nothing was created
    assert not Path("mlruns/optuna/never-fits.journal").exists()


# ------------------------------------------------------------------ lost, not failed
@pytest.mark.parametrize("driver", ["optuna", "kerastuner"])
def test_a_disk_full_during_training_stops_the_sweep_and_the_trial_runs_again(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, driver: str
) -> None:
    """An OSError ENOSPC out of training (a checkpoint, a cache file) is the disk's fault, not
    the trial's: the sweep stops at once, the trial does not count (Optuna: failed as lost and
    queued again; Keras Tuner: left RUNNING in its project), and the next run re-runs it."""
    import errno

    real, calls = trial_module.train, []

    def disk_full_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", "/tmp/ckpt")
        return real(*args, **kwargs)

    monkeypatch.setattr(trial_module, "train", disk_full_once)
    cfg = tiny_sweep('architecture="dense"', name=f"enospc-{driver}", driver=driver, trials=3)
    with pytest.raises(InfrastructureError, match=r"no space left on the device .*Errno 28"):
        run_sweep(cfg)
    assert len(calls) == 2  # stopped at the first: no trial after it
    kids = children(runs(cfg))
    assert [k.info.status for k in kids] == ["FINISHED", "KILLED"]
    assert kids[1].data.tags[N.TAG_FAILURE].startswith(T.LOST_PREFIX)
    (parent,) = parents(runs(cfg))
    assert parent.info.status == "FAILED"
    summary = run_sweep(cfg)  # space freed: the same command
    assert summary.finished == 3 and summary.counts["completed"] == 2
    states = [t.state for t in store_trials(cfg)]
    if driver == "optuna":  # the lost trial, its copy, one more
        assert states == ["completed", "failed", "completed", "completed"]
        study = SweepStudy(cfg).study
        assert "lost" in study.trials[1].user_attrs
        assert study.trials[2].user_attrs["retry_of"] == 1
        assert study.trials[2].params == study.trials[1].params
    else:  # the same trial again, under its own number
        assert states == ["completed", "completed", "completed"]
    assert all(r.info.status != "RUNNING" for r in runs(cfg))


# ------------------------------------------------------------------ a server that is not there
def test_an_unreachable_tracking_server_fails_in_seconds_with_one_line(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: 256 s of MLflow's silent retries, then a chained traceback."""
    from cluster import free_port

    uri = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    code, err = cli_sweep(capsys, "--name", "nowhere", "--tracking-uri", uri)
    assert time.monotonic() - started < 20
    assert code == 2
    (line,) = err.strip().splitlines()
    assert line.startswith(f"error: the MLflow tracking store {uri} is not reachable"), line
    assert "Connection refused" in line and "--tracking-uri" in line


def test_check_store_names_a_database_that_is_not_there(in_tmp: Path) -> None:
    uri = "postgresql://nobody@127.0.0.1:1/none"
    started = time.monotonic()
    with pytest.raises(InfrastructureError, match=r"tracking store postgresql://nobody@127") as e:
        T.check_store(uri)
    assert time.monotonic() - started < 30 and "\n" not in str(e.value)


# ------------------------------------------------------------------ a dead process's trial
def test_a_dead_process_trial_is_failed_and_run_again(in_tmp: Path) -> None:
    """The embedded store's same-host rule (journal file: no heartbeat): at the next start the
    trial of a process that is gone is failed, its MLflow run ended, and — retry_stale_trials —
    run again with the same parameters within the budget."""
    import socket

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    from jena.book import preset_defaults

    cfg = tiny_sweep('architecture="dense"', trials=3)
    s = SweepStudy(cfg, make_space(cfg))
    orphan = s.study.ask()
    values = s.suggest(orphan, preset_defaults("book2", 0))
    orphan.set_user_attr("host", socket.gethostname())
    orphan.set_user_attr("pid", str(dead.pid))
    summary = run_sweep(cfg)
    trials = sorted(SweepStudy(cfg).study.trials, key=lambda t: t.number)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert trials[0].user_attrs["fail_reason"] == T.STALE_REASON
    assert trials[1].user_attrs["retry_of"] == 0 and trials[1].params == trials[0].params
    assert trials[1].system_attrs["failed_trial"] == 0
    assert dict(trials[0].params).keys() == values.keys()
    assert summary.finished == 3  # the budget: the failed one counts, its retry too
    assert all(r.info.status != "RUNNING" for r in runs(cfg))


# ------------------------------------------------------------------ a full artifact store
class TinyDisk:
    """A real, tiny filesystem: a tmpfs mounted in a private mount namespace held by a
    sleeping process; commands run inside it with nsenter, files are reached from here through
    /proc/PID/root."""

    def __init__(self, where: Path, size_kb: int) -> None:
        self.where = where
        where.mkdir(parents=True)
        ready = where.parent / "tmpfs-ready"
        script = (f"mount -t tmpfs -o size={size_kb}k jena-test-tmpfs {where} && "
                  f"touch {ready} && exec sleep 900")  # fmt: skip
        self.proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c",
                                      script], stderr=subprocess.PIPE)  # fmt: skip
        end = time.monotonic() + 20
        while not ready.exists():
            if self.proc.poll() is not None or time.monotonic() > end:
                self.proc.kill()
                said = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise OSError(f"no tmpfs: {said.strip()}")
            time.sleep(0.05)

    def inside(self, path: Path) -> Path:
        """``path`` (under the mount) as this process sees it."""
        return Path(f"/proc/{self.proc.pid}/root{path}")

    def run(self, argv: list[str], cwd: Path | None = None,
            **kwargs: Any) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """``argv`` in the namespace (entering it resets the working directory: ``cwd``)."""
        where = [f"--wd={cwd or self.where.parent}"]
        return subprocess.run(["nsenter", "-t", str(self.proc.pid), "-m", *where, "--", *argv],
                              capture_output=True, text=True, **kwargs)  # fmt: skip

    def fill(self, leave_kb: int) -> None:
        """Fill it, then free ``leave_kb``: a write of more than that fails with ENOSPC."""
        self.run(["dd", "if=/dev/zero", f"of={self.where}/gap", "bs=1k", f"count={leave_kb}"])
        self.run(["dd", "if=/dev/zero", f"of={self.where}/filler", "bs=64k"])
        self.run(["rm", "-f", f"{self.where}/gap"])

    def free(self) -> None:
        self.run(["rm", "-f", f"{self.where}/filler"])

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def tiny_disk(in_tmp: Path) -> Iterator[TinyDisk]:
    if not (shutil.which("unshare") and shutil.which("nsenter")):
        require_in_ci("needs unshare and nsenter (util-linux) for a real tiny tmpfs")
    try:
        disk = TinyDisk(in_tmp / "store" / "artifacts", size_kb=2048)
    except OSError as exc:
        require_in_ci(f"cannot mount a tmpfs in a private mount namespace here ({exc})")
    try:
        yield disk
    finally:
        disk.close()


def _sweep_in(disk: TinyDisk, tmp: Path, trials: int,
              workers: int = 1) -> subprocess.CompletedProcess[str]:  # fmt: skip
    from cluster import worker_env

    argv = [
        sys.executable,
        "-m",
        "jena.cli",
        "sweep",
        "default",
        "--name",
        "full",
        "--trials",
        str(trials),
        "--workers",
        str(workers),
        "--tracking-uri",
        f"sqlite:///{tmp}/store/mlflow.db",
    ]
    for item in (*TINY_SETS, 'architecture="dense"', "dense_layers=2",
                 "space.include=[\"learning_rate\"]"):  # fmt: skip
        argv += ["--set", item]
    return disk.run(argv, cwd=tmp, env=worker_env(tmp), timeout=300)


@pytest.mark.slow
def test_a_full_artifact_store_stops_the_sweep_and_the_resume_reruns_the_lost_trial(
    tiny_disk: TinyDisk, in_tmp: Path
) -> None:
    """A real full disk (a 2 MiB tmpfs) under the artifact store: the first trial that cannot
    save its model stops the sweep — two worker processes here: the one that hits it tells the
    other to stop — with one line; it is not counted and leaves no partial model on its run;
    once space is freed, the same command runs it again and reaches the total."""
    uri = f"sqlite:///{in_tmp}/store/mlflow.db"
    first = _sweep_in(tiny_disk, in_tmp, trials=1)
    assert first.returncode == 0, first.stderr[-3000:]
    (done,) = children(runs("full", uri))
    artifacts = tiny_disk.inside(Path(done.info.artifact_uri.removeprefix("file://")))
    model_kb = sum(f.stat().st_size for f in (artifacts / "model").iterdir()) / 1024
    assert model_kb > 12, model_kb  # a model does not fit the gap left below

    tiny_disk.fill(leave_kb=8)  # room for the sweep's own small files, not for a model
    second = _sweep_in(tiny_disk, in_tmp, trials=3, workers=2)
    assert second.returncode == 2, second.stderr[-3000:]
    assert "Traceback" not in second.stderr
    line = second.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ") and "no space left on the device" in line, line
    assert "[Errno 28]" in line and "run the same command again to resume" in line
    client = mlflow_client(uri=uri)
    lost = [k for k in children(runs("full", uri)) if k.info.status != "FINISHED"]
    assert 1 <= len(lost) <= 2  # each worker loses the trial it was saving, at most
    models = client.search_logged_models([lost[0].info.experiment_id])
    for kid in lost:
        assert kid.info.status == "KILLED", kid.data.tags
        assert kid.data.tags[N.TAG_FAILURE].startswith(T.LOST_PREFIX)
        folder = tiny_disk.inside(Path(kid.info.artifact_uri.removeprefix("file://")))
        assert not (folder / "model").exists()  # nothing half-written stays on the run
        assert N.TAG_MODEL_ID not in kid.data.tags
        assert all(m.source_run_id != kid.info.run_id or m.status != "READY" for m in models)

    tiny_disk.free()
    third = _sweep_in(tiny_disk, in_tmp, trials=3)
    assert third.returncode == 0, third.stderr[-3000:]
    cfg = tiny_sweep(name="full", tracking_uri=uri)
    journal = open_storage(f"journal:{in_tmp}/mlruns/optuna/full.journal")
    study = optuna.load_study(study_name="full", storage=journal)
    trials = sorted(study.trials, key=lambda t: t.number)
    counted = [t for t in trials if "lost" not in t.user_attrs]
    assert [t.state for t in counted] == [TrialState.COMPLETE] * 3  # the total, none lost
    gone = [t for t in trials if "lost" in t.user_attrs]
    assert len(gone) == len(lost)
    for t in gone:
        assert t.state == TrialState.FAIL and "no space left" in t.user_attrs["lost"]
        (again,) = [a for a in trials if a.user_attrs.get("retry_of") == t.number]
        assert again.state == TrialState.COMPLETE and again.params == t.params
    every = runs(cfg)
    assert all(r.info.status != "RUNNING" for r in every)
    for kid in children(every):  # (the tmpfs is seen from here through the holder's root)
        folder = tiny_disk.inside(Path(kid.info.artifact_uri.removeprefix("file://"))) / "model"
        if kid.info.status == "FINISHED":
            assert sorted(f.name for f in folder.iterdir()) == ["data_config.json", "model.keras"]
            assert json.loads((folder / "data_config.json").read_text())  # whole, not 0 bytes
            assert (folder / "model.keras").stat().st_size > 1024
        else:
            assert kid.info.run_id in {k.info.run_id for k in lost} and not folder.exists()
