"""Splits, leakage, and the persistence baseline against the book's own code."""

from __future__ import annotations

import numpy as np
import pytest

from jena.baseline import persistence
from jena.data import load
from jena.errors import ConfigError
from jena.prepare import prepare
from jena.schema import TARGET, write_jena_csv
from jena.splits import DATA_PRESETS, get_preset, season_note, split_seasons
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
    # as the real file: no final newline (the book's parser splits on "\n")
    path = write_jena_csv(generate(rows=60_000, seed=5), tmp_path / "clean.csv",
                          final_newline=False)  # fmt: skip
    ours = persistence(load(str(path)), "book2")
    val, test = _book2_reference(path)
    assert ours.val_book_mae == pytest.approx(val, abs=1e-4)
    assert ours.test_mae == pytest.approx(test, abs=1e-4)
    assert 0 < abs(ours.val_mae - ours.val_book_mae) < 0.05  # leak-free windows differ a bit


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


def _book1_reference(frame):
    """The 1st edition's procedure (listings 6-32 to 6-36), verbatim, on the Jena columns of
    ``frame``: persistence MAE in °C on val and test, as ``evaluate_naive_method`` computes it
    (the mean of ``val_steps`` / ``test_steps`` batch MAEs, normalised units × ``std[1]``)."""
    float_data = frame.to_numpy(np.float64).copy()
    mean = float_data[:200000].mean(axis=0)
    float_data -= mean
    std = float_data[:200000].std(axis=0)
    float_data /= std
    lookback = 1440
    step = 6
    delay = 144
    batch_size = 128
    val_gen = _book1_generator(
        float_data,
        lookback=lookback,
        delay=delay,
        min_index=200001,
        max_index=300000,
        step=step,
        batch_size=batch_size,
    )
    test_gen = _book1_generator(
        float_data,
        lookback=lookback,
        delay=delay,
        min_index=300001,
        max_index=None,
        step=step,
        batch_size=batch_size,
    )
    val_steps = (300000 - 200001 - lookback) // batch_size
    test_steps = (len(float_data) - 300001 - lookback) // batch_size

    def evaluate_naive_method(gen, steps):
        batch_maes = []
        for _step in range(steps):
            samples, targets = next(gen)
            preds = samples[:, -1, 1]
            mae = np.mean(np.abs(preds - targets))
            batch_maes.append(mae)
        return np.mean(batch_maes)

    return (
        evaluate_naive_method(val_gen, val_steps) * std[1],
        evaluate_naive_method(test_gen, test_steps) * std[1],
        val_steps,
        test_steps,
    )


# The 1st edition's generator yields only whole batches of 128 consecutive windows and starts
# again at its first row as soon as `i + batch_size >= max_index`: its test_steps always overrun
# the test rows by one or two batches, which repeat the first test batch(es). On 301,650 rows no
# whole test batch fits: the generator yields the same short batch of 64 windows every time.
@pytest.mark.parametrize(
    ("spec", "test_steps", "test_distinct", "test_size"),
    [
        ("synthetic", 930, 929, 128),  # the real length, 420,551 rows: one wrapped batch
        ("synthetic:420624:5", 931, 929, 128),  # longer than the real file: two wrapped batches
        ("synthetic:301650:5", 1, 1, 64),  # just long enough: one short batch
    ],
)
def test_book1_baseline_equals_the_books_code(spec, test_steps, test_distinct, test_size):
    """Absolute bounds on every record long enough for them: ``val_book_mae`` and
    ``test_book_mae`` equal the 1st edition's own generator procedure to 1e-9 °C."""
    ds = load(spec)
    rows = len(ds.frame)
    val, test, val_steps, book_test_steps = _book1_reference(ds.frame)
    ours = persistence(ds, "book1")
    assert ours.bounds == {"train": [0, 200000], "val": [200001, 300000], "test": [300001, rows]}
    assert ours.bounds_scaled is False and ours.bounds_note is None
    assert (val_steps, book_test_steps) == (769, test_steps)
    assert ours.val_book_mae == pytest.approx(val, rel=0, abs=1e-9)
    assert ours.val_book_windows == 769 * 128
    assert ours.test_book_mae == pytest.approx(test, rel=0, abs=1e-9)
    assert ours.test_book_windows == test_steps * test_size  # repeats counted
    assert ours.book_batches["val"] == {"steps": 769, "distinct": 769, "size": 128, "wrapped": 0}
    assert ours.book_batches["test"] == {
        "steps": test_steps,
        "distinct": test_distinct,
        "size": test_size,
        "wrapped": test_steps - test_distinct,
    }
    # Models are tested on each of the book's test windows once (no repeated batch).
    assert ours.test_windows == test_distinct * test_size
    if test_steps == test_distinct:
        assert ours.test_mae == pytest.approx(ours.test_book_mae, rel=0, abs=1e-12)
    else:
        assert ours.test_mae != pytest.approx(ours.test_book_mae, rel=0, abs=1e-9)
    assert ds.frame[TARGET].std() == pytest.approx(8.4, abs=0.7)


