"""The ``jena`` command line. Every command takes ``--data`` and ``--help``.

Heavy imports (Keras, MLflow, Optuna) happen inside the commands, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .errors import JenaError

DATA_HELP = (
    "data source: 'jena' (the real CSV, downloaded once into $JENA_DATA_DIR or ~/.cache/jena), "
    "a path to a CSV in the Jena format, or 'synthetic[:ROWS[:SEED]]' (offline generator)"
)


def _console(stderr: bool = False) -> Any:
    """A rich console; piped to a file (no terminal width to respect) it is wide enough that
    tables keep whole names."""
    from rich.console import Console

    con = Console(stderr=stderr)
    return con if con.is_terminal else Console(stderr=stderr, width=160)


def _add_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="jena", metavar="SOURCE", help=DATA_HELP)


PRESET_HELP = (
    "split/window preset: book2 (2nd ed., rows 50/25/25), book1 (1st ed.) or "
    "blocked[:DAYS[:ROLES]] (DAYS-day blocks, default 14, in the rotation ROLES, default "
    "train,train,val,test: every split in every season; for records under about three years)"
)


def _preset(text: str) -> str:
    """--preset's type: a preset name (jena.splits.get_preset), one line naming the bad part."""
    from .errors import ConfigError
    from .splits import get_preset

    try:
        return get_preset(text).name
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_preset(p: argparse.ArgumentParser, default: str | None = "book2") -> None:
    p.add_argument(
        "--preset",
        default=default,
        type=_preset,
        metavar="PRESET",
        help=PRESET_HELP
        + (f" (default: {default})" if default else " (default: the model's edition, else book2)"),
    )


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


# ---------------------------------------------------------------- data
def cmd_data_info(args: argparse.Namespace) -> int:
    from rich.table import Table

    from .data import info, load
    from .splits import DATA_PRESETS, season_note, split_seasons

    ds = load(args.data)
    report = info(ds)
    index = ds.frame.index
    splits: dict[str, dict[str, Any]] = {}
    for name, preset in DATA_PRESETS.items():
        bounds = preset.bounds(len(ds))
        splits[name] = {
            "bounds": bounds.to_dict(),
            "rows": {s: bounds.rows(s) for s in ("train", "val", "test")},
            "seasons": split_seasons(bounds, index),
            "bounds_scaled": preset.bounds_scaled(len(ds)),
            "bounds_note": preset.bounds_note(len(ds)),
            "season_note": season_note(preset, index),
        }
    if args.json:
        _print_json({**report, "splits": splits})
        return 0
    con = _console()
    con.print(f"[bold]{ds.source}[/]  digest {ds.digest}")
    for line in ds.report.lines():
        con.print(f"  {line}")
    for name, split in splits.items():
        b, rows = split["bounds"], split["rows"]
        if DATA_PRESETS[name].blocked:
            p = DATA_PRESETS[name]
            con.print(
                f"  {name} split: {p.block_days}-day blocks in rotation {', '.join(p.roles)}: "
                f"train {len(b['train'])} segments, {rows['train']:,} rows; val "
                f"{len(b['val'])}, {rows['val']:,} rows; test {len(b['test'])}, "
                f"{rows['test']:,} rows (other block lengths and rotations: --preset "
                "blocked:DAYS:ROLES)"
            )
        else:
            con.print(
                f"  {name} split: train rows {b['train'][0]:,}–{b['train'][1]:,}, val "
                f"{b['val'][0]:,}–{b['val'][1]:,}, test {b['test'][0]:,}–{b['test'][1]:,}"
            )
        seasons = split["seasons"]
        con.print(
            "    seasons: "
            + "; ".join(f"{s} {', '.join(seasons[s]) or '—'}" for s in ("train", "val", "test"))
        )
        for key in ("bounds_note", "season_note"):
            if split[key]:
                con.print(f"    [yellow]note:[/] {split[key]}")
    table = Table("column", "count", "mean", "std", "min", "max", title="per-column statistics")
    for name, st in report["columns"].items():
        table.add_row(
            name, str(st["count"]), *(f"{st[k]:.2f}" for k in ("mean", "std", "min", "max"))
        )
    con.print(table)
    return 0


