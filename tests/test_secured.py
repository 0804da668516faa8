"""Shared servers with a login (issue 32), on a throwaway secured cluster: PostgreSQL with
password authentication (scram-sha-256 under ``.ci/run``) and a study database owned by a role
of its own, and a real ``mlflow server --app-name basic-auth`` (MLflow's login: a secret key, an
admin password, one user for the sweep and one who may only read) on a free loopback port.

* a sweep of two invocations — one with ``--workers 2`` and its credentials from the
  environment (``PGPASSWORD``, ``MLFLOW_TRACKING_USERNAME`` / ``_PASSWORD``, URLs without a
  password), one with them planted in the storage URL and the tracking URI — completes, and its
  report is written; no password appears in any byte of the MLflow store (its database), the
  Optuna study's database, the artifacts, the worker logs, the report, or the console;
* no login, a wrong login, a missing permission (403) and a refused PostgreSQL password each
  stop with one line naming what to set (or the permission).

Without PostgreSQL these skip (CI=true: they fail)."""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from cluster import (
    MlflowServer,
    fresh_database,
    kill_all,
    postgres_server,
    start_worker,
    sweep_argv,
    wait_all,
    worker_env,
)

import jena.cli
from jena import tracking as T

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

DENSE = ['architecture="dense"', "fidelity.steps_per_epoch=1", "fidelity.max_epochs=1",
         "fidelity.validation_steps=1"]  # fmt: skip
LOGIN_VARS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")


def _sslmode() -> str:
    """``require`` where the server speaks TLS (``.ci/run``: ``$JENA_TEST_POSTGRES_TLS``), as the
    README has it across a network; a worker that imported TensorFlow first once aborted there."""
    if os.environ.get("JENA_TEST_POSTGRES_TLS"):
        return "require"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("required under CI=true: PostgreSQL with TLS ($JENA_TEST_POSTGRES_TLS)")
    return "prefer"


def _password() -> str:
    return "Pw7-" + secrets.token_urlsafe(15)  # fresh: found only where it leaked


