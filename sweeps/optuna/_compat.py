"""Every use of Optuna's private API, in one place (written against optuna 5.1.0).

Optuna has no public way to fail one RUNNING trial of another process with a reason, to list
the trials whose heartbeat went stale, or to beat for a trial outside ``study.optimize``; the
sweep's fault handling (:mod:`sweeps.optuna._faults`) needs all three. Each function names the
private attribute it reads; ``tests/test_upstream.py`` calls each one against the installed
Optuna and fails loudly when a release changed it.
"""

from __future__ import annotations

from typing import Any

import optuna


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The study's storage (``Study._storage``; 5.1.0)."""
    storage: optuna.storages.BaseStorage = study._storage
    return storage


def study_id(study: optuna.Study) -> int:
    """The study's id in its storage (``Study._study_id``; 5.1.0)."""
    return int(study._study_id)


def trial_id(trial: optuna.Trial | optuna.trial.FrozenTrial) -> int:
    """A trial's id in its storage (``Trial._trial_id``, ``FrozenTrial._trial_id``; 5.1.0)."""
    return int(trial._trial_id)


def heartbeat_enabled(storage: optuna.storages.BaseStorage) -> bool:
    """Whether the storage records heartbeats (``optuna.storages._heartbeat.
    is_heartbeat_enabled``; 5.1.0: RDB storages given ``heartbeat_interval``)."""
    from optuna.storages._heartbeat import is_heartbeat_enabled

    return bool(is_heartbeat_enabled(storage))


def heartbeat_interval(storage: optuna.storages.BaseStorage) -> float:
    """Seconds between beats (``BaseHeartbeat.get_heartbeat_interval``; 5.1.0)."""
    return float(storage.get_heartbeat_interval())  # type: ignore[attr-defined]


def record_heartbeat(storage: optuna.storages.BaseStorage, trial: int) -> None:
    """Beat for trial id ``trial`` now (``BaseHeartbeat.record_heartbeat``; 5.1.0)."""
    storage.record_heartbeat(trial)  # type: ignore[attr-defined]


def stale_trial_ids(study: optuna.Study) -> list[int]:
    """Ids of the RUNNING trials whose heartbeat is older than the grace period, judged by the
    database's clock (``BaseHeartbeat._get_stale_trial_ids``; 5.1.0)."""
    storage: Any = storage_of(study)
    return [int(t) for t in storage._get_stale_trial_ids(study_id(study))]
