"""`jena best` (the champion, once on the test split, registered), `jena predict`, `jena
report`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..evaluation import seeds_phrase
from ._common import add_sweep_target, console, print_json
from .refit import add_refit_options, plan_only, refit_board, refit_plan


def cmd_best(args: argparse.Namespace) -> int:
    """The refit (all the training; skipped with --no-refit), then the one look at the test
    split of its champion: the two composed here, neither calls the other."""
    from ..evaluate import evaluate_best, interval_levels
    from ..refit import refit
    from ..tracking import latest_sweep, resolve_uri

    experiment = args.experiment or latest_sweep(args.tracking_uri)
    levels = _levels(args.level)
    plan = None if args.no_refit else refit_plan(args, experiment)
    if args.plan:
        return plan_only(plan, args.json)
    # the sweep's levels before anything trains: a bad [champion] interval_level costs none
    levels = levels or interval_levels(resolve_uri(args.tracking_uri), experiment)
    refitted = None
    if plan is not None:
        with refit_board(plan, args.json) as board:
            refitted = refit(experiment, tracking_uri=args.tracking_uri, plan=plan, events=board)
    ev = evaluate_best(experiment, refitted, tracking_uri=args.tracking_uri, data=args.data,
                       register_name=args.register_name or None, alias=args.alias,
                       force=args.force, levels=levels)  # fmt: skip
    if args.json:
        worse = ev.test_verdict if ev.worse_than_persistence_on_test else None
        off = [c.verdict() for c in _off_nominal(ev)]
        for kind, line in (("warning", ev.warning), ("warning", worse), ("note", ev.seeds_note),
                           *(("warning", v) for v in off)):  # fmt: skip
            if line:
                print(f"{kind}: {line}", file=sys.stderr)
        print_json(ev.to_dict())
        return 0
    con = console()
    if ev.warning:
        con.print(f"[bold yellow]warning:[/] {ev.warning}")
    if ev.other_runs_evaluated:
        con.print(
            f"[yellow]note:[/] the test set of experiment {ev.experiment!r} was already used "
            f"{ev.other_runs_evaluated} time(s) by other runs"
        )
    con.print(_champion_table(ev))
    _print_evidence(ev, con)
    _print_refit_notes(ev, con)
    style = "bold red" if ev.worse_than_persistence_on_test else "bold"
    con.print(f"[{style}]{ev.test_verdict}[/]")
    _print_intervals(ev, con)
    con.print(
        f"test evaluation #{ev.evaluation} of this run recorded (metrics test_mae, "
        "test_skill, baseline_test_mae with _low/_high, test_dm_*, ridge_*, interval_*; tags "
        "test_evaluations, test_evaluated_at, interval_*)"
    )
    if ev.model_uri:
        con.print(f"registered {ev.registered_model} version {ev.version} as {ev.model_uri}")
    return 0


def _champion_table(ev: Any) -> Any:
    """The champion, its seeds, the ridge reference and persistence on validation and test
    (°C), with their 95 % intervals."""
    from rich.table import Table

    val_n = ev.val_vs_persistence.windows if ev.val_vs_persistence is not None else None
    caption = (
        "every row on the same "
        + (f"{val_n:,} validation and " if val_n else "")
        + f"{ev.test_windows:,} test targets · {ev.data_source} · run {ev.run_id} · "
        "[95 % interval]: a block bootstrap over whole days"
    )
    table = Table(title=f"champion of {ev.experiment!r} on the test split (°C)", caption=caption)
    for col in ("model", "val MAE", "test MAE", "test skill vs persistence"):
        table.add_column(col, no_wrap=col == "model")
    base = ev.baseline_test_mae
    val, test = ev.val_vs_persistence, ev.test_vs_persistence

    def skill(mae: float) -> str:
        return f"{1 - mae / base:+.1%}" if base else ""

    if ev.kind == "refit":
        seeds = seeds_phrase(len(ev.members))
        name = f"{ev.label}: {seeds} (the champion)"
    elif ev.kind == "ridge":
        name = f"{ev.architecture} (the champion)"
    else:
        name = f"{ev.label or 'trial ' + str(ev.trial)} (trial {ev.trial}, {ev.driver or '?'})"
    table.add_row(
        f"[bold]{name}[/]",
        f"{ev.val_mae:.4f}" if val is None else val.mae.text(".4f"),
        f"{ev.test_mae:.4f}" if test is None else test.mae.text(".4f"),
        skill(ev.test_mae) if test is None else test.skill.text("+.1%"),
    )
    best_seed = min(ev.members, key=lambda m: m["val_mae"])["seed"] if ev.members else None
    for m in ev.members:
        note = " (best validation)" if m["seed"] == best_seed else ""
        table.add_row(f"  seed {m['seed']}{note}", f"{m['val_mae']:.4f}",
                      f"{m['test_mae']:.4f}", skill(m["test_mae"]))  # fmt: skip
    ridge_val, ridge_test = ev.val_vs_ridge, ev.test_vs_ridge
    if ridge_test is not None:
        table.add_row(
            "ridge (linear reference)",
            "" if ridge_val is None else ridge_val.reference_mae.text(".4f"),
            ridge_test.reference_mae.text(".4f"),
            skill(ridge_test.reference_mae.estimate),
        )
    base_val = f"{ev.baseline_val_mae:.4f}" if ev.baseline_val_mae is not None else ""
    base_test = f"{base:.4f}" if test is None else test.reference_mae.text(".4f")
    base_val = base_val if val is None else val.reference_mae.text(".4f")
    table.add_row("persistence (same targets)", base_val, base_test, "0.0%")
    return table


def _print_evidence(ev: Any, con: Any) -> None:
    """The skill intervals and DM tests against persistence, a champion promoted by --force,
    and the champion against the linear reference."""
    for split, c in (("validation", ev.val_vs_persistence), ("test", ev.test_vs_persistence)):
        if c is not None:
            con.print(
                f"{split}: skill {c.skill.text('+.1%')} against persistence, DM "
                f"{c.dm.statistic:+.2f} (p = {c.dm.p_value:.2g}; negative: the champion's errors "
                f"are smaller), {c.days} days in blocks of {c.block_days}"
            )
    if ev.forced:
        con.print("[bold yellow]its validation interval includes zero: promoted only because "
                  "of --force[/]")  # fmt: skip
    if ev.ridge_note:
        con.print(f"[bold yellow]{ev.ridge_note}[/]")
    for line in ev.ridge_verdicts:
        worse = "WORSE" in line
        con.print(f"against the linear reference (ridge): {line}"
                  + (" — a deep model that cannot beat it has not earned its cost"
                     if worse else ""), style="bold yellow" if worse else None,
                  markup=False)  # fmt: skip


def _levels(given: list[str] | None) -> tuple[float, ...] | None:
    """``--level`` (repeatable, or comma-separated; 0.9 or 90), None: the sweep's setting."""
    if not given:
        return None
    from ..conformal import CalibrationError, parse_levels
    from ..errors import ConfigError

    items = [part for text in given for part in str(text).split(",") if part.strip()]
    try:
        return parse_levels(items, "--level")
    except CalibrationError as exc:
        raise ConfigError(str(exc)) from None


