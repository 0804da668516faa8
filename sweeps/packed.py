"""Packed trials in an Optuna sweep (``[packing] size = K``): ask the sampler for K proposals,
group them by shape (:func:`jena.packed.shape_key`) and train each group in one compiled JAX
program (:func:`jena.packed.train_packed`).

Each member is still its own Optuna trial (told as it ends; the pruner sees its epochs) and its
own MLflow child run (per-epoch curves, datasets, the model), as :func:`sweeps.trial.run_trial`
records a trial run alone; its run carries the tag ``packed`` (slots of its pack). A member that
ends frees its slot for the next proposal of the same shape; proposals of other shapes wait
(RUNNING in the study, so TPE's constant liar sees them) for their own pack. Points that cannot
be packed (convolutional architectures) and invalid points run one by one through
:func:`~sweeps.trial.run_trial`. When the time budget or a stop rule ends the sweep, proposals
that were asked for but never started (at most K - 1) end as failed trials ("not started"), so
none is left RUNNING; they count towards ``trials`` like any finished trial.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from jena import tracking as T
from jena.errors import TrialError
from jena.owner import owner
from jena.packed import PackedTrial, require_jax, shape_key, train_packed
from jena.recording import BATCH_EVENT_INTERVAL_S, failed
from jena.train import TrialPruned, TrialResult

from .stop import stop_reason
from .trial import (
    SweepContext,
    datasets,
    record_failure,
    run_name,
    run_trial,
    summarise,
    trial_tags,
)

TAG_PACKED = "packed"  # on a packed trial's run: the slots of its pack


@dataclass
class _Proposal:
    trial: optuna.Trial
    values: dict[str, Any]
    key: Any  # shape_key of its configuration; None: not packable (or not a valid point)


class _Member:
    """One packed trial's Optuna trial and MLflow run, from its first epoch to its end."""

    def __init__(self, loop: _PackedLoop, p: _Proposal) -> None:
        ctx = loop.ctx
        self.loop, self.p, self.ctx = loop, p, ctx
        self.number = p.trial.number
        self.started = time.perf_counter()
        point = ctx.resolve(p.values)
        self.point = point
        params = {
            **point.config.active_dict(),
            **{f"{T.PARAM_SEARCH_PREFIX}{k}": v for k, v in p.values.items()},
        }
        tags = {**trial_tags(ctx, point), TAG_PACKED: str(loop.size)}
        label = p.trial.user_attrs.get(T.TAG_WARM_START)
        if label:
            tags[T.TAG_WARM_START] = label
        ctx.events.trial_started(self.number, summarise(point) + "  [packed]",
                                 point.fidelity.max_epochs)  # fmt: skip
        self.name = run_name(self.number, point)
        self.run = ctx.tracker.trial(ctx.parent_run_id, self.number, params, tags,
                                     run_name=self.name)  # fmt: skip
        self.run.log_datasets(datasets(ctx, point))
        self.epochs_done = 0
        self.last_sent = 0.0

    def packed(self) -> PackedTrial:
        return PackedTrial(self.point.config, on_epoch=self.on_epoch, on_batch=self.on_batch,
                           on_done=self.on_done, max_epochs=self.point.fidelity.max_epochs,
                           tag=self.number)  # fmt: skip

    def on_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        self.epochs_done = epoch
        self.run.log_epoch(epoch, metrics)
        val = metrics[T.METRIC_VAL_MAE]
        self.ctx.events.epoch(self.number, epoch, val)
        cfg = self.ctx.cfg
        if cfg.multi_objective or not math.isfinite(val):
            return
        self.p.trial.report(val, epoch)
        final = epoch >= self.point.fidelity.max_epochs  # a finished trial is not pruned
        if not final and self.p.trial.should_prune():
            raise TrialPruned(f"pruned by {cfg.pruner.type} after epoch {epoch}")

    def on_batch(self, batch: int, batches: int) -> None:
        now = time.monotonic()
        if now - self.last_sent >= BATCH_EVENT_INTERVAL_S or batch == batches:
            self.last_sent = now
            self.ctx.events.progress(self.number, self.epochs_done + 1, batch, batches)

    def on_done(self, result: TrialResult) -> None:
        """Record the ended member as :func:`jena.recording.train_recorded` records a trial
        trained alone, then tell the study."""
        run = self.run
        try:
            if result.state == "completed" and result.model is not None:
                active = self.point.config.active_dict()
                run.log_model(result.model, result.data_config, name=self.name, params=active,
                              step=result.best_epoch or 0)  # fmt: skip
            run.log_metrics({T.METRIC_BASELINE_VAL: result.baseline_val_mae,
                             T.METRIC_FIT_S: result.duration_s,
                             T.METRIC_WINDOWS: result.windows_seen})  # fmt: skip
            run.finish(result.state, val_mae=result.val_mae, val_skill=result.val_skill,
                       reason=result.reason, duration_s=time.perf_counter() - self.started,
                       param_count=result.param_count or None,
                       best_epoch=result.best_epoch)  # fmt: skip
        except Exception as exc:  # tracking broke: the run is closed, the trial fails
            run.__exit__(type(exc), exc, exc.__traceback__)
            result = failed(f"{type(exc).__name__}: {exc}")
        note = result.reason if result.stopped else None
        self.ctx.events.trial_finished(self.number, result.state, result.val_mae,
                                       time.perf_counter() - self.started, result.val_skill,
                                       note)  # fmt: skip
        result.model = None
        self.loop.tell(self.p.trial, result)

    def abort(self, exc: BaseException) -> None:
        """The pack itself broke (or Ctrl-C): close the run, fail the trial."""
        if not self.run.finished:
            self.run.__exit__(type(exc), exc, exc.__traceback__)
        self.p.trial.set_user_attr("fail_reason", f"{type(exc).__name__}: {exc}"[:500])
        self.loop.tell_state(self.p.trial, TrialState.FAIL)


