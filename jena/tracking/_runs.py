"""The tracker of one sweep's experiment (:class:`Tracker`): it starts the parent run of an
invocation (:class:`~jena.tracking._run.SweepRun`) and the nested run of each trial
(:class:`~jena.tracking._run.TrialRun`); the tags every run gets. All goes through an explicit
:class:`mlflow.MlflowClient`: nothing relies on MLflow's fluent "active run" state, so the parent
run id can be handed to worker processes.
"""

from __future__ import annotations

import functools
import json
import logging
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
from mlflow.entities import Dataset, DatasetInput, InputTag
from mlflow.exceptions import MlflowException

import jena
from jena.devices import keras_backend
from jena.owner import owner
from jena.secrets import redact

from . import _encode as enc
from . import names as N
from ._retry import create_or_get
from ._run import TRIAL_STATUS, SweepRun, TrialRun, TrialState
from ._store import client as store_client
from ._store import default_artifact_location, resolve_uri, search_all

if TYPE_CHECKING:
    pass

_log = logging.getLogger(__name__)


def _git(*args: str) -> str:
    """One line of ``git ARGS`` at the current directory, or "" (no git, not a repository)."""
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


@functools.cache
def git_commit() -> str:
    """Short sha of the git repository at the current directory, or ``"unknown"``."""
    return _git("rev-parse", "--short", "HEAD") or "unknown"


@functools.cache
def git_source() -> dict[str, str]:
    """MLflow's git tags (full commit, branch, remote URL) for the current directory."""
    tags = {
        N.TAG_SOURCE_GIT_COMMIT: _git("rev-parse", "HEAD"),
        N.TAG_SOURCE_GIT_BRANCH: _git("rev-parse", "--abbrev-ref", "HEAD"),
        N.TAG_SOURCE_GIT_REPO: _git("config", "--get", "remote.origin.url"),
    }
    return {k: v for k, v in tags.items() if v}


def standard_tags(source: str | None = None) -> dict[str, str]:
    """Tags every run gets (the caller's tags override them): ours, and MLflow's own source,
    user and git tags (``source``: the command, shown in the UI's Source column)."""
    import getpass

    who = owner()
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no such user in a container
        user = "unknown"
    return {
        N.TAG_BACKEND: keras_backend(),
        N.TAG_GIT_COMMIT: git_commit(),
        N.TAG_VERSION: jena.__version__,
        N.TAG_HOST: who["host"],
        N.TAG_PID: who["pid"],
        N.TAG_SOURCE_NAME: source or "jena",
        N.TAG_SOURCE_TYPE: "LOCAL",
        N.TAG_USER: user,
        **git_source(),
    }


@dataclass(frozen=True)
class DatasetInfo:
    """One split of the record a trial used, as an MLflow dataset input."""

    name: str  # e.g. "jena-book2-train"
    digest: str  # the record's digest (jena.data.Dataset.digest)
    source: str  # where the record comes from (a path, a URL, the synthetic generator)
    source_type: str  # local | http | code
    context: str  # training | validation
    columns: Sequence[str] = ()
    profile: Mapping[str, Any] = field(default_factory=dict)  # rows, bounds, windows, ...

    def entity(self) -> DatasetInput:
        from mlflow.types import ColSpec, Schema

        schema = Schema([ColSpec("double", c) for c in self.columns]).to_dict()
        dataset = Dataset(
            name=self.name,
            digest=self.digest,
            source_type=self.source_type,
            source=redact(json.dumps({"uri": self.source})),
            schema=json.dumps({"mlflow_colspec": schema}),
            profile=redact(json.dumps(dict(self.profile), default=str)),
        )
        return DatasetInput(dataset, tags=[InputTag(N.DATA_CONTEXT, self.context)])


# --------------------------------------------------------------------------- tracker


