"""Models: the presets are the book's models layer for layer; every architecture trains."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import pytest
from keras import layers
from keras.models import Sequential
from keras.optimizers import RMSprop

from jena import models
from jena.architectures import ARCHITECTURES, CONVOLUTIONAL, PACKABLE, RECURRENT, get
from jena.book import BOOK_MODELS
from jena.config import TrialConfig
from jena.errors import ConfigError
from jena.models import ReverseTime, build_model, count_params

N_FEATURES = 14  # the Jena CSV's 14 numeric columns, as in both editions
PRESETS = {name: m.config for name, m in BOOK_MODELS.items()}

# --- the book's code, as printed (Keras 3 spelling of the same layers) ----------------------
# 2nd edition: functional API, sequence_length = 120, raw_data.shape[-1] = 14.
sequence_length = 120


def book2_dense() -> keras.Model:
    inputs = keras.Input(shape=(sequence_length, N_FEATURES))
    x = layers.Flatten()(inputs)
    x = layers.Dense(16, activation="relu")(x)
    outputs = layers.Dense(1)(x)
    return keras.Model(inputs=inputs, outputs=outputs)


def book2_conv1d() -> keras.Model:
    inputs = keras.Input(shape=(sequence_length, N_FEATURES))
    x = layers.Conv1D(8, 24, activation="relu")(inputs)
    x = layers.MaxPooling1D(2)(x)
    x = layers.Conv1D(8, 12, activation="relu")(x)
    x = layers.MaxPooling1D(2)(x)
    x = layers.Conv1D(8, 6, activation="relu")(x)
    x = layers.GlobalAveragePooling1D()(x)
    outputs = layers.Dense(1)(x)
    return keras.Model(inputs=inputs, outputs=outputs)


def book2_lstm() -> keras.Model:
    inputs = keras.Input(shape=(sequence_length, N_FEATURES))
    x = layers.LSTM(16)(inputs)
    outputs = layers.Dense(1)(x)
    return keras.Model(inputs=inputs, outputs=outputs)


def book2_lstm_dropout() -> keras.Model:
    inputs = keras.Input(shape=(sequence_length, N_FEATURES))
    x = layers.LSTM(32, recurrent_dropout=0.25)(inputs)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(1)(x)
    return keras.Model(inputs=inputs, outputs=outputs)


def book2_stacked_gru_dropout() -> keras.Model:
    inputs = keras.Input(shape=(sequence_length, N_FEATURES))
    x = layers.GRU(32, recurrent_dropout=0.5, return_sequences=True)(inputs)
    x = layers.GRU(32, recurrent_dropout=0.5)(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(1)(x)
    return keras.Model(inputs=inputs, outputs=outputs)


def book2_bilstm() -> keras.Model:
    inputs = keras.Input(shape=(sequence_length, N_FEATURES))
    x = layers.Bidirectional(layers.LSTM(16))(inputs)
    outputs = layers.Dense(1)(x)
    return keras.Model(inputs=inputs, outputs=outputs)


# 1st edition: Sequential, lookback = 1440, step = 6, float_data.shape[-1] = 14.
lookback, step = 1440, 6


def book1_dense32() -> keras.Model:
    model = Sequential()
    model.add(layers.Flatten(input_shape=(lookback // step, N_FEATURES)))
    model.add(layers.Dense(32, activation="relu"))
    model.add(layers.Dense(1))
    return model


def book1_gru() -> keras.Model:  # 6-39; also 6-42's model (the generator reverses the data)
    model = Sequential()
    model.add(layers.GRU(32, input_shape=(None, N_FEATURES)))
    model.add(layers.Dense(1))
    return model


def book1_gru_dropout() -> keras.Model:
    model = Sequential()
    model.add(layers.GRU(32, dropout=0.2, recurrent_dropout=0.2, input_shape=(None, N_FEATURES)))
    model.add(layers.Dense(1))
    return model


def book1_stacked_gru() -> keras.Model:
    model = Sequential()
    model.add(
        layers.GRU(
            32,
            dropout=0.1,
            recurrent_dropout=0.5,
            return_sequences=True,
            input_shape=(None, N_FEATURES),
        )
    )
    model.add(layers.GRU(64, activation="relu", dropout=0.1, recurrent_dropout=0.5))
    model.add(layers.Dense(1))
    return model


def book1_bigru() -> keras.Model:
    model = Sequential()
    model.add(layers.Bidirectional(layers.GRU(32), input_shape=(None, N_FEATURES)))
    model.add(layers.Dense(1))
    return model


def book1_conv1d() -> keras.Model:
    model = Sequential()
    model.add(layers.Conv1D(32, 5, activation="relu", input_shape=(None, N_FEATURES)))
    model.add(layers.MaxPooling1D(3))
    model.add(layers.Conv1D(32, 5, activation="relu"))
    model.add(layers.MaxPooling1D(3))
    model.add(layers.Conv1D(32, 5, activation="relu"))
    model.add(layers.GlobalMaxPooling1D())
    model.add(layers.Dense(1))
    return model


def book1_conv_gru() -> keras.Model:
    model = Sequential()
    model.add(layers.Conv1D(32, 5, activation="relu", input_shape=(None, N_FEATURES)))
    model.add(layers.MaxPooling1D(3))
    model.add(layers.Conv1D(32, 5, activation="relu"))
    model.add(layers.GRU(32, dropout=0.1, recurrent_dropout=0.5))
    model.add(layers.Dense(1))
    return model


BOOK: dict[str, tuple[Callable[[], keras.Model], str]] = {
    "dense": (book2_dense, "mse"),
    "conv1d": (book2_conv1d, "mse"),
    "lstm": (book2_lstm, "mse"),
    "lstm_dropout": (book2_lstm_dropout, "mse"),
    "stacked_gru_dropout": (book2_stacked_gru_dropout, "mse"),
    "bilstm": (book2_bilstm, "mse"),
    "dense32": (book1_dense32, "mae"),
    "gru": (book1_gru, "mae"),
    "gru_dropout": (book1_gru_dropout, "mae"),
    "stacked_gru": (book1_stacked_gru, "mae"),
    "bigru": (book1_bigru, "mae"),
    "gru_reversed": (book1_gru, "mae"),
    "conv1d_1st": (book1_conv1d, "mae"),
    "conv_gru": (book1_conv_gru, "mae"),
}


def _strip(obj: Any) -> Any:
    """A layer config without the parts that differ between two builds of the same layer."""
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in ("name", "build_config")}
    return obj


def _spec(model: keras.Model) -> list[tuple[str, Any]]:
    return [
        (type(layer).__name__, _strip(layer.get_config()))
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer | ReverseTime)
    ]


@pytest.fixture(autouse=True)
def _fresh_session() -> None:
    keras.backend.clear_session()


def test_presets_cover_the_book() -> None:
    assert set(BOOK_MODELS) == set(BOOK)
    for name, model in BOOK_MODELS.items():
        model.config.validate()
        assert model.name == name and model.epochs > 0
        assert model.data == ("book1" if BOOK[name][1] == "mae" else "book2")
        assert model.steps_per_epoch == (500 if model.data == "book1" else None)


@pytest.mark.filterwarnings("ignore:Do not pass an `input_shape`")
@pytest.mark.parametrize("name", sorted(BOOK))
def test_preset_is_the_books_model(name: str) -> None:
    cfg = PRESETS[name]
    book_fn, book_loss = BOOK[name]
    book = book_fn()
    book.compile(optimizer=RMSprop(), loss=book_loss)
    ours = build_model(cfg, (cfg.sequence_length, N_FEATURES))

    assert ours.count_params() == book.count_params()
    assert count_params(cfg, (cfg.sequence_length, N_FEATURES)) == book.count_params()
    assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in book.weights]
    assert _spec(ours) == _spec(book)  # same layers, same order, same settings
    assert type(ours.optimizer) is type(book.optimizer)
    assert float(ours.optimizer.learning_rate) == pytest.approx(float(book.optimizer.learning_rate))
    assert cfg.loss == book_loss
    assert ours.output_shape == (None, 1)


def test_preset_windows() -> None:
    for name in ("dense", "conv1d", "lstm", "lstm_dropout", "stacked_gru_dropout", "bilstm"):
        cfg = PRESETS[name]
        assert (cfg.sampling_rate, cfg.sequence_length, cfg.batch_size) == (6, 120, 256)
    for name in ("dense32", "gru", "gru_dropout", "stacked_gru", "bigru", "gru_reversed"):
        cfg = PRESETS[name]
        assert (cfg.sampling_rate, cfg.sequence_length, cfg.batch_size) == (6, 240, 128)
    conv_gru = PRESETS["conv_gru"]
    assert (conv_gru.sampling_rate, conv_gru.sequence_length) == (3, 480)  # step 3, lookback 1440
    assert all(c.history_rows == 1440 - c.sampling_rate + 1 for n, c in PRESETS.items()
               if BOOK_MODELS[n].data == "book1")  # fmt: skip


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # LSTM: 4 gates * units * (inputs + units + 1); Dense(1): units + 1
        ("lstm", 4 * 16 * (14 + 16 + 1) + 17),  # 2001
        ("bilstm", 2 * 4 * 16 * (14 + 16 + 1) + 33),  # 4001
        ("lstm_dropout", 4 * 32 * (14 + 32 + 1) + 33),  # 6049
        # Keras 3 GRU (reset_after=True): 3 * units * (inputs + units) + 2 * 3 * units
        ("gru", 3 * 32 * (14 + 32) + 6 * 32 + 33),  # 4641
        ("bigru", 2 * (3 * 32 * (14 + 32) + 6 * 32) + 65),  # 9281
        ("dense", 120 * 14 * 16 + 16 + 17),  # 26913
        ("dense32", 240 * 14 * 32 + 32 + 33),  # 107585
        ("conv1d", (24 * 14 * 8 + 8) + (12 * 8 * 8 + 8) + (6 * 8 * 8 + 8) + 9),  # 3873
    ],
)
def test_param_counts_by_hand(name: str, expected: int) -> None:
    cfg = PRESETS[name]
    assert count_params(cfg, (cfg.sequence_length, N_FEATURES)) == expected


def _tiny(architecture: str, **kw: Any) -> TrialConfig:
    base = TrialConfig(
        architecture=architecture,
        rnn_units=(4, 4),
        conv_filters=(4, 4),
        conv_kernel=(3, 3),
        conv_pool=2,
        dense_units=(4,),
        head_dropout=0.1,
        sequence_length=12,
        batch_size=16,
    )
    return base.replace(**kw)


def _data(n: int = 32, steps: int = 12) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, steps, N_FEATURES)).astype("float32")
    return x, x[:, -1, 1:2] + 0.1  # (n, steps, 14), (n, 1)


def test_the_registry_ships_the_books_architectures() -> None:
    assert ARCHITECTURES == ("dense", "conv1d", "lstm", "gru", "conv_gru")
    assert RECURRENT == ("lstm", "gru", "conv_gru") and CONVOLUTIONAL == ("conv1d", "conv_gru")
    assert PACKABLE == ("dense", "lstm", "gru")
    for name in ARCHITECTURES:  # each shipped builder is a function of jena.models
        builder = get(name).builder
        assert isinstance(builder, str) and callable(getattr(models, builder.split(":")[1]))


@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_every_architecture_trains(architecture: str) -> None:
    recurrent = architecture in ("lstm", "gru", "conv_gru")
    cfg = _tiny(
        architecture,
        optimizer="adam",
        loss="mae",
        dropout=0.1 if recurrent else 0.0,
        recurrent_dropout=0.1 if recurrent else 0.0,
    )
    x, y = _data()
    model = build_model(cfg, x.shape[1:])
    assert model.output_shape == (None, 1)
    history = model.fit(x, y, epochs=1, batch_size=cfg.batch_size, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert "mae" in history.history
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(model.optimizer.learning_rate) == pytest.approx(cfg.learning_rate)


@pytest.mark.parametrize("optimizer", ["rmsprop", "adam"])
def test_fit_traces_its_train_step_once(optimizer: str) -> None:
    """Every variable exists before ``fit`` (the optimizer's slots, the MAE metric's totals):
    a variable created inside TensorFlow's first traced step makes it trace the step twice,
    about a second per recurrent model (before: two traces). Under JAX nothing is traced this
    way; the variables must exist all the same."""
    cfg = _tiny("gru", optimizer=optimizer)
    x, y = _data()
    model = build_model(cfg, x.shape[1:])
    assert model.optimizer.built and len(model.optimizer.variables) > 2  # iterations, lr, slots
    traces = []
    step = model.train_step

    def counted(data: Any) -> Any:
        traces.append(1)  # runs once per trace under tf.function, once per batch eagerly
        return step(data)

    model.train_step = counted
    history = model.fit(x, y, epochs=2, batch_size=cfg.batch_size, verbose=0)
    assert sorted(history.history) == ["loss", "mae"]
    if keras.backend.backend() == "tensorflow":
        assert len(traces) == 1


def test_reverse_flips_time() -> None:
    x, _ = _data(4)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(ReverseTime()(x)), x[:, ::-1])
    model = build_model(_tiny("gru", reverse=True), x.shape[1:])
    flip = next(layer for layer in model.layers if isinstance(layer, ReverseTime))
    assert model.layers.index(flip) == 1  # right after the input
    probe = keras.Model(model.inputs, flip.output)
    np.testing.assert_allclose(probe.predict(x, verbose=0), x[:, ::-1])
    assert not any(
        isinstance(layer, ReverseTime) for layer in build_model(_tiny("gru"), x.shape[1:]).layers
    )


def test_bidirectional_doubles() -> None:
    shape = (12, N_FEATURES)
    one = build_model(_tiny("lstm", rnn_units=(8,), dense_units=()), shape)
    two = build_model(_tiny("lstm", rnn_units=(8,), dense_units=(), bidirectional=True), shape)
    rnn_one = next(layer for layer in one.layers if isinstance(layer, layers.LSTM))
    rnn_two = next(layer for layer in two.layers if isinstance(layer, layers.Bidirectional))
    assert rnn_one.output.shape[-1] == 8
    assert rnn_two.output.shape[-1] == 16
    assert rnn_two.count_params() == 2 * rnn_one.count_params()


def test_stack_returns_sequences_except_last() -> None:
    model = build_model(_tiny("gru", rnn_units=(4, 5, 6)), (12, N_FEATURES))
    grus = [layer for layer in model.layers if isinstance(layer, layers.GRU)]
    assert [g.units for g in grus] == [4, 5, 6]
    assert [g.return_sequences for g in grus] == [True, True, False]


def test_conv_gru_has_no_global_pooling() -> None:
    model = build_model(_tiny("conv_gru"), (12, N_FEATURES))
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds[1:5] == ["Conv1D", "MaxPooling1D", "Conv1D", "GRU"]
    assert not any("Global" in k for k in kinds)


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_reverse_model_saves_and_loads(tmp_path: Any) -> None:
    x, _ = _data(4)
    model = build_model(_tiny("lstm", reverse=True, bidirectional=True), x.shape[1:])
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert any(isinstance(layer, ReverseTime) for layer in loaded.layers)
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )


def test_same_seed_same_weights() -> None:
    cfg = _tiny("gru", seed=7)
    a = build_model(cfg, (12, N_FEATURES)).get_weights()
    b = build_model(cfg, (12, N_FEATURES)).get_weights()
    c = build_model(cfg.replace(seed=8), (12, N_FEATURES)).get_weights()
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    assert not all(np.array_equal(u, v) for u, v in zip(a, c, strict=True))


def test_invalid_config_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown architecture"):
        build_model(TrialConfig(architecture="transformer"), (12, N_FEATURES))
    with pytest.raises(ConfigError, match="conv stack"):
        count_params(PRESETS["conv1d"].replace(sequence_length=30), (30, N_FEATURES))
