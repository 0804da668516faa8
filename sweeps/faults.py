"""What stops a sweep, the same for every driver, besides its budgets and ``[stop]`` rules:

* trials failing **the same way** several times in a row
  (``[faults].max_consecutive_failed_trials``; Keras Tuner's ``[tuner]`` key of that name too):
  :class:`FailureStreak`;
* a sweep that **can never fit its data** (the smallest window of its space is longer than a
  split): refused before anything runs, with the reason (:func:`unfittable`);
* a run in which **every trial failed**: it ends with an error naming the most common reason
  (:func:`all_failed`), not with exit status 0.

Infrastructure failures (:class:`jena.errors.InfrastructureError`) stop a sweep at the first
one; the drivers see to it that the trial they interrupted does not count.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from jena.errors import ConfigError, JenaError

_EXCEPTION = re.compile(r"\s*([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit))\b")


class TooManyFailures(JenaError):
    """Trials failed the same way too many times in a row: the sweep stops."""


class AllTrialsFailed(JenaError):
    """Every trial of a sweep invocation failed."""


def failure_kind(reason: str | None) -> str:
    """What a failure is, without its particulars: the exception's type, else the reason's
    first clause with numbers left out (``NaN loss in epoch #``)."""
    text = (reason or "failed").strip()
    found = _EXCEPTION.match(text)
    if found:
        return found.group(1)
    head = text.split(": ", 1)[0]
    return re.sub(r"\d+(\.\d+)?", "#", head).strip().lower()[:120]


class FailureStreak:
    """Counts trials that failed the same way in a row (a completed or pruned trial, or a
    failure of another kind, starts it again); :meth:`add` raises :class:`TooManyFailures` at
    ``limit`` (0: never)."""

    def __init__(self, limit: int, label: str) -> None:
        self.limit = int(limit)
        self.label = label  # "Optuna", "Keras Tuner"
        self.kind: str | None = None
        self.count = 0
        self.last: str | None = None

    def add(self, state: str, reason: str | None = None) -> None:
        if state != "failed":
            self.kind, self.count = None, 0
            return
        kind = failure_kind(reason)
        self.count = self.count + 1 if kind == self.kind else 1
        self.kind, self.last = kind, reason or "failed"
        if self.limit and self.count >= self.limit:
            raise TooManyFailures(
                f"{self.count} {self.label} trials failed in a row the same way (last: "
                f"{one_line(self.last)}); stopping. Fix the cause or raise "
                "[faults].max_consecutive_failed_trials; re-running the sweep resumes it"
            )


def one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def all_failed(reasons: Iterable[str | None], ran: int) -> AllTrialsFailed:
    """The error of a run whose ``ran`` trials all failed, naming the most common reason."""
    counts = Counter(one_line(r or "failed") for r in reasons)
    if not counts:
        return AllTrialsFailed(f"every trial of this run failed ({ran} of {ran})")
    reason, times = counts.most_common(1)[0]
    others = f"; {len(counts) - 1} other reason(s)" if len(counts) > 1 else ""
    return AllTrialsFailed(
        f"every trial of this run failed ({ran} of {ran}); most common reason ({times}×"
        f"{others}): {reason}"
    )


def unfittable(cfg: Any, space: Any, cache: Any) -> str | None:
    """Why no point of the sweep's space can fit the data (its smallest windows, at every
    sampling rate it searches, do not fit the training or validation split), or None when one
    can — or when that cannot be told here (the trials will say)."""
    from jena.book import preset_defaults
    from jena.space import PRESET
    from jena.train import check_fits

    base = preset_defaults(cfg.data.preset, cfg.seed)
    candidates: list[dict[str, Any]] = []
    if space.presets:
        candidates = [{PRESET: name} for name in space.presets]
    else:
        names = space.names
        rates = list(space["sampling_rate"].choices or ()) if "sampling_rate" in names else [None]
        for rate in rates:

            def ask(p: Any, rate: Any = rate) -> Any:
                if p.name == "sampling_rate":
                    return rate
                if p.name == "sequence_length_hours":
                    return min(p.choices) if p.kind == "categorical" else int(p.low)
                return _legal_default(p)

            candidates.append(space.walk(ask, base))
    reasons: list[str] = []
    for values in candidates:
        try:
            config = space.to_config(values, base).validate()
        except ConfigError:
            continue  # not a valid point for another reason: the trials will say
        try:
            check_fits(config, cache.for_config(config))
        except ConfigError as exc:
            reasons.append(str(exc))
            continue
        return None
    return reasons[0] if reasons else None


def _legal_default(p: Any) -> Any:
    try:
        return p.check(p.default)
    except ConfigError:
        if p.choices:
            return p.choices[0]
        return False if p.kind == "bool" else p.low
