"""What both drivers share: data, the trial → train → MLflow path, the sweep's parent run, the
live display and the end-of-sweep summary. A driver only proposes values and runs its loop.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jena.config import TrialConfig
from jena.data import load as load_data
from jena.errors import ConfigError
from jena.space import SPACE, Space
from jena.splits import get_preset
from jena.train import DataCache, Fidelity, TrialPruned, TrialResult, train

from ._progress import Board, Events, summary_table
from .config import SweepConfig

Report = Callable[[int, float], None]  # (epoch, val_mae °C); raises TrialPruned to prune


def base_config(data_preset: str, seed: int) -> TrialConfig:
    """The defaults a search starts from: the data preset's window, batch and loss."""
    p = get_preset(data_preset)
    return TrialConfig(
        sampling_rate=p.sampling_rate,
        sequence_length=p.sequence_length,
        batch_size=p.batch_size,
        loss="mae" if p.edition == 1 else "mse",
        normalise_target=p.normalised_target,
        seed=seed,
    )


@dataclass
class SweepContext:
    """Everything a worker needs to run trials (rebuilt in each worker process)."""

    cfg: SweepConfig
    space: Space
    fidelity: Fidelity
    events: Events
    parent_run_id: str
    tracker: Any  # jena.tracking.Tracker
    caches: dict[str, DataCache] = field(default_factory=dict)

    @property
    def source(self) -> str:
        return self.cfg.data.source

    def cache(self, data_preset: str) -> DataCache:
        if data_preset not in self.caches:
            first = next(iter(self.caches.values()), None)
            ds = first.dataset if first is not None else load_data(self.source)
            self.caches[data_preset] = DataCache(ds, data_preset)
        return self.caches[data_preset]

    # -- from proposed values to a configuration ---------------------------------------
    def resolve(self, values: dict[str, Any]) -> tuple[TrialConfig, str, str | None, Fidelity]:
        """(config, data preset, model preset or None, fidelity) for one trial's values."""
        values = dict(values)
        model_preset = values.pop("preset", None)
        fidelity = self.fidelity
        if model_preset is not None:
            from jena.models import PRESET_DATA, PRESET_EPOCHS, PRESET_STEPS_PER_EPOCH, PRESETS

            if model_preset not in PRESETS:
                raise ConfigError(
                    f"unknown model preset {model_preset!r}: known {', '.join(PRESETS)}"
                )
            data_preset = PRESET_DATA[model_preset]
            base = PRESETS[model_preset].replace(seed=self.cfg.seed)
            if self.cfg.fidelity.preset_epochs:
                fidelity = Fidelity(
                    max_epochs=PRESET_EPOCHS[model_preset],
                    steps_per_epoch=fidelity.steps_per_epoch
                    or PRESET_STEPS_PER_EPOCH[model_preset],
                    validation_steps=fidelity.validation_steps,
                    patience=max(fidelity.patience, PRESET_EPOCHS[model_preset]),
                )
        else:
            data_preset = self.cfg.data.preset
            base = base_config(data_preset, self.cfg.seed)
        config = self.space.to_config(values, base).validate()
        return config, data_preset, model_preset, fidelity


def make_space(cfg: SweepConfig) -> Space:
    """The part of the one search space this sweep explores (presets: none, only fixed values)."""
    fixed = dict(cfg.space.fixed)
    if cfg.space.presets is not None:
        return Space(params=(), fixed=fixed)
    return SPACE.subspace(cfg.space.include, fixed)


def make_context(cfg: SweepConfig, events: Events, parent_run_id: str) -> SweepContext:
    from jena.tracking import Tracker

    return SweepContext(
        cfg=cfg,
        space=make_space(cfg),
        fidelity=cfg.fidelity_obj(),
        events=events,
        parent_run_id=parent_run_id,
        tracker=Tracker(cfg.storage.tracking_uri, experiment=cfg.name),
    )


