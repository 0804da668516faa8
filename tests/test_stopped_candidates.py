"""A trial cut short by the time budget is still a candidate (issue 34): it ends ``stopped``
(not ``pruned``) and, with a finished epoch, ranks wherever completed trials do — the live
board, the summary, the UI link's search, the refit's top-k, ``jena best --no-refit`` and
``--warm-start`` — while a trial the pruner stopped stays out of every ranking.

One sweep in three invocations (tiny synthetic data, dense models, 2 epochs of 2 batches):

- trial 0 completes, without ``residual`` (it predicts about the mean temperature: far worse
  than persistence);
- trial 1 (``residual``: about persistence) is pruned after its first epoch: its reported
  epochs are made to look 100 °C worse, so the median pruner stops it; its own best MAE is
  still good — the pruner, not its value, keeps it out;
- trial 2 (``residual``) is stopped by a deadline that passes in its second epoch, after one
  finished epoch: a stop check that fires at its 5th look (after each batch: epoch 1 is 2
  training + 2 validation batches), not wall-clock luck.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import mlflow_client, runs, tiny_sweep
from optuna.trial import TrialState

import sweeps.trial as trial_module
from jena import cli, tracking
from jena.refit import candidates as refit_candidates
from jena.tracking import names
from sweeps import run_sweep
from sweeps.optuna import SweepStudy
from sweeps.runner import QuietView
from sweeps.warm import sweep_warm_points

DENSE = ('architecture="dense"',)  # learning_rate searched


class Watched(QuietView):
    """A view that keeps the live board's state (what the board draws)."""

    state: Any = None

    def watch(self, state: Any) -> Any:
        self.state = state
        return super().watch(state)


def worse_reports(real: Any) -> Any:
    """The real trainer, its epochs reported 100 °C worse (to the run and to the pruner)."""

    def train(config: Any, cache: Any, fidelity: Any, *, on_epoch: Any = None, **kw: Any) -> Any:
        def hook(epoch: int, metrics: dict[str, float]) -> None:
            on_epoch(epoch, {**metrics, "val_mae": metrics["val_mae"] + 100})

        return real(config, cache, fidelity, on_epoch=hook, **kw)

    return train


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """(root, tracking URI, the third invocation's config, its summary, its board's state)."""
    root = tmp_path_factory.mktemp("stopped")
    uri = f"sqlite:///{root / 'mlflow.db'}"

    def sweep(*sets: str, trials: int) -> Any:
        return tiny_sweep(*DENSE, *sets, trials=trials, tracking_uri=uri, root=root)

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("JENA_TRACKING_URI", raising=False)
        first = run_sweep(sweep("residual=false", trials=1))
        assert [t.number for t in first.top] == [0]
        with pytest.MonkeyPatch.context() as worse:
            worse.setattr(trial_module, "train", worse_reports(trial_module.train))
            run_sweep(sweep("residual=true", 'pruner.type="median"',
                            "pruner.options={n_startup_trials=1, n_warmup_steps=0}",
                            trials=2))  # fmt: skip
        looks = {"n": 0}

        def out_of_time(self: Any) -> str | None:
            looks["n"] += 1
            return "the sweep's time budget (1 min) ran out" if looks["n"] >= 5 else None

        with pytest.MonkeyPatch.context() as late:
            late.setattr(trial_module.SweepContext, "out_of_time", out_of_time)
            cfg = sweep("residual=true", trials=3)
            view = Watched()
            summary = run_sweep(cfg, view)
    return root, uri, cfg, summary, view.state


def by_number(cfg: Any) -> dict[int, Any]:
    return {int(r.data.tags["trial_number"]): r for r in runs(cfg)
            if "mlflow.parentRunId" in r.data.tags}  # fmt: skip


