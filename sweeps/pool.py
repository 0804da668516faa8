"""Worker processes on this machine (``--workers N``): N processes, each building the sweep's
driver from its config and running its loop (:meth:`sweeps.drivers.Driver.run`) against the
shared study, their events forwarded to the main process's state.

Workers are spawned (a fresh interpreter: no forked TensorFlow or database connections); their
stderr (TensorFlow's start-up lines, tracebacks) goes to ``mlruns/logs/NAME-workerI.log``, not
through the live display. A worker that stops the sweep (an infrastructure fault, too many
failed trials) says why on the queue: the others start no new trial, and the main process
raises that error once. Under JAX the workers share one accelerator (:func:`jena.devices.
share_device`)."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path
from typing import Any

from jena import tracking as T
from jena.devices import share_device
from jena.errors import ConfigError, InfrastructureError, JenaError, WorkerError

from .config import SweepConfig
from .display import QueueSink, pump
from .faults import TooManyFailures
from .state import SweepState

LOGS = Path("mlruns/logs")
_ERRORS: dict[str, type[JenaError]] = {"InfrastructureError": InfrastructureError,
                                       "TooManyFailures": TooManyFailures,
                                       "ConfigError": ConfigError}  # fmt: skip


def run_workers(
    cfg: SweepConfig, parent_run_id: str, state: SweepState, deadline: float | None
) -> None:
    """Run ``cfg.workers`` worker processes to the end; their summed wall time goes to
    ``state.workers_wall_s``. Raises the first fault a worker reported, or WorkerError when a
    worker died."""
    share_device(cfg.workers)  # JAX: workers share one accelerator (no XLA preallocation)
    spawn = mp.get_context("spawn")
    q = spawn.Queue()
    stop = spawn.Event()  # a worker hit a fault: the others start no new trial
    left = None if deadline is None else deadline - time.monotonic()
    procs = [spawn.Process(target=_worker, args=(cfg, parent_run_id, q, left, i, stop))
             for i in range(cfg.workers)]  # fmt: skip
    LOGS.mkdir(parents=True, exist_ok=True)
    for i, p in enumerate(procs):
        with _stderr_to(LOGS / f"{cfg.name}-worker{i}.log"):
            p.start()
    faults: list[tuple[str, str]] = []

    def on_fault(kind: str, message: str) -> None:
        faults.append((kind, message))
        stop.set()

    started = time.monotonic()
    ended: dict[int, float] = {}
    try:
        while len(ended) < len(procs):
            pump(q, state, on_fault)
            ended.update({i: time.monotonic() for i, p in enumerate(procs)
                          if i not in ended and not p.is_alive()})  # fmt: skip
        pump(q, state, on_fault, timeout=0.05)
        state.workers_wall_s = sum(t - started for t in ended.values())
    except KeyboardInterrupt:
        for p in procs:  # they got the same SIGINT: let them end their trials cleanly
            p.join(timeout=60)
        pump(q, state, on_fault, timeout=0.05)
        raise
    if faults:  # what stopped the first worker that stopped the sweep
        kind, message = faults[0]
        raise _ERRORS.get(kind, JenaError)(message)
    failed = [p.exitcode for p in procs if p.exitcode not in (0, None)]
    if failed:
        raise WorkerError(f"{len(failed)} of {len(procs)} sweep workers failed (exit codes "
                          f"{failed}): see {LOGS}/{cfg.name}-worker*.log")  # fmt: skip


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
    cfg: SweepConfig, parent_run_id: str, q: Any, seconds_left: float | None, index: int, stop: Any
) -> None:
    from jena.quiet import import_keras_quietly

    from .drivers import get_driver
    from .trial import make_context

    import_keras_quietly()
    T.set_retry_window(cfg.faults.tracking_retry_s)
    deadline = None if seconds_left is None else time.monotonic() + seconds_left
    sink = QueueSink(q)
    ctx = make_context(cfg, sink, parent_run_id, deadline)
    try:
        with contextlib.suppress(KeyboardInterrupt):  # the trial already ended FAILED/KILLED
            get_driver(cfg).run(ctx, deadline, worker=index, stop=stop)
    except JenaError as exc:  # the main process says it, once, and stops the others
        sink.fault(type(exc).__name__, str(exc))
        raise SystemExit(3) from None
