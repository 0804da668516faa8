"""`jena.windows` against `keras.utils.timeseries_dataset_from_array` (the reference)."""

from __future__ import annotations

import os
import tracemalloc
from collections import Counter
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pytest

from jena.windows import WindowDataset, timeseries_dataset

N, F = 97, 3  # rows, features of the test series
RNG = np.random.default_rng(1234)
DATA = RNG.standard_normal((N, F)).astype("float32")  # (time, features)
T1D = RNG.standard_normal(N).astype("float32")  # (time,)
T2D = RNG.standard_normal((N, 2)).astype("float32")  # (time, 2)
TARGETS: dict[str, np.ndarray | None] = {
    "none": None,
    "1d": T1D,
    "2d": T2D,
    "short": RNG.standard_normal(40).astype("float32"),  # caps the window count
    "long": RNG.standard_normal(N + 30).astype("float32"),
}


def keras_batches(data: Any, targets: Any, **kw: Any) -> list[tuple[np.ndarray, ...]]:
    ds = keras.utils.timeseries_dataset_from_array(data, targets, **kw)
    return [tuple(np.asarray(t) for t in (b if isinstance(b, tuple) else (b,))) for b in ds]


def our_batches(ds: WindowDataset) -> list[tuple[np.ndarray, ...]]:
    out: list[tuple[np.ndarray, ...]] = []
    for i in range(len(ds)):
        b = ds[i]
        out.append(b if isinstance(b, tuple) else (b,))
    return out


def window_multiset(batches: list[tuple[np.ndarray, ...]], batched: bool) -> Counter[bytes]:
    """Multiset of (window, target) pairs, order-free."""
    c: Counter[bytes] = Counter()
    for b in batches:
        rows = zip(*b, strict=True) if batched else [b]
        for parts in rows:
            c[b"|".join(np.ascontiguousarray(p).tobytes() for p in parts)] += 1
    return c


# Curated edge cases plus a seeded random sample of the argument space.
CASES: list[dict[str, Any]] = [
    dict(sequence_length=1),
    dict(sequence_length=10, sampling_rate=2, sequence_stride=3),  # Keras docstring example
    dict(sequence_length=5, batch_size=None),
    dict(sequence_length=5, batch_size=1, start_index=0, end_index=20),
    dict(sequence_length=4, sampling_rate=3, batch_size=8, start_index=11, end_index=60),
    dict(sequence_length=N),  # exactly one window
    dict(sequence_length=N + 1),  # no window at all
    dict(sequence_length=3, end_index=0),  # Keras: end_index=0 skips checks, no windows
    dict(sequence_length=3, start_index=5, end_index=0),
    dict(sequence_length=3, start_index=N - 1),  # start past the last full window
    dict(sequence_length=2, sampling_rate=N - 1, end_index=None),
    dict(sequence_length=2, sequence_stride=N - 1),
    dict(sequence_length=2, batch_size=500),
    dict(sequence_length=np.int64(6), sampling_rate=np.int64(2), start_index=np.int64(3)),
]
N_CURATED = len(CASES)  # the rest are random
_r = np.random.default_rng(7)
for _ in range(18):
    _start = [None, 0, int(_r.integers(1, 30))][int(_r.integers(3))]
    _end = [None, int(_r.integers(45, N))][int(_r.integers(2))]
    CASES.append(
        dict(
            sequence_length=int(_r.integers(1, 15)),
            sampling_rate=int(_r.integers(1, 5)),
            sequence_stride=int(_r.integers(1, 6)),
            batch_size=[None, 1, 4, 16, 128][int(_r.integers(5))],
            start_index=_start,
            end_index=_end,
        )
    )


def _ok_targets(kind: str, kw: dict[str, Any]) -> bool:
    # Keras raises InvalidArgumentError mid-iteration when short targets meet start_index>0.
    return not (kind == "short" and kw.get("start_index"))


def _grid(cases: list[dict[str, Any]], kinds: list[str], first: int = 0) -> list[Any]:
    return [
        pytest.param(kw, kind, id=f"case{first + i}-{kind}")
        for i, kw in enumerate(cases)
        for kind in kinds
        if _ok_targets(kind, kw)
    ]


