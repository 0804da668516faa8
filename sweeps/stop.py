"""Why a sweep stops: its ``[stop]`` rules (a target validation MAE; patience: no new best in N
completed trials), asked by every driver after every trial (:func:`stop_rule`), and which rule
ended an invocation (:func:`why_ended`): a rule, the trial budget, the time budget, trials of
other processes holding the rest of the budget, or a search that has no more to propose."""

from __future__ import annotations

import time
from collections.abc import Sequence

from .config import SweepConfig
from .state import SweepState


def stop_rule(cfg: SweepConfig, completed: Sequence[tuple[int, float]]) -> str | None:
    """The ``[stop]`` rule met now, or None. ``completed``: (trial number, val MAE) of every
    completed trial of the sweep so far (all invocations), in any order."""
    if not completed:
        return None
    done = sorted(completed)
    best_number, best = min(done, key=lambda t: (t[1], t[0]))
    target = cfg.stop.target_val_mae
    if target is not None and best <= target:
        return f"target validation MAE {target:g} °C reached (trial {best_number}: {best:.4f})"
    patience = cfg.stop.patience_trials
    if patience is not None:
        since = sum(1 for number, _ in done if number > best_number)
        if since >= patience:
            return (
                f"no new best in {since} completed trials (patience {patience}; best: trial "
                f"{best_number}, {best:.4f} °C)"
            )
    return None


def why_ended(cfg: SweepConfig, state: SweepState, deadline: float | None) -> str:
    """Which rule ended this invocation: a ``[stop]`` rule, the trial budget, the time budget,
    the rest of the budget taken by trials running in other processes
    (``state.running_elsewhere``), or a sampler that has no more to propose."""
    if state.stop_reason:
        return state.stop_reason
    done, total, elsewhere = state.finished, cfg.trials, state.running_elsewhere
    if done >= total:
        return f"trial budget reached ({done} of {total} trials)"
    if deadline is not None and time.monotonic() >= deadline:
        return f"time budget reached ({cfg.timeout_minutes:g} min)"
    if elsewhere and done + elsewhere >= total:
        return (f"the rest of the budget is running elsewhere ({elsewhere} "
                f"trial{'s' if elsewhere > 1 else ''} running in another process; {done} of "
                f"{total} trials ended)")  # fmt: skip
    return f"the search is over ({done} of {total} trials: the sampler has no more)"
