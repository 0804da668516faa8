"""Sweep definitions: TOML files read into a typed, validated :class:`SweepConfig`.

Unknown keys and wrong types are errors naming the key (``sweeps/x.toml: [fidelity].max_epochs:
expected an integer, got "4"``). Command-line overrides are applied on top with
:func:`apply_overrides` (``--set fidelity.max_epochs=2``).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .drivers import Capabilities

from jena.errors import ConfigError, FieldError
from jena.refit import RefitSettings
from jena.train import Fidelity
from jena.typed import build, parse_assignments

SWEEPS_DIR = Path(__file__).resolve().parent
OBJECTIVES = ("val_mae", "param_count")


@dataclass
class DataSection:
    source: str = "jena"  # --data
    # split/window preset: book2 | book1 | blocked[:DAYS[:ROLES]], or "auto" (the default: no
    # preset given): chosen once per sweep from its record (jena.splits.default_preset)
    preset: str = "auto"


# The drivers' own sections ([sampler], [pruner]: Optuna; [tuner]: Keras Tuner): each driver
# checks its own (Driver.problems).


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
    # max_consecutive_failed_trials: the old name of [faults]'s, still read (see _MOVED)


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
class ChampionSection:
    """What ``jena best`` gives the champion besides its test evaluation (jena.conformal)."""

    # the central interval's level(s), 0.9 or 90, or a list (the first is the main one)
    interval_level: float | list[float] = 0.9


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
    fidelity: Fidelity = field(default_factory=Fidelity)
    sampler: SamplerSection = field(default_factory=SamplerSection)
    pruner: PrunerSection = field(default_factory=PrunerSection)
    tuner: TunerSection = field(default_factory=TunerSection)
    space: SpaceSection = field(default_factory=SpaceSection)
    stop: StopSection = field(default_factory=StopSection)
    faults: FaultsSection = field(default_factory=FaultsSection)
    packing: PackingSection = field(default_factory=PackingSection)
    refit: RefitSettings = field(default_factory=RefitSettings)
    champion: ChampionSection = field(default_factory=ChampionSection)
    storage: StorageSection = field(default_factory=StorageSection)
    path: str | None = field(default=None, metadata={"key": False})  # where it was read from

    def validate(self, where: str | None = None) -> SweepConfig:
        """Check every value; errors name ``where`` (default: the file it was read from) and
        the key."""
        where = where or self.path or "sweep"
        for key, detail in self._problems(where):
            raise FieldError(where, key, detail)
        return self

    def _problems(self, where: str) -> Iterator[tuple[str, str]]:
        """(key, what is wrong) of each bad value, in the order they are checked."""
        from .drivers import driver_class

        caps = driver_class(self.driver, where).capabilities
        if self.trials < 1:
            yield "trials", f"must be at least 1, got {self.trials}"
        if self.workers < 1:
            yield "workers", f"must be at least 1, got {self.workers}"
        if self.workers > 1 and not caps.workers:
            yield "workers", (f"the {self.driver!r} driver runs one worker; drivers that run "
                              f"several: {caps.others('workers')}")  # fmt: skip
        if self.timeout_minutes is not None and self.timeout_minutes <= 0:
            yield "timeout_minutes", "must be positive"
        if self.packing.size < 1:
            yield "[packing].size", f"must be at least 1, got {self.packing.size}"
        if self.packing.size > 1 and not caps.packing:
            yield "[packing].size", (f"the {self.driver!r} driver cannot pack trials; drivers "
                                     f"that can: {caps.others('packing')}")  # fmt: skip
        if self.packing.size > 1 and self.workers > 1:  # a stop signal cannot reach a compile
            yield "[packing].size", (f"{self.packing.size} with workers = {self.workers}: packs "
                                     "train in one process (a pack fills the accelerator that "
                                     "workers would share); set workers = 1, or "
                                     "[packing].size = 1 to train trials one by one")  # fmt: skip
        yield from self._fault_problems()
        from jena.conformal import CalibrationError, parse_levels

        try:
            parse_levels(self.champion.interval_level, "[champion].interval_level")
        except CalibrationError as exc:
            yield "[champion].interval_level", str(exc).split(": ", 1)[1]
        patience, target = self.stop.patience_trials, self.stop.target_val_mae
        if patience is not None and patience < 1:
            yield "[stop].patience_trials", f"must be at least 1, got {patience}"
        if target is not None and not target > 0:
            yield "[stop].target_val_mae", f"must be positive, got {target}"
        yield from driver_class(self.driver, where).problems(self)
        yield from self._objective_problems(caps)
        from jena.splits import AUTO_PRESET, get_preset

        try:
            if self.data.preset != AUTO_PRESET:
                get_preset(self.data.preset)
        except ConfigError as exc:
            yield "[data].preset", f"{exc}, or {AUTO_PRESET!r} (chosen from the record)"
        try:
            from jena.space import SPACE

            if self.space.presets is None:
                SPACE.subspace(self.space.include, self.space.fixed, None, self.space.ranges)
            else:
                SPACE.subspace([], self.space.fixed)
                yield from self._preset_problems()
        except ConfigError as exc:
            yield "[space]", str(exc)

    def _objective_problems(self, caps: Capabilities) -> Iterator[tuple[str, str]]:
        bad = [o for o in self.objectives if o not in OBJECTIVES]
        if bad or not self.objectives or self.objectives[0] != "val_mae":
            yield "objectives", f"the first must be 'val_mae', others from {', '.join(OBJECTIVES)}"
        if len(self.objectives) > 1 and not caps.multi_objective:
            yield "objectives", (f"the {self.driver!r} driver has one objective; drivers with "
                                 f"several: {caps.others('multi_objective')}")  # fmt: skip

    def _fault_problems(self) -> Iterator[tuple[str, str]]:
        f = self.faults
        limits = {"[faults].max_consecutive_failed_trials": f.max_consecutive_failed_trials,
                  "[faults].retry_stale_trials": f.retry_stale_trials,
                  "[faults].tracking_retry_s": f.tracking_retry_s}  # fmt: skip
        for key, value in limits.items():
            if value is not None and value < 0:
                yield key, f"must be 0 or more, got {value}"
        if f.heartbeat_interval_s < 1:
            yield (
                "[faults].heartbeat_interval_s",
                f"must be at least 1, got {f.heartbeat_interval_s}",
            )
        if f.grace_period_s <= f.heartbeat_interval_s:
            yield (
                "[faults].grace_period_s",
                (
                    f"{f.grace_period_s} must be longer than heartbeat_interval_s "
                    f"({f.heartbeat_interval_s}): twice as long or more"
                ),
            )

    def _preset_problems(self) -> Iterator[tuple[str, str]]:
        """Named models must exist and share the sweep's split: val MAEs of different splits
        (book1 and book2 windows) cannot be ranked together."""
        from jena.book import BOOK_MODELS

        names = [n for n in self.space.presets or [] if n in BOOK_MODELS]
        for name in self.space.presets or []:
            if name not in BOOK_MODELS:
                yield "[space].presets", f"unknown model {name!r} (see `jena space`)"
            elif (data := BOOK_MODELS[name].data) != self.data.preset and (
                self.data.preset != "auto" or len({BOOK_MODELS[n].data for n in names}) > 1
            ):  # auto: the models' own edition (sweeps.runner.choose_preset)
                mine = self.data.preset
                why = (f"{name!r} is a {data} model but [data].preset is {mine!r}; one sweep "
                       "ranks one split (sweeps/book.toml: 2nd edition, sweeps/book1.toml: 1st "
                       "edition)")  # fmt: skip
                yield "[space].presets", why

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

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
    cfg = build(SweepConfig, _moved(raw, str(path)), str(path))
    cfg.path = str(path)
    return cfg.validate()


# Keys that moved to another section: an old sweep file still reads ((old section, key) -> new)
_MOVED = {("tuner", "max_consecutive_failed_trials"): "faults"}


def _moved(raw: dict[str, Any], where: str, override: bool = False) -> dict[str, Any]:
    """``raw`` with each moved key in its new section. Given both ways in one file with two
    values: ConfigError; ``override`` (a command line): the old name's value wins."""
    for (old, key), new in _MOVED.items():
        section, target = raw.get(old), raw.setdefault(new, {})
        if not (isinstance(section, dict) and key in section and isinstance(target, dict)):
            continue
        value = section.pop(key)
        if not override and key in target and target[key] != value:
            raise ConfigError(f"{where}: [{old}].{key} ({value}) and [{new}].{key} "
                              f"({target[key]}) disagree: keep the [{new}] one (the [{old}] key "
                              "is its old name)")  # fmt: skip
        target[key] = value
    return raw


