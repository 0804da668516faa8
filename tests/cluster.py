"""A throwaway sweep cluster for the distributed and fault tests: a fresh PostgreSQL database
per test on the server of ``$JENA_TEST_POSTGRES_URL`` (``.ci/run`` starts one), a real
``mlflow server`` on a free loopback port backed by it (artifacts under tmp), and ``jena sweep``
worker processes. Everything is removed afterwards. Without PostgreSQL the tests skip with the
reason; under CI=true they fail instead (``conftest.require_in_ci``)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import TINY_SETS, require_in_ci

MLFLOW = str(Path(sys.executable).with_name("mlflow"))


def postgres_server() -> str:
    url = os.environ.get("JENA_TEST_POSTGRES_URL", "").strip()
    if not url:
        require_in_ci("no PostgreSQL server: set JENA_TEST_POSTGRES_URL (.ci/run starts one)")
    return url


def with_database(url: str, name: str) -> str:
    head, _, _ = url.rpartition("/")
    return f"{head}/{name}"


@contextlib.contextmanager
def fresh_database(server_url: str, prefix: str = "jena_t") -> Iterator[str]:
    """A new, empty database on the server; dropped afterwards (its connections ended)."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def healthy(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@dataclass
class MlflowServer:
    """``mlflow server`` backed by a PostgreSQL database, artifacts served from ``artifacts``;
    ``app_name="basic-auth"``: with MLflow's login (its settings in ``env``: the auth config,
    the secret key, the admin password)."""

    backend: str  # postgresql://… of its database
    artifacts: Path
    log: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    app_name: str | None = None
    env: dict[str, str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> MlflowServer:
        backend = self.backend.replace("postgresql://", "postgresql+psycopg://", 1)
        argv = [MLFLOW, "server", "--backend-store-uri", backend,
                "--artifacts-destination", str(self.artifacts), "--host", "127.0.0.1",
                "--port", str(self.port), "--workers", "1"]  # fmt: skip
        if self.app_name:
            argv += ["--app-name", self.app_name]
        env = {**os.environ, **(self.env or {})}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True,
                                         env=env)  # fmt: skip
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if healthy(self.url):
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {self.log.read_text()[-3000:]}")
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"mlflow server did not start in {timeout} s: {self.log}")

    def stop(self) -> None:
        """Kill it (its whole process group: the server and its workers)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)
        self.proc = None
        end = time.monotonic() + 10
        while healthy(self.url, 0.2) and time.monotonic() < end:
            time.sleep(0.1)


def worker_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of a worker process: quiet CPU-only Keras, one thread each."""
    env = {
        **os.environ,
        "KERAS_BACKEND": "tensorflow",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "CUDA_VISIBLE_DEVICES": "",
        "OMP_NUM_THREADS": "1",
        "TF_NUM_INTRAOP_THREADS": "1",
        "TF_NUM_INTEROP_THREADS": "1",
        "JENA_DATA_DIR": str(tmp / "data-cache"),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }
    env.pop("JENA_TRACKING_URI", None)
    return env


def sweep_argv(name: str, *, storage: str, tracking: str, trials: int,
               sets: Sequence[str] = ()) -> list[str]:  # fmt: skip
    """``jena sweep`` of the tiny test sweep (conftest.TINY_SETS), then ``sets``."""
    argv = [sys.executable, "-m", "jena.cli", "sweep", "default", "--name", name,
            "--storage", storage, "--tracking-uri", tracking, "--trials", str(trials)]  # fmt: skip
    for item in (*TINY_SETS, *sets):
        argv += ["--set", item]
    return argv


def start_worker(argv: Sequence[str], cwd: Path, log: Path, env: dict[str, str]) -> Any:
    with open(log, "ab") as out:
        return subprocess.Popen(list(argv), cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)  # fmt: skip


def wait_all(procs: Sequence[Any], timeout: float) -> list[int]:
    end = time.monotonic() + timeout
    codes = []
    for p in procs:
        try:
            codes.append(p.wait(timeout=max(1.0, end - time.monotonic())))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            codes.append(p.wait())
    return codes


def kill_all(procs: Sequence[Any]) -> None:
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()


# A worker that imports everything first, then waits at a barrier: the test releases all of
# them at once, so that they reach the stores' first writes at the same moment.
BARRIER = """
import sys, time
from pathlib import Path
from jena.quiet import import_keras_quietly
import_keras_quietly()
import jena.cli, sweeps.runner, sweeps.optuna  # noqa
ready, go = Path(sys.argv[1]), Path(sys.argv[2])
ready.touch()
while not go.exists():
    time.sleep(0.002)
at = float(go.read_text() or 0)
while time.time() < at:
    pass
sys.exit(jena.cli.main(sys.argv[3:]))
"""


def start_together(argvs: Sequence[Sequence[str]], cwd: Path, logs: Path, env: dict[str, str],
                   timeout: float = 240) -> list[Any]:  # fmt: skip
    """Start ``jena`` command lines (``argv[3:]`` of :func:`sweep_argv`) as processes that
    begin at the same instant; returns them, running."""
    logs.mkdir(parents=True, exist_ok=True)
    gate = logs / "go"
    procs = []
    for i, argv in enumerate(argvs):
        ready = logs / f"ready-{i}"
        line = [sys.executable, "-c", BARRIER, str(ready), str(gate), *argv[3:]]
        procs.append(start_worker(line, cwd, logs / f"worker-{i}.log", env))
    end = time.monotonic() + timeout
    while not all((logs / f"ready-{i}").exists() for i in range(len(argvs))):
        if time.monotonic() > end or any(p.poll() is not None for p in procs):
            kill_all(procs)
            raise RuntimeError(f"workers did not get ready: see {logs}")
        time.sleep(0.1)
    gate.write_text(str(time.time() + 0.5))
    return procs
