"""The outcome of one ``jena best`` (:class:`Evaluation`): what was tested, its figures on
validation and test with their intervals, the evidence against persistence and the linear
reference, the verdict, and where it was recorded and registered."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from .tracking import names as N
from .uncertainty import Comparison, Interval


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
        for key in ("val_vs_persistence", "val_vs_ridge", "test_vs_persistence", "test_vs_ridge"):
            c = getattr(self, key)
            out[key] = c.to_dict() if c is not None else None
        return out

    def interval_metrics(self) -> dict[str, float]:
        """The intervals, DM tests and the reference for the champion's run (module docstring)."""
        out: dict[str, float] = {}
        pairs: tuple[tuple[str, Comparison | None, str], ...] = (
            ("val", self.val_vs_persistence, N.METRIC_CHAMPION_VAL),
            ("test", self.test_vs_persistence, N.METRIC_TEST_MAE),
        )
        for split, c, mae in pairs:
            if c is None:
                continue
            skill = N.METRIC_CHAMPION_VAL_SKILL if split == "val" else N.METRIC_TEST_SKILL
            out |= {f"{mae}_low": c.mae.low, f"{mae}_high": c.mae.high}
            out |= {f"{skill}_low": c.skill.low, f"{skill}_high": c.skill.high}
            out |= {f"{split}_dm_stat": c.dm.statistic, f"{split}_dm_pvalue": c.dm.p_value}
        for split, r, name in (("val", self.val_vs_ridge, N.METRIC_RIDGE_VAL),
                               ("test", self.test_vs_ridge, N.METRIC_RIDGE_TEST)):  # fmt: skip
            if r is not None:
                out[name] = r.reference_mae.estimate
                out |= _interval(f"{split}_skill_vs_ridge", r.skill)
        return out


def _interval(name: str, interval: Interval) -> dict[str, float]:
    return {name: interval.estimate, f"{name}_low": interval.low, f"{name}_high": interval.high}
