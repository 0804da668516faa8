"""Stop signals to real processes (issue 24).

SIGTERM goes to the main process only, as ``timeout``, ``kill``, a container stop or a pod
eviction send it, while its trials train: with one and two workers (Optuna) and one (Keras
Tuner), every process is gone within the bound, nothing is left RUNNING in the driver's store
or in MLflow, and the same command run again re-runs the interrupted trials first and reaches
the total. SIGKILL of the main process: its workers notice and stop, and the next run on the
host recovers. SIGTERM during ``jena refit``: nothing RUNNING, the re-run trains only what is
missing. And the budget's bookkeeping around stopped processes: a stale trial that took the last
slot leaves nothing WAITING, a retry WAITING is run first whatever the count, and the end line
says when the rest of the budget is running elsewhere."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster import worker_env
from conftest import TINY_SETS, children, parents, runs, store_trials, tiny_sweep
from optuna.trial import TrialState

from jena import tracking as T
from jena.book import preset_defaults
from jena.tracking import names as N
from sweeps import run_sweep
from sweeps.optuna import SweepStudy
from sweeps.optuna._faults import requeue

BOUND_S = 20.0  # workers get 10 s to stop (sweeps.pool.STOP_GRACE_S); a batch, exit; a busy CPU
# trials that last minutes: a signal always finds them mid-training
LSTM = ('space.include=["learning_rate"]',
        'space.fixed={architecture="lstm", units=16, sequence_length_hours=48, '
        "normalise_target=true, rnn_layers=1}")  # fmt: skip
LONG = ("fidelity.max_epochs=30", "fidelity.steps_per_epoch=400")
SHORT = ("fidelity.max_epochs=1", "fidelity.steps_per_epoch=2")  # the re-run: seconds


# ------------------------------------------------------------------ processes
def sweep_argv(name: str, trials: int, workers: int, driver: str, *sets: str) -> list[str]:
    argv = [sys.executable, "-m", "jena.cli", "sweep", "default", "--name", name,
            "--trials", str(trials), "--workers", str(workers)]  # fmt: skip
    for item in (*TINY_SETS, *LSTM, f'driver="{driver}"', *sets):
        argv += ["--set", item]
    return argv


# loaded by every Python process the test starts (and their workers): the first training batch
# of each run leaves a file named by the run's id in $JENA_TEST_BATCHES, so the test sees when
# a run trains (its epoch metrics are written in batches, too late to tell)
BATCH_MARKS = """
import os
if os.environ.get("JENA_TEST_BATCHES"):
    from pathlib import Path
    from jena.recording import Recorder
    _on_batch = Recorder.on_batch
    def on_batch(self, batch, batches):
        mark = Path(os.environ["JENA_TEST_BATCHES"]) / self.run.run_id
        if not mark.exists():
            mark.touch()
        _on_batch(self, batch, batches)
    Recorder.on_batch = on_batch
