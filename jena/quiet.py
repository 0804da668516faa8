"""Import Keras without TensorFlow's C++ start-up lines (absl/oneDNN notices on stderr).

They ignore TF_CPP_MIN_LOG_LEVEL and would scroll through the live displays; Python errors
still surface, since stderr is restored before any exception propagates.

psycopg (where installed) is imported first: its libpq's OpenSSL, loaded after TensorFlow's own
TLS library, aborts the process (``free(): invalid pointer``) at the first TLS connection to
PostgreSQL (``sslmode=require``, or a server with ``ssl = on``).
"""

from __future__ import annotations

import contextlib
import os
import sys


def import_tls_clients() -> None:
    """Load psycopg's libpq (and its OpenSSL) before TensorFlow is imported."""
    with contextlib.suppress(ImportError):
        import psycopg  # noqa: F401


def import_keras_quietly() -> None:
    import_tls_clients()
    if "keras" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
