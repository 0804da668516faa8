"""The refit's race: successive halving over the sweep's top configurations, at full fidelity.

Every configuration's first seed (a *lane*: the configuration and its seeds) trains a first
rung of ``rung_epochs`` full epochs (every training window, the full validation split); then
the configurations are ranked by that seed's validation MAE so far (its best epoch up to the
rung) and the worse half stop (``n - ceil(n / 2)`` of ``n``; a tie goes to the better sweep
rank). The survivors train on to twice the epochs, and so on, until one configuration is left or
the next rung would reach ``epochs``; the survivors then train to the end (early stopping) and get
their further seeds. A lane that ends before a rung (early stopping) is ranked by its best epoch;
a lane whose seeds failed (NaN) ranks last.

Top-k = 1: no race. Top-k = 2: one rung, the worse of the two stops. ``rung_epochs = 0``: no
race, every configuration gets all its seeds (an even spend).

This module only decides; :mod:`jena.refit._lanes` trains (or replays what earlier refits
recorded, so a resumed race takes the same decisions), and the plan
(:mod:`jena.refit._plan`) runs this same race on simulated lanes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._lanes import Lane  # the one lane type: a refit's (trains) or its plan's (simulates)

GROWTH = 2  # each rung trains twice the epochs of the one before


def rungs(first: int, epochs: int, lanes: int) -> list[int]:
    """The epochs at which the race compares: ``first``, then doubling, below ``epochs``, as
    many as it takes to halve ``lanes`` to one (none: no race)."""
    out: list[int] = []
    n, rung = lanes, first
    while first > 0 and n > 1 and rung < epochs:
        out.append(rung)
        n, rung = survivors(n), rung * GROWTH
    return out


def epochs_text(n: int) -> str:
    return f"{n} epoch" + ("" if n == 1 else "s")


def survivors(n: int) -> int:
    """How many of ``n`` lanes go on after a rung: the better half, rounded up."""
    return math.ceil(n / 2)


@dataclass
class Outcome:
    """What the race decided: the lanes that go on, and why each other one stopped."""

    survivors: list[str]  # keys, best first
    raced_out: dict[str, str] = field(default_factory=dict)  # key -> reason
    decided: bool = True  # False: a rung's values were not all known (the budget, a dry look)
    rungs_run: list[int] = field(default_factory=list)


def run_race(
    lanes: Sequence[Lane], schedule: Sequence[int], out_of_time: Callable[[], bool]
) -> Outcome:
    """Race ``lanes`` (in sweep order, best first) over the rungs of ``schedule``."""
    alive = list(lanes)
    outcome = Outcome([lane.key for lane in alive])
    for number, epoch in enumerate(schedule, 1):
        for lane in alive:
            if not out_of_time():
                lane.advance(epoch)
        known = {lane.key: lane.value(epoch) for lane in alive}
        if out_of_time() or any(v is None for v in known.values()):
            outcome.decided = False
            break
        values = {k: v for k, v in known.items() if v is not None}
        ranked = sorted(alive, key=lambda lane: values[lane.key])  # stable: sweep rank on ties
        keep = survivors(len(ranked))
        kept = ", ".join(f"{lane.label} {values[lane.key]:.4f}" for lane in ranked[:keep])
        for lane in ranked[keep:]:
            reason = (f"raced out at rung {number} ({epochs_text(epoch)}): val MAE "
                      f"{values[lane.key]:.4f} °C, behind the surviving half ({kept})")  # fmt: skip
            lane.race_out(epoch, reason)
            outcome.raced_out[lane.key] = reason
        alive = ranked[:keep]
        outcome.rungs_run.append(epoch)
        outcome.survivors = [lane.key for lane in alive]
    return outcome
