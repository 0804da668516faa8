"""The packed trainer of an Optuna sweep (``[packing] size = K``): under the one ask/tell loop
(:class:`sweeps.optuna._loop.AskTellLoop`, which holds the budget, the failure streak, the stop
rules, the workers' stop signal and the heartbeats), it keeps K proposals at hand, groups them
by shape (:func:`jena.packed.shape_key`) and trains each group in one compiled JAX program
(:func:`jena.packed.train_packed`).

A packed member is a trial like any other — :func:`sweeps.trial.start_trial` opens its run and
its :class:`~jena.recording.Recorder`, whose hooks the packed trainer calls instead of Keras's
``fit``; only who runs its steps differs. Its run carries the tag ``packed`` (slots of its pack)
and its Optuna trial is told as it ends (the pruner sees its epochs). A member that ends frees
its slot for the next proposal of the same shape; proposals of other shapes wait (RUNNING in the
study, so TPE's constant liar sees them; beating) for their own pack. Points that cannot be
packed (convolutional architectures) and invalid points run one by one
(:func:`~sweeps.optuna._loop.train_one`). When the time budget or a stop rule ends the sweep,
proposals that were asked for but never started (at most K - 1) end as failed trials ("not
started"), so none is left RUNNING; they count towards ``trials`` like any finished trial. A
stop signal, a fault of the infrastructure or the failure streak leaves the members it
interrupted, and those proposals, lost: not counted, re-run first. A pack that raises otherwise
fails its open members (their own failure: the streak counts them). Packs train in one process
(``workers`` > 1 is refused: a stop signal cannot reach a worker while JAX compiles a pack).
"""

from __future__ import annotations

from typing import Any

from jena import tracking as T
from jena.errors import TrialError
from jena.packed import PackedTrial, shape_key, train_packed
from jena.recording import failed
from jena.tracking import names as N
from jena.train import TrialResult

from ..trial import SweepContext, TrialRecording, start_trial
from ._loop import AskTellLoop, Proposal, train_one


class TrainPack:
    """Trains the loop's proposals in packs of up to ``size`` members of one shape."""

    def __init__(self, ctx: SweepContext, size: int) -> None:
        self.ctx, self.size = ctx, size
        self.pending: list[Proposal] = []  # asked for, waiting for a pack of their shape

    def ask(self, loop: AskTellLoop) -> Proposal | None:
        p = loop.ask()
        if p is not None:
            try:
                p.key = shape_key(self.ctx.resolve(p.values).config)
            except TrialError:
                p.key = None  # run_trial records why
        return p

    def take(self, loop: AskTellLoop, key: Any) -> Proposal | None:
        """The oldest waiting proposal of shape ``key`` (asking for more while fewer than K
        wait), or None (none, or no new trial may start)."""
        while loop.go_on():
            for i, p in enumerate(self.pending):
                if p.key == key:
                    return self.pending.pop(i)
            if len(self.pending) >= self.size or (asked := self.ask(loop)) is None:
                return None
            self.pending.append(asked)
        return None

    def step(self, loop: AskTellLoop) -> bool:
        while len(self.pending) < self.size and (p := self.ask(loop)) is not None:
            self.pending.append(p)
        if not self.pending:
            return False
        first = self.pending.pop(0)
        if first.key is None:  # not packable: one by one, as without packing
            train_one(loop, first)
            return True
        group = [first]
        while len(group) < self.size and (p := self.take(loop, first.key)) is not None:
            group.append(p)
        self.run_pack(loop, group)
        return True

    def drop(self, loop: AskTellLoop, exc: BaseException | None) -> None:
        pending, self.pending = self.pending, []
        for p in pending:
            loop.unstarted(p, exc)

    def member(self, loop: AskTellLoop, p: Proposal) -> tuple[TrialRecording, PackedTrial]:
        """``p`` started as a trial (its run, its recorder) and as a member of a pack."""
        started = start_trial(self.ctx, p.number, p.values, report=loop.study.pruning(p.trial),
                              tags={**p.tags, N.TAG_PACKED: str(self.size)},
                              note="  [packed]")  # fmt: skip
        assert not isinstance(started, TrialResult)  # packable proposals are valid points

        def done(result: TrialResult) -> None:
            loop.tell(p, started.end(result))

        return started, started.recorder.member(done, tag=p.trial.number)

    def run_pack(self, loop: AskTellLoop, group: list[Proposal]) -> None:
        """Train ``group`` (one shape) in one pack, its slots refilled while proposals of its
        shape come; each member told as it ends."""
        flying = list(group)
        members: list[TrialRecording] = []

        def add(p: Proposal) -> PackedTrial:
            started, packed = self.member(loop, p)
            members.append(started)
            return packed

        def refill() -> PackedTrial | None:
            p = self.take(loop, group[0].key)
            if p is None:
                return None
            flying.append(p)
            return add(p)

        with loop.training(flying):
            try:
                first = [add(p) for p in group]
                point = members[0].point
                cache = self.ctx.cache(point.data_preset)
                train_packed(first, cache, point.fidelity, slots=self.size, refill=refill,
                             should_stop=self.ctx.should_stop)  # fmt: skip
            except BaseException as exc:  # the runs the pack left open: closed, then the loop
                self.close(members, exc, loop.lost_reason(exc))
                raise

    @staticmethod
    def close(members: list[TrialRecording], exc: BaseException, lost: str | None) -> None:
        """End the runs of ``members`` that ``exc`` left open: KILLED where they are ``lost``
        (a stop signal, the infrastructure, the sweep stopped), else failed with the error
        (their own failure)."""
        for started in members:
            run = started.recorder.run
            if run.finished:
                continue
            if isinstance(exc, KeyboardInterrupt):
                run.__exit__(type(exc), exc, exc.__traceback__)
            elif lost is not None:
                run.finish("killed", reason=f"{T.LOST_PREFIX}{lost}")
            elif isinstance(exc, Exception):
                started.end(failed(f"{type(exc).__name__}: {exc}"))
            else:
                run.__exit__(type(exc), exc, exc.__traceback__)
