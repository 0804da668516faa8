"""Worker processes on this machine (``--workers N``): N processes, each building the sweep's
driver from its config and running its loop (:meth:`sweeps.drivers.Driver.run`) against the
shared study, their events forwarded to the main process's state.

Workers are spawned (a fresh interpreter: no forked TensorFlow or database connections); their
stderr (TensorFlow's start-up lines, tracebacks) goes to ``mlruns/logs/NAME-workerI.log``, not
through the live display. A worker that stops the sweep (an infrastructure fault, too many
failed trials) says why on the queue: the others start no new trial, and the main process
raises that error once. Under JAX the workers share one accelerator (:func:`jena.devices.
share_device`).

A stop signal to the main process (:mod:`jena.signals`), or anything else that ends it early,
reaches every worker: each gets SIGTERM, stops its trial at once (lost: not counted, re-run
first), ends its MLflow run KILLED and exits; one still there after :data:`STOP_GRACE_S` seconds
is killed (its trial is then failed as stale by the next start). A worker whose main process
died stops the same way within a second (:func:`jena.signals.watch_parent`)."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jena import signals
from jena import tracking as T
from jena.devices import share_device
from jena.errors import ConfigError, InfrastructureError, JenaError, WorkerError
from jena.secrets import redacted_console

from .config import SweepConfig
from .display import QueueSink, pump
from .faults import TooManyFailures
from .state import SweepState

LOGS = Path("mlruns/logs")
STOP_GRACE_S = 10.0  # a stopped worker ends its trial and exits within this, or is killed
_ERRORS: dict[str, type[JenaError]] = {"InfrastructureError": InfrastructureError,
                                       "TooManyFailures": TooManyFailures,
                                       "ConfigError": ConfigError}  # fmt: skip


def run_workers(
    cfg: SweepConfig, parent_run_id: str, state: SweepState, deadline: float | None
) -> None:
    """Run ``cfg.workers`` worker processes to the end; their summed wall time goes to
    ``state.workers_wall_s``. Raises the first fault a worker reported, or WorkerError when a
    worker died; a stop signal (KeyboardInterrupt) once every worker has stopped."""
    share_device(cfg.workers)  # JAX: workers share one accelerator (no XLA preallocation)
    spawn = mp.get_context("spawn")
    q = spawn.Queue()
    stop = spawn.Event()  # a worker hit a fault: the others start no new trial
    left = None if deadline is None else deadline - time.monotonic()
    procs = [spawn.Process(target=_worker, args=(cfg, parent_run_id, q, left, i, stop,
                                                 os.getpid()))
             for i in range(cfg.workers)]  # fmt: skip
    faults: list[tuple[str, str]] = []

    def on_fault(kind: str, message: str) -> None:
        faults.append((kind, message))
        stop.set()

    def events(timeout: float = 0.25) -> None:
        with signals.deferred():  # a signal never cuts a message in half
            pump(q, state, on_fault, timeout)

    LOGS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    ended: dict[int, float] = {}
    try:
        for i, p in enumerate(procs):
            with _stderr_to(LOGS / f"{cfg.name}-worker{i}.log"):
                p.start()
        while len(ended) < len(procs):
            events()
            ended.update({i: time.monotonic() for i, p in enumerate(procs)
                          if i not in ended and not p.is_alive()})  # fmt: skip
        events(timeout=0.05)
    except BaseException:
        stop.set()
        _stop_workers(procs, events)
        raise
    state.workers_wall_s = sum(t - started for t in ended.values())
    if faults:  # what stopped the first worker that stopped the sweep
        kind, message = faults[0]
        raise _ERRORS.get(kind, JenaError)(message)
    failed = [p.exitcode for p in procs if p.exitcode not in (0, None)]
    if failed:
        raise WorkerError(f"{len(failed)} of {len(procs)} sweep workers failed (exit codes "
                          f"{failed}): see {LOGS}/{cfg.name}-worker*.log")  # fmt: skip


def _stop_workers(procs: list[Any], events: Callable[[float], None]) -> None:
    """SIGTERM to every worker still running; wait for them, reading their events, at most
    :data:`STOP_GRACE_S` seconds; then SIGKILL those left."""
    running = [p for p in procs if p.pid is not None and p.is_alive()]
    for p in running:
        p.terminate()
    end = time.monotonic() + STOP_GRACE_S
    try:
        while time.monotonic() < end and any(p.is_alive() for p in running):
            with contextlib.suppress(Exception):  # a message a worker left half-written
                events(0.1)
    finally:  # a stop signal meanwhile: no more waiting
        for p in running:
            if p.is_alive():
                p.kill()
            p.join(timeout=5)


@contextlib.contextmanager
def _stderr_to(path: Path) -> Any:
    """File descriptor 2 of a process started in the block is ``path`` (appended)."""
    with open(path, "a") as log:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _worker(
    cfg: SweepConfig, parent_run_id: str, q: Any, seconds_left: float | None, index: int,
    stop: Any, parent: int,
) -> None:  # fmt: skip
    # the main process signals us too; what we write to our log (mlruns/logs/) is redacted
    with signals.stop_on_signals(again="ignore"), redacted_console():
        signals.watch_parent(parent)
        try:
            _work(cfg, parent_run_id, QueueSink(q), seconds_left, index, stop)
        except KeyboardInterrupt as exc:  # its trial ended lost, its run KILLED: all written
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(signals.exit_status(exc))  # no teardown: seconds with TensorFlow loaded


def _work(
    cfg: SweepConfig, parent_run_id: str, sink: QueueSink, seconds_left: float | None,
    index: int, stop: Any,
) -> None:  # fmt: skip
    from jena.quiet import import_keras_quietly

    from .drivers import get_driver
    from .trial import make_context

    import_keras_quietly()
    T.set_retry_window(cfg.faults.tracking_retry_s)
    deadline = None if seconds_left is None else time.monotonic() + seconds_left
    ctx = make_context(cfg, sink, parent_run_id, deadline)
    try:
        get_driver(cfg).run(ctx, deadline, worker=index, stop=stop)
    except JenaError as exc:  # the main process says it, once, and stops the others
        sink.fault(type(exc).__name__, str(exc))
        raise SystemExit(3) from None
