"""A seeded `jena best` gives the same champion and figures before and after a change (issue 31).

Runs, through the command line only (so the same script works on either side of a change), a
tiny seeded sweep in a fresh temporary store, then `jena best --no-refit --json` (the trial
path) and `jena best --json` (the refit path, a quick refit), and writes what they print (JSON,
run ids and timestamps masked), their exit codes, stderr lines and the registered versions to
``--out``. ``--compare FILE``: also compare with a file written earlier; exit 1 on a difference.

    .venv/bin/python benchmarks/best_same_seed.py --out /tmp/before.json
    ... change the code ...
    .venv/bin/python benchmarks/best_same_seed.py --out /tmp/after.json --compare /tmp/before.json

Tiny synthetic record: its figures say nothing of the real station; only their equality counts.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

SETS = (
    'description="best_same_seed"',
    "fidelity.max_epochs=2",
    "fidelity.steps_per_epoch=2",
    "fidelity.validation_steps=2",
    'sampler.type="random"',
    "sampler.options={}",
    'pruner.type="none"',
    "pruner.options={}",
    'space.include=["optimizer"]',
    'space.fixed={architecture="gru", units=8, sequence_length_hours=24, rnn_layers=1, '
    'normalise_target=true, residual="persistence"}',
    "space.ranges={}",
    'space.warm_start=""',
    "stop.patience_trials=1000",
    "seed=0",
)
REFIT = ("--top-k", "2", "--seeds", "2", "--epochs", "1", "--patience", "1")
RUN_ID = re.compile(r"\b[0-9a-f]{32}\b")
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\+00:00|Z)?")


def _cli(*argv: str) -> dict[str, Any]:
    from jena import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return {"argv": list(argv), "code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}


def _mask(value: Any) -> Any:
    """Run ids and timestamps (which differ between stores) masked; floats kept exact."""
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    if isinstance(value, str):
        return STAMP.sub("<time>", RUN_ID.sub("<run>", value))
    return value


def record() -> dict[str, Any]:
    uri_dir = Path(tempfile.mkdtemp(prefix="best_same_seed_"))
    os.chdir(uri_dir)
    os.environ.pop("JENA_TRACKING_URI", None)
    uri = f"sqlite:///{uri_dir / 'mlflow.db'}"
    sets = [a for s in SETS for a in ("--set", s)]
    sweep = _cli("sweep", "default", *sets, "--trials", "4", "--data", "synthetic:24000:3",
                 "--preset", "book2", "--name", "same", "--tracking-uri", uri)  # fmt: skip
    assert sweep["code"] == 0, sweep["stderr"][-2000:]
    target = ("--experiment", "same", "--tracking-uri", uri, "--force", "--json")
    out: dict[str, Any] = {}
    for name, argv in (("no_refit", ("best", *target, "--no-refit", "--register-name", "trial")),
                       ("refit", ("best", *target, *REFIT))):  # fmt: skip
        got = _cli(*argv)
        out[name] = {
            "code": got["code"],
            "json": _mask(json.loads(got["stdout"])) if got["code"] == 0 else None,
            "stderr": sorted(
                _mask(line)
                for line in got["stderr"].splitlines()
                if line.startswith(("warning:", "note:", "error:"))
            ),
        }
    import mlflow

    client = mlflow.MlflowClient(uri)
    out["registry"] = sorted(
        (v.name, int(v.version), _mask(dict(v.tags)))
        for v in client.search_model_versions("")  # type: ignore[no-untyped-call]
    )
    return out


def diff(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        found = []
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                found.append(f"{path}/{k}: only in {'after' if k in b else 'before'}")
            else:
                found += diff(a[k], b[k], f"{path}/{k}")
        return found
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items before, {len(b)} after"]
        return [
            d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in diff(x, y, f"{path}[{i}]")
        ]
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return []
    return [] if a == b else [f"{path}: {a!r} before, {b!r} after"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--compare", type=Path, default=None)
    args = p.parse_args()
    out = args.out.resolve()
    before = args.compare.resolve() if args.compare else None
    got = json.loads(json.dumps(record(), default=str))
    out.write_text(json.dumps(got, indent=1, sort_keys=True))
    print(f"wrote {out}: exit codes no-refit {got['no_refit']['code']}, refit "
          f"{got['refit']['code']}; {len(got['registry'])} registered versions")  # fmt: skip
    if before is None:
        return 0
    found = diff(json.loads(before.read_text()), got)
    for line in found[:40]:
        print(line)
    print("same" if not found else f"{len(found)} differences")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
