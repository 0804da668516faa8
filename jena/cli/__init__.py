"""The ``jena`` command line: one module per group of commands (``data``, ``model``, ``sweep``,
``refit``, ``champion``), each adding its parsers; every command takes ``--help``.

Heavy imports (Keras, MLflow, Optuna) happen inside the commands, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import JenaError
from . import champion, data, model, refit, sweep
from .sweep import print_sweep

__all__ = ["build_parser", "main", "print_sweep"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jena",
        description="Hyperparameter sweeps and experiment tracking for 24-hour temperature "
        "forecasting on the Jena climate record.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in (data, model, sweep, refit, champion):
        group.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .. import signals
    from ..secrets import redact, redacted_console

    # SIGTERM, SIGINT, SIGHUP end a command like Ctrl-C: runs close in a terminal state, a
    # sweep's workers stop too; exit 128 + the signal's number (a second one: at once). What
    # the command writes to the console is redacted (no password of a URL, no token).
    with signals.stop_on_signals(), redacted_console():
        try:
            if args.command != "data":
                from ..quiet import import_keras_quietly

                import_keras_quietly()
            return int(args.func(args))
        except JenaError as exc:
            print(f"error: {redact(str(exc))}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as exc:
            return signals.say(exc)


if __name__ == "__main__":
    sys.exit(main())
