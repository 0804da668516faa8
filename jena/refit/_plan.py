"""The refit's plan: what it will train and what that will cost, before it is spent.

Each member's cost is estimated from its source trial's measured fit time (the sweep already
trained that configuration, on this machine or one like it)::

    seconds = overhead + expected_epochs × per_window × (train_windows + VAL_COST × val_windows)

* ``per_window``: the source trial's seconds per training window, its steady epochs only (the
  time between the ends of its epochs 2, 3, ...; a validation window counts ``VAL_COST`` of a
  training one) — so the first epoch's compilation is not spread over every window; a trial of
  one epoch: its fit seconds over its windows. Finished refit members of the configuration,
  when there are some, measure it directly instead.
* ``overhead``: what the source trial's first epoch took beyond a steady one (compilation).
* ``train_windows``, ``val_windows``: a full-fidelity epoch (every training window, the full
  validation split) of the configuration on this record.
* ``expected_epochs``: ``patience + BEST_EPOCH`` (at most ``epochs``), or the mean of the
  refit's finished members when there are some (a seed whose curve is known: its length).
* A packed lane (JAX) of ``m`` seeds costs one member plus ``PACK_MARGINAL`` of one for each
  other seed (0.4 measured on a 2-core CPU, ``benchmarks/results/packed.json``; 0.1 on an
  accelerator is an assumption until measured).

Which members train, how far and in which order is the race's own answer: the plan runs the
refit's race (:func:`jena.refit._lanes.race`) on the refit's lanes, their seeds simulated
(:class:`Simulated`) on a clock that each epoch advances by its cost, so the plan cannot drift
from the race. A seed follows its curve where one is known; otherwise the plan assumes a flat
curve that ranks behind every known one (knowing nothing, the configurations survive in their
sweep order): a member a rung stops costs only its rung, and seeds that start only after the
race are counted for its survivors only. A member that would end after the budget is marked,
and a plan in which no seed ends within it is refused before anything is spent
(:meth:`RefitPlan.check_budget`).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import tracking as T
from ..errors import ConfigError
from ..tracking import names as N
from ..train import DataCache, Fidelity, FitPlan, TrialPruned, evenly
from ._lanes import Lane, Seed, race
from ._race import epochs_text, rungs

if TYPE_CHECKING:
    from ..data import Dataset
    from . import Candidate, RefitResult, RefitSettings

VAL_COST = 0.3  # a validation window against a training one (forward only; 0.25 measured, TF CPU)
BEST_EPOCH = 2  # a full-fidelity member's best epoch is usually its 1st or 2nd (synthetic:43200)
PACK_MARGINAL = {"cpu": 0.4, "accelerator": 0.1}  # cost of each further packed seed (of one)


@dataclass(frozen=True)
class Rate:
    """One configuration's measured cost at full fidelity: seconds per epoch and per fit."""

    epoch_s: float
    overhead_s: float
    source: str  # where it was measured

    def seconds(self, epochs: float) -> float:
        return self.overhead_s + epochs * self.epoch_s if epochs > 0 else 0.0


@dataclass
class PlannedMember:
    label: str
    seed: int
    epochs: float  # expected
    until: str  # "to the end", "rung 1 (3 epochs)"
    seconds: float
    overhead_s: float = 0.0  # of ``seconds``: once per fit (compilation)
    ends_s: float = 0.0  # when it ends, the members before it trained as the race trains them

    @property
    def finishes(self) -> bool:
        """It trains to the end: a seed the champion can average (if the plan's race holds)."""
        return self.until == "to the end"


