"""The one look at the test split: pick a sweep's best model, evaluate it, register it.

``jena best`` runs the refit (:func:`jena.refit.refit`: all the training), then hands its
result to :func:`evaluate_best`, which trains nothing:

1. the champion is the refit's selected configuration (its seed models averaged), or with
   ``--no-refit`` the best candidate of an experiment by validation MAE — a *completed* trial,
   or one its time budget stopped after a finished epoch — over every driver and every
   invocation of the sweep (:func:`jena.tracking.select_best`); pruned, failed and killed
   trials never win;
2. downloads its model and data configuration (:func:`jena.tracking.load_trial_model`), reloads
   the record it was trained on (the run's ``data_source`` tag, or ``--data``) and refuses data
   whose digest differs from the run's ``data_digest`` tag;
3. rebuilds the test windows with the trial's preset, sampling rate, sequence length and feature
   flags, normalised with the statistics stored with the model (checked against the ones
   recomputed from the training rows), and computes the model's and the persistence baseline's
   MAE in °C on the same windows;
4. records the evaluation on the trial's run (:func:`jena.tracking.log_test_evaluation`):
   metrics ``test_mae``, ``test_skill``, ``baseline_test_mae``, ``test_windows`` and
   ``test_evaluations`` (step = evaluation number), tags ``test_evaluations`` (count) and
   ``test_evaluated_at`` (JSON list of UTC timestamps), and the artifact
   ``test_predictions.csv`` (the report plots it, so the report never reads test rows itself).
   Evaluating the same run again is allowed but is announced as what it is: the test figure
   stops being an unbiased estimate once it has guided a decision;
5. registers the model's pyfunc (:func:`jena.tracking.register_model`, default
   ``jena-temperature`` with alias ``champion``), so that ``models:/jena-temperature@champion``
   carries everything ``jena predict`` needs.

Evidence, not a point estimate, decides (:mod:`jena.uncertainty`): the champion's validation
and test MAE and skill carry 95 % intervals from a day-block bootstrap, and a Diebold–Mariano
test against persistence; the linear reference (:mod:`jena.linear`, ridge fitted on the training
windows) is compared on the same windows. The champion is promoted only if it beats persistence
on validation with a skill interval that excludes zero (:class:`NotBetterThanPersistence`
otherwise, before the test split is looked at; ``--force`` overrides and says so). A champion
worse than persistence on test is said plainly (:attr:`Evaluation.test_verdict`), recorded in
the run's ``evaluation.json`` and tagged on the registered version
(``worse_than_persistence_on_test``). Run metrics added: ``champion_val_mae_low/high``,
``champion_val_skill_low/high``, ``test_mae_low/high``, ``test_skill_low/high``, ``val_dm_stat``,
``val_dm_pvalue``, ``test_dm_stat``, ``test_dm_pvalue``, ``ridge_val_mae``, ``ridge_test_mae``,
``val_skill_vs_ridge`` and ``test_skill_vs_ridge`` (each with ``_low/_high``).

Intervals (:mod:`jena.conformal`, :mod:`jena.coverage`): the champion, the ridge and
persistence are each calibrated on their residuals over the full validation split (the
champion's windows), at the levels of ``--level`` or the sweep's ``[champion] interval_level``
(default 90 %); the look at the test split checks their coverage (95 % day-block interval), mean
width and coverage by season on the same windows. The champion's calibration is stored in its
registered model's data configuration, so every forecast of it carries its interval. Run
metrics added: ``interval_level``, ``interval_coverage`` (``_low/_high``), ``interval_width``,
``interval_coverage_<season>``, ``ridge_interval_coverage``, ``ridge_interval_width``,
``persistence_interval_coverage``, ``persistence_interval_width`` (a further level: the same
with ``_<level>``, e.g. ``interval_coverage_80``); tags ``interval_coverage`` and
``interval_off_nominal`` on the run and the version.

Only this module (and ``jena baseline``) ever asks :func:`jena.prepare.prepare` for test rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from . import tracking as T
from .config import TrialConfig
from .conformal import DEFAULT_LEVELS, Calibration, CalibrationError, calibrate, parse_levels
from .coverage import IntervalCheck, coverage
from .data import Dataset
from .errors import ConfigError, JenaError
from .evaluation import Evaluation, seeds_phrase
from .linear import Ridge, shared_ridge
from .prepare import Prepared, feature_matrix, prepare
from .refit import RefitResult, sweep_dataset
from .serve import ProjectForecaster
from .splits import Split
from .tracking import names as N
from .uncertainty import Comparison, compare, day_of

__all__ = ["Evaluation", "NotBetterThanPersistence", "evaluate_best"]


class NotBetterThanPersistence(JenaError):
    """The sweep's best model does not beat persistence on validation with a skill interval
    that excludes zero: it is not promoted (and the test split is not looked at) unless the user
    insists (``--force``)."""


STATS_RTOL = 1e-9


def _check_stats(prepared: Prepared, cfg: Mapping[str, Any], dataset: Dataset) -> Prepared:
    """The stored normalisation must be the training rows' statistics; use the stored ones."""
    mean = np.asarray(cfg["mean"], dtype=np.float64)
    std = np.asarray(cfg["std"], dtype=np.float64)
    if prepared.feature_names != list(cfg["feature_names"]):
        raise ConfigError(
            f"the model's features {cfg['feature_names']} differ from the data's "
            f"{prepared.feature_names}"
        )
    if prepared.bounds.to_dict() != {k: list(v) for k, v in cfg["bounds"].items()}:
        raise ConfigError(
            f"the split bounds of the data {prepared.bounds.to_dict()} differ from the model's "
            f"{cfg['bounds']}"
        )
    if not (
        np.allclose(prepared.mean, mean, rtol=STATS_RTOL, atol=0)
        and np.allclose(prepared.std, std, rtol=STATS_RTOL, atol=0)
    ):
        worst = int(np.argmax(np.abs(prepared.mean - mean) + np.abs(prepared.std - std)))
        raise ConfigError(
            "the normalisation statistics stored with the model differ from the training rows' "
            f"(feature {prepared.feature_names[worst]!r}: mean {mean[worst]:.6g} vs "
            f"{prepared.mean[worst]:.6g}): the model was not trained on this data"
        )
    values, _ = feature_matrix(
        dataset.frame.iloc[: len(prepared.x)],
        wind_vector=prepared.wind_vector,
        time_features=prepared.time_features,
    )
    x = ((values - mean) / std).astype(np.float32)
    return dataclasses.replace(prepared, x=x, mean=mean, std=std, _target_cache={})


