"""User-facing errors: one line that names the file/line/field and says what to do."""

from __future__ import annotations


class JenaError(Exception):
    """An error the CLI prints as one line (``error: ...``) and exits with status 2."""


class DataError(JenaError):
    """Bad or unavailable input data."""


class ConfigError(JenaError):
    """A bad configuration, sweep file, preset or command-line value."""
