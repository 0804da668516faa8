"""Shared fixtures: tiny synthetic data, isolated MLflow/Optuna stores under tmp_path."""

from __future__ import annotations

import os

import pytest

# Deterministic, quiet, CPU-only Keras for every test process.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

TINY = "synthetic:24000:3"  # 24,000 rows ≈ 5.5 months


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in an empty directory: mlruns/ (MLflow, Optuna journals) lands under tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JENA_TRACKING_URI", raising=False)
    monkeypatch.setenv("JENA_DATA_DIR", str(tmp_path / "data-cache"))
    return tmp_path


def require_in_ci(reason: str) -> None:
    """Skip locally with ``reason``; under CI=true a missing service is a failure."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"required under CI=true: {reason}")
    pytest.skip(reason)
