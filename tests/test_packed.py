"""Packed trials (jena/packed.py, sweeps/packed.py): a member of a pack trains exactly as the
same configuration trained alone, and a packed sweep records each member as its own trial.

The packed trainer is a JAX program and the test session's Keras runs on TensorFlow, so every
check that trains runs in one subprocess with ``KERAS_BACKEND=jax`` (one start-up and one set of
compilations for many checks) and the assertions read its JSON.

What "equal" means, and to what tolerance:

* Without dropout, a member's per-epoch metrics (training loss and MAE, validation loss and MAE)
  equal :func:`jena.train.train` under JAX (Keras's ``model.fit``) for the same configuration:
  same initial weights (built by ``build_model`` with the member's seed), same batches in the
  same order (the member's own WindowDataset, read in ``fit``'s order), same Keras cell maths and
  RMSprop/Adam updates. What differs is float32 rounding (our input projection is one einsum over
  all steps, Keras adds the bias in another order): agreement to ``KERAS_TOL`` = 1e-4 °C (measured
  ~1e-6) over 3 epochs, for K = 1, 2, 4 members with different learning rates.
* With dropout (input, recurrent, head; different per member), a member cannot equal Keras's run:
  Keras draws its masks from its layers' seed generators, we from the member's own key stream
  (``PRNGKey(seed)`` folded with the member's step count). The claim tested is that packing does
  not change a member: its metrics equal the same member trained alone by the packed trainer
  (K = 1), to ``ALONE_TOL`` = 1e-5 °C, for K = 2 and 4, different learning rates, dropout rates
  and seeds (so members with different seeds read different batch streams), and for a member
  that refills a slot mid-pack (its epoch 1 runs beside another member's epoch 3).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import require_in_ci, tiny_sweep

from jena.errors import ConfigError

KERAS_TOL = 1e-4  # °C (and °C² for mse losses), packed vs jena.train.train, no dropout
ALONE_TOL = 1e-5  # °C, packed in a pack vs packed alone, with dropout
TESTS = Path(__file__).resolve().parent


def run_jax(script: str, cwd: Path, timeout: int = 300) -> dict[str, Any]:
    """Run ``script`` under KERAS_BACKEND=jax (CPU) and return the JSON of its last line."""
    try:
        import jax  # noqa: F401
    except ImportError:
        require_in_ci("JAX is not installed (pip install jax; the `test` extra has it)")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
           "JENA_TESTS": str(TESTS)}  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


EQUIVALENCE = """
import json, math
from jena.book import BOOK_MODELS
from jena.data import load
from jena.packed import PackedTrial, train_packed
from jena.train import DataCache, Fidelity, train

# the first generator: ALONE_TOL (a float32 rounding bound) was set on its magnitudes; the
# calibrated one gives 1.56e-5 there (the arithmetic is the same, only the rounding grows)
cache = DataCache(load("synthetic-v1:24000:3"), "book2")
fid = Fidelity(max_epochs=3, steps_per_epoch=2, validation_steps=2, patience=5)
base = BOOK_MODELS["lstm"].config.replace(rnn_units=(8,), sequence_length=24, batch_size=64,
                                          normalise_target=True)
KEYS = ("loss", "mae", "val_loss", "val_mae")

def gap(a, b):
    assert len(a.history) == len(b.history), (len(a.history), len(b.history))
    return max(abs(x[k] - y[k]) for x, y in zip(a.history, b.history) for k in KEYS)

out = {"keras": {}, "alone": {}, "shapes": {}}
# 1. no dropout: packed K = 1, 2, 4 vs Keras's fit, one learning rate per member
cfgs = [base.replace(learning_rate=lr) for lr in (1e-3, 3e-3, 1e-2, 2e-4)]
cfgs += [c.replace(optimizer="adam") for c in cfgs[:2]]
keras_runs = [train(c, cache, fid) for c in cfgs]
for name, members in (("rmsprop K=1", [0]), ("rmsprop K=2", [0, 1]),
                      ("rmsprop K=4", [0, 1, 2, 3]), ("adam K=2", [4, 5])):
    packed = train_packed([PackedTrial(cfgs[i]) for i in members], cache, fid)
    out["keras"][name] = max(gap(p, keras_runs[i]) for p, i in zip(packed, members))
    out["keras"][name + " best"] = [[p.val_mae, keras_runs[i].val_mae, p.best_epoch,
                                     keras_runs[i].best_epoch] for p, i in zip(packed, members)]