class _PackedLoop:
    def __init__(self, ctx: SweepContext, deadline: float | None, worker: int) -> None:
        from .optuna_study import study

        self.ctx, self.cfg, self.deadline = ctx, ctx.cfg, deadline
        self.size = ctx.cfg.packing.size
        done = len(study(self.cfg, ctx.space).get_trials(deepcopy=False))
        self.study = study(self.cfg, ctx.space, seed=self.cfg.seed + 100_003 * worker + done)
        self.pending: list[_Proposal] = []
        self.exhausted = False  # the budget is spoken for (or the sampler has no more)
        self.over = False  # a stop rule ended the sweep, or the search is over

    # ---------------------------------------------------------------- the study
    def ask(self) -> _Proposal | None:
        """One more proposal, or None when the trial budget is spoken for."""
        from . import optuna_faults as F
        from .optuna_study import FINISHED, lock_path, run_here, suggest

        if self.exhausted or self.over:
            return None
        s, cfg = self.study, self.cfg
        with F.budget_lock(cfg.optuna_storage(), cfg.name, lock_path(cfg)):
            states = (*FINISHED, TrialState.RUNNING)
            if len(run_here(s.get_trials(deepcopy=False, states=states))) >= cfg.trials:
                self.exhausted = True
                return None
            trial = s.ask()
            for attr, value in owner().items():
                trial.set_user_attr(attr, value)
        try:
            values = suggest(trial, self.ctx.space, self.ctx.base)
        except Exception as exc:  # the sampler itself raised: a failed trial, go on
            reason = f"{type(exc).__name__}: {exc}"
            trial.set_user_attr("fail_reason", reason)
            record_failure(self.ctx, trial.number, dict(trial.params), reason)
            self.tell_state(trial, TrialState.FAIL)
            return self.ask()
        try:
            key = shape_key(self.ctx.resolve(values).config)
        except TrialError:
            key = None  # run_trial records why
        return _Proposal(trial, values, key)

    def tell(self, trial: optuna.Trial, result: TrialResult) -> None:
        from .optuna_study import tell_result

        self.told(tell_result(self.study, trial, result, self.cfg))

    def tell_state(self, trial: optuna.Trial, state: TrialState) -> None:
        from .optuna_study import tell

        self.told(tell(self.study, trial, state=state))

    def told(self, go_on: bool) -> None:
        """After a tell: the search is over when the sampler says so or a stop rule does."""
        from .optuna_study import completed

        if not go_on:
            self.over = True
        if not self.over and (reason := stop_reason(self.cfg, completed(self.study))):
            self.ctx.events.stopped(reason)
            self.over = True

    # ---------------------------------------------------------------- the loop
    def top_up(self) -> None:
        while len(self.pending) < self.size and (p := self.ask()) is not None:
            self.pending.append(p)

    def take(self, key: Any) -> _Proposal | None:
        """The oldest waiting proposal of shape ``key`` (asking for more while fewer than K
        wait), or None."""
        if self.over:
            return None
        while True:
            for i, p in enumerate(self.pending):
                if p.key == key:
                    return self.pending.pop(i)
            if len(self.pending) >= self.size:
                return None
            asked = self.ask()
            if asked is None:
                return None
            self.pending.append(asked)

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def run(self) -> None:
        from .optuna_study import completed

        if reason := stop_reason(self.cfg, completed(self.study)):
            self.ctx.events.stopped(reason)
            return
        try:
            while not self.over and not self.out_of_time():
                self.top_up()
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
            self.discard_pending(f"not started: {type(exc).__name__}")
            raise
        self.discard_pending("not started: the sweep ended before its pack")

    def discard_pending(self, reason: str) -> None:
        """Proposals asked for but never trained (the time budget ran out, a stop rule ended
        the sweep): failed trials with the reason, so none is left RUNNING."""
        pending, self.pending = self.pending, []
        for p in pending:
            p.trial.set_user_attr("fail_reason", reason)
            record_failure(self.ctx, p.trial.number, p.values, reason)
            from .optuna_study import tell

            tell(self.study, p.trial, state=TrialState.FAIL)

    def run_alone(self, p: _Proposal) -> None:
        trial = p.trial

        def report(epoch: int, val_mae: float, final: bool) -> None:
            if self.cfg.multi_objective or not math.isfinite(val_mae):
                return
            trial.report(val_mae, epoch)
            if not final and trial.should_prune():
                raise TrialPruned(f"pruned by {self.cfg.pruner.type} after epoch {epoch}")

        label = trial.user_attrs.get(T.TAG_WARM_START)
        tags = {T.TAG_WARM_START: label} if label else None
        try:
            result = run_trial(self.ctx, trial.number, p.values, report=report, tags=tags)
        except Exception as exc:  # tracking broke after training: the child run is closed
            trial.set_user_attr("fail_reason", f"{type(exc).__name__}: {exc}")
            self.tell_state(trial, TrialState.FAIL)
            return
        self.tell(trial, result)

    def run_pack(self, group: list[_Proposal]) -> None:
        members: list[_Member] = []
        try:
            for p in group:
                members.append(_Member(self, p))
            key = group[0].key

            def refill() -> PackedTrial | None:
                if self.out_of_time():
                    return None
                p = self.take(key)
                if p is None:
                    return None
                member = _Member(self, p)
                members.append(member)
                return member.packed()

            cache = self.ctx.cache(members[0].point.data_preset)
            train_packed([m.packed() for m in members], cache, members[0].point.fidelity,
                         slots=self.size, refill=refill,
                         should_stop=self.ctx.out_of_time)  # fmt: skip
        except BaseException as exc:
            for m in members:
                if not m.run.finished:
                    m.abort(exc)
            if not isinstance(exc, Exception):
                raise
            # a pack that raised (not a trial's fault): its open members failed; go on


def packed_loop(ctx: SweepContext, deadline: float | None, worker: int = 0) -> None:
    """The Optuna driver's loop with ``[packing] size > 1`` (see the module's docstring)."""
    require_jax()
    _PackedLoop(ctx, deadline, worker).run()
