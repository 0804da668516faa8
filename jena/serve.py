"""Serving in the project: :class:`ProjectForecaster`, the shipped
:class:`jena.forecasting.Forecaster` raising the project's errors.

``jena predict`` (``jena.tracking.load_forecaster`` + :meth:`ProjectForecaster.forecast`) and
``jena best`` use it; the registered pyfunc runs its own copy of :mod:`jena.forecasting`, which
raises MLflow's errors instead. A bad input is a one-line :class:`~jena.errors.DataError`, a
model that does not fit its configuration a :class:`~jena.errors.ConfigError`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import forecasting
from .errors import ConfigError, DataError
from .forecasting import Forecast

if TYPE_CHECKING:
    import keras

__all__ = ["Forecast", "ProjectForecaster"]


@contextlib.contextmanager
def _project_errors() -> Iterator[None]:
    try:
        yield
    except forecasting.InputError as exc:
        raise DataError(str(exc)) from None
    except forecasting.ModelError as exc:
        raise ConfigError(str(exc)) from None


class ProjectForecaster(forecasting.Forecaster):
    __doc__ = forecasting.Forecaster.__doc__

    def __init__(
        self, model: keras.Model | Sequence[keras.Model], data_config: Mapping[str, Any]
    ) -> None:
        with _project_errors():
            super().__init__(model, data_config)

    def features(self, frame: pd.DataFrame) -> np.ndarray:
        with _project_errors():
            return super().features(frame)

    def forecast(
        self, frame: Any, valid: np.ndarray | None = None, *, source: str | None = None
    ) -> Forecast:
        with _project_errors():
            return super().forecast(frame, valid, source=source)