def summarise(config: TrialConfig, model_preset: str | None) -> str:
    c = config
    if model_preset:
        head = model_preset
    elif c.architecture in ("lstm", "gru", "conv_gru"):
        head = f"{c.architecture}{'x'.join(map(str, c.rnn_units))}"
        head += " bi" if c.bidirectional else ""
        head += " rev" if c.reverse else ""
        if c.dropout or c.recurrent_dropout:
            head += f" do={c.dropout:.2f}/{c.recurrent_dropout:.2f}"
    else:
        head = c.architecture
    return (
        f"{head}  lr={c.learning_rate:.1e} {c.optimizer} {c.loss} bs={c.batch_size}  "
        f"every {c.sampling_rate * 10} min × {c.sequence_length}"
    )


def trial_tags(
    ctx: SweepContext, config: TrialConfig, data_preset: str, model_preset: str | None
) -> dict[str, str]:
    cache = ctx.cache(data_preset)
    tags = {
        "driver": ctx.cfg.driver,
        "sweep": ctx.cfg.name,
        "architecture": config.architecture,
        "data_source": cache.dataset.source,
        "data_digest": cache.dataset.digest,
        "preset": data_preset,
        "seed": str(config.seed),
        "host": socket.gethostname(),
        "pid": str(os.getpid()),
    }
    if model_preset:
        tags["model_preset"] = model_preset
    return tags


def record_failure(ctx: SweepContext, number: int, values: dict[str, Any], reason: str) -> None:
    """A trial that failed before it could train (e.g. its sampler raised): a failed child run."""
    ctx.events.trial_started(number, "failed before training", 0)
    with ctx.tracker.trial(ctx.parent_run_id, number, values, {"driver": ctx.cfg.driver}) as run:
        run.finish("failed", reason=reason)
    ctx.events.trial_finished(number, "failed", None, 0.0)


def run_trial(
    ctx: SweepContext,
    number: int,
    values: dict[str, Any],
    *,
    report: Report | None = None,
    max_epochs: int | None = None,
) -> TrialResult:
    """Train one proposed point and record it as a nested MLflow run of the sweep's parent run.

    Bad values (a window that does not fit, an invalid combination) end the trial as failed
    with the reason, before any training. ``report`` is the driver's pruning hook.
    """
    started = time.perf_counter()
    try:
        config, data_preset, model_preset, fidelity = ctx.resolve(values)
        if max_epochs is not None:
            fidelity = Fidelity(
                max_epochs=max_epochs,
                steps_per_epoch=fidelity.steps_per_epoch,
                validation_steps=fidelity.validation_steps,
                patience=fidelity.patience,
            )
        params = {**config.to_dict(), **{f"hp.{k}": v for k, v in values.items()}}
        tags = trial_tags(ctx, config, data_preset, model_preset)
        summary = summarise(config, model_preset)
    except Exception as exc:  # an invalid point fails before training; the sweep goes on
        reason = str(exc) if isinstance(exc, ConfigError) else f"{type(exc).__name__}: {exc}"
        record_failure(ctx, number, values, reason)
        return TrialResult(
            state="failed", val_mae=None, baseline_val_mae=math.nan, best_epoch=None, reason=reason
        )

    ctx.events.trial_started(number, summary, fidelity.max_epochs)
    with ctx.tracker.trial(ctx.parent_run_id, number, params, tags) as run:

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            run.log_epoch(epoch, metrics)
            ctx.events.epoch(number, epoch, metrics["val_mae"])
            if report is not None:
                report(epoch, metrics["val_mae"])

        try:
            result = train(config, ctx.cache(data_preset), fidelity, on_epoch=on_epoch)
        except ConfigError as exc:
            result = TrialResult(
                state="failed",
                val_mae=None,
                baseline_val_mae=math.nan,
                best_epoch=None,
                reason=str(exc),
            )
        except TrialPruned:  # pragma: no cover - train() turns it into state "pruned"
            raise
        except Exception as exc:  # a trial that raises fails; the sweep goes on
            result = TrialResult(
                state="failed",
                val_mae=None,
                baseline_val_mae=math.nan,
                best_epoch=None,
                reason=f"{type(exc).__name__}: {exc}",
            )
        if result.state == "completed" and result.model is not None:
            run.log_model(result.model, result.data_config)
        run.log_metrics({"baseline_val_mae": result.baseline_val_mae, "fit_s": result.duration_s})
        run.finish(
            result.state,
            val_mae=result.val_mae,
            val_skill=result.val_skill,
            reason=result.reason,
            duration_s=time.perf_counter() - started,
            param_count=result.param_count or None,
        )
    ctx.events.trial_finished(number, result.state, result.val_mae, time.perf_counter() - started)
    result.model = None  # free memory; the model lives in MLflow now
    return result


