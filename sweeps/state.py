"""What a sweep invocation knows as it runs, and what it says when it ends.

:class:`SweepState` hears every trial event (it is a :class:`jena.recording.Events`: from this
process, or from the workers through :class:`sweeps.display.QueueSink`) and holds the counts,
the best so far, why the sweep ended, notes and timings. The runner decides from it; the live
board (:class:`sweeps.display.Board`) only draws it. :class:`SweepSummary` is the typed result of
:func:`sweeps.runner.run_sweep`; the CLI prints it.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any

from jena.tracking import CANDIDATE_STATES

from .drivers import Best


@dataclass
class Running:
    """A trial in progress, as the display shows it."""

    summary: str
    max_epochs: int
    epoch: int = 0  # epochs finished
    val_mae: float = math.nan
    batch: int = 0
    batches: int = 0
    started: float = field(default_factory=time.monotonic)


@dataclass
class SweepState:
    """Counts, the best so far vs the baselines, running trials, notes, timings."""

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
    running_elsewhere: int = 0  # trials of other live processes, once this invocation's ended
    workers_wall_s: float | None = None  # summed wall time of worker processes
    timing: Timing | None = None  # once the invocation ended
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

    @property
    def ran(self) -> int:
        """Trials that ended in this invocation."""
        return sum(self.counts.values())

    @property
    def all_failed(self) -> bool:
        return bool(self.counts["failed"]) and not sum(
            n for state, n in self.counts.items() if state != "failed"
        )

    def eta(self) -> float | None:
        """Seconds left: the mean trial so far times the trials left, at most the time budget."""
        left = self.total - self.finished
        if left <= 0:
            return 0.0
        estimate = sum(self.durations) / len(self.durations) * left if self.durations else None
        if self.deadline is not None:
            budget = max(self.deadline - time.monotonic(), 0.0)
            estimate = budget if estimate is None else min(estimate, budget)
        return estimate


@dataclass(frozen=True)
class Timing:
    """Wall time of this invocation, the workers' summed wall time, time inside ``model.fit``,
    and the share of the workers' time spent outside it (data, model building, tracking, the
    tuner's own work)."""

    wall_s: float
    workers_wall_s: float
    fit_s: float

    @property
    def outside_fit_fraction(self) -> float:
        return 1 - self.fit_s / self.workers_wall_s if self.workers_wall_s else 0.0


@dataclass(frozen=True)
class TopTrial:
    """One row of the end-of-sweep table."""

    number: int | None
    driver: str
    architecture: str
    val_mae: float | None
    val_skill: float | None
    param_count: int | None
    state: str


@dataclass
class SweepSummary:
    """What a sweep invocation did and where the sweep stands (:func:`sweeps.runner.run_sweep`)."""

    experiment: str
    tracking_uri: str
    runs_page: str  # the UI's page of the sweep's trials, best first (relative to its address)
    baseline_val_mae: float
    reference_val_mae: float | None
    total: int
    finished: int
    workers: int
    complete: bool = False  # the store held the total already: nothing ran, no run created
    parent_run_id: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    best: Best | None = None
    stop_reason: str | None = None
    notes: list[str] = field(default_factory=list)
    beats_persistence: bool = False
    advice: str | None = None  # what to do when no trial beats persistence yet
    timing: Timing | None = None
    top: list[TopTrial] = field(default_factory=list)
    val_targets: int | None = None  # the validation targets every val MAE here covers

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if self.timing is not None:
            out["timing"]["outside_fit_fraction"] = self.timing.outside_fit_fraction
        return out
