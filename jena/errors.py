"""User-facing errors: one line that names the file/line/field and says what to do.

Three kinds, because a sweep treats them differently (like Keras Tuner's ``FailedTrialError``
and ``FatalError``):

* :class:`ConfigError` / :class:`DataError`: the user's configuration or data is wrong — the
  command stops with one line;
* :class:`TrialError`: one proposed point cannot be trained (an invalid combination, a window
  that does not fit, a NaN loss) — that trial fails with the reason and the sweep goes on;
* :class:`WorkerError`: a sweep worker process crashed — neither the point's fault nor the
  configuration's; the sweep stops and says where the worker's log is;
* :class:`InfrastructureError`: what the sweep runs on broke (a full disk, a tracking store
  that stays unreachable, an Optuna storage error) — not the trial's fault: the sweep stops at
  the first one with one line saying what broke, the interrupted trial does not count against
  the budget, and the next run resumes it.
"""

from __future__ import annotations


class JenaError(Exception):
    """An error the CLI prints as one line (``error: ...``) and exits with status 2."""


class DataError(JenaError):
    """Bad or unavailable input data."""


class ConfigError(JenaError):
    """A bad configuration, sweep file, preset or command-line value."""


class FieldError(ConfigError):
    """A ConfigError about one field: ``where: key: detail`` (a flag that sets the field can
    name itself instead: ``--trials: must be at least 1``)."""

    def __init__(self, where: str, key: str, detail: str) -> None:
        super().__init__(f"{where}: {key}: {detail}")
        self.where, self.key, self.detail = where, key, detail


class TrialError(JenaError):
    """One trial's point cannot be trained; the trial fails, the sweep goes on."""


class WorkerError(JenaError):
    """A sweep worker process died."""


class InfrastructureError(JenaError):
    """The disk, the tracking store or the Optuna storage failed; the sweep stops, the trial it
    interrupted is re-run by the next invocation."""
