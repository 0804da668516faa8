"""Every tag, param, metric and artifact name of the MLflow convention, defined once.

Other modules import these names from :mod:`jena.tracking`; none spells them as literals.
"""

from __future__ import annotations

# --- run kinds (tag RUN_TYPE) ---------------------------------------------------------------
TAG_RUN_TYPE = "run_type"
RUN_SWEEP = "sweep"  # the parent run of one sweep invocation
RUN_TRIAL = "trial"  # the nested run of one trial
RUN_REFIT = "refit"  # the parent run of one refit of a sweep's top configurations
RUN_REFIT_MEMBER = "refit_member"  # one configuration × seed trained at full fidelity
RUN_RIDGE = "ridge"  # the linear reference, when no network beat it: the champion's run
TAG_PARENT = "mlflow.parentRunId"  # MLflow's own nesting tag

# --- MLflow's own conventions, so that its UI shows a sweep as model training ---------------
EXP_KIND = "mlflow.experimentKind"
EXP_KIND_MODEL_TRAINING = "custom_model_development"  # the UI's "Machine learning" kind
TAG_SOURCE_NAME = "mlflow.source.name"
TAG_SOURCE_TYPE = "mlflow.source.type"
TAG_SOURCE_GIT_COMMIT = "mlflow.source.git.commit"
TAG_SOURCE_GIT_BRANCH = "mlflow.source.git.branch"
TAG_SOURCE_GIT_REPO = "mlflow.source.git.repoURL"
TAG_USER = "mlflow.user"
DATA_CONTEXT = "mlflow.data.context"  # dataset input tag: training | validation

# --- tags of every run ----------------------------------------------------------------------
TAG_BACKEND = "backend"
TAG_GIT_COMMIT = "git_commit"
TAG_VERSION = "jena_version"
TAG_HOST = "host"  # the one host tag: which machine's process owns the run
TAG_PID = "pid"
TAG_HEARTBEAT = "heartbeat_at"  # a parent run on a shared store: last sign of life (ms)
TAG_HEARTBEAT_S = "heartbeat_interval_s"  # how often it beats

# --- tags of sweep and trial runs -----------------------------------------------------------
TAG_DRIVER = "driver"
TAG_SWEEP = "sweep"
TAG_SWEEP_FILE = "sweep_file"
TAG_DATA_SOURCE = "data_source"
TAG_DATA_DIGEST = "data_digest"
TAG_PRESET = "preset"  # the data (split/window) preset: book2 | book1
TAG_PRESET_CHOICE = "preset_choice"  # no preset given: the split the record got, and why
TAG_WARM_START = "warm_start"  # a trial the sweep started from (book:lstm, or sweep:NAME#7)
TAG_STOP_REASON = "stop_reason"  # which rule ended a sweep invocation
TAG_BEAT_PREFIX = "compute_to_beat."  # parent run: fit seconds until a trial beat a book model
TAG_BOUNDS_NOTE = "bounds_note"  # how a preset's split bounds were scaled to a short record
TAG_SEASON_NOTE = "season_note"  # a chronological split of a short record: seasons differ
TAG_MODEL_PRESET = "model_preset"  # a named book model, when the trial is one
TAG_ARCHITECTURE = "architecture"
TAG_SEED = "seed"
TAG_STATE = "state"  # completed | pruned | failed | killed
TAG_FAILURE = "failure_reason"
TAG_TRIAL_NUMBER = "trial_number"
TAG_NAN_EPOCH = "nan_at_epoch"
TAG_MODEL_ARTIFACT = "model_artifact"
TAG_MODEL_ID = "model_id"  # the trial's MLflow LoggedModel
TAG_BEST_NUMBER = "best_trial_number"
TAG_BEST_RUN_ID = "best_trial_run_id"
TAG_BEST_PARAM_PREFIX = "best."
TAG_TEST_COUNT = "test_evaluations"
TAG_TEST_TIMES = "test_evaluated_at"
TAG_TEST_DATA = "test_data_source"
TAG_SOURCE_RUN = "source_run_id"  # the trial a refit member retrains
TAG_SOURCE_TRIAL = "source_trial"
TAG_REFIT_KEY = "refit_config"  # which configuration (a digest of it)
TAG_REFIT_SEED = "refit_seed"
TAG_REFIT_EPOCHS = "refit_epochs"
TAG_REFIT_PATIENCE = "refit_patience"
TAG_LABEL = "label"  # what the configuration is, for people (t0005-lstm-64u)

