"""The Optuna side of workers that die, infrastructure that fails and stop signals.

* **Heartbeats** (RDB storages: ``sqlite:///``, ``postgresql://``): Optuna's heartbeat — every
  running trial beats every ``[faults].heartbeat_interval_s`` (:class:`Beats`), and a
  RUNNING trial silent for ``grace_period_s`` is stale (judged by the database's clock). Each
  worker's :class:`Reaper` looks every interval; the one that fails a stale trial
  (:func:`fail_stale`, Optuna's ``fail_stale_trials`` with our stale-trial handling) records why
  and ends the trial's MLflow run KILLED. The same reaper ends the parent runs of dead
  invocations (their heartbeat tag, ``jena.tracking.close_stale_runs``). The journal file has
  no heartbeat: a trial whose process on this host is gone is failed when a sweep starts.
* **Stale trials count**: a stale trial is a failed trial of the budget (completed + pruned +
  failed is the total). It is run again — ``retry_stale_trials`` times at most, as a linked
  WAITING copy with the same parameters (user attr ``retry_of``; Optuna's ``failed_trial`` /
  ``retry_history`` system attrs, as ``RetryHeartbeatStaleTrialCallback``) — only where the
  budget has room for the copy: the next ask queues it under the budget's lock
  (:func:`retry_stale`) and runs it first. A stale trial that took the last slot is not run
  again: its slot is the failure, and no copy is left WAITING that could never run.
* **Lost trials**: a trial interrupted by an :class:`~jena.errors.InfrastructureError` (a full
  disk, the tracking store gone, a storage error) or by a stop signal
  (:class:`jena.signals.Interrupted`: SIGTERM, SIGINT, SIGHUP, a worker's main process gone) is
  failed with user attr ``lost`` — which keeps it out of the budget — and queued again at once
  (:func:`mark_lost`): it runs first, whatever the count.
* **The budget across machines**: "count the trials, ask for one" holds a PostgreSQL advisory
  lock on a PostgreSQL storage, a lock file otherwise (:func:`~sweeps.optuna._study.budget_lock`,
  with the other storage helpers). A WAITING retry is
  run even when the count says the budget is spent (one queued in a race, or by an older
  version): none is left WAITING.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

import optuna
from optuna.trial import FrozenTrial, TrialState

from jena import tracking as T
from jena.errors import InfrastructureError
from jena.infrastructure import as_infrastructure
from jena.secrets import redact  # every reason and URL this module records or says

from ..config import SweepConfig
from . import _compat as U

LOST = "lost"  # user attr: what interrupted the trial (a lost trial does not count)
RETRY_OF = "retry_of"  # user attr: the trial this one runs again
FAIL_REASON = "fail_reason"
STALE_PREFIX = "stale:"  # the fail_reason of a trial whose worker died (T.STALE_REASON, ...)
_NOT_COPIED = (FAIL_REASON, "state", "host", "pid", "val_skill", LOST)
_STORAGE_ERRORS = ("OperationalError", "InterfaceError", "DisconnectionError",
                   "StorageInternalError", "DatabaseError")  # fmt: skip


def storage_problem(exc: BaseException) -> bool:
    """The Optuna storage itself failed (its database unreachable, a dropped connection)."""
    node: BaseException | None = exc
    for _ in range(20):
        if node is None:
            return False
        module = type(node).__module__ or ""
        if type(node).__name__ in _STORAGE_ERRORS and module.startswith(
            ("sqlalchemy", "optuna", "psycopg", "sqlite3", "pymysql")
        ):
            return True
        node = node.__cause__ or node.__context__
    return False


def as_lost(exc: BaseException, url: str) -> InfrastructureError | None:
    """``exc`` as an InfrastructureError (a full disk, the tracking store, the Optuna storage
    ``url``), or None when the trial itself failed."""
    found = as_infrastructure(exc)
    if found is not None:
        return found
    if storage_problem(exc):
        text = " ".join(str(exc).split())[:200]
        return InfrastructureError(
            f"the Optuna storage {redact(url)} failed ({type(exc).__name__}: {text})"
        )
    return None


# ------------------------------------------------------------------ heartbeats
class Beats:
    """Heartbeats of a worker's trials in flight (asked for and not yet told, packed members
    waiting for their pack too): each beats once when it is :meth:`add`-ed, then every interval
    from one daemon thread while :meth:`running`. A beat that fails is skipped quietly (the
    trial's own writes will say if the storage is gone). Nothing on a storage without
    heartbeats (the journal file, memory)."""

    def __init__(self, storage: optuna.storages.BaseStorage) -> None:
        self.storage = storage
        self.on = U.heartbeat_enabled(storage)
        self.ids: set[int] = set()
        self.lock = threading.Lock()

    def add(self, trial: optuna.Trial) -> None:
        if not self.on:
            return
        with self.lock:
            self.ids.add(U.trial_id(trial))
        with contextlib.suppress(Exception):
            U.record_heartbeat(self.storage, U.trial_id(trial))

    def remove(self, trial: optuna.Trial) -> None:
        with self.lock:
            self.ids.discard(U.trial_id(trial))

    def beat(self) -> None:
        with self.lock:
            ids = sorted(self.ids)
        for trial_id in ids:
            with contextlib.suppress(Exception):
                U.record_heartbeat(self.storage, trial_id)

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        if not self.on:
            yield
            return
        with _every(U.heartbeat_interval(self.storage), self.beat, "optuna-heartbeat", now=False):
            yield


@contextlib.contextmanager
def _every(interval: float, call: Callable[[], object], name: str, *, now: bool) -> Iterator[None]:
    """Run ``call`` every ``interval`` seconds (first at once if ``now``) in a daemon thread
    while the block runs; a call that raises is skipped quietly (the caller's own writes will
    say if the storage is gone)."""
    stop = threading.Event()

    def loop() -> None:
        if now:
            with contextlib.suppress(Exception):
                call()
        while not stop.wait(interval):
            with contextlib.suppress(Exception):
                call()

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


# ------------------------------------------------------------------ stale and lost trials
def requeue(study: optuna.Study, trial: FrozenTrial, *, limit: int | None) -> int | None:
    """Queue a WAITING copy of ``trial`` (same parameters; ``retry_of``), unless it was run
    ``limit`` times again already; returns the trial it re-runs or None."""
    history = list(trial.system_attrs.get("retry_history", []))
    if limit is not None and len(history) >= limit:
        return None
    system = {**trial.system_attrs, "retry_history": [*history, trial.number]}
    system.setdefault("failed_trial", trial.number)
    users = {k: v for k, v in trial.user_attrs.items() if k not in _NOT_COPIED}
    users[RETRY_OF] = trial.number
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs=users,
            system_attrs=system,
        )
    )
    return trial.number


def stale_trial(study: optuna.Study, trial: FrozenTrial, reason: str, cfg: SweepConfig) -> None:
    """A trial of ``study`` whose worker is gone was failed (with ``reason``): end its MLflow
    run. The next ask runs it again where the budget has room (:func:`retry_stale`)."""
    with contextlib.suppress(Exception):  # else the parent's reaper, or the next start, will
        T.close_trial_runs(T.Tracker(cfg.storage.tracking_uri, cfg.name), trial.number, reason)


def is_stale(trial: FrozenTrial) -> bool:
    """A trial failed because its worker died (the same-host check, or its heartbeat)."""
    reason = str(trial.user_attrs.get(FAIL_REASON, ""))
    return trial.state == TrialState.FAIL and reason.startswith(STALE_PREFIX)


def retry_stale(study: optuna.Study, trials: list[FrozenTrial], room: int, limit: int) -> None:
    """Queue a copy of each stale trial of ``trials`` (all of the study's) not yet run again,
    ``limit`` times at most, while the budget has ``room`` for it beside the trials already
    WAITING. Under the budget's lock."""
    room -= sum(t.state == TrialState.WAITING for t in trials)
    retried = {t.user_attrs.get(RETRY_OF) for t in trials}
    for t in trials:
        if room <= 0 or not limit:
            return
        if is_stale(t) and t.number not in retried and requeue(study, t, limit=limit) is not None:
            room -= 1


def retry_waiting(study: optuna.Study) -> bool:
    """The next ask gets a WAITING retry (Optuna hands out the oldest WAITING trial first)."""
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    return bool(waiting) and RETRY_OF in waiting[0].user_attrs


def fail(study: optuna.Study, trial_id: int, reason: str) -> FrozenTrial | None:
    """Fail a RUNNING trial with ``reason`` (user attr ``fail_reason``); the trial if this
    process did it, None if another one did first."""
    storage = U.storage_of(study)
    with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
        storage.set_trial_user_attr(trial_id, FAIL_REASON, redact(reason))
        if storage.set_trial_state_values(trial_id, TrialState.FAIL):
            return storage.get_trial(trial_id)
    return None


def fail_stale(study: optuna.Study, cfg: SweepConfig) -> int:
    """Optuna's ``fail_stale_trials``, saying why: every RUNNING trial without a heartbeat for
    the grace period is failed (by one worker, whichever gets there first), its MLflow run ended
    and the trial queued again (:func:`stale_trial`); returns how many this process failed."""
    storage = U.storage_of(study)
    if not U.heartbeat_enabled(storage):
        return 0
    done = 0
    for trial_id in U.stale_trial_ids(study):
        attrs = storage.get_trial(trial_id).user_attrs
        who = f"host {attrs.get('host', '?')}, pid {attrs.get('pid', '?')}"
        reason = (f"stale: no heartbeat for {cfg.faults.grace_period_s} s ({who}): its worker "
                  "died")  # fmt: skip
        failed = fail(study, trial_id, reason)
        if failed is not None:
            stale_trial(study, failed, reason, cfg)
            done += 1
    return done


def mark_lost(study: optuna.Study, trial: optuna.Trial, reason: str) -> None:
    """``trial`` was interrupted (the infrastructure failed, a stop signal: ``reason``): fail it
    as lost (it does not count against the budget) and queue it again; quietly, as far as the
    storage still answers. A trial told meanwhile keeps its result."""
    reason = redact(reason)
    text = f"{T.LOST_PREFIX}{reason}"
    with contextlib.suppress(Exception):
        if U.storage_of(study).get_trial(U.trial_id(trial)).state != TrialState.RUNNING:
            return
        trial.set_user_attr(LOST, reason)
        trial.set_user_attr(FAIL_REASON, text)
        study.tell(trial, state=TrialState.FAIL)
    with contextlib.suppress(Exception):
        requeue(study, U.storage_of(study).get_trial(U.trial_id(trial)), limit=None)


class Reaper:
    """Fails stale trials and ends dead invocations' parent runs: :meth:`maybe` at most once
    per heartbeat interval, or :meth:`running` — a daemon thread doing it every interval while
    a worker runs, so a dead worker's trial is failed about ``grace_period_s`` after its last
    beat whatever the trials around it take."""

    def __init__(self, cfg: SweepConfig, tracker: T.Tracker | None) -> None:
        self.cfg = cfg
        self.tracker = tracker
        self.every = float(cfg.faults.heartbeat_interval_s)
        self.last = -float("inf")

    def maybe(self, study: optuna.Study) -> None:
        if time.monotonic() - self.last < self.every:
            return
        self.last = time.monotonic()
        fail_stale(study, self.cfg)
        if self.tracker is not None and T.is_shared(self.tracker.tracking_uri):
            with contextlib.suppress(Exception):  # the next trial's writes will say
                T.close_stale_runs(self.tracker, grace_s=self.cfg.faults.grace_period_s)

    @contextlib.contextmanager
    def running(self, study: optuna.Study) -> Iterator[None]:
        if not U.heartbeat_enabled(U.storage_of(study)) and not (
            self.tracker is not None and T.is_shared(self.tracker.tracking_uri)
        ):
            yield
            return

        def reap() -> None:
            self.last = -float("inf")
            self.maybe(study)

        with _every(self.every, reap, "jena-reaper", now=False):
            yield
