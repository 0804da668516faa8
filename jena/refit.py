"""Refit: a sweep's top configurations trained again at full fidelity, over seeds.

A sweep ranks configurations at low fidelity (a slice of the training windows per epoch, a few
epochs); the ranking's top is partly luck, and its models are undertrained by design. The refit
takes the ``top_k`` distinct configurations by validation MAE (every driver, every invocation),
trains each ``seeds`` times with every training window each epoch, up to ``epochs`` epochs with
early stopping (``patience``) on the *full* validation split, and selects the configuration with
the lowest mean validation MAE over its seeds. Its seed models, averaged, are the champion
(:func:`jena.evaluate.evaluate_best`).

MLflow: one parent run per refit invocation (``run_type=refit``) and one nested run per
configuration × seed (``run_type=refit_member``, tagged with its source trial, the
configuration's digest and the seed), with per-epoch curves and its model. A refit is resumable:
a member already trained with the same settings (in any earlier refit run) is not trained again.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import tracking as T
from .config import TrialConfig
from .data import Dataset, spec_from_source
from .data import load as load_data
from .errors import ConfigError
from .recording import Events, NoEvents, Recorder
from .train import DataCache, Fidelity, train

__all__ = [
    "Candidate",
    "Member",
    "RefitConfig",
    "RefitResult",
    "RefitSettings",
    "candidates",
    "refit",
    "refit_status",
    "sweep_dataset",
]


@dataclass(frozen=True)
class RefitSettings:
    """``[refit]`` of a sweep file."""

    top_k: int = 3  # distinct configurations
    seeds: int = 3  # trainings of each
    epochs: int = 30  # at most, every training window each epoch
    patience: int = 5  # early stopping on the full validation split

    def __post_init__(self) -> None:
        for name in ("top_k", "seeds", "epochs", "patience"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ConfigError(f"[refit].{name}: must be a positive integer, got {value!r}")

    def fidelity(self) -> Fidelity:
        return Fidelity(max_epochs=self.epochs, patience=self.patience)

    @classmethod
    def of_sweep(cls, tracking_uri: str | None, experiment: str, **overrides: Any) -> RefitSettings:
        """The ``[refit]`` the sweep's latest invocation logged, with ``overrides`` (not None)."""
        parents = T.sweep_runs(tracking_uri, experiment)
        definition = T.sweep_definition(tracking_uri, parents[0].run_id) if parents else None
        logged = dict((definition or {}).get("refit") or {})
        known = {k: v for k, v in logged.items() if k in ("top_k", "seeds", "epochs", "patience")}
        return cls(**{**known, **{k: v for k, v in overrides.items() if v is not None}})


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


@dataclass(frozen=True)
class Member:
    seed: int
    run_id: str
    val_mae: float
    baseline_val_mae: float | None
    fit_s: float
    windows: float


@dataclass
class RefitConfig:
    candidate: Candidate
    members: list[Member] = field(default_factory=list)

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
    configs: list[RefitConfig]
    stage_run_id: str | None = None  # the refit run of this invocation (None: all reused)
    trained: int = 0  # members trained now (the rest came from earlier refits)

    @property
    def complete(self) -> bool:
        return bool(self.configs) and all(
            len(c.members) == self.settings.seeds for c in self.configs
        )

    @property
    def selected(self) -> RefitConfig:
        """The configuration with the lowest mean validation MAE over its seeds."""
        done = [c for c in self.configs if c.members]
        if not done:
            raise ConfigError(f"the refit of {self.experiment!r} has no trained member yet")
        return min(done, key=lambda c: c.mean)

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "settings": vars(self.settings),
            "selected": self.selected.candidate.key if self.configs else None,
            "configs": [
                {
                    "key": c.candidate.key,
                    "label": c.candidate.label,
                    "source_trial": c.candidate.source_trial,
                    "source_run_id": c.candidate.source_run_id,
                    "sweep_val_mae": c.candidate.val_mae,
                    "mean_val_mae": c.mean,
                    "std_val_mae": c.std,
                    "members": [vars(m) for m in c.members],
                }
                for c in self.configs
            ],
        }


