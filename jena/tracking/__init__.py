"""The one MLflow convention shared by every sweep driver — and the only code that talks to
MLflow.

* A sweep is an MLflow **experiment** (one per sweep name). Each invocation of a sweep is one
  **parent run** (tag ``run_type=sweep``) that holds the effective sweep definition
  (``sweep.json``), the sweep's settings as params and, at the end, the best trial (tags
  ``best_trial_*``, metric ``best_val_mae``, artifact ``best_trial.json``) and per-state trial
  counts.
* Each trial is a **nested child run** of that parent (tag ``mlflow.parentRunId``, tag
  ``run_type=trial``, run name ``t0007-lstm-64u``), also when it runs in another worker process:
  the parent's run id is passed explicitly.
* A child run holds every hyperparameter as a param, per-epoch metrics with the epoch as step
  (buffered, written with ``log_batch``), the final ``val_mae`` / ``val_skill``, ``duration_s``,
  ``param_count``, ``epochs``, the tags ``state`` (completed / pruned / failed / killed),
  ``failure_reason``, ``trial_number``, ``nan_at_epoch``, the caller's tags over
  :func:`standard_tags`, and the trained model under ``model/`` (``model.keras`` +
  ``data_config.json``).
* ``jena best`` records each look at the test split on the winning run and registers its
  pyfunc (``forecaster/``) as ``models:/jena-temperature@champion``.

Modules: ``names`` (every tag / metric / artifact name), ``_store`` (URI, locks, client),
``_encode`` (params, tags and metrics within MLflow's limits), ``_runs`` (:class:`Tracker`,
:class:`SweepRun`, :class:`TrialRun`), ``_read`` (reading back), ``_registry`` (test records,
the pyfunc, the registry), ``_stale`` (closing what a dead process left RUNNING: this host's,
or any host's whose heartbeat stopped), ``_retry`` (a shared store: create-or-get on conflicts,
bounded retries while it is unreachable, the check before a sweep).
"""

from . import names
from ._encode import finite
from ._read import (
    CANDIDATE_STATES,
    CANDIDATES_FILTER,
    CANDIDATES_ORDER,
    BestTrial,
    RunRecord,
    TopTrial,
    best_trial,
    candidates,
    completed_trials,
    compute_to_beat,
    download_artifact,
    experiment_names,
    experiment_tags,
    failure_reasons,
    find_runs,
    fit_seconds,
    get_run,
    label,
    latest_sweep,
    load_model_dir,
    load_trial_model,
    log_artifacts,
    metric_history,
    parse_text,
    proposals,
    runs_page,
    select_best,
    sweep_definition,
    sweep_runs,
    top_trials,
    trials_frame,
)
from ._registry import (
    load_forecaster,
    log_test_evaluation,
    previous_test_evaluations,
    register_model,
)
from ._retry import set_retry_window
from ._run import LOST_PREFIX, SweepRun, TrialRun
from ._runs import DatasetInfo, Tracker, standard_tags
from ._stale import STALE_REASON, close_stale_runs, close_trial_runs
from ._store import (
    ENV_TRACKING_URI,
    check_store,
    default_tracking_uri,
    is_remote,
    is_shared,
    resolve_uri,
)

__all__ = [  # the public face; the names of tags, metrics and artifacts: `names`
    "CANDIDATES_FILTER",
    "CANDIDATES_ORDER",
    "CANDIDATE_STATES",
    "ENV_TRACKING_URI",
    "LOST_PREFIX",
    "STALE_REASON",
    "BestTrial",
    "DatasetInfo",
    "RunRecord",
    "SweepRun",
    "TopTrial",
    "Tracker",
    "TrialRun",
    "best_trial",
    "candidates",
    "check_store",
    "close_stale_runs",
    "close_trial_runs",
    "completed_trials",
    "compute_to_beat",
    "default_tracking_uri",
    "download_artifact",
    "experiment_names",
    "experiment_tags",
    "failure_reasons",
    "find_runs",
    "finite",
    "fit_seconds",
    "get_run",
    "is_remote",
    "is_shared",
    "label",
    "latest_sweep",
    "load_forecaster",
    "load_model_dir",
    "load_trial_model",
    "log_artifacts",
    "log_test_evaluation",
    "metric_history",
    "names",
    "parse_text",
    "previous_test_evaluations",
    "proposals",
    "register_model",
    "resolve_uri",
    "runs_page",
    "select_best",
    "set_retry_window",
    "standard_tags",
    "sweep_definition",
    "sweep_runs",
    "top_trials",
    "trials_frame",
]
