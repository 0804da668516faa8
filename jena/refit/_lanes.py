"""Lanes: one configuration of the refit, its seeds trained in a thread that the race pauses.

A lane's trainings run in a thread of their own, one lane at a time: the race
(:mod:`jena.refit._race`) advances a lane to a rung, where it pauses inside its epoch hook (its
Keras ``fit`` or packed program waiting, its model in memory), and lets it train on or stops it
there. Python's and NumPy's global random states are set aside while it waits, so a lane trains
exactly as it would alone. Each seed is one MLflow run, opened and ended as a sweep's trial is
(:meth:`jena.recording.RunContext.open`, :meth:`jena.recording.Recorder.end`: its tags, params
and dataset inputs, the model, a tracking failure at its end).

Under JAX (``KERAS_BACKEND=jax``) a packable configuration's seeds share their shapes: the lane
trains them as one packed program (:func:`jena.packed.train_packed`), each seed still its own
run with its own curves and early stopping (its further seeds ride along in the race: on an
accelerator they cost little); elsewhere the seeds train one by one, and while the race is on
only the first one trains. A lane also replays what earlier refits recorded (the curves of
finished and raced-out seeds); the race ranks a configuration by its first seed either way, so
a resumed race takes the same decisions, whatever the backend, without training again.

Stops: a raced-out lane's running seeds end pruned (tag ``refit_raced_out``: the rung); at the
budget's deadline a running seed stops at its next batch (pruned, its best epoch kept) and no
seed starts; when the command is interrupted every lane's running seed ends KILLED.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..recording import Recorder, RunContext, run_tags
from ..tracking import names as N
from ..train import Fidelity, TrialPruned, TrialResult
from ._race import Outcome, run_race

if TYPE_CHECKING:
    from ..config import TrialConfig
    from ..data import Dataset
    from . import Candidate, RefitResult

RACE_SEED = 0  # the seed the race ranks a configuration by


@dataclass(frozen=True)
class Member:
    """A finished seed of a configuration."""

    seed: int
    run_id: str
    val_mae: float
    baseline_val_mae: float | None
    fit_s: float
    windows: float
    epochs: int = 0


@dataclass
class Seed:
    """What a lane knows of one seed: its validation MAE per epoch so far."""

    curve: list[float] = field(default_factory=list)
    done: bool = False  # it will train no further
    failed: bool = False

    def best(self, epoch: int) -> float | None:
        """The best validation MAE up to ``epoch``; None while it has not got there."""
        if self.failed:
            return math.inf
        if len(self.curve) < epoch and not self.done:
            return None
        values = [v for v in self.curve[:epoch] if math.isfinite(v)]
        return min(values) if values else math.inf


@dataclass
class LaneContext(RunContext):
    """What every lane of one refit invocation shares; its members' runs are children of the
    refit's run (``parent_run_id``)."""

    experiment: str
    dataset: Dataset
    fidelity: Fidelity
    trainer: Callable[..., TrialResult]
    pack: bool  # JAX: the seeds of a packable configuration train as one program
    budget_minutes: float | None = None
    numbers: Any = field(default_factory=itertools.count)

    def budget_text(self) -> str:
        return f"the refit's time budget ({self.budget_minutes:g} min)"

    def record(self) -> Dataset:
        return self.dataset