"""


def start(argv: list[str], where: Path, log: str) -> subprocess.Popen[bytes]:
    """``argv`` in ``where``, in a session of its own (signals reach only whom they are sent
    to), its output in ``where/log``; each run's first batch leaves a mark in
    ``where/batches`` (:data:`BATCH_MARKS`)."""
    hooks, marks = where / "hooks", where / "batches"
    hooks.mkdir(exist_ok=True)
    marks.mkdir(exist_ok=True)
    (hooks / "sitecustomize.py").write_text(BATCH_MARKS)
    path = os.pathsep.join(p for p in (str(hooks), os.environ.get("PYTHONPATH")) if p)
    env = worker_env(where, PYTHONPATH=path, JENA_TEST_BATCHES=str(marks))
    with open(where / log, "ab") as out:
        return subprocess.Popen(argv, cwd=where, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip


def tree(pid: int) -> set[int]:
    """``pid`` and its descendants, from /proc."""
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d.name))
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        found.add(p)
        todo += kids.get(p, [])
    return found


def living(pids: set[int]) -> set[int]:
    """Those of ``pids`` that still run (a zombie has ended)."""
    out = set()
    for p in pids:
        try:
            state = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            out.add(p)
    return out


def gone_within(pids: set[int], since: float, bound: float) -> float:
    """Seconds from ``since`` until every one of ``pids`` ended; fails past ``bound``."""
    while living(pids):
        if time.monotonic() - since > bound:
            pytest.fail(f"still running {bound:.0f} s after the signal: {sorted(living(pids))}")
        time.sleep(0.05)
    return time.monotonic() - since


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; whatever is left of them and theirs is killed at the end."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        for pid in tree(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()


def log_of(where: Path, log: str) -> str:
    text = (where / log).read_text(errors="replace")
    logs = where / "mlruns" / "logs"
    for worker in sorted(logs.glob("*.log")) if logs.is_dir() else []:
        text += f"\n--- {worker.name}\n{worker.read_text(errors='replace')[-3000:]}"
    return text[-8000:]


def running(where: Path, tags: dict[str, str]) -> int:
    """RUNNING runs in the store of ``where`` carrying ``tags`` that have trained a batch (their
    mark in ``where/batches``, see :func:`start`). Read-only SQL: an MLflow client here
    could race the sweep's creation of the store's tables."""
    db = where / "mlruns" / "mlflow.db"
    if not db.exists():
        return 0
    query = "SELECT r.run_uuid FROM runs r WHERE r.status = 'RUNNING'"
    for key in tags:
        query += (" AND EXISTS (SELECT 1 FROM tags t WHERE t.run_uuid = r.run_uuid AND "
                  f"t.key = '{key}' AND t.value = ?)")  # fmt: skip
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
            ids = [row[0] for row in con.execute(query, list(tags.values())).fetchall()]
    except sqlite3.Error:  # its tables are being created
        return 0
    return sum((where / "batches" / run_id).exists() for run_id in ids)


def wait_running(proc: subprocess.Popen[bytes], where: Path, log: str, count: int,
                 tags: dict[str, str]) -> None:  # fmt: skip
    """Until ``count`` runs with ``tags`` are RUNNING and training (see :func:`running`; a
    generous deadline): an observed state, not a moment after one."""
    end = time.monotonic() + 240
    while running(where, tags) < count:
        if proc.poll() is not None or time.monotonic() > end:
            pytest.fail(f"not {count} runs {tags} RUNNING:\n{log_of(where, log)}")
        time.sleep(0.3)


def wait_training(proc: subprocess.Popen[bytes], where: Path, log: str, count: int) -> None:
    """Until ``count`` trials train."""
    wait_running(proc, where, log, count, {N.TAG_RUN_TYPE: N.RUN_TRIAL})


def signal_main(proc: subprocess.Popen[bytes], signum: int) -> tuple[set[int], float]:
    """Send ``signum`` to the main process only; (its process tree then, when it was sent)."""
    pids = tree(proc.pid)
    sent = time.monotonic()
    os.kill(proc.pid, signum)
    return pids, sent


def nothing_running(cfg: Any) -> list[Any]:
    """The sweep's MLflow runs, after asserting that none is RUNNING."""
    every = runs(cfg)
    assert all(r.info.status != "RUNNING" for r in every), [
        (r.info.run_name, r.info.status) for r in every
    ]
    return every


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


# ------------------------------------------------------------------ the handler
def test_a_stop_signal_raises_once_and_waits_for_a_safe_point() -> None:
    """SIGHUP (a real one, to this process): raised at once outside :func:`deferred`, held
    inside it until a :func:`check` or its end; later signals ignored (a worker's choice);
    the handlers before are restored."""
    from jena import signals

    # signal.raise_signal: sent to this thread, its handler has run when the call returns
    # (os.kill to the process may be taken by another thread, later): no sleep, no race
    before = signal.getsignal(signal.SIGHUP)
    with signals.stop_on_signals(again="ignore"):
        with pytest.raises(signals.Interrupted) as raised:
            signal.raise_signal(signal.SIGHUP)
            pytest.fail("not raised at once")
        assert signals.exit_status(raised.value) == 129
        assert signals.describe(raised.value) == "interrupted by SIGHUP"
        signal.raise_signal(signal.SIGTERM)  # after the first: ignored (neither raised nor exit)
        signals.check()  # nor held for later
    with signals.stop_on_signals(again="ignore"):
        with pytest.raises(signals.Interrupted) as raised, signals.deferred():
            signal.raise_signal(signal.SIGTERM)
            held = True  # not raised inside the block
            signals.check()
            held = False
        assert held and raised.value.signum == signal.SIGTERM
    with signals.stop_on_signals(again="ignore"):
        with pytest.raises(signals.Interrupted) as raised, signals.deferred():
            signal.raise_signal(signal.SIGINT)  # no check: held to the block's end
            held = True
        assert held and raised.value.signum == signal.SIGINT
    assert signal.getsignal(signal.SIGHUP) == before


