"""`jena train` (one configuration, live) and `jena space` (the search space, the book's models)."""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._common import add_data, add_preset, chosen_preset, console, print_json


def trial_config_from_args(args: argparse.Namespace) -> tuple[Any, str | None]:
    """(TrialConfig, data preset) from --model / --config / --set; the preset None where none
    is given (the record decides: jena.splits.default_preset) and no 1st-edition model asks for
    its own."""
    from ..errors import ConfigError

    if args.model and args.config:
        raise ConfigError("give --model or --config, not both")
    data_preset = args.preset
    if args.model:
        from ..book import book_model

        book = book_model(args.model)
        config = book.config
        if data_preset is None and book.edition == 1:  # the 1st edition's own split
            data_preset = book.data
    elif args.config:
        config = _config_file(Path(args.config))
    else:
        from ..config import TrialConfig

        config = TrialConfig()
    config = _with_sets(config, args.set or [])
    if args.seed is not None:
        config = config.replace(seed=args.seed)
    return config.validate(), data_preset


def _config_file(path: Path) -> Any:
    """A TrialConfig from a TOML or JSON file; one line naming the file otherwise."""
    import tomllib

    from ..config import TrialConfig
    from ..errors import ConfigError

    try:
        text = path.read_text(encoding="utf-8")
        raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if path.suffix == ".json" else "TOML"
        raise ConfigError(f"{path}: not valid {kind}: {exc}") from None
    try:
        return TrialConfig.from_dict(raw).validate()
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _with_sets(config: Any, sets: list[str]) -> Any:
    """``--set key=value`` on ``config``: a search parameter of the space (``units=32``, mapped
    as the space maps it) or a field of the configuration (``rnn_units=[32, 16]``)."""
    import dataclasses

    from ..config import TrialConfig
    from ..errors import ConfigError
    from ..space import SPACE
    from ..typed import parse_assignments

    fields = {f.name for f in dataclasses.fields(TrialConfig)}
    direct: dict[str, Any] = {}
    search: dict[str, Any] = {}
    for key, value in parse_assignments(sets, "units=32"):
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
    return config


def cmd_train(args: argparse.Namespace) -> int:
    from ..data import load
    from ..train import DataCache, Fidelity, train

    config, data_preset = trial_config_from_args(args)
    fidelity = Fidelity(max_epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
                        validation_steps=args.validation_steps, patience=args.patience)  # fmt: skip
    con = console(stderr=args.json)  # with --json, stdout holds the JSON alone
    ds = load(args.data)
    data_preset, why = chosen_preset(data_preset, ds.frame.index)
    if why:
        con.print(f"note: {why}", markup=False, soft_wrap=True)
    con.print(
        f"[bold]{args.model or 'config'}[/] · {config.architecture} · {ds.source} · {data_preset}"
    )
    with _progress(con, args.epochs) as (on_epoch, on_batch):
        result = train(config, DataCache(ds, data_preset), fidelity, on_epoch=on_epoch,
                       on_batch=on_batch)  # fmt: skip
    if args.json:
        keys = ("state", "val_mae", "baseline_val_mae", "val_targets", "best_epoch",
                "param_count", "duration_s", "reason", "history")  # fmt: skip
        print_json({**{k: getattr(result, k) for k in keys}, "val_skill": result.val_skill,
                    "config": config.to_dict(), "preset": data_preset})  # fmt: skip
        return 0 if result.state != "failed" else 1
    _print_result(result, con)
    return 0 if result.state != "failed" else 1


@contextlib.contextmanager
def _progress(con: Any, epochs: int) -> Iterator[tuple[Any, Any]]:
    """A progress bar of the running epoch's batches and a line per finished epoch: the
    trainer's (on_epoch, on_batch) hooks."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=con, transient=False) as progress:
        task = progress.add_task("train", total=None, epoch=1, epochs=epochs, info="")

        def on_batch(batch: int, total: int) -> None:
            progress.update(task, completed=batch, total=total or None)

        def on_epoch(epoch: int, m: dict[str, float]) -> None:
            info = f"mae {m['mae']:.3f}  val_mae {m['val_mae']:.3f} °C"
            con.print(f"epoch {epoch:>3}  loss {m['loss']:.4f}  {info}")
            progress.update(task, epoch=min(epoch + 1, epochs), completed=0, info=info)

        yield on_epoch, on_batch


def _print_result(result: Any, con: Any) -> None:
    from rich.table import Table

    title = (f"{result.state} in {result.duration_s:.0f} s · the same {result.val_targets:,} "
             "validation targets")  # fmt: skip
    table = Table("", "val MAE (°C)", "skill vs persistence", title=title)
    if result.val_mae is not None:
        table.add_row(
            f"model (best epoch {result.best_epoch}, {result.param_count:,} params)",
            f"{result.val_mae:.4f}",
            f"{result.val_skill:+.1%}",
        )
    table.add_row("persistence (same targets)", f"{result.baseline_val_mae:.4f}", "0.0%")
    con.print(table)
    if result.state == "failed":
        con.print(f"[red]failed:[/] {result.reason}")


def cmd_space(args: argparse.Namespace) -> int:
    from rich.table import Table

    from ..space import describe

    rows = describe()
    if args.json:
        print_json(rows)
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
    con = console()
    con.print(table)
    from ..book import BOOK_MODELS
    from ..models import count_params

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


def add_commands(sub: Any) -> None:
    p = sub.add_parser("train", help="train one configuration; print val MAE next to the baseline")
    p.add_argument("--model", help="a named book model (listed by `jena space`)")
    p.add_argument("--config", help="a TOML or JSON file of hyperparameters")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a hyperparameter (repeatable), e.g. --set units=32",
    )
    add_data(p)
    add_preset(p, more="; a 1st-edition --model: book1")
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
