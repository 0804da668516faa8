"""What a sweep invocation knows as it runs, and what it says when it ends.

:class:`SweepState` is the core's :class:`jena.board.Progress` (every trial event: from this
process, or from the workers through :class:`sweeps.display.QueueSink`; the counts, the best so
far, notes) with what only a sweep knows: why it ended, trials running elsewhere, timings. The
runner decides from it; the live board (:class:`jena.board.Board`) only draws it.
:class:`SweepSummary` is the typed result of :func:`sweeps.runner.run_sweep`; the CLI prints it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from jena.board import Progress
from jena.tracking import TopTrial

from .drivers import Best

__all__ = ["SweepState", "SweepSummary", "Timing", "TopTrial"]


@dataclass
class SweepState(Progress):
    """:class:`jena.board.Progress` of a sweep invocation, with why it ended and its timings."""

    running_elsewhere: int = 0  # trials of other live processes, once this invocation's ended
    workers_wall_s: float | None = None  # summed wall time of worker processes
    timing: Timing | None = None  # once the invocation ended

    @property
    def ran(self) -> int:
        """Trials that ended in this invocation."""
        return sum(self.counts.values())

    @property
    def all_failed(self) -> bool:
        return bool(self.counts["failed"]) and not sum(
            n for state, n in self.counts.items() if state != "failed"
        )


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
