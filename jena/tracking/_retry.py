"""A tracking store shared by many processes, that can go away for a while.

* **Conflicts** — two processes creating the same experiment or experiment tag at the same
  moment: one gets ``UniqueViolation`` from the server's database. Creation is create-or-get:
  :func:`is_conflict` tells the callers (``Tracker``) to read back what the other one made.
* **Outages** — a tracking server restarting, a database that went away: every call of the
  process's client (:class:`GuardedClient`) is retried for a bounded time
  (:func:`set_retry_window`, the sweep file's ``[faults].tracking_retry_s``), then raises
  :class:`~jena.errors.InfrastructureError` naming the URI. MLflow's own HTTP retries are cut
  to a few seconds (``$MLFLOW_HTTP_REQUEST_MAX_RETRIES`` etc. still win), so that the window is
  ours.
* **A full disk** under a local artifact store — not retried: InfrastructureError at once.
* :func:`check_store` — before a sweep starts: the store answers within seconds, or one line
  naming the URI.
* **A login refused** — a tracking server with a login (``mlflow server --app-name
  basic-auth``) answering 401 or 403: not retried; one line saying which variables to set, or
  which permission the user lacks (:func:`login_problem`). URIs are said without their
  password (:func:`jena.secrets.redact`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from mlflow.exceptions import MlflowException

from jena.errors import InfrastructureError
from jena.infrastructure import disk_problem, disk_text
from jena.secrets import TRACKING_LOGIN, postgres_login_hint, redact

R = TypeVar("R")

DEFAULT_WINDOW_S = 120.0
_window = [DEFAULT_WINDOW_S]

# MLflow's defaults retry a refused connection for about four minutes, silently (7 retries,
# backoff factor 2); ours are bounded by the retry window instead.
MLFLOW_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
}
_UNAVAILABLE_CODES = ("TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED", "INTERNAL_ERROR")
_CONFLICT_TEXT = ("UniqueViolation", "duplicate key", "UNIQUE constraint failed", "IntegrityError",
                  "already exists")  # fmt: skip
_ERRNO = re.compile(r"\[Errno -?\d+\] [^'\")\]]+")


def set_retry_window(seconds: float) -> None:
    """How long an unreachable tracking store is retried before the sweep stops."""
    _window[0] = max(0.0, float(seconds))


def retry_window() -> float:
    return _window[0]


def _causes(exc: BaseException) -> Iterator[BaseException]:
    node: BaseException | None = exc
    for _ in range(20):
        if node is None:
            return
        yield node
        node = node.__cause__ or node.__context__


def is_unavailable(exc: BaseException) -> bool:
    """The store did not answer (refused, timed out, 5xx, its database down): worth retrying."""
    import requests

    for node in _causes(exc):
        if isinstance(node, requests.exceptions.HTTPError):
            status = node.response.status_code if node.response is not None else 500
            return status >= 500 or status == 429
        if isinstance(node, requests.exceptions.RequestException | ConnectionError | TimeoutError):
            return True
        if isinstance(node, MlflowException):
            text = str(node.message)
            if node.error_code in _UNAVAILABLE_CODES and not is_conflict(node):
                return True
            if "failed with exception" in text or re.search(r"error code (5\d\d|429) ", text):
                return True
            if "OperationalError" in text or "could not connect" in text:
                return True
        if type(node).__name__ in ("OperationalError", "InterfaceError", "DisconnectionError"):
            return True
    return False


def is_conflict(exc: BaseException) -> bool:
    """Another process created the same record first (an experiment, an experiment tag)."""
    if not isinstance(exc, MlflowException):
        return False
    if exc.error_code == "RESOURCE_ALREADY_EXISTS":
        return True
    text = str(exc.message)
    return any(t in text for t in _CONFLICT_TEXT)


def short_reason(exc: BaseException) -> str:
    """What went wrong, in a few words: ``[Errno 111] Connection refused``, ``timed out``, the
    first line of the message otherwise (without secrets)."""
    text = redact(" ".join(str(getattr(exc, "message", None) or exc).split()))
    found = _ERRNO.search(text)
    if found:
        return found.group(0).strip()
    if "timed out" in text.lower() or "timeout" in text.lower():
        return "timed out"
    status = re.search(r"error code (\d{3})|(\d{3}) Server Error", text)
    if status:
        return f"HTTP {status.group(1) or status.group(2)}"
    return text[:200] or type(exc).__name__


def outage(uri: str, exc: BaseException, seconds: float) -> InfrastructureError:
    waited = f" for {seconds:.0f} s" if seconds >= 1 else ""
    return InfrastructureError(
        f"the MLflow tracking store {redact(uri)} did not answer{waited} ({short_reason(exc)})"
    )


def _http_status(exc: BaseException) -> tuple[int, str] | None:
    """(401 or 403, the endpoint refused) when the tracking server refused a login or a
    permission somewhere in ``exc``'s chain, else None."""
    import requests

    for node in _causes(exc):
        status = None
        text = str(getattr(node, "message", None) or node)
        if isinstance(node, requests.exceptions.HTTPError) and node.response is not None:
            status = node.response.status_code
        elif isinstance(node, MlflowException):
            code = {"UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403}.get(str(node.error_code))
            found = re.search(r"error code (\d{3})", text)
            status = int(found.group(1)) if found else code
        if status in (401, 403):
            where = re.search(r"(?:endpoint|for url:) (\S+)", text)
            return int(status), where.group(1) if where else ""
    return None


def tracking_user(uri: str) -> str | None:
    """Who the process logs in as: ``$MLFLOW_TRACKING_USERNAME``, else the URI's user."""
    name = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if name:
        return name
    found = re.match(r"[a-z][a-z0-9+.\-]*://([^:/@\s]+)(?::[^@/\s]*)?@", uri, re.IGNORECASE)
    return found.group(1) if found else None


def _permission(endpoint: str) -> str:
    """The permission the tracking server's basic-auth app asks for ``endpoint``."""
    path = endpoint.split("?", 1)[0]
    model = "registered-models" in path or "model-versions" in path
    what = "the registered model" if model else "the sweep's experiment"
    if "/users/" in path or "permissions" in path:
        return "an admin's rights"
    if "delete" in path:
        return f"MANAGE permission on {what}"
    if any(w in path for w in ("/get", "/search", "/list")) and "mlflow-artifacts" not in path:
        return f"READ permission on {what}"
    return f"EDIT permission on {what}"


def login_problem(uri: str, exc: BaseException) -> InfrastructureError | None:
    """One line when the tracking server at ``uri`` refused the login (401: which variables
    to set) or a permission (403: which one), else None."""
    found = _http_status(exc)
    if found is None:
        return None
    status, endpoint = found
    shown, user = redact(uri), tracking_user(uri)
    logged_in = user is not None or bool(os.environ.get("MLFLOW_TRACKING_TOKEN"))
    if status == 401 and not logged_in:
        return InfrastructureError(
            f"the MLflow tracking server {shown} requires a login (HTTP 401): set {TRACKING_LOGIN}"
        )
    if status == 401:
        who = f"user {user!r}" if user else "the token"
        return InfrastructureError(
            f"the MLflow tracking server {shown} refused the login of {who} (HTTP 401): check "
            f"{TRACKING_LOGIN}"
        )
    call = re.sub(r"^.*?/api/[\d.]+/(mlflow/)?", "", endpoint) or "a request"
    who = f"user {user!r}" if user else "this login"
    return InfrastructureError(
        f"the MLflow tracking server {shown} refused {call} (HTTP 403): {who} needs "
        f"{_permission(endpoint)}; an admin grants it (README: Scaling out), or log in as a user "
        "who has it (MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD)"
    )


_given_up: set[str] = set()  # stores whose outage outlasted a window: no second wait


def guarded(uri: str, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """``fn(*args, **kwargs)``, retried while the store at ``uri`` is unavailable, for at most
    the retry window; a full disk or an outage beyond it is an InfrastructureError. Once one
    call has waited out the window, the process's next calls to that store (closing its runs on
    the way out) try once, until one succeeds."""
    started: float | None = None
    delay = 0.5
    while True:
        try:
            result = fn(*args, **kwargs)
            _given_up.discard(uri)
            return result
        except InfrastructureError:
            raise
        except Exception as exc:
            disk = disk_problem(exc)
            if disk is not None:
                raise InfrastructureError(
                    f"the artifact store of {redact(uri)}: {disk_text(disk)}"
                ) from exc
            login = login_problem(uri, exc)
            if login is not None:  # not retried: waiting does not give a password
                raise login from None
            if not is_unavailable(exc):
                raise
            now = time.monotonic()
            started = now if started is None else started
            left = started + retry_window() - now
            if left <= 0 or uri in _given_up:
                _given_up.add(uri)
                raise outage(uri, exc, now - started) from exc
            time.sleep(min(delay, left))
            delay = min(delay * 2, 10.0)


class GuardedClient:
    """An ``MlflowClient`` whose public calls go through :func:`guarded`."""

    def __init__(self, client: Any, uri: str) -> None:
        self._client = client
        self._uri = uri

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name.startswith("_") or not callable(attr):
            return attr

        @functools.wraps(attr)
        def call(*args: Any, **kwargs: Any) -> Any:
            return guarded(self._uri, attr, *args, **kwargs)

        return call

    def __repr__(self) -> str:
        return f"GuardedClient({self._uri!r})"


def create_or_get(create: Callable[[], R], get: Callable[[], R | None], attempts: int = 8) -> R:
    """``create()``; if another process created the same record at the same moment (a
    conflict), ``get()`` what it made — tried again, with jitter, while neither is visible."""
    import random

    for attempt in range(attempts):
        try:
            return create()
        except MlflowException as exc:
            if not is_conflict(exc):
                raise
        found = get()
        if found is not None:
            return found
        time.sleep(0.05 * (attempt + 1) + random.random() * 0.1)
    raise InfrastructureError(
        "the tracking store keeps reporting a conflict for a record it does not show"
    )


@contextlib.contextmanager
def _no_http_retries() -> Iterator[None]:
    names = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(names)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def check_store(uri: str, make_client: Callable[[str], Any]) -> None:
    """Fail in seconds, with one line naming ``uri``, when the tracking store does not answer
    (``make_client``: the process's client factory; creating it migrates a new database)."""
    hint = "start it, or point --tracking-uri / $JENA_TRACKING_URI at a running one"
    shown = redact(uri)
    try:
        with _no_http_retries():
            client = make_client(uri)
            raw = getattr(client, "_client", client)
            raw.search_experiments(max_results=1)
    except InfrastructureError as exc:
        if "(HTTP 40" in str(exc):  # a login refused: no server to start
            raise
        raise InfrastructureError(f"{exc}: {hint}") from None
    except Exception as exc:
        disk = disk_problem(exc)
        if disk is not None:
            raise InfrastructureError(
                f"the MLflow tracking store {shown}: {disk_text(disk)}"
            ) from None
        login = login_problem(uri, exc)
        if login is not None:
            raise login from None
        text = " ".join(redact(str(exc)).split())
        pg_login = postgres_login_hint(text)
        if pg_login is not None:  # a PostgreSQL tracking store refused the password
            raise InfrastructureError(
                f"the MLflow tracking store {shown} refused the login ({short_reason(exc)}): "
                f"{pg_login}"
            ) from None
        if is_unavailable(exc):
            raise InfrastructureError(
                f"the MLflow tracking store {shown} is not reachable ({short_reason(exc)}): {hint}"
            ) from None
        raise InfrastructureError(
            f"the MLflow tracking store {shown} is not usable ({type(exc).__name__}: "
            f"{short_reason(exc)})"
        ) from None
