"""Sweep definitions: TOML files read into a typed, validated :class:`SweepConfig`.

Unknown keys and wrong types are errors naming the key (``sweeps/x.toml: [fidelity].max_epochs:
expected an integer, got "4"``). Command-line overrides are applied on top with
:func:`apply_overrides` (``--set fidelity.max_epochs=2``).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jena._typed import build, parse_value
from jena.errors import ConfigError

SWEEPS_DIR = Path(__file__).resolve().parent
OPTUNA_SAMPLERS = ("tpe", "random", "grid", "cmaes", "gp", "nsga2")
OPTUNA_PRUNERS = ("none", "median", "halving", "hyperband")
KERASTUNER_TUNERS = ("random", "bayesian", "hyperband", "grid")
OBJECTIVES = ("val_mae", "param_count")


@dataclass
class DataSection:
    source: str = "jena"  # --data
    preset: str = "book2"  # split/window preset: book2 | book1


@dataclass
class FidelitySection:
    max_epochs: int = 10
    steps_per_epoch: int | None = None
    validation_steps: int | None = None
    patience: int = 3
    preset_epochs: bool = False  # train named presets for the book's number of epochs


@dataclass
class SamplerSection:
    type: str = "tpe"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class PrunerSection:
    type: str = "median"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class TunerSection:
    type: str = "random"
    options: dict[str, Any] = field(default_factory=dict)
    # Keras Tuner's own name for [faults].max_consecutive_failed_trials (wins when set)
    max_consecutive_failed_trials: int | None = None


@dataclass
class SpaceSection:
    include: list[str] | None = None  # search these parameters (default: all)
    fixed: dict[str, Any] = field(default_factory=dict)  # fix these values
    ranges: dict[str, Any] = field(default_factory=dict)  # narrower [low, high] / choices
    presets: list[str] | None = None  # search over named book models instead (a grid)
    # start from the book's models of the edition ("book"), or from another sweep's finished
    # trials (its name; the Optuna driver adds them to a new study)
    warm_start: str | None = None


@dataclass
class RefitSection:
    top_k: int = 3  # distinct top configurations retrained at full fidelity (jena refit)
    seeds: int = 3  # trainings of each; the champion averages them
    epochs: int = 30  # at most, every training window each epoch
    patience: int = 5  # early stopping on the full validation split


@dataclass
class PackingSection:
    # trials of one shape trained side by side in one compiled JAX program (jena.packed);
    # 1 = one by one (the default); > 1 needs KERAS_BACKEND=jax and pays on an accelerator
    size: int = 1


@dataclass
class StopSection:
    patience_trials: int | None = None  # stop after this many completed trials with no new best
    target_val_mae: float | None = None  # stop once a trial reaches this validation MAE (°C)


@dataclass
class FaultsSection:
    """What a sweep does when its workers or its infrastructure fail (sweeps/faults.py)."""

    # stop after this many trials in a row failed the same way (0: never), both drivers
    max_consecutive_failed_trials: int = 3
    # Optuna RDB storages (sqlite:///, postgresql://): a running trial's heartbeat, and how long
    # without one before any worker fails it (its MLflow run is then ended KILLED)
    heartbeat_interval_s: int = 30
    grace_period_s: int = 120
    retry_stale_trials: int = 1  # run a trial whose worker died again, as a WAITING copy
    # how long a tracking store that stopped answering is retried before the sweep stops
    tracking_retry_s: float = 120.0


@dataclass
class StorageSection:
    optuna: str | None = None  # default: journal file mlruns/optuna/<name>.journal
    tracking_uri: str | None = None  # default: sqlite:///mlruns/mlflow.db (or $JENA_TRACKING_URI)
    kerastuner_dir: str = "mlruns/kerastuner"


@dataclass
class SweepConfig:
    name: str = "default"
    driver: str = "optuna"
    description: str = ""
    trials: int = 20  # total over all invocations (a re-run resumes up to it)
    timeout_minutes: float | None = None  # budget for this invocation
    workers: int = 1
    seed: int = 0
    objectives: list[str] = field(default_factory=lambda: ["val_mae"])
    data: DataSection = field(default_factory=DataSection)
    fidelity: FidelitySection = field(default_factory=FidelitySection)
    sampler: SamplerSection = field(default_factory=SamplerSection)
    pruner: PrunerSection = field(default_factory=PrunerSection)
    tuner: TunerSection = field(default_factory=TunerSection)
    space: SpaceSection = field(default_factory=SpaceSection)
    stop: StopSection = field(default_factory=StopSection)
    faults: FaultsSection = field(default_factory=FaultsSection)
    packing: PackingSection = field(default_factory=PackingSection)
    refit: RefitSection = field(default_factory=RefitSection)
    storage: StorageSection = field(default_factory=StorageSection)
    path: str | None = field(default=None, metadata={"key": False})  # where it was read from

    def validate(self, where: str | None = None) -> SweepConfig:
        """Check every value; errors name ``where`` (default: the file it was read from)."""
        where = where or self.path or "sweep"
        from .registry import DRIVERS

        if self.driver not in DRIVERS:
            raise ConfigError(
                f"{where}: driver: expected {' or '.join(map(repr, DRIVERS))}, got {self.driver!r}"
            )
        if self.trials < 1:
            raise ConfigError(f"{where}: trials: must be at least 1, got {self.trials}")
        if self.workers < 1:
            raise ConfigError(f"{where}: workers: must be at least 1, got {self.workers}")
        if self.workers > 1 and self.driver == "kerastuner":
            raise ConfigError(
                f"{where}: workers: the Keras Tuner driver runs one worker (its distributed mode "
                "needs an oracle server); use driver = 'optuna' for several workers"
            )
        if self.timeout_minutes is not None and self.timeout_minutes <= 0:
            raise ConfigError(f"{where}: timeout_minutes: must be positive")
        if self.packing.size < 1:
            raise ConfigError(f"{where}: [packing].size: must be at least 1, got "
                              f"{self.packing.size}")  # fmt: skip
        if self.packing.size > 1 and self.driver != "optuna":
            raise ConfigError(
                f"{where}: [packing].size: packed trials need driver = 'optuna' (it asks for "
                "several proposals at a time)"
            )
        try:
            from jena.refit import RefitSettings

            RefitSettings(**dataclasses.asdict(self.refit))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        self._check_faults(where)
        patience, target = self.stop.patience_trials, self.stop.target_val_mae
        if patience is not None and patience < 1:
            raise ConfigError(
                f"{where}: [stop].patience_trials: must be at least 1, got {patience}"
            )
        if target is not None and not target > 0:
            raise ConfigError(f"{where}: [stop].target_val_mae: must be positive, got {target}")
        if self.sampler.type not in OPTUNA_SAMPLERS:
            raise ConfigError(
                f"{where}: [sampler].type: {self.sampler.type!r} is not one of "
                f"{', '.join(OPTUNA_SAMPLERS)}"
            )
        if self.pruner.type not in OPTUNA_PRUNERS:
            raise ConfigError(
                f"{where}: [pruner].type: {self.pruner.type!r} is not one of "
                f"{', '.join(OPTUNA_PRUNERS)}"
            )
        if self.tuner.type not in KERASTUNER_TUNERS:
            raise ConfigError(
                f"{where}: [tuner].type: {self.tuner.type!r} is not one of "
                f"{', '.join(KERASTUNER_TUNERS)}"
            )
        bad = [o for o in self.objectives if o not in OBJECTIVES]
        if bad or not self.objectives or self.objectives[0] != "val_mae":
            raise ConfigError(
                f"{where}: objectives: the first must be 'val_mae', others from "
                f"{', '.join(OBJECTIVES)}"
            )
        if len(self.objectives) > 1 and self.driver != "optuna":
            raise ConfigError(f"{where}: objectives: several objectives need driver = 'optuna'")
        if len(self.objectives) > 1 and self.sampler.type not in ("nsga2", "random", "tpe", "gp"):
            raise ConfigError(
                f"{where}: objectives: sampler {self.sampler.type!r} is single-objective"
            )
        from jena.splits import DATA_PRESETS

        if self.data.preset not in DATA_PRESETS:
            raise ConfigError(f"{where}: [data].preset: choose one of {', '.join(DATA_PRESETS)}")
        try:
            self.fidelity_obj()
            from jena.space import SPACE

            if self.space.presets is None:
                SPACE.subspace(self.space.include, self.space.fixed, None, self.space.ranges)
            else:
                SPACE.subspace([], self.space.fixed)
                self._check_presets(where)
        except ConfigError as exc:
            raise ConfigError(
                f"{where}: [space]: {exc}" if "fidelity" not in str(exc) else f"{where}: {exc}"
            ) from None
        return self

    def _check_faults(self, where: str) -> None:
        f = self.faults
        limits = {"[faults].max_consecutive_failed_trials": f.max_consecutive_failed_trials,
                  "[faults].retry_stale_trials": f.retry_stale_trials,
                  "[tuner].max_consecutive_failed_trials": self.tuner.max_consecutive_failed_trials,
                  "[faults].tracking_retry_s": f.tracking_retry_s}  # fmt: skip
        for key, value in limits.items():
            if value is not None and value < 0:
                raise ConfigError(f"{where}: {key}: must be 0 or more, got {value}")
        if f.heartbeat_interval_s < 1:
            raise ConfigError(
                f"{where}: [faults].heartbeat_interval_s: must be at least 1, got "
                f"{f.heartbeat_interval_s}"
            )
        if f.grace_period_s <= f.heartbeat_interval_s:
            raise ConfigError(
                f"{where}: [faults].grace_period_s ({f.grace_period_s}) must be longer than "
                f"heartbeat_interval_s ({f.heartbeat_interval_s}): twice as long or more"
            )

    def max_failures(self) -> int:
        """Trials failing the same way in a row that stop the sweep (0: no limit)."""
        kt = self.tuner.max_consecutive_failed_trials
        if self.driver == "kerastuner" and kt is not None:
            return kt
        return self.faults.max_consecutive_failed_trials

    def _check_presets(self, where: str) -> None:
        """Named models must exist and share the sweep's split: val MAEs of different splits
        (book1 and book2 windows) cannot be ranked together."""
        from jena.book import BOOK_MODELS

        for name in self.space.presets or []:
            if name not in BOOK_MODELS:
                raise ConfigError(
                    f"{where}: [space].presets: unknown model {name!r} (see `jena space`)"
                )
            data = BOOK_MODELS[name].data
            if data != self.data.preset:
                raise ConfigError(
                    f"{where}: [space].presets: {name!r} is a {data} model but "
                    f"[data].preset is {self.data.preset!r}; one sweep ranks one split "
                    "(sweeps/book.toml: 2nd edition, sweeps/book1.toml: 1st edition)"
                )

    def fidelity_obj(self) -> Any:
        from jena.train import Fidelity

        f = self.fidelity
        return Fidelity(
            max_epochs=f.max_epochs,
            steps_per_epoch=f.steps_per_epoch,
            validation_steps=f.validation_steps,
            patience=f.patience,
        )

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    def optuna_storage(self) -> str:
        return self.storage.optuna or f"journal:mlruns/optuna/{self.name}.journal"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("path")
        return _drop_none(d)


def _drop_none(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _drop_none(v) for k, v in d.items() if v is not None}
    return d


def resolve_path(name_or_path: str | os.PathLike[str]) -> Path:
    """A sweep file: a path, or a name of a file in sweeps/ (``book`` → sweeps/book.toml)."""
    p = Path(name_or_path)
    if p.suffix != ".toml" and not p.exists():
        p = SWEEPS_DIR / f"{p}.toml"
    if not p.exists():
        known = ", ".join(sorted(f.stem for f in SWEEPS_DIR.glob("*.toml")))
        raise ConfigError(f"no sweep file {str(name_or_path)!r}: give a path or one of: {known}")
    return p


def load(name_or_path: str | os.PathLike[str] = "default") -> SweepConfig:
    path = resolve_path(name_or_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    cfg = build(SweepConfig, raw, str(path))
    cfg.path = str(path)
    return cfg.validate()


_FIELDS = {f.name for f in dataclasses.fields(SweepConfig)}


def apply_overrides(cfg: SweepConfig, sets: list[str], source: str = "--set") -> SweepConfig:
    """Apply ``key=value`` overrides (TOML values; dotted keys for sections and space.fixed).

    The file was valid, so what is wrong now came with the overrides: errors name ``source``
    (``--set``, or the command-line flag the override stands for)."""
    raw = cfg.to_dict()
    for item in sets:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. fidelity.max_epochs=2")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        if len(parts) == 1 and parts[0] not in raw and parts[0] not in _FIELDS:
            parts = ["space", "fixed", parts[0]]  # a hyperparameter: fix it
        node = raw
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is not a section")
        node[parts[-1]] = parse_value(text)
        if parts[:2] == ["space", "fixed"] and len(parts) == 3:
            include = raw.get("space", {}).get("include")
            if include and parts[2] in include:  # the command line wins over the file
                raw["space"]["include"] = [n for n in include if n != parts[2]]
    new = build(SweepConfig, raw, source)
    new.path = cfg.path
    return new.validate(where=source)