@contextlib.contextmanager
def logged_in(user: str | None, password: str | None) -> Iterator[None]:
    """This process talks to the tracking server as ``user`` (None: no login)."""
    saved = {k: os.environ.get(k) for k in LOGIN_VARS}
    for k in LOGIN_VARS:
        os.environ.pop(k, None)
    if user is not None and password is not None:
        os.environ.update(MLFLOW_TRACKING_USERNAME=user, MLFLOW_TRACKING_PASSWORD=password)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _split(url: str) -> tuple[str, str]:
    """(host:port, database) of a postgresql:// URL without a password."""
    rest = url.split("@", 1)[1]
    host, _, db = rest.partition("/")
    return host, db.split("?", 1)[0]


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """A study database owned by a role of its own (with a password), a database for MLflow,
    and a tracking server with a login on it: users ``sweeper`` and ``viewer`` (READ)."""
    import psycopg

    server = postgres_server()
    root = tmp_path_factory.mktemp("secured")
    role, pg_password = f"jena_sweeper_{uuid.uuid4().hex[:8]}", _password()
    admin_password, sweeper_password, viewer_password = _password(), _password(), _password()
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{pg_password}'")
    try:
        with fresh_database(server, "jena_study") as study_admin, \
                fresh_database(server, "jena_mlflow") as backend:  # fmt: skip
            host, study_db = _split(study_admin)
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f'ALTER DATABASE "{study_db}" OWNER TO {role}')
                conn.execute(f'REVOKE CONNECT ON DATABASE "{study_db}" FROM PUBLIC')
            (root / "auth.ini").write_text(
                "[mlflow]\ndefault_permission = READ\n"
                f"database_uri = sqlite:///{root / 'auth' / 'basic_auth.db'}\n"
                "admin_username = admin\n"
                "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            )
            (root / "auth").mkdir()
            env = {"MLFLOW_AUTH_CONFIG_PATH": str(root / "auth.ini"),
                   "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
                   "MLFLOW_AUTH_ADMIN_PASSWORD": admin_password}  # fmt: skip
            mlflow = MlflowServer(backend, root / "artifacts", root / "auth" / "server.log",
                                  app_name="basic-auth", env=env).start()  # fmt: skip
            try:
                from mlflow.server import get_app_client

                with logged_in("admin", admin_password):
                    auth = get_app_client("basic-auth", tracking_uri=mlflow.url)
                    auth.create_user("sweeper", sweeper_password)
                    auth.create_user("viewer", viewer_password)
                    T.Tracker(mlflow.url, "secured-admins")  # an experiment only admin edits
                yield SimpleNamespace(
                    root=root, mlflow=mlflow, backend=backend, role=role, host=host,
                    study_db=study_db, study_admin=study_admin,
                    storage=f"postgresql://{role}@{host}/{study_db}",
                    pg_password=pg_password, admin_password=admin_password,
                    sweeper_password=sweeper_password, viewer_password=viewer_password,
                )  # fmt: skip
            finally:
                mlflow.stop()
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP ROLE IF EXISTS {role}")


def _dump(url: str) -> bytes:
    """Every row of every table of a database, as text (the store's bytes)."""
    import psycopg

    out = []
    with psycopg.connect(url) as conn:
        tables = conn.execute("SELECT schemaname, tablename FROM pg_tables WHERE schemaname "
                              "NOT IN ('pg_catalog', 'information_schema')").fetchall()  # fmt: skip
        for schema, table in tables:
            for row in conn.execute(f'SELECT * FROM "{schema}"."{table}"'):
                out.append(repr(row))
    return "\n".join(out).encode()


def test_a_secured_sweep_completes_and_records_no_secret(secured: SimpleNamespace) -> None:
    s = secured
    name = f"secured-{uuid.uuid4().hex[:6]}"
    work = s.root / f"work-{name}"
    work.mkdir()
    server = s.mlflow.url
    # (a) the usual way: the secrets in the environment, URLs without a password
    env_a = worker_env(work, PGPASSWORD=s.pg_password, PGPASSFILE=str(work / "no-pgpass"),
                       MLFLOW_TRACKING_USERNAME="sweeper",
                       MLFLOW_TRACKING_PASSWORD=s.sweeper_password)  # fmt: skip
    sslmode = _sslmode()
    argv_a = sweep_argv(name, storage=f"{s.storage}?sslmode={sslmode}", tracking=server,
                        trials=4, sets=[*DENSE, "workers=2"])  # fmt: skip
    # (b) the secrets planted in the storage URL and the tracking URI
    env_b = worker_env(work, PGPASSFILE=str(work / "no-pgpass"))
    for k in (*LOGIN_VARS, "PGPASSWORD"):
        env_b.pop(k, None)
    storage_b = f"postgresql://{s.role}:{s.pg_password}@{s.host}/{s.study_db}"
    tracking_b = server.replace("http://", f"http://sweeper:{s.sweeper_password}@")
    argv_b = sweep_argv(name, storage=storage_b, tracking=tracking_b, trials=4, sets=DENSE)
    procs = [start_worker(argv_a, work, work / "console-a.log", env_a),
             start_worker(argv_b, work, work / "console-b.log", env_b)]  # fmt: skip
    try:
        codes = wait_all(procs, timeout=600)
    finally:
        kill_all(procs)
    consoles = {p: (work / p).read_text() for p in ("console-a.log", "console-b.log")}
    assert codes == [0, 0], consoles
    report = [sys.executable, "-m", "jena.cli", "report", "--experiment", name,
              "--tracking-uri", tracking_b, "--out", str(work / "reports" / name)]  # fmt: skip
    proc = start_worker(report, work, work / "console-report.log", env_a)
    assert wait_all([proc], timeout=300) == [0], (work / "console-report.log").read_text()

    # the sweep: both invocations' trials, 4 in all, in both stores
    with logged_in("sweeper", s.sweeper_password):
        frame = T.trials_frame(server, name)
        parents = T.sweep_runs(server, name)
    assert len(frame) == 4 and set(frame["state"]) <= {"completed", "pruned"}
    assert len(parents) == 2
    assert (work / "mlruns" / "logs" / f"{name}-worker0.log").exists()  # --workers 2 logged
    assert (work / "reports" / name / "index.html").exists()

    # no secret in any byte: the stores, the artifacts, logs, report and consoles
    secrets_ = {"PostgreSQL password": s.pg_password,
                "MLflow password": s.sweeper_password,
                "Basic header": base64.b64encode(f"sweeper:{s.sweeper_password}".encode()
                                                 ).decode()}  # fmt: skip
    if os.environ.get("PGPASSWORD"):  # the server's own (.ci/run)
        secrets_["PostgreSQL superuser password"] = os.environ["PGPASSWORD"]
    files = [p for root in (work, s.root / "artifacts") for p in root.rglob("*") if p.is_file()]
    assert len(files) > 20  # logs, report, consoles, models and sweep.json were read
    assert any(p.name == "sweep.json" for p in files)
    blobs = {str(p): p.read_bytes() for p in files}
    blobs["MLflow store (database)"] = _dump(s.backend)
    blobs["Optuna study (database)"] = _dump(s.study_admin)
    found = [f"{what} in {where}" for where, data in blobs.items()
             for what, secret in secrets_.items() if secret.encode() in data]  # fmt: skip
    assert found == []

    # what was recorded is still useful: the settings without their passwords
    with logged_in("sweeper", s.sweeper_password):
        definitions = [T.sweep_definition(server, p.run_id) for p in parents]
    stores = sorted(d["storage"]["optuna"] for d in definitions if d is not None)
    assert f"postgresql://{s.role}:***@{s.host}/{s.study_db}" in stores
    assert f"postgresql://{s.role}@{s.host}/{s.study_db}?sslmode={sslmode}" in stores


def test_a_tls_connection_to_postgres_after_keras_is_imported(tmp_path: Path) -> None:
    """A process that imported Keras (TensorFlow) before its first TLS connection to PostgreSQL
    — every worker — used to abort (``free(): invalid pointer``: two OpenSSL builds)."""
    import subprocess

    server = postgres_server()
    if _sslmode() != "require":
        pytest.skip("the PostgreSQL server has no TLS ($JENA_TEST_POSTGRES_TLS)")
    program = ("import sys; from jena.quiet import import_keras_quietly; import_keras_quietly()\n"
               "import keras, psycopg\n"
               "with psycopg.connect(sys.argv[1]) as c:\n"
               "    print('tls', c.info.pgconn.ssl_in_use)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", program, f"{server}?sslmode=require"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env=worker_env(tmp_path))  # fmt: skip
    assert (done.returncode, done.stdout.strip()) == (0, "tls True"), done.stderr[-2000:]


def _sweep_line(capsys: pytest.CaptureFixture[str], tmp: Path, *argv: str) -> tuple[int, str]:
    """``jena sweep`` in this process: its exit status and what it said on stderr."""
    from conftest import TINY_SETS

    sets = [a for item in (*TINY_SETS, *DENSE) for a in ("--set", item)]
    code = jena.cli.main(["sweep", "default", "--trials", "1", *sets, *argv])
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize("login", ["none", "wrong"])
def test_a_login_refused_is_one_line_naming_what_to_set(
    secured: SimpleNamespace, login: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user, password = (None, None) if login == "none" else ("sweeper", "not-" + _password())
    with logged_in(user, password):
        code, err = _sweep_line(capsys, tmp_path, "--name", "secured-refused",
                                "--storage", f"journal:{tmp_path}/s.journal",
                                "--tracking-uri", secured.mlflow.url)  # fmt: skip
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"error: the MLflow tracking server {secured.mlflow.url} ")
    assert "HTTP 401" in err
    assert "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD" in err
    if login == "wrong":
        assert "user 'sweeper'" in err and password not in err  # type: ignore[operator]


def test_a_missing_permission_is_one_line_naming_it(
    secured: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``viewer`` may read every experiment (default_permission READ) but write none: a sweep
    into the admins' experiment stops at its first write, saying which permission it lacks."""
    with logged_in("viewer", secured.viewer_password):
        code, err = _sweep_line(capsys, tmp_path, "--name", "secured-admins",
                                "--storage", f"journal:{tmp_path}/s.journal",
                                "--tracking-uri", secured.mlflow.url)  # fmt: skip
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert "HTTP 403" in err
    assert "user 'viewer' needs EDIT permission on the sweep's experiment" in err
    assert "MLFLOW_TRACKING_USERNAME" in err
    with logged_in("admin", secured.admin_password):
        runs = T.sweep_runs(secured.mlflow.url, "secured-admins")
    assert runs == []  # nothing half-written


@pytest.mark.parametrize("login", ["none", "wrong"])
def test_a_refused_postgres_password_is_one_line_naming_what_to_set(
    secured: SimpleNamespace, login: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))
    if login == "none":
        monkeypatch.delenv("PGPASSWORD", raising=False)
    else:
        monkeypatch.setenv("PGPASSWORD", "not-" + _password())
    code, err = _sweep_line(capsys, tmp_path, "--name", "secured-pg", "--storage",
                            secured.storage, "--tracking-uri",
                            f"sqlite:///{tmp_path}/mlflow.db")  # fmt: skip
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"error: Optuna storage {secured.storage!r} is not usable")
    assert "PGPASSWORD" in err and "~/.pgpass" in err
