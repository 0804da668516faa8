"""What every benchmark shares: the machine's description, a JSON record of the figures, the
tiny sweeps they run, and running a piece of work in a fresh process under a chosen backend.

Figures are ratios where they can be (machines are noisy); absolute times come with the machine
they were measured on.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"  # the JSON of the latest run of each benchmark
SYNTHETIC = "synthetic:100000:7"  # ~23 months of Jena-like rows: book2 splits of useful size


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, Python and library versions, accelerator, date."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gib = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for name in ("keras", "tensorflow-cpu", "tensorflow", "jax", "jaxlib", "optuna", "mlflow"):
        with contextlib.suppress(PackageNotFoundError):
            versions[name] = version(name)
    return {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "python": platform.python_version(),
        "accelerator": accelerator(),
        **versions,
    }


def accelerator() -> str | None:
    """An NVIDIA GPU's name (nvidia-smi), or None: the CPU is all there is."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    names = [n.strip() for n in out.stdout.splitlines() if n.strip()]
    return ", ".join(names) if out.returncode == 0 and names else None


def save(name: str, figures: dict[str, Any], path: str | os.PathLike[str] | None = None) -> Path:
    """Write ``figures`` (and the machine) as benchmarks/results/NAME.json (or ``path``)."""
    target = Path(path) if path else RESULTS / f"{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    record = {"benchmark": name, "machine": machine(), **figures}
    target.write_text(json.dumps(record, indent=2, default=float) + "\n")
    return target


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A plain text table (numbers formatted by the caller)."""
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in
                       enumerate(zip(r, widths, strict=True))) for r in cells]  # fmt: skip
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def env_for(backend: str, **extra: str) -> dict[str, str]:
    """The environment of a child process on ``backend`` (quiet TensorFlow; JAX on the CPU
    unless an accelerator is there)."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": path}
    if backend == "jax" and accelerator() is None:
        env.setdefault("JAX_PLATFORMS", "cpu")
    env.update(extra)
    return env


def run_child(code: str, backend: str, timeout: float = 900, cwd: Path | None = None,
              **extra: str) -> dict[str, Any]:  # fmt: skip
    """Run ``code`` (Python) in a fresh process on ``backend``; the JSON of its last line."""
    proc = subprocess.run([sys.executable, "-c", code], env=env_for(backend, **extra),
                          capture_output=True, text=True, timeout=timeout, cwd=cwd)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"child on {backend} failed:\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def has_jax() -> bool:
    import importlib.util

    return importlib.util.find_spec("jax") is not None


def sweep_sets(*extra: str, source: str = SYNTHETIC) -> list[str]:
    """``--set`` overrides of a short sweep: sweeps/default.toml on synthetic data, cheap
    models (dense, lstm, gru of 8-32 units), low fidelity."""
    return [
        f"data.source={json.dumps(source)}",
        "fidelity.max_epochs=4",
        "fidelity.steps_per_epoch=12",
        "fidelity.validation_steps=8",
        "fidelity.patience=2",
        "timeout_minutes=30",
        'space.include=["architecture", "units", "learning_rate"]',
        'space.ranges={architecture=["dense", "lstm", "gru"], units=[8, 32]}',
        "space.fixed={sequence_length_hours=48, normalise_target=true, rnn_layers=1}",
        "sampler.options={}",
        "pruner.options={}",
        *extra,
    ]


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started
