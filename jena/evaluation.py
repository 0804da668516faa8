"""The outcome of one ``jena best`` (:class:`Evaluation`): what was tested, its figures on
validation and test with their intervals, the evidence against persistence and the linear
reference, the verdict, and where it was recorded and registered."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from .conformal import level_key, percent
from .coverage import IntervalCheck
from .tracking import names
from .uncertainty import Comparison, Interval


def against_ridge(c: Comparison, split: str) -> str:
    """The champion against the linear reference on ``split``, in words the interval allows:
    "beats the ridge" (the skill interval above zero), "is worse than the ridge" (wholly below
    zero), else "cannot be told apart from the ridge"."""
    if c.skill.low > 0:
        verdict = "beats the ridge"
    elif c.skill.high < 0:
        verdict = "is WORSE than the ridge"
    else:
        verdict = "cannot be told apart from the ridge"
    return (
        f"on {split} the champion {verdict}: skill {c.skill.text('+.1%')} against it, DM "
        f"{c.dm.statistic:+.2f} (p = {c.dm.p_value:.2g}), on the same {c.windows:,} targets"
    )


def seeds_phrase(count: int) -> str:
    """How a refit champion's seeds are named: "1 seed only", "3 seeds averaged"."""
    return "1 seed only" if count == 1 else f"{count} seeds averaged"


