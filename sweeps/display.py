"""The live sweep display and the end-of-sweep summary, shared by both drivers.

Drivers report events to a :class:`Board` (in-process) or to a :class:`QueueSink` (worker
processes; the main process pumps the queue into the board). The board is rendered afresh at
every refresh of :class:`rich.live.Live` (four times a second, from its own thread), so elapsed
time and the running trial's epoch and batch move while a trial trains, with one worker as with
many.
"""

from __future__ import annotations

import math
import queue
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text


@dataclass
class _Running:
    summary: str
    max_epochs: int
    epoch: int = 0  # epochs finished
    val_mae: float = math.nan
    batch: int = 0
    batches: int = 0
    started: float = field(default_factory=time.monotonic)


def fmt_time(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Board:
    """Counts, best so far vs the baseline, running trials, elapsed and remaining time."""

    def __init__(
        self,
        title: str,
        *,
        total: int,
        done_before: int = 0,
        baseline: float | None = None,
        best_before: float | None = None,
        best_number_before: int | None = None,
        best_skill_before: float | None = None,
        deadline: float | None = None,
    ) -> None:
        self.title = title
        self.total = total
        self.done_before = done_before
        self.baseline = baseline  # persistence on the preset's validation windows
        self.best = best_before
        self.best_number: int | None = best_number_before
        self.best_skill = best_skill_before  # vs persistence on the trial's own windows
        self.deadline = deadline  # time.monotonic() value or None
        self.counts = {"completed": 0, "pruned": 0, "failed": 0}
        self.running: dict[int, _Running] = {}
        self.notes: list[str] = []  # e.g. trials stopped at the time budget
        self.stop_reason: str | None = None  # which rule ended the sweep
        self.workers_wall_s: float | None = None  # summed wall time of worker processes
        self.started = time.monotonic()
        self._durations: list[float] = []
        self._live: Live | None = None

    # events
    def trial_started(self, number: int, summary: str, max_epochs: int) -> None:
        self.running[number] = _Running(summary, max_epochs)

    def progress(self, number: int, epoch: int, batch: int, batches: int) -> None:
        if number in self.running:
            r = self.running[number]
            r.batch, r.batches = batch, batches

    def epoch(self, number: int, epoch: int, val_mae: float) -> None:
        if number in self.running:
            r = self.running[number]
            r.epoch, r.val_mae, r.batch = epoch, val_mae, 0

    def stopped(self, reason: str) -> None:
        """A stop rule ended the sweep (the first reason reported wins)."""
        self.stop_reason = self.stop_reason or reason

    def trial_finished(
        self,
        number: int,
        state: str,
        val_mae: float | None,
        seconds: float,
        val_skill: float | None = None,
        note: str | None = None,
    ) -> None:
        self.running.pop(number, None)
        self.counts[state] = self.counts.get(state, 0) + 1
        self._durations.append(seconds)
        if note:
            self.notes.append(f"trial {number}: {note}")
        if (
            state == "completed"
            and val_mae is not None
            and (self.best is None or val_mae < self.best)
        ):
            self.best, self.best_number, self.best_skill = val_mae, number, val_skill

    # display
    @property
    def finished(self) -> int:
        return self.done_before + sum(self.counts.values())

    def eta(self) -> float | None:
        left = self.total - self.finished
        if left <= 0:
            return 0.0
        estimate = None
        if self._durations:
            estimate = sum(self._durations) / len(self._durations) * left
        if self.deadline is not None:
            budget = max(self.deadline - time.monotonic(), 0.0)
            estimate = budget if estimate is None else min(estimate, budget)
        return estimate

    def best_line(self) -> str:
        base = f"persistence {self.baseline:.4f} °C" if self.baseline else ""
        if self.best is None:
            return "best val MAE —" + (f"   {base}" if base else "")
        text = f"best val MAE {self.best:.4f} °C"
        if self.best_number is not None:
            text += f" (trial {self.best_number})"
        if base:
            text += f"   {base}"
        if self.best_skill is not None:
            # the trial's own skill: vs persistence on its own validation windows (as the report)
            text += f"   skill {self.best_skill:+.1%} (vs persistence on its windows)"
        return text

    def render(self) -> Group:
        head = Text.assemble((self.title, "bold"))
        c = self.counts
        line = Text(
            f"trials {self.finished}/{self.total}   completed {c['completed']}   "
            f"pruned {c['pruned']}   failed {c['failed']}"
            + (f"   (resumed after {self.done_before})" if self.done_before else "")
        )
        eta = self.eta()
        times = f"elapsed {fmt_time(time.monotonic() - self.started)}" + (
            f"   remaining ≈ {fmt_time(eta)}" if eta is not None else ""
        )
        table = Table(box=None, show_header=True, header_style="dim", pad_edge=False)
        for col in ("trial", "epoch", "batch", "val MAE", "time", "config"):
            table.add_column(col, no_wrap=col != "config")
        now = time.monotonic()
        for number, r in sorted(self.running.items()):
            table.add_row(
                str(number),
                f"{min(r.epoch + 1, r.max_epochs)}/{r.max_epochs}",
                f"{r.batch}/{r.batches}" if r.batches and r.batch else "—",
                "—" if math.isnan(r.val_mae) else f"{r.val_mae:.4f}",
                fmt_time(now - r.started),
                r.summary,
            )
        parts: list[Any] = [head, line, Text(self.best_line()), Text(times)]
        if self.running:
            parts.append(table)
        return Group(*parts)

    @contextmanager
    def live(self, console: Console | None = None) -> Iterator[Board]:
        console = console or Console(stderr=True)
        with Live(
            get_renderable=self.render,
            console=console,
            refresh_per_second=4,
            transient=False,
        ) as live:
            self._live = live
            try:
                yield self
            finally:
                live.refresh()
                self._live = None

    def refresh(self) -> None:
        if self._live is not None:
            self._live.refresh()


def _forward(kind: str) -> Any:
    def send(self: QueueSink, *args: Any, **kwargs: Any) -> None:
        self.q.put((kind, args, kwargs))

    send.__name__ = kind
    return send


class QueueSink:
    """Events from a worker process, forwarded to the main process's board: each event of
    :class:`jena.recording.Events` is put on the queue as it is (name, args, kwargs)."""

    def __init__(self, q: Any) -> None:
        self.q = q

    trial_started = _forward("trial_started")
    progress = _forward("progress")
    epoch = _forward("epoch")
    stopped = _forward("stopped")
    trial_finished = _forward("trial_finished")


def pump(q: Any, board: Board, timeout: float = 0.25) -> None:
    """Move queued worker events onto the board (returns after ``timeout`` without events)."""
    try:
        kind, args, kwargs = q.get(timeout=timeout)
        getattr(board, kind)(*args, **kwargs)
        while True:
            kind, args, kwargs = q.get_nowait()
            getattr(board, kind)(*args, **kwargs)
    except queue.Empty:
        pass


def summary_table(rows: list[dict[str, Any]], baseline: float | None, title: str) -> Table:
    """Top trials next to the persistence baseline. Skill is each trial's own (vs persistence
    on its own validation windows), as in the report."""
    table = Table(title=title)
    for col in (
        "rank",
        "trial",
        "driver",
        "architecture",
        "val MAE °C",
        "skill",
        "params",
        "state",
    ):
        table.add_column(col, justify="right" if col in ("rank", "trial", "params") else "left")
    if baseline is not None:
        table.add_row("", "", "", "persistence", f"{baseline:.4f}", "0.0%", "0", "baseline")
    for i, r in enumerate(rows, 1):
        v, skill = r.get("val_mae"), r.get("val_skill")
        table.add_row(
            str(i),
            str(r.get("number", "")),
            str(r.get("driver", "")),
            str(r.get("architecture", "")),
            "—" if v is None else f"{v:.4f}",
            "—" if skill is None else f"{skill:+.1%}",
            str(r.get("param_count", "")),
            str(r.get("state", "")),
        )
    return table
