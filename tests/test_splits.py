"""Splits, leakage, and the persistence baseline against the book's own code."""

from __future__ import annotations

import numpy as np
import pytest

from jena.baseline import persistence
from jena.data import load
from jena.errors import ConfigError
from jena.prepare import prepare
from jena.schema import TARGET, write_jena_csv
from jena.splits import DATA_PRESETS, get_preset
from jena.synthetic import generate


@pytest.fixture(scope="module")
def small():
    return load("synthetic:24000:3")


def test_book_bounds_on_the_real_length():
    # int(0.5 N), int(0.25 N), rest, as the 2nd edition's code computes them. (The book prints
    # 210,225 / 105,112 / 105,114, which sum to 420,451: 100 rows fewer than the file has.)
    b2 = DATA_PRESETS["book2"].bounds(420_551)
    assert (b2.train, b2.val, b2.test) == ((0, 210_275), (210_275, 315_412), (315_412, 420_551))
    assert DATA_PRESETS["book2"].bounds(420_451).val == (210_225, 315_337)
    b1 = DATA_PRESETS["book1"].bounds(420_551)
    assert (b1.train, b1.val, b1.test) == ((0, 200_000), (200_001, 300_000), (300_001, 420_551))


@pytest.mark.parametrize("name", ["book2", "book1"])
def test_bounds_scale_by_fraction(name):
    b = DATA_PRESETS[name].bounds(42_055)
    assert b.train[0] == 0 and b.test[1] == 42_055
    assert b.train[1] <= b.val[0] < b.val[1] <= b.test[0]
    ref = DATA_PRESETS[name].bounds(420_551)
    assert b.train[1] / 42_055 == pytest.approx(ref.train[1] / 420_551, abs=1e-4)
    assert b.val[1] / 42_055 == pytest.approx(ref.val[1] / 420_551, abs=1e-4)


@pytest.mark.parametrize("name", ["book2", "book1"])
@pytest.mark.parametrize(("rate", "length"), [(6, 120), (1, 144), (3, 48), (2, 360)])
def test_strict_windows_stay_inside_their_split(name, rate, length):
    preset = DATA_PRESETS[name]
    rows = 24_000
    b = preset.bounds(rows)
    offset = preset.offset(rate, length)
    assert offset >= (length - 1) * rate + 144  # target at least 24 h after the last input
    for split in ("train", "val", "test"):
        lo, stop = preset.window_range(rows, split, sampling_rate=rate, sequence_length=length)
        first_row, last_row = lo, stop - 1 + offset  # first input row, last target row
        assert b[split][0] <= first_row and last_row < b[split][1], split


def test_a_window_that_does_not_fit_is_a_clear_error():
    with pytest.raises(ConfigError, match="does not fit the val split") as err:
        DATA_PRESETS["book2"].window_range(24_000, "val", sampling_rate=6, sequence_length=2000)
    assert "\n" not in str(err.value)


def test_unknown_preset():
    with pytest.raises(ConfigError, match="book2, book1"):
        get_preset("book3")


def _assert_same_windows(a, b, split):
    """Every batch of inputs and targets of ``split`` is identical in ``a`` and ``b``."""
    da, db = a.windows(split, batch_size=512), b.windows(split, batch_size=512)
    assert len(da) == len(db)
    for i in range(len(da)):
        (x1, y1), (x2, y2) = da[i], db[i]
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)


@pytest.mark.parametrize("name", ["book2", "book1"])
def test_no_validation_or_test_row_influences_training(small, name):
    """Overwrite every row from the end of training on: statistics, training inputs and training
    targets are unchanged. Overwrite every test row: validation inputs and targets are unchanged."""
    preset = DATA_PRESETS[name]
    b = preset.bounds(len(small.frame))
    clean = prepare(small, preset, include_test=True)

    poisoned_frame = small.frame.copy()
    poisoned_frame.iloc[b.train[1] :] = 999.0
    poisoned = prepare(
        type(small)(poisoned_frame, small.valid, small.source, small.report),
        preset,
        include_test=True,
    )
    np.testing.assert_array_equal(clean.mean, poisoned.mean)
    np.testing.assert_array_equal(clean.std, poisoned.std)
    _assert_same_windows(clean, poisoned, "train")
    for normalised in (False, True):
        off = preset.offset()
        s = clean.starts("train")
        np.testing.assert_array_equal(
            clean.targets(off, normalised)[s], poisoned.targets(off, normalised)[s]
        )

    test_poisoned = small.frame.copy()
    test_poisoned.iloc[b.test[0] :] = -999.0
    tp = prepare(
        type(small)(test_poisoned, small.valid, small.source, small.report),
        preset,
        include_test=True,
    )
    _assert_same_windows(clean, tp, "val")


def test_sweeps_do_not_load_test_rows(small):
    p = prepare(small, "book2")
    assert len(p.x) == len(p.temperature) == p.bounds.test[0]
    with pytest.raises(ConfigError, match="only `jena best`"):
        p.starts("test")
    with pytest.raises(ConfigError, match="not loaded"):
        p.starts("val", mode="book")  # the book's val targets reach into the test rows