@dataclass
class WindowPredictions:
    """The test windows' targets and forecasts (°C), aligned by window."""

    time: pd.DatetimeIndex  # target times
    actual: np.ndarray
    forecast: np.ndarray  # the members' mean
    persistence: np.ndarray
    members: np.ndarray | None = None  # (members, windows): each member's forecasts
    rows: np.ndarray | None = None  # target rows (of the record)

    def member_mae(self) -> list[float]:
        members = self.members if self.members is not None else self.forecast[None, :]
        return [float(np.mean(np.abs(m - self.actual))) for m in members]

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "time": self.time.strftime("%Y-%m-%d %H:%M:%S"),
                "actual": np.round(self.actual, 4),
                "forecast": np.round(self.forecast, 4),
                "persistence": np.round(self.persistence, 4),
            }
        )


def predict_split(
    forecaster: ProjectForecaster, prepared: Prepared, frame_index: pd.DatetimeIndex,
    split: Split = "test", frame: pd.DataFrame | None = None,
) -> WindowPredictions:  # fmt: skip
    """Run every member on every window of ``split`` (test: ``prepared`` must hold the test
    rows; every forecaster is scored on the split's targets). ``frame``: the record, which a
    ``residual = "ridge"`` model's ridge reads."""
    r, n = forecaster.sampling_rate, forecaster.sequence_length
    if prepared.preset.offset(r, n) != forecaster.offset:
        raise ConfigError(
            f"the model's target offset {forecaster.offset} differs from the preset's "
            f"{prepared.preset.offset(r, n)}"
        )
    starts = prepared.starts(split, r, n)
    windows = prepared.windows(
        split, sampling_rate=r, sequence_length=n, batch_size=forecaster.batch_size
    )
    base = None
    if forecaster.ridge is not None:
        if frame is None:
            raise ValueError("a residual = 'ridge' model needs the record (frame) to forecast")
        base = forecaster.ridge_forecasts(frame, starts + forecaster.span)
    members = forecaster.predict_members(windows, base)  # (members, windows)
    if members.shape[1] != len(starts):
        raise RuntimeError(f"{members.shape[1]} forecasts for {len(starts)} {split} windows")
    return WindowPredictions(
        time=pd.DatetimeIndex(frame_index[starts + forecaster.offset]),
        actual=prepared.temperature[starts + forecaster.offset],
        forecast=members.mean(axis=0),
        persistence=prepared.temperature[starts + forecaster.span],
        members=members,
        rows=starts + forecaster.offset,
    )