# 2. dropout: packed K = 2, 4 vs each member packed alone
drop = [base.replace(learning_rate=lr, dropout=d, recurrent_dropout=rd, head_dropout=hd, seed=s)
        for lr, d, rd, hd, s in ((1e-3, 0.1, 0.3, 0.0, 0), (3e-3, 0.0, 0.0, 0.5, 0),
                                 (2e-3, 0.3, 0.0, 0.2, 1), (5e-3, 0.2, 0.5, 0.3, 2))]
alone = [train_packed([PackedTrial(c)], cache, fid)[0] for c in drop]
for k in (2, 4):
    packed = train_packed([PackedTrial(c) for c in drop[:k]], cache, fid)
    out["alone"][f"K={k}"] = max(gap(p, a) for p, a in zip(packed, alone))
# dropout changes the training: the members differ from their no-dropout twins
out["dropout_matters"] = gap(alone[0], train_packed([PackedTrial(base)], cache, fid)[0])
# 3. a refilled slot: 3 members in 2 slots, the first stops after 1 epoch
queue = [PackedTrial(drop[3])]
packed = train_packed([PackedTrial(drop[0], max_epochs=1), PackedTrial(drop[1])], cache, fid,
                      slots=2, refill=lambda: queue.pop() if queue else None)
out["refill"] = {"members": len(packed), "epochs": [len(p.history) for p in packed],
                 "gap": gap(packed[2], alone[3])}
# 4. other shapes, no dropout, against Keras (the pack's first member)
shapes = {
    "stacked gru, adam": BOOK_MODELS["stacked_gru_dropout"].config.replace(
        rnn_units=(8, 8), recurrent_dropout=0.0, head_dropout=0.0, optimizer="adam"),
    "bilstm reversed, degC, mae, dense head, residual": BOOK_MODELS["bilstm"].config.replace(
        rnn_units=(4,), reverse=True, loss="mae", dense_units=(8,), residual=True),
    "dense, residual": BOOK_MODELS["dense"].config.replace(residual=True),
    "gru, ridge residual": BOOK_MODELS["gru"].config.replace(rnn_units=(8,), residual="ridge"),
}
short = Fidelity(max_epochs=2, steps_per_epoch=2, validation_steps=2, patience=5)
for name, c in shapes.items():
    c = c.replace(sequence_length=24, batch_size=64)
    packed = train_packed([PackedTrial(c), PackedTrial(c.replace(learning_rate=3e-3))], cache,
                          short)
    out["shapes"][name] = gap(packed[0], train(c, cache, short))
# 5. an untrained residual = "ridge" member (learning rate ~0) is the ridge: its validation MAE
# is jena.linear's on the same 512 targets, cut here by hand (book2: 858 rows into validation)
import numpy as np
from jena.linear import fit_ridge
still = BOOK_MODELS["dense"].config.replace(residual="ridge", learning_rate=1e-12,
                                            sequence_length=24, batch_size=64)