@pytest.mark.parametrize("rows", [301_587, 301_650, 360_000, 420_550, 420_551, 420_624, 10**6])
def test_book1_bounds_are_the_books_on_long_enough_records(rows):
    preset = DATA_PRESETS["book1"]
    assert preset.absolute_min_rows == 300_001 + 1440 + 144 + 2 == 301_587
    b = preset.bounds(rows)
    assert (b.train, b.val, b.test) == ((0, 200_000), (200_001, 300_000), (300_001, rows))
    assert preset.bounds_scaled(rows) is False
    assert preset.bounds_note(rows) is None
    # the book's test generator yields at least one window: min_index + lookback < max_index
    assert rows - 144 - 1 > 300_001 + 1440


@pytest.mark.parametrize(
    ("rows", "train", "val", "test"),
    [
        (24_000, (0, 11_414), (11_415, 17_120), (17_121, 24_000)),
        (120_000, (0, 57_068), (57_069, 85_602), (85_603, 120_000)),
        (301_586, (0, 143_424), (143_425, 215_136), (215_137, 301_586)),
    ],
)
def test_book1_bounds_scale_by_fraction_on_short_records(rows, train, val, test):
    """Below 301,587 rows the book's bounds are scaled by rows / 420,551, exactly as before."""
    preset = DATA_PRESETS["book1"]
    b = preset.bounds(rows)
    assert (b.train, b.val, b.test) == (train, val, test)
    assert preset.bounds_scaled(rows) is True
    note = preset.bounds_note(rows)
    assert note is not None and "\n" not in note
    assert note.startswith(f"book1: the record has {rows:,} rows, fewer than the 301,587")
    assert f"scaled by {rows / 420_551:.4f}" in note
    assert f"val {val[0]:,}–{val[1]:,}" in note and f"test {test[0]:,}–{test[1]:,}" in note


@pytest.mark.parametrize("rows", [24_000, 420_551, 420_624])
def test_book2_bounds_are_never_flagged_as_scaled(rows):
    assert DATA_PRESETS["book2"].bounds_scaled(rows) is False
    assert DATA_PRESETS["book2"].bounds_note(rows) is None


def test_the_baseline_says_when_book1_bounds_are_scaled(small):
    ours = persistence(small, "book1")
    assert ours.bounds_scaled is True
    assert ours.bounds_note == DATA_PRESETS["book1"].bounds_note(24_000)
    two = persistence(small, "book2")
    assert two.bounds_scaled is False and two.bounds_note is None
    assert two.book_batches is None
    assert two.test_book_mae == two.test_mae
    assert two.test_book_windows == two.test_windows