@pytest.mark.parametrize(
    ("kw", "target_kind"),
    _grid(CASES[:N_CURATED], list(TARGETS))
    + _grid(CASES[N_CURATED:], ["none", "1d", "2d", "short"], N_CURATED),
)
def test_unshuffled_batches_identical_to_keras(kw: dict[str, Any], target_kind: str) -> None:
    targets = TARGETS[target_kind]
    ref = keras_batches(DATA, targets, **kw)
    ours = our_batches(timeseries_dataset(DATA, targets, **kw))
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref, strict=True):
        assert len(a) == len(b)
        for u, v in zip(a, b, strict=True):
            assert u.shape == v.shape and u.dtype == v.dtype
            np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize(
    ("kw", "target_kind"),
    _grid(CASES[:6], ["none", "1d", "2d", "short"])
    + _grid(CASES[-8:], ["none", "1d", "2d", "short"], len(CASES) - 8),
)
def test_shuffled_same_windows_as_keras(kw: dict[str, Any], target_kind: str) -> None:
    targets = TARGETS[target_kind]
    ref = keras_batches(DATA, targets, shuffle=True, seed=3, **kw)
    ds = timeseries_dataset(DATA, targets, shuffle=True, seed=3, **kw)
    batched = kw.get("batch_size", 128) is not None
    for _epoch in range(2):
        ours = our_batches(ds)
        assert [len(b[0]) for b in ours] == [len(b[0]) for b in ref]
        assert window_multiset(ours, batched) == window_multiset(ref, batched)
        ds.on_epoch_end()


def test_shuffle_changes_order_each_epoch_and_keeps_the_set() -> None:
    data = np.arange(500, dtype="float32")[:, None]  # row index as the only feature
    ds = timeseries_dataset(data, None, 5, shuffle=True, seed=0, batch_size=32)
    epochs = []
    for _ in range(3):
        epochs.append(np.concatenate([b[0][:, 0, 0] for b in our_batches(ds)]))  # window starts
        ds.on_epoch_end()
    plain = np.arange(ds.num_windows, dtype="float32")
    for e in epochs:
        np.testing.assert_array_equal(np.sort(e), plain)
    assert not np.array_equal(epochs[0], epochs[1])
    assert not np.array_equal(epochs[1], epochs[2])
    assert not np.array_equal(epochs[0], plain)


def test_seeded_determinism() -> None:
    def run(seed: int | None) -> list[np.ndarray]:
        ds = timeseries_dataset(DATA, TARGETS["1d"], 4, shuffle=True, seed=seed, batch_size=16)
        out = []
        for _ in range(2):
            out += [y for _, y in our_batches(ds)]
            ds.on_epoch_end()
        return out

    a, b, c = run(5), run(5), run(6)
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    assert not all(np.array_equal(u, v) for u, v in zip(a, c, strict=True))


def test_unshuffled_epochs_repeat() -> None:
    ds = timeseries_dataset(DATA, TARGETS["1d"], 4, batch_size=16)
    first = our_batches(ds)
    ds.on_epoch_end()
    for (x0, y0), (x1, y1) in zip(first, our_batches(ds), strict=True):
        np.testing.assert_array_equal(x0, x1)
        np.testing.assert_array_equal(y0, y1)


INVALID: list[dict[str, Any]] = [
    dict(start_index=-1),
    dict(start_index=N),
    dict(start_index=10, end_index=10),
    dict(start_index=10, end_index=-5),
    dict(end_index=N),
    dict(end_index=N + 3),
    dict(end_index=-1),
    dict(sampling_rate=0),
    dict(sampling_rate=-2),
    dict(sampling_rate=N),
    dict(sequence_stride=0),
    dict(sequence_stride=N),
    dict(start_index=N + 5, sampling_rate=0),  # first failing check wins
]


@pytest.mark.parametrize("kw", INVALID, ids=[str(k) for k in INVALID])
def test_invalid_arguments_raise_like_keras(kw: dict[str, Any]) -> None:
    with pytest.raises(ValueError) as ref:
        keras.utils.timeseries_dataset_from_array(DATA, None, 3, **kw)
    with pytest.raises(ValueError) as ours:
        timeseries_dataset(DATA, None, 3, **kw)
    assert str(ours.value) == str(ref.value)


@pytest.mark.parametrize(
    "kw",
    [dict(sequence_length=0), dict(sequence_length=-2), dict(batch_size=0), dict(batch_size=-1)],
)
def test_degenerate_arguments_raise_value_error(kw: dict[str, Any]) -> None:
    # Keras yields 0-step windows / raises tf InvalidArgumentError; we refuse early.
    args = {"sequence_length": 3, **kw}
    with pytest.raises(ValueError):
        timeseries_dataset(DATA, None, **args)


def test_short_targets_raise_early() -> None:
    # Keras: num_seqs is capped by len(targets) but targets are indexed from start_index,
    # so the last windows have no target and iteration dies with InvalidArgumentError.
    with pytest.raises(ValueError, match="no target"):
        timeseries_dataset(DATA, TARGETS["short"], 3, start_index=5)


def test_dtype_control() -> None:
    data64 = DATA.astype("float64")
    t64 = T1D.astype("float64")
    x, y = timeseries_dataset(data64, t64, 4)[0]
    assert x.dtype == np.float32 and y.dtype == np.float32
    ours = our_batches(timeseries_dataset(data64, t64, 4, dtype=None, target_dtype=None))
    ref = keras_batches(data64, t64, sequence_length=4)
    for a, b in zip(ours, ref, strict=True):
        for u, v in zip(a, b, strict=True):
            assert u.dtype == v.dtype == np.float64
            np.testing.assert_array_equal(u, v)


