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
configuration can be packed (dense, lstm, gru; not the convolutional ones).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .config import TrialConfig
from .data import Dataset
from .errors import ConfigError
from .prepare import Prepared
from .train import (
    BatchHook,
    DataCache,
    EpochHook,
    Fidelity,
    State,
    StopCheck,
    TrialPruned,
    TrialResult,
    TrialStopped,
    _data_config,
    _evenly,
    check_fits,
)

__all__ = [
    "PER_MEMBER",
    "PackedTrial",
    "packable",
    "require_jax",
    "shape_key",
    "train_packed",
]

PACKABLE_ARCHITECTURES = ("dense", "lstm", "gru")
# What may differ between the members of one pack (everything else fixes the program's shapes)
PER_MEMBER = ("seed", "learning_rate", "dropout", "recurrent_dropout", "head_dropout")
RMSPROP_RHO, ADAM_BETA_1, ADAM_BETA_2, EPSILON = 0.9, 0.9, 0.999, 1e-7  # Keras's defaults


def packable(config: TrialConfig) -> bool:
    return config.architecture in PACKABLE_ARCHITECTURES


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


# --------------------------------------------------------------------------- the pure model


@dataclass(frozen=True)
class _Rnn:
    cell: str  # lstm | gru
    units: int
    activation: str
    return_sequences: bool
    bidirectional: bool


@dataclass(frozen=True)
class _Spec:
    """The shapes of a pack's program (from its template configuration)."""

    architecture: str
    reverse: bool
    rnn: tuple[_Rnn, ...]
    dense: tuple[tuple[int, str], ...]
    residual: bool
    last_scale: float
    last_offset: float
    loss: str
    optimizer: str

    @classmethod
    def of(cls, config: TrialConfig, target: tuple[float, float]) -> _Spec:
        from .schema import TARGET_INDEX

        assert TARGET_INDEX == 1
        rnn: tuple[_Rnn, ...] = ()
        if config.is_recurrent:
            n = config.rnn_layers
            rnn = tuple(
                _Rnn(config.architecture, u, a, i < n - 1, config.bidirectional)
                for i, (u, a) in enumerate(zip(config.rnn_units, config.rnn_activations,
                                               strict=True))
            )  # fmt: skip
        mean, std = target
        scale, offset = (1.0, 0.0) if config.normalise_target else (std, mean)
        return cls(
            architecture=config.architecture,
            reverse=config.reverse and config.is_recurrent,
            rnn=rnn,
            dense=tuple((u, config.dense_activation) for u in config.dense_units),
            residual=config.residual,
            last_scale=float(scale),
            last_offset=float(offset),
            loss=config.loss,
            optimizer=config.optimizer,
        )


def _dropout_mask(key: Any, rate: Any, shape: tuple[int, ...]) -> Any:
    """Keras's inverted dropout applied to ones: 0 with probability ``rate``, else
    ``1 / (1 - rate)``; all ones for ``rate = 0``. ``rate`` may be traced (one per member)."""
    import jax
    import jax.numpy as jnp

    keep = 1.0 - rate
    return jnp.where(jax.random.uniform(key, shape) < keep, 1.0 / keep, 0.0).astype(jnp.float32)