@pytest.mark.parametrize(
    ("max_index", "steps", "distinct", "size"),
    [
        (420_406, 930, 929, 128),  # the real file's test split
        (301_441 + 256, 3, 1, 128),  # `i + 128 >= max_index` resets before the 2nd whole batch
        (301_441 + 129, 2, 1, 128),  # exactly one whole batch, then the wrap
        (301_441 + 128, 2, 1, 128),  # no whole batch: the same short batch (of 128) every time
        (301_441 + 5, 1, 1, 5),  # one short batch
    ],
)
def test_book1_batches_follow_the_generator(max_index, steps, distinct, size):
    """``book_batches`` predicts exactly the rows the verbatim generator yields, batch by batch."""
    rows = max_index + 145  # the test generator's max_index is len(data) - delay - 1
    preset = DATA_PRESETS["book1"]
    bb = preset.book_batches(rows, "test")
    assert (bb.first, bb.steps, bb.distinct, bb.size) == (300_001, steps, distinct, size)
    assert bb.steps == (rows - 300001 - 1440) // 128  # the book's test_steps
    data = np.zeros((rows, 2))
    data[:, 1] = np.arange(rows)  # targets[j] - delay is the generator's row i
    gen = _book1_generator(data, 1440, 144, 300_001, None)
    for j in range(bb.steps):
        _samples, targets = next(gen)
        first = bb.first + 1440 + (j % bb.distinct) * bb.size
        np.testing.assert_array_equal(targets - 144, np.arange(first, first + bb.size))
    assert bb.draws().sum() == bb.steps and len(bb.draws()) == bb.distinct
    assert bb.wrapped == steps - distinct and bb.windows == steps * size
    lo, stop = preset.window_range(rows, "test", mode="book")
    assert (lo, stop - lo) == (300_001, distinct * size)


