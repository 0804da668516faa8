"""`jena data info`, `jena data synth`, `jena baseline`: the record and its baselines."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._common import add_data, add_preset, chosen_preset, console, print_json


def cmd_data_info(args: argparse.Namespace) -> int:
    from rich.table import Table

    from ..data import info, load
    from ..splits import DATA_PRESETS, season_note, split_seasons

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
    stats = _difficulty(ds) if args.stats else None
    if args.json:
        extra = {"difficulty": stats.to_dict()} if stats else {}
        print_json({**report, "splits": splits, **extra})
        return 0
    con = console()
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
    if stats:
        difficulty = Table(
            "statistic (T)", "this record", "real 2020 (Jena roof)",
            title="how hard to forecast (jena.difficulty)",
            caption="24-h change: T 24 h later minus T now, every row; daily: calendar-day means; "
            "ridge skill: 1 − MAE / persistence MAE [95 %]",
        )  # fmt: skip
        for row in stats.rows_table():
            difficulty.add_row(*row)
        con.print(difficulty)
    return 0


def _difficulty(ds: Any) -> Any:
    """:func:`jena.difficulty.difficulty`, a record too short for the statistics a one-line
    DataError."""
    from ..difficulty import difficulty
    from ..errors import DataError

    try:
        return difficulty(ds)
    except ValueError as exc:
        raise DataError(f"--stats on {ds.source}: {exc}") from None


def cmd_data_synth(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..schema import write_jena_csv
    from ..synthetic import generate, inject_defects

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


def cmd_baseline(args: argparse.Namespace) -> int:
    from rich.table import Table

    from ..baseline import persistence
    from ..data import load
    from ..uncertainty import Interval

    ds = load(args.data)
    preset, why = chosen_preset(args.preset, ds.frame.index)
    result = {**persistence(ds, preset, ridge=True).to_dict(), "preset_note": why}
    if args.json:
        print_json(result)
        return 0
    ridge = result["ridge"]
    table = Table(
        "split",
        "targets",
        "persistence MAE (°C)",
        "ridge MAE (°C)",
        "ridge skill [95 %]",
        title=f"persistence and the linear reference · {result['preset']} · {result['source']}",
        caption="persistence and the ridge on the same targets (those every model is scored on); "
        "ridge: linear regression on the last 24 h of hourly inputs + day/year cycles, "
        "predicting the change, fitted on the training windows; [95 %]: a day-block bootstrap; "
        "the book's procedures (their own rows) for comparison with its figures",
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
    con = console()
    con.print(table)
    for key in ("preset_note", "bounds_note", "season_note"):
        if result[key]:
            con.print(f"[yellow]note:[/] {result[key]}")
    return 0


def add_commands(sub: Any) -> None:
    data = sub.add_parser("data", help="inspect or generate data")
    dsub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    p = dsub.add_parser(
        "info", help="rows, time span, defects found and repaired, column statistics"
    )
    add_data(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument(
        "--stats",
        action="store_true",
        help="also how hard the record is to forecast (jena.difficulty: the 24-h change, the "
        "daily means, the diurnal range, the ridge's skill on blocked and book2) beside the real "
        "station's 2020",
    )
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
    add_data(p)
    add_preset(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_baseline)