def run_sweep(cfg: SweepConfig, *, console: Any = None, quiet: bool = False) -> dict[str, Any]:
    """Run (or resume) a sweep; returns a summary dict (also printed as a table)."""
    from rich.console import Console

    from jena.tracking import Tracker, standard_tags

    # Tracker chatter would break the live display (MLflow sets its levels on import).
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    console = console or Console(stderr=True)
    started = time.monotonic()
    ds = load_data(cfg.data.source)
    cache = DataCache(ds, cfg.data.preset)
    baseline, _ = cache.get().persistence_mae("val")
    tracker = Tracker(cfg.storage.tracking_uri, experiment=cfg.name)
    _claim_experiment(tracker, cfg, ds)
    close_stale_runs(tracker)
    definition = cfg.to_dict()  # the effective definition: the file plus command-line overrides
    params = {
        "driver": cfg.driver,
        "trials": cfg.trials,
        "workers": cfg.workers,
        "seed": cfg.seed,
        "data_source": ds.source,
        "data_preset": cfg.data.preset,
        "sampler": cfg.sampler.type if cfg.driver == "optuna" else cfg.tuner.type,
        "max_epochs": cfg.fidelity.max_epochs,
    }
    tags = {
        **({"sweep_file": cfg.path} if cfg.path else {}),
        **standard_tags(),
        "driver": cfg.driver,
        "sweep": cfg.name,
        "data_source": ds.source,
        "data_digest": ds.digest,
        "preset": cfg.data.preset,
    }
    with tracker.start_sweep(definition=definition, params=params, tags=tags) as parent:
        parent.log_metrics({"baseline_val_mae": baseline})
        if cfg.driver == "optuna":
            from . import optuna_driver as driver
        else:
            from . import kerastuner_driver as driver  # type: ignore[no-redef]
        done_before, best_before = driver.previous(cfg)
        best_so_far = driver.best(cfg) if done_before else None
        deadline = time.monotonic() + cfg.timeout_minutes * 60 if cfg.timeout_minutes else None
        board = Board(
            f"sweep {cfg.name} · {cfg.driver}/{params['sampler']} · {ds.source} · "
            f"{cfg.data.preset}",
            total=cfg.trials,
            done_before=done_before,
            baseline=baseline,
            best_before=best_before,
            deadline=deadline,
            best_number_before=best_so_far["number"] if best_so_far else None,
        )
        ctx = make_context(cfg, board, parent.run_id)
        ctx.caches[cfg.data.preset] = cache
        if quiet:
            driver.run(ctx, board, deadline)
        else:
            with board.live(console):
                driver.run(ctx, board, deadline)
        best = driver.best(cfg)
        if best is not None:
            parent.log_best(best["number"], best["params"], best["val_mae"])
        parent.log_metrics({k: float(v) for k, v in board.counts.items()})
        timing = _timing(tracker, cfg.name, parent.run_id, time.monotonic() - started)
        parent.log_metrics(timing)
    summary = {
        "experiment": cfg.name,
        "parent_run_id": parent.run_id,
        "baseline_val_mae": baseline,
        "counts": board.counts,
        "finished": board.finished,
        "best": best,
        "tracking_uri": tracker.tracking_uri,
        **timing,
    }
    if not quiet:
        console.print()
        print_summary(cfg, tracker, baseline, console)
        console.print(
            f"this run: {timing['wall_s']:.0f} s wall, {timing['fit_s']:.0f} s in model.fit "
            f"({1 - timing['outside_fit_fraction']:.0%}); parent run {parent.run_id}"
        )
    return summary


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def close_stale_runs(tracker: Any) -> int:
    """Runs left RUNNING by a process of this host that is gone (kill -9, power loss) → KILLED."""
    client = tracker.client
    host = socket.gethostname()
    stale = 0
    for run in client.search_runs(
        [tracker.experiment_id], "attributes.status = 'RUNNING'", max_results=5000
    ):
        tags = run.data.tags
        pid = tags.get("pid", "")
        if (tags.get("host") or tags.get("hostname")) != host or not pid.isdigit():
            continue
        if not process_alive(int(pid)):
            client.set_tag(run.info.run_id, "state", "killed")
            client.set_tag(run.info.run_id, "failure_reason", "stale: its process died")
            client.set_terminated(run.info.run_id, "KILLED")
            stale += 1
    return stale