def test_book1_procedure_on_scaled_bounds_is_the_generator_on_them(small):
    """On a short record the book's procedure runs on the scaled bounds: the verbatim generator
    with min_index/max_index (and val_steps/test_steps) taken from them, to 1e-9 °C."""
    b = DATA_PRESETS["book1"].bounds(len(small.frame))
    float_data = small.frame.to_numpy(np.float64).copy()
    mean = float_data[: b.train[1]].mean(axis=0)
    std = float_data[: b.train[1]].std(axis=0)
    float_data = (float_data - mean) / std
    lookback, delay, batch_size = 1440, 144, 128
    ours = persistence(small, "book1")
    for split, max_index, steps in (
        ("val", b.val[1], (b.val[1] - b.val[0] - lookback) // batch_size),
        ("test", None, (len(float_data) - b.test[0] - lookback) // batch_size),
    ):
        gen = _book1_generator(float_data, lookback, delay, b[split][0], max_index)
        maes = [np.mean(np.abs(x[:, -1, 1] - y)) for x, y in (next(gen) for _ in range(steps))]
        assert getattr(ours, f"{split}_book_mae") == pytest.approx(
            np.mean(maes) * std[1], rel=0, abs=1e-9
        )
        assert getattr(ours, f"{split}_book_windows") == steps * batch_size


# --------------------------------------------------------------- blocked: the season-aware split
@pytest.fixture(scope="module")
def year():
    return load("synthetic:52704")  # one year, 10-minute rows, from 1 January


def _roles(preset, rows):
    """The role of every row: 0 train, 1 val, 2 test, -1 none."""
    b = preset.bounds(rows)
    role = np.full(rows, -1)
    for k, split in enumerate(("train", "val", "test")):
        role[b.mask(split, rows)] = k
    return role


def test_blocked_grammar():
    default = get_preset("blocked")
    assert (default.block_days, default.roles) == (14, ("train", "train", "val", "test"))
    assert default.edition == 2 and (default.sampling_rate, default.sequence_length) == (6, 120)
    four = get_preset("blocked:28")
    assert four.name == "blocked:28:train,train,val,test" and four.block_days == 28
    custom = get_preset(" blocked:7:train,val,train,test ")
    assert custom.roles == ("train", "val", "train", "test")
    assert get_preset(custom.name) == custom  # the name round-trips (stored with models)
    assert get_preset("blocked:14:train,train,val,test").name == "blocked"
    for bad, part in [
        ("blocked:x", "'x'"),
        ("blocked:0", "'0'"),
        ("blocked:14:train,vaal,test", "'vaal'"),
        ("blocked:14:train,val", "'test'"),
        ("blocked:1:2:3", "book2"),
    ]:
        with pytest.raises(ConfigError) as err:
            get_preset(bad)
        assert part in str(err.value) and "\n" not in str(err.value), bad


def test_blocked_bounds_rotate_whole_blocks():
    preset = get_preset("blocked")
    rows = 52_704
    role = _roles(preset, rows)
    assert (role >= 0).all()  # every row has a role
    block = 14 * 144
    for k in range(rows // block):
        assert (role[k * block : (k + 1) * block] == [0, 0, 1, 2][k % 4]).all()
    b = preset.bounds(rows)
    assert b.train_segments[0] == (0, 2 * block)  # adjacent training blocks are one segment
    assert b.val_segments[0] == (2 * block, 3 * block)
    assert b.to_dict()["test"][0] == [3 * block, 4 * block]
    assert not b.chronological and DATA_PRESETS["book2"].bounds(rows).chronological
    assert DATA_PRESETS["book2"].bounds(rows).to_dict()["val"] == [26_352, 39_528]


@pytest.mark.parametrize("spec", ["blocked", "blocked:28", "blocked:7:train,val,test,train"])
@pytest.mark.parametrize(("rate", "length"), [(6, 120), (1, 144), (3, 48), (6, 240)])
def test_blocked_windows_never_read_what_their_split_holds_apart(spec, rate, length):
    """Training windows read training rows only (inputs and target); every validation and test
    target lies in a block of its split, a validation window never reads a test row, and every
    window is scored on the preset window's targets (the first lies 858 rows into its block)."""
    preset = get_preset(spec)
    rows = 52_704
    role = _roles(preset, rows)
    offset = preset.offset(rate, length)
    for k, split in enumerate(("train", "val", "test")):
        try:
            starts = preset.window_starts(rows, split, sampling_rate=rate, sequence_length=length)
        except ConfigError as exc:
            # 7-day blocks: a 10-day history reaches a test block (val) or a block's start (train)
            assert preset.block_days == 7 and length * rate > 7 * 144, (split, str(exc))
            assert "\n" not in str(exc)
            continue
        assert len(starts) and np.all(np.diff(starts) > 0)
        inputs = starts[:, None] + np.arange(length) * rate
        targets = starts + offset
        assert (role[targets] == k).all(), split
        if split == "train":
            assert (role[inputs] == 0).all()
            continue
        assert not (role[inputs] == 2).any() or split == "test"
        ref = [(lo + 858, hi) for lo, hi in preset.bounds(rows).segments(split)]  # by hand
        expected = np.concatenate([np.arange(lo, hi) for lo, hi in ref if hi > lo])
        np.testing.assert_array_equal(targets, expected)


def test_blocks_too_short_for_the_scored_targets_are_a_clear_error():
    with pytest.raises(ConfigError, match="blocks of at least 7 days") as err:
        get_preset("blocked:3").window_starts(52_704, "val", sampling_rate=3, sequence_length=8)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("spec", "days"), [("blocked", 40), ("book2", 120)])
def test_a_window_reaching_rows_its_split_holds_apart_is_refused_in_one_line(spec, days):
    """A validation history of 40 days reaches the test block before the two training blocks
    (blocked); one of 120 days the record's first row (book2 on 200 days: validation starts on
    day 100): refused in one line, naming the most history that fits."""
    preset = get_preset(spec)
    rows = 200 * 144
    with pytest.raises(ConfigError, match="use at most") as err:
        preset.window_starts(rows, "val", sampling_rate=6, sequence_length=days * 24)
    assert "\n" not in str(err.value)
    fits = int(str(err.value).split("use at most ")[1].split(" h")[0])
    starts = preset.window_starts(rows, "val", sampling_rate=6, sequence_length=fits // 6)
    assert len(starts)  # the most history the message names does fit


def test_blocked_no_test_row_is_loaded_and_none_influences_training(year):
    """Without include_test, test rows are blanked (NaN, invalid), the test split cannot be
    asked for; poisoning every test row changes no statistic, training or validation window;
    poisoning every validation row changes no training window."""
    preset = get_preset("blocked")
    rows = len(year.frame)
    b = preset.bounds(rows)
    test_rows, val_rows = b.mask("test", rows), b.mask("val", rows)
    clean = prepare(year, preset)
    assert len(clean.x) == len(clean.temperature) == len(clean.valid) <= rows
    kept = test_rows[: len(clean.x)]
    assert np.isnan(clean.x[kept]).all() and np.isnan(clean.temperature[kept]).all()
    assert not clean.valid[kept].any() and np.isfinite(clean.x[~kept]).all()
    with pytest.raises(ConfigError, match="only `jena best`"):
        clean.starts("test")
    with pytest.raises(ConfigError, match="book2's and book1's only"):
        clean.starts("val", mode="book")

    def poisoned(mask, value):
        frame = year.frame.copy()
        frame.iloc[mask] = value
        return prepare(type(year)(frame, year.valid, year.source, year.report), preset)

    tp = poisoned(test_rows, -999.0)
    np.testing.assert_array_equal(clean.mean, tp.mean)
    np.testing.assert_array_equal(clean.std, tp.std)
    _assert_same_windows(clean, tp, "train")
    _assert_same_windows(clean, tp, "val")
    vp = poisoned(val_rows, 999.0)
    np.testing.assert_array_equal(clean.mean, vp.mean)
    _assert_same_windows(clean, vp, "train")
    full = prepare(year, preset, include_test=True)
    assert np.isfinite(full.x).all() and len(full.starts("test"))


def test_blocked_every_split_covers_every_season(year):
    held = split_seasons(get_preset("blocked").bounds(len(year.frame)), year.frame.index)
    assert held == {s: ["winter", "spring", "summer", "autumn"] for s in ("train", "val", "test")}
    chrono = split_seasons(DATA_PRESETS["book2"].bounds(len(year.frame)), year.frame.index)
    assert chrono["val"] == ["summer", "autumn"]  # July-September, and a little October


def test_the_season_note_warns_on_one_year_and_not_on_the_full_length(year):
    for name in ("book2", "book1"):
        note = season_note(name, year.frame.index)
        assert note is not None and "\n" not in note, name
        assert "different seasons" in note and "--preset blocked" in note
        assert "validation summer, autumn" in note
    assert season_note("blocked", year.frame.index) is None
    full = load("synthetic:420551").frame.index  # 8 years
    assert season_note("book2", full) is None and season_note("book1", full) is None
    assert persistence(year, "book2").season_note == season_note("book2", year.frame.index)


def test_persistence_is_a_typed_result_that_prints_as_before():
    import json
    import math

    from jena.baseline import PersistenceResult

    result = persistence(load("synthetic:24000:3"), "book2", ridge=True)
    assert isinstance(result, PersistenceResult)
    assert math.isfinite(result.val_mae) and result.val_windows > 0 and result.ridge is not None
    as_json = json.loads(json.dumps(result.to_dict()))  # what `jena baseline --json` prints
    assert list(as_json) == [
        "preset", "source", "digest", "rows", "bounds", "bounds_scaled", "bounds_note",
        "sampling_rate", "sequence_length", "val_mae", "val_windows", "val_book_mae",
        "val_book_windows", "test_mae", "test_windows", "test_book_mae", "test_book_windows",
        "book_batches", "season_note", "ridge",
    ]  # fmt: skip
    assert as_json["val_mae"] == result.val_mae and as_json["ridge"]["val"]["split"] == "val"
