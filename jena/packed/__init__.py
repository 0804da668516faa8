"""Packed trials: K configurations of one shape trained in one compiled JAX program.

Small recurrent trials are launch-bound on an accelerator: an LSTM of 256 units costs about the
step time of one of 16, and K processes sharing a device only time-slice it. Here K trials whose
configurations share their shapes (:func:`shape_key`: same architecture, layers, units, window,
batch size, loss, optimiser; any seed, learning rate, dropout, recurrent dropout and head
dropout) are computed as one batched recurrence: their weights are stacked on a leading axis
and one ``jax.jit``-compiled step runs ``jax.vmap`` over the member axis of a pure forward pass,
its gradient and the optimiser update. Each member still is its own trial: its own per-epoch
metrics through the same ``on_epoch`` hook as :func:`jena.train.train` (``loss``, ``mae``,
``val_loss``, ``val_mae`` in °C, which may raise :class:`~jena.train.TrialPruned`), its own
early stopping, best weights and :class:`~jena.train.TrialResult` with a Keras model holding
them. A member that stops (completed, pruned, failed) stops updating; its slot can be refilled
by the next trial of the same shape (``refill``), which starts from its own epoch 1.

What makes a member equal to the same configuration trained alone:

* initial weights: each member's Keras model is built by :func:`jena.models.build_model` with
  its own seed, exactly as :func:`jena.train.train` builds it;
* batches: each member has its own :class:`~jena.windows.WindowDataset` (shuffled with its own
  seed, its own epoch count), exactly as :func:`~jena.train.train` makes it, read in the order
  Keras 3's ``fit`` reads it (:class:`_FitOrder`); members whose batch streams coincide (same
  seed, same epoch: the usual case in a sweep) share one gather and one host-to-device copy;
* the maths: the forward pass follows Keras 3's LSTM/GRU cells (``reset_after`` GRU; Keras's
  per-gate dropout masks when ``recurrent_dropout > 0``, one input mask otherwise; one mask per
  sequence), Dense, Dropout and the residual head, and RMSprop/Adam are Keras's update rules
  (same epsilon, rho, betas), with each member's learning rate an input of the update;
* dropout randomness: each member's masks come from its own key stream, ``PRNGKey(seed)``
  folded with the member's own step count, never with its slot or its pack mates — so a member
  draws the same masks packed or alone. They are not Keras's masks (Keras draws from its layers'
  seed generators), so with dropout a member equals *itself trained alone by this trainer*, and
  without dropout it equals :func:`jena.train.train` under JAX up to float rounding
  (``tests/test_packed.py`` states the tolerances).

Runs only on the JAX backend (``KERAS_BACKEND=jax``); :func:`packable` says whether a
configuration can be packed: its architecture's registry entry says which body the packed
program computes for it (``packs_as``: dense flattens, lstm and gru stack their cells; the
convolutional ones are trained one by one).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..architectures import PACKABLE
from ..architectures import get as architecture
from ..config import TrialConfig
from ..data import Dataset
from ..errors import ConfigError
from ..prepare import Prepared
from ..train import (
    BatchHook,
    DataCache,
    EarlyStop,
    EpochHook,
    Fidelity,
    FitPlan,
    State,
    StopCheck,
    TrialPruned,
    TrialResult,
    TrialStopped,
    stopped_reason,
)
from ._model import Spec, programs

__all__ = [
    "PER_MEMBER",
    "PackedTrial",
    "packable",
    "require_jax",
    "shape_key",
    "train_packed",
]

# What may differ between the members of one pack (everything else fixes the program's shapes)
PER_MEMBER = ("seed", "learning_rate", "dropout", "recurrent_dropout", "head_dropout")


def packable(config: TrialConfig) -> bool:
    return architecture(config.architecture).packs_as is not None


def shape_key(config: TrialConfig) -> tuple[Any, ...] | None:
    """What a pack's members share (hashable), or None for a configuration that cannot be
    packed. Two configurations with the same key train in one program."""
    if not packable(config):
        return None
    fields = config.to_dict()
    for name in PER_MEMBER:
        fields.pop(name)
    return tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in sorted(fields.items()))


def require_jax() -> None:
    """ConfigError unless Keras runs on JAX (the packed trainer is a JAX program)."""
    import keras

    backend = keras.backend.backend()
    if backend != "jax":
        raise ConfigError(
            f"packed trials need the JAX backend (KERAS_BACKEND=jax, pip install jax); Keras "
            f"runs on {backend!r} here: set [packing] size = 1 to train trials one by one"
        )


@dataclass
class PackedTrial:
    """One member of a pack: its configuration, its hooks (as :func:`jena.train.train`'s) and,
    when it ends, ``on_done(result)`` (called at once, before any slot is refilled)."""

    config: TrialConfig
    on_epoch: EpochHook | None = None
    on_batch: BatchHook | None = None
    on_done: Callable[[TrialResult], None] | None = None
    max_epochs: int | None = None  # default: the fidelity's
    tag: Any = None  # the caller's handle (a trial number)


# --------------------------------------------------------------------------- the trainer


class _FitOrder:
    """The order in which Keras 3's ``model.fit(py_dataset)`` (``shuffle=True``, every backend)
    reads a PyDataset: it first draws one batch to build its metrics and calls
    ``on_epoch_end()`` (``epoch_iterator.reset()``), then reads each epoch's batches in an
    order shuffled by Python's ``random`` — whose state, inside :func:`jena.train.train`, is the
    one :func:`jena.models.build_model` left (seeded with the trial's seed). Replaying it keeps
    a packed member on the very batches its lone run sees (tests/test_packed.py checks it
    against Keras)."""

    def __init__(self, ds: Any, state: Any) -> None:
        self.ds = ds
        self.rng = random.Random()
        self.rng.setstate(state)
        self.rng.shuffle(list(range(len(ds))))  # the batch fit draws to build its metrics
        ds.on_epoch_end()
        self.order = self._draw()

    def _draw(self) -> list[int]:
        order = list(range(len(self.ds)))
        self.rng.shuffle(order)
        self.signature = hash(tuple(order))
        return order

    def key(self, seed: int, epoch: int) -> tuple[Any, ...]:
        """Equal for two members exactly when they read the same batches this epoch: same
        seed and epoch (the windows' permutation), same batch order (Python's random state
        after building the model differs, e.g., with and without a Dropout layer)."""
        return (seed, epoch, self.signature)

    def batch(self, b: int) -> Any:
        return self.ds[self.order[b]]

    def next_epoch(self) -> None:
        self.ds.on_epoch_end()
        self.order = self._draw()

    def __len__(self) -> int:
        return len(self.order)


@dataclass
class _Slot:
    trial: PackedTrial
    model: Any  # keras.Model (the member's own, built as train() builds it)
    train_ds: _FitOrder  # its WindowDataset (shuffled with its seed), in fit's order
    result: TrialResult
    max_epochs: int
    stop: EarlyStop
    epoch: int = 0  # finished epochs
    fit_s: float = 0.0


def _padded(xy: Any, batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A batch ``(x, y)`` padded to ``batch`` windows, with 1/0 weights (one compiled shape)."""
    x, y = xy
    n = len(x)
    w = np.zeros(batch, np.float32)
    w[:n] = 1.0
    if n == batch:
        return x, y, w
    xp = np.zeros((batch, *x.shape[1:]), x.dtype)
    yp = np.zeros((batch, *y.shape[1:]), y.dtype)
    xp[:n], yp[:n] = x, y
    return xp, yp, w


def train_packed(
    trials: Sequence[PackedTrial],
    data: DataCache | Prepared | Dataset,
    fidelity: Fidelity | None = None,
    *,
    slots: int | None = None,
    refill: Callable[[], PackedTrial | None] | None = None,
    should_stop: StopCheck | None = None,
) -> list[TrialResult]:
    """Train ``trials`` (all of one :func:`shape_key`) side by side in ``slots`` slots (default:
    as many as trials); when a member ends and ``refill`` is given, ``refill()`` may hand the
    next trial of the same shape for its slot (None: leave it empty). Returns the results in
    the order the trials were given and handed in.

    ``should_stop`` is asked after every step: a reason ends every running member at once as
    pruned (stopped), with its best finished epoch, as in :func:`jena.train.train`."""
    require_jax()
    if not trials:
        return []
    template = trials[0].config.validate()
    key = shape_key(template)
    if key is None:
        raise ConfigError(
            f"{template.architecture!r} trials cannot be packed (packable: {', '.join(PACKABLE)})"
        )
    k_slots = slots or len(trials)
    if len(trials) > k_slots:
        raise ValueError(f"{len(trials)} trials for {k_slots} slots")
    if isinstance(data, Dataset):
        data = DataCache(data)
    pack = _Pack(FitPlan.of(template, data, fidelity or Fidelity()), key, k_slots)
    results = [pack.open(i, t) for i, t in enumerate(trials)]
    while pack.running():
        if pack.epoch(should_stop):
            for i in range(k_slots):
                pack.refill(i, refill, results)
    return results


class _Pack:
    """K slots of one shape: the members' stacked weights, optimiser states and step counters
    on the device (member axis first), their bookkeeping on the host."""

    def __init__(self, plan: FitPlan, key: Any, k: int) -> None:
        import jax.numpy as jnp

        self.plan, self.key, self.k = plan, key, k
        p = plan.prepared
        self.spec = Spec.of(plan.config, (p.target_mean, p.target_std))
        self.batch = plan.config.batch_size
        val = plan.val_windows()
        self.val = [tuple(jnp.asarray(a) for a in _padded(val[i], self.batch))
                    for i in range(len(val))]  # fmt: skip
        self.slots: list[_Slot | None] = [None] * k
        self.programs = programs(self.spec)
        self.state: dict[str, Any] = {}  # weights, opt, steps, keys, lrs, rates (stacked)
        self.train_sums = np.zeros((2, k))
        self.val_sums = np.zeros((2, k))
        self.counts = np.zeros(k)

    def running(self) -> bool:
        return any(s is not None for s in self.slots)

    def live(self) -> list[int]:
        return [i for i, s in enumerate(self.slots) if s is not None]

    def slot(self, i: int) -> _Slot:
        s = self.slots[i]
        assert s is not None
        return s

    # ---------------------------------------------------------------- members in and out
    def open(self, i: int, trial: PackedTrial) -> TrialResult:
        """Start ``trial`` in slot ``i``: its model built and seeded as :func:`jena.train.train`
        builds it, its windows in the order ``model.fit`` would read them."""
        config = trial.config.validate()
        if shape_key(config) != self.key:
            raise ValueError("a pack's trials must share their shape (jena.packed.shape_key)")
        model = self.plan.build(config)
        py_state = random.getstate()  # what model.fit would shuffle its batch order with
        order = _FitOrder(self.plan.train_windows(config.seed), py_state)
        fidelity = self.plan.fidelity
        epochs = trial.max_epochs or fidelity.max_epochs
        result = self.plan.result(config, model)
        slot = _Slot(trial, model, order, result, epochs, EarlyStop(fidelity.patience))
        self.slots[i] = slot
        self._load(i, slot)
        return slot.result

    def _load(self, i: int, slot: _Slot) -> None:
        """Slot ``i``'s device state: the member's initial weights, a fresh optimiser state,
        step 0, its key, learning rate and dropout rates (the first load stacks K copies)."""
        import jax
        import jax.numpy as jnp

        weights = slot.model.get_weights()
        zeros = [np.zeros(np.shape(w), np.float32) for w in weights]
        opt = (zeros,) if self.spec.optimizer == "rmsprop" else (zeros, [z.copy() for z in zeros])
        c = slot.trial.config
        member = {"weights": weights, "opt": opt, "steps": np.int32(0),
                  "keys": jax.random.PRNGKey(c.seed), "lrs": np.float32(c.learning_rate),
                  "rates": np.asarray([c.dropout, c.recurrent_dropout, c.head_dropout],
                                      np.float32)}  # fmt: skip
        if not self.state:
            self.state = jax.tree_util.tree_map(
                lambda v: jnp.stack([jnp.asarray(v)] * self.k), member
            )
            return
        self.state = jax.tree_util.tree_map(lambda a, v: a.at[i].set(v), self.state, member)

    def finish(
        self, i: int, state: State | None = None, reason: str | None = None, stopped: bool = False
    ) -> None:
        """End slot ``i``'s member (as :func:`jena.train.train` ends a trial) and free it."""
        slot = self.slot(i)
        res = slot.result
        if state is not None:
            res.state, res.reason, res.stopped = state, reason, stopped
        res.duration_s = slot.fit_s
        slot.stop.conclude(res, slot.model)
        self.slots[i] = None
        if slot.trial.on_done is not None:
            slot.trial.on_done(res)

    def refill(
        self, i: int, refill: Callable[[], PackedTrial | None] | None, results: list[TrialResult]
    ) -> None:
        while refill is not None and self.slots[i] is None:
            nxt = refill()
            if nxt is None:
                return
            results.append(self.open(i, nxt))

    # ---------------------------------------------------------------- one epoch
    def epoch(self, should_stop: StopCheck | None) -> bool:
        """Train every live member one epoch and validate it; False when ``should_stop`` ended
        them all."""
        live = self.live()
        t0 = time.perf_counter()
        stopped = self._train(live, should_stop) or self._validate(should_stop)
        share = (time.perf_counter() - t0) / len(live)
        for i in live:
            self.slot(i).fit_s += share
        if stopped is not None:
            reason, where = stopped
            for i in live:
                done = self.slot(i).epoch
                self.finish(i, "pruned", stopped_reason(reason, f"in epoch {done + 1} {where}",
                                                        done), stopped=True)  # fmt: skip
            return False
        self._end_epoch(live)
        return True

    def _batch(self, live: list[int], b: int) -> tuple[Any, Any, Any, bool]:
        """Batch ``b`` of every live member: (x, y, weights, shared). Members whose batch
        streams coincide (same seed and epoch) share one gather and one copy; ``shared``: one
        batch for all, else one per slot  # (slots, batch, steps, features), with each slot's
        own weights (its short last batch comes at its own place in its order)."""
        streams: dict[tuple[Any, ...], Any] = {}
        keys: list[tuple[Any, ...] | None] = [None] * self.k
        for i in live:
            s = self.slot(i)
            keys[i] = s.train_ds.key(s.trial.config.seed, s.epoch)
            if keys[i] not in streams:
                streams[keys[i]] = _padded(s.train_ds.batch(b), self.batch)  # type: ignore[index]
        first = next(iter(streams.values()))
        if len(streams) == 1:
            return first[0], first[1], first[2], True
        xs = np.stack([streams[k][0] if k else first[0] for k in keys])
        ys = np.stack([streams[k][1] if k else first[1] for k in keys])
        ws = np.stack([streams[k][2] if k else first[2] for k in keys])
        return xs, ys, ws, False

    def _train(self, live: list[int], should_stop: StopCheck | None) -> tuple[str, str] | None:
        import jax
        import jax.numpy as jnp

        shared, separate, _ = self.programs
        active = jnp.asarray([s is not None for s in self.slots])
        n_batches = len(self.slot(live[0]).train_ds)
        sums = jnp.zeros((2, self.k), jnp.float32)
        self.counts = np.zeros(self.k)
        stopped = None
        st = self.state
        for b in range(n_batches):
            x, y, wts, one = self._batch(live, b)
            step = shared if one else separate
            st["weights"], st["opt"], st["steps"], loss_sum, abs_sum = step(
                st["weights"], st["opt"], st["steps"], st["keys"], st["lrs"], st["rates"],
                active, x, y, wts,
            )  # fmt: skip
            sums = sums + jnp.stack([loss_sum, abs_sum])
            for i in live:
                slot = self.slot(i)
                n = float(wts.sum() if one else wts[i].sum())
                self.counts[i] += n
                slot.result.windows_seen += int(n)
                if slot.trial.on_batch is not None:
                    slot.trial.on_batch(b + 1, n_batches)
            if should_stop is not None and (reason := should_stop()):
                stopped = (reason, f"(batch {b + 1})")
                break
        self.train_sums = np.asarray(jax.device_get(sums))
        return stopped

    def _validate(self, should_stop: StopCheck | None) -> tuple[str, str] | None:
        import jax
        import jax.numpy as jnp

        evaluate = self.programs[2]
        val = jnp.zeros((2, self.k), jnp.float32)
        for xv, yv, wv in self.val:
            val = val + jnp.stack(evaluate(self.state["weights"], xv, yv, wv))
            if should_stop is not None and (reason := should_stop()):
                return reason, "while validating"
        self.val_sums = np.asarray(jax.device_get(val))
        return None

    def _end_epoch(self, live: list[int]) -> None:
        """Each member's metrics (°C), early stopping, hooks (which may prune it), and its end
        when it is done."""
        import jax

        host: list[np.ndarray] = []

        def weights(i: int) -> list[np.ndarray]:
            if not host:
                host.extend(np.asarray(a) for a in jax.device_get(self.state["weights"]))
            return [np.array(a[i]) for a in host]

        scale, loss_scale = self.plan.scale, self.plan.loss_scale
        n_val = float(len(self.plan.val_starts))
        for i in live:
            slot = self.slot(i)
            slot.epoch += 1
            slot.train_ds.next_epoch()
            epoch = slot.epoch
            metrics = {
                "loss": float(self.train_sums[0, i] / self.counts[i]) * loss_scale,
                "val_loss": float(self.val_sums[0, i] / n_val) * loss_scale,
                "mae": float(self.train_sums[1, i] / self.counts[i]) * scale,
                "val_mae": float(self.val_sums[1, i] / n_val) * scale,
            }
            slot.result.history.append({"epoch": float(epoch), **metrics})
            stop = slot.stop.observe(epoch, metrics, lambda i=i: weights(i))  # type: ignore[misc]
            if slot.stop.nan_epoch is not None:
                self.finish(i)
                continue
            try:
                if slot.trial.on_epoch is not None:
                    slot.trial.on_epoch(epoch, metrics)  # may raise TrialPruned
            except TrialPruned as exc:
                self.finish(i, "pruned", str(exc) or "pruned", isinstance(exc, TrialStopped))
                continue
            if stop or epoch >= slot.max_epochs:
                self.finish(i)
