"""Refit: a sweep's top configurations trained again at full fidelity, over seeds, raced.

A sweep ranks configurations at low fidelity (a slice of the training windows per epoch, a few
epochs); the ranking's top is partly luck, and its models are undertrained by design. The refit
takes the ``top_k`` distinct configurations by validation MAE (every driver, every invocation)
and trains them with every training window each epoch, up to ``epochs`` epochs with early
stopping (``patience``) on the *full* validation split — not evenly: a race
(:mod:`jena.refit._race`) trains each configuration's first seed for ``rung_epochs`` epochs and
stops the worse half, then the next rung, until one is left; the survivors train on and get
their further seeds (:mod:`jena.refit._lanes`; under JAX a configuration's seeds are one packed
program). The selected configuration is the surviving one with the lowest mean validation MAE
over its finished seeds; those seed models, averaged, are the champion
(:func:`jena.evaluate.evaluate_best`).

Before it trains, the refit says what it will cost (:mod:`jena.refit._plan`); it holds a time
budget (``budget_minutes``; default: the sweep's own ``timeout_minutes``): at the deadline the
running member stops at its next batch with its best epoch kept, and no member starts.

MLflow: one parent run per refit invocation (``run_type=refit``: the settings, the plan's
estimate ``estimated_fit_s``, then the measured ``fit_s`` and their ``estimate_ratio``, what
finished and what did not) and one nested run per configuration × seed (``run_type=
refit_member``, tagged with its source trial, the configuration's digest and the seed; a
raced-out one with ``refit_raced_out``), with per-epoch curves and its model. A refit is
resumable: a member already trained with the same settings (in any earlier refit run) is not
trained again, and the race replays the curves recorded (finished and raced-out members).
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .. import tracking as T
from ..config import TrialConfig
from ..data import Dataset, spec_from_source
from ..data import load as load_data
from ..errors import ConfigError
from ..recording import Events, NoEvents, recorded_config, run_tags
from ..tracking import names as N
from ..train import Fidelity, train
from ._lanes import Lane, LaneContext, Member, Seed, race_lanes
from ._plan import RefitPlan, make_plan
from ._race import Outcome, run_race, rungs

__all__ = [
    "Candidate",
    "Contender",
    "Member",
    "RefitPlan",
    "RefitResult",
    "RefitSettings",
    "candidates",
    "plan_refit",
    "refit",
    "refit_status",
    "sweep_dataset",
]

SETTINGS = ("top_k", "seeds", "epochs", "patience", "rung_epochs", "budget_minutes")


@dataclass(frozen=True)
class RefitSettings:
    """``[refit]`` of a sweep file."""

    top_k: int = 3  # distinct configurations
    seeds: int = 3  # trainings of each
    epochs: int = 30  # at most, every training window each epoch
    patience: int = 5  # early stopping on the full validation split
    rung_epochs: int = 3  # the race's first rung (then doubling); 0: no race, an even spend
    budget_minutes: float | None = None  # default: the sweep's timeout_minutes; inf: none

    def __post_init__(self) -> None:
        for name in ("top_k", "seeds", "epochs", "patience", "rung_epochs"):
            value = getattr(self, name)
            low = 0 if name == "rung_epochs" else 1
            if type(value) is not int or value < low:
                what = "0 or a positive integer" if low == 0 else "a positive integer"
                raise ConfigError(f"[refit].{name}: must be {what}, got {value!r}")
        b = self.budget_minutes
        if b is not None and (type(b) not in (int, float) or not b > 0):
            raise ConfigError(f"[refit].budget_minutes: must be a positive number of minutes "
                              f"(inf: no budget), got {b!r}")  # fmt: skip

    def fidelity(self) -> Fidelity:
        return Fidelity(max_epochs=self.epochs, patience=self.patience)

    @property
    def deadline_s(self) -> float | None:
        """The budget in seconds (None: none)."""
        b = self.budget_minutes
        return None if b is None or math.isinf(b) else 60.0 * b

    @classmethod
    def of_sweep(cls, tracking_uri: str | None, experiment: str, **overrides: Any) -> RefitSettings:
        """The ``[refit]`` the sweep's latest invocation logged (its budget, unless set: the
        sweep's ``timeout_minutes``), with ``overrides`` (not None)."""
        parents = T.sweep_runs(tracking_uri, experiment)
        definition = T.sweep_definition(tracking_uri, parents[0].run_id) if parents else None
        definition = definition or {}
        logged = dict(definition.get("refit") or {})
        known = {k: v for k, v in logged.items() if k in SETTINGS}
        if known.get("budget_minutes") is None and definition.get("timeout_minutes"):
            known["budget_minutes"] = float(definition["timeout_minutes"])
        return cls(**{**known, **{k: v for k, v in overrides.items() if v is not None}})

    def params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None}