_FIELDS = {f.name for f in dataclasses.fields(SweepConfig)}


def apply_overrides(cfg: SweepConfig, sets: list[str], source: str = "--set") -> SweepConfig:
    """Apply ``key=value`` overrides (TOML values; dotted keys for sections and space.fixed).

    The file was valid, so what is wrong now came with the overrides: errors name ``source``
    (``--set``)."""
    raw = cfg.to_dict()
    for key, value in parse_assignments(sets, "fidelity.max_epochs=2"):
        _assign(raw, key.split("."), value)
    new = build(SweepConfig, _moved(raw, source, override=True), source)
    new.path = cfg.path
    return new.validate(where=source)


def apply_flags(cfg: SweepConfig, flags: dict[str, tuple[str, Any]]) -> SweepConfig:
    """Apply command-line flags ``{flag: (key, value)}`` (a value of None: not given) one at a
    time, each error naming its flag (``--trials: must be at least 1, got 0``)."""
    for flag, (key, value) in flags.items():
        if value is None:
            continue
        raw = cfg.to_dict()
        _assign(raw, key.split("."), value)
        try:
            new = build(SweepConfig, _moved(raw, flag, override=True), flag).validate(where=flag)
        except FieldError as exc:  # the flag names itself, not the key it sets
            raise (ConfigError(f"{flag}: {exc.detail}") if exc.key == key else exc) from None
        new.path, cfg = cfg.path, new
    return cfg


def _assign(raw: dict[str, Any], parts: list[str], value: Any) -> None:
    """Set ``value`` at the dotted key ``parts`` of a sweep's table; a bare hyperparameter name
    (``units``) is fixed (``space.fixed.units``)."""
    if len(parts) == 1 and parts[0] not in raw and parts[0] not in _FIELDS:
        parts = ["space", "fixed", parts[0]]  # a hyperparameter: fix it
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {'.'.join(parts)}: {part!r} is not a section")
    node[parts[-1]] = value
    if parts[:2] == ["space", "fixed"] and len(parts) == 3:
        include = raw.get("space", {}).get("include")
        if include and parts[2] in include:  # the command line wins over the file
            raw["space"]["include"] = [n for n in include if n != parts[2]]
