"""Where a new sweep starts: the book's models of its edition (run first), or another sweep's
finished trials (added with their results, where the driver can), as points of this sweep's
space; what cannot be used is listed with the reason."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jena import tracking as T
from jena.book import preset_defaults
from jena.data import Dataset
from jena.errors import ConfigError
from jena.recording import recorded_config
from jena.space import Space
from jena.tracking import names as N

from .config import SweepConfig
from .trial import make_space

if TYPE_CHECKING:
    from .drivers import Driver


@dataclass(frozen=True)
class WarmPoint:
    """A point a sweep starts from: a book model (``book:lstm``) or a trial of another sweep."""

    label: str
    values: dict[str, Any]
    val_mae: float | None = None  # known result (another sweep's trial), or None: run it


def book_warm_points(cfg: SweepConfig, space: Space) -> tuple[list[WarmPoint], list[str]]:
    """The book's models of the sweep's edition that this space can build, and why the others
    cannot."""
    from jena.book import edition_models

    points, skipped = [], []
    for model in edition_models(cfg.data.preset):
        values, problems = space.point_of(model.config, preset_defaults(cfg.data.preset, cfg.seed))
        if problems:
            skipped.append(f"book:{model.name}: {'; '.join(problems)}")
        else:
            points.append(WarmPoint(f"book:{model.name}", values))
    return points, skipped


def sweep_warm_points(
    cfg: SweepConfig, space: Space, other: str
) -> tuple[list[WarmPoint], list[str]]:
    """The candidates of sweep ``other`` (completed, or stopped by its time budget after a
    finished epoch: jena.tracking ``candidates``) that are points of this space (same data,
    same fidelity, same settings), as finished trials to add; and why the others are not."""
    if other == cfg.name:
        raise ConfigError(f"--warm-start {other}: a sweep cannot warm-start from itself")
    uri = T.resolve_uri(cfg.storage.tracking_uri)
    frame = T.trials_frame(uri, other)  # ConfigError listing the sweeps if there is none
    parents = T.sweep_runs(uri, other)
    theirs = T.sweep_definition(uri, parents[0].run_id) if parents else None
    if theirs is not None:
        mine = cfg.to_dict()
        for section in ("data", "fidelity"):
            a, b = dict(theirs.get(section, {})), dict(mine.get(section, {}))
            a.pop("source", None), b.pop("source", None)
            if a != b:
                raise ConfigError(
                    f"--warm-start {other}: its [{section}] {a} differs from this sweep's {b}: "
                    "its validation MAEs are not comparable; warm-start from a sweep run the same "
                    "way"
                )
    points, skipped = [], []
    base = preset_defaults(cfg.data.preset, cfg.seed)
    for row in T.candidates(frame).to_dict("records"):
        label = f"sweep:{other}#{row['number']}"
        try:  # what it trained, as the refit reads it
            config = recorded_config(uri, str(row["run_id"])).config
        except ConfigError as exc:
            skipped.append(f"{label}: {exc}")
            continue
        values, problems = space.point_of(config, base, strict=True)
        if problems:
            skipped.append(f"{label}: {'; '.join(problems)}")
        else:
            points.append(WarmPoint(label, values, float(row["val_mae"])))
    return points, skipped


def warm_start(cfg: SweepConfig, driver: Driver, ds: Dataset, finished: int) -> list[str]:
    """Start a new sweep from the book's models or another sweep's trials; what was done and
    what was skipped, one line each (nothing once the sweep has trials)."""
    source = cfg.space.warm_start  # "book", another sweep's name, or "" / unset: none
    if not source or finished:
        return []
    space = make_space(cfg)
    if source == "book":
        points, skipped = book_warm_points(cfg, space)
    else:
        if not driver.capabilities.warm_start_from_sweep:
            raise ConfigError(
                f"--warm-start {source}: the {cfg.driver!r} driver cannot add another sweep's "
                "finished trials; start from the book's models (--warm-start book), or use a "
                f"driver that can ({driver.capabilities.others('warm_start_from_sweep')})"
            )
        try:
            other = T.experiment_tags(cfg.storage.tracking_uri, source)
        except ConfigError as exc:
            raise ConfigError(f"--warm-start {source}: {exc}") from None
        if other.get(N.EXP_DATA_DIGEST) not in (None, ds.digest):
            raise ConfigError(
                f"--warm-start {source}: that sweep was run on data "
                f"{other.get(N.EXP_DATA_SOURCE, '?')} (digest {other.get(N.EXP_DATA_DIGEST)}), "
                f"not {ds.source} ({ds.digest})"
            )
        points, skipped = sweep_warm_points(cfg, space, source)
        if not points:
            raise ConfigError(
                f"--warm-start {source}: none of its finished trials is a point of this "
                f"sweep's space ({len(skipped)} skipped; first: "
                f"{skipped[0] if skipped else 'it has no completed trial'})"
            )
    notes = driver.warm_start(points) if points else []
    return notes + [f"  skipped {line}" for line in skipped]
