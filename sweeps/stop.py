"""Stop rules besides the trial count and the time budget (``[stop]`` in a sweep file): a target
validation MAE, and patience (no new best in N completed trials). Both drivers ask
:func:`stop_reason` after every trial with the study's completed trials."""

from __future__ import annotations

from collections.abc import Sequence

from .config import SweepConfig


def stop_reason(cfg: SweepConfig, completed: Sequence[tuple[int, float]]) -> str | None:
    """Why the sweep should stop now, or None. ``completed``: (trial number, val MAE) of every
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
