"""Intervals from the day-block bootstrap, and the Diebold–Mariano test (jena.uncertainty)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jena.uncertainty import compare, day_of, diebold_mariano


def _errors(rng: np.random.Generator, days: int, phi_day: float = 0.5) -> np.ndarray:
    """A known process, correlated like forecast errors: every 10-minute window's error is a
    daily level (AR(1) from day to day, ``phi_day``) plus an AR(1) of 0.98 per row (hours of
    memory); both N(0, 1) at rest, so the error is N(0, 2) and its true MAE is 2 / sqrt(pi)."""
    level = np.empty(days)
    level[0] = rng.normal()
    for i in range(1, days):
        level[i] = phi_day * level[i - 1] + rng.normal(0, math.sqrt(1 - phi_day**2))
    n, phi = days * 144, 0.98
    shocks = rng.normal(0, math.sqrt(1 - phi**2), n)
    w = np.empty(n)
    w[0] = rng.normal()
    for i in range(1, n):
        w[i] = phi * w[i - 1] + shocks[i]
    return np.repeat(level, 144) + w


def test_the_day_block_interval_covers_the_true_mae_at_about_its_rate() -> None:
    """200 records of 60 days (8,640 windows each): the 95 % interval of the MAE covers the
    true MAE in about 95 % of them (94 % here; the percentile interval reached 88 %), and the
    interval of the skill of one such
    process against another with the same law covers its true skill, 0. A plain bootstrap of
    windows (here its normal form, mean ± 1.96 s / sqrt(n)) covers in a small minority."""
    rng = np.random.default_rng(20)
    true = 2 / math.sqrt(math.pi)
    sims, mae_hits, skill_hits, plain_hits = 200, 0, 0, 0
    for k in range(sims):
        e, r = _errors(rng, 60), _errors(rng, 60)
        c = compare(e, r, day_of(np.arange(len(e))), reps=400, seed=k)
        mae_hits += c.mae.low <= true <= c.mae.high
        skill_hits += c.skill.low <= 0 <= c.skill.high
        a = np.abs(e)
        plain_hits += abs(a.mean() - true) <= 1.96 * a.std() / math.sqrt(len(a))
    assert 0.9 <= mae_hits / sims <= 0.99, mae_hits / sims
    assert 0.9 <= skill_hits / sims <= 0.99, skill_hits / sims
    assert plain_hits / sims < 0.4, plain_hits / sims


def test_diebold_mariano_matches_a_hand_computation() -> None:
    """T = 10 windows, horizon h = 2: Newey–West lag h − 1 = 1 (Bartlett weight 1/2)."""
    d = np.array([0.5, -0.2, 0.3, 0.1, -0.4, 0.6, 0.2, -0.1, 0.4, 0.0])  # |model| − |reference|
    t, h = 10, 2
    mean = 1.4 / 10
    dc = d - mean
    gamma0 = sum(x * x for x in dc) / t  # 0.0924
    gamma1 = sum(dc[i] * dc[i - 1] for i in range(1, t)) / t  # −0.04956
    assert (gamma0, gamma1) == pytest.approx((0.0924, -0.04956))
    lrv = gamma0 + 2 * (1 - 1 / 2) * gamma1  # 0.04284
    dm = mean / math.sqrt(lrv / t)  # 2.13896
    hln = math.sqrt((t + 1 - 2 * h + h * (h - 1) / t) / t)  # sqrt(0.72)
    from scipy import stats

    p = 2 * stats.t.sf(dm * hln, t - 1)
    got = diebold_mariano(1 + d, np.ones(t), horizon=h)
    assert got.lag == 1 and got.windows == 10
    assert got.statistic == pytest.approx(dm * hln, rel=1e-12) == pytest.approx(1.81497, abs=1e-5)
    assert got.p_value == pytest.approx(p, rel=1e-10) == pytest.approx(0.10292, abs=1e-5)
    # the sign says who is better; the errors' signs do not matter (absolute errors)
    flipped = diebold_mariano(np.ones(t), -(1 + d), horizon=h)
    assert flipped.statistic == pytest.approx(-got.statistic)
    same = diebold_mariano(np.ones(t), -np.ones(t), horizon=h)
    assert (same.statistic, same.p_value) == (0.0, 1.0)


def test_a_clear_improvement_excludes_zero_and_a_tiny_one_does_not() -> None:
    rng = np.random.default_rng(3)
    reference = _errors(rng, 60)
    days = day_of(np.arange(len(reference)))
    clear = compare(0.7 * reference, reference, days)
    assert clear.beats_reference and clear.skill.low > 0.2 and clear.dm.p_value < 1e-6
    assert clear.skill.estimate == pytest.approx(0.3) and clear.difference.high < 0
    noisy = reference * rng.uniform(0.7, 1.3, 60).repeat(144) * 0.99  # skill ≈ +1 %, noisy
    tiny = compare(noisy, reference, days)
    assert tiny.skill.estimate > 0 and tiny.skill.low < 0 < tiny.skill.high
    assert not tiny.beats_reference and not tiny.skill.excludes_zero
    assert tiny.mae.low <= tiny.mae.estimate <= tiny.mae.high
    assert tiny.to_dict()["skill"]["low"] == tiny.skill.low
    assert tiny.skill.text("+.1%").startswith(f"{tiny.skill.estimate:+.1%} [")
    with pytest.raises(ValueError):
        compare(reference, reference[:-1], days)
