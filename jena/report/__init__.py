"""``jena report``: one HTML page (plus PNG figures) that sums up a sweep.

Everything comes from the MLflow store, so the page covers every driver and every invocation:

* the counts of completed / pruned / failed trials and the compute time;
* the leaderboard per architecture (or named book model): best validation MAE against the
  persistence baseline, as a bar chart and a table — the chapter's table, produced automatically;
* training and validation MAE curves of the top trials (per-epoch history);
* for the champion (the best completed trial), if ``jena best`` has evaluated it: a week of test
  forecasts against the actual temperature, and the error by hour of day and by month against
  persistence; its calibrated intervals (the champion's, the ridge's and persistence's coverage
  with its interval, mean width, coverage by season, and three weeks of each season's test
  forecasts with their band against the truth). These come from the ``test_predictions.csv``
  and the metrics that ``jena best`` logged: the report itself never reads a test row;
* the search (optimisation history, importances, parallel coordinates), drawn from the MLflow
  trials the same way for every driver (``_search``: no tuner is imported).

Modules: ``_data`` (what is shown, read through :mod:`jena.tracking`), ``_figures`` (one function
per PNG), ``_search`` (the search's figures), ``_page`` (HTML, one function per section). The
page and figures are written to ``reports/<experiment>/`` (or ``--out``) and logged to the latest
parent run under ``report/``.
"""

from __future__ import annotations

from pathlib import Path

from jena import tracking as T
from jena.errors import ConfigError
from jena.secrets import redact_files
from jena.tracking import names as N

from . import _page as P
from ._data import ReportData, leaderboard, parse_text, read
from ._figures import no_warnings, pyplot, save
from ._page import ReportResult
from ._search import SearchPlots, importances, search_plots

__all__ = [
    "ReportData",
    "ReportResult",
    "SearchPlots",
    "importances",
    "leaderboard",
    "no_warnings",
    "parse_text",
    "pyplot",
    "save",
    "search_plots",
    "write_report",
]


def write_report(
    experiment: str,
    *,
    out: Path | str | None = None,
    tracking_uri: str | None = None,
    log: bool = True,
) -> ReportResult:
    """Write ``index.html`` and its figures; log them to the latest parent run."""
    uri = T.resolve_uri(tracking_uri)
    data = read(experiment, uri)
    if data.frame.empty:
        raise ConfigError(f"experiment {experiment!r} has no trials yet: nothing to report")
    folder = Path(out) if out is not None else Path("reports") / experiment
    folder.mkdir(parents=True, exist_ok=True)
    result = ReportResult(html=folder / "index.html")
    sections = [
        P.trials_section(data),
        P.leaderboard_section(data, folder, result),
        P.curves_section(data, folder, result),
        P.refit_section(data),
        P.champion_section(data, folder, result),
        P.compute_section(data, folder, result),
        P.search_section(data, folder, result),
        P.top_trials_section(data),
    ]
    result.html.write_text(P.page(data, sections), encoding="utf-8")
    redact_files(folder)  # the page and the search's pages say the store, never its password
    if log and data.parent is not None:
        T.log_artifacts(uri, data.parent.run_id, folder, N.REPORT_DIR)
        result.logged_to = data.parent.run_id
    return result
