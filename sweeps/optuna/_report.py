"""The Optuna side of ``jena report``: optimisation history, parameter importances and parallel
coordinates (Optuna's matplotlib views), on the sweep's own study when every trial is an Optuna
trial and its storage is reachable, else on a study rebuilt from the trials' ``hp.*`` params, so
that Keras Tuner sweeps get them too. The core (``jena.report``) imports no tuner: ``jena report``
passes :func:`search_plots` as its search hook.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jena import tracking as T
from jena.report import ReportData, SearchPlots, no_warnings, parse_text, pyplot, save
from jena.secrets import password_free
from jena.tracking import finite

from ._study import default_storage, open_storage

PARALLEL_PARAMS = 6  # the parallel-coordinates plot shows this many of the most important params


def study_from_frame(frame: pd.DataFrame, name: str = "from-mlflow") -> Any:
    """An in-memory Optuna study rebuilt from the trials' proposed values (params ``hp.*``):
    completed, pruned and failed trials in start order, with distributions inferred from the
    values seen (numbers: a range, log-scaled when it spans more than two decades)."""
    import optuna
    from optuna.distributions import (
        BaseDistribution,
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )
    from optuna.trial import TrialState, create_trial

    frame = frame.copy()
    columns = [c for c in frame.columns if c.startswith("params.hp.")]
    for column in columns:
        # a value a driver did not propose (fixed, or its default) is the trial's actual one
        actual = "params." + column.removeprefix("params.hp.")
        if actual in frame.columns:
            frame[column] = frame[column].where(frame[column].notna(), frame[actual])
    dists: dict[str, BaseDistribution] = {}
    for column in columns:
        name_ = column.removeprefix("params.hp.")
        values = [parse_text(v) for v in frame[column].dropna()]
        if not values:
            continue
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if numeric:
            lo, hi = float(min(values)), float(max(values))
            log = lo > 0 and hi / lo > 100
            if all(isinstance(v, int) for v in values):
                dists[name_] = IntDistribution(int(lo), int(hi), log=log)
            else:
                dists[name_] = FloatDistribution(lo, hi, log=log)
        else:
            dists[name_] = CategoricalDistribution(sorted({str(v) for v in values}))
    study = optuna.create_study(study_name=name, direction="minimize")
    states = {
        "completed": TrialState.COMPLETE,
        "stopped": TrialState.COMPLETE,  # a candidate at its best epoch, as the leaderboard
        "pruned": TrialState.PRUNED,
        "failed": TrialState.FAIL,
    }
    for row in frame.sort_values("start_time", kind="stable").to_dict("records"):
        state = states.get(str(row.get("state")))
        if state is None:
            continue
        value = finite(row.get("val_mae"))
        if state == TrialState.COMPLETE and value is None:
            continue
        params: dict[str, Any] = {}
        for column in columns:
            name_ = column.removeprefix("params.hp.")
            raw = row.get(column)
            if name_ not in dists or raw is None or (isinstance(raw, float) and math.isnan(raw)):
                continue
            v = parse_text(raw)
            params[name_] = str(v) if isinstance(dists[name_], CategoricalDistribution) else v
        if state == TrialState.FAIL:
            params = {}
        study.add_trial(
            create_trial(
                state=state,
                value=value if state == TrialState.COMPLETE else None,
                params=params,
                distributions={k: dists[k] for k in params},
            )
        )
    return study


def _study(data: ReportData, storage: str | None) -> tuple[Any | None, str]:
    """(study, where it came from): the sweep's own study if it covers every trial, else a
    study rebuilt from MLflow."""
    import optuna

    frame, experiment = data.frame, data.experiment
    drivers = set(frame["driver"].dropna())
    reason = ""
    if drivers == {"optuna"}:
        url = storage or _storage_of(data) or default_storage(experiment)
        try:
            opened = open_storage(url, create=False)
            study = (
                None if opened is None else optuna.load_study(study_name=experiment, storage=opened)
            )
        except Exception as exc:  # unreachable, missing, another name
            reason = f"the Optuna study at {url} is not reachable ({type(exc).__name__}: {exc})"
        else:
            if study is not None:
                return study, f"Optuna study {experiment!r} ({url})"
            reason = f"no Optuna study at {url}"
    else:
        reason = "the sweep ran with " + ", ".join(sorted(drivers)) if drivers else "no driver"
    try:
        return study_from_frame(frame, experiment), (
            f"rebuilt from the MLflow trials ({reason})" if reason else "rebuilt from MLflow"
        )
    except Exception as exc:
        return None, f"no study ({type(exc).__name__}: {exc})"


def _storage_of(data: ReportData) -> str | None:
    """The ``[storage].optuna`` of the sweep definition logged on the latest parent run (logged
    without its password: the database's client finds it the usual way, ``PGPASSWORD``)."""
    if data.parent is None:
        return None
    definition = T.sweep_definition(data.uri, data.parent.run_id) or {}
    value = (definition.get("storage") or {}).get("optuna")
    return password_free(str(value)) if value else None


def _figure(
    draw: Callable[..., Any], study: Any, path: Path, size: tuple[float, float], **kwargs: Any
) -> Path:
    plt = pyplot()
    from matplotlib.collections import LineCollection
    from matplotlib.ticker import MaxNLocator

    if len(study.directions) > 1:
        kwargs.setdefault("target", lambda t: t.values[0])
    kwargs.setdefault("target_name", "val MAE (°C)")
    # Optuna switches the global style to ggplot: keep that inside this figure.
    with plt.style.context("default"), no_warnings():
        ax = draw(study, **kwargs)
        axes = ax if isinstance(ax, np.ndarray) else np.array([ax])
        fig = axes.flat[0].figure
        fig.set_size_inches(*size)
        for a in fig.axes:
            if a.get_xlabel() == "Trial":
                a.xaxis.set_major_locator(MaxNLocator(integer=True))
            for collection in a.collections:
                if isinstance(collection, LineCollection):  # parallel coordinates
                    collection.set_cmap("viridis")
                    collection.set_linewidth(2)
        return save(fig, path)


def important(study: Any, count: int) -> list[str] | None:
    """The ``count`` most important parameters (Optuna's default evaluator), or None (all) when
    importances cannot be computed yet."""
    import optuna

    try:
        with no_warnings():  # "too few trials in some regimes": the ranking is all we need
            ranked = optuna.importance.get_param_importances(
                study, target=(lambda t: t.values[0]) if len(study.directions) > 1 else None
            )
    except Exception:  # too few trials, no parameter varies
        return None
    return list(ranked)[:count] or None


def search_plots(data: ReportData, folder: Path, storage: str | None = None) -> SearchPlots:
    """The report's search section: three figures drawn from the sweep's study."""
    import optuna
    from optuna.visualization import matplotlib as ovm

    study, origin = _study(data, storage)
    plots = SearchPlots(origin)
    if study is None:
        plots.notes.append("No study: no optimisation history or importances.")
        return plots
    if not any(t.state.name == "COMPLETE" for t in study.trials):
        plots.notes.append("no completed trial in the study: no search plots")
        return plots
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # "too few trials" chatter
    try:
        for name, draw, size, caption, kwargs in (
            ("optimisation_history.png", ovm.plot_optimization_history, (9, 4.5),
             "Optimisation history: validation MAE of each trial and the best so far.", {}),
            ("param_importances.png", ovm.plot_param_importances, (8, 4),
             "Hyperparameter importances for the validation MAE (Optuna's default evaluator).",
             {}),
            ("parallel_coordinates.png", ovm.plot_parallel_coordinate, (11, 5),
             "Parallel coordinates of the most important hyperparameters: each line a "
             "completed trial, coloured by validation MAE.",
             {"params": important(study, PARALLEL_PARAMS)}),
        ):  # fmt: skip
            try:
                path = _figure(draw, study, folder / name, size, **kwargs)
                plots.figures.append((path, name.removesuffix(".png"), caption))
            except Exception as exc:  # too few trials, no varying parameter, ...
                what = name.removesuffix(".png").replace("_", " ")
                plots.notes.append(f"{what}: not drawn ({exc})")
                pyplot().close("all")
    finally:
        optuna.logging.set_verbosity(verbosity)
    return plots
