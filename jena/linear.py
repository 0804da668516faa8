"""The linear reference beside persistence: ridge regression on the window's last 24 hours.

A deep model that cannot beat a linear one has not earned its cost. The reference is fitted in
closed form (numpy only, seconds) on the training windows of a :class:`~jena.prepare.Prepared`
record and predicts the *change* of temperature from the window's last row to its target (so
with no signal it stays persistence):

* features: the normalised inputs (all the record's columns) at the last 24 hourly points of the
  window (rows ``e − 138, e − 132, …, e``, ``e`` the last input row), plus sin/cos of the time of
  day and of the year at the target time — 24 × 14 + 4 = 340 with the plain columns;
* target: ``T(target) − T(e)`` in °C; forecast: ``T(e)`` + the predicted change;
* ridge: ``(X'X + αI) β = X'y`` on centred columns (the intercept is not penalised), α =
  :data:`ALPHA` = 2,000 (the features are normalised): on synthetic records of 1, 2 and 8 years,
  book2 and blocked, validation skill was flat for α between 1,000 and 3,000 and fell away
  below 300 on one year (the penalty is fixed, not per window: a longer record is trusted
  more). X'X is accumulated in chunks: every training window counts, memory stays small.

:func:`ridge_reference` fits it on the preset's training windows and compares it with
persistence on the preset's validation windows, with a day-block interval
(:mod:`jena.uncertainty`): what a sweep shows at its start and ``jena baseline`` prints.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .forecasting import SECONDS_PER_DAY, SECONDS_PER_YEAR, RidgeRecipe, epoch_seconds
from .prepare import Prepared
from .splits import Split
from .tracking import names
from .uncertainty import Comparison, compare, day_of

HOURS = 24  # of history the reference sees
STEP = 6  # rows between its points: hourly
ALPHA = 2000.0  # the ridge penalty (see the module docstring)
CHUNK = 8192  # windows per block of X'X


@dataclass(frozen=True)
class Ridge:
    """A fitted reference: coefficients over (24 hourly points × features, 4 time cycles)."""

    coef: np.ndarray  # (HOURS * features + 4,)
    intercept: float
    mean: np.ndarray  # the training features' means (the columns are centred)
    alpha: float
    horizon: int  # rows from the last input row to the target
    windows: int  # training windows fitted on
    fit_s: float

    def features(self, prepared: Prepared, last: np.ndarray) -> np.ndarray:
        """The reference's inputs for windows whose last input row is ``last``.  # (w, p)"""
        rows = last[:, None] + np.arange(-(HOURS - 1) * STEP, 1, STEP)  # (w, 24)
        x = prepared.x[rows].reshape(len(last), -1).astype(np.float64)
        return np.hstack([x, cycles(prepared, last + self.horizon)])

    def available(self, prepared: Prepared, last: np.ndarray) -> np.ndarray:
        """Which windows the reference can forecast: its 24 h of inputs and the target are
        loaded and trusted.  # (w,) bool"""
        first, target = last - (HOURS - 1) * STEP, last + self.horizon
        ok = (first >= 0) & (target < len(prepared.valid))
        bad = np.concatenate([[0], np.cumsum(~prepared.valid)])
        idx = np.flatnonzero(ok)
        ok[idx] = (bad[last[idx] + 1] - bad[first[idx]] == 0) & prepared.valid[target[idx]]
        return ok

    def recipe(self, prepared: Prepared) -> dict[str, Any]:
        """What a ``residual = "ridge"`` model carries of it (:class:`~jena.forecasting.
        RidgeRecipe`): ``prepared`` is the record of plain columns it was fitted on."""
        return RidgeRecipe(coef=self.coef, intercept=self.intercept, centre=self.mean,
                           mean=prepared.mean, std=prepared.std, horizon=self.horizon,
                           hours=HOURS, step=STEP).to_dict()  # fmt: skip

    def predict(self, prepared: Prepared, last: np.ndarray) -> np.ndarray:
        """Forecasts (°C) of the target ``horizon`` rows after each ``last`` row.  # (w,)"""
        out = np.empty(len(last))
        for i in range(0, len(last), CHUNK):
            part = last[i : i + CHUNK]
            change = (self.features(prepared, part) - self.mean) @ self.coef + self.intercept
            out[i : i + CHUNK] = prepared.temperature[part] + change
        return out


_FITTED: dict[tuple[str, str, int, float], Ridge] = {}  # (digest, preset, rows, alpha)


def shared_ridge(prepared: Prepared, *, alpha: float = ALPHA) -> Ridge:
    """:func:`fit_ridge` on ``prepared`` (the record's plain columns), fitted once per record
    (digest), preset and penalty in this process: a sweep, its trials, the refit and the
    champion share one fit (``residual = "ridge"``). Its training windows never depend on the
    test rows, so a record prepared with or without them gives the same fit."""
    if prepared.wind_vector or prepared.time_features:
        raise ValueError("the ridge reads the record's plain columns: prepare it without extras")
    key = (prepared.digest, prepared.preset.name, prepared.rows, alpha)
    if key not in _FITTED:
        _FITTED[key] = fit_ridge(prepared, alpha=alpha)
    return _FITTED[key]


