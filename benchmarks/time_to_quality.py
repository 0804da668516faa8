"""Time to quality (issues 10, 21): does sweep + refit reach the book's models, and with how much
training compute?

On one record (default: the synthetic generator, at a size that fits about an hour on 2 cores;
``--data`` takes any CSV, the real file included):

(a) the book's ``lstm_dropout`` and ``stacked_gru_dropout`` trained exactly as the book trains
    them (50 epochs of every training window, RMSprop, mse on °C targets, its windows, the best
    epoch kept as ModelCheckpoint does): validation MAE (full validation split), training
    compute (seconds in model.fit), test MAE;
(b) the default sweep (sweeps/default.toml) then the refit of its top configurations (its
    [refit]: the race) within a time budget, on the same record: best validation MAE so far
    against the cumulative compute of trials then refit runs (the refit's validation MAE is on
    the full validation split, like the book's), the refit's plan (estimated against measured
    fit seconds) and the champion's test MAE. The budgets are spent as a user spends time: the
    sweep gets half of what the book's stacked GRU took to train (``--sweep-minutes``), the
    refit what is left of it after the sweep (``--refit-minutes``);
(c) one table: each book model's validation MAE and compute, the compute at which sweep + refit
    first matched it, the ratio, and the champion's test MAE next to the book models', the
    linear reference's (ridge, :mod:`jena.linear`) and persistence's, every MAE and skill with
    its 95 % day-block interval (:mod:`jena.uncertainty`); (a) quality at equal compute: the
    pipeline's best validation MAE once it had spent what the book's best model took; (b)
    compute to equal quality; written as JSON and a plot.

``--preset`` picks the split for all of it (book2, or blocked[:DAYS[:ROLES]]: every split in
every season, for a record of a year or two).

Goals reported against: match the book's best validation MAE with at most a third of its
training compute, and beat its test MAE (issue 10); sweep + refit together within the compute
the book spends training its stacked GRU the book's way, with a champion better than that
model on validation and on test (issue 21).

    python benchmarks/time_to_quality.py             # synthetic:43200 (300 days)
    python benchmarks/time_to_quality.py --data synthetic:52704 --preset blocked   # one year
    python benchmarks/time_to_quality.py --data jena --sweep-minutes 30   # the real record (hours)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

BOOK = ("lstm_dropout", "stacked_gru_dropout")
GOAL_MODEL = "stacked_gru_dropout"  # issue 21: sweep + refit within what it took, better than it
# the table's champion when the refit's budget ran out before any survivor finished a seed
NO_CHAMPION = dict.fromkeys(
    ("val_mae", "test_mae", "baseline_test_mae", "best_val_member_test_mae"), math.nan
) | {"val": None, "test": None}


def book_models(
    data: str, preset: str, epochs: int | None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(a): the book's models trained the book's way; their validation and test MAE against
    persistence, with intervals. Also (the second value) the ridge reference on both splits."""
    import pandas as pd

    from jena.book import book_model
    from jena.data import load
    from jena.evaluate import predict_split, versus
    from jena.linear import fit_ridge, ridge_reference
    from jena.prepare import prepare
    from jena.serve import ProjectForecaster
    from jena.train import DataCache, Fidelity, train

    ds = load(data)
    cache = DataCache(ds, preset)
    test = prepare(ds, preset, include_test=True)
    index = pd.DatetimeIndex(ds.frame.index)
    ridge = fit_ridge(test)
    reference = {s: ridge_reference(test, s, ridge).comparison.to_dict() for s in ("val", "test")}
    out = []
    for name in BOOK:
        model = book_model(name)
        n = epochs or model.epochs
        print(f"  book {name}: training {n} epochs...", file=sys.stderr, flush=True)
        started = time.monotonic()
        result = train(model.config, cache, Fidelity(max_epochs=n, patience=n))  # no stopping
        forecaster = ProjectForecaster(result.model, result.data_config)
        val, test_c = (versus(predict_split(forecaster, test, index, s), test, None)[0]
                       for s in ("val", "test"))  # fmt: skip
        out.append({
            "model": name,
            "epochs": n,
            "val_mae": result.val_mae,
            "baseline_val_mae": result.baseline_val_mae,
            "fit_s": result.duration_s,
            "wall_s": time.monotonic() - started,
            "test_mae": test_c.mae.estimate,
            "baseline_test_mae": test_c.reference_mae.estimate,
            "val": val.to_dict(),
            "test": test_c.to_dict(),
        })  # fmt: skip
        print(f"  book {name}: val {result.val_mae:.4f} in {result.duration_s:.0f} s of fit, "
              f"test {out[-1]['test_mae']:.4f}", file=sys.stderr, flush=True)  # fmt: skip
    return out, reference