def predict_test(
    forecaster: ProjectForecaster, prepared: Prepared, frame_index: pd.DatetimeIndex,
    frame: pd.DataFrame | None = None,
) -> WindowPredictions:  # fmt: skip
    """Run the model(s) on every test window of ``prepared`` (which must hold the test rows)."""
    return predict_split(forecaster, prepared, frame_index, "test", frame)


def versus(
    pred: WindowPredictions, prepared: Prepared, ridge: Ridge | None
) -> tuple[Comparison, Comparison | None]:
    """The forecasts against persistence and against the linear reference (on the windows it
    can forecast: its 24 h of inputs loaded and trusted), with intervals and the DM test."""
    assert pred.rows is not None
    days = day_of(pred.rows)
    error = pred.forecast - pred.actual
    vs_persistence = compare(error, pred.persistence - pred.actual, days)
    if ridge is None:
        return vs_persistence, None
    last = pred.rows - ridge.horizon
    ok = ridge.available(prepared, last)
    if not ok.any():
        return vs_persistence, None
    reference = ridge.predict(prepared, last[ok]) - pred.actual[ok]
    return vs_persistence, compare(error[ok], reference, days[ok])


def gate(experiment: str, what: str, evidence: Comparison, force: bool) -> bool:
    """Whether the champion is promoted on evidence (its validation skill interval excludes
    zero); otherwise :class:`NotBetterThanPersistence` unless ``force`` (then False)."""
    if evidence.beats_reference:
        return True
    if force:
        return False
    c = evidence
    found = (
        "has not yet found a model better than persistence"
        if c.skill.estimate <= 0
        else "has a champion that cannot be told apart from persistence"
    )
    raise NotBetterThanPersistence(
        f"sweep {experiment!r} {found}: {what} has validation MAE {c.mae.estimate:.4f} °C "
        f"against persistence {c.reference_mae.estimate:.4f} °C on the same {c.windows:,} "
        f"validation targets, skill "
        f"{c.skill.estimate:+.1%} with a 95 % interval of [{c.skill.low:+.1%}, "
        f"{c.skill.high:+.1%}] ({c.days} days, DM p = {c.dm.p_value:.2g}); the interval "
        "must exclude zero. Nothing was evaluated on the test split and nothing registered. "
        "Run more trials (jena sweep NAME --trials N), start from the book's models "
        "(--warm-start book), give trials more fidelity, or use a season-aware split "
        "(--preset blocked) on a short record; --force evaluates and registers it anyway"
    )


def _other_evaluations(frame: pd.DataFrame, run_id: str) -> int:
    others = 0
    for _, row in frame.iterrows():
        count = row.get(f"tags.{N.TAG_TEST_COUNT}")
        if row["run_id"] != run_id and isinstance(count, str) and count.isdigit():
            others += int(count)
    return others


def _test_data(cfg: Mapping[str, Any], dataset: Dataset) -> tuple[Prepared, pd.DatetimeIndex]:
    prepared = prepare(
        dataset,
        str(cfg["preset"]),
        wind_vector=bool(cfg.get("wind_vector", False)),
        time_features=bool(cfg.get("time_features", False)),
        include_test=True,
    )
    return _check_stats(prepared, cfg, dataset), pd.DatetimeIndex(dataset.frame.index)


def interval_levels(uri: str, experiment: str) -> tuple[float, ...]:
    """``[champion] interval_level`` of the sweep's latest invocation (default 90 %)."""
    parents = T.sweep_runs(uri, experiment)
    definition = (T.sweep_definition(uri, parents[0].run_id) if parents else None) or {}
    value = (definition.get("champion") or {}).get("interval_level")
    if value is None:
        return DEFAULT_LEVELS
    try:
        return parse_levels(value, "[champion].interval_level")
    except CalibrationError as exc:
        raise ConfigError(str(exc)) from None