member = train_packed([PackedTrial(still)], cache, short)[0]
p = cache.get()
lo, hi = p.bounds.val
every = np.arange(lo + 858, hi)
chosen = every[np.linspace(0, len(every) - 1, 512).round().astype(int)]
by_hand = np.mean(np.abs(fit_ridge(p).predict(p, chosen - 144) - p.temperature[chosen]))
out["ridge_untrained"] = [member.history[0]["val_mae"], float(by_hand)]
r = packed[0]
out["result"] = {"state": r.state, "model": r.model is not None, "windows": r.windows_seen,
                 "params": r.param_count, "history": len(r.history)}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def equivalence(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_jax(EQUIVALENCE, tmp_path_factory.mktemp("packed"))


@pytest.mark.parametrize("pack", ["rmsprop K=1", "rmsprop K=2", "rmsprop K=4", "adam K=2"])
def test_packed_member_equals_keras_fit_alone(equivalence: dict[str, Any], pack: str) -> None:
    assert equivalence["keras"][pack] < KERAS_TOL
    for packed_mae, alone_mae, packed_epoch, alone_epoch in equivalence["keras"][f"{pack} best"]:
        assert packed_mae == pytest.approx(alone_mae, abs=KERAS_TOL)
        assert packed_epoch == alone_epoch


@pytest.mark.parametrize("k", [2, 4])
def test_packed_member_with_dropout_equals_itself_alone(
    equivalence: dict[str, Any], k: int
) -> None:
    assert equivalence["alone"][f"K={k}"] < ALONE_TOL
    assert equivalence["dropout_matters"] > 1e-3  # the masks are really applied


def test_refilled_slot_trains_as_alone(equivalence: dict[str, Any]) -> None:
    refill = equivalence["refill"]
    assert refill["members"] == 3 and refill["epochs"] == [1, 3, 3]
    assert refill["gap"] < ALONE_TOL


@pytest.mark.parametrize(
    "shape",
    ["stacked gru, adam", "bilstm reversed, degC, mae, dense head, residual", "dense, residual",
     "gru, ridge residual"],
)  # fmt: skip
def test_every_packable_shape_matches_keras(equivalence: dict[str, Any], shape: str) -> None:
    assert equivalence["shapes"][shape] < KERAS_TOL


def test_an_untrained_ridge_residual_member_is_the_ridge(equivalence: dict[str, Any]) -> None:
    packed, by_hand = equivalence["ridge_untrained"]
    assert packed == pytest.approx(by_hand, rel=1e-4)


def test_a_member_ends_with_its_model(equivalence: dict[str, Any]) -> None:
    r = equivalence["result"]
    assert r["state"] == "completed" and r["model"] and r["history"] == 2
    assert r["windows"] == 2 * 2 * 256 and r["params"] > 0


SWEEP = """
import json, sys, os
sys.path.insert(0, os.environ["JENA_TESTS"])
from conftest import children, history_steps, mlflow_client, runs, store_trials, tiny_sweep
from sweeps.runner import run_sweep

cfg = tiny_sweep("packing.size=4", 'space.include=["learning_rate", "recurrent_dropout"]',
                 'space.fixed={architecture="lstm", units=8, sequence_length_hours=48, '
                 'normalise_target=true, rnn_layers=1}',
                 "fidelity.max_epochs=3", 'pruner.type="median"',
                 "pruner.options={n_startup_trials=2, n_warmup_steps=1}", trials=7, name="packed")
summary = run_sweep(cfg)
client = mlflow_client(cfg)
kids = children(runs(cfg))
print(json.dumps({
    "counts": summary.counts,
    "store": [[t.number, t.state] for t in store_trials(cfg)],
    "runs": [{"number": int(k.data.tags["trial_number"]), "state": k.data.tags.get("state"),
              "packed": k.data.tags.get("packed"), "model": bool(k.data.tags.get("model_id")),
              "epochs": history_steps(client, k.info.run_id, "val_mae"),
              "fit_s": k.data.metrics.get("fit_s")} for k in kids],
}))
"""


def test_packed_sweep_records_each_member_as_its_own_trial(tmp_path: Path) -> None:
    out = run_jax(SWEEP, tmp_path)
    store = dict((n, s) for n, s in out["store"])
    assert sorted(store) == list(range(7))
    assert all(s in ("completed", "pruned") for s in store.values()), store
    assert "completed" in store.values()
    got = {r["number"]: r for r in out["runs"]}
    assert sorted(got) == list(range(7))  # one child run per trial
    for number, run in got.items():
        assert run["state"] == store[number] and run["packed"] == "4"
        assert run["epochs"] == list(range(1, len(run["epochs"]) + 1)) and run["epochs"]
        assert run["model"] == (run["state"] == "completed")
        assert run["fit_s"] > 0
        if run["state"] == "pruned":  # the pruner saw its epochs, one by one
            assert len(run["epochs"]) < 3


REFIT = """
import json, sys, os
sys.path.insert(0, os.environ["JENA_TESTS"])
from conftest import TINY, tiny_sweep
from sweeps.runner import run_sweep
from jena import tracking as T
from jena.tracking import names as N
from jena.data import load
from jena.packed import PackedTrial, train_packed
from jena.refit import RefitSettings, refit
from jena.train import DataCache

# dropout: a packed member cannot equal Keras's fit, only itself trained alone by the packed
# trainer (two configurations, a learning rate each; a race at 1 epoch stops one of them)
run_sweep(tiny_sweep('space.include=["learning_rate"]',
                     'space.fixed={architecture="gru", units=8, sequence_length_hours=24, '
                     'rnn_layers=1, normalise_target=true, dropout=0.2, recurrent_dropout=0.1}',
                     name="rp", trials=2))
uri = T.default_tracking_uri()
settings = RefitSettings(top_k=2, seeds=3, epochs=3, patience=5, rung_epochs=1)
result = refit("rp", tracking_uri=uri, settings=settings)
cache = DataCache(load(TINY), "book2")
members = []
for c in result.configs:
    query = (f"tags.{N.TAG_REFIT_KEY} = '{c.candidate.key}' and "
             f"tags.{N.TAG_RUN_TYPE} = '{N.RUN_REFIT_MEMBER}'")
    for run in T.find_runs(uri, "rp", query):
        seed = int(run.tags[N.TAG_REFIT_SEED])
        curve = [v for _, v in T.metric_history(uri, run.run_id, N.METRIC_VAL_MAE)]
        alone = train_packed([PackedTrial(c.candidate.config.replace(seed=seed))], cache,
                             settings.fidelity())[0]
        members.append({"seed": seed, "packed": run.tags.get("packed"), "raced": bool(c.raced_out),
                        "state": run.tags[N.TAG_STATE], "epochs": len(curve),
                        "gap": max(abs(v - h["val_mae"]) for v, h in zip(curve, alone.history))})
print(json.dumps({"members": members, "selected": len(result.selected.members)}))
"""


@pytest.mark.slow
def test_refit_packs_the_seeds_of_a_configuration(tmp_path: Path) -> None:
    """Under JAX each configuration's 3 seeds train as one packed program, in a race (one
    configuration stops at the first rung): every seed is its own run, and its per-epoch
    validation MAE equals that seed trained alone by the packed trainer."""
    out = run_jax(REFIT, tmp_path, timeout=600)
    members = out["members"]
    assert len(members) == 6 and out["selected"] == 3
    for m in members:
        assert m["packed"] == "3" and m["gap"] < ALONE_TOL, m
        assert (m["state"], m["epochs"]) == (("pruned", 1) if m["raced"] else ("completed", 3))


# ------------------------------------------------------------------ no JAX needed


def test_packing_section_is_validated() -> None:
    from conftest import tiny_sweep

    assert tiny_sweep().packing.size == 1  # off by default
    assert tiny_sweep("packing.size=8").packing.size == 8
    with pytest.raises(ConfigError, match=r"\[packing\]\.size: must be at least 1"):
        tiny_sweep("packing.size=0")
    with pytest.raises(ConfigError, match=r"the 'kerastuner' driver cannot pack trials"):
        tiny_sweep("packing.size=2", driver="kerastuner")


def test_packing_with_several_workers_is_refused_in_one_line() -> None:
    """A pack trains in one process (it fills the accelerator that workers would share), and a
    stop signal cannot reach a worker while JAX compiles a pack: with several workers, one could
    outlast the workers' grace, be killed and leave its members RUNNING. Refused up front."""
    with pytest.raises(ConfigError) as refused:
        tiny_sweep("packing.size=2", "workers=2")
    line = str(refused.value)
    assert "\n" not in line and "[packing].size" in line and "workers" in line, line
    assert "set workers = 1" in line and "[packing].size = 1" in line, line
    assert tiny_sweep("packing.size=2", "workers=1").workers == 1
    assert tiny_sweep("packing.size=1", "workers=2").workers == 2


def test_packed_trainer_says_it_needs_jax() -> None:
    from jena.config import TrialConfig
    from jena.data import load
    from jena.packed import PackedTrial, train_packed

    with pytest.raises(ConfigError, match="KERAS_BACKEND=jax"):
        train_packed([PackedTrial(TrialConfig())], load("synthetic:24000:3"))


def test_shape_key_groups_what_can_share_a_program() -> None:
    from jena.config import TrialConfig
    from jena.packed import shape_key

    base = TrialConfig(architecture="lstm", rnn_units=(16,))
    twin = base.replace(seed=3, learning_rate=0.01, dropout=0.2, recurrent_dropout=0.3,
                        head_dropout=0.5)  # fmt: skip
    assert shape_key(base) == shape_key(twin)
    for other in (base.replace(rnn_units=(32,)), base.replace(batch_size=128),
                  base.replace(optimizer="adam"), base.replace(sequence_length=48),
                  base.replace(architecture="gru")):  # fmt: skip
        assert shape_key(other) != shape_key(base)
    assert shape_key(TrialConfig(architecture="conv1d")) is None


# ------------------------------------------------------------------ one trial path
PLAIN_VS_PACKED = """
import json, sys, os
sys.path.insert(0, os.environ["JENA_TESTS"])
from conftest import children, runs, tiny_sweep
from sweeps.runner import run_sweep

sets = ('sampler.type="random"', 'space.include=["learning_rate", "recurrent_dropout"]',
        'space.fixed={architecture="lstm", units=8, sequence_length_hours=48, '
        'normalise_target=true, rnn_layers=1}', "fidelity.max_epochs=2")
out = {}
for name, size in (("plain", 1), ("packed", 2)):
    cfg = tiny_sweep(*sets, f"packing.size={size}", trials=4, seed=3, name=name)
    run_sweep(cfg)
    out[name] = [{"params": k.data.params, "tags": k.data.tags,
                  "metrics": sorted(k.data.metrics)} for k in children(runs(cfg))]
print(json.dumps(out))
"""
# What names a run's own place (its sweep, the command, its parent, its logged model) or says it
# was packed
PER_RUN_TAGS = {"sweep", "mlflow.source.name", "mlflow.parentRunId", "model_id", "packed"}


def test_a_packed_member_is_recorded_as_the_same_trial_alone(tmp_path: Path) -> None:
    """The same seeded sweep (random sampler: the same proposals in the same order), trials one
    by one and in packs of 2: member by member, the same params, the same tags (but for where
    each run sits, and `packed`), the same metric keys."""
    out = run_jax(PLAIN_VS_PACKED, tmp_path)
    plain, packed = out["plain"], out["packed"]
    assert len(plain) == len(packed) == 4
    for alone, member in zip(plain, packed, strict=True):
        assert member["params"] == alone["params"]
        assert member["metrics"] == alone["metrics"]
        assert member["tags"]["packed"] == "2" and "packed" not in alone["tags"]
        mine = {k: v for k, v in alone["tags"].items() if k not in PER_RUN_TAGS}
        theirs = {k: v for k, v in member["tags"].items() if k not in PER_RUN_TAGS}
        assert theirs == mine


# ------------------------------------------------------------------ the loop around packs
LOOP = """
import json, multiprocessing, os, sqlite3, sys
sys.path.insert(0, os.environ["JENA_TESTS"])
from conftest import offline_context, parents, runs, store_trials, tiny_sweep
import sweeps.optuna._packed as packed_module
from jena.train import TrialResult
from sweeps import run_sweep
from sweeps.optuna import OptunaDriver, SweepStudy

SETS = ("packing.size=2", 'space.include=["learning_rate"]',
        'space.fixed={architecture="lstm", units=8, sequence_length_hours=48, '
        'normalise_target=true, rnn_layers=1}')
real = packed_module.train_packed
out = {}

# 1. trials that all fail the same way: a pack that raises, members that end failed (NaN)
def pack_raises(trials, *args, **kwargs):
    raise RuntimeError("always broken")

def members_fail(trials, *args, **kwargs):
    for t in trials:
        t.on_done(TrialResult("failed", None, 1.0, None, reason="NaN loss in epoch 1"))
    return []

for name, fake in (("pack-raises", pack_raises), ("members-fail", members_fail)):
    packed_module.train_packed = fake
    cfg = tiny_sweep(*SETS, "faults.max_consecutive_failed_trials=2", trials=6, name=name)
    try:
        run_sweep(cfg)
        error = None
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    (parent,) = parents(runs(cfg))
    out[name] = {"error": error, "store": [t.state for t in store_trials(cfg)],
                 "parent": parent.info.status}
packed_module.train_packed = real

# 2. the workers' stop signal, set by another worker that hit a fault: no trial starts
cfg = tiny_sweep(*SETS, trials=2, name="stopped")
stop = multiprocessing.get_context("spawn").Event()
stop.set()
try:
    OptunaDriver(cfg).run(offline_context(cfg), None, stop=stop)
    error = None
except Exception as exc:
    error = f"{type(exc).__name__}: {exc}"
out["stopped"] = {"error": error, "trials": len(SweepStudy(cfg).study.trials)}

# 3. heartbeats: on an RDB storage every packed member beats while it trains
db = os.path.abspath("optuna.db")
cfg = tiny_sweep(*SETS, f'storage.optuna="sqlite:///{db}"', "faults.heartbeat_interval_s=1",
                 trials=2, name="beats")
run_sweep(cfg)
con = sqlite3.connect(db)
beating = [r[0] for r in con.execute("SELECT DISTINCT t.number FROM trial_heartbeats h "
                                     "JOIN trials t ON t.trial_id = h.trial_id")]
out["beats"] = {"trials": [t.state for t in store_trials(cfg)], "beating": sorted(beating)}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_jax(LOOP, tmp_path_factory.mktemp("loop"))


@pytest.mark.parametrize("how", ["pack-raises", "members-fail"])
def test_a_packed_sweep_whose_trials_all_fail_stops_after_the_streak(
    loop: dict[str, Any], how: str
) -> None:
    """``[faults] max_consecutive_failed_trials = 2``, 6 trials in packs of 2 that all fail
    the same way (the pack raises; or each member ends failed, as on a NaN loss): the sweep
    stops after 2, saying why, as a sweep of trials one by one does (test_faults.py)."""
    got = loop[how]
    assert got["error"] is not None and got["error"].startswith("TooManyFailures: 2 Optuna"), got
    assert got["store"] == ["failed", "failed"], got
    assert got["parent"] == "FAILED"


def test_a_packed_sweep_starts_no_trial_once_another_worker_stopped_it(
    loop: dict[str, Any],
) -> None:
    assert loop["stopped"] == {"error": None, "trials": 0}


def test_every_packed_member_beats_on_an_rdb_storage(loop: dict[str, Any]) -> None:
    """Else another worker's reaper fails a member that trains longer than the grace period
    as stale (its worker died), while it trains."""
    assert loop["beats"]["trials"] == ["completed", "completed"]
    assert loop["beats"]["beating"] == [0, 1]


# ------------------------------------------------------------------ a stop signal to a packed sweep
@pytest.mark.slow
def test_sigterm_to_a_packed_sweep_ends_every_process_with_nothing_running(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pack of 2 under JAX: SIGTERM to the sweep's process once both members train (a batch
    each, test_signals.py's marks); it is gone within the bound, nothing is RUNNING in the
    study or in MLflow, both members are lost (their runs KILLED, saying SIGTERM) and the
    re-run (here one by one under TensorFlow: the same study) runs them first and reaches the
    total. (Several workers with packs are refused: test above.)"""
    import contextlib
    import dataclasses
    import signal

    import test_signals as ts
    from cluster import worker_env

    try:
        import jax  # noqa: F401
    except ImportError:
        require_in_ci("JAX is not installed (pip install jax; the `test` extra has it)")
    monkeypatch.setattr(ts, "worker_env", lambda where, **extra: worker_env(
        where, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", **extra))  # fmt: skip
    name, size, trials = "term-packed", 2, 3
    proc = ts.start(ts.sweep_argv(name, trials, 1, "optuna", *ts.LONG, f"packing.size={size}"),
                    in_tmp, "first.log")  # fmt: skip
    try:
        ts.wait_training(proc, in_tmp, "first.log", size)
        pids, sent = ts.signal_main(proc, signal.SIGTERM)
        took = ts.gone_within(pids, sent, ts.BOUND_S)
        code = proc.wait()
    finally:
        for pid in ts.tree(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
    print(f"\nSIGTERM -> every process gone, a pack of {size}: {took:.1f} s")
    text = ts.log_of(in_tmp, "first.log")
    assert code == 128 + signal.SIGTERM and "Traceback" not in text, text
    assert ts.last_line((in_tmp / "first.log").read_text()) == "interrupted by SIGTERM"
    cfg = tiny_sweep(*ts.LSTM, f"packing.size={size}", name=name, trials=trials)
    (parent,) = ts.parents(ts.nothing_running(cfg))
    assert parent.info.status == "KILLED"
    lost = ts.lost_trials(cfg, size, "SIGTERM")
    assert len(lost) == size
    alone = dataclasses.replace(cfg, packing=dataclasses.replace(cfg.packing, size=1))
    ts.rerun_reaches_the_total(alone, lost)
