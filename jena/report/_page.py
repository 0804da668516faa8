"""The report page: HTML helpers and one function per section."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from jena import tracking as T
from jena.evaluation import seeds_phrase
from jena.tracking import names as N

from . import _figures as F
from ._data import (
    TOP_TABLE,
    ReportData,
    champion,
    compute_curve,
    compute_seconds,
    curves,
    leaderboard,
    refit_table,
    short,
)
from ._data import test_predictions as read_predictions

NUM_CELL = '<td class="num">'

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
.meta { color: #666; font-size: 0.9em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.7em; text-align: left; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.baseline td { color: #666; font-style: italic; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #666; font-size: 0.88em; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 0.5em 0.8em; }
.warn { background: #fdecea; border-left: 4px solid #d62728; padding: 0.5em 0.8em; }
.counts span { display: inline-block; margin-right: 1.5em; }
"""


@dataclass
class ReportResult:
    html: Path
    figures: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    logged_to: str | None = None


# --------------------------------------------------------------------------- helpers


def fmt(value: Any, spec: str = ".4f", empty: str = "") -> str:
    number = T.finite(value)
    return empty if number is None else format(number, spec)


def duration(seconds: float) -> str:
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def table(headers: list[str], rows: list[list[str]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            (NUM_CELL if i in numeric else "<td>") + html.escape(c) + "</td>"
            for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def figure(name: str, alt: str, caption: str) -> str:
    return (
        f'<figure><img src="{html.escape(name)}" alt="{html.escape(alt)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


# --------------------------------------------------------------------------- sections


def trials_section(data: ReportData) -> str:
    frame = data.frame
    states = frame["state"].fillna("unknown").value_counts().to_dict()
    wall = sum(p.wall_s for p in data.parents)
    drivers = ", ".join(sorted(set(frame["driver"].dropna()))) or "?"
    counts = "".join(
        f"<span><b>{states.get(k, 0)}</b> {k}</span>"
        for k in ("completed", "stopped", "pruned", "failed", "killed")
    )
    if states.get("running"):
        counts += f"<span><b>{states['running']}</b> running</span>"
    return (
        "<h2>Trials</h2>"
        f'<p class="counts">{counts}</p>'
        f"<p>{len(frame)} trials in {len(data.parents)} invocation(s) · drivers: "
        f"{html.escape(drivers)} · total compute time {duration(compute_seconds(frame))} (sum of "
        f"trial durations), wall time {duration(wall)} · persistence baseline (validation) "
        f"{fmt(data.baseline, '.4f', '?')} °C{_ridge(data)}</p>" + _reading_note(data)
    )


def _ridge(data: ReportData) -> str:
    """The linear reference the sweep's start recorded on its parent run, if any."""
    metrics = data.parent.metrics if data.parent is not None else {}
    mae = T.finite(metrics.get(N.METRIC_RIDGE_VAL))
    if mae is None:
        return ""
    skill = metrics.get(N.METRIC_RIDGE_VAL_SKILL)
    low, high = (metrics.get(f"{N.METRIC_RIDGE_VAL_SKILL}_{end}") for end in ("low", "high"))
    band = f" [{fmt(low, '+.1%')}, {fmt(high, '+.1%')}]" if T.finite(low) is not None else ""
    return (f" · linear reference (ridge) {mae:.4f} °C, skill {fmt(skill, '+.1%')}{band}: a "
            "deep model that cannot beat it has not earned its cost")  # fmt: skip


def _reading_note(data: ReportData) -> str:
    """How to read the intervals; that gains on the synthetic record are upper bounds."""
    sources = set(data.frame.get(f"tags.{N.TAG_DATA_SOURCE}", pd.Series(dtype=str)).dropna())
    synthetic = any(str(s).startswith("synthetic") for s in sources)
    return (
        '<p class="meta">Intervals [low, high] are 95 %: a block bootstrap over whole days of '
        "windows (consecutive windows share their weather, so a plain bootstrap would be too "
        "narrow). A skill whose interval includes zero cannot be told apart from persistence; "
        "a Diebold–Mariano p-value is the chance of a difference this large between two "
        "equally good forecasters."
        + (" Gains measured on the synthetic record are upper bounds: its weather is more "
           "predictable than the real station's (a ridge regression gains about twice as much "
           "on it)." if synthetic else "")
        + "</p>"
    )  # fmt: skip


def _targets_phrase(data: ReportData) -> str:
    """``: 10,240 targets`` from the sweep's parent run (sweeps since the same-targets rule)."""
    n = T.finite(data.parent.metrics.get(N.METRIC_VAL_TARGETS)) if data.parent else None
    return f": {int(n):,} targets" if n else ""


def leaderboard_section(data: ReportData, folder: Path, result: ReportResult) -> str:
    board = leaderboard(data.frame)
    if board.empty:
        return "<h2>Leaderboard</h2>" + note("No completed (or time-stopped) trial yet.")
    baseline = data.baseline
    result.figures.append(F.fig_leaderboard(board, baseline, folder / "leaderboard.png"))
    rows = []
    for r in board.to_dict("records"):
        own = T.finite(r.get(f"metrics.{N.METRIC_BASELINE_VAL}")) or baseline
        skill = 1 - r["val_mae"] / own if own else None
        rows.append([
            str(r["label"]), str(r["trials"]), fmt(r["val_mae"]), fmt(own), fmt(skill, "+.1%"),
            fmt(r.get(f"metrics.{N.METRIC_TEST_MAE}")),
            f"{int(r['param_count']):,}" if T.finite(r.get("param_count")) else "",
            f"{r.get('number')} ({r.get('driver')})",
        ])  # fmt: skip
    html_table = table(
        ["architecture / model", "candidate trials", "best val MAE (°C)",
         "persistence, same targets (°C)", "skill", "test MAE (°C)", "parameters",
         "best trial (driver)"],
        rows, numeric={1, 2, 3, 4, 5, 6},
    )  # fmt: skip
    base_row = (
        '<tr class="baseline"><td>persistence (last T)</td><td class="num"></td>'
        f'<td class="num">{fmt(baseline)}</td><td></td><td class="num">0.0%</td><td></td>'
        "<td></td><td></td></tr>"
    )
    html_table = html_table.replace("</tbody>", base_row + "</tbody>")
    return (
        "<h2>Leaderboard</h2>"
        + figure(
            "leaderboard.png",
            "leaderboard bar chart",
            "Best validation MAE per architecture (or named book model); grey: the "
            "persistence baseline. Lower is better.",
        )
        + html_table
        + '<p class="meta">Every trial is scored on the same validation targets, whatever its '
        "window (the split defines them; a sweep's low-fidelity slice is the same for every "
        f"trial){_targets_phrase(data)}; skill = 1 − model / persistence on those targets. "
        "Test MAE appears once <code>jena best</code> has evaluated that trial. Ranked: the "
        "completed trials and those the time budget stopped after a finished epoch (at their "
        "best epoch; nobody judged them worse), not the ones the pruner stopped.</p>"
    )


def curves_section(data: ReportData, folder: Path, result: ReportResult) -> str:
    found = curves(data)
    if not any(c[1] or c[2] for c in found):
        return "<h2>Training and validation MAE</h2>" + note("No epoch history.")
    result.figures.append(F.fig_curves(found, data.baseline, folder / "learning_curves.png"))
    return "<h2>Training and validation MAE</h2>" + figure(
        "learning_curves.png",
        "learning curves",
        f"Per-epoch MAE (°C) of the top {len(found)} candidate trials (completed, or stopped "
        "by the time budget).",
    )


def champion_section(data: ReportData, folder: Path, result: ReportResult) -> str:
    head = "<h2>Champion on the test split</h2>"
    champ = champion(data)
    if champ is None:
        result.notes.append("champion not evaluated on the test split: no forecast figures")
        return head + note(
            "No champion has been evaluated on the test split yet: run `jena best --experiment "
            f"{data.experiment}` once (it refits the top configurations first), then write "
            "this report again."
        )
    parts = [head, _champion_table(champ), *_champion_notes(champ)]
    pred = read_predictions(data.uri, champ.run_id)
    if pred is None:
        message = f"the champion's {N.PREDICTIONS_FILE} is missing"
        result.notes.append(message)
        return "".join(parts) + note(message + ": run `jena best` again to log it.")
    if pred.empty:
        return "".join(parts) + note("No test windows.")
    result.figures.append(F.fig_week(pred, folder / "forecast_week.png"))
    result.figures.append(F.fig_errors(pred, folder / "error_by_time.png"))
    parts.append(
        figure("forecast_week.png", "forecast vs actual over a test week",
               "One week of the test split: the champion's 24-hour-ahead forecast, the actual "
               "temperature and the persistence forecast, at the target times.")
        + figure("error_by_time.png", "test error by hour of day and by month",
                 "Mean absolute error on the test windows by the hour of day and the month of "
                 "the target time: champion vs persistence.")
    )  # fmt: skip
    if "low" in pred.columns:
        result.figures.append(F.fig_bands(pred, folder / "interval_bands.png"))
        parts.append(_intervals(champ, synthetic=not _on_real_data(data)))
    return "".join(parts)


def _intervals(champ: Any, *, synthetic: bool) -> str:
    """The calibrated intervals on test: the champion's, the ridge's and persistence's coverage
    (with its interval), mean width and coverage by season; a coverage that misses its level
    said plainly; the band figure."""
    from jena.conformal import SEASON_NAMES, percent

    m = champ.metrics
    level = T.finite(m.get(N.METRIC_INTERVAL_LEVEL))
    if level is None:
        return ""
    rows, warn = [], []
    for who in ("", "ridge_", "persistence_"):
        name = f"{who}{N.METRIC_INTERVAL_COVERAGE}"
        cover, found = T.finite(m.get(name)), champ.interval(name)
        if cover is None:
            continue
        text = fmt(cover, ".1%") + (f" [{found[0]:.1%}, {found[1]:.1%}]" if found else "")
        seasons = [fmt(m.get(f"{name}_{s}"), ".1%") for s in SEASON_NAMES]
        rows.append([who.rstrip("_") or "champion", text,
                     fmt(m.get(f"{who}{N.METRIC_INTERVAL_WIDTH}"), ".2f"), *seasons])  # fmt: skip
        if found and not found[0] <= level <= found[1]:
            way = "under-covers (too narrow)" if found[1] < level else "over-covers (too wide)"
            warn.append(f'<p class="warn">The {rows[-1][0]}\'s {percent(level)} interval '
                        f"<b>{way}</b> on the test split: coverage {text} excludes "
                        f"{percent(level)}.</p>")  # fmt: skip
    head = (f"<h3>{percent(level)} intervals, calibrated on validation, checked on test</h3>"
            '<p class="meta">Each forecaster\'s interval comes from its own residuals on the '
            "full validation split (split conformal, by season and hour of the target); the "
            "test split only checks it, on the same windows for all three. Coverage [95 %]: "
            "a block bootstrap over whole days."
            + (" On a synthetic record these are upper bounds for the real station: its "
               "weather is more predictable." if synthetic else "") + "</p>")  # fmt: skip
    tab = table(["model", "coverage [95 %]", "mean width (°C)", *SEASON_NAMES], rows,
                numeric=set(range(1, 3 + len(SEASON_NAMES))))  # fmt: skip
    caption = ("Three weeks of test targets from each season: the champion's forecast, its "
               f"{percent(level)} interval and the actual temperature; red: outside.")  # fmt: skip
    fig = figure("interval_bands.png", "test forecasts with their interval against the truth",
                 caption)  # fmt: skip
    return head + tab + "".join(warn) + fig


def _champion_table(champ: Any) -> str:
    """The champion, its seeds and the ridge reference against persistence on test."""
    base = champ.baseline_test_mae
    skill = 1 - champ.test_mae / base if base else None
    what = (f"{champ.label}: {seeds_phrase(len(champ.members))} (refit)"
            if champ.kind == "refit" else champ.label)  # fmt: skip

    def with_interval(value: float | None, name: str, spec: str = ".4f") -> str:
        found = champ.interval(name)
        text = fmt(value, spec)
        return text if found is None or not text else (
            f"{text} [{format(found[0], spec)}, {format(found[1], spec)}]")  # fmt: skip

    rows = [[what, with_interval(champ.val_mae, N.METRIC_CHAMPION_VAL),
             with_interval(champ.test_mae, N.METRIC_TEST_MAE), fmt(base),
             with_interval(skill, N.METRIC_TEST_SKILL, "+.1%"), champ.uses]]  # fmt: skip
    for seed, mae in champ.members:
        member_skill = 1 - mae / base if base else None
        rows.append([f"  seed {seed}", "", fmt(mae), fmt(base), fmt(member_skill, "+.1%"), ""])
    ridge = T.finite(champ.metrics.get(N.METRIC_RIDGE_TEST))
    if ridge is not None:
        rows.append(["ridge (linear reference)", fmt(champ.metrics.get(N.METRIC_RIDGE_VAL)),
                     fmt(ridge), fmt(base), fmt(1 - ridge / base if base else None, "+.1%"),
                     ""])  # fmt: skip
    return table(["model", "val MAE (°C) [95 %]", "test MAE (°C) [95 %]",
                  "persistence test MAE (°C)", "skill [95 %]", "test evaluations"], rows,
                 numeric={1, 2, 3, 4, 5})  # fmt: skip


def _champion_notes(champ: Any) -> list[str]:
    """How to read the intervals and the DM test; a champion worse than persistence on test,
    one promoted by --force, a test set used more than once."""
    base = champ.baseline_test_mae
    skill = 1 - champ.test_mae / base if base else None
    parts = []
    p_test = T.finite(champ.metrics.get("test_dm_pvalue"))
    if p_test is not None:
        parts.append(
            '<p class="meta">[95 %]: a block bootstrap over whole days of windows (the range '
            "that would cover the true figure 19 times in 20). Diebold–Mariano test against "
            f"persistence on test: statistic {fmt(champ.metrics.get('test_dm_stat'), '+.2f')}, "
            f"p = {p_test:.2g} (the chance of a difference this large if the champion and "
            "persistence were equally good).</p>"
        )
    if champ.worse_than_persistence_on_test:
        parts.append(
            f'<p class="warn">The champion is <b>worse than persistence on the test split</b>: '
            f"test MAE {champ.test_mae:.3f} °C against {fmt(base, '.3f')} °C (skill "
            f"{fmt(skill, '+.1%')}). What it gained on validation did not carry over to the "
            "test period; on a short record, a chronological split tests on other seasons than "
            "it selects on (use <code>--preset blocked</code>).</p>"
        )
    val_low = champ.interval(N.METRIC_CHAMPION_VAL_SKILL)
    unproven = val_low[0] <= 0 if val_low else (champ.val_skill or 0) <= 0
    if champ.val_skill is not None and unproven:
        parts.append(
            '<p class="warn">This model cannot be told apart from persistence on validation '
            f"(skill {fmt(champ.val_skill, '+.1%', '?')}"
            + (f", 95 % interval [{val_low[0]:+.1%}, {val_low[1]:+.1%}]" if val_low else "")
            + "): it was evaluated and registered only because <code>jena best --force</code> "
            "asked for it.</p>"
        )
    if champ.uses.isdigit() and int(champ.uses) > 1:
        parts.append(
            f'<p class="warn">The test set of this champion was used {champ.uses} times: the test '
            "MAE has informed decisions and is no longer an unbiased estimate.</p>"
        )
    return parts


def refit_section(data: ReportData) -> str:
    refit = refit_table(data)
    if not refit:
        return ""
    rows = []
    for c in sorted(refit["configs"], key=lambda c: c["mean_val_mae"]):
        mark = " (selected)" if c["key"] == refit.get("selected") else ""
        seeds = ", ".join(f"{m['val_mae']:.4f}" for m in c["members"])
        rows.append([c["label"] + mark, fmt(c["sweep_val_mae"]), str(len(c["members"])),
                     fmt(c["mean_val_mae"]), fmt(c["std_val_mae"]), seeds])  # fmt: skip
    s = refit["settings"]
    headers = ["configuration", "sweep val MAE (°C)", "seeds", "mean val MAE (°C)", "± std",
               "per seed"]  # fmt: skip
    return (
        "<h2>Refit at full fidelity</h2>"
        f'<p class="meta">The top {s["top_k"]} distinct configurations, each trained '
        f"{s['seeds']} times (seeds) on every training window for up to {s['epochs']} epochs, "
        f"early stopping (patience {s['patience']}) on the full validation split; the "
        "selected one has the lowest mean.</p>" + table(headers, rows, numeric={1, 2, 3, 4})
    )


def compute_section(data: ReportData, folder: Path, result: ReportResult) -> str:
    spent, best, books, refit = compute_curve(data)
    if not spent:
        return ""
    references = [(f"book {name} (this sweep's fidelity)", v) for name, v in books]
    if T.finite(data.baseline) is not None and _on_real_data(data):
        from jena.book import edition_models

        preset = str(data.frame.get(f"tags.{N.TAG_PRESET}", pd.Series(["book2"])).iloc[0])
        if preset in ("book2", "book1"):  # the published figures are of the book's splits
            references += [(f"book {m.name} (published)", m.published_val_mae)
                           for m in edition_models(preset) if m.published_val_mae]  # fmt: skip
    path = folder / "compute.png"
    result.figures.append(F.fig_compute(spent, best, references, data.baseline, path, refit))
    return "<h2>Quality against compute</h2>" + figure(
        "compute.png",
        "best validation MAE against cumulative compute",
        "Best validation MAE so far against the training compute spent (seconds in model.fit, "
        "summed over trials in the order they started, then the refit's runs); dashed: the "
        "book's models — warm-start trials at this sweep's fidelity, and the published figures "
        "on the real record.",
    )


def _on_real_data(data: ReportData) -> bool:
    column = f"tags.{N.TAG_DATA_SOURCE}"
    return column in data.frame.columns and set(data.frame[column].dropna()) == {"jena"}


def search_section(data: ReportData, folder: Path, result: ReportResult) -> str:
    """What the trials tried, drawn from the store for every driver (:mod:`._search`)."""
    from ._search import search_plots

    plots = search_plots(data, folder)
    parts = ["<h2>Search</h2>", f'<p class="meta">Drawn from {html.escape(plots.origin)}.</p>']
    for path, alt, caption in plots.figures:
        result.figures.append(path)
        parts.append(figure(path.name, alt, caption))
    for text in plots.notes:
        result.notes.append(text)
        parts.append(note(text))
    return "".join(parts)


def top_trials_section(data: ReportData) -> str:
    prefix = f"params.{N.PARAM_SEARCH_PREFIX}"
    hp_columns = sorted(c for c in data.frame.columns if c.startswith(prefix))
    rows = []
    for r in data.done.head(TOP_TABLE).to_dict("records"):
        values = ", ".join(
            f"{c.removeprefix(prefix)}={short(r[c])}" for c in hp_columns
            if isinstance(r.get(c), str)
        )  # fmt: skip
        rows.append([str(r["number"]), str(r.get("driver")), T.label(r), fmt(r["val_mae"]),
                     fmt(r.get("duration_s"), ".0f"), str(r.get("state")), values])  # fmt: skip
    if not rows:
        return ""
    return f"<h2>Top {len(rows)} trials</h2>" + table(
        ["trial", "driver", "architecture", "val MAE (°C)", "seconds", "state", "proposed values"],
        rows,
        numeric={3, 4},
    )


def page(data: ReportData, sections: list[str]) -> str:
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    column = f"tags.{N.TAG_DATA_SOURCE}"
    sources = sorted(set(data.frame.get(column, pd.Series(dtype=str)).dropna()))
    parent = data.parent
    meta = (
        f"generated {generated} · MLflow {html.escape(data.uri)} · latest invocation "
        f"{html.escape(parent.run_id if parent else '?')} · data "
        f"{html.escape(', '.join(sources) or '?')}"
    )
    name = html.escape(data.experiment)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>jena · {name}</title><style>{CSS}</style></head><body>"
        f"<h1>Sweep {name}: 24-hour temperature forecasts</h1>"
        f'<p class="meta">{meta}</p>' + "".join(sections) + "</body></html>\n"
    )