class Tracker:
    """The MLflow experiment of one sweep name in one tracking store.

    Cheap to pickle (the client is re-created in the receiving process), so a driver can
    hand it, or just ``(tracking_uri, experiment, parent_run_id)``, to worker processes.
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        experiment: str = "default",
        *,
        artifact_location: str | None = None,
    ) -> None:
        self.tracking_uri = resolve_uri(tracking_uri)
        self.experiment = experiment
        self.experiment_id = self._get_or_create_experiment(artifact_location)

    @property
    def client(self) -> mlflow.MlflowClient:
        return store_client(self.tracking_uri)

    def __getstate__(self) -> dict[str, Any]:
        return {
            "tracking_uri": self.tracking_uri,
            "experiment": self.experiment,
            "experiment_id": self.experiment_id,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"Tracker({self.tracking_uri!r}, {self.experiment!r})"

    def _get_or_create_experiment(self, artifact_location: str | None) -> str:
        """Create-or-get: any number of processes may start the same new sweep at once (a
        conflict on a server's database means another one created it first)."""
        client = self.client
        found = client.get_experiment_by_name(self.experiment)
        if found is None:
            location = artifact_location or default_artifact_location(self.tracking_uri)

            def get() -> str | None:
                made = client.get_experiment_by_name(self.experiment)
                return None if made is None else str(made.experiment_id)

            return create_or_get(lambda: str(client.create_experiment(self.experiment, location)),
                                 get)  # fmt: skip
        if found.lifecycle_stage == "deleted":
            try:
                client.restore_experiment(found.experiment_id)
            except MlflowException:  # restored meanwhile by another process
                if client.get_experiment(found.experiment_id).lifecycle_stage == "deleted":
                    raise
        return str(found.experiment_id)

    def mark_model_training(self) -> None:
        """Tag the experiment as model training (MLflow 3's experiment kind), so that its UI
        opens on the runs, not on the GenAI traces overview."""
        self.set_missing_experiment_tags({N.EXP_KIND: N.EXP_KIND_MODEL_TRAINING})

    # ---------------------------------------------------------------- experiment tags

    def experiment_tags(self) -> dict[str, str]:
        return dict(self.client.get_experiment(self.experiment_id).tags)

    def set_missing_experiment_tags(self, tags: Mapping[str, Any]) -> None:
        """Set the tags the experiment does not have yet (existing values are kept, also when
        another process sets the same tag at the same moment: its value stays)."""
        have = self.experiment_tags()
        for key, value in tags.items():
            if key in have or value is None:
                continue
            text = enc.value_text(value)

            def put(key: str = key, text: str = text) -> bool:
                self.client.set_experiment_tag(self.experiment_id, key, text)
                return True

            def there(key: str = key) -> bool | None:
                return True if key in self.experiment_tags() else None

            create_or_get(put, there)

    # ---------------------------------------------------------------- runs

    def running_runs(self) -> list[Any]:
        """Runs of this experiment whose status is RUNNING."""
        return list(search_all(self.client, [self.experiment_id], "attributes.status = 'RUNNING'"))

    def close_run(self, run_id: str, state: TrialState, reason: str) -> None:
        """End a run someone else left open: tags ``state`` / ``failure_reason``, status."""
        enc.log_batch(
            self.client, run_id, tags=enc.tags({N.TAG_STATE: state, N.TAG_FAILURE: reason})
        )
        self.client.set_terminated(run_id, TRIAL_STATUS[state], enc.now_ms())

    def start_sweep(
        self,
        *,
        definition: Mapping[str, Any] | str | Path | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        run_name: str | None = None,
        run_type: str = N.RUN_SWEEP,
    ) -> SweepRun:
        """Create the parent run of one sweep invocation (or of another stage of the sweep,
        ``run_type``: the refit).

        ``definition``: a dict (logged as ``sweep.json``), the TOML text of the sweep
        file (``sweep.toml``) or the path of a file (``sweep<suffix>``).
        """
        artifact: tuple[str, str] | None = None
        if isinstance(definition, Path):
            artifact = redact(definition.read_text()), f"sweep{definition.suffix or '.toml'}"
        elif isinstance(definition, str):
            artifact = redact(definition), "sweep.toml"
        elif definition is not None:
            artifact = enc.to_json(dict(definition)), "sweep.json"
        all_tags = {
            **standard_tags(f"jena sweep {self.experiment}"),
            **(tags or {}),
            N.TAG_RUN_TYPE: run_type,
        }
        name = run_name or f"{self.experiment}-{time.strftime('%Y%m%d-%H%M%S')}"
        run = self.client.create_run(
            self.experiment_id,
            start_time=enc.now_ms(),
            tags={t.key: t.value for t in enc.tags(all_tags)},
            run_name=name,
        )
        sweep = SweepRun(self, run.info.run_id)
        try:
            if params:
                enc.log_batch(self.client, sweep.run_id, params=enc.params(params))
            if artifact is not None:
                self.client.log_text(sweep.run_id, *artifact)
        except BaseException as exc:
            sweep.finish("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED", exc)
            raise
        return sweep

    def trial(
        self,
        parent_run_id: str,
        number: int,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        *,
        run_name: str | None = None,
        run_type: str = N.RUN_TRIAL,
        flush_every: int = 10,
        flush_interval_s: float = 30.0,
    ) -> TrialRun:
        """Create the child run of trial ``number`` under the sweep run ``parent_run_id``
        (``run_name``: what the UI lists, default ``trial-0007``).

        Epoch metrics are written every ``flush_every`` epochs or ``flush_interval_s``
        seconds, whichever comes first, and at the end.
        """
        all_tags = {
            **standard_tags(f"jena sweep {self.experiment}"),
            **(tags or {}),
            N.TAG_RUN_TYPE: run_type,
            N.TAG_TRIAL_NUMBER: int(number),
            N.TAG_PARENT: parent_run_id,
        }
        run = self.client.create_run(
            self.experiment_id,
            start_time=enc.now_ms(),
            tags={t.key: t.value for t in enc.tags(all_tags)},
            run_name=run_name or f"trial-{int(number):04d}",
        )
        trial = TrialRun(
            self,
            run.info.run_id,
            number,
            flush_every=flush_every,
            flush_interval_s=flush_interval_s,
        )
        if params:
            try:
                enc.log_batch(self.client, trial.run_id, params=enc.params(params))
            except BaseException as exc:
                trial.__exit__(type(exc), exc, exc.__traceback__)
                raise
        return trial