def test_long_gaps_remove_the_windows_that_touch_them(small):
    valid = small.valid.copy()
    b = DATA_PRESETS["book2"].bounds(len(valid))
    valid[b.train[0] + 3000 : b.train[0] + 3100] = False
    gap = type(small)(small.frame, valid, small.source, small.report)
    all_starts = prepare(small, "book2").starts("train")
    kept = prepare(gap, "book2").starts("train")
    assert len(kept) < len(all_starts)
    span, off = 119 * 6, DATA_PRESETS["book2"].offset()
    for s in kept[:: max(1, len(kept) // 500)]:
        assert valid[s : s + span + 1].all() and valid[s + off]


# --------------------------------------------------------------- the book's own procedures
def _book2_reference(path):
    """The 2nd edition's code, as printed (listing 10.1-10.7), on the CSV at ``path``."""
    import keras

    with open(path) as f:
        data = f.read()
    lines = data.split("\n")
    header = lines[0].split(",")
    lines = lines[1:]
    temperature = np.zeros((len(lines),))
    raw_data = np.zeros((len(lines), len(header) - 1))
    for i, line in enumerate(lines):
        values = [float(x) for x in line.split(",")[1:]]
        temperature[i] = values[1]
        raw_data[i, :] = values[:]
    num_train_samples = int(0.5 * len(raw_data))
    num_val_samples = int(0.25 * len(raw_data))
    mean = raw_data[:num_train_samples].mean(axis=0)
    raw_data -= mean
    std = raw_data[:num_train_samples].std(axis=0)
    raw_data /= std
    sampling_rate = 6
    sequence_length = 120
    delay = sampling_rate * (sequence_length + 24 - 1)
    batch_size = 256
    val_dataset = keras.utils.timeseries_dataset_from_array(
        raw_data[:-delay],
        targets=temperature[delay:],
        sampling_rate=sampling_rate,
        sequence_length=sequence_length,
        shuffle=True,
        batch_size=batch_size,
        start_index=num_train_samples,
        end_index=num_train_samples + num_val_samples,
    )
    test_dataset = keras.utils.timeseries_dataset_from_array(
        raw_data[:-delay],
        targets=temperature[delay:],
        sampling_rate=sampling_rate,
        sequence_length=sequence_length,
        shuffle=True,
        batch_size=batch_size,
        start_index=num_train_samples + num_val_samples,
    )

    def evaluate_naive_method(dataset):
        total_abs_err = 0.0
        samples_seen = 0
        for samples, targets in dataset:
            preds = samples[:, -1, 1] * std[1] + mean[1]
            total_abs_err += np.sum(np.abs(preds - targets))
            samples_seen += samples.shape[0]
        return total_abs_err / samples_seen

    return evaluate_naive_method(val_dataset), evaluate_naive_method(test_dataset)


def test_book2_baseline_equals_the_books_code(tmp_path):
    path = write_jena_csv(generate(rows=60_000, seed=5), tmp_path / "clean.csv")
    ours = persistence(load(str(path)), "book2")
    val, test = _book2_reference(path)
    assert ours["val_book_mae"] == pytest.approx(val, abs=1e-4)
    assert ours["test_mae"] == pytest.approx(test, abs=1e-4)
    assert 0 < abs(ours["val_mae"] - ours["val_book_mae"]) < 0.05  # leak-free windows differ a bit


def _book1_generator(
    data, lookback, delay, min_index, max_index, shuffle=False, batch_size=128, step=6
):
    """The 1st edition's generator (listing 6-33), verbatim."""
    if max_index is None:
        max_index = len(data) - delay - 1
    i = min_index + lookback
    while 1:
        if shuffle:
            rows = np.random.randint(min_index + lookback, max_index, size=batch_size)
        else:
            if i + batch_size >= max_index:
                i = min_index + lookback
            rows = np.arange(i, min(i + batch_size, max_index))
            i += len(rows)
        samples = np.zeros((len(rows), lookback // step, data.shape[-1]))
        targets = np.zeros((len(rows),))
        for j, _row in enumerate(rows):
            indices = range(rows[j] - lookback, rows[j], step)
            samples[j] = data[indices]
            targets[j] = data[rows[j] + delay][1]
        yield samples, targets


@pytest.mark.slow
def test_book1_baseline_equals_the_books_code():
    """On the full length (the 1st edition hard-codes row 200,000 and 300,000)."""
    ds = load("synthetic")
    float_data = ds.frame.to_numpy(np.float64).copy()
    mean = float_data[:200000].mean(axis=0)
    float_data -= mean
    std = float_data[:200000].std(axis=0)
    float_data /= std
    lookback, step, delay, batch_size = 1440, 6, 144, 128
    val_gen = _book1_generator(
        float_data, lookback, delay, 200001, 300000, step=step, batch_size=batch_size
    )
    test_gen = _book1_generator(
        float_data, lookback, delay, 300001, None, step=step, batch_size=batch_size
    )
    val_steps = (300000 - 200001 - lookback) // batch_size
    test_steps = (len(float_data) - 300001 - lookback) // batch_size

    def evaluate_naive_method(gen, steps):
        batch_maes = []
        for _ in range(steps):
            samples, targets = next(gen)
            preds = samples[:, -1, 1]
            batch_maes.append(np.mean(np.abs(preds - targets)))
        return np.mean(batch_maes)

    ours = persistence(ds, "book1")
    assert ours["val_book_mae"] == pytest.approx(
        evaluate_naive_method(val_gen, val_steps) * std[1], abs=1e-4
    )
    # The book's test_steps (930) overruns its generator by one batch, which wraps around to the
    # first batch again; we count each test window once: the 929 whole batches before the wrap.
    assert test_steps == 930
    assert ours["test_windows"] == 929 * batch_size
    assert ours["test_mae"] == pytest.approx(
        evaluate_naive_method(test_gen, test_steps - 1) * std[1], abs=1e-4
    )
    assert ds.frame[TARGET].std() == pytest.approx(8.4, abs=0.7)
