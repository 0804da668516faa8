"""The Optuna driver's one ask/tell loop (:class:`AskTellLoop`): ask (within the budget) → train
→ tell, until the study holds ``trials`` trials, the time is up, a stop rule is met, the sampler
has no more, or another worker stopped the sweep. Who trains is a :class:`Trainer`: one trial at
a time (:class:`TrainOne`) or packs of trials of one shape (:class:`sweeps.optuna._packed.
TrainPack`, ``[packing] size`` > 1) — as Keras Tuner's oracle proposes and its tuner trains.
The loop holds what every trial needs, whoever trains it:

* the budget and the sampler (:meth:`AskTellLoop.ask`; a sampler that raises: a failed trial);
* telling (:meth:`AskTellLoop.tell`): the sampler's end, the ``[stop]`` rules, and
  ``[faults].max_consecutive_failed_trials`` failures of one kind in a row, which stop the sweep
  (:class:`sweeps.faults.TooManyFailures`);
* the workers' stop signal (another worker hit a fault: no new trial starts) and the deadline;
* heartbeats for every trial asked for and not yet told (:class:`sweeps.optuna._faults.Beats`),
  and the reaper: stale trials of dead workers failed (and queued again where the budget has
  room) and dead invocations' parent runs ended (:class:`sweeps.optuna._faults.Reaper`);
* how trials end when their training raises (:meth:`AskTellLoop.training`): a stop signal
  (:mod:`jena.signals`), a fault of the infrastructure or a sweep stopped by its failure streak
  leaves those not told yet lost (not counted, queued again, run first) and goes on up; any
  other error is their own failure: failed, and the sweep goes on."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import optuna

from jena import signals
from jena.tracking import names as N
from jena.train import TrialResult

from ..drivers import StopSignal
from ..faults import FailureStreak, TooManyFailures
from ..stop import stop_rule
from ..trial import SweepContext, record_failure, run_trial
from . import _compat as U
from . import _faults as F
from ._study import SweepStudy


@dataclass
class Proposal:
    """A trial asked for and the values the sampler gave it."""

    trial: optuna.Trial
    values: dict[str, Any]
    key: Any = None  # the packed trainer's: the shape of its configuration (None: not packable)
    told: bool = False  # its end is in the study (told, failed, lost)

    @property
    def number(self) -> int:
        return self.trial.number

    @property
    def tags(self) -> dict[str, str]:
        label = self.trial.user_attrs.get(N.TAG_WARM_START)
        return {N.TAG_WARM_START: label} if label else {}


class Trainer(Protocol):
    def step(self, loop: AskTellLoop) -> bool:
        """Train what comes next — proposals asked of ``loop`` (:meth:`AskTellLoop.ask`),
        trained within :meth:`AskTellLoop.training` and told as each ends; False when there is
        nothing more to train."""
        ...

    def drop(self, loop: AskTellLoop, exc: BaseException | None) -> None:
        """End the proposals asked for and never started (:meth:`AskTellLoop.unstarted`)."""
        ...


class AskTellLoop:
    def __init__(
        self, ctx: SweepContext, study: SweepStudy, deadline: float | None,
        stop: StopSignal | None, trainer: Trainer,
    ) -> None:  # fmt: skip
        self.ctx, self.study, self.deadline, self.stop = ctx, study, deadline, stop
        self.trainer = trainer
        self.streak = FailureStreak(ctx.cfg.faults.max_consecutive_failed_trials, "Optuna")
        self.reaper = F.Reaper(ctx.cfg, ctx.tracker)
        self.beats = F.Beats(U.storage_of(study.study))
        self.over = False  # the sampler has no more, or a stop rule ended the sweep
        self.spent = False  # the trial budget is spoken for

    def stopped(self) -> bool:
        """Another worker stopped the sweep (a fault)."""
        return self.stop is not None and self.stop.is_set()

    def go_on(self) -> bool:
        """A new trial may start: not over, not out of time, not stopped by another worker."""
        late = self.deadline is not None and time.monotonic() >= self.deadline
        return not (self.over or late or self.stopped())

    def run(self) -> None:
        if rule := stop_rule(self.ctx.cfg, self.study.completed()):  # met by an earlier run
            self.ctx.events.stopped(rule)
            return
        with self.reaper.running(self.study.study), self.beats.running():
            try:
                while self.go_on() and self.trainer.step(self):
                    pass
            except BaseException as exc:
                self.trainer.drop(self, exc)
                raise
            self.trainer.drop(self, None)

    # ---------------------------------------------------------------- ask
    def ask(self) -> Proposal | None:
        """The next proposal: reap what dead workers left, ask for a trial within the budget
        and the sampler's values for it (a sampler that raises: a failed trial with the reason,
        and the next one); None when no new trial may start or the budget is spoken for."""
        while not self.spent and self.go_on():
            trial = self._ask()
            if trial is None:
                self.spent = True
                return None
            self.beats.add(trial)
            p = Proposal(trial, {})
            try:
                with signals.deferred():
                    p.values = self.study.suggest(trial, self.ctx.base)
                return p
            except KeyboardInterrupt as exc:  # a stop signal: lost, re-run first
                self.lost(p, signals.describe(exc))
                raise
            except Exception as exc:
                lost = F.as_lost(exc, self.study.url)
                if lost is not None:
                    self.lost(p, str(lost))
                    raise lost from (None if lost is exc else exc)
                reason = F.redact(f"{type(exc).__name__}: {exc}")
                record_failure(self.ctx, trial.number, dict(trial.params), reason)
                self.fail([p], reason)
        return None

    def _ask(self) -> optuna.Trial | None:
        try:
            self.reaper.maybe(self.study.study)
            return self.study.ask()
        except Exception as exc:
            lost = F.as_lost(exc, self.study.url)
            if lost is None:
                raise
            raise lost from exc

    # ---------------------------------------------------------------- tell
    def tell(self, p: Proposal, result: TrialResult) -> None:
        """Tell ``p``'s result: the sampler may end the search, a failure adds to the streak
        (which raises TooManyFailures at its limit), a ``[stop]`` rule may end the sweep."""
        self._ended(p)
        if not self.study.tell(p.trial, result):
            self.over = True
            return
        self.streak.add(result.state, result.reason)
        self._rules()

    def fail(self, proposals: list[Proposal], reason: str) -> None:
        """``proposals`` failed with ``reason`` (all told before the streak is asked)."""
        go_on = True
        for p in proposals:
            self._ended(p)
            go_on = self.study.fail(p.trial, reason) and go_on
        if not go_on:
            self.over = True
            return
        for _ in proposals:
            self.streak.add("failed", reason)
        self._rules()

    def lost(self, p: Proposal, why: str) -> None:
        """``p`` was interrupted (``why``): failed as lost, not counted, queued again."""
        self._ended(p)
        F.mark_lost(self.study.study, p.trial, why)

    def unstarted(self, p: Proposal, exc: BaseException | None) -> None:
        """``p`` was asked for and never trained. The sweep ended on its own terms (``exc``
        None: the time, a stop rule, the search over): a failed trial that counts, so none is
        left RUNNING. Stopped (another worker's fault, a stop signal, the infrastructure, the
        failure streak): lost, queued again. Anything else: failed with its name."""
        why = "another worker stopped the sweep" if exc is None and self.stopped() else None
        if exc is not None:
            why = self.lost_reason(exc)
        if why is not None:
            self.lost(p, f"not started: {why}")
            return
        reason = ("not started: the sweep ended before its pack" if exc is None
                  else f"not started: {type(exc).__name__}")  # fmt: skip
        self._ended(p)
        record_failure(self.ctx, p.number, p.values, reason)
        self.study.fail(p.trial, reason)

    def _ended(self, p: Proposal) -> None:
        p.told = True
        self.beats.remove(p.trial)

    def _rules(self) -> None:
        if not self.over and (rule := stop_rule(self.ctx.cfg, self.study.completed())):
            self.ctx.events.stopped(rule)
            self.over = True

    # ---------------------------------------------------------------- training
    def lost_reason(self, exc: BaseException) -> str | None:
        """Why ``exc`` leaves the trials it interrupted lost — a stop signal, the
        infrastructure, the sweep stopped by its failure streak — or None: their own failure."""
        if isinstance(exc, KeyboardInterrupt):
            return signals.describe(exc)
        if isinstance(exc, TooManyFailures):
            return "the sweep stopped: too many failed trials in a row"
        lost = F.as_lost(exc, self.study.url) if isinstance(exc, Exception) else None
        return None if lost is None else str(lost)

    @contextlib.contextmanager
    def training(self, flying: list[Proposal]) -> Iterator[None]:
        """Around training ``flying`` (a list the trainer may add to), a stop signal held to a
        safe point (between two batches, or once they are told). When the block raises, those
        of ``flying`` not told yet end as :meth:`lost_reason` says: lost, and the error goes on
        (a fault of the infrastructure as an InfrastructureError); or failed with the error,
        and the sweep goes on. The trainer has closed their runs."""
        try:
            with signals.deferred():
                yield
        except BaseException as exc:
            untold = [p for p in flying if not p.told]
            why = self.lost_reason(exc)
            if why is None and isinstance(exc, Exception):
                self.fail(untold, F.redact(f"{type(exc).__name__}: {exc}"))
                return
            for p in untold:
                self.lost(p, why or signals.describe(exc))
            lost = F.as_lost(exc, self.study.url) if isinstance(exc, Exception) else None
            if lost is not None and lost is not exc:
                raise lost from exc
            raise


class TrainOne:
    """Trains one trial at a time (:func:`~sweeps.trial.run_trial`)."""

    def step(self, loop: AskTellLoop) -> bool:
        p = loop.ask()
        if p is None:
            return False
        train_one(loop, p)
        return True

    def drop(self, loop: AskTellLoop, exc: BaseException | None) -> None:
        pass  # nothing waits


def train_one(loop: AskTellLoop, p: Proposal) -> None:
    """Train ``p`` alone and tell it (also the packed trainer's way for what cannot be packed)."""
    with loop.training([p]):
        result = run_trial(loop.ctx, p.number, p.values, report=loop.study.pruning(p.trial),
                           tags=p.tags)  # fmt: skip
        loop.tell(p, result)
