"""From sweep to champion within the user's budget (issue 21): the refit's plan says its cost
before it is spent, a budget ends it with what it finished, and a race (successive halving)
stops the worse configurations first."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import mlflow_client, runs, tiny_sweep

import jena.refit as refit_module
import sweeps.trial as trial_module
from jena import cli
from jena import tracking as T
from jena.errors import ConfigError
from jena.recording import NoEvents
from jena.refit import RefitSettings, candidates, config_key, plan_refit, refit, refit_status
from jena.refit._plan import make_plan
from jena.tracking import _encode as encode
from jena.tracking import names as N
from jena.tracking.names import TAG_RACED_OUT
from jena.train import DataCache, FitPlan, TrialPruned, TrialResult
from sweeps import run_sweep

GRU = 'space.fixed={architecture="gru", units=8, sequence_length_hours=24, rnn_layers=1, '
GRU += "normalise_target=true}"
# sweep epochs long enough that their steady part is measured (30 training, 10 validation
# batches), and three distinct configurations (a learning rate each)
SWEPT = ('space.include=["learning_rate"]', GRU, "fidelity.steps_per_epoch=30",
         "fidelity.validation_steps=10", "fidelity.max_epochs=3")  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One sweep of three distinct GRU configurations on the tiny record."""
    root = tmp_path_factory.mktemp("race")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("JENA_TRACKING_URI", raising=False)
        uri = T.default_tracking_uri()
        run_sweep(tiny_sweep(*SWEPT, "timeout_minutes=7", name="race", trials=3))
        yield {"root": root, "uri": uri}


def _members(uri: str, experiment: str, patience: int) -> list[Any]:
    return [r for r in runs(experiment, uri) if r.data.tags.get(N.TAG_RUN_TYPE) ==
            N.RUN_REFIT_MEMBER and r.data.tags[N.TAG_REFIT_PATIENCE] == str(patience)]  # fmt: skip


class Machine:
    """An injected clock: training costs ``TRAIN_S`` a training window and ``VAL_S`` a
    validation window (0.3 of it), plus ``COMPILE_S`` once per fit (its first epoch). Every
    duration a trainer reports and every metric's timestamp is read from it, so the plan's
    estimate can be held to what it measured, exactly, whatever the machine's load."""

    TRAIN_S, VAL_S, COMPILE_S = 0.002, 0.0006, 7.0

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def ms(self) -> int:
        return round(self.now * 1000)

    def trainer(self, real: Any) -> Any:
        """``real`` (:func:`jena.train.train`), its epochs and duration on this clock."""

        def train(config: Any, data: Any, fidelity: Any, **hooks: Any) -> Any:
            fit = FitPlan.of(config, data, fidelity)
            windows, val = fit.train_windows(config.seed), len(fit.val_starts)
            started, batches = self.now, [0]
            on_epoch, on_batch = hooks["on_epoch"], hooks["on_batch"]

            def batch(b: int, n: int) -> None:
                batches[0] = n
                on_batch(b, n)

            def epoch(e: int, metrics: Any) -> None:
                trained = self.TRAIN_S * windows.windows_in(batches[0])
                self.now += (self.COMPILE_S if e == 1 else 0.0) + trained + self.VAL_S * val
                on_epoch(e, metrics)

            result = real(config, data, fidelity, **hooks | {"on_epoch": epoch, "on_batch": batch})
            result.duration_s = self.now - started
            return result

        return train