@dataclass
class Evaluation:
    """The outcome of one ``jena best``."""

    experiment: str
    run_id: str
    trial: int | None
    driver: str | None
    architecture: str
    val_mae: float
    baseline_val_mae: float | None
    test_mae: float
    baseline_test_mae: float
    test_windows: int
    data_source: str
    data_digest: str
    evaluation: int  # 1 for the first look at the test split from this run
    kind: str = "trial"  # "trial": a sweep trial's model; "refit": the refit seeds, averaged
    label: str = ""  # the configuration (its source trial's run name)
    val_skill: float | None = None  # 1 - val MAE / persistence on the same windows
    members: list[dict[str, Any]] = field(default_factory=list)  # seed, run_id, val/test MAE
    best_val_member_test_mae: float | None = None  # the single best-validation seed's test MAE
    previous: list[str] = field(default_factory=list)  # earlier evaluations (UTC, ISO)
    other_runs_evaluated: int = 0  # test evaluations of other trials of this experiment
    registered_model: str | None = None
    version: str | None = None
    alias: str | None = None
    model_uri: str | None = None
    # the champion against persistence and against the linear reference, on the same windows
    val_vs_persistence: Comparison | None = None  # full validation split
    val_vs_ridge: Comparison | None = None
    test_vs_persistence: Comparison | None = None
    test_vs_ridge: Comparison | None = None
    forced: bool = False  # promoted by --force without the evidence the gate asks for
    seeds_note: str | None = None  # the refit champion rests on one finished seed only
    refit_outcome: str | None = None  # what the refit run now finished and did not
    intervals: IntervalCheck | None = None  # calibrated on validation, checked on test
    # kind "ridge": no network beat the linear reference on validation; why, in one line
    ridge_note: str | None = None

    @property
    def ridge_verdicts(self) -> list[str]:
        """The champion against the ridge on validation and test (none for the ridge itself)."""
        pairs = (("validation", self.val_vs_ridge), ("test", self.test_vs_ridge))
        return [against_ridge(c, split) for split, c in pairs if c is not None]

    @property
    def test_skill(self) -> float:
        return 1.0 - self.test_mae / self.baseline_test_mae if self.baseline_test_mae else math.nan

    @property
    def worse_than_persistence_on_test(self) -> bool:
        return self.test_mae > self.baseline_test_mae

    @property
    def test_verdict(self) -> str:
        """One plain line on the test split: better or worse than persistence, how sure."""
        c = self.test_vs_persistence
        how = f"skill {c.skill.text('+.1%')}, DM p = {c.dm.p_value:.2g}" if c else ""
        noise = c is not None and not c.skill.excludes_zero
        if self.worse_than_persistence_on_test:
            return (
                f"the champion is WORSE than persistence on the test split: test MAE "
                f"{self.test_mae:.3f} °C against {self.baseline_test_mae:.3f} °C ({how})"
                + ("; within the noise of the test period" if noise else "")
                + ("" if self.forced else "; what it gained on validation did not carry over")
            )
        sure = "but within the noise: not told apart from persistence there" if noise else (
            "and its interval excludes zero")  # fmt: skip
        return f"the champion beats persistence on the test split ({how}) {sure}"

    @property
    def warning(self) -> str | None:
        if not self.previous:
            return None
        last = self.previous[-1].replace("T", " ").replace("+00:00", " UTC")
        return (
            f"the test set of this run was already used {len(self.previous)} time(s), last on "
            f"{last}: this test MAE is no longer an unbiased estimate"
        )

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["test_skill"] = self.test_skill
        out["warning"] = self.warning
        out["worse_than_persistence_on_test"] = self.worse_than_persistence_on_test
        out["test_verdict"] = self.test_verdict
        out["ridge_verdicts"] = self.ridge_verdicts
        for key in ("val_vs_persistence", "val_vs_ridge", "test_vs_persistence", "test_vs_ridge"):
            c = getattr(self, key)
            out[key] = c.to_dict() if c is not None else None
        out["intervals"] = self.intervals.to_dict() if self.intervals else None
        out["interval_verdicts"] = self.interval_verdicts
        return out

    @property
    def interval_verdicts(self) -> list[str]:
        """One plain line per level on the champion's interval on test (an interval that
        excludes the nominal level first, as said)."""
        if not self.intervals:
            return []
        found = [self.intervals.get("champion", lv) for lv in self.intervals.levels]
        return [c.verdict() for c in found if c is not None]

    def interval_tags(self) -> dict[str, str]:
        """Tags of the run and the version: the champion's main interval on test."""
        if not self.intervals:
            return {}
        c = self.intervals.champion
        ratio = self.intervals.sharper_than("persistence")
        return {
            names.TAG_INTERVAL_LEVEL: percent(c.level),
            names.METRIC_INTERVAL_COVERAGE: c.coverage.text(".4f"),
            names.METRIC_INTERVAL_WIDTH: f"{c.width:.3f}",
            names.TAG_INTERVAL_OFF_NOMINAL: str(c.off_nominal).lower(),
            names.TAG_INTERVAL_WIDTH_VS_PERSISTENCE: "" if ratio is None else f"{ratio:.3f}",
            names.TAG_INTERVAL_CALIBRATION: self.intervals.calibration,
        }

    def interval_metrics(self) -> dict[str, float]:
        """The intervals, DM tests and the reference for the champion's run (module docstring)."""
        out: dict[str, float] = {}
        pairs: tuple[tuple[str, Comparison | None, str], ...] = (
            ("val", self.val_vs_persistence, names.METRIC_CHAMPION_VAL),
            ("test", self.test_vs_persistence, names.METRIC_TEST_MAE),
        )
        for split, c, mae in pairs:
            if c is None:
                continue
            skill = names.METRIC_CHAMPION_VAL_SKILL if split == "val" else names.METRIC_TEST_SKILL
            out |= {f"{mae}_low": c.mae.low, f"{mae}_high": c.mae.high}
            out |= {f"{skill}_low": c.skill.low, f"{skill}_high": c.skill.high}
            out |= {f"{split}_dm_stat": c.dm.statistic, f"{split}_dm_pvalue": c.dm.p_value}
        for split, r, name in (("val", self.val_vs_ridge, names.METRIC_RIDGE_VAL),
                               ("test", self.test_vs_ridge, names.METRIC_RIDGE_TEST)):  # fmt: skip
            if r is not None:
                out[name] = r.reference_mae.estimate
                out |= _interval(f"{split}_skill_vs_ridge", r.skill)
        return out | self.coverage_metrics()

    def coverage_metrics(self) -> dict[str, float]:
        """The intervals on test: ``interval_coverage`` (``_low/_high``), ``interval_width``,
        by season, the ridge's and persistence's (``ridge_``, ``persistence_``); a further level
        with its suffix (``interval_coverage_80``)."""
        out: dict[str, float] = {}
        if not self.intervals:
            return out
        main = self.intervals.levels[0]
        out[names.METRIC_INTERVAL_LEVEL] = main
        for c in self.intervals.results:
            prefix = "" if c.forecaster == "champion" else f"{c.forecaster}_"
            suffix = "" if c.level == main else f"_{level_key(c.level)}"
            cover = f"{prefix}{names.METRIC_INTERVAL_COVERAGE}"
            out |= _interval(f"{cover}{suffix}", c.coverage)
            out[f"{prefix}{names.METRIC_INTERVAL_WIDTH}{suffix}"] = c.width
            if not suffix:
                for s in c.by_season:
                    out[f"{cover}_{s.season}"] = s.coverage.estimate
                    out[f"{prefix}{names.METRIC_INTERVAL_WIDTH}_{s.season}"] = s.width
        return out


def _interval(name: str, interval: Interval) -> dict[str, float]:
    return {name: interval.estimate, f"{name}_low": interval.low, f"{name}_high": interval.high}
