"""The synthetic generators' speed, measured in one run: the calibrated ``generate`` (issue 29)
against the first one, ``generate_v1``, on a year (``synthetic:52704``) and on the full record's
length (420,551 rows).

    python benchmarks/bench_synthetic.py [--repeats N] [--json PATH]

Each figure is the best of ``--repeats`` runs (the machine's noise only slows a run down);
the ratio new / old is what travels between machines.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from jena.schema import JENA_ROWS
from jena.synthetic import generate, generate_v1

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import save, table

SIZES = {"a year (52,704 rows)": 52_704, "the full record (420,551 rows)": JENA_ROWS}


def best_seconds(make: Callable[..., Any], rows: int, repeats: int) -> float:
    times = []
    for seed in range(repeats):
        started = time.perf_counter()
        make(rows, seed)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    figures: dict[str, Any] = {"repeats": args.repeats, "sizes": {}}
    rows = []
    for label, n in SIZES.items():
        old = best_seconds(generate_v1, n, args.repeats)
        new = best_seconds(generate, n, args.repeats)
        figures["sizes"][str(n)] = {
            "v1_s": old, "new_s": new, "v1_rows_per_s": n / old, "new_rows_per_s": n / new,
            "new_over_v1": new / old,
        }  # fmt: skip
        rows.append([label, f"{old:.2f}", f"{n / old:,.0f}", f"{new:.2f}", f"{n / new:,.0f}",
                     f"{new / old:.2f}x"])  # fmt: skip
    year = figures["sizes"]["52704"]
    figures["year_new_s"] = year["new_s"]
    figures["year_ratio"] = year["new_over_v1"]
    print(table(["record", "v1 s", "v1 rows/s", "new s", "new rows/s", "new / v1"], rows))
    print(f"best of {args.repeats} runs (seeds 0..{args.repeats - 1}); goal: a year in seconds")
    save("synthetic", figures, args.json)


if __name__ == "__main__":
    main()