def _interval_check(
    levels: Sequence[float], val: WindowPredictions, test: WindowPredictions,
    prepared: Prepared, ridge: Ridge | None,
) -> tuple[Calibration, IntervalCheck]:  # fmt: skip
    """Calibrate the champion, the ridge and persistence on their validation residuals (the
    champion's windows; the ridge's where it can forecast) and check them on the same test
    windows: those the ridge can forecast too (all, nearly always)."""
    assert val.rows is not None and test.rows is not None
    val_sets = {"champion": (val.forecast, np.ones(len(val.actual), bool)),
                "persistence": (val.persistence, np.ones(len(val.actual), bool))}  # fmt: skip
    test_sets = {"champion": test.forecast, "persistence": test.persistence}
    common = np.ones(len(test.actual), dtype=bool)
    if ridge is not None:
        ok = ridge.available(prepared, val.rows - ridge.horizon)
        common = ridge.available(prepared, test.rows - ridge.horizon)
        if ok.sum() and common.any():
            forecast = np.full(len(val.actual), np.nan)
            forecast[ok] = ridge.predict(prepared, val.rows[ok] - ridge.horizon)
            val_sets["ridge"] = (forecast, ok)
            forecast = np.full(len(test.actual), np.nan)
            forecast[common] = ridge.predict(prepared, test.rows[common] - ridge.horizon)
            test_sets["ridge"] = forecast
        else:
            common[:] = True
    days = day_of(test.rows)[common]
    champion = None
    check = IntervalCheck(tuple(levels), "")
    for name in ("champion", "ridge", "persistence"):
        if name not in test_sets:
            continue
        forecast, ok = val_sets[name]
        try:
            cal = calibrate(val.time[ok], forecast[ok], val.actual[ok], levels)
        except CalibrationError as exc:
            raise ConfigError(f"the {name}'s interval: {exc}") from None
        champion = champion or cal
        check.results += coverage(name, cal, test.time[common], test_sets[name][common],
                                  test.actual[common], days)  # fmt: skip
    assert champion is not None
    check.calibration = champion.describe()
    return champion, check


def _calibrated(cfg: Mapping[str, Any], look: _Look) -> dict[str, Any]:
    """The data configuration the registered model carries: with the champion's calibration."""
    return {**cfg, "calibration": look.calibration.to_dict()}


def _record_and_register(
    ev: Evaluation,
    result: WindowPredictions,
    cfg: Mapping[str, Any],
    uri: str,
    *,
    register_name: str | None,
    alias: str,
    members: list[str] | None,
    description: str,
) -> Evaluation:
    """Record the look on ``ev.run_id`` (metrics, the predictions, the summary) and register
    the champion's pyfunc (unless ``register_name`` is None)."""
    T.log_test_evaluation(uri, ev.run_id, evaluation=ev.evaluation,
                          when=datetime.now(UTC).replace(microsecond=0), previous=ev.previous,
                          metrics=_test_metrics(ev), data_source=ev.data_source,
                          predictions=_with_bands(result, cfg), summary=ev.to_dict(),
                          tags=ev.interval_tags())  # fmt: skip
    if register_name:
        version = T.register_model(uri, ev.run_id, cfg, name=register_name, alias=alias,
                                   description=description, members=members,
                                   version_tags=_version_tags(ev, members))  # fmt: skip
        ev.registered_model, ev.version = register_name, version
        ev.alias, ev.model_uri = alias, f"models:/{register_name}@{alias}"
    return ev


def _with_bands(result: WindowPredictions, cfg: Mapping[str, Any]) -> pd.DataFrame:
    """The test predictions with the champion's interval at its main level (``low``, ``high``):
    what the report draws."""
    frame = result.frame()
    stored = cfg.get("calibration")
    if stored:
        cal = Calibration.from_dict(stored)
        lows, highs = cal.bounds(result.time, result.forecast)
        frame["low"], frame["high"] = np.round(lows[0], 4), np.round(highs[0], 4)
        frame["level"] = cal.level
    return frame


def _test_metrics(ev: Evaluation) -> dict[str, float]:
    metrics = {
        N.METRIC_TEST_MAE: ev.test_mae,
        N.METRIC_BASELINE_TEST: ev.baseline_test_mae,
        N.METRIC_TEST_WINDOWS: float(ev.test_windows),
        N.METRIC_TEST_SKILL: ev.test_skill,
        N.METRIC_CHAMPION_VAL: ev.val_mae,
    }
    if ev.val_skill is not None:
        metrics[N.METRIC_CHAMPION_VAL_SKILL] = ev.val_skill
    metrics |= ev.interval_metrics()
    for member in ev.members:
        metrics[f"{N.METRIC_TEST_MAE}_seed{member['seed']}"] = member["test_mae"]
    if ev.best_val_member_test_mae is not None:
        metrics[f"{N.METRIC_TEST_MAE}_best_val_seed"] = ev.best_val_member_test_mae
    return metrics


