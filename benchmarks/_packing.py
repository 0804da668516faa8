"""Trials per hour of small recurrent trials on JAX: packed (``jena.packed``) and one by one
(``jena.train.train``), in a fresh JAX process; shared by bench_packed.py and gpu.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from _common import SYNTHETIC, env_for, run_child

CHILD = """
import json, time
from jena.book import BOOK_MODELS
from jena.data import load
from jena.packed import PackedTrial, train_packed
from jena.train import DataCache, Fidelity, train

cache = DataCache(load({source!r}), "book2")
base = BOOK_MODELS[{model!r}].config
fid = Fidelity(max_epochs={epochs}, steps_per_epoch={steps}, validation_steps={val},
               patience={epochs})
lrs = [1e-3 * (1.25 ** i) for i in range(64)]
out = {{}}

def configs(k, offset=0):
    return [base.replace(learning_rate=lrs[offset + i]) for i in range(k)]

if {alone}:  # one by one through the project's trainer (each trial compiles, as in a sweep)
    started = time.perf_counter()
    for c in configs({alone}):
        train(c, cache, fid)
    out["alone"] = {{"trials": {alone}, "seconds": time.perf_counter() - started}}
for k in {packs!r}:
    started = time.perf_counter()
    train_packed([PackedTrial(c) for c in configs(k)], cache, fid)  # compiles
    first = time.perf_counter() - started
    started = time.perf_counter()
    train_packed([PackedTrial(c) for c in configs(k, 1)], cache, fid)  # compiled already
    out[str(k)] = {{"trials": k, "seconds": time.perf_counter() - started, "first_s": first}}
print(json.dumps(out))
"""


def packed_rates(*, model: str = "lstm", epochs: int = 1, steps: int = 8, val: int = 2,
                 packs: tuple[int, ...] = (1, 4, 8, 16), alone: int = 3,
                 source: str = SYNTHETIC) -> dict[str, Any]:  # fmt: skip
    """Seconds and trials per hour: ``alone`` trials one by one, then each pack size K (its
    first pack compiles; the second is timed)."""
    code = CHILD.format(source=source, model=model, epochs=epochs, steps=steps, val=val,
                        packs=list(packs), alone=alone)  # fmt: skip
    got = run_child(code, "jax", timeout=1800)
    for v in got.values():
        v["trials_per_hour"] = v["trials"] / v["seconds"] * 3600
    return got


PROCESS = """
import json, time
t0 = time.perf_counter()
from jena.book import BOOK_MODELS
from jena.data import load
from jena.train import DataCache, Fidelity, train
cache = DataCache(load({source!r}), "book2")
fid = Fidelity(max_epochs={epochs}, steps_per_epoch={steps}, validation_steps={val},
               patience={epochs})
ready = time.perf_counter()
train(BOOK_MODELS[{model!r}].config.replace(learning_rate={lr}), cache, fid)
print(json.dumps({{"start_s": ready - t0, "trial_s": time.perf_counter() - ready}}))
"""


def process_rates(counts: tuple[int, ...] = (1, 4, 8), *, model: str = "lstm",
                  epochs: int = 1, steps: int = 8, val: int = 2,
                  source: str = SYNTHETIC) -> dict[str, Any]:  # fmt: skip
    """Trials per hour with P separate processes (one trial each) sharing the device at once,
    as ``jena sweep --workers P`` runs them (XLA preallocation off)."""
    out = {}
    for p in counts:
        env = env_for("jax", **_shared(p))
        started = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", PROCESS.format(
                    source=source, model=model, epochs=epochs, steps=steps, val=val,
                    lr=1e-3 * (1.1 ** i))], env=env, stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL, text=True) for i in range(p)]  # fmt: skip
        results = []
        for proc in procs:
            stdout, _ = proc.communicate(timeout=1800)
            if proc.returncode != 0:
                raise RuntimeError(f"a trial process failed ({proc.returncode})")
            results.append(json.loads(stdout.strip().splitlines()[-1]))
        wall = time.perf_counter() - started
        out[str(p)] = {"processes": p, "seconds": wall, "trials_per_hour": p / wall * 3600,
                       "trial_s": max(r["trial_s"] for r in results),
                       "start_s": max(r["start_s"] for r in results)}  # fmt: skip
    return out


def _shared(p: int) -> dict[str, str]:
    from jena.devices import share_device

    env = {"KERAS_BACKEND": "jax", **{k: v for k, v in os.environ.items() if k.startswith("XLA")}}
    share_device(p, env)
    return {k: v for k, v in env.items() if k.startswith("XLA")}