def _off_nominal(ev: Any) -> list[Any]:
    """The champion's intervals whose test coverage interval excludes the nominal level."""
    if not ev.intervals:
        return []
    found = [ev.intervals.get("champion", lv) for lv in ev.intervals.levels]
    return [c for c in found if c is not None and c.off_nominal]


def _print_intervals(ev: Any, con: Any) -> None:
    """The calibrated intervals on test: the champion's, the ridge's and persistence's on the
    same windows, coverage by season, and a coverage that misses its level said plainly."""
    check = ev.intervals
    if not check:
        return
    from rich.table import Table

    from ..conformal import SEASON_NAMES, percent

    main = check.champion
    table = Table(
        title=f"intervals on the test split, calibrated on validation ({main.windows:,} windows, "
        f"{main.days} days)",
        caption=f"champion's groups: {check.calibration} · [95 % interval]: block bootstrap over "
        "whole days",
    )
    for col in ("model", "level", "coverage", "mean width (°C)", *SEASON_NAMES):
        table.add_column(col, no_wrap=col == "model")
    for c in check.results:
        seasons = {s.season: f"{s.coverage.estimate:.1%}" for s in c.by_season}
        table.add_row(c.forecaster, percent(c.level), c.coverage.text(".1%"), f"{c.width:.2f}",
                      *(seasons.get(s, "") for s in SEASON_NAMES))  # fmt: skip
    con.print(table)
    ratio = check.sharper_than("persistence")
    if ratio is not None:
        con.print(f"the champion's {percent(main.level)} interval is {ratio:.0%} as wide as "
                  "persistence's on the same windows")  # fmt: skip
    for c in (check.get("champion", lv) for lv in check.levels):
        if c is not None:
            style = "bold red" if c.off_nominal else "bold"
            con.print(c.verdict(), style=style, markup=False, soft_wrap=True)


