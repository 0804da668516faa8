"""Packed trials in an Optuna sweep (``[packing] size = K``): ask the sampler for K proposals,
group them by shape (:func:`jena.packed.shape_key`) and train each group in one compiled JAX
program (:func:`jena.packed.train_packed`).

A packed member is a trial like any other — :func:`sweeps.trial.start_trial` opens its run and
its :class:`~jena.recording.Recorder`, whose hooks the packed trainer calls instead of Keras's
``fit``; only who runs its steps differs. Its run carries the tag ``packed`` (slots of its pack)
and its Optuna trial is told as it ends (the pruner sees its epochs). A member that ends frees
its slot for the next proposal of the same shape; proposals of other shapes wait (RUNNING in the
study, so TPE's constant liar sees them) for their own pack. Points that cannot be packed
(convolutional architectures) and invalid points run one by one through
:func:`~sweeps.trial.run_trial`. When the time budget or a stop rule ends the sweep, proposals
that were asked for but never started (at most K - 1) end as failed trials ("not started"), so
none is left RUNNING; they count towards ``trials`` like any finished trial. A stop signal or a
fault of the infrastructure leaves the members it interrupted, and those proposals, lost: not
counted, re-run first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import optuna

from jena import signals
from jena.errors import TrialError
from jena.packed import PackedTrial, shape_key, train_packed
from jena.tracking import names as N
from jena.train import TrialResult

from ..stop import stop_rule
from ..trial import SweepContext, TrialRecording, record_failure, run_trial, start_trial
from . import _faults as F
from ._study import SweepStudy


@dataclass
class _Proposal:
    trial: optuna.Trial
    values: dict[str, Any]
    key: Any  # shape_key of its configuration; None: not packable (or not a valid point)

    @property
    def tags(self) -> dict[str, str]:
        label = self.trial.user_attrs.get(N.TAG_WARM_START)
        return {N.TAG_WARM_START: label} if label else {}


class PackedLoop:
    def __init__(self, ctx: SweepContext, study: SweepStudy, deadline: float | None) -> None:
        self.ctx, self.study, self.deadline = ctx, study, deadline
        self.size = ctx.cfg.packing.size
        self.pending: list[_Proposal] = []
        self.exhausted = False  # the budget is spoken for
        self.over = False  # a stop rule ended the sweep, or the search is over

    # ---------------------------------------------------------------- the study
    def ask(self) -> _Proposal | None:
        """One more proposal, or None when the trial budget is spoken for."""
        while not (self.exhausted or self.over):
            trial = self.study.ask()
            if trial is None:
                self.exhausted = True
                return None
            try:
                values = self.study.suggest(trial, self.ctx.base)
            except Exception as exc:  # the sampler itself raised: a failed trial, go on
                reason = f"{type(exc).__name__}: {exc}"
                record_failure(self.ctx, trial.number, dict(trial.params), reason)
                self.told(self.study.fail(trial, reason))
                continue
            try:
                key = shape_key(self.ctx.resolve(values).config)
            except TrialError:
                key = None  # run_trial records why
            return _Proposal(trial, values, key)
        return None

    def told(self, go_on: bool) -> None:
        """After a tell: the search is over when the sampler says so or a stop rule does."""
        if not go_on:
            self.over = True
        if not self.over and (reason := stop_rule(self.ctx.cfg, self.study.completed())):
            self.ctx.events.stopped(reason)
            self.over = True

    def take(self, key: Any) -> _Proposal | None:
        """The oldest waiting proposal of shape ``key`` (asking for more while fewer than K
        wait), or None."""
        while not self.over:
            for i, p in enumerate(self.pending):
                if p.key == key:
                    return self.pending.pop(i)
            if len(self.pending) >= self.size or (asked := self.ask()) is None:
                return None
            self.pending.append(asked)
        return None

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    # ---------------------------------------------------------------- the loop
    def run(self) -> None:
        if reason := stop_rule(self.ctx.cfg, self.study.completed()):
            self.ctx.events.stopped(reason)
            return
        try:
            while not self.over and not self.out_of_time():
                while len(self.pending) < self.size and (p := self.ask()) is not None:
                    self.pending.append(p)
                if not self.pending:
                    return
                first = self.pending.pop(0)
                if first.key is None:  # not packable: one by one, as without packing
                    self.run_alone(first)
                    continue
                group = [first]
                while len(group) < self.size and (p := self.take(first.key)) is not None:
                    group.append(p)
                self.run_pack(group)
        except BaseException as exc:
            lost = _lost(exc, self.study.url)
            self.discard_pending(lost or f"not started: {type(exc).__name__}", lost=bool(lost))
            raise
        self.discard_pending("not started: the sweep ended before its pack")

    def discard_pending(self, reason: str, *, lost: bool = False) -> None:
        """Proposals asked for but never trained (the time budget ran out, a stop rule ended
        the sweep): failed trials with the reason, so none is left RUNNING; ``lost`` (a stop
        signal, the infrastructure): not counted, queued again."""
        pending, self.pending = self.pending, []
        for p in pending:
            if lost:
                F.mark_lost(self.study.study, p.trial, reason)
                continue
            record_failure(self.ctx, p.trial.number, p.values, reason)
            self.study.fail(p.trial, reason)

    def run_alone(self, p: _Proposal) -> None:
        with signals.deferred():  # a stop signal: between two batches, or once it is told
            result = run_trial(self.ctx, p.trial.number, p.values,
                               report=self.study.pruning(p.trial), tags=p.tags)  # fmt: skip
            self.told(self.study.tell(p.trial, result))

    def member(self, p: _Proposal) -> tuple[TrialRecording, PackedTrial]:
        """``p`` started as a trial (its run, its recorder) and as a member of a pack."""
        started = start_trial(self.ctx, p.trial.number, p.values,
                              report=self.study.pruning(p.trial),
                              tags={**p.tags, N.TAG_PACKED: str(self.size)},
                              note="  [packed]")  # fmt: skip
        assert not isinstance(started, TrialResult)  # packable proposals are valid points

        def done(result: TrialResult) -> None:
            self.told(self.study.tell(p.trial, started.end(result)))

        rec = started.recorder
        member = PackedTrial(started.point.config, on_epoch=rec.on_epoch, on_batch=rec.on_batch,
                             on_done=done, max_epochs=started.point.fidelity.max_epochs,
                             tag=p.trial.number)  # fmt: skip
        return started, member

    def run_pack(self, group: list[_Proposal]) -> None:
        members: list[tuple[_Proposal, TrialRecording]] = []

        def add(p: _Proposal) -> PackedTrial:
            started, packed = self.member(p)
            members.append((p, started))
            return packed

        def refill() -> PackedTrial | None:
            p = None if self.out_of_time() else self.take(group[0].key)
            return None if p is None else add(p)

        try:
            first = [add(p) for p in group]
            point = members[0][1].point
            cache = self.ctx.cache(point.data_preset)
            with signals.deferred():  # a stop signal: between two steps (should_stop)
                train_packed(first, cache, point.fidelity, slots=self.size, refill=refill,
                             should_stop=self.ctx.should_stop)  # fmt: skip
        except BaseException as exc:
            lost = F.as_lost(exc, self.study.url) if isinstance(exc, Exception) else None
            cause = lost or exc
            why = _lost(exc, self.study.url)
            for p, started in members:
                run = started.recorder.run
                if run.finished:
                    continue
                run.__exit__(type(cause), cause, exc.__traceback__)  # close what the pack left
                if why is not None:  # the disk, the store, a stop signal: re-run first
                    F.mark_lost(self.study.study, p.trial, why)
                else:
                    self.study.fail(p.trial, f"{type(exc).__name__}: {exc}")
            if lost is not None:
                raise lost from (None if lost is exc else exc)
            if not isinstance(exc, Exception):
                raise
            # a pack that raised (not a trial's fault): its open members failed; go on


def _lost(exc: BaseException, url: str) -> str | None:
    """Why ``exc`` leaves the trials it interrupted lost (a stop signal, the infrastructure),
    or None (their own failure)."""
    if isinstance(exc, KeyboardInterrupt):
        return signals.describe(exc)
    lost = F.as_lost(exc, url) if isinstance(exc, Exception) else None
    return None if lost is None else str(lost)
