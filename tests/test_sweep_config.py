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
