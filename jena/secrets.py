"""No secret is ever recorded: the one redaction every recorded setting goes through.

:func:`redact` takes any text — a storage URL, a tracking URI, a sweep file, an error message —
and returns it without its secrets, keeping what makes it useful (scheme, user, host, port,
database, the other query parameters):

* a URL's password (``postgresql://jena:PASSWORD@db/opt`` → ``postgresql://jena:***@db/opt``),
  wherever it stands in the text;
* the values of secret query parameters and libpq keywords (``?password=…``, ``&token=…``,
  ``sslpassword=…``, a signed URL's ``sig=`` / ``X-Amz-Signature=``; :data:`SECRET_KEYS`);
* an ``Authorization`` header's credentials (``Basic …``, ``Bearer …``);
* the value of any secret in the environment (:func:`secret_env_names`: ``PGPASSWORD``,
  ``MLFLOW_TRACKING_PASSWORD``, ``MLFLOW_TRACKING_TOKEN``, ``AWS_SECRET_ACCESS_KEY``, … — every
  variable whose name says password, token, secret or key), wherever it was copied to.

:func:`redact_value` does the same to every string of a nested value (a sweep config's dict).
:class:`RedactingStream` redacts what a process writes to its console or log. Where the
credentials go instead: :data:`TRACKING_LOGIN` and :func:`postgres_login_hint` say it in one line.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator, Mapping
from typing import Any, TextIO

MASK = "***"

# query parameters / libpq keywords whose value is a secret (compared case-insensitively)
SECRET_KEYS = ("password", "passwd", "pwd", "pass", "sslpassword", "token", "access_token",
               "auth_token", "id_token", "refresh_token", "secret", "client_secret",
               "api_key", "apikey", "access_key", "secret_key", "account_key", "sig",
               "signature", "x-amz-signature", "x-amz-security-token", "x-goog-signature",
               "x-goog-credential", "sharedaccesssignature", "accountkey")  # fmt: skip
_ENV_SECRET = re.compile(r"PASSWORD|PASSWD|SECRET|(^|_)TOKEN$|CREDENTIALS?$|CONNECTION_STRING"
                         r"|(^|_)(API|ACCESS|ACCOUNT|PRIVATE)_?KEY$", re.IGNORECASE)  # fmt: skip
_MIN_ENV_SECRET = 8  # shorter values ("1", "true") are not looked for in text

# scheme://user:password@host — the password ends at the last "@" before the host part
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@'\"]*:)"
                           r"(?P<secret>[^\s/?#'\"]*?)(?P<at>@)"
                           r"(?=[^\s@/?#'\"]*(?:[/?#\s'\"]|$))")  # fmt: skip
_KEY_VALUE = re.compile(r"(?P<head>(?<![\w\-])(?:" + "|".join(re.escape(k) for k in SECRET_KEYS)
                        + r")\s*=\s*[\"']?)(?P<secret>[^&;\s'\",)]+)", re.IGNORECASE)  # fmt: skip
# a header's credentials: base64 or a token, with a digit or a sign (not a word of prose)
_AUTH_HEADER = re.compile(
    r"(?P<head>\b(?:Basic|Bearer)\s+)"
    r"(?P<secret>(?=\S*[0-9+/=._~\-])[A-Za-z0-9._~+/=\-]{8,})"
)


def secret_env_names(environ: Mapping[str, str] | None = None) -> list[str]:
    """The environment variables whose values are secrets, by their names (values of 8
    characters or more that are not a plain lowercase word: a weak ``postgres`` password is not
    masked wherever the word occurs)."""
    env = os.environ if environ is None else environ
    return sorted(n for n, v in env.items() if _ENV_SECRET.search(n) and _looks_secret(v))


def _looks_secret(value: str) -> bool:
    return len(value) >= _MIN_ENV_SECRET and not (value.isalpha() and value.islower())


def _env_secrets() -> list[str]:
    values = {os.environ[n] for n in secret_env_names()}
    return sorted(values, key=len, reverse=True)  # the longest first: no half-masked secret


def redact(text: str) -> str:
    """``text`` without its secrets (module docstring); host, port, user and database stay."""
    if not text:
        return text
    out = _URL_PASSWORD.sub(lambda m: m["head"] + MASK + m["at"] if m["secret"] else m[0], text)
    out = _KEY_VALUE.sub(lambda m: m["head"] + MASK, out)
    out = _AUTH_HEADER.sub(lambda m: m["head"] + MASK, out)
    for value in _env_secrets():
        if value in out:
            out = out.replace(value, MASK)
    return out


def password_free(url: str) -> str:
    """A recorded (redacted) URL made usable again: ``postgresql://jena:***@db/opt`` →
    ``postgresql://jena@db/opt``, whose password the client then finds the usual way
    (``PGPASSWORD``, ``~/.pgpass``); any other URL as it is."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@]*):" + re.escape(MASK) + "@", r"\1@",
                  url)  # fmt: skip


def redact_value(value: Any) -> Any:
    """Every string of ``value`` (dicts — their keys too —, lists, tuples, sets) redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {redact_value(k): redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v) for v in value)
    if isinstance(value, set | frozenset):
        return type(value)(redact_value(v) for v in value)
    return value


def has_secret(text: str) -> bool:
    """``text`` holds something :func:`redact` takes out."""
    return redact(text) != text


class RedactingStream:
    """A text stream (``sys.stdout``, ``sys.stderr``) that redacts each write; everything else
    (``isatty``, ``fileno``, ``encoding``) is the wrapped stream's."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def redacted_console() -> Iterator[None]:
    """In the block, what this process writes to ``sys.stdout`` / ``sys.stderr`` (the console,
    a worker's log; Python's writes, tracebacks included) is redacted."""
    saved = sys.stdout, sys.stderr
    if not isinstance(sys.stdout, RedactingStream):
        sys.stdout = RedactingStream(sys.stdout)
    if not isinstance(sys.stderr, RedactingStream):
        sys.stderr = RedactingStream(sys.stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


TEXT_SUFFIXES = (".html", ".htm", ".json", ".txt", ".csv", ".toml", ".yaml", ".yml", ".md",
                 ".svg", ".js", ".log")  # fmt: skip


def redact_files(folder: str | os.PathLike[str]) -> int:
    """Redact every text file under ``folder`` (:data:`TEXT_SUFFIXES`) in place, before it is
    logged or shown; returns how many changed."""
    from pathlib import Path

    changed = 0
    for path in sorted(Path(folder).rglob("*")):
        if not path.is_file() or path.suffix.lower() not in TEXT_SUFFIXES:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        clean = redact(text)
        if clean != text:
            path.write_text(clean, encoding="utf-8")
            changed += 1
    return changed


# ------------------------------------------------------------------ where credentials go
TRACKING_LOGIN = "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)"
_PG_LOGIN = re.compile(r"password authentication failed|no password supplied|"
                       r"fe_sendauth|SCRAM authentication requires", re.IGNORECASE)  # fmt: skip


def postgres_login_hint(message: str) -> str | None:
    """What to set when ``message`` says PostgreSQL refused the login, else None."""
    if not _PG_LOGIN.search(message):
        return None
    return ("set PGPASSWORD, or give the password in ~/.pgpass (or the file $PGPASSFILE names; "
            "mode 0600), not in the URL")  # fmt: skip