def _claim_experiment(tracker: Any, cfg: SweepConfig, ds: Any) -> None:
    """One sweep name = one record and one split: resuming on other data would rank val MAEs
    that cannot be compared, and resume a study whose trials were trained on something else."""
    client = tracker.client
    tags = client.get_experiment(tracker.experiment_id).tags
    mine = {"data_digest": ds.digest, "data_preset": cfg.data.preset}
    for key, value in mine.items():
        if key in tags and tags[key] != value:
            what = f"data {tags.get('data_source', '?')}" if key == "data_digest" else "split"
            raise ConfigError(
                f"sweep {cfg.name!r} already holds trials on {what} ({key} {tags[key]}), not "
                f"{ds.source if key == 'data_digest' else cfg.data.preset} ({value}): start a "
                "separate sweep with --name NEW, or resume it with the same --data"
            )
    for key, value in {**mine, "data_source": ds.source}.items():
        if key not in tags:
            client.set_experiment_tag(tracker.experiment_id, key, value)


def _timing(tracker: Any, experiment: str, parent_run_id: str, wall_s: float) -> dict[str, float]:
    """Wall time of this invocation, time inside ``model.fit``, and the share spent outside it
    (data loading, model building, tracking, the tuner's own work)."""
    from jena.tracking import trials_frame

    frame = trials_frame(tracker.tracking_uri, experiment)
    fit_s = 0.0
    if len(frame) and "metrics.fit_s" in frame:
        mine = frame[frame["parent_run_id"] == parent_run_id]
        fit_s = float(mine["metrics.fit_s"].fillna(0).sum())
    return {"wall_s": wall_s, "fit_s": fit_s, "outside_fit_fraction": 1 - fit_s / wall_s}


def print_summary(
    cfg: SweepConfig, tracker: Any, baseline: float, console: Any, top: int = 10
) -> None:
    from jena.tracking import trials_frame

    frame = trials_frame(tracker.tracking_uri, cfg.name)
    rows: list[dict[str, Any]] = []
    if len(frame):
        done = frame[frame["state"] == "completed"].sort_values("val_mae").head(top)
        for _, r in done.iterrows():
            row = {k: r.get(k) for k in ("number", "driver", "val_mae", "state")}
            row["architecture"] = (
                r.get("tags.model_preset")
                if isinstance(r.get("tags.model_preset"), str)
                else r.get("tags.architecture")
            )
            count = r.get("param_count")
            row["param_count"] = f"{int(count):,}" if count == count and count is not None else ""
            rows.append(row)
    console.print(summary_table(rows, baseline, f"top trials of experiment {cfg.name!r}"))
    uri = tracker.tracking_uri
    if uri.startswith("sqlite:///"):
        console.print(
            f"Open the MLflow UI:  nox -s ui   (or: mlflow ui --backend-store-uri {uri} "
            "--default-artifact-root mlruns/artifacts)"
        )
    else:
        console.print(f"Open the MLflow UI:  mlflow ui --backend-store-uri {uri}")
