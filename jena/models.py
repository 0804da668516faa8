"""Keras 3 models from a ``TrialConfig``, and the book's models as presets.

Backend-agnostic: only ``keras.layers``/``keras.ops`` (TensorFlow, JAX or PyTorch backend).

    model = build_model(config, input_shape=(config.sequence_length, n_features))

A model is ``Input -> BUILDERS[architecture] -> head``, where the head is
``Dense(u, dense_activation) for u in dense_units -> Dropout(head_dropout) -> Dense(1)``.
A new architecture is one builder function plus one ``BUILDERS`` entry (and its name in
``jena.config.ARCHITECTURES``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras import layers

from jena.config import TrialConfig

Tensor = Any  # keras.KerasTensor (symbolic, functional API)
Builder = Callable[[TrialConfig, Tensor], Tensor]


@keras.saving.register_keras_serializable(package="jena")
class ReverseTime(keras.layers.Layer):
    """Flip the time axis: (batch, steps, features) -> same, newest step first."""

    def call(self, inputs: Tensor) -> Tensor:
        return keras.ops.flip(inputs, axis=1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape


# --- bodies -------------------------------------------------------------------------------


def _recurrent_stack(config: TrialConfig, x: Tensor, cell: type[layers.Layer]) -> Tensor:
    """(batch, steps, f) -> (batch, units[-1]) (x2 if bidirectional)."""
    n = config.rnn_layers
    for i, (units, activation) in enumerate(
        zip(config.rnn_units, config.rnn_activations, strict=True)
    ):
        rnn = cell(
            units,
            activation=activation,
            dropout=config.dropout,
            recurrent_dropout=config.recurrent_dropout,
            return_sequences=i < n - 1,  # all but the last layer hand on the full sequence
        )
        x = layers.Bidirectional(rnn)(x) if config.bidirectional else rnn(x)
    return x


def _conv_stack(config: TrialConfig, x: Tensor) -> Tensor:
    """(batch, steps, f) -> (batch, steps', filters[-1]); MaxPool between conv layers."""
    n = config.conv_layers
    for i, (filters, kernel) in enumerate(
        zip(config.conv_filters, config.conv_kernel, strict=True)
    ):
        x = layers.Conv1D(filters, kernel, activation=config.conv_activation)(x)
        if i < n - 1 and config.conv_pool > 1:
            x = layers.MaxPooling1D(config.conv_pool)(x)
    return x


def _maybe_reverse(config: TrialConfig, x: Tensor) -> Tensor:
    return ReverseTime()(x) if config.reverse else x


def build_dense(config: TrialConfig, x: Tensor) -> Tensor:
    """Flatten: (batch, steps, f) -> (batch, steps*f); the head's Dense layers do the rest."""
    return layers.Flatten()(x)


def build_conv1d(config: TrialConfig, x: Tensor) -> Tensor:
    """Conv stack -> global avg/max pooling (or Flatten for "none") -> (batch, filters)."""
    x = _conv_stack(config, x)
    pool = config.conv_global_pool
    if pool == "avg":
        return layers.GlobalAveragePooling1D()(x)
    if pool == "max":
        return layers.GlobalMaxPooling1D()(x)
    return layers.Flatten()(x)


def build_lstm(config: TrialConfig, x: Tensor) -> Tensor:
    return _recurrent_stack(config, _maybe_reverse(config, x), layers.LSTM)


def build_gru(config: TrialConfig, x: Tensor) -> Tensor:
    return _recurrent_stack(config, _maybe_reverse(config, x), layers.GRU)


def build_conv_gru(config: TrialConfig, x: Tensor) -> Tensor:
    """1st ed. 6-49: conv stack (no global pooling) feeding the GRU stack."""
    x = _conv_stack(config, _maybe_reverse(config, x))
    return _recurrent_stack(config, x, layers.GRU)


BUILDERS: dict[str, Builder] = {
    "dense": build_dense,
    "conv1d": build_conv1d,
    "lstm": build_lstm,
    "gru": build_gru,
    "conv_gru": build_conv_gru,
}


# --- model --------------------------------------------------------------------------------


def _assemble(config: TrialConfig, input_shape: tuple[int, int]) -> keras.Model:
    config.validate()
    inputs = keras.Input(shape=input_shape)  # (steps, features)
    x = BUILDERS[config.architecture](config, inputs)
    for units in config.dense_units:
        x = layers.Dense(units, activation=config.dense_activation)(x)
    if config.head_dropout > 0:
        x = layers.Dropout(config.head_dropout)(x)
    outputs = layers.Dense(1)(x)  # (batch, 1): temperature 24 h ahead
    return keras.Model(inputs=inputs, outputs=outputs, name=config.architecture)


def build_model(config: TrialConfig, input_shape: tuple[int, int]) -> keras.Model:
    """A compiled model (loss ``config.loss``, metrics ["mae"]).

    Seeds Keras/NumPy/Python RNGs with ``config.seed`` first, so initial weights are
    reproducible. Raises ConfigError for an invalid config.
    """
    keras.utils.set_random_seed(config.seed)
    model = _assemble(config, input_shape)
    model.compile(optimizer=make_optimizer(config), loss=config.loss, metrics=["mae"])
    return model


def make_optimizer(config: TrialConfig) -> keras.optimizers.Optimizer:
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=config.learning_rate)
    return keras.optimizers.RMSprop(learning_rate=config.learning_rate)