@dataclass
class RefitPlan:
    """The members a refit will train now, their estimated fit seconds, and the budget."""

    experiment: str
    settings: RefitSettings
    status: RefitResult  # what earlier refits hold
    dataset: Dataset | None
    rungs: list[int]
    members: list[PlannedMember] = field(default_factory=list)
    after_race: int = 0  # seeds that start only if their configuration wins the race
    reused: int = 0
    packed: bool = False
    note: str | None = None  # why the plan departs from the settings

    def first_finish_s(self) -> float:
        """When by this plan the first seed that trains to the end ends (inf: none does)."""
        return min((m.ends_s for m in self.members if m.finishes), default=math.inf)

    def fits(self) -> bool:
        """Whether by this plan at least one seed finishes within the budget (or none is set,
        or nothing trains to the end)."""
        first = self.first_finish_s()
        return self.budget_s is None or math.isinf(first) or first <= self.budget_s

    @property
    def total_s(self) -> float:
        return sum(m.seconds for m in self.members)

    @property
    def budget_s(self) -> float | None:
        return self.settings.deadline_s

    def lines(self) -> list[str]:
        """The plan as the commands print it."""
        s = self.settings
        if not self.members:
            return [f"refit of {self.experiment!r}: nothing to train ({self.reused} members from "
                    "earlier refits)"]  # fmt: skip
        race = "no race: every configuration gets all its seeds"
        if self.rungs:
            at = ", ".join([*map(str, self.rungs[:-1]), epochs_text(self.rungs[-1])])
            race = f"a race: rungs at {at}, the worse half stops at each"
        out = [f"refit plan of {self.experiment!r}: top {s.top_k} × {s.seeds} seeds, up to "
               f"{s.epochs} epochs (patience {s.patience}); {self.note or race}"
               + ("; seeds packed (JAX)" if self.packed else "")]  # fmt: skip
        budget = self.budget_s
        for m in self.members:
            late = budget is not None and m.ends_s > budget
            out.append(f"  {m.label:<28} seed {m.seed}  {m.until:<22} ≈ {m.epochs:4.1f} epochs  "
                       f"{m.seconds:7.0f} s" + ("  (past the budget)" if late else ""))  # fmt: skip
        if self.after_race:
            out.append(f"  + {self.after_race} seed(s) of the survivors, if the race ranks them "
                       "otherwise (not counted)")  # fmt: skip
        total = f"estimated {_hours(self.total_s)} of fit for {len(self.members)} members"
        if self.reused:
            total += f" ({self.reused} reused from earlier refits)"
        if budget is None:
            return [*out, f"{total}; no time budget"]
        done = sum(1 for m in self.members if m.finishes and m.ends_s <= budget)
        fits = "within it" if self.total_s <= budget else f"{done} seed(s) finish within it"
        return [*out, f"{total}; budget {_hours(budget)} ({fits})"]

    def check_budget(self) -> None:
        """A ConfigError when by this plan not one seed finishes within the budget."""
        if self.fits():
            return
        budget, first = self.budget_s or 0.0, self.first_finish_s()
        need = math.ceil(first * 1.3 / 60)  # the estimate's ± 30 %
        raise ConfigError(
            f"by its plan the refit finishes no seed within its budget ({_hours(budget)}): the "
            f"first would end after ≈ {_hours(first)}; give --refit-minutes {need} (or inf), "
            "fewer --top-k or --epochs, or --no-refit for the best trial's own model"
        )

    def to_dict(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "rungs": self.rungs, "total_s": self.total_s,
                "budget_s": self.budget_s, "reused": self.reused, "packed": self.packed,
                "after_race": self.after_race,
                "members": [vars(m) for m in self.members]}  # fmt: skip


