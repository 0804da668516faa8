"""``nox -s bench``: the CPU benchmarks, one after the other, then one summary table; figures in
benchmarks/results/*.json and benchmarks/RESULTS.md (machine, date, figures, goals).

    python benchmarks/run_all.py [--quick] [--only windows,overhead,...] [--no-results-md]

``benchmarks/gpu.py`` (the accelerator path) is apart: run it on a GPU machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import RESULTS, ROOT, machine, table

HERE = Path(__file__).resolve().parent
NOTES = "## Notes (kept when run_all.py rewrites this file)"
SUITE: dict[str, list[str]] = {
    "windows": ["bench_windows.py"],
    "overhead": ["bench_sweep.py", "overhead"],
    "pruning": ["bench_sweep.py", "pruning"],
    "workers": ["bench_sweep.py", "workers"],
    "backends": ["bench_backends.py", "--steps", "20"],
    "packed": ["bench_packed.py"],
    "synthetic": ["bench_synthetic.py"],
}


def _pct(x: float) -> str:
    return f"{x:.1%}"


def summary_rows(r: dict[str, dict[str, Any]]) -> list[list[str]]:
    """(benchmark, figure, goal, met) for what ran."""
    rows = []
    if "windows" in r:
        w = r["windows"]
        memory = f"+{w['ours_rss_increase_mib']:.0f} vs +{w['keras_rss_increase_mib']:.0f} MiB"
        rows.append(["windowing", f"{w['speedup_total']:.0f}x keras's tf.data; "
                     f"{w['times_floor']:.1f}x the bandwidth floor; {memory}", ">= 30x",
                     "yes" if w["speedup_total"] >= 30 else "no"])  # fmt: skip
    if "overhead" in r:
        o = r["overhead"]
        rows.append(["platform overhead", f"{_pct(o['outside_fit_fraction'])} outside fit "
                     f"({_pct(o['outside_fit_fraction_run'])} once started; start "
                     f"{o['start_s']:.0f} s)", "<= 3%",
                     "yes" if o["goal_met"] else "no"])  # fmt: skip
    if "pruning" in r:
        p = r["pruning"]
        rows.append(["pruning", f"{_pct(p['epochs_ratio'])} of the epochs, best "
                     f"{p['best_ratio'] - 1:+.1%}", "<= 40%, within 2%",
                     "yes" if p["goal_met"] else "no"])  # fmt: skip
    if "workers" in r:
        s = r["workers"]["speedup"]
        rows.append(["worker scaling", ", ".join(f"{w} workers {x:.2f}x" for w, x in s.items()),
                     "-", "-"])  # fmt: skip
    if "backends" in r and "jax_over_tf" in r["backends"]:
        b = r["backends"]["jax_over_tf"]
        rows.append(["backends (CPU)", ", ".join(f"{m}: JAX {x:.2f}x TF's time"
                                                 for m, x in b.items()), "-", "-"])  # fmt: skip
    if "packed" in r and "vs_packed_1" in r["packed"]:
        p = r["packed"]
        rows.append(["packed trials", ", ".join(f"K={k} {x:.2f}x" for k, x in
                                                p["vs_packed_1"].items()) + " vs K=1; "
                     + ", ".join(f"K={k} {x:.1f}x" for k, x in p["vs_one_by_one"].items())
                     + " vs one by one", "8 packed >= 6x (GPU)",
                     ("yes" if p["goal_8_packed_6x"] else "no") if p.get("on_accelerator")
                     else "not measured (CPU)"])  # fmt: skip
    if "synthetic" in r:
        y = r["synthetic"]
        rows.append(["synthetic generator", f"a year in {y['year_new_s']:.2f} s, "
                     f"{y['year_ratio']:.2f}x the first generator's time", "a year in seconds",
                     "yes" if y["year_new_s"] < 10 else "no"])  # fmt: skip
    return rows


def write_results_md(results: dict[str, dict[str, Any]], outputs: dict[str, str],
                     seconds: float) -> Path:  # fmt: skip
    m = machine()
    lines = [
        "# Benchmark results",
        "",
        "Written by `nox -s bench` (`benchmarks/run_all.py`); the JSON of each benchmark is in",
        "`benchmarks/results/`. Ratios travel between machines, absolute times do not.",
        "",
        f"- date: {m['date']}",
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, "
        f"accelerator: {m['accelerator'] or 'none (CPU only)'}",
        "- software: "
        + ", ".join(
            f"{k} {v}"
            for k, v in m.items()
            if k in ("python", "keras", "tensorflow-cpu", "tensorflow", "jax", "optuna", "mlflow")
        ),
        f"- suite wall time: {seconds / 60:.1f} min",
        "",
        "## Summary",
        "",
        "| benchmark | figure | goal | met |",
        "| --- | --- | --- | --- |",
        *[f"| {' | '.join(row)} |" for row in summary_rows(results)],
        "",
    ]
    for name, text in outputs.items():
        lines += [f"## {name}", "", "```", text.strip(), "```", ""]
    path = HERE / "RESULTS.md"
    kept = ""
    if path.is_file() and NOTES in (old := path.read_text()):
        kept = old[old.index(NOTES) :]  # the hand-written reading of the figures stays
    path.write_text("\n".join(lines) + ("\n" + kept if kept else ""))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter sweeps")
    parser.add_argument("--only", default=None, help="comma-separated benchmarks")
    parser.add_argument("--no-results-md", action="store_true", help="leave RESULTS.md alone")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(SUITE)
    results: dict[str, dict[str, Any]] = {}
    outputs: dict[str, str] = {}
    started = time.perf_counter()
    for name in names:
        cmd = [sys.executable, str(HERE / SUITE[name][0]), *SUITE[name][1:],
               "--json", str(RESULTS / f"{name}.json")]  # fmt: skip
        if args.quick and name in ("overhead", "pruning", "workers"):
            cmd.append("--quick")
        print(f"\n=== {name} ===", flush=True)
        t0 = time.perf_counter()
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": path}
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        out = "\n".join(line for line in proc.stdout.splitlines() if line.strip())
        print(out, flush=True)
        if proc.returncode != 0:
            print(f"{name} FAILED ({proc.returncode}):\n{proc.stderr[-2000:]}", flush=True)
            continue
        outputs[name] = out + f"\n({time.perf_counter() - t0:.0f} s)"
        results[name] = json.loads((RESULTS / f"{name}.json").read_text())
    seconds = time.perf_counter() - started
    print(f"\n=== summary ({seconds / 60:.1f} min) ===")
    print(table(["benchmark", "figure", "goal", "met"], summary_rows(results)))
    if not args.no_results_md:
        print(f"written: {write_results_md(results, outputs, seconds)}")
    if len(results) < len(names):
        sys.exit(1)


if __name__ == "__main__":
    main()