def _rnn_layer(layer: _Rnn, w: Sequence[Any], x: Any, key: Any, rates: Any, training: bool) -> Any:
    """One Keras LSTM/GRU layer (no Bidirectional): (B, T, F) -> (B, T, U) or (B, U)."""
    import jax
    import jax.numpy as jnp
    import keras

    kernel, recurrent, bias = w
    act = keras.activations.get(layer.activation)
    sigmoid = keras.activations.get("sigmoid")
    b, _, f = x.shape
    u = layer.units
    g = 4 if layer.cell == "lstm" else 3
    if training:
        rate_in, rate_rec = rates[0], rates[1]
        k_in, k_rec = jax.random.split(key)
        in_masks = _dropout_mask(k_in, rate_in, (g, b, f))
        rec_masks = _dropout_mask(k_rec, rate_rec, (g, b, u))
        # Keras: per-gate masks when recurrent_dropout > 0 (its implementation 1), else one
        # input mask shared by the gates (implementation 2) and no recurrent mask
        in_masks = jnp.where(rate_rec > 0, in_masks, jnp.broadcast_to(in_masks[:1], in_masks.shape))
        xg = jnp.einsum("btf,gbf,fgu->tbgu", x, in_masks, kernel.reshape(f, g, u))
    else:
        rec_masks = None
        xg = jnp.einsum("btf,fgu->tbgu", x, kernel.reshape(f, g, u))
    rk = recurrent.reshape(u, g, u)
    if layer.cell == "lstm":
        xg = xg + bias.reshape(g, u)

        def step(carry: Any, xt: Any) -> Any:
            h, c = carry
            if rec_masks is None:
                r = jnp.einsum("bu,ugv->bgv", h, rk)
            else:
                r = jnp.einsum("gbu,ugv->bgv", h[None] * rec_masks, rk)
            z = xt + r  # (B, 4, U): i, f, c, o
            i, fg, cc, o = (z[:, k] for k in range(4))
            c = sigmoid(fg) * c + sigmoid(i) * act(cc)
            h = sigmoid(o) * act(c)
            return (h, c), h

        init: Any = (jnp.zeros((b, u), x.dtype), jnp.zeros((b, u), x.dtype))
    else:  # GRU, reset_after=True: bias = (input bias, recurrent bias)
        xg = xg + bias[0].reshape(g, u)
        rb = bias[1].reshape(g, u)

        def step(carry: Any, xt: Any) -> Any:
            h = carry
            if rec_masks is None:
                r = jnp.einsum("bu,ugv->bgv", h, rk) + rb
            else:
                r = jnp.einsum("gbu,ugv->bgv", h[None] * rec_masks, rk) + rb
            zg = sigmoid(xt[:, 0] + r[:, 0])
            rg = sigmoid(xt[:, 1] + r[:, 1])
            hh = act(xt[:, 2] + rg * r[:, 2])
            h = zg * h + (1 - zg) * hh
            return h, h

        init = jnp.zeros((b, u), x.dtype)
    _, hs = jax.lax.scan(step, init, xg)  # (T, B, U)
    if layer.return_sequences:
        return jnp.swapaxes(hs, 0, 1)
    return hs[-1]


def _forward(spec: _Spec, w: Sequence[Any], x: Any, key: Any, rates: Any, training: bool) -> Any:
    """The Keras model of one member, as a pure function: (B, T, F) -> (B,).

    ``w``: the model's weights in ``model.get_weights()`` order; ``rates``: (dropout,
    recurrent_dropout, head_dropout)."""
    import jax
    import jax.numpy as jnp
    import keras

    n_keys = 2 * len(spec.rnn) + 1
    keys = jax.random.split(key, n_keys) if training else [None] * n_keys
    inputs = x
    i = 0
    h = jnp.flip(x, axis=1) if spec.reverse else x
    if spec.architecture == "dense":
        h = h.reshape(h.shape[0], -1)
    for k, layer in enumerate(spec.rnn):
        out = _rnn_layer(layer, w[i : i + 3], h, keys[2 * k], rates, training)
        i += 3
        if layer.bidirectional:
            back = _rnn_layer(layer, w[i : i + 3], jnp.flip(h, axis=1), keys[2 * k + 1], rates,
                              training)  # fmt: skip
            i += 3
            if layer.return_sequences:
                back = jnp.flip(back, axis=1)
            out = jnp.concatenate([out, back], axis=-1)
        h = out
    for _units, activation in spec.dense:
        h = keras.activations.get(activation)(h @ w[i] + w[i + 1])
        i += 2
    if training:
        h = h * _dropout_mask(keys[-1], rates[2], h.shape)
    y = (h @ w[i] + w[i + 1])[:, 0]  # (B,)
    if spec.residual:
        y = y + inputs[:, -1, 1] * spec.last_scale + spec.last_offset
    return y