# --------------------------------------------------------------------------- which configurations


def _data_config(uri: str, run_id: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="jena-refit-") as tmp:
        path = T.download_artifact(uri, run_id, f"{T.MODEL_DIR}/{T.DATA_CONFIG_FILE}", tmp)
        if path is None:
            raise ConfigError(f"run {run_id} has no {T.MODEL_DIR}/{T.DATA_CONFIG_FILE}")
        return dict(json.loads(Path(path).read_text()))


def candidates(tracking_uri: str | None, experiment: str, top_k: int) -> list[Candidate]:
    """The sweep's ``top_k`` distinct configurations by validation MAE (each from its best
    trial; every driver, every invocation)."""
    uri = T.resolve_uri(tracking_uri)
    done = T.completed_trials(T.trials_frame(uri, experiment), with_model=True)
    if done.empty:
        raise ConfigError(
            f"sweep {experiment!r} has no completed trial with a model yet: nothing to refit "
            "(run the sweep first, or let it run longer)"
        )
    found: dict[str, Candidate] = {}
    for row in done.to_dict("records"):
        data_config = _data_config(uri, str(row["run_id"]))
        config = TrialConfig.from_dict(data_config["trial_config"])
        preset = str(data_config["preset"])
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


def _members(uri: str, experiment: str, settings: RefitSettings) -> dict[tuple[str, int], Member]:
    """Completed members of earlier refits with these settings: (config key, seed) -> member."""
    out: dict[tuple[str, int], Member] = {}
    query = f"tags.{T.TAG_RUN_TYPE} = '{T.RUN_REFIT_MEMBER}' and attributes.status = 'FINISHED'"
    for run in T.find_runs(uri, experiment, query):
        tags, metrics = run.tags, run.metrics
        same = (tags.get(T.TAG_REFIT_EPOCHS), tags.get(T.TAG_REFIT_PATIENCE)) == (
            str(settings.epochs),
            str(settings.patience),
        )
        val = T.finite(metrics.get(T.METRIC_BEST_VAL))
        if not same or tags.get(T.TAG_STATE) != "completed" or val is None:
            continue
        seed = int(tags.get(T.TAG_REFIT_SEED, "-1"))
        out[(tags.get(T.TAG_REFIT_KEY, ""), seed)] = Member(
            seed=seed,
            run_id=run.run_id,
            val_mae=val,
            baseline_val_mae=T.finite(metrics.get(T.METRIC_BASELINE_VAL)),
            fit_s=float(metrics.get(T.METRIC_FIT_S, 0.0)),
            windows=float(metrics.get(T.METRIC_WINDOWS, 0.0)),
        )
    return out


def refit_status(tracking_uri: str | None, experiment: str, settings: RefitSettings) -> RefitResult:
    """What earlier refits of the sweep hold for these settings (complete or not)."""
    uri = T.resolve_uri(tracking_uri)
    found = _members(uri, experiment, settings)
    configs = []
    for cand in candidates(uri, experiment, settings.top_k):
        members = [found[(cand.key, s)] for s in range(settings.seeds) if (cand.key, s) in found]
        configs.append(RefitConfig(cand, members))
    return RefitResult(experiment, settings, configs)


# --------------------------------------------------------------------------- the data


def sweep_dataset(
    tags: Mapping[str, str], data_config: Mapping[str, Any], *, data: str | None = None,
    dataset: Dataset | None = None, who: str = "the run",
) -> Dataset:  # fmt: skip
    """The record a run was trained on: ``dataset``, else ``--data``, else its ``data_source``
    tag; refused when its digest differs from the run's."""
    source = tags.get(T.TAG_DATA_SOURCE) or str(data_config.get("source", ""))
    expected = tags.get(T.TAG_DATA_DIGEST) or str(data_config.get("digest", ""))
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


# --------------------------------------------------------------------------- the refit


