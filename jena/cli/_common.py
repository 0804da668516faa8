"""What every command of the ``jena`` command line shares: the console, the ``--data`` and
``--preset`` flags, a sweep's ``--experiment`` / ``--tracking-uri``, JSON output."""

from __future__ import annotations

import argparse
import json
from typing import Any

DATA_HELP = (
    "data source: 'jena' (the real CSV, downloaded once into $JENA_DATA_DIR or ~/.cache/jena), "
    "a path to a CSV in the Jena format, or 'synthetic[:ROWS[:SEED]]' (offline generator; "
    "'synthetic-v1[:ROWS[:SEED]]' the first one, for old results)"
)


def console(stderr: bool = False) -> Any:
    """A rich console; piped to a file (no terminal width to respect) it is wide enough that
    tables keep whole names."""
    from rich.console import Console

    con = Console(stderr=stderr)
    return con if con.is_terminal else Console(stderr=stderr, width=160)


def add_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="jena", metavar="SOURCE", help=DATA_HELP)


PRESET_HELP = (
    "split/window preset: book2 (2nd ed., rows 50/25/25), book1 (1st ed.) or "
    "blocked[:DAYS[:ROLES]] (DAYS-day blocks, default 14, in the rotation ROLES, default "
    "train,train,val,test: every split in every season; for records under about three years)"
)
PRESET_DEFAULT = (
    "default: chosen from the record: book2 where its chronological split holds every season in "
    "each part (about three years or more), else blocked"
)


def preset_type(text: str) -> str:
    """--preset's type: a preset name (jena.splits.get_preset), or ``auto`` (chosen from the
    record, as when none is given); one line naming the bad part."""
    from ..errors import ConfigError
    from ..splits import AUTO_PRESET, get_preset

    if text.strip() == AUTO_PRESET:
        return AUTO_PRESET
    try:
        return get_preset(text).name
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_preset(p: argparse.ArgumentParser, default: str | None = None, *, more: str = "") -> None:
    """--preset; None (not given): jena.splits.default_preset of the record (``more``: what
    else decides)."""
    p.add_argument(
        "--preset",
        default=default,
        type=preset_type,
        metavar="PRESET",
        help=PRESET_HELP + (f" (default: {default})" if default else f" ({PRESET_DEFAULT}{more})"),
    )


def chosen_preset(given: str | None, index: Any) -> tuple[str, str | None]:
    """(preset, the line saying why) for a command's record ``index``: the given one (no line),
    else :func:`jena.splits.default_preset`."""
    from ..splits import AUTO_PRESET, default_preset, default_preset_note

    if given is not None and given != AUTO_PRESET:
        return given, None
    preset = default_preset(index)
    return preset.name, default_preset_note(preset, index)


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def add_sweep_target(p: argparse.ArgumentParser, *, data: bool = False) -> None:
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
