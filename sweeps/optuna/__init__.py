"""The Optuna driver and its study.

Storage: by default an Optuna *journal file* under ``mlruns/optuna/`` — an append-only log
guarded by file locks, safe for several processes on one machine (several writers on one SQLite
file are known to fail with "database is locked"). Any storage URL works instead
(``sqlite:///…``, ``postgresql://…``; ``memory`` for a throwaway single-process study).

Budget: ``trials`` is the total over all invocations; a re-run resumes the study and adds trials
until the total is reached. Workers hold a lock around "count the trials, ask for one" (a file
lock on one machine, a PostgreSQL advisory lock across machines), so several workers never
overshoot it. Private Optuna APIs are used in ``_compat`` only.
"""

from ._driver import OptunaDriver
from ._study import SweepStudy, default_storage, open_storage

__all__ = ["OptunaDriver", "SweepStudy", "default_storage", "open_storage"]
