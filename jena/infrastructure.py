"""Which failures are the infrastructure's rather than a trial's (see
:class:`jena.errors.InfrastructureError`): a full or read-only disk here; an unreachable
tracking store in :mod:`jena.tracking`; Optuna storage errors in the Optuna driver."""

from __future__ import annotations

import errno

from .errors import InfrastructureError

DISK_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
}


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or during, outermost first."""
    seen: list[BaseException] = []
    node: BaseException | None = exc
    while node is not None and node not in seen and len(seen) < 20:
        seen.append(node)
        node = node.__cause__ or node.__context__
    return seen


def disk_problem(exc: BaseException) -> OSError | None:
    """The OSError behind ``exc`` that says the disk is full or read-only, or None."""
    for node in _chain(exc):
        if isinstance(node, OSError) and node.errno in DISK_ERRNOS:
            return node
    return None


def disk_text(error: OSError) -> str:
    """``no space left on the device ([Errno 28] No space left on device: '/x/model.keras')``."""
    return f"{DISK_ERRNOS.get(error.errno or 0, 'disk error')} ({error})"


def as_infrastructure(exc: BaseException, where: str = "") -> InfrastructureError | None:
    """``exc`` as an InfrastructureError (``where``: what was being written), or None when it is
    an ordinary failure (the trial's own)."""
    if isinstance(exc, InfrastructureError):
        return exc
    disk = disk_problem(exc)
    if disk is not None:
        return InfrastructureError(f"{where or 'the disk'}: {disk_text(disk)}")
    return None