def ridge_base(prepared: Prepared, ridge: Ridge) -> np.ndarray:
    """The ridge's forecast (°C) for the target at each row of ``prepared``, NaN where it cannot
    forecast (its 24 h of inputs or the target not loaded or not trusted): what a ``residual =
    "ridge"`` network's output is added to.  # (rows,)"""
    rows = len(prepared.temperature)
    last = np.arange(rows) - ridge.horizon
    ok = last >= 0
    ok[ok] = ridge.available(prepared, last[ok])
    out = np.full(rows, np.nan)
    out[ok] = ridge.predict(prepared, last[ok])
    return out


def cycles(prepared: Prepared, rows: np.ndarray) -> np.ndarray:
    """sin/cos of the time of day and of the year at ``rows``.  # (w, 4)"""
    seconds = epoch_seconds(prepared.index[rows])
    angles = [2 * np.pi * seconds / period for period in (SECONDS_PER_DAY, SECONDS_PER_YEAR)]
    return np.column_stack([f(a) for a in angles for f in (np.sin, np.cos)])


def fit_ridge(prepared: Prepared, *, alpha: float = ALPHA) -> Ridge:
    """The reference fitted on every training window of ``prepared``'s preset windows."""
    started = time.monotonic()
    preset = prepared.preset
    span = (preset.sequence_length - 1) * preset.sampling_rate
    horizon = preset.offset() - span
    last = prepared.starts("train") + span
    shell = Ridge(np.zeros(0), 0.0, np.zeros(0), alpha, horizon, len(last), 0.0)
    p = HOURS * prepared.features + 4
    xtx, xty, total = np.zeros((p, p)), np.zeros(p), np.zeros(p)
    y_sum = 0.0
    for i in range(0, len(last), CHUNK):
        part = last[i : i + CHUNK]
        x = shell.features(prepared, part)
        y = prepared.temperature[part + horizon] - prepared.temperature[part]
        xtx += x.T @ x
        xty += x.T @ y
        total += x.sum(axis=0)
        y_sum += float(y.sum())
    n = len(last)
    mean, y_mean = total / n, y_sum / n
    centred_xtx = xtx - n * np.outer(mean, mean)
    centred_xty = xty - n * mean * y_mean
    coef = np.linalg.solve(centred_xtx + alpha * np.eye(p), centred_xty)
    return Ridge(coef, y_mean, mean, alpha, horizon, n, time.monotonic() - started)


@dataclass(frozen=True)
class RidgeReference:
    """The reference against persistence on the preset's windows of one split."""

    split: Split
    comparison: Comparison  # ridge (mae) against persistence (reference_mae)
    alpha: float
    fit_s: float
    train_windows: int

    @property
    def mae(self) -> float:
        return self.comparison.mae.estimate

    @property
    def persistence_mae(self) -> float:
        return self.comparison.reference_mae.estimate

    def metrics(self) -> dict[str, float]:
        """For a run: ``ridge_val_mae``, ``ridge_val_skill`` (+ ``_low`` / ``_high``)."""
        c = self.comparison
        return {
            names.METRIC_RIDGE_VAL: c.mae.estimate,
            names.METRIC_RIDGE_VAL_SKILL: c.skill.estimate,
            f"{names.METRIC_RIDGE_VAL_SKILL}_low": c.skill.low,
            f"{names.METRIC_RIDGE_VAL_SKILL}_high": c.skill.high,
        }

    def text(self) -> str:
        """One line: ``ridge (linear reference) val MAE 2.41 °C, skill +4.8 % [+1.2 %, +8.3 %]
        vs persistence 2.53 °C``."""
        c = self.comparison
        return (
            f"ridge (linear reference) {self.split} MAE {c.mae.estimate:.3f} °C, skill "
            f"{c.skill.text('+.1%')} against persistence {c.reference_mae.estimate:.3f} °C "
            f"(the same {c.windows:,} {self.split} targets; fitted in {self.fit_s:.1f} s)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "mae": self.mae,
            "persistence_mae": self.persistence_mae,
            "alpha": self.alpha,
            "fit_s": self.fit_s,
            "train_windows": self.train_windows,
            "comparison": self.comparison.to_dict(),
        }


def ridge_reference(
    prepared: Prepared,
    split: Split = "val",
    ridge: Ridge | None = None,
    *,
    targets: np.ndarray | None = None,
) -> RidgeReference:
    """The reference fitted on ``prepared``'s training windows (or ``ridge``), against
    persistence on the scored targets of ``split`` (or the rows ``targets``, e.g. a sweep's
    validation slice; test: ``prepared`` must hold the test rows), with day-block intervals and
    the DM test."""
    ridge = ridge or fit_ridge(prepared)
    target = prepared.scored_targets(split) if targets is None else targets
    last = target - ridge.horizon
    actual = prepared.temperature[target]
    comparison = compare(
        ridge.predict(prepared, last) - actual,
        prepared.temperature[last] - actual,
        day_of(target),
    )
    return RidgeReference(split, comparison, ridge.alpha, ridge.fit_s, ridge.windows)