def config_key(config: TrialConfig, preset: str) -> str:
    """A short digest of what a configuration is (its seed aside) and the split it trains on."""
    fields = {k: v for k, v in config.to_dict().items() if k != "seed"}
    text = json.dumps({"config": fields, "preset": preset}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Candidate:
    """One of the sweep's top distinct configurations, from its best trial."""

    key: str
    label: str  # the source trial's run name (t0005-lstm-64u)
    source_run_id: str
    source_trial: int | None
    val_mae: float  # the source trial's (low-fidelity) validation MAE
    config: TrialConfig
    preset: str


@dataclass
class Contender:
    """One candidate configuration in the refit: its seeds (finished members, recorded curves)
    and what the race made of it."""

    candidate: Candidate
    members: list[Member] = field(default_factory=list)  # its finished seeds
    known: dict[int, Seed] = field(default_factory=dict)  # curves recorded (finished, raced out)
    raced_out: str | None = None  # why the race stopped it
    outcomes: dict[int, str] = field(default_factory=dict)  # seed -> what became of it now

    @property
    def mean(self) -> float:
        return statistics.fmean(m.val_mae for m in self.members) if self.members else math.nan

    @property
    def std(self) -> float:
        return statistics.stdev(m.val_mae for m in self.members) if len(self.members) > 1 else 0.0

    def best_member(self) -> Member:
        return min(self.members, key=lambda m: m.val_mae)


@dataclass
class RefitResult:
    experiment: str
    settings: RefitSettings
    configs: list[Contender]
    stage_run_id: str | None = None  # the refit run of this invocation (None: nothing run)
    trained: int = 0  # members finished now (the rest came from earlier refits)
    race: Outcome | None = None  # what the race decided (so far)
    estimate_s: float | None = None  # the plan's fit seconds for what it trained now
    fit_s: float = 0.0  # measured, every member trained now (finished or not)

    @property
    def rungs_run(self) -> list[int]:
        return self.race.rungs_run if self.race is not None else []

    @property
    def complete(self) -> bool:
        """The race is decided and every surviving configuration has all its seeds."""
        decided = self.race is None or self.race.decided
        alive = [c for c in self.configs if not c.raced_out]
        return decided and bool(alive) and all(len(c.members) == self.settings.seeds for c in alive)

    @property
    def selected(self) -> Contender:
        """The surviving configuration with the lowest mean validation MAE over its seeds."""
        done = [c for c in self.configs if c.members and not c.raced_out]
        if not done:
            raise ConfigError(f"the refit of {self.experiment!r} has no finished member of a "
                              "surviving configuration yet: run `jena refit` (with more time: "
                              "--refit-minutes) to train it")  # fmt: skip
        return min(done, key=lambda c: c.mean)

    @property
    def seeds_note(self) -> str | None:
        """Said when the champion rests on one seed only."""
        chosen = self.selected
        if len(chosen.members) > 1:
            return None
        return (f"the champion {chosen.candidate.label} has only one finished seed (of "
                f"{self.settings.seeds}): its validation MAE is one seed's luck; `jena refit` "
                "with more time (--refit-minutes) adds the others")  # fmt: skip

    def outcome_text(self) -> str:
        """What this invocation did: its members' outcomes, the seeds it did not start."""
        counts: dict[str, int] = {}
        for c in self.configs:
            for what in c.outcomes.values():
                counts[what] = counts.get(what, 0) + 1
        waiting = sum(1 for c in self.configs if not c.raced_out
                      for s in range(self.settings.seeds)
                      if s not in c.outcomes and s not in {m.seed for m in c.members})  # fmt: skip
        order = ("completed", "raced out", "stopped by the budget", "failed")
        parts = [f"{counts[what]} {what}" for what in order if what in counts]
        if waiting:
            parts.append(f"{waiting} not started")
        if self.race is not None and not self.race.decided:
            parts.append("the race is not decided yet")
        return ", ".join(parts) or "nothing trained"

    def to_dict(self) -> dict[str, Any]:
        try:
            selected: str | None = self.selected.candidate.key
        except ConfigError:
            selected = None
        return {
            "experiment": self.experiment,
            "settings": vars(self.settings),
            "selected": selected,
            "complete": self.complete,
            "race": None if self.race is None else vars(self.race),
            "estimate_s": self.estimate_s,
            "fit_s": self.fit_s,
            "configs": [
                {
                    "key": c.candidate.key,
                    "label": c.candidate.label,
                    "source_trial": c.candidate.source_trial,
                    "source_run_id": c.candidate.source_run_id,
                    "sweep_val_mae": c.candidate.val_mae,
                    "mean_val_mae": c.mean,
                    "std_val_mae": c.std,
                    "raced_out": c.raced_out,
                    "outcomes": c.outcomes,
                    "members": [vars(m) for m in c.members],
                }
                for c in self.configs
            ],
        }


# --------------------------------------------------------------------------- which configurations


def candidates(tracking_uri: str | None, experiment: str, top_k: int) -> list[Candidate]:
    """The sweep's ``top_k`` distinct configurations by validation MAE (each from its best
    trial; every driver, every invocation), among its candidates (completed trials and those its
    time budget stopped after a finished epoch: jena.tracking ``candidates``)."""
    uri = T.resolve_uri(tracking_uri)
    done = T.candidates(T.trials_frame(uri, experiment), with_model=True)
    if done.empty:
        raise ConfigError(
            f"sweep {experiment!r} has no completed trial with a model yet: nothing to refit "
            "(run the sweep first, or let it run longer)"
        )
    found: dict[str, Candidate] = {}
    for row in done.to_dict("records"):
        recorded = recorded_config(uri, str(row["run_id"]))
        config, preset = recorded.config, recorded.preset
        key = config_key(config, preset)
        if key in found:
            continue
        number = row.get("number")
        found[key] = Candidate(
            key=key,
            label=str(row.get("run_name") or key),
            source_run_id=str(row["run_id"]),
            source_trial=None if number is None or number != number else int(number),
            val_mae=float(row["val_mae"]),
            config=config,
            preset=preset,
        )
        if len(found) == top_k:
            break
    return list(found.values())


def _recorded(
    uri: str, experiment: str, settings: RefitSettings
) -> tuple[dict[tuple[str, int], Member], dict[tuple[str, int], Seed]]:
    """What earlier refits with these settings recorded: finished members, and every seed's
    curve the race can replay (finished and raced-out members), by (config key, seed)."""
    finished: dict[tuple[str, int], Member] = {}
    curves: dict[tuple[str, int], Seed] = {}
    race = bool(rungs(settings.rung_epochs, settings.epochs, settings.top_k))
    query = f"tags.{N.TAG_RUN_TYPE} = '{N.RUN_REFIT_MEMBER}' and attributes.status = 'FINISHED'"
    for run in sorted(T.find_runs(uri, experiment, query), key=lambda r: r.start_time or 0):
        tags, metrics = run.tags, run.metrics
        same = (tags.get(N.TAG_REFIT_EPOCHS), tags.get(N.TAG_REFIT_PATIENCE)) == (
            str(settings.epochs),
            str(settings.patience),
        )
        val = T.finite(metrics.get(N.METRIC_BEST_VAL))
        completed = tags.get(N.TAG_STATE) == "completed" and val is not None
        raced = tags.get(N.TAG_STATE) == "pruned" and N.TAG_RACED_OUT in tags
        if not same or not (completed or raced):
            continue
        at = (tags.get(N.TAG_REFIT_KEY, ""), int(tags.get(N.TAG_REFIT_SEED, "-1")))
        if at in finished:
            continue
        if race:
            history = T.metric_history(uri, run.run_id, N.METRIC_VAL_MAE)
            curves[at] = Seed([v for _, v in history], done=completed)
        if completed and val is not None:
            finished[at] = Member(
                seed=at[1],
                run_id=run.run_id,
                val_mae=val,
                baseline_val_mae=T.finite(metrics.get(N.METRIC_BASELINE_VAL)),
                fit_s=float(metrics.get(N.METRIC_FIT_S, 0.0)),
                windows=float(metrics.get(N.METRIC_WINDOWS, 0.0)),
                epochs=int(metrics.get(N.METRIC_EPOCHS, 0)),
            )
    return finished, curves


def refit_status(tracking_uri: str | None, experiment: str, settings: RefitSettings) -> RefitResult:
    """What earlier refits of the sweep hold for these settings (complete or not), and what the
    race decided from it."""
    uri = T.resolve_uri(tracking_uri)
    finished, curves = _recorded(uri, experiment, settings)
    configs = []
    for cand in candidates(uri, experiment, settings.top_k):
        seeds = range(settings.seeds)
        members = [finished[(cand.key, s)] for s in seeds if (cand.key, s) in finished]
        known = {s: curves[(cand.key, s)] for s in seeds if (cand.key, s) in curves}
        configs.append(Contender(cand, members, known))
    status = RefitResult(experiment, settings, configs)
    lanes = [Lane(c.candidate, c.known, []) for c in configs]  # replay only
    status.race = run_race(lanes, _schedule(status), lambda: False)
    for c in configs:
        c.raced_out = status.race.raced_out.get(c.candidate.key)
    return status


def _schedule(status: RefitResult) -> list[int]:
    s = status.settings
    return rungs(s.rung_epochs, s.epochs, len(status.configs))


# --------------------------------------------------------------------------- the data


def sweep_dataset(
    tags: Mapping[str, str], data_config: Mapping[str, Any], *, data: str | None = None,
    dataset: Dataset | None = None, who: str = "the run",
) -> Dataset:  # fmt: skip
    """The record a run was trained on: ``dataset``, else ``--data``, else its ``data_source``
    tag; refused when its digest differs from the run's."""
    source = tags.get(N.TAG_DATA_SOURCE) or str(data_config.get("source", ""))
    expected = tags.get(N.TAG_DATA_DIGEST) or str(data_config.get("digest", ""))
    if dataset is None:
        if not data and not source:
            raise ConfigError(f"{who} records no data source: pass --data")
        dataset = load_data(data or spec_from_source(source))
    if expected and dataset.digest != expected:
        raise ConfigError(
            f"data {dataset.source} (digest {dataset.digest}) is not what {who} was trained on "
            f"({source or '?'}, digest {expected}): pass --data with that record"
        )
    return dataset


# --------------------------------------------------------------------------- the plan


def plan_refit(
    experiment: str,
    *,
    tracking_uri: str | None = None,
    settings: RefitSettings | None = None,
    data: str | None = None,
    dataset: Dataset | None = None,
) -> RefitPlan:
    """What :func:`refit` would train now and its estimated cost (nothing is trained or
    recorded; the record is loaded when there is something to train)."""
    uri = T.resolve_uri(tracking_uri)
    settings = settings or RefitSettings.of_sweep(uri, experiment)
    status = refit_status(uri, experiment, settings)
    race = status.race
    assert race is not None
    if status.complete:
        return RefitPlan(experiment, settings, status, None, _schedule(status),
                         reused=sum(len(c.members) for c in status.configs))  # fmt: skip
    first = status.configs[0].candidate
    source = T.get_run(uri, first.source_run_id)
    ds = sweep_dataset(source.tags, recorded_config(uri, first.source_run_id).data_config,
                       data=data, dataset=dataset, who=f"trial {first.source_trial}")  # fmt: skip
    packed, accelerator = _backend()
    plan = make_plan(uri, status, ds, packed=packed, accelerator=accelerator)
    if plan.rungs and not race.rungs_run and not plan.fits():
        # by the plan the race leaves no finished seed within the budget: the sweep's ranking
        # decides instead, its best configuration first (if that finishes one sooner)
        status.settings = replace(settings, rung_epochs=0)
        plain = make_plan(uri, status, ds, packed=packed, accelerator=accelerator)
        if plain.first_finish_s() < plan.first_finish_s():
            plain.note = (
                "no race: by the plan it would leave no seed finished within the "
                "budget; the sweep's ranking decides, its best configuration first"
            )
            return plain
        status.settings = settings
    return plan


def _backend() -> tuple[bool, bool]:
    """(seeds are packed: Keras runs on JAX, on an accelerator)."""
    import keras

    if keras.backend.backend() != "jax":
        return False, False
    import jax

    return True, jax.default_backend() != "cpu"


# --------------------------------------------------------------------------- the refit


def refit(
    experiment: str,
    *,
    tracking_uri: str | None = None,
    settings: RefitSettings | None = None,
    data: str | None = None,
    dataset: Dataset | None = None,
    events: Events | None = None,
    plan: RefitPlan | None = None,
) -> RefitResult:
    """Train what is missing of the refit of ``experiment`` (see the module docstring);
    ``plan``: the one :func:`plan_refit` made (and printed) for it."""
    uri = T.resolve_uri(tracking_uri)
    plan = plan or plan_refit(experiment, tracking_uri=uri, settings=settings, data=data,
                              dataset=dataset)  # fmt: skip
    status, settings = plan.status, plan.settings
    if not plan.members or plan.dataset is None:
        return status
    plan.check_budget()  # a budget in which, by the plan, no seed can finish: say so, spend none
    tracker = T.Tracker(uri, experiment)
    T.close_stale_runs(tracker)  # a refit killed with kill -9
    ds = plan.dataset
    with tracker.start_sweep(
        run_type=N.RUN_REFIT,
        run_name=f"refit-{time.strftime('%Y%m%d-%H%M%S')}",
        params=settings.params(),
        tags=run_tags(experiment, ds),
    ) as stage:
        status.stage_run_id, status.estimate_s = stage.run_id, plan.total_s
        stage.log_metrics({N.METRIC_REFIT_ESTIMATE: plan.total_s})
        started = time.monotonic()
        budget = settings.deadline_s
        ctx = LaneContext(experiment, ds, settings.fidelity(), train, plan.packed,
                          settings.budget_minutes, tracker=tracker, parent_run_id=stage.run_id,
                          events=events or NoEvents(),
                          deadline=None if budget is None else started + budget)  # fmt: skip
        race_lanes(status, ctx, _schedule(status))
        _close(stage, status, time.monotonic() - started)
    return status


def _close(stage: T.SweepRun, status: RefitResult, wall_s: float) -> None:
    """The refit run's record: measured against estimated, what finished and what did not,
    the selection."""
    estimate = status.estimate_s or 0.0
    ratio = status.fit_s / estimate if estimate else math.nan
    stage.log_metrics({N.METRIC_FIT_S: status.fit_s, "wall_s": wall_s, N.METRIC_REFIT_RATIO: ratio})
    stage.set_tags({N.TAG_REFIT_OUTCOME: status.outcome_text()})
    if any(c.members and not c.raced_out for c in status.configs):
        chosen = status.selected
        stage.set_tags({N.TAG_LABEL: chosen.candidate.label,
                        N.TAG_REFIT_KEY: chosen.candidate.key})  # fmt: skip
        stage.log_metrics({"selected_mean_val_mae": chosen.mean,
                           "selected_std_val_mae": chosen.std})  # fmt: skip
    stage.log_json(status.to_dict(), N.REFIT_FILE)