def _hours(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


# --------------------------------------------------------------------------- rates


def _epoch_times(uri: str, experiment: str, run_id: str) -> list[float]:
    """Seconds between the ends of a run's consecutive epochs (epochs 2, 3, ...)."""
    history = T.Tracker(uri, experiment).client.get_metric_history(run_id, N.METRIC_VAL_MAE)
    stamps = [m.timestamp for m in sorted(history, key=lambda m: m.step)]
    return [(b - a) / 1000 for a, b in itertools.pairwise(stamps) if b > a]


def _sweep_fidelity(uri: str, parent: str | None, seen: dict[str, Fidelity | None]) -> Any:
    """The fidelity of the sweep invocation ``parent`` (its logged definition), or None."""
    key = parent or ""
    if key not in seen:
        definition = T.sweep_definition(uri, parent) if parent else None
        raw = dict((definition or {}).get("fidelity") or {})
        try:
            seen[key] = Fidelity(**raw) if raw else None
        except (TypeError, ConfigError):
            seen[key] = None
    return seen[key]


def source_rate(
    uri: str, experiment: str, cand: Candidate, full: FitPlan, fidelities: dict[str, Any]
) -> Rate:
    """``cand``'s cost at full fidelity (``full``), from its source trial's measured fit."""
    run = T.get_run(uri, cand.source_run_id)
    fit_s = float(run.metrics.get(N.METRIC_FIT_S) or 0.0)
    windows = float(run.metrics.get(N.METRIC_WINDOWS) or 0.0)
    epochs = max(1, int(run.metrics.get(N.METRIC_EPOCHS) or 1))
    if fit_s <= 0 or windows <= 0:
        raise ConfigError(f"trial {cand.source_trial} logged no compute (fit_s, windows_seen)")
    sweep = _sweep_fidelity(uri, run.tags.get(N.TAG_PARENT), fidelities)
    steps = sweep.validation_steps if sweep is not None else None
    unit = full.prepared.preset.batch_size
    val_sweep = len(evenly(full.val_starts, None if steps is None else steps * unit))
    units = windows / epochs + VAL_COST * val_sweep  # one sweep epoch, in training windows
    steady = _epoch_times(uri, experiment, cand.source_run_id)
    epoch_s = statistics.median(steady) if steady else fit_s / epochs
    overhead = max(0.0, fit_s - epochs * epoch_s)
    full_units = len(full.train_starts) + VAL_COST * len(full.val_starts)
    return Rate(epoch_s / units * full_units, overhead, f"trial {cand.source_trial}")


def member_rate(members: Sequence[Any]) -> Rate | None:
    """The cost measured by finished refit members of one configuration."""
    per_epoch = [m.fit_s / m.epochs for m in members if m.epochs and m.fit_s]
    return Rate(statistics.fmean(per_epoch), 0.0, "its refit members") if per_epoch else None


# --------------------------------------------------------------------------- the plan


def make_plan(
    uri: str, status: RefitResult, dataset: Dataset, *, packed: bool, accelerator: bool,
    curves: Mapping[tuple[str, int], Sequence[float]] | None = None,
) -> RefitPlan:  # fmt: skip
    """The plan of the refit ``status`` describes: its race (:func:`jena.refit._lanes.race`, the
    one the refit runs) on simulated lanes (:class:`Simulated`), whose seeds follow ``curves``
    (validation MAE per epoch by (configuration key, seed), as a refit records them) where
    given, else an assumed flat curve of ``expected`` epochs that ranks behind every known
    one (so that, knowing nothing, the race keeps the sweep's order). Members are listed in the
    order the race starts them; each costs its configuration's measured rate."""
    s = status.settings
    schedule = rungs(s.rung_epochs, s.epochs, len(status.configs))
    plan = RefitPlan(status.experiment, s, status, dataset, schedule, packed=packed)
    plan.reused = sum(len(c.members) for c in status.configs)
    finished = [m for c in status.configs for m in c.members]
    expected = min(float(s.epochs), s.patience + BEST_EPOCH)
    if any(m.epochs for m in finished):
        expected = statistics.fmean(m.epochs for m in finished if m.epochs)
    raced = status.race.raced_out if status.race is not None else {}
    caches: dict[str, DataCache] = {}
    fidelities: dict[str, Any] = {}
    rates: dict[str, Rate | None] = {}  # None: its window does not fit this record
    lanes = []
    for config in status.configs:
        cand = config.candidate
        done = {m.seed for m in config.members}
        missing = [seed for seed in range(s.seeds) if seed not in done]
        if missing and cand.key not in raced:
            cache = caches.setdefault(cand.preset, DataCache(dataset, cand.preset))
            try:
                full = FitPlan.of(cand.config, cache, s.fidelity())
            except ConfigError:  # it fails at once
                rates[cand.key] = None
            else:
                rates[cand.key] = member_rate(config.members) or source_rate(
                    uri, status.experiment, cand, full, fidelities)  # fmt: skip
        lanes.append((cand, config.known, missing))
    margin = PACK_MARGINAL["accelerator" if accelerator else "cpu"]
    sim = Simulated(dict(curves or {}), rates, expected, schedule, packed, margin)
    simulated = [Lane(c, known, missing, training=sim) for c, known, missing in lanes]
    outcome = race(simulated, schedule, sim.out_of_time)
    plan.members = sim.members
    for lane in simulated:  # raced out now: its members (even one that ended before) stop there
        if lane.raced_rung is not None:
            where = f"rung {schedule.index(lane.raced_rung) + 1} ({epochs_text(lane.raced_rung)})"
            for m in sim.members:
                if m.label == lane.label and m.finishes:
                    m.until = where
    started = {(m.label, m.seed) for m in sim.members}
    plan.after_race = sum(1 for c, _, missing in lanes
                          if c.key in outcome.raced_out and c.key not in raced
                          for seed in missing if (c.label, seed) not in started)  # fmt: skip
    return plan


ASSUMED = math.inf  # the validation MAE of a seed whose curve the plan does not know


@dataclass
class Simulated:
    """How the plan's lanes train (a :class:`jena.refit._lanes.Training`): each seed follows
    its curve (``curves``, else :data:`ASSUMED` for ``expected`` epochs) on a clock that each
    epoch advances by its configuration's rate (``rates``; None: it fails at once); a packed
    lane's further seeds cost ``margin`` of one. Never out of time: the plan marks the members
    that end past the budget instead."""

    curves: dict[tuple[str, int], Sequence[float]]
    rates: dict[str, Rate | None]
    expected: float
    schedule: list[int]
    packs: bool
    margin: float
    members: list[PlannedMember] = field(default_factory=list)  # in the order they start
    clock: float = 0.0

    def out_of_time(self) -> str | None:
        return None

    def one(self, lane: Lane, seed: int) -> None:
        self.pack(lane, [seed])

    def pack(self, lane: Lane, seeds: list[int]) -> None:
        """Train ``seeds`` of ``lane`` together, epoch by epoch, each reported to the lane (the
        race pauses it there, or stops it: TrialPruned), until each one's curve ends."""
        rate = self.rates.get(lane.key)
        if rate is None:
            for seed in seeds:
                self.members.append(PlannedMember(lane.label, seed, 0.0, "fails: no window", 0.0))
                lane.seeds[seed] = Seed(done=True, failed=True)
            return
        running = []
        for k, seed in enumerate(seeds):
            member = PlannedMember(lane.label, seed, 0.0, "to the end", 0.0)
            self.members.append(member)
            known = self.curves.get((lane.key, seed))
            curve = list(known) if known is not None else [ASSUMED] * math.ceil(self.expected)
            cap = float(len(curve)) if known is not None else self.expected
            running.append((member, lane.report(seed), curve, cap, 1.0 if k == 0 else self.margin))
        epoch = 0
        try:
            while running:
                epoch += 1
                for member, _, _, cap, share in running:  # a pack's seeds train each epoch
                    member.epochs = min(cap, float(epoch))
                    member.seconds = share * rate.seconds(member.epochs)
                    member.overhead_s = share * rate.overhead_s
                    self.clock += share * (rate.overhead_s if epoch == 1 else 0.0)
                    self.clock += share * rate.epoch_s * (member.epochs - min(cap, epoch - 1.0))
                now = self.clock
                for entry in list(running):
                    member, hook, curve, _, _ = entry
                    hook(epoch, curve[epoch - 1], epoch >= len(curve))  # the race may pause it
                    if epoch >= len(curve):  # its last epoch: it ends
                        running.remove(entry)
                        member.ends_s, lane.seeds[member.seed].done = now, True
        except TrialPruned:  # raced out at this rung: every running seed of the lane stops
            for member, *_ in running:
                member.ends_s, lane.seeds[member.seed].done = now, True
