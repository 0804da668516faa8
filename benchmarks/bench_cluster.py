"""Worker scaling on a cluster: trials per minute of one small fixed sweep with 1, 2 and 4
``jena sweep`` workers (each its own process and invocation, as on separate machines) sharing an
Optuna study on PostgreSQL and an ``mlflow server`` backed by PostgreSQL, everything local.

    python benchmarks/bench_cluster.py [--trials 12] [--workers 1,2,4] [--postgres URL]
                                       [--json PATH]

PostgreSQL: ``--postgres`` / ``$JENA_TEST_POSTGRES_URL`` (a server URL; a fresh database is made
per run and dropped), else a throwaway server started with ``initdb`` from
/usr/lib/postgresql/*/bin. Each worker count gets fresh databases and a fresh tracking server.
Figures: wall time from the workers' launch to the last exit (start-up included: imports, data),
and the steady rate from the first trial's start to the last trial's end; JSON in
benchmarks/results/cluster.json. On a machine with fewer cores than workers, more workers share
the same cores: the figures say what the cores allow, not what more machines would.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import env_for, save, sweep_sets, table

MLFLOW = str(Path(sys.executable).with_name("mlflow"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def postgres(url: str | None) -> Iterator[str]:
    """A PostgreSQL server URL: the one given, or a throwaway one for this run."""
    if url:
        yield url
        return
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not bins:
        raise SystemExit("no PostgreSQL: give --postgres URL (or install postgresql)")
    pgbin, data = bins[-1], Path(tempfile.mkdtemp(prefix="jena-bench-pg-"))
    port = free_port()
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root
        shutil.chown(data, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": True}
    subprocess.run([*as_user, str(pgbin / "initdb"), "-D", str(data), "-A", "trust", "-U",
                    "postgres"], **quiet)  # type: ignore[call-overload]  # fmt: skip
    opts = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c max_connections=200"
    subprocess.run([*as_user, str(pgbin / "pg_ctl"), "-D", str(data), "-o", opts, "-w", "-l",
                    str(data / "log"), "start"], **quiet)  # type: ignore[call-overload]  # fmt: skip
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(pgbin / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        shutil.rmtree(data, ignore_errors=True)


@contextlib.contextmanager
def database(server: str) -> Iterator[str]:
    import psycopg

    name = f"jena_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = %s", (name,))  # fmt: skip
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@contextlib.contextmanager
def tracking_server(backend: str, root: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [MLFLOW, "server", "--backend-store-uri",
            backend.replace("postgresql://", "postgresql+psycopg://", 1),
            "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1",
            "--port", str(port), "--workers", "2"]  # fmt: skip
    with open(root / "mlflow-server.log", "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)
    try:
        end = time.monotonic() + 180
        while True:
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health", timeout=1):
                break
            if proc.poll() is not None or time.monotonic() > end:
                raise SystemExit(f"the tracking server did not start: {root}/mlflow-server.log")
            time.sleep(0.3)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def one(server: str, workers: int, trials: int, root: Path) -> dict[str, Any]:
    """``workers`` worker processes on one new sweep of ``trials`` trials."""
    import optuna

    name = f"scale-{workers}w"
    sets = sweep_sets('sampler.type="random"', 'pruner.type="none"')
    with database(server) as mlflow_db, database(server) as study_db, \
            tracking_server(mlflow_db, root) as uri:  # fmt: skip
        argv = [
            sys.executable,
            "-m",
            "jena.cli",
            "sweep",
            "default",
            "--name",
            name,
            "--trials",
            str(trials),
            "--storage",
            study_db,
            "--tracking-uri",
            uri,
        ]
        for item in sets:
            argv += ["--set", item]
        env = env_for("tensorflow", OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="",
                      JENA_DATA_DIR=str(root / "data"))  # fmt: skip
        started = time.perf_counter()
        procs = []
        for i in range(workers):
            log = open(root / f"{name}-worker{i}.log", "wb")  # noqa: SIM115 (closed below)
            procs.append((subprocess.Popen(argv, cwd=root, stdout=log, stderr=log, env=env), log))
        codes = [p.wait() for p, _ in procs]
        wall = time.perf_counter() - started
        for _, log in procs:
            log.close()
        if any(codes):
            raise SystemExit(f"a worker failed ({codes}): see {root}/{name}-worker*.log")
        study = optuna.load_study(study_name=name, storage=study_db)
        done = [t for t in study.trials if t.datetime_complete is not None]
        first = min(t.datetime_start for t in done if t.datetime_start is not None)
        last = max(t.datetime_complete for t in done if t.datetime_complete is not None)
        steady = (last - first).total_seconds()
    return {
        "workers": workers,
        "trials": len(done),
        "wall_s": wall,
        "trials_per_min": len(done) / wall * 60,
        "steady_s": steady,
        "steady_trials_per_min": len(done) / steady * 60 if steady else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--workers", default="1,2,4", help="worker counts (default: 1,2,4)")
    parser.add_argument("--postgres", default=os.environ.get("JENA_TEST_POSTGRES_URL"))
    parser.add_argument("--json", default=None, help="write the figures here instead")
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    runs = []
    with postgres(args.postgres) as server, tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            root = Path(tmp, f"w{n}")
            root.mkdir()
            runs.append(one(server, n, args.trials, root))
            print(f"  {n} worker(s): {runs[-1]['trials']} trials in {runs[-1]['wall_s']:.0f} s",
                  file=sys.stderr)  # fmt: skip
    base = runs[0]["steady_trials_per_min"] or 1.0
    rows = [[r["workers"], r["trials"], f"{r['wall_s']:.0f}", f"{r['trials_per_min']:.1f}",
             f"{r['steady_trials_per_min']:.1f}", f"{r['steady_trials_per_min'] / base:.2f}x"]
            for r in runs]  # fmt: skip
    print(f"worker scaling on PostgreSQL + mlflow server ({os.cpu_count()} cores)")
    print(table(["workers", "trials", "wall s", "trials/min", "steady trials/min",
                 "vs 1 worker"], rows))  # fmt: skip
    path = save("cluster", {"trials": args.trials, "runs": runs}, args.json)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