def _version_tags(ev: Evaluation, members: list[str] | None) -> dict[str, Any]:
    """What the registered version says of itself: the figures, the evidence, the verdict."""
    val, test, ridge = ev.val_vs_persistence, ev.test_vs_persistence, ev.test_vs_ridge
    return {
        "experiment": ev.experiment,
        "kind": ev.kind,
        "trial": ev.trial,
        "label": ev.label,
        "architecture": ev.architecture,
        "members": len(members or [ev.run_id]),
        "val_mae": f"{ev.val_mae:.4f}",
        "test_mae": f"{ev.test_mae:.4f}",
        "baseline_test_mae": f"{ev.baseline_test_mae:.4f}",
        "data_digest": ev.data_digest,
        "beats_persistence_on_val": str(bool(val and val.beats_reference)).lower(),
        "promoted_on": "force" if ev.forced else "evidence",
        "val_skill_interval": val.skill.text("+.2%") if val else "",
        "test_skill_interval": test.skill.text("+.2%") if test else "",
        "worse_than_persistence_on_test": str(ev.worse_than_persistence_on_test).lower(),
        "ridge_test_mae": f"{ridge.reference_mae.estimate:.4f}" if ridge else "",
        "val_skill_vs_ridge_interval": ev.val_vs_ridge.skill.text("+.2%")
        if ev.val_vs_ridge
        else "",
        "test_skill_vs_ridge_interval": ridge.skill.text("+.2%") if ridge else "",
        "against_ridge": "; ".join(ev.ridge_verdicts)
        if ev.ridge_verdicts
        else (ev.ridge_note or ""),
    } | ev.interval_tags()


def evaluate_best(
    experiment: str,
    refitted: RefitResult | None,
    *,
    tracking_uri: str | None = None,
    data: str | None = None,
    register_name: str | None = N.REGISTERED_NAME,
    alias: str = N.ALIAS,
    dataset: Dataset | None = None,
    force: bool = False,
    levels: Sequence[float] | None = None,
) -> Evaluation:
    """Evaluate a sweep's champion once on the test split (see the module docstring) and
    register it; nothing is trained here. ``refitted``: the refit's result
    (:func:`jena.refit.refit`, which ``jena best`` runs first): the champion is its selected
    configuration, its seed models averaged; None (``--no-refit``): the best low-fidelity
    trial's own model. A champion whose validation skill interval does not exclude zero raises
    :class:`NotBetterThanPersistence` before the test split is read, unless ``force``.
    ``dataset`` skips loading (tests); ``register_name=None`` skips the registry. ``levels``:
    the intervals' (default: the sweep's ``[champion] interval_level``, else 90 %)."""
    uri = T.resolve_uri(tracking_uri)
    levels = parse_levels(list(levels)) if levels else interval_levels(uri, experiment)
    if refitted is None:
        return _evaluate_trial(experiment, uri, data, register_name, alias, dataset, force,
                               levels)  # fmt: skip
    status = refitted
    chosen = status.selected
    members = chosen.members
    forecaster, cfg = _champion(uri, [m.run_id for m in members])
    first = T.get_run(uri, members[0].run_id)
    dataset = sweep_dataset(first.tags, cfg, data=data, dataset=dataset,
                            who=f"refit run {members[0].run_id}")  # fmt: skip
    prepared, index = _test_data(cfg, dataset)
    what = f"its refit champion ({chosen.candidate.label}, {seeds_phrase(len(members))})"
    plain = plain_of(prepared, dataset)
    on_val = predict_split(forecaster, prepared, index, "val", dataset.frame)
    lost = ridge_beats(on_val, plain)
    if lost is not None:
        return _evaluate_ridge(experiment, uri, dataset, str(cfg["preset"]),
                               f"the refit's best, {chosen.candidate.label}", lost, force,
                               levels, register_name, alias)  # fmt: skip
    look = _evidence_then_look(experiment, what, forecaster, prepared, index, force, levels,
                               dataset.frame, plain=plain, on_val=on_val)  # fmt: skip
    record = status.stage_run_id or latest_refit_run(uri, experiment)
    ev = _refit_evaluation(experiment, uri, record, status, look, dataset)
    return _record_and_register(
        ev, look.result, _calibrated(cfg, look), uri, register_name=register_name, alias=alias,
        members=[m.run_id for m in members],
        description=f"{chosen.candidate.label} of {experiment}: {seeds_phrase(len(members))}",
    )  # fmt: skip


