"""The live sweep display and the end-of-sweep table, shared by both drivers.

:class:`Board` draws a :class:`~sweeps.state.SweepState` and nothing else: it is rendered
afresh at every refresh of :class:`rich.live.Live` (four times a second, from its own thread),
so elapsed time and the running trials' epochs and batches move while a trial trains, with one
worker as with many. Worker processes send their events through a :class:`QueueSink`; the main
process :func:`pump`\\ s them into the state.
"""

from __future__ import annotations

import math
import queue
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .state import SweepState, TopTrial


def fmt_time(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Board:
    """Counts, best so far vs the baselines, running trials, elapsed and remaining time."""

    def __init__(self, state: SweepState) -> None:
        self.state = state

    def best_line(self) -> str:
        s = self.state
        bases = []
        if s.baseline:
            bases.append(f"persistence {s.baseline:.4f} °C")
        if s.reference:
            bases.append(f"linear {s.reference:.4f} °C")
        base = "   ".join(bases)
        if s.best is None:
            return "best val MAE —" + (f"   {base}" if base else "")
        text = f"best val MAE {s.best:.4f} °C"
        if s.best_number is not None:
            text += f" (trial {s.best_number})"
        if base:
            text += f"   {base}"
        if s.best_skill is not None:
            text += f"   skill {s.best_skill:+.1%}"
        if s.targets:
            text += f"   (all on the same {s.targets:,} validation targets)"
        return text

    def render(self) -> Group:
        s = self.state
        c = s.counts
        line = Text(
            f"trials {s.finished}/{s.total}   completed {c['completed']}   "
            + (f"stopped {c['stopped']}   " if c.get("stopped") else "")
            + f"pruned {c['pruned']}   failed {c['failed']}"
            + (f"   (resumed after {s.done_before})" if s.done_before else "")
        )
        eta = s.eta()
        times = f"elapsed {fmt_time(time.monotonic() - s.started)}" + (
            f"   remaining ≈ {fmt_time(eta)}" if eta is not None else ""
        )
        parts: list[Any] = [Text(s.title, style="bold"), line, Text(self.best_line()), Text(times)]
        if s.running:
            parts.append(self._running())
        return Group(*parts)

    def _running(self) -> Table:
        table = Table(box=None, show_header=True, header_style="dim", pad_edge=False)
        for col in ("trial", "epoch", "batch", "val MAE", "time", "config"):
            table.add_column(col, no_wrap=col != "config")
        now = time.monotonic()
        for number, r in sorted(self.state.running.items()):
            table.add_row(
                str(number),
                f"{min(r.epoch + 1, r.max_epochs)}/{r.max_epochs}",
                f"{r.batch}/{r.batches}" if r.batches and r.batch else "—",
                "—" if math.isnan(r.val_mae) else f"{r.val_mae:.4f}",
                fmt_time(now - r.started),
                r.summary,
            )
        return table

    @contextmanager
    def live(self, console: Console | None = None) -> Iterator[Board]:
        with Live(get_renderable=self.render, console=console or Console(stderr=True),
                  refresh_per_second=4, transient=False) as live:  # fmt: skip
            try:
                yield self
            finally:
                live.refresh()


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


def summary_table(
    rows: list[TopTrial], baseline: float | None, reference: float | None, title: str
) -> Table:
    """Top trials next to persistence and the linear reference, every MAE and skill over the
    sweep's validation targets (the same rows for every trial: say how many in ``title``)."""
    table = Table(title=title)
    cols = ("rank", "trial", "driver", "architecture", "val MAE °C", "skill", "params", "state")
    for col in cols:
        table.add_column(col, justify="right" if col in ("rank", "trial", "params") else "left")
    if baseline is not None:
        table.add_row("", "", "", "persistence", f"{baseline:.4f}", "0.0%", "0", "baseline")
    if reference is not None and baseline:
        skill = 1 - reference / baseline
        table.add_row("", "", "", "linear (ridge)", f"{reference:.4f}", f"{skill:+.1%}", "",
                      "reference")  # fmt: skip
    for i, r in enumerate(rows, 1):
        table.add_row(
            str(i),
            "" if r.number is None else str(r.number),
            r.driver,
            r.architecture,
            "—" if r.val_mae is None else f"{r.val_mae:.4f}",
            "—" if r.val_skill is None else f"{r.val_skill:+.1%}",
            "" if r.param_count is None else f"{r.param_count:,}",
            r.state,
        )
    return table
