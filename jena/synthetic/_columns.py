"""The 14 columns from the primary variables: :func:`magnus` and :func:`assemble` (the relations
of ``shared/reference/jena-data.md``), shared by the generators."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..schema import COLUMNS, DATE_COLUMN

FloatArray = npt.NDArray[np.float64]

DEFAULT_START = "2009-01-01 00:10:00"


def magnus(t: npt.ArrayLike) -> FloatArray:
    """Saturation vapour pressure in mbar at ``t`` °C (the Magnus formula of jena-data.md)."""
    t = np.asarray(t, dtype=np.float64)
    return np.asarray(6.1078 * np.exp(17.27 * t / (t + 237.3)), dtype=np.float64)


def _round2(x: npt.ArrayLike) -> FloatArray:
    """Round to two decimals like the real file, without negative zeros."""
    return np.asarray(np.round(np.asarray(x, dtype=np.float64), 2) + 0.0, dtype=np.float64)


def assemble(
    times: pd.DatetimeIndex,
    *,
    p: FloatArray,
    t: FloatArray,
    tdew: FloatArray,
    wv: FloatArray,
    max_wv: FloatArray,
    wd: FloatArray,
) -> pd.DataFrame:
    """The 14 columns on ``times``: the primary variables rounded to two decimals like the real
    file, the rest derived from the rounded values by the relations of the data reference."""
    p = _round2(p)
    t = _round2(t)
    tdew = np.minimum(_round2(tdew), t)
    vpmax = magnus(t)
    vpact = magnus(tdew)
    wv = _round2(np.maximum(wv, 0.0))
    max_wv = np.maximum(_round2(max_wv), wv)
    wd = _round2(np.mod(wd, 360.0))
    wd[wd >= 360.0] = 0.0
    values = {
        "p (mbar)": p,
        "T (degC)": t,
        "Tpot (K)": (t + 273.15) * (1000.0 / p) ** 0.286,
        "Tdew (degC)": tdew,
        "rh (%)": 100.0 * vpact / vpmax,
        "VPmax (mbar)": vpmax,
        "VPact (mbar)": vpact,
        "VPdef (mbar)": vpmax - vpact,
        "sh (g/kg)": 622.0 * vpact / (p - 0.378 * vpact),
        "H2OC (mmol/mol)": 1000.0 * vpact / p,
        "rho (g/m**3)": 100.0 * p / (287.05 * (t + 273.15)) * 1000.0,
        "wv (m/s)": wv,
        "max. wv (m/s)": max_wv,
        "wd (deg)": wd,
    }
    assert tuple(values) == COLUMNS
    frame = pd.DataFrame(
        {c: _round2(v) for c, v in values.items()},
        index=pd.DatetimeIndex(times, name=DATE_COLUMN),
    )
    return frame
