"""Runs left RUNNING by a process that is gone (kill -9, power loss, a lost machine) are closed
as KILLED, by whichever process notices first:

* a run whose process on **this host** no longer exists (the ``host`` / ``pid`` tags) — the one
  rule of the embedded store, applied when a sweep starts;
* on a store shared by several machines, a **parent run whose heartbeat stopped** (tag
  ``heartbeat_at`` older than the grace period; see ``SweepRun.start_heartbeat``), and the
  trial runs still RUNNING under it — applied when a sweep starts and, by its workers, while it
  runs;
* the run of a **trial that Optuna's heartbeat declared stale** (:func:`close_trial_runs`, from
  the Optuna driver's stale-trial callback).
"""

from __future__ import annotations

from jena.owner import owner_is_dead

from . import _encode as enc
from . import names
from ._runs import Tracker

STALE_REASON = "stale: its process died"
ORPHAN_REASON = "stale: the process of its sweep run died"


def _heartbeat_age_s(tags: dict[str, str], now_ms: int) -> tuple[float, float] | None:
    """(seconds since the run's last heartbeat, its interval), or None if it has none."""
    try:
        last = int(tags[names.TAG_HEARTBEAT])
    except (KeyError, ValueError):
        return None
    interval = enc.finite(tags.get(names.TAG_HEARTBEAT_S)) or 0.0
    return (now_ms - last) / 1000, interval


def close_stale_runs(tracker: Tracker, grace_s: float | None = None) -> int:
    """Close (KILLED) every RUNNING run of the experiment whose process is gone; returns how
    many. Without ``grace_s`` only this host's dead processes are judged; with it, also parent
    runs whose heartbeat is older than ``grace_s`` (or three of their own intervals, if longer)
    — wherever they ran — with their trial runs still RUNNING."""
    running = tracker.running_runs()
    now = enc.now_ms()
    closed: set[str] = set()
    dead_parents: set[str] = set()
    for run in running:
        tags, run_id = run.data.tags, run.info.run_id
        is_parent = names.TAG_PARENT not in tags
        if owner_is_dead(tags.get(names.TAG_HOST), tags.get(names.TAG_PID)):
            tracker.close_run(run_id, "killed", STALE_REASON)
        elif grace_s is not None and is_parent:
            age = _heartbeat_age_s(tags, now)
            if age is None or age[0] <= max(grace_s, 3 * age[1]):
                continue
            host, pid = tags.get(names.TAG_HOST, "?"), tags.get(names.TAG_PID, "?")
            tracker.close_run(run_id, "killed", f"stale: no heartbeat for {age[0]:.0f} s (host "
                              f"{host}, pid {pid}): its process died")  # fmt: skip
        else:
            continue
        closed.add(run_id)
        if is_parent:
            dead_parents.add(run_id)
    for run in running:
        run_id = run.info.run_id
        if run_id not in closed and run.data.tags.get(names.TAG_PARENT) in dead_parents:
            tracker.close_run(run_id, "killed", ORPHAN_REASON)
            closed.add(run_id)
    return len(closed)


def close_trial_runs(tracker: Tracker, number: int, reason: str) -> int:
    """Close (KILLED, ``reason``) the RUNNING runs of trial ``number``; returns how many."""
    found = [
        r
        for r in tracker.running_runs()
        if r.data.tags.get(names.TAG_TRIAL_NUMBER) == str(int(number))
        and r.data.tags.get(names.TAG_RUN_TYPE) == names.RUN_TRIAL
    ]
    for run in found:
        tracker.close_run(run.info.run_id, "killed", reason)
    return len(found)