def test_a_second_signal_to_the_main_process_exits_at_once(tmp_path: Path) -> None:
    """The first SIGINT starts a clean stop; a second one ends the process now (130)."""
    script = tmp_path / "slow_stop.py"
    script.write_text(
        "import sys, time\n"
        "from jena import signals\n"
        "with signals.stop_on_signals():\n"
        "    try:\n"
        "        print('ready', flush=True)\n"
        "        time.sleep(60)\n"
        "    except KeyboardInterrupt:\n"
        "        print('stopping', flush=True)\n"
        "        time.sleep(60)  # a clean stop that takes too long\n"
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGINT)
    assert proc.stdout.readline() == "stopping\n"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 130 and err == "SIGINT again: exiting now\n"


# ------------------------------------------------------------------ a sweep stopped mid-trial
def stop_mid_trial(where: Path, processes: list[Any], name: str, trials: int, workers: int,
                   driver: str, signum: int) -> int | None:  # fmt: skip
    """Start the sweep, send ``signum`` to its main process once every worker trains; every
    process must be gone within the bound. The main process's exit status (None: killed)."""
    proc = start(sweep_argv(name, trials, workers, driver, *LONG), where, "first.log")
    processes.append(proc)
    wait_training(proc, where, "first.log", workers)
    pids, sent = signal_main(proc, signum)
    assert len(pids) > (workers if workers > 1 else 0)  # and multiprocessing's helper
    took = gone_within(pids, sent, BOUND_S)
    code = proc.wait()
    print(f"\n{signal.Signals(signum).name} -> every process gone, {driver} x{workers}: "
          f"{took:.1f} s")  # fmt: skip
    assert "Traceback" not in log_of(where, "first.log"), log_of(where, "first.log")
    return None if code == -signal.SIGKILL else code


def lost_trials(cfg: Any, workers: int, why: str) -> list[Any]:
    """The study's trials lost to the stop (one per worker at most), after asserting that
    nothing is RUNNING in it and that their MLflow runs ended KILLED saying ``why``."""
    study = SweepStudy(cfg).study
    assert not study.get_trials(states=(TrialState.RUNNING,))
    lost = [t for t in study.trials if "lost" in t.user_attrs]
    assert 1 <= len(lost) <= workers, [(t.number, t.state, t.user_attrs) for t in study.trials]
    assert all(t.state == TrialState.FAIL and why in t.user_attrs["lost"] for t in lost)
    kids = children(runs(cfg))
    assert all(k.info.status != "RUNNING" for k in kids), [k.info.run_name for k in kids]
    stopped = [k for k in kids if k.info.status == "KILLED"]
    assert {int(k.data.tags[N.TAG_TRIAL_NUMBER]) for k in stopped} == {t.number for t in lost}
    assert all(why in k.data.tags[N.TAG_FAILURE] for k in stopped)
    return lost


