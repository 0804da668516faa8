"""The pure model of a pack's members (:mod:`jena.packed`): the Keras layers a packable
configuration is made of (LSTM/GRU cells, Dense, Dropout, the residual head) as pure JAX
functions of one member's weights, its loss, Keras's RMSprop/Adam update, and the compiled
programs that ``jax.vmap`` them over the member axis."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..config import TrialConfig

RMSPROP_RHO, ADAM_BETA_1, ADAM_BETA_2, EPSILON = 0.9, 0.9, 0.999, 1e-7  # Keras's defaults


@dataclass(frozen=True)
class _Rnn:
    cell: str  # lstm | gru
    units: int
    activation: str
    return_sequences: bool
    bidirectional: bool


@dataclass(frozen=True)
class Spec:
    """The shapes of a pack's program (from its template configuration)."""

    body: str  # the architecture's packs_as: flatten | lstm | gru (jena.architectures)
    reverse: bool
    rnn: tuple[_Rnn, ...]
    dense: tuple[tuple[int, str], ...]
    residual: bool
    last_scale: float
    last_offset: float
    loss: str
    optimizer: str

    @classmethod
    def of(cls, config: TrialConfig, target: tuple[float, float]) -> Spec:
        from ..architectures import get as architecture
        from ..schema import TARGET_INDEX

        assert TARGET_INDEX == 1
        body = architecture(config.architecture).packs_as
        assert body is not None, f"{config.architecture!r} is not packable"
        rnn: tuple[_Rnn, ...] = ()
        if body != "flatten":  # a stack of lstm or gru cells
            n = config.rnn_layers
            rnn = tuple(
                _Rnn(body, u, a, i < n - 1, config.bidirectional)
                for i, (u, a) in enumerate(zip(config.rnn_units, config.rnn_activations,
                                               strict=True))
            )  # fmt: skip
        mean, std = target
        scale, offset = (1.0, 0.0) if config.normalise_target else (std, mean)
        return cls(
            body=body,
            reverse=config.reverse and config.is_recurrent,
            rnn=rnn,
            dense=tuple((u, config.dense_activation) for u in config.dense_units),
            residual=config.residual == "persistence",  # "ridge": in the targets
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


def _forward(spec: Spec, w: Sequence[Any], x: Any, key: Any, rates: Any, training: bool) -> Any:
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
    if spec.body == "flatten":
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


def _errors(spec: Spec, pred: Any, y: Any) -> tuple[Any, Any]:
    """Per-window loss and absolute error."""
    import jax.numpy as jnp

    diff = pred - y
    absolute = jnp.abs(diff)
    return (diff * diff if spec.loss == "mse" else absolute), absolute


def _update(spec: Spec, w: Any, grads: Any, state: Any, lr: Any, step: Any) -> tuple[Any, Any]:
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


def programs(spec: Spec) -> tuple[Any, Any, Any]:
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
    separate = jax.jit(jax.vmap(member_step, in_axes=(0, 0, 0, 0, 0, 0, 0, 0, 0, 0)),
                       donate_argnums=donate)  # fmt: skip
    evaluate = jax.jit(jax.vmap(member_eval, in_axes=(0, None, None, None)))
    _PROGRAMS[key] = (shared, separate, evaluate)
    return _PROGRAMS[key]
