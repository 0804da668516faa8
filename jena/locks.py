"""Locks between processes: a lock file (one machine, :func:`file_lock`) and a lock among the
processes that share a database (:func:`db_lock`: a PostgreSQL advisory lock, which holds
across machines, and a lock file for every other store).

Used around what must happen once however many workers start at the same moment (creating a
store's tables) and around "count the trials, ask for one" (the budget)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_ENGINES: dict[str, Any] = {}


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes on one machine (fcntl on the lock file ``path``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_postgres(url: str) -> bool:
    return url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``name`` (PostgreSQL's advisory lock space)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _engine(url: str) -> Any:
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url not in _ENGINES:
        _ENGINES[url] = sqlalchemy.create_engine(
            url, poolclass=NullPool, connect_args={"connect_timeout": 10}
        )
    return _ENGINES[url]


@contextlib.contextmanager
def db_lock(url: str, name: str) -> Iterator[None]:
    """Hold the lock ``name`` among every process using the database ``url`` (PostgreSQL:
    ``pg_advisory_lock``, released when the block ends or the connection drops); other URLs:
    a lock file under the temporary directory of this machine."""
    if not is_postgres(url):
        digest = hashlib.sha256(f"{url}\n{name}".encode()).hexdigest()[:16]
        with file_lock(Path(tempfile.gettempdir()) / f"jena-{digest}.lock"):
            yield
        return
    import sqlalchemy

    key = lock_key(name)
    with _engine(url).connect() as conn:
        conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
        conn.commit()
        try:
            yield
        finally:
            with contextlib.suppress(Exception):  # a dropped connection released it already
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()


def _after_fork_in_child() -> None:
    _ENGINES.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