def rerun_reaches_the_total(cfg: Any, lost: list[Any]) -> None:
    """The same sweep again (short trials; in this process): the lost trials run first, with
    the same parameters, and the total is reached; nothing is left RUNNING or WAITING."""
    summary = run_sweep(dataclasses.replace(cfg, fidelity=tiny_sweep(*SHORT).fidelity))
    assert summary.stop_reason == f"trial budget reached ({cfg.trials} of {cfg.trials} trials)"
    study = SweepStudy(cfg).study
    counted = [t for t in study.trials if "lost" not in t.user_attrs]
    assert len(counted) == cfg.trials and all(t.state == TrialState.COMPLETE for t in counted)
    for t in lost:
        (retry,) = [c for c in counted if c.user_attrs.get("retry_of") == t.number]
        assert retry.params == t.params
    ran = sorted(counted, key=lambda t: t.datetime_start)
    assert all("retry_of" in t.user_attrs for t in ran[: len(lost)])  # the lost ones first
    nothing_running(cfg)


@pytest.mark.slow
@pytest.mark.parametrize(("driver", "workers"),
                         [("optuna", 1), ("optuna", 2), ("kerastuner", 1)])  # fmt: skip
def test_sigterm_to_the_main_process_stops_every_worker_and_the_rerun_finishes(
    in_tmp: Path, processes: list[Any], driver: str, workers: int
) -> None:
    name, trials = f"term-{driver}-{workers}", workers + 1
    code = stop_mid_trial(in_tmp, processes, name, trials, workers, driver, signal.SIGTERM)
    assert code == 128 + signal.SIGTERM
    assert last_line((in_tmp / "first.log").read_text()) == "interrupted by SIGTERM"
    cfg = tiny_sweep(*LSTM, name=name, driver=driver, trials=trials)
    (parent,) = parents(nothing_running(cfg))
    assert parent.info.status == "KILLED"
    if driver == "optuna":
        rerun_reaches_the_total(cfg, lost_trials(cfg, workers, "SIGTERM"))
        return
    # Keras Tuner keeps the trial RUNNING in its project and runs it again first on reload
    (stopped,) = [k for k in children(runs(cfg)) if k.info.status == "KILLED"]
    number = int(stopped.data.tags[N.TAG_TRIAL_NUMBER])
    assert "SIGTERM" in stopped.data.tags[N.TAG_FAILURE]
    assert [t.state for t in store_trials(cfg)] == ["running"] and number == 0
    summary = run_sweep(dataclasses.replace(cfg, fidelity=tiny_sweep(*SHORT).fidelity))
    assert summary.stop_reason == f"trial budget reached ({trials} of {trials} trials)"
    assert [t.state for t in store_trials(cfg)] == ["completed"] * trials
    again = [k for k in children(nothing_running(cfg)) if k.info.status == "FINISHED"]
    assert sorted(int(k.data.tags[N.TAG_TRIAL_NUMBER]) for k in again) == list(range(trials))


@pytest.mark.slow
def test_workers_whose_main_process_was_killed_stop_and_the_next_run_recovers(
    in_tmp: Path, processes: list[Any]
) -> None:
    name, trials, workers = "orphans", 3, 2
    assert stop_mid_trial(in_tmp, processes, name, trials, workers, "optuna",
                          signal.SIGKILL) is None  # fmt: skip
    cfg = tiny_sweep(*LSTM, name=name, trials=trials)
    lost = lost_trials(cfg, workers, "its parent process is gone")
    assert len(lost) == workers
    (parent,) = parents(runs(cfg))
    assert parent.info.status == "RUNNING"  # its process was killed: the next start closes it
    rerun_reaches_the_total(cfg, lost)
    first, _ = parents(runs(cfg))
    assert first.info.status == "KILLED"


# ------------------------------------------------------------------ SIGTERM during a refit
GRU = ('space.include=["optimizer"]',
       'space.fixed={architecture="gru", units=8, sequence_length_hours=24, rnn_layers=1, '
       "normalise_target=true}")  # fmt: skip


