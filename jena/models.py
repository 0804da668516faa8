"""Keras 3 models from a ``TrialConfig`` (the book's models are configurations: jena.book).

Backend-agnostic: only ``keras.layers``/``keras.ops`` (TensorFlow, JAX or PyTorch backend).

    model = build_model(config, input_shape=(config.sequence_length, n_features))

A model is ``Input -> body -> head``: the body is the architecture's builder (its entry in the
registry, :mod:`jena.architectures`), the head
``Dense(u, dense_activation) for u in dense_units -> Dropout(head_dropout) -> Dense(1)``.
A new architecture is one builder function (``(config, inputs) -> tensor``) plus one
registry entry.
"""

from __future__ import annotations

import keras
from keras import layers

from jena import architectures
from jena.config import TrialConfig
from jena.layers import LAYERS, PACKAGE, LastValue, ReverseTime, Tensor
from jena.schema import TARGET_INDEX

for _layer in LAYERS:  # the names saved .keras files carry: jena>LastValue, jena>ReverseTime
    keras.saving.register_keras_serializable(package=PACKAGE)(_layer)


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


# --- model --------------------------------------------------------------------------------


TargetStats = tuple[float, float]  # (mean, std) of the temperature over the training rows


def _assemble(
    config: TrialConfig, input_shape: tuple[int, int], target: TargetStats = (0.0, 1.0)
) -> keras.Model:
    config.validate()
    inputs = keras.Input(shape=input_shape)  # (steps, features)
    x = architectures.get(config.architecture).build(config, inputs)
    for units in config.dense_units:
        x = layers.Dense(units, activation=config.dense_activation)(x)
    if config.head_dropout > 0:
        x = layers.Dropout(config.head_dropout)(x)
    if config.residual == "none":
        outputs = layers.Dense(1)(x)  # (batch, 1): temperature 24 h ahead
    elif config.residual == "ridge":  # target − the ridge's forecast (added back by the
        # forecaster, jena.forecasting); zeros: an untrained model is the ridge
        outputs = layers.Dense(1, kernel_initializer="zeros", bias_initializer="zeros")(x)
    else:  # the change from the last temperature; zeros: an untrained model is persistence
        change = layers.Dense(1, kernel_initializer="zeros", bias_initializer="zeros")(x)
        mean, std = target
        scale, offset = (1.0, 0.0) if config.normalise_target else (std, mean)
        last = LastValue(TARGET_INDEX, scale, offset, name="last_temperature")(inputs)
        outputs = layers.Add(name="residual")([change, last])  # (batch, 1)
    return keras.Model(inputs=inputs, outputs=outputs, name=config.architecture)


def build_model(
    config: TrialConfig, input_shape: tuple[int, int], target: TargetStats = (0.0, 1.0)
) -> keras.Model:
    """A compiled model (loss ``config.loss``, metrics ["mae"]).

    Seeds Keras/NumPy/Python RNGs with ``config.seed`` first, so initial weights are
    reproducible. ``target``: the training rows' (mean, std) of the temperature, which a
    residual model trained in °C needs to read the last temperature off its normalised input.
    Raises ConfigError for an invalid config.
    """
    keras.utils.set_random_seed(config.seed)
    model = _assemble(config, input_shape, target)
    # Every variable before fit, not inside its first traced step (variables created while
    # TensorFlow traces a function make it trace that function twice, ~1 s a recurrent model):
    # the metric as an instance (its totals now; "mae" would be built in the step), the
    # optimizer's slots built here.
    model.compile(optimizer=make_optimizer(config), loss=config.loss,
                  metrics=[keras.metrics.MeanAbsoluteError(name="mae")])  # fmt: skip
    model.optimizer.build(model.trainable_variables)
    return model


def make_optimizer(config: TrialConfig) -> keras.optimizers.Optimizer:
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=config.learning_rate)
    return keras.optimizers.RMSprop(learning_rate=config.learning_rate)


def count_params(config: TrialConfig, input_shape: tuple[int, int]) -> int:
    """Trainable + non-trainable parameters of the model ``config`` builds (not compiled)."""
    return int(_assemble(config, input_shape).count_params())
