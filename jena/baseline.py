"""The common-sense baseline: the temperature in 24 h equals the last temperature of the window."""

from __future__ import annotations

from typing import Any

from .data import Dataset
from .prepare import Prepared, prepare
from .splits import SplitPreset


def persistence(ds: Dataset, preset: SplitPreset | str = "book2") -> dict[str, Any]:
    """Persistence MAE (°C) on validation and test, with window counts.

    ``val`` uses the leak-free validation windows that models are selected on; ``val_book`` the
    book's own validation windows (whose targets reach up to 24 h into the test rows); ``test``
    the book's test windows (wholly inside the test rows).
    """
    p: Prepared = prepare(ds, preset, include_test=True)
    val, n_val = p.persistence_mae("val")
    val_book, n_val_book = p.persistence_mae("val", mode="book")
    test, n_test = p.persistence_mae("test")
    return {
        "preset": p.preset.name,
        "source": ds.source,
        "digest": ds.digest,
        "rows": p.rows,
        "bounds": p.bounds.to_dict(),
        "sampling_rate": p.preset.sampling_rate,
        "sequence_length": p.preset.sequence_length,
        "val_mae": val,
        "val_windows": n_val,
        "val_book_mae": val_book,
        "val_book_windows": n_val_book,
        "test_mae": test,
        "test_windows": n_test,
    }
