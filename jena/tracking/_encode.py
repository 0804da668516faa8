"""How values become MLflow params, tags, metrics and logged text (keys sanitised, MLflow's
limits kept, every text redacted: :func:`jena.secrets.redact` — no password or token of a
setting reaches the store, whatever the setting)."""

from __future__ import annotations

import json
import math
import posixpath
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric, Param, RunTag

from jena.secrets import redact

# MLflow limits (mlflow/utils/validation.py).
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_KEY_LENGTH = 250
MAX_PARAM_LENGTH = 6000
MAX_TAG_LENGTH = 8000
MAX_REASON_LENGTH = 2000

_BAD_KEY_CHARS = re.compile(r"[^/\w.\- :]")


def sanitize_key(key: object) -> str:
    """A valid MLflow param / metric / tag key."""
    text = _BAD_KEY_CHARS.sub("_", str(key)).strip("/")
    text = re.sub(r"/+", "/", text)
    if posixpath.normpath(text) != text:
        text = text.replace("/", "_")
    return (text or "_")[:MAX_KEY_LENGTH]


def value_text(value: object) -> str:
    """A param's or tag's value as MLflow stores it: text, without secrets."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list | tuple | set | frozenset | dict):
        seq = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return redact(json.dumps(seq, default=str))
    return redact(str(value))


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested dicts become ``a.b`` keys; values become strings."""
    out: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, name + "."))
        else:
            out[sanitize_key(name)] = value_text(value)
    return out


def params(values: Mapping[str, Any]) -> list[Param]:
    return [Param(k, v[:MAX_PARAM_LENGTH]) for k, v in flatten(values).items()]


def tags(values: Mapping[str, Any]) -> list[RunTag]:
    return [
        RunTag(sanitize_key(k), value_text(v)[:MAX_TAG_LENGTH])
        for k, v in values.items()
        if v is not None
    ]


def now_ms() -> int:
    return int(time.time() * 1000)


def finite(value: object) -> float | None:
    """``value`` as a finite float, else None."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def metric(key: str, value: object, step: int = 0, timestamp: int | None = None) -> Metric | None:
    """An MLflow metric, or None for a value that is not a finite number."""
    number = finite(value)
    if number is None:
        return None
    return Metric(sanitize_key(key), number, timestamp or now_ms(), int(step))


def metrics(values: Mapping[str, Any], step: int = 0) -> list[Metric]:
    now = now_ms()
    out = [metric(k, v, step, now) for k, v in values.items()]
    return [m for m in out if m is not None]


def log_batch(
    client: mlflow.MlflowClient,
    run_id: str,
    metrics: Sequence[Metric] = (),
    params: Sequence[Param] = (),
    tags: Sequence[RunTag] = (),
) -> None:
    """``client.log_batch`` split to MLflow's limits (usually a single call)."""
    m_left, p_left, t_left = list(metrics), list(params), list(tags)
    while m_left or p_left or t_left:
        p, p_left = p_left[:MAX_PARAMS_TAGS_PER_BATCH], p_left[MAX_PARAMS_TAGS_PER_BATCH:]
        t, t_left = t_left[:MAX_PARAMS_TAGS_PER_BATCH], t_left[MAX_PARAMS_TAGS_PER_BATCH:]
        room = MAX_METRICS_PER_BATCH - len(p) - len(t)
        m, m_left = m_left[:room], m_left[room:]
        client.log_batch(run_id, metrics=m, params=p, tags=t)


class JSONEncoder(json.JSONEncoder):
    """Numpy arrays / scalars, paths and the like in data configurations."""

    def default(self, o: Any) -> Any:
        if hasattr(o, "tolist"):
            return o.tolist()
        if isinstance(o, Path):
            return str(o)
        if isinstance(o, set | frozenset):
            return sorted(o, key=str)
        return super().default(o)


def to_json(value: Any) -> str:
    """``value`` as the JSON text of a logged file (``sweep.json``, ``best_trial.json``), every
    string in it redacted."""
    return redact(json.dumps(value, indent=2, cls=JSONEncoder))


def reason(exc: BaseException | None) -> str:
    """``Type: message`` of an exception, cut to MLflow's tag length."""
    if exc is None:
        return ""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return redact(text)[:MAX_REASON_LENGTH]


def first_line(exc: BaseException) -> str:
    text = redact(str(exc)).strip().splitlines()
    return text[0] if text else type(exc).__name__
