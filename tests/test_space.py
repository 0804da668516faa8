"""The search space and TrialConfig: conditions, mapping, subspaces, sampling, validation."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from jena import space
from jena.config import ARCHITECTURES, TrialConfig
from jena.errors import ConfigError
from jena.space import PARAMS, SPACE, Param, active, from_config

BY_NAME = {p.name: p for p in PARAMS}
REQUIRED = {
    "architecture", "bidirectional", "reverse", "rnn_layers", "units", "dropout",
    "recurrent_dropout", "head_dropout", "dense_units", "dense_layers", "conv_filters",
    "conv_kernel", "conv_pool", "conv_layers", "optimizer", "learning_rate", "batch_size",
    "loss", "sampling_rate", "sequence_length_hours", "wind_vector", "time_features",
}  # fmt: skip


# --- conditions -----------------------------------------------------------------------------


def test_space_has_every_required_param() -> None:
    assert set(BY_NAME) >= REQUIRED
    assert len(BY_NAME) == len(PARAMS)  # unique names
    assert [p.name for p in SPACE] == [p.name for p in PARAMS]


def test_conditions_only_look_back() -> None:
    seen: set[str] = set()
    for p in PARAMS:
        assert set(p.when) <= seen, p.name
        seen.add(p.name)


@pytest.mark.parametrize("arch", ["dense", "conv1d"])
def test_recurrent_params_inactive_without_recurrence(arch: str) -> None:
    for name in ("recurrent_dropout", "dropout", "bidirectional", "reverse", "units"):
        assert not active(BY_NAME[name], {"architecture": arch})


@pytest.mark.parametrize("arch", ["lstm", "gru"])
def test_conv_params_inactive_for_rnns(arch: str) -> None:
    for name in ("conv_filters", "conv_kernel", "conv_pool", "conv_layers", "conv_global_pool"):
        assert not active(BY_NAME[name], {"architecture": arch})
    assert active(BY_NAME["recurrent_dropout"], {"architecture": arch})


def test_conv_gru_is_both() -> None:
    values = {"architecture": "conv_gru"}
    assert active(BY_NAME["conv_kernel"], values)
    assert active(BY_NAME["recurrent_dropout"], values)
    assert not active(BY_NAME["conv_global_pool"], values)  # the GRU consumes the sequence


def test_dense_units_needs_a_dense_layer() -> None:
    assert not active(BY_NAME["dense_units"], {"dense_layers": 0})
    assert active(BY_NAME["dense_units"], {"dense_layers": 2})
    assert not active(BY_NAME["dense_units"], {})  # missing -> default dense_layers = 0


def test_param_shapes_translate() -> None:
    for p in PARAMS:
        if p.kind == "categorical":
            assert p.choices and p.default in p.choices
        elif p.kind in ("int", "float"):
            assert p.low is not None and p.high is not None and p.low <= p.default <= p.high
        p.check(p.default)
    assert BY_NAME["learning_rate"].log
    assert (BY_NAME["learning_rate"].low, BY_NAME["learning_rate"].high) == (1e-4, 1e-2)
    assert BY_NAME["batch_size"].choices == (64, 128, 256, 512)
    assert BY_NAME["sampling_rate"].choices == (1, 2, 3, 6)
    assert BY_NAME["architecture"].choices == ARCHITECTURES


# --- to_config ------------------------------------------------------------------------------


def test_defaults_map_to_the_default_config() -> None:
    assert space.to_config(space.defaults()) == TrialConfig()
    assert set(space.defaults()) == set(BY_NAME)


def test_to_config_mapping() -> None:
    cfg = space.to_config(
        {
            "architecture": "gru",
            "rnn_layers": 2,
            "units": 32,
            "recurrent_dropout": 0.25,
            "dense_layers": 1,
            "dense_units": 8,
            "sampling_rate": 3,
            "sequence_length_hours": 48,
            "learning_rate": 3e-4,
            "conv_kernel": 7,  # inactive for gru: ignored
        }
    ).validate()
    assert cfg.architecture == "gru"
    assert cfg.rnn_units == (32, 32)
    assert cfg.recurrent_dropout == 0.25
    assert cfg.dense_units == (8,)
    assert (cfg.sampling_rate, cfg.sequence_length) == (3, 96)  # 48 h * 6 rows / 3
    assert cfg.learning_rate == 3e-4
    assert cfg.conv_kernel == TrialConfig().conv_kernel


@pytest.mark.parametrize(
    ("rate", "hours", "steps"), [(6, 120, 120), (6, 240, 240), (3, 240, 480), (1, 24, 144)]
)
def test_hours_to_steps(rate: int, hours: int, steps: int) -> None:
    cfg = space.to_config({"sampling_rate": rate, "sequence_length_hours": hours})
    assert cfg.sequence_length == steps
    assert cfg.sequence_hours == hours


def test_sampling_rate_alone_keeps_the_span() -> None:
    cfg = space.to_config({"sampling_rate": 2})  # default window: 120 h
    assert cfg.sequence_length == 360
    assert from_config(cfg)["sequence_length_hours"] == 120


def test_to_config_keeps_base_and_resets_recurrent_flags() -> None:
    base = TrialConfig(architecture="lstm", bidirectional=True, recurrent_dropout=0.3, seed=5)
    cfg = space.to_config({"architecture": "dense", "dense_layers": 1}, base).validate()
    assert (cfg.bidirectional, cfg.recurrent_dropout, cfg.seed) == (False, 0.0, 5)
    assert cfg.dense_units == (16,)  # dense_units not given: its base/default value
    cfg = space.to_config({"learning_rate": 5e-3}, base)
    assert cfg == base.replace(learning_rate=5e-3)


def test_to_config_per_layer_activations_follow_depth() -> None:
    base = TrialConfig(architecture="gru", rnn_units=(32, 64), rnn_activation=("tanh", "relu"))
    assert space.to_config({"units": 16}, base).rnn_activation == ("tanh", "relu")
    assert space.to_config({"rnn_layers": 3}, base).validate().rnn_activation == "tanh"


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"unitz": 16}, "unknown search parameter 'unitz'; did you mean 'units'"),
        ({"units": 0}, "units=0 is outside 8..128"),
        ({"batch_size": 100}, "batch_size=100 is not one of"),
        ({"sampling_rate": True}, "sampling_rate=True is not one of"),
        ({"sequence_length_hours": 25}, "not on the grid"),
        ({"wind_vector": 1}, "wind_vector must be true or false"),
    ],
)
def test_to_config_errors(values: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        space.to_config(values)


# --- subspace -------------------------------------------------------------------------------


def test_subspace_include_and_fixed() -> None:
    sub = space.subspace(include=["units", "learning_rate"], fixed={"architecture": "gru"})
    assert sub.names == ("units", "learning_rate")  # in SPACE order
    assert dict(sub.fixed) == {"architecture": "gru"}
    point = sub.sample(random.Random(1))
    assert set(point) == {"units", "learning_rate"}
    cfg = sub.to_config(point).validate()
    assert cfg.architecture == "gru" and cfg.rnn_units == (point["units"],)


def test_subspace_fixed_only() -> None:
    sub = space.subspace(fixed={"architecture": "dense", "loss": "mae"})
    assert "architecture" not in sub.names and "loss" not in sub.names
    assert "units" in sub.names  # present, but never active
    for seed in range(20):
        point = sub.sample(seed)
        assert "units" not in point and "recurrent_dropout" not in point
        cfg = sub.to_config(point).validate()
        assert (cfg.architecture, cfg.loss) == ("dense", "mae")
    rows = {r["name"]: r for r in sub.describe()}
    assert rows["architecture"]["fixed"] and rows["architecture"]["range"] == "= dense"


def test_subspace_nests() -> None:
    sub = space.subspace(fixed={"architecture": "lstm"}).subspace(include=["units"])
    assert sub.names == ("units",)
    assert dict(sub.fixed) == {"architecture": "lstm"}
    with pytest.raises(ConfigError, match="not a free parameter"):
        sub.subspace(include=["learning_rate"])
    with pytest.raises(ConfigError, match="already fixed"):
        sub.subspace(fixed={"architecture": "gru"})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"include": ["nope"]}, "unknown search parameter 'nope'"),
        ({"fixed": {"nope": 1}}, "unknown search parameter 'nope'"),
        ({"fixed": {"units": 500}}, "units=500 is outside 8..128"),
        ({"fixed": {"architecture": "transformer"}}, "architecture='transformer' is not one of"),
        ({"fixed": {"learning_rate": 1.0}}, "learning_rate=1.0 is outside"),
        ({"include": ["units"], "fixed": {"units": 16}}, "both searched"),
    ],
)
def test_subspace_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        space.subspace(**kwargs)  # type: ignore[arg-type]


# --- sample / describe ----------------------------------------------------------------------


def test_sample_always_validates() -> None:
    rng = random.Random(1234)
    archs = set()
    for _ in range(100):
        point = space.sample(rng)
        for name, value in point.items():
            assert active(BY_NAME[name], point), name
            BY_NAME[name].check(value)
        cfg = space.to_config(point).validate()
        archs.add(cfg.architecture)
        TrialConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))).validate()
    assert archs == set(ARCHITECTURES)


def test_sample_is_reproducible_and_follows_its_seed() -> None:
    """The same seed, the same point; another seed, another point (the learning rate alone is
    continuous: 20 seeds, 20 points); a point is drawn from the generator it is given."""
    assert space.sample(random.Random(3)) == space.sample(random.Random(3))
    assert space.sample(7) == space.sample(7) == space.sample(random.Random(7))
    points = [json.dumps(space.sample(seed), sort_keys=True) for seed in range(20)]
    assert len(set(points)) == 20, points
    rng = random.Random(3)
    first, second = space.sample(rng), space.sample(rng)
    assert first == space.sample(3) and second != first  # the generator went on
    assert rng.random() != random.Random(3).random()  # the draws came from it


def test_log_scale_draws_span_decades() -> None:
    lr = BY_NAME["learning_rate"]
    rng = random.Random(0)
    draws = [lr.draw(rng) for _ in range(300)]
    assert all(1e-4 <= d <= 1e-2 for d in draws)
    assert sum(d < 1e-3 for d in draws) > 100  # log-uniform: about half below the middle decade


def test_describe_lists_every_param() -> None:
    rows = space.describe()
    assert [r["name"] for r in rows] == [p.name for p in PARAMS]
    keys = {"name", "type", "range", "scale", "default", "condition", "help"}
    assert all(keys <= set(r) for r in rows)
    by = {r["name"]: r for r in rows}
    assert by["learning_rate"]["scale"] == "log"
    assert by["recurrent_dropout"]["condition"] == "architecture in {lstm, gru, conv_gru}"
    assert by["batch_size"]["range"] == "64, 128, 256, 512"
    json.dumps(rows)


def test_param_is_frozen() -> None:
    p = Param("x", "int", 1, low=0, high=2)
    with pytest.raises(AttributeError):
        p.low = 5  # type: ignore[misc]


# --- TrialConfig ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"architecture": "transformer"}, "unknown architecture 'transformer'; known: dense, "),
        ({"rnn_units": (16, 0)}, "rnn_units must all be > 0"),
        ({"rnn_units": ()}, "at least one layer"),
        ({"dense_units": (-1,)}, "dense_units must all be > 0"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        ({"recurrent_dropout": -0.1}, r"recurrent_dropout must be in \[0, 1\)"),
        ({"head_dropout": 1.5}, r"head_dropout must be in \[0, 1\)"),
        ({"learning_rate": 0.0}, "learning_rate must be > 0"),
        ({"sampling_rate": 0}, "sampling_rate must be > 0"),
        ({"sequence_length": -3}, "sequence_length must be > 0"),
        ({"batch_size": 0}, "batch_size must be > 0"),
        ({"optimizer": "sgd"}, "unknown optimizer 'sgd'"),
        ({"loss": "huber"}, "unknown loss 'huber'"),
        ({"architecture": "dense", "bidirectional": True}, "bidirectional=True needs a recurrent"),
        ({"architecture": "conv1d", "reverse": True}, "reverse=True needs a recurrent"),
        ({"architecture": "dense", "recurrent_dropout": 0.2}, "needs a recurrent"),
        ({"architecture": "conv1d", "conv_kernel": (3, 3)}, "one kernel size per conv layer"),
        ({"architecture": "conv1d", "sequence_length": 30}, "leaves no steps"),
        ({"rnn_units": (8, 8), "rnn_activation": ("tanh",)}, "1 activations for 2"),
        ({"dropout": "0.1"}, "config field 'dropout' must be a number"),
        ({"rnn_units": 16}, "config field 'rnn_units' must be a list of integers"),
    ],
)
def test_bad_configs_give_one_line(changes: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        TrialConfig(**changes).validate()  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_config_round_trip() -> None:
    cfg = TrialConfig(rnn_units=(32, 64), rnn_activation=("tanh", "relu"), dense_units=(8,))
    d = cfg.to_dict()
    assert d["rnn_units"] == [32, 64] and d["rnn_activation"] == ["tanh", "relu"]
    assert TrialConfig.from_dict(json.loads(json.dumps(d))) == cfg
    assert hash(TrialConfig.from_dict(d)) == hash(cfg)


def test_from_dict_errors() -> None:
    with pytest.raises(ConfigError, match="unknown config field 'dropuot'; did you mean 'dropout'"):
        TrialConfig.from_dict({"dropuot": 0.1})
    with pytest.raises(ConfigError, match="config field 'bidirectional' must be true or false"):
        TrialConfig.from_dict({"bidirectional": "yes"})
    with pytest.raises(ConfigError, match="config field 'batch_size' must be an integer"):
        TrialConfig.from_dict({"batch_size": 12.5})
    assert TrialConfig.from_dict({"learning_rate": 1}).learning_rate == 1.0  # int -> float


def test_replace_and_derived() -> None:
    cfg = TrialConfig().replace(rnn_units=[8, 8], sampling_rate=3, sequence_length=480)
    assert cfg.rnn_units == (8, 8) and cfg.rnn_layers == 2
    assert cfg.history_rows == 479 * 3 + 1
    assert cfg.sequence_hours == 240
    with pytest.raises(ConfigError, match="unknown config field 'unit'"):
        cfg.replace(unit=3)


# --- no tuner in the core -------------------------------------------------------------------


def test_core_imports_no_tuner() -> None:
    code = (
        "import sys, jena.space, jena.models, jena.config\n"
        "bad = [m for m in ('optuna', 'keras_tuner') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