def _errors(spec: _Spec, pred: Any, y: Any) -> tuple[Any, Any]:
    """Per-window loss and absolute error."""
    import jax.numpy as jnp

    diff = pred - y
    absolute = jnp.abs(diff)
    return (diff * diff if spec.loss == "mse" else absolute), absolute


def _update(spec: _Spec, w: Any, grads: Any, state: Any, lr: Any, step: Any) -> tuple[Any, Any]:
    """Keras's RMSprop / Adam update of one member (``step``: its updates so far)."""
    import jax.numpy as jnp

    if spec.optimizer == "rmsprop":
        (vel,) = state
        vel = [RMSPROP_RHO * v + (1 - RMSPROP_RHO) * jnp.square(g)
               for v, g in zip(vel, grads, strict=True)]  # fmt: skip
        w = [p - (lr * g) / jnp.sqrt(v + EPSILON) for p, g, v in zip(w, grads, vel, strict=True)]
        return w, (vel,)
    m, v = state
    t = (step + 1).astype(jnp.float32)
    alpha = lr * jnp.sqrt(1 - ADAM_BETA_2**t) / (1 - ADAM_BETA_1**t)
    m = [mi + (g - mi) * (1 - ADAM_BETA_1) for mi, g in zip(m, grads, strict=True)]
    v = [vi + (jnp.square(g) - vi) * (1 - ADAM_BETA_2) for vi, g in zip(v, grads, strict=True)]
    w = [p - (mi * alpha) / (jnp.sqrt(vi) + EPSILON) for p, mi, vi in zip(w, m, v, strict=True)]
    return w, (m, v)


_PROGRAMS: dict[tuple[Any, ...], tuple[Any, Any, Any]] = {}