def test_window_dataset_explicit_starts() -> None:
    starts = np.array([50, 3, 3, 70, 0])  # any order, repeats allowed
    ds = WindowDataset(DATA, TARGETS["2d"], starts, 5, sampling_rate=4, batch_size=2)
    assert ds.num_windows == 5 and len(ds) == 3
    np.testing.assert_array_equal(ds.starts, starts)
    xs, ys = zip(*our_batches(ds), strict=True)
    x, y = np.concatenate(xs), np.concatenate(ys)
    assert x.shape == (5, 5, F) and y.shape == (5, 2)
    for k, s in enumerate(starts):
        np.testing.assert_array_equal(x[k], DATA[s : s + 20 : 4])
        np.testing.assert_array_equal(y[k], T2D[s])
    np.testing.assert_array_equal(ds[-1][0], ds[2][0])
    with pytest.raises(IndexError):
        ds[3]


@pytest.mark.parametrize(
    ("starts", "targets"),
    [([-1, 2], None), ([N - 4], None), ([60], TARGETS["short"]), ([[1, 2]], None)],
)
def test_window_dataset_rejects_bad_starts(starts: Any, targets: Any) -> None:
    with pytest.raises(ValueError):
        WindowDataset(DATA, targets, np.array(starts), 5)


def test_limit_caps_batches_and_redraws_subset() -> None:
    data = np.arange(1000, dtype="float32")[:, None]
    full = timeseries_dataset(data, None, 10, batch_size=32)
    ds = timeseries_dataset(data, None, 10, batch_size=32, shuffle=True, seed=1, limit=5)
    assert len(full) == 31 and len(ds) == 5 and ds.windows_per_epoch == 160
    assert ds.num_windows == full.num_windows
    seen = []
    for _ in range(3):
        starts = np.concatenate([b[0][:, 0, 0] for b in our_batches(ds)])
        assert len(starts) == 160 and len(np.unique(starts)) == 160
        seen.append(set(starts.tolist()))
        ds.on_epoch_end()
    assert seen[0] != seen[1] != seen[2]
    # Unshuffled: the first `limit` batches, every epoch.
    capped = full.with_limit(3)
    assert len(capped) == 3 and np.shares_memory(capped.data, full.data)
    for a, b in zip(our_batches(capped), our_batches(full)[:3], strict=True):
        np.testing.assert_array_equal(a[0], b[0])
    assert len(full.with_limit(fraction=0.5)) == 16
    assert len(full.with_limit(1000)) == 31
    assert len(capped.with_limit()) == 31


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_memory_holds_no_window_copies(layout: str) -> None:
    data = RNG.standard_normal((40_000, 14)).astype("float32")  # (time, features)
    targets = data[:, 1].copy()  # (time,)
    if layout == "F":  # e.g. DataFrame.to_numpy(); must not be copied whole per batch
        data = np.asfortranarray(data)
    elif layout == "strided":  # column views, as in the book's temperature = raw[:, 1]
        data, targets = data[:, ::2], data[:, 1]
    bs, steps = 8, 120
    ds = timeseries_dataset(data, targets, steps, sampling_rate=6, batch_size=bs, shuffle=True)
    assert np.shares_memory(ds.data, data) and np.shares_memory(ds.targets, targets)
    index_bytes = ds.num_windows * np.dtype(np.intp).itemsize
    for name, value in vars(ds).items():
        if isinstance(value, np.ndarray) and not (
            np.shares_memory(value, data) or np.shares_memory(value, targets)
        ):
            assert value.nbytes <= index_bytes, name  # start rows / their permutation only
    batch_bytes = bs * steps * data.shape[1] * 4  # one x batch
    tracemalloc.start()
    try:
        for i in range(300):
            ds[i]
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        ds.on_epoch_end()
        _, epoch_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # One batch plus its row indices; a copy of `data` or `targets` would not fit.
    assert peak < 2 * batch_bytes + bs * steps * 8 + 16_384, peak
    assert targets.nbytes > 2 * batch_bytes
    assert epoch_peak < 3 * index_bytes  # a new permutation, never windows


def test_model_fit_accepts_it() -> None:
    data = RNG.standard_normal((600, 4)).astype("float32")
    ds = timeseries_dataset(data[:-5], data[5:, 0], 8, batch_size=32, shuffle=True, seed=0, limit=3)
    model = keras.Sequential([keras.Input((8, 4)), keras.layers.Flatten(), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    hist = model.fit(ds, epochs=2, verbose=0)
    assert len(hist.history["loss"]) == 2 and np.isfinite(hist.history["loss"]).all()
    assert model.predict(timeseries_dataset(data, None, 8, limit=1), verbose=0).shape == (128, 1)
