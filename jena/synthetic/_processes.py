"""The random processes the generators are built from (all times in hours, one row every 10
minutes): first-order filters of white noise in the time domain (exact and causal, so a record is
the prefix of a longer one) and small helpers."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from ..schema import ROWS_PER_HOUR

FloatArray = npt.NDArray[np.float64]

DT = 1.0 / ROWS_PER_HOUR  # hours per row
_DT = DT


def ar1(e: FloatArray, a: float) -> FloatArray:
    """``x[n] = a x[n-1] + e[n]`` with ``x[-1] = 0``, vectorised in blocks (exact, stable)."""
    n = e.shape[0]
    if n == 0:
        return e.copy()
    # a**-block must stay far from overflow: block * (-ln a) <= 30 ln 10.
    block = max(1, min(n, int(30.0 * math.log(10.0) / -math.log(a))))
    n_blocks = -(-n // block)
    padded = np.zeros(n_blocks * block)
    padded[:n] = e
    grid = padded.reshape(n_blocks, block)
    j = np.arange(block, dtype=np.float64)
    up = a ** (-j)
    down = a**j
    local = np.cumsum(grid * up, axis=1) * down  # each block started from zero
    carry_weight = a ** (j + 1.0)
    out = np.empty_like(local)
    state = 0.0
    for b in range(n_blocks):
        out[b] = local[b] + carry_weight * state
        state = float(out[b, -1])
    return out.reshape(-1)[:n]


def filter_noise(e: FloatArray, taus: tuple[float, ...]) -> FloatArray:
    """White noise through a cascade of first-order filters with time constants ``taus`` (h)."""
    x = e
    for tau in taus:
        a = math.exp(-_DT / tau)
        x = ar1(x, a) * (1.0 - a)
    return x


def filter_std(taus: tuple[float, ...], lag: int = 0) -> float:
    """Stationary std of ``filter_noise(white, taus)`` (or of its ``lag``-row difference)."""
    length = int(12 * sum(taus) / _DT) + lag + 1
    impulse = np.zeros(length)
    impulse[0] = 1.0
    h = filter_noise(impulse, taus)
    if lag:
        h = h - np.concatenate([np.zeros(lag), h[:-lag]])
    return float(np.sqrt(np.sum(h * h)))


def smooth(rng: np.random.Generator, n: int, taus: tuple[float, ...]) -> FloatArray:
    """A unit-variance smooth Gaussian process (after the spin-up) of ``n`` rows."""
    return filter_noise(rng.standard_normal(n), taus) / filter_std(taus)


def lagged_diff(x: FloatArray, lag: int) -> FloatArray:
    out = np.zeros_like(x)
    out[lag:] = x[lag:] - x[:-lag]
    return out


def lagged(x: FloatArray, lag: int) -> FloatArray:
    """``x`` delayed by ``lag`` rows (the first rows repeat ``x[0]``)."""
    if lag <= 0:
        return x
    return np.concatenate([np.full(lag, x[0]), x[:-lag]])


def sigmoid(x: FloatArray) -> FloatArray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)), dtype=np.float64)