# --- experiment tags (one sweep name = one record and one split) ------------------------------
EXP_DATA_DIGEST = "data_digest"
EXP_DATA_PRESET = "data_preset"
EXP_DATA_SOURCE = "data_source"

# --- params -----------------------------------------------------------------------------------
PARAM_SEARCH_PREFIX = "hp."  # the raw values a driver proposed

# --- metrics ----------------------------------------------------------------------------------
METRIC_LOSS = "loss"
METRIC_MAE = "mae"
METRIC_VAL_LOSS = "val_loss"
METRIC_VAL_MAE = "val_mae"
METRIC_VAL_SKILL = "val_skill"
METRIC_BASELINE_VAL = "baseline_val_mae"
METRIC_DURATION = "duration_s"
METRIC_FIT_S = "fit_s"
METRIC_WINDOWS = "windows_seen"  # training windows fed to the model: compute, with fit_s
METRIC_PARAM_COUNT = "param_count"
METRIC_EPOCHS = "epochs"
METRIC_BEST_VAL = "best_val_mae"  # a trial's best epoch (step = that epoch); a sweep's best
METRIC_TEST_MAE = "test_mae"
METRIC_TEST_SKILL = "test_skill"
METRIC_BASELINE_TEST = "baseline_test_mae"
METRIC_TEST_WINDOWS = "test_windows"
METRIC_VAL_TARGETS = "val_targets"  # validation target rows an MAE covers (the same per sweep)
METRIC_CHAMPION_VAL = "champion_val_mae"  # what was tested: its validation MAE, and skill
METRIC_CHAMPION_VAL_SKILL = "champion_val_skill"
METRIC_RIDGE_VAL = "ridge_val_mae"  # the linear reference (+ _skill, _skill_low, _skill_high)
METRIC_RIDGE_VAL_SKILL = "ridge_val_skill"
METRIC_RIDGE_TEST = "ridge_test_mae"
METRIC_INTERVAL_LEVEL = "interval_level"  # the champion's calibrated interval (jena.coverage)
METRIC_INTERVAL_COVERAGE = "interval_coverage"  # on test (+ _low/_high, _<season>, ridge_ ...)
METRIC_INTERVAL_WIDTH = "interval_width"  # mean width on test, °C
TAG_INTERVAL_LEVEL = "interval_level"
TAG_INTERVAL_OFF_NOMINAL = "interval_off_nominal"  # its coverage interval excludes the level
TAG_INTERVAL_WIDTH_VS_PERSISTENCE = "interval_width_vs_persistence"  # mean widths' ratio
TAG_INTERVAL_CALIBRATION = "interval_calibration"  # its groups (jena.conformal)
METRIC_REFIT_ESTIMATE = "estimated_fit_s"  # a refit run: the plan's estimate, before training
METRIC_REFIT_RATIO = "estimate_ratio"  # measured fit seconds / estimated
TAG_REFIT_OUTCOME = "refit_outcome"  # a refit run: what finished and what did not
TAG_RACED_OUT = "refit_raced_out"  # a refit member the race stopped: the epochs of its rung
TAG_PACKED = "packed"  # a run trained in a packed program (a trial, a refit seed): its slots
TAG_TRIALS_PREFIX = "trials_"  # parent-run tags: trials_completed, trials_pruned, ...
EPOCH_METRICS = (METRIC_LOSS, METRIC_MAE, METRIC_VAL_LOSS, METRIC_VAL_MAE)

# --- artifacts --------------------------------------------------------------------------------
MODEL_DIR = "model"
MODEL_FILE = "model.keras"
DATA_CONFIG_FILE = "data_config.json"
PYFUNC_DIR = "forecaster"
PREDICTIONS_FILE = "test_predictions.csv"
EVALUATION_FILE = "test_evaluation.json"
BEST_TRIAL_FILE = "best_trial.json"
REFIT_FILE = "refit.json"  # a refit's configurations, seeds, mean ± std, the selection
SWEEP_DEFINITIONS = ("sweep.toml", "sweep.json")
REPORT_DIR = "report"

# --- registry ---------------------------------------------------------------------------------
REGISTERED_NAME = "jena-temperature"
ALIAS = "champion"
PYFUNC_MARKER = "jena_forecaster"
