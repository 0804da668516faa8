"""The custom Keras layers of jena's models, unregistered: :mod:`jena.models` registers them as
``jena>LastValue`` and ``jena>ReverseTime`` (the names saved ``.keras`` files carry), and a
registered model's own copy of this file passes :data:`CUSTOM_OBJECTS` to ``load_model``, so
two copies in one process never register the same name twice.

Imports Keras only: it is shipped with the registered model (see :mod:`jena.forecasting`).
"""

from __future__ import annotations

from typing import Any

import keras

PACKAGE = "jena"
Tensor = Any  # keras.KerasTensor (symbolic, functional API)


class LastValue(keras.layers.Layer):
    """The last step of one input feature, in target units: (batch, steps, features) ->
    (batch, 1) = ``inputs[:, -1, index] * scale + offset``. Residual models add it to their
    output, so the network only learns the change from the last observed temperature.
    ``scale``/``offset`` turn the normalised input back into the target's units (1/0 when the
    target is normalised too; the training rows' std/mean of the temperature for °C)."""

    def __init__(self, index: int, scale: float = 1.0, offset: float = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.index, self.scale, self.offset = int(index), float(scale), float(offset)

    def call(self, inputs: Tensor) -> Tensor:
        last = inputs[:, -1, self.index : self.index + 1]  # (batch, 1)
        return last * self.scale + self.offset

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], 1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "index": self.index, "scale": self.scale,
                "offset": self.offset}  # fmt: skip


class ReverseTime(keras.layers.Layer):
    """Flip the time axis: (batch, steps, features) -> same, newest step first."""

    def call(self, inputs: Tensor) -> Tensor:
        return keras.ops.flip(inputs, axis=1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape


LAYERS: tuple[type[keras.layers.Layer], ...] = (LastValue, ReverseTime)
CUSTOM_OBJECTS: dict[str, type[keras.layers.Layer]] = {f"{PACKAGE}>{c.__name__}": c for c in LAYERS}
