"""Which process on which machine owns a record (an MLflow run, an Optuna trial), and whether
that process is gone: the one rule both stores use to close what a dead worker left RUNNING."""

from __future__ import annotations

import os
import socket

ENV_HOST = "JENA_HOST"


def this_host() -> str:
    """This machine's name as records carry it: ``$JENA_HOST`` if set (name a worker where
    host names say little, e.g. a Kubernetes pod), else the host name."""
    return os.environ.get(ENV_HOST, "").strip() or socket.gethostname()


def owner() -> dict[str, str]:
    """``{"host": ..., "pid": ...}`` of this process."""
    return {"host": this_host(), "pid": str(os.getpid())}


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def owner_is_dead(host: object, pid: object) -> bool:
    """True when ``host`` is this machine and the process ``pid`` no longer exists. A record
    owned by another machine is never judged from here (see the heartbeat for that)."""
    text = str(pid).strip() if pid is not None else ""
    if host != this_host() or not text.isdigit():
        return False
    return not process_alive(int(text))
