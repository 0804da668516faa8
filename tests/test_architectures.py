"""The architecture registry (jena/architectures.py): a new architecture is one builder function
and one registry entry, and nothing else — it is searched, packed where its body is one the
packed trainer computes, refit and served."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import TINY, TINY_SETS, mlflow_client

from jena import cli
from jena.architectures import ARCHITECTURES, Architecture, register, unregister
from jena.config import TrialConfig
from jena.data import load
from jena.errors import ConfigError
from jena.schema import write_jena_csv


def build_last_step(config: TrialConfig, x: Any) -> Any:
    """The window's last step only: (batch, steps, f) -> (batch, f)."""
    from keras import layers

    return layers.Flatten()(layers.Cropping1D((int(x.shape[1]) - 1, 0))(x))


def build_flat(config: TrialConfig, x: Any) -> Any:
    """The whole window flattened, (batch, steps, f) -> (batch, steps*f): a body the packed
    trainer computes ("flatten")."""
    from keras import layers

    return layers.Flatten()(x)


LAST_STEP = Architecture("last_step", "the window's last step", build_last_step)
FLAT = Architecture("flat", "the window flattened", build_flat, packs_as="flatten")


@pytest.fixture
def fixtures() -> Iterator[None]:
    for arch in (LAST_STEP, FLAT):
        register(arch)
    try:
        yield
    finally:
        for arch in (LAST_STEP, FLAT):
            unregister(arch.name)


def jena_json(*argv: str) -> dict[str, Any]:
    with contextlib.redirect_stdout(buffer := io.StringIO()):
        code = cli.main([*argv, "--json"])
    assert code == 0
    return dict(json.loads(buffer.getvalue()))


def test_a_registered_architecture_is_searched_refit_and_served(
    fixtures: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JENA_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sets = (*TINY_SETS, 'space.include=["architecture", "learning_rate"]',
            'space.ranges={architecture=["last_step"]}',
            "space.fixed={sequence_length_hours=24, normalise_target=true, "
            'residual="persistence"}',
            "refit.top_k=1", "refit.seeds=1", "refit.epochs=1", "refit.patience=1")  # fmt: skip
    argv = [a for s in sets for a in ("--set", s)]
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(["sweep", "default", "--name", "arch", "--trials", "2",
                         "--tracking-uri", uri, *argv]) == 0  # fmt: skip
    client = mlflow_client(uri=uri)
    experiment = client.get_experiment_by_name("arch")
    assert experiment is not None
    trials = [r for r in client.search_runs([experiment.experiment_id])
              if r.data.params.get("architecture")]  # fmt: skip
    assert len(trials) == 2
    assert {r.data.params["architecture"] for r in trials} == {"last_step"}
    assert {r.info.status for r in trials} == {"FINISHED"}
    best = jena_json("best", "--force", "--experiment", "arch", "--tracking-uri", uri,
                     "--rung-epochs", "0")  # fmt: skip
    assert best["architecture"] == "last_step" and best["kind"] == "refit"
    csv = write_jena_csv(load(TINY).frame.iloc[-3 * 144 :], tmp_path / "last.csv")
    forecast = jena_json("predict", "--data", str(csv), "--tracking-uri", uri)
    assert isinstance(forecast["forecast"], float)


def test_packing_follows_the_registry_entry(fixtures: None) -> None:
    from jena.packed import packable, shape_key
    from jena.packed._model import Spec

    flat = TrialConfig(architecture="flat", sequence_length=24)
    assert packable(flat) and shape_key(flat) is not None
    assert Spec.of(flat, (0.0, 1.0)).body == "flatten"
    last = TrialConfig(architecture="last_step", sequence_length=24)
    assert not packable(last) and shape_key(last) is None
    assert "flat" in ARCHITECTURES and "last_step" in ARCHITECTURES


def test_the_registry_refuses_a_clash_and_forgets_what_it_unregisters(fixtures: None) -> None:
    with pytest.raises(ConfigError, match="'flat' is registered already"):
        register(FLAT)
    with pytest.raises(ConfigError, match="packs_as"):
        register(Architecture("odd", "?", build_flat, packs_as="cubic"))
    unregister("flat")
    try:
        assert "flat" not in ARCHITECTURES
        with pytest.raises(ConfigError, match="unknown architecture 'flat'"):
            TrialConfig(architecture="flat").validate()
    finally:
        register(FLAT)