class Lane:
    """One configuration (``candidate``) and its seeds: ``known`` from earlier refits (curves),
    ``missing`` to train (with ``ctx``; without one it only replays)."""

    def __init__(
        self,
        candidate: Candidate,
        known: dict[int, Seed],
        missing: list[int],
        ctx: LaneContext | None = None,
        *,
        training: Training | None = None,
    ) -> None:
        self.candidate, self.ctx = candidate, ctx
        # how its seeds train (None: it only replays): recorded runs, or the plan's simulation
        self.training = training if training is not None or ctx is None else Recorded(ctx)
        self.key, self.label = candidate.key, candidate.label
        self.seeds = dict(known)
        self.missing = missing
        self.finished: list[Member] = []  # seeds completed now
        self.outcomes: dict[int, str] = {}  # seed -> what became of it now
        self.spent_s = 0.0  # fit seconds of its members trained now
        self.paused_s = 0.0  # seconds its thread has waited for the race, in all
        self._paused_at: dict[int, float] = {}  # seed -> paused_s when its run opened
        self.target: int | None = None  # the rung it trains to
        self.decided = False  # the race is over for it: train on to the end
        self.stop_reason: str | None = None
        self.raced_rung: int | None = None
        self._abort: str | None = None
        self._cond = threading.Condition()
        self._turn = "main"
        self._thread: threading.Thread | None = None
        self.ended = False
        self.error: BaseException | None = None

    # ---------------------------------------------------------------- the race's side
    def value(self, epoch: int) -> float | None:
        """Its first seed's best validation MAE up to ``epoch`` (what the race ranks, trained
        alone or packed, live or replayed), None while unknown."""
        first = self.seeds.get(RACE_SEED)
        return None if first is None else first.best(epoch)

    def advance(self, epoch: int) -> None:
        self.target = epoch
        if self.value(epoch) is None:
            self._resume()

    def race_out(self, rung: int, reason: str) -> None:
        self.stop_reason, self.raced_rung = reason, rung
        self._resume(start=False)

    def finish(self) -> None:
        """Train what is missing to the end (the race is over for it)."""
        self.decided, self.target = True, None
        self._resume()

    def abort(self, why: str) -> None:
        """The command was interrupted: its running seed ends KILLED, nothing more starts."""
        self._abort = why
        with contextlib.suppress(BaseException):  # what it raises is the abort itself
            self._resume(start=False)

    def _resume(self, start: bool = True) -> None:
        """Let the thread run (start it, with ``start``) until it pauses or ends."""
        if self.training is None or self.ended or (self._thread is None and not start):
            return
        with self._cond:
            self._turn = "lane"
            if self._thread is None:
                name = f"jena-refit-{self.label}"
                self._thread = threading.Thread(target=self._main, name=name, daemon=True)
                self._thread.start()
            self._cond.notify_all()
            while self._turn == "lane":
                self._cond.wait(0.25)  # a stop signal raises here
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    # ---------------------------------------------------------------- the thread's side
    def _main(self) -> None:
        try:
            assert self.training is not None
            packs = self.training.packs and _packable(self.candidate)
            job = _packed_job if packs else _one_by_one
            job(self)
        except BaseException as exc:
            self.error = exc
        finally:
            with self._cond:
                self.ended, self._turn = True, "main"
                self._cond.notify_all()

    def pause(self) -> None:
        """Hand the turn back to the race and wait for it (global random states kept)."""
        states = random.getstate(), np.random.get_state()
        waited = time.perf_counter()
        with self._cond:
            self._turn = "main"
            self._cond.notify_all()
            while self._turn != "lane":
                self._cond.wait()
        self.paused_s += time.perf_counter() - waited
        random.setstate(states[0])
        np.random.set_state(states[1])
        if self._abort is not None:
            raise KeyboardInterrupt(self._abort)

    def waits(self) -> bool:
        """Whether it must wait for the race before it trains more: not decided, not stopped,
        and what the race asks of it is known."""
        return not self.decided and self.stop_reason is None and (
            self.target is not None and self.value(self.target) is not None)  # fmt: skip

    def should_stop(self) -> str | None:
        """Asked every batch: interrupted (raise), raced out, or out of time."""
        if self._abort is not None:
            raise KeyboardInterrupt(self._abort)
        if self.stop_reason is not None:
            return self.stop_reason
        return self.training.out_of_time() if self.training is not None else None

    def report(self, seed: int) -> Callable[[int, float, bool], None]:
        """Seed ``seed``'s hook at each epoch's end: its curve, and a pause at the rung."""
        record = self.seeds[seed] = Seed()  # trained (again) from its first epoch

        def hook(epoch: int, val_mae: float, final: bool) -> None:
            del record.curve[epoch - 1 :]
            record.curve.append(val_mae)
            if self.waits():
                self.pause()
                if self.stop_reason is not None:
                    raise TrialPruned(self.stop_reason)

        return hook

    # ---------------------------------------------------------------- members
    def open(self, seed: int, stack: contextlib.ExitStack, packed: int = 0) -> Recorder:
        """Seed ``seed``'s run, open on ``stack``, and its recorder."""
        ctx = self.ctx
        assert ctx is not None
        cand = self.candidate
        config = cand.config.replace(seed=seed)
        tags = member_tags(ctx, cand, config) | ({N.TAG_PACKED: packed} if packed else {})
        summary = f"{cand.label} seed {seed}  (sweep val MAE {cand.val_mae:.4f})"
        self._paused_at[seed] = self.paused_s
        recorder = ctx.open(next(ctx.numbers), config, ctx.fidelity, preset=cand.preset,
                            name=f"refit-{cand.label}-s{seed}", tags=tags,
                            summary=summary + ("  [packed]" if packed else ""),
                            run_type=N.RUN_REFIT_MEMBER, report=self.report(seed))  # fmt: skip
        stack.enter_context(recorder.run)
        return recorder

    def end(self, seed: int, recorder: Recorder, result: TrialResult) -> None:
        """Record seed ``seed``'s ``result`` (its run ends: :meth:`Recorder.end`) and what
        became of it."""
        raced = result.state == "pruned" and self.raced_rung is not None
        if raced:
            recorder.run.set_tags({N.TAG_RACED_OUT: self.raced_rung})
        # its clocks leave out the time it waited for the race (other lanes trained meanwhile)
        idle = self.paused_s - self._paused_at.pop(seed, self.paused_s)
        result.duration_s = max(0.0, result.duration_s - idle)
        recorder.started += idle
        self.spent_s += result.duration_s
        result = recorder.end(result)  # a tracking failure now: a failed seed
        record = self.seeds.setdefault(seed, Seed())
        record.done, record.failed = True, result.state == "failed"
        if result.state == "completed" and result.val_mae is not None:
            self.finished.append(Member(seed, recorder.run.run_id, result.val_mae,
                                        result.baseline_val_mae, result.duration_s,
                                        float(result.windows_seen),
                                        len(result.history)))  # fmt: skip
            self.outcomes[seed] = "completed"
        elif raced or result.state == "failed":
            self.outcomes[seed] = "failed" if result.state == "failed" else "raced out"
        else:
            self.outcomes[seed] = "stopped by the budget"


