"""Every use of Keras Tuner beyond its documented API, in one place (written against
keras-tuner 1.4.8). ``tests/test_upstream.py`` calls each function against the installed
Keras Tuner and fails loudly when a release changed what it relies on."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import keras_tuner as kt


@contextlib.contextmanager
def quiet_failures() -> Iterator[None]:
    """Keras Tuner prints the traceback of every failed trial to stderr while its
    ``keras_tuner.src.config.DEBUG`` is on (1.4.8: no public switch); the reason is in MLflow
    and in the trial's ``message`` already."""
    from keras_tuner.src import config

    debug = config.DEBUG
    config.DEBUG = False
    try:
        yield
    finally:
        config.DEBUG = debug


def load_trial(path: Path) -> Any:
    """A trial as its project saved it (``trial_*/trial.json``): ``keras_tuner.engine.trial.
    Trial.load`` (1.4.8's exported alias of ``keras_tuner.src.engine.trial.Trial``)."""
    return kt.engine.trial.Trial.load(str(path))


def first_proposals(
    oracle: kt.Oracle, values: Sequence[dict[str, Any]], labels: Sequence[str]
) -> dict[str, str]:
    """Make ``values`` the oracle's first proposals (trial ids "0", "1", …; the oracle proposes
    the rest). 1.4.8's oracles ask ``populate_space(trial_id)`` for each new trial and start it
    from the returned ``{"status": "RUNNING", "values": …}``; unset hyperparameters take their
    defaults. Returns {trial id: label}, filled as the trials start."""
    propose = oracle.populate_space
    started: dict[str, str] = {}

    def populate(trial_id: str) -> dict[str, Any]:
        index = int(trial_id)
        if index >= len(values):
            return dict(propose(trial_id))
        point = {h.name: h.default for h in oracle.get_space().space}
        point.update(values[index])
        started[trial_id] = labels[index]
        return {"status": "RUNNING", "values": point}

    oracle.populate_space = populate
    return started
