"""The ``jena`` command line. Every command takes ``--data`` and ``--help``.

Heavy imports (Keras, MLflow, Optuna) happen inside the commands, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .errors import JenaError

DATA_HELP = (
    "data source: 'jena' (the real CSV, downloaded once into $JENA_DATA_DIR or ~/.cache/jena), "
    "a path to a CSV in the Jena format, or 'synthetic[:ROWS[:SEED]]' (offline generator)"
)


def _console() -> Any:
    from rich.console import Console

    return Console()


def _add_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="jena", metavar="SOURCE", help=DATA_HELP)


def _add_preset(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--preset", default="book2", choices=("book2", "book1"),
        help="split/window preset: book2 (2nd ed.) or book1 (1st ed.) (default: book2)",
    )


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


# ---------------------------------------------------------------- data
def cmd_data_info(args: argparse.Namespace) -> int:
    from rich.table import Table

    from .data import info, load

    ds = load(args.data)
    report = info(ds)
    if args.json:
        _print_json(report)
        return 0
    con = _console()
    con.print(f"[bold]{ds.source}[/]  digest {ds.digest}")
    for line in ds.report.lines():
        con.print(f"  {line}")
    table = Table("column", "count", "mean", "std", "min", "max", title="per-column statistics")
    for name, st in report["columns"].items():
        table.add_row(
            name, str(st["count"]), *(f"{st[k]:.2f}" for k in ("mean", "std", "min", "max"))
        )
    con.print(table)
    return 0


def cmd_data_synth(args: argparse.Namespace) -> int:
    from .schema import write_jena_csv
    from .synthetic import generate, inject_defects

    frame = generate(rows=args.rows, seed=args.seed)
    if args.defects:
        frame = inject_defects(frame, seed=args.seed)
    path = write_jena_csv(frame, args.out)
    print(f"wrote {len(frame):,} rows to {path}" + (" (with injected defects)" if args.defects else ""))
    return 0


# ---------------------------------------------------------------- baseline
def cmd_baseline(args: argparse.Namespace) -> int:
    from rich.table import Table

    from .baseline import persistence
    from .data import load

    result = persistence(load(args.data), args.preset)
    if args.json:
        _print_json(result)
        return 0
    table = Table(
        "split", "windows", "persistence MAE (°C)",
        title=f"persistence baseline · {result['preset']} · {result['source']}",
    )
    table.add_row("val", f"{result['val_windows']:,}", f"{result['val_mae']:.4f}")
    table.add_row(
        "val (book's windows)", f"{result['val_book_windows']:,}", f"{result['val_book_mae']:.4f}"
    )
    table.add_row("test", f"{result['test_windows']:,}", f"{result['test_mae']:.4f}")
    _console().print(table)
    return 0


# ---------------------------------------------------------------- parser
Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jena",
        description="Hyperparameter sweeps and experiment tracking for 24-hour temperature "
        "forecasting on the Jena climate record.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    data = sub.add_parser("data", help="inspect or generate data")
    dsub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    p = dsub.add_parser("info", help="rows, time span, defects found and repaired, column statistics")
    _add_data(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=cmd_data_info)
    p = dsub.add_parser("synth", help="write the synthetic Jena-like record as a Jena-format CSV")
    p.add_argument("--out", required=True, type=Path, help="CSV file to write")
    p.add_argument("--rows", type=int, default=420_551, help="rows (default: 420,551 as the real file)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--defects", action="store_true", help="inject the real file's known defects")
    p.set_defaults(func=cmd_data_synth)

    p = sub.add_parser("baseline", help="persistence baseline MAE (°C) on validation and test")
    _add_data(p)
    _add_preset(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_baseline)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


_EXTRA_COMMANDS: list[Callable[[Any], None]] = []


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except JenaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
