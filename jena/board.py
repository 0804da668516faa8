"""The live board of trainings — a sweep's trials, a refit's members — and the end-of-sweep
table: driver-neutral, drawn from events and the MLflow store's rows, never from a tuner.

:class:`Progress` hears every training event (it is a :class:`jena.recording.Events`: from this
process, or from a sweep's workers through their queue) and holds the counts, the best so far
against the baselines, the running trainings and notes; a sweep's state
(:class:`sweeps.state.SweepState`) adds what only a sweep knows. :class:`Board` draws a
:class:`Progress` and nothing else: it is rendered afresh at every refresh of
:class:`rich.live.Live` (four times a second, from its own thread), so elapsed time and the
running trainings' epochs and batches move while they train, with one worker as with many.
:func:`summary_table` draws the top trials (:class:`TopTrial`, read from the store by
:func:`jena.tracking.top_trials`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .tracking import CANDIDATE_STATES, TopTrial


def fmt_time(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


@dataclass
class Running:
    """A training in progress, as the board shows it."""

    summary: str
    max_epochs: int
    epoch: int = 0  # epochs finished
    val_mae: float = math.nan
    batch: int = 0
    batches: int = 0
    started: float = field(default_factory=time.monotonic)


@dataclass
class Progress:
    """Counts, the best so far vs the baselines, running trainings, notes, why it stopped."""

    title: str
    total: int
    done_before: int = 0
    baseline: float | None = None  # persistence on the validation targets trials share, °C
    reference: float | None = None  # the linear reference on the same targets, °C
    targets: int | None = None  # validation targets every MAE of the sweep covers
    best: float | None = None
    best_number: int | None = None
    best_skill: float | None = None  # vs persistence on the same targets
    deadline: float | None = None  # time.monotonic() value or None
    # per state; "stopped" (by the time budget) once one is
    counts: dict[str, int] = field(default_factory=lambda: {"completed": 0, "pruned": 0,
                                                             "failed": 0})  # fmt: skip
    running: dict[int, Running] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # e.g. trials stopped at the time budget
    stop_reason: str | None = None  # which rule ended the sweep
    started: float = field(default_factory=time.monotonic)
    durations: list[float] = field(default_factory=list)

    # ---------------------------------------------------------------- events
    def trial_started(self, number: int, summary: str, max_epochs: int) -> None:
        self.running[number] = Running(summary, max_epochs)

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
        self.durations.append(seconds)
        if note:
            self.notes.append(f"trial {number}: {note}")
        better = val_mae is not None and (self.best is None or val_mae < self.best)
        if state in CANDIDATE_STATES and better:  # completed, or stopped by the time budget
            self.best, self.best_number, self.best_skill = val_mae, number, val_skill

    # ---------------------------------------------------------------- reading
    @property
    def finished(self) -> int:
        return self.done_before + sum(self.counts.values())

    def eta(self) -> float | None:
        """Seconds left: the mean training so far times those left, at most the time budget."""
        left = self.total - self.finished
        if left <= 0:
            return 0.0
        estimate = sum(self.durations) / len(self.durations) * left if self.durations else None
        if self.deadline is not None:
            budget = max(self.deadline - time.monotonic(), 0.0)
            estimate = budget if estimate is None else min(estimate, budget)
        return estimate


class Board:
    """Counts, best so far vs the baselines, running trainings, elapsed and remaining time."""

    def __init__(self, state: Progress) -> None:
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