def _programs(spec: _Spec) -> tuple[Any, Any, Any]:
    """(train step with a shared batch, train step with one batch per member, eval step),
    jitted once per spec and process."""
    key = (spec,)
    if key in _PROGRAMS:
        return _PROGRAMS[key]
    import jax
    import jax.numpy as jnp

    def member_step(w, state, step, base_key, lr, rates, active, x, y, wts):
        key = jax.random.fold_in(base_key, step)

        def loss_fn(w):
            pred = _forward(spec, w, x, key, rates, True)
            loss, absolute = _errors(spec, pred, y)
            n = jnp.sum(wts)
            return jnp.sum(loss * wts) / n, (jnp.sum(loss * wts), jnp.sum(absolute * wts))

        grads, (loss_sum, abs_sum) = jax.grad(loss_fn, has_aux=True)(w)
        new_w, new_state = _update(spec, w, grads, state, lr, step)
        keep = lambda new, old: jnp.where(active, new, old)  # noqa: E731
        new_w = jax.tree_util.tree_map(keep, new_w, w)
        new_state = jax.tree_util.tree_map(keep, new_state, state)
        return new_w, new_state, step + active.astype(step.dtype), loss_sum, abs_sum

    def member_eval(w, x, y, wts):
        pred = _forward(spec, w, x, None, None, False)
        loss, absolute = _errors(spec, pred, y)
        return jnp.sum(loss * wts), jnp.sum(absolute * wts)

    donate = () if jax.default_backend() == "cpu" else (0, 1)  # CPU buffers cannot be donated
    shared = jax.jit(jax.vmap(member_step, in_axes=(0, 0, 0, 0, 0, 0, 0, None, None, None)),
                     donate_argnums=donate)  # fmt: skip
    separate = jax.jit(jax.vmap(member_step, in_axes=(0, 0, 0, 0, 0, 0, 0, 0, 0, None)),
                       donate_argnums=donate)  # fmt: skip
    evaluate = jax.jit(jax.vmap(member_eval, in_axes=(0, None, None, None)))
    _PROGRAMS[key] = (shared, separate, evaluate)
    return _PROGRAMS[key]


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
    patience: int
    epoch: int = 0  # finished epochs
    best: float | None = None
    best_weights: list[np.ndarray] | None = None
    wait: int = 0
    fit_s: float = 0.0
    started: float = field(default_factory=time.perf_counter)


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
    import jax
    import jax.numpy as jnp

    require_jax()
    if not trials:
        return []
    fidelity = fidelity or Fidelity()
    if isinstance(data, Dataset):
        data = DataCache(data)
    template = trials[0].config.validate()
    key = shape_key(template)
    if key is None:
        raise ConfigError(
            f"{template.architecture!r} trials cannot be packed (packable: "
            f"{', '.join(PACKABLE_ARCHITECTURES)})"
        )
    k_slots = slots or len(trials)
    if len(trials) > k_slots:
        raise ValueError(f"{len(trials)} trials for {k_slots} slots")
    prepared = data.for_config(template) if isinstance(data, DataCache) else data
    check_fits(template, prepared)
    r, n = template.sampling_rate, template.sequence_length
    offset = prepared.preset.offset(r, n)
    targets = prepared.targets(offset, template.normalise_target)
    unit = prepared.preset.batch_size
    batch = template.batch_size
    limit = (
        None
        if fidelity.steps_per_epoch is None
        else max(1, math.ceil(fidelity.steps_per_epoch * unit / batch))
    )
    train_starts = prepared.starts("train", r, n)
    val_starts = prepared.starts("val", r, n)
    if fidelity.validation_steps is not None:
        val_starts = _evenly(val_starts, fidelity.validation_steps * unit)
    from .windows import WindowDataset

    val_ds = WindowDataset(prepared.x, targets, val_starts, sequence_length=n, sampling_rate=r,
                           batch_size=batch, shuffle=False)  # fmt: skip
    val_batches = [_padded(val_ds[i], batch) for i in range(len(val_ds))]
    val_dev = [tuple(jnp.asarray(a) for a in b) for b in val_batches]
    baseline = float(np.mean(prepared.persistence_errors(val_starts, r, n)))
    spec = _Spec.of(template, (prepared.target_mean, prepared.target_std))
    normalised = template.normalise_target
    scale = prepared.target_std if normalised else 1.0
    loss_scale = scale**2 if template.loss == "mse" else scale
    data_config = _data_config(prepared, template)

    def open_slot(trial: PackedTrial) -> _Slot:
        from .models import build_model
        from .train import seed_everything

        config = trial.config.validate()
        if shape_key(config) != key:
            raise ValueError("a pack's trials must share their shape (jena.packed.shape_key)")
        seed_everything(config.seed)
        model = build_model(config, (n, prepared.features),
                            (prepared.target_mean, prepared.target_std))  # fmt: skip
        py_state = random.getstate()  # what model.fit would shuffle its batch order with
        ds = WindowDataset(prepared.x, targets, train_starts, sequence_length=n,
                           sampling_rate=r, batch_size=batch, shuffle=True, seed=config.seed,
                           limit=limit)  # fmt: skip
        order = _FitOrder(ds, py_state)
        result = TrialResult(
            state="completed",
            val_mae=None,
            baseline_val_mae=baseline,
            best_epoch=None,
            param_count=int(model.count_params()),
            data_config=dict(data_config, trial_config=config.to_dict()),
        )
        return _Slot(trial, model, order, result, trial.max_epochs or fidelity.max_epochs,
                     fidelity.patience)  # fmt: skip

    # host-side state of the slots; device-side: stacked weights, optimiser state, counters
    slots_: list[_Slot | None] = [open_slot(t) for t in trials] + [None] * (k_slots - len(trials))
    results: list[TrialResult] = [s.result for s in slots_ if s is not None]
    first = slots_[0]
    assert first is not None
    shapes = [np.shape(a) for a in first.model.get_weights()]

    def member_arrays(slot: _Slot | None) -> tuple[list[np.ndarray], list[Any], Any]:
        weights = (slot or first).model.get_weights()
        zeros = [np.zeros(s, np.float32) for s in shapes]
        state = (zeros,) if spec.optimizer == "rmsprop" else (zeros, [z.copy() for z in zeros])
        cfg = (slot or first).trial.config
        per = (cfg.seed, cfg.learning_rate, (cfg.dropout, cfg.recurrent_dropout,
                                             cfg.head_dropout))  # fmt: skip
        return weights, list(state), per

    def stack(values: list[Any]) -> Any:
        return jax.tree_util.tree_map(lambda *a: jnp.stack([jnp.asarray(v) for v in a]), *values)

    members = [member_arrays(s) for s in slots_]
    weights = stack([m[0] for m in members])
    opt_state = stack([tuple(m[1]) for m in members])
    steps = jnp.zeros(k_slots, jnp.int32)
    base_keys = jnp.stack([jax.random.PRNGKey(m[2][0]) for m in members])
    lrs = jnp.asarray([m[2][1] for m in members], jnp.float32)
    rates = jnp.asarray([m[2][2] for m in members], jnp.float32)
    shared_step, separate_step, evaluate = _programs(spec)

    def set_slot(i: int, slot: _Slot) -> None:
        nonlocal weights, opt_state, steps, base_keys, lrs, rates
        w, state, (seed, lr, rate) = member_arrays(slot)
        weights = [a.at[i].set(v) for a, v in zip(weights, w, strict=True)]
        opt_state = jax.tree_util.tree_map(lambda a, v: a.at[i].set(v), opt_state, tuple(state))
        steps = steps.at[i].set(0)
        base_keys = base_keys.at[i].set(jax.random.PRNGKey(seed))
        lrs = lrs.at[i].set(lr)
        rates = rates.at[i].set(jnp.asarray(rate, jnp.float32))

    def finish(i: int, state: State | None = None, reason: str | None = None,
               stopped: bool = False) -> None:  # fmt: skip
        slot = slots_[i]
        assert slot is not None
        res = slot.result
        if state is not None:
            res.state, res.reason, res.stopped = state, reason, stopped
        res.duration_s = slot.fit_s
        if res.state != "failed":
            if slot.best_weights is not None:
                slot.model.set_weights(slot.best_weights)
                res.model = slot.model
            res.val_mae, res.best_epoch = slot.best, slot.result.best_epoch
            if res.val_mae is None and res.state == "completed":
                res.state, res.reason = "failed", "no epoch finished"
        slots_[i] = None
        if slot.trial.on_done is not None:
            slot.trial.on_done(res)

    def fill(i: int) -> None:
        while refill is not None and slots_[i] is None:
            nxt = refill()
            if nxt is None:
                return
            slot = open_slot(nxt)
            slots_[i] = slot
            results.append(slot.result)
            set_slot(i, slot)

    stop_reason: str | None = None
    while any(s is not None for s in slots_) and stop_reason is None:
        live = [i for i, s in enumerate(slots_) if s is not None]
        active = jnp.asarray([s is not None for s in slots_])
        n_batches = len(slots_[live[0]].train_ds)  # type: ignore[union-attr]
        sums = jnp.zeros((2, k_slots), jnp.float32)
        counts = np.zeros(k_slots)
        t0 = time.perf_counter()
        for b in range(n_batches):
            streams: dict[tuple[int, int], Any] = {}
            for i in live:
                slot = slots_[i]
                assert slot is not None
                sk = slot.train_ds.key(slot.trial.config.seed, slot.epoch)
                if sk not in streams:
                    streams[sk] = _padded(slot.train_ds.batch(b), batch)
            stream_of = [
                None if s is None else s.train_ds.key(s.trial.config.seed, s.epoch) for s in slots_
            ]
            if len(streams) == 1:
                x, y, wts = next(iter(streams.values()))
                weights, opt_state, steps, loss_sum, abs_sum = shared_step(
                    weights, opt_state, steps, base_keys, lrs, rates, active, x, y, wts
                )
            else:
                fill_in = next(iter(streams.values()))
                xs = np.stack([streams[k][0] if k else fill_in[0] for k in stream_of])
                ys = np.stack([streams[k][1] if k else fill_in[1] for k in stream_of])
                wts = fill_in[2]
                weights, opt_state, steps, loss_sum, abs_sum = separate_step(
                    weights, opt_state, steps, base_keys, lrs, rates, active, xs, ys, wts
                )
            sums = sums + jnp.stack([loss_sum, abs_sum])
            for i in live:
                counts[i] += float(wts.sum())
                slots_[i].result.windows_seen += int(wts.sum())  # type: ignore[union-attr]
                hook = slots_[i].trial.on_batch  # type: ignore[union-attr]
                if hook is not None:
                    hook(b + 1, n_batches)
            if should_stop is not None and (stop_reason := should_stop()):
                where = f"(batch {b + 1})"
                break
        if stop_reason is None:
            val = jnp.zeros((2, k_slots), jnp.float32)
            for xv, yv, wv in val_dev:
                val = val + jnp.stack(evaluate(weights, xv, yv, wv))
                if should_stop is not None and (stop_reason := should_stop()):
                    where = "while validating"
                    break
        train_sums = np.asarray(jax.device_get(sums))
        share = (time.perf_counter() - t0) / max(1, len(live))
        for i in live:
            slots_[i].fit_s += share  # type: ignore[union-attr]
        if stop_reason is not None:
            for i in live:
                slot = slots_[i]
                assert slot is not None
                msg = (f"{stop_reason}: stopped in epoch {slot.epoch + 1} {where}, after "
                       f"{slot.epoch} finished epoch(s)")  # fmt: skip
                finish(i, "pruned", msg, stopped=True)
            break
        val_sums = np.asarray(jax.device_get(val))
        n_val = float(len(val_starts))
        host_weights: list[np.ndarray] | None = None
        for i in live:
            slot = slots_[i]
            assert slot is not None
            slot.epoch += 1
            slot.train_ds.next_epoch()
            epoch = slot.epoch
            metrics = {
                "loss": float(train_sums[0, i] / counts[i]) * loss_scale,
                "val_loss": float(val_sums[0, i] / n_val) * loss_scale,
                "mae": float(train_sums[1, i] / counts[i]) * scale,
                "val_mae": float(val_sums[1, i] / n_val) * scale,
            }
            slot.result.history.append({"epoch": float(epoch), **metrics})
            if not math.isfinite(metrics["loss"]):
                finish(i, "failed", f"NaN loss (or NaN weights) in epoch {epoch}")
                continue
            val_mae = metrics["val_mae"]
            stop = False
            if math.isfinite(val_mae) and (slot.best is None or val_mae < slot.best):
                if host_weights is None:
                    host_weights = [np.asarray(a) for a in jax.device_get(weights)]
                best = [np.array(a[i]) for a in host_weights]
                if not all(np.isfinite(a).all() for a in best):
                    finish(i, "failed", f"NaN loss (or NaN weights) in epoch {epoch}")
                    continue
                slot.best, slot.wait, slot.best_weights = val_mae, 0, best
                slot.result.best_epoch = epoch
            else:
                slot.wait += 1
                stop = slot.wait >= slot.patience
            try:
                if slot.trial.on_epoch is not None:
                    slot.trial.on_epoch(epoch, metrics)  # may raise TrialPruned
            except TrialPruned as exc:
                finish(i, "pruned", str(exc) or "pruned", stopped=isinstance(exc, TrialStopped))
                continue
            if stop or epoch >= slot.max_epochs:
                finish(i)
        for i in range(k_slots):
            if slots_[i] is None:
                fill(i)
    return results