def refit(
    experiment: str,
    *,
    tracking_uri: str | None = None,
    settings: RefitSettings | None = None,
    data: str | None = None,
    dataset: Dataset | None = None,
    events: Events | None = None,
) -> RefitResult:
    """Train what is missing of the refit of ``experiment`` (see the module docstring)."""
    uri = T.resolve_uri(tracking_uri)
    settings = settings or RefitSettings.of_sweep(uri, experiment)
    events = events or NoEvents()
    status = refit_status(uri, experiment, settings)
    todo = [(c, s) for c in status.configs for s in range(settings.seeds)
            if s not in {m.seed for m in c.members}]  # fmt: skip
    if not todo:
        return status
    tracker = T.Tracker(uri, experiment)
    T.close_stale_runs(tracker)  # a refit killed with kill -9
    first = status.configs[0].candidate
    source = T.get_run(uri, first.source_run_id)
    ds = sweep_dataset(source.tags, _data_config(uri, first.source_run_id), data=data,
                       dataset=dataset, who=f"trial {first.source_trial}")  # fmt: skip
    caches: dict[str, DataCache] = {}
    fidelity = settings.fidelity()
    data_tags = {T.TAG_DATA_SOURCE: ds.source, T.TAG_DATA_DIGEST: ds.digest}
    with tracker.start_sweep(
        run_type=T.RUN_REFIT,
        run_name=f"refit-{time.strftime('%Y%m%d-%H%M%S')}",
        params=vars(settings),
        tags={T.TAG_SWEEP: experiment, **data_tags},
    ) as stage:
        status.stage_run_id = stage.run_id
        for number, (config, seed) in enumerate(todo):
            cand = config.candidate
            trial_config = cand.config.replace(seed=seed)
            cache = caches.setdefault(cand.preset, DataCache(ds, cand.preset))
            name = f"refit-{cand.label}-s{seed}"
            tags = {
                **data_tags,
                T.TAG_SWEEP: experiment,
                T.TAG_PRESET: cand.preset,
                T.TAG_ARCHITECTURE: trial_config.architecture,
                T.TAG_SOURCE_RUN: cand.source_run_id,
                T.TAG_SOURCE_TRIAL: cand.source_trial,
                T.TAG_REFIT_KEY: cand.key,
                T.TAG_REFIT_SEED: seed,
                T.TAG_REFIT_EPOCHS: settings.epochs,
                T.TAG_REFIT_PATIENCE: settings.patience,
                T.TAG_LABEL: cand.label,
                T.TAG_SEED: seed,
            }
            summary = f"{cand.label} seed {seed}  (sweep val MAE {cand.val_mae:.4f})"
            events.trial_started(number, summary, fidelity.max_epochs)
            started = time.perf_counter()
            with tracker.trial(stage.run_id, number, trial_config.active_dict(), tags,
                               run_name=name, run_type=T.RUN_REFIT_MEMBER) as run:  # fmt: skip
                recorder = Recorder(run, trial_config, fidelity, number=number, events=events,
                                    name=name, started=started)  # fmt: skip
                result = recorder.finish(recorder.train(cache, trainer=train))
            events.trial_finished(number, result.state, result.val_mae,
                                  time.perf_counter() - started, result.val_skill)  # fmt: skip
            if result.state == "completed" and result.val_mae is not None:
                member = Member(seed, run.run_id, result.val_mae, result.baseline_val_mae,
                                result.duration_s, float(result.windows_seen))  # fmt: skip
                config.members.append(member)
                status.trained += 1
            result.model = None
        for c in status.configs:
            c.members.sort(key=lambda m: m.seed)
        if any(c.members for c in status.configs):
            chosen = status.selected
            stage.set_tags({T.TAG_LABEL: chosen.candidate.label,
                            T.TAG_REFIT_KEY: chosen.candidate.key})  # fmt: skip
            stage.log_metrics({"selected_mean_val_mae": chosen.mean,
                               "selected_std_val_mae": chosen.std})  # fmt: skip
            stage.log_json(status.to_dict(), T.REFIT_FILE)
    return status
