"""Runs left RUNNING by a process that is gone (kill -9, power loss) are closed as KILLED."""

from __future__ import annotations

from jena._owner import owner_is_dead

from . import _names as N
from ._runs import Tracker

STALE_REASON = "stale: its process died"


def close_stale_runs(tracker: Tracker) -> int:
    """Close (KILLED) every RUNNING run of the experiment whose owning process on this host is
    gone; returns how many. Runs owned by other hosts are left to their own heartbeat."""
    stale = 0
    for run in tracker.running_runs():
        tags = run.data.tags
        if owner_is_dead(tags.get(N.TAG_HOST), tags.get(N.TAG_PID)):
            tracker.close_run(run.info.run_id, "killed", STALE_REASON)
            stale += 1
    return stale
