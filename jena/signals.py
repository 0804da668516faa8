"""Stop signals: SIGTERM (``kill``, ``timeout``, a container stop, a pod eviction), SIGINT
(Ctrl-C) and SIGHUP (a closed terminal) stop a command the way Ctrl-C does: :class:`Interrupted`
(a ``KeyboardInterrupt``) is raised where the process is, so what runs ends in a terminal state
(MLflow runs KILLED, a sweep's trial *lost*: not counted, re-run first), and the command exits
with ``128 +`` the signal's number and one line.

Within :func:`stop_on_signals` (the main thread of a command, or of a sweep worker), the first
signal raises at once or, inside :func:`deferred`, when that block ends or at a :func:`check` in
it (a trial trains in such a block and checks after every batch). What a later signal does is the
caller's choice: the main process of a command exits at once (a second Ctrl-C), a worker ignores
it (its main process signals it too, and ends it after a bound). :func:`watch_parent` stops a
worker whose main process is gone (SIGKILL, a crash) instead of letting it train on as an
orphan. The core of the project: no tuner here."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """A stop signal reached this process (``signum``; ``why``: what sent it, when known)."""

    def __init__(self, signum: int, why: str = "") -> None:
        self.signum, self.why = signum, why
        super().__init__(f"stopped by {self.name}" + (f" ({why})" if why else ""))

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


def exit_status(exc: BaseException) -> int:
    """The exit status of a command that ``exc`` stopped: 128 + the signal's number (143 for
    SIGTERM, 130 for SIGINT and a plain KeyboardInterrupt, 129 for SIGHUP)."""
    return 128 + (exc.signum if isinstance(exc, Interrupted) else signal.SIGINT)


def describe(exc: BaseException) -> str:
    """What stopped the process, in a few words: ``interrupted by SIGTERM``."""
    if isinstance(exc, Interrupted):
        return f"interrupted by {exc.name}" + (f" ({exc.why})" if exc.why else "")
    return "interrupted"


@dataclass
class _Stop:
    again: Literal["exit", "ignore"] = "exit"
    received: int | None = None  # the first stop signal
    pending: bool = False  # received inside deferred(): raise when it ends
    depth: int = 0  # nested deferred() blocks
    why: str = ""


_stop = _Stop()


def _handle(signum: int, frame: Any) -> None:
    if _stop.received is not None:
        if _stop.again == "exit":
            os.write(2, f"{signal.Signals(signum).name} again: exiting now\n".encode())
            os._exit(128 + signum)
        return
    _stop.received = signum
    if _stop.depth:
        _stop.pending = True
        return
    raise Interrupted(signum, _stop.why)


@contextlib.contextmanager
def stop_on_signals(again: Literal["exit", "ignore"] = "exit") -> Iterator[None]:
    """Within the block, the first stop signal raises :class:`Interrupted`; a later one exits
    at once (``again="exit"``) or is ignored (``"ignore"``). A SIGHUP ignored already (``nohup``)
    stays ignored. Outside the main thread this does nothing; the handlers before are restored
    when the block ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    global _stop
    outer, _stop = _stop, _Stop(again)
    for s in STOP_SIGNALS:
        if saved[s] != signal.SIG_IGN:
            signal.signal(s, _handle)
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
        _stop = outer


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A stop signal that arrives within the block is raised when the block ends, or at a
    :func:`check` in it: around bookkeeping that must not be cut in half (a trial asked for and
    not yet tagged with its owner would be left RUNNING for good), and around training —
    TensorFlow calls back into Python from C++, and an exception raised there by a signal
    handler can turn into a SystemError that a trial takes for its own failure. Main thread
    only."""
    _stop.depth += 1
    try:
        yield
    finally:
        _stop.depth -= 1
        if not _stop.depth and _stop.pending and _stop.received is not None:
            _stop.pending = False
            raise Interrupted(_stop.received, _stop.why)


def check() -> None:
    """Raise a stop signal that :func:`deferred` holds: call it where stopping is safe (a
    trainer's ``should_stop``, asked between two batches)."""
    if _stop.pending and _stop.received is not None:
        _stop.pending = False
        raise Interrupted(_stop.received, _stop.why)


def watch_parent(pid: int, every_s: float = 1.0) -> None:
    """Stop this process (SIGTERM to itself, :class:`Interrupted` under
    :func:`stop_on_signals`) within ``every_s`` seconds of its parent ``pid`` being gone."""

    def watch() -> None:
        while os.getppid() == pid:
            time.sleep(every_s)
        _stop.why = "its parent process is gone"
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="jena-parent-watch", daemon=True).start()


def say(exc: BaseException) -> int:
    """Print the one line of a command that ``exc`` stopped; its exit status."""
    print(describe(exc), file=sys.stderr)
    return exit_status(exc)
