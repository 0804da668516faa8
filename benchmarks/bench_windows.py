"""One training pass of the book's Jena setup: Keras `tf.data` windows vs `jena.windows`.

DLwP ch. 10: sampling_rate=6, sequence_length=120, delay=6*(120+24-1), batch_size=256,
train split rows [0, 210225) of ``data[:-delay]`` with ``targets = T[delay:]``,
shuffle=True. Both sides build the dataset and touch every batch as NumPy.

    python benchmarks/bench_windows.py [--json PATH]

Also: the memory-bandwidth floor of one pass (the bytes the batches hold ÷ the speed of one
plain large copy) and how close our pass comes to it; figures go to
benchmarks/results/windows.json.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import resource
import sys
import time
import tracemalloc
from typing import Any

import keras
import numpy as np

from jena.windows import timeseries_dataset

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import save

ROWS, FEATURES = 420_551, 14
SAMPLING_RATE, SEQUENCE_LENGTH, BATCH_SIZE = 6, 120, 256
DELAY = SAMPLING_RATE * (SEQUENCE_LENGTH + 24 - 1)
NUM_TRAIN = 210_225


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _ours(data: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
    rss0 = _rss_mib()
    t0 = time.perf_counter()
    ds = timeseries_dataset(
        data, targets, SEQUENCE_LENGTH, sampling_rate=SAMPLING_RATE, batch_size=BATCH_SIZE,
        shuffle=True, seed=0, start_index=0, end_index=NUM_TRAIN,
    )  # fmt: skip
    t1 = time.perf_counter()
    windows = 0
    for i in range(len(ds)):
        x, y = ds[i]  # (batch, steps, features), (batch,)
        windows += min(len(x), len(y))
    t2 = time.perf_counter()
    rss_increase = _rss_mib() - rss0
    tracemalloc.start()  # second, untimed epoch: peak Python-visible allocation
    ds.on_epoch_end()
    for i in range(len(ds)):
        ds[i]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return dict(build=t1 - t0, pass_=t2 - t1, windows=windows, batches=len(ds),
                peak_traced=peak / 2**20, rss_increase=rss_increase)  # fmt: skip


def _copy_bandwidth(nbytes: int = 256 * 2**20) -> float:
    """Bytes per second of one plain large copy (best of 3): the memory bandwidth a gather
    cannot beat."""
    src = np.ones(nbytes // 4, np.float32)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return nbytes / best


def _keras(data: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
    rss0 = _rss_mib()
    t0 = time.perf_counter()
    ds = keras.utils.timeseries_dataset_from_array(
        data, targets, sequence_length=SEQUENCE_LENGTH, sampling_rate=SAMPLING_RATE,
        batch_size=BATCH_SIZE, shuffle=True, seed=0, start_index=0, end_index=NUM_TRAIN,
    )  # fmt: skip
    t1 = time.perf_counter()
    windows = batches = 0
    for x, y in ds:
        xn, _ = x.numpy(), y.numpy()
        windows += len(xn)
        batches += 1
    t2 = time.perf_counter()
    return dict(build=t1 - t0, pass_=t2 - t1, windows=windows, batches=batches,
                rss_increase=_rss_mib() - rss0)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None, help="where to write the figures")
    args = parser.parse_args()
    raw = np.random.default_rng(0).standard_normal((ROWS, FEATURES), dtype=np.float32)
    temperature = raw[:, 1]  # (time,)
    data, targets = raw[:-DELAY], temperature[DELAY:]  # book2 alignment
    ours = _ours(data, targets)  # first: ru_maxrss is a high-water mark
    ref = _keras(data, targets)
    assert ours["windows"] == ref["windows"] and ours["batches"] == ref["batches"]

    total_o, total_k = ours["build"] + ours["pass_"], ref["build"] + ref["pass_"]
    print(f"Jena train pass: data {data.shape} float32 ({data.nbytes / 2**20:.1f} MiB), "
          f"L={SEQUENCE_LENGTH} rate={SAMPLING_RATE} delay={DELAY} batch={BATCH_SIZE}, "
          f"shuffle=True")  # fmt: skip
    print(f"windows={ours['windows']}  batches={ours['batches']}  keras={keras.__version__} "
          f"backend={keras.backend.backend()}")  # fmt: skip
    print(f"{'':38}{'build s':>10}{'pass s':>10}{'total s':>10}{'windows/s':>12}")
    for name, r, tot in [
        ("keras timeseries_dataset_from_array", ref, total_k),
        ("jena.windows.timeseries_dataset", ours, total_o),
    ]:
        print(f"{name:38}{r['build']:10.3f}{r['pass_']:10.3f}{tot:10.3f}"
              f"{r['windows'] / tot:12,.0f}")  # fmt: skip
    print(f"speed-up (total): {total_k / total_o:.1f}x   (pass only: "
          f"{ref['pass_'] / ours['pass_']:.1f}x)   target >= 30x")  # fmt: skip
    print(f"ours: peak traced alloc {ours['peak_traced']:.1f} MiB, peak RSS increase "
          f"{ours['rss_increase']:.1f} MiB (one batch = "
          f"{BATCH_SIZE * SEQUENCE_LENGTH * FEATURES * 4 / 2**20:.1f} MiB; all windows would "
          f"be {ours['windows'] * SEQUENCE_LENGTH * FEATURES * 4 / 2**30:.1f} GiB); keras: "
          f"peak RSS increase {ref['rss_increase']:.1f} MiB")  # fmt: skip
    gathered = ours["windows"] * (SEQUENCE_LENGTH * FEATURES + 1) * 4  # x and y, float32
    bandwidth = _copy_bandwidth()
    floor = gathered / bandwidth
    print(f"memory-bandwidth floor: {gathered / 2**30:.2f} GiB gathered / "
          f"{bandwidth / 2**30:.1f} GiB/s (one plain copy) = {floor:.3f} s; our pass "
          f"{ours['pass_']:.3f} s = {ours['pass_'] / floor:.1f}x the floor")  # fmt: skip
    save("windows", {
        "speedup_total": total_k / total_o,
        "speedup_pass": ref["pass_"] / ours["pass_"],
        "ours_pass_s": ours["pass_"], "keras_pass_s": ref["pass_"],
        "ours_rss_increase_mib": ours["rss_increase"], "ours_peak_traced_mib": ours["peak_traced"],
        "keras_rss_increase_mib": ref["rss_increase"],
        "gathered_gib": gathered / 2**30, "copy_gib_s": bandwidth / 2**30,
        "floor_s": floor, "times_floor": ours["pass_"] / floor,
        "windows": ours["windows"], "batches": ours["batches"],
    }, args.json)  # fmt: skip


if __name__ == "__main__":
    main()
