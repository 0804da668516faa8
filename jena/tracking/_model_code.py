"""The registered model's code (MLflow's models from code): :func:`jena.tracking.register_model`
logs this file as the pyfunc's ``python_model``, with a copy of :mod:`jena.forecasting` (and
:mod:`jena.schema`, :mod:`jena.layers`) as the package ``jena_forecaster`` in ``code/``. MLflow
runs it to load the model; nothing in the project imports it. It needs MLflow, pandas and that
package only, so the model loads where ``jena`` is not installed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import set_model
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel

if TYPE_CHECKING:
    from jena.forecasting import Forecaster

_log = logging.getLogger("jena_forecaster")


class InvalidInput(MlflowException):
    """An input the model cannot forecast from: HTTP 400 (``INVALID_PARAMETER_VALUE``) whose
    message is the one line saying why. MLflow's scoring server prepends the whole input frame
    to a prediction error's message; this message keeps its first value."""

    def __init__(self, message: str) -> None:
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)

    @property
    def message(self) -> str:
        return self._line

    @message.setter
    def message(self, value: str) -> None:
        if not hasattr(self, "_line"):
            self._line = value


class ForecastModel(PythonModel):
    """``predict(frame)`` → one row (last_time, target_time, forecast °C, persistence °C, and
    level, low, high °C where the model carries an interval calibration) from the window that
    ends at the last row of ``frame``: the last rows of a Jena record (its 14 columns and ``Date
    Time``, or indexed by time), on the 10-minute grid."""

    forecaster: Forecaster
    input_error: type[Exception]

    def load_context(self, context: Any) -> None:
        from jena_forecaster import forecasting  # the copy in code/, on sys.path

        note = forecasting.use_backend((context.model_config or {}).get("keras_backend"))
        if note:
            _log.warning(note)
        config = json.loads(Path(context.artifacts["data_config"]).read_text())
        names = sorted(k for k in context.artifacts if k.startswith("keras_model"))
        members = forecasting.load_members([context.artifacts[k] for k in names])
        self.forecaster = forecasting.Forecaster(members, config)
        self.input_error = forecasting.InputError

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        try:
            forecast = self.forecaster.forecast(model_input)
        except self.input_error as exc:
            raise InvalidInput(str(exc)) from None
        return pd.DataFrame([forecast.row()])


set_model(ForecastModel())