def _champion(uri: str, run_ids: list[str]) -> tuple[ProjectForecaster, dict[str, Any]]:
    """The models of ``run_ids`` as one forecaster (their mean), and their data config."""
    loaded = [T.load_trial_model(uri, run_id) for run_id in run_ids]
    return ProjectForecaster([m for m, _ in loaded], loaded[0][1]), loaded[0][1]


def _refit_evaluation(
    experiment: str, uri: str, record: str, status: RefitResult, look: _Look, dataset: Dataset
) -> Evaluation:
    """What one look at the test split says of the refit's selected configuration: its seeds
    averaged, each seed, the intervals, recorded on the refit run ``record``."""
    chosen = status.selected
    members = chosen.members
    val = look.val_vs_persistence  # the champion, as one forecaster, on the full split
    previous = T.previous_test_evaluations(T.get_run(uri, record).tags)
    per_member = look.result.member_mae()
    best_seed = chosen.best_member().seed
    member_rows = [
        {"seed": m.seed, "run_id": m.run_id, "val_mae": m.val_mae, "test_mae": mae}
        for m, mae in zip(members, per_member, strict=True)
    ]
    return Evaluation(
        experiment=experiment, run_id=record, trial=chosen.candidate.source_trial, driver=None,
        architecture=chosen.candidate.config.architecture, val_mae=val.mae.estimate,
        baseline_val_mae=val.reference_mae.estimate, test_mae=look.test_mae,
        baseline_test_mae=look.baseline, test_windows=look.windows,
        data_source=dataset.source, data_digest=dataset.digest, evaluation=len(previous) + 1,
        kind="refit", label=chosen.candidate.label, val_skill=val.skill.estimate,
        members=member_rows,
        best_val_member_test_mae=per_member[[m.seed for m in members].index(best_seed)],
        previous=previous,
        other_runs_evaluated=_other_evaluations(T.trials_frame(uri, experiment), record),
        **look.comparisons(), seeds_note=status.seeds_note, intervals=look.intervals,
        refit_outcome=status.outcome_text() if status.stage_run_id else None,
    )  # fmt: skip


@dataclass
class _Look:
    """The evidence on validation, then the one look at the test split."""

    result: WindowPredictions
    test_mae: float
    baseline: float
    windows: int
    val_vs_persistence: Comparison
    val_vs_ridge: Comparison | None
    test_vs_persistence: Comparison
    test_vs_ridge: Comparison | None
    forced: bool
    calibration: Calibration  # the champion's, on its validation residuals
    intervals: IntervalCheck  # the champion's, the ridge's and persistence's, on test

    def comparisons(self) -> dict[str, Any]:
        """The Evaluation fields it fills."""
        keys = ("val_vs_persistence", "val_vs_ridge", "test_vs_persistence", "test_vs_ridge")
        return {k: getattr(self, k) for k in keys} | {"forced": self.forced}


def plain_of(prepared: Prepared, dataset: Dataset) -> Prepared:
    """``prepared``'s record with its plain columns (what the linear reference reads), test
    rows included: ``prepared`` itself when it has no extra features."""
    if not (prepared.wind_vector or prepared.time_features):
        return prepared
    return prepare(dataset, prepared.preset, include_test=True)


def the_ridge(plain: Prepared) -> Ridge | None:
    """The linear reference every figure of ``jena best`` compares with: the sweep's (fitted on
    the plain record's training windows), or None when the preset's own window does not fit
    the record's training split."""
    try:
        return shared_ridge(plain)
    except ConfigError:
        return None


