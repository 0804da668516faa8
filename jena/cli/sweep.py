"""`jena sweep`: run or resume a sweep with its live board, then print its summary."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import Any

from ._common import DATA_HELP, PRESET_DEFAULT, PRESET_HELP, console, preset_type, print_json


def cmd_sweep(args: argparse.Namespace) -> int:
    from sweeps import apply_flags, apply_overrides, load, run_sweep

    cfg = load(args.sweep)
    if args.set:
        cfg = apply_overrides(cfg, list(args.set))
    cfg = apply_flags(cfg, {  # the flags win over --set
        "--trials": ("trials", args.trials),
        "--data": ("data.source", args.data),
        "--preset": ("data.preset", args.preset),
        "--workers": ("workers", args.workers),
        "--timeout-minutes": ("timeout_minutes", args.timeout_minutes),
        "--name": ("name", args.name),
        "--tracking-uri": ("storage.tracking_uri", args.tracking_uri),
        "--storage": ("storage.optuna", args.storage),
        "--warm-start": ("space.warm_start", args.warm_start),
    })  # fmt: skip
    con = console(stderr=True)
    summary = run_sweep(cfg, _ConsoleView(con))
    print_sweep(summary, con)
    if args.json:
        print_json(summary.to_dict())
    return 0


class _ConsoleView:
    """A sweep on the terminal: its notes, then the live board while trials run."""

    def __init__(self, console: Any) -> None:
        self.console = console

    def note(self, line: str) -> None:
        self.console.print(line, markup=False, soft_wrap=True)

    @contextlib.contextmanager
    def watch(self, state: Any) -> Iterator[None]:
        from ..board import Board

        try:
            with Board(state).live(self.console):
                yield
        finally:
            self.console.print()  # the display's last line ends before anything else is said


def print_sweep(summary: Any, con: Any) -> None:
    """The end of a sweep: its top trials, why it ended, notes, the time spent, the UI link."""
    from ..board import fmt_time, summary_table

    if summary.complete:
        con.print(f"sweep {summary.experiment!r} is complete: {summary.finished} of "
                  f"{summary.total} trials (nothing to run, no run created). Raise the total "
                  "(--trials N) to search more.")  # fmt: skip
    title = f"top trials of experiment {summary.experiment!r}"
    if summary.val_targets:
        title += f" (val MAE on the same {summary.val_targets:,} validation targets)"
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
    from ..tracking import is_remote

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


def add_commands(sub: Any) -> None:
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
    p.add_argument("--preset", default=None, type=preset_type, metavar="PRESET",
                   help=f"{PRESET_HELP} (overrides the file's [data] preset; its 'auto' or none: "
                   f"{PRESET_DEFAULT}; a sweep keeps the split it started with)")  # fmt: skip
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
