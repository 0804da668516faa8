"""The common-sense baseline: the temperature in 24 h equals the last temperature of the window."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .data import Dataset
from .prepare import Prepared, prepare
from .splits import Split, SplitPreset, season_note, valid_starts

if TYPE_CHECKING:
    from .linear import RidgeReference


def book1_procedure_mae(p: Prepared, split: Split) -> tuple[float, int]:
    """Persistence MAE (°C) of the 1st edition's ``evaluate_naive_method`` on ``split``.

    The mean over the ``val_steps`` / ``test_steps`` batches the book draws from its generator
    (:meth:`jena.splits.SplitPreset.book_batches`), a batch drawn again after the generator
    wrapped around counting again. All the book's batches hold the same number of windows, so
    this is the mean of its batch MAEs. Windows touching a long gap of the record are left out
    (the book has no gaps; on a record with gaps this is the weighted mean of the rest). Returns
    the MAE and the windows drawn, repeats counted.
    """
    preset = p.preset
    r, n = preset.sampling_rate, preset.sequence_length
    bb = preset.book_batches(p.rows, split)
    lo, stop = preset.window_range(p.rows, split, mode="book")  # raises if no window fits
    starts = np.arange(lo, stop, dtype=np.int64)
    weights = np.repeat(bb.draws()[: (stop - lo) // bb.size], bb.size)
    span, offset = (n - 1) * r, preset.offset()
    keep = np.isin(starts, valid_starts(p.valid, starts, span, offset), assume_unique=True)
    starts, weights = starts[keep], weights[keep]
    err = p.persistence_errors(starts, r, n)
    return float(np.sum(weights * err) / np.sum(weights)), int(np.sum(weights))


@dataclass(frozen=True)
class PersistenceResult:
    """Persistence on a record's validation and test windows (:func:`persistence`); its
    :meth:`to_dict` is what ``jena baseline --json`` prints."""

    preset: str
    source: str
    digest: str
    rows: int
    bounds: dict[str, Any]  # each split's [first, stop] rows (SplitBounds.to_dict)
    bounds_scaled: bool
    bounds_note: str | None
    sampling_rate: int
    sequence_length: int
    val_mae: float  # °C, the leak-free validation windows models are selected on
    val_windows: int
    val_book_mae: float  # the book's own validation procedure
    val_book_windows: int  # windows drawn, repeats counted
    test_mae: float  # the test windows `jena best` tests models on, each once
    test_windows: int
    test_book_mae: float  # the book's own test procedure
    test_book_windows: int
    book_batches: dict[str, dict[str, int]] | None  # book1's batch arithmetic per split
    season_note: str | None
    ridge: dict[str, RidgeReference] | None  # the linear reference on "val" and "test"

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if self.ridge is not None:
            out["ridge"] = {split: r.to_dict() for split, r in self.ridge.items()}
        return out


def persistence(
    ds: Dataset, preset: SplitPreset | str = "book2", *, ridge: bool = False
) -> PersistenceResult:
    """Persistence MAE (°C) on validation and test, with window counts.

    ``val`` uses the leak-free validation windows that models are selected on; ``val_book`` the
    book's own validation procedure (whose targets reach up to 24 h into the test rows); ``test``
    the book's test windows (wholly inside the test rows), each once: the windows ``jena best``
    tests models on; ``test_book`` the book's own test procedure. They differ for ``book1`` only:
    the 1st edition's ``test_steps`` overrun its generator, which wraps around and draws its first
    test batch (or two) again; ``book_batches`` gives the arithmetic (``None`` for ``book2``).
    ``*_book_windows`` count the windows drawn, repeats included.

    ``bounds_scaled`` / ``bounds_note``: whether ``book1`` scaled the 1st edition's absolute
    bounds because the record is too short for them, and a one-line note saying how (or None).
    ``season_note``: :func:`jena.splits.season_note` (a chronological split of a short record).
    ``blocked`` has no book procedure: its ``*_book_*`` figures are its own windows'.

    ``ridge``: also the linear reference (:func:`jena.linear.ridge_reference`), fitted on the
    training windows, on validation and test (``ridge.val``, ``ridge.test``: its MAE, and
    persistence's, skill, difference with 95 % intervals, DM test).
    """
    p: Prepared = prepare(ds, preset, include_test=True)
    val, n_val = p.persistence_mae("val")
    test, n_test = p.persistence_mae("test")
    book_batches: dict[str, dict[str, int]] | None = None
    val_book, n_val_book, test_book, n_test_book = val, n_val, test, n_test
    if p.preset.edition == 1:
        val_book, n_val_book = book1_procedure_mae(p, "val")
        test_book, n_test_book = book1_procedure_mae(p, "test")
        book_batches = {
            split: p.preset.book_batches(p.rows, split).to_dict() for split in ("val", "test")
        }
    elif not p.preset.blocked:
        val_book, n_val_book = p.persistence_mae("val", mode="book")
    references: dict[str, RidgeReference] | None = None
    if ridge:
        from .linear import fit_ridge, ridge_reference

        fitted = fit_ridge(p)
        references = {s: ridge_reference(p, s, fitted) for s in ("val", "test")}
    return PersistenceResult(
        preset=p.preset.name,
        source=ds.source,
        digest=ds.digest,
        rows=p.rows,
        bounds=p.bounds.to_dict(),
        bounds_scaled=p.preset.bounds_scaled(p.rows),
        bounds_note=p.preset.bounds_note(p.rows),
        sampling_rate=p.preset.sampling_rate,
        sequence_length=p.preset.sequence_length,
        val_mae=val,
        val_windows=n_val,
        val_book_mae=val_book,
        val_book_windows=n_val_book,
        test_mae=test,
        test_windows=n_test,
        test_book_mae=test_book,
        test_book_windows=n_test_book,
        book_batches=book_batches,
        season_note=season_note(p.preset, ds.frame.index),
        ridge=references,
    )
