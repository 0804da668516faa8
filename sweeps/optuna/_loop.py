"""The Optuna driver's loop, one trial at a time: ask (within the budget) → train → tell, until
the study holds ``trials`` trials, the time is up, a stop rule is met, or another worker stopped
the sweep.

Before each ask, stale trials of dead workers are failed (and queued again where the budget
has room) and dead invocations' parent runs ended (:class:`sweeps.optuna._faults.Reaper`); a
running trial beats. An infrastructure failure fails the trial as lost (not counted, queued
again) and stops the sweep, and so does a stop signal (:mod:`jena.signals`);
``[faults].max_consecutive_failed_trials`` failures of one kind in a row stop it too
(:class:`sweeps.faults.TooManyFailures`)."""

from __future__ import annotations

import time
from typing import Any

import optuna

from jena import signals
from jena.tracking import names as N

from ..drivers import StopSignal
from ..faults import FailureStreak, TooManyFailures
from ..stop import stop_rule
from ..trial import SweepContext, record_failure, run_trial
from . import _compat as U
from . import _faults as F
from ._study import SweepStudy


class TrialLoop:
    def __init__(
        self, ctx: SweepContext, study: SweepStudy, deadline: float | None,
        stop: StopSignal | None,
    ) -> None:  # fmt: skip
        self.ctx, self.study, self.deadline, self.stop = ctx, study, deadline, stop
        self.streak = FailureStreak(ctx.cfg.faults.max_consecutive_failed_trials, "Optuna")
        self.reaper = F.Reaper(ctx.cfg, ctx.tracker)

    def over(self) -> bool:
        """Out of time, or another worker stopped the sweep."""
        late = self.deadline is not None and time.monotonic() >= self.deadline
        return late or (self.stop is not None and self.stop.is_set())

    def run(self) -> None:
        if reason := stop_rule(self.ctx.cfg, self.study.completed()):  # met by an earlier run
            self.ctx.events.stopped(reason)
            return
        with self.reaper.running(self.study.study):
            while not self.over():
                trial = self.ask()
                if trial is None or not self.one(trial):
                    return

    def ask(self) -> optuna.Trial | None:
        """Reap what dead workers left, then a new trial within the budget (None: spent)."""
        try:
            self.reaper.maybe(self.study.study)
            return self.study.ask()
        except Exception as exc:
            lost = F.as_lost(exc, self.study.url)
            if lost is None:
                raise
            raise lost from exc

    def one(self, trial: optuna.Trial) -> bool:
        """Run ``trial``; False when the sweep is over (a stop rule, the sampler)."""
        study, ctx = self.study, self.ctx
        try:
            with signals.deferred():  # a stop signal: between two batches, or once it is told
                values = self.suggest(trial)
                if values is None:
                    return self.told_failure(trial, str(trial.user_attrs.get(F.FAIL_REASON)))
                label = trial.user_attrs.get(N.TAG_WARM_START)
                tags = {N.TAG_WARM_START: label} if label else None
                with F.heartbeat(U.storage_of(study.study), U.trial_id(trial)):
                    result = run_trial(ctx, trial.number, values, report=study.pruning(trial),
                                       tags=tags)  # fmt: skip
                go_on = study.tell(trial, result)
        except KeyboardInterrupt as exc:  # a stop signal: lost (if not told), re-run first
            F.mark_lost(study.study, trial, signals.describe(exc))
            raise
        except TooManyFailures:  # the trial is told already
            raise
        except Exception as exc:
            lost = F.as_lost(exc, study.url)
            if lost is None:  # the trial's own failure outside its run: fail it, go on
                return self.told_failure(trial, f"{type(exc).__name__}: {exc}")
            F.mark_lost(study.study, trial, str(lost))  # the disk, the tracking store, the storage
            raise lost from (None if lost is exc else exc)
        if not go_on:
            return False
        self.streak.add(result.state, result.reason)
        if rule := stop_rule(ctx.cfg, study.completed()):
            ctx.events.stopped(rule)
            return False
        return True

    def suggest(self, trial: optuna.Trial) -> dict[str, Any] | None:
        """The trial's values; None when the sampler itself raised (recorded as a failed trial
        with the reason)."""
        try:
            return self.study.suggest(trial, self.ctx.base)
        except Exception as exc:
            if F.as_lost(exc, self.study.url) is not None:
                raise
            reason = F.redact(f"{type(exc).__name__}: {exc}")
            trial.set_user_attr(F.FAIL_REASON, reason)
            record_failure(self.ctx, trial.number, dict(trial.params), reason)
            return None

    def told_failure(self, trial: optuna.Trial, reason: str) -> bool:
        if not self.study.fail(trial, reason):
            return False
        self.streak.add("failed", reason)
        return True