def race_lanes(status: RefitResult, ctx: LaneContext, schedule: list[int]) -> None:
    """Race the configurations of ``status``, train the survivors to the end, and add what
    was trained to ``status``. Interrupted, every lane's running member ends KILLED before the
    interruption goes on."""
    lanes = []
    for c in status.configs:
        done = {m.seed for m in c.members}
        missing = [s for s in range(status.settings.seeds) if s not in done]
        lanes.append(Lane(c.candidate, c.known, missing, ctx))
    status.race = outcome = race(lanes, schedule, ctx.out_of_time)
    for c, lane in zip(status.configs, lanes, strict=True):
        c.members = sorted([*c.members, *lane.finished], key=lambda m: m.seed)
        c.outcomes = dict(sorted(lane.outcomes.items()))
        c.raced_out = outcome.raced_out.get(c.candidate.key)
        status.trained += len(lane.finished)
        status.fit_s += lane.spent_s


def race(lanes: list[Lane], schedule: list[int], out_of_time: Callable[[], str | None]) -> Outcome:
    """Race ``lanes`` (sweep order) over ``schedule``, then train the survivors to the end: the
    refit's lanes, or its plan's simulated ones. Interrupted, every lane's running member ends
    KILLED before the interruption goes on."""
    try:
        outcome = run_race(lanes, schedule, lambda: out_of_time() is not None)
        for lane in lanes:
            if lane.key not in outcome.raced_out:
                lane.finish()  # survivors to the end (out of time: they stop at once)
    except BaseException as exc:
        for lane in lanes:
            lane.abort(str(exc) or type(exc).__name__)
        raise
    return outcome


