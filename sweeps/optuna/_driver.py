"""The Optuna driver: a sweep's study (:class:`~sweeps.optuna._study.SweepStudy`) proposes
points of the one search space; one ask/tell loop (:class:`~sweeps.optuna._loop.AskTellLoop`)
runs them, trained one at a time (:class:`~sweeps.optuna._loop.TrainOne`) or in packs
(:class:`~sweeps.optuna._packed.TrainPack`); several workers, on one machine or many, share the
study and its budget."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from optuna.trial import TrialState, create_trial

from jena import tracking as T
from jena.errors import ConfigError
from jena.owner import owner_is_dead
from jena.packed import require_jax
from jena.tracking import names as N

from ..config import SweepConfig
from ..drivers import Best, Capabilities, Resume, StopSignal
from ..trial import SweepContext
from ..warm import WarmPoint
from . import _compat as U
from . import _faults as F
from . import _settings
from ._loop import AskTellLoop, Trainer, TrainOne
from ._packed import TrainPack
from ._study import IMPORTED, SweepStudy, budget_lock, distribution, lock_path


class OptunaDriver:
    name: ClassVar[str] = "optuna"
    capabilities: ClassVar[Capabilities] = Capabilities(
        workers=True, packing=True, warm_start_from_sweep=True, multi_objective=True,
    )  # fmt: skip

    @classmethod
    def problems(cls, cfg: SweepConfig) -> Iterator[tuple[str, str]]:
        """Its own settings: ``[sampler]``, ``[pruner]`` (:mod:`._settings`)."""
        return _settings.problems(cfg)

    def __init__(self, cfg: SweepConfig) -> None:
        self.cfg = cfg
        self.study = SweepStudy(cfg)

    @property
    def algorithm(self) -> str:
        return self.cfg.sampler.type

    def resume(self) -> Resume:
        """Trials already in the study (those of dead processes failed first), the best."""
        self._fail_stale()
        best = self.best()
        return Resume(self.study.finished(), best.val_mae if best else None,
                      best.number if best else None)  # fmt: skip

    def _fail_stale(self) -> None:
        """A RUNNING trial whose process on this host is gone (kill -9, power loss) is failed
        (and run again, as a stale trial of the heartbeat is); on an RDB storage, so is one of
        any host whose heartbeat stopped."""
        s = self.study.study
        for t in self.study.trials(TrialState.RUNNING):
            if owner_is_dead(t.user_attrs.get("host"), t.user_attrs.get("pid")):
                failed = F.fail(s, U.trial_id(t), T.STALE_REASON)
                if failed is not None:
                    F.stale_trial(s, failed, T.STALE_REASON, self.cfg)
        F.fail_stale(s, self.cfg)

    def best(self) -> Best | None:
        return self.study.best()

    def warm_start(self, points: list[WarmPoint]) -> list[str]:
        # under the budget's lock: of workers starting a new sweep at once, one adds the points
        with budget_lock(self.study.url, self.cfg.name, lock_path(self.cfg)):
            return self._warm_start(points)

    def _warm_start(self, points: list[WarmPoint]) -> list[str]:
        s = self.study.study
        if self.study.trials():
            return ["warm start: the study has trials already, nothing added"]
        if self.cfg.sampler.type == "grid":
            raise ConfigError(
                f"{self.cfg.path or 'sweep'}: warm_start: a grid sampler runs its grid"
            )
        queued, added = [], []
        for point in points:
            attrs: dict[str, Any] = {N.TAG_WARM_START: point.label}
            if point.val_mae is None:
                s.enqueue_trial(point.values, user_attrs=attrs, skip_if_exists=True)
                queued.append(point.label)
            else:
                dists = {name: distribution(self.study.space[name]) for name in point.values}
                s.add_trial(create_trial(params=point.values, distributions=dists,
                                         value=point.val_mae,
                                         user_attrs={**attrs, IMPORTED: point.label}))  # fmt: skip
                added.append(point.label)
        notes = []
        if queued:
            notes.append(f"warm start: the first trials are {', '.join(queued)}")
        if added:
            notes.append(f"warm start: {len(added)} finished trials added ({', '.join(added[:8])}"
                         + (", ..." if len(added) > 8 else "") + ")")  # fmt: skip
        return notes

    def run(
        self,
        ctx: SweepContext,
        deadline: float | None,
        *,
        worker: int = 0,
        stop: StopSignal | None = None,
    ) -> None:
        self.study.reseed(worker)
        trainer: Trainer = TrainOne()
        if self.cfg.packing.size > 1:  # K proposals at a time, trained in packs
            require_jax()
            trainer = TrainPack(ctx, self.cfg.packing.size)
        AskTellLoop(ctx, self.study, deadline, stop, trainer).run()
