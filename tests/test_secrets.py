"""No secret is ever recorded (issue 32): the one redaction (``jena.secrets``) and the
recording paths that go through it, on a real SQLite MLflow store. The same against a real
PostgreSQL with password authentication and a tracking server with a login:
``test_secured.py``."""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path

import pytest
from conftest import tiny_sweep

from jena import tracking
from jena.secrets import (
    MASK,
    password_free,
    postgres_login_hint,
    redact,
    redact_files,
    redact_value,
    redacted_console,
    secret_env_names,
)

PW = "Xq7-" + secrets.token_urlsafe(12)  # a fresh password: found only where it leaked


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://jena:PW@db.example:5432/opt", "postgresql://jena:***@db.example:5432/opt"),
        ("postgresql+psycopg://jena:PW@db/mlflow?sslmode=require",
         "postgresql+psycopg://jena:***@db/mlflow?sslmode=require"),
        ("postgresql://jena:p@ss:w@rd@db:5432/opt", "postgresql://jena:***@db:5432/opt"),
        ("http://alice:PW@127.0.0.1:5000", "http://alice:***@127.0.0.1:5000"),
        ("error: Optuna storage 'postgresql://jena:PW@db/opt' is not usable",
         "error: Optuna storage 'postgresql://jena:***@db/opt' is not usable"),
        ("postgresql://db/opt?user=jena&password=PW&sslmode=require",
         "postgresql://db/opt?user=jena&password=***&sslmode=require"),
        ("host=db user=jena password=PW dbname=opt", "host=db user=jena password=*** dbname=opt"),
        ("https://b.s3.amazonaws.com/k?X-Amz-Signature=PW&X-Amz-Date=1",
         "https://b.s3.amazonaws.com/k?X-Amz-Signature=***&X-Amz-Date=1"),
        ("http://h/api?token=PW", "http://h/api?token=***"),
        ("Authorization: Basic YWxpY2U6cHc=", "Authorization: Basic ***"),
        ('[storage]\noptuna = "postgresql://jena:PW@db/opt"',
         '[storage]\noptuna = "postgresql://jena:***@db/opt"'),
    ],
)  # fmt: skip
def test_redact_takes_the_secret_and_keeps_the_rest(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://postgres@127.0.0.1:5432/postgres",  # a user without a password
        "http://127.0.0.1:5000 and bob@example.com",
        "sqlite:////tmp/mlruns/mlflow.db",
        "journal:mlruns/optuna/default.journal",
        "mlflow-artifacts:/1/0123abcd/artifacts",
        "synthetic:52704:7",
        "Bearer authentication is not configured",
        "postgresql://jena:@db/opt",
    ],
)
def test_redact_leaves_what_holds_no_secret(text: str) -> None:
    assert redact(text) == text


def test_secrets_of_the_environment_are_masked_wherever_they_were_copied(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PGPASSWORD", PW)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok-" + PW)
    monkeypatch.setenv("DEV_DB_PASSWORD", "postgres")  # a plain word: not masked everywhere
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false-ish-value")  # not a secret's name
    names = secret_env_names()
    assert "PGPASSWORD" in names and "MLFLOW_TRACKING_TOKEN" in names
    assert "DEV_DB_PASSWORD" not in names and "TOKENIZERS_PARALLELISM" not in names
    assert redact(f"said {PW} and tok-{PW}") == f"said {MASK} and {MASK}"
    assert redact("postgresql://postgres@db/postgres") == "postgresql://postgres@db/postgres"


def test_redact_value_and_files(tmp_path: Path) -> None:
    url = f"postgresql://jena:{PW}@db:5432/opt"
    value = {"storage": {"optuna": url, "n": 3, "urls": [url, ("x", url)]}}
    assert PW not in json.dumps(redact_value(value))
    assert redact_value(value)["storage"]["n"] == 3
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "index.html").write_text(f"<p>MLflow {url}</p>")
    (tmp_path / "figure.png").write_bytes(b"\x89PNG" + url.encode())  # not text: left alone
    assert redact_files(tmp_path) == 1
    assert (tmp_path / "sub" / "index.html").read_text() == (
        "<p>MLflow postgresql://jena:***@db:5432/opt</p>"
    )


def test_the_console_is_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    with redacted_console():
        print(f"storage postgresql://jena:{PW}@db/opt")
        print(f"tracking http://alice:{PW}@mlflow:5000", file=sys.stderr)
    out, err = capsys.readouterr()
    assert PW not in out + err
    assert "postgresql://jena:***@db/opt" in out and "http://alice:***@mlflow:5000" in err


def test_a_recorded_url_is_usable_again_without_its_password() -> None:
    assert password_free(redact(f"postgresql://jena:{PW}@db:5432/opt?sslmode=require")) == (
        "postgresql://jena@db:5432/opt?sslmode=require"
    )
    assert password_free("journal:mlruns/optuna/x.journal") == "journal:mlruns/optuna/x.journal"


def test_postgres_login_hint_names_what_to_set() -> None:
    hint = postgres_login_hint('FATAL:  password authentication failed for user "jena"')
    assert hint is not None and "PGPASSWORD" in hint and "~/.pgpass" in hint
    assert postgres_login_hint("fe_sendauth: no password supplied") == hint
    assert postgres_login_hint("connection refused") is None


def test_recorded_settings_hold_no_password(tmp_path: Path) -> None:
    """Everything a sweep records on its parent run and a trial run — ``sweep.json``, params,
    tags, the dataset source, reasons — holds the settings without their passwords, read byte
    by byte from the store and its artifacts (it failed on ``sweep.json`` before)."""
    storage = f"postgresql://jena:{PW}@db.example:5432/jena_optuna?sslmode=require"
    tracking_text = f"http://alice:{PW}@mlflow.example:5000"
    store = tmp_path / "mlruns"
    cfg = tiny_sweep(name="secrets", tracking_uri=f"sqlite:///{store}/mlflow.db")
    cfg.storage.optuna = storage
    definition = cfg.to_dict()
    definition["storage"]["tracking_uri"] = tracking_text  # as a file or --tracking-uri gives it
    tracker = tracking.Tracker(f"sqlite:///{store}/mlflow.db", "secrets")
    with tracker.start_sweep(definition=definition, params={"storage": storage},
                             tags={"note": f"opened {storage}"}) as parent:  # fmt: skip
        data = tracking.DatasetInfo(name="jena-book2-train", digest="d",
                                    source=f"{tracking_text}/x.csv", source_type="http",
                                    context="training", columns=["T"])  # fmt: skip
        with tracker.trial(parent.run_id, 0, params={"url": storage}) as trial:
            trial.log_datasets([data])
            trial.set_tags({"failure_reason": f"OperationalError: {storage} went away"})
        parent.log_json({"storage": storage}, "settings.json")
    leaks = [p for p in store.rglob("*") if p.is_file() and PW.encode() in p.read_bytes()]
    assert leaks == []
    recorded = tracking.sweep_definition(tracker.tracking_uri, parent.run_id)
    assert recorded is not None
    assert recorded["storage"]["optuna"] == (
        "postgresql://jena:***@db.example:5432/jena_optuna?sslmode=require"
    )  # host, port, database, user and options stay: the record is still useful
    assert recorded["storage"]["tracking_uri"] == "http://alice:***@mlflow.example:5000"
    params = tracking.get_run(tracker.tracking_uri, parent.run_id).params
    assert params["storage"] == recorded["storage"]["optuna"]