def cmd_data_synth(args: argparse.Namespace) -> int:
    from .errors import ConfigError
    from .schema import write_jena_csv
    from .synthetic import generate, inject_defects

    if args.rows < 1:
        raise ConfigError(f"--rows must be at least 1, got {args.rows}")
    frame = generate(rows=args.rows, seed=args.seed)
    if args.defects:
        try:
            frame = inject_defects(frame, seed=args.seed)
        except ValueError as exc:
            raise ConfigError(f"--defects: {exc} (use more --rows)") from None
    path = write_jena_csv(frame, args.out)
    print(
        f"wrote {len(frame):,} rows to {path}"
        + (" (with injected defects)" if args.defects else "")
    )
    return 0


# ---------------------------------------------------------------- baseline
def cmd_baseline(args: argparse.Namespace) -> int:
    from rich.table import Table

    from .baseline import persistence
    from .data import load
    from .uncertainty import Interval

    result = persistence(load(args.data), args.preset, ridge=True)
    if args.json:
        _print_json(result)
        return 0
    ridge = result["ridge"]
    table = Table(
        "split",
        "windows",
        "persistence MAE (°C)",
        "ridge MAE (°C)",
        "ridge skill [95 %]",
        title=f"persistence and the linear reference · {result['preset']} · {result['source']}",
        caption="ridge: linear regression on the last 24 h of hourly inputs + day/year cycles, "
        "predicting the change, fitted on the training windows; [95 %]: a day-block bootstrap",
    )
    for split in ("val", "test"):
        c = ridge[split]["comparison"]
        table.add_row(
            split,
            f"{result[f'{split}_windows']:,}",
            Interval(**c["reference_mae"]).text(".4f"),
            Interval(**c["mae"]).text(".4f"),
            Interval(**c["skill"]).text("+.1%"),
        )
        if split == "val" and result["val_book_windows"] != result["val_windows"]:
            table.add_row("val (book's windows)", f"{result['val_book_windows']:,}",
                          f"{result['val_book_mae']:.4f}", "", "")  # fmt: skip
    if result["test_book_windows"] != result["test_windows"]:
        table.add_row("test (book's procedure)", f"{result['test_book_windows']:,}",
                      f"{result['test_book_mae']:.4f}", "", "")  # fmt: skip
    con = _console()
    con.print(table)
    for key in ("bounds_note", "season_note"):
        if result[key]:
            con.print(f"[yellow]note:[/] {result[key]}")
    return 0


# ---------------------------------------------------------------- train, space
def trial_config_from_args(args: argparse.Namespace) -> tuple[Any, str]:
    """(TrialConfig, data preset) from --model / --config / --set."""
    import dataclasses
    import tomllib

    from .book import book_model
    from .config import TrialConfig
    from .errors import ConfigError
    from .space import SPACE
    from .typed import parse_value

    data_preset = args.preset
    if args.model and args.config:
        raise ConfigError("give --model or --config, not both")
    if args.model:
        book = book_model(args.model)
        config = book.config
        data_preset = data_preset or book.data
    elif args.config:
        path = Path(args.config)
        try:
            text = path.read_text(encoding="utf-8")
            raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such configuration file") from None
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(
                f"{path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {exc}"
            ) from None
        try:
            config = TrialConfig.from_dict(raw).validate()
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    else:
        config = TrialConfig()
    fields = {f.name for f in dataclasses.fields(TrialConfig)}
    direct: dict[str, Any] = {}
    search: dict[str, Any] = {}
    for item in args.set or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set units=32")
        key, text = (part.strip() for part in item.split("=", 1))
        value = parse_value(text)
        if key in SPACE.names and (key not in fields or not isinstance(value, list)):
            search[key] = value
        elif key in fields:
            direct[key] = tuple(value) if isinstance(value, list) else value
        else:
            raise ConfigError(f"--set {key}: not a hyperparameter (see `jena space`)")
    if search:
        config = SPACE.to_config(search, config)
    if direct:
        config = TrialConfig.from_dict({**config.to_dict(), **direct})
    if args.seed is not None:
        config = config.replace(seed=args.seed)
    return config.validate(), data_preset or "book2"