def _print_refit_notes(ev: Any, con: Any) -> None:
    """What the refit run of ``jena best`` did, and a champion of one seed said to be one."""
    if ev.refit_outcome:
        con.print(f"refit: {ev.refit_outcome}", markup=False, soft_wrap=True)
    if ev.seeds_note:
        con.print(f"note: {ev.seeds_note}", style="yellow", markup=False, soft_wrap=True)


def cmd_predict(args: argparse.Namespace) -> int:
    import pandas as pd
    from rich.table import Table

    from ..data import load
    from ..tracking import load_forecaster

    forecaster = load_forecaster(args.model, args.tracking_uri)
    ds = load(args.data)
    fc = forecaster.forecast(ds.frame, valid=ds.valid, source=ds.source)
    out = {"model": args.model, "data": ds.source, **fc.to_dict()}
    if args.json:
        print_json(out)
        return 0
    con = console()
    if fc.invalid_rows:
        con.print(
            f"[yellow]warning:[/] {fc.invalid_rows} rows of the window were filled in "
            "by the loader inside a long gap of the record"
        )
    from ..conformal import percent

    hours = (fc.target_time - fc.last_time) / pd.Timedelta(hours=1)
    title = f"{hours:g}-hour forecast · {args.model} · {ds.source}"
    table = Table("", "time", "T (°C)", title=title)
    table.add_row("last record", f"{fc.last_time:%Y-%m-%d %H:%M}", f"{fc.persistence:.2f}")
    table.add_row(
        "[bold]forecast[/]",
        f"[bold]{fc.target_time:%Y-%m-%d %H:%M}[/]",
        f"[bold]{fc.forecast:.2f}[/]",
    )
    table.add_row(
        "persistence (last T)", f"{fc.target_time:%Y-%m-%d %H:%M}", f"{fc.persistence:.2f}"
    )
    con.print(table)
    line = f"forecast {fc.forecast:.1f} °C"
    for level, low, high in fc.intervals:
        line += f", {percent(level)} interval [{low:.1f}, {high:.1f}]"
    if not fc.intervals:
        line += " (this model carries no interval calibration: run `jena best` again for one)"
    con.print(line, markup=False, soft_wrap=True)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ..report import write_report
    from ..tracking import latest_sweep

    result = write_report(
        args.experiment or latest_sweep(args.tracking_uri),
        out=args.out,
        tracking_uri=args.tracking_uri,
        log=not args.no_log,
    )
    print(f"wrote {result.html}")
    for note in result.notes:
        print(f"  note: {note}")
    if result.logged_to:
        print(f"logged to run {result.logged_to} (artifacts report/)")
    return 0


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "best",
        help="evaluate a sweep's best model once on the test split; "
        "register it (models:/jena-temperature@champion)",
    )
    add_sweep_target(p, data=True)
    p.add_argument(
        "--register-name",
        default="jena-temperature",
        help="registered model name (default: jena-temperature; '' skips the registry)",
    )
    p.add_argument("--alias", default="champion", help="registry alias (default: champion)")
    p.add_argument(
        "--force",
        action="store_true",
        help="evaluate and register the best model even if it does not beat persistence",
    )
    p.add_argument(
        "--no-refit",
        action="store_true",
        help="the best low-fidelity trial's own model instead of the refit champion",
    )
    p.add_argument(
        "--level",
        action="append",
        metavar="LEVEL",
        help="the central interval's level, 0.9 or 90 (repeat or comma-separate for several; "
        "the first is the main one; default: the sweep's [champion] interval_level, else 90)",
    )
    add_refit_options(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_best)

    p = sub.add_parser("predict", help="forecast the temperature 24 h after the last row of a CSV")
    p.add_argument(
        "--model",
        default="models:/jena-temperature@champion",
        help="models:/NAME@ALIAS, models:/NAME/VERSION or runs:/RUN_ID[/PATH] "
        "(default: models:/jena-temperature@champion)",
    )
    p.add_argument(
        "--data",
        required=True,
        metavar="FILE.csv",
        help="the last days of records in the Jena CSV format",
    )
    p.add_argument("--tracking-uri", default=None, help="MLflow tracking URI")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("report", help="write an HTML report of a sweep (figures, leaderboard)")
    add_sweep_target(p)
    p.add_argument("--out", default=None, type=Path, help="output folder (default: reports/NAME)")
    p.add_argument(
        "--no-log",
        action="store_true",
        help="do not log the report to the sweep's latest parent run",
    )
    p.set_defaults(func=cmd_report)
