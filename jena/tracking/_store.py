"""The tracking store: its URI, the lock around first-time creation, one client per process.

Default: ``sqlite:///mlruns/mlflow.db`` under the current directory (artifacts in
``mlruns/artifacts``); ``$JENA_TRACKING_URI`` or an explicit URI overrides it (``http://…`` for a
tracking server, ``postgresql://…`` for a database).

Importing this module quiets MLflow's per-run "🏃 View run … at: http://…" line (it would break
the live display; ``$MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT=false`` brings it back) and bounds
MLflow's HTTP retries (see :mod:`._retry`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import mlflow
from mlflow.entities import ViewType

from jena.locks import db_lock, file_lock, is_postgres

from . import _retry
from ._retry import MLFLOW_HTTP_DEFAULTS, GuardedClient

# read by MLflow at each call
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
for _name, _value in MLFLOW_HTTP_DEFAULTS.items():
    os.environ.setdefault(_name, _value)

ENV_TRACKING_URI = "JENA_TRACKING_URI"
DEFAULT_DIR = "mlruns"
REMOTE_SCHEMES = ("http", "https", "databricks")


def default_tracking_uri() -> str:
    """The URI used when none is given: ``$JENA_TRACKING_URI``, else the SQLite store
    ``mlruns/mlflow.db`` under the current directory (as an absolute ``sqlite:///`` URI,
    so worker processes agree on it)."""
    uri = os.environ.get(ENV_TRACKING_URI, "").strip()
    if not uri:
        uri = f"sqlite:///{DEFAULT_DIR}/mlflow.db"
    return absolute_uri(uri)


def resolve_uri(uri: str | None) -> str:
    """``uri`` made absolute, or the default URI when None/empty."""
    return absolute_uri(uri) if uri else default_tracking_uri()


def absolute_uri(uri: str) -> str:
    """Make a relative ``sqlite:///`` path absolute against the current directory."""
    path = sqlite_path(uri)
    if path is None:
        return uri
    return "sqlite:///" + str(path)


def is_remote(uri: str) -> bool:
    """A tracking server (or Databricks): artifacts and locking are the server's business."""
    return uri.split(":", 1)[0] in REMOTE_SCHEMES


def is_shared(uri: str) -> bool:
    """A store that processes on other machines may use too (a tracking server, a database
    server), unlike a SQLite file or a folder: its sweep runs beat, and any host ends them."""
    return not uri.startswith(("sqlite:", "file:")) and "://" in uri


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (absolute), or None for other stores."""
    if not uri.startswith("sqlite:///"):
        return None
    raw = uri[len("sqlite:///") :].split("?", 1)[0]
    if not raw or raw == ":memory:":
        return None
    return Path(raw).expanduser().resolve() if not raw.startswith("/") else Path(raw)


def default_artifact_location(uri: str) -> str | None:
    """Where a new experiment keeps its artifacts: next to a SQLite file, under
    ``./mlruns/artifacts`` for other databases, and wherever a tracking server decides."""
    if is_remote(uri):
        return None
    db = sqlite_path(uri)
    folder = db.parent / "artifacts" if db is not None else Path.cwd() / DEFAULT_DIR / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder.resolve().as_uri()


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Serialise first-time store creation (schema migration) between processes: of this
    machine (a lock file), or of every machine sharing a PostgreSQL store (an advisory lock). A
    tracking server migrates its own database; conflicts there are retried (``Tracker``)."""
    if os.name == "nt" or is_remote(uri) or uri.startswith("file:"):
        yield
        return
    if is_postgres(uri):
        with db_lock(uri, "jena-mlflow-store"):
            yield
        return
    db = sqlite_path(uri)
    if db is not None:
        lock_path = db.with_name(db.name + ".lock")
    else:
        digest = hashlib.sha256(uri.encode()).hexdigest()[:16]
        lock_path = Path(tempfile.gettempdir()) / f"jena-mlflow-{digest}.lock"
    with file_lock(lock_path):
        yield


_CLIENTS: dict[str, mlflow.MlflowClient] = {}


def client(uri: str) -> mlflow.MlflowClient:
    """A per-process MlflowClient for ``uri`` (tracking and registry); creates (migrates) the
    store if needed. Its calls are retried while the store is unreachable, for a bounded time
    (:class:`._retry.GuardedClient`)."""
    found = _CLIENTS.get(uri)
    if found is not None:
        return found
    made: mlflow.MlflowClient | None = None
    for attempt in range(3):
        try:
            with store_lock(uri):
                made = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
            break
        except Exception:  # a racing process outside our lock (e.g. `mlflow ui`)
            if attempt == 2:
                raise
            time.sleep(0.5 * (attempt + 1))
    assert made is not None
    guarded = cast(mlflow.MlflowClient, GuardedClient(made, uri))
    _CLIENTS[uri] = guarded
    return guarded


def check_store(uri: str | None) -> str:
    """The tracking store answers within seconds (else InfrastructureError, one line naming
    it); returns its absolute URI. Run before a sweep's first trial."""
    resolved = resolve_uri(uri)
    _retry.check_store(resolved, client)
    return resolved


def _after_fork_in_child() -> None:
    # A forked child must not reuse the parent's pooled database connections.
    _CLIENTS.clear()
    store_module = sys.modules.get("mlflow.store.tracking.sqlalchemy_store")
    if store_module is None:
        return
    with contextlib.suppress(Exception):
        for engine in store_module.SqlAlchemyStore._engine_map.values():
            engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def search_all(
    client: mlflow.MlflowClient, experiment_ids: list[str], filter_string: str = ""
) -> Iterator[Any]:
    """Every active run matching ``filter_string`` (all pages)."""
    token: str | None = None
    while True:
        page = client.search_runs(
            experiment_ids,
            filter_string,
            run_view_type=ViewType.ACTIVE_ONLY,
            max_results=1000,
            page_token=token,
        )
        yield from page
        token = page.token
        if not token:
            return