def count_params(config: TrialConfig, input_shape: tuple[int, int]) -> int:
    """Trainable + non-trainable parameters of the model ``config`` builds (not compiled)."""
    return int(_assemble(config, input_shape).count_params())


# --- the book's models --------------------------------------------------------------------

# 2nd ed. ch. 10: 50/25/25 split, sampling_rate 6, 120 steps (5 days), batch 256, loss mse.
_BOOK2 = TrialConfig(sampling_rate=6, sequence_length=120, batch_size=256, loss="mse")
# 1st ed. ch. 6: lookback 1440 / step 6 = 240 steps (10 days), batch 128, loss mae,
# steps_per_epoch 500.
# It trains on the normalised temperature.
_BOOK1 = TrialConfig(
    sampling_rate=6, sequence_length=240, batch_size=128, loss="mae", normalise_target=True
)

PRESETS: dict[str, TrialConfig] = {
    # 2nd edition, ch. 10
    "dense": _BOOK2.replace(architecture="dense", dense_units=(16,)),
    "conv1d": _BOOK2.replace(
        architecture="conv1d", conv_filters=(8, 8, 8), conv_kernel=(24, 12, 6), conv_pool=2,
        conv_global_pool="avg",
    ),
    "lstm": _BOOK2.replace(architecture="lstm", rnn_units=(16,)),
    "lstm_dropout": _BOOK2.replace(
        architecture="lstm", rnn_units=(32,), recurrent_dropout=0.25, head_dropout=0.5,
    ),
    "stacked_gru_dropout": _BOOK2.replace(
        architecture="gru", rnn_units=(32, 32), recurrent_dropout=0.5, head_dropout=0.5,
    ),
    "bilstm": _BOOK2.replace(architecture="lstm", rnn_units=(16,), bidirectional=True),
    # 1st edition (listings 6-37 ... 6-49)
    "dense32": _BOOK1.replace(architecture="dense", dense_units=(32,)),
    "gru": _BOOK1.replace(architecture="gru", rnn_units=(32,)),
    "gru_dropout": _BOOK1.replace(
        architecture="gru", rnn_units=(32,), dropout=0.2, recurrent_dropout=0.2,
    ),
    "stacked_gru": _BOOK1.replace(
        architecture="gru", rnn_units=(32, 64), rnn_activation=("tanh", "relu"), dropout=0.1,
        recurrent_dropout=0.5,
    ),
    "bigru": _BOOK1.replace(architecture="gru", rnn_units=(32,), bidirectional=True),
    "gru_reversed": _BOOK1.replace(architecture="gru", rnn_units=(32,), reverse=True),
    "conv1d_1st": _BOOK1.replace(
        architecture="conv1d", conv_filters=(32, 32, 32), conv_kernel=(5, 5, 5), conv_pool=3,
        conv_global_pool="max",
    ),
    "conv_gru": _BOOK1.replace(
        architecture="conv_gru", conv_filters=(32, 32), conv_kernel=(5, 5), conv_pool=3,
        rnn_units=(32,), dropout=0.1, recurrent_dropout=0.5,
        sampling_rate=3, sequence_length=480,  # step 3: 1440 rows = 480 half-hour steps
    ),
}  # fmt: skip

PRESET_EPOCHS: dict[str, int] = {
    "dense": 10, "conv1d": 10, "lstm": 10, "lstm_dropout": 50, "stacked_gru_dropout": 50,
    "bilstm": 10,
    "dense32": 20, "gru": 20, "gru_dropout": 40, "stacked_gru": 40, "bigru": 40,
    "gru_reversed": 20, "conv1d_1st": 20, "conv_gru": 20,
}  # fmt: skip

# Which data setup each preset was published with: "book2" (2nd ed.) or "book1" (1st ed.).
_BOOK1_NAMES = ("dense32", "gru", "gru_dropout", "stacked_gru", "bigru", "gru_reversed",
                "conv1d_1st", "conv_gru")  # fmt: skip
PRESET_DATA: dict[str, str] = {
    name: ("book1" if name in _BOOK1_NAMES else "book2") for name in PRESETS
}

# The 1st edition trains 500 shuffled batches per epoch; the 2nd a full pass (None).
PRESET_STEPS_PER_EPOCH: dict[str, int | None] = {
    name: (500 if data == "book1" else None) for name, data in PRESET_DATA.items()
}
