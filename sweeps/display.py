"""A sweep's workers' events, forwarded to the main process: the live board
(:class:`jena.board.Board`, driver-neutral, in the core) draws the main process's
:class:`~sweeps.state.SweepState`. Worker processes send their events through a
:class:`QueueSink`; the main process :func:`pump`\\ s them into the state.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Any

from .state import SweepState


def _forward(kind: str) -> Any:
    def send(self: QueueSink, *args: Any, **kwargs: Any) -> None:
        self.q.put((kind, args, kwargs))

    send.__name__ = kind
    return send


class QueueSink:
    """Events from a worker process, forwarded to the main process's state: each event of
    :class:`jena.recording.Events` is put on the queue as it is (name, args, kwargs)."""

    def __init__(self, q: Any) -> None:
        self.q = q

    trial_started = _forward("trial_started")
    progress = _forward("progress")
    epoch = _forward("epoch")
    stopped = _forward("stopped")
    trial_finished = _forward("trial_finished")
    fault = _forward("fault")  # a worker stopped the sweep: (kind of error, message)


def pump(q: Any, state: SweepState, on_fault: Callable[[str, str], None],
         timeout: float = 0.25) -> None:  # fmt: skip
    """Move queued worker events onto ``state`` (faults to ``on_fault``); returns after
    ``timeout`` without events."""

    def handle(kind: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if kind == "fault":
            on_fault(*args)
        else:
            getattr(state, kind)(*args, **kwargs)

    try:
        handle(*q.get(timeout=timeout))
        while True:
            handle(*q.get_nowait())
    except queue.Empty:
        pass
