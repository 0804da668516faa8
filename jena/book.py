"""The book's models, one record each: configuration, data setup, training schedule and the
published figures (*Deep Learning with Python*, 2nd ed. ch. 10 and 1st ed. ch. 6).

Keras-free (only :class:`~jena.config.TrialConfig`), so the search space, the sweep files and
the CLI can name book models without importing a backend; :mod:`jena.models` builds them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import TrialConfig
from .errors import ConfigError
from .splits import get_preset


def preset_defaults(data_preset: str, seed: int = 0) -> TrialConfig:
    """The one rule for a data preset's defaults: its window (sampling rate, sequence length),
    batch size, loss (mse in the 2nd edition, mae in the 1st) and target units (the 1st edition
    trains on the normalised temperature). Searches start from it; the book's models are it
    plus their layers."""
    p = get_preset(data_preset)
    return TrialConfig(
        sampling_rate=p.sampling_rate,
        sequence_length=p.sequence_length,
        batch_size=p.batch_size,
        loss="mae" if p.edition == 1 else "mse",
        normalise_target=p.normalised_target,
        seed=seed,
    )


@dataclass(frozen=True)
class BookModel:
    """One named model of the book, trained as the book trains it."""

    name: str
    config: TrialConfig
    data: str  # the data preset it was published with: book2 (2nd ed.) | book1 (1st ed.)
    epochs: int
    steps_per_epoch: int | None  # training batches per epoch; None = a full pass (2nd ed.)
    description: str
    published_val_mae: float | None = None  # °C, as printed (1st ed.: normalised × 8.85)
    published_test_mae: float | None = None  # °C

    @property
    def edition(self) -> int:
        return get_preset(self.data).edition


_B2 = preset_defaults("book2")  # 50/25/25 rows, hourly, 120 steps, batch 256, mse, °C
_B1 = preset_defaults("book1")  # rows 0-200k/200k-300k, lookback 1440 step 6, batch 128, mae

_MODELS = (
    # 2nd edition, ch. 10: a full pass over the training windows per epoch
    BookModel("dense", _B2.replace(architecture="dense", dense_units=(16,)), "book2", 10, None,
              "Flatten + Dense(16, relu) + Dense(1)", 2.46, 2.59),
    BookModel("conv1d", _B2.replace(architecture="conv1d", conv_filters=(8, 8, 8),
                                    conv_kernel=(24, 12, 6), conv_pool=2, conv_global_pool="avg"),
              "book2", 10, None, "Conv1D(8,24) MaxPool Conv1D(8,12) MaxPool Conv1D(8,6) GAP",
              2.9, 3.14),
    BookModel("lstm", _B2.replace(architecture="lstm", rnn_units=(16,)), "book2", 10, None,
              "LSTM(16)", 2.39, 2.55),
    BookModel("lstm_dropout", _B2.replace(architecture="lstm", rnn_units=(32,),
                                          recurrent_dropout=0.25, head_dropout=0.5),
              "book2", 50, None, "LSTM(32, recurrent_dropout 0.25) + Dropout(0.5)", 2.27, 2.45),
    BookModel("stacked_gru_dropout", _B2.replace(architecture="gru", rnn_units=(32, 32),
                                                 recurrent_dropout=0.5, head_dropout=0.5),
              "book2", 50, None, "GRU(32, rd 0.5) x 2 + Dropout(0.5)", None, 2.39),
    BookModel("bilstm", _B2.replace(architecture="lstm", rnn_units=(16,), bidirectional=True),
              "book2", 10, None, "Bidirectional(LSTM(16))"),
    # 1st edition (listings 6-37 ... 6-49): 500 shuffled batches of 128 per epoch
    BookModel("dense32", _B1.replace(architecture="dense", dense_units=(32,)), "book1", 20, 500,
              "Flatten + Dense(32, relu) + Dense(1)", 2.65),
    BookModel("gru", _B1.replace(architecture="gru", rnn_units=(32,)), "book1", 20, 500,
              "GRU(32)", 2.35),
    BookModel("gru_dropout", _B1.replace(architecture="gru", rnn_units=(32,), dropout=0.2,
                                         recurrent_dropout=0.2),
              "book1", 40, 500, "GRU(32, dropout 0.2, recurrent_dropout 0.2)", 2.32),
    BookModel("stacked_gru", _B1.replace(architecture="gru", rnn_units=(32, 64),
                                         rnn_activation=("tanh", "relu"), dropout=0.1,
                                         recurrent_dropout=0.5),
              "book1", 40, 500, "GRU(32, rd 0.5) + GRU(64, relu, rd 0.5)", 2.33),
    BookModel("bigru", _B1.replace(architecture="gru", rnn_units=(32,), bidirectional=True),
              "book1", 40, 500, "Bidirectional(GRU(32))", 2.32),
    BookModel("gru_reversed", _B1.replace(architecture="gru", rnn_units=(32,), reverse=True),
              "book1", 20, 500, "GRU(32) on reversed sequences"),
    BookModel("conv1d_1st", _B1.replace(architecture="conv1d", conv_filters=(32, 32, 32),
                                        conv_kernel=(5, 5, 5), conv_pool=3,
                                        conv_global_pool="max"),
              "book1", 20, 500, "Conv1D(32,5) x 3 with max pooling"),
    BookModel("conv_gru", _B1.replace(architecture="conv_gru", conv_filters=(32, 32),
                                      conv_kernel=(5, 5), conv_pool=3, rnn_units=(32,),
                                      dropout=0.1, recurrent_dropout=0.5,
                                      sampling_rate=3, sequence_length=480),  # 1440 rows, step 3
              "book1", 20, 500, "Conv1D x 2 + GRU(32), 30-minute steps", 2.42),
)  # fmt: skip

BOOK_MODELS: dict[str, BookModel] = {m.name: m for m in _MODELS}


def book_model(name: str) -> BookModel:
    try:
        return BOOK_MODELS[name]
    except KeyError:
        raise ConfigError(
            f"unknown book model {name!r}: choose one of {', '.join(BOOK_MODELS)}"
        ) from None


def edition_models(data_preset: str) -> list[BookModel]:
    """The book's models of ``data_preset``'s edition (book2 and blocked: the 2nd edition's,
    book1: the 1st's): a blocked split keeps the 2nd edition's windows and defaults."""
    edition = get_preset(data_preset).edition
    return [m for m in _MODELS if m.edition == edition]
