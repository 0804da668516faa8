"""Sweep files: typed, validated, overridable; every shipped file loads."""

from __future__ import annotations

import pytest

from jena.errors import ConfigError
from sweeps import apply_overrides, load
from sweeps.config import SWEEPS_DIR, resolve_path


@pytest.mark.parametrize("path", sorted(SWEEPS_DIR.glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_sweep_loads_and_its_space_is_valid(path):
    from jena.book import BOOK_MODELS
    from sweeps.trial import make_space

    cfg = load(path)
    assert cfg.name and cfg.trials >= 1
    space = make_space(cfg)
    assert len(space) > 0
    if cfg.space.presets is not None:
        assert set(cfg.space.presets) <= set(BOOK_MODELS)
        assert space.names == ("preset",)


def test_names_resolve_to_files_in_sweeps():
    assert resolve_path("default") == SWEEPS_DIR / "default.toml"
    with pytest.raises(ConfigError, match=r"no sweep file 'nope'.*default"):
        resolve_path("nope")


def write(tmp_path, text):
    p = tmp_path / "s.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('name = "x"\ntrails = 3\n', "unknown key 'trails'"),
        ('trials = "3"\n', "trials: expected an integer"),
        ("[fidelity]\nmax_epochs = 2.5\n", "fidelity.max_epochs: expected an integer"),
        ("[fidelity]\nmax_epoch = 2\n", "unknown key 'fidelity.max_epoch'"),
        ('[sampler]\ntype = "bohb"\n', r"\[sampler\].type: 'bohb' is not one of"),
        ('driver = "ray"\n', "driver: expected 'optuna' or 'kerastuner'"),
        ("trials = 0\n", "trials: must be at least 1"),
        ('objectives = ["param_count"]\n', "the first must be 'val_mae'"),
        ('[data]\npreset = "book3"\n', r"\[data\].preset"),
        ("fidelity = 3\n", r"\[fidelity\]: expected a table"),
        ("name = \n", "not valid TOML"),
    ],
)
def test_bad_files_name_the_key(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match) as err:
        load(write(tmp_path, text))
    assert "\n" not in str(err.value)
    assert "s.toml" in str(err.value)


def test_overrides_win_over_the_file(tmp_path):
    cfg = load(
        write(tmp_path, 'name = "x"\ntrials = 3\n[space]\ninclude = ["units", "architecture"]\n')
    )
    new = apply_overrides(
        cfg,
        [
            "trials=7",
            "fidelity.max_epochs=2",
            'data.source="synthetic"',
            'architecture="gru"',
            "pruner.options.n_startup_trials=2",
        ],
    )
    assert new.trials == 7 and new.fidelity.max_epochs == 2 and new.data.source == "synthetic"
    assert new.space.fixed == {"architecture": "gru"}
    assert new.space.include == ["units"]  # fixing a searched parameter stops searching it
    assert new.pruner.options == {"n_startup_trials": 2}
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides(cfg, ["trials"])
    with pytest.raises(ConfigError, match="trials: expected an integer"):
        apply_overrides(cfg, ['trials="many"'])


@pytest.mark.parametrize(
    ("space", "match"),
    [
        ("fixed = { unitz = 3 }", "unitz.*did you mean 'units'"),
        ('include = ["units", "colour"]', "colour"),
        ("fixed = { units = 100000 }", "units"),
        ('fixed = { architecture = "transformer" }', "transformer"),
    ],
)
def test_a_bad_space_is_refused_when_the_file_is_read(tmp_path, space, match):
    with pytest.raises(ConfigError, match=match) as err:
        load(write(tmp_path, f"[space]\n{space}\n"))
    assert "[space]" in str(err.value) and "s.toml" in str(err.value)


def test_presets_of_another_edition_are_refused(tmp_path):
    text = '[data]\npreset = "book2"\n[space]\npresets = ["lstm", "gru"]\n'
    with pytest.raises(ConfigError, match=r"'gru' is a book1 model but .*book2"):
        load(write(tmp_path, text))


class FussyDriver:
    """A driver whose own setting is checked by itself (found by the test's registry entry)."""

    name = "fussy"

    @classmethod
    def problems(cls, cfg):
        if cfg.seed == 13:
            yield "seed", "the fussy driver refuses 13"


def test_each_driver_checks_its_own_settings(tmp_path, monkeypatch):
    from sweeps.drivers import Capabilities
    from sweeps.registry import DRIVERS

    FussyDriver.capabilities = Capabilities()
    monkeypatch.setitem(DRIVERS, "fussy", "test_sweep_config:FussyDriver")
    assert load(write(tmp_path, 'driver = "fussy"\nseed = 12\n')).seed == 12
    with pytest.raises(ConfigError, match=r"s.toml: seed: the fussy driver refuses 13"):
        load(write(tmp_path, 'driver = "fussy"\nseed = 13\n'))
    # one driver's section is not another's business: Keras Tuner ignores [sampler]
    text = 'driver = "kerastuner"\n[sampler]\ntype = "bohb"\n'
    assert load(write(tmp_path, text)).sampler.type == "bohb"
    with pytest.raises(ConfigError, match=r"\[tuner\].type: 'bohb' is not one of random"):
        load(write(tmp_path, 'driver = "kerastuner"\n[tuner]\ntype = "bohb"\n'))


def test_the_old_tuner_failure_limit_reads_as_faults(tmp_path):
    old = load(write(tmp_path, "[tuner]\nmax_consecutive_failed_trials = 5\n"))
    assert old.faults.max_consecutive_failed_trials == 5
    both = (
        "[tuner]\nmax_consecutive_failed_trials = 5\n[faults]\nmax_consecutive_failed_trials = 5\n"
    )
    assert load(write(tmp_path, both)).faults.max_consecutive_failed_trials == 5
    with pytest.raises(ConfigError) as err:
        load(write(tmp_path, both.replace("= 5\n[faults]", "= 4\n[faults]")))
    assert str(err.value) == (
        f"{tmp_path / 's.toml'}: [tuner].max_consecutive_failed_trials (4) and "
        "[faults].max_consecutive_failed_trials (5) disagree: keep the [faults] one (the [tuner] "
        "key is its old name)"
    )
    over = apply_overrides(old, ["tuner.max_consecutive_failed_trials=2"])  # the command line wins
    assert over.faults.max_consecutive_failed_trials == 2
    assert "max_consecutive_failed_trials" not in over.to_dict()["tuner"]