def _evidence_then_look(
    experiment: str, what: str, forecaster: ProjectForecaster, prepared: Prepared,
    index: pd.DatetimeIndex, force: bool, levels: Sequence[float],
    frame: pd.DataFrame | None = None, *, plain: Prepared | None = None,
    on_val: WindowPredictions | None = None, itself: bool = False,
) -> _Look:  # fmt: skip
    """The champion on the full validation split against persistence and the linear reference
    (``plain``: the record's plain columns, which the ridge reads; ``itself``: the champion
    is the ridge, so no comparison with it); the gate (:func:`gate`); only then the test split,
    with the intervals calibrated on the validation split (:func:`_interval_check`)."""
    plain = plain if plain is not None else prepared
    ridge = the_ridge(plain)
    compared = None if itself else ridge
    if on_val is None:
        on_val = predict_split(forecaster, prepared, index, "val", frame)
    val = versus(on_val, plain, compared)
    promoted = gate(experiment, what, val[0], force)
    result, test_mae, baseline, windows = _the_look(forecaster, prepared, index, frame)
    test = versus(result, plain, compared)
    calibration, intervals = _interval_check(levels, on_val, result, plain, compared)
    return _Look(result, test_mae, baseline, windows, *val, *test, forced=not promoted,
                 calibration=calibration, intervals=intervals)  # fmt: skip


# The linear reference as a champion: a residual = "ridge" model whose network (one Dense layer
# on a 24-hour window, zeros) adds nothing, so it serves exactly the ridge's forecast through
# the same forecaster and pyfunc as every champion.
RIDGE_CONFIG = TrialConfig(architecture="dense", residual="ridge", sequence_length=24)
RIDGE_LABEL = "ridge (linear reference)"


def ridge_beats(on_val: WindowPredictions, plain: Prepared) -> Comparison | None:
    """The network champion against the ridge on the full validation split (the same targets)
    when the ridge is at least as good there (its MAE not above the network's); else None:
    the network stays the champion."""
    ridge = the_ridge(plain)
    vs = versus(on_val, plain, ridge)[1] if ridge is not None else None
    if vs is None or vs.reference_mae.estimate > vs.mae.estimate:
        return None
    return vs


def _ridge_run(uri: str, experiment: str, model: Any, cfg: Mapping[str, Any],
               val: Comparison) -> str:  # fmt: skip
    """An MLflow run for the ridge champion (run type ``ridge``, under the sweep's latest
    parent run), holding its model as a trial's run does."""
    parents = T.sweep_runs(uri, experiment)
    if not parents:
        raise ConfigError(f"sweep {experiment!r} has no sweep run to file the ridge under")
    tracker = T.Tracker(uri, experiment=experiment)
    params = RIDGE_CONFIG.active_dict()
    with tracker.trial(parents[0].run_id, 0, params, run_name="ridge",
                       run_type=N.RUN_RIDGE) as run:  # fmt: skip
        run.log_model(model, cfg, name="ridge", params=params, step=0)
        run.finish("completed", val_mae=val.mae.estimate, val_skill=val.skill.estimate,
                   param_count=int(model.count_params()))  # fmt: skip
    return run.run_id


def _evaluate_ridge(
    experiment: str, uri: str, dataset: Dataset, preset: str, network: str, lost: Comparison,
    force: bool, levels: Sequence[float], register_name: str | None, alias: str,
) -> Evaluation:  # fmt: skip
    """No network beat the linear reference on validation (``lost``: the best network
    against it): the ridge is the champion — evaluated once on test, recorded and registered
    as every champion is, and said plainly."""
    from .train import DataCache, Fidelity, FitPlan

    plan = FitPlan.of(RIDGE_CONFIG, DataCache(dataset, preset), Fidelity(max_epochs=1))
    model = plan.build(RIDGE_CONFIG)
    cfg = plan.data_config(RIDGE_CONFIG)
    plain = prepare(dataset, preset, include_test=True)
    index = pd.DatetimeIndex(dataset.frame.index)
    note = (
        f"the linear reference is the best forecaster here: the networks did not beat it "
        f"({network}: validation MAE {lost.mae.estimate:.4f} °C against the ridge's "
        f"{lost.reference_mae.estimate:.4f} °C on the same {lost.windows:,} targets, skill "
        f"{lost.skill.text('+.1%')} against it)"
    )
    look = _evidence_then_look(experiment, "the linear reference (ridge)",
                               ProjectForecaster(model, cfg), plain, index, force, levels,
                               dataset.frame, plain=plain, itself=True)  # fmt: skip
    val = look.val_vs_persistence
    run_id = _ridge_run(uri, experiment, model, cfg, val)
    ev = Evaluation(
        experiment=experiment, run_id=run_id, trial=None, driver=None, architecture=RIDGE_LABEL,
        val_mae=val.mae.estimate, baseline_val_mae=val.reference_mae.estimate,
        test_mae=look.test_mae, baseline_test_mae=look.baseline, test_windows=look.windows,
        data_source=dataset.source, data_digest=dataset.digest, evaluation=1, kind="ridge",
        label="ridge", val_skill=val.skill.estimate, **look.comparisons(),
        intervals=look.intervals, ridge_note=note,
    )  # fmt: skip
    return _record_and_register(
        ev, look.result, _calibrated(cfg, look), uri, register_name=register_name, alias=alias,
        members=None, description=f"the linear reference (ridge) of {experiment}: no network "
        "beat it on validation",
    )  # fmt: skip