@pytest.mark.slow
def test_sigterm_during_refit_leaves_nothing_running_and_the_rerun_trains_what_is_missing(
    in_tmp: Path, processes: list[Any]
) -> None:
    cfg = tiny_sweep(*GRU, name="rf", trials=1)
    run_sweep(cfg)
    argv = [sys.executable, "-m", "jena.cli", "refit", "--experiment", "rf", "--top-k", "1",
            "--seeds", "2", "--epochs", "3", "--patience", "3"]  # fmt: skip
    proc = start(argv, in_tmp, "refit.log")
    processes.append(proc)
    member = {N.TAG_RUN_TYPE: N.RUN_REFIT_MEMBER, N.TAG_REFIT_SEED: "1"}
    wait_running(proc, in_tmp, "refit.log", 1, member)  # the first member trained already
    pids, sent = signal_main(proc, signal.SIGTERM)
    code = proc.wait(timeout=BOUND_S)
    took = gone_within(pids, sent, BOUND_S)
    print(f"\nSIGTERM -> exit, refit: {took:.1f} s")
    text = (in_tmp / "refit.log").read_text()
    assert code == 128 + signal.SIGTERM, text
    assert "Traceback" not in text, text
    assert text.rstrip().endswith("interrupted by SIGTERM"), text  # after the board's last row
    every = nothing_running(cfg)
    members = [r for r in every if r.data.tags.get(N.TAG_RUN_TYPE) == N.RUN_REFIT_MEMBER]
    assert sorted(r.info.status for r in members) == ["FINISHED", "KILLED"]
    (stage,) = [r for r in every if r.data.tags.get(N.TAG_RUN_TYPE) == N.RUN_REFIT]
    assert stage.info.status == "KILLED"

    again = subprocess.run(argv, cwd=in_tmp, env=worker_env(in_tmp), capture_output=True,
                           text=True, timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert "1 trained now, the rest from earlier refits" in again.stdout, again.stdout
    nothing_running(cfg)


# ------------------------------------------------------------------ the budget around a stop
def _dead_pid() -> int:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    return dead.pid


def test_a_stale_trial_that_took_the_last_slot_leaves_nothing_waiting(in_tmp: Path) -> None:
    """Its slot is counted (a failed trial) and no retry is queued that could never run."""
    first = run_sweep(tiny_sweep('architecture="dense"', trials=1))
    assert first.finished == 1
    cfg = tiny_sweep('architecture="dense"', trials=2)
    s = SweepStudy(cfg)
    orphan = s.study.ask()
    s.suggest(orphan, preset_defaults("book2", 0))
    orphan.set_user_attr("host", socket.gethostname())
    orphan.set_user_attr("pid", str(_dead_pid()))
    summary = run_sweep(cfg)
    assert summary.complete and summary.finished == 2
    states = [t.state for t in SweepStudy(cfg).study.trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL], states


def test_a_retry_waiting_runs_first_even_when_the_count_says_the_budget_is_spent(
    in_tmp: Path,
) -> None:
    """A retry queued in a race (or by an older version) is run, never left WAITING."""
    cfg = tiny_sweep('architecture="dense"', trials=1)
    s = SweepStudy(cfg)
    done = s.ask()
    assert done is not None
    s.suggest(done, preset_defaults("book2", 0))
    s.study.tell(done, state=TrialState.FAIL)
    requeue(s.study, s.study.trials[0], limit=1)
    retry = s.ask()
    assert retry is not None and retry.user_attrs["retry_of"] == 0
    assert s.ask() is None


def test_the_end_line_says_the_rest_of_the_budget_runs_elsewhere(in_tmp: Path) -> None:
    """A trial RUNNING in another live process holds a slot: the invocation ends saying so,
    not that the sampler has no more."""
    cfg = tiny_sweep('architecture="dense"', trials=2)
    s = SweepStudy(cfg)
    elsewhere = s.ask()  # owned by this (live) process
    assert elsewhere is not None
    s.suggest(elsewhere, preset_defaults("book2", 0))
    tracker = T.Tracker(T.resolve_uri(None), cfg.name)
    other = tracker.start_sweep(run_name="another-invocation")
    run = tracker.trial(other.run_id, elsewhere.number, run_name="t-elsewhere")
    try:
        summary = run_sweep(cfg)
    finally:
        run.finish("killed", reason="test")
        other.finish("KILLED")
    assert summary.finished == 1
    assert summary.stop_reason == (
        "the rest of the budget is running elsewhere (1 trial running in another process; "
        "1 of 2 trials ended)"
    )