def test_the_plan_is_said_before_training_and_holds_on_an_injected_clock(
    store: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """`--plan` prints the plan and creates nothing. On a clock where a window costs the same
    in the sweep and in the refit, the estimate (fit seconds) of 4 members, taken from the
    sweep's trials (3 epochs of 30 batches, 10 validation batches), is what the members cost
    at full fidelity: seconds by hand = 4 × (compile + 2 epochs × (train + 0.3 val windows))."""
    uri = store["uri"]
    monkeypatch.chdir(store["root"])
    before = len(runs("race", uri))
    argv = ["refit", "--experiment", "race", "--tracking-uri", uri, "--top-k", "2", "--seeds",
            "2", "--epochs", "2", "--patience", "2", "--rung-epochs", "0"]  # fmt: skip
    assert cli.main([*argv, "--plan"]) == 0
    out = capsys.readouterr().out
    assert "refit plan of 'race'" in out and "no race" in out and out.count(" seed ") == 4
    assert "estimated" in out and "budget 7.0 min" in out  # the sweep's own budget
    assert len(runs("race", uri)) == before  # nothing trained, no run created

    machine = Machine()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(trial_module, "train", machine.trainer(trial_module.train))
    monkeypatch.setattr(refit_module, "train", machine.trainer(refit_module.train))
    monkeypatch.setattr(encode, "now_ms", machine.ms)
    uri = T.default_tracking_uri()
    run_sweep(tiny_sweep(*SWEPT, name="clocked", trials=2))
    settings = RefitSettings(top_k=2, seeds=2, epochs=2, patience=2, rung_epochs=0)
    plan = plan_refit("clocked", tracking_uri=uri, settings=settings)
    assert [m.epochs for m in plan.members] == [2.0] * 4  # patience 2 cannot stop 2 epochs
    result = refit("clocked", tracking_uri=uri, plan=plan)
    assert result.trained == 4 and result.complete
    expected = 0.0
    for c in result.configs:
        data = DataCache(plan.dataset, c.candidate.preset)  # type: ignore[arg-type]
        fit = FitPlan.of(c.candidate.config, data, settings.fidelity())
        epoch_s = Machine.TRAIN_S * len(fit.train_starts) + Machine.VAL_S * len(fit.val_starts)
        expected += 2 * (Machine.COMPILE_S + 2 * epoch_s)
    measured = sum(m.fit_s for c in result.configs for m in c.members)
    assert measured == pytest.approx(result.fit_s) == pytest.approx(expected, rel=1e-6)
    assert plan.total_s == pytest.approx(measured, rel=1e-3), [vars(m) for m in plan.members]
    stage = mlflow_client(uri=uri).get_run(str(result.stage_run_id))
    assert stage.data.metrics["estimated_fit_s"] == pytest.approx(plan.total_s)
    assert stage.data.metrics["estimate_ratio"] == pytest.approx(measured / plan.total_s)
    assert stage.data.tags["refit_outcome"] == "4 completed"


def test_the_budget_ends_the_refit_with_what_it_finished(
    store: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A budget of about 1.5 members: what fits finishes, the member running at the deadline
    stops (pruned, its best epoch kept), the rest never start; the refit ends by the deadline
    plus one member's last epoch."""
    uri = store["uri"]
    monkeypatch.chdir(store["root"])
    one = RefitSettings(top_k=1, seeds=1, epochs=2, patience=3, rung_epochs=0)
    started = time.monotonic()
    alone = refit("race", tracking_uri=uri, settings=one)
    member_s = time.monotonic() - started  # one member, recorded, as the refit spends it
    epoch_s = alone.configs[0].members[0].fit_s / 2

    budget = 1.5 * member_s
    settings = RefitSettings(top_k=1, seeds=4, epochs=2, patience=4, rung_epochs=0,
                             budget_minutes=budget / 60)  # fmt: skip
    plan = plan_refit("race", tracking_uri=uri, settings=settings)
    started = time.monotonic()
    result = refit("race", tracking_uri=uri, plan=plan)
    took = time.monotonic() - started
    assert took <= budget + epoch_s + 5.0, (took, budget, epoch_s)  # 5 s: closing the runs

    (config,) = result.configs
    done = [m.seed for m in config.members]
    n = len(done)
    assert n >= 1 and done == list(range(n)) and result.trained == n  # what it finished
    # the member running at the deadline stopped; none if it fell between two members
    stopped = [seed for seed, what in config.outcomes.items() if what != "completed"]
    assert stopped in ([], [n])
    assert all(config.outcomes[seed] == "stopped by the budget" for seed in stopped)
    waiting = 4 - n - len(stopped)
    assert waiting > 0 or stopped  # the budget did stop the refit
    said = ", ".join([f"{n} completed", *(["1 stopped by the budget"] if stopped else []),
                      *([f"{waiting} not started"] if waiting else [])])  # fmt: skip
    assert result.outcome_text() == said and not result.complete
    kids = {int(r.data.tags[N.TAG_REFIT_SEED]): r for r in _members(uri, "race", 4)}
    assert sorted(kids) == list(range(n + len(stopped)))  # the seeds after never started: no run
    for seed in stopped:
        tags = kids[seed].data.tags
        assert tags[N.TAG_STATE] == "pruned" and "time budget" in tags[N.TAG_FAILURE]
    stage = mlflow_client(uri=uri).get_run(str(result.stage_run_id)).data.tags
    assert stage["refit_outcome"] == said
    assert result.selected.members == config.members  # what finished is the champion's
    assert ("only one finished seed" in (result.seeds_note or "")) == (n == 1)
    rest = plan_refit("race", tracking_uri=uri, settings=replace(settings, budget_minutes=None))
    assert [m.seed for m in rest.members] == list(range(n, 4)) and rest.reused == n  # goes on


def test_the_race_stops_the_clearly_worse_configuration_first(
    store: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three configurations, rungs at 1 and 2 epochs: the sweep's best is poisoned (its
    validation MAE + 10 °C as the race sees it), so it stops at the first rung; the second
    rung stops one more; the survivor gets both seeds. A re-run replays the race and trains
    nothing."""
    uri = store["uri"]
    monkeypatch.chdir(store["root"])
    settings = RefitSettings(top_k=3, seeds=2, epochs=3, patience=5, rung_epochs=1)
    ranked = candidates(uri, "race", 3)
    bad = ranked[0].key
    real = refit_module.train

    def poisoned(config: Any, data: Any, fidelity: Any, **hooks: Any) -> Any:
        on_epoch = hooks["on_epoch"]
        if config_key(config, "book2") == bad:
            hooks["on_epoch"] = lambda e, m: on_epoch(e, {**m, "val_mae": m["val_mae"] + 10.0})
        return real(config, data, fidelity, **hooks)

    monkeypatch.setattr(refit_module, "train", poisoned)
    plan = plan_refit("race", tracking_uri=uri, settings=settings)
    assert plan.rungs == [1, 2]
    assert [(m.label, m.until) for m in plan.members] == [
        (ranked[0].label, "to the end"), (ranked[1].label, "rung 2 (2 epochs)"),
        (ranked[2].label, "rung 1 (1 epoch)"), (ranked[0].label, "to the end"),
    ]  # the race's first seeds first, then the survivor's further seed  # fmt: skip
    assert plan.after_race == 2  # seed 1 of the configurations that may stop: not counted
    started = time.perf_counter()
    result = refit("race", tracking_uri=uri, plan=plan)
    wall_s = time.perf_counter() - started

    race = result.race
    assert race is not None and race.decided and race.rungs_run == [1, 2]
    first_out = next(iter(race.raced_out))
    assert first_out == bad and "raced out at rung 1 (1 epoch)" in race.raced_out[bad]
    (survivor,) = [c for c in result.configs if not c.raced_out]
    assert [m.seed for m in survivor.members] == [0, 1] and result.selected is survivor
    assert result.complete
    client = mlflow_client(uri=uri)
    for c in result.configs:
        kids = {int(r.data.tags[N.TAG_REFIT_SEED]): r for r in _members(uri, "race", 5)
                if r.data.tags[N.TAG_REFIT_KEY] == c.candidate.key}  # fmt: skip
        if not c.raced_out:
            continue
        assert sorted(kids) == [0]  # its further seed never started
        tags = kids[0].data.tags
        rung = 1 if c.candidate.key == bad else 2
        assert tags[N.TAG_STATE] == "pruned" and tags[TAG_RACED_OUT] == str(rung)
        assert tags[N.TAG_FAILURE].startswith(f"raced out at rung {rung}")
        steps = client.get_metric_history(kids[0].info.run_id, N.METRIC_VAL_MAE)
        assert [m.step for m in steps] == list(range(1, rung + 1))  # stopped at its rung
    # one lane trains at a time: the members' fit (and run) seconds, summed, fit in the wall
    # time of the refit; a lane's wait at a rung is not its compute
    members = _members(uri, "race", 5)
    assert len(members) == 4
    for key in (N.METRIC_FIT_S, N.METRIC_DURATION):
        assert 0 < sum(r.data.metrics[key] for r in members) <= wall_s, key

    again = refit("race", tracking_uri=uri, settings=settings)
    assert again.trained == 0 and again.stage_run_id is None and again.complete
    assert again.race is not None and again.race.raced_out == race.raced_out
    assert refit_status(uri, "race", settings).selected.candidate.key == survivor.candidate.key


# validation MAE per epoch of each configuration's seeds (by sweep rank), as a refit records
# them; a curve ends where the seed stops (early stopping or its last epoch). At rung 1 (epoch
# 1) the third is best and the first worst: the first stops; at rung 2 the second stops; the
# third, which the sweep ranked last, wins, its seed 0 ends at epoch 4, its seed 1 at 5.
CURVES = {
    (0, 0): [3.0, 2.9, 2.8, 2.75, 2.7, 2.7], (0, 1): [3.1, 2.9, 2.8, 2.7, 2.7, 2.7],
    (1, 0): [2.9, 2.5, 2.4], (1, 1): [2.95, 2.6, 2.5],
    (2, 0): [2.8, 2.3, 2.1, 2.0], (2, 1): [2.7, 2.2, 2.2, 2.3, 2.4],
}  # fmt: skip


class Started(NoEvents):
    """The members as a refit starts them: (label, seed), and each one's epochs."""

    def __init__(self) -> None:
        self.order: list[tuple[str, int]] = []
        self.epochs: dict[int, int] = {}  # by its place in the order
        self._place: dict[int, int] = {}  # run number -> place

    def trial_started(self, number: int, summary: str, max_epochs: int) -> None:
        label, seed = summary.split(" seed ")
        self._place[number] = len(self.order)
        self.order.append((label, int(seed.split()[0])))

    def epoch(self, number: int, epoch: int, val_mae: float) -> None:
        self.epochs[self._place[number]] = epoch


def test_the_plan_is_the_race_on_recorded_curves(
    store: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given the curves its members will follow, the plan lists the members the race starts,
    in its order, each with the epochs it trains: the race decides the plan (the plan used to
    assume the sweep's order, here the race's reverse)."""
    uri = store["uri"]
    monkeypatch.chdir(store["root"])
    settings = RefitSettings(top_k=3, seeds=2, epochs=6, patience=6, rung_epochs=1)
    ranked = candidates(uri, "race", 3)
    curves = {(ranked[rank].key, seed): v for (rank, seed), v in CURVES.items()}
    dataset = plan_refit("race", tracking_uri=uri, settings=settings).dataset
    assert dataset is not None
    status = refit_status(uri, "race", settings)
    plan = make_plan(uri, status, dataset, packed=False, accelerator=False, curves=curves)
    label = [c.label for c in ranked]
    expected = [(label[0], 0, 1), (label[1], 0, 2), (label[2], 0, 4), (label[2], 1, 5)]
    assert [(m.label, m.seed, m.epochs) for m in plan.members] == expected  # by hand
    assert [m.until for m in plan.members] == [
        "rung 1 (1 epoch)", "rung 2 (2 epochs)", "to the end", "to the end"]  # fmt: skip
    assert plan.after_race == 2  # seed 1 of the first two: never started

    def scripted(config: Any, data: Any, fidelity: Any, **hooks: Any) -> TrialResult:
        curve = curves[(config_key(config, "book2"), config.seed)]
        result = TrialResult("completed", None, 3.0, None, windows_seen=1, duration_s=1.0)
        try:
            for epoch, val in enumerate(curve, 1):
                result.history.append({"loss": val, "val_mae": val})
                hooks["on_epoch"](epoch, {"loss": val, "val_mae": val})
        except TrialPruned as exc:
            result.state, result.reason = "pruned", str(exc)
        result.val_mae = min(h["val_mae"] for h in result.history)
        result.best_epoch = 1 + [h["val_mae"] for h in result.history].index(result.val_mae)
        return result

    monkeypatch.setattr(refit_module, "train", scripted)
    events = Started()
    result = refit("race", tracking_uri=uri, settings=settings, events=events)
    race = [(label, seed, events.epochs[i]) for i, (label, seed) in enumerate(events.order)]
    assert race == expected
    assert [(m.label, m.seed, m.epochs) for m in plan.members] == race
    counts = {c.candidate.label: len(c.outcomes) for c in result.configs}
    assert counts == {label[0]: 1, label[1]: 1, label[2]: 2}
    assert result.selected.candidate.key == ranked[2].key


def test_settings_and_flags_of_the_budget_and_the_race(
    store: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = store["uri"]
    monkeypatch.chdir(store["root"])
    assert RefitSettings.of_sweep(uri, "race").budget_minutes == 7.0  # the sweep's own
    assert RefitSettings.of_sweep(uri, "race", budget_minutes=2.5).budget_minutes == 2.5
    for bad in ({"budget_minutes": 0}, {"budget_minutes": -1.0}, {"rung_epochs": -1}):
        with pytest.raises(ConfigError, match=r"\[refit\]\.\w+: must be"):
            RefitSettings(**bad)
    with pytest.raises(ConfigError, match=r"--set: \[refit\]\.budget_minutes: must be a positive"):
        tiny_sweep("refit.budget_minutes=0")
    assert tiny_sweep("refit.budget_minutes=5", "refit.rung_epochs=2").refit.rung_epochs == 2
    for flag, value in (("--refit-minutes", "0"), ("--refit-minutes", "soon"),
                        ("--rung-epochs", "-2")):  # fmt: skip
        code = cli.main(["refit", "--experiment", "race", "--tracking-uri", uri, flag, value,
                         "--plan"])  # fmt: skip
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and err[0].startswith(f"error: {flag}: must be"), err
    assert cli.main(["best", "--no-refit", "--plan", "--experiment", "race",
                     "--tracking-uri", uri]) == 2  # fmt: skip
    assert "--plan" in capsys.readouterr().err
    before = len(runs("race", uri))  # a budget in which no seed can finish: refused, unspent
    assert cli.main(["refit", "--experiment", "race", "--tracking-uri", uri, "--epochs", "6",
                     "--refit-minutes", "0.001"]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "finishes no seed within its budget" in err[0], err
    assert "--refit-minutes" in err[0] and len(runs("race", uri)) == before


def test_best_prints_the_plan_and_stops(
    store: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = store["uri"]
    monkeypatch.chdir(store["root"])
    before = len(runs("race", uri))
    code = cli.main(["best", "--experiment", "race", "--tracking-uri", uri, "--plan", "--json",
                     "--refit-minutes", "inf", "--epochs", "4"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0 and "refit plan of 'race'" in captured.err and "no time budget" in captured.err
    assert '"total_s"' in captured.out and len(runs("race", uri)) == before
