"""`jena refit`, and what `jena best` shares with it: the settings from the flags, the plan said
before anything trains, the live board, what the refit did."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import Any

from ._common import add_sweep_target, console, print_json


def refit_settings(args: argparse.Namespace, experiment: str) -> Any:
    """``[refit]`` of the sweep with the flags; a bad flag is one line naming it."""
    from ..errors import ConfigError
    from ..refit import RefitSettings

    minutes = None
    if args.refit_minutes is not None:
        text = str(args.refit_minutes).strip().lower()
        try:
            minutes = float("inf") if text in ("inf", "none") else float(text)
        except ValueError:
            minutes = -1.0
        if not minutes > 0:
            raise ConfigError(f"--refit-minutes: must be a positive number of minutes (inf: no "
                              f"budget), got {args.refit_minutes!r}")  # fmt: skip
    if args.rung_epochs is not None and args.rung_epochs < 0:
        raise ConfigError(f"--rung-epochs: must be 0 (no race) or more, got {args.rung_epochs}")
    return RefitSettings.of_sweep(
        args.tracking_uri,
        experiment,
        top_k=args.top_k,
        seeds=args.seeds,
        epochs=args.epochs,
        patience=args.patience,
        rung_epochs=args.rung_epochs,
        budget_minutes=minutes,
    )


def refit_plan(args: argparse.Namespace, experiment: str) -> Any:
    """The refit's plan, printed before anything trains (on stderr with --json)."""
    from ..refit import plan_refit

    settings = refit_settings(args, experiment)
    plan = plan_refit(experiment, tracking_uri=args.tracking_uri, settings=settings,
                      data=args.data)  # fmt: skip
    con = console(stderr=args.json)
    for line in plan.lines():
        con.print(line, markup=False, soft_wrap=True)
    if not args.plan:
        plan.check_budget()  # no seed can finish within the budget: say so before the board
    return plan


def plan_only(plan: Any, as_json: bool) -> int:
    """``--plan``: the plan is printed already (its JSON too with ``--json``); stop."""
    if plan is None:
        from ..errors import ConfigError

        raise ConfigError("--plan: there is no refit to plan with --no-refit")
    if as_json:
        print_json(plan.to_dict())
    return 0


@contextlib.contextmanager
def refit_board(plan: Any, quiet: bool) -> Iterator[Any]:
    """The live display of a refit (on stderr): elapsed, and remaining by the plan's estimate
    within the budget; nothing when ``quiet`` or nothing is to train."""
    if quiet or plan is None or not plan.members:
        yield None
        return
    import time

    from ..board import Board, Progress

    class RefitState(Progress):
        def eta(self) -> float | None:
            left = max(plan.total_s - (time.monotonic() - self.started), 0.0)
            if self.deadline is not None:
                left = min(left, max(self.deadline - time.monotonic(), 0.0))
            return left if self.finished < self.total else 0.0

    s = plan.settings
    budget = plan.budget_s
    race = f"rungs at {', '.join(map(str, plan.rungs))} epochs" if plan.rungs else "no race"
    state = RefitState(
        f"refit of {plan.experiment} · top {s.top_k} × {s.seeds} seeds · up to {s.epochs} "
        f"epochs, every training window, full validation · {race}"
        + (f" · budget {budget / 60:g} min" if budget is not None else ""),
        total=len(plan.members),
    )
    if budget is not None:
        state.deadline = state.started + budget
    con = console(stderr=True)
    try:
        with Board(state).live(con):
            yield state
    finally:
        con.print()  # the board's last line ends before anything else is said


def cmd_refit(args: argparse.Namespace) -> int:
    from rich.table import Table

    from ..refit import refit
    from ..tracking import latest_sweep

    experiment = args.experiment or latest_sweep(args.tracking_uri)
    plan = refit_plan(args, experiment)
    if args.plan:
        return plan_only(plan, args.json)
    with refit_board(plan, args.json) as board:
        result = refit(experiment, tracking_uri=args.tracking_uri, plan=plan, events=board)
    if args.json:
        print_json(result.to_dict())
        return 0
    table = Table(title=f"refit of {experiment!r}: validation MAE (°C) over seeds")
    for col in ("configuration", "sweep val MAE", "seeds", "mean", "± std", "per seed"):
        table.add_column(col, no_wrap=col == "configuration")
    from ..errors import ConfigError

    try:
        selected = result.selected.candidate.key
    except ConfigError:
        selected = None
    for c in sorted(result.configs, key=lambda c: (bool(c.raced_out), c.mean)):
        mark = " ← selected" if c.candidate.key == selected else ""
        mark += " (raced out)" if c.raced_out else ""
        table.add_row(
            c.candidate.label + mark,
            f"{c.candidate.val_mae:.4f}",
            str(len(c.members)),
            f"{c.mean:.4f}" if c.members else "—",
            f"{c.std:.4f}" if c.members else "—",
            "  ".join(f"s{m.seed} {m.val_mae:.4f}" for m in c.members),
        )
    con = console()
    con.print(table)
    _print_refit_outcome(result, con)
    return 0


def _print_refit_outcome(result: Any, con: Any) -> None:
    """What the refit did now, its cost against the plan's estimate, why configurations
    stopped, and what is left."""
    from ..errors import ConfigError

    line = f"{result.trained} trained now, the rest from earlier refits"
    if result.stage_run_id:
        line += f"; refit run {result.stage_run_id}: {result.outcome_text()}"
        if result.estimate_s:
            line += (f"; {result.fit_s:.0f} s of fit against {result.estimate_s:.0f} s "
                     f"estimated ({result.fit_s / result.estimate_s:.2f}×)")  # fmt: skip
    con.print(line, markup=False, soft_wrap=True)
    for c in result.configs:
        if c.raced_out and c.outcomes:
            con.print(f"  {c.candidate.label}: {c.raced_out}", markup=False, soft_wrap=True)
    try:
        note = result.seeds_note
    except ConfigError as exc:
        note = str(exc)
    if note:
        con.print(f"note: {note}", style="yellow", markup=False, soft_wrap=True)
    if not result.complete:
        con.print("note: the refit is not complete (failed members, the budget, the race): run "
                  "`jena refit` again to go on (resumable)", style="yellow", markup=False,
                  soft_wrap=True)  # fmt: skip


def add_refit_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("refit (default: the sweep file's [refit])")
    g.add_argument("--top-k", type=int, default=None, help="distinct configurations (3)")
    g.add_argument("--seeds", type=int, default=None, help="trainings of each (3)")
    g.add_argument("--epochs", type=int, default=None, help="epochs at most (30)")
    g.add_argument("--patience", type=int, default=None, help="early-stopping patience (5)")
    g.add_argument("--rung-epochs", type=int, default=None,
                   help="the race's first rung: epochs before the worse half stops (3; 0: no "
                   "race, every configuration gets all its seeds)")  # fmt: skip
    g.add_argument("--refit-minutes", default=None, metavar="MINUTES",
                   help="the refit's time budget (default: the sweep's own timeout_minutes; "
                   "inf: none)")  # fmt: skip
    g.add_argument("--plan", action="store_true",
                   help="print the refit's plan (members, estimated seconds) and stop")  # fmt: skip


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "refit",
        help="retrain a sweep's top configurations at full fidelity over seeds (resumable)",
    )
    add_sweep_target(p, data=True)
    add_refit_options(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_refit)