def sweep_and_refit(
    data: str, minutes: float, trials: int, root: Path, sets: list[str],
    refit_minutes: float | None = None, goal_s: float | None = None,
) -> dict[str, Any]:  # fmt: skip
    """(b): the default sweep, its refit (its plan first; ``refit_minutes``: its budget, default
    what is left of ``goal_s`` after the sweep, at least a minute) and its champion; the
    compute curve."""
    from _sweeps import default_sweep

    from jena.errors import ConfigError
    from jena.evaluate import evaluate_best
    from jena.refit import RefitSettings, plan_refit, refit, refit_status
    from sweeps import run_sweep

    cfg = default_sweep("ttq", data, trials, minutes, root, *sets)
    uri = cfg.storage.tracking_uri
    started = time.monotonic()
    summary = run_sweep(cfg)
    sweep_wall = time.monotonic() - started
    fit_s = summary.timing.fit_s if summary.timing else 0.0
    print(f"  sweep: {summary.finished} trials, {fit_s:.0f} s of fit",
          file=sys.stderr, flush=True)  # fmt: skip
    if refit_minutes is None and goal_s is not None:
        refit_minutes = max(1.0, (goal_s - fit_s) / 60)
    settings = RefitSettings.of_sweep(uri, "ttq", budget_minutes=refit_minutes)
    plan = plan_refit("ttq", tracking_uri=uri, settings=settings)
    print("\n".join(f"  {line}" for line in plan.lines()), file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        refitted = refit("ttq", tracking_uri=uri, plan=plan)  # the refit first
        ev = evaluate_best("ttq", refitted, tracking_uri=uri, force=True, register_name=None)
    except ConfigError as exc:  # the budget ran out before any survivor finished a seed
        print(f"  no champion: {exc}", file=sys.stderr, flush=True)
        ev = None
    refit_wall = time.monotonic() - started
    curve, sweep_compute = compute_curve(uri)
    status = refit_status(uri, "ttq", settings)
    return {
        "trials": summary.finished,
        "sweep_compute_s": sweep_compute,
        "sweep_wall_s": sweep_wall,
        "refit_compute_s": curve[-1]["compute_s"] - sweep_compute if curve else 0.0,
        "refit_wall_s": refit_wall,
        "refit_budget_minutes": settings.budget_minutes,
        "refit_plan": plan.to_dict(),
        "refit_outcome": status.outcome_text() if ev is None else ev.refit_outcome,
        "curve": curve,
        "champion": None if ev is None else champion_of(ev),
        "refit": status.to_dict(),
    }


def compute_curve(uri: str) -> tuple[list[dict[str, Any]], float]:
    """Best validation MAE so far against cumulative fit seconds: the sweep's trials, then the
    refit's members (every one spends; finished ones count for quality); and the sweep's part."""
    from jena import tracking
    from jena.tracking import names

    frame = tracking.trials_frame(uri, "ttq").sort_values("start_time", kind="stable")
    curve: list[dict[str, Any]] = []
    spent, best = 0.0, math.inf
    for row in frame.to_dict("records"):
        spent += tracking.finite(row.get(f"metrics.{names.METRIC_FIT_S}")) or 0.0
        value = tracking.finite(row["val_mae"]) if row["state"] == "completed" else None
        best = min(best, value) if value is not None else best
        curve.append({"stage": "sweep", "compute_s": spent, "best_val_mae": best})
    sweep_compute = spent
    members = tracking.find_runs(
        uri, "ttq", f"tags.{names.TAG_RUN_TYPE} = '{names.RUN_REFIT_MEMBER}'"
    )
    best = math.inf
    for run in sorted(members, key=lambda r: r.start_time or 0):
        spent += tracking.finite(run.metrics.get(names.METRIC_FIT_S)) or 0.0
        value = tracking.finite(run.metrics.get(names.METRIC_BEST_VAL))
        if value is not None and run.tags.get(names.TAG_STATE) == "completed":
            best = min(best, value)
        curve.append({"stage": "refit", "compute_s": spent, "best_val_mae": best})
    return curve, sweep_compute


def champion_of(ev: Any) -> dict[str, Any]:
    return {
        "label": ev.label,
        "members": len(ev.members),
        "val_mae": ev.val_mae,
        "test_mae": ev.test_mae,
        "baseline_test_mae": ev.baseline_test_mae,
        "best_val_member_test_mae": ev.best_val_member_test_mae,
        "seeds_note": ev.seeds_note,
        "val": ev.val_vs_persistence.to_dict() if ev.val_vs_persistence else None,
        "test": ev.test_vs_persistence.to_dict() if ev.test_vs_persistence else None,
        "val_vs_ridge": ev.val_vs_ridge.to_dict() if ev.val_vs_ridge else None,
        "test_vs_ridge": ev.test_vs_ridge.to_dict() if ev.test_vs_ridge else None,
    }


def at_compute(curve: list[dict[str, Any]], compute_s: float) -> dict[str, float | None]:
    """(a) quality at equal compute: each stage's best validation MAE once the pipeline had
    spent ``compute_s`` (None: the stage had not started, or had nothing yet)."""
    out: dict[str, float | None] = {"sweep": None, "refit": None}
    for point in curve:
        if point["compute_s"] <= compute_s and math.isfinite(point["best_val_mae"]):
            out[point["stage"]] = float(point["best_val_mae"])
    return out


def first_match(curve: list[dict[str, Any]], target: float, stage: str = "refit") -> float | None:
    """The cumulative compute at which ``stage``'s best validation MAE first matched ``target``:
    the refit's on the full validation split (what the goal counts), the sweep's on its
    validation subset (a hint of when a sweep could have stopped)."""
    for point in curve:
        if point["stage"] == stage and point["best_val_mae"] <= target:
            return float(point["compute_s"])
    return None


def plot(
    books: list[dict[str, Any]], ours: dict[str, Any], path: Path, ridge_val: float | None = None
) -> None:
    from jena.report import pyplot, save

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 5))
    for stage, colour in (("sweep", "#1f77b4"), ("refit", "#d62728")):
        pts = [p for p in ours["curve"] if p["stage"] == stage and math.isfinite(p["best_val_mae"])]
        if pts:
            ax.step([p["compute_s"] for p in pts], [p["best_val_mae"] for p in pts], where="post",
                    color=colour, linewidth=2,
                    label=f"{stage}: best so far" + (" (full validation)" if stage == "refit"
                                                     else " (validation subset)"))  # fmt: skip
    for book, colour in zip(books, ("#2ca02c", "#9467bd"), strict=False):
        ax.axhline(
            book["val_mae"],
            color=colour,
            linestyle="--",
            label=f"book {book['model']}: {book['val_mae']:.3f} after {book['fit_s']:.0f} s",
        )
        ax.axvline(book["fit_s"], color=colour, linestyle=":", linewidth=1)
    base = books[0]["baseline_val_mae"] if books else None
    if base:
        ax.axhline(base, color="#7f7f7f", linestyle=":", label=f"persistence {base:.3f}")
        if ridge_val is not None:
            ax.axhline(ridge_val, color="#8c564b", linestyle="-.", linewidth=1.5,
                       label=f"ridge (linear reference) {ridge_val:.3f}")  # fmt: skip
        values = [p["best_val_mae"] for p in ours["curve"] if math.isfinite(p["best_val_mae"])]
        values += [b["val_mae"] for b in books]
        ax.set_ylim(min(values) * 0.97, max([1.25 * base, *(1.05 * b["val_mae"] for b in books)]))
    ax.set_xlabel("training compute (cumulative seconds in model.fit)")
    ax.set_ylabel("validation MAE (°C)")
    ax.set_title("time to quality: sweep + refit against the book's models")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    save(fig, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="synthetic:43200", help="the record (a --data spec)")
    parser.add_argument("--preset", default="book2", type=_preset, metavar="PRESET",
                        help="book2 or blocked[:DAYS[:ROLES]] (default: book2)")  # fmt: skip
    parser.add_argument("--sweep-minutes", type=float, default=None,
                        help="the sweep's budget (default: half the book's stacked GRU "
                        "compute)")  # fmt: skip
    parser.add_argument("--refit-minutes", type=float, default=None,
                        help="the refit's budget (default: the rest of the book's stacked GRU "
                        "compute after the sweep, at least 1)")  # fmt: skip
    parser.add_argument("--trials", type=int, default=40, help="the sweep's trials at most")
    parser.add_argument("--book-epochs", type=int, default=None,
                        help="override the book's 50 epochs (a quick look only)")  # fmt: skip
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override the sweep (refit.seeds=2)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=None,
                        help="the folder of the JSON and plot (default: benchmarks/results/"
                        "time_to_quality; with --table-from: the JSON's own folder)")  # fmt: skip
    parser.add_argument("--table-from", type=Path, default=None, metavar="JSON",
                        help="print the table of an earlier run's JSON, run nothing")  # fmt: skip
    args = parser.parse_args(argv)
    if args.table_from is not None:
        earlier = json.loads(args.table_from.read_text())
        print(table(earlier))
        png = args.table_from.with_suffix(".png")
        if args.out is not None:  # never over the earlier run's own plot unless asked
            args.out.mkdir(parents=True, exist_ok=True)
            png = args.out / png.name
        plot(earlier["books"], earlier["ours"], png, _ridge_val(earlier))
        print(f"drew {png}")
        return 0
    args.out = args.out or Path("benchmarks/results/time_to_quality")
    from jena.quiet import import_keras_quietly

    import_keras_quietly()
    print(f"time to quality on {args.data} ({args.preset}): the book's two models first "
          f"({args.book_epochs or 50} epochs each), then a sweep on half the stacked GRU's "
          "compute and a refit on the rest; about 3x the stacked GRU's training in all "
          "(on a 2-core VM: about 35 minutes for 300 days, 50 for a year)",
          file=sys.stderr, flush=True)  # fmt: skip
    started = time.monotonic()
    books, reference = book_models(args.data, args.preset, args.book_epochs)
    sets = [f"data.preset={json.dumps(args.preset)}", *args.sets]
    goal_s = next((b["fit_s"] for b in books if b["model"] == GOAL_MODEL), None)
    minutes = args.sweep_minutes or max(1.0, (goal_s or 1200.0) / 2 / 60)
    with tempfile.TemporaryDirectory(prefix="jena-bench-ttq-") as tmp:
        ours = sweep_and_refit(args.data, minutes, args.trials, Path(tmp), sets,
                               args.refit_minutes, goal_s)  # fmt: skip
    rows = [{**book, "matched_at_s": first_match(ours["curve"], book["val_mae"])} for book in books]
    for row in rows:
        row["ratio"] = None if row["matched_at_s"] is None else row["matched_at_s"] / row["fit_s"]
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"data": args.data, "preset": args.preset, "sets": args.sets, "books": rows,
              "ours": ours, "ridge": reference,
              "minutes": (time.monotonic() - started) / 60}  # fmt: skip
    (args.out / "time_to_quality.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    plot(books, ours, args.out / "time_to_quality.png", _ridge_val(report))
    print(table(report))
    print(f"wrote {args.out}/time_to_quality.json and .png")
    return 0


def _ridge_val(report: dict[str, Any]) -> float | None:
    """The ridge's validation MAE in a run's JSON (None before the ridge was measured)."""
    val = (report.get("ridge") or {}).get("val")
    return None if val is None else float(val["mae"]["estimate"])


def _preset(text: str) -> str:
    from jena.errors import ConfigError
    from jena.splits import get_preset

    try:
        return get_preset(text).name
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _cell(comparison: dict[str, Any] | None, key: str, fallback: float | None = None) -> str:
    """``2.556 [2.48, 2.63]`` from a comparison's JSON (``skill``: in %), else ``fallback``."""
    if comparison is None:
        return "" if fallback is None else f"{fallback:.3f}"
    c = comparison[key]
    if key == "skill":
        return f"{c['estimate']:+.1%} [{c['low']:+.1%}, {c['high']:+.1%}]"
    return f"{c['estimate']:.3f} [{c['low']:.2f}, {c['high']:.2f}]"


def _line(label: str, *cells: str) -> str:
    """One row: val MAE, compute, refit matched, ratio, sweep matched, test MAE, test skill."""
    widths = (22, 10, 14, 6, 14, 22, 24)
    return f"{label:25} " + " ".join(f"{c:>{n}}" for c, n in zip(cells, widths, strict=False))


def target_counts(report: dict[str, Any]) -> tuple[str, list[str]]:
    """One line naming the validation and test targets every row is scored on, and a note for
    each row scored on other targets (a JSON written before the split defined them)."""
    ridge = report.get("ridge") or {}
    counts = {s: (ridge.get(s) or {}).get("windows") for s in ("val", "test")}
    rows = [(f"book {b['model']}", b.get("val"), b.get("test")) for b in report["books"]]
    champion = report["ours"]["champion"] or NO_CHAMPION
    rows.append(("sweep + refit champion", champion.get("val"), champion.get("test")))
    notes = []
    for label, val, test in rows:
        for split, c in (("val", val), ("test", test)):
            if c is not None and counts[split] is not None and c["windows"] != counts[split]:
                notes.append(f"note: {label}'s {split} figures cover {c['windows']:,} "
                             f"targets, not the {counts[split]:,} of the others: not "
                             "comparable")  # fmt: skip
    if None in counts.values():
        return "targets: not recorded", notes
    head = (f"every row scored on the same {counts['val']:,} validation and {counts['test']:,} "
            "test targets (the split's)")  # fmt: skip
    return head, notes


def table(report: dict[str, Any]) -> str:
    """The benchmark's table and its verdict on the goal, from its JSON. Intervals: 95 %, a
    block bootstrap over whole days of windows; skill against persistence on test."""
    rows, ours = report["books"], report["ours"]
    champion = ours["champion"] or NO_CHAMPION
    ridge = report.get("ridge") or {}
    sets = f"; {', '.join(report['sets'])}" if report.get("sets") else ""
    counted, target_notes = target_counts(report)
    lines = [
        f"time to quality on {report['data']}, {report.get('preset', 'book2')} "
        f"({report['minutes']:.0f} min in all{sets}); {counted}",
        _line("", "val MAE [95 %]", "compute s", "refit matched", "ratio", "sweep matched",
              "test MAE [95 %]", "test skill [95 %]"),
    ]  # fmt: skip
    for r in rows:
        refit = first_match(ours["curve"], r["val_mae"])
        sweep = first_match(ours["curve"], r["val_mae"], "sweep")
        lines.append(_line(
            f"book {r['model']}", _cell(r.get("val"), "mae", r["val_mae"]), f"{r['fit_s']:.0f}",
            "not" if refit is None else f"{refit:.0f} s",
            "—" if refit is None else f"{refit / r['fit_s']:.2f}",
            "not" if sweep is None else f"{sweep:.0f} s",
            _cell(r.get("test"), "mae", r["test_mae"]), _cell(r.get("test"), "skill"),
        ))  # fmt: skip
    total = ours["sweep_compute_s"] + ours["refit_compute_s"]
    test = champion.get("test")
    lines.append(_line("sweep + refit champion", _cell(champion.get("val"), "mae",
                       champion["val_mae"]), f"{total:.0f}", "", "", "",
                       _cell(test, "mae", champion["test_mae"]), _cell(test, "skill")))  # fmt: skip
    lines.append(_line("  its best-val seed", "", "", "", "", "",
                       f"{champion['best_val_member_test_mae']:.3f}"))  # fmt: skip
    if ridge:
        test_ridge = ridge["test"]
        lines.append(_line("ridge (linear reference)", _cell(ridge["val"], "mae"), "~1", "", "",
                           "", _cell(test_ridge, "mae"), _cell(test_ridge, "skill")))  # fmt: skip
    base_val = rows[0]["baseline_val_mae"] if rows else math.nan
    lines.append(_line("persistence", _cell(ridge.get("val"), "reference_mae", base_val), "0",
                       "", "", "", _cell(ridge.get("test"), "reference_mae",
                                         champion["baseline_test_mae"])))  # fmt: skip
    lines.append(
        f"compute: sweep {ours['sweep_compute_s']:.0f} s ({ours['trials']} trials), "
        f"refit {ours['refit_compute_s']:.0f} s; refit matched = full validation split, "
        "sweep matched = its validation subset; [95 %]: a block bootstrap over whole days"
    )
    if test is not None:
        worse = champion["test_mae"] > champion["baseline_test_mae"]
        noise = test["skill"]["low"] <= 0 <= test["skill"]["high"]  # as Evaluation.test_verdict
        lines.append(
            f"champion vs persistence on test: DM {test['dm']['statistic']:+.2f} (p = "
            f"{test['dm']['p_value']:.2g})"
            + ("; the champion is WORSE than persistence on the test split" if worse else "")
            + ("; within the noise of the test period" if worse and noise else "")
        )
    for split in ("val", "test"):
        c = champion.get(f"{split}_vs_ridge")
        if c is not None:
            lines.append(f"champion vs the ridge on {split}: skill {_cell(c, 'skill')}, DM "
                         f"{c['dm']['statistic']:+.2f} (p = {c['dm']['p_value']:.2g})")  # fmt: skip
    if ridge:
        beat = first_match(ours["curve"], ridge["val"]["mae"]["estimate"])
        lines.append(
            "compute at which sweep + refit first beat the ridge on validation (refit, "
            "full validation): " + ("not reached" if beat is None else f"{beat:.0f} s")
        )
    return "\n".join(lines + target_notes + goal_lines(report))


def _met(ok: bool) -> str:
    return "met" if ok else "not met"


def goal_lines(report: dict[str, Any]) -> list[str]:
    """(a) quality at equal compute, (b) compute to equal quality, the refit's plan against
    what it took, and the goals (from the JSON: earlier runs' too)."""
    rows, ours = report["books"], report["ours"]
    if not rows:
        return []
    champion, curve = ours["champion"] or NO_CHAMPION, ours["curve"]
    best = min(rows, key=lambda r: r["val_mae"])
    equal = at_compute(curve, best["fit_s"])
    said = {k: "—" if v is None else f"{v:.3f}" for k, v in equal.items()}
    matched = first_match(curve, best["val_mae"])
    out = [
        f"(a) at the compute of book {best['model']} ({best['fit_s']:.0f} s, val MAE "
        f"{best['val_mae']:.3f}): best val MAE {said['refit']} (refit, full validation), "
        f"{said['sweep']} (sweep, its validation subset)",
        "(b) compute to match its val MAE: "
        + ("not matched" if matched is None else
           f"{matched:.0f} s ({matched / best['fit_s']:.2f} of its compute)"),
    ]  # fmt: skip
    plan = ours.get("refit_plan")
    if plan and plan.get("total_s"):
        budget = ours.get("refit_budget_minutes")
        took = ours["refit_compute_s"]
        limit = "no budget" if budget is None else f"budget {budget:.1f} min"
        out.append(f"refit: estimated {plan['total_s']:.0f} s of fit, took {took:.0f} s "
                   f"({took / plan['total_s']:.2f}×), {limit}; "
                   f"{ours.get('refit_outcome') or ''}")  # fmt: skip
    ok_val = matched is not None and matched <= best["fit_s"] / 3
    ok_test = champion["test_mae"] < min(r["test_mae"] for r in rows)
    out.append(f"goal (issue 10): the book's best val MAE with ≤ 1/3 of its compute: "
               f"{_met(ok_val)}; beat its test MAE: {_met(ok_test)}")  # fmt: skip
    gru = next((r for r in rows if r["model"] == GOAL_MODEL), None)
    if gru is not None:
        total = ours["sweep_compute_s"] + ours["refit_compute_s"]
        out.append(
            f"goal (issue 21): sweep + refit within book {GOAL_MODEL}'s compute ({total:.0f} of "
            f"{gru['fit_s']:.0f} s): {_met(total <= gru['fit_s'])}; champion better on val "
            f"({champion['val_mae']:.3f} vs {gru['val_mae']:.3f}): "
            f"{_met(champion['val_mae'] < gru['val_mae'])}; on test ({champion['test_mae']:.3f} "
            f"vs {gru['test_mae']:.3f}): {_met(champion['test_mae'] < gru['test_mae'])}"
        )
    return out


if __name__ == "__main__":
    sys.exit(main())