def member_tags(ctx: LaneContext, cand: Candidate, config: TrialConfig) -> dict[str, Any]:
    """A seed's run: the tags every run gets (:func:`jena.recording.run_tags`), its source
    trial, its configuration's key and its seed, and the refit's settings."""
    return run_tags(ctx.experiment, ctx.dataset, cand.preset, config=config) | {
        N.TAG_SOURCE_RUN: cand.source_run_id,
        N.TAG_SOURCE_TRIAL: cand.source_trial,
        N.TAG_REFIT_KEY: cand.key,
        N.TAG_REFIT_SEED: config.seed,
        N.TAG_REFIT_EPOCHS: ctx.fidelity.max_epochs,
        N.TAG_REFIT_PATIENCE: ctx.fidelity.patience,
        N.TAG_LABEL: cand.label,
    }


def _packable(cand: Candidate) -> bool:
    from ..packed import packable

    return packable(cand.config)


def _one_by_one(lane: Lane) -> None:
    """Its missing seeds one by one; while the race is on, only until one has started."""
    assert lane.training is not None
    for seed in lane.missing:
        while lane.waits():
            lane.pause()
        if lane.should_stop() is not None:  # raced out, out of time (interrupted: raises)
            return
        lane.training.one(lane, seed)


def _packed_job(lane: Lane) -> None:
    """Its missing seeds as one packed program (JAX)."""
    assert lane.training is not None
    if not lane.missing or lane.stop_reason is not None or lane.training.out_of_time():
        return
    lane.training.pack(lane, lane.missing)


class Training(Protocol):
    """How a lane's seeds train once the lane lets them (:func:`_one_by_one`,
    :func:`_packed_job`): each reports every epoch to ``lane.report(seed)`` (the race pauses it
    there, or stops it: TrialPruned) and, once it ends, is ``done`` in ``lane.seeds``.
    :class:`Recorded` trains them, each an MLflow run; the plan simulates them
    (:class:`jena.refit._plan.Simulated`): one lane type, one race."""

    packs: bool  # a packable configuration's seeds train as one program (JAX)

    def out_of_time(self) -> str | None: ...

    def one(self, lane: Lane, seed: int) -> None:
        """Train seed ``seed`` of ``lane`` alone."""

    def pack(self, lane: Lane, seeds: list[int]) -> None:
        """Train ``seeds`` of ``lane`` as one packed program."""


class Recorded:
    """A refit's training: each seed a run (:meth:`Lane.open`, :meth:`Lane.end`) in ``ctx``."""

    def __init__(self, ctx: LaneContext) -> None:
        self.ctx, self.packs = ctx, ctx.pack

    def out_of_time(self) -> str | None:
        return self.ctx.out_of_time()

    def one(self, lane: Lane, seed: int) -> None:
        ctx = self.ctx
        with contextlib.ExitStack() as stack:
            recorder = lane.open(seed, stack)
            cache = ctx.cache(lane.candidate.preset)
            result = recorder.train(cache, trainer=ctx.trainer, should_stop=lane.should_stop)
            lane.end(seed, recorder, result)

    def pack(self, lane: Lane, seeds: list[int]) -> None:
        from ..packed import train_packed

        ctx = self.ctx
        with contextlib.ExitStack() as stack:
            members = []
            for seed in seeds:
                rec = lane.open(seed, stack, packed=len(seeds))

                def done(result: TrialResult, seed: int = seed, rec: Recorder = rec) -> None:
                    lane.end(seed, rec, result)

                members.append(rec.member(done, tag=seed))
            train_packed(members, ctx.cache(lane.candidate.preset), ctx.fidelity,
                         should_stop=lane.should_stop)  # fmt: skip