def cmd_train(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from .data import load
    from .train import DataCache, Fidelity, train

    config, data_preset = trial_config_from_args(args)
    fidelity = Fidelity(
        max_epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        validation_steps=args.validation_steps,
        patience=args.patience,
    )
    con = _console(stderr=args.json)  # with --json, stdout holds the JSON alone
    ds = load(args.data)
    cache = DataCache(ds, data_preset)
    con.print(
        f"[bold]{args.model or 'config'}[/] · {config.architecture} · {ds.source} · {data_preset}"
    )
    with Progress(
        TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=con,
        transient=False,
    ) as progress:
        task = progress.add_task("train", total=None, epoch=1, epochs=args.epochs, info="")

        def on_batch(batch: int, total: int) -> None:
            progress.update(task, completed=batch, total=total or None)

        def on_epoch(epoch: int, m: dict[str, float]) -> None:
            info = f"mae {m['mae']:.3f}  val_mae {m['val_mae']:.3f} °C"
            con.print(f"epoch {epoch:>3}  loss {m['loss']:.4f}  {info}")
            progress.update(task, epoch=min(epoch + 1, args.epochs), completed=0, info=info)

        result = train(config, cache, fidelity, on_epoch=on_epoch, on_batch=on_batch)
    if args.json:
        out = {
            k: getattr(result, k)
            for k in (
                "state",
                "val_mae",
                "baseline_val_mae",
                "best_epoch",
                "param_count",
                "duration_s",
                "reason",
                "history",
            )
        }
        out["val_skill"] = result.val_skill
        out["config"] = config.to_dict()
        _print_json(out)
        return 0 if result.state != "failed" else 1
    table = Table(
        "",
        "val MAE (°C)",
        "skill vs persistence",
        title=f"{result.state} in {result.duration_s:.0f} s",
    )
    if result.val_mae is not None:
        table.add_row(
            f"model (best epoch {result.best_epoch}, {result.param_count:,} params)",
            f"{result.val_mae:.4f}",
            f"{result.val_skill:+.1%}",
        )
    table.add_row("persistence (same windows)", f"{result.baseline_val_mae:.4f}", "0.0%")
    con.print(table)
    if result.state == "failed":
        con.print(f"[red]failed:[/] {result.reason}")
        return 1
    return 0


def cmd_space(args: argparse.Namespace) -> int:
    from rich.table import Table

    from .space import describe

    rows = describe()
    if args.json:
        _print_json(rows)
        return 0
    table = Table(title="the search space (one definition; both drivers translate it)")
    longest = max(len(str(r["name"])) for r in rows)
    table.add_column("name", no_wrap=True, min_width=longest)  # names are never cut
    for col in ("type", "range / choices", "scale", "default", "active when", "help"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            str(r["name"]),
            str(r["type"]),
            str(r["range"]),
            str(r["scale"]),
            str(r["default"]),
            str(r["condition"] or "always"),
            str(r["help"]),
        )
    con = _console()
    con.print(table)
    from .book import BOOK_MODELS
    from .models import count_params

    presets = Table(title="named book models (jena train --model NAME)")
    presets.add_column("model", no_wrap=True, min_width=max(map(len, BOOK_MODELS)))
    for col in ("edition", "architecture", "params (14 features)", "epochs"):
        presets.add_column(col, overflow="fold")
    for name, book in BOOK_MODELS.items():
        cfg = book.config
        presets.add_row(
            name,
            book.data,
            cfg.architecture,
            f"{count_params(cfg, (cfg.sequence_length, 14)):,}",
            str(book.epochs),
        )
    con.print(presets)
    return 0


# ---------------------------------------------------------------- sweep
def cmd_sweep(args: argparse.Namespace) -> int:
    from sweeps import apply_flags, apply_overrides, load, run_sweep

    cfg = load(args.sweep)
    if args.set:
        cfg = apply_overrides(cfg, list(args.set))
    cfg = apply_flags(cfg, {  # the flags win over --set
        "--trials": ("trials", args.trials),
        "--data": ("data.source", args.data),
        "--workers": ("workers", args.workers),
        "--timeout-minutes": ("timeout_minutes", args.timeout_minutes),
        "--name": ("name", args.name),
        "--tracking-uri": ("storage.tracking_uri", args.tracking_uri),
        "--storage": ("storage.optuna", args.storage),
        "--warm-start": ("space.warm_start", args.warm_start),
    })  # fmt: skip
    con = _console(stderr=True)
    summary = run_sweep(cfg, _ConsoleView(con))
    print_sweep(summary, con)
    if args.json:
        _print_json(summary.to_dict())
    return 0


class _ConsoleView:
    """A sweep on the terminal: its notes, then the live board while trials run."""

    def __init__(self, console: Any) -> None:
        self.console = console

    def note(self, line: str) -> None:
        self.console.print(line, markup=False, soft_wrap=True)

    @contextlib.contextmanager
    def watch(self, state: Any) -> Iterator[None]:
        from sweeps.display import Board

        try:
            with Board(state).live(self.console):
                yield
        finally:
            self.console.print()  # the display's last line ends before anything else is said


def print_sweep(summary: Any, con: Any) -> None:
    """The end of a sweep: its top trials, why it ended, notes, the time spent, the UI link."""
    from sweeps.display import fmt_time, summary_table

    if summary.complete:
        con.print(f"sweep {summary.experiment!r} is complete: {summary.finished} of "
                  f"{summary.total} trials (nothing to run, no run created). Raise the total "
                  "(--trials N) to search more.")  # fmt: skip
    title = f"top trials of experiment {summary.experiment!r}"
    con.print(summary_table(summary.top, summary.baseline_val_mae, summary.reference_val_mae,
                            title))  # fmt: skip
    if summary.advice:
        con.print(f"note: {summary.advice}", style="bold yellow", markup=False)
    _print_ui_link(summary, con)
    if summary.complete:
        return
    con.print(f"ended: {summary.stop_reason}")
    for note in summary.notes:
        con.print(f"  {note}")
    t = summary.timing
    share = 1 - t.outside_fit_fraction
    if summary.workers == 1:
        spent = f"{t.fit_s:.0f} s in model.fit ({share:.0%})"
    else:
        spent = (f"{t.fit_s:.0f} s in model.fit = {share:.0%} of the {summary.workers} workers' "
                 f"{t.workers_wall_s:.0f} s")  # fmt: skip
    con.print(f"this run: {fmt_time(t.wall_s)} wall, {spent}; parent run {summary.parent_run_id}")


def _print_ui_link(summary: Any, con: Any) -> None:
    from .tracking import is_remote

    uri = summary.tracking_uri
    if uri.startswith("sqlite:///"):
        command = f"nox -s ui   (or: mlflow ui --backend-store-uri {uri})"
        host = "http://127.0.0.1:5000"
    elif is_remote(uri):
        command, host = "", uri.rstrip("/")
    else:
        command, host = f"mlflow ui --backend-store-uri {uri}", "http://127.0.0.1:5000"
    if command:
        con.print(f"Open the MLflow UI:  {command}", markup=False, soft_wrap=True)
    con.print(f"then the trials, best first:  {host}/{summary.runs_page}", markup=False,
              soft_wrap=True)  # fmt: skip


# ---------------------------------------------------------------- best, predict, report
def _refit_settings(args: argparse.Namespace, experiment: str) -> Any:
    """``[refit]`` of the sweep with the flags; a bad flag is one line naming it."""
    from .errors import ConfigError
    from .refit import RefitSettings

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


def _refit_plan(args: argparse.Namespace, experiment: str) -> Any:
    """The refit's plan, printed before anything trains (on stderr with --json)."""
    from .refit import plan_refit

    settings = _refit_settings(args, experiment)
    plan = plan_refit(experiment, tracking_uri=args.tracking_uri, settings=settings,
                      data=args.data)  # fmt: skip
    con = _console(stderr=args.json)
    for line in plan.lines():
        con.print(line, markup=False, soft_wrap=True)
    if not args.plan:
        plan.check_budget()  # no seed can finish within the budget: say so before the board
    return plan


def _plan_only(plan: Any, as_json: bool) -> int:
    """``--plan``: the plan is printed already (its JSON too with ``--json``); stop."""
    if plan is None:
        from .errors import ConfigError

        raise ConfigError("--plan: there is no refit to plan with --no-refit")
    if as_json:
        _print_json(plan.to_dict())
    return 0


@contextlib.contextmanager
def _refit_board(plan: Any, quiet: bool) -> Iterator[Any]:
    """The live display of a refit (on stderr): elapsed, and remaining by the plan's estimate
    within the budget; nothing when ``quiet`` or nothing is to train."""
    if quiet or plan is None or not plan.members:
        yield None
        return
    import time

    from sweeps.display import Board
    from sweeps.state import SweepState

    class RefitState(SweepState):
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
    console = _console(stderr=True)
    try:
        with Board(state).live(console):
            yield state
    finally:
        console.print()  # the board's last line ends before anything else is said


def cmd_refit(args: argparse.Namespace) -> int:
    from rich.table import Table

    from .refit import refit
    from .tracking import latest_sweep

    experiment = args.experiment or latest_sweep(args.tracking_uri)
    plan = _refit_plan(args, experiment)
    if args.plan:
        return _plan_only(plan, args.json)
    with _refit_board(plan, args.json) as board:
        result = refit(experiment, tracking_uri=args.tracking_uri, plan=plan, events=board)
    if args.json:
        _print_json(result.to_dict())
        return 0
    table = Table(title=f"refit of {experiment!r}: validation MAE (°C) over seeds")
    for col in ("configuration", "sweep val MAE", "seeds", "mean", "± std", "per seed"):
        table.add_column(col, no_wrap=col == "configuration")
    from .errors import ConfigError

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
    con = _console()
    con.print(table)
    _print_refit_outcome(result, con)
    return 0


def _print_refit_outcome(result: Any, con: Any) -> None:
    """What the refit did now, its cost against the plan's estimate, why configurations
    stopped, and what is left."""
    from .errors import ConfigError

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


def cmd_best(args: argparse.Namespace) -> int:
    from rich.table import Table

    from .evaluate import evaluate_best
    from .tracking import latest_sweep

    experiment = args.experiment or latest_sweep(args.tracking_uri)
    plan = None if args.no_refit else _refit_plan(args, experiment)
    if args.plan:
        return _plan_only(plan, args.json)
    with _refit_board(plan, args.json) as board:
        ev = evaluate_best(
            experiment,
            tracking_uri=args.tracking_uri,
            data=args.data,
            register_name=args.register_name or None,
            alias=args.alias,
            force=args.force,
            refit=not args.no_refit,
            events=board,
            plan=plan,
        )
    if args.json:
        if ev.warning:
            print(f"warning: {ev.warning}", file=sys.stderr)
        if ev.worse_than_persistence_on_test:
            print(f"warning: {ev.test_verdict}", file=sys.stderr)
        if ev.seeds_note:
            print(f"note: {ev.seeds_note}", file=sys.stderr)
        _print_json(ev.to_dict())
        return 0
    con = _console()
    if ev.warning:
        con.print(f"[bold yellow]warning:[/] {ev.warning}")
    if ev.other_runs_evaluated:
        con.print(
            f"[yellow]note:[/] the test set of experiment {ev.experiment!r} was already used "
            f"{ev.other_runs_evaluated} time(s) by other runs"
        )
    title = f"champion of {ev.experiment!r} on the test split (°C)"
    caption = (
        f"{ev.test_windows:,} test windows · {ev.data_source} · run {ev.run_id} · "
        "[95 % interval]: a block bootstrap over whole days"
    )
    table = Table(title=title, caption=caption)
    for col in ("model", "val MAE", "test MAE", "test skill vs persistence"):
        table.add_column(col, no_wrap=col == "model")
    base = ev.baseline_test_mae
    val, test = ev.val_vs_persistence, ev.test_vs_persistence

    def skill(mae: float) -> str:
        return f"{1 - mae / base:+.1%}" if base else ""

    if ev.kind == "refit":
        seeds = "1 seed only" if len(ev.members) == 1 else f"{len(ev.members)} seeds averaged"
        name = f"{ev.label}: {seeds} (the champion)"
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
    table.add_row("persistence (same windows)", base_val, base_test, "0.0%")
    con.print(table)
    for split, c in (("validation", val), ("test", test)):
        if c is not None:
            con.print(
                f"{split}: skill {c.skill.text('+.1%')} against persistence, DM "
                f"{c.dm.statistic:+.2f} (p = {c.dm.p_value:.2g}; negative: the champion's errors "
                f"are smaller), {c.days} days in blocks of {c.block_days}"
            )
    if ev.forced:
        con.print("[bold yellow]its validation interval includes zero: promoted only because "
                  "of --force[/]")  # fmt: skip
    if ridge_val is not None:
        verdict = "beats" if ridge_val.beats_reference else "does not clearly beat"
        con.print(
            f"against the linear reference (ridge) on validation: the champion {verdict} it, "
            f"skill {ridge_val.skill.text('+.1%')} (a deep model that cannot beat it has not "
            "earned its cost)"
        )
    _print_refit_notes(ev, con)
    style = "bold red" if ev.worse_than_persistence_on_test else "bold"
    con.print(f"[{style}]{ev.test_verdict}[/]")
    con.print(
        f"test evaluation #{ev.evaluation} of this run recorded (metrics test_mae, "
        "test_skill, baseline_test_mae with _low/_high, test_dm_*, ridge_*; tags "
        "test_evaluations, test_evaluated_at)"
    )
    if ev.model_uri:
        con.print(f"registered {ev.registered_model} version {ev.version} as {ev.model_uri}")
    return 0


def _print_refit_notes(ev: Any, con: Any) -> None:
    """What the refit run of ``jena best`` did, and a champion of one seed said to be one."""
    if ev.refit_outcome:
        con.print(f"refit: {ev.refit_outcome}", markup=False, soft_wrap=True)
    if ev.seeds_note:
        con.print(f"note: {ev.seeds_note}", style="yellow", markup=False, soft_wrap=True)


def cmd_predict(args: argparse.Namespace) -> int:
    import pandas as pd
    from rich.table import Table

    from .data import load
    from .tracking import load_forecaster

    forecaster = load_forecaster(args.model, args.tracking_uri)
    ds = load(args.data)
    fc = forecaster.forecast(ds.frame, valid=ds.valid, source=ds.source)
    out = {"model": args.model, "data": ds.source, **fc.to_dict()}
    if args.json:
        _print_json(out)
        return 0
    con = _console()
    if fc.invalid_rows:
        con.print(
            f"[yellow]warning:[/] {fc.invalid_rows} rows of the window were filled in "
            "by the loader inside a long gap of the record"
        )
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
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from sweeps.optuna import search_plots

    from .report import write_report
    from .tracking import latest_sweep

    result = write_report(
        args.experiment or latest_sweep(args.tracking_uri),
        out=args.out,
        tracking_uri=args.tracking_uri,
        storage=args.storage,
        log=not args.no_log,
        search=search_plots,
    )
    print(f"wrote {result.html}")
    for note in result.notes:
        print(f"  note: {note}")
    if result.logged_to:
        print(f"logged to run {result.logged_to} (artifacts report/)")
    return 0


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jena",
        description="Hyperparameter sweeps and experiment tracking for 24-hour temperature "
        "forecasting on the Jena climate record.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    data = sub.add_parser("data", help="inspect or generate data")
    dsub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    p = dsub.add_parser(
        "info", help="rows, time span, defects found and repaired, column statistics"
    )
    _add_data(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=cmd_data_info)
    p = dsub.add_parser("synth", help="write the synthetic Jena-like record as a Jena-format CSV")
    p.add_argument("--out", required=True, type=Path, help="CSV file to write")
    p.add_argument(
        "--rows", type=int, default=420_551, help="rows (default: 420,551 as the real file)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--defects", action="store_true", help="inject the real file's known defects")
    p.set_defaults(func=cmd_data_synth)

    p = sub.add_parser("baseline", help="persistence baseline MAE (°C) on validation and test")
    _add_data(p)
    _add_preset(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_baseline)

    _add_model_commands(sub)
    _add_eval_commands(sub)
    return parser


def _add_model_commands(sub: Any) -> None:
    p = sub.add_parser("train", help="train one configuration; print val MAE next to the baseline")
    p.add_argument("--model", help="a named book model (listed by `jena space`)")
    p.add_argument("--config", help="a TOML or JSON file of hyperparameters")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a hyperparameter (repeatable), e.g. --set units=32",
    )
    _add_data(p)
    _add_preset(p, default=None)
    p.add_argument("--epochs", type=int, default=10, help="maximum epochs (default: 10)")
    p.add_argument("--steps-per-epoch", type=int, default=None, help="training batches per epoch")
    p.add_argument("--validation-steps", type=int, default=None, help="validation batches")
    p.add_argument("--patience", type=int, default=3, help="early-stopping patience (default: 3)")
    p.add_argument("--seed", type=int, default=None, help="random seed")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("space", help="print the search space (names, ranges, conditions)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_space)

    p = sub.add_parser(
        "sweep", help="run or resume a sweep (Optuna or Keras Tuner), tracked in MLflow"
    )
    p.add_argument(
        "sweep",
        nargs="?",
        default="default",
        help="sweep file, or the name of one in sweeps/ (default: default)",
    )
    p.add_argument(
        "--data", default=None, metavar="SOURCE", help=DATA_HELP + " (overrides the file)"
    )
    p.add_argument("--trials", type=int, default=None, help="total trials (over all invocations)")
    p.add_argument("--workers", type=int, default=None, help="worker processes on this machine")
    p.add_argument("--timeout-minutes", type=float, default=None, help="time budget of this run")
    p.add_argument("--name", default=None, help="sweep (= MLflow experiment, Optuna study) name")
    p.add_argument("--tracking-uri", default=None, help="MLflow tracking URI")
    p.add_argument(
        "--storage",
        default=None,
        help="Optuna storage: journal:PATH, sqlite:///PATH, postgresql://..., memory",
    )
    p.add_argument(
        "--warm-start",
        default=None,
        metavar="book|SWEEP",
        help="start a new sweep from the book's models, or from another sweep's finished trials",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a sweep-file key (fidelity.max_epochs=2) or fix a hyperparameter (units=32)",
    )
    p.add_argument("--json", action="store_true", help="also print the summary as JSON")
    p.set_defaults(func=cmd_sweep)


def _add_sweep_target(p: argparse.ArgumentParser, *, data: bool = False) -> None:
    """--experiment (default: the latest sweep) and --tracking-uri (and --data)."""
    p.add_argument(
        "--experiment",
        default=None,
        help="sweep (MLflow experiment) name (default: the most recently run sweep)",
    )
    p.add_argument("--tracking-uri", default=None, help="MLflow tracking URI")
    if data:
        p.add_argument(
            "--data",
            default=None,
            metavar="SOURCE",
            help=DATA_HELP + " (default: the data source recorded on the sweep's runs)",
        )


def _add_refit_options(p: argparse.ArgumentParser) -> None:
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


def _add_eval_commands(sub: Any) -> None:
    p = sub.add_parser(
        "best",
        help="evaluate a sweep's best model once on the test split; "
        "register it (models:/jena-temperature@champion)",
    )
    _add_sweep_target(p, data=True)
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
    _add_refit_options(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_best)

    p = sub.add_parser(
        "refit",
        help="retrain a sweep's top configurations at full fidelity over seeds (resumable)",
    )
    _add_sweep_target(p, data=True)
    _add_refit_options(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_refit)

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
    _add_sweep_target(p)
    p.add_argument("--out", default=None, type=Path, help="output folder (default: reports/NAME)")
    p.add_argument(
        "--storage",
        default=None,
        help="Optuna storage of the sweep (default: journal:mlruns/optuna/NAME.journal)",
    )
    p.add_argument(
        "--no-log",
        action="store_true",
        help="do not log the report to the sweep's latest parent run",
    )
    p.set_defaults(func=cmd_report)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from . import signals

    # SIGTERM, SIGINT, SIGHUP end a command like Ctrl-C: runs close in a terminal state, a
    # sweep's workers stop too; exit 128 + the signal's number (a second one: at once)
    with signals.stop_on_signals():
        try:
            if args.command != "data":
                from .quiet import import_keras_quietly

                import_keras_quietly()
            return int(args.func(args))
        except JenaError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as exc:
            return signals.say(exc)


if __name__ == "__main__":
    sys.exit(main())