def test_a_stopped_trial_is_told_apart_and_keeps_its_model(swept: Any) -> None:
    _, _, cfg, summary, _ = swept
    trials = by_number(cfg)
    states = {n: r.data.tags[names.TAG_STATE] for n, r in trials.items()}
    assert states == {0: "completed", 1: "pruned", 2: "stopped"}
    stopped = trials[2]
    assert stopped.info.status == "FINISHED"
    assert "time budget" in stopped.data.tags[names.TAG_FAILURE]
    assert "after 1 finished epoch" in stopped.data.tags[names.TAG_FAILURE]
    assert stopped.data.tags.get(names.TAG_MODEL_ARTIFACT)  # a model at its best epoch
    assert names.TAG_MODEL_ARTIFACT not in trials[1].data.tags  # pruned: none, as before
    # what Optuna is told: PRUNED (a partial curve for its samplers), the state in a user attr
    t2 = SweepStudy(cfg).study.trials[2]
    assert t2.state == TrialState.PRUNED and t2.user_attrs["state"] == "stopped"
    assert summary.counts.get("stopped") == 1 and summary.counts["pruned"] == 0


def test_the_summary_and_the_board_rank_it_first(swept: Any) -> None:
    _, _, cfg, summary, state = swept
    assert [t.number for t in summary.top] == [2, 0]  # the pruned trial 1 is not ranked
    assert summary.top[0].state == "stopped"
    assert summary.best is not None and summary.best.number == 2
    assert summary.best.params == SweepStudy(cfg).study.trials[2].params  # its proposal
    assert state.best_number == 2 and state.best == pytest.approx(summary.top[0].val_mae)
    parent = [r for r in runs(cfg) if "mlflow.parentRunId" not in r.data.tags]
    last = max(parent, key=lambda r: r.info.start_time)
    assert last.data.tags[names.TAG_BEST_NUMBER] == "2"


def test_the_ui_links_search_returns_the_summarys_order(swept: Any) -> None:
    _, _, cfg, summary, _ = swept
    query = parse_qs(urlsplit(summary.runs_page.removeprefix("#")).query)
    (search,), (key,), (asc,) = query["searchFilter"], query["orderByKey"], query["orderByAsc"]
    client = mlflow_client(cfg)
    exp = client.get_experiment_by_name(cfg.name)
    order = f"{key} {'ASC' if asc == 'true' else 'DESC'}"
    found = client.search_runs([exp.experiment_id], search, order_by=[order])
    assert [int(r.data.tags["trial_number"]) for r in found] == [t.number for t in summary.top]


def test_the_refit_and_jena_best_take_it(
    swept: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, uri, cfg, _, _ = swept
    monkeypatch.chdir(root)
    assert [c.source_trial for c in refit_candidates(uri, cfg.name, 3)] == [2, 0]
    code = cli.main(["refit", "--experiment", cfg.name, "--tracking-uri", uri, "--top-k", "1",
                     "--seeds", "1", "--epochs", "1", "--rung-epochs", "0", "--json"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err[-2000:]
    (config,) = json.loads(out)["configs"]
    assert config["source_trial"] == 2
    code = cli.main(["best", "--experiment", cfg.name, "--tracking-uri", uri, "--no-refit",
                     "--force", "--json"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err[-2000:]
    assert json.loads(out)["trial"] == 2


def test_another_sweep_warm_starts_from_it(swept: Any) -> None:
    root, uri, cfg, _, _ = swept
    other = tiny_sweep(*DENSE, "residual=true", name="other", tracking_uri=uri, root=root)
    points, skipped = sweep_warm_points(other, trial_module.make_space(other), cfg.name)
    labels = [p.label for p in points] + [s.split(":")[1] for s in skipped]
    assert "sweep:tiny#2" in [p.label for p in points]
    assert not any(label.endswith("#1") for label in labels)  # pruned: not a finished trial


def test_a_trial_stopped_before_its_first_epoch_is_no_candidate() -> None:
    """The frame's definition and the UI's search agree on it too: no result, no rank."""
    import pandas as pd

    frame = pd.DataFrame({"state": ["stopped", "stopped", "pruned", "completed"],
                          "val_mae": [float("nan"), 2.5, 2.0, 3.0],
                          "start_time": pd.to_datetime([1, 2, 3, 4], unit="s")})  # fmt: skip
    ranked = tracking.candidates(frame)
    assert list(ranked.index) == [1, 3]
    assert "tags.state != 'pruned'" in tracking.CANDIDATES_FILTER
    assert tracking.CANDIDATE_STATES == ("completed", "stopped")