def _the_look(
    forecaster: ProjectForecaster, prepared: Prepared, index: pd.DatetimeIndex,
    frame: pd.DataFrame | None = None,
) -> tuple[WindowPredictions, float, float, int]:  # fmt: skip
    """The one pass over the test windows: (predictions, test MAE, persistence test MAE on the
    same windows, windows)."""
    result = predict_test(forecaster, prepared, index, frame)
    test_mae = float(np.mean(np.abs(result.forecast - result.actual)))
    baseline, windows = prepared.persistence_mae(
        "test", forecaster.sampling_rate, forecaster.sequence_length
    )
    return result, test_mae, baseline, windows


def latest_refit_run(tracking_uri: str, experiment: str) -> str:
    runs = T.find_runs(tracking_uri, experiment, f"tags.{N.TAG_RUN_TYPE} = '{N.RUN_REFIT}'")
    if not runs:
        raise ConfigError(f"sweep {experiment!r} has no refit run yet: run `jena refit` first")
    return max(runs, key=lambda r: r.start_time or 0).run_id


def _evaluate_trial(
    experiment: str, uri: str, data: str | None, register_name: str | None, alias: str,
    dataset: Dataset | None, force: bool, levels: Sequence[float],
) -> Evaluation:  # fmt: skip
    """``--no-refit``: the best candidate trial's own (low-fidelity) model."""
    frame = T.trials_frame(uri, experiment)
    best = T.select_best(frame)
    run_id = str(best["run_id"])
    run = T.get_run(uri, run_id)
    model, cfg = T.load_trial_model(uri, run_id)
    forecaster = ProjectForecaster(model, cfg)
    dataset = sweep_dataset(run.tags, cfg, data=data, dataset=dataset,
                            who=f"trial {best['number']}")  # fmt: skip
    prepared, index = _test_data(cfg, dataset)
    what = f"its best trial {best['number']} ({T.label(best.to_dict())})"
    plain = plain_of(prepared, dataset)
    on_val = predict_split(forecaster, prepared, index, "val", dataset.frame)
    lost = ridge_beats(on_val, plain)
    if lost is not None:
        return _evaluate_ridge(experiment, uri, dataset, str(cfg["preset"]),
                               f"the best trial, {best['number']}", lost, force, levels,
                               register_name, alias)  # fmt: skip
    look = _evidence_then_look(experiment, what, forecaster, prepared, index, force, levels,
                               dataset.frame, plain=plain, on_val=on_val)  # fmt: skip
    result, test_mae, baseline, windows = look.result, look.test_mae, look.baseline, look.windows
    previous = T.previous_test_evaluations(run.tags)
    ev = Evaluation(
        experiment=experiment,
        run_id=run_id,
        trial=None if pd.isna(best["number"]) else int(best["number"]),
        driver=best.get("driver") if isinstance(best.get("driver"), str) else None,
        architecture=T.label(best.to_dict()),
        val_mae=float(best["val_mae"]),
        baseline_val_mae=T.finite(run.metrics.get(N.METRIC_BASELINE_VAL)),
        test_mae=test_mae,
        baseline_test_mae=baseline,
        test_windows=windows,
        data_source=dataset.source,
        data_digest=dataset.digest,
        evaluation=len(previous) + 1,
        label=str(best.get("run_name") or ""),
        val_skill=T.finite(best.get("val_skill")),  # the trial's own (its validation subset)
        previous=previous,
        other_runs_evaluated=_other_evaluations(frame, run_id),
        **look.comparisons(),
        intervals=look.intervals,
    )
    return _record_and_register(
        ev, result, _calibrated(cfg, look), uri, register_name=register_name, alias=alias,
        members=None, description=f"trial {ev.trial} of {experiment}",
    )  # fmt: skip
